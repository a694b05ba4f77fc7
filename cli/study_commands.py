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
@click.option("--protocol", type=click.Choice(["paper", "hsr"]), default="paper", show_default=True,
              help="paper: mean squared deviation from the straight line; hsr: the HSR authors' code (standardised "
                   "logits, squared mean |deviation| per t, summed over t). Curves: mean Delta_t resp. mean |delta_t|.")
@click.option("--boundary", default=None, type=click.Path(dir_okay=False),
              help="Edit linearity: pairs are w0 and w0 + alpha * n along this W direction instead of random pairs.")
@click.option("--alpha", "edit_alpha", type=opt.FINITE, default=3.0, show_default=True, help="Step for --boundary pairs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Pair p uses seeds 2p + seed and 2p + 1 + seed.")
@opt.batch
@opt.device_opt
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Report folder: tables (CSV, Markdown), curve over t, per-pair figure, logits, als.json.")
@click.option("--pair-attr", default=None,
              help="Attribute of the per-pair figure in --out (logits along t vs the straight line) [default: the least "
                   "linear one].")
@click.option("--compare", "compare_dirs", multiple=True,
              help="Instead of running a model, compare saved --out folders (one protocol, same attributes): writes "
                   "a table (models x attributes + Mean) and the curves over t to --out. Repeat it; NAME=DIR sets "
                   "a folder's label [default: the folder's name].")
def als(ckpt, classifier_spec, attrs, pairs, steps, space, protocol, boundary, edit_alpha, seed, batch_size, device, out_dir,
        pair_attr, compare_dirs):
    """Attribute Linearity Score (HSR paper) of random latent pairs, or a comparison of saved reports.

    \b
    Example:
      latentlab als                                   # the embedded toyfaces model and its classifier
      latentlab als --model ffhq.pkl --classifier resnet:celeba40.pt --attrs Smiling,Male,Young --pairs 1000 --out out/sg2
      latentlab als --model ffhq.pkl --classifier resnet:celeba40.pt --boundary smile_w.npy --alpha 3 --protocol hsr
      latentlab als --compare SG2=out/sg2 --compare SG2+HSR=out/hsr --out out/compare
    """
    if compare_dirs:
        given = [name for name, v in (("--model", ckpt), ("--classifier", classifier_spec), ("--attrs", attrs),
                                      ("--boundary", boundary), ("--pair-attr", pair_attr)) if v is not None]
        if given:
            raise click.UsageError(f"--compare reads saved reports and runs no model: drop {', '.join(given)}")
        if out_dir is None:
            raise click.UsageError("--compare needs --out (the folder for the comparison)")
        return _compare_als(compare_dirs, out_dir)
    if pair_attr is not None and out_dir is None:
        raise click.UsageError("--pair-attr chooses the attribute of a figure in the --out folder: give --out")
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
    names = list(getattr(clf, "names", None) or [])
    if pair_attr is not None and names and pair_attr not in names:
        raise ValueError(f"--pair-attr {pair_attr!r} is not one of the scored attributes: {', '.join(names)}")
    clf = clf.to(dev).eval() if hasattr(clf, "to") else clf
    direction = load_direction(boundary).check_dim(G.w_dim, "w").vector if boundary is not None else None
    with tqdm(total=pairs, desc="als", unit="pair", disable=None if rank == 0 else True) as bar:
        res = als_study(G, clf, pairs, steps, space, protocol, direction, edit_alpha, seed, batch_size, dev, progress=bar)
    shutdown()
    if rank != 0:
        return
    table = als_table(res)
    click.echo(table.to_string(float_format=lambda v: f"{v:.4f}"))
    kind = f"edit along {os.path.basename(boundary)} x {edit_alpha:g}" if boundary else space
    click.echo(f"mean ALS ({protocol}, {pairs} pairs, {steps} steps, {kind}): {res['mean']:.4f}")
    if out_dir:
        settings = dict(model=ckpt, classifier=classifier_spec, space=space, seed=seed, boundary=boundary,
                        alpha=edit_alpha if boundary else None)
        write_als_report(res, out_dir, settings=settings, pair_attribute=pair_attr, table=table)


def _compare_als(specs, out_dir):
    """`als --compare`: read each report folder (NAME=DIR or DIR), write the comparison."""
    from latentlab.studies.reports import read_als_report, write_als_comparison

    results = {}
    for spec in specs:
        name, folder = spec.split("=", 1) if "=" in spec and not os.path.isdir(spec) else (None, spec)
        name = name or os.path.basename(os.path.normpath(folder))
        if name in results:
            raise ValueError(f"--compare: two folders are labelled {name!r}; label them NAME=DIR")
        try:
            results[name] = read_als_report(folder)
        except ValueError as e:
            raise ValueError(f"--compare {e}") from None
    table = write_als_comparison(results, out_dir)
    click.echo(table.to_string(float_format=lambda v: f"{v:.4f}"))
    click.echo(f"wrote the ALS comparison ({next(iter(results.values())).attrs['protocol']}) to {out_dir}")


@click.command()
@opt.model
@click.option("--samples", "num_samples", type=click.IntRange(min=2), default=100_000, show_default=True)
@click.option("--space", type=click.Choice(["z", "w"]), default=None,
              help="Random pairs slerped in Z or lerped in W [default: w; with --latents, the codes' own space].")
@click.option("--sampling", type=click.Choice(["full", "end"]), default="full", show_default=True)
@click.option("--crop", is_flag=True, help="Crop to the face region first (as the FFHQ metric does).")
@click.option("--labels", default=None,
              help="Conditional models: a dataset folder/zip with dataset.json (labels drawn from it, as the official "
                   "metric does) or 'uniform' (a random one-hot class per pair) [default: uniform].")
@click.option("--latents", "latents_file", default=None, type=click.Path(dir_okay=False),
              help="Latents file (z, w, w+ or s codes, e.g. from `edit` or a projector): pairs join two of its codes.")
@opt.trunc
@opt.trunc_cutoff
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--random-backbone", is_flag=True, help="LPIPS with an untrained VGG (offline smoke runs; not comparable to published PPL).")
@opt.batch
@opt.device_opt
@click.option("--out", "out_json", default=None, type=click.Path(dir_okay=False), help="Write mean and distribution as JSON.")
@click.option("--grids", "grid_dir", default=None, type=click.Path(file_okay=False),
              help="Report folder: histogram, the 8 lowest and 8 highest pairs, interpolation strips of the lowest and "
                   "highest --band, summary.")
@click.option("--band", type=opt.FiniteFloat(0, 0.5, min_open=True), default=0.1, show_default=True,
              help="Fraction of pairs in the lowest / highest band shown as interpolation strips.")
@click.option("--compare", "compare_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Earlier --grids report folder to overlay in the histogram (repeatable).")
@click.option("--label", default=None, help="This run's name in figures (default: the model name).")
def ppl(ckpt, num_samples, space, sampling, crop, labels, latents_file, psi, cutoff, seed, random_backbone, batch_size,
        device, out_json, grid_dir, band, compare_dirs, label):
    """Perceptual path length (StyleGAN paper), as the official StyleGAN2-ADA metric computes it.

    Each pair gets fresh noise, shared by its two images (as the official sampler does);
    conditional models draw labels per pair (--labels). LPIPS-VGG needs torchvision's
    ImageNet VGG weights, downloaded on first use.

    \b
    Example:
      latentlab ppl --model ffhq.pkl --samples 100000 --space w --sampling end --crop
      latentlab ppl --model cifar10.pkl --labels ~/data/cifar10.zip --samples 50000
      latentlab ppl --model ffhq.pkl --trunc 0.7 --grids out/ppl07 --compare out/ppl10
      latentlab ppl --model ffhq.pkl --latents out/proj/latents.npz --samples 1000
      torchrun --nproc_per_node 4 -m cli.main ppl --model ffhq.pkl --samples 100000
    """
    from tqdm import tqdm

    from latentlab.sampling.distributed import shutdown
    from latentlab.studies import LPIPSDistance, perceptual_path_length
    from latentlab.latents import LatentCodes
    from latentlab.studies.ppl import dataset_labels
    from latentlab.studies.ppl_figures import read_ppl_report

    compare = dict(read_ppl_report(d) for d in compare_dirs) if compare_dirs else {}  # bad folders fail before work
    dev, rank = opt.join_ranks(device)  # under torchrun the work is split across ranks; rank 0 reports
    G = opt.load_model(ckpt, dev)
    opt.check_cutoff(G, cutoff)
    latents = LatentCodes.load_for(latents_file, G, device=dev) if latents_file else None
    if labels not in (None, "uniform"):
        labels = dataset_labels(labels, G)
    if G.c_dim and labels is None and rank == 0 and not (latents is not None and latents.c is not None):
        click.echo("latentlab: conditional model: each pair's label is a uniformly drawn class (--labels DATASET draws "
                   "the dataset's labels, as the official metric does)", err=True)
    distance = LPIPSDistance(pretrained_backbone=not random_backbone).to(dev)
    with tqdm(total=num_samples, desc="ppl", unit="pair", disable=None if rank == 0 else True) as bar:
        res = perceptual_path_length(G, num_samples, space, sampling, crop, distance=distance, batch_size=batch_size,
                                     seed=seed, device=dev, progress=bar, labels=labels, truncation_psi=psi,
                                     truncation_cutoff=cutoff, latents=latents)
    shutdown()
    if rank != 0:
        return
    s = res.settings
    extras = [x for x in (s["sampling"], "crop" if crop else "", f"psi {psi:g}" if psi != 1 else "",
                          f"{len(latents)} given codes" if latents is not None else "") if x]
    click.echo(f"PPL ({s['space']}, {', '.join(extras)}, {num_samples} pairs): {res.mean:.3f}")
    if out_json:
        from latentlab.utils.atomic import write_text

        counts, edges = res.histogram()
        write_text(out_json, json.dumps(dict(mean=res.mean, samples=num_samples, **s,
                                             histogram=dict(counts=counts.tolist(), edges=edges.tolist())), indent=1))
    if grid_dir:
        from latentlab.studies.ppl import band_strips, extreme_pairs
        from latentlab.studies.reports import write_ppl_report

        table = labels if labels is not None and not isinstance(labels, str) else None
        extremes = extreme_pairs(G, res, 8, latents=latents, labels=table, device=dev)
        strips = band_strips(G, res, band, k=4, frames=8, latents=latents, labels=table, device=dev)
        write_ppl_report(res, grid_dir, extremes, strips=strips, compare=compare, band=band,
                         label=label or (os.path.basename(ckpt) if ckpt else "toyfaces"))
        click.echo(f"wrote the PPL report to {grid_dir}")


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
@click.option("--scores", type=click.Choice(["logits", "probabilities"]), default="logits", show_default=True,
              help="Correlate and plot the classifier's logits, or their sigmoid as the paper plots them (the "
                   "correlations differ; regressed toyfaces scores stay as they are).")
@opt.trunc
@opt.batch
@opt.device_opt
@opt.out
def corr(ckpt, classifier_spec, attrs, z_boundaries, w_boundaries, score_map, reference, seeds, alphas, scores, psi,
         batch_size, device, out_dir):
    """Attribute correlation study: edit in Z and W, score, compare correlations, plot linearity.

    Writes scores.csv (logits); per space the correlation matrix of the images edited there,
    corr_z_generated and corr_w_generated (the paper's figures 6a, 6b), with corr_reference,
    corr_{z,w}_difference and corr_{z,w}_difference_cubed (figure 7), corr_z_minus_w, the extra
    corr_pooled_* (Z and W rows pooled), corr_comparison (mean/max |difference| per space), each
    as CSV, Markdown and heatmap; linearity.csv, linearity_fits.csv (R^2), linearity.png/.pdf and
    summary.md. Prints the per-space comparison and the linearity fits.

    \b
    Example:
      latentlab corr --seeds 0-49 --out out/corr      # embedded model: its boundaries, classifier and true labels
      latentlab corr --model ffhq.pkl --classifier resnet:celeba40.pt --attrs smile,age --z-boundaries bz/ \\
          --w-boundaries bw/ --reference list_attr_celeba.txt --seeds 0-99 --out out/corr
    """
    from tqdm import tqdm

    from latentlab.attributes import load_classifier
    from latentlab.attributes.celeba import read_attr_table
    from latentlab.edits import parse_alphas
    from latentlab.latents import parse_seeds
    from latentlab.studies.correlation import comparison_lines, load_directions, parse_score_map, score_columns
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
    directions = load_directions(folders, edited)
    mapping = parse_score_map(score_map)
    from latentlab.sampling.distributed import shutdown

    seed_list = parse_seeds(seeds)
    dev, rank = opt.join_ranks(device)  # under torchrun the work is split across ranks; rank 0 reports
    G = opt.load_model(ckpt, dev)
    clf = load_classifier(opt.classifier_for(classifier_spec, G, ckpt))
    clf = clf.to(dev).eval() if hasattr(clf, "to") else clf
    columns = score_columns(edited, clf.names, mapping)
    total = len(directions) * len(seed_list) * len(parse_alphas(alphas))
    if reference:
        reference_table = read_attr_table(reference)
    elif embedded:
        reference_table = defaults.reference_table()
    else:
        reference_table = None
    with tqdm(total=total, desc="corr", unit="img", disable=None if rank == 0 else True) as bar:
        result = corr_study(G, clf, directions, seed_list, alphas, columns, reference_table, psi, batch_size, dev,
                            progress=bar, scores=scores)
    shutdown()
    if rank != 0:
        return
    write_corr_report(result, out_dir)
    fits = result["fits"]
    for _, f in fits.iterrows():
        click.echo(f"{f['edited']:<14} {f['space']}: slope {f['slope']:+.3f} per alpha, R^2 {f['r2']:.3f}")
    for line in comparison_lines(result["comparison"], scores):
        click.echo(line)
    click.echo(f"wrote scores, correlation matrices, heatmaps and linearity plots to {out_dir}")


ALL = [als, ppl, corr]
