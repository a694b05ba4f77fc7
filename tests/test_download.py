"""Downloads against a local HTTP server on 127.0.0.1: progress, resume, checksum, errors, and the
verification of a registry entry's file before it enters the cache."""

import hashlib
import http.server
import io
import os
import re
import threading

import numpy as np
import pytest
from test_default_classifiers import d_basic_bytes, dnnlib_module  # noqa: F401  (a fixture)

from conftest import fixture_path, make_tiny_generator
from latentlab.checkpoints import download as dl
from latentlab.checkpoints.tags import FORMAT_SG1_TF, FORMAT_SG2_PYTORCH, FORMAT_SG2_TF, OFFICIAL_FORMATS
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


# ------------------------------------------------------------------------------ verified before the cache


class Files(http.server.BaseHTTPRequestHandler):
    """Serves `files` {path: (content type, bytes)}; `announce` {path: the Content-Length to send instead of the
    file's (the body is cut to it), None: none}."""

    files = {}
    announce = {}
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.path not in self.files:
            self.send_error(404, "Not Found")
            return
        ctype, body = self.files[self.path]
        length = self.announce.get(self.path, len(body))
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if length is not None:  # None: no Content-Length, the body ends when the connection closes
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body if length is None else body[:length])


@pytest.fixture
def files():
    Files.files, Files.announce, Files.requests = {}, {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    t = threading.Thread(target=httpd.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LATENTLAB_CACHE", str(folder))
    return folder


OCTETS = "application/octet-stream"
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


@pytest.fixture(scope="module")
def tiny_ada(tmp_path_factory):
    """A small stylegan2-ada-pytorch pickle (16x16 generator, z and w 16, no labels): its bytes."""
    from latentlab.checkpoints.export import save_official_pickle

    path = tmp_path_factory.mktemp("tiny") / "tiny.pkl"
    save_official_pickle(path, {"G_ema": make_tiny_generator()})
    return path.read_bytes()


def tiny_entry(base, data=None, **fields):
    """A registry entry for /tiny.pkl on the test server, saying what tiny_ada is (override by fields)."""
    entry = dict(url=f"{base}/tiny.pkl", sha256=None, format=FORMAT_SG2_PYTORCH, generation=2, resolution=16)
    entry.update(z_dim=16, w_dim=16, c_dim=0, architecture="stylegan2")
    if data is not None:
        entry["size_mb"] = len(data) / 2**20
    entry.update(fields)
    return entry


def use_registry(monkeypatch, **entries):
    monkeypatch.setattr(dl, "_all_entries", lambda: entries)


def cache_files(cache):
    """Every file under the cache folder (the folder itself may exist: a download made it)."""
    return sorted(os.path.relpath(os.path.join(d, f), cache) for d, _, fs in os.walk(cache) for f in fs)


def test_a_good_checkpoint_enters_the_cache_after_its_checks_on_the_partial_file(files, cache, monkeypatch, tiny_ada):
    Files.files = {"/tiny.pkl": (OCTETS, tiny_ada)}
    use_registry(monkeypatch, tiny=tiny_entry(files, tiny_ada))
    seen = []
    real = dl.check_file

    def spy(path, entry, structure=True):
        seen.append((path, os.path.exists(dl.cached_path("tiny")), structure))
        return real(path, entry, structure)

    monkeypatch.setattr(dl, "check_file", spy)
    path = dl.fetch("tiny", progress=False)
    assert path == str(cache / "tiny.pkl") and open(path, "rb").read() == tiny_ada
    assert seen == [(path + ".part", False, True)]  # checked as the partial file, before it took its name
    assert dl.resolve("tiny", progress=False) == path and len(Files.requests) == 1  # cached: no second request


@pytest.mark.parametrize(
    "fields,problem",
    [
        (dict(resolution=32), "its generator makes 16x16 images, expected 32x32"),
        (dict(z_dim=512), "its generator has z_dim 16, expected 512"),
        (dict(w_dim=512), "its generator has w_dim 16, expected 512"),
        (dict(c_dim=10), "its generator has c_dim 0, expected 10"),
        (dict(generation=3), r"its generator is a Generator \(generation 2\), expected a generation 3 generator"),
        (dict(format=FORMAT_SG2_TF), "it is a stylegan2-ada-pytorch checkpoint, expected stylegan2-tf"),
        (dict(size_mb=1.0), r"the server announces 81 KB, expected between 512 KB and 2.0 MB"),
    ],
)
def test_a_checkpoint_of_another_architecture_is_refused_removed_and_never_cached(
    files, cache, monkeypatch, tiny_ada, fields, problem
):
    Files.files = {"/tiny.pkl": (OCTETS, tiny_ada)}
    use_registry(monkeypatch, tiny=tiny_entry(files, tiny_ada, **fields))
    with pytest.raises(CheckpointError, match=rf"^{files}/tiny\.pkl: the downloaded file is not the expected tiny \("):
        try:
            dl.fetch("tiny", progress=False)
        except CheckpointError as e:
            assert "\n" not in str(e) and str(e).endswith("); it was removed"), e
            assert len(re.findall(problem, str(e))) == 1, (problem, str(e))
            raise
    assert cache_files(cache) == []


@pytest.mark.parametrize(
    "fixture,fmt,generation,res,dims",
    [
        ("official/sg1_32.pkl", FORMAT_SG1_TF, 1, 32, 32),
        ("official/tf_sg2_16.pkl", FORMAT_SG2_TF, 2, 16, None),
        ("official/sg2ada_skip32.pkl", FORMAT_SG2_PYTORCH, 2, 32, None),
        ("stylegan3/sg3t_16.pkl", FORMAT_SG2_PYTORCH, 3, 16, None),
    ],
)
def test_each_generation_is_recognised_by_its_generator_class(
    files, cache, monkeypatch, fixture, fmt, generation, res, dims
):
    data = open(os.path.join(FIXTURES, fixture), "rb").read()
    Files.files = {"/tiny.pkl": (OCTETS, data)}
    base = dict(format=fmt, resolution=res, z_dim=dims, w_dim=dims, c_dim=0)
    arch = {1: "stylegan1", 2: "stylegan2", 3: "stylegan3-t"}[generation]
    use_registry(monkeypatch, good=tiny_entry(files, data, generation=generation, architecture=arch, **base))
    assert open(dl.fetch("good", progress=False), "rb").read() == data
    wrong = 1 if generation != 1 else 2
    use_registry(monkeypatch, bad=tiny_entry(files, data, generation=wrong, **base))
    with pytest.raises(CheckpointError, match=rf"\(generation {generation}\), expected a generation {wrong} generator"):
        dl.fetch("bad", progress=False)
    assert cache_files(cache) == ["good.pkl"]


def test_stylegan3_t_and_r_are_told_apart(files, cache, monkeypatch):
    data = open(os.path.join(FIXTURES, "stylegan3", "sg3r_32.pkl"), "rb").read()
    Files.files = {"/tiny.pkl": (OCTETS, data)}
    fields = dict(generation=3, resolution=32, z_dim=8, w_dim=16, c_dim=0)
    use_registry(monkeypatch, t=tiny_entry(files, data, architecture="stylegan3-t", **fields))
    with pytest.raises(CheckpointError, match="its generator is a stylegan3-r network, expected stylegan3-t"):
        dl.fetch("t", progress=False)
    use_registry(monkeypatch, r=tiny_entry(files, data, architecture="stylegan3-r", **fields))
    assert os.path.isfile(dl.fetch("r", progress=False))


def test_a_stylegan3_class_from_the_reader_counts_as_generation_3(files, cache, monkeypatch, tiny_ada):
    """The generation comes from the generator's class as the reader names it (records.NetworkRecord)."""
    from latentlab.checkpoints import formats
    from latentlab.checkpoints.records import NetworkRecord, RawCheckpoint

    def fake(path):
        kwargs = dict(z_dim=512, w_dim=512, c_dim=0, img_resolution=1024, use_radial_filters=True, conv_kernel=1)
        return RawCheckpoint(path, FORMAT_SG2_PYTORCH, {"G_ema": NetworkRecord("StyleGAN3Generator", kwargs, {})})

    monkeypatch.setattr(formats, "read_checkpoint", fake)
    Files.files = {"/tiny.pkl": (OCTETS, tiny_ada)}
    fields = dict(generation=3, architecture="stylegan3-r", resolution=1024, z_dim=512, w_dim=512)
    use_registry(monkeypatch, sg3=tiny_entry(files, tiny_ada, **fields))
    assert os.path.isfile(dl.fetch("sg3", progress=False))
    use_registry(monkeypatch, sg2=tiny_entry(files, tiny_ada, **dict(fields, generation=2, architecture="stylegan2")))
    with pytest.raises(CheckpointError, match=r"a StyleGAN3Generator \(generation 3\), expected a generation 2"):
        dl.fetch("sg2", progress=False)


@pytest.mark.parametrize("with_size", [True, False])
def test_a_truncated_file_is_refused_by_its_size_or_by_reading_it(files, cache, monkeypatch, tiny_ada, with_size):
    third = tiny_ada[: len(tiny_ada) // 3]
    Files.files = {"/tiny.pkl": (OCTETS, third)}  # served as complete, without a length: only the checks can tell
    Files.announce = {"/tiny.pkl": None}
    entry = tiny_entry(files, tiny_ada)
    if not with_size:
        del entry["size_mb"]
    use_registry(monkeypatch, tiny=entry)
    problem = (
        r"it has 27 KB, expected about 81 KB \(between 40 KB and 162 KB\)" if with_size else "truncated or not a pickle"
    )
    with pytest.raises(CheckpointError, match=problem):
        dl.fetch("tiny", progress=False)
    assert cache_files(cache) == []


def test_a_web_page_is_never_saved_as_the_file(files, cache, monkeypatch, tiny_ada):
    page = b"<!DOCTYPE html><html><body>Google Drive can't scan this file for viruses</body></html>"
    Files.files = {"/tiny.pkl": ("text/html; charset=utf-8", page)}
    use_registry(monkeypatch, tiny=tiny_entry(files))  # no size: the content type alone refuses it
    with pytest.raises(CheckpointError, match="sent a web page instead of the file"):
        dl.fetch("tiny", progress=False)
    assert cache_files(cache) == []
    Files.files = {"/tiny.pkl": (OCTETS, page)}  # a page that does not say it is one: reading it refuses it
    with pytest.raises(CheckpointError, match=r"not the expected tiny \(truncated or not a pickle"):
        dl.fetch("tiny", progress=False)
    assert cache_files(cache) == []


def test_a_wrong_checksum_is_refused_and_a_pinned_one_is_all_that_is_checked(files, cache, monkeypatch, tiny_ada):
    Files.files = {"/tiny.pkl": (OCTETS, tiny_ada)}
    use_registry(monkeypatch, tiny=tiny_entry(files, tiny_ada, sha256="0" * 64))
    with pytest.raises(CheckpointError, match=r"tiny\.pkl: sha256 mismatch \(expected 0{64}, got [0-9a-f]{64}\)"):
        dl.fetch("tiny", progress=False)
    assert cache_files(cache) == []
    sha = hashlib.sha256(tiny_ada).hexdigest()  # pinned and matching: the (wrong) resolution is not looked at
    use_registry(monkeypatch, tiny=tiny_entry(files, tiny_ada, sha256=sha, resolution=1024))
    assert open(dl.fetch("tiny", progress=False), "rb").read() == tiny_ada


def test_a_server_announcing_another_size_is_refused_before_the_download(files, cache, monkeypatch, tiny_ada):
    Files.files = {"/tiny.pkl": (OCTETS, tiny_ada)}
    use_registry(monkeypatch, tiny=tiny_entry(files, tiny_ada, size_mb=300))
    with pytest.raises(CheckpointError, match=r"the server announces 81 KB, expected between 150 MB and 600 MB"):
        dl.fetch("tiny", progress=False)
    assert cache_files(cache) == []


def test_a_mirror_is_tried_when_the_first_url_serves_the_wrong_file(files, cache, monkeypatch, tiny_ada):
    Files.files = {"/tiny.pkl": (OCTETS, b"\x80\x04N."), "/mirror/tiny.pkl": (OCTETS, tiny_ada)}
    entry = tiny_entry(files, None, mirrors=[f"{files}/mirror/tiny.pkl"])
    use_registry(monkeypatch, tiny=entry)
    assert open(dl.fetch("tiny", progress=False), "rb").read() == tiny_ada
    assert Files.requests == ["/tiny.pkl", "/mirror/tiny.pkl"]
    # every URL answers with a wrong file: the errors say so (no advice to download it elsewhere)
    Files.files = {"/tiny.pkl": (OCTETS, b"\x80\x04N."), "/mirror/tiny.pkl": (OCTETS, b"\x80\x04N.")}
    use_registry(monkeypatch, other=entry)
    with pytest.raises(CheckpointError) as e:
        dl.fetch("other", progress=False)
    msg = str(e.value)
    assert msg.count("the downloaded file is not the expected other") == 2 and "elsewhere" not in msg


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def test_boundary_files_are_checked_as_arrays_and_cached_under_their_own_names(files, cache, monkeypatch):
    good = npy(np.random.default_rng(0).standard_normal((1, 16)))
    Files.files = {"/b.npy": (OCTETS, good)}

    def entry(**fields):
        e = dict(kind="boundary", set="someone", url=f"{files}/b.npy", filename="model_x_smile_w_boundary.npy")
        e.update(sha256=None, dim=16, size_mb=len(good) / 2**20)
        e.update(fields)
        return e

    use_registry(monkeypatch, smile=entry())
    path = dl.fetch("smile", "boundary", progress=False)
    assert path == str(cache / "boundaries" / "someone" / "model_x_smile_w_boundary.npy")
    assert open(path, "rb").read() == good and dl.registry("boundary") == {"smile": entry()}
    assert dl.registry() == {} and dl.registry("classifier") == {}  # not a model, not a classifier
    for data, problem in [
        (npy(np.zeros((2, 16))), r"a \.npy array of float64 and shape \[2, 16\], expected floats of shape \[16\]"),
        (npy(np.zeros(16, dtype=np.int64)), r"a \.npy array of int64 and shape \[16\]"),
        (npy(np.full(16, np.nan)), "its values are not all finite"),
        (b"\x80\x04N." + b"x" * 200, r"not a \.npy array file"),
    ]:
        Files.files = {"/b.npy": (OCTETS, data)}
        use_registry(monkeypatch, other=entry(filename="model_x_age_w_boundary.npy", size_mb=None))
        with pytest.raises(CheckpointError, match=problem):
            dl.fetch("other", progress=False)
    assert cache_files(cache) == [os.path.join("boundaries", "someone", "model_x_smile_w_boundary.npy")]


@pytest.mark.usefixtures("dnnlib_module")
def test_classifier_files_are_checked_for_their_network_and_input_size(files, cache, monkeypatch):
    clf = d_basic_bytes(0)  # a D_basic for 256x256 images, as NVIDIA's
    Files.files = {"/c.pkl": (OCTETS, clf)}
    base = dict(kind="classifier", url=f"{files}/c.pkl", sha256=None, format=FORMAT_SG1_TF, network="D_basic")
    use_registry(monkeypatch, good=dict(base, resolution=256), small=dict(base, resolution=128))
    assert open(dl.fetch("good", progress=False), "rb").read() == clf
    with pytest.raises(CheckpointError, match=r"it reads 256x256 images, expected 128x128"):
        dl.fetch("small", progress=False)
    use_registry(
        monkeypatch,
        g=dict(base, resolution=256, network="G_style"),
        v2=dict(base, resolution=256, format=FORMAT_SG2_TF),
    )
    with pytest.raises(CheckpointError, match=r"its network was built by 'D_basic', expected 'G_style'"):
        dl.fetch("g", progress=False)
    with pytest.raises(CheckpointError, match=r"it is a stylegan1-tf network, expected stylegan2-tf"):
        dl.fetch("v2", progress=False)
    # a generator checkpoint is not a classifier, whatever its size
    Files.files = {"/c.pkl": (OCTETS, open(fixture_path("sg1_32.pkl"), "rb").read())}
    use_registry(monkeypatch, small=dict(base, resolution=128))
    with pytest.raises(CheckpointError, match=r"expected one network of StyleGAN's TensorFlow code, found a tuple"):
        dl.fetch("small", progress=False)
    assert cache_files(cache) == ["good.pkl"]


def test_a_callers_check_replaces_the_reading_but_not_the_size(files, cache, monkeypatch, tiny_ada):
    """fetch(verify=...): the caller reads the file itself (once); the registry's size check still applies."""
    Files.files = {"/tiny.pkl": (OCTETS, tiny_ada)}
    calls = []
    use_registry(monkeypatch, tiny=tiny_entry(files, tiny_ada, resolution=1024))  # the registry's reading would refuse
    path = dl.fetch("tiny", progress=False, verify=lambda p: calls.append(p))
    assert calls == [path + ".part"] and os.path.isfile(path)
    use_registry(monkeypatch, other=tiny_entry(files, tiny_ada, size_mb=5))
    with pytest.raises(CheckpointError, match="the server announces 81 KB"):
        dl.fetch("other", progress=False, verify=lambda p: calls.append(p))
    assert len(calls) == 1
