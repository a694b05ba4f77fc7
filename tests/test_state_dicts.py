"""The one weights-file reader and the one strict state-dict loader (latentlab.checkpoints.state_dicts),
and every former copy's caller going through them."""

import ast
import json
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from latentlab.checkpoints.state_dicts import (
    WRAPPER_PREFIXES,
    is_safetensors,
    load_state_dict_strict,
    read_state_dict,
    strip_prefixes,
)
from latentlab.errors import CheckpointError


def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))  # float params, float buffers, one int64 counter


def planted():
    """A state dict for tiny() with values unlike its initialisation."""
    return {
        "0.weight": torch.arange(6.0).reshape(2, 3),
        "0.bias": torch.tensor([7.0, -7.0]),
        "1.weight": torch.tensor([2.0, 3.0]),
        "1.bias": torch.tensor([0.5, -0.5]),
        "1.running_mean": torch.tensor([1.0, 2.0]),
        "1.running_var": torch.tensor([4.0, 9.0]),
        "1.num_batches_tracked": torch.tensor(5),
    }


def snapshot(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


def assert_unchanged(m, before):
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items()), "a refused load changed the module"


# ------------------------------------------------------------------------------------------------ the loader


def test_exact_match_loads_every_value():
    m = tiny()
    assert load_state_dict_strict(m, planted(), "f.pt", "a tiny net") is m
    got = m.state_dict()
    for k, v in planted().items():
        assert torch.equal(got[k], v), k
    assert got["1.num_batches_tracked"].dtype == torch.int64


def test_missing_key_is_refused_and_nothing_is_loaded():
    m = tiny()
    before = snapshot(m)
    state = planted()
    del state["1.running_var"]
    with pytest.raises(CheckpointError) as e:
        load_state_dict_strict(m, state, "f.pt", "a tiny net")
    assert str(e.value) == "f.pt: key '1.running_var' is missing for a tiny net (1 missing: '1.running_var')"
    assert_unchanged(m, before)


def test_unexpected_key_is_refused():
    m = tiny()
    before = snapshot(m)
    state = dict(planted(), extra=torch.zeros(1))
    with pytest.raises(CheckpointError) as e:
        load_state_dict_strict(m, state, "f.pt", "a tiny net")
    assert str(e.value) == "f.pt: unexpected key 'extra' for a tiny net (1 unexpected: 'extra')"
    assert_unchanged(m, before)


def test_message_names_the_first_few_offending_keys_in_one_line():
    state = {f"x{i}": torch.zeros(1) for i in range(5)}  # none of tiny()'s 7 keys, 5 foreign ones
    with pytest.raises(CheckpointError) as e:
        load_state_dict_strict(tiny(), state, "w.safetensors", "a tiny net")
    assert str(e.value) == (
        "w.safetensors: key '0.weight' is missing for a tiny net (7 missing: '0.weight', '0.bias', '1.weight' "
        "and 4 more; 5 unexpected: 'x0', 'x1', 'x2' and 2 more)"
    )
    assert "\n" not in str(e.value)


def test_shape_mismatch_is_refused():
    m = tiny()
    before = snapshot(m)
    state = dict(planted(), **{"0.weight": torch.zeros(3, 3)})
    with pytest.raises(CheckpointError) as e:
        load_state_dict_strict(m, state, "f.pt", "a tiny net")
    assert str(e.value) == "f.pt: key '0.weight' has shape [3, 3], expected [2, 3] for a tiny net"
    assert_unchanged(m, before)


def test_dtype_policy():
    # any float precision into a float entry: converted to the entry's dtype
    m = tiny()
    half = {k: (v.half() if v.is_floating_point() else v.int()) for k, v in planted().items()}
    load_state_dict_strict(m, half, "f.pt", "a tiny net")
    assert m[0].weight.dtype == torch.float32 and torch.equal(m[0].weight, planted()["0.weight"])
    assert m[1].num_batches_tracked.dtype == torch.int64 and int(m[1].num_batches_tracked) == 5
    # integers into a float entry, floats into an integer entry, complex values: refused
    for key, value, kind in (
        ("0.bias", torch.tensor([7, -7]), "floating-point"),
        ("1.num_batches_tracked", torch.tensor(5.0), "integer"),
        ("0.bias", torch.tensor([1j, 2j]), "floating-point"),
    ):
        with pytest.raises(CheckpointError, match=rf"f\.pt: key '{key}' has dtype .*, expected a {kind} tensor"):
            load_state_dict_strict(tiny(), dict(planted(), **{key: value}), "f.pt", "a tiny net")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_are_refused(bad):
    state = planted()
    state["1.running_var"] = torch.tensor([4.0, bad])
    with pytest.raises(CheckpointError) as e:
        load_state_dict_strict(tiny(), state, "f.pt", "a tiny net")
    assert str(e.value) == "f.pt: key '1.running_var' holds non-finite values (NaN or inf)"


def test_ignore_unexpected_drops_only_the_declared_prefixes():
    m = tiny()
    state = dict(planted(), **{"head.weight": torch.zeros(4, 2), "head.bias": torch.zeros(4)})
    load_state_dict_strict(m, state, "f.pt", "a tiny net", ignore_unexpected=("head.",))
    assert torch.equal(m[0].bias, planted()["0.bias"])
    with pytest.raises(CheckpointError, match="unexpected key 'fc.weight'"):
        load_state_dict_strict(
            tiny(), dict(state, **{"fc.weight": torch.zeros(1)}), "f.pt", "a tiny net", ignore_unexpected=("head.",)
        )


def test_non_tensor_values_are_refused():
    with pytest.raises(CheckpointError, match=r"f\.pt: key '0\.bias' holds a list, not a tensor"):
        load_state_dict_strict(tiny(), dict(planted(), **{"0.bias": [7.0, -7.0]}), "f.pt", "a tiny net")


# ------------------------------------------------------------------------------------------------ prefixes


def test_strip_prefixes():
    t = torch.zeros(1)
    assert set(strip_prefixes({"module.model.a": t, "module.model.b": t})) == {"a", "b"}  # repeated
    assert set(strip_prefixes({"model.module.a": t})) == {"a"}  # in any order
    assert set(strip_prefixes({"module.a": t, "b": t})) == {"module.a", "b"}  # only when every key has it
    assert set(strip_prefixes({"net.a": t}, WRAPPER_PREFIXES)) == {"net.a"}  # only the given prefixes
    assert strip_prefixes({}) == {}


# ------------------------------------------------------------------------------------------------ the reader


def test_reads_torch_files_with_nesting_and_prefixes(tmp_path):
    sd = planted()
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in sd.items()}}, path)
    tensors, meta = read_state_dict(path, nesting=("state_dict",), prefixes=WRAPPER_PREFIXES)
    assert meta == {} and set(tensors) == set(sd) and all(torch.equal(tensors[k], sd[k]) for k in sd)
    with pytest.raises(CheckpointError, match=r"ckpt\.pth: not a state dict \(expected a dict of parameter name"):
        read_state_dict(path)  # the nesting is the caller's to declare
    deep = tmp_path / "deep.pth"
    torch.save({"teacher": {"model": {"x": torch.ones(2)}}, "args": 1}, deep)
    assert set(read_state_dict(deep, nesting=("student", "teacher", "model"))[0]) == {"x"}


def test_reads_safetensors_with_metadata_by_name_or_content(tmp_path):
    sd = {k: v for k, v in planted().items()}
    named = tmp_path / "w.safetensors"
    save_file(sd, str(named), metadata={"format": "mine", "version": "2"})
    bare = tmp_path / "w.bin"
    bare.write_bytes(named.read_bytes())
    for path in (named, bare):
        assert is_safetensors(path)
        tensors, meta = read_state_dict(path, allow_pickle=False)
        assert meta == {"format": "mine", "version": "2"}
        assert all(torch.equal(tensors[k], sd[k]) for k in sd) and set(tensors) == set(sd)
    torch.save(sd, tmp_path / "w.pt")
    assert not is_safetensors(tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match=r"w\.pt: not a readable toyfaces thing \(not a safetensors file\)"):
        read_state_dict(tmp_path / "w.pt", what="toyfaces thing", allow_pickle=False)


def test_size_checks(tmp_path):
    good = tmp_path / "good.safetensors"
    save_file({"a": torch.arange(100.0)}, str(good))
    data = good.read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    end = 8 + header_len + header["a"]["data_offsets"][1]
    assert end == len(data)  # the layout the check relies on

    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[:-40])
    with pytest.raises(CheckpointError) as e:
        read_state_dict(cut)
    assert str(e.value) == (
        f"{cut}: not a readable state dict (truncated: its header describes {end} bytes, the file has {end - 40})"
    )
    padded = tmp_path / "padded.safetensors"
    padded.write_bytes(data + b"\0" * 8)
    with pytest.raises(CheckpointError, match=rf"has trailing bytes: its header describes {end} bytes"):
        read_state_dict(padded)
    short = tmp_path / "short.safetensors"
    short.write_bytes(data[: 8 + header_len // 2])  # the header itself is cut
    with pytest.raises(CheckpointError, match=r"short\.safetensors: not a readable state dict \(truncated, or not"):
        read_state_dict(short)
    bad_json = tmp_path / "json.safetensors"
    bad_json.write_bytes((5).to_bytes(8, "little") + b"{oops")
    with pytest.raises(CheckpointError, match=r"json\.safetensors: .*damaged safetensors header"):
        read_state_dict(bad_json)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pt: an empty file"):
        read_state_dict(empty)
    with pytest.raises(CheckpointError, match=rf"good\.safetensors: {len(data)} bytes, more than a state dict may"):
        read_state_dict(good, max_bytes=len(data) - 1)
    assert set(read_state_dict(good, max_bytes=len(data))[0]) == {"a"}


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")  # would create the marker file if the pickle were ever run


def test_code_in_torch_files_never_runs(tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"w": _Marker(str(marker))}, protocol=2))
    with pytest.raises(CheckpointError, match=r"evil\.pt: not a readable state dict \("):
        read_state_dict(evil)
    assert not marker.exists()


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pt: no such state dict file"):
        read_state_dict(tmp_path / "nope.pt")
    with pytest.raises(IsADirectoryError, match="a folder, expected a state dict file"):
        read_state_dict(tmp_path)


def test_not_a_tensor_dict(tmp_path):
    for name, obj in (("list.pt", [torch.zeros(1)]), ("ints.pt", {"a": 1}), ("empty_dict.pt", {})):
        torch.save(obj, tmp_path / name)
        with pytest.raises(CheckpointError, match=rf"{name}: not a state dict"):
            read_state_dict(tmp_path / name)


# ------------------------------------------------------------------------------------------------ the callers
# Each former copy of the loader now applies the shared rules; before, none of the checkpoint loader,
# the ResNet classifier and the extractors refused non-finite weights, and their messages differed.


def _nan_first_float(state):
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 0)
    state = dict(state)
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float("nan")
    return key, state


def test_checkpoint_loader_uses_the_shared_rules(tmp_path, tiny_generator):
    from latentlab.checkpoints import build_network, load_checkpoint, save_native

    G = tiny_generator
    kwargs = G.init_kwargs
    key, state = _nan_first_float(G.state_dict())
    with pytest.raises(CheckpointError) as e:
        build_network("g.pkl", "G_ema", "Generator", kwargs, state)
    assert str(e.value) == f"g.pkl: network 'G_ema': key {key!r} holds non-finite values (NaN or inf)"
    extra = dict(G.state_dict(), bogus=torch.zeros(1))
    with pytest.raises(
        CheckpointError,
        match=r"g\.pkl: network 'G': unexpected key 'bogus' for the Generator its "
        r"constructor arguments describe \(1 unexpected: 'bogus'\)",
    ):
        build_network("g.pkl", "G", "Generator", kwargs, extra)
    # and through a whole file: latentlab's safetensors checkpoint, read by the shared reader
    bad = G.__class__(**kwargs)
    with torch.no_grad():
        bad.state_dict()[key].view(-1)[0] = float("nan")
    path = tmp_path / "g.safetensors"
    save_native(path, {"G_ema": bad}, source_format="test")
    with pytest.raises(CheckpointError, match=rf"network 'G_ema': key '{key}' holds non-finite values"):
        load_checkpoint(path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="not a readable latentlab checkpoint \\(truncated"):
        load_checkpoint(path)


def test_resnet_classifier_uses_the_shared_rules(tmp_path):
    from latentlab.attributes.preprocess import Preprocess
    from latentlab.attributes.resnet import ResNetAttributeClassifier

    small = Preprocess(resize=32)
    ref = ResNetAttributeClassifier("resnet18", names=["a", "b"], preprocess=small)
    sd = ref.net.state_dict()
    key, bad = _nan_first_float(sd)
    torch.save({"module." + k: v for k, v in bad.items()}, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError) as e:
        ResNetAttributeClassifier.from_file(tmp_path / "nan.pt", names=["a", "b"])
    assert str(e.value) == f"{tmp_path / 'nan.pt'}: key {key!r} holds non-finite values (NaN or inf)"
    torch.save(dict(sd, extra=torch.zeros(1)), tmp_path / "extra.pt")
    with pytest.raises(
        CheckpointError,
        match=r"extra\.pt: unexpected key 'extra' for a 2-attribute resnet18 "
        r"\(1 unexpected: 'extra'\)",
    ):
        ResNetAttributeClassifier.from_file(tmp_path / "extra.pt", names=["a", "b"])
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "r18.safetensors"))  # the shared reader
    clf = ResNetAttributeClassifier.from_file(tmp_path / "r18.safetensors", names=["a", "b"], preprocess=small)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(clf(x), ref(x))


def test_toyfaces_classifier_uses_the_shared_rules(tmp_path):
    from latentlab.attributes.toyfaces import ToyFacesClassifier, ToyFacesNet

    torch.manual_seed(0)
    clf = ToyFacesClassifier(ToyFacesNet(widths=(4, 4, 4, 4)))
    path = clf.save(tmp_path / "c.safetensors")
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    key, bad = _nan_first_float(load_file(path))
    save_file(bad, str(tmp_path / "nan.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError) as e:
        ToyFacesClassifier.from_file(tmp_path / "nan.safetensors")
    assert str(e.value) == f"{tmp_path / 'nan.safetensors'}: key {key!r} holds non-finite values (NaN or inf)"
    save_file(dict(load_file(path), extra=torch.zeros(1)), str(tmp_path / "extra.safetensors"), metadata=meta)
    with pytest.raises(
        CheckpointError,
        match=r"unexpected key 'extra' for the toyfaces classifier its metadata "
        r"describes \(1 unexpected: 'extra'\)",
    ):
        ToyFacesClassifier.from_file(tmp_path / "extra.safetensors")
    torch.save(load_file(path), tmp_path / "c.pt")  # the format is safetensors only
    with pytest.raises(CheckpointError, match=r"c\.pt: not a readable toyfaces classifier \(not a safetensors file\)"):
        ToyFacesClassifier.from_file(tmp_path / "c.pt")


def test_extractors_use_the_shared_rules(tmp_path):
    pytest.importorskip("timm")
    from timm.models.vision_transformer import VisionTransformer

    from latentlab.train.extractors import ViTExtractor, read_weights

    def vit():
        torch.manual_seed(0)
        return VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2, num_classes=0)

    sd = vit().state_dict()
    key, bad = _nan_first_float(sd)
    torch.save({"teacher": {"module.backbone." + k: v for k, v in bad.items()}}, tmp_path / "nan.pth")
    assert set(read_weights(tmp_path / "nan.pth")) == set(sd)  # DINO's nesting and prefixes are unwrapped
    with pytest.raises(CheckpointError) as e:
        ViTExtractor(vit(), weights=str(tmp_path / "nan.pth"), input_size=32)
    assert str(e.value) == f"{tmp_path / 'nan.pth'}: key {key!r} holds non-finite values (NaN or inf)"
    with_head = dict(
        sd, **{"head.weight": torch.zeros(3, 16), "head.bias": torch.zeros(3), "blocks.9.x": torch.zeros(1)}
    )
    torch.save(with_head, tmp_path / "head.pth")
    with pytest.raises(
        CheckpointError,
        match=r"head\.pth: unexpected key 'blocks\.9\.x' for a VisionTransformer ViT "
        r"\(1 unexpected: 'blocks\.9\.x'\)",
    ):  # the head is dropped, the rest not
        ViTExtractor(vit(), weights=str(tmp_path / "head.pth"), input_size=32)
    save_file(sd, str(tmp_path / "v.safetensors"))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes((tmp_path / "v.safetensors").read_bytes()[:-4])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors: not a readable state dict \(truncated"):
        ViTExtractor(vit(), weights=str(cut), input_size=32)


def _calls(src):
    """Names of the functions a module calls: 'load_state_dict', 'torch.load', 'safe_open', ..."""
    out = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name):
                out.add(f.id)
            elif isinstance(f, ast.Attribute):
                out.add(f"{f.value.id}.{f.attr}" if isinstance(f.value, ast.Name) else f.attr)
                out.add(f.attr)
    return out


def test_no_other_module_reads_or_loads_weights_its_own_way():
    """Safetensors files are opened only by state_dicts; the classifiers, the checkpoint package and the
    extractors load no state dict and torch.load no file themselves."""
    import latentlab

    root = os.path.dirname(latentlab.__file__)
    shared = os.path.join(root, "checkpoints", "state_dicts.py")
    weight_readers = (
        os.path.join(root, "attributes"),
        os.path.join(root, "checkpoints"),
        os.path.join(root, "train", "extractors.py"),
    )
    assert {"load_state_dict", "torch.load", "load_file"} <= _calls(open(shared).read())  # the check sees real calls
    checked = 0
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not name.endswith(".py") or path == shared:
                continue
            calls = _calls(open(path, encoding="utf-8").read())
            rel = os.path.relpath(path, root)
            assert not calls & {"safe_open", "load_file"}, f"{rel} reads safetensors itself; use read_state_dict"
            # safe_pickle reads pickled storages, torch_save torch.save archives (after its own checks)
            if path.startswith(weight_readers) and not path.endswith(("safe_pickle.py", "torch_save.py")):
                checked += 1
                assert not calls & {"load_state_dict", "torch.load"}, (
                    f"{rel} loads weights itself; use latentlab.checkpoints.state_dicts"
                )
    assert checked >= 10  # the folders were found
