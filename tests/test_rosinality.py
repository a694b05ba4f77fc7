"""rosinality/stylegan2-pytorch `.pt` checkpoints: exact outputs against their code, the three producers,
the CLI, and hostile or malformed files (docs/ROSINALITY_FORMAT.md, tests/fixtures/rosinality/README.md)."""

import argparse
import os
import pickle
import re
import warnings
import zipfile

import numpy as np
import pytest
import torch

from conftest import assert_matches_official, run_cli
from latentlab import CheckpointError, load_checkpoint
from latentlab.checkpoints import rosinality
from latentlab.checkpoints.formats import detect_format, read_checkpoint
from latentlab.checkpoints.tags import FORMAT_LATENTLAB, FORMAT_ROSINALITY
from latentlab.checkpoints.torch_save import read_torch_save, torch_save_kind
from latentlab.models.mapping import truncate

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "rosinality")
TRAIN, PLAIN = os.path.join(HERE, "tiny32.pt"), os.path.join(HERE, "tiny32_plain.pt")
CONVERT, E4E = os.path.join(HERE, "tiny32_convert_weight_like.pt"), os.path.join(HERE, "e4e_like.pt")
ALL = (TRAIN, PLAIN, CONVERT, E4E)
EXPECTED = dict(np.load(os.path.join(HERE, "tiny32.expected.npz")))
T = torch.from_numpy
_CACHE = {}


def loaded(path):
    if path not in _CACHE:
        _CACHE[path] = load_checkpoint(path)
    return _CACHE[path]


def one_line_error(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    return msg


# ------------------------------------------------------------------------------------------------ exactness


@pytest.mark.parametrize("path", ALL, ids=os.path.basename)
def test_generator_matches_their_code(path):
    G = loaded(path).G_ema
    with torch.no_grad():
        ws = G.mapping(T(EXPECTED["z"]), None)
        assert_matches_official(ws[:, 0], EXPECTED["w"], "w")
        assert_matches_official(G.synthesis(ws, noise_mode="const"), EXPECTED["img_randomize_noise_false"], "const")
        assert_matches_official(G(T(EXPECTED["z"]), None, noise_mode="const"), EXPECTED["img_randomize_noise_false"])
        assert_matches_official(G.synthesis(ws, noise_mode="none"), EXPECTED["img_noise_zero"], "noise none")
        w_plus = T(EXPECTED["w_plus"])
        assert_matches_official(G.synthesis(w_plus, noise_mode="const"), EXPECTED["img_w_plus"], "W+")
        ws2 = G.mapping(T(EXPECTED["z2"]), None)
        mix = torch.cat([ws[:, :3], ws2[:, 3:]], dim=1)  # their inject_index=3
        assert_matches_official(mix, EXPECTED["mix_latent"], "mix_latent")
        assert_matches_official(G.synthesis(mix, noise_mode="const"), EXPECTED["img_mix"], "mix")


@pytest.mark.parametrize("path", ALL, ids=os.path.basename)
def test_truncation_with_their_center_matches(path):
    G = loaded(path).G_ema
    center = T(EXPECTED["trunc_latent"][0])
    saved = G.mapping.w_avg.clone()
    try:
        G.mapping.w_avg.copy_(center)
        with torch.no_grad():
            img = G(T(EXPECTED["z"]), None, truncation_psi=0.7, noise_mode="const")  # all layers, as theirs
            assert_matches_official(img, EXPECTED["img_trunc"], "img_trunc")
            ws = truncate(T(EXPECTED["w_plus"]), G.mapping.w_avg, 0.7)
            assert_matches_official(G.synthesis(ws, noise_mode="const"), EXPECTED["img_w_plus_trunc"], "W+ trunc")
    finally:
        G.mapping.w_avg.copy_(saved)


@pytest.mark.parametrize("path", (TRAIN, PLAIN), ids=os.path.basename)
def test_discriminator_matches_their_code(path):
    D = loaded(path).D
    images = T(EXPECTED["img_randomize_noise_false"])
    with torch.no_grad():
        assert_matches_official(D(images), EXPECTED["d_logits"], "d_logits")
        both = torch.cat([images, T(EXPECTED["img_w_plus"])])  # two minibatch-stddev groups of 4
        assert_matches_official(D(both), EXPECTED["d_logits_8"], "d_logits_8")


def test_converted_kwargs_are_the_nvidia_equivalent():
    import json

    nv = json.load(open(os.path.join(HERE, "tiny32.json")))["nvidia_equivalent"]
    ckpt = loaded(TRAIN)
    assert ckpt.kwargs["G_ema"] == ckpt.kwargs["G"] == nv["G_kwargs"]
    assert ckpt.kwargs["D"] == nv["D_kwargs"]
    assert ckpt.G_ema.num_ws == nv["num_ws"]


# ------------------------------------------------------------------------------------------------ producers


def test_train_py_file_reads_g_ema_g_and_d():
    ckpt = loaded(TRAIN)
    assert ckpt.format == FORMAT_ROSINALITY and set(ckpt.networks()) == {"G", "D", "G_ema"}
    info = ckpt.extras["rosinality"]
    assert info["producer"] == "train.py" and info["networks"] == {"G_ema": "g_ema", "G": "g", "D": "d"}
    # g is a different (perturbed) network: the inference generator must be g_ema
    assert ckpt.generator is ckpt.G_ema
    assert not torch.equal(ckpt.G.mapping.fc0.weight, ckpt.G_ema.mapping.fc0.weight)
    assert ckpt.extras["args"]["arch"] == "stylegan2" and ckpt.extras["args"]["latent"] == 64  # the Namespace
    assert ckpt.extras["g_optim"].startswith("<dict holding") and "ada_aug_p" in ckpt.extras


def test_w_avg_without_latent_avg_is_the_seeded_estimate():
    from latentlab.inversion.projector import w_stats

    ckpt = loaded(TRAIN)
    for name in ("G", "G_ema"):
        G = getattr(ckpt, name)
        assert ckpt.extras["rosinality"]["w_avg"][name].startswith("estimated: mean of mapping(z) over 10000 z")
        # the projector's statistic (same seed and count): deterministic and reproducible by anyone
        assert torch.allclose(G.mapping.w_avg, w_stats(G)[0], atol=1e-5)
    # close to their own mean_latent-style average of the fixture (1000 other z)
    assert float((ckpt.G_ema.mapping.w_avg - T(EXPECTED["trunc_latent"][0])).abs().max()) < 0.2
    assert torch.equal(ckpt.G_ema.mapping.w_avg, loaded(PLAIN).G_ema.mapping.w_avg)


@pytest.mark.parametrize("path", (CONVERT, E4E), ids=os.path.basename)
def test_latent_avg_becomes_w_avg(path):
    ckpt = loaded(path)
    assert set(ckpt.networks()) == {"G_ema"}
    assert ckpt.extras["rosinality"]["w_avg"] == {"G_ema": "latent_avg"}
    assert torch.equal(ckpt.G_ema.mapping.w_avg, T(EXPECTED["trunc_latent"][0]))


def test_e4e_file_reads_the_decoder_and_records_the_encoder():
    ckpt = loaded(E4E)
    info = ckpt.extras["rosinality"]
    assert info["producer"] == "pSp/e4e" and info["not_loaded"] == {"encoder.*": "1 tensors"}
    assert ckpt.extras["opts"]["stylegan_size"] == 32


def test_detection_and_reading():
    for path in ALL:
        assert torch_save_kind(path) == "zip"
        obj = read_torch_save(path)
        assert detect_format(obj) == FORMAT_ROSINALITY
        assert read_checkpoint(path).format == FORMAT_ROSINALITY
    assert isinstance(read_torch_save(TRAIN)["args"], dict)  # the Namespace arrives as the dict of its attributes


def test_legacy_torch_save_files_load_identically(tmp_path):
    data = read_torch_save(TRAIN)
    data["args"] = argparse.Namespace(**data["args"])
    path = tmp_path / "legacy.pt"
    torch.save(data, path, _use_new_zipfile_serialization=False)
    assert torch_save_kind(path) == "legacy"
    ckpt = load_checkpoint(path)
    for name, net in loaded(TRAIN).networks().items():
        ref, got = net.state_dict(), getattr(ckpt, name).state_dict()
        assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref), name


def test_missing_noise_buffers_are_drawn_from_a_fixed_seed(tmp_path):
    """Generators from before rosinality's January 2020 code have no noises.* buffers; pSp/e4e load them."""
    data = read_torch_save(CONVERT)
    data["g_ema"] = {k: v for k, v in data["g_ema"].items() if not k.startswith("noises.")}
    path = tmp_path / "old.pt"
    torch.save(data, path)
    with pytest.warns(UserWarning, match="noises"):
        a = load_checkpoint(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = load_checkpoint(path)
    assert "G_ema" in a.extras["rosinality"]["noise_const"]
    const = a.G_ema.synthesis.b8.conv0.noise_const
    assert torch.equal(const, b.G_ema.synthesis.b8.conv0.noise_const) and float(const.std()) > 0.3
    with torch.no_grad():  # everything but the constant noise is still theirs
        ws = a.G_ema.mapping(T(EXPECTED["z"]), None)
        assert_matches_official(a.G_ema.synthesis(ws, noise_mode="none"), EXPECTED["img_noise_zero"])


# ------------------------------------------------------------------------------------------------ command line


def test_cli_info_and_convert(capsys, tmp_path):
    code, out, err = run_cli(capsys, "info", E4E)
    assert code == 0, err
    assert FORMAT_ROSINALITY in out and "32x32" in out
    dst = tmp_path / "out.safetensors"
    code, out, err = run_cli(capsys, "convert", TRAIN, dst)
    assert code == 0, err
    native = load_checkpoint(dst)
    assert native.format == FORMAT_LATENTLAB and native.extras["source_format"] == FORMAT_ROSINALITY
    with torch.no_grad():
        ws = native.G_ema.mapping(T(EXPECTED["z"]), None)
        assert_matches_official(native.G_ema.synthesis(ws, noise_mode="const"), EXPECTED["img_randomize_noise_false"])
    assert torch.equal(native.G_ema.mapping.w_avg, loaded(TRAIN).G_ema.mapping.w_avg)


def test_cli_refuses_a_hostile_pt_in_one_line(capsys, tmp_path):
    path = tmp_path / "evil.pt"
    marker = tmp_path / "ran"
    write_archive(path, global_call_pickle("os", "system", f"touch {marker}"))
    code, out, err = run_cli(capsys, "info", path)
    assert code != 0 and "refuses global 'os.system'" in err and not marker.exists()


# ------------------------------------------------------------------------------------------------ hostile files


def write_archive(path, data_pkl, records=None, root="archive"):
    """A torch.save-style zip: `<root>/data.pkl`, its byte order and one record per storage."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{root}/data.pkl", data_pkl)
        z.writestr(f"{root}/byteorder", "little")
        for key, raw in (records or {}).items():
            z.writestr(f"{root}/data/{key}", raw)
        z.writestr(f"{root}/version", "3\n")


def global_call_pickle(module, name, arg):
    """A protocol-2 pickle of `module.name(arg)`: what `__reduce__` of a hostile object writes."""
    a = arg.encode()
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X" + len(a).to_bytes(4, "little") + a + b"\x85R."


def tensor_pickle(numel, view_numel=None, key="0"):
    """data.pkl of {'x': a float tensor viewing storage `key` of `numel` elements}, written by torch's own layout."""
    view_numel = numel if view_numel is None else view_numel
    k = key.encode()
    return (
        b"\x80\x02}X\x01\x00\x00\x00xctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
        + b"X"
        + len(k).to_bytes(4, "little")
        + k
        + b"X\x03\x00\x00\x00cpuJ"
        + numel.to_bytes(4, "little")
        + b"tQK\x00J"
        + view_numel.to_bytes(4, "little")
        + b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs."
    )


class Evil:
    def __init__(self, call):
        self.call = call

    def __reduce__(self):
        return self.call


@pytest.fixture
def no_torch_load(monkeypatch):
    """Fails the test if torch.load is reached (the checks must come first)."""
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return calls


def test_handmade_archive_is_readable(tmp_path):
    """Positive control for the hostile archives below: the same construction with a harmless pickle loads."""
    path = tmp_path / "ok.pt"
    write_archive(path, tensor_pickle(4), {"0": np.arange(4, dtype="<f4").tobytes()})
    assert torch.equal(read_torch_save(path)["x"], torch.arange(4.0))


@pytest.mark.parametrize(
    "module,name",
    [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "exec"), ("mymodule", "Thing")],
)
def test_hostile_globals_are_refused_and_never_run(tmp_path, module, name, no_torch_load):
    marker = tmp_path / "ran"
    arg = f"touch {marker}" if name == "system" else f"open({str(marker)!r}, 'w').close()"
    path = tmp_path / "evil.pt"
    write_archive(path, global_call_pickle(module, name, arg))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = one_line_error(e)
    assert msg.startswith(f"{path}: refuses global '{module}.{name}'"), msg
    assert not marker.exists() and not no_torch_load


@pytest.mark.parametrize("legacy", [False, True])
def test_hostile_objects_saved_by_torch_are_refused(tmp_path, legacy, no_torch_load):
    import builtins

    marker = tmp_path / "ran"
    payload = {"g_ema": {"x": torch.zeros(2)}, "hook": Evil((builtins.eval, (f"open({str(marker)!r}, 'w').close()",)))}
    path = tmp_path / "evil.pt"
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    assert torch_save_kind(path) == ("legacy" if legacy else "zip")
    with pytest.raises(CheckpointError, match=r"refuses global '(__builtin__|builtins)\.eval'") as e:
        read_checkpoint(path)
    one_line_error(e)
    assert not marker.exists() and not no_torch_load


def test_argparse_namespace_only_takes_attributes(tmp_path):
    # NEWOBJ Namespace, then BUILD with a list instead of an attribute dict
    data = b"\x80\x02cargparse\nNamespace\n)\x81]b."
    path = tmp_path / "ns.pt"
    write_archive(path, data)
    with pytest.raises(CheckpointError, match="Namespace") as e:
        read_torch_save(path)
    one_line_error(e)


def test_storage_claiming_more_bytes_than_its_record(tmp_path, no_torch_load):
    path = tmp_path / "forged.pt"
    write_archive(path, tensor_pickle(100_000_000), {"0": bytes(16)})
    with pytest.raises(CheckpointError, match=r"needs 400000000 bytes, its record holds 16") as e:
        load_checkpoint(path)
    one_line_error(e)
    assert not no_torch_load


def test_record_reaching_past_the_end_of_the_file(tmp_path, no_torch_load):
    """The central directory claims a record (and the pickle a storage) larger than the whole file."""
    path = tmp_path / "forged.pt"
    numel = 1_000_000
    write_archive(path, tensor_pickle(numel), {"0": bytes(16)})
    raw = bytearray(path.read_bytes())
    name = b"archive/data/0"
    cd = raw.rfind(b"PK\x01\x02", 0, raw.rfind(name))  # the central-directory entry of the record
    assert raw[cd + 46 : cd + 46 + len(name)] == name
    raw[cd + 20 : cd + 28] = (4 * numel).to_bytes(4, "little") * 2  # compressed and uncompressed sizes
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="past the end of the") as e:
        read_checkpoint(path)
    one_line_error(e)
    assert not no_torch_load


@pytest.mark.parametrize(
    "data,match",
    [
        (tensor_pickle(10**9 + 7), "claims 1000000007 elements"),
        (tensor_pickle(4, view_numel=1000), "overlapping view|extends past the end of its storage"),
        (tensor_pickle(4, key="missing"), "has no data record"),
    ],
)
def test_storage_claims_are_checked_before_torch_reads(tmp_path, data, match, no_torch_load):
    path = tmp_path / "forged.pt"
    write_archive(path, data, {"0": bytes(16)})
    with pytest.raises(CheckpointError, match=match) as e:
        read_torch_save(path)
    one_line_error(e)
    assert not no_torch_load


def test_truncated_legacy_file_is_refused_before_allocation(tmp_path, no_torch_load):
    path = tmp_path / "legacy.pt"
    torch.save({"g_ema": {"w": torch.zeros(1000)}}, path, _use_new_zipfile_serialization=False)
    raw = path.read_bytes()
    path.write_bytes(raw[:-1000])
    with pytest.raises(CheckpointError, match=r"needs 4000 bytes, the file holds 3000 more") as e:
        read_checkpoint(path)
    one_line_error(e)
    assert not no_torch_load


@pytest.mark.parametrize("cut", [10, 100, 1000, 50_000, 200_000, -100])
def test_truncated_zip_files_are_refused(tmp_path, cut):
    raw = open(CONVERT, "rb").read()
    path = tmp_path / "cut.pt"
    path.write_bytes(raw[:cut])
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    one_line_error(e)


def test_non_rosinality_torch_file_is_not_a_stylegan_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=r"not a StyleGAN checkpoint \(unpickled a dict"):
        load_checkpoint(path)


# ------------------------------------------------------------------------------------------------ malformed networks


def saved(tmp_path, data, name="x.pt"):
    path = tmp_path / name
    torch.save(data, path)
    return path


def refused(path, *patterns):
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = one_line_error(e)
    assert msg.startswith(f"{path}: "), msg
    for p in patterns:
        assert re.search(p, msg), (p, msg)
    return msg


@pytest.mark.parametrize(
    "net,key",
    [("g_ema", "convs.0.conv.blur.kernel"), ("g_ema", "to_rgbs.1.upsample.kernel"), ("d", "convs.2.skip.0.kernel")],
)
def test_other_blur_kernels_are_refused(tmp_path, net, key):
    data = read_torch_save(PLAIN)
    data[net][key] = data[net][key] * 2
    refused(saved(tmp_path, data), re.escape(repr(key)), r"\[1, 3, 3, 1\] blur kernel")


def test_swagan_is_refused(tmp_path):
    data = read_torch_save(PLAIN)
    data["g_ema"]["to_rgbs.0.iwt.ll"] = torch.ones(1, 1, 2, 2)
    refused(saved(tmp_path, data, "a.pt"), "'to_rgbs.0.iwt.ll'", "SWAGAN")
    data = read_torch_save(PLAIN)
    data["args"]["arch"] = "swagan"
    refused(saved(tmp_path, data, "b.pt"), "args.arch is 'swagan'")


def test_missing_and_unexpected_keys_are_named(tmp_path):
    data = read_torch_save(PLAIN)
    del data["g_ema"]["convs.3.activate.bias"]
    refused(saved(tmp_path, data, "a.pt"), r"network 'G_ema' \('g_ema'\): key 'convs.3.activate.bias' is missing")
    data = read_torch_save(PLAIN)
    del data["d"]["final_linear.1.bias"]
    refused(saved(tmp_path, data, "b.pt"), r"network 'D' \('d'\): key 'final_linear.1.bias' is missing")
    data = read_torch_save(E4E)
    del data["state_dict"]["decoder.style.2.bias"]
    refused(saved(tmp_path, data, "c.pt"), "key 'decoder.style.2.bias' is missing")
    data = read_torch_save(PLAIN)
    data["g_ema"]["convs.0.conv.extra"] = torch.zeros(1)
    refused(saved(tmp_path, data, "d.pt"), "unexpected key 'convs.0.conv.extra'")
    data = read_torch_save(PLAIN)
    del data["g_ema"]["noises.noise_3"]  # a partial set of noise buffers is damage, not an old file
    refused(saved(tmp_path, data, "e.pt"), "key 'noises.noise_3' is missing")
    data = read_torch_save(PLAIN)
    data["g_ema"]["style.1.bias"] = torch.zeros(65)
    refused(saved(tmp_path, data, "f.pt"), r"key 'style.1.bias' has shape \[65\], expected \[64\]")
    data = read_torch_save(PLAIN)
    data["g_ema"]["conv1.conv.weight_orig"] = data["g_ema"].pop("conv1.conv.weight")
    refused(saved(tmp_path, data, "g.pt"), "'conv1.conv.weight_orig'", "before December 2019")


def synthetic_generator(channels, s_dim=8, n_mlp=1):
    """A rosinality g_ema state dict with the widths `channels` ({4: C4, 8: C8, ...}), random values."""
    size = max(channels)
    log2 = size.bit_length() - 1
    g = torch.Generator().manual_seed(0)
    sd = {}
    for i in range(1, n_mlp + 1):
        sd[f"style.{i}.weight"], sd[f"style.{i}.bias"] = torch.randn(s_dim, s_dim, generator=g), torch.zeros(s_dim)
    sd["input.input"] = torch.randn(1, channels[4], 4, 4, generator=g)

    def styled(key, c_in, c_out, r, n):
        sd[f"{key}.conv.weight"] = torch.randn(1, c_out, c_in, 3, 3, generator=g)
        sd[f"{key}.conv.modulation.weight"] = torch.randn(c_in, s_dim, generator=g)
        sd[f"{key}.conv.modulation.bias"] = torch.ones(c_in)
        sd[f"{key}.noise.weight"], sd[f"{key}.activate.bias"] = torch.zeros(1), torch.zeros(c_out)
        sd[f"noises.noise_{n}"] = torch.randn(1, 1, r, r, generator=g)

    def rgb(key, c_in):
        sd[f"{key}.conv.weight"] = torch.randn(1, 3, c_in, 1, 1, generator=g)
        sd[f"{key}.conv.modulation.weight"] = torch.randn(c_in, s_dim, generator=g)
        sd[f"{key}.conv.modulation.bias"], sd[f"{key}.bias"] = torch.ones(c_in), torch.zeros(1, 3, 1, 1)

    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = torch.outer(k, k) / 16
    styled("conv1", channels[4], channels[4], 4, 0)
    rgb("to_rgb1", channels[4])
    for j in range(log2 - 2):
        r = 2 ** (j + 3)
        styled(f"convs.{2 * j}", channels[r // 2], channels[r], r, 2 * j + 1)
        sd[f"convs.{2 * j}.conv.blur.kernel"] = k.clone()
        styled(f"convs.{2 * j + 1}", channels[r], channels[r], r, 2 * j + 2)
        rgb(f"to_rgbs.{j}", channels[r])
        sd[f"to_rgbs.{j}.upsample.kernel"] = k.clone()
    return sd


def test_channel_tables(tmp_path):
    # NVIDIA-expressible: min(512 // r, 16) -> channel_base 512, channel_max 16
    path = saved(
        tmp_path, {"g_ema": synthetic_generator({4: 16, 8: 16, 16: 16, 32: 16, 64: 8}), "latent_avg": torch.zeros(8)}
    )
    ckpt = load_checkpoint(path)
    assert ckpt.kwargs["G_ema"]["synthesis_kwargs"]["channel_base"] == 512
    assert ckpt.kwargs["G_ema"]["synthesis_kwargs"]["channel_max"] == 16
    assert ckpt.kwargs["G_ema"]["mapping_kwargs"] == {"num_layers": 1, "lr_multiplier": 0.01}
    # not expressible: a narrow layer in the middle
    bad = saved(tmp_path, {"g_ema": synthetic_generator({4: 16, 8: 4, 16: 8}), "latent_avg": torch.zeros(8)}, "bad.pt")
    refused(bad, "key 'convs.0.conv.weight' gives resolution 8 4 channels", "cannot express")


def test_psp_latent_avg_rows_must_agree(tmp_path):
    data = read_torch_save(E4E)
    data["latent_avg"] = data["latent_avg"].clone()
    data["latent_avg"][5] += 0.5
    refused(saved(tmp_path, data), "rows of 'latent_avg' differ")
    data["latent_avg"] = torch.zeros(8, 63)
    refused(saved(tmp_path, data, "b.pt"), r"'latent_avg' has shape \[8, 63\]")


def test_state_dict_entries_must_be_tensors(tmp_path):
    data = read_torch_save(CONVERT)
    data["g_ema"]["input.input"] = [1.0, 2.0]
    refused(saved(tmp_path, data), "'input.input' holds a list, not a tensor")
    data = read_torch_save(CONVERT)
    data["g_ema"]["style.1.bias"] = torch.zeros(64, dtype=torch.int64)
    refused(saved(tmp_path, data, "c.pt"), "key 'style.1.bias' holds a torch.int64 tensor, not a floating-point tensor")
    data = read_torch_save(CONVERT)
    data["g_ema"]["style.1.bias"] = "text"
    refused(saved(tmp_path, data, "d.pt"), "key 'style.1.bias' holds a str")
    data = read_torch_save(CONVERT)
    data["g_ema"] = [1, 2]
    refused(saved(tmp_path, data, "b.pt"), "not a StyleGAN checkpoint")


def test_detect_is_structural():
    assert rosinality.detect({"g_ema": {}}) and rosinality.detect({"state_dict": {"decoder.style.1.weight": 0}})
    assert not rosinality.detect({"state_dict": {"encoder.x": 0}}) and not rosinality.detect([1])


def test_pkl_files_are_not_read_as_torch_saves(tmp_path):
    from conftest import fixture_path

    assert torch_save_kind(fixture_path("sg2ada_skip32.pkl")) is None
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    assert torch_save_kind(path) is None


def test_convert_to_the_official_pickle_layout_keeps_the_outputs(tmp_path, capsys):
    """`latentlab convert FILE.pt out.pkl`: rosinality -> stylegan2-ada-pytorch's layout, same images after reading
    the pickle back (through latentlab's safe loader)."""
    src = PLAIN
    code, out, err = run_cli(capsys, "convert", src, tmp_path / "tiny32.pkl")
    assert code == 0, err
    a, b = load_checkpoint(src), load_checkpoint(tmp_path / "tiny32.pkl")
    assert b.format == "stylegan2-ada-pytorch" and set(b.networks()) == set(a.networks())
    z = torch.from_numpy(np.random.RandomState(5).randn(2, a.G_ema.z_dim).astype(np.float32))
    c = a.G_ema.empty_c(2, "cpu")
    with torch.no_grad():
        assert torch.equal(a.G_ema(z, c, noise_mode="const"), b.G_ema(z, c, noise_mode="const"))
        img = a.G_ema(z, c, noise_mode="const")
        assert torch.equal(a.D(img, c), b.D(img, c))
