"""`latentlab sample`: a thin shell over latentlab.sampling (also runs under torchrun)."""

import click

from latentlab.errors import ConfigError

from . import options as opt


def _load_classifier(spec, trust_code):
    try:
        from latentlab.attributes import load_classifier
    except ImportError as e:
        raise ConfigError(
            f"--classifier needs latentlab.attributes.load_classifier, which could not be imported ({e})"
        ) from None
    return load_classifier(spec, trust_code=trust_code)


@click.command("sample")
@opt.model
@click.option(
    "--n",
    "n",
    type=click.IntRange(min=1),
    required=True,
    help="Number of samples (seeds seed-start .. seed-start+n-1).",
)
@opt.classifier
@opt.resumable_out(
    ("manifest.json",),
    "sample folder",
    help="Sample folder (manifest.json, chunk_NNNNNN.npz); rerun with the same --out to resume.",
)
@click.option("--seed-start", type=click.IntRange(min=0), default=0, show_default=True, help="First seed.")
@click.option(
    "--chunk",
    "chunk_size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Samples per chunk file (the unit of resuming).",
)
@click.option(
    "--batch", "batch_size", type=click.IntRange(min=1), default=32, show_default=True, help="Images per batch."
)
@opt.trunc
@opt.trunc_cutoff
@opt.noise_mode
@click.option(
    "--class", "class_idx", type=click.IntRange(min=0), default=None, help="Class index (conditional models)."
)
@click.option("--styles", "save_styles", is_flag=True, help="Also store the S-space style vectors.")
@click.option("--images", "save_images", is_flag=True, help="Also store uint8 thumbnails.")
@click.option(
    "--thumb",
    "thumb_size",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Thumbnail side with --images.",
)
@opt.device_opt
def sample_cmd(
    ckpt,
    n,
    classifier_spec,
    trust_code,
    out_dir,
    seed_start,
    chunk_size,
    batch_size,
    psi,
    cutoff,
    noise_mode,
    class_idx,
    save_styles,
    save_images,
    thumb_size,
    device,
):
    """Sample seeds, render, score with a classifier, and store codes + scores in chunks.

    The --out folder gets manifest.json and chunk_NNNNNN.npz files (seeds, z, w, [wplus],
    [styles], [images], scores). Rerun the same command to resume: finished
    chunks are kept, missing or damaged ones recomputed. Options that change the
    data (model, classifier, n, seeds, chunk size, truncation, ...) must match the
    folder's manifest. Under torchrun every process takes every k-th chunk and
    uses cuda:LOCAL_RANK; the result is the same as with one process.

    \b
    Example:
      latentlab sample --model ffhq.pkl --n 500000 --classifier resnet:celeba40.pt --trunc 0.7 --out out/samples
      torchrun --nproc_per_node 4 -m latentlab -- sample --model ffhq.pkl --n 500000 --classifier resnet:celeba40.pt --out out/samples
    """
    from latentlab.sampling import sample
    from latentlab.utils import distributed

    opt.check_trust(classifier_spec, trust_code)
    classifier = _load_classifier(opt.classifier_for(classifier_spec, None, ckpt), trust_code)  # the model's default
    dev, rank, world_size = distributed.join(device)  # under torchrun: every k-th chunk, cuda:LOCAL_RANK
    ok = False
    try:
        G = opt.load_model(ckpt, dev)
        opt.check_cutoff(G, cutoff)
        report = sample(
            G,
            classifier,
            out_dir,
            n,
            seed_start=seed_start,
            chunk_size=chunk_size,
            batch_size=batch_size,
            truncation_psi=psi,
            truncation_cutoff=cutoff,
            noise_mode=noise_mode,
            save_styles=save_styles,
            save_images=save_images,
            thumb_size=thumb_size,
            class_idx=class_idx,
            device=dev,
            progress=True,
            rank=rank,
            world_size=world_size,
        )
        ok = True
    finally:
        distributed.shutdown(wait=ok)  # after a failure, do not wait for ranks that may never arrive
    who = "" if world_size == 1 else f"rank 0 of {world_size}: "
    if rank == 0:
        click.echo(
            f"{who}computed {report.samples_computed} samples ({len(report.computed)} chunks), kept "
            f"{report.samples_skipped} already done; repaired {len(report.repaired)} damaged chunks -> {out_dir}"
        )


ALL = [sample_cmd]
