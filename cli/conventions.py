"""What every command shares beyond its own options: the global flags, old option names (the value
types: cli/types.py).

Option conventions (one meaning per name; `tests/test_cli_conventions.py` checks them):

  --n N            how many items a command makes or draws (samples, pairs, faces)
  --seeds SPEC     which seeds (N, A-B, a list); --samples-dir DIR a folder written by `latentlab sample`
  --out DIR        the output folder (fixed file names inside)
  --alpha SPEC     edit strengths: a value, a list (-2,0,2) or start:stop:count
  --frames N       frames along a path (both ends included); --steps N training steps only
  --trunc PSI      truncation psi; levels are coarse, middle (or medium), fine
  --threads N      torch CPU threads; --debug full tracebacks (both accepted before or after the command)

Old spellings stay accepted for one release as hidden aliases (`Aliased`): not shown in --help,
a one-line note on stderr when used in a terminal.

Nothing here imports torch or NumPy at import time: `latentlab --help` must stay instant.
"""

import functools

import click

from .types import ALPHA, ALPHAS, AlphaSpec, one_alpha  # noqa: F401  (the --alpha type, re-exported: see cli/types.py)

THREADS_KEY = "latentlab.threads"


class _State:
    """Flags the error handler needs after the command has unwound (set by the --debug callback)."""

    debug = False
    argv = ()  # the command line of this run (set by cli.errors.run)


STATE = _State()


# ---- --debug and --threads on every command ---------------------------------------------------------------------
def _debug_callback(ctx, param, value):
    if value:
        STATE.debug = True
    return value


def _threads_callback(ctx, param, value):
    if value is not None:
        ctx.meta[THREADS_KEY] = value  # meta is shared by the group's and the subcommand's contexts
    return value


def debug_option():
    return click.Option(
        ["--debug"],
        is_flag=True,
        expose_value=False,
        callback=_debug_callback,
        help="Show full tracebacks on errors (before or after the command name).",
    )


def threads_option():
    return click.Option(
        ["--threads"],
        type=click.IntRange(min=1),
        default=None,
        expose_value=False,
        metavar="N",
        callback=_threads_callback,
        help="Torch CPU (intra-op) threads for this run, set before any work [default: torch's, "
        "usually the number of cores; on a busy machine fewer can be faster].",
    )


def requested_threads(ctx=None):
    """The --threads value given to this run (on the group or the command), else None."""
    ctx = ctx or click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get(THREADS_KEY)


def _with_threads(callback):
    """Run a command's callback with torch's intra-op threads set to --threads (restored afterwards)."""

    @functools.wraps(callback)
    def run(*args, **kwargs):
        n = requested_threads()
        if n is None:
            return callback(*args, **kwargs)
        import torch

        old = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            return callback(*args, **kwargs)
        finally:
            torch.set_num_threads(old)

    run.__latentlab_threads__ = True
    return run


def add_global_options(cmd):
    """Give `cmd` (and, for a group, every command in it) --debug and --threads; leaf commands apply --threads."""
    names = {opt for p in cmd.params for opt in getattr(p, "opts", ())}
    if "--debug" not in names:
        cmd.params.append(debug_option())
    if "--threads" not in names:
        cmd.params.append(threads_option())
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            add_global_options(sub)
    elif cmd.callback is not None and not getattr(cmd.callback, "__latentlab_threads__", False):
        cmd.callback = _with_threads(cmd.callback)
    return cmd


def note(text, interactive_only=False):
    """`latentlab: note: TEXT` on stderr; under torchrun only rank 0 prints it. interactive_only: only when
    stderr is a terminal (deprecation notes: scripts and logs that use an old name keep their output as it was)."""
    import os
    import sys

    if os.environ.get("RANK", "0").strip() not in ("", "0"):
        return
    if interactive_only:
        try:
            if not sys.stderr.isatty():
                return
        except (AttributeError, ValueError):
            return
    click.echo(f"latentlab: note: {text}", err=True)


# ---- old option names ------------------------------------------------------------------------------------------
class Aliased(click.Option):
    """An option that also accepts old spellings (`aliases`), hidden from --help, with a one-line note when used
    interactively.

        @click.option("--trunc", "psi", cls=Aliased, aliases=["--psi"], type=FINITE, ...)

    Giving both the new and an old spelling is refused. Error messages name the new spelling.
    """

    def __init__(self, *args, aliases=(), **kwargs):
        self.aliases = tuple(aliases)
        super().__init__(*args, **kwargs)

    @property
    def _alias_dest(self):
        return f"{self.name}__alias"

    def add_to_parser(self, parser, ctx):
        super().add_to_parser(parser, ctx)
        if self.aliases:
            action = "append" if self.multiple else "store"
            if self.is_flag:
                raise TypeError("Aliased supports options with values only")
            parser.add_option(obj=self, opts=list(self.aliases), dest=self._alias_dest, action=action, nargs=self.nargs)

    def consume_value(self, ctx, opts):
        if self.aliases and self._alias_dest in opts:
            used = _used_alias(self)
            if self.name in opts:
                raise click.UsageError(f"give {self.opts[0]} or its old name {used}, not both", ctx)
            if not ctx.resilient_parsing:
                note(f"{used} is now {self.opts[0]} (the old name still works in this release)", interactive_only=True)
            opts = dict(opts)
            opts[self.name] = opts.pop(self._alias_dest)
        return super().consume_value(ctx, opts)


def _used_alias(option):
    """Which old spelling the command line used (the first one when it cannot tell)."""
    for a in STATE.argv:
        for alias in option.aliases:
            if a == alias or a.startswith(alias + "="):
                return alias
    return option.aliases[0]


def alias(*aliases):
    """click.option keywords for an option with hidden old spellings: `**alias("--psi")`."""
    return dict(cls=Aliased, aliases=aliases)


def frames_or_old_steps(frames, old_steps, ctx=None):
    """--frames N, or the old `--steps N` of a path (N intervals = N + 1 frames) given instead; both is refused."""
    if old_steps is None:
        return frames
    from click.core import ParameterSource

    ctx = ctx or click.get_current_context()
    if ctx.get_parameter_source("frames") == ParameterSource.COMMANDLINE:
        raise click.UsageError("give --frames or its old form --steps, not both", ctx)
    note(
        f"--steps {old_steps} is now --frames {old_steps + 1} (frames include both ends; the old name still works "
        "in this release)",
        interactive_only=True,
    )
    return old_steps + 1
