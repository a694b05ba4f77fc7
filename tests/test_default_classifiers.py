"""NVIDIA's CelebA-HQ classifiers as registry entries: the default classifier of face models.

Downloads go to a local HTTP server on 127.0.0.1 serving small synthetic D_basic pickles with the
official structure (256x256 RGB in, one output, no labels); never the internet.
"""

import http.server
import math
import os
import pickle
import re
import sys
import threading
import types

import numpy as np
import pytest
import torch

from conftest import fixture_path, run_cli
from latentlab import defaults
from latentlab.attributes import NVIDIA_ATTRIBUTES, NvidiaCelebAHQClassifier, load_classifier
from latentlab.attributes.default import NoDefaultClassifier, default_classifier_spec
from latentlab.checkpoints import download as dl
from latentlab.checkpoints.tags import FORMAT_SG1_TF
from latentlab.errors import CheckpointError

# ----------------------------------------------------------------------------------------------- files


class Network:  # pickles as dnnlib.tflib.network.Network, like NVIDIA's files
    __module__ = "dnnlib.tflib.network"

    def __init__(self, state):
        self._state = state

    def __getstate__(self):
        return self._state


def d_basic_bytes(seed, resolution=256, fmap_base=128, fmap_max=4):
    """A pickled D_basic (TF variable names and layouts as the official networks) with random weights."""
    rng = np.random.default_rng(seed)
    log2 = int(math.log2(resolution))
    nf = lambda s: min(int(fmap_base / 2.0**s), fmap_max)  # noqa: E731
    v = {"lod": np.float32(0.0)}
    for res in range(log2, 1, -1):
        v[f"FromRGB_lod{log2 - res}/weight"] = rng.standard_normal((1, 1, 3, nf(res - 1)))
        v[f"FromRGB_lod{log2 - res}/bias"] = rng.standard_normal(nf(res - 1)) * 0.1
    for res in range(log2, 2, -1):
        r = 2**res
        v[f"{r}x{r}/Conv0/weight"] = rng.standard_normal((3, 3, nf(res - 1), nf(res - 1)))
        v[f"{r}x{r}/Conv0/bias"] = rng.standard_normal(nf(res - 1)) * 0.1
        v[f"{r}x{r}/Conv1_down/weight"] = rng.standard_normal((3, 3, nf(res - 1), nf(res - 2)))
        v[f"{r}x{r}/Conv1_down/bias"] = rng.standard_normal(nf(res - 2)) * 0.1
    v["4x4/Conv/weight"] = rng.standard_normal((3, 3, nf(1) + 1, nf(1)))
    v["4x4/Conv/bias"] = rng.standard_normal(nf(1)) * 0.1
    v["4x4/Dense0/weight"] = rng.standard_normal((nf(1) * 16, nf(0)))
    v["4x4/Dense0/bias"] = rng.standard_normal(nf(0)) * 0.1
    v["4x4/Dense1/weight"] = rng.standard_normal((nf(0), 1))
    v["4x4/Dense1/bias"] = rng.standard_normal(1) * 0.1
    kwargs = dict(resolution=resolution, num_channels=3, label_size=0, fmap_base=fmap_base, fmap_max=fmap_max)
    state = dict(
        version=3,
        name="D",
        static_kwargs=kwargs,
        components={},
        build_module_src="# omitted\n",
        build_func_name="D_basic",
        variables=[(k, np.asarray(x, np.float32)) for k, x in v.items()],
    )
    return pickle.dumps(Network(state), protocol=2)


@pytest.fixture
def dnnlib_module(monkeypatch):
    mods = {n: types.ModuleType(n) for n in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")}
    mods["dnnlib.tflib.network"].Network = Network
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)


# ------------------------------------------------------------------------------------------- server


class Handler(http.server.BaseHTTPRequestHandler):
    files = {}  # path -> (content type, bytes)
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.path not in self.files:
            self.send_error(404, "Not Found")
            return
        ctype, body = self.files[self.path]
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    Handler.files, Handler.requests = {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LATENTLAB_CACHE", str(folder))
    return folder


def point_registry(monkeypatch, base, mirrors=False):
    """The shipped registry with every classifier URL moved to `base` (the real mirror list dropped, or
    replaced by `base` + '/mirror' when mirrors=True)."""
    real = dl._all_entries()
    moved = {}
    for name, entry in real.items():
        entry = dict(entry)
        if entry.get("kind") == "classifier":
            entry["url"] = f"{base}/{entry['filename']}"
            entry["mirrors"] = [f"{base}/mirror/{entry['filename']}"] if mirrors else []
            entry.pop("size_mb", None)  # the served stand-ins are tiny: no size to check them against
        moved[name] = entry
    monkeypatch.setattr(dl, "_all_entries", lambda: moved)
    return moved


# ------------------------------------------------------------------------------------------ registry


def test_registry_lists_nvidias_40_classifiers_with_the_cdn_urls():
    reg = dl.registry("classifier")
    assert len(reg) == 40
    by_index = sorted(reg.items(), key=lambda kv: kv[1]["index"])
    assert [e["attribute"] for _, e in by_index] == NVIDIA_ATTRIBUTES
    for name, e in by_index:
        fname = f"celebahq-classifier-{e['index']:02d}-{e['attribute']}.pkl"
        assert name + ".pkl" == fname == e["filename"]
        assert e["url"] == "https://nvlabs-fi-cdn.nvidia.com/stylegan/networks/metrics/" + fname
        assert e["set"] == "nvidia-celebahq" and e["resolution"] == 256 and e["sha256"] is None
        assert len(e["mirrors"]) == 1 and e["mirrors"][0].startswith("https://drive.google.com/uc?id=")
    # the Google Drive ids of NVlabs/stylegan metrics/linear_separability.py, first and last
    assert reg["celebahq-classifier-00-male"]["mirrors"] == [
        "https://drive.google.com/uc?id=1Q5-AI6TwWhCVM7Muu4tBM7rp5nG_gmCX"
    ]
    assert reg["celebahq-classifier-39-wearing-necktie"]["mirrors"] == [
        "https://drive.google.com/uc?id=1SF_mJIdyGINXoV-I6IAxHB_k5dxiF6M-"
    ]
    # classifiers are not generators: --model and `latentlab models` do not see them
    assert not set(reg) & set(dl.registry())


def test_registry_holds_the_stylegan1_face_models_and_face_domains():
    reg = dl.registry()
    ffhq1, celeba1 = reg["stylegan1-ffhq-1024"], reg["stylegan1-celebahq-1024"]
    assert ffhq1["filename"] == "karras2019stylegan-ffhq-1024x1024.pkl" and ffhq1["interfacegan"] == "stylegan_ffhq"
    assert (
        celeba1["filename"] == "karras2019stylegan-celebahq-1024x1024.pkl"
        and celeba1["interfacegan"] == "stylegan_celebahq"
    )
    assert ffhq1["url"] == "https://drive.google.com/uc?id=1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ"  # NVlabs/stylegan README
    assert celeba1["url"] == "https://drive.google.com/uc?id=1MGqJl28pN4t7SAtSrPdSRJSQJqahkzUf"
    assert ffhq1["format"] == celeba1["format"] == FORMAT_SG1_TF
    faces = sorted(n for n, e in reg.items() if e.get("domain") == "faces")
    assert {
        "ffhq",
        "stylegan1-celebahq-1024",
        "stylegan1-ffhq-1024",
        "stylegan2-ffhq-1024",
        "stylegan2-ffhq-256",
    } <= set(faces)
    # photographed faces only: the FFHQ (aligned or not) and CelebA-HQ models, never MetFaces' paintings or animals
    assert all(reg[n]["dataset"] in ("FFHQ", "FFHQ-U", "CelebA-HQ") for n in faces)
    assert {n for n, e in reg.items() if e.get("dataset") in ("FFHQ", "FFHQ-U", "CelebA-HQ")} == set(faces)


def test_entry_for_finds_names_official_file_names_urls_and_cached_files(cache):
    assert dl.entry_for("stylegan1-ffhq-1024")[0] == "stylegan1-ffhq-1024"
    assert dl.entry_for("/data/models/karras2019stylegan-ffhq-1024x1024.pkl")[0] == "stylegan1-ffhq-1024"
    assert dl.entry_for("ffhq.pkl")[0] == "ffhq"
    assert dl.entry_for("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/afhqcat.pkl")[0] == "afhqcat"
    cached = dl.cached_path("stylegan2-ffhq-256")
    os.makedirs(os.path.dirname(cached))
    open(cached, "wb").close()
    assert dl.entry_for(cached)[0] == "stylegan2-ffhq-256"
    assert dl.entry_for("my_model.pkl") is None and dl.entry_for(fixture_path("sg1_32.pkl")) is None
    assert dl.entry_for("celebahq-classifier-01-smiling", "classifier")[0] == "celebahq-classifier-01-smiling"
    assert dl.entry_for("celebahq-classifier-01-smiling") is None  # not a generator


# ------------------------------------------------------------------------------------ default choice


def test_default_classifier_spec_per_model(tmp_path):
    toy = defaults.classifier_spec()
    assert toy.startswith("toyfaces:") and os.path.isfile(toy.split(":", 1)[1])
    for spec in (None, "toyfaces", defaults.model_path()):
        assert default_classifier_spec(None, spec) == toy
    for spec in ("ffhq", "stylegan1-celebahq-1024", "/x/karras2019stylegan-ffhq-1024x1024.pkl", "ffhq.pkl"):
        assert default_classifier_spec(None, spec) == "nvidia-celebahq"
    # only the attributes asked for (CelebA spellings and aliases), NVIDIA's names, each once
    assert default_classifier_spec(None, "ffhq", "smile,age,Smiling") == "nvidia-celebahq:smiling,young"
    assert default_classifier_spec(None, "ffhq", ["Wavy_Hair", "male"]) == "nvidia-celebahq:wavy-hair,male"
    with pytest.raises(ValueError, match="no classifier for 'sparkle'.*male, smiling"):
        default_classifier_spec(None, "ffhq", "sparkle")
    for spec in ("afhqcat", "metfaces", fixture_path("sg2ada_skip32.pkl")):
        with pytest.raises(NoDefaultClassifier) as e:
            default_classifier_spec(None, spec)
        msg = str(e.value)
        assert "\n" not in msg and "latentlab train-classifier" in msg and "--classifier nvidia-celebahq" in msg


# ------------------------------------------------------------------------------------------ fetching


def test_named_classifier_downloads_only_the_files_asked_for_and_matches_them(
    server, cache, monkeypatch, dnnlib_module
):
    point_registry(monkeypatch, server)
    smile, male = d_basic_bytes(1), d_basic_bytes(2)
    Handler.files = {
        "/celebahq-classifier-01-smiling.pkl": ("application/octet-stream", smile),
        "/celebahq-classifier-00-male.pkl": ("application/octet-stream", male),
    }
    clf = load_classifier("nvidia-celebahq:Smiling,Male")
    assert clf.names == ["smiling", "male"] and clf.chunk == 4 and clf.resolution == 256
    assert sorted(os.listdir(cache)) == ["celebahq-classifier-00-male.pkl", "celebahq-classifier-01-smiling.pkl"]
    assert (cache / "celebahq-classifier-01-smiling.pkl").read_bytes() == smile

    # the same networks as reading the served bytes directly (from_files is checked against hand-mapped Ds)
    ref_dir = cache.parent / "ref"
    ref_dir.mkdir()
    (ref_dir / "celebahq-classifier-01-smiling.pkl").write_bytes(smile)
    (ref_dir / "celebahq-classifier-00-male.pkl").write_bytes(male)
    ref = NvidiaCelebAHQClassifier.from_files(
        [ref_dir / "celebahq-classifier-01-smiling.pkl", ref_dir / "celebahq-classifier-00-male.pkl"]
    )
    x = torch.randn(5, 3, 512, 512) * 0.5  # box-downsampled to 256 as by the separability metric
    with torch.no_grad():
        got, want = clf(x), ref(x)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert (got[:, 0] - got[:, 1]).abs().max() > 1e-3  # two different networks, in the order asked for

    n = len(Handler.requests)
    again = load_classifier("nvidia-celebahq:male")  # cached: no request
    assert again.names == ["male"] and len(Handler.requests) == n
    with torch.no_grad():
        torch.testing.assert_close(again(x), want[:, 1:], rtol=0, atol=0)


def test_a_download_with_another_structure_is_refused_and_removed(server, cache, monkeypatch, dnnlib_module):
    point_registry(monkeypatch, server)
    Handler.files = {
        "/celebahq-classifier-04-young.pkl": ("application/octet-stream", d_basic_bytes(3, resolution=32, fmap_base=16))
    }
    with pytest.raises(
        CheckpointError,
        match=r"not the expected celebahq-classifier-04-young .*256x256 RGB images .*"
        r"found one for 32x32.*it was removed",
    ):
        load_classifier("nvidia-celebahq:young")
    assert not os.path.exists(cache / "celebahq-classifier-04-young.pkl")
    # a web page (Google Drive's confirmation page, say) is never saved as the file
    Handler.files = {"/celebahq-classifier-04-young.pkl": ("text/html; charset=utf-8", b"<html>confirm</html>")}
    with pytest.raises(CheckpointError, match="sent a web page instead of the file"):
        load_classifier("nvidia-celebahq:Young")
    assert not os.listdir(cache)
    # a file placed in the cache by hand is checked too (and left alone: it is the user's)
    placed = cache / "celebahq-classifier-04-young.pkl"
    placed.write_bytes(d_basic_bytes(3, resolution=64, fmap_base=32))
    with pytest.raises(CheckpointError, match=re.escape(str(placed)) + ": not one of NVIDIA's CelebA-HQ classifiers"):
        load_classifier("nvidia-celebahq:young")
    assert placed.exists()


def test_mirror_is_tried_when_the_url_fails(server, cache, monkeypatch, dnnlib_module):
    point_registry(monkeypatch, server, mirrors=True)
    Handler.files = {"/mirror/celebahq-classifier-09-bangs.pkl": ("application/octet-stream", d_basic_bytes(4))}
    assert load_classifier("nvidia-celebahq:bangs").names == ["bangs"]
    assert Handler.requests == ["/celebahq-classifier-09-bangs.pkl", "/mirror/celebahq-classifier-09-bangs.pkl"]


def test_offline_error_says_which_file_to_place_where(cache, monkeypatch):
    point_registry(monkeypatch, "http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(CheckpointError) as e:
        load_classifier("nvidia-celebahq:smile")
    msg = str(e.value)
    dest = os.path.join(str(cache), "celebahq-classifier-01-smiling.pkl")
    assert "\n" not in msg and msg.endswith(
        f"download http://127.0.0.1:9/celebahq-classifier-01-smiling.pkl elsewhere and place it at {dest}"
    )


def test_load_classifier_by_name_matches_the_spec_forms():
    by_name = load_classifier("toyfaces")
    by_spec = load_classifier(defaults.classifier_spec())
    assert by_name.names == by_spec.names
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(by_name(x), by_spec(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="no attributes named"):
        load_classifier("nvidia-celebahq:")
    with pytest.raises(ValueError, match=r"toyfaces \(the embedded model's classifier\).*nvidia-celebahq\[:ATTR"):
        load_classifier("celeba")


# ----------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def face_model(cache):
    """A small 256 px generator standing in for the registry's stylegan1-ffhq-1024 (placed in the cache)."""
    from latentlab import Generator
    from latentlab.checkpoints.native import save_native

    torch.manual_seed(0)
    G = Generator(
        z_dim=8,
        c_dim=0,
        w_dim=8,
        img_resolution=256,
        img_channels=3,
        mapping_kwargs=dict(num_layers=1),
        synthesis_kwargs=dict(channel_base=1024, channel_max=4),
    ).eval()
    path = dl.cached_path("stylegan1-ffhq-1024")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_native(path, {"G_ema": G}, "test")
    return path


def test_als_on_a_face_model_defaults_to_nvidias_classifiers(
    server, cache, face_model, monkeypatch, capsys, dnnlib_module
):
    point_registry(monkeypatch, server)
    Handler.files = {"/celebahq-classifier-01-smiling.pkl": ("application/octet-stream", d_basic_bytes(5))}
    code, out, err = run_cli(
        capsys,
        "als",
        "--model",
        "stylegan1-ffhq-1024",
        "--attrs",
        "smile",
        "--pairs",
        "2",
        "--steps",
        "2",
        "--batch",
        "4",
        "--device",
        "cpu",
    )
    assert code == 0, err
    assert "scoring with nvidia-celebahq:smiling" in err and "smile" in out and "mean ALS" in out
    assert sorted(os.listdir(cache)) == ["celebahq-classifier-01-smiling.pkl", "stylegan1-ffhq-1024.pkl"]


def test_als_offline_and_other_models_say_what_to_do(cache, face_model, monkeypatch, capsys):
    point_registry(monkeypatch, "http://127.0.0.1:9")
    code, _, err = run_cli(
        capsys, "als", "--model", "stylegan1-ffhq-1024", "--attrs", "Smiling,Young", "--pairs", "1", "--device", "cpu"
    )
    line = [ln for ln in err.splitlines() if ln.startswith("latentlab: error:")]
    assert code == 1 and len(line) == 1
    assert re.search(r"place it at .*celebahq-classifier-01-smiling\.pkl$", line[0])
    code, _, err = run_cli(
        capsys, "als", "--model", fixture_path("sg2ada_skip32.pkl"), "--pairs", "1", "--device", "cpu"
    )
    assert code == 2 and "--classifier is required for models other than the embedded toyfaces model" in err
    assert "latentlab train-classifier" in err and "nvidia-celebahq" in err


def test_sample_on_a_face_model_scores_with_all_40(server, cache, face_model, monkeypatch, capsys, dnnlib_module):
    import json

    point_registry(monkeypatch, server)
    Handler.files = {
        f"/celebahq-classifier-{i:02d}-{a}.pkl": ("application/octet-stream", d_basic_bytes(100 + i))
        for i, a in enumerate(NVIDIA_ATTRIBUTES)
    }
    out = cache.parent / "samples"
    code, _, err = run_cli(
        capsys,
        "sample",
        "--model",
        "stylegan1-ffhq-1024",
        "--n",
        "2",
        "--chunk",
        "2",
        "--batch",
        "2",
        "--device",
        "cpu",
        "--out",
        out,
    )
    assert code == 0, err
    assert "scoring with nvidia-celebahq," in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["names"] == NVIDIA_ATTRIBUTES
    scores = np.load(out / "chunk_000000.npz")["scores"]
    assert scores.shape == (2, 40) and np.unique(scores[0]).size == 40  # forty different networks
    assert len(os.listdir(cache)) == 41  # the 40 files and the model
