"""`latentlab edit`, `mix`, `interpolate` and `truncate`: thin shells over latentlab.edits and latentlab.studies."""

import click

from . import options as opt
from .conventions import ALPHAS, alias
from .latents_input import latents_option, refuse_with_latents, seeds_or_latents
from .types import CHOICE, LAYERS, SEEDS, TRUNCATION


def _direction(G, ckpt, attr, boundary, boundaries_dir, conditions, channels, space, codes=None):
    """The primary direction (conditions applied) the options name; None for a pure channel edit. codes: the
    --latents codes (a direction they cannot take is refused with what to do instead)."""
    from latentlab.edits.pipeline import edit_direction

    if sum(x is not None for x in (attr, boundary)) > 1:
        raise click.UsageError("give either --attr or --boundary, not both")
    if attr is None and boundary is None:
        if channels is None:
            raise click.UsageError("say what to edit: --attr NAME, --boundary FILE.npy, or --channels for S space")
        if conditions:
            raise click.UsageError("--condition needs --attr or --boundary")
        return None
    return edit_direction(G, ckpt, attr, boundary, boundaries_dir, conditions, space, codes)


@click.command()
@opt.model
@click.option("--attr", default=None, help="Attribute name registered for the model (e.g. smile).")
@click.option(
    "--boundary",
    default=None,
    type=click.Path(dir_okay=False),
    help="Direction file (.npy, InterFaceGAN layout (1, d)).",
)
@click.option(
    "--boundaries",
    "boundaries_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder of <attr>.npy directions to resolve --attr in.",
)
@click.option(
    "--condition", "conditions", multiple=True, help="Attribute or .npy file to stay orthogonal to (repeatable)."
)
@click.option(
    "--alpha",
    "alphas",
    type=ALPHAS,
    default="-3:3:7",
    show_default=True,
    help="Value, list (-2,0,2) or start:stop:count.",
)
@click.option(
    "--to-distance", is_flag=True, help="Read --alpha as target signed distances to the boundary (InterFaceGAN)."
)
@click.option(
    "--space",
    type=click.Choice(["z", "w", "w+", "s"]),
    default=None,
    help="Latent space (default: the direction's, else w).",
)
@click.option(
    "--layers", type=LAYERS, default=None, help="W+ layers: 0-5, a list, coarse, middle (or medium), fine or all."
)
@click.option(
    "--channels",
    default=None,
    help="S-space channels: b64.conv0:12,b32.conv1:3-5 (StyleGAN3: L3_52_512:7) or flat indices.",
)
@opt.seeds
@latents_option(
    help="Latents file to edit instead of --seeds (e.g. `latentlab project`'s latents.npz, or `latentlab encode`'s "
    "s codes): its images start from their reconstruction (its noise maps) and are named after it."
)
@opt.trunc
@opt.trunc_cutoff
@opt.noise_mode
@click.option(
    "--class", "class_idx", type=click.IntRange(min=0), default=None, help="Class index (conditional models)."
)
@opt.batch
@opt.device_opt
@click.option(
    "--no-original",
    "no_original",
    is_flag=True,
    help="Do not add the unedited image (alpha 0) as the first column when --alpha lacks 0.",
)
@opt.allow_nonfinite
@opt.grid_scale
@opt.out(help=f"Output folder: grid.png, seedNNNN_alphaA.png, edit.json, latents.npz. {opt.GRID_HELP}")
def edit(
    ckpt,
    attr,
    boundary,
    boundaries_dir,
    conditions,
    alphas,
    to_distance,
    space,
    layers,
    channels,
    seeds,
    latents_file,
    psi,
    cutoff,
    noise_mode,
    class_idx,
    batch_size,
    device,
    no_original,
    allow_nonfinite,
    grid_scale,
    out_dir,
):
    """Edit generated faces, or given codes (--latents), along a semantic direction: code + alpha * n.

    Writes grid.png (rows = seeds or codes, columns = alphas, labelled; cells
    upscaled to at least 128 px, see --grid-scale), one PNG per image at the
    model's resolution (seedNNNN_alphaA.png, or NAME_alphaA.png named after the
    latents' images), edit.json (everything needed to reproduce it) and
    latents.npz. The first column is the unedited image (alpha 0, added unless
    --alpha has it; with --to-distance the unedited code; --no-original omits it).

    With --latents the codes are edited in their own space or converted forward
    (z -> w -> w+ -> s, never back): W+ codes take a W direction on every layer
    (or --layers); S codes (from `latentlab encode`) edit in S, with --channels or
    an S-space direction, and W/W+ codes can be edited in S too (--space s).

    \b
    Example:
      latentlab edit --model ffhq --attr smile --alpha 2 --seeds 0-3 --out out/smile
      latentlab edit --model ffhq.pkl --boundary smile_w.npy --condition age.npy --alpha -3:3:7 --out out/smile_c_age
      latentlab edit --model ffhq.pkl --boundary smile_w.npy --space w+ --layers 0-5 --out out/coarse
      latentlab edit --model ffhq.pkl --space s --channels b64.conv0:12 --alpha -10,0,10 --out out/channel
      latentlab edit --model ffhq.pkl --boundary smile_w.npy --to-distance --alpha -3:3:7 --out out/distance
      latentlab project photo.png --out p/ && latentlab edit --latents p/latents.npz --attr smile --alpha 2
      latentlab edit --latents enc/latents.npz --space s --channels b16.conv1:3 --alpha -5,5 --out out/enc
    """
    from latentlab.edits.pipeline import check_given_codes, default_edit_space, edit_alphas, run_edit, save_edit
    from latentlab.generate import class_labels
    from latentlab.latents import parse_layers
    from latentlab.utils.progress import progress_bar

    refuse_with_latents(latents_file, **{"--class": "class_idx"})
    alpha_list = edit_alphas(alphas, not no_original, to_distance)
    dev = opt.device(device)
    G = opt.load_model(ckpt, dev, allow_nonfinite=allow_nonfinite)
    opt.check_cutoff(G, cutoff)
    start = seeds_or_latents(seeds, latents_file, G, dev)
    latents = None if start is seeds else start
    direction = _direction(G, ckpt, attr, boundary, boundaries_dir, conditions, channels, space, latents)
    space = space or default_edit_space(direction, latents)
    if direction is None and space != "s":
        raise click.UsageError("--channels edits the s space: add --space s")
    if layers is not None and space != "w+":
        raise click.UsageError("--layers needs --space w+")
    layer_list = parse_layers(layers, G) if space == "w+" else None  # fails before rendering
    if latents is not None:
        check_given_codes(latents, space, psi, cutoff)
    c = class_labels(G, len(seeds), class_idx, dev) if latents is None else None
    total = len(start) * len(alpha_list)
    opt.check_grid(
        G, len(start), len(alpha_list), f"{'--latents' if latents_file else '--seeds'} x --alpha", scale=grid_scale
    )
    with progress_bar(
        total=total, desc="edit", unit="img", what="images", hint="use fewer --seeds or --alpha values"
    ) as bar:
        codes, edited, images = run_edit(
            G,
            start,
            direction,
            alphas,
            space,
            layers,
            channels,
            psi,
            cutoff,
            noise_mode,
            c,
            batch_size,
            dev,
            progress=bar,
            to_distance=to_distance,
            original=not no_original,
        )
    record = dict(
        model=ckpt,
        latents=latents_file,
        to_distance=to_distance,
        space=space,
        layers=layer_list,
        channels=channels,
        truncation=dict(psi=psi, cutoff=cutoff),
        noise_mode=noise_mode,
        class_idx=class_idx,
        direction=None
        if direction is None
        else dict(
            name=direction.name,
            source=direction.source,
            space=direction.space,
            sha256=direction.sha256,
            conditions=list(conditions),
        ),
    )
    save_edit(out_dir, G, codes, edited, images, None, record, grid_scale=grid_scale)
    click.echo(f"wrote {total} images, grid.png, edit.json and latents.npz to {out_dir}")


@click.command()
@opt.model
@click.option(
    "--rows", "row_seeds", type=SEEDS, default="0-3", show_default=True, help="Seeds of the images that receive layers."
)
@click.option(
    "--cols",
    "col_seeds",
    type=SEEDS,
    default="10-13",
    show_default=True,
    help="Seeds of the images the layers come from.",
)
@latents_option(
    name="--row-latents",
    dest="row_latents",
    help="Latents file whose codes are the rows, instead of --rows (e.g. projected photos; z, w or w+ codes).",
)
@latents_option(
    name="--col-latents",
    dest="col_latents",
    help="Latents file whose codes are the columns, instead of --cols.",
)
@click.option(
    "--layers",
    type=LAYERS,
    default="coarse",
    show_default=True,
    help="Layers to copy: 0-5, a list, coarse, middle (or medium), fine.",
)
@opt.trunc
@opt.trunc_cutoff
@opt.noise_mode
@opt.batch
@opt.device_opt
@opt.grid_scale
@opt.out(help=f"Output folder: grid.png, mix_ROW_COL.png, mix.json. {opt.GRID_HELP}")
def mix(
    ckpt,
    row_seeds,
    col_seeds,
    row_latents,
    col_latents,
    layers,
    psi,
    cutoff,
    noise_mode,
    batch_size,
    device,
    grid_scale,
    out_dir,
):
    """Style mixing grid: row images with the chosen layers taken from column images.

    The top row shows the column sources, the left column the row sources;
    grid.png labels them (seeds or the codes' names) and names the copied layers
    in its corner (cells upscaled, see --grid-scale; mix_ROW_COL.png keep the
    model's resolution). Rows and columns are seeds (--rows, --cols) or the codes
    of a latents file (--row-latents, --col-latents; e.g. projected photos, which
    render with their noise maps: a mixed image keeps its row image's noise). --trunc applies to
    seeds and z codes; w and w+ codes are used as they are. Files are named
    mix_ROW_COL.png by 4-digit seeds or the codes' image names.

    \b
    Example:
      latentlab mix --model ffhq.pkl --rows 0-3 --cols 10-13 --layers coarse --trunc 0.7 --out out/mix
      latentlab mix --row-latents p/latents.npz --cols 10-13 --layers fine --out out/mix_photo
    """
    from latentlab.edits.mixing import mix_grid, write_mix

    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    opt.check_cutoff(G, cutoff)
    rows = seeds_or_latents(row_seeds, row_latents, G, dev, "row_seeds", "--rows", "--row-latents")
    cols = seeds_or_latents(col_seeds, col_latents, G, dev, "col_seeds", "--cols", "--col-latents")
    opt.check_grid(G, len(rows) + 1, len(cols) + 1, "--rows x --cols", scale=grid_scale)  # + the sources' row, column
    result = mix_grid(G, rows, cols, layers, psi, cutoff, noise_mode, batch_size, dev)
    write_mix(out_dir, result, dict(model=ckpt), grid_scale=grid_scale)
    click.echo(f"wrote {len(rows) * len(cols)} mixes and grid.png to {out_dir}")


@click.command()
@opt.model
@click.option(
    "--seeds",
    type=SEEDS,
    default="0,1",
    show_default=True,
    help="Two or more seeds; consecutive pairs are interpolated.",
)
@click.option(
    "--frames",
    "steps",
    type=click.IntRange(min=2, max=opt.MAX_FRAMES),
    default=8,
    show_default=True,
    help=f"Frames per pair, both ends included (at most {opt.MAX_FRAMES}).",
    **alias("--steps"),
)
@latents_option(
    help="Latents file whose consecutive codes are the endpoints, instead of --seeds (e.g. projected photos)."
)
@click.option(
    "--space",
    type=click.Choice(["z", "w", "w+", "s"]),
    default=None,
    help="z uses slerp, w/w+/s lerp [default: w; with --latents, the codes' own space].",
)
@opt.trunc
@opt.trunc_cutoff
@opt.noise_mode
@opt.batch
@opt.device_opt
@opt.grid_scale
@opt.out(help=f"Output folder: pairPP_frameFFF.png, grid.png, path.npz. {opt.GRID_HELP}")
def interpolate(
    ckpt, seeds, latents_file, steps, space, psi, cutoff, noise_mode, batch_size, device, grid_scale, out_dir
):
    """Interpolate between seeds or given codes: slerp in Z, lerp in W / W+ / S.

    With --latents, consecutive codes of the file are the endpoints, in their own
    space or a later one (--space; conversions go z -> w -> w+ -> s); their noise
    maps are lerped along each path, so both ends render as the codes' images.

    grid.png has a row per pair (labelled 0 -> 5, or the codes' names) and a
    column per t (cells upscaled, see --grid-scale); the frames' PNGs keep the
    model's resolution.

    \b
    Example:
      latentlab interpolate --model ffhq.pkl --seeds 0,5,9 --frames 10 --space w --out out/interp
      latentlab interpolate --latents p/latents.npz --frames 10 --out out/interp_photos
    """
    from latentlab.edits.mixing import interpolation_path, render_interpolation, write_interpolation
    from latentlab.utils.progress import progress_bar

    if latents_file is None and len(seeds) < 2:
        raise click.UsageError("--seeds needs at least two seeds")
    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    opt.check_cutoff(G, cutoff)
    start = seeds_or_latents(seeds, latents_file, G, dev)
    opt.check_grid(
        G, len(start) - 1, steps, f"{'--latents' if latents_file else '--seeds'} x --frames", scale=grid_scale
    )
    path = interpolation_path(G, start, steps, space if space or latents_file else "w", psi, cutoff, dev)
    with progress_bar(
        total=len(path["codes"]), desc="interpolate", unit="img", what="frames", hint="use fewer --seeds or --frames"
    ) as bar:
        result = render_interpolation(G, path, psi, cutoff, noise_mode, batch_size, progress=bar)
    write_interpolation(out_dir, result, grid_scale=grid_scale)
    click.echo(f"wrote {len(result['images'])} frames and grid.png to {out_dir}")


ALL = [edit, mix, interpolate]


@click.command()
@opt.model
@opt.seeds
@latents_option(
    help="Latents file whose codes are the columns, instead of --seeds (e.g. projected photos: z codes as seeds, "
    "w/w+ codes through each variant's W truncation; Z resampling and --choose need z codes)."
)
@click.option(
    "--variant",
    "variants",
    type=TRUNCATION,
    multiple=True,
    help="Truncation spec (repeatable): none, w:0.7, w:0.7@8, schedule:..., center:FILE.npy:0.5, z:2.0, "
    "clamp:95, clusters:k=8,psi=0.7[,rep=styles|w,dims=64] or clusters:FILE.npz.",
)
@click.option(
    "--clusters",
    "clusters_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Clusters file, fitted (--save-fitted) or learned (`latentlab train clusters`); adds a row.",
)
@click.option(
    "--choose",
    type=CHOICE,
    default=None,
    help="With --clusters: generate from chosen clusters, LEVEL=ID[,LEVEL=ID...] (e.g. coarse=3,fine=1); "
    "levels not named keep their predicted cluster.",
)
@click.option(
    "--trunc",
    "clusters_psi",
    type=opt.FINITE,
    default=None,
    help="With --clusters: truncation psi to use instead of the file's.",
    **alias("--psi"),
)
@click.option(
    "--tsne",
    is_flag=True,
    help="With --clusters: write tsne.png/pdf, a per-level t-SNE of the codes coloured by cluster.",
)
@click.option(
    "--umap", "umap_plot", is_flag=True, help="With --clusters: write umap.png/pdf likewise (needs umap-learn)."
)
@click.option(
    "--embed-samples",
    type=click.IntRange(min=10),
    default=1000,
    show_default=True,
    help="Codes per level in the t-SNE / UMAP figure.",
)
@click.option(
    "--fit-samples",
    type=click.IntRange(min=10),
    default=10000,
    show_default=True,
    help="Samples for variants that fit.",
)
@click.option("--fit-seed", type=int, default=0, show_default=True)
@click.option("--save-fitted", is_flag=True, help="Save fitted variants (e.g. clusters) into --out for reuse.")
@opt.noise_mode
@opt.batch
@opt.device_opt
@opt.grid_scale
@opt.out(
    help="Output folder: grid.png, variantN.png [variantN.npz], truncate.json, summary.md [tsne/umap figures]. "
    + opt.GRID_HELP
)
def truncate(
    ckpt,
    seeds,
    latents_file,
    variants,
    clusters_file,
    choose,
    clusters_psi,
    tsne,
    umap_plot,
    embed_samples,
    fit_samples,
    fit_seed,
    save_fitted,
    noise_mode,
    batch_size,
    device,
    grid_scale,
    out_dir,
):
    """Truncation variants side by side on the same seeds or given codes (rows = variants, columns = seeds).

    grid.png labels its rows with the variants and its columns with the seeds or
    codes (cells upscaled, see --grid-scale); variantN.png keep the model's
    resolution.

    With --clusters, the last row comes from that clusters file: truncated toward each
    level's predicted cluster, or, with --choose, generated from the chosen cluster per
    level (controlled generation; a learned file samples the chosen Gaussian).

    \b
    Example:
      latentlab truncate --model ffhq.pkl --seeds 0-5 --variant none --variant w:0.7 --variant z:2 --out out/trunc
      latentlab truncate --model ffhq.pkl --variant clusters:k=8,psi=0.5 --save-fitted --out out/clusters
      latentlab truncate --model ffhq.pkl --clusters out/clusters/variant0.npz --trunc 0.3 --out out/reuse
      latentlab truncate --model ffhq.pkl --clusters runs/clusters/clusters.npz --choose coarse=3,fine=1 --tsne --out out/c3
      latentlab truncate --latents p/latents.npz --variant none --variant w:0.5 --out out/trunc_photos
    """
    from latentlab.studies.reports import truncation_report, truncation_rows

    for flag, given in (
        ("--choose", choose is not None),
        ("--trunc", clusters_psi is not None),
        ("--tsne", tsne),
        ("--umap", umap_plot),
    ):
        if given and not clusters_file:
            raise click.UsageError(f"{flag} needs --clusters FILE")
    rows = truncation_rows(variants, clusters_file, clusters_psi, choose)  # every spec and file checked before work
    embeddings = [method for method, wanted in (("tsne", tsne), ("umap", umap_plot)) if wanted]
    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    for row in rows:  # as generate --trunc-cutoff: a cutoff past the last ws is refused, not clamped
        cutoff = getattr(row.truncation, "cutoff", None)
        if cutoff is not None and cutoff > G.num_ws:
            from latentlab.errors import ConfigError

            raise ConfigError(f"--variant {row.spec}: cutoff {cutoff} exceeds num_ws ({G.num_ws})")
    start = seeds_or_latents(seeds, latents_file, G, dev)
    opt.check_grid(
        G, len(rows), len(start), f"--variant x {'--latents' if latents_file else '--seeds'}", scale=grid_scale
    )
    _, record = truncation_report(
        G,
        rows,
        start,
        out_dir,
        fit_samples=fit_samples,
        fit_seed=fit_seed,
        save_fitted=save_fitted,
        embeddings=embeddings,
        embed_rows=[len(rows) - 1] if embeddings else None,
        embed_samples=embed_samples,
        batch_size=batch_size,
        noise_mode=noise_mode,
        device=dev,
        settings=dict(model=ckpt),
        log=lambda text: click.echo(text, err=True),
        grid_scale=grid_scale,
    )
    for i, e in enumerate(record["variants"]):
        click.echo(f"row {i}: {e['name']}")
    figures = record["figures"]
    click.echo(
        f"wrote grid.png ({len(rows)} variants x {len(start)} {'seeds' if start is seeds else 'codes'})"
        + (f" and {', '.join(figures)}" if figures else "")
        + f" to {out_dir}"
    )


ALL.append(truncate)
