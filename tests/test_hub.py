"""hf://owner/repo/path[@revision] checkpoints, against a fake Hugging Face Hub on 127.0.0.1.

The server implements what `huggingface_hub.hf_hub_download` asks of the Hub for a file of a public
repository: HEAD and GET `/{repo_id}/resolve/{revision}/{filename}` (`/datasets/{repo_id}/...` for a
dataset), answering with `X-Repo-Commit`, `ETag` / `X-Linked-Etag`, `X-Linked-Size`, `Content-Length`,
byte ranges (206 + `Content-Range`) for a resumed GET, and the Hub's error answers (`X-Error-Code`:
RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo; a plain 403 or 503; a 200 without the Hub's
headers); anything else is a 404 and
not counted among the requests the tests look at. `HF_ENDPOINT` and the cache
point at the server and tmp_path, in the environment and in `huggingface_hub.constants` (read at import).
"""

import hashlib
import http.server
import re
import socket
import sys
import threading
import time
import types
import urllib.parse

import pytest
import torch

from conftest import fixture_path, run_cli
from latentlab.checkpoints import download as dl
from latentlab.checkpoints import hub as hf
from latentlab.checkpoints import load_checkpoint
from latentlab.errors import CheckpointError, ConfigError, MissingDependency

huggingface_hub = pytest.importorskip("huggingface_hub")
hf_constants = pytest.importorskip("huggingface_hub.constants")

MAIN = hashlib.sha1(b"main").hexdigest()
V1 = hashlib.sha1(b"v1").hexdigest()
SG2 = open(fixture_path("tf_sg2_16.pkl"), "rb").read()
SG1 = open(fixture_path("sg1_32.pkl"), "rb").read()
REPOS = {
    "owner/repo": {
        "refs": {"main": MAIN, "v1": V1, "refs/pr/1": V1},
        "files": {MAIN: {"sub/file.pkl": SG2}, V1: {"sub/file.pkl": SG1}},
    },
    "datasets/owner/data": {"refs": {"main": MAIN}, "files": {MAIN: {"ckpt.pkl": SG2}}},
}
GATED = {"owner/gated"}
FORBIDDEN = {"owner/private"}  # 403 without an error code
DOWN = {"owner/down"}  # 503, as a Hub in trouble answers
PLAIN = {"owner/plain"}  # 200 without the Hub's headers, as a web server that is not a Hub answers
ROUTE = re.compile(r"^/((?:datasets/|spaces/)?[^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class FakeHub(http.server.BaseHTTPRequestHandler):
    requests: list = []  # (method, raw path, Range header)
    cut_next_get = None  # the next full GET sends only this many bytes, then drops the connection

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.answer(body=False)

    def do_GET(self):
        self.answer(body=True)

    def fail(self, code, error_code=None, commit=None):
        self.send_response(code)
        if error_code:
            self.send_header("X-Error-Code", error_code)
            self.send_header("X-Error-Message", error_code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def answer(self, body):
        rng = self.headers.get("Range")
        m = ROUTE.match(self.path)
        if not m:  # e.g. huggingface_hub's best-effort GET /api/agent-harnesses (2.x): not counted
            return self.fail(404)
        type(self).requests.append((self.command, self.path, rng))
        repo_id, revision, filename = m.group(1), urllib.parse.unquote(m.group(2)), urllib.parse.unquote(m.group(3))
        if repo_id in GATED:
            return self.fail(401, "GatedRepo")
        if repo_id in FORBIDDEN:
            return self.fail(403)
        if repo_id in DOWN:
            return self.fail(503)
        if repo_id in PLAIN:
            return self.fail(200)
        repo = REPOS.get(repo_id)
        if repo is None:
            return self.fail(401, "RepoNotFound")  # what the Hub answers without a token
        commit = repo["refs"].get(revision, revision if revision in repo["files"] else None)
        if commit is None:
            return self.fail(404, "RevisionNotFound")
        data = repo["files"][commit].get(filename)
        if data is None:
            return self.fail(404, "EntryNotFound", commit)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        self.send_response(206 if rng else 200)
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
        self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if not body:
            return
        cut = type(self).cut_next_get
        if cut is not None and not rng:
            type(self).cut_next_get = None
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(data[start:])


def point_at(monkeypatch, tmp_path, endpoint):
    """HF_ENDPOINT, the cache and no token, in the environment and in huggingface_hub's import-time constants."""
    constants = hf_constants
    home = tmp_path / "hf"
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # huggingface_hub waits 1-8 s between retries; the same clock without the waits keeps this file fast
    no_wait = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    no_wait.sleep = lambda seconds: None
    for module in ("huggingface_hub.file_download", "huggingface_hub.utils._http"):
        if hasattr(sys.modules.get(module), "time"):
            monkeypatch.setattr(sys.modules[module], "time", no_wait)
    return home / "hub"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The fake Hub's address; the Hugging Face cache in tmp_path (`hub.cache`)."""
    FakeHub.requests = []
    FakeHub.cut_next_get = None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=httpd.serve_forever, kwargs=dict(poll_interval=0.02), daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    cache = point_at(monkeypatch, tmp_path, url)
    yield types.SimpleNamespace(url=url, cache=cache)
    httpd.shutdown()
    httpd.server_close()


def gets():
    return [r for r in FakeHub.requests if r[0] == "GET"]


def go_offline(monkeypatch, env=True, constant=True):
    if env:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if constant:
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)


def one_line(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def test_load_checkpoint_gives_the_networks_of_the_local_file(hub):
    got = load_checkpoint("hf://owner/repo/sub/file.pkl")
    ref = load_checkpoint(fixture_path("tf_sg2_16.pkl"))
    assert got.path.startswith(str(hub.cache)) and got.format == ref.format
    assert sorted(got.networks()) == sorted(ref.networks())
    for name, net in ref.networks().items():
        mine = got.networks()[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(mine[key], value), (name, key)
    assert [(m, p) for m, p, _ in FakeHub.requests] == [
        ("HEAD", "/owner/repo/resolve/main/sub/file.pkl"),
        ("GET", "/owner/repo/resolve/main/sub/file.pkl"),
    ]


def test_second_resolve_uses_the_cache(hub, capsys):
    path = dl.resolve("hf://owner/repo/sub/file.pkl", progress=False)
    assert open(path, "rb").read() == SG2 and len(gets()) == 1
    assert capsys.readouterr().err == ""  # progress=False: no bar
    assert dl.resolve("hf://owner/repo/sub/file.pkl", progress=False) == path
    assert len(gets()) == 1 and FakeHub.requests[-1][0] == "HEAD"  # the branch is checked, the content not fetched
    n = len(FakeHub.requests)
    dl.resolve(f"hf://owner/repo/sub/file.pkl@{V1}", progress=False)
    dl.resolve(f"hf://owner/repo/sub/file.pkl@{V1}", progress=False)
    assert len(FakeHub.requests) == n + 2  # a commit once cached: no request at all


@pytest.mark.parametrize(
    "spec, url_revision",
    [
        ("hf://owner/repo/sub/file.pkl@v1", "v1"),
        (f"hf://owner/repo/sub/file.pkl@{V1}", V1),
        ("hf://owner/repo@v1/sub/file.pkl", "v1"),  # huggingface_hub's URI form
        ("hf://owner/repo/sub/file.pkl@refs/pr/1", "refs%2Fpr%2F1"),
    ],
)
def test_revision_pins_the_file(hub, spec, url_revision):
    path = dl.resolve(spec, progress=False)
    assert open(path, "rb").read() == SG1 and V1 in path
    assert {p for _, p, _ in FakeHub.requests} == {f"/owner/repo/resolve/{url_revision}/sub/file.pkl"}


def test_revision_loads_its_own_networks(hub):
    assert load_checkpoint("hf://owner/repo/sub/file.pkl@v1").format == "stylegan1-tf"


def test_dataset_repository(hub):
    assert open(dl.resolve("hf://datasets/owner/data/ckpt.pkl", progress=False), "rb").read() == SG2
    assert FakeHub.requests[0][1] == "/datasets/owner/data/resolve/main/ckpt.pkl"


def test_partial_download_resumes_with_a_range_request(hub, monkeypatch):
    # huggingface_hub writes what it reads in chunks of DOWNLOAD_CHUNK_SIZE (10 MB): smaller ones, so that the
    # bytes before the break are on disk (a break within the first chunk starts over, as it should)
    monkeypatch.setattr(hf_constants, "DOWNLOAD_CHUNK_SIZE", 20_000)
    FakeHub.cut_next_get = 100_000
    path = dl.resolve("hf://owner/repo/sub/file.pkl", progress=False)
    assert open(path, "rb").read() == SG2
    first, second = [r for _, _, r in gets()]
    assert first is None and second in ("bytes=80000-", "bytes=100000-")  # resumed where the written bytes end


@pytest.mark.parametrize("how", ["both", "env only", "constant only"])
def test_offline_uses_the_cache_or_says_what_to_fetch(hub, monkeypatch, how):
    cached = dl.resolve("hf://owner/repo/sub/file.pkl", progress=False)
    pinned = dl.resolve("hf://owner/repo/sub/file.pkl@v1", progress=False)
    go_offline(monkeypatch, env=how != "constant only", constant=how != "env only")
    n = len(FakeHub.requests)
    assert dl.resolve("hf://owner/repo/sub/file.pkl", progress=False) == cached
    assert dl.resolve("hf://owner/repo/sub/file.pkl@v1", progress=False) == pinned
    with pytest.raises(CheckpointError) as e:
        load_checkpoint("hf://owner/repo/sub/file.pkl@refs/pr/1")
    one_line(e, "offline", "HF_HUB_OFFLINE=0", "hf download owner/repo sub/file.pkl --revision refs/pr/1")
    assert len(FakeHub.requests) == n  # offline: the server is never asked


@pytest.mark.parametrize(
    "spec, needles",
    [
        ("hf://owner/nope/sub/file.pkl", ["repository owner/nope not found", "HF_TOKEN"]),
        ("hf://owner/repo/sub/missing.pkl", ["file 'sub/missing.pkl' not found in repository owner/repo"]),
        ("hf://owner/repo/sub/file.pkl@v9", ["revision 'v9' not found in repository owner/repo"]),
        ("hf://owner/gated/file.pkl", ["owner/gated is a gated repository", "HF_TOKEN"]),
        ("hf://owner/private/file.pkl", ["refused access to owner/private (HTTP 403)", "HF_TOKEN"]),
        ("hf://owner/down/file.pkl", ["answered HTTP 503"]),
        ("hf://owner/plain/file.pkl", ["does not answer like the Hugging Face Hub", "check HF_ENDPOINT"]),
    ],
)
def test_hub_errors_are_one_line(hub, spec, needles):
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(spec)
    assert one_line(e, *needles).startswith(spec + ": ")


def test_unreachable_endpoint_names_it_and_why(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    point_at(monkeypatch, tmp_path, f"http://127.0.0.1:{port}")
    with pytest.raises(CheckpointError) as e:
        dl.resolve("hf://owner/repo/sub/file.pkl", progress=False)
    one_line(e, f"cannot reach http://127.0.0.1:{port} (", "refused")


@pytest.mark.parametrize(
    "spec",
    [
        "hf://",
        "hf://owner",
        "hf://owner/repo",
        "hf://owner/repo/",
        "hf://owner/repo/../x.pkl",
        "hf://owner/repo/a//x.pkl",
        "hf://owner/repo/./x.pkl",
        "hf://-owner/repo/x.pkl",
        "hf://owner/re..po/x.pkl",
        "hf://owner/re po/x.pkl",
        "hf://owner/repo.git/x.pkl",
        "hf://owner/repo/x.pkl@",
        "hf://owner/repo/x.pkl@bad..rev",
        "hf://owner/repo/x.pkl@a b",
        "hf://owner/repo/x.pkl@-rev",
        "hf://owner/repo@v1/x.pkl@v2",
        "hf://owner/repo/x\\y.pkl",
        "hf://owner/repo/x.pkl\n",
        "hf://buckets/owner/b/x.pkl",
    ],
)
def test_malformed_specs_are_one_line_config_errors(hub, spec):
    with pytest.raises(ConfigError) as e:
        load_checkpoint(spec)
    one_line(e, hf._short(spec))
    assert FakeHub.requests == []


def test_without_huggingface_hub_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(MissingDependency, match=r"pip install 'latentlab\[hub\]'"):
        load_checkpoint("hf://owner/repo/sub/file.pkl")


def test_cli_info(hub, capsys):
    code, out, err = run_cli(capsys, "info", "hf://owner/repo/sub/file.pkl@v1")
    assert code == 0, err
    assert "file          hf://owner/repo/sub/file.pkl@v1" in out and "stylegan1-tf" in out
    assert "file.pkl: 100%" in err  # the download's bar is latentlab's own (a line per update in a log)
    code, out, err = run_cli(capsys, "info", "hf://owner/repo/sub/missing.pkl")
    assert code != 0 and "Traceback" not in err
    assert "file 'sub/missing.pkl' not found in repository owner/repo" in err


def test_registry_lookup_reads_the_file_name_of_an_hf_spec():
    assert dl.entry_for("hf://someone/mirror/ffhq.pkl@v2")[0] == "ffhq"
    assert dl.entry_for("hf://someone/mirror/other.pkl") is None
    assert dl.entry_for("hf://someone/../ffhq.pkl") is None  # malformed: loading it says so
