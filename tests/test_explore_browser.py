"""`latentlab explore` in a real browser: headless Chromium, driven by selenium, loads the page from a server on a
free port, moves the smile slider, and sees the image change and the smile score go up.

Skipped when selenium, Chromium or its driver is missing (Debian: `apt-get install -y chromium chromium-driver`;
selenium is in the `dev` extra). `LATENTLAB_EXPLORE_SCREENSHOT=docs/images/explore.png` also saves the page as the
README shows it.
"""

import os
import shutil
import threading
import time

import pytest

from latentlab import defaults

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")

CHROME = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
DRIVER = shutil.which("chromedriver") or (
    "/usr/lib/chromium/chromedriver" if os.path.isfile("/usr/lib/chromium/chromedriver") else None
)
pytestmark = [
    pytest.mark.slow,  # a browser start and a few renders: ~10 s on 2 shared cores
    pytest.mark.skipif(
        CHROME is None or DRIVER is None, reason="no Chromium / chromedriver (apt-get install chromium chromium-driver)"
    ),
]


@pytest.fixture(scope="module")
def url():
    import latentlab
    from latentlab.explore import make_server, open_explorer

    G = latentlab.load_generator(defaults.NAME)
    server = make_server(open_explorer(G, None, defaults.classifier_spec()), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    thread.start()
    yield server.url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROME
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1100,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    except Exception as e:  # noqa: BLE001 - a browser that will not start here is a skip, not a failure
        pytest.skip(f"Chromium does not start here: {str(e).splitlines()[0]}")
    yield driver
    driver.quit()


def wait_for(driver, script, timeout=60.0):
    """Poll a JS expression until it is truthy; its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script("return " + script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


SCORE = "Number(document.querySelector('#scores [data-attr=smile]').dataset.value)"
IDLE = "document.body.dataset.busy === '0'"


def test_moving_the_smile_slider_changes_the_image_and_raises_the_smile_score(browser, url):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    # Seed 0: room to smile more (0.24 on [-1, 1]); v4's seed 3 already smiles (0.43) and +2 barely moves it.
    browser.get(url + '#{"seed":0}')
    wait_for(browser, "document.body.dataset.ready === '1' && document.getElementById('image').dataset.rid")
    wait_for(browser, "document.querySelector('#scores [data-attr=smile]').dataset.value !== undefined")
    before_src = browser.find_element(By.ID, "image").get_attribute("src")
    before = browser.execute_script("return " + SCORE)
    assert before_src.startswith("data:image/png;base64,")

    slider = browser.find_element(By.CSS_SELECTOR, "input.attr-slider[data-attr=smile]")
    width = slider.size["width"]
    ActionChains(browser).click_and_hold(slider).move_by_offset(int(width * 0.4), 0).release().perform()
    alpha = float(wait_for(browser, "document.querySelector('#sliders tr[data-attr=smile] .attr-value').value"))
    assert alpha > 2, alpha  # dragged towards +5
    command = wait_for(
        browser,
        f"{IDLE} && document.getElementById('command').value.includes('--attr smile --space w --alpha {alpha:g}') && document.getElementById('command').value",
    )
    wait_for(browser, IDLE)
    after_src = browser.find_element(By.ID, "image").get_attribute("src")
    after = browser.execute_script("return " + SCORE)
    assert after_src != before_src, "the image did not change"
    assert after > before + 0.05, (before, after)
    assert "latentlab edit --seeds 0 --attr smile" in command
    assert browser.find_element(By.ID, "error").text == ""
    delta = browser.find_element(By.CSS_SELECTOR, "#scores [data-attr=smile] .bar-value").text
    assert "(+" in delta, delta  # the change against the unedited image is shown
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    shot = os.environ.get("LATENTLAB_EXPLORE_SCREENSHOT")
    if shot:
        browser.save_screenshot(shot)


def test_state_is_in_the_url_and_each_tab_keeps_its_own(browser, url):
    """A second tab with another seed renders its own image; the first tab's image is untouched by it."""
    from selenium.webdriver.common.by import By

    browser.get(url + '#{"seed":7,"attrs":{"age":2}}')
    wait_for(browser, f"document.getElementById('seed').value === '7' && {IDLE}")
    first = browser.find_element(By.ID, "image").get_attribute("src")
    assert browser.find_element(By.ID, "error").text == ""
    assert "--seeds 7 --attr age" in browser.find_element(By.ID, "command").get_attribute("value")
    browser.switch_to.new_window("tab")
    browser.get(url + '#{"seed":8}')
    wait_for(browser, f"document.body.dataset.ready === '1' && document.getElementById('seed').value === '8' && {IDLE}")
    second = browser.find_element(By.ID, "image").get_attribute("src")
    browser.close()
    browser.switch_to.window(browser.window_handles[0])
    assert second != first
    assert browser.find_element(By.ID, "image").get_attribute("src") == first
