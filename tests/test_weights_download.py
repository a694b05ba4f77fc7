"""Pretrained weights: HSR's default F is DINO ViT-S/16 fetched by name and verified, never a silent random
network; offline downloads (DINO, torchvision, timm) end in one line naming the file and where it goes.
Downloads run against a local HTTP server on 127.0.0.1."""

import http.server
import io
import os
import socket
import threading
import urllib.error
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from latentlab.errors import CheckpointError, MissingWeights
from latentlab.train import extractors, pretrained
from latentlab.train.pretrained import KNOWN_WEIGHTS, WeightsFile, vit_shapes, weights_file

timm = pytest.importorskip("timm")
TINY_VIT = dict(depth=2, dim=8, patch=4, img_size=16)


def tiny_vit(seed=0):
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(seed)
    return VisionTransformer(img_size=16, patch_size=4, embed_dim=8, depth=2, num_heads=2, num_classes=0)


def _bytes(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


class Files(http.server.BaseHTTPRequestHandler):
    files = {}
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        body = type(self).files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    Files.files, Files.requests = {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty latentlab and torch hub caches."""
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "cache" / "weights", tmp_path / "torch" / "hub" / "checkpoints"


def closed_port_url(path):
    """A URL nothing answers at: the download fails as it does offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# ------------------------------------------------------------------------------------- the known files


@pytest.mark.parametrize("file", sorted(KNOWN_WEIGHTS))
def test_expected_shapes_are_those_of_the_dino_architectures_in_timm(file):
    timm_name = {v: k for k, v in extractors.DINO_FILES.items()}[file]
    with torch.device("meta"):
        model = timm.create_model(timm_name, pretrained=False, num_classes=0)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == KNOWN_WEIGHTS[file].shapes()
    assert KNOWN_WEIGHTS[file].url == f"https://dl.fbaipublicfiles.com/dino/{file[:-4]}/{file}"
    assert timm.models.get_pretrained_cfg(timm_name).url == KNOWN_WEIGHTS[file].url  # timm agrees on the source


def test_vit_s16_by_hand():
    s = vit_shapes(depth=12, dim=384, patch=16, img_size=224)
    assert len(s) == 4 + 12 * 12 + 2
    assert s["pos_embed"] == (1, 197, 384) and s["patch_embed.proj.weight"] == (384, 3, 16, 16)
    assert s["blocks.11.attn.qkv.weight"] == (1152, 384) and s["blocks.0.mlp.fc1.weight"] == (1536, 384)


def test_default_weights_are_pretrained_for_every_extractor_name():
    assert extractors.default_weights() == "dino_deitsmall16_pretrain.pth"
    assert extractors.default_weights("dino_vits16") == "dino_deitsmall16_pretrain.pth"
    assert extractors.default_weights("dino_vitb8") == "dino_vitbase8_pretrain.pth"
    assert extractors.default_weights("timm:resnet18") == "timm"
    assert extractors.default_weights("vit_small_patch16_224") == "timm"
    assert extractors.default_weights("torchvision:resnet18") == "torchvision"


# ------------------------------------------------------------------------------------- downloads


@pytest.fixture
def tiny_entry(server, monkeypatch):
    monkeypatch.setitem(KNOWN_WEIGHTS, "tiny_dino.pth", WeightsFile(server + "/tiny_dino.pth", "a tiny ViT", TINY_VIT))
    return server


def test_known_file_is_downloaded_by_name_verified_and_cached(tiny_entry, caches):
    cache, _ = caches
    state = tiny_vit(seed=3).state_dict()
    Files.files["/tiny_dino.pth"] = _bytes({"teacher": {"module.backbone." + k: v for k, v in state.items()}})
    path = weights_file("tiny_dino.pth", progress=False)
    assert path == str(cache / "tiny_dino.pth") and sorted(os.listdir(cache)) == ["tiny_dino.pth"]
    assert weights_file("tiny_dino.pth", progress=False) == path and Files.requests == ["/tiny_dino.pth"]  # cached
    ext = extractors.ViTExtractor(tiny_vit(seed=0), weights="tiny_dino.pth")  # loads by name
    got = ext.net.state_dict()
    assert all(torch.equal(got[k], state[k]) for k in state)
    assert ext.spec["weights"] == "tiny_dino.pth"  # recorded by name: a resumed run fetches it the same way


def test_a_download_that_is_not_the_expected_network_is_refused_and_removed(tiny_entry, caches):
    cache, _ = caches
    state = tiny_vit().state_dict()
    state["pos_embed"] = torch.zeros(1, 5, 8)  # another input size
    Files.files["/tiny_dino.pth"] = _bytes(state)
    with pytest.raises(CheckpointError) as e:
        weights_file("tiny_dino.pth", progress=False)
    assert str(e.value) == (
        f"{tiny_entry}/tiny_dino.pth: not the tiny_dino.pth (a tiny ViT): 'pos_embed' has shape "
        "[1, 5, 8], expected [1, 17, 8]; the download was removed"
    )
    assert os.listdir(cache) == []
    Files.files["/tiny_dino.pth"] = _bytes({k: v for k, v in tiny_vit().state_dict().items() if k != "norm.bias"})
    with pytest.raises(CheckpointError, match="key 'norm.bias' is missing"):
        weights_file("tiny_dino.pth", progress=False)


def test_offline_the_error_is_one_line_naming_the_url_and_the_folder(monkeypatch, caches):
    cache, _ = caches
    url = closed_port_url("/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth")
    monkeypatch.setitem(
        KNOWN_WEIGHTS,
        "dino_deitsmall16_pretrain.pth",
        WeightsFile(url, "DINO ViT-S/16", KNOWN_WEIGHTS["dino_deitsmall16_pretrain.pth"].vit),
    )
    with pytest.raises(MissingWeights) as e:
        weights_file("dino_deitsmall16_pretrain.pth", progress=False, hint="or something else")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("dino_deitsmall16_pretrain.pth (DINO ViT-S/16) could not be downloaded (")
    assert msg.endswith(f": download {url} and put it into {cache}{os.sep} (or something else)")
    with pytest.raises(FileNotFoundError, match="no such file .*known weights downloaded by name: dino_deitsmall16"):
        weights_file("nope.pth")


def test_a_file_in_torch_hub_is_used_without_downloading(monkeypatch, caches):
    _, hub = caches
    monkeypatch.setitem(KNOWN_WEIGHTS, "tiny_dino.pth", WeightsFile(closed_port_url("/x.pth"), "a tiny ViT", TINY_VIT))
    hub.mkdir(parents=True)
    torch.save(tiny_vit().state_dict(), hub / "tiny_dino.pth")
    assert weights_file("tiny_dino.pth") == str(hub / "tiny_dino.pth")


def test_hsr_without_weights_uses_dino_vit_s16_from_its_file(caches):
    """The old default built a random F (with a warning at best); now the DINO file is required and used."""
    from latentlab import Generator
    from latentlab.train.hsr import HSR

    _, hub = caches
    hub.mkdir(parents=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        state = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0).state_dict()
    torch.save(state, hub / "dino_deitsmall16_pretrain.pth")  # where DINO's own torch.hub entry point puts it
    G = Generator(
        z_dim=8,
        c_dim=0,
        w_dim=8,
        img_resolution=16,
        img_channels=3,
        mapping_kwargs=dict(num_layers=1),
        synthesis_kwargs=dict(channel_base=128, channel_max=8),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'random extractor' warning either: it is not random
        hsr = HSR.for_generator(G, gen_resolutions="auto", hidden=4, grid=2)
    F = hsr.extractor
    assert F.spec["name"] == "vit_small_patch16_224.dino" and F.spec["weights"] == "dino_deitsmall16_pretrain.pth"
    got = F.net.state_dict()
    assert all(torch.equal(got[k], state[k]) for k in state)


def test_train_hsr_without_extractor_weights_offline_is_one_line_and_trains_nothing(
    tmp_path, caches, monkeypatch, capsys
):
    cache, _ = caches
    url = closed_port_url("/dino_deitsmall16_pretrain.pth")
    monkeypatch.setitem(
        KNOWN_WEIGHTS,
        "dino_deitsmall16_pretrain.pth",
        WeightsFile(url, "DINO ViT-S/16", KNOWN_WEIGHTS["dino_deitsmall16_pretrain.pth"].vit),
    )
    data = tmp_path / "imgs"
    data.mkdir()
    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(data / f"{i}.png")
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "hsr", "--data", data, "--resolution", 16, "--steps", 1, "--batch", 4, "--out", out
    )
    assert code == 1
    assert err.count("\n") == 1 and err.startswith(
        "latentlab: error: dino_deitsmall16_pretrain.pth (DINO ViT-S/16) could not be downloaded ("
    )
    assert (
        f"download {url} and put it into {cache}{os.sep} (--extractor-weights FILE takes a file; "
        "--extractor-weights none trains with a random F)" in err
    )
    assert not (out / "training_state.pt").exists()


# ------------------------------------------------------------------------------------- torchvision, timm


def test_torchvision_offline_names_the_file_and_torch_hub(monkeypatch, caches):
    _, hub = caches

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(MissingWeights) as e:
        extractors.TorchvisionExtractor("resnet18", weights="torchvision", input_size=32)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(
        "torchvision's pretrained resnet18 weights could not be downloaded (no network (test)): "
        f"download https://download.pytorch.org/models/resnet18-f37072fd.pth and put it into {hub}{os.sep}"
    )


def test_torchvision_warnings_are_not_shown():
    import torchvision

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torchvision.models.resnet18(pretrained=False)  # deprecated argument: torchvision warns
        assert seen, "torchvision no longer warns here; pick another deprecated call"
        del seen[:]
        pretrained.torchvision_pretrained("resnet18", lambda: torchvision.models.resnet18(pretrained=False))
        assert seen == []


def test_timm_offline_names_the_file_to_fetch():
    def offline():
        raise OSError(
            "An error happened while trying to locate the file on the Hub and we cannot find the requested "
            "files in the local cache. Please check your connection and try again."
        )

    with pytest.raises(MissingWeights) as e:
        pretrained.timm_pretrained("vit_small_patch16_224.dino", offline, hint="--extractor-weights FILE takes a file")
    msg = str(e.value)
    assert "\n" not in msg and msg == (
        "timm's pretrained vit_small_patch16_224.dino weights could not be downloaded (An error happened while trying "
        "to locate the file on the Hub and we cannot find the requested files in the local cache): download "
        "https://huggingface.co/timm/vit_small_patch16_224.dino/resolve/main/model.safetensors and pass it as the "
        "weights file (--extractor-weights FILE takes a file)"
    )
    with pytest.raises(ValueError, match="not a network problem"):  # other errors are not dressed up as offline ones
        pretrained.timm_pretrained("resnet18", lambda: (_ for _ in ()).throw(ValueError("not a network problem")))
