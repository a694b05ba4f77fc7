"""`latentlab explore`, server side: every frame is the PNG `latentlab edit` writes for the same settings (the command
the page shows, run for real), bad requests get one-line 4xx answers and leave the server running, tabs never mix,
and the exports (PNG, latents file, command, zip) are what the other commands read."""

import base64
import http.client
import io
import json
import os
import threading
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli, sigint_default_in_child
from latentlab import defaults

SEED_SMILE = {"seed": 3, "psi": 0.7, "attrs": {"smile": 1.5}}


@pytest.fixture(scope="module")
def served():
    """(explorer, port): the embedded model with its classifier and boundaries, served on a free port."""
    import latentlab
    from latentlab.explore import make_server, open_explorer

    G = latentlab.load_generator(defaults.NAME)
    explorer = open_explorer(G, None, defaults.classifier_spec(), project_steps=3)
    server = make_server(explorer, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    thread.start()
    yield explorer, server.server_address[1]
    server.shutdown()
    server.server_close()


def request(port, method, path, body=None, media="application/json", headers=None):
    """(status, headers, body bytes) of one request; `body` a dict (sent as JSON), bytes or None."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    hdrs = dict(headers or {})
    if data is not None:
        hdrs.setdefault("Content-Type", media)
    conn.request(method, path, body=data, headers=hdrs)
    r = conn.getresponse()
    out = (r.status, dict(r.getheaders()), r.read())
    conn.close()
    return out


def render(port, state):
    status, _, raw = request(port, "POST", "/api/render", state)
    doc = json.loads(raw)
    assert status == 200, doc
    return doc


def run_command(capsys, command, folder, start=None):
    """Run the page's `latentlab edit ...` line in `folder` (with start.npz from the export when it reads one)."""
    import shlex

    args = shlex.split(command)
    assert args[:2] == ["latentlab", "edit"]
    os.makedirs(folder, exist_ok=True)
    if start is not None:
        with open(os.path.join(folder, "start.npz"), "wb") as f:
            f.write(start)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        code, out, err = run_cli(capsys, *args[1:])
    finally:
        os.chdir(cwd)
    assert code == 0, err
    return folder


def test_info_describes_the_model(served):
    _, port = served
    status, headers, raw = request(port, "GET", "/api/info")
    info = json.loads(raw)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert info["model"] == "toyfaces" and info["resolution"] == 64 and info["num_ws"] == 10
    assert info["levels"] == {"coarse": [0, 1, 2], "middle": [3, 4, 5, 6], "fine": [7, 8, 9]}
    assert info["style_layers"][0] == {"name": "b4.conv1", "channels": 128}  # v4: min(2048 / 4, channel_max 128)
    names = [a["name"] for a in info["attributes"]]
    assert names[:2] == ["smile", "age"] and len(names) == 9
    assert all(a["spaces"] == ["z", "w", "w+"] for a in info["attributes"])  # shipped W and Z boundaries
    assert info["classifier"]["spec"] == "toyfaces" and info["classifier"]["names"][0] == "smile"
    assert info["inversion"]["project"] is True and info["inversion"]["encode"] is False  # no --encoder given


def test_page_and_its_files_are_served_offline(served):
    _, port = served
    status, headers, page = request(port, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    text = page.decode()
    assert '<script src="app.js"' in text and 'href="style.css"' in text
    assert "http" not in text.replace("http-equiv", "")  # nothing from elsewhere (no CDN)
    for name, media in (("app.js", "text/javascript"), ("style.css", "text/css")):
        status, headers, body = request(port, "GET", "/" + name)
        assert status == 200 and headers["Content-Type"].startswith(media) and b"http://" not in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_a_frame_is_the_png_latentlab_edit_writes(served, capsys, tmp_path):
    """The render endpoint's PNG, byte for byte, is the file the shown command writes (same library call)."""
    _, port = served
    doc = render(port, SEED_SMILE)
    assert doc["command"] == (
        "latentlab edit --seeds 3 --attr smile --space w --alpha 1.5 --trunc 0.7 --no-original --out explore-export"
    )
    assert doc["output"] == "seed0003_alpha+1.50.png" and doc["start_file"] is False
    png = base64.b64decode(doc["image"])
    folder = run_command(capsys, doc["command"], tmp_path / "cli")
    assert (folder / "explore-export" / doc["output"]).read_bytes() == png
    assert set(doc["scores"]) == {"smile", "age", "eyeglasses", "male", "beard", "yaw", "bangs", "skin", "background"}
    assert doc["ms"]["total"] > 0


def test_scores_are_the_classifiers_on_the_shown_image(served):
    import torch

    explorer, port = served
    doc = render(port, SEED_SMILE)
    img = np.array(Image.open(io.BytesIO(base64.b64decode(doc["image"]))))
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        want = explorer.classifier(x)[0]
    assert [doc["scores"][n] for n in explorer.classifier.names] == pytest.approx(want.tolist(), abs=1e-5)
    plain = render(port, {"seed": 3, "psi": 0.7, "ref": True, "attrs": {"smile": 3}})
    base = render(port, {"seed": 3, "psi": 0.7})
    assert plain["reference"] == pytest.approx(base["scores"])  # ref: the unedited image's scores too
    assert plain["scores"]["smile"] > base["scores"]["smile"]  # the smile direction raises the smile score


COMPOSITE = [
    # two sliders, conditioned: the first goes into start.npz, the last is the command's edit
    {"seed": 5, "attrs": {"smile": 1.2, "age": -1.5}, "conditions": ["age", "male"]},
    # W+ on the coarse layers, with the fine layers of seed 9
    {"seed": 5, "space": "w+", "layers": "coarse", "attrs": {"eyeglasses": 2.5}, "mix": {"seed": 9, "layers": "fine"}},
    # Z, truncated, two sliders (start.npz holds z codes, --trunc applies at render time)
    {"seed": 5, "space": "z", "psi": 0.6, "attrs": {"smile": 1, "male": -1}},
    # an attribute, then two S channels: the command edits the last channel of the exported styles
    {
        "seed": 5,
        "psi": 0.8,
        "attrs": {"beard": 1},
        "channels": [
            {"layer": "b64.conv0", "channel": 12, "value": 6},
            {"layer": "b16.conv1", "channel": 3, "value": -4},
        ],
    },
    # one channel only, W+ with a cutoff: a plain seed command
    {"seed": 5, "space": "w+", "psi": 0.5, "cutoff": 4, "channels": [{"layer": "b8.conv1", "channel": 7, "value": 8}]},
]


@pytest.mark.parametrize("state", COMPOSITE, ids=["conditioned", "wplus-mix", "z-trunc", "attr+channels", "cutoff"])
def test_every_kind_of_frame_is_reproduced_by_its_command(served, capsys, tmp_path, state):
    from latentlab.latents import LatentCodes

    explorer, port = served
    doc = render(port, state)
    png = base64.b64decode(doc["image"])
    status, headers, raw = request(port, "POST", "/api/export?item=zip", state)
    assert status == 200 and headers["Content-Type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(raw))
    names = set(z.namelist())
    assert {"image.png", "latents.npz", "command.txt", "explore.json"} <= names
    assert z.read("image.png") == png and z.read("command.txt").decode().strip() == doc["command"]
    assert ("start.npz" in names) == doc["start_file"]
    start = z.read("start.npz") if doc["start_file"] else None
    folder = run_command(capsys, doc["command"], tmp_path / "cli", start)
    assert (folder / "explore-export" / doc["output"]).read_bytes() == png
    # latents.npz: the shown image's codes, in the format every command reads
    (tmp_path / "latents.npz").write_bytes(z.read("latents.npz"))
    codes = LatentCodes.load_for(tmp_path / "latents.npz", explorer.G)
    from latentlab.edits.pipeline import render_codes

    psi, cutoff = (state.get("psi", 1.0), state.get("cutoff")) if codes.space == "z" else (1.0, None)
    np.testing.assert_array_equal(
        render_codes(explorer.G, codes, psi, cutoff)[0], np.asarray(Image.open(io.BytesIO(png)))
    )


def test_the_export_items(served, tmp_path):
    from latentlab.latents import LatentCodes

    explorer, port = served
    png = base64.b64decode(render(port, SEED_SMILE)["image"])
    status, headers, body = request(port, "POST", "/api/export?item=png", SEED_SMILE)
    assert status == 200 and body == png and 'filename="seed0003.png"' in headers["Content-Disposition"]
    status, _, body = request(port, "POST", "/api/export?item=command", SEED_SMILE)
    assert body.decode().startswith("latentlab edit --seeds 3 --attr smile")
    status, _, body = request(port, "POST", "/api/export?item=latents", SEED_SMILE)
    (tmp_path / "l.npz").write_bytes(body)
    codes = LatentCodes.load_for(tmp_path / "l.npz", explorer.G)
    assert codes.space == "w" and codes.seeds == [3] and codes.meta["alphas"] == [1.5]
    status, _, body = request(port, "POST", "/api/export?item=pdf", SEED_SMILE)
    assert status == 400 and "unknown item 'pdf'" in json.loads(body)["error"]


BAD = [
    ({"attrs": {"grin": 1}}, 400, "unknown attribute 'grin'; this model has: smile, age"),
    ({"psi": 5}, 400, "psi must be a finite number in [-1, 2], got 5.0"),
    ({"seed": "abc"}, 400, "seed must be an integer, got 'abc'"),
    ({"seed": 1.5}, 400, "seed must be an integer, got 1.5"),
    ({"seed": -1}, 400, "seed must be in 0..4294967295"),
    ({"seed": 2**40}, 400, "seed must be in 0..4294967295"),
    ({"attrs": {"smile": 1e308}}, 400, "attrs.smile must be a finite number in [-20, 20]"),
    ({"attrs": {"smile": True}}, 400, "attrs.smile must be a number"),
    ({"colour": 1}, 400, "unknown setting 'colour'"),
    ({"space": "q"}, 400, "space must be one of z, w, w+"),
    ({"layers": "coarse"}, 400, "layer ranges need the W+ space"),
    ({"space": "w+", "layers": "0-99"}, 400, "layer 99 does not exist"),
    ({"space": "w+", "layers": "0-1000000000"}, 400, "no model has a layer"),
    ({"mix": {"seed": 2, "layers": "fine"}}, 400, "needs the W+ space"),
    ({"channels": [{"layer": "b4.conv1", "channel": 0, "value": 1}] * 65}, 400, "at most 64"),
    ({"channels": [{"layer": "b4.conv9", "channel": 0, "value": 1}]}, 400, "unknown style layer 'b4.conv9'"),
    ({"channels": [{"layer": "b4.conv1", "channel": 128, "value": 1}]}, 400, "channel must be in 0..127"),
    ({"conditions": ["nope"]}, 400, "conditions: unknown attribute 'nope'"),
    ({"cutoff": 4, "psi": 0.5, "attrs": {"smile": 1}}, 400, "a truncation cutoff makes the layers differ"),
    ({"photo": "0123456789abcdef"}, 404, "is not on the server"),
    ({"noise": "loud"}, 400, "noise must be one of const, random, none"),
    ({"tab": "x" * 300}, 400, "tab: 300 characters, at most 200"),
    ([1, 2], 400, "the settings must be a JSON object"),
]


def _assert_one_line(status, raw, want_status, message):
    doc = json.loads(raw)
    assert status == want_status, (status, doc)
    assert message in doc["error"] and "\n" not in doc["error"], doc["error"]


@pytest.mark.parametrize("body,status,message", BAD, ids=[m[:30] for _, _, m in BAD])
def test_bad_settings_get_a_one_line_4xx(served, body, status, message):
    _, port = served
    got, _, raw = request(port, "POST", "/api/render", body)
    _assert_one_line(got, raw, status, message)


def test_malformed_huge_and_foreign_requests_are_refused_and_the_server_lives(served):
    from latentlab.utils.limits import MAX_EXPLORE_REQUEST_BYTES

    _, port = served
    got, _, raw = request(port, "POST", "/api/render", b'{"seed": 3,', media="application/json")
    _assert_one_line(got, raw, 400, "request: not valid JSON")
    got, _, raw = request(port, "POST", "/api/render", b"[" * 100 + b"]" * 100)
    _assert_one_line(got, raw, 400, "nested 100 levels deep")
    got, _, raw = request(port, "POST", "/api/render", b'{"seed": 3}', media="text/plain")
    _assert_one_line(got, raw, 415, "Content-Type must be application/json")
    # a body over the limit is refused from its Content-Length, before it is read
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/api/render")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(10**12))
    conn.endheaders()
    r = conn.getresponse()
    _assert_one_line(r.status, r.read(), 413, f"more than the {MAX_EXPLORE_REQUEST_BYTES} allowed")
    conn.close()
    big = json.dumps({"seed": 1, "tab": "x" * MAX_EXPLORE_REQUEST_BYTES}).encode()
    got, _, raw = request(port, "POST", "/api/render", big)
    _assert_one_line(got, raw, 413, "request body of")
    got, _, raw = request(port, "GET", "/api/nothing")
    _assert_one_line(got, raw, 404, "no such page '/api/nothing'")
    got, _, raw = request(port, "POST", "/api/nothing", {})
    _assert_one_line(got, raw, 404, "no such endpoint")
    got, _, raw = request(port, "GET", "/api/info", headers={"Host": "evil.example:80"})
    _assert_one_line(got, raw, 403, "is not served")  # DNS rebinding: a foreign host name is refused
    got, _, raw = request(port, "GET", "/api/job?id=nope")
    _assert_one_line(got, raw, 404, "no projection job 'nope'")
    assert render(port, {"seed": 1})["image"]  # still serving


def test_tabs_do_not_mix(served):
    """State travels with each request: interleaved requests of two tabs each get their own image."""
    _, port = served
    a = {"seed": 11, "attrs": {"male": 2}, "tab": "A"}
    b = {"seed": 12, "space": "w+", "layers": "fine", "attrs": {"age": -2}, "tab": "B"}
    alone = [render(port, a)["image"], render(port, b)["image"]]
    results = {}

    def go(name, state, k):
        results[name, k] = render(port, state)["image"]

    threads = [threading.Thread(target=go, args=(n, s, k)) for k in range(3) for n, s in (("A", a), ("B", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert alone[0] != alone[1]
    assert all(results["A", k] == alone[0] and results["B", k] == alone[1] for k in range(3))


def test_a_newer_request_of_the_same_tab_supersedes_a_waiting_one(served):
    explorer, port = served
    answers = {}

    def go(rid):
        status, _, raw = request(port, "POST", "/api/render", {"seed": rid, "tab": "T", "rid": rid})
        answers[rid] = (status, json.loads(raw))

    with explorer.lock.hold():  # the model is busy: both requests wait
        first = threading.Thread(target=go, args=(1,))
        first.start()
        time.sleep(0.3)
        second = threading.Thread(target=go, args=(2,))
        second.start()
        time.sleep(0.3)
    first.join()
    second.join()
    assert answers[1][0] == 409 and answers[1][1]["superseded"] is True
    assert answers[2][0] == 200 and answers[2][1]["rid"] == 2


def _photo_png(explorer, seed=21):
    from latentlab.edits.pipeline import run_edit

    _, _, images = run_edit(explorer.G, [seed], None, [0.0], "s", channels="b4.conv1:0", original=False)
    buf = io.BytesIO()
    Image.fromarray(images[0]).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_are_checked(served):
    explorer, port = served
    got, _, raw = request(port, "POST", "/api/project?steps=3", b"not an image", media="image/png")
    _assert_one_line(got, raw, 400, "the upload: cannot read image")
    small = io.BytesIO()
    Image.new("RGB", (32, 32)).save(small, format="PNG")
    got, _, raw = request(port, "POST", "/api/project?steps=3", small.getvalue(), media="image/png")
    _assert_one_line(got, raw, 400, "image is 32x32, the generator makes 64x64")
    got, _, raw = request(port, "POST", "/api/project?steps=99999", _photo_png(explorer), media="image/png")
    _assert_one_line(got, raw, 400, "steps must be in 1..2000")
    got, _, raw = request(port, "POST", "/api/project?steps=x", _photo_png(explorer), media="image/png")
    _assert_one_line(got, raw, 400, "steps must be an integer")
    got, _, raw = request(port, "POST", "/api/encode", _photo_png(explorer), media="image/png")
    _assert_one_line(got, raw, 409, "start the explorer with --encoder FILE")


@pytest.mark.slow  # a short projection (w_avg from 10 000 z, 3 steps) and an `edit` run: ~8 s
def test_a_projected_photo_is_edited_and_reproduced(served, capsys, tmp_path):
    explorer, port = served
    got, _, raw = request(port, "POST", "/api/project?name=me.png&steps=3&space=w", _photo_png(explorer), "image/png")
    job = json.loads(raw)
    assert got == 202 and job["total"] == 3 and job["name"] == "me"
    assert render(port, {"seed": 2})["image"]  # renders go on while it projects
    for _ in range(600):
        status, _, raw = request(port, "GET", f"/api/job?id={job['job']}")
        doc = json.loads(raw)
        if doc["done"]:
            break
        time.sleep(0.1)
    assert doc["done"] and doc["error"] is None and doc["step"] == 3 and doc["preview"], doc
    state = {"photo": doc["photo"], "space": "w+", "layers": "middle", "attrs": {"smile": 2}}
    frame = render(port, state)
    assert frame["command"].startswith("latentlab edit --latents start.npz --attr smile --space w+ --layers middle")
    status, _, raw = request(port, "POST", "/api/export?item=zip", state)
    z = zipfile.ZipFile(io.BytesIO(raw))
    folder = run_command(capsys, frame["command"], tmp_path / "cli", z.read("start.npz"))
    assert (folder / "explore-export" / frame["output"]).read_bytes() == base64.b64decode(frame["image"])
    assert frame["output"] == "me_alpha+2.00.png"
    got, _, raw = request(port, "POST", "/api/render", {"photo": doc["photo"], "psi": 0.5})
    _assert_one_line(got, raw, 400, "a photo's codes are used as they are")
    got, _, raw = request(port, "POST", "/api/render", {"photo": doc["photo"], "space": "z", "attrs": {"smile": 1}})
    _assert_one_line(got, raw, 400, "w codes cannot become z codes")


def test_state_parsing_without_a_server():
    from latentlab.explore.state import BadRequest, ModelFacts, parse_state

    facts = ModelFacts({"smile": ["w", "w+"], "age": ["z", "w", "w+"]}, {"b4.conv1": 8}, 4)
    s = parse_state({"attrs": {"smile": 0, "age": 1}, "conditions": ["smile", "smile"]}, facts)
    assert s.moved == [("age", 1.0)] and s.conditions == ("smile",) and s.space == "w"
    assert parse_state({}, facts) == parse_state({"seed": 0, "space": "w", "psi": 1, "noise": "const"}, facts)
    with pytest.raises(BadRequest, match=r"attrs.smile: no Z direction for this attribute \(it has W, W\+\)"):
        parse_state({"space": "z", "attrs": {"smile": 1}}, facts)
    with pytest.raises(BadRequest, match="channel b4.conv1:2 is edited twice"):
        parse_state({"channels": [{"layer": "b4.conv1", "channel": 2, "value": 1}] * 2}, facts)


def test_cli_serves_warns_when_exposed_and_stops_cleanly(capsys, monkeypatch):
    """`latentlab explore`: a loopback server by default; --host elsewhere warns; Ctrl-C ends it with exit 0."""
    import latentlab.explore
    from latentlab.explore.server import ExploreServer

    def interrupted(self, poll_interval=0.5):
        raise KeyboardInterrupt

    monkeypatch.setattr(ExploreServer, "serve_forever", interrupted)
    code, out, err = run_cli(capsys, "explore", "--port", "0", "--quiet")
    assert code == 0, err
    assert "latentlab explore: serving http://127.0.0.1:" in out and "(9 sliders; Ctrl-C stops)" in out
    assert out.strip().endswith("latentlab explore: stopped") and "warning" not in err
    code, out, err = run_cli(capsys, "explore", "--host", "0.0.0.0", "--port", "0", "--quiet")
    assert code == 0 and "latentlab: warning: serving on 0.0.0.0, not only on this machine" in err
    assert latentlab.explore.serve is not None


def test_cli_refuses_bad_options_in_one_line(capsys):
    import socket

    code, _, err = run_cli(capsys, "explore", "--port", "70000")
    assert code == 2 and "--port" in err and len(err.strip().splitlines()) == 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        code, _, err = run_cli(capsys, "explore", "--port", str(port))
    line = err.strip().splitlines()[-1]
    assert code == 1 and line.startswith(f"latentlab: error: --host 127.0.0.1 --port {port}: cannot listen there")
    code, _, err = run_cli(capsys, "explore", "--classifier", "torchscript:x.pt")
    assert code == 1 and "--trust-code" in err


def test_an_encoded_photo_is_edited_in_s_and_reproduced(served, capsys, tmp_path):
    """With --encoder the page encodes photos (S codes, one pass) and edits them along W directions moved into S."""
    from latentlab.explore import open_explorer

    explorer, _ = served
    ex = open_explorer(explorer.G, None, None, encoder_path=defaults.encoder_path())
    assert ex.info()["inversion"]["encode"] is True and ex.info()["classifier"] is None
    photo = ex.photos.encode(_photo_png(explorer), "face.png")
    assert photo.codes.space == "s" and photo.name == "face" and photo.codes.noise is not None
    frame = ex.render(ex.parse({"photo": photo.id, "attrs": {"smile": 2}, "conditions": ["age"]}))
    assert frame.command.startswith("latentlab edit --latents start.npz --attr smile --condition age --space s")
    assert frame.scores is None
    from latentlab.explore.engine import _codes_bytes

    folder = run_command(capsys, frame.command, tmp_path / "cli", _codes_bytes(frame.plan.start))
    assert (folder / "explore-export" / "face_alpha+2.00.png").read_bytes() == frame.png
    from latentlab.explore.state import BadRequest

    with pytest.raises(BadRequest, match="codes are styles"):
        ex.render(ex.parse({"photo": photo.id, "space": "w+", "mix": {"seed": 1, "layers": "fine"}}))


@pytest.mark.slow  # a real `latentlab explore` process: ~10 s to start on 2 shared cores
def test_ctrl_c_stops_the_real_server_cleanly(tmp_path):
    import signal
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen(
        [sys.executable, "-m", "latentlab", "explore", "--port", "0", "--quiet"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_default_in_child,
    )
    try:
        line = p.stdout.readline()
        assert line.startswith("latentlab explore: serving http://127.0.0.1:"), line + p.stderr.read()
        port = int(line.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
        assert render(port, {"seed": 1})["image"]
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 0 and out.strip() == "latentlab explore: stopped", (out, err)
    assert "Traceback" not in err
