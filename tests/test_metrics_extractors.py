"""The metrics' feature extractors (latentlab.metrics.extractors) and their weights (latentlab.metrics.weights).

Offline: the untrained networks, and a local HTTP server on 127.0.0.1 standing in for the weights' publishers.
The input handling is checked against an independent numpy implementation of TensorFlow 1's bilinear resize,
by capturing what reaches the first convolution (the forward is stopped there, so these checks are cheap).
"""

import hashlib
import http.server
import os
import threading

import numpy as np
import pytest
import torch

pytest.importorskip("torch_fidelity")

from latentlab.errors import CheckpointError, ConfigError, MissingDependency, MissingWeights  # noqa: E402
from latentlab.metrics import weights as W  # noqa: E402
from latentlab.metrics.extractors import get_extractor, resolve_extractor_spec  # noqa: E402


class _Stop(Exception):
    pass


def first_layer_input(ext, layer, images):
    """What `layer` receives when `ext` is called on `images` (the forward stops there)."""
    seen = []

    def grab(module, args):
        seen.append(args[0].detach().clone())
        raise _Stop

    handle = layer.register_forward_pre_hook(grab)
    try:
        with pytest.raises(_Stop):
            ext(images)
    finally:
        handle.remove()
    return seen[0].double().numpy()


def tf1_resize(images, size):
    """TensorFlow 1's tf.image.resize_bilinear(align_corners=False): source = output index * (in / out), both
    float32 as in TF's kernel; the two neighbours (the upper one clamped to the border) mixed linearly."""

    def axis(n_in):
        src = (np.arange(size, dtype=np.float32) * np.float32(n_in / size)).astype(np.float64)
        lo = np.floor(src).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), src - lo

    x = images.astype(np.float64)
    ylo, yhi, fy = axis(x.shape[2])
    xlo, xhi, fx = axis(x.shape[3])
    rows = lambda idx: x[:, :, idx, :]
    top = rows(ylo)[..., xlo] * (1 - fx) + rows(ylo)[..., xhi] * fx
    bottom = rows(yhi)[..., xlo] * (1 - fx) + rows(yhi)[..., xhi] * fx
    return top * (1 - fy)[:, None] + bottom * fy[:, None]


def random_images(n, size, seed=0, channels=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)


@pytest.fixture(scope="module")
def inception():
    return get_extractor("inception-untrained")


@pytest.fixture(scope="module")
def vgg():
    return get_extractor("vgg16-untrained")


# ------------------------------------------------------------------------------------------ untrained networks


def test_untrained_inception_shapes_determinism_and_rng(inception):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    again = get_extractor("inception-untrained")
    assert torch.equal(torch.get_rng_state(), before), "building an extractor must not move the caller's RNG"
    x = random_images(2, 64)
    a, b = inception(x), again(x)
    assert a.shape == (2, 2048) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert inception.feature_dim == 2048 and inception.name == "inception-untrained"
    assert inception.cache_id == "inception-pool3-untrained-seed0"
    # the He initialisation keeps the features away from zero and different between images
    assert a.abs().mean() > 1e-2 and (a[0] - a[1]).abs().max() > 1e-4
    # grayscale is repeated to three channels, as NVIDIA's metrics do
    gray = x[:1, :1]
    assert torch.equal(inception(gray), inception(gray.repeat(1, 3, 1, 1)))


def test_untrained_vgg16_shapes(vgg):
    f = vgg(random_images(2, 32))
    assert f.shape == (2, 4096) and f.dtype == torch.float32
    assert (f >= 0).all() and (f > 0).any()  # fc2 after its ReLU
    assert vgg.cache_id == "vgg16-fc2relu-untrained-seed0"


@pytest.mark.parametrize("size", [64, 299, 400])
def test_inception_input_is_tf1_resized_and_scaled(inception, size):
    """uint8 -> float, TF1 bilinear resize to 299 (no half-pixel offset), then (x - 128) / 128."""
    x = random_images(2, size, seed=size)
    got = first_layer_input(inception, inception.network.Conv2d_1a_3x3, x)
    expected = (tf1_resize(x.numpy(), 299) - 128) / 128
    assert got.shape == (2, 3, 299, 299)
    assert np.abs(got - expected).max() < 1e-5
    if size == 64:  # PyTorch's half-pixel bilinear resize would be a different input
        half = torch.nn.functional.interpolate(x.double(), size=(299, 299), mode="bilinear", align_corners=False)
        assert np.abs(got - ((half.numpy() - 128) / 128)).max() > 1e-2


def test_vgg16_input_is_tf1_resized_and_imagenet_normalised(vgg):
    x = random_images(2, 64, seed=3)
    got = first_layer_input(vgg, vgg.network.model.features[0], x)
    mean = np.array([0.485, 0.456, 0.406])[None, :, None, None]
    std = np.array([0.229, 0.224, 0.225])[None, :, None, None]
    expected = (tf1_resize(x.numpy(), 224) / 255 - mean) / std
    assert got.shape == (2, 3, 224, 224)
    assert np.abs(got - expected).max() < 1e-4


def test_bad_images_are_one_clear_error(inception):
    with pytest.raises(ConfigError, match="uint8 images"):
        inception(torch.zeros(1, 3, 8, 8))  # float
    with pytest.raises(ConfigError, match="uint8 images"):
        inception(torch.zeros(1, 4, 8, 8, dtype=torch.uint8))  # four channels
    with pytest.raises(ConfigError, match="uint8 images"):
        inception(torch.zeros(3, 8, 8, dtype=torch.uint8))  # no batch


# ------------------------------------------------------------------------------------------ toyfaces


def test_toyfaces_features_are_the_classifiers_on_converted_images():
    from latentlab import defaults
    from latentlab.attributes.toyfaces import ToyFacesClassifier

    ext = get_extractor("toyfaces")
    net = ToyFacesClassifier.from_file(defaults.classifier_path()).net
    x = random_images(3, 64, seed=1)
    with torch.no_grad():
        expected = net.features(x.float() / 127.5 - 1)  # 64 x 64 already: no resize
        x2 = torch.nn.functional.interpolate(x.float(), scale_factor=2, mode="nearest").to(torch.uint8)
        shrunk = torch.nn.functional.interpolate(
            x2.float() / 127.5 - 1, size=(64, 64), mode="bilinear", align_corners=False, antialias=True
        )
        expected2 = net.features(shrunk)
    assert ext.feature_dim == 256 and ext.name == "toyfaces"
    assert torch.allclose(ext(x), expected, atol=1e-5)
    assert torch.allclose(ext(x2), expected2, atol=1e-5)
    digest = hashlib.sha256(open(defaults.classifier_path(), "rb").read()).hexdigest()
    assert ext.cache_id == f"toyfaces-penultimate-sha256_{digest[:16]}"


# ------------------------------------------------------------------------------------------ specs


def test_resolve_extractor_spec():
    assert resolve_extractor_spec("auto", None, "fid", model_spec="toyfaces") == "toyfaces"
    assert resolve_extractor_spec("auto", None, "pr", model_spec="toyfaces") == "toyfaces"
    assert resolve_extractor_spec("auto", None, "fid", model_spec="ffhq") == "inception"
    assert resolve_extractor_spec("auto", None, "kid", model_spec="ffhq") == "inception"
    assert resolve_extractor_spec("auto", None, "pr", model_spec="ffhq") == "vgg16"
    assert resolve_extractor_spec("vgg16", None, "fid") == "vgg16"
    assert resolve_extractor_spec("clip:w.pt") == "clip:w.pt"
    with pytest.raises(ConfigError, match="unknown feature extractor 'inceptoin'"):
        resolve_extractor_spec("inceptoin")
    with pytest.raises(ConfigError, match="purpose"):
        resolve_extractor_spec("auto", None, "is")
    with pytest.raises(ConfigError, match="resolve 'auto' first"):
        get_extractor("auto")


def test_clip_needs_a_local_file_and_its_package(monkeypatch, tmp_path):
    pytest.importorskip("open_clip")
    with pytest.raises(ConfigError, match="clip:WEIGHTS"):
        get_extractor("clip")
    with pytest.raises(FileNotFoundError, match="no such CLIP weights file"):
        get_extractor(f"clip:{tmp_path / 'missing.bin'}")
    monkeypatch.setitem(__import__("sys").modules, "open_clip", None)  # as if not installed
    with pytest.raises(MissingDependency, match="pip install open_clip_torch"):
        get_extractor("clip")


def test_missing_torch_fidelity_is_one_line(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torch_fidelity", None)
    with pytest.raises(MissingDependency, match="pip install torch-fidelity"):
        get_extractor("inception-untrained")


def test_known_weights_are_the_libraries_files():
    """Our URLs are the ones torch-fidelity and torchvision download, and the prefixes the ones their names carry."""
    import torchvision
    from torch_fidelity import feature_extractor_inceptionv3

    assert W.INCEPTION.url == feature_extractor_inceptionv3.URL_INCEPTION_V3
    assert W.VGG16.url == torchvision.models.VGG16_Weights.IMAGENET1K_V1.url
    for w in W.KNOWN_WEIGHTS.values():
        assert W.hash_prefix_in_name(w.filename) == w.sha256_prefix
    assert W.hash_prefix_in_name("model.pth") is None


# ------------------------------------------------------------------------------------------ weights


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(folder, base URL): files put into the folder are served from 127.0.0.1."""
    folder = tmp_path_factory.mktemp("served")
    handler = lambda *a, **k: _Files(*a, directory=str(folder), **k)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh latentlab cache and torch hub folder."""
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def publish(server, stem, obj, monkeypatch, prefix=None):
    """torch.save `obj` into the served folder under a torch.hub-style name; make it the 'inception' download."""
    folder, base = server
    staging = folder / f"{stem}.tmp"
    torch.save(obj, staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    name = f"{stem}-{digest[:8]}.pth"
    os.replace(staging, folder / name)
    entry = W.MetricWeights("inception", f"{base}/{name}", prefix or digest[:8], "a test Inception")
    monkeypatch.setitem(W.KNOWN_WEIGHTS, "inception", entry)
    return entry


@pytest.fixture(scope="module")
def changed_state(inception):
    """The untrained Inception's weights with one late layer changed, so that its pool3 features change."""
    state = {k: v.clone() for k, v in inception.network.state_dict().items()}
    state["Mixed_7c.branch_pool.conv.weight"] *= -2.0
    return state


def test_downloaded_weights_are_verified_loaded_and_used(server, cache, monkeypatch, inception, changed_state):
    entry = publish(server, "weights-good", changed_state, monkeypatch)
    ext = get_extractor("inception", progress=False)
    cached = os.path.join(str(cache / "cache"), "metrics", entry.filename)
    assert os.path.isfile(cached)
    assert ext.cache_id == f"inception-pool3-sha256_{entry.sha256_prefix}" and ext.name == "inception"
    # independently: torch-fidelity's own network class with the same state dict loaded the plain way
    reference = get_extractor("inception-untrained").network
    reference.load_state_dict(changed_state)
    x = random_images(2, 64, seed=7)
    with torch.no_grad():
        expected = reference(x)[0]
    got = ext(x)
    assert torch.equal(got, expected)
    assert (got - inception(x)).abs().max() > 1e-3  # the downloaded weights are really in use
    # the second time, the cached file is used: nothing is downloaded (the server no longer has it)
    os.unlink(server[0] / entry.filename)
    again = get_extractor("inception", progress=False).network.state_dict()
    assert all(torch.equal(again[k], v) for k, v in changed_state.items())


def test_wrong_hash_prefix_is_refused_and_removed(server, cache, monkeypatch, changed_state):
    entry = publish(server, "weights-hash", {"fc.bias": torch.zeros(3)}, monkeypatch, prefix="00000000")
    with pytest.raises(CheckpointError, match="does not start with 00000000.*the download was removed") as e:
        get_extractor("inception", progress=False)
    assert "\n" not in str(e.value) and entry.url in str(e.value)
    assert not os.path.exists(os.path.join(str(cache / "cache"), "metrics", entry.filename))


def test_wrong_shapes_are_refused(server, cache, monkeypatch, changed_state):
    state = dict(changed_state, **{"fc.weight": torch.zeros(1000, 2048)})
    publish(server, "weights-shape", state, monkeypatch)
    with pytest.raises(
        CheckpointError, match=r"weights-shape-.*'fc.weight' has shape \[1000, 2048\], expected \[1008, 2048\]"
    ):
        get_extractor("inception", progress=False)


def test_wrong_keys_are_refused(server, cache, monkeypatch):
    publish(server, "weights-keys", {"fc.weight": torch.zeros(1008, 2048)}, monkeypatch)
    with pytest.raises(CheckpointError, match=r"weights-keys-.*is missing"):
        get_extractor("inception", progress=False)


class _Planted:
    """Unpickling this would create a folder: the proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_a_pickle_with_code_is_refused_without_running_it(server, cache, monkeypatch):
    marker = str(cache / "code-ran")
    publish(server, "weights-code", {"fc.weight": _Planted(marker)}, monkeypatch)
    with pytest.raises(CheckpointError, match="weights-code-.*not a readable") as e:
        get_extractor("inception", progress=False)
    assert "\n" not in str(e.value)
    assert not os.path.exists(marker)


def test_offline_names_the_url_and_the_place(cache, monkeypatch):
    entry = W.MetricWeights("inception", "http://127.0.0.1:9/weights-x-01234567.pth", "01234567", "a test Inception")
    monkeypatch.setitem(W.KNOWN_WEIGHTS, "inception", entry)
    with pytest.raises(MissingWeights) as e:
        get_extractor("inception", progress=False)
    msg = str(e.value)
    assert "\n" not in msg and entry.url in msg
    assert os.path.join(str(cache / "cache"), "metrics", "weights-x-01234567.pth") in msg


def test_torch_hub_copy_is_used_in_place_and_a_bad_cached_file_is_named(cache):
    data = b"some weights"
    prefix = hashlib.sha256(data).hexdigest()[:8]
    entry = W.MetricWeights("x", f"http://127.0.0.1:9/x-{prefix}.pth", prefix, "a test file")
    hub = cache / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / entry.filename).write_bytes(data)
    assert W.weights_file(entry, progress=False) == str(hub / entry.filename)
    (hub / entry.filename).write_bytes(b"other bytes!")  # same size, new content
    with pytest.raises(CheckpointError, match=f"does not start with {prefix}.*delete it"):
        W.weights_file(entry, progress=False)
    assert (hub / entry.filename).exists()  # never deleted: not ours
