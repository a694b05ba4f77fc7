"""`--latents FILE`: given codes (a latents file, e.g. projected or encoded photos) instead of seeds.

Every command that renders codes takes them the same way: exactly one of seeds or a latents file,
the file read with `LatentCodes.load_for` (another model's file, or codes or noise maps that do not
fit the model, get one line naming the file), the codes' space checked by the library call.
"""

import click

LATENTS_HELP = (
    "Latents file (`latentlab project`/`encode` output, NVIDIA's projected_w.npz, or any `LatentCodes.save` file "
    "of this model) to use instead of seeds; its noise maps, when it has them, are rendered with."
)


def latents_option(help=LATENTS_HELP, name="--latents", dest="latents_file"):
    """The --latents FILE option (a file, not a folder)."""
    return click.option(name, dest, default=None, type=click.Path(dir_okay=False), help=help)


def given(param):
    """Whether the option with parameter name `param` was given on the command line (not its default)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    return ctx.get_parameter_source(param) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def load_latents(path, G, dev):
    """The codes of a latents file for G (`LatentCodes.load_for`), on `dev`; None without a file."""
    if path is None:
        return None
    from latentlab.latents import LatentCodes

    return LatentCodes.load_for(path, G, device=dev)


def seeds_or_latents(seeds, latents_file, G, dev, seeds_param="seeds", seeds_option="--seeds", option="--latents"):
    """The seeds, or the codes of `latents_file`: refuses both given together (a usage error)."""
    if latents_file is None:
        return seeds
    if given(seeds_param):
        raise click.UsageError(f"give either {seeds_option} or {option}, not both")
    return load_latents(latents_file, G, dev)


def refuse_with_latents(latents_file, option="--latents", **flags):
    """A usage error when `latents_file` is given together with options that only apply to seeds:
    flags {option name: parameter name}, each refused when given on the command line."""
    if latents_file is None:
        return
    clash = [name for name, param in flags.items() if given(param)]
    if clash:
        raise click.UsageError(f"{', '.join(clash)} cannot be used with {option}")
