"""`latentlab boundary` and `latentlab separability`: thin shells over latentlab.boundaries."""
import json
import os

import click

SPACE_FIELDS = {"z": "z", "w": "w", "w+": "wplus", "s": "styles"}


def _codes_and_scores(samples, space, layer, attrs):
    """Codes of the requested space and the score columns of `attrs` from a sample folder."""
    import numpy as np

    from latentlab.sampling import SampleTable

    table = SampleTable(samples)
    names = list(table.names)
    lower = {n.lower(): n for n in names}
    chosen = names if attrs == ["all"] else []
    if not chosen:
        for a in attrs:
            if a not in names and a.lower() not in lower:
                raise ValueError(f"unknown attribute {a!r}; the samples in {samples} have: {', '.join(names)}")
            chosen.append(a if a in names else lower[a.lower()])
    field = SPACE_FIELDS[space]
    if space == "w+" and layer is None:
        raise click.UsageError("--space w+ needs --layer K (a boundary lives in one layer's w)")
    if space == "w+" and field not in table.fields:
        field = "w"  # no per-layer codes stored: every layer of w+ is the same w
        if layer < 0:
            raise ValueError(f"--layer {layer} does not exist")
    data = table.load(fields=(field, "scores", "seeds"))
    if field not in data or data[field] is None:
        hint = " (sample with --styles)" if space == "s" else ""
        raise ValueError(f"the samples in {samples} have no {space} codes{hint}")
    codes = data[field]
    if space == "w+" and field == "wplus":
        if not 0 <= layer < codes.shape[1]:
            raise ValueError(f"--layer {layer} does not exist: the samples have ws layers 0-{codes.shape[1] - 1}")
        codes = codes[:, layer]
    idx = [names.index(a) for a in chosen]
    return table, np.asarray(codes), np.asarray(data["scores"])[:, idx], chosen, data["seeds"]


@click.command()
@click.option("--samples", required=True, type=click.Path(file_okay=False), help="Folder written by `latentlab sample`.")
@click.option("--attr", "attrs", multiple=True, required=True, help="Attribute to train (repeatable), or 'all'.")
@click.option("--space", type=click.Choice(["z", "w", "w+", "s"]), default="w", show_default=True)
@click.option("--layer", type=int, default=None, help="With --space w+: the ws layer whose codes are used.")
@click.option("--condition", "conditions", multiple=True, help="Make the boundary orthogonal to this attribute's (repeatable).")
@click.option("--ratio", type=float, default=0.02, show_default=True, help="Fraction of samples taken from each end.")
@click.option("--count", type=int, default=None, help="Samples taken from each end (instead of --ratio).")
@click.option("--split", type=float, default=0.7, show_default=True, help="Training fraction of the chosen samples.")
@click.option("--solver", type=click.Choice(["linear", "svc"]), default="linear", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", required=True, type=click.Path(), help="ATTR.npy for one attribute, a folder for several.")
def boundary(samples, attrs, space, layer, conditions, ratio, count, split, solver, seed, out):
    """Train InterFaceGAN boundaries from scored samples.

    Writes the unit normal in InterFaceGAN's (1, d) .npy layout, a JSON report
    beside it (accuracies, counts, solver, seed range, model hash), and registers
    it in the folder's index.json so that `latentlab edit --boundaries DIR --attr A` finds it.

    \b
    Example:
      latentlab boundary --samples out/samples --attr smile --space w --out checkpoints/boundaries/mymodel/smile.npy
      latentlab boundary --samples out/samples --attr smile --condition age --out out/bounds/smile_c_age.npy
      latentlab boundary --samples out/samples --attr all --out out/bounds/
    """
    from latentlab.boundaries import train_boundaries, write_boundary

    attrs, cond = list(attrs), list(conditions)
    wanted = ["all"] if attrs == ["all"] else attrs + [c for c in cond if c not in attrs]
    table, codes, scores, names, seeds = _codes_and_scores(samples, space, layer, wanted)
    chosen = names if attrs == ["all"] else names[: len(attrs)]
    multi = len(chosen) > 1 or attrs == ["all"]
    if not multi and not out.endswith(".npy"):
        raise ValueError(f"--out {out}: one attribute goes to a .npy file")
    if multi and out.endswith(".npy"):
        raise ValueError(f"--out {out}: several attributes go to a folder")
    results = train_boundaries(codes, scores, names, attrs=chosen, conditions={a: cond for a in chosen if a not in cond},
                               ratio=ratio, count=count, split=split, solver=solver, seed=seed)
    manifest = getattr(table, "manifest", {}) or {}
    extra = dict(samples=os.path.abspath(samples), seed_range=[int(min(seeds)), int(max(seeds))], n_samples=len(seeds),
                 model_id=manifest.get("model_id") or manifest.get("model_hash"), layer=layer)
    for a, b in results.items():
        path = out if not multi else os.path.join(out, f"{a}{'_c_' + '_'.join(cond) if cond else ''}.npy")
        write_boundary(b, path, space=space, extra=extra)
        acc = "n/a" if b.val_accuracy is None else f"{b.val_accuracy:.4f}"
        rem = "n/a" if b.remaining_accuracy is None else f"{b.remaining_accuracy:.4f}"
        click.echo(f"{a:<24} val acc {acc}  remaining acc {rem}  ({b.n_train} train, {b.solver}) -> {path}")


@click.command()
@click.option("--samples", required=True, type=click.Path(file_okay=False), help="Folder written by `latentlab sample`.")
@click.option("--space", type=click.Choice(["z", "w", "s"]), default="w", show_default=True)
@click.option("--attrs", default="all", show_default=True, help="Comma-separated attributes, or all.")
@click.option("--keep", type=float, default=0.5, show_default=True, help="Fraction of most confident samples kept.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write the result as JSON too.")
def separability(samples, space, attrs, keep, out):
    """Linear separability of a latent space (StyleGAN paper, section 4.2).

    Prints each attribute's conditional entropy H(Y|X) in nats and the score
    exp(sum H): 1 means every attribute is linearly separable in that space.

    \b
    Example:
      latentlab separability --samples out/samples --space w
      latentlab separability --samples out/samples --space z --attrs Smiling,Male --out sep_z.json
    """
    from latentlab.boundaries import linear_separability
    from latentlab.utils.atomic import write_text

    names = ["all"] if attrs == "all" else [a.strip() for a in attrs.split(",") if a.strip()]
    _, codes, scores, chosen, _ = _codes_and_scores(samples, space, None, names)
    res = linear_separability(codes, scores, names=chosen, keep=keep)
    for name, h in res.entropies.items():
        click.echo(f"{name:<24} H = {h:.4f} nats")
    click.echo(f"separability ({space}, {len(chosen)} attributes, {res.kept} samples kept): {res.score:.4f}")
    if out:
        write_text(out, json.dumps(dict(res.to_dict(), space=space, samples=os.path.abspath(samples)), indent=1))


ALL = [boundary, separability]
