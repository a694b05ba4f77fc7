"""`latentlab als`, `ppl` and `corr`: thin shells over latentlab.studies."""

import json
import os

import click

from . import options as opt
from .conventions import ALPHA, ALPHAS, alias, frames_or_old_steps
from .latents_input import given as on_command_line
from .latents_input import latents_option, load_latents, seeds_or_latents


@click.command()
@opt.model
@opt.classifier
@click.option("--attrs", default=None, help="Comma-separated attributes (default: all of the classifier's).")
@click.option(
    "--n",
    "pairs",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Number of latent pairs.",
    **alias("--pairs"),
)
@click.option(
    "--frames",
    type=click.IntRange(min=2),
    default=11,
    show_default=True,
    help="Frames along each path, both ends included: t = k/(N-1) (the paper's 10 steps = 11 frames).",
)
@click.option("--steps", "old_steps", type=click.IntRange(min=1), default=None, hidden=True)  # old name: --frames N+1
@click.option(
    "--space",
    type=click.Choice(["z", "w", "w+", "s"]),
    default="w",
    show_default=True,
    help="Random pairs in W, W+ (per-layer w's) or Z (slerp, then mapped); with --latents the paths run in the "
    "codes' own space unless this names a later one (s: straight lines in S, for given codes only).",
)
@click.option(
    "--protocol",
    type=click.Choice(["paper", "hsr"]),
    default="paper",
    show_default=True,
    help="paper: mean squared deviation from the straight line; hsr: the HSR authors' code (standardised "
    "logits, squared mean |deviation| per t, summed over t). Curves: mean Delta_t resp. mean |delta_t|.",
)
@click.option(
    "--standardize",
    is_flag=True,
    help="Divide each attribute's scores by their std over all frames first, so that every ALS is in sd^2 "
    "and the Mean is not dominated by logit-scale attributes (the hsr protocol always does).",
)
@click.option(
    "--boundary",
    default=None,
    type=click.Path(dir_okay=False),
    help="Edit linearity: pairs are w0 and w0 + alpha * n along this W direction instead of random pairs.",
)
@click.option(
    "--alpha",
    "edit_alpha",
    type=ALPHA,
    default="3",
    show_default=True,
    help="Step for --boundary pairs (one value; the --alpha syntax of every command).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Pair p uses seeds 2p + seed and 2p + 1 + seed (with --latents: two codes drawn by RandomState(seed + p)).",
)
@latents_option(
    help="Latents file (e.g. projected photos) instead of seeds: pairs join two of its codes (rendered with their "
    "noise maps, lerped), or with --boundary each code is one pair, the code and its edit [--n: all codes]."
)
@opt.batch
@opt.device_opt
@opt.out(
    optional=True,
    help="Report folder: tables (CSV, Markdown), curve over t, per-pair figure, logits, als.json "
    "(with --compare: the comparison; default there: latentlab-out/als/NNN).",
)
@click.option(
    "--pair-attr",
    default=None,
    help="Attribute of the per-pair figure in --out (logits along t vs the straight line) [default: the least "
    "linear one].",
)
@click.option(
    "--compare",
    "compare_dirs",
    multiple=True,
    help="Instead of running a model, compare saved --out folders (one protocol, same attributes): writes "
    "a table (models x attributes + Mean) and the curves over t to --out. Repeat it; NAME=DIR sets "
    "a folder's label [default: the folder's name].",
)
def als(
    ckpt,
    classifier_spec,
    trust_code,
    attrs,
    pairs,
    frames,
    old_steps,
    space,
    protocol,
    boundary,
    edit_alpha,
    seed,
    latents_file,
    batch_size,
    device,
    out_dir,
    pair_attr,
    compare_dirs,
    standardize,
):
    """Attribute Linearity Score (HSR paper) of random latent pairs, or a comparison of saved reports.

    With --latents the pairs are given codes (e.g. projected photos) instead of
    seeds: two codes per pair, or with --boundary a code and its edit.

    \b
    Example:
      latentlab als                                   # the embedded toyfaces model and its classifier
      latentlab als --model ffhq.pkl --classifier resnet:celeba40.pt --attrs Smiling,Male,Young --n 1000 --out out/sg2
      latentlab als --model ffhq.pkl --classifier resnet:celeba40.pt --boundary smile_w.npy --alpha 3 --protocol hsr
      latentlab als --compare SG2=out/sg2 --compare SG2+HSR=out/hsr --out out/compare
      latentlab als --latents p/latents.npz --boundary smile_w.npy --alpha 3 --out out/als_photos
    """
    steps = frames_or_old_steps(frames, old_steps) - 1  # als_study: N intervals
    if compare_dirs:
        given = [
            name
            for name, v in (
                ("--model", ckpt),
                ("--classifier", classifier_spec),
                ("--attrs", attrs),
                ("--boundary", boundary),
                ("--pair-attr", pair_attr),
                ("--latents", latents_file),
            )
            if v is not None
        ]
        given += ["--standardize"] if standardize else []  # each folder keeps its own setting (als.json)
        if given:
            raise click.UsageError(f"--compare reads saved reports and runs no model: drop {', '.join(given)}")
        return _compare_als(compare_dirs, out_dir if out_dir is not None else opt.new_out_dir())
    if pair_attr is not None and out_dir is None:
        raise click.UsageError("--pair-attr chooses the attribute of a figure in the --out folder: give --out")
    opt.check_trust(classifier_spec, trust_code)
    from latentlab.attributes import load_classifier
    from latentlab.edits import load_direction
    from latentlab.studies.reports import als_classifier, als_study, als_table, write_als_report
    from latentlab.utils.distributed import join, shutdown
    from latentlab.utils.progress import progress_bar, rank_share

    dev, rank, _ = join(device)  # under torchrun the work is split across ranks; rank 0 reports
    G = opt.load_model(ckpt, dev)
    latents = load_latents(latents_file, G, dev)
    if latents is None and space == "s":
        raise click.UsageError("--space s needs --latents (random pairs live in z, w or w+)")
    if latents is not None:
        if not on_command_line("space"):  # the codes' own space (z codes edited along a W direction: mapped to W first)
            space = "w" if boundary is not None and latents.space == "z" else latents.space
        if boundary is not None and not on_command_line("pairs"):
            pairs = len(latents)  # one edit pair per code
    clf = load_classifier(opt.classifier_for(classifier_spec, G, ckpt, attrs), trust_code=trust_code)
    clf = als_classifier(clf, attrs, pair_attr, dev)
    direction = load_direction(boundary).check_dim(G.w_dim, "w").vector if boundary is not None else None
    if latents is not None:
        from latentlab.studies.als import check_latent_pairs

        check_latent_pairs(G, latents, pairs, seed, space, direction, edit_alpha)  # before the progress bar
    with progress_bar(
        total=rank_share(pairs), desc="als", unit="pair", enabled=rank == 0, what="ALS pairs", hint="use --n to reduce"
    ) as bar:
        res = als_study(
            G,
            clf,
            pairs,
            steps,
            space,
            protocol,
            direction,
            edit_alpha,
            seed,
            batch_size,
            dev,
            progress=bar,
            standardize=standardize,
            latents=latents,
        )
    shutdown()
    if rank != 0:
        return
    table = als_table(res)
    click.echo(table.to_string(float_format=lambda v: f"{v:.4f}"))
    kind = f"edit along {os.path.basename(boundary)} x {edit_alpha:g}" if boundary else space
    if latents is not None:
        kind += f", codes of {latents_file}"
    click.echo(
        f"mean ALS ({protocol}{', standardised' if standardize else ''}, {pairs} pairs, {steps} steps, {kind}): "
        f"{res['mean']:.4f}"
    )
    from latentlab.studies.als import mixed_units_note

    note = mixed_units_note(res)
    if note:
        click.echo(f"note: {note}")
    if out_dir:
        settings = dict(
            model=ckpt,
            classifier=classifier_spec,
            space=space,
            latents=latents_file,
            seed=seed,
            boundary=boundary,
            alpha=edit_alpha if boundary else None,
            standardize=standardize,
        )
        write_als_report(res, out_dir, settings=settings, pair_attribute=pair_attr, table=table)
        click.echo(f"wrote the ALS report to {out_dir}")


def _compare_als(specs, out_dir):
    """`als --compare`: read each report folder (NAME=DIR or DIR), write the comparison."""
    from latentlab.studies.reports import read_als_reports, write_als_comparison

    results = read_als_reports(specs)
    table = write_als_comparison(results, out_dir)
    click.echo(table.to_string(float_format=lambda v: f"{v:.4f}"))
    click.echo(f"wrote the ALS comparison ({next(iter(results.values())).attrs['protocol']}) to {out_dir}")


@click.command()
@opt.model
@click.option(
    "--n",
    "num_samples",
    type=click.IntRange(min=2),
    default=100_000,
    show_default=True,
    help="Number of latent pairs (the official metric: 100000).",
    **alias("--samples"),
)
@click.option(
    "--space",
    type=click.Choice(["z", "w"]),
    default=None,
    help="Random pairs slerped in Z or lerped in W [default: w; with --latents, the codes' own space].",
)
@click.option("--sampling", type=click.Choice(["full", "end"]), default="full", show_default=True)
@click.option("--crop", is_flag=True, help="Crop to the face region first (as the FFHQ metric does).")
@click.option(
    "--labels",
    default=None,
    help="Conditional models: a dataset folder/zip with dataset.json (labels drawn from it, as the official "
    "metric does) or 'uniform' (a random one-hot class per pair) [default: uniform].",
)
@click.option(
    "--latents",
    "latents_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Latents file (z, w, w+ or s codes, e.g. from `project`, `encode` or `generate`): pairs join two of its codes.",
)
@opt.trunc
@opt.trunc_cutoff
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--random-backbone",
    is_flag=True,
    help="LPIPS with an untrained VGG (offline smoke runs; not comparable to published PPL).",
)
@opt.batch
@opt.device_opt
@opt.out(
    optional=True,
    legacy=(".json",),
    help="Report folder: ppl.json (mean, settings, histogram), distances.npy, histogram figure, the 8 lowest and 8 "
    "highest pairs, interpolation strips of the lowest and highest --band, summary.md.",
)
@click.option(
    "--grids",
    "grid_dir",
    default=None,
    type=click.Path(file_okay=False),
    hidden=True,
    help="Old name of --out DIR (deprecated).",
)
@click.option(
    "--band",
    type=opt.FiniteFloat(0, 0.5, min_open=True),
    default=0.1,
    show_default=True,
    help="Fraction of pairs in the lowest / highest band shown as interpolation strips.",
)
@click.option(
    "--compare",
    "compare_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Earlier --out report folder to overlay in the histogram (repeatable).",
)
@click.option("--label", default=None, help="This run's name in figures (default: the model name).")
def ppl(
    ckpt,
    num_samples,
    space,
    sampling,
    crop,
    labels,
    latents_file,
    psi,
    cutoff,
    seed,
    random_backbone,
    batch_size,
    device,
    out_dir,
    force,
    grid_dir,
    band,
    compare_dirs,
    label,
):
    """Perceptual path length (StyleGAN paper), as the official StyleGAN2-ADA metric computes it.

    Each pair gets fresh noise, shared by its two images (as the official sampler does);
    conditional models draw labels per pair (--labels). LPIPS-VGG needs torchvision's
    ImageNet VGG weights, downloaded on first use.

    \b
    Example:
      latentlab ppl --model ffhq.pkl --n 100000 --space w --sampling end --crop
      latentlab ppl --model cifar10.pkl --labels ~/data/cifar10.zip --n 50000
      latentlab ppl --model ffhq.pkl --trunc 0.7 --out out/ppl07 --compare out/ppl10
      latentlab ppl --model ffhq.pkl --latents out/proj/latents.npz --n 1000
      torchrun --nproc_per_node 4 -m latentlab -- ppl --model ffhq.pkl --n 100000 --out out/ppl
    """
    from latentlab.latents import LatentCodes
    from latentlab.studies import LPIPSDistance, perceptual_path_length
    from latentlab.studies.ppl import dataset_labels
    from latentlab.studies.ppl_figures import read_ppl_report
    from latentlab.utils.distributed import join, shutdown
    from latentlab.utils.progress import progress_bar, rank_share

    out_json = out_dir if out_dir and out_dir.lower().endswith(".json") and not os.path.isdir(out_dir) else None
    report_dir = None if out_json else out_dir  # --out FILE.json: the JSON alone, as before (deprecated)
    if grid_dir is not None:
        if report_dir is not None:
            raise click.UsageError("--grids is the old name of --out: give only --out DIR")
        from latentlab.utils.outdir import check_out_dir

        click.echo("latentlab: note: --grids DIR is deprecated: use --out DIR", err=True)
        report_dir = check_out_dir(grid_dir, force, "--grids")
    compare = dict(read_ppl_report(d) for d in compare_dirs) if compare_dirs else {}  # bad folders fail before work
    dev, rank, _ = join(device)  # under torchrun the work is split across ranks; rank 0 reports
    G = opt.load_model(ckpt, dev)
    opt.check_cutoff(G, cutoff)
    latents = LatentCodes.load_for(latents_file, G, device=dev) if latents_file else None
    if labels not in (None, "uniform"):
        labels = dataset_labels(labels, G)
    if G.c_dim and labels is None and rank == 0 and not (latents is not None and latents.c is not None):
        click.echo(
            "latentlab: conditional model: each pair's label is a uniformly drawn class (--labels DATASET draws "
            "the dataset's labels, as the official metric does)",
            err=True,
        )
    distance = LPIPSDistance(pretrained_backbone=not random_backbone).to(dev)
    with progress_bar(
        total=rank_share(num_samples),
        desc="ppl",
        unit="pair",
        enabled=rank == 0,
        what="PPL pairs",
        hint="use --n to reduce",
    ) as bar:
        res = perceptual_path_length(
            G,
            num_samples,
            space,
            sampling,
            crop,
            distance=distance,
            batch_size=batch_size,
            seed=seed,
            device=dev,
            progress=bar,
            labels=labels,
            truncation_psi=psi,
            truncation_cutoff=cutoff,
            latents=latents,
        )
    shutdown()
    if rank != 0:
        return
    s = res.settings
    extras = [
        x
        for x in (
            s["sampling"],
            "crop" if crop else "",
            f"psi {psi:g}" if psi != 1 else "",
            f"{len(latents)} given codes" if latents is not None else "",
        )
        if x
    ]
    click.echo(f"PPL ({s['space']}, {', '.join(extras)}, {num_samples} pairs): {res.mean:.3f}")
    if out_json:
        from latentlab.utils.atomic import write_text

        counts, edges = res.histogram()
        write_text(
            out_json,
            json.dumps(
                dict(
                    mean=res.mean,
                    samples=num_samples,
                    **s,
                    histogram=dict(counts=counts.tolist(), edges=edges.tolist()),
                ),
                indent=1,
            ),
        )
        click.echo(f"wrote {out_json}")
    if report_dir:
        from latentlab.studies.reports import ppl_report

        table = labels if labels is not None and not isinstance(labels, str) else None
        ppl_report(
            G,
            res,
            report_dir,
            band,
            latents=latents,
            labels=table,
            compare=compare,
            label=label or (os.path.basename(ckpt) if ckpt else "toyfaces"),
            device=dev,
        )
        click.echo(f"wrote the PPL report (ppl.json, distances.npy, figures, summary.md) to {report_dir}")


@click.command()
@opt.model
@opt.classifier
@click.option(
    "--attrs",
    default=None,
    help="Edited attributes, comma-separated (e.g. smile,age,eyeglasses,gender) [default for the embedded "
    "model: smile,age,eyeglasses,male].",
)
@click.option(
    "--z-boundaries", default=None, type=click.Path(file_okay=False), help="Folder of Z-space <attr>.npy directions."
)
@click.option(
    "--w-boundaries", default=None, type=click.Path(file_okay=False), help="Folder of W-space <attr>.npy directions."
)
@click.option("--score-map", default=None, help="Classifier column per edited attribute, e.g. smile=Smiling,age=Young.")
@click.option(
    "--reference",
    default=None,
    type=click.Path(dir_okay=False),
    help="Reference label table (CelebA list_attr_celeba.txt) [default for the embedded model: the "
    "renderer's own labels].",
)
@opt.seeds
@latents_option(
    help="Latents file (e.g. projected photos) whose codes are edited instead of --seeds: z codes in Z and W, "
    "w/w+ codes in W only (rendered with their noise maps; scores.csv names them)."
)
@click.option(
    "--alpha",
    "alphas",
    type=ALPHAS,
    default="-3:3:13",
    show_default=True,
    help="Edit strengths: a value, a list (-2,0,2) or start:stop:count.",
)
@click.option(
    "--scores",
    type=click.Choice(["logits", "probabilities"]),
    default="logits",
    show_default=True,
    help="Correlate and plot the classifier's logits, or their sigmoid as the paper plots them (the "
    "correlations differ; regressed toyfaces scores stay as they are).",
)
@opt.trunc
@opt.batch
@opt.device_opt
@opt.out(help="Report folder: scores.csv, correlation matrices (CSV, Markdown, heatmaps), linearity plots, summary.md.")
def corr(
    ckpt,
    classifier_spec,
    trust_code,
    attrs,
    z_boundaries,
    w_boundaries,
    score_map,
    reference,
    seeds,
    latents_file,
    alphas,
    scores,
    psi,
    batch_size,
    device,
    out_dir,
):
    """Attribute correlation study: edit in Z and W, score, compare correlations, plot linearity.

    The faces are seeds, or given codes (--latents, e.g. projected photos; w and w+
    codes, which do not convert back to z, are edited in W only).

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
      latentlab corr --latents p/latents.npz --out out/corr_photos
    """
    from latentlab.attributes import load_classifier
    from latentlab.studies.correlation import MissingInput, comparison_lines, reachable_directions, study_inputs
    from latentlab.studies.reports import corr_study, write_corr_report
    from latentlab.utils.distributed import join, shutdown
    from latentlab.utils.progress import progress_bar, rank_share

    opt.check_trust(classifier_spec, trust_code)
    try:
        inputs = study_inputs(ckpt, attrs, z_boundaries, w_boundaries, score_map, reference)  # files read here
    except MissingInput as e:
        raise click.UsageError(str(e)) from None
    dev, rank, _ = join(device)  # under torchrun the work is split across ranks; rank 0 reports
    G = opt.load_model(ckpt, dev)
    faces = seeds_or_latents(seeds, latents_file, G, dev)
    directions = inputs.directions
    if faces is not seeds:
        directions = reachable_directions(directions, faces)
        if len(directions) < len(inputs.directions):
            if z_boundaries is not None:
                raise click.UsageError(
                    f"--z-boundaries: Z edits need z codes; {latents_file} holds {faces.space} codes (drop the option)"
                )
            if rank == 0:
                click.echo(f"latentlab: note: {latents_file} holds {faces.space} codes: W edits only", err=True)
        from latentlab.edits.pipeline import check_given_codes

        check_given_codes(faces, faces.space, psi)  # --trunc applies to z codes only
    clf = load_classifier(
        opt.classifier_for(classifier_spec, G, ckpt, inputs.classifier_attributes), trust_code=trust_code
    )
    clf = clf.to(dev).eval() if hasattr(clf, "to") else clf
    columns = inputs.columns(clf.names)
    total = len(directions) * rank_share(len(faces)) * len(alphas)  # rank 0's share of the faces
    with progress_bar(
        total=total,
        desc="corr",
        unit="img",
        enabled=rank == 0,
        what="edited images",
        hint="use fewer --seeds or --alpha values",
    ) as bar:
        result = corr_study(
            G,
            clf,
            directions,
            faces,
            alphas,
            columns,
            inputs.reference,
            psi,
            batch_size,
            dev,
            progress=bar,
            scores=scores,
        )
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
