"""TorchScript classifiers are programs: latentlab loads one only on explicit trust.

The library takes `trust_code=True` (`load_classifier`, `TorchScriptClassifier`), the command line `--trust-code`
on every command with --classifier, the analyses/ scripts the same flag. Without it the spec is refused with one
line naming the file, saying that it is a program, how to opt in and the safe alternative (a state dict), before
the file is opened and before any model is loaded.
"""

import importlib
import importlib.util
import os
import sys

import click
import pytest
import torch
from hostile import assert_no_leftovers, assert_one_line_error, run_capped

from conftest import fixture_path, run_cli
from latentlab.attributes import Preprocess, TorchScriptClassifier, load_classifier
from latentlab.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated, still what we read

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADA = fixture_path("sg2ada_skip32.pkl")


def _assert_refusal(message, path):
    assert "\n" not in message, message
    for part in (str(path), "TorchScript", "program", "runs code", "--trust-code", "trust_code=True", "state dict"):
        assert part in message, (part, message)


def test_library_refuses_torchscript_without_trust_before_opening_it(mean_colour_torchscript, monkeypatch):
    path = mean_colour_torchscript

    def no_load(*args, **kwargs):
        raise AssertionError("torch.jit.load ran without trust")

    monkeypatch.setattr(torch.jit, "load", no_load)
    attempts = [
        lambda: load_classifier(f"torchscript:{path}"),
        lambda: load_classifier(f"torchscript:{path}", trust_code=False),
        lambda: TorchScriptClassifier(path),
        lambda: TorchScriptClassifier(path, names=["r", "g", "b"], preprocess=Preprocess()),
    ]
    for attempt in attempts:
        with pytest.raises(ConfigError) as e:
            attempt()
        _assert_refusal(str(e.value), path)
    # the refusal comes first: a missing file is refused the same way, without looking for it
    with pytest.raises(ConfigError, match="is a program"):
        load_classifier("torchscript:/nowhere/clf.pt")


def test_library_loads_torchscript_with_trust(tmp_path, mean_colour_torchscript):
    torch.manual_seed(0)
    x = torch.rand(3, 3, 8, 8) * 2 - 1  # generator range
    plain = Preprocess(input_range=(0, 1))  # [-1, 1] -> [0, 1], no resize: logits = channel means of (x + 1) / 2
    clf = TorchScriptClassifier(mean_colour_torchscript, names=["r", "g", "b"], preprocess=plain, trust_code=True)
    with torch.no_grad():
        torch.testing.assert_close(clf(x), (x.mean(dim=(2, 3)) + 1) / 2)
    # through the spec: the output count is probed by running the (trusted) program
    assert load_classifier(f"torchscript:{mean_colour_torchscript}", trust_code=True).names == [
        "attr0",
        "attr1",
        "attr2",
    ]
    # other classifiers ignore the flag (they read data, never code)
    table = tmp_path / "scores.csv"
    table.write_text("seed,smile\n0,1.5\n1,-2.0\n")
    for trust in (False, True):
        assert load_classifier(f"table:{table}", trust_code=trust).scores_for([1]).tolist() == [[-2.0]]


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), cmd


def test_every_classifier_option_comes_with_trust_code():
    from latentlab.cli.main import app

    with_classifier = {
        name: cmd for name, cmd in _commands(app) if any(p.name == "classifier_spec" for p in cmd.params)
    }
    assert {"als", "corr", "sample"} <= set(with_classifier)
    for name, cmd in with_classifier.items():
        trust = [p for p in cmd.params if p.name == "trust_code"]
        assert len(trust) == 1 and trust[0].is_flag, name
        helps = {p.name: " ".join(p.help.split()) for p in cmd.params if p.name in ("trust_code", "classifier_spec")}
        assert "runs code from the file" in helps["trust_code"] and "state dicts" in helps["trust_code"], name
        assert "torchscript:FILE (a program: needs --trust-code)" in helps["classifier_spec"], name


def test_commands_refuse_torchscript_without_trust_before_loading_the_model(capsys, tmp_path, mean_colour_torchscript):
    spec = f"torchscript:{mean_colour_torchscript}"
    missing_model = tmp_path / "no-such-model.pkl"  # would be the error if the model were loaded first
    runs = {
        "sample": ["sample", "--model", missing_model, "--n", "2", "--classifier", spec, "--out", tmp_path / "s"],
        "als": ["als", "--model", missing_model, "--classifier", spec, "--n", "2", "--out", tmp_path / "a"],
        "corr": ["corr", "--model", missing_model, "--classifier", spec, "--seeds", "0-1", "--out", tmp_path / "c"],
    }
    for name, args in runs.items():
        code, out, err = run_cli(capsys, *args)
        assert code == 1, (name, code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("latentlab: error: "), (name, err)
        _assert_refusal(lines[0], mean_colour_torchscript)
        assert "no-such-model" not in err, name
        out = args[-1]
        assert not out.exists() or not any(out.iterdir()), (name, os.listdir(out))  # nothing written


def test_sample_accepts_a_trusted_torchscript_classifier(capsys, tmp_path, mean_colour_torchscript):
    from latentlab.sampling import SampleTable

    args = ["sample", "--model", ADA, "--n", "2", "--batch", "2", "--classifier"]
    args += [f"torchscript:{mean_colour_torchscript}", "--out", tmp_path / "o", "--device", "cpu"]
    code, _, err = run_cli(capsys, *args)
    assert code == 1 and "--trust-code" in err  # the same run without the flag
    code, _, err = run_cli(capsys, *args, "--trust-code")
    assert code == 0, err
    t = SampleTable(tmp_path / "o")
    assert t.seeds().tolist() == [0, 1] and len(t.names) == 3  # one logit per channel


@pytest.mark.slow  # a subprocess importing torch: 3-7 s on 2 shared cores
def test_real_cli_refuses_torchscript_in_one_line(tmp_path, mean_colour_torchscript):
    proc = run_capped(
        ["sample", "--n", "2", "--classifier", f"torchscript:{mean_colour_torchscript}", "--out", tmp_path / "o"],
        tmp_path,
    )
    line = assert_one_line_error(proc, str(mean_colour_torchscript), "--trust-code", exit_codes=(1,))
    _assert_refusal(line, mean_colour_torchscript)
    assert_no_leftovers(tmp_path)


def _script(name):
    spec = importlib.util.spec_from_file_location(f"{name}_trust_test", os.path.join(ROOT, "analyses", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_analyses_scripts_take_trust_code(capsys, tmp_path, monkeypatch, mean_colour_torchscript):
    script = _script("truncation_report")
    base = ["truncation_report.py", "--model", ADA, "--classifier", f"torchscript:{mean_colour_torchscript}"]
    base += ["--seeds", "0-1", "--variants", "none", "--out", str(tmp_path / "t")]
    monkeypatch.setattr(sys, "argv", base)
    with pytest.raises(SystemExit) as e:
        script.main()
    assert str(e.value.code).startswith("truncation_report.py: error: ")
    _assert_refusal(str(e.value.code), mean_colour_torchscript)
    for name in ("als_report", "correlation_report", "toyfaces_model_report", "toyfaces_inversion_report"):
        monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
        with pytest.raises(SystemExit) as e:
            _script(name).main()
        assert e.value.code == 0
        assert "--trust-code" in " ".join(capsys.readouterr().out.split()), name


# modules whose MAX_* constants the README's safety table lists (path under latentlab/ as the table names it)
LIMIT_MODULES = {
    "utils/limits.py": "latentlab.utils.limits",
    "checkpoints/state_dicts.py": "latentlab.checkpoints.state_dicts",
    "utils/safe_json.py": "latentlab.utils.safe_json",
    "utils/npy.py": "latentlab.utils.npy",
    "latents/directions.py": "latentlab.latents.directions",
    "datasets/images.py": "latentlab.datasets.images",
}


def _readme_limits():
    """{(name, file): value} from the README's safety table; values such as 4096, 500,000,000 or 64 MiB."""
    import re

    text = open(os.path.join(ROOT, "README.md")).read()
    section = text.split("\n## Safety\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for m in re.finditer(r"^\| `(MAX_\w+)` \| ([\d,]+)( MiB)? \| `([\w/.]+)` \|", section, re.M):
        value = int(m.group(2).replace(",", "")) << (20 if m.group(3) else 0)
        rows[m.group(1), m.group(4)] = value
    return section, rows


def test_readme_safety_section_lists_every_limit_with_its_value():
    section, rows = _readme_limits()
    for part in ("--trust-code", "trust_code=True", "allowlist", "--allow-nonfinite", ".latentlab-lock", ".tmp-*"):
        assert part in section, part
    expected = {}
    central = vars(importlib.import_module("latentlab.utils.limits"))
    for where, module in LIMIT_MODULES.items():
        mod = importlib.import_module(module)
        own = {
            k: v
            for k, v in vars(mod).items()
            if k.startswith("MAX_") and isinstance(v, int) and (where == "utils/limits.py" or k not in central)
        }  # a module that imports a limit from utils/limits.py does not define it
        expected.update({(k, where): v for k, v in own.items()})
    assert rows == expected
