"""The subcommands. Each one parses options and calls the documented Python API."""

import json
import os

import click

from latentlab.errors import ConfigError

from . import options as opt
from .types import TRANSLATE


@click.command()
@click.argument("ckpt", required=False, default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(ckpt, as_json):
    """Describe a checkpoint: format, dims, layers per resolution, parameter counts, NaN/inf weights.

    Without CKPT, describes the embedded toyfaces model.

    \b
    Example:
      latentlab info ffhq.pkl
      latentlab info
    """
    from latentlab import defaults, load_checkpoint
    from latentlab.models.summary import count_params, generator_summary

    ckpt = ckpt if ckpt is not None else defaults.NAME
    c = load_checkpoint(ckpt, allow_nonfinite=True)  # reported below, refused by generate/edit
    s = generator_summary(c.generator)
    s = dict(file=ckpt, format=c.format, networks=sorted(c.networks()), **s)
    if c.D is not None:
        s["params"]["D"] = count_params(c.D)
    s["nonfinite"] = {net: dict(counts) for net, counts in c.nonfinite.items()}
    if as_json:
        click.echo(json.dumps(s, indent=1))
        return
    click.echo(f"file          {ckpt}")
    click.echo(f"format        {c.format}  (networks: {', '.join(s['networks'])})")
    gen = {
        1: "StyleGAN (v1)",
        2: f"StyleGAN2 (v2, {s['architecture']} architecture)",
        3: f"StyleGAN3 (alias-free, {s['architecture']})",
    }[s["generation"]]
    click.echo(f"generation    {gen}")
    click.echo(f"resolution    {s['img_resolution']}x{s['img_resolution']}, {s['img_channels']} channel(s)")
    click.echo(
        f"z_dim {s['z_dim']}  w_dim {s['w_dim']}  c_dim {s['c_dim']}  num_ws {s['num_ws']}  style channels {s['style_channels']}"
    )
    p = s["params"]
    extra = f", D {p['D']:,}" if "D" in p else ""
    click.echo(f"parameters    G {p['total']:,} (mapping {p['mapping']:,}, synthesis {p['synthesis']:,}){extra}")
    if s["generation"] == 3:
        click.echo("layers        name          size  rate  cutoff  channels  ws")
        for r in s["layers"]:
            fp16 = "  fp16" if r["fp16"] else ""
            click.echo(
                f"              {r['name']:<12}  {r['size']:>4}  {r['sampling_rate']:>4}  {r['cutoff']:>6.1f}"
                f"  {r['channels']:>8}  {r['ws'][0]}{fp16}"
            )
    else:
        click.echo("blocks        res  channels  ws       layers")
    for b in s["blocks"]:
        ws = f"{b['ws'][0]}-{b['ws'][-1]}" if len(b["ws"]) > 1 else str(b["ws"][0])
        fp16 = "  fp16" if b["fp16"] else ""
        click.echo(f"              {b['resolution']:>4}  {b['channels']:>8}  {ws:<7}  {', '.join(b['layers'])}{fp16}")
    for net, counts in sorted(c.nonfinite.items()):
        names = ", ".join(list(counts)[:3]) + (f" and {len(counts) - 3} more" if len(counts) > 3 else "")
        click.echo(
            f"WARNING       {net}: {sum(counts.values()):,} non-finite (NaN/inf) values in {len(counts)} tensor(s): "
            f"{names}; generate/edit refuse it without --allow-nonfinite"
        )


@click.command()
@opt.model
@opt.seeds
@opt.trunc
@opt.trunc_cutoff
@opt.noise_mode
@click.option(
    "--class", "class_idx", type=click.IntRange(min=0), default=None, help="Class index (conditional models)."
)
@opt.batch
@opt.device_opt
@opt.latents_format(
    ["latentlab", "nvidia", "wplus"],
    help="latents.npz holds z and w; wplus: w as W+ [N, num_ws, w_dim]; nvidia: also projected_w.npz "
    "(NVIDIA's projector layout, for its generate.py --projected-w).",
)
@click.option(
    "--translate",
    type=TRANSLATE,
    default=None,
    help="StyleGAN3: translate the images by X,Y (image units, e.g. 0.1,0), as NVIDIA's gen_images.py.",
)
@click.option(
    "--rotate", type=opt.FINITE, default=None, help="StyleGAN3: rotate the images by this many degrees (gen_images.py)."
)
@opt.allow_nonfinite
@opt.grid_scale
@opt.out(
    help=f"Output folder: seedNNNN.png, grid.png (the first {opt.MAX_GENERATE_GRID} images at most), generate.json "
    "(settings, written last), latents.npz (z, w)."
)
def generate(
    ckpt,
    seeds,
    psi,
    cutoff,
    noise_mode,
    class_idx,
    batch_size,
    device,
    latents_format,
    translate,
    rotate,
    allow_nonfinite,
    grid_scale,
    out_dir,
):
    """Render one PNG per seed plus grid.png, with the settings and latents used.

    Writes seedNNNN.png, grid.png, generate.json (model, seeds, truncation, noise
    mode, class, versions) and latents.npz (z and the w it mapped to; rendering that
    w with the same noise mode gives the same images).

    Images are written a batch at a time as they are rendered, so memory does not
    grow with the number of seeds; grid.png shows the first images only (see
    --out), each captioned with its seed, its cells upscaled to at least 128 px
    (see --grid-scale; seedNNNN.png keep the model's resolution). generate.json
    is written last: a folder without it holds an interrupted run.

    The z of a seed is NumPy's RandomState(seed).randn(z_dim), as in NVIDIA's
    generate.py, so seeds give the same faces as the official scripts.

    \b
    Example:
      latentlab generate --model ffhq.pkl --seeds 0-7 --trunc 0.7 --out out/ffhq
      latentlab generate --seeds 0-3 --latents-format nvidia
      latentlab generate --model stylegan3-t-ffhqu-256 --seeds 0-3 --translate 0.1,0 --rotate 10
    """
    from latentlab import defaults
    from latentlab.generate import check_generation, write_generation
    from latentlab.utils.progress import progress_bar

    device = opt.device(device)
    G = opt.load_model(ckpt, device, allow_nonfinite=allow_nonfinite)
    opt.check_cutoff(G, cutoff)
    check_generation(G, class_idx, latents_format, translate, rotate, grid_scale)  # before the progress bar
    with progress_bar(total=len(seeds), desc="generate", unit="img", what="images", hint="use fewer --seeds") as bar:
        record = write_generation(
            G,
            seeds,
            out_dir,
            psi,
            cutoff,
            noise_mode,
            class_idx,
            batch_size,
            device,
            latents_format,
            model=ckpt or defaults.NAME,
            progress=bar,
            translate=translate,
            rotate=rotate,
            grid_scale=grid_scale,
        )
    latents = [f for f in record["files"] if f.endswith(".npz")]
    click.echo(f"wrote {len(seeds)} images, grid.png, generate.json, {', '.join(latents)} to {out_dir}")


@click.command()
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite DST if it exists.")
@click.option(
    "--networks", default=None, help="Keep only these networks, e.g. G_ema (a training snapshot's inference generator)."
)
@click.option(
    "--channel-base",
    type=click.IntRange(1),
    default=None,
    help="Widen the StyleGAN2 networks to this channel_base (blocks of resolution r get min(base // r, max) "
    "channels); they compute the same function, the new channels start silent and train from there.",
)
@click.option(
    "--channel-max", type=click.IntRange(1), default=None, help="Widen to this channel_max (as --channel-base)."
)
def convert(src, dst, force, networks, channel_base, channel_max):
    """Convert any supported checkpoint to latentlab's .safetensors format, or to a stylegan2-ada-pytorch .pkl.

    \b
    Example:
      latentlab convert ffhq.pkl ffhq.safetensors
      latentlab convert stylegan2-ffhq-config-f.pt ffhq.pkl          # rosinality -> NVIDIA's layout
      latentlab convert runs/toy/network-snapshot-010000.safetensors toy.safetensors --networks G_ema
      latentlab convert toy.safetensors toy-wide.safetensors --channel-max 128   # then: train gan --model
    """
    from latentlab.checkpoints import convert as convert_ckpt

    if not dst.endswith((".safetensors", ".pkl")):
        raise ConfigError(f"{dst}: the output must end in .safetensors (latentlab) or .pkl (stylegan2-ada-pytorch)")
    if os.path.exists(dst) and not force:
        raise ConfigError(f"{dst} exists; pass --force to overwrite it")
    keep = [n.strip() for n in networks.split(",") if n.strip()] if networks else None
    c = convert_ckpt(src, dst, networks=keep, channel_base=channel_base, channel_max=channel_max)
    wider = "" if channel_base is None and channel_max is None else ", widened"
    click.echo(f"wrote {dst} ({', '.join(keep or sorted(c.networks()))} from {c.format}{wider})")


@click.command()
@click.option(
    "--kind",
    type=click.Choice(["generator", "classifier", "boundary", "all"]),
    default="generator",
    show_default=True,
    help="Which entries: the models --model accepts (generator), NVIDIA's CelebA-HQ attribute classifiers "
    "(classifier), InterFaceGAN's boundary files (boundary), or all of them.",
)
@click.option(
    "--fetch",
    "fetch_names",
    multiple=True,
    metavar="NAME",
    help="Download these entries into the cache now (verified as on first use), print where each is, and list "
    "nothing. Repeatable.",
)
def models(kind, fetch_names):
    """List the registry: the models --model accepts by name (the embedded model, then checkpoints
    downloaded on first use), and with --kind the attribute classifiers and boundary files.

    Columns: name, resolution, size (or cached / shipped), architecture, licence, description.
    docs/MODELS.md shows the same as tables, with the publishers' pages and licences. Boundary files
    are fetched into <cache>/boundaries/<set>/ under their official names: a folder --boundaries takes.

    \b
    Example:
      latentlab models
      latentlab models --kind boundary
      latentlab models --fetch stylegan_ffhq_smile_w_boundary
      latentlab generate --model ffhq --seeds 0-3 --out out/ffhq
    """
    from latentlab.checkpoints.download import (
        KINDS,
        cache_dir,
        fetch,
        human_size,
        is_shipped,
        kind_of,
        local_path,
        registry,
    )

    if fetch_names:
        for name in fetch_names:
            click.echo(f"{name}: {fetch(name, None)}")
        return
    entries = registry(None if kind == "all" else kind, shipped=True)
    # shipped entries first (no download), then by kind and name
    order = sorted(entries.items(), key=lambda kv: (not is_shipped(kv[1]), KINDS.index(kind_of(kv[1])), kv[0]))
    width = max([22, *(len(name) for name in entries)])
    for name, entry in order:
        here = os.path.exists(local_path(name, entry))
        if is_shipped(entry) and not here:
            continue  # an installation without its data files
        size = entry.get("size_mb")
        mark = (
            "shipped"
            if is_shipped(entry)
            else "cached"
            if here
            else f"~{human_size(size * 2**20)}"
            if size is not None
            else "download"
        )
        res = f"{entry['resolution']:>5}px" if entry.get("resolution") else f"{'-':>7}"
        arch = entry.get("architecture") or entry.get("network") or "-"
        licence = entry.get("licence") or "-"
        click.echo(f"{name:<{width}} {res}  {mark:<9} {arch:<13} {licence:<13} {entry.get('description', '')}")
    if kind in ("boundary", "all"):
        folders = sorted({os.path.dirname(local_path(n, e)) for n, e in entries.items() if kind_of(e) == "boundary"})
        click.echo(f"boundary files: {', '.join(folders) or '-'} once fetched (a folder --boundaries takes)")
    click.echo(f"cache: {cache_dir()} (set LATENTLAB_CACHE to move it)")


ALL = [info, generate, convert, models]
