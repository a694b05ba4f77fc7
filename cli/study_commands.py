"""`latentlab als` and `latentlab ppl`: thin shells over latentlab.studies."""
import json
import os

import click

from . import options as opt


@click.command()
@opt.model_required
@click.option("--classifier", "classifier_spec", required=True, help="Classifier spec, e.g. resnet:celeba40.pt (see `latentlab sample --help`).")
@click.option("--attrs", default=None, help="Comma-separated attributes (default: all of the classifier's).")
@click.option("--pairs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=10, show_default=True, help="N: frames t = k/N, k = 0..N.")
@click.option("--space", type=click.Choice(["w", "w+"]), default="w", show_default=True, help="Random pairs in W, or in W+ (per-layer w's).")
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
      latentlab als --model ffhq.pkl --classifier resnet:celeba40.pt --attrs Smiling,Male,Young --pairs 1000
      latentlab als --model ffhq.pkl --classifier resnet:celeba40.pt --boundary smile_w.npy --alpha 3 --protocol hsr
    """
    import numpy as np
    import pandas as pd
    import torch
    from tqdm import tqdm

    from latentlab.attributes import load_classifier
    from latentlab.latents import z_from_seeds
    from latentlab.studies import als_from_logits, bootstrap_ci, path_logits

    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    clf = load_classifier(classifier_spec)
    if attrs:
        clf = clf.select([a.strip() for a in attrs.split(",") if a.strip()])
    clf = clf.to(dev).eval() if hasattr(clf, "to") else clf
    n_dir = None
    if boundary is not None:
        from latentlab.edits import load_direction

        d = load_direction(boundary).check_dim(G.w_dim, "w")
        n_dir = torch.as_tensor(d.vector, dtype=torch.float32, device=dev)
    chunks = []
    with torch.no_grad(), tqdm(total=pairs, desc="als", unit="pair", disable=None) as bar:
        for start in range(0, pairs, batch_size):
            n = min(batch_size, pairs - start)
            seeds = [seed + 2 * p + k for p in range(start, start + n) for k in (0, 1)]
            z = z_from_seeds(seeds, G.z_dim, dev)
            ws = G.mapping(z, torch.zeros([len(z), G.c_dim], device=dev))
            if space == "w+":  # per-layer w's from independent seeds: mix layers across a shuffled batch
                perm = torch.arange(len(z)).roll(1)
                ws = torch.where((torch.arange(G.num_ws, device=dev) % 2 == 1)[None, :, None], ws[perm], ws)
            else:
                ws = ws[:, 0]
            w0, w1 = ws[0::2], ws[1::2]
            if n_dir is not None:  # edit linearity: along the direction, from each pair's first code
                w1 = w0 + edit_alpha * n_dir
            chunks.append(path_logits(G, clf, w0, w1, steps, batch_size))
            bar.update(n)
    res = als_from_logits(np.concatenate(chunks), getattr(clf, "names", None), protocol)
    lo, hi = bootstrap_ci(res.attrs["per_pair"])
    table = pd.DataFrame({"ALS": res.values[:-1], "ci_low": lo, "ci_high": hi}, index=res.index[:-1])
    click.echo(table.to_string(float_format=lambda v: f"{v:.4f}"))
    kind = f"edit along {os.path.basename(boundary)} x {edit_alpha:g}" if boundary else space
    click.echo(f"mean ALS ({protocol}, {pairs} pairs, {steps} steps, {kind}): {res['mean']:.4f}")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        res.to_frame().T.to_csv(os.path.join(out_dir, "als.csv"), index=False)
        table.to_csv(os.path.join(out_dir, "als_ci.csv"))
        pd.DataFrame(res.attrs["per_pair"], columns=res.index[:-1]).to_csv(os.path.join(out_dir, "per_pair.csv"), index_label="pair")
        pd.DataFrame({"t": np.linspace(0, 1, steps + 1), "mean_delta": res.attrs["curve"]}).to_csv(os.path.join(out_dir, "curve.csv"), index=False)
        np.save(os.path.join(out_dir, "logits.npy"), res.attrs["logits"])


@click.command()
@opt.model_required
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
              help="Save the 8 lowest and 8 highest path-length pairs as image grids here.")
def ppl(ckpt, num_samples, space, sampling, crop, seed, random_backbone, batch_size, device, out_json, grid_dir):
    """Perceptual path length (StyleGAN paper), as the official StyleGAN2-ADA metric computes it.

    LPIPS-VGG needs torchvision's ImageNet VGG weights, downloaded on first use.

    \b
    Example:
      latentlab ppl --model ffhq.pkl --samples 100000 --space w --sampling end --crop
    """
    from tqdm import tqdm

    from latentlab.studies import LPIPSDistance, perceptual_path_length

    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    distance = LPIPSDistance(pretrained_backbone=not random_backbone).to(dev)
    with tqdm(total=num_samples, desc="ppl", unit="pair", disable=None) as bar:
        res = perceptual_path_length(G, num_samples, space, sampling, crop, distance=distance, batch_size=batch_size,
                                     seed=seed, device=dev, progress=bar)
    click.echo(f"PPL ({space}, {sampling}{', crop' if crop else ''}, {num_samples} pairs): {res.mean:.3f}")
    if grid_dir:
        from latentlab.studies.ppl import extreme_pairs
        from latentlab.utils.images import make_grid, save_png, to_pil

        os.makedirs(grid_dir, exist_ok=True)
        for name, pairs in extreme_pairs(G, res, 8, space, sampling, seed, device=dev).items():
            save_png(to_pil(make_grid(pairs.reshape(-1, *pairs.shape[2:]), cols=2)), os.path.join(grid_dir, f"ppl_{name}.png"))
    if out_json:
        counts, edges = res.histogram()
        with open(out_json, "w") as f:
            json.dump(dict(mean=res.mean, space=space, sampling=sampling, crop=crop, samples=num_samples,
                           histogram=dict(counts=counts.tolist(), edges=edges.tolist())), f, indent=1)


ALL = [als, ppl]


@click.command()
@opt.model_required
@click.option("--classifier", "classifier_spec", required=True, help="Multi-attribute classifier spec, e.g. resnet:celeba40.pt.")
@click.option("--attrs", required=True, help="Edited attributes, comma-separated (e.g. smile,age,eyeglasses,gender).")
@click.option("--z-boundaries", default=None, type=click.Path(file_okay=False), help="Folder of Z-space <attr>.npy directions.")
@click.option("--w-boundaries", default=None, type=click.Path(file_okay=False), help="Folder of W-space <attr>.npy directions.")
@click.option("--score-map", default=None, help="Classifier column per edited attribute, e.g. smile=Smiling,age=Young.")
@click.option("--reference", default=None, type=click.Path(dir_okay=False), help="Reference label table (CelebA list_attr_celeba.txt).")
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
      latentlab corr --model ffhq.pkl --classifier resnet:celeba40.pt --attrs smile,age --z-boundaries bz/ \\
          --w-boundaries bw/ --reference list_attr_celeba.txt --seeds 0-99 --out out/corr
    """
    from tqdm import tqdm

    from latentlab.attributes import load_classifier
    from latentlab.attributes.celeba import read_attr_table, resolve_name
    from latentlab.edits import load_direction, parse_alphas
    from latentlab.edits.registry import attributes_in
    from latentlab.latents import parse_seeds
    from latentlab.studies.correlation import compare_correlations, correlation_matrix, edit_scores, linearity
    from latentlab.studies.plots import heatmap, linearity_plot

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
    seed_list = parse_seeds(seeds)
    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    clf = load_classifier(classifier_spec)
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
    with tqdm(total=total, desc="corr", unit="img", disable=None) as bar:
        frame = edit_scores(G, clf, directions, seed_list, alphas, psi, batch_size, device=dev, progress=bar)
    os.makedirs(out_dir, exist_ok=True)
    frame.to_csv(os.path.join(out_dir, "scores.csv"), index=False)
    gen = correlation_matrix(frame, names)
    mats = {"generated": gen}
    if reference:
        table = read_attr_table(reference)
        common = [n for n in names if n in table.columns]
        if not common:
            raise ValueError(f"{reference}: none of the classifier's attributes ({', '.join(names[:5])}, ...) are in this table")
        mats = compare_correlations(correlation_matrix(frame, common), correlation_matrix(table, common))
    for key, m in mats.items():
        m.to_csv(os.path.join(out_dir, f"corr_{key}.csv"))
        heatmap(m, f"attribute correlation: {key.replace('_', ' ')}", os.path.join(out_dir, f"corr_{key}"))
    curves, fits = linearity(frame, columns)
    curves.to_csv(os.path.join(out_dir, "linearity.csv"), index=False)
    fits.to_csv(os.path.join(out_dir, "linearity_fits.csv"), index=False)
    linearity_plot(curves, fits, os.path.join(out_dir, "linearity"))
    for _, f in fits.iterrows():
        click.echo(f"{f['edited']:<14} {f['space']}: slope {f['slope']:+.3f} per alpha, R^2 {f['r2']:.3f}")
    click.echo(f"wrote scores, correlation matrices, heatmaps and linearity plots to {out_dir}")


ALL.append(corr)
