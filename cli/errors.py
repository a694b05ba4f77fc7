"""One clear line on stderr and a non-zero exit for every expected failure."""
import sys

import click

from latentlab.errors import CheckpointError, LatentlabError

EXPECTED = (CheckpointError, LatentlabError, ValueError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def run(group, argv=None):
    """Run a click group; turn known errors into `latentlab: error: ...` (traceback only with --debug)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        rv = group.main(args=argv, prog_name="latentlab", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("latentlab: aborted", err=True)
        return 130
    except click.UsageError as e:
        hint = f" (see 'latentlab {e.ctx.info_name} --help')" if e.ctx is not None and e.ctx.parent is not None else " (see 'latentlab --help')"
        click.echo(f"latentlab: error: {e.format_message()}{hint}", err=True)
        return 2
    except click.ClickException as e:
        click.echo(f"latentlab: error: {e.format_message()}", err=True)
        return e.exit_code
    except EXPECTED as e:
        if debug:
            raise
        click.echo(f"latentlab: error: {e}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("latentlab: interrupted", err=True)
        return 130
    return rv if isinstance(rv, int) else 0
