"""`latentlab als` and `latentlab ppl`: thin shells over latentlab.studies."""
import json
import os

import click

from . import options as opt


@click.command()
@opt.model
@opt.classifier
@click.option("--attrs", default=None, help="Comma-separated attributes (default: all of the classifier's).")
@click.option("--pairs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=10, show_default=True, help="N: frames t = k/N, k = 0..N.")
@click.option("--space", type=click.Choice(["z", "w", "w+"]), default="w", show_default=True,
              help="Random pairs in W, W+ (per-layer w's) or Z (slerp, then mapped).")
@click.option("--protocol", type=click.Choice(["paper", "hsr"]), default="paper", show_default=True)
@click.option("--boundary", default=None, type=click.Path(dir_okay=False),
              help="Edit linearity: pairs are w0 and w0 + alpha * n along this W direction instead of random pairs.")
@click.option("--alpha", "edit_alpha", type=float, default=3.0, show_default=True, help="Step for --boundary pairs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Pair p uses seeds 2p + seed and 2p + 1 + seed.")
@opt.batch
@opt.device_opt
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False), help="Write CSVs (table, per pair, curve, logits).")
def als(ckpt, classifier_spec, attrs, pairs, steps, space, protocol, boundary, edit_alpha, seed, batch_size, device, out_dir):
    """Attribute Linearity Score (HSR paper) of random latent pairs.

    \b
    Example:
      latentlab als                                   # the embedded toyfaces model and its classifier
      latentlab als --model ffhq.pkl --classifier resnet:celeba40.pt --attrs Smiling,Male,Young --pairs 1000
      latentlab als --model ffhq.pkl --classifier resnet:celeba40.pt --boundary smile_w.npy --alpha 3 --protocol hsr
    """
    from tqdm import tqdm

    from latentlab.attributes import load_classifier
    from latentlab.edits import load_direction
    from latentlab.studies.reports import als_study, als_table, write_als_report

    from latentlab.sampling.distributed import shutdown

    dev, rank = opt.join_ranks(device)  # under torchrun the work is split across ranks; rank 0 reports
    G = opt.load_model(ckpt, dev)
    clf = load_classifier(opt.classifier_for(classifier_spec, G, ckpt))
    if attrs:
        clf = clf.select([a.strip() for a in attrs.split(",") if a.strip()])
    clf = clf.to(dev).eval() if hasattr(clf, "to") else clf
    direction = load_direction(boundary).check_dim(G.w_dim, "w").vector if boundary is not None else None
    with tqdm(total=pairs, desc="als", unit="pair", disable=None if rank == 0 else True) as bar:
        res = als_study(G, clf, pairs, steps, space, protocol, direction, edit_alpha, seed, batch_size, dev, progress=bar)
    shutdown()
    if rank != 0:
        return
    click.echo(als_table(res).to_string(float_format=lambda v: f"{v:.4f}"))
    kind = f"edit along {os.path.basename(boundary)} x {edit_alpha:g}" if boundary else space
    click.echo(f"mean ALS ({protocol}, {pairs} pairs, {steps} steps, {kind}): {res['mean']:.4f}")
    if out_dir:
        write_als_report(res, out_dir)


@click.command()
@opt.model
@click.option("--samples", "num_samples", type=click.IntRange(min=2), default=100_000, show_default=True)
@click.option("--space", type=click.Choice(["z", "w"]), default="w", show_default=True)
@click.option("--sampling", type=click.Choice(["full", "end"]), default="full", show_default=True)
@click.option("--crop", is_flag=True, help="Crop to the face region first (as the FFHQ metric does).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--random-backbone", is_flag=True, help="LPIPS with an untrained VGG (offline smoke runs; not comparable to published PPL).")
@opt.batch
@opt.device_opt
@click.option("--out", "out_json", default=None, type=click.Path(dir_okay=False), help="Write mean and distribution as JSON.")
@click.option("--grids", "grid_dir", default=None, type=click.Path(file_okay=False),
              help="Report folder: histogram, the 8 lowest and 8 highest path-length pairs, summary.")
def ppl(ckpt, num_samples, space, sampling, crop, seed, random_backbone, batch_size, device, out_json, grid_dir):
    """Perceptual path length (StyleGAN paper), as the official StyleGAN2-ADA metric computes it.

    LPIPS-VGG needs torchvision's ImageNet VGG weights, downloaded on first use.

    \b
    Example:
      latentlab ppl --model ffhq.pkl --samples 100000 --space w --sampling end --crop
      torchrun --nproc_per_node 4 -m cli.main ppl --model ffhq.pkl --samples 100000
    """
    from tqdm import tqdm

    from latentlab.studies import LPIPSDistance, perceptual_path_length

    from latentlab.sampling.distributed import shutdown

    dev, rank = opt.join_ranks(device)  # under torchrun the work is split across ranks; rank 0 reports
    G = opt.load_model(ckpt, dev)
    distance = LPIPSDistance(pretrained_backbone=not random_backbone).to(dev)
    with tqdm(total=num_samples, desc="ppl", unit="pair", disable=None if rank == 0 else True) as bar:
        res = perceptual_path_length(G, num_samples, space, sampling, crop, distance=distance, batch_size=batch_size,
                                     seed=seed, device=dev, progress=bar)
    shutdown()
    if rank != 0:
        return
    click.echo(f"PPL ({space}, {sampling}{', crop' if crop else ''}, {num_samples} pairs): {res.mean:.3f}")
    settings = dict(space=space, sampling=sampling, crop=crop)
    if out_json:
        counts, edges = res.histogram()
        with open(out_json, "w") as f:
            json.dump(dict(mean=res.mean, samples=num_samples, **settings,
                           histogram=dict(counts=counts.tolist(), edges=edges.tolist())), f, indent=1)
    if grid_dir:
        from latentlab.studies.ppl import extreme_pairs
        from latentlab.studies.reports import write_ppl_report

        write_ppl_report(res, grid_dir, extreme_pairs(G, res, 8, space, sampling, seed, device=dev), settings)


@click.command()
@opt.model
@opt.classifier
@click.option("--attrs", default=None,
              help="Edited attributes, comma-separated (e.g. smile,age,eyeglasses,gender) [default for the embedded "
                   "model: smile,age,eyeglasses,male].")
@click.option("--z-boundaries", default=None, type=click.Path(file_okay=False), help="Folder of Z-space <attr>.npy directions.")
@click.option("--w-boundaries", default=None, type=click.Path(file_okay=False), help="Folder of W-space <attr>.npy directions.")
@click.option("--score-map", default=None, help="Classifier column per edited attribute, e.g. smile=Smiling,age=Young.")
@click.option("--reference", default=None, type=click.Path(dir_okay=False),
              help="Reference label table (CelebA list_attr_celeba.txt) [default for the embedded model: the "
                   "renderer's own labels].")
@opt.seeds
@click.option("--alpha", "alphas", default="-3:3:13", show_default=True)
@opt.trunc
@opt.batch
@opt.device_opt
@opt.out
def corr(ckpt, classifier_spec, attrs, z_boundaries, w_boundaries, score_map, reference, seeds, alphas, psi, batch_size, device, out_dir):
    """Attribute correlation study: edit in Z and W, score, compare correlations, plot linearity.

    Writes scores.csv, corr_generated/reference/difference/difference_cubed.csv with heatmaps,
    linearity.csv, linearity_fits.csv (R^2) and linearity.png/.pdf.

    \b
    Example:
      latentlab corr --seeds 0-49 --out out/corr      # embedded model: its boundaries, classifier and true labels
      latentlab corr --model ffhq.pkl --classifier resnet:celeba40.pt --attrs smile,age --z-boundaries bz/ \\
          --w-boundaries bw/ --reference list_attr_celeba.txt --seeds 0-99 --out out/corr
    """
    from tqdm import tqdm

    from latentlab.attributes import load_classifier
    from latentlab.attributes.celeba import read_attr_table, resolve_name
    from latentlab.edits import load_direction, parse_alphas
    from latentlab.edits.registry import attributes_in
    from latentlab.latents import parse_seeds
    from latentlab.studies.reports import corr_study, write_corr_report

    from latentlab import defaults

    embedded = ckpt is None or ckpt == defaults.NAME
    if embedded and not (z_boundaries or w_boundaries):
        z_boundaries, w_boundaries = defaults.z_boundaries_dir(), defaults.w_boundaries_dir()
    if attrs is None:
        if not embedded:
            raise click.UsageError("--attrs is required for models other than the embedded toyfaces model")
        attrs = "smile,age,eyeglasses,male"
    edited = [a.strip() for a in attrs.split(",") if a.strip()]
    folders = {s: f for s, f in (("z", z_boundaries), ("w", w_boundaries)) if f}
    if not folders:
        raise click.UsageError("give --z-boundaries and/or --w-boundaries")
    directions = {}
    for space, folder in folders.items():
        found = attributes_in(folder)
        for a in edited:
            if a not in found:
                raise ValueError(f"no direction {a!r} in {folder}; it has: {', '.join(sorted(found)) or 'none'}")
            directions[(space, a)] = load_direction(found[a]["file"], name=a)
    from latentlab.sampling.distributed import shutdown

    seed_list = parse_seeds(seeds)
    dev, rank = opt.join_ranks(device)  # under torchrun the work is split across ranks; rank 0 reports
    G = opt.load_model(ckpt, dev)
    clf = load_classifier(opt.classifier_for(classifier_spec, G, ckpt))
    clf = clf.to(dev).eval() if hasattr(clf, "to") else clf
    names = list(clf.names)
    mapping = dict(kv.split("=", 1) for kv in score_map.split(",")) if score_map else {}
    columns = {}
    for a in edited:
        idx, sign = resolve_name(mapping.get(a, a), names)
        if sign < 0:
            raise ValueError(f"{a!r} is the opposite of {names[idx]!r}; map it explicitly with --score-map {a}={names[idx]}")
        columns[a] = names[idx]
    total = len(directions) * len(seed_list) * len(parse_alphas(alphas))
    if reference:
        reference_table = read_attr_table(reference)
    elif embedded:
        reference_table = defaults.reference_table()
    else:
        reference_table = None
    with tqdm(total=total, desc="corr", unit="img", disable=None if rank == 0 else True) as bar:
        result = corr_study(G, clf, directions, seed_list, alphas, columns, reference_table, psi, batch_size, dev, progress=bar)
    shutdown()
    if rank != 0:
        return
    write_corr_report(result, out_dir)
    fits = result["fits"]
    for _, f in fits.iterrows():
        click.echo(f"{f['edited']:<14} {f['space']}: slope {f['slope']:+.3f} per alpha, R^2 {f['r2']:.3f}")
    click.echo(f"wrote scores, correlation matrices, heatmaps and linearity plots to {out_dir}")


ALL = [als, ppl, corr]
