"""Attribute classifiers: preprocessing by hand, names/aliases, ResNet/TorchScript/CLIP/table loaders,
NVIDIA's CelebA-HQ classifiers against the official v1 D outputs and a hand-mapped StyleGAN1Discriminator."""

import json
import math
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import FIXTURES, assert_matches_official
from latentlab.attributes import (
    CELEBA_40,
    CELEBA_NAME,
    IMAGENET_MEAN,
    IMAGENET_STD,
    NVIDIA_ATTRIBUTES,
    ClipZeroShotClassifier,
    MissingDependency,
    NvidiaCelebAHQClassifier,
    Preprocess,
    ResNetAttributeClassifier,
    TableScores,
    TorchScriptClassifier,
    load_classifier,
)
from latentlab.checkpoints.safe_pickle import TFNetwork, load_pickle
from latentlab.errors import CheckpointError
from latentlab.models.stylegan1 import StyleGAN1Discriminator

SG1 = os.path.join(FIXTURES, "sg1_32.pkl")


# ----------------------------------------------------------------------------------------------
# Preprocess


def test_box_resize_averages_cells_by_hand():
    x = torch.arange(32, dtype=torch.float32).reshape(1, 2, 4, 4)
    y = Preprocess(resize=2, resize_mode="box")(x)
    c0 = [[(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4], [(8 + 9 + 12 + 13) / 4, (10 + 11 + 14 + 15) / 4]]
    assert y.shape == (1, 2, 2, 2)
    assert y[0, 0].tolist() == c0
    assert y[0, 1].tolist() == [[v + 16 for v in row] for row in c0]
    # the separability metric's 1024 -> 256 case, here 16 -> 4 (factor 4), against a numpy loop
    img = torch.randn(3, 3, 16, 16)
    got = Preprocess(resize=4, resize_mode="box")(img).numpy()
    want = np.zeros((3, 3, 4, 4), np.float32)
    a = img.numpy()
    for i in range(4):
        for j in range(4):
            want[:, :, i, j] = a[:, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].mean(axis=(2, 3))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="integer factor"):
        Preprocess(resize=5, resize_mode="box")(img)
    with pytest.raises(ValueError, match="integer factor"):
        Preprocess(resize=32, resize_mode="box")(img)  # no upsampling by box


def test_range_conversion_normalisation_crop_and_gray():
    x = torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 1, 1, 3)
    assert Preprocess(input_range=(0, 255))(x).flatten().tolist() == [0.0, 127.5, 255.0]
    assert Preprocess(input_range=(0, 1))(x).flatten().tolist() == [0.0, 0.5, 1.0]
    assert torch.equal(Preprocess()(x), x)
    over = torch.tensor([-1.2, 1.3]).reshape(1, 1, 1, 2)
    assert Preprocess(input_range=(0, 1), clamp=True)(over).flatten().tolist() == [0.0, 1.0]

    rgb = torch.zeros(1, 3, 2, 2)  # generator 0 -> 0.5 in [0, 1] -> ImageNet-normalised
    out = Preprocess(input_range=(0, 1), mean=IMAGENET_MEAN, std=IMAGENET_STD)(rgb)
    for c in range(3):
        assert out[0, c, 0, 0].item() == pytest.approx((0.5 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], abs=1e-6)

    img = torch.randn(2, 3, 8, 8)
    crop = Preprocess(crop=(0.25, 0.5, 0.5, 0.5))(img)
    assert torch.equal(crop, img[:, :, 2:6, 4:8])
    gray = torch.randn(2, 1, 4, 4)
    g3 = Preprocess(grayscale_to_rgb=True)(gray)
    assert g3.shape == (2, 3, 4, 4) and all(torch.equal(g3[:, c], gray[:, 0]) for c in range(3))
    # crop happens before resize: crop the top-left quarter of a 8x8, then box to 2x2
    p = Preprocess(crop=(0, 0, 0.5, 0.5), resize=2, resize_mode="box")(img)
    assert torch.allclose(p, img[:, :, :4, :4].reshape(2, 3, 2, 2, 2, 2).mean(dim=(3, 5)))


def test_resize_modes_deterministic_and_differentiable():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    for mode in ("area", "bilinear", "bicubic", "box"):
        p = Preprocess(resize=8, resize_mode=mode, input_range=(0, 1), mean=IMAGENET_MEAN, std=IMAGENET_STD)
        a, b = p(x), p(x)
        assert a.shape == (2, 3, 8, 8) and torch.equal(a, b)
        (g,) = torch.autograd.grad(a.square().sum(), x)
        assert g.abs().sum() > 0
    # a constant image stays constant under every downsampling
    const = torch.full((1, 3, 32, 32), 0.3)
    for mode in ("area", "bilinear", "bicubic", "box"):
        assert torch.allclose(Preprocess(resize=8, resize_mode=mode)(const), torch.full((1, 3, 8, 8), 0.3), atol=1e-6)
    assert Preprocess(resize=(4, 8), resize_mode="area")(x).shape == (2, 3, 4, 8)


def test_preprocess_rejects_bad_settings_and_images():
    for bad in (
        dict(resize_mode="nearest"),
        dict(resize=0),
        dict(resize=(3,)),
        dict(mean=(0.5,)),
        dict(mean=(0.5, 0.5), std=(1.0,)),
        dict(mean=(0.5,), std=(0.0,)),
        dict(crop=(0.5, 0, 0.6, 1)),
        dict(crop=(0, 0, 0, 1)),
        dict(input_range=(1, 0)),
        dict(input_range=(0, float("nan"))),
    ):
        with pytest.raises(ValueError):
            Preprocess(**bad)
    p = Preprocess()
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        p(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="float"):
        p(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="channels"):
        Preprocess(mean=IMAGENET_MEAN, std=IMAGENET_STD)(torch.zeros(1, 1, 4, 4))
    q = Preprocess(
        resize=(16, 8),
        resize_mode="bilinear",
        crop=(0.1, 0.2, 0.5, 0.5),
        input_range=(0, 255),
        mean=(1, 2, 3),
        std=(4, 5, 6),
    )
    assert Preprocess.from_dict(json.loads(json.dumps(q.to_dict()))) == q
    with pytest.raises(ValueError, match="unknown preprocess"):
        Preprocess.from_dict({"size": 3})


# ----------------------------------------------------------------------------------------------
# Names, aliases, select


def test_celeba_names_and_aliases():
    assert len(CELEBA_40) == 40 == len(set(CELEBA_40))
    assert (CELEBA_40[0], CELEBA_40[20], CELEBA_40[31], CELEBA_40[39]) == (
        "5_o_Clock_Shadow",
        "Male",
        "Smiling",
        "Young",
    )
    clf = ResNetAttributeClassifier(preprocess=Preprocess())
    assert clf.index("Smiling") == 31 and clf.index("smile") == 31 and clf.index("gender") == 20
    assert clf.index("wavy-hair") == CELEBA_40.index("Wavy_Hair")
    with pytest.raises(ValueError, match="Smiling"):  # lists the names
        clf.index("dimples")
    with pytest.raises(ValueError, match="opposite of 'Young'"):
        clf.index("age")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        full = clf(x)
        sub = clf.select(["age", "Smiling", "beard"])
        part = sub(x)
    assert sub.names == ["age", "Smiling", "beard"]
    assert torch.equal(part[:, 0], -full[:, 39]) and torch.equal(part[:, 1], full[:, 31])
    assert torch.equal(part[:, 2], -full[:, CELEBA_40.index("No_Beard")])
    assert sub.index("Smiling") == 1 and sub.preprocess is clf.preprocess
    with pytest.raises(ValueError, match="unique"):
        clf.select(["smile", "smile"])


# ----------------------------------------------------------------------------------------------
# ResNet


def test_resnet_default_preprocess_and_forward_by_hand():
    torch.manual_seed(0)
    clf = ResNetAttributeClassifier("resnet18")
    p = clf.preprocess
    assert p.resize == (224, 224) and p.input_range == (0.0, 1.0) and p.mean == IMAGENET_MEAN and p.std == IMAGENET_STD
    assert len(clf.names) == 40 and clf.net.fc.out_features == 40 and not clf.training
    x = torch.rand(2, 3, 224, 224) * 2 - 1
    mean, std = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    with torch.no_grad():
        got, want = clf(x), clf.net(((x + 1) / 2 - mean) / std)
    assert got.dtype == torch.float32 and got.shape == (2, 40)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("prefix", ["", "module.", "model."])
def test_resnet_from_file_prefixes_and_inferred_arch(tmp_path, prefix):
    torch.manual_seed(1)
    ref = ResNetAttributeClassifier("resnet18", preprocess=Preprocess(resize=32))
    path = tmp_path / "clf.pt"
    torch.save({prefix + k: v for k, v in ref.net.state_dict().items()}, path)
    clf = ResNetAttributeClassifier.from_file(path, preprocess=Preprocess(resize=32))
    assert clf.arch == "resnet18" and clf.names == CELEBA_40
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(clf(x), ref(x), rtol=0, atol=0)


def test_resnet50_inferred_and_generic_names(tmp_path):
    torch.manual_seed(2)
    ref = ResNetAttributeClassifier("resnet50", names=["a", "b", "c"], preprocess=Preprocess(resize=32))
    path = tmp_path / "r50.pt"
    torch.save(ref.net.state_dict(), path)
    clf = ResNetAttributeClassifier.from_file(path, preprocess=Preprocess(resize=32))
    assert clf.arch == "resnet50" and clf.names == ["attr0", "attr1", "attr2"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(clf(x), ref(x))
    with pytest.raises(CheckpointError, match=r"r50\.pt: holds a resnet50, not a resnet18"):
        ResNetAttributeClassifier.from_file(path, arch="resnet18")
    named = load_classifier(f"resnet:{path}:resnet50")
    assert named.arch == "resnet50"


def test_resnet_bad_files(tmp_path):
    sd = ResNetAttributeClassifier("resnet18", names=["a", "b"]).net.state_dict()
    path = tmp_path / "two.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"two\.pt: key 'fc\.weight' has shape \[2, 512\]"):
        ResNetAttributeClassifier.from_file(path, names=CELEBA_40)
    bad = dict(sd)
    bad["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(bad, tmp_path / "conv.pt")
    with pytest.raises(CheckpointError, match=r"conv\.pt: key 'conv1\.weight' has shape"):
        ResNetAttributeClassifier.from_file(tmp_path / "conv.pt", names=["a", "b"])
    less = {k: v for k, v in sd.items() if k != "bn1.running_mean"}
    torch.save(less, tmp_path / "less.pt")
    with pytest.raises(CheckpointError, match=r"less\.pt: key 'bn1\.running_mean' is missing"):
        ResNetAttributeClassifier.from_file(tmp_path / "less.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"list\.pt: not a state dict"):
        ResNetAttributeClassifier.from_file(tmp_path / "list.pt")
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(types.SimpleNamespace(a=1), protocol=2))
    with pytest.raises(CheckpointError, match=r"evil\.pt: not a readable state dict"):
        ResNetAttributeClassifier.from_file(tmp_path / "evil.pt")
    vgg_like = {"features.0.weight": torch.zeros(3)}
    torch.save(vgg_like, tmp_path / "vgg.pt")
    with pytest.raises(CheckpointError, match=r"vgg\.pt: not a supported torchvision ResNet"):
        ResNetAttributeClassifier.from_file(tmp_path / "vgg.pt")
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        ResNetAttributeClassifier.from_file(tmp_path / "nothere.pt")


# ----------------------------------------------------------------------------------------------
# TorchScript


class _TinyNet(torch.nn.Module):
    def __init__(self, outputs):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, outputs)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_probe_names_and_forward(tmp_path):
    torch.manual_seed(3)
    net = _TinyNet(3).eval()
    path = tmp_path / "clf.ts"
    torch.jit.save(torch.jit.script(net), str(path))
    pre = Preprocess(resize=16, resize_mode="area", input_range=(0, 1))
    clf = TorchScriptClassifier(path, preprocess=pre, trust_code=True)
    assert clf.names == ["attr0", "attr1", "attr2"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = net(F.adaptive_avg_pool2d((x + 1) / 2, 16))
        torch.testing.assert_close(clf(x), want)
    named = TorchScriptClassifier(path, names=["smile", "age", "hat"], preprocess=pre, trust_code=True)
    assert named.index("smile") == 0
    wrong = TorchScriptClassifier(path, names=["a", "b"], preprocess=pre, trust_code=True)
    with pytest.raises(ValueError, match=r"returned \(2, 3\), expected \[2, 2\]"):
        wrong(x)
    with pytest.raises(ValueError, match="resize"):
        TorchScriptClassifier(path, preprocess=Preprocess(), trust_code=True)
    torch.save({"a": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match=r"plain\.pt: not a TorchScript file"):
        TorchScriptClassifier(tmp_path / "plain.pt", names=["a"], trust_code=True)
    assert load_classifier(f"torchscript:{path}", trust_code=True).names == ["attr0", "attr1", "attr2"]


# ----------------------------------------------------------------------------------------------
# CLIP zero-shot


class FakeClip:
    """encode_image: mean colour projected to 3-D; encode_text: a fixed vector per prompt."""

    def __init__(self, text_vectors, scale=100.0):
        self.text_vectors = text_vectors
        self.logit_scale = torch.tensor(math.log(scale))
        self.proj = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.2, 0.0, 1.0]])

    def encode_image(self, x):
        return x.mean(dim=(2, 3)) @ self.proj

    def encode_text(self, texts):
        return torch.tensor([self.text_vectors[t] for t in texts])


def test_clip_scores_are_scaled_cosine_differences():
    vecs = {"smiling": [1.0, 0.0, 0.0], "neutral": [0.0, 1.0, 0.0], "old": [0.0, 0.0, 2.0], "young": [1.0, 1.0, 0.0]}
    prompts = {"smile": ("smiling", "neutral"), "age": ["old", "young"]}
    fake = FakeClip(vecs, scale=100.0)
    clf = ClipZeroShotClassifier(prompts, encoder=fake, preprocess=Preprocess())
    assert clf.names == ["smile", "age"]
    x = torch.randn(3, 3, 4, 4, requires_grad=True)
    got = clf(x)
    img = (x.detach().mean(dim=(2, 3)) @ fake.proj).numpy().astype(np.float64)

    def cos(a, b):
        b = np.asarray(b, np.float64)
        return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))

    want = [
        [100 * (cos(v, vecs[p]) - cos(v, vecs[n])) for p, n in (("smiling", "neutral"), ("old", "young"))] for v in img
    ]
    np.testing.assert_allclose(got.detach().numpy(), np.array(want), rtol=1e-5, atol=1e-4)
    (g,) = torch.autograd.grad(got.sum(), x)
    assert g.abs().sum() > 0
    # pair softmax = sigmoid(score): swapping the prompts negates the score
    swapped = ClipZeroShotClassifier({"smile": ("neutral", "smiling")}, encoder=fake, preprocess=Preprocess())
    torch.testing.assert_close(swapped(x).detach()[:, 0], -got.detach()[:, 0])


def test_clip_prompts_file_tokenizer_and_errors(tmp_path):
    vecs = {"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.0]}
    fake = FakeClip(vecs)
    pfile = tmp_path / "prompts.json"
    pfile.write_text(json.dumps({"smile": ["A", "B"]}))
    seen = []

    def tok(texts):
        seen.append(list(texts))
        return [t.lower() for t in texts]

    clf = ClipZeroShotClassifier(str(pfile), encoder=fake, tokenizer=tok)
    assert seen == [["A", "B"]] and clf.names == ["smile"]
    p = clf.preprocess  # CLIP's own preprocessing by default
    assert p.resize == (224, 224) and p.input_range == (0.0, 1.0) and p.mean[0] == pytest.approx(0.48145466)
    for bad in ({"smile": "a photo"}, {"smile": ("a", "")}, {}, {"smile": ("a", "b", "c")}):
        with pytest.raises(ValueError):
            ClipZeroShotClassifier(bad, encoder=fake)
    pfile.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ClipZeroShotClassifier(str(pfile), encoder=fake)


def test_clip_without_open_clip_says_how_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "open_clip", None)  # as if open_clip were not installed: importing it fails
    with pytest.raises(MissingDependency, match="pip install open_clip_torch") as e:
        ClipZeroShotClassifier({"smile": ("a", "b")}, weights=tmp_path / "w.pt")
    assert isinstance(e.value, ImportError)
    with pytest.raises(ImportError, match="open_clip_torch"):
        load_classifier(f"clip:{tmp_path / 'w.pt'}:{tmp_path / 'p.json'}")


@pytest.mark.slow
def test_clip_with_open_clip_and_local_random_weights(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32")  # random weights, nothing downloaded
    path = tmp_path / "vitb32.pt"
    torch.save(model.state_dict(), path)
    clf = ClipZeroShotClassifier({"smile": ("a smiling face", "a neutral face")}, model_name="ViT-B-32", weights=path)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        got = clf(x)
        tok = open_clip.get_tokenizer("ViT-B-32")
        img = F.normalize(clf.encoder.encode_image(clf.preprocess(x)).float(), dim=-1)
        txt = F.normalize(clf.encoder.encode_text(tok(["a smiling face", "a neutral face"])).float(), dim=-1)
        sims = img @ txt.T
        want = clf.encoder.logit_scale.exp() * (sims[:, :1] - sims[:, 1:])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    with pytest.raises(FileNotFoundError):
        ClipZeroShotClassifier({"smile": ("a", "b")}, weights="openai")  # tags would download: refused


# ----------------------------------------------------------------------------------------------
# Table scores


def test_table_scores_csv(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("seed,Smiling,Young,label\n0,1.5,-2.0,x\n1,-0.5,3.0,y\n7,2.0,0.25,z\n")
    t = TableScores(path)
    assert t.names == ["Smiling", "Young"] and len(t) == 3  # numeric columns only
    np.testing.assert_array_equal(t.scores_for([7, 0]), np.array([[2.0, 0.25], [1.5, -2.0]], np.float32))
    assert t.scores_for(np.array([1])).dtype == np.float32
    assert t.index("smile") == 0
    with pytest.raises(ValueError, match=r"no scores for 2 seed\(s\): 3, 99"):
        t.scores_for([0, 3, 99])
    aged = t.select(["age", "smile"])
    assert aged.names == ["age", "smile"]
    np.testing.assert_array_equal(aged.scores_for([1]), np.array([[-3.0, -0.5]], np.float32))
    only = TableScores(path, names=["Young"])
    np.testing.assert_array_equal(only.scores_for([0, 1]), np.array([[-2.0], [3.0]], np.float32))
    with pytest.raises(ValueError, match="not numeric"):
        TableScores(path, names=["label"])
    with pytest.raises(ValueError, match="unknown attribute 'Bald'"):
        TableScores(path, names=["Bald"])
    with pytest.raises(ValueError, match="no key column 'id'"):
        TableScores(path, key="id")
    assert load_classifier(f"table:{path}").names == ["Smiling", "Young"]


def test_table_scores_bad_tables(tmp_path):
    import pandas as pd

    with pytest.raises(ValueError, match="appears more than once"):
        TableScores(pd.DataFrame({"seed": [1, 1], "a": [0.0, 1.0]}))
    with pytest.raises(ValueError, match="integer seeds"):
        TableScores(pd.DataFrame({"seed": [1.5, 2.0], "a": [0.0, 1.0]}))
    with pytest.raises(ValueError, match="non-finite score for seed 2"):
        TableScores(pd.DataFrame({"seed": [1, 2], "a": [0.0, float("nan")]}))
    (tmp_path / "s.xlsx").write_text("x")
    with pytest.raises(ValueError, match="use .csv or .parquet"):
        TableScores(tmp_path / "s.xlsx")
    with pytest.raises(FileNotFoundError):
        TableScores(tmp_path / "none.csv")


def test_table_scores_parquet(tmp_path):
    import pandas as pd

    from latentlab.utils.optional import available

    df = pd.DataFrame({"seed": [3, 4], "Male": [0.5, -1.0]})
    path = tmp_path / "s.parquet"
    if available("pyarrow") or available("fastparquet"):
        df.to_parquet(path)
        np.testing.assert_array_equal(TableScores(path).scores_for([4]), np.array([[-1.0]], np.float32))
    else:
        path.write_bytes(b"PAR1")
        with pytest.raises(MissingDependency, match="pip install pyarrow"):
            TableScores(path)


# ----------------------------------------------------------------------------------------------
# NVIDIA CelebA-HQ classifiers: single dnnlib.tflib.network.Network pickles of D_basic.


class Network:  # pickles as dnnlib.tflib.network.Network, like the official files
    __module__ = "dnnlib.tflib.network"

    def __init__(self, state):
        self._state = state

    def __getstate__(self):
        return self._state


@pytest.fixture
def official_network_global(monkeypatch):
    mods = {n: types.ModuleType(n) for n in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")}
    mods["dnnlib.tflib.network"].Network = Network
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)


def _plain(value):
    """What load_pickle returned, as plain Python/numpy objects that pickle like the originals."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return np.array(value)
    return value


def write_classifier(path, variables, static_kwargs, build_func="D_basic", version=3):
    state = dict(
        version=version,
        name="D",
        static_kwargs=static_kwargs,
        components={},
        build_module_src="# source omitted\n",
        build_func_name=build_func,
        variables=[(k, np.asarray(v, np.float32)) for k, v in variables.items()],
    )
    path.write_bytes(pickle.dumps(Network(state), protocol=2))
    return str(path)


def random_d_basic_variables(rng, resolution, fmap_base, fmap_max, channels=3):
    """The TF variables of D_basic (lod 0 and the lod > 0 FromRGB layers), written out by hand."""
    log2 = int(math.log2(resolution))
    nf = lambda s: min(int(fmap_base / 2.0**s), fmap_max)  # noqa: E731
    v = {"lod": np.float32(0.0)}
    for res in range(log2, 1, -1):  # FromRGB_lod{k} reads images at resolution 2**(log2 - k)
        v[f"FromRGB_lod{log2 - res}/weight"] = rng.standard_normal((1, 1, channels, nf(res - 1)))
        v[f"FromRGB_lod{log2 - res}/bias"] = rng.standard_normal(nf(res - 1)) * 0.1
    for res in range(log2, 2, -1):
        r = 2**res
        v[f"{r}x{r}/Conv0/weight"] = rng.standard_normal((3, 3, nf(res - 1), nf(res - 1)))
        v[f"{r}x{r}/Conv0/bias"] = rng.standard_normal(nf(res - 1)) * 0.1
        v[f"{r}x{r}/Conv1_down/weight"] = rng.standard_normal((3, 3, nf(res - 1), nf(res - 2)))
        v[f"{r}x{r}/Conv1_down/bias"] = rng.standard_normal(nf(res - 2)) * 0.1
    v["4x4/Conv/weight"] = rng.standard_normal((3, 3, nf(1) + 1, nf(1)))  # +1: minibatch-stddev feature
    v["4x4/Conv/bias"] = rng.standard_normal(nf(1)) * 0.1
    v["4x4/Dense0/weight"] = rng.standard_normal((nf(1) * 16, nf(0)))
    v["4x4/Dense0/bias"] = rng.standard_normal(nf(0)) * 0.1
    v["4x4/Dense1/weight"] = rng.standard_normal((nf(0), 1))
    v["4x4/Dense1/bias"] = rng.standard_normal(1) * 0.1
    return v


def reference_discriminator(variables, **kwargs):
    """StyleGAN1Discriminator with the TF variables mapped by hand (conv HWIO -> OIHW, dense [in, out] -> [out, in])."""
    D = StyleGAN1Discriminator(**kwargs).eval()
    conv = lambda a: torch.from_numpy(np.ascontiguousarray(np.asarray(a, np.float32).transpose(3, 2, 0, 1)))  # noqa: E731
    dense = lambda a: torch.from_numpy(np.ascontiguousarray(np.asarray(a, np.float32).T))  # noqa: E731
    vec = lambda a: torch.from_numpy(np.asarray(a, np.float32))  # noqa: E731
    sd = {
        "fromrgb.weight": conv(variables["FromRGB_lod0/weight"]),
        "fromrgb_bias": vec(variables["FromRGB_lod0/bias"]),
        "conv.weight": conv(variables["4x4/Conv/weight"]),
        "conv_bias": vec(variables["4x4/Conv/bias"]),
        "fc.weight": dense(variables["4x4/Dense0/weight"]),
        "fc.bias": vec(variables["4x4/Dense0/bias"]),
        "out.weight": dense(variables["4x4/Dense1/weight"]),
        "out.bias": vec(variables["4x4/Dense1/bias"]),
    }
    for r in D.block_resolutions:
        sd[f"b{r}.conv0.weight"] = conv(variables[f"{r}x{r}/Conv0/weight"])
        sd[f"b{r}.bias0"] = vec(variables[f"{r}x{r}/Conv0/bias"])
        sd[f"b{r}.conv1.weight"] = conv(variables[f"{r}x{r}/Conv1_down/weight"])
        sd[f"b{r}.bias1"] = vec(variables[f"{r}x{r}/Conv1_down/bias"])
    D.load_state_dict(sd, strict=True)
    return D


def test_nvidia_classifier_reproduces_official_d_outputs(tmp_path, official_network_global):
    """The v1 fixture's D is an official D_basic with label_size 0 and official outputs: alone in a file it is a classifier."""
    G, D, Gs = load_pickle(SG1)
    e = dict(np.load(os.path.join(FIXTURES, "sg1_32.expected.npz")))
    assert e["labels"].shape[1] == 0 and D.state["build_func_name"] == "D_basic"
    path = tmp_path / "celebahq-classifier-00-male.pkl"
    path.write_bytes(pickle.dumps(Network(_plain(D.state)), protocol=2))
    clf = NvidiaCelebAHQClassifier.from_files([path])
    assert clf.names == ["male"] and clf.resolution == 32
    p = clf.preprocess
    assert p.resize == (32, 32) and p.resize_mode == "box" and p.input_range == (-1.0, 1.0) and p.mean is None
    img = torch.from_numpy(e["img_const"])
    with torch.no_grad():
        assert_matches_official(clf(img), e["d_logits"], "classifier logits")
        # a 64 px image whose 2x2 cells repeat each pixel box-downsamples to exactly the 32 px one
        big = img.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        assert_matches_official(clf(big), e["d_logits"], "classifier logits from 64 px")
        probs = clf.probabilities(img)
    np.testing.assert_allclose(probs.numpy(), 1 / (1 + np.exp(-2 * e["d_logits"])), rtol=1e-4)
    assert clf.index("Male") == 0  # CelebA spelling finds NVIDIA's file name


def test_nvidia_from_files_matches_hand_mapped_discriminators(tmp_path, official_network_global):
    rng = np.random.default_rng(0)
    kw = dict(resolution=32, num_channels=3, label_size=0, fmap_base=64, fmap_max=16)
    v_male, v_smile = (random_d_basic_variables(rng, 32, 64, 16) for _ in range(2))
    f_smile = write_classifier(tmp_path / "celebahq-classifier-01-smiling.pkl", v_smile, kw)
    f_male = write_classifier(tmp_path / "celebahq-classifier-00-male.pkl", v_male, kw)
    clf = NvidiaCelebAHQClassifier.from_files([f_smile, f_male])
    assert clf.names == ["smiling", "male"] and clf.chunk == 4
    refs = [
        reference_discriminator(v, num_channels=3, resolution=32, fmap_base=64, fmap_max=16) for v in (v_smile, v_male)
    ]

    torch.manual_seed(0)
    x = torch.randn(8, 3, 128, 128) * 0.5
    small = torch.from_numpy(x.numpy().reshape(8, 3, 32, 4, 32, 4).mean(axis=(3, 5)))  # box by hand, factor 4
    with torch.no_grad():
        got = clf(x)
        # official LS metric: minibatches of 4 -> minibatch-stddev groups are [0:4] and [4:8]
        want = torch.cat([torch.cat([D(small[a:b]) for D in refs], dim=1) for a, b in ((0, 4), (4, 8))])
        whole = torch.cat([D(small) for D in refs], dim=1)  # one batch of 8: groups {0,2,4,6}, {1,3,5,7}
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        assert (got - whole).abs().max() > 1e-4  # grouping matters: chunks are not a no-op
        # a last, shorter chunk is one smaller group
        torch.testing.assert_close(
            clf(x[:7])[4:], torch.cat([D(small[4:7]) for D in refs], dim=1), rtol=1e-5, atol=1e-5
        )
        clf.chunk = None
        torch.testing.assert_close(clf(x), whole, rtol=1e-5, atol=1e-5)
        clf.chunk = 4
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(clf(x).sum(), x)
    assert g.abs().sum() > 0

    folder = load_classifier(f"nvidia:{tmp_path}")  # a folder: NVIDIA's numbering decides the order
    assert folder.names == ["male", "smiling"]
    listed = load_classifier(f"nvidia:{f_male},{f_smile}")
    with torch.no_grad():
        torch.testing.assert_close(listed(x), want[:, [1, 0]], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="integer factor"):
        listed(torch.randn(4, 3, 48, 48))


def test_nvidia_refuses_other_files(tmp_path, official_network_global):
    rng = np.random.default_rng(1)
    kw = dict(resolution=16, num_channels=3, label_size=0, fmap_base=32, fmap_max=8)
    v = random_d_basic_variables(rng, 16, 32, 8)
    g_file = write_classifier(tmp_path / "celebahq-classifier-02-attractive.pkl", v, kw, build_func="G_style")
    with pytest.raises(CheckpointError, match=r"celebahq-classifier-02-attractive\.pkl: .*built by 'G_style'"):
        NvidiaCelebAHQClassifier.from_files([g_file])
    lab = write_classifier(tmp_path / "celebahq-classifier-03-wavy-hair.pkl", v, dict(kw, label_size=2))
    with pytest.raises(CheckpointError, match=r"wavy-hair\.pkl: .*label_size"):
        NvidiaCelebAHQClassifier.from_files([lab])
    with pytest.raises(CheckpointError, match=r"sg1_32\.pkl: not an attribute classifier: .*tuple of length 3"):
        NvidiaCelebAHQClassifier.from_files([SG1], names=["x"])
    short = dict(v)
    del short["4x4/Dense1/bias"]
    missing = write_classifier(tmp_path / "celebahq-classifier-04-young.pkl", short, kw)
    with pytest.raises(CheckpointError, match=r"young\.pkl: .*lacks variable '4x4/Dense1/bias'"):
        NvidiaCelebAHQClassifier.from_files([missing])
    ok = write_classifier(tmp_path / "my_classifier.pkl", v, kw)
    with pytest.raises(ValueError, match="celebahq-classifier-<NN>-<attribute>.pkl"):
        NvidiaCelebAHQClassifier.from_files([ok])
    assert NvidiaCelebAHQClassifier.from_files([ok], names=["young"]).names == ["young"]
    with pytest.raises(FileNotFoundError):
        NvidiaCelebAHQClassifier.from_files([tmp_path / "celebahq-classifier-09-bangs.pkl"])


def test_nvidia_attribute_order_is_not_celeba_order():
    assert len(NVIDIA_ATTRIBUTES) == 40 and sorted(CELEBA_NAME.values()) == sorted(CELEBA_40)
    assert [CELEBA_NAME[n] for n in NVIDIA_ATTRIBUTES[:5]] == ["Male", "Smiling", "Attractive", "Wavy_Hair", "Young"]
    rest = [CELEBA_NAME[n] for n in NVIDIA_ATTRIBUTES[5:]]
    assert rest == [c for c in CELEBA_40 if c not in ("Male", "Smiling", "Attractive", "Wavy_Hair", "Young")]


# ----------------------------------------------------------------------------------------------
# Specs


def test_load_classifier_rejects_unknown_specs(tmp_path):
    for spec in ("resnet", "foo:bar", "", "clip:onlyone"):
        with pytest.raises((ValueError, ImportError)) as e:
            load_classifier(spec)
        if spec != "clip:onlyone":
            assert "resnet:PATH[:ARCH]" in str(e.value) and "nvidia:" in str(e.value)
    with pytest.raises(FileNotFoundError):
        load_classifier(f"resnet:{tmp_path / 'none.pt'}")


def test_tfnetwork_pickles_are_read_without_running_code(tmp_path, official_network_global):
    """A classifier file naming any other global is refused by the restricted unpickler."""
    path = tmp_path / "celebahq-classifier-00-male.pkl"
    path.write_bytes(pickle.dumps(types.SimpleNamespace(x=1), protocol=2))
    with pytest.raises(CheckpointError, match="refuses global 'types.SimpleNamespace'"):
        NvidiaCelebAHQClassifier.from_files([path])
    assert isinstance(load_pickle(write_classifier(tmp_path / "c.pkl", {"lod": 0.0}, {})), TFNetwork)
