"""`latentlab boundary` and `latentlab separability`: thin shells over latentlab.boundaries."""

import contextlib
import json
import os

import click

from latentlab.errors import ConfigError

from . import options as opt
from .conventions import alias


@contextlib.contextmanager
def label_warnings():
    """Print the library's ImbalancedLabelsWarning as one line on stderr ('latentlab: warning: ...'); the run goes on."""
    import warnings

    from latentlab.boundaries import ImbalancedLabelsWarning

    with warnings.catch_warnings():
        shown = warnings.showwarning
        warnings.simplefilter("always", ImbalancedLabelsWarning)

        def show(message, category, *args, **kwargs):
            if issubclass(category, ImbalancedLabelsWarning):
                click.echo(f"latentlab: warning: {message}", err=True)
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


@click.command()
@click.option(
    "--samples-dir",
    "samples",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder written by `latentlab sample`.",
    **alias("--samples"),
)
@click.option("--attr", "attrs", multiple=True, required=True, help="Attribute to train (repeatable), or 'all'.")
@click.option("--space", type=click.Choice(["z", "w", "w+", "s"]), default="w", show_default=True)
@click.option(
    "--layer",
    type=int,
    default=None,
    help="With --space w+: the ws layer whose codes are used (0 .. num_ws-1; the samples must store "
    "per-layer codes or record num_ws).",
)
@click.option(
    "--condition",
    "conditions",
    multiple=True,
    help="Make the boundary orthogonal to this attribute's (repeatable; not one of --attr; "
    "with --attr all, every other attribute is trained).",
)
@click.option(
    "--ratio",
    type=opt.FiniteFloat(0, 1, min_open=True),
    default=0.02,
    show_default=True,
    help="Fraction of samples taken from each end.",
)
@click.option("--count", type=int, default=None, help="Samples taken from each end (instead of --ratio).")
@click.option(
    "--split",
    type=opt.FiniteFloat(0, 1, min_open=True),
    default=0.7,
    show_default=True,
    help="Training fraction of the chosen samples.",
)
@click.option("--solver", type=click.Choice(["linear", "svc"]), default="linear", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@opt.out(legacy=(".npy",), help="Boundary folder: ATTR.npy (ATTR_c_COND.npy with --condition), ATTR.json, index.json.")
def boundary(samples, attrs, space, layer, conditions, ratio, count, split, solver, seed, out_dir):
    """Train InterFaceGAN boundaries from scored samples.

    Writes per attribute the unit normal in InterFaceGAN's (1, d) .npy layout
    (ATTR.npy, or ATTR_c_COND.npy with --condition), a JSON report beside it
    (accuracies, counts, solver, seed range, model hash), and registers it in
    the folder's index.json so that `latentlab edit --boundaries DIR --attr A` finds it.

    \b
    Example:
      latentlab boundary --samples-dir out/samples --attr smile --space w --out checkpoints/boundaries/mymodel
      latentlab boundary --samples-dir out/samples --attr smile --condition age --out out/bounds
      latentlab boundary --samples-dir out/samples --attr all --out out/bounds_all
    """
    from latentlab.boundaries import train_boundaries, write_boundary
    from latentlab.sampling import SampleTable
    from latentlab.sampling.select import boundary_attributes, codes_and_scores

    if space == "w+" and layer is None:
        raise click.UsageError("--space w+ needs --layer K (a boundary lives in one layer's w)")
    table = SampleTable(samples)
    chosen, cond = boundary_attributes(table, attrs, conditions)
    names = chosen + cond
    codes, scores, seeds = codes_and_scores(table, space, names, layer)
    out_file = out_dir if out_dir.lower().endswith(".npy") and not os.path.isdir(out_dir) else None  # deprecated
    if out_file and (len(chosen) > 1 or (list(attrs) == ["all"] and "all" not in table.names)):
        raise ConfigError(f"--out {out_dir}: several attributes go to a folder")
    with label_warnings():
        results = train_boundaries(
            codes,
            scores,
            names,
            attrs=chosen,
            conditions={a: cond for a in chosen},
            ratio=ratio,
            count=count,
            split=split,
            solver=solver,
            seed=seed,
        )
    manifest = getattr(table, "manifest", {}) or {}
    extra = dict(
        samples=os.path.abspath(samples),
        seed_range=[int(min(seeds)), int(max(seeds))],
        n_samples=len(seeds),
        model_id=manifest.get("model_id") or manifest.get("model_hash"),
        layer=layer,
    )
    for a, b in results.items():
        path = out_file or os.path.join(out_dir, f"{a}{'_c_' + '_'.join(cond) if cond else ''}.npy")
        write_boundary(b, path, space=space, extra=extra)
        acc = "n/a" if b.val_accuracy is None else f"{b.val_accuracy:.4f}"
        rem = "n/a" if b.remaining_accuracy is None else f"{b.remaining_accuracy:.4f}"
        click.echo(f"{a:<24} val acc {acc}  remaining acc {rem}  ({b.n_train} train, {b.solver}) -> {path}")
    folder = (os.path.dirname(out_file) or ".") if out_file else out_dir
    click.echo(
        f"wrote {len(results)} boundar{'y' if len(results) == 1 else 'ies'} (.npy, .json) and index.json to {folder}"
    )


@click.command()
@click.option(
    "--samples-dir",
    "samples",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder written by `latentlab sample`.",
    **alias("--samples"),
)
@click.option("--space", type=click.Choice(["z", "w", "s"]), default="w", show_default=True)
@click.option("--attrs", default="all", show_default=True, help="Comma-separated attributes, or all.")
@click.option(
    "--keep",
    type=opt.FiniteFloat(0, 1, min_open=True),
    default=0.5,
    show_default=True,
    help="Fraction of the most confident samples kept per attribute (the official metric: 0.5).",
)
@click.option(
    "--svm",
    type=click.Choice(["official", "primal"]),
    default="official",
    show_default=True,
    help="official: LinearSVC's dual solver as in the published metric (often unconverged, slow on many "
    "samples); primal: converged and 15-40x faster (measured), slightly different scores.",
)
@click.option(
    "--ranking",
    type=click.Choice(["official", "exact"]),
    default="official",
    show_default=True,
    help="official: float32 softmax confidence, stable sort, as NVIDIA's code (saturated logits tie and "
    "keep sampling order); exact: float64 |logit| (not the published procedure).",
)
@opt.out(optional=True, legacy=(".json",), help="Folder for separability.json (entropies in bits and nats, score).")
def separability(samples, space, attrs, keep, ranking, svm, out_dir):
    """Linear separability of a latent space (StyleGAN paper, section 4.2).

    Computed as NVIDIA's metric: per attribute, the most confident samples
    are kept, a linear SVM is fitted to their codes, and the conditional entropy
    H(Y|X) of the classifier's labels given the SVM's side is printed in bits;
    the score is 2^(sum H): 1 means every attribute is linearly separable in
    that space, 2^A that the codes say nothing about the A attributes. With
    --out DIR, DIR/separability.json has the entropies in bits and in nats.

    \b
    Example:
      latentlab separability --samples-dir out/samples --space w
      latentlab separability --samples-dir out/samples --space z --attrs Smiling,Male --out out/sep_z
    """
    from latentlab.boundaries import linear_separability
    from latentlab.sampling import SampleTable
    from latentlab.sampling.select import codes_and_scores, resolve_attributes
    from latentlab.utils.atomic import write_text

    table = SampleTable(samples)
    chosen = resolve_attributes(table, [a.strip() for a in attrs.split(",") if a.strip()], "--attrs")
    if not chosen:
        raise ConfigError("--attrs: no attribute given")
    codes, scores, _ = codes_and_scores(table, space, chosen)
    with label_warnings():
        res = linear_separability(codes, scores, names=chosen, keep=keep, ranking=ranking, svm=svm)
    for name, h in res.entropies.items():
        click.echo(f"{name:<24} H = {h:.4f} bits")
    click.echo(
        f"separability ({space}, {len(chosen)} attributes, {res.kept} samples kept, {ranking} ranking): "
        f"2^(sum H) = {res.score:.4f}"
    )
    if out_dir:
        legacy = out_dir.lower().endswith(".json") and not os.path.isdir(out_dir)  # --out FILE.json (deprecated)
        path = out_dir if legacy else os.path.join(out_dir, "separability.json")
        write_text(path, json.dumps(dict(res.to_dict(), space=space, samples=os.path.abspath(samples)), indent=1))
        click.echo(f"wrote {path}" if legacy else f"wrote separability.json to {out_dir}")


ALL = [boundary, separability]
