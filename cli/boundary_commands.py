"""`latentlab boundary` and `latentlab separability`: thin shells over latentlab.boundaries."""
import contextlib
import json
import os

import click

from . import options as opt
from .conventions import alias

SPACE_FIELDS = {"z": "z", "w": "w", "w+": "wplus", "s": "styles"}


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


def _attributes(table, samples, option, given, allow_all=True):
    """Canonical names (exact, else case-insensitive match) of the attributes given to `option`; `all` alone = every one.

    One line naming the option for an unknown name, a name given twice, or `all` mixed with names."""
    names = list(table.names)
    if allow_all and "all" in given and "all" not in names:
        if len(given) > 1:
            raise ValueError(f"{option} all cannot be combined with other attributes")
        return names
    lower = {n.lower(): n for n in names}
    out = []
    for a in given:
        name = a if a in names else lower.get(a.lower())
        if name is None:
            raise ValueError(f"{option} {a}: unknown attribute {a!r}; the samples in {samples} have: {', '.join(names)}")
        if name in out:
            raise ValueError(f"{option} names attribute {name!r} twice")
        out.append(name)
    return out


def _num_ws(table):
    """Number of ws layers of the sampled model, from the stored per-layer codes or the manifest; None if unknown."""
    if "wplus" in table.fields:
        return int(table.field_spec("wplus")[0][0])
    num_ws = (getattr(table, "manifest", None) or {}).get("num_ws")
    return None if num_ws is None else int(num_ws)


def _codes_and_scores(table, samples, space, layer, chosen):
    """Codes of the requested space (one layer's for w+) and the score columns of the attributes `chosen`."""
    import numpy as np

    field = SPACE_FIELDS[space]
    if space == "w+":
        if layer is None:
            raise click.UsageError("--space w+ needs --layer K (a boundary lives in one layer's w)")
        num_ws = _num_ws(table)
        if num_ws is None:
            raise ValueError(f"--space w+ --layer {layer}: the samples in {samples} store one w per sample and do not record "
                             "how many ws layers the model has, so the layer cannot be checked; use --space w (here every "
                             "layer's code is that w) or samples with per-layer codes (wplus, stored by `latentlab sample "
                             "--trunc PSI --trunc-cutoff K`)")
        if not 0 <= layer < num_ws:
            raise ValueError(f"--layer {layer} does not exist: the samples have ws layers 0-{num_ws - 1}")
        if field not in table.fields:
            field = "w"  # the sampler stores wplus whenever the layers differ: here every layer is this w
    data = table.load(fields=(field, "scores", "seeds"))
    codes = data[field]
    if field == "wplus":
        codes = codes[:, layer]
    idx = [list(table.names).index(a) for a in chosen]
    return np.asarray(codes), np.asarray(data["scores"])[:, idx], data["seeds"]


@click.command()
@click.option("--samples-dir", "samples", required=True, type=click.Path(file_okay=False),
              help="Folder written by `latentlab sample`.", **alias("--samples"))
@click.option("--attr", "attrs", multiple=True, required=True, help="Attribute to train (repeatable), or 'all'.")
@click.option("--space", type=click.Choice(["z", "w", "w+", "s"]), default="w", show_default=True)
@click.option("--layer", type=int, default=None,
              help="With --space w+: the ws layer whose codes are used (0 .. num_ws-1; the samples must store "
                   "per-layer codes or record num_ws).")
@click.option("--condition", "conditions", multiple=True,
              help="Make the boundary orthogonal to this attribute's (repeatable; not one of --attr; "
                   "with --attr all, every other attribute is trained).")
@click.option("--ratio", type=opt.FiniteFloat(0, 1, min_open=True), default=0.02, show_default=True, help="Fraction of samples taken from each end.")
@click.option("--count", type=int, default=None, help="Samples taken from each end (instead of --ratio).")
@click.option("--split", type=opt.FiniteFloat(0, 1, min_open=True), default=0.7, show_default=True, help="Training fraction of the chosen samples.")
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

    table = SampleTable(samples)
    every = list(attrs) == ["all"] and "all" not in table.names
    chosen = _attributes(table, samples, "--attr", list(attrs))
    cond = _attributes(table, samples, "--condition", list(conditions), allow_all=False)
    if every:
        chosen = [a for a in chosen if a not in cond]
        if not chosen:
            raise ValueError("--attr all: every attribute is a --condition, none is left to train")
    same = [a for a in chosen if a in cond]
    if same:
        raise ValueError(f"--attr {same[0]} --condition {same[0]}: an attribute cannot be conditioned on itself")
    names = chosen + cond
    codes, scores, seeds = _codes_and_scores(table, samples, space, layer, names)
    out_file = out_dir if out_dir.lower().endswith(".npy") and not os.path.isdir(out_dir) else None  # deprecated
    if out_file and (len(chosen) > 1 or every):
        raise ValueError(f"--out {out_dir}: several attributes go to a folder")
    with label_warnings():
        results = train_boundaries(codes, scores, names, attrs=chosen, conditions={a: cond for a in chosen},
                                   ratio=ratio, count=count, split=split, solver=solver, seed=seed)
    manifest = getattr(table, "manifest", {}) or {}
    extra = dict(samples=os.path.abspath(samples), seed_range=[int(min(seeds)), int(max(seeds))], n_samples=len(seeds),
                 model_id=manifest.get("model_id") or manifest.get("model_hash"), layer=layer)
    for a, b in results.items():
        path = out_file or os.path.join(out_dir, f"{a}{'_c_' + '_'.join(cond) if cond else ''}.npy")
        write_boundary(b, path, space=space, extra=extra)
        acc = "n/a" if b.val_accuracy is None else f"{b.val_accuracy:.4f}"
        rem = "n/a" if b.remaining_accuracy is None else f"{b.remaining_accuracy:.4f}"
        click.echo(f"{a:<24} val acc {acc}  remaining acc {rem}  ({b.n_train} train, {b.solver}) -> {path}")
    folder = (os.path.dirname(out_file) or ".") if out_file else out_dir
    click.echo(f"wrote {len(results)} boundar{'y' if len(results) == 1 else 'ies'} (.npy, .json) and index.json to {folder}")


@click.command()
@click.option("--samples-dir", "samples", required=True, type=click.Path(file_okay=False),
              help="Folder written by `latentlab sample`.", **alias("--samples"))
@click.option("--space", type=click.Choice(["z", "w", "s"]), default="w", show_default=True)
@click.option("--attrs", default="all", show_default=True, help="Comma-separated attributes, or all.")
@click.option("--keep", type=opt.FiniteFloat(0, 1, min_open=True), default=0.5, show_default=True,
              help="Fraction of the most confident samples kept per attribute (the official metric: 0.5).")
@click.option("--svm", type=click.Choice(["official", "primal"]), default="official", show_default=True,
              help="official: LinearSVC's dual solver as in the published metric (often unconverged, slow on many "
                   "samples); primal: converged and ~40x faster, slightly different scores.")
@click.option("--ranking", type=click.Choice(["official", "exact"]), default="official", show_default=True,
              help="official: float32 softmax confidence, stable sort, as NVIDIA's code (saturated logits tie and "
                   "keep sampling order); exact: float64 |logit| (not the published procedure).")
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
    from latentlab.utils.atomic import write_text

    table = SampleTable(samples)
    chosen = _attributes(table, samples, "--attrs", [a.strip() for a in attrs.split(",") if a.strip()])
    if not chosen:
        raise ValueError("--attrs: no attribute given")
    codes, scores, _ = _codes_and_scores(table, samples, space, None, chosen)
    with label_warnings():
        res = linear_separability(codes, scores, names=chosen, keep=keep, ranking=ranking, svm=svm)
    for name, h in res.entropies.items():
        click.echo(f"{name:<24} H = {h:.4f} bits")
    click.echo(f"separability ({space}, {len(chosen)} attributes, {res.kept} samples kept, {ranking} ranking): "
               f"2^(sum H) = {res.score:.4f}")
    if out_dir:
        legacy = out_dir.lower().endswith(".json") and not os.path.isdir(out_dir)  # --out FILE.json (deprecated)
        path = out_dir if legacy else os.path.join(out_dir, "separability.json")
        write_text(path, json.dumps(dict(res.to_dict(), space=space, samples=os.path.abspath(samples)), indent=1))
        click.echo(f"wrote {path}" if legacy else f"wrote separability.json to {out_dir}")


ALL = [boundary, separability]
