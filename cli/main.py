"""Entry point of the `latentlab` console script."""
import sys

import click

from . import attribute_commands, boundary_commands, commands, dataset_commands, edit_commands, sample_commands, study_commands, train_commands
from .errors import run


@click.group(context_settings=dict(help_option_names=["-h", "--help"], max_content_width=100))
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="latentlab")
def app(debug):
    """latentlab: load, inspect and edit StyleGAN-family generators.

    \b
    Example:
      latentlab info ffhq.pkl
      latentlab generate --model ffhq.pkl --seeds 0-7 --trunc 0.7 --out out/
    """


for cmd in commands.ALL + edit_commands.ALL + attribute_commands.ALL + sample_commands.ALL + boundary_commands.ALL + study_commands.ALL + train_commands.ALL + dataset_commands.ALL:
    app.add_command(cmd)


def main(argv=None):
    sys.exit(run(app, argv))


if __name__ == "__main__":
    main()
