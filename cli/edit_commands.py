"""`latentlab edit`, `mix` and `interpolate`: thin shells over latentlab.edits."""
import json
import os

import click

from . import options as opt
from .conventions import ALPHAS, alias


def _direction(G, ckpt, attr, boundary, boundaries_dir, conditions, channels, space):
    """Resolve the primary direction (and conditions) from the options; None for a pure channel edit."""
    from latentlab.edits import load_direction, orthogonalize, resolve_attribute
    from latentlab.edits.registry import resolve_direction

    def one(spec, what, space=space):
        if os.path.exists(spec) or spec.endswith(".npy"):
            return load_direction(spec)
        return resolve_attribute(spec, G, ckpt, boundaries_dir, space=space)

    if sum(x is not None for x in (attr, boundary)) > 1:
        raise click.UsageError("give either --attr or --boundary, not both")
    if attr is None and boundary is None:
        if channels is None:
            raise click.UsageError("say what to edit: --attr NAME, --boundary FILE.npy, or --channels for S space")
        if conditions:
            raise click.UsageError("--condition needs --attr or --boundary")
        return None
    if attr is not None:  # conditions applied there (InterFaceGAN's released conditioned file when one fits)
        d, conditions = resolve_direction(attr, G, ckpt, boundaries_dir, space, conditions), ()
    else:
        d = one(boundary, "boundary")
    if d.space is not None and space is not None and d.space != space and not (d.space == "w" and space == "w+"):
        raise ValueError(f"direction {d.name!r} belongs to the {d.space} space, not {space}; pass --space {d.space}")
    if conditions:
        d = orthogonalize(d, [one(c, "condition", space or d.space) for c in conditions])
    return d


@click.command()
@opt.model
@click.option("--attr", default=None, help="Attribute name registered for the model (e.g. smile).")
@click.option("--boundary", default=None, type=click.Path(dir_okay=False), help="Direction file (.npy, InterFaceGAN layout (1, d)).")
@click.option("--boundaries", "boundaries_dir", default=None, type=click.Path(file_okay=False), help="Folder of <attr>.npy directions to resolve --attr in.")
@click.option("--condition", "conditions", multiple=True, help="Attribute or .npy file to stay orthogonal to (repeatable).")
@click.option("--alpha", "alphas", type=ALPHAS, default="-3:3:7", show_default=True,
              help="Value, list (-2,0,2) or start:stop:count.")
@click.option("--to-distance", is_flag=True, help="Read --alpha as target signed distances to the boundary (InterFaceGAN).")
@click.option("--space", type=click.Choice(["z", "w", "w+", "s"]), default=None, help="Latent space (default: the direction's, else w).")
@click.option("--layers", default=None, help="W+ layers: 0-5, a list, coarse, middle (or medium), fine or all.")
@click.option("--channels", default=None, help="S-space channels: b64.conv0:12,b32.conv1:3-5 or flat indices.")
@opt.seeds
@opt.trunc
@opt.trunc_cutoff
@opt.noise_mode
@click.option("--class", "class_idx", type=click.IntRange(min=0), default=None, help="Class index (conditional models).")
@opt.batch
@opt.device_opt
@click.option("--no-original", "no_original", is_flag=True,
              help="Do not add the unedited image (alpha 0) as the first column when --alpha lacks 0.")
@opt.out(help="Output folder: grid.png, seedNNNN_alphaA.png, edit.json, latents.npz.")
def edit(ckpt, attr, boundary, boundaries_dir, conditions, alphas, to_distance, space, layers, channels, seeds, psi, cutoff, noise_mode,
         class_idx, batch_size, device, no_original, out_dir):
    """Edit generated faces along a semantic direction: code + alpha * n.

    Writes grid.png (rows = seeds, columns = alphas), one PNG per image,
    edit.json (everything needed to reproduce it) and latents.npz. The first
    column is the unedited image (alpha 0, added unless --alpha has it; with
    --to-distance the unedited code; --no-original omits it).

    \b
    Example:
      latentlab edit --model ffhq --attr smile --alpha 2 --seeds 0-3 --out out/smile
      latentlab edit --model ffhq.pkl --boundary smile_w.npy --condition age.npy --alpha -3:3:7 --out out/smile_c_age
      latentlab edit --model ffhq.pkl --boundary smile_w.npy --space w+ --layers 0-5 --out out/coarse
      latentlab edit --model ffhq.pkl --space s --channels b64.conv0:12 --alpha -10,0,10 --out out/channel
      latentlab edit --model ffhq.pkl --boundary smile_w.npy --to-distance --alpha -3:3:7 --out out/distance
    """
    from latentlab.edits.pipeline import edit_alphas, run_edit, save_edit
    from latentlab.generate import class_labels
    from latentlab.latents import parse_layers, parse_seeds
    from latentlab.utils.progress import progress_bar

    seed_list, alpha_list = parse_seeds(seeds), edit_alphas(alphas, not no_original, to_distance)
    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    opt.check_cutoff(G, cutoff)
    direction = _direction(G, ckpt, attr, boundary, boundaries_dir, conditions, channels, space)
    space = space or (direction.space if direction is not None and direction.space else ("s" if direction is None else "w"))
    if direction is None and space != "s":
        raise click.UsageError("--channels edits the s space: add --space s")
    if layers is not None and space != "w+":
        raise click.UsageError("--layers needs --space w+")
    if layers is not None:
        parse_layers(layers, G)  # fail before rendering
    c = class_labels(G, len(seed_list), class_idx, dev)
    total = len(seed_list) * len(alpha_list)
    with progress_bar(total=total, desc="edit", unit="img", what="images",
                      hint="use fewer --seeds or --alpha values") as bar:
        codes, edited, images = run_edit(G, seed_list, direction, alphas, space, layers, channels, psi, cutoff,
                                         noise_mode, c, batch_size, dev, progress=bar, to_distance=to_distance,
                                         original=not no_original)
    record = dict(
        model=ckpt, to_distance=to_distance, space=space, layers=parse_layers(layers, G) if space == "w+" else None, channels=channels,
        truncation=dict(psi=psi, cutoff=cutoff), noise_mode=noise_mode, class_idx=class_idx,
        direction=None if direction is None else dict(name=direction.name, source=direction.source, space=direction.space,
                                                      sha256=direction.sha256, conditions=list(conditions)),
    )
    save_edit(out_dir, G, codes, edited, images, None, record)
    click.echo(f"wrote {total} images, grid.png, edit.json and latents.npz to {out_dir}")


@click.command()
@opt.model
@click.option("--rows", "row_seeds", default="0-3", show_default=True, help="Seeds of the images that receive layers.")
@click.option("--cols", "col_seeds", default="10-13", show_default=True, help="Seeds of the images the layers come from.")
@click.option("--layers", default="coarse", show_default=True, help="Layers to copy: 0-5, a list, coarse, middle (or medium), fine.")
@opt.trunc
@opt.trunc_cutoff
@opt.noise_mode
@opt.batch
@opt.device_opt
@opt.out(help="Output folder: grid.png, mix_ROW_COL.png, mix.json.")
def mix(ckpt, row_seeds, col_seeds, layers, psi, cutoff, noise_mode, batch_size, device, out_dir):
    """Style mixing grid: row images with the chosen layers taken from column images.

    The top row shows the column sources, the left column the row sources.

    \b
    Example:
      latentlab mix --model ffhq.pkl --rows 0-3 --cols 10-13 --layers coarse --trunc 0.7 --out out/mix
    """
    import numpy as np

    from latentlab.edits import style_mix
    from latentlab.edits.pipeline import start_codes, versions
    from latentlab.latents import parse_layers, parse_seeds
    from latentlab.utils.images import make_grid, save_png, to_pil, to_uint8

    rows, cols = parse_seeds(row_seeds), parse_seeds(col_seeds)
    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    opt.check_cutoff(G, cutoff)
    sel = parse_layers(layers, G)
    import torch

    with torch.no_grad():
        wr = start_codes(G, rows, "w+", psi, cutoff, device=dev).data
        wc = start_codes(G, cols, "w+", psi, cutoff, device=dev).data
        mixed = style_mix(wr.repeat_interleave(len(cols), 0), wc.repeat(len(rows), 1, 1), sel)
        render = lambda ws: np.concatenate([to_uint8(G.synthesis(ws[i : i + batch_size], noise_mode=noise_mode))  # noqa: E731
                                            for i in range(0, len(ws), batch_size)])
        img_r, img_c, img_m = render(wr), render(wc), render(mixed)
    h, w, ch = img_r.shape[1:]
    blank = np.full((1, h, w, ch), 255, np.uint8)
    cells = [blank, img_c]
    for i in range(len(rows)):
        cells += [img_r[i : i + 1], img_m[i * len(cols) : (i + 1) * len(cols)]]
    os.makedirs(out_dir, exist_ok=True)
    save_png(to_pil(make_grid(np.concatenate(cells), cols=len(cols) + 1)), os.path.join(out_dir, "grid.png"))
    for i, r in enumerate(rows):
        for j, cs in enumerate(cols):
            save_png(to_pil(img_m[i * len(cols) + j]), os.path.join(out_dir, f"mix_{r:04d}_{cs:04d}.png"))
    with open(os.path.join(out_dir, "mix.json"), "w") as f:
        json.dump(dict(model=ckpt, rows=rows, cols=cols, layers=sel, truncation=dict(psi=psi, cutoff=cutoff),
                       noise_mode=noise_mode, versions=versions()), f, indent=1)
    click.echo(f"wrote {len(rows) * len(cols)} mixes and grid.png to {out_dir}")


@click.command()
@opt.model
@click.option("--seeds", default="0,1", show_default=True, help="Two or more seeds; consecutive pairs are interpolated.")
@click.option("--frames", "steps", type=click.IntRange(min=2), default=8, show_default=True,
              help="Frames per pair, both ends included.", **alias("--steps"))
@click.option("--space", type=click.Choice(["z", "w", "w+"]), default="w", show_default=True, help="z uses slerp, w/w+ lerp.")
@opt.trunc
@opt.trunc_cutoff
@opt.noise_mode
@opt.batch
@opt.device_opt
@opt.out(help="Output folder: pairPP_frameFFF.png, grid.png, path.npz.")
def interpolate(ckpt, seeds, steps, space, psi, cutoff, noise_mode, batch_size, device, out_dir):
    """Interpolate between seeds: slerp in Z, lerp in W / W+.

    \b
    Example:
      latentlab interpolate --model ffhq.pkl --seeds 0,5,9 --frames 10 --space w --out out/interp
    """
    import numpy as np
    import torch

    from latentlab.edits import lerp, slerp
    from latentlab.edits.pipeline import render_codes, start_codes
    from latentlab.latents import parse_seeds
    from latentlab.utils.images import make_grid, save_png, to_pil

    seed_list = parse_seeds(seeds)
    if len(seed_list) < 2:
        raise click.UsageError("--seeds needs at least two seeds")
    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    opt.check_cutoff(G, cutoff)
    codes = start_codes(G, seed_list, space, psi, cutoff, device=dev)
    t = torch.linspace(0, 1, steps)
    a, b = codes.data[:-1], codes.data[1:]
    path = slerp(a, b, t) if space == "z" else lerp(a, b, t)  # [T, P, ...]
    frames = codes.replace(data=path.transpose(0, 1).flatten(0, 1), seeds=None)
    from latentlab.utils.progress import progress_bar

    with progress_bar(total=len(frames), desc="interpolate", unit="img", what="frames",
                      hint="use fewer --seeds or --frames") as bar:
        images = render_codes(G, frames, psi, cutoff, noise_mode, batch_size, progress=bar)
    os.makedirs(out_dir, exist_ok=True)
    for k, img in enumerate(images):
        save_png(to_pil(img), os.path.join(out_dir, f"pair{k // steps:02d}_frame{k % steps:03d}.png"))
    save_png(to_pil(make_grid(images, cols=steps)), os.path.join(out_dir, "grid.png"))
    np.savez(os.path.join(out_dir, "path.npz"), codes=frames.data.numpy(), space=space, seeds=np.asarray(seed_list), t=t.numpy())
    click.echo(f"wrote {len(images)} frames and grid.png to {out_dir}")


ALL = [edit, mix, interpolate]


@click.command()
@opt.model
@opt.seeds
@click.option("--variant", "variants", multiple=True,
              help="Truncation spec (repeatable): none, w:0.7, w:0.7@8, schedule:..., center:FILE.npy:0.5, z:2.0, "
                   "clamp:95, clusters:k=8,psi=0.7[,rep=styles|w,dims=64] or clusters:FILE.npz.")
@click.option("--clusters", "clusters_file", default=None, type=click.Path(dir_okay=False),
              help="Clusters file, fitted (--save-fitted) or learned (`latentlab train clusters`); adds a row.")
@click.option("--choose", default=None,
              help="With --clusters: generate from chosen clusters, LEVEL=ID[,LEVEL=ID...] (e.g. coarse=3,fine=1); "
                   "levels not named keep their predicted cluster.")
@click.option("--trunc", "clusters_psi", type=opt.FINITE, default=None,
              help="With --clusters: truncation psi to use instead of the file's.", **alias("--psi"))
@click.option("--tsne", is_flag=True,
              help="With --clusters: write tsne.png/pdf, a per-level t-SNE of the codes coloured by cluster.")
@click.option("--umap", "umap_plot", is_flag=True, help="With --clusters: write umap.png/pdf likewise (needs umap-learn).")
@click.option("--embed-samples", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Codes per level in the t-SNE / UMAP figure.")
@click.option("--fit-samples", type=click.IntRange(min=10), default=10000, show_default=True, help="Samples for variants that fit.")
@click.option("--fit-seed", type=int, default=0, show_default=True)
@click.option("--save-fitted", is_flag=True, help="Save fitted variants (e.g. clusters) into --out for reuse.")
@opt.noise_mode
@opt.batch
@opt.device_opt
@opt.out(help="Output folder: grid.png, variantN.png [variantN.npz], truncate.json [tsne/umap figures].")
def truncate(ckpt, seeds, variants, clusters_file, choose, clusters_psi, tsne, umap_plot, embed_samples, fit_samples,
             fit_seed, save_fitted, noise_mode, batch_size, device, out_dir):
    """Truncation variants side by side on the same seeds (rows = variants, columns = seeds).

    With --clusters, the last row comes from that clusters file: truncated toward each
    level's predicted cluster, or, with --choose, generated from the chosen cluster per
    level (controlled generation; a learned file samples the chosen Gaussian).

    \b
    Example:
      latentlab truncate --model ffhq.pkl --seeds 0-5 --variant none --variant w:0.7 --variant z:2 --out out/trunc
      latentlab truncate --model ffhq.pkl --variant clusters:k=8,psi=0.5 --save-fitted --out out/clusters
      latentlab truncate --model ffhq.pkl --clusters out/clusters/variant0.npz --trunc 0.3 --out out/reuse
      latentlab truncate --model ffhq.pkl --clusters runs/clusters/clusters.npz --choose coarse=3,fine=1 --tsne --out out/c3
    """
    import numpy as np
    import torch

    from latentlab.edits.pipeline import versions
    from latentlab.latents import parse_seeds, z_from_seeds
    from latentlab.truncation import parse_truncation
    from latentlab.truncation.base import check_number
    from latentlab.truncation.spec import parse_choice
    from latentlab.utils.atomic import write_text
    from latentlab.utils.images import make_grid, save_png, to_pil, to_uint8

    for flag, given in (("--choose", choose is not None), ("--trunc", clusters_psi is not None), ("--tsne", tsne),
                        ("--umap", umap_plot)):
        if given and not clusters_file:
            raise click.UsageError(f"{flag} needs --clusters FILE")
    specs = list(variants) or ["none", "w:0.7", "w:0.5", "z:2.0", "clamp:90"]
    if clusters_file:
        specs.append(f"clusters:{clusters_file}")
    truncs = [parse_truncation(s) for s in specs]  # all specs checked before any work
    chosen = None
    if clusters_file:
        t = truncs[-1]
        if clusters_psi is not None:
            t.psi = check_number("--trunc", clusters_psi)
        if choose is not None:
            chosen = t.check_clusters(parse_choice(choose))
    if umap_plot:
        from latentlab.truncation.figures import embed

        embed(np.zeros((10, 2)), "umap")  # fails now, with one line, when umap-learn is missing
    seed_list = parse_seeds(seeds)
    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    os.makedirs(out_dir, exist_ok=True)
    z = z_from_seeds(seed_list, G.z_dim, dev)
    rows, record = [], []
    for i, (spec, t) in enumerate(zip(specs, truncs)):
        if t.requires_fit and not t.is_fitted:
            click.echo(f"fitting {spec} on {fit_samples} samples ...", err=True)
            t.fit(G, n_samples=fit_samples, seed=fit_seed, progress=True)
        last = clusters_file and i == len(specs) - 1
        with torch.no_grad():
            ws = t.generate(G, z, chosen) if last and chosen else t(G, z)
            imgs = np.concatenate([to_uint8(G.synthesis(ws[j : j + batch_size], noise_mode=noise_mode))
                                   for j in range(0, len(ws), batch_size)])
        rows.append(imgs)
        save_png(to_pil(make_grid(imgs, cols=len(seed_list))), os.path.join(out_dir, f"variant{i}.png"))
        entry = dict(spec=spec, name=t.name, image=f"variant{i}.png")
        if last and chosen:
            entry["choose"] = chosen
            entry["name"] += " choose " + ",".join(f"{level}={k}" for level, k in chosen.items())
        if last and clusters_psi is not None:
            entry["psi"] = t.psi
        if save_fitted and t.requires_fit:
            t.save(os.path.join(out_dir, f"variant{i}.npz"))
            entry["fitted"] = f"variant{i}.npz"
        record.append(entry)
    save_png(to_pil(make_grid(np.concatenate(rows), cols=len(seed_list))), os.path.join(out_dir, "grid.png"))
    figures = []
    for method, wanted in (("tsne", tsne), ("umap", umap_plot)):
        if wanted:
            from latentlab.truncation.figures import cluster_embedding_figure

            click.echo(f"embedding {embed_samples} codes per level ({method}) ...", err=True)
            cluster_embedding_figure(truncs[-1], G, os.path.join(out_dir, method), n=embed_samples, seed=fit_seed,
                                     method=method)
            figures += [f"{method}.png", f"{method}.pdf"]
    write_text(os.path.join(out_dir, "truncate.json"),
               json.dumps(dict(model=ckpt, seeds=seed_list, variants=record, figures=figures, noise_mode=noise_mode,
                               versions=versions()), indent=1))
    for i, e in enumerate(record):
        click.echo(f"row {i}: {e['name']}")
    click.echo(f"wrote grid.png ({len(specs)} variants x {len(seed_list)} seeds)" +
               (f" and {', '.join(figures)}" if figures else "") + f" to {out_dir}")


ALL.append(truncate)
