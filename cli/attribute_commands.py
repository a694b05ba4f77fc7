"""Attribute classifier commands."""

import click

from latentlab.errors import ConfigError

from . import options as opt
from .conventions import alias, requested_threads


@click.command("train-classifier")
@click.option(
    "--celeba",
    "celeba_root",
    default=None,
    type=click.Path(file_okay=False),
    help="CelebA folder: img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt.",
)
@click.option(
    "--toyfaces",
    "toyfaces_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Instead of --celeba: a toyfaces folder (labels.csv, images/) to train the toyfaces classifier on.",
)
@opt.out(
    legacy=(".pt", ".safetensors"),
    help="Output folder: classifier.pt (CelebA state dict) or classifier.safetensors (toyfaces), and the report "
    "classifier.json.",
)
@click.option(
    "--arch",
    type=click.Choice(["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]),
    default="resnet18",
    show_default=True,
    help="CelebA only.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--resolution",
    "image_size",
    type=click.IntRange(min=8),
    default=64,
    show_default=True,
    help="Training resolution (px); CelebA only.",
    **alias("--image-size"),
)
@click.option(
    "--batch",
    "batch_size",
    type=click.IntRange(min=1),
    default=None,
    help="Images per batch  [default: 64 CelebA, 128 toyfaces]",
)
@click.option(
    "--lr",
    type=opt.FiniteFloat(min=0, min_open=True),
    default=None,
    help="Adam learning rate  [default: 1e-3 CelebA, 2e-3 toyfaces]",
)
@opt.device_opt
@click.option(
    "--max-images",
    type=click.IntRange(min=1),
    default=None,
    help="Use at most N images of each split (toyfaces: the first N rows, of which 10% are held out).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Image-loading worker processes; CelebA only.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of initialisation and shuffling."
)
def train_classifier(
    celeba_root, toyfaces_dir, out_dir, arch, epochs, image_size, batch_size, lr, device, max_images, workers, seed
):
    """Train an attribute classifier: CelebA's 40 attributes or the toyfaces attributes.

    --celeba: a ResNet on the train split, evaluated on the validation split; writes
    the state dict to OUT/classifier.pt and a JSON report (per-attribute accuracy,
    preprocessing) to OUT/classifier.json. Load it with
    latentlab.attributes.load_classifier("resnet:OUT/classifier.pt").

    --toyfaces: the small toyfaces CNN (one score per attribute: logits for the
    binary attributes, regressed values for smile, age, yaw, skin and background
    warmth), trained on the rendered images with their true labels; the last 10%
    of the rows are held out. Writes OUT/classifier.safetensors (no pickle) and
    a JSON report OUT/classifier.json (held-out accuracy and R^2 per attribute).
    Load it with load_classifier("toyfaces:OUT/classifier.safetensors").

    \b
    Example:
      latentlab train-classifier --celeba data/celeba --out out/celeba_r18 --epochs 2 --resolution 64
      latentlab train-classifier --toyfaces data/toyfaces --out out/toyfaces_clf --epochs 12
    """
    if (celeba_root is None) == (toyfaces_dir is None):
        raise ConfigError("give exactly one of --celeba DIR and --toyfaces DIR")
    import os

    legacy = out_dir.lower().endswith((".pt", ".safetensors")) and not os.path.isdir(out_dir)  # --out FILE (deprecated)
    out = out_dir if legacy else os.path.join(out_dir, "classifier.safetensors" if toyfaces_dir else "classifier.pt")
    if toyfaces_dir is not None:
        _train_toyfaces(toyfaces_dir, out, epochs, batch_size, lr, device, max_images, seed, requested_threads())
        return
    from latentlab.attributes.training import train_attribute_classifier

    res = train_attribute_classifier(
        celeba_root,
        arch=arch,
        epochs=epochs,
        batch_size=64 if batch_size is None else batch_size,
        lr=1e-3 if lr is None else lr,
        image_size=image_size,
        device=opt.device(device),
        out=out,
        progress=True,
        max_images=max_images,
        seed=seed,
        num_workers=workers,
    )
    r = res.report
    click.echo(
        f"trained {arch} on {r['n_train']} images; mean validation accuracy {r['val_mean_accuracy']:.4f} "
        f"on {r['n_val']} images"
    )
    click.echo(f"wrote {res.path} and {res.report_path}")


def _train_toyfaces(data_dir, out, epochs, batch_size, lr, device, max_images, seed, threads):
    from click.core import ParameterSource

    ctx = click.get_current_context()
    given = [
        flag
        for p, flag in (("arch", "--arch"), ("image_size", "--resolution"), ("workers", "--workers"))
        if ctx.get_parameter_source(p) == ParameterSource.COMMANDLINE
    ]
    if given:
        raise ConfigError(
            f"{', '.join(given)}: CelebA only (the toyfaces classifier has a fixed architecture at 64x64)"
        )
    if max_images is not None and max_images < 2:
        raise ConfigError("--max-images must be at least 2 for --toyfaces (some rows are held out)")
    if batch_size is not None and batch_size < 2:
        raise ConfigError("--batch must be at least 2 for --toyfaces (BatchNorm)")
    from latentlab.attributes.toyfaces_training import train_toyfaces_classifier

    res = train_toyfaces_classifier(
        data_dir,
        out,
        epochs=epochs,
        batch_size=128 if batch_size is None else batch_size,
        lr=2e-3 if lr is None else lr,
        seed=seed,
        device=opt.device(device),
        progress=True,
        max_images=max_images,
        threads=threads,
    )
    r = res.report
    click.echo(
        f"trained the toyfaces classifier on {r['n_train']} images in {r['train_seconds']:.0f} s; "
        f"held out {r['n_val']} images:"
    )
    click.echo(f"  {'attribute':<11} {'score':<7} {'accuracy':>8} {'majority':>8} {'R^2':>7}")
    for name, m in r["val"].items():
        r2 = f"{m['r2']:7.4f}" if "r2" in m else f"{'':7}"
        click.echo(f"  {name:<11} {m['kind']:<7} {m['accuracy']:8.4f} {m['majority_baseline']:8.4f} {r2}")
    click.echo(f"wrote {res.path} and {res.report_path}")


ALL = [train_classifier]
