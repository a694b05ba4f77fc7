"""Attribute classifier commands."""
import click

from . import options as opt


@click.command("train-classifier")
@click.option("--celeba", "celeba_root", required=True, type=click.Path(file_okay=False),
              help="CelebA folder: img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="State dict to write (.pt); the report goes beside it (.json).")
@click.option("--arch", type=click.Choice(["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]), default="resnet18", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--image-size", type=click.IntRange(min=8), default=64, show_default=True, help="Training resolution (px).")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=64, show_default=True, help="Images per batch.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True, help="Adam learning rate.")
@opt.device_opt
@click.option("--max-images", type=click.IntRange(min=1), default=None, help="Use at most N images of each split.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="Image-loading worker processes.")
def train_classifier(celeba_root, out, arch, epochs, image_size, batch_size, lr, device, max_images, workers):
    """Train a 40-attribute CelebA ResNet classifier; report validation accuracy.

    Trains on the train split, evaluates on the validation split, writes the
    state dict to OUT and a JSON report (per-attribute accuracy, preprocessing)
    beside it. Load it in Python with
    latentlab.attributes.load_classifier("resnet:OUT").

    \b
    Example:
      latentlab train-classifier --celeba data/celeba --out celeba_r18.pt --epochs 2 --image-size 64
    """
    from latentlab.attributes.training import train_attribute_classifier

    res = train_attribute_classifier(
        celeba_root, arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, image_size=image_size,
        device=opt.device(device), out=out, progress=True, max_images=max_images, num_workers=workers,
    )
    r = res.report
    click.echo(f"trained {arch} on {r['n_train']} images; mean validation accuracy {r['val_mean_accuracy']:.4f} "
               f"on {r['n_val']} images")
    click.echo(f"wrote {res.path} and {res.report_path}")


ALL = [train_classifier]
