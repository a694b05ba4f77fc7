"""Hostile and broken StyleGAN3 checkpoints: every one is refused with one line naming the file and the problem.

The hostile files are built here at run time from the official fixture tests/fixtures/stylegan3/sg3t_64_cond.pkl
(made by NVIDIA's classes): read with the safe unpickler, patched (constructor kwargs, tensors, the module tree)
and written back with the official globals (`test_checkpoint_formats.to_official`). The library must raise
CheckpointError (ConfigError for bad Python arguments to the model itself), never MemoryError, RecursionError
or anything else, within seconds; a representative subset goes through the real CLI under a memory cap
(tests/hostile.py).
"""

import collections
import copy
import os
import pickle
import time

import pytest
import torch
from hostile import assert_no_leftovers, assert_one_line_error, run_capped
from test_checkpoint_formats import official_globals, to_official  # noqa: F401  (official_globals: a fixture)
from test_hostile_checkpoints import storage_archive

from latentlab import load_checkpoint
from latentlab.checkpoints.safe_pickle import PersistentObject, load_pickle
from latentlab.errors import CheckpointError, ConfigError
from latentlab.models.stylegan3 import StyleGAN3Generator, layer_schedule

SG3_COND = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "stylegan3", "sg3t_64_cond.pkl")
# sg3t_64_cond: 64 px, 6 layers (2 critical), 12 channels, margin 6, conditional (c_dim 3), 3 mapping layers
L0, L2, L6 = "L0_28_12", "L2_44_12", "L6_64_3"  # the first layer, one that upsamples, ToRGB
REFUSE_WITHIN_S = 5.0  # refusals take well under a second; minutes of work or a hang fail


@pytest.fixture(scope="module")
def source():
    """The fixture as the safe unpickler reads it; also warms up the loader (the first meta-device build
    imports parts of torch, seconds that are not the refusal's)."""
    load_checkpoint(SG3_COND)
    return load_pickle(SG3_COND)


@pytest.fixture
def make(source, tmp_path, request):
    """make(name, patch) -> the path of the fixture's G_ema, passed through `patch(G_ema PersistentObject)` and
    written in the official layout; `patch` may also return the bytes to write instead."""
    request.getfixturevalue("official_globals")

    def build(name, patch=None, networks=("G_ema",)):
        data = {k: copy.deepcopy(source[k]) for k in networks}
        out = patch(data["G_ema"]) if patch is not None else None
        path = tmp_path / name
        path.write_bytes(out if isinstance(out, bytes) else pickle.dumps(to_official(data), protocol=4))
        return str(path)

    return build


def refused(path, *fragments, allow_nonfinite=False):
    """load_checkpoint(path) raises one CheckpointError line starting with the path and holding `fragments`, quickly."""
    start = time.monotonic()
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, allow_nonfinite=allow_nonfinite)
    elapsed = time.monotonic() - start
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
    for f in fragments:
        assert f in msg, (f, msg)
    assert elapsed < REFUSE_WITHIN_S, f"{elapsed:.1f} s to refuse {path}"
    return msg


# ------------------------------------------------------------------------------------------------ patches


def module(g, *names):
    """The persistent module at G_ema.names[0].names[1]..."""
    for n in names:
        g = g.state["_modules"][n]
    return g


def kwargs(**values):
    def patch(g):
        g.state["_init_kwargs"].update(values)

    return patch


def mapping_kwargs(**values):
    def patch(g):
        g.state["_init_kwargs"]["mapping_kwargs"].update(values)

    return patch


def set_tensor(names, key, value, group="_buffers"):
    def patch(g):
        module(g, *names).state[group][key] = value

    return patch


def drop_tensor(names, key, group="_buffers"):
    def patch(g):
        del module(g, *names).state[group][key]

    return patch


def set_class(names, class_name):
    def patch(g):
        module(g, *names).class_name = class_name

    return patch


def replace_module(names, source_names, class_name=None):
    """module(names) := a copy of module(source_names), optionally declared as `class_name`."""

    def patch(g):
        clone = copy.deepcopy(module(g, *source_names))
        if class_name is not None:
            clone.class_name = class_name
        module(g, *names[:-1]).state["_modules"][names[-1]] = clone

    return patch


def rename_member(names, old, new, group="_modules"):
    def patch(g):
        members = module(g, *names).state[group]
        members[new] = members.pop(old)

    return patch


def nested_modules(depth):
    """`depth` empty FullyConnectedLayers nested under mapping.fc0 (x.x.x...)."""

    def patch(g):
        m = module(g, "mapping", "fc0")
        for _ in range(depth):
            child = PersistentObject("FullyConnectedLayer", 1, {"_parameters": {}, "_buffers": {}, "_modules": {}})
            m.state["_modules"]["x"] = child
            m = child

    return patch


def positional_args(args):
    def patch(g):
        g.state["_init_args"] = args

    return patch


def nested_synthesis_kwargs(g):
    """The flat StyleGAN3 kwargs nested as a StyleGAN2 Generator's synthesis_kwargs."""
    kw = g.state["_init_kwargs"]
    top = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
    kw["synthesis_kwargs"] = {k: kw.pop(k) for k in list(kw) if k not in top}


class _Storage:
    def __init__(self, archive):
        self.archive = archive

    def __reduce__(self):
        return torch.storage._load_from_bytes, (self.archive,)


class _ForgedTensor:
    """Pickles as torch does a tensor: a view (size, stride) of a storage, here a hand-made archive claiming
    `numel` floats while holding `data` (`test_hostile_checkpoints.storage_archive`)."""

    def __init__(self, numel, data, size, stride):
        self.archive, self.size, self.stride = storage_archive(numel, data), size, stride

    def __reduce__(self):
        rebuild_args = (_Storage(self.archive), 0, self.size, self.stride, False, collections.OrderedDict())
        return torch._utils._rebuild_tensor_v2, rebuild_args


def _weight(numel, data, stride=(108, 9, 3, 1)):
    return set_tensor(("synthesis", L0), "weight", _ForgedTensor(numel, data, (12, 12, 3, 3), stride), "_parameters")


# ------------------------------------------------------------------------------------------------ library: kwargs

KWARG_CASES = {
    # sizes that would cost memory or time
    "res_2_20": (kwargs(img_resolution=2**20), "'img_resolution' = 1048576", "power of two from 4 to 4096"),
    "channel_max": (kwargs(channel_max=10**6), "'channel_max' = 1000000", "from 1 to 16384"),
    "channel_base": (kwargs(channel_base=10**12), "'channel_base' = 1000000000000"),
    "layers_1e6": (kwargs(num_layers=10**6), "'num_layers' = 1000000", "from 1 to 64"),
    "layers_0": (kwargs(num_layers=0), "'num_layers' = 0"),
    "critical_all": (kwargs(num_critical=6), "num_layers = 6, num_critical = 6", "0 <= num_critical < num_layers"),
    "critical_more": (kwargs(num_critical=7), "num_critical = 7"),
    "critical_negative": (kwargs(num_critical=-1), "num_critical = -1"),
    "margin_1e9": (kwargs(margin_size=10**9), "'margin_size' = 1000000000"),
    "margin_1e6": (kwargs(margin_size=10**6), "margin_size = 1000000; expected 0 to img_resolution"),
    "conv_kernel_1e4": (kwargs(conv_kernel=10**4), "'conv_kernel' = 10000", "from 1 to 16"),
    "conv_kernel_0": (kwargs(conv_kernel=0), "'conv_kernel' = 0"),  # empty kernels: failed only when rendering
    "filter_size_1e6": (kwargs(filter_size=10**6), "'filter_size' = 1000000", "from 1 to 16"),
    "filter_size_0": (kwargs(filter_size=0), "'filter_size' = 0"),
    "lrelu_up_1e6": (kwargs(lrelu_upsampling=10**6), "'lrelu_upsampling' = 1000000", "from 1 to 16"),
    "lrelu_up_0": (kwargs(lrelu_upsampling=0), "'lrelu_upsampling' = 0"),
    "lrelu_up_frac": (kwargs(lrelu_upsampling=2.5), "'lrelu_upsampling' = 2.5"),
    "mapping_1e9": (mapping_kwargs(num_layers=10**9), "'num_layers' = 1000000000"),
    # values that break the schedule's arithmetic
    "cutoff_0": (kwargs(first_cutoff=0), "'first_cutoff' = 0", "a finite number > 0"),
    "cutoff_negative": (kwargs(first_cutoff=-2.0), "'first_cutoff' = -2.0"),
    "cutoff_nan": (kwargs(first_cutoff=float("nan")), "'first_cutoff' = nan"),
    "cutoff_inf": (kwargs(first_cutoff=float("inf")), "'first_cutoff' = inf"),
    "cutoff_above_nyquist": (kwargs(first_cutoff=1000.0), "first_cutoff = 1000.0", "(0, img_resolution / 2]"),
    "stopband_tiny": (kwargs(first_stopband=1e-300), "sampling rates [0, 0,", "changing by at most 16x"),
    "stopband_rel_1e9": (kwargs(last_stopband_rel=1e9), "last_stopband_rel = 1000000000.0", "[1, 16]"),
    "ema_beta_nan": (kwargs(magnitude_ema_beta=float("nan")), "'magnitude_ema_beta' = nan", "from 0.0 to 1.0"),
    "output_scale_inf": (kwargs(output_scale=float("inf")), "'output_scale' = inf", "a finite number"),
    # unknown kwargs and kwargs of the wrong type
    "unknown": (kwargs(bogus=1), "unsupported constructor arguments", "unexpected keyword argument 'bogus'"),
    "res_string": (kwargs(img_resolution="64"), "'img_resolution' = '64'"),
    "base_list": (kwargs(channel_base=[1024]), "'channel_base' = [1024]", "an integer from 1 to"),
    "cutoff_string": (kwargs(first_cutoff="2"), "'first_cutoff' = '2'"),
    "critical_string": (kwargs(num_critical="2"), "num_critical is a str; expected an integer"),
    "output_scale_string": (kwargs(output_scale="0.25"), "'output_scale' = '0.25'"),  # failed only when rendering
    "radial_string": (kwargs(use_radial_filters="yes"), "'use_radial_filters' = 'yes'", "True or False"),
    "mapping_string": (kwargs(mapping_kwargs="x"), "'mapping_kwargs' = 'x'", "a dict of constructor arguments"),
    "mapping_none_value": (mapping_kwargs(num_layers=None), "'num_layers' = None"),
    "args_too_long": (positional_args(tuple(range(7))), "7 positional constructor arguments, at most 6 expected"),
    "args_and_kwargs": (positional_args((8,)), "gives 'z_dim' both positionally and by keyword"),
}


@pytest.mark.parametrize("case", list(KWARG_CASES))
def test_hostile_constructor_kwargs_are_refused(make, case):
    patch, *fragments = KWARG_CASES[case]
    path = make(f"{case}.pkl", patch)
    msg = refused(path, *fragments)
    assert "network 'G_ema'" in msg


def test_the_builder_writes_a_loadable_checkpoint(make):
    # the hostile files differ from a loadable one only in their patch
    ckpt = load_checkpoint(make("same.pkl"))
    assert type(ckpt.G_ema) is StyleGAN3Generator and ckpt.nonfinite == {}
    assert ckpt.kwargs["G_ema"]["num_layers"] == 6 and ckpt.G_ema.synthesis.layer_names[0] == L0


# ------------------------------------------------------------------------------------------------ library: state

STATE_CASES = {
    "missing_up_filter": (drop_tensor(("synthesis", L0), "up_filter"), f"key 'synthesis.{L0}.up_filter' is missing"),
    "none_up_filter": (set_tensor(("synthesis", L0), "up_filter", None), f"'synthesis.{L0}.up_filter' is missing"),
    "missing_freqs": (drop_tensor(("synthesis", "input"), "freqs"), "key 'synthesis.input.freqs' is missing"),
    "missing_magnitude_ema": (drop_tensor(("synthesis", L2), "magnitude_ema"), f"'synthesis.{L2}.magnitude_ema'"),
    "extra_buffer": (set_tensor(("synthesis", L0), "evil", torch.zeros(3)), f"unexpected key 'synthesis.{L0}.evil'"),
    "extra_param": (
        set_tensor(("mapping", "fc0"), "evil", torch.zeros(3), "_parameters"),
        "unexpected key 'mapping.fc0.evil'",
    ),
    "filter_taps": (
        set_tensor(("synthesis", L2), "up_filter", torch.ones(13) / 13),
        f"'synthesis.{L2}.up_filter' has shape [13], expected [24]",
    ),
    "filter_2d": (
        set_tensor(("synthesis", L0), "down_filter", torch.ones(12, 12) / 144),
        f"'synthesis.{L0}.down_filter' has shape [12, 12], expected [12]",
    ),
    "transform_4x4": (
        set_tensor(("synthesis", "input"), "transform", torch.eye(4)),
        "'synthesis.input.transform' has shape [4, 4], expected [3, 3]",
    ),
    "freqs_int": (
        set_tensor(("synthesis", "input"), "freqs", torch.zeros(12, 2, dtype=torch.int32)),
        "tensor 'synthesis.input.freqs' has non-float dtype torch.int32",
    ),
    "weight_bool": (
        set_tensor(("synthesis", L6), "weight", torch.zeros(3, 12, 1, 1, dtype=torch.bool), "_parameters"),
        f"tensor 'synthesis.{L6}.weight' has non-float dtype torch.bool",
    ),
    "weight_string": (
        set_tensor(("synthesis", L0), "weight", "weights", "_parameters"),
        f"tensor 'synthesis.{L0}.weight' is a str, not a tensor",
    ),
    # a layer divides its input by sqrt(magnitude_ema): <= 0 would render NaN/inf without a word
    "magnitude_ema_negative": (
        set_tensor(("synthesis", L0), "magnitude_ema", torch.tensor(-1.0)),
        f"tensor 'synthesis.{L0}.magnitude_ema' holds -1; expected a mean square > 0",
    ),
    "magnitude_ema_zero": (
        set_tensor(("synthesis", L6), "magnitude_ema", torch.tensor(0.0)),
        f"'synthesis.{L6}.magnitude_ema' holds 0",
    ),
    # tensors whose storage claims more than the file holds
    "storage_short": (_weight(1296, bytes(8)), "torch storage of 1296 float32 elements needs 5184 bytes", "holds 8"),
    "storage_huge": (_weight(10**10, bytes(8)), "torch storage claims 10000000000 elements"),
    "storage_overlap": (_weight(12, bytes(48), stride=(0, 0, 0, 1)), "claims 1296 elements from a storage of 12"),
}


@pytest.mark.parametrize("case", list(STATE_CASES))
def test_hostile_tensors_are_refused(make, case):
    patch, *fragments = STATE_CASES[case]
    refused(make(f"{case}.pkl", patch), *fragments)


def test_nonfinite_weights_refused_unless_allowed(make, source):
    weight = module(source["G_ema"], "synthesis", L2).state["_parameters"]["weight"].clone()
    weight.view(-1)[:4] = float("nan")
    path = make("nan.pkl", set_tensor(("synthesis", L2), "weight", weight, "_parameters"))
    refused(path, f"key 'synthesis.{L2}.weight' holds non-finite values", "--allow-nonfinite")
    ckpt = load_checkpoint(path, allow_nonfinite=True)
    assert ckpt.nonfinite == {"G_ema": {f"synthesis.{L2}.weight": 4}}
    # NaN frequencies of the Fourier input are refused the same way
    freqs = torch.full((12, 2), float("inf"))
    refused(
        make("inf.pkl", set_tensor(("synthesis", "input"), "freqs", freqs)), "'synthesis.input.freqs' holds non-finite"
    )


# ------------------------------------------------------------------------------------------------ library: structure

STRUCTURE_CASES = {
    "block_among_layers": (
        set_class(("synthesis", L2), "SynthesisBlock"),
        f"at synthesis.{L2} is a 'SynthesisBlock', which is not a StyleGAN3 generator class",
    ),
    "evil_among_layers": (set_class(("synthesis", L2), "Evil"), f"at synthesis.{L2} is a 'Evil', which is not a"),
    "evil_synthesis": (set_class(("synthesis",), "Evil"), "at synthesis is a 'Evil', which is not a StyleGAN3"),
    "input_is_a_layer": (
        replace_module(("synthesis", "input"), ("synthesis", L0)),
        "at synthesis.input is a 'SynthesisLayer', expected a 'SynthesisInput' there",
    ),
    "input_declared_a_layer": (
        set_class(("synthesis", "input"), "SynthesisLayer"),  # the tensors are an input's: only the class is wrong
        "at synthesis.input is a 'SynthesisLayer', expected a 'SynthesisInput' there",
    ),
    "layer_declared_an_input": (
        set_class(("synthesis", L0), "SynthesisInput"),
        f"at synthesis.{L0} is a 'SynthesisInput'",
    ),
    "mapping_declared_a_synthesis": (set_class(("mapping",), "SynthesisNetwork"), "expected a 'MappingNetwork' there"),
    "nested_20": (nested_modules(20), "at mapping.fc0: unexpected submodule 'x' in a StyleGAN3 FullyConnectedLayer"),
    "nested_60": (nested_modules(60), "pickle nested more than 200 levels deep"),  # refused before unpickling
    "dotted_module": (rename_member(("synthesis",), "L1_28_12", "L0.x"), "at synthesis: invalid member name 'L0.x'"),
    "dotted_param": (
        rename_member(("synthesis", L0), "weight", "we.ight", "_parameters"),
        f"at synthesis.{L0}: invalid member name 'we.ight'",
    ),
    "extra_layer": (replace_module(("synthesis", "L7_64_3"), ("synthesis", L6)), "unexpected key 'synthesis.L7_64_3."),
    "submodule_int": (
        lambda g: module(g, "synthesis").state["_modules"].__setitem__(L0, 5),
        f"submodule '{L0}' is a int, not a module",
    ),
    "modules_not_a_dict": (
        lambda g: module(g, "synthesis").state.__setitem__("_modules", [1]),
        "malformed module state",
    ),
    "stylegan2_kwargs_layout": (nested_synthesis_kwargs, "unexpected keyword argument 'synthesis_kwargs'"),
}


@pytest.mark.parametrize("case", list(STRUCTURE_CASES))
def test_hostile_module_trees_are_refused(make, case):
    patch, *fragments = STRUCTURE_CASES[case]
    refused(make(f"{case}.pkl", patch), *fragments)


def test_truncated_files_are_refused(make, tmp_path):
    full = open(make("full.pkl"), "rb").read()
    for offset in (0, 1, 2, 100, len(full) // 3, len(full) // 2, len(full) - 2, len(full) - 1):
        path = tmp_path / f"cut{offset}.pkl"
        path.write_bytes(full[:offset])
        refused(str(path), "truncated or not a pickle")


def _os_system_global(marker):
    """A patch that splices `os.system('touch MARKER')` (GLOBAL 'os system', REDUCE) into the pickle as a kwarg."""

    def patch(g):
        g.state["_init_kwargs"]["evil"] = "SPLICE_HERE"
        data = pickle.dumps(to_official({"G_ema": g}), protocol=2)  # protocol 2 writes strings as BINUNICODE
        placeholder = b"X" + len(b"SPLICE_HERE").to_bytes(4, "little") + b"SPLICE_HERE"
        command = f"touch {marker}".encode()
        call = b"cos\nsystem\n" + b"X" + len(command).to_bytes(4, "little") + command + b"\x85R"
        assert data.count(placeholder) == 1
        return data.replace(placeholder, call)

    return patch


class _System:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)  # pickle writes the global as 'posix.system' (STACK_GLOBAL)


def test_code_in_the_file_never_runs(make, tmp_path):
    marker = tmp_path / "ran"
    refused(make("global.pkl", _os_system_global(marker)), "refuses global 'os.system'")
    refused(make("stack_global.pkl", kwargs(evil=_System(f"touch {marker}"))), "refuses global 'posix.system'")
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------ the Python API

PYTHON_CASES = {
    "conv_kernel": dict(conv_kernel=0),
    "filter_size": dict(filter_size=-2),
    "lrelu_upsampling": dict(lrelu_upsampling=0.5),
    "output_scale": dict(output_scale="x"),
    "output_scale_list": dict(output_scale=[1]),
    "output_scale_none": dict(output_scale=None),
    "mapping_kwargs": dict(mapping_kwargs="x"),
    "margin_size": dict(margin_size="3"),
    "num_critical": dict(num_critical=1.0),
    "first_cutoff": dict(first_cutoff="2"),
    "first_stopband": dict(first_stopband=None),
    "magnitude_ema_beta": dict(magnitude_ema_beta=2),
    "use_radial_filters": dict(use_radial_filters="no"),
}


@pytest.mark.parametrize("case", list(PYTHON_CASES))
def test_bad_python_arguments_are_config_errors(case):
    values = PYTHON_CASES[case]
    args = dict(z_dim=4, c_dim=0, w_dim=4, img_resolution=16, img_channels=3, channel_base=64, channel_max=8)
    args.update({"num_layers": 4, "num_critical": 1, **values})
    with pytest.raises(ConfigError) as e:
        StyleGAN3Generator(**args)
    assert str(e.value).startswith("StyleGAN3") and next(iter(values)) in str(e.value), str(e.value)


def test_layer_schedule_checks_types_itself():
    args = dict(img_resolution=16, img_channels=3, channel_base=64, channel_max=8, num_layers=4, num_critical=1)
    args.update(first_cutoff=2, first_stopband=2**2.1, last_stopband_rel=2**0.3, margin_size=10, num_fp16_res=0)
    assert len(layer_schedule(**args)) == 5
    for name, value in (("margin_size", "3"), ("num_layers", 4.0), ("first_cutoff", None), ("num_critical", True)):
        with pytest.raises(ConfigError, match=f"StyleGAN3Synthesis: {name} is a "):
            layer_schedule(**dict(args, **{name: value}))


# ------------------------------------------------------------------------------------------------ the real CLI


@pytest.mark.slow
def test_cli_refuses_hostile_stylegan3_files(make, tmp_path):
    marker = tmp_path / "ran"
    cases = [
        (make("res.pkl", kwargs(img_resolution=2**20)), "'img_resolution' = 1048576"),
        (make("storage.pkl", _weight(1296, bytes(8))), "needs 5184 bytes"),
        (make("input.pkl", set_class(("synthesis", "input"), "SynthesisLayer")), "expected a 'SynthesisInput'"),
        (make("ema.pkl", set_tensor(("synthesis", L0), "magnitude_ema", torch.tensor(-1.0))), "mean square > 0"),
        (make("global.pkl", _os_system_global(marker)), "refuses global 'os.system'"),
    ]
    full = open(make("full.pkl"), "rb").read()
    (tmp_path / "cut.pkl").write_bytes(full[: len(full) // 2])
    cases.append((str(tmp_path / "cut.pkl"), "truncated or not a pickle"))
    for path, fragment in cases:
        proc = run_capped(["info", path], tmp_path, timeout=60)
        assert_one_line_error(proc, f"{path}: ", fragment)
    assert not marker.exists()
    assert_no_leftovers(tmp_path)
