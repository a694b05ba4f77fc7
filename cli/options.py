"""Options shared by several commands, and small helpers."""
import math

import click


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


FINITE = FiniteFloat()

MODEL_HELP = ("Checkpoint: a .pkl/.safetensors file, a registry name (see `latentlab models`) or a URL "
              "[default: the embedded toyfaces model].")


def device(name):
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return name


def join_ranks(name):
    """(device, rank) for a command that splits work across torchrun ranks (rank 0 reports)."""
    import os

    from latentlab.sampling.distributed import init_from_env, rank_device

    dev = rank_device(name) if os.environ.get("WORLD_SIZE", "1") != "1" else device(name)
    rank, _ = init_from_env(dev)
    return dev, rank


def load_model(spec, dev):
    """The generator for --model; without one, the embedded toyfaces model (noted on stderr)."""
    from latentlab import defaults, load_generator

    if spec is None:
        if not defaults.is_available():
            raise click.UsageError("no model given and the embedded toyfaces model is not installed: pass --model CKPT")
        click.echo("latentlab: using the embedded toyfaces model (pass --model to choose another)", err=True)
        spec = defaults.NAME
    return load_generator(spec, device=dev)


def classifier_for(spec, G, ckpt):
    """The --classifier spec to load: as given, else the embedded model's own classifier for that model."""
    from latentlab import defaults

    if spec is not None:
        return spec
    if ckpt is None or defaults.is_default_model(G, ckpt):
        return defaults.classifier_spec()
    raise click.UsageError("--classifier is required for models other than the embedded toyfaces model")


def check_cutoff(G, cutoff):
    if cutoff is not None and cutoff > G.num_ws:
        raise ValueError(f"--trunc-cutoff {cutoff} exceeds num_ws ({G.num_ws})")


model = click.option("--model", "ckpt", default=None, type=str, help=MODEL_HELP)
classifier = click.option("--classifier", "classifier_spec", default=None,
                          help="Classifier spec, e.g. resnet:celeba40.pt or toyfaces:FILE (see `latentlab sample --help`) "
                               "[default: the embedded model's classifier, for the embedded model].")
seeds = click.option("--seeds", default="0-7", show_default=True, help="Seeds: N, A-B or a list such as 0-3,42.")
trunc = click.option("--trunc", "psi", type=FINITE, default=1.0, show_default=True, help="Truncation psi (1 = none).")
trunc_cutoff = click.option("--trunc-cutoff", "cutoff", type=click.IntRange(min=0), default=None, help="Truncate only the first N ws.")
noise_mode = click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
batch = click.option("--batch", "batch_size", type=click.IntRange(min=1), default=8, show_default=True, help="Images per batch.")
device_opt = click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
out = click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
