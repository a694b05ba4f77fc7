"""`latentlab toyfaces`: a thin shell over latentlab.datasets.toyfaces."""

import os

import click

from . import options as opt


@click.command("toyfaces")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of faces.")
@opt.resumable_out(
    ("dataset.json", "images", "labels.csv"),
    "toyfaces dataset",
    help="Dataset folder (images/, labels.csv, dataset.json); rerun with the same --out to resume.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the label sampler.")
@click.option("--resolution", type=int, default=64, show_default=True, help="Image side, a power of two >= 8.")
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Rendering processes [default: min(CPUs, 4)]."
)
@click.option(
    "--grid",
    "grid_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write an 8x8 preview grid of the first 64 faces to this PNG, each captioned with its file number "
    "(its folder must exist, unless it lies inside --out).",
)
@opt.grid_scale
def toyfaces(n, out_dir, seed, resolution, workers, grid_path, grid_scale):
    """Render the procedural toyfaces dataset: cartoon faces with known attributes.

    Writes OUT/images/000000.png ..., OUT/labels.csv (file, the attributes smile,
    age, eyeglasses, male, beard, yaw, bangs, skin, background, then nuisance
    columns) and OUT/dataset.json. The same (n, seed, resolution) always gives the
    same files. Rerun the command to resume: only missing images are drawn. A
    folder written with other settings is refused, never overwritten.

    \b
    Example:
      latentlab toyfaces --n 50000 --out data/toyfaces
      latentlab toyfaces --n 1000 --seed 1 --resolution 128 --grid grid.png --out data/toy128
    """
    from latentlab.datasets import toyfaces as tf

    tf.check_resolution(resolution)
    if grid_path:
        _check_grid(grid_path, out_dir, min(n, 64), resolution, grid_scale)
    report = tf.write_dataset(out_dir, n, seed=seed, resolution=resolution, workers=workers, progress=True)
    if report["rendered"]:
        click.echo(
            f"rendered {report['rendered']} faces in {report['seconds']:.1f}s "
            f"({report['rate']:.0f} renders/s, {report['workers']} workers)"
        )
    if report["existing"]:
        click.echo(f"kept {report['existing']} images already there")
    click.echo(
        f"wrote {os.path.join(out_dir, 'images')}/ ({n} images, {resolution}px), "
        f"{os.path.join(out_dir, 'labels.csv')} and {os.path.join(out_dir, 'dataset.json')}"
    )
    if grid_path:
        from latentlab.utils.grids import grid_scale_for
        from latentlab.utils.images import labelled_grid, save_png, to_pil

        images = tf.render_batch(tf.sample_attributes(min(n, 64), seed), resolution)  # = the first images
        scale = grid_scale_for(_grid_rows(len(images)), 8, resolution, 3, grid_scale)
        names = [f"{i:06d}" for i in range(len(images))]  # the files' names in OUT/images
        save_png(to_pil(labelled_grid(images, cols=8, cell_labels=names, scale=scale)), grid_path)
        click.echo(f"wrote {grid_path}")


def _grid_rows(count):
    return -(-count // 8)


def _check_grid(grid_path, out_dir, count, resolution, grid_scale):
    """--grid may name a file inside --out (its folders are created) or in an existing folder elsewhere: a
    typo must not create folders outside the output; its size at --grid-scale must fit MAX_GRID_BYTES. Checked
    before rendering, so no work is wasted."""
    from types import SimpleNamespace

    from latentlab.errors import ConfigError
    from latentlab.utils.grids import check_grid

    renders = SimpleNamespace(img_resolution=resolution, img_channels=3)  # what check_grid reads of a generator
    check_grid(_grid_rows(count), 8, renders, "--grid", hint="use a smaller --grid-scale", scale=grid_scale)

    parent = os.path.dirname(os.path.abspath(grid_path))
    out = os.path.abspath(out_dir)
    if parent == out or parent.startswith(out + os.sep):
        return
    if not os.path.isdir(parent):
        raise ConfigError(
            f"--grid {grid_path}: the folder {os.path.dirname(grid_path) or '.'} does not exist "
            "(create it first, or put the grid inside --out)"
        )


ALL = [toyfaces]
