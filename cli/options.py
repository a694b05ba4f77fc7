"""Options shared by several commands, and small helpers."""

import math

import click

from latentlab.errors import ConfigError
from latentlab.utils.limits import (  # noqa: F401  (dependency-free; bounds quoted in --help texts)
    MAX_FRAMES,
    MAX_GENERATE_GRID,
    MAX_GRID_BYTES,
)

from .types import GRID_SCALE, SEEDS


class FiniteFloat(click.FloatRange):
    """A float option that refuses nan and +-inf (click's FLOAT and FloatRange accept them: nan passes every
    bound check), with optional bounds as click.FloatRange. Every float option of latentlab uses it."""

    name = "number"

    def convert(self, value, param, ctx):
        try:
            finite = math.isfinite(float(value))
        except (TypeError, ValueError):
            finite = True  # not a number at all: click's own message says so
        if not finite:  # before the bounds, whose message would be misleading for nan
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(value, param, ctx)

    def _describe_range(self):
        """No range in --help for an unbounded number (click would print 'x<=None')."""
        if self.min is None and self.max is None:
            return ""
        return super()._describe_range()


FINITE = FiniteFloat()

MODEL_HELP = (
    "Checkpoint: a .pkl/.safetensors file, a registry name (see `latentlab models`), a URL or a Hugging Face "
    "Hub file hf://owner/repo/path/to/file.pkl[@revision] [default: the embedded toyfaces model]."
)


def device(name):
    """The device of a single-process command: 'auto' is cuda when present
    (`latentlab.utils.distributed.resolve_device`; commands that split work across torchrun ranks use
    `latentlab.utils.distributed.join`)."""
    from latentlab.utils.distributed import resolve_device

    return resolve_device(name)


def load_model(spec, dev, allow_nonfinite=False):
    """The generator for --model; without one, the embedded toyfaces model (noted on stderr).
    NaN/inf weights are refused unless `allow_nonfinite` (--allow-nonfinite)."""
    import os

    from latentlab import defaults, load_generator

    if spec is None:
        if not defaults.is_available():
            raise click.UsageError("no model given and the embedded toyfaces model is not installed: pass --model CKPT")
        if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
            click.echo("latentlab: using the embedded toyfaces model (pass --model to choose another)", err=True)
        spec = defaults.NAME
    return load_generator(spec, device=dev, allow_nonfinite=allow_nonfinite)


allow_nonfinite = click.option(
    "--allow-nonfinite",
    "allow_nonfinite",
    is_flag=True,
    help="Load a model whose weights hold NaN or inf values (refused by default: its images would be NaN/black).",
)


def classifier_for(spec, G, ckpt, attrs=None):
    """The --classifier spec to load: as given, else the model's default
    (`latentlab.attributes.default.default_classifier_spec`: the embedded model's classifier, or NVIDIA's
    CelebA-HQ classifiers for face models, only `attrs` when given). G may be None (before the model is loaded)."""
    if spec is not None:
        return spec
    from latentlab.attributes.default import NoDefaultClassifier, default_classifier_spec

    try:
        spec = default_classifier_spec(G, ckpt, attrs)
    except NoDefaultClassifier as e:
        raise click.UsageError(str(e)) from None
    import os

    if not spec.startswith("toyfaces:") and os.environ.get("RANK", "0") == "0":
        click.echo(
            f"latentlab: scoring with {spec}, NVIDIA's CelebA-HQ attribute classifiers, the default for face "
            "models (pass --classifier to choose another)",
            err=True,
        )
    return spec


GRID_HELP = (
    f"A grid over {MAX_GRID_BYTES >> 20} MiB of pixels (rows x columns x (resolution x --grid-scale)^2 x 3) is refused."
)


def check_grid(G, rows, cols, options, hint=None, scale=None):
    """Refuse, before any rendering, a rows x cols grid of G's images over MAX_GRID_BYTES at grid scale `scale`
    (--grid-scale; None: auto) in one line naming `options`, e.g. '--seeds x --alpha', and --grid-scale when a
    given scale makes it too large (`latentlab.utils.grids.check_grid`)."""
    from latentlab.utils.grids import check_grid as check

    check(rows, cols, G, options, hint, scale=scale, scale_option="--grid-scale")


grid_scale = click.option(
    "--grid-scale",
    "grid_scale",
    type=GRID_SCALE,
    default="auto",
    show_default=True,
    help="Upscale grid.png's cells this many times (nearest neighbour: each pixel becomes an N x N block); auto: "
    "the smallest N that makes a cell at least 128 px (64 px images: 2), smaller if the grid would not fit in "
    f"{MAX_GRID_BYTES >> 20} MiB. grid.png is labelled (seeds, alphas, variants, ...); the other PNGs keep the "
    "model's resolution.",
)


def check_cutoff(G, cutoff):
    if cutoff is not None and cutoff > G.num_ws:
        raise ConfigError(f"--trunc-cutoff {cutoff} exceeds num_ws ({G.num_ws})")


model = click.option("--model", "ckpt", default=None, type=str, help=MODEL_HELP)


def classifier(f):
    """--classifier SPEC and --trust-code; the command receives `classifier_spec` (str or None) and `trust_code`
    (bool) and passes both to `latentlab.attributes.load_classifier(spec, trust_code=...)`."""
    from latentlab.utils.trust import TRUST_CODE_HELP

    f = click.option("--trust-code", is_flag=True, help=TRUST_CODE_HELP)(f)
    return click.option(
        "--classifier",
        "classifier_spec",
        default=None,
        help="Classifier: a name (toyfaces, nvidia-celebahq, nvidia-celebahq:Smiling,Male) or a spec: "
        "resnet:FILE[:ARCH] (a state dict), toyfaces:FILE.safetensors, nvidia:FOLDER, clip:WEIGHTS:PROMPTS.json, "
        "table:SCORES.csv, or torchscript:FILE (a program: needs --trust-code) [default: the "
        "embedded model's classifier for the embedded model; nvidia-celebahq, NVIDIA's CelebA-HQ "
        "classifiers downloaded on first use, for the registry's face models].",
    )(f)


def check_trust(spec, trust_code):
    """Refuse `--classifier torchscript:FILE` without --trust-code before any work starts (the loader refuses it
    too; this says so before a model is loaded)."""
    if isinstance(spec, str) and spec.startswith("torchscript:") and not trust_code:
        from latentlab.utils.trust import require_trust

        require_trust(spec[len("torchscript:") :], trust_code)


seeds = click.option(
    "--seeds", type=SEEDS, default="0-7", show_default=True, help="Seeds: N, A-B or a list such as 0-3,42."
)
trunc = click.option("--trunc", "psi", type=FINITE, default=1.0, show_default=True, help="Truncation psi (1 = none).")
trunc_cutoff = click.option(
    "--trunc-cutoff", "cutoff", type=click.IntRange(min=0), default=None, help="Truncate only the first N ws."
)
noise_mode = click.option(
    "--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True
)
batch = click.option(
    "--batch", "batch_size", type=click.IntRange(min=1), default=8, show_default=True, help="Images per batch."
)


def latents_format(choices, help):
    """--latents-format of the commands that write latents.npz (generate, project): the extra layouts beside it."""
    return click.option(
        "--latents-format",
        "latents_format",
        type=click.Choice(list(choices)),
        default="latentlab",
        show_default=True,
        help=help,
    )


def check_device(ctx, param, value):
    """--device: 'auto' or a compute device torch accepts (cpu, cuda, cuda:N, mps, xpu); anything else (gpu,
    cuda:x, cuda:-1, meta) and a CUDA index this machine does not have are refused in one line before any work."""
    if value is None or value == "auto":
        return value
    import torch

    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps", "xpu"):
        raise click.BadParameter(f"{value!r} is not a device latentlab can run on; use cpu, cuda, cuda:N or auto")
    if dev.type == "cuda" and dev.index is not None and torch.cuda.is_available():
        if dev.index >= torch.cuda.device_count():
            raise click.BadParameter(f"{value!r}: this machine has {torch.cuda.device_count()} CUDA devices")
    return value


device_opt = click.option(
    "--device", default="auto", show_default=True, callback=check_device, help="cpu, cuda, cuda:N or auto."
)


def align(f):
    """--align (FFHQ-style crop and alignment of face photos) and --landmarks FILE (the landmarks to align
    with, instead of the optional detector); the command receives `align` (bool) and `landmarks` (str or None)
    and passes both to `latentlab.inversion.load_targets`."""
    f = click.option(
        "--landmarks",
        type=click.Path(dir_okay=False),
        default=None,
        help="Landmarks for --align instead of the detector, in pixels of the photo as displayed: JSON "
        '{"photo.jpg": 68 [x, y] points (dlib order) or {"left_eye": [x, y], "right_eye", "mouth_left", '
        '"mouth_right"}, ...} (left = image left), or .npy / .txt holding one photo\'s 68 x 2 points.',
    )(f)
    return click.option(
        "--align",
        is_flag=True,
        help="Crop, level and resize face photos to the generator's size as FFHQ was, from eyes and mouth "
        "(--landmarks FILE, or the detector: pip install 'latentlab[align]').",
    )(f)


def inversion_distance(f):
    """--distance NAME (`latentlab.inversion.distances`) and --random-backbone (= --distance lpips-random) for the
    commands that invert images; the command receives `distance_name` and `random_backbone` and calls
    `inversion_distance_for`."""
    f = click.option(
        "--random-backbone",
        is_flag=True,
        help="Same as --distance lpips-random: LPIPS with an untrained VGG (offline smoke runs only).",
    )(f)
    return click.option(
        "--distance",
        "distance_name",
        type=click.Choice(["auto", "lpips", "lpips-random", "toyfaces"]),
        default="auto",
        show_default=True,
        help="Perceptual distance: lpips (LPIPS-VGG, the published one; fetches VGG16 once), toyfaces (the embedded "
        "classifier's features, offline), lpips-random (untrained VGG); auto: toyfaces for the embedded model, "
        "else lpips.",
    )(f)


def inversion_distance_for(name, random_backbone, G, dev):
    """The distance of --distance / --random-backbone for generator G."""
    from latentlab.inversion.distances import distance_by_name

    if random_backbone:
        if name not in ("auto", "lpips-random"):
            raise click.UsageError(f"--random-backbone contradicts --distance {name}")
        name = "lpips-random"
    return distance_by_name(name, G, dev)


def encoder_file(path, G, ckpt):
    """--encoder, or the embedded model's shipped encoder when --model is the embedded one."""
    import os

    from latentlab import defaults
    from latentlab.edits.registry import is_default_model

    if path is not None:
        return path
    if is_default_model(G, ckpt) and os.path.isfile(defaults.encoder_path()):
        return defaults.encoder_path()
    raise click.UsageError("pass --encoder FILE (only the embedded toyfaces model ships an encoder)")


# ---- output folders: --out DIR (a folder with fixed file names inside) and --force ----------------------------------
FILE_SUFFIXES = (".json", ".npy", ".npz", ".pt", ".pth", ".pkl", ".safetensors", ".png", ".csv")


class _OutOption(click.Option):
    """--out, whose help names the command's own default folder."""

    def get_help_record(self, ctx):
        record = super().get_help_record(ctx)
        if record is None:
            return None
        return record[0], record[1].replace("COMMAND", _command_name(ctx))


def _command_name(ctx):
    """`edit`, `train-gan`, ...: the command path without the program name."""
    parts = ctx.command_path.split()[1:] if ctx.parent is not None else []
    return "-".join(parts) or ctx.command.name or ctx.info_name


def new_out_dir(ctx=None):
    """Create the next free default folder latentlab-out/<command>/NNN of the running command and return it.

    If the command ends (or fails) without writing into it, the empty folder is removed again."""
    import os

    from latentlab.utils.outdir import new_run_dir, remove_if_empty

    ctx = ctx or click.get_current_context()
    if os.environ.get("WORLD_SIZE", "1") != "1":  # every process would pick its own number
        raise click.UsageError("under torchrun give --out DIR: every process must write into the same folder")
    path = new_run_dir(_command_name(ctx))
    ctx.call_on_close(lambda: remove_if_empty(path))
    return path


def _not_a_file(value, legacy):
    import os

    if not os.path.isdir(value) and value.lower().endswith(FILE_SUFFIXES) and not value.lower().endswith(legacy):
        raise ConfigError(
            f"--out {value}: --out takes a folder (the command writes its files, with fixed names, "
            "inside it), not a file"
        )


def folder_lock(path, option="--out"):
    """Hold the lock of output folder `path` (`latentlab.utils.lock`) while a command writes into it: a second
    run into the same folder is refused with one line naming the running one (pid, command); a lock left by a
    killed run is taken over. Under torchrun only rank 0 locks. A file at `path` is refused first (one line)."""
    import os

    from latentlab.utils.lock import out_dir_lock

    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{option} {path}: exists and is not a folder")
    return out_dir_lock(path, enabled=_rank0(), name=f"{option} {path}")


def out(f=None, *, optional=False, legacy=(), lock=False, help="Output folder."):
    """--out DIR and --force for a command that writes files (fixed names) into one folder.

    With lock=True the command runs holding the folder's lock (`folder_lock`: one writer per folder).

    Without --out the command writes into a new folder latentlab-out/<command>/NNN (the next free
    number; with optional=True it writes no files instead). A folder given with --out must be new or
    empty unless --force is given (then the command's files overwrite those there). `legacy`: file
    suffixes --out accepted before it always meant a folder; such a value is passed on unchanged with
    a deprecation note, and the command writes that file as before. The command receives out_dir
    (str, or None when optional and not given), and force only if it has a `force` parameter.
    Usable as @out or @out(optional=..., legacy=..., help=...).
    """
    import functools
    import inspect

    legacy = tuple(s.lower() for s in legacy)
    default = (
        "[default: no files are written]"
        if optional
        else "[default: a new folder latentlab-out/COMMAND/NNN, the next free number]"
    )

    def decorate(f):
        takes_force = "force" in inspect.signature(f).parameters

        @functools.wraps(f)
        def wrapper(*args, **kw):
            from latentlab.utils.outdir import check_out_dir

            force = kw["force"] if takes_force else kw.pop("force")
            value = kw.get("out_dir")
            if value is None:
                if not optional:
                    kw["out_dir"] = new_out_dir()
            elif legacy and value.lower().endswith(legacy) and not _isdir(value):
                if _rank0():
                    click.echo(
                        f"latentlab: note: --out {value} names a file, which is deprecated: --out takes a "
                        "folder now (see --help); writing the file as before",
                        err=True,
                    )
            else:
                _not_a_file(value, legacy)
                if lock:  # the running one is named even when it has already written files
                    with folder_lock(value):
                        check_out_dir(value, force)
                        return f(*args, **kw)
                check_out_dir(value, force)
            if lock and value is None and kw.get("out_dir") is not None:
                with folder_lock(kw["out_dir"]):
                    return f(*args, **kw)
            return f(*args, **kw)

        wrapper = click.option(
            "--force",
            is_flag=True,
            help="Write into an existing, non-empty --out folder (overwriting this command's files there).",
        )(wrapper)
        return click.option(
            "--out", "out_dir", cls=_OutOption, default=None, type=click.Path(), metavar="DIR", help=f"{help} {default}"
        )(wrapper)

    return decorate(f) if f is not None else decorate


def resumable_out(markers, kind, help="Output folder; rerun with the same --out to resume."):
    """--out DIR for a resumable command (no --force): a folder holding a run of this `kind` (one of the
    `markers` files) is handed to the command, which resumes it or refuses other settings; a non-empty
    folder holding none is refused. Without --out: a new latentlab-out/<command>/NNN, announced on stderr.
    The command runs holding the folder's lock (`folder_lock`: one writer per folder)."""
    import functools

    def decorate(f):
        @functools.wraps(f)
        def wrapper(*args, **kw):
            from latentlab.utils.outdir import check_resume_dir

            value = kw.get("out_dir")
            if value is None:
                value = kw["out_dir"] = new_out_dir()
                click.echo(f"latentlab: writing to {value} (rerun with --out {value} to resume)", err=True)
                with folder_lock(value):
                    return f(*args, **kw)
            _not_a_file(value, ())
            with folder_lock(value):  # before the checks: a second run is told which run holds the folder
                check_resume_dir(value, markers, kind)
                return f(*args, **kw)

        return click.option(
            "--out",
            "out_dir",
            cls=_OutOption,
            default=None,
            type=click.Path(),
            metavar="DIR",
            help=f"{help} [default: a new folder latentlab-out/COMMAND/NNN, the next free number]",
        )(wrapper)

    return decorate


def _isdir(path):
    import os

    return os.path.isdir(path)


def _rank0():
    import os

    return os.environ.get("RANK", "0").strip() in ("", "0")
