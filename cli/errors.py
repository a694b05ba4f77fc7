"""One clear line on stderr and a non-zero exit for every expected failure."""

import sys

import click

from latentlab.errors import LatentlabError  # dependency-free: keeps `--help` instant

from .conventions import STATE

# latentlab's own errors (CheckpointError, ConfigError, MissingDependency, MissingWeights) and the system's (a
# missing file, no permission, a full disk) are expected: one line. Anything else is a bug and shows as one.
EXPECTED = (LatentlabError, OSError)


def _debug_requested(argv):
    """--debug anywhere on the command line (before or after the command name), not after a `--` separator."""
    args = argv[1:] if argv[:1] == ["--"] else argv
    if "--" in args:
        args = args[: args.index("--")]
    return "--debug" in args


def run(group, argv=None):
    """Run a click group; turn known errors into `latentlab: error: ...` (traceback only with --debug).

    A leading `--` is dropped: it separates torchrun's options from latentlab's
    (`torchrun --nproc_per_node 4 -m latentlab -- sample --n 100 ...`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    STATE.debug, STATE.argv = False, tuple(argv)
    try:
        rv = group.main(args=argv, prog_name="latentlab", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("latentlab: aborted", err=True)
        return 130
    except click.UsageError as e:
        hint = (
            f" (see '{e.ctx.command_path} --help')"
            if e.ctx is not None and e.ctx.parent is not None
            else " (see 'latentlab --help')"
        )
        click.echo(f"latentlab: error: {e.format_message()}{hint}", err=True)
        return 2
    except click.ClickException as e:
        click.echo(f"latentlab: error: {e.format_message()}", err=True)
        return e.exit_code
    except EXPECTED as e:
        if STATE.debug or _debug_requested(argv):
            raise
        click.echo(f"latentlab: error: {e}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("latentlab: interrupted", err=True)
        return 130
    return rv if isinstance(rv, int) else 0
