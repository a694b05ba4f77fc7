"""Downloads against a local HTTP server on 127.0.0.1: progress, resume, checksum, errors."""

import hashlib
import http.server
import os
import threading

import pytest

from latentlab.checkpoints import download as dl
from latentlab.checkpoints.tags import OFFICIAL_FORMATS
from latentlab.errors import CheckpointError

PAYLOAD = os.urandom(300_000)


class Handler(http.server.BaseHTTPRequestHandler):
    cut_after = None  # send only this many bytes, then drop the connection
    ranges_seen = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path != "/ckpt.pkl":
            self.send_error(404, "Not Found")
            return
        start = 0
        rng = self.headers.get("Range")
        type(self).ranges_seen.append(rng)
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(PAYLOAD):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if type(self).cut_after is not None:
            self.wfile.write(body[: type(self).cut_after])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    Handler.cut_after = None
    Handler.ranges_seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_and_checksum(server, tmp_path):
    dest = str(tmp_path / "a.pkl")
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    assert dl.download(server + "/ckpt.pkl", dest, sha256=sha, progress=False) == dest
    assert open(dest, "rb").read() == PAYLOAD
    assert not os.path.exists(dest + ".part")


def test_interrupted_download_resumes_without_losing_bytes(server, tmp_path):
    dest = str(tmp_path / "b.pkl")
    Handler.cut_after = 100_000
    with pytest.raises(CheckpointError, match="run again to resume"):
        dl.download(server + "/ckpt.pkl", dest, progress=False)
    assert not os.path.exists(dest)
    assert os.path.getsize(dest + ".part") == 100_000
    Handler.cut_after = None
    dl.download(server + "/ckpt.pkl", dest, progress=False)
    assert open(dest, "rb").read() == PAYLOAD
    assert Handler.ranges_seen[-1] == "bytes=100000-"


def test_checksum_mismatch_removes_the_file(server, tmp_path):
    dest = str(tmp_path / "c.pkl")
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        dl.download(server + "/ckpt.pkl", dest, sha256="0" * 64, progress=False)
    assert not os.path.exists(dest) and not os.path.exists(dest + ".part")


def test_http_errors_are_one_clear_error(server, tmp_path):
    with pytest.raises(CheckpointError, match="HTTP 404"):
        dl.download(server + "/missing.pkl", str(tmp_path / "d.pkl"), progress=False)


def test_resolve_registry_names_and_urls(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    tiny = {"url": server + "/ckpt.pkl", "sha256": hashlib.sha256(PAYLOAD).hexdigest()}
    monkeypatch.setattr(dl, "_all_entries", lambda: {"tiny": tiny})
    path = dl.resolve("tiny", progress=False)
    assert path == str(tmp_path / "cache" / "tiny.pkl") and open(path, "rb").read() == PAYLOAD
    n = len(Handler.ranges_seen)
    assert dl.resolve("tiny", progress=False) == path and len(Handler.ranges_seen) == n  # cached: no request
    url_path = dl.resolve(server + "/ckpt.pkl", progress=False)
    assert open(url_path, "rb").read() == PAYLOAD
    with pytest.raises(CheckpointError, match="not a known checkpoint name"):
        dl.resolve(str(tmp_path / "nope.pkl"))


def test_shipped_registry_is_well_formed():
    reg = dl.registry()
    assert "ffhq" in reg
    for name, entry in reg.items():
        assert entry["url"].startswith("https://"), name
        assert entry["format"] in OFFICIAL_FORMATS, name
