"""`latentlab project`: real images into the latent space (the StyleGAN2-ADA projector)."""

import click

from . import options as opt


@click.command("project")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@opt.model
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Optimisation steps (Adam).")
@click.option(
    "--space",
    type=click.Choice(["w", "w+", "s"]),
    default="w",
    show_default=True,
    help="w: one w per image (as published); w+: one w per layer; s: the per-layer styles (S space).",
)
@click.option(
    "--pixel-weight",
    type=opt.FiniteFloat(min=0),
    default=0.0,
    show_default=True,
    help="Weight of a pixel MSE term (on [-1, 1] images) added to the perceptual distance.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the initial noise maps and the exploration noise."
)
@opt.inversion_distance
@opt.align
@click.option(
    "--video",
    is_flag=True,
    help="Write the optimisation as frames/step_NNNN.png (targets | synthesis) and, with the video extra, proj.mp4.",
)
@click.option(
    "--video-every",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="With --video: a frame every this many steps (and after the last).",
)
@opt.latents_format(
    ["latentlab", "nvidia"],  # latentlab.inversion.PROJECTION_FORMATS (not imported: --help stays torch-free)
    help="nvidia: also projected_w.npz (NVIDIA's projector layout, W+ codes, for its generate.py --projected-w); "
    "needs --space w or w+.",
)
@opt.device_opt
@opt.out(lock=True, help="Output folder: latents.npz (codes + noise), recon_<name>.png, metrics.csv, project.json.")
def project_cmd(
    images,
    ckpt,
    steps,
    space,
    pixel_weight,
    seed,
    distance_name,
    random_backbone,
    align,
    landmarks,
    video,
    video_every,
    latents_format,
    device,
    out_dir,
):
    """Find latent codes whose images reproduce IMAGES (the StyleGAN2-ADA projector).

    Starts from the average w and optimises w (or w+, or the styles of S space) and the
    noise maps for --steps Adam steps against a perceptual distance (--distance), with the published
    schedules and noise regulariser. The images must have the generator's size and colour,
    or be face photos to crop and align with --align.

    Writes latents.npz (the codes, their space, the model id, the image names in the
    meta and the optimised noise as arrays noise0, noise1, ...), recon_<name>.png,
    metrics.csv (per image: the distance, MSE and PSNR on [0, 1] images, SSIM) and
    project.json (settings, versions). --video adds frames/step_NNNN.png, the targets
    (left) beside the current synthesis (right) after every --video-every steps, and
    proj.mp4 of them when the video extra is installed (pip install 'latentlab[video]').
    --latents-format nvidia adds projected_w.npz, the codes as W+ in the layout of
    NVIDIA's projector output (its generate.py --projected-w renders them).

    \b
    Example:
      latentlab project photo.png --out p/
      latentlab project a.png b.png --space w+ --steps 500 --pixel-weight 1 --out p/
      latentlab project face.jpg --align --space s --video --out p/
      latentlab project photo.png --latents-format nvidia --out p/   # + p/projected_w.npz
    """
    from latentlab import defaults
    from latentlab.inversion import check_projection_format, load_targets, project, write_projection
    from latentlab.inversion.video import VIDEO_EXTRA, ProjectionVideo
    from latentlab.utils.progress import progress_bar
    from latentlab.utils.versions import versions

    from .conventions import note

    check_projection_format(latents_format, space)
    device = opt.device(device)
    G = opt.load_model(ckpt, device)
    targets, names = load_targets(images, G.img_resolution, G.img_channels, align=align, landmarks=landmarks)
    distance = opt.inversion_distance_for(distance_name, random_backbone, G, device)  # after the cheap checks
    frames = ProjectionVideo(targets, out_dir, steps) if video else None
    with progress_bar(total=steps, desc="project", unit="step", what="steps", hint="use fewer --steps") as bar:
        result = project(
            G,
            targets,
            steps,
            space=space,
            pixel_weight=pixel_weight,
            distance=distance,
            seed=seed,
            names=names,
            snapshot_every=video_every if video else 0,
            on_snapshot=frames,
            device=device,
            progress=bar,
        )
    record = dict(model=ckpt or defaults.NAME, images=list(images), align=align, versions=versions())
    if frames is not None:
        import os

        mp4 = frames.write_mp4(os.path.join(out_dir, "proj.mp4"))
        record["video"] = dict(every=video_every, frames=len(frames.paths), mp4="proj.mp4" if mp4 else None)
        if mp4 is None:
            note(
                f"wrote {len(frames.paths)} video frames to {frames.frames_dir}; for proj.mp4 too install the "
                f"{VIDEO_EXTRA} extra (pip install 'latentlab[{VIDEO_EXTRA}]')"
            )
    files = write_projection(result, names, out_dir, record, G=G, latents_format=latents_format)
    if frames is not None:
        files += [f"frames/ ({len(frames.paths)} frames)"] + (["proj.mp4"] if record["video"]["mp4"] else [])
    mean = {k: float(v.mean()) for k, v in result.metrics.items()}
    click.echo(
        f"projected {len(names)} image(s) in {space}: mean {distance.__name__} distance {mean['distance']:.4g}, PSNR {mean['psnr']:.2f} dB, "
        f"SSIM {mean['ssim']:.3f}; wrote {', '.join(files[:3])}{', ...' if len(files) > 3 else ''} to {out_dir}"
    )


ALL = [project_cmd]
