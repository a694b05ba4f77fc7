"""Hostile and broken checkpoints: resource limits before allocation, pickle bombs, NaN/inf weights.

Every hostile file is built here at run time from a valid small checkpoint (tests/fixtures/official) or from
scratch, then run through the real CLI in a subprocess under a memory cap (tests/hostile.py), or through
the checks in-process for the fast unit tests.
"""

import collections
import io
import json
import os
import pickle
import sys
import types
import warnings

import pytest
import torch
from hostile import assert_no_leftovers, assert_one_line_error, run_capped

from conftest import fixture_path, make_tiny_generator
from latentlab.checkpoints import safe_pickle
from latentlab.checkpoints.budget import check_kwargs, plan_network
from latentlab.checkpoints.safe_pickle import EasyDict, PersistentObject, check_view, load_pickle, short_repr
from latentlab.errors import CheckpointError
from latentlab.models import Generator
from latentlab.utils import limits

ADA = fixture_path("sg2ada_skip32.pkl")


# ------------------------------------------------------------------------------------------------ file builders


def _fake_official_modules():
    """Modules named as the official ones, so that a plain Pickler writes the official global names."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # never called: the file is only written here
        raise AssertionError

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    return {"torch_utils.persistence": persistence}


class _OfficialPickler(pickle.Pickler):
    """Writes our stand-ins back in the official layout (persistent objects, EasyDicts as OrderedDicts)."""

    def reducer_override(self, obj):
        if isinstance(obj, PersistentObject):
            fn = sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj
            meta = dict(type="class", version=obj.version, module_src="", class_name=obj.class_name, state=obj.state)
            return fn, (meta,)
        if isinstance(obj, EasyDict):
            return collections.OrderedDict, (), None, None, iter(obj.items())
        return NotImplemented


def write_official(path, obj):
    """Pickle `obj` (as read by load_pickle, possibly patched) in the official ADA layout."""
    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence")}
    sys.modules.update(_fake_official_modules())
    sys.modules.setdefault("torch_utils", types.ModuleType("torch_utils"))
    try:
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _OfficialPickler(buf, protocol=4).dump(obj)
        path.write_bytes(buf.getvalue())
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return path


def patched_ada(tmp_path, name, patch):
    """The ADA fixture, its G_ema passed through `patch(G_ema PersistentObject)`, written to tmp_path/name."""
    obj = load_pickle(ADA)
    obj = {k: obj[k] for k in ("G_ema",)}
    patch(obj["G_ema"])
    return write_official(tmp_path / name, obj)


def _set_kwarg(path_keys, value):
    def patch(g):
        d = g.state["_init_kwargs"]
        for k in path_keys[:-1]:
            d = d[k]
        d[path_keys[-1]] = value

    return patch


def _nan_weight(g):
    mapping = g.state["_modules"]["mapping"]
    fc0 = mapping.state["_modules"]["fc0"]
    w = fc0.state["_parameters"]["weight"]
    w = w.detach().clone()
    w.view(-1)[:5] = float("nan")
    fc0.state["_parameters"]["weight"] = torch.nn.Parameter(w, requires_grad=False)


def stride0_view_pickle(path, size=(50000, 50000), stride=(0, 0), numel=1):
    """{'G_ema': a tensor view of `size`/`stride` over a storage of `numel` floats}, pickled as torch does."""

    class View:
        def __reduce__(self):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                storage = torch.zeros(numel).storage()
            return torch._utils._rebuild_tensor_v2, (storage, 0, size, stride, False, collections.OrderedDict())

    path.write_bytes(pickle.dumps({"G_ema": View()}, protocol=2))
    return path


TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER, written first by torch.save


def storage_archive(numel, data, header_numel=None, storage_type=torch.FloatStorage, view=None, header_pickle=None):
    """A legacy torch.save archive of one storage, written by hand as torch writes it (what
    `torch.storage._load_from_bytes` reads): magic, version, system info, a persistent id describing the
    storage as `numel` elements, the key list, then an int64 element count (`header_numel`) and `data`."""

    class Described:
        pass

    described = Described()

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", storage_type, "k0", "cpu", numel, view) if obj is described else None

    buf = io.BytesIO()
    for v in (
        TORCH_MAGIC,
        1001,
        dict(protocol_version=1001, little_endian=True, type_sizes=dict(short=2, int=4, long=4)),
    ):
        pickle.dump(v, buf, protocol=2)
    if header_pickle is not None:
        buf.write(header_pickle)
    else:
        Writer(buf, protocol=2).dump(described)
    pickle.dump(["k0"], buf, protocol=2)
    buf.write((numel if header_numel is None else header_numel).to_bytes(8, "little"))
    buf.write(data)
    return buf.getvalue()


def storage_pickle(path, archive):
    """{'G_ema': the storage in `archive`}, pickled as a tensor's storage is (`_load_from_bytes(archive)`)."""

    class Storage:
        def __reduce__(self):
            return torch.storage._load_from_bytes, (archive,)

    path.write_bytes(pickle.dumps({"G_ema": Storage()}, protocol=2))
    return path


def laughs_pickle(path, levels=40):
    """A "billion laughs" pickle: each level a tuple holding the previous level twice (2**levels leaves)."""
    out = b"\x80\x04\x8c\x03lol\x94"  # PROTO 4, SHORT_BINUNICODE 'lol', MEMOIZE (memo 0)
    for i in range(levels):  # BINGET i, BINGET i, TUPLE2, MEMOIZE (memo i + 1)
        out += b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86\x94"
    out += b"}\x8c\x05extrah" + bytes([levels]) + b"s."  # {'extra': level 40}
    path.write_bytes(out)
    return path


def nested_tuples_pickle(path, depth=10**6):
    """`depth` nested 1-tuples: EMPTY_TUPLE then TUPLE1 repeated."""
    path.write_bytes(b"\x80\x04)" + b"\x85" * depth + b".")
    return path


# ------------------------------------------------------------------------------------------------ unit tests


def test_check_view_extent_and_overlap():
    # a valid dense view, and a view inside a larger storage (offset + extent == numel - 1)
    assert check_view((2, 3), (3, 1), 0, 6) == 6
    assert check_view((2, 2), (3, 1), 4, 9) == 4  # last element at 4 + 3 + 1 = 8 < 9
    assert check_view((0, 5), (5, 1), 0, 0) == 0  # empty views own nothing
    with pytest.raises(safe_pickle.UnsafePickle, match="extends past the end of its storage of 9"):
        check_view((2, 2), (3, 1), 5, 9)  # last element at 9
    with pytest.raises(safe_pickle.UnsafePickle, match="claims 2500000000 elements"):
        check_view((50000, 50000), (0, 0), 0, 1)  # the stride-0 bomb: over MAX_TENSOR_ELEMENTS
    with pytest.raises(safe_pickle.UnsafePickle, match="claims 100 elements from a storage of 1 .overlapping"):
        check_view((10, 10), (0, 0), 0, 1)  # within the limit, but overlapping
    with pytest.raises(safe_pickle.UnsafePickle, match="negative"):
        check_view((-1, 4), (4, 1), 0, 16)
    with pytest.raises(safe_pickle.UnsafePickle, match="negative"):
        check_view((2, 2), (-1, 1), 3, 16)


def _scan(data):
    safe_pickle.scan_pickle(io.BytesIO(data), len(data))


def test_scan_pickle_bounds_depth_references_and_ints(tmp_path):
    # legitimate structures pass: the fixture, and ordinary nested containers
    with open(ADA, "rb") as f:
        safe_pickle.scan_pickle(f, os.path.getsize(ADA))
    _scan(pickle.dumps({"a": [1, 2, (3, 4)], "b": {"c": [[]] * 10}}, protocol=4))
    depth_ok = limits.MAX_PICKLE_DEPTH - 1  # EMPTY_TUPLE (depth 1) + (depth_ok - 1) TUPLE1s
    _scan(b"\x80\x04)" + b"\x85" * (depth_ok - 1) + b".")
    with pytest.raises(safe_pickle.UnsafePickle, match=f"nested more than {limits.MAX_PICKLE_DEPTH} levels"):
        _scan(b"\x80\x04)" + b"\x85" * limits.MAX_PICKLE_DEPTH + b".")
    # nested lists through MARK / LIST count too
    with pytest.raises(safe_pickle.UnsafePickle, match="nested more than"):
        _scan(b"\x80\x04" + b"(" * 300 + b"l" * 300 + b".")
    # a reference bomb: 2**40 leaves from a few hundred bytes
    data = laughs_pickle(tmp_path / "lol.pkl").read_bytes()
    assert len(data) < 600
    with pytest.raises(safe_pickle.UnsafePickle, match="reference bomb"):
        _scan(data)
    # ... while 2**10 leaves are fine (shared references are common and cheap)
    _scan(laughs_pickle(tmp_path / "small.pkl", levels=10).read_bytes())
    # a container filled after being shared would hide a bomb: refused
    hidden = b"\x80\x04]\x94h\x00h\x00\x86\x94h\x00(K\x01K\x02e."  # L=[], T=(L, L), then L.extend([1, 2])
    with pytest.raises(safe_pickle.UnsafePickle, match="modifies a container after sharing it"):
        _scan(hidden)
    # a 1 MB integer
    big = (1 << (8 * 10**6)) - 1
    with pytest.raises(safe_pickle.UnsafePickle, match="integer longer than"):
        _scan(pickle.dumps(big, protocol=4))
    # a BINBYTES8 claiming 2**60 bytes in a tiny file: a short read, not an allocation
    with pytest.raises(safe_pickle.UnsafePickle, match="truncated or not a pickle"):
        _scan(b"\x80\x04\x8e" + (1 << 60).to_bytes(8, "little") + b"abc.")


def test_storage_archive_checked_against_limits_and_data(monkeypatch):
    check = safe_pickle.check_storage_archive
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = torch.tensor([1.0, 2.0, 3.0]).storage().__reduce__()[1][0]  # what torch itself writes
        real_half = torch.zeros(5, dtype=torch.float16).storage().__reduce__()[1][0]
    assert check(real) == (torch.float32, 3) and check(real_half) == (torch.float16, 5)
    # the hand-built archive is what torch reads (so the hostile variants below differ only in what they claim)
    ok = storage_archive(2, b"\0\0\x80?\0\0\0@")
    assert check(ok) == (torch.float32, 2)
    assert safe_pickle._load_from_bytes(ok).tolist() == [1.0, 2.0]
    assert check(storage_archive(4, bytes(16), view=("v", 1, 2))) == (torch.float32, 2)  # a view inside its storage

    def refused(archive, *fragments):
        with pytest.raises(safe_pickle.UnsafePickle) as e:
            check(archive)
        for f in fragments:
            assert f in str(e.value), (f, str(e.value))

    refused(storage_archive(10**11, bytes(8)), "torch storage claims 100000000000 elements", "0 to 500000000")
    refused(storage_archive(-1, bytes(8), header_numel=0), "claims -1 elements")
    refused(storage_archive(4 * 10**8, bytes(8)), "400000000 float32 elements needs 1600000000 bytes", "holds 8")
    refused(storage_archive(3, bytes(11)), "3 float32 elements needs 12 bytes, the archive holds 11")
    refused(storage_archive(2, bytes(8), header_numel=10**9), "data header says 1000000000 elements, its description 2")
    refused(storage_archive(2, b"", header_numel=0)[:-8], "without its data")
    refused(storage_archive(4, bytes(16), view=("v", 3, 2)), "view ('v', 3, 2) does not lie inside its storage of 4")
    refused(storage_archive(2, bytes(8), storage_type=torch.QInt8Storage), "refers to 'torch.QInt8Storage'")
    refused(b"PK\x03\x04" + bytes(100), "unreadable torch storage", "zip archive")
    refused(pickle.dumps(TORCH_MAGIC, protocol=2), "unreadable torch storage", "damaged archive header")
    # the header's own length fields: a 3 GiB string claimed in a few bytes is a short read, not an allocation
    refused(
        storage_archive(2, bytes(8), header_pickle=b"\x80\x04\x8e" + (3 << 30).to_bytes(8, "little") + b"."),
        "unreadable torch storage",
    )
    # ... and a memo bomb or deep nesting there is bounded by the header's size, read without recursion
    deep = b"\x80\x04)" + b"\x85" * 5000 + b"."
    refused(storage_archive(2, bytes(8), header_pickle=deep), "unreadable torch storage")
    # the running total over one checkpoint: the fixture's storages, against a limit just below them
    monkeypatch.setattr(limits, "MAX_CHECKPOINT_ELEMENTS", 1000)
    with pytest.raises(CheckpointError, match="torch storages hold more than 1000 elements in all"):
        load_pickle(ADA)


def test_storage_sizes_checked_before_torch_allocates(tmp_path, monkeypatch):
    # torch's reader allocates the element count the archive claims before it reads the data; nothing of torch
    # may run for a hostile archive, while a valid one still reaches it
    calls = []
    real_load = torch.load

    def watched(*args, **kwargs):
        calls.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", watched)
    for numel, fragment in ((10**11, "claims 100000000000 elements"), (4 * 10**8, "needs 1600000000 bytes")):
        path = storage_pickle(tmp_path / f"s{numel}.pkl", storage_archive(numel, bytes(8)))
        with pytest.raises(CheckpointError) as e:
            load_pickle(path)
        assert str(e.value).startswith(f"{path}: torch storage") and fragment in str(e.value), str(e.value)
    assert calls == []
    got = load_pickle(storage_pickle(tmp_path / "ok.pkl", storage_archive(2, b"\0\0\x80?\0\0\0@")))
    assert len(calls) == 1 and got["G_ema"].tolist() == [1.0, 2.0]


def _cyclic_structures():
    a = []
    a.append(a)  # a list holding itself
    d = {}
    for i in range(6):
        d[f"k{i}"] = d  # 69 bytes; any depth-20 walk of it takes 6**20 steps
    b = []
    pair = [b]
    b.append(pair)  # a 2-cycle
    parent = {"children": []}
    parent["children"].append({"parent": parent})  # parent pointers
    t = ([],)
    t[0].append(t)  # a tuple in a cycle (pickled with POP_MARK)
    return {"self-list": a, "self-dict": d, "2-cycle": b, "parent": parent, "tuple": t}


def _shared_structures():
    x = [1.0, 2.0]
    s = {"a": x, "b": [x, x]}
    y = [1]
    z = [y]
    y.append(2)  # extended after another list took it: pickle writes it complete before any reference
    od = collections.OrderedDict(one=s, two=s)
    return {"shared": [x, x, {"k": x}], "nested": {"one": s, "two": s, "three": [s, s]}, "later": [z, y], "od": od}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_scan_pickle_passes_shared_structures_and_refuses_cycles(protocol):
    # shared (acyclic) structures pass at every protocol, and unpickle to what was pickled
    for name, obj in _shared_structures().items():
        data = pickle.dumps(obj, protocol=protocol)
        _scan(data)
        assert pickle.loads(data) == obj, name
    # cycles, self-references included, are refused (see the module docstring: their walk cost is unbounded)
    for obj in _cyclic_structures().values():
        with pytest.raises(safe_pickle.UnsafePickle, match="modifies a container after sharing it .cyclic"):
            _scan(pickle.dumps(obj, protocol=protocol))


def test_self_referencing_extras_are_refused_not_walked(tmp_path):
    # the self-dict inside a loadable checkpoint's extras: refused by the scan, before the converter's walk
    from latentlab.checkpoints import load_checkpoint

    def add_cycle(g):
        d = {}
        for i in range(6):
            d[f"k{i}"] = d
        g.state["_init_kwargs"]["extra"] = d

    path = patched_ada(tmp_path, "cyclic.pkl", add_cycle)
    with pytest.raises(CheckpointError, match=r"cyclic\.pkl: pickle modifies a container after sharing it"):
        load_checkpoint(path)


def test_short_repr_is_bounded():
    deep = ()
    for _ in range(10**5):
        deep = (deep,)
    text = short_repr(deep)
    assert len(text) < 100 and "..." in text
    assert len(short_repr("x" * 10**6)) < 100
    assert len(short_repr({i: i for i in range(10**5)})) < 200


def _ada_kwargs():
    return dict(
        z_dim=16,
        c_dim=0,
        w_dim=16,
        img_resolution=16,
        img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=256, channel_max=16, resample_filter=[1, 3, 3, 1]),
    )


@pytest.mark.parametrize(
    "patch, fragments",
    [
        (("img_resolution", 2**20), ["'img_resolution' = 1048576", "power of two from 4 to 4096"]),
        (("img_resolution", 24), ["'img_resolution' = 24"]),
        (("img_resolution", 8192), ["'img_resolution' = 8192"]),
        (("z_dim", -1), ["'z_dim' = -1", "from 1 to"]),
        (("z_dim", 0), ["'z_dim' = 0"]),
        (("img_channels", 10**6), ["'img_channels' = 1000000"]),
        (("mapping_kwargs", "num_layers", 10**9), ["'num_layers' = 1000000000", "from 1 to 64"]),
        (("synthesis_kwargs", "channel_base", 0), ["'channel_base' = 0"]),
        (("synthesis_kwargs", "channel_base", 8), ["'channel_base' = 8", "at least img_resolution (16)"]),
        (("synthesis_kwargs", "channel_max", -5), ["'channel_max' = -5"]),
        (("synthesis_kwargs", "resample_filter", [1] * 10**4), ["'resample_filter'", "1 to 16"]),
        (("synthesis_kwargs", "resample_filter", [1, -1]), ["non-zero sum"]),
        (("synthesis_kwargs", "resample_filter", [1, float("nan")]), ["finite numbers"]),
        (("synthesis_kwargs", "num_fp16_res", -(10**9)), ["'num_fp16_res'"]),
        (("synthesis_kwargs", "conv_clamp", float("inf")), ["'conv_clamp' = inf"]),
        (("synthesis_kwargs", "conv_clamp", 0), ["'conv_clamp' = 0"]),
    ],
)
def test_check_kwargs_refuses_absurd_values(patch, fragments):
    kwargs = _ada_kwargs()
    check_kwargs("f.pkl: network 'G'", "Generator", kwargs)  # the valid ones pass
    d = kwargs
    for k in patch[:-2]:
        d = d[k]
    d[patch[-2]] = patch[-1]
    with pytest.raises(CheckpointError) as e:
        check_kwargs("f.pkl: network 'G'", "Generator", kwargs)
    msg = str(e.value)
    assert msg.startswith("f.pkl: network 'G': constructor argument ") and "\n" not in msg
    for f in fragments:
        assert f in msg, (f, msg)


def test_plan_network_counts_on_meta_and_applies_the_limit(monkeypatch):
    kwargs = _ada_kwargs()
    net = plan_network("f.pkl: network 'G'", Generator, kwargs)
    assert all(t.device.type == "meta" for t in net.state_dict().values())
    real = Generator(**kwargs)  # independent count: the real network's parameters and buffers
    expected = sum(p.numel() for p in real.parameters()) + sum(b.numel() for b in real.buffers())
    from latentlab.checkpoints.budget import count_elements

    assert count_elements(net) == expected
    # the limit: a valid network just over it is refused before anything is allocated
    monkeypatch.setattr(limits, "MAX_PARAMS", expected - 1)
    with pytest.raises(CheckpointError, match=f"a network of {expected:,} parameters and buffers"):
        plan_network("f.pkl: network 'G'", Generator, kwargs)
    monkeypatch.setattr(limits, "MAX_PARAMS", expected)
    plan_network("f.pkl: network 'G'", Generator, kwargs)
    # the largest allowed sizes describe a network far over the limit, counted without allocating it
    monkeypatch.undo()
    huge = dict(kwargs, img_resolution=4096, synthesis_kwargs=dict(channel_base=2**24, channel_max=16384))
    with pytest.raises(CheckpointError, match="parameters and buffers .more than the limit of 500,000,000"):
        plan_network("f.pkl: network 'G'", Generator, huge)


def test_constructor_errors_become_checkpoint_errors():
    # a kwarg the class does not take, and an architecture it rejects: one CheckpointError each
    with pytest.raises(CheckpointError, match=r"f\.pkl: network 'G': unsupported constructor arguments \(TypeError"):
        plan_network("f.pkl: network 'G'", Generator, dict(_ada_kwargs(), bogus=1))
    bad = _ada_kwargs()
    bad["synthesis_kwargs"]["architecture"] = "weird"
    with pytest.raises(CheckpointError, match="unsupported constructor arguments"):
        plan_network("f.pkl: network 'G'", Generator, bad)


def test_nonfinite_weights_refused_by_default_and_reported_when_allowed(tmp_path):
    from latentlab.checkpoints import load_checkpoint, save_native

    G = make_tiny_generator()
    with torch.no_grad():
        G.mapping.fc0.weight.view(-1)[:3] = float("nan")
        G.synthesis.b4.conv1.bias[0] = float("inf")
    path = tmp_path / "nan.safetensors"
    save_native(path, {"G_ema": G}, source_format="test")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "network 'G_ema': key 'mapping.fc0.weight' holds non-finite values" in msg
    assert "2 tensors, 4 values in all" in msg and "--allow-nonfinite" in msg
    c = load_checkpoint(path, allow_nonfinite=True)
    assert c.nonfinite == {"G_ema": {"mapping.fc0.weight": 3, "synthesis.b4.conv1.bias": 1}}
    assert torch.isnan(c.generator.mapping.fc0.weight).sum() == 3
    # a clean checkpoint reports nothing
    save_native(tmp_path / "ok.safetensors", {"G_ema": make_tiny_generator()}, source_format="test")
    assert load_checkpoint(tmp_path / "ok.safetensors", allow_nonfinite=True).nonfinite == {}


def test_safetensors_header_extents_checked_before_reading(tmp_path):
    from latentlab.checkpoints.state_dicts import read_state_dict

    def write(header, data=b""):
        raw = json.dumps(header).encode()
        path = tmp_path / "t.safetensors"
        path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
        return path

    # 4 bytes of data claiming a 50000 x 50000 float tensor
    path = write({"w": {"dtype": "F32", "shape": [50000, 50000], "data_offsets": [0, 4]}}, b"\0" * 4)
    with pytest.raises(CheckpointError, match="tensor 'w' claims 2500000000 elements"):
        read_state_dict(path)
    path = write({"w": {"dtype": "F32", "shape": [3, 3], "data_offsets": [0, 4]}}, b"\0" * 4)
    with pytest.raises(CheckpointError, match=r"tensor 'w' of shape \[3, 3\] \(F32\) needs 36 bytes"):
        read_state_dict(path)
    path = write({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4)
    with pytest.raises(CheckpointError, match="invalid shape"):
        read_state_dict(path)
    path = write({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
    assert read_state_dict(path)[0]["w"].shape == (1,)  # the valid one reads
    # a deeply nested header: one line, not a RecursionError
    raw = b'{"__metadata__": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    path = tmp_path / "deep.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw)
    with pytest.raises(CheckpointError, match="deep.safetensors"):
        read_state_dict(path)


def test_round_trip_of_the_builder_is_a_valid_checkpoint(tmp_path):
    # the hostile files below differ from a loadable file only in what they patch
    from latentlab.checkpoints import load_checkpoint

    path = patched_ada(tmp_path, "same.pkl", lambda g: None)
    c = load_checkpoint(path)
    assert c.generator.img_resolution == 32 and c.nonfinite == {}


# ------------------------------------------------------------------------------------------------ the real CLI


@pytest.mark.slow
def test_cli_hostile_tensor_and_pickle_bombs(tmp_path):
    cases = [
        (stride0_view_pickle(tmp_path / "stride0.pkl"), ["stride0.pkl", "claims 2500000000 elements"]),
        (stride0_view_pickle(tmp_path / "overlap.pkl", (4000, 4000), (1, 0), 4000), ["overlap.pkl", "overlapping"]),
        (laughs_pickle(tmp_path / "laughs.pkl"), ["laughs.pkl", "reference bomb"]),
        (nested_tuples_pickle(tmp_path / "nested.pkl"), ["nested.pkl", "nested more than 200 levels"]),
        # nested torch storage archives: 10**11 floats claimed, and 1.6 GB claimed where the file holds 8 bytes
        (storage_pickle(tmp_path / "huge.pkl", storage_archive(10**11, bytes(8))), ["huge.pkl", "claims 100000000000"]),
        (storage_pickle(tmp_path / "short.pkl", storage_archive(4 * 10**8, bytes(8))), ["short.pkl", "holds 8"]),
    ]
    for path, fragments in cases:
        proc = run_capped(["info", path], tmp_path, timeout=60)
        assert_one_line_error(proc, *fragments)
    assert_no_leftovers(tmp_path)


@pytest.mark.slow
def test_cli_hostile_constructor_kwargs(tmp_path):
    cases = [
        (("img_resolution",), 2**20, "'img_resolution' = 1048576"),
        (("synthesis_kwargs", "channel_base"), 0, "'channel_base' = 0"),
        (("z_dim",), -1, "'z_dim' = -1"),
    ]
    for i, (keys, value, fragment) in enumerate(cases):
        path = patched_ada(tmp_path, f"k{i}.pkl", _set_kwarg(keys, value))
        proc = run_capped(["info", path], tmp_path, timeout=60)
        assert_one_line_error(proc, f"k{i}.pkl: network 'G_ema'", fragment)
    assert_no_leftovers(tmp_path)


@pytest.mark.slow
def test_cli_nonfinite_weights(tmp_path):
    path = patched_ada(tmp_path, "nan.pkl", _nan_weight)
    proc = run_capped(["info", path], tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "G_ema: 5 non-finite (NaN/inf) values in 1 tensor(s): mapping.fc0.weight" in proc.stdout
    out = tmp_path / "gen"
    proc = run_capped(["generate", "--model", path, "--seeds", "0", "--out", out], tmp_path, timeout=60)
    assert_one_line_error(proc, "nan.pkl", "'mapping.fc0.weight' holds non-finite values", "--allow-nonfinite")
    assert not out.exists() or not any(out.iterdir())
    proc = run_capped(
        ["generate", "--model", path, "--seeds", "0", "--allow-nonfinite", "--out", out], tmp_path, timeout=90
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "seed0000.png").is_file()
    assert_no_leftovers(tmp_path)


def test_deeply_nested_native_metadata_is_one_error(tmp_path):
    from safetensors.torch import save_file

    from latentlab.checkpoints import load_checkpoint

    path = tmp_path / "deep.safetensors"
    nested = "[" * 100000 + "]" * 100000
    meta = {"format": "latentlab-checkpoint", "version": "1", "networks": nested}
    save_file({"G_ema/x": torch.zeros(1)}, str(path), metadata=meta)
    with pytest.raises(
        CheckpointError, match=r"deep\.safetensors: not a readable latentlab checkpoint \(metadata nested"
    ):
        load_checkpoint(path)
