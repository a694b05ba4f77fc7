"""`latentlab project`: real images into the latent space (the StyleGAN2-ADA projector)."""

import click

from . import options as opt


@click.command("project")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@opt.model
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Optimisation steps (Adam).")
@click.option(
    "--space",
    type=click.Choice(["w", "w+"]),
    default="w",
    show_default=True,
    help="w: one w per image (as published); w+: one w per layer.",
)
@click.option(
    "--pixel-weight",
    type=opt.FiniteFloat(min=0),
    default=0.0,
    show_default=True,
    help="Weight of a pixel MSE term (on [-1, 1] images) added to the LPIPS distance.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initial noise maps and the w noise.")
@click.option(
    "--random-backbone",
    is_flag=True,
    help="LPIPS with an untrained VGG (offline smoke runs only: reconstructions are not meaningful).",
)
@opt.device_opt
@opt.out(help="Output folder: latents.npz (codes + noise), recon_<name>.png, metrics.csv, project.json.")
def project_cmd(images, ckpt, steps, space, pixel_weight, seed, random_backbone, device, out_dir):
    """Find latent codes whose images reproduce IMAGES (the StyleGAN2-ADA projector).

    Starts from the average w and optimises w (or w+) and the noise maps for --steps
    Adam steps against the LPIPS-VGG distance, with the published schedules and noise
    regulariser. The images must already have the generator's size and colour
    (alignment, --align, is not implemented yet).

    Writes latents.npz (the codes, their space, the model id, the image names in the
    meta and the optimised noise as arrays noise0, noise1, ...), recon_<name>.png,
    metrics.csv (per image: LPIPS distance, MSE and PSNR on [0, 1] images, SSIM) and
    project.json (settings, versions).

    \b
    Example:
      latentlab project photo.png --out p/
      latentlab project a.png b.png --space w+ --steps 500 --pixel-weight 1 --out p/
    """
    from latentlab import defaults
    from latentlab.inversion import load_targets, project, write_projection
    from latentlab.utils.progress import progress_bar
    from latentlab.utils.versions import versions

    device = opt.device(device)
    G = opt.load_model(ckpt, device)
    targets, names = load_targets(images, G.img_resolution, G.img_channels)
    with progress_bar(total=steps, desc="project", unit="step", what="steps", hint="use fewer --steps") as bar:
        result = project(
            G,
            targets,
            steps,
            space=space,
            pixel_weight=pixel_weight,
            pretrained_backbone=not random_backbone,
            seed=seed,
            names=names,
            device=device,
            progress=bar,
        )
    record = dict(model=ckpt or defaults.NAME, images=list(images), versions=versions())
    files = write_projection(result, names, out_dir, record)
    mean = {k: float(v.mean()) for k, v in result.metrics.items()}
    click.echo(
        f"projected {len(names)} image(s): mean LPIPS {mean['distance']:.4g}, PSNR {mean['psnr']:.2f} dB, "
        f"SSIM {mean['ssim']:.3f}; wrote {', '.join(files[:3])}{', ...' if len(files) > 3 else ''} to {out_dir}"
    )


ALL = [project_cmd]
