"""What every command shares (issue 13): instant --help, `python -m latentlab` and torchrun, the global
--debug / --threads flags, one meaning per option name (with hidden old spellings), progress everywhere."""

import io
import json
import os
import re
import shlex
import socket
import subprocess
import sys

import click
import pytest

from conftest import fixture_path, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
HEAVY = (
    "torch",
    "numpy",
    "PIL",
    "pandas",
    "matplotlib",
    "sklearn",
    "tqdm",
    "latentlab.checkpoints",
    "latentlab.models",
)


def walk(group, prefix=()):
    """(path, command) of the group itself and of every command below it, groups included."""
    yield prefix, group
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from walk(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def leaves(group):
    return [(p, c) for p, c in walk(group) if not isinstance(c, click.Group)]


def visible(cmd):
    return [
        (o, p) for p in cmd.params if isinstance(p, click.Option) and not p.hidden for o in p.opts + p.secondary_opts
    ]


# ---------------------------------------------------------------------------------------------- fast start
HELP_PROBE = r"""
import json, sys
import click
from latentlab.cli.main import app
from latentlab.cli.errors import run
def walk(g, p=()):
    yield p
    for n, c in g.commands.items():
        yield from (walk(c, p + (n,)) if isinstance(c, click.Group) else [p + (n,)])
codes = {" ".join(p): run(app, [*p, "--help"]) for p in walk(app)}
heavy = sorted(m for m in HEAVY if m in sys.modules)
import latentlab
before = "torch" in sys.modules
latentlab.load_generator  # first use imports the library for real
print("RESULT " + json.dumps(dict(codes=codes, heavy=heavy, before=before, after="torch" in sys.modules)))
"""


def test_every_help_is_answered_without_importing_torch():
    p = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + HELP_PROBE],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads(p.stdout.split("RESULT ", 1)[1])
    assert len(res["codes"]) > 20 and set(res["codes"].values()) == {0}, res["codes"]
    assert "train gan" in res["codes"] and "" in res["codes"]
    assert res["heavy"] == [], f"--help imported {res['heavy']}"
    assert res["before"] is False and res["after"] is True  # lazy, not broken


def test_python_m_latentlab_help_importtime():
    """`python -X importtime -m latentlab --help`: the module form works and no torch module is imported."""
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "latentlab", "--help"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.startswith("Usage: latentlab ") and "--threads" in p.stdout and "torchrun" in p.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert "latentlab.cli.main" in imported and "latentlab" in imported
    assert not [m for m in imported if m.split(".")[0] in ("torch", "numpy")], sorted(imported)


def test_import_latentlab_is_light_and_every_public_name_resolves():
    import importlib

    import latentlab

    origin = {
        "Checkpoint": "latentlab.checkpoints",
        "convert": "latentlab.checkpoints",
        "load_checkpoint": "latentlab.checkpoints",
        "load_generator": "latentlab.checkpoints",
        "load_classifier": "latentlab.attributes",
        "parse_seeds": "latentlab.latents",
        "z_from_seeds": "latentlab.latents",
        "Discriminator": "latentlab.models",
        "Generator": "latentlab.models",
        "als": "latentlab.studies.als",
        "train_boundary": "latentlab.boundaries.svm",
        "CheckpointError": "latentlab.errors",
    }
    assert sorted(latentlab.__all__) == sorted(origin)
    for name, module in origin.items():
        assert getattr(latentlab, name) is getattr(importlib.import_module(module), name), name
        assert name in dir(latentlab)
    namespace = {}
    exec("from latentlab import *", namespace)
    assert namespace["load_generator"] is latentlab.checkpoints.load_generator
    assert latentlab.models.Generator is latentlab.Generator and latentlab.__version__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        latentlab.nope  # noqa: B018
    from latentlab import Generator, als  # noqa: F401  (PEP 562 from-imports)


# ---------------------------------------------------------------------------------------------- torchrun
def _documented_torchrun_lines():
    """Every torchrun command line in the README and in the commands' --help."""
    from latentlab.cli.main import app

    texts = [open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()]
    texts += [cmd.help or "" for _, cmd in walk(app)]
    lines = []
    for text in texts:
        for m in re.finditer(r"torchrun [^\n`]*", text):
            line = m.group(0).rstrip(" \\")
            if " -m " in line and "..." not in line:
                lines.append(line)
    return lines


def _parse_as_latentlab(args):
    """Parse `args` (no program name) as the latentlab command line would, without running it: the command."""
    from latentlab.cli.main import app

    cmd, words = app, list(args)
    if words[:1] == ["--"]:
        words = words[1:]
    while isinstance(cmd, click.Group):
        cmd = cmd.commands[words.pop(0)]
    cmd.make_context(cmd.name, words, resilient_parsing=True)  # unknown options and bad values raise here
    return cmd


def test_torchrun_passes_every_documented_command_line_through():
    from torch.distributed.run import get_args_parser

    lines = _documented_torchrun_lines()
    assert len(lines) >= 4, lines  # sample, ppl, train gan, the group's example, README's
    parser = get_args_parser()
    for line in lines:
        argv = shlex.split(line)[1:]
        a = parser.parse_args(argv)
        assert a.module and a.training_script == "latentlab", line
        after = argv[argv.index("--") + 1 :]
        assert a.training_script_args == after, line  # nothing swallowed by torchrun
        _parse_as_latentlab(a.training_script_args)


def test_torchrun_without_the_separator_claims_n_itself(capsys):
    """Why the docs write `-m latentlab -- CMD`: torchrun's argparse takes --n as an abbreviation of its own options."""
    from torch.distributed.run import get_args_parser

    with pytest.raises(SystemExit):
        get_args_parser().parse_args(shlex.split("--nproc_per_node 2 -m latentlab sample --n 100 --out o"))
    assert "ambiguous option: --n" in capsys.readouterr().err


def test_leading_separator_is_accepted(capsys):
    """`python -m latentlab -- sample ...` passes the `--` on to the CLI: it is dropped there."""
    code, out, err = run_cli(capsys, "--", "models", "--help")
    assert code == 0 and "Usage: latentlab models" in out, err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_under_torchrun_only_rank_0_prints(tmp_path):
    """Two gloo ranks (the environment torchrun sets) of `als`: rank 0 shows progress and results, rank 1 nothing."""
    env = dict(
        ENV, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE="2", LATENTLAB_PROGRESS_INTERVAL="0"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "latentlab", "als", "--n", "4", "--frames", "3", "--device", "cpu"],
            env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    (out0, err0), (out1, err1) = [p.communicate(timeout=300) for p in procs]
    assert procs[0].returncode == 0 and procs[1].returncode == 0, err0[-2000:] + err1[-2000:]
    assert "mean ALS (paper, 4 pairs, 2 steps, w)" in out0
    assert "als (rank 0 of 2): 100%" in err0 and "2/2" in err0  # rank 0's share of the 4 pairs
    assert "embedded toyfaces model" in err0
    assert out1 == "" and err1.strip() == "", err1


# ---------------------------------------------------------------------------------------------- global flags
def test_every_command_takes_debug_and_threads():
    from latentlab.cli.main import app

    for path, cmd in walk(app):
        names = {o for p in cmd.params for o in getattr(p, "opts", ())}
        assert {"--debug", "--threads"} <= names, path


def _probe_group():
    import torch

    from latentlab.cli.conventions import add_global_options

    seen = []

    @click.group()
    def group():
        pass

    @group.command()
    def probe():
        seen.append(torch.get_num_threads())

    add_global_options(group)
    return group, seen


@pytest.mark.parametrize("args", [("--threads", "3", "probe"), ("probe", "--threads", "3"), ("probe", "--threads=3")])
def test_threads_is_set_before_the_work_and_restored(args):
    import torch

    from latentlab.cli.errors import run

    group, seen = _probe_group()
    before = torch.get_num_threads()
    assert run(group, list(args)) == 0
    assert seen == [3] and torch.get_num_threads() == before


def test_threads_refuses_zero_in_one_line(capsys):
    code, _, err = run_cli(capsys, "models", "--threads", "0")
    assert code == 2 and "--threads" in err and len(err.strip().splitlines()) == 1


def test_debug_after_the_command_shows_the_traceback(capsys, tmp_path):
    from latentlab.cli.errors import run
    from latentlab.cli.main import app
    from latentlab.errors import CheckpointError

    missing = str(tmp_path / "missing.pkl")
    code, _, err = run_cli(capsys, "info", missing)
    assert code == 1 and err.startswith("latentlab: error:") and len(err.strip().splitlines()) == 1
    for argv in (["info", missing, "--debug"], ["--debug", "info", missing], ["--", "info", "--debug", missing]):
        with pytest.raises(CheckpointError):
            run(app, argv)


# ---------------------------------------------------------------------------------------------- option names
def _kind(t):
    if isinstance(t, click.IntRange) or t is click.INT:
        return "int"
    if isinstance(t, click.FloatRange) or t is click.FLOAT:
        return "float"
    if isinstance(t, click.Choice):
        return "choice"
    if t is click.BOOL:
        return "flag"
    if isinstance(t, click.Path) or t is click.STRING:
        return "text"
    return type(t).__name__


def test_option_naming_rules():
    """One meaning per option name, across every command (see cli/conventions.py)."""
    from latentlab.cli.conventions import AlphaSpec
    from latentlab.cli.main import app
    from latentlab.cli.options import FiniteFloat

    problems, kinds = [], {}
    for path, cmd in leaves(app):
        where = " ".join(path)
        training = path[0] in ("train", "project")  # --steps: optimisation steps (training, projection)
        for opt, p in visible(cmd):
            kinds.setdefault(opt, {}).setdefault(_kind(p.type), []).append(where)
            rules = {
                "--psi": "truncation psi is --trunc",
                "--samples": "a count is --n, a sample folder --samples-dir",
                "--pairs": "a count is --n",
                "--image-size": "an image side is --resolution",
                "--grids": "a report folder is --out",
            }
            if opt in rules:
                problems.append(f"{where} {opt}: {rules[opt]}")
            if opt == "--steps" and not training:
                problems.append(f"{where} --steps: frames of a path are --frames; --steps is for training")
            if opt == "--alpha" and not isinstance(p.type, AlphaSpec):
                problems.append(f"{where} --alpha: not the shared value/list/range syntax")
            if opt == "--trunc" and not isinstance(p.type, FiniteFloat):
                problems.append(f"{where} --trunc: not a finite float")
            if opt in ("--n", "--frames") and _kind(p.type) != "int":
                problems.append(f"{where} {opt}: not an integer")
            if opt == "--samples-dir" and not (isinstance(p.type, click.Path) and not p.type.file_okay):
                problems.append(f"{where} --samples-dir: not a folder")
            if opt == "--out" and not (p.metavar == "DIR" or (isinstance(p.type, click.Path) and not p.type.file_okay)):
                problems.append(f"{where} --out: not a folder")
            if opt == "--model" and p.type is not click.STRING:
                problems.append(f"{where} --model: must accept registry names and URLs (plain text)")
            if opt == "--classifier" and isinstance(p.type, click.Choice):
                problems.append(f"{where} --classifier: a classifier spec everywhere (this is a choice)")
            if isinstance(p.type, (click.types.FloatParamType, click.FloatRange)) and not isinstance(
                p.type, FiniteFloat
            ):
                problems.append(f"{where} {opt}: a float that accepts nan/inf")
            if "coarse" in (p.help or "") and "middle" in (p.help or "") and "medium" not in (p.help or ""):
                problems.append(f"{where} {opt}: levels without the 'medium' alias")
    for opt, by_kind in kinds.items():
        if len(by_kind) > 1:
            problems.append(f"{opt} means different things: {by_kind}")
    assert not problems, "\n".join(problems)


def _sample_value(p):
    k = _kind(p.type)
    return {
        "int": "3",
        "float": "0.5",
        "choice": p.type.choices[-1] if isinstance(p.type, click.Choice) else "x",
        "AlphaSpec": "-1:1:3",
    }.get(k, "some_value")


def test_old_spellings_are_hidden_aliases_that_still_parse(capsys):
    from latentlab.cli.conventions import Aliased
    from latentlab.cli.main import app

    found = set()
    for path, cmd in leaves(app):
        ctx = click.Context(cmd, info_name=path[-1])
        help_text = cmd.get_help(ctx)
        for p in cmd.params:
            if not isinstance(p, Aliased):
                continue
            value = _sample_value(p)
            new = cmd.make_context(path[-1], [p.opts[0], value], resilient_parsing=True).params[p.name]
            for old in p.aliases:
                found.add(old)
                assert not re.search(rf"{re.escape(old)}\b(?!-)", help_text), f"{path} shows {old}"
                assert cmd.make_context(path[-1], [old, value], resilient_parsing=True).params[p.name] == new
                with pytest.raises(click.UsageError, match="not both"):
                    cmd.make_context(path[-1], [old, value, p.opts[0], value])
    assert {"--psi", "--samples", "--pairs", "--steps", "--image-size", "--classifier"} <= found


@pytest.mark.parametrize(
    "argv,param,value",
    [
        (("interpolate", "--steps", "5"), "steps", 5),  # interpolate's frames kept their count
        (("boundary", "--samples", "d", "--attr", "x"), "samples", "d"),
        (("separability", "--samples", "d"), "samples", "d"),
        (("ppl", "--samples", "7"), "num_samples", 7),
        (("als", "--pairs", "7"), "pairs", 7),
        (("truncate", "--psi", "0.3"), "clusters_psi", 0.3),
        (("train", "clusters", "--psi", "0.5", "--steps", "1"), "psi", 0.5),
        (("train", "clusters", "--classifier", "image", "--steps", "1"), "classifier", "image"),
        (("train-classifier", "--image-size", "32"), "image_size", 32),
    ],
)
def test_each_old_spelling_reaches_the_same_parameter(argv, param, value):
    from latentlab.cli.main import app

    cmd, words = app, list(argv)
    while isinstance(cmd, click.Group):
        cmd = cmd.commands[words.pop(0)]
    assert cmd.make_context(cmd.name, words, resilient_parsing=True).params[param] == value


def test_als_old_steps_are_intervals_and_frames_include_both_ends(capsys, tmp_path):
    from latentlab.cli.conventions import frames_or_old_steps
    from latentlab.cli.main import app

    cmd = app.commands["als"]
    ctx = cmd.make_context("als", ["--steps", "10"])
    with ctx:
        assert frames_or_old_steps(ctx.params["frames"], ctx.params["old_steps"]) == 11  # t = k/10, k = 0..10
    ctx = cmd.make_context("als", ["--steps", "10", "--frames", "11"])
    with ctx, pytest.raises(click.UsageError, match="not both"):
        frames_or_old_steps(ctx.params["frames"], ctx.params["old_steps"])
    assert cmd.make_context("als", []).params["frames"] == 11  # the paper's 10 steps, as before
    os.chdir(tmp_path)
    code, out, err = run_cli(capsys, "als", "--n", "2", "--frames", "3", "--attrs", "smile")
    assert code == 0, err
    assert "2 pairs, 2 steps" in out  # 3 frames = t in {0, 1/2, 1}


@pytest.mark.parametrize(
    "args,message",
    [
        (("als", "--alpha", "1,2"), "one value per run, got 2"),
        (("als", "--alpha", "nan"), "finite"),
        (("corr", "--alpha", "nan"), "finite"),
        (("corr", "--alpha", "1:2"), "start:stop:count"),
        (("edit", "--alpha", "inf"), "finite"),
    ],
)
def test_alpha_has_one_syntax_and_one_line_errors(capsys, tmp_path, args, message):
    os.chdir(tmp_path)
    code, out, err = run_cli(capsys, *args)
    assert code != 0 and message in err and "--alpha" in err and len(err.strip().splitlines()) == 1, err
    assert not os.listdir(tmp_path)  # refused before any work


def test_als_alpha_accepts_the_range_syntax_for_its_single_value():
    from latentlab.cli.conventions import one_alpha

    assert one_alpha("2") == 2.0 and one_alpha("2:2:1") == 2.0 and one_alpha("-1.5,") == -1.5


def test_medium_is_middle_everywhere(tiny_generator):
    from latentlab.cli.main import app
    from latentlab.latents import parse_layers

    G = tiny_generator
    assert parse_layers("medium", G) == parse_layers("middle", G) != parse_layers("coarse", G)
    for name in ("edit", "mix"):
        layers = next(p for p in app.commands[name].params if p.name == "layers")
        assert "medium" in layers.help
    levels = next(p for p in app.commands["train"].commands["clusters"].params if p.name == "levels")
    assert "medium" in levels.help


def test_train_gan_model_takes_a_registry_name(capsys, tmp_path):
    """--model resolves names like every other --model: the embedded model (G_ema and D) is found and loaded, and
    the run goes on to the data (here an empty folder, refused in one line)."""
    from latentlab.train.runs import load_for_finetuning

    G, D, G_ema = load_for_finetuning("toyfaces")
    assert D is not None and G is not G_ema and (D.img_resolution, G.img_resolution) == (64, 64)
    os.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    code, _, err = run_cli(
        capsys,
        "train",
        "gan",
        "--model",
        "toyfaces",
        "--data",
        tmp_path / "data",
        "--steps",
        "1",
        "--out",
        tmp_path / "run",
    )
    assert code == 1 and f"{tmp_path / 'data'}: no images found" in err and len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------------------------------------- progress
class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _bar(buf, clock, **kw):
    from latentlab.utils.progress import progress_bar

    kw.setdefault("mininterval", 0)
    return progress_bar(file=buf, clock=clock, **kw)


def test_progress_outside_a_terminal_is_one_line_per_update(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LATENTLAB_PROGRESS", raising=False)
    buf = io.StringIO()
    with _bar(buf, Clock(), total=10, desc="ppl", unit="pair", delay=0) as bar:
        for _ in range(5):
            bar.update(2)
    text = buf.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert lines[0].startswith("ppl:   0%") and lines[-1].startswith("ppl: 100%") and "10/10" in lines[-1]
    assert len(lines) == 6 and len(set(lines)) == 6  # 0, 2, 4, 6, 8, 10: the closing redraw is not repeated

    buf = io.StringIO()
    with _bar(buf, Clock(), total=100, desc="training", mininterval=3600, delay=0) as bar:
        for i in range(100):
            bar.set_postfix(loss=f"{i:.3f}")  # tqdm redraws on every postfix: one log line per step
            bar.update(1)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("training: 100%") and "loss=99.000" in lines[-1], lines

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty = Terminal()
    with _bar(tty, Clock(), total=4, desc="x") as bar:
        bar.update(4)
    assert "\r" in tty.getvalue()  # a terminal keeps tqdm's redraw in place


def test_progress_estimate_for_large_work(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    clock, buf = Clock(), io.StringIO()
    bar = _bar(buf, clock, total=100_000, desc="ppl", unit="pair", what="PPL pairs", hint="use --n to reduce")
    clock.t = 1.0
    bar.update(16)  # the first batch carries the warm-up: not measured
    assert bar.estimate_text is None
    clock.t = 3.0
    bar.update(16)  # 16 pairs in 2 s: 8/s; 100000 / 8 = 12500 s = 208 min
    bar.close()
    expected = "latentlab: 100,000 PPL pairs at ~8/s on this machine: ~3 h 28 min; use --n to reduce"
    assert bar.estimate_text == expected and expected + "\n" in buf.getvalue()

    clock, buf = Clock(), io.StringIO()
    small = _bar(buf, clock, total=400, what="PPL pairs")
    for t in (1.0, 3.0, 5.0):
        clock.t = t
        small.update(16)  # 50 s in all: no estimate
    small.close()
    assert small.estimate_text is None and "latentlab:" not in buf.getvalue()

    clock, buf = Clock(), io.StringIO()
    resumed = _bar(buf, clock, total=1000, initial=400, unit="img", what="samples")
    clock.t = 12.0
    resumed.update(60)  # a slow first batch (>= 5 s) is measured from the start: 5/s; 600 left = 120 s
    resumed.close()
    assert resumed.estimate_text == "latentlab: 600 samples left at ~5/s on this machine: ~2 min"

    clock, buf = Clock(), io.StringIO()
    it = _bar(buf, clock, iterable=range(300), total=300, what="batches")
    for i, _ in enumerate(it):
        clock.t = 0.5 * (i + 1)  # iterating counts too: 2/s, 300 items = 150 s
    assert it.estimate_text == "latentlab: 300 batches at ~2/s on this machine: ~2 min"


def test_format_duration_and_rate():
    from latentlab.utils.progress import format_duration, format_rate

    assert [format_duration(s) for s in (0.2, 40, 89, 90, 6660, 3600, 200_000)] == [
        "1 s",
        "40 s",
        "89 s",
        "2 min",
        "1 h 51 min",
        "1 h",
        "2 d 7 h",
    ]
    assert [format_rate(r) for r in (15.2, 2.44, 0.2, 1234.0)] == ["15/s", "2.4/s", "1 per 5 s", "1,234/s"]


def test_progress_only_on_rank_0_and_switchable(monkeypatch):
    from latentlab.utils.progress import rank_share

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    buf = io.StringIO()
    with _bar(buf, Clock(), total=4, desc="als", delay=0) as bar:
        bar.update(4)
    assert buf.getvalue() == ""
    monkeypatch.setenv("RANK", "0")
    with _bar(buf, Clock(), total=rank_share(5), desc="als", delay=0) as bar:
        bar.update(3)
    assert "als (rank 0 of 2): 100%" in buf.getvalue() and "3/3" in buf.getvalue()
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("LATENTLAB_PROGRESS", "0")
    buf = io.StringIO()
    with _bar(buf, Clock(), total=4, delay=0) as bar:
        bar.update(4)
    assert buf.getvalue() == ""


def test_commands_show_progress_when_stderr_is_not_a_terminal(capsys, tmp_path, monkeypatch):
    """tqdm's disable=None hid every bar in a pipe or log; now a line per update (interval 0 here) reaches stderr."""
    monkeypatch.setenv("LATENTLAB_PROGRESS_INTERVAL", "0")
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    code, out, err = run_cli(
        capsys,
        "generate",
        "--model",
        fixture_path("sg2ada_skip32.pkl"),
        "--seeds",
        "0-3",
        "--batch",
        "2",
        "--out",
        tmp_path / "g",
    )
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("generate:")]
    assert lines and "\r" not in err and "4/4" in lines[-1] and lines[-1].startswith("generate: 100%"), err


def test_progress_helper_replaces_every_direct_tqdm_bar():
    """One helper for every bar: no command or library module builds a tqdm bar of its own."""
    offenders = []
    for folder in ("cli", "latentlab"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            for f in files:
                if not f.endswith(".py") or f == "progress.py":
                    continue
                text = open(os.path.join(dirpath, f), encoding="utf-8").read()
                if re.search(r"\btqdm\(", text) or "tqdm.auto" in text:
                    offenders.append(os.path.relpath(os.path.join(dirpath, f), ROOT))
    assert not offenders, offenders
