"""Entry point of the `latentlab` console script (also `python -m latentlab` and `python -m latentlab.cli.main`).

Only click and the standard library are imported here and in every `cli/*.py` module at import
time (each command imports the library when it runs), so `latentlab --help` is instant.
"""

import sys

import click

from . import (
    attribute_commands,
    boundary_commands,
    commands,
    dataset_commands,
    edit_commands,
    encoder_commands,
    explore_commands,
    inversion_commands,
    metrics_commands,
    sample_commands,
    study_commands,
    train_commands,
)
from .conventions import add_global_options
from .errors import run
from .types import document_bounds


@click.group(context_settings=dict(help_option_names=["-h", "--help"], max_content_width=100))
@click.version_option(package_name="latentlab")
def app():
    """latentlab: load, inspect and edit StyleGAN-family generators.

    \b
    Example:
      latentlab info ffhq.pkl
      latentlab generate --model ffhq.pkl --seeds 0-7 --trunc 0.7 --out out/
      torchrun --nproc_per_node 4 -m latentlab -- sample --n 100000 --out out/samples

    \b
    Option names mean the same in every command:
      --n N          how many items to make or draw (samples, pairs, faces)
      --seeds SPEC   which seeds: N, A-B or a list such as 0-3,42
      --samples-dir  a folder written by `latentlab sample`
      --out DIR      the output folder
      --alpha SPEC   a value, a list (-2,0,2) or start:stop:count (-3:3:7)
      --frames N     frames along a path; --steps N training/projection steps
      --trunc PSI    truncation psi; levels: coarse, middle (or medium), fine
      --threads N    torch CPU threads; --debug shows tracebacks (both also after the command)
    Long runs show progress on stderr (a line every few seconds when it is not a terminal)
    and say up front what a large job will cost.
    """


for cmd in (
    commands.ALL
    + edit_commands.ALL
    + attribute_commands.ALL
    + sample_commands.ALL
    + boundary_commands.ALL
    + study_commands.ALL
    + train_commands.ALL
    + dataset_commands.ALL
    + inversion_commands.ALL
    + encoder_commands.ALL
    + metrics_commands.ALL
    + explore_commands.ALL
):
    app.add_command(cmd)
add_global_options(app)  # --debug and --threads on the group and on every command
document_bounds(app)  # each option's limit (latentlab.utils.limits) in its --help


def main(argv=None):
    sys.exit(run(app, argv))


if __name__ == "__main__":
    main()
