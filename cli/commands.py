"""The subcommands. Each one parses options and calls the documented Python API."""
import json
import os

import click


def _device(name):
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return name


DEVICE = click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")


@click.command()
@click.argument("ckpt", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(ckpt, as_json):
    """Describe a checkpoint: format, dims, layers per resolution, parameter counts.

    \b
    Example:
      latentlab info ffhq.pkl
    """
    from latentlab import load_checkpoint
    from latentlab.models.summary import count_params, generator_summary

    c = load_checkpoint(ckpt)
    s = generator_summary(c.generator)
    s = dict(file=ckpt, format=c.format, networks=sorted(c.networks()), **s)
    if c.D is not None:
        s["params"]["D"] = count_params(c.D)
    if as_json:
        click.echo(json.dumps(s, indent=1))
        return
    click.echo(f"file          {ckpt}")
    click.echo(f"format        {c.format}  (networks: {', '.join(s['networks'])})")
    gen = "StyleGAN (v1)" if s["generation"] == 1 else f"StyleGAN2 (v2, {s['architecture']} architecture)"
    click.echo(f"generation    {gen}")
    click.echo(f"resolution    {s['img_resolution']}x{s['img_resolution']}, {s['img_channels']} channel(s)")
    click.echo(f"z_dim {s['z_dim']}  w_dim {s['w_dim']}  c_dim {s['c_dim']}  num_ws {s['num_ws']}  style channels {s['style_channels']}")
    p = s["params"]
    extra = f", D {p['D']:,}" if "D" in p else ""
    click.echo(f"parameters    G {p['total']:,} (mapping {p['mapping']:,}, synthesis {p['synthesis']:,}){extra}")
    click.echo("blocks        res  channels  ws       layers")
    for b in s["blocks"]:
        ws = f"{b['ws'][0]}-{b['ws'][-1]}" if len(b["ws"]) > 1 else str(b["ws"][0])
        fp16 = "  fp16" if b["fp16"] else ""
        click.echo(f"              {b['resolution']:>4}  {b['channels']:>8}  {ws:<7}  {', '.join(b['layers'])}{fp16}")


@click.command()
@click.option("--model", "ckpt", required=True, type=click.Path(dir_okay=False), help="Checkpoint (.pkl or .safetensors).")
@click.option("--seeds", default="0-7", show_default=True, help="Seeds: N, A-B or a list such as 0-3,42.")
@click.option("--trunc", "psi", type=float, default=1.0, show_default=True, help="Truncation psi (1 = none).")
@click.option("--trunc-cutoff", "cutoff", type=click.IntRange(min=0), default=None, help="Truncate only the first N ws.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--class", "class_idx", type=click.IntRange(min=0), default=None, help="Class index (conditional models).")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=8, show_default=True)
@DEVICE
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
def generate(ckpt, seeds, psi, cutoff, noise_mode, class_idx, batch_size, device, out_dir):
    """Render one PNG per seed plus grid.png.

    The z of a seed is NumPy's RandomState(seed).randn(z_dim), as in NVIDIA's
    generate.py, so seeds give the same faces as the official scripts.

    \b
    Example:
      latentlab generate --model ffhq.pkl --seeds 0-7 --trunc 0.7 --out out/
    """
    from tqdm import tqdm

    from latentlab import load_generator
    from latentlab.generate import class_labels, generate_images, write_images
    from latentlab.latents import parse_seeds

    seed_list = parse_seeds(seeds)
    device = _device(device)
    G = load_generator(ckpt, device=device)
    if cutoff is not None and cutoff > G.num_ws:
        raise ValueError(f"--trunc-cutoff {cutoff} exceeds num_ws ({G.num_ws})")
    class_labels(G, 1, class_idx)  # fail before rendering anything
    with tqdm(total=len(seed_list), desc="generate", unit="img", disable=None) as bar:
        items = generate_images(G, seed_list, psi, cutoff, noise_mode, class_idx, batch_size, device, progress=bar)
        paths = write_images(items, out_dir)
    click.echo(f"wrote {len(paths) - 1} images and {os.path.join(out_dir, 'grid.png')}")


@click.command()
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite DST if it exists.")
def convert(src, dst, force):
    """Convert an official checkpoint to latentlab's .safetensors format.

    \b
    Example:
      latentlab convert ffhq.pkl ffhq.safetensors
    """
    from latentlab.checkpoints import convert as convert_ckpt

    if not dst.endswith(".safetensors"):
        raise ValueError(f"{dst}: the output must end in .safetensors")
    if os.path.exists(dst) and not force:
        raise ValueError(f"{dst} exists; pass --force to overwrite it")
    c = convert_ckpt(src, dst)
    click.echo(f"wrote {dst} ({', '.join(sorted(c.networks()))} from {c.format})")


@click.command()
def models():
    """List the checkpoints that --model accepts by name (downloaded on first use).

    \b
    Example:
      latentlab models
      latentlab generate --model ffhq --seeds 0-3 --out out/
    """
    from latentlab.checkpoints.download import cache_dir, registry

    for name, entry in sorted(registry().items()):
        cached = any(os.path.exists(os.path.join(cache_dir(), name + ext)) for ext in (".pkl", ".safetensors"))
        mark = "cached" if cached else f"~{entry.get('size_mb', '?')} MB"
        click.echo(f"{name:<22} {entry['resolution']:>5}px  {mark:<9} {entry['description']}")
    click.echo(f"cache: {cache_dir()} (set LATENTLAB_CACHE to move it)")


ALL = [info, generate, convert, models]
