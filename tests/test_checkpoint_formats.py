"""Reading official checkpoint files: format detection, names/shapes/layouts, and safety.

Expected names and shapes are derived here from the architecture alone (the
rules of stylegan2-ada-pytorch's networks), not from the reader's code.
Variants of the fixtures are written with fake `torch_utils` / `dnnlib`
modules so that the files carry exactly the globals official pickles carry.
"""

import ast
import collections
import json
import os
import pickle
import re
import sys
import types

import numpy as np
import pytest
import torch

from latentlab.checkpoints import safe_pickle
from latentlab.checkpoints.formats import NetworkRecord, RawCheckpoint, read_checkpoint
from latentlab.checkpoints.safe_pickle import PersistentObject, TFNetwork, load_pickle
from latentlab.checkpoints.tags import FORMAT_SG1_TF, FORMAT_SG2_PYTORCH, FORMAT_SG2_TF
from latentlab.errors import CheckpointError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "official")
ADA = os.path.join(FIXTURES, "sg2ada_skip32.pkl")
TF = os.path.join(FIXTURES, "tf_sg2_16.pkl")
SG1 = os.path.join(FIXTURES, "sg1_32.pkl")

# tf_sg2_16 (fixtures README): 16x16 RGB, latent/dlatent 32, 2 mapping layers, fmap_base 256, fmap_max 32, skip G, resnet D.
TF_ARCH = dict(z_dim=32, c_dim=0, w_dim=32, res=16, img_ch=3, num_layers=2, channel_base=2 * 256, channel_max=32)


# ----------------------------------------------------------------------------------------------
# Expected PyTorch names and shapes, from the architecture rules.


def generator_shapes(
    z_dim,
    c_dim,
    w_dim,
    res,
    img_ch,
    num_layers,
    channel_base,
    channel_max,
    arch="skip",
    layer_features=None,
    embed=None,
    use_noise=True,
):
    def ch(r):
        return min(channel_base // r, channel_max)

    s = {}
    emb = (embed or w_dim) if c_dim else 0
    feats = [z_dim + emb] + [layer_features or w_dim] * (num_layers - 1) + [w_dim]
    if c_dim:
        s["mapping.embed.weight"], s["mapping.embed.bias"] = (emb, c_dim), (emb,)
    for i in range(num_layers):
        s[f"mapping.fc{i}.weight"], s[f"mapping.fc{i}.bias"] = (feats[i + 1], feats[i]), (feats[i + 1],)
    s["mapping.w_avg"] = (w_dim,)
    r = 4
    while r <= res:
        b = f"synthesis.b{r}"
        s[f"{b}.resample_filter"] = (4, 4)
        convs = [("conv1", ch(4), ch(4))] if r == 4 else [("conv0", ch(r // 2), ch(r)), ("conv1", ch(r), ch(r))]
        if r == 4:
            s[f"{b}.const"] = (ch(4), 4, 4)
        for name, cin, cout in convs:
            p = f"{b}.{name}"
            s[f"{p}.weight"], s[f"{p}.bias"] = (cout, cin, 3, 3), (cout,)
            s[f"{p}.affine.weight"], s[f"{p}.affine.bias"] = (cin, w_dim), (cin,)
            s[f"{p}.resample_filter"] = (4, 4)
            if use_noise:
                s[f"{p}.noise_strength"], s[f"{p}.noise_const"] = (), (r, r)
        if arch == "skip" or r == res:
            s[f"{b}.torgb.weight"], s[f"{b}.torgb.bias"] = (img_ch, ch(r), 1, 1), (img_ch,)
            s[f"{b}.torgb.affine.weight"], s[f"{b}.torgb.affine.bias"] = (ch(r), w_dim), (ch(r),)
        if arch == "resnet" and r > 4:
            s[f"{b}.skip.weight"], s[f"{b}.skip.resample_filter"] = (ch(r), ch(r // 2), 1, 1), (4, 4)
        r *= 2
    return s


def discriminator_shapes(
    c_dim, res, img_ch, channel_base, channel_max, arch="resnet", mbstd=1, cmap=None, map_layers=0
):
    def ch(r):
        return min(channel_base // r, channel_max)

    s = {}
    r = res
    while r > 4:
        b, tmp, out = f"b{r}", ch(r), ch(r // 2)
        s[f"{b}.resample_filter"] = (4, 4)
        if r == res or arch == "skip":
            s[f"{b}.fromrgb.weight"], s[f"{b}.fromrgb.bias"] = (tmp, img_ch, 1, 1), (tmp,)
            s[f"{b}.fromrgb.resample_filter"] = (4, 4)
        s[f"{b}.conv0.weight"], s[f"{b}.conv0.bias"], s[f"{b}.conv0.resample_filter"] = (tmp, tmp, 3, 3), (tmp,), (4, 4)
        s[f"{b}.conv1.weight"], s[f"{b}.conv1.bias"], s[f"{b}.conv1.resample_filter"] = (out, tmp, 3, 3), (out,), (4, 4)
        if arch == "resnet":
            s[f"{b}.skip.weight"], s[f"{b}.skip.resample_filter"] = (out, tmp, 1, 1), (4, 4)
        r //= 2
    c4 = ch(4)
    cmap = (cmap or c4) if c_dim else 0
    if c_dim:
        s["mapping.embed.weight"], s["mapping.embed.bias"] = (cmap, c_dim), (cmap,)
        for i in range(map_layers):
            s[f"mapping.fc{i}.weight"], s[f"mapping.fc{i}.bias"] = (cmap, cmap), (cmap,)
    if arch == "skip":
        s["b4.fromrgb.weight"], s["b4.fromrgb.bias"], s["b4.fromrgb.resample_filter"] = (
            (c4, img_ch, 1, 1),
            (c4,),
            (4, 4),
        )
    s["b4.conv.weight"], s["b4.conv.bias"], s["b4.conv.resample_filter"] = (c4, c4 + mbstd, 3, 3), (c4,), (4, 4)
    s["b4.fc.weight"], s["b4.fc.bias"] = (c4, c4 * 16), (c4,)
    s["b4.out.weight"], s["b4.out.bias"] = (cmap or 1, c4), (cmap or 1,)
    return s


def shapes(record):
    return {k: tuple(v.shape) for k, v in record.state.items()}


def ada_arch():
    with open(os.path.join(FIXTURES, "sg2ada_skip32.json")) as f:
        meta = json.load(f)
    g, d = ast.literal_eval(meta["G_kwargs"]), ast.literal_eval(meta["D_kwargs"])
    return g, d


# ----------------------------------------------------------------------------------------------
# Writing official-looking pickles: fake modules make pickle emit the official global names.


def _reconstruct_persistent_obj(meta):  # pickles as torch_utils.persistence._reconstruct_persistent_obj
    raise AssertionError("never called")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"


class EasyDict(dict):  # pickles as dnnlib.util.EasyDict
    __module__ = "dnnlib.util"


class Network:  # pickles as dnnlib.tflib.network.Network
    __module__ = "dnnlib.tflib.network"

    def __init__(self, state):
        self._state = state

    def __getstate__(self):
        return self._state


class _Persistent:
    def __init__(self, meta):
        self.meta = meta

    def __reduce__(self):
        return (_reconstruct_persistent_obj, (self.meta,))


class _Reduce:
    """An object that pickles as `func(*args)`: how a hostile file makes the unpickler call things."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.fixture
def official_globals(monkeypatch):
    """Register fake torch_utils.persistence / dnnlib modules so pickle.dumps can write the official global names."""
    mods = {
        name: types.ModuleType(name)
        for name in (
            "torch_utils",
            "torch_utils.persistence",
            "dnnlib",
            "dnnlib.util",
            "dnnlib.tflib",
            "dnnlib.tflib.network",
        )
    }
    for obj in (_reconstruct_persistent_obj, EasyDict, Network):
        setattr(mods[obj.__module__], obj.__name__, obj)
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return mods


def to_official(obj):
    """Turn what `load_pickle` returned back into objects that pickle like the official ones."""
    if isinstance(obj, PersistentObject):
        meta = dict(
            type="class",
            version=obj.version,
            module_src="# source omitted\n",
            class_name=obj.class_name,
            state=to_official(obj.state),
        )
        return _Persistent(meta)
    if isinstance(obj, TFNetwork):
        return Network(to_official(obj.state))
    if isinstance(obj, safe_pickle.EasyDict):
        return EasyDict({k: to_official(v) for k, v in obj.items()})
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, to_official(v)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: to_official(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_official(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_official(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return np.array(obj)  # plain ndarray again
    return obj


def write(tmp_path, obj, name="ckpt.pkl", protocol=4):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return str(path)


def module_state(obj, *names):
    """The state dict of a nested persistent module, e.g. module_state(G, 'synthesis', 'b8')."""
    for n in names:
        obj = obj.state["_modules"][n]
    return obj.state


def tf_vars(net):
    return dict(net.state["variables"])


def set_tf_vars(net, variables):
    net.state["variables"] = list(variables.items())


# ----------------------------------------------------------------------------------------------
# Fixtures: format detection, names, shapes, values.


@pytest.fixture(scope="module")
def ada():
    return read_checkpoint(ADA)


@pytest.fixture(scope="module")
def tf():
    return read_checkpoint(TF)


def test_detects_pytorch_pickle(ada):
    assert isinstance(ada, RawCheckpoint)
    assert ada.format == FORMAT_SG2_PYTORCH and ada.path == ADA
    assert sorted(ada.networks) == ["D", "G", "G_ema"]
    assert all(isinstance(r, NetworkRecord) for r in ada.networks.values())
    assert ada.networks["G"].class_name == ada.networks["G_ema"].class_name == "Generator"
    assert ada.networks["D"].class_name == "Discriminator"
    assert ada.extras["training_set_kwargs"]["resolution"] == 32
    assert type(ada.extras["training_set_kwargs"]) is dict
    assert ada.extras["augment_pipe"]["class_name"] == "AugmentPipe"


def test_detects_tf_pickle(tf):
    assert tf.format == FORMAT_SG2_TF and tf.path == TF
    assert sorted(tf.networks) == ["D", "G", "G_ema"]
    assert tf.extras["truncation_psi"] == 0.5 and tf.extras["truncation_cutoff"] is None
    assert tf.extras["tf_static_kwargs"]["Gs"]["fmap_base"] == 256


def test_pytorch_names_and_shapes_follow_architecture(ada):
    g, d = ada_arch()
    want_g = generator_shapes(
        g["z_dim"],
        g["c_dim"],
        g["w_dim"],
        g["img_resolution"],
        g["img_channels"],
        g["mapping_kwargs"]["num_layers"],
        g["synthesis_kwargs"]["channel_base"],
        g["synthesis_kwargs"]["channel_max"],
        arch=g["synthesis_kwargs"]["architecture"],
    )
    want_d = discriminator_shapes(
        d["c_dim"], d["img_resolution"], d["img_channels"], d["channel_base"], d["channel_max"], arch=d["architecture"]
    )
    assert shapes(ada.networks["G"]) == want_g
    assert shapes(ada.networks["G_ema"]) == want_g
    assert shapes(ada.networks["D"]) == want_d


def test_pytorch_init_kwargs_are_plain(ada):
    g, d = ada_arch()
    assert ada.networks["G_ema"].init_kwargs == g
    assert ada.networks["D"].init_kwargs == d

    def plain(v):
        if isinstance(v, dict):
            return type(v) is dict and all(isinstance(k, str) and plain(x) for k, x in v.items())
        if isinstance(v, list):
            return all(plain(x) for x in v)
        return v is None or type(v) in (bool, int, float, str)

    assert all(plain(r.init_kwargs) for r in ada.networks.values())


def test_state_is_float32_cpu_and_matches_file(ada):
    raw = load_pickle(ADA)
    for rec in ada.networks.values():
        for t in rec.state.values():
            assert t.dtype == torch.float32 and t.device.type == "cpu" and t.is_contiguous()
    fc0 = module_state(raw["G_ema"], "mapping", "fc0")["_parameters"]["weight"]
    assert torch.equal(ada.networks["G_ema"].state["mapping.fc0.weight"], fc0)
    noise = module_state(raw["G_ema"], "synthesis", "b8", "conv0")["_buffers"]["noise_const"]
    assert torch.equal(ada.networks["G_ema"].state["synthesis.b8.conv0.noise_const"], noise)


def test_tf_names_and_shapes_follow_architecture(tf):
    want_g = generator_shapes(**TF_ARCH, arch="skip")
    assert shapes(tf.networks["G"]) == want_g
    assert shapes(tf.networks["G_ema"]) == want_g
    want_d = discriminator_shapes(0, 16, 3, TF_ARCH["channel_base"], TF_ARCH["channel_max"], arch="resnet")
    assert shapes(tf.networks["D"]) == want_d


def test_tf_names_equal_pytorch_names_where_comparable(ada, tf):
    """Same architecture family (skip G, resnet D); the TF file is one resolution smaller."""
    pt_g = {k for k in ada.networks["G_ema"].state if not k.startswith("synthesis.b32.")}
    assert set(tf.networks["G_ema"].state) == pt_g
    # The top D block (the one with fromrgb) is b16 in the TF file and b32 in the PyTorch one.
    tf_d = {"b32." + k[4:] if k.startswith("b16.") else k for k in tf.networks["D"].state}
    pt_d = {k for k in ada.networks["D"].state if not k.startswith("b16.")}
    assert tf_d == pt_d


def test_tf_init_kwargs(tf):
    g = tf.networks["G_ema"].init_kwargs
    assert (g["z_dim"], g["c_dim"], g["w_dim"], g["img_resolution"], g["img_channels"]) == (32, 0, 32, 16, 3)
    assert g["mapping_kwargs"]["num_layers"] == 2 and g["mapping_kwargs"]["lr_multiplier"] == 0.01
    assert g["synthesis_kwargs"]["channel_base"] == 512 and g["synthesis_kwargs"]["channel_max"] == 32
    assert g["synthesis_kwargs"]["architecture"] == "skip" and g["synthesis_kwargs"]["conv_clamp"] is None
    d = tf.networks["D"].init_kwargs
    assert d["architecture"] == "resnet" and d["channel_base"] == 512 and d["c_dim"] == 0
    assert d["epilogue_kwargs"]["mbstd_group_size"] == 4 and d["epilogue_kwargs"]["mbstd_num_channels"] == 1


def test_tf_variable_layouts(tf):
    raw = load_pickle(TF)
    gs = raw[2]
    syn = tf_vars(gs.state["components"]["synthesis"])
    mapping = tf_vars(gs.state["components"]["mapping"])
    st = tf.networks["G_ema"].state
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))  # noqa: E731
    assert torch.equal(st["mapping.fc1.weight"], t(mapping["Dense1/weight"].T))
    assert torch.equal(st["mapping.w_avg"], t(tf_vars(gs)["dlatent_avg"]))
    assert torch.equal(st["synthesis.b4.const"], t(syn["4x4/Const/const"][0]))
    assert torch.equal(st["synthesis.b4.conv1.weight"], t(syn["4x4/Conv/weight"].transpose(3, 2, 0, 1)))
    # Upsampling convolutions are flipped spatially; the others are not.
    assert torch.equal(st["synthesis.b8.conv0.weight"], t(syn["8x8/Conv0_up/weight"][::-1, ::-1].transpose(3, 2, 0, 1)))
    assert torch.equal(st["synthesis.b8.conv1.weight"], t(syn["8x8/Conv1/weight"].transpose(3, 2, 0, 1)))
    assert torch.equal(st["synthesis.b8.conv0.affine.weight"], t(syn["8x8/Conv0_up/mod_weight"].T))
    assert torch.equal(st["synthesis.b8.conv0.affine.bias"], t(syn["8x8/Conv0_up/mod_bias"] + 1))
    assert torch.equal(st["synthesis.b16.torgb.affine.bias"], t(syn["16x16/ToRGB/mod_bias"] + 1))
    assert torch.equal(st["synthesis.b16.conv1.noise_strength"], t(syn["16x16/Conv1/noise_strength"]))
    assert st["synthesis.b16.conv1.noise_strength"].shape == ()
    # noise{k} counts conv layers: b4.conv1=0, b8.conv0=1, b8.conv1=2, b16.conv0=3, b16.conv1=4.
    for k, name in enumerate(["b4.conv1", "b8.conv0", "b8.conv1", "b16.conv0", "b16.conv1"]):
        assert torch.equal(st[f"synthesis.{name}.noise_const"], t(syn[f"noise{k}"][0, 0]))
    dv, dst = tf_vars(raw[1]), tf.networks["D"].state
    assert torch.equal(dst["b16.conv1.weight"], t(dv["16x16/Conv1_down/weight"].transpose(3, 2, 0, 1)))  # D: no flip
    assert torch.equal(dst["b16.skip.weight"], t(dv["16x16/Skip/weight"].transpose(3, 2, 0, 1)))
    assert torch.equal(dst["b4.fc.weight"], t(dv["4x4/Dense0/weight"].T))
    assert torch.equal(dst["b4.out.weight"], t(dv["Output/weight"].T))


def test_tf_resample_filters_equal_official_buffers(ada, tf):
    official = ada.networks["G_ema"].state["synthesis.b8.conv0.resample_filter"]
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    assert torch.allclose(official, torch.outer(k, k) / 64)
    for rec in tf.networks.values():
        filters = {n: t for n, t in rec.state.items() if n.endswith("resample_filter")}
        assert filters and all(torch.equal(t, official) for t in filters.values())


def test_original_stylegan_pickle_is_routed_to_the_v1_reader():
    raw = read_checkpoint(SG1)
    assert raw.format == FORMAT_SG1_TF
    assert {k: r.class_name for k, r in raw.networks.items()} == {
        "G": "StyleGAN1Generator",
        "D": "StyleGAN1Discriminator",
        "G_ema": "StyleGAN1Generator",
    }
    assert raw.networks["G_ema"].state["synthesis.b4.const"].shape == (32, 4, 4)


# ----------------------------------------------------------------------------------------------
# PyTorch pickle variants.


def test_roundtrip_of_repickled_fixture(official_globals, tmp_path, ada):
    data = load_pickle(ADA)
    data["progress"] = {"cur_nimg": torch.tensor(1000), "note": "kept"}
    path = write(tmp_path, to_official(data))
    got = read_checkpoint(path)
    assert got.extras["progress"] == {"cur_nimg": 1000, "note": "kept"}
    for key in ("G", "D", "G_ema"):
        assert got.networks[key].init_kwargs == ada.networks[key].init_kwargs
        assert got.networks[key].state.keys() == ada.networks[key].state.keys()
        assert all(torch.equal(got.networks[key].state[k], v) for k, v in ada.networks[key].state.items())


def test_positional_init_args_are_named(official_globals, tmp_path, ada):
    data = load_pickle(ADA)
    g_kwargs = dict(data["G_ema"].state["_init_kwargs"])
    positional = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
    data["G_ema"].state["_init_args"] = tuple(g_kwargs.pop(k) for k in positional)
    data["G_ema"].state["_init_kwargs"] = EasyDict(g_kwargs)
    d_kwargs = dict(data["D"].state["_init_kwargs"])
    data["D"].state["_init_args"] = (
        d_kwargs.pop("c_dim"),
        d_kwargs.pop("img_resolution"),
        d_kwargs.pop("img_channels"),
    )
    data["D"].state["_init_kwargs"] = EasyDict(d_kwargs)
    got = read_checkpoint(write(tmp_path, to_official(data)))
    assert got.networks["G_ema"].init_kwargs == ada.networks["G_ema"].init_kwargs
    assert got.networks["G_ema"].init_args == (64, 0, 64, 32, 3)
    assert got.networks["D"].init_kwargs == ada.networks["D"].init_kwargs


def test_flat_synthesis_kwargs_are_nested(official_globals, tmp_path, ada):
    """stylegan3-era StyleGAN2 generators take synthesis kwargs flat."""
    data = load_pickle(ADA)
    kw = dict(data["G_ema"].state["_init_kwargs"])
    kw.update(kw.pop("synthesis_kwargs"))
    kw["fused_modconv_default"] = "inference_only"
    data["G_ema"].state["_init_kwargs"] = EasyDict(kw)
    got = read_checkpoint(write(tmp_path, to_official(data)))
    assert got.networks["G_ema"].init_kwargs == ada.networks["G_ema"].init_kwargs
    assert got.extras["ignored_kwargs"] == {"G_ema": {"fused_modconv_default": "inference_only"}}


def test_stylegan2_modules_under_stylegan3_names_are_refused(official_globals, tmp_path):
    """A synthesis network with StyleGAN3's layer names is read as StyleGAN3's: StyleGAN2 blocks there are foreign."""
    data = load_pickle(ADA)
    modules = module_state(data["G_ema"], "synthesis")["_modules"]
    renamed = collections.OrderedDict()
    for i, (_name, mod) in enumerate(modules.items()):
        renamed["input" if i == 0 else f"L{i - 1}_36_512"] = mod
    module_state(data["G_ema"], "synthesis")["_modules"] = renamed
    with pytest.raises(CheckpointError, match="not a StyleGAN3 generator class"):
        read_checkpoint(write(tmp_path, to_official(data)))


def test_unknown_module_class_is_refused(official_globals, tmp_path):
    data = load_pickle(ADA)
    module_state(data["G"], "mapping")["_modules"]["fc0"].class_name = "SneakyLayer"
    with pytest.raises(CheckpointError, match="SneakyLayer"):
        read_checkpoint(write(tmp_path, to_official(data)))


@pytest.mark.parametrize("obj", [{"foo": 1}, (1, 2), [1, 2, 3], 42, "G", {"G": 3}])
def test_unknown_structure_is_refused(tmp_path, obj):
    path = write(tmp_path, obj)
    with pytest.raises(CheckpointError, match=re.escape(path)):
        read_checkpoint(path)


def test_tf_networks_without_state_are_refused(tmp_path):
    """NEWOBJ of dnnlib.tflib.network.Network with no BUILD after it."""
    one = b"cdnnlib.tflib.network\nNetwork\n)\x81"
    path = tmp_path / "bare.pkl"
    path.write_bytes(b"\x80\x02" + one * 3 + b"\x87.")
    with pytest.raises(CheckpointError, match="not a StyleGAN checkpoint"):
        read_checkpoint(str(path))


def test_non_stylegan_structure_message(tmp_path):
    with pytest.raises(CheckpointError, match="not a StyleGAN checkpoint"):
        read_checkpoint(write(tmp_path, {"foo": 1, "bar": [1, 2]}))
    with pytest.raises(CheckpointError, match="not a StyleGAN checkpoint"):
        read_checkpoint(write(tmp_path, (1, 2)))


# ----------------------------------------------------------------------------------------------
# TensorFlow pickle variants, written from the fixture's variables.


def tf_variant(tmp_path, edit, name="variant.pkl"):
    raw = load_pickle(TF)
    edit(*raw)
    return write(tmp_path, to_official(raw), name=name)


def generators(G, Gs):
    """G and Gs, once each (the TF fixture pickles one network object for both)."""
    return [G] if G is Gs else [G, Gs]


def tf_synthesis(g):
    return g.state["components"]["synthesis"]


def test_tf_resnet_generator(official_globals, tmp_path):
    rng = np.random.default_rng(0)
    skips = {}

    def edit(G, D, Gs):
        for g in generators(G, Gs):
            g.state["static_kwargs"] = dict(g.state["static_kwargs"], architecture="resnet")
            v = tf_vars(tf_synthesis(g))
            for r in (4, 8):
                for k in ("weight", "bias", "mod_weight", "mod_bias"):
                    del v[f"{r}x{r}/ToRGB/{k}"]
            for r in (8, 16):
                v[f"{r}x{r}/Skip/weight"] = skips.setdefault(r, rng.standard_normal((1, 1, 32, 32)).astype(np.float32))
            set_tf_vars(tf_synthesis(g), v)

    got = read_checkpoint(tf_variant(tmp_path, edit))
    assert shapes(got.networks["G_ema"]) == generator_shapes(**TF_ARCH, arch="resnet")
    assert got.networks["G_ema"].init_kwargs["synthesis_kwargs"]["architecture"] == "resnet"
    w = torch.from_numpy(skips[8][::-1, ::-1].transpose(3, 2, 0, 1).copy())
    assert torch.equal(got.networks["G_ema"].state["synthesis.b8.skip.weight"], w)


def test_tf_orig_generator_with_lod_names(official_globals, tmp_path):
    def edit(G, D, Gs, lod=0.0):
        for g in generators(G, Gs):
            g.state["static_kwargs"] = {k: v for k, v in g.state["static_kwargs"].items() if k != "architecture"}
            v = tf_vars(tf_synthesis(g))
            for r, n in ((16, 0), (8, 1), (4, 2)):
                for k in ("weight", "bias", "mod_weight", "mod_bias"):
                    v[f"ToRGB_lod{n}/{k}"] = v.pop(f"{r}x{r}/ToRGB/{k}")
            v["lod"] = np.float32(lod)
            set_tf_vars(tf_synthesis(g), v)
            g.state["variables"].append(("lod", np.array(lod, dtype=np.float32)))

    got = read_checkpoint(tf_variant(tmp_path, edit))
    assert shapes(got.networks["G"]) == generator_shapes(**TF_ARCH, arch="orig")
    assert got.networks["G"].init_kwargs["synthesis_kwargs"]["architecture"] == "orig"
    assert len(got.extras["ignored_tf_variables"]) == 2 * 2 * 4  # ToRGB_lod1/2 of G and Gs
    with pytest.raises(CheckpointError, match="progressive growing"):
        read_checkpoint(tf_variant(tmp_path, lambda G, D, Gs: edit(G, D, Gs, lod=1.0), name="lod1.pkl"))


def test_tf_skip_discriminator(official_globals, tmp_path):
    rng = np.random.default_rng(1)

    def edit(G, D, Gs):
        D.state["static_kwargs"] = dict(D.state["static_kwargs"], architecture="skip")
        v = tf_vars(D)
        for r in (16, 8):
            del v[f"{r}x{r}/Skip/weight"]
        for r in (8, 4):
            v[f"{r}x{r}/FromRGB/weight"] = rng.standard_normal((1, 1, 3, 32)).astype(np.float32)
            v[f"{r}x{r}/FromRGB/bias"] = rng.standard_normal(32).astype(np.float32)
        set_tf_vars(D, v)

    got = read_checkpoint(tf_variant(tmp_path, edit))
    assert shapes(got.networks["D"]) == discriminator_shapes(0, 16, 3, 512, 32, arch="skip")


def test_tf_orig_discriminator_with_lod_names(official_globals, tmp_path):
    def edit(G, D, Gs):
        D.state["static_kwargs"] = {k: v for k, v in D.state["static_kwargs"].items() if k != "architecture"}
        v = tf_vars(D)
        for r in (16, 8):
            del v[f"{r}x{r}/Skip/weight"]
        for k in ("weight", "bias"):
            v[f"FromRGB_lod0/{k}"] = v.pop(f"16x16/FromRGB/{k}")
            v[f"FromRGB_lod1/{k}"] = v[f"FromRGB_lod0/{k}"].copy()
        v["lod"] = np.array(0.0, dtype=np.float32)
        set_tf_vars(D, v)

    got = read_checkpoint(tf_variant(tmp_path, edit))
    assert shapes(got.networks["D"]) == discriminator_shapes(0, 16, 3, 512, 32, arch="orig")
    assert got.networks["D"].init_kwargs["architecture"] == "orig"


def test_tf_conditional_networks(official_globals, tmp_path):
    rng = np.random.default_rng(2)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    new = {
        "G": {
            "mapping/LabelEmbed/weight": f32(5, 32),
            "mapping/LabelEmbed/bias": f32(32),
            "mapping/Dense0/weight": f32(64, 32),
        }
    }

    def edit(G, D, Gs):
        for g in generators(G, Gs):
            g.state["static_kwargs"] = dict(g.state["static_kwargs"], label_size=5)
            m = g.state["components"]["mapping"]
            v = tf_vars(m)
            v.update({k[len("mapping/") :]: a for k, a in new["G"].items()})
            set_tf_vars(m, v)
        D.state["static_kwargs"] = dict(D.state["static_kwargs"], label_size=5, mapping_layers=1)
        D.state["build_func_name"] = "D_main"
        v = tf_vars(D)
        v.update(
            {
                "LabelEmbed/weight": f32(5, 32),
                "LabelEmbed/bias": f32(32),
                "Mapping0/weight": f32(32, 32),
                "Mapping0/bias": f32(32),
                "Output/weight": f32(32, 32),
                "Output/bias": f32(32),
            }
        )
        set_tf_vars(D, v)

    got = read_checkpoint(tf_variant(tmp_path, edit))
    arch = dict(TF_ARCH, c_dim=5)
    assert shapes(got.networks["G_ema"]) == generator_shapes(**arch, embed=32)
    assert shapes(got.networks["D"]) == discriminator_shapes(5, 16, 3, 512, 32, cmap=32, map_layers=1)
    d = got.networks["D"].init_kwargs
    assert (
        d["cmap_dim"] == 32 and d["mapping_kwargs"]["num_layers"] == 1 and d["mapping_kwargs"]["lr_multiplier"] == 0.1
    )
    assert d["epilogue_kwargs"]["mbstd_group_size"] is None  # stylegan2-ada's D_main default: whole minibatch
    assert got.networks["G_ema"].init_kwargs["mapping_kwargs"]["embed_features"] == 32


def test_tf_unrecognised_variable_is_named(official_globals, tmp_path):
    def edit(G, D, Gs):
        v = tf_vars(tf_synthesis(Gs))
        v["8x8/Mystery/weight"] = np.zeros((3, 3), np.float32)
        set_tf_vars(tf_synthesis(Gs), v)

    with pytest.raises(CheckpointError, match="synthesis/8x8/Mystery/weight"):
        read_checkpoint(tf_variant(tmp_path, edit))


def test_tf_wrong_shape_is_named(official_globals, tmp_path):
    def edit(G, D, Gs):
        v = tf_vars(tf_synthesis(Gs))
        v["8x8/Conv1/weight"] = np.zeros((3, 3, 32, 16), np.float32)
        set_tf_vars(tf_synthesis(Gs), v)

    with pytest.raises(CheckpointError, match="synthesis/8x8/Conv1/weight.*shape"):
        read_checkpoint(tf_variant(tmp_path, edit))


def test_tf_mbstd_settings_are_checked_against_weights(official_globals, tmp_path):
    def edit(G, D, Gs):
        D.state["static_kwargs"] = dict(D.state["static_kwargs"], mbstd_group_size=0)  # disables it in stylegan2

    with pytest.raises(CheckpointError, match="4x4/Conv/weight"):
        read_checkpoint(tf_variant(tmp_path, edit))


def test_tf_unknown_kwarg_is_refused(official_globals, tmp_path):
    def edit(G, D, Gs):
        Gs.state["static_kwargs"] = dict(Gs.state["static_kwargs"], resolution_h=8)

    with pytest.raises(CheckpointError, match="resolution_h"):
        read_checkpoint(tf_variant(tmp_path, edit))


def test_tf_build_module_src_is_not_run(official_globals, tmp_path):
    marker = tmp_path / "ran"

    def edit(G, D, Gs):
        for n in (G, D, Gs, tf_synthesis(Gs)):
            n.state["build_module_src"] = f"open({str(marker)!r}, 'w').write('x')\n"

    got = read_checkpoint(tf_variant(tmp_path, edit))
    assert got.format == FORMAT_SG2_TF and not marker.exists()


# ----------------------------------------------------------------------------------------------
# Safety: nothing named in a file is imported or called unless it is on the allowlist.


def _assert_refused(path, marker, fragment):
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    assert fragment in msg, msg
    assert not marker.exists(), "code from the file ran"
    return msg


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_refuses_os_system(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = write(tmp_path, _Reduce(os.system, f"touch {marker}"), protocol=protocol)
    msg = _assert_refused(path, marker, f"refuses global '{os.system.__module__}.system'")
    assert "not an allowed checkpoint object" in msg


def test_refuses_eval_and_exec(tmp_path):
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('x')"
    _assert_refused(write(tmp_path, _Reduce(eval, code), "e.pkl"), marker, "'builtins.eval'")
    _assert_refused(write(tmp_path, _Reduce(exec, code), "x.pkl"), marker, "'builtins.exec'")


def test_refuses_subprocess(tmp_path):
    import subprocess

    marker = tmp_path / "pwned"
    path = write(tmp_path, _Reduce(subprocess.Popen, ["touch", str(marker)]))
    _assert_refused(path, marker, "'subprocess.Popen'")


@pytest.mark.parametrize(
    "module,name",
    [
        ("posix", "system"),
        ("nt", "system"),
        ("os", "system"),
        ("__builtin__", "eval"),
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("torch", "load"),
        ("numpy", "load"),
        ("torch._utils", "_rebuild_tensor"),
        ("collections", "os"),
    ],
)
def test_refuses_hand_written_globals(tmp_path, module, name):
    marker = tmp_path / "pwned"
    # GLOBAL module name; push the argument; TUPLE1; REDUCE; STOP.
    arg = f"touch {marker}".encode()
    body = f"c{module}\n{name}\n".encode() + b"X" + len(arg).to_bytes(4, "little") + arg + b"\x85R."
    path = tmp_path / "hand.pkl"
    path.write_bytes(b"\x80\x02" + body)
    _assert_refused(str(path), marker, f"refuses global '{module}.{name}'")


def test_refuses_getattr_chain(tmp_path):
    """getattr(__import__('os'), 'system')('touch ...') spelled out in opcodes."""
    marker = tmp_path / "pwned"
    body = b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(Vos\ntRVsystem\ntR(Vtouch " + str(marker).encode() + b"\ntR."
    path = tmp_path / "chain.pkl"
    path.write_bytes(b"\x80\x02" + body)
    _assert_refused(str(path), marker, "'builtins.getattr'")


def test_refuses_global_nested_in_valid_checkpoint(official_globals, tmp_path):
    marker = tmp_path / "pwned"
    data = to_official(load_pickle(ADA))
    # Deep inside an otherwise valid generator: an attribute of mapping.fc0.
    data["G_ema"].meta["state"]["_modules"]["mapping"].meta["state"]["_modules"]["fc0"].meta["state"]["activation"] = (
        _Reduce(os.system, f"touch {marker}")
    )
    path = write(tmp_path, data)
    _assert_refused(path, marker, "system' (not an allowed checkpoint object)")


def test_refuses_hostile_storage_archive(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Reduce(os.system, f"touch {marker}"), protocol=2)
    path = write(tmp_path, {"G": _Reduce(torch.storage._load_from_bytes, payload)})
    _assert_refused(path, marker, "unreadable torch storage")


def test_module_src_is_never_run(official_globals, tmp_path):
    marker = tmp_path / "pwned"
    data = to_official(load_pickle(ADA))
    data["G_ema"].meta["module_src"] = f"open({str(marker)!r}, 'w').write('x')\n"
    got = read_checkpoint(write(tmp_path, data))
    assert "G_ema" in got.networks and not marker.exists()


def test_refuses_object_arrays(tmp_path):
    path = write(tmp_path, {"G": np.array([1, "two", None], dtype=object)})
    with pytest.raises(CheckpointError, match="object"):
        read_checkpoint(path)
    # numpy.ndarray((3,), 'O') called directly, skipping the dtype global.
    direct = tmp_path / "direct.pkl"
    direct.write_bytes(b"\x80\x02cnumpy\nndarray\n(K\x03\x85X\x01\x00\x00\x00OtR.")
    with pytest.raises(CheckpointError, match="ndarray"):
        read_checkpoint(str(direct))


class _TamperedDType:
    """Pickles as numpy.dtype('f4') followed by a BUILD whose state claims fields and object flags."""

    def __reduce__(self):
        return (np.dtype, ("f4", False, True), (3, "<", None, ("a",), {"a": (np.dtype("f4"), 0)}, 4, 1, 0x3F))


def test_refuses_tampered_dtype_state(tmp_path):
    path = write(tmp_path, {"G": _TamperedDType()})
    with pytest.raises(CheckpointError, match="dtype"):
        read_checkpoint(path)
    assert np.dtype(np.float32).names is None and not np.dtype(np.float32).hasobject  # numpy's shared dtype untouched


def test_refuses_persistent_ids(tmp_path):
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "ext" if obj == "external" else None

    path = tmp_path / "pid.pkl"
    with open(path, "wb") as f:
        P(f, protocol=2).dump({"G": "external"})
    with pytest.raises(CheckpointError, match="persistent id"):
        read_checkpoint(str(path))


@pytest.mark.parametrize("fixture", [ADA, TF])
def test_truncated_files(tmp_path, fixture):
    data = open(fixture, "rb").read()
    for cut in (0, 1, 2, 11, 100, 5000, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 1):
        path = tmp_path / f"cut{cut}.pkl"
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated or not a pickle"):
            read_checkpoint(str(path))


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde",
        b"just some text\nnot a checkpoint\n",
        b"PK\x03\x04\x14\x00\x00\x00\x00\x00",
        b"",
        b"\x80\x09garbage-protocol",
    ],
)
def test_non_pickle_files(tmp_path, content):
    path = tmp_path / "file.pkl"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="truncated or not a pickle"):
        read_checkpoint(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read file"):
        read_checkpoint(str(tmp_path / "nope.pkl"))
