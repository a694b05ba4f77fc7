"""Click parameter types: seeds, alpha lists, layer specs and truncation variants, parsed once when the command
line is read, by the library's own parsers.

A value the parser refuses stops the command before any work, with one line naming the option:

    latentlab: error: --seeds: bad seed range '7-3': end is before start

(exit code 1, like every input the library refuses). Nothing here imports torch or NumPy at import time
(`latentlab --help` stays instant): each type imports its parser when it converts a value.

A type whose values are bounded by `latentlab.utils.limits` says so in `bound` (text built from the constant);
`document_bounds(app)` appends it to the --help text of every option of that type.
"""

import click

from latentlab.errors import ConfigError, LatentlabError  # dependency-free: keeps `--help` instant
from latentlab.utils.limits import MAX_ALPHAS, MAX_GRID_SCALE, MAX_LAYER_INDEX, MAX_SEEDS  # dependency-free too


class InvalidValue(click.ClickException):
    """An option value the library's parser refused: `--option: why` (exit code 1)."""


class LibraryType(click.ParamType):
    """A value parsed by a latentlab function (`parse`); its ValueError becomes `InvalidValue`. `bound`: the
    limit its parser enforces, for --help (None: unbounded)."""

    bound = None

    def parse(self, value):
        raise NotImplementedError

    def convert(self, value, param, ctx):
        try:
            return self.parse(value)
        except (ValueError, LatentlabError) as e:
            option = param.opts[0] if param is not None and param.opts else self.name
            message = str(e)
            raise InvalidValue(message if message.startswith(option) else f"{option}: {message}") from None


class SeedsType(LibraryType):
    """Seeds: N, A-B or a list such as 0-3,42 -> list of ints (`latentlab.latents.parse_seeds`)."""

    name = "seeds"
    bound = f"at most {MAX_SEEDS} seeds"

    def parse(self, value):
        from latentlab.latents.seeds import parse_seeds

        return parse_seeds(value)


class AlphaSpec(LibraryType):
    """--alpha: a value (2), a list (-2,0,2) or start:stop:count (-3:3:7), finite numbers only -> list of floats
    (`latentlab.edits.parse_alphas`); with single=True the one number of a command that takes one step size."""

    name = "alpha"

    def __init__(self, single=False):
        self.single = single
        self.bound = None if single else f"at most {MAX_ALPHAS} values"

    def parse(self, value):
        from latentlab.edits.linear import parse_alphas

        if self.single:
            return value if isinstance(value, float) else one_alpha(value)
        return parse_alphas(value)


def one_alpha(spec, option="--alpha"):
    """The single number an --alpha SPEC names (a command that takes one step size); ValueError otherwise."""
    from latentlab.edits.linear import parse_alphas

    values = parse_alphas(spec)
    if len(values) != 1:
        text = spec if isinstance(spec, str) else ",".join(f"{v:g}" for v in values)
        raise ConfigError(f"{option} {text}: this command takes one value per run, got {len(values)}")
    return values[0]


class LayersType(LibraryType):
    """W+ layers: 0-5, a list, coarse, middle (or medium), fine or all. The form is checked here
    (`latentlab.latents.layers.check_layer_spec`); the indices come from `parse_layers(spec, G)` once
    the model is known (levels and the valid range depend on it). The value stays the text."""

    name = "layers"
    bound = f"indices below the model's num_ws, at most {MAX_LAYER_INDEX}"

    def parse(self, value):
        from latentlab.latents.layers import check_layer_spec

        return check_layer_spec(value)


class TruncationType(LibraryType):
    """A truncation spec (none, w:0.7, clusters:FILE.npz, ...) -> a `latentlab.studies.reports.TruncationRow`
    holding the spec and its (maybe unfitted) variant; a clusters file is read here."""

    name = "truncation"

    def parse(self, value):
        from latentlab.studies.reports import TruncationRow

        return value if isinstance(value, TruncationRow) else TruncationRow.parse(value)


class ClusterChoice(LibraryType):
    """--choose LEVEL=ID[,LEVEL=ID...] -> {level: id} (the form; the file's levels and ids are checked later)."""

    name = "choice"

    def parse(self, value):
        if isinstance(value, dict):
            return value
        from latentlab.truncation.spec import parse_choice

        return parse_choice(value)


class TranslateType(LibraryType):
    """--translate X,Y -> (x, y) in image units (`latentlab.models.stylegan3.parse_translate`)."""

    name = "x,y"

    def parse(self, value):
        if isinstance(value, tuple):
            return value
        from latentlab.models.stylegan3 import parse_translate

        return parse_translate(value)


class GridScaleType(LibraryType):
    """--grid-scale: auto (None: cells of at least 128 px) or a whole number from 1 to MAX_GRID_SCALE
    (`latentlab.utils.grids.parse_grid_scale`)."""

    name = "auto|N"
    bound = f"at most {MAX_GRID_SCALE}"

    def parse(self, value):
        from latentlab.utils.grids import parse_grid_scale

        return parse_grid_scale(value, "--grid-scale")


SEEDS = SeedsType()
ALPHAS = AlphaSpec()
ALPHA = AlphaSpec(single=True)
LAYERS = LayersType()
TRUNCATION = TruncationType()
CHOICE = ClusterChoice()
TRANSLATE = TranslateType()
GRID_SCALE = GridScaleType()


def with_bound(help_text, bound):
    """`help_text` with "(BOUND)" before its final full stop (or at its end)."""
    text = (help_text or "").rstrip()
    if not text:
        return bound[0].upper() + bound[1:] + "."
    if text.endswith("."):
        return f"{text[:-1]} ({bound})."
    return f"{text} ({bound})"


def document_bounds(cmd):
    """Append its type's `bound` to the --help text of every option of `cmd` and, for a group, of every command
    below it (once), so that each limit of `latentlab.utils.limits` an option enforces is in its help."""
    for p in cmd.params:
        bound = getattr(p.type, "bound", None)
        if isinstance(p, click.Option) and bound and bound not in (p.help or ""):
            p.help = with_bound(p.help, bound)
    for sub in getattr(cmd, "commands", {}).values():
        document_bounds(sub)
    return cmd
