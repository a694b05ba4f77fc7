"""checkpoints/toyfaces/build.sh: FROM runs the steps from one on, DRY=1 prints them, and every latentlab command
line it holds parses against the current CLI (a renamed option would otherwise surface only at the next rebuild)."""

import os
import shlex
import shutil
import subprocess

import click
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "checkpoints", "toyfaces", "build.sh")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def dry(**env):
    """(exit code, the printed commands as argument lists, stderr) of a DRY=1 run."""
    full = dict(os.environ, WORK="/w", DRY="1", **env)
    for k in ("FROM", "STEPS", "V2_STEPS", "V4_STEPS", "SKIP_TRAINING"):
        if k not in env:
            full.pop(k, None)
    p = subprocess.run(["bash", SCRIPT], env=full, capture_output=True, text=True, timeout=60)
    lines = [shlex.split(line[2:]) for line in p.stdout.splitlines() if line.startswith("+ ")]
    return p.returncode, lines, p.stderr


def test_from_runs_that_step_and_the_ones_after_it():
    code, lines, err = dry(FROM="5")
    assert code == 0, err
    assert lines[0] == ["rm", "-rf", "/w/samples"] and lines[1][:2] == ["latentlab", "sample"]
    assert lines[-1] == ["sweep_floor", "/w/data/images"]
    assert not any(cmd[:3] == ["latentlab", "train", "gan"] for cmd in lines)  # the generator's steps are done
    assert ["latentlab", "train", "encoder"] in [cmd[:3] for cmd in lines]  # steps 7 and 9 train their own
    code, skipped, err = dry(FROM="5", SKIP_TRAINING="1")
    assert code == 0, err
    assert not any(cmd[1:3] == ["train", "encoder"] or cmd[1:3] == ["train", "clusters"] for cmd in skipped)
    assert len(skipped) == len(lines) - 3  # the encoder's convert + training, the clusters' training
    # the whole build: step 1 first, the snapshots named by STEPS, V2_STEPS and V4_STEPS
    code, every, err = dry(STEPS="9000", V2_STEPS="8000", V4_STEPS="18500")
    assert code == 0, err
    assert every[0][:2] == ["latentlab", "toyfaces"] and every[-len(lines) :] == lines
    words = sum(every, [])
    assert "/w/run/network-snapshot-009000.safetensors" in words
    assert "/w/v2/network-snapshot-008000.safetensors" in words
    assert "/w/v4/network-snapshot-018500.safetensors" in words


def test_v4_widens_the_shipped_v2_then_ships_its_snapshot():
    code, lines, err = dry(FROM="4d", V4_STEPS="18500")
    assert code == 0, err
    widen, train = lines[0], lines[1]
    assert widen[:4] == [
        "latentlab",
        "convert",
        "checkpoints/toyfaces/generator.safetensors",
        "/w/v3_start.safetensors",
    ]
    assert widen[widen.index("--channel-max") + 1] == "128"
    assert train[train.index("--model") + 1] == "/w/v3_start.safetensors"
    assert train[train.index("--steps") + 1] == "18500" and train[train.index("--pl-weight") + 1] == "8"
    ship = lines.index(
        [
            "latentlab",
            "convert",
            "/w/v4/network-snapshot-018500.safetensors",
            "checkpoints/toyfaces/generator.safetensors",
            "--networks",
            "G_ema,D",
            "--force",
        ]
    )
    assert lines[ship + 1] == ["register_toyfaces"] and lines[ship + 2] == ["rm", "-rf", "/w/samples"]
    code, skipped, err = dry(FROM="4d", V4_STEPS="18500", SKIP_TRAINING="1")
    assert code == 0, err
    assert skipped[0] == lines[ship]  # the run is reused: only the shipping and what follows


def test_refusals():
    code, lines, err = dry(FROM="4x")
    assert code == 2 and not lines and "FROM=4x is not a step" in err
    code, lines, err = dry(FROM="4c")  # the v2 snapshot is asked for before anything runs
    assert code != 0 and not lines and "set V2_STEPS" in err
    code, lines, err = dry(FROM="4d")
    assert code != 0 and not lines and "set V4_STEPS" in err
    code, lines, err = dry()
    assert code != 0 and not lines and "set STEPS" in err


def _unknown_options(app, args):
    """The options of a `latentlab ARGS` line that its command (or group, before the subcommand) does not have;
    ValueError for a subcommand that does not exist. Values are not parsed (the paths under WORK do not exist)."""
    cmd, i = app, 0
    while isinstance(cmd, click.Group):
        opts = {o: p for p in cmd.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}
        while args[i].startswith("-"):  # the group's own options (`--threads 2`), then the subcommand's name
            p = opts.get(args[i].split("=")[0])
            if p is None:  # whether it takes a value is unknown, so the rest cannot be read
                return [args[i]]
            i += 1 if p.is_flag or p.count or "=" in args[i] else 2
        sub = cmd.get_command(click.Context(cmd), args[i])
        if sub is None:
            raise ValueError(f"no command {args[i]!r}")
        cmd, i = sub, i + 1
    names = {o for p in cmd.params for o in (*p.opts, *getattr(p, "secondary_opts", ()))} | {"--help"}
    return [t for t in args[i:] if t.startswith("--") and t.split("=")[0] not in names]


def test_its_latentlab_commands_parse():
    """Each `latentlab ...` line of the full build names a command that exists, with options it has."""
    from latentlab.cli.main import app

    code, lines, err = dry(STEPS="9000", V2_STEPS="8000", V4_STEPS="18500")
    assert code == 0, err
    commands = [cmd[1:] for cmd in lines if cmd[0] == "latentlab"]
    assert len(commands) >= 15
    for args in commands:
        assert _unknown_options(app, args) == [], shlex.join(args)
    # the check itself sees a misspelt option, a group option that is not one, and a missing command
    assert _unknown_options(app, ["--threads", "2", "train", "gan", "--stpes", "5", "--seed", "1"]) == ["--stpes"]
    assert _unknown_options(app, ["--thread", "2", "sample", "--n", "5"]) == ["--thread"]
    with pytest.raises(ValueError, match="no command 'gann'"):
        _unknown_options(app, ["train", "gann", "--steps", "5"])
