"""`latentlab train encoder`, `latentlab encode`, `latentlab features`: GH-Feat's hierarchical encoder."""

import click

from . import options as opt


def _load_generator_and_d(ckpt, dev):
    """(G, D or None, the spec) of --model: the inference generator and the checkpoint's discriminator."""
    import os

    from latentlab import defaults
    from latentlab.checkpoints import load_checkpoint

    spec = ckpt
    if spec is None:
        if not defaults.is_available():
            raise click.UsageError("no model given and the embedded toyfaces model is not installed: pass --model CKPT")
        if os.environ.get("RANK", "0") == "0":
            click.echo("latentlab: using the embedded toyfaces model (pass --model to choose another)", err=True)
        spec = defaults.NAME
    c = load_checkpoint(spec, device=dev)
    return c.generator, c.D, spec


@click.command("encoder")
@opt.model
@click.option(
    "--data",
    type=click.Path(exists=True),
    default=None,
    help="Image folder or .zip of training images [default: none: the generator's own samples only].",
)
@click.option(
    "--gen-fraction",
    type=opt.FiniteFloat(0, 1),
    default=None,
    help="Share of each batch rendered by the generator from fresh z [default: 0 with --data, else 1].",
)
@click.option("--max-images", type=click.IntRange(min=1), default=None, help="Use only the first N images of --data.")
@click.option(
    "--mirror", "xflip", is_flag=True, help="Add x-flipped copies of every --data image (the official run does)."
)
@click.option(
    "--steps",
    type=click.IntRange(min=0),
    required=True,
    help="Total training steps (an E and a D update each); a resumed run counts the ones done.",
)
@opt.resumable_out(
    ("state.pt", "encoder.safetensors", "metrics.csv"),
    "encoder training run",
    help="Run folder (encoder.safetensors, state.pt, metrics.csv); rerun with the same --out to resume.",
)
@click.option(
    "--batch", "batch_size", type=click.IntRange(min=1), default=8, show_default=True, help="Images per step."
)
@click.option(
    "--depth",
    type=click.Choice(["10", "18", "34", "50", "101"]),
    default=None,
    help="ResNet depth of the backbone [default: 50 (the paper's) from 256 px up, else 18].",
)
@click.option(
    "--width", type=click.IntRange(min=1), default=None, help="Stem width; stages x1, 2, 4, 8 [default: 64 / 16]."
)
@click.option(
    "--fpn-channels",
    type=click.IntRange(min=1),
    default=None,
    help="Channels of the feature pyramid and the alignment module [default: 512 / 64].",
)
@click.option(
    "--stem-down",
    type=click.Choice(["1", "2", "4"]),
    default=None,
    help="Downsampling of the stem [default: 4 (ResNet's) from 256 px up, less below so that R6 stays 4x4].",
)
@click.option(
    "--lr", type=opt.FiniteFloat(min=0, min_open=True), default=1e-4, show_default=True, help="Adam learning rate."
)
@click.option(
    "--lr-decay",
    type=opt.FiniteFloat(0, 1, min_open=True),
    default=0.8,
    show_default=True,
    help="The rate falls exponentially by this factor every --decay-every steps.",
)
@click.option("--decay-every", type=click.IntRange(min=1), default=10000, show_default=True, help="See --lr-decay.")
@click.option(
    "--lambda-adv",
    type=opt.FiniteFloat(min=0),
    default=0.1,
    show_default=True,
    help="Weight of the adversarial term (0: no discriminator).",
)
@click.option(
    "--lambda-feat",
    type=opt.FiniteFloat(min=0),
    default=5e-5,
    show_default=True,
    help="Weight of the VGG16 conv4_3 feature term (0: no VGG).",
)
@click.option(
    "--lambda-reg",
    type=opt.FiniteFloat(min=0),
    default=5e-4,
    show_default=True,
    help="Weight of the style-residual regulariser (sum of squared delta_y).",
)
@click.option(
    "--lambda-gp",
    type=opt.FiniteFloat(min=0),
    default=5.0,
    show_default=True,
    help="Weight of the gradient penalty on real images (D).",
)
@click.option(
    "--gp-every",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Apply the gradient penalty every N-th D step, weighted by N (lazy, as StyleGAN2; 1 = every step).",
)
@click.option(
    "--gan-loss",
    type=click.Choice(["linear", "logistic"]),
    default="linear",
    show_default=True,
    help="linear: the paper's formula; logistic: the official code's softplus losses.",
)
@click.option(
    "--feature-net",
    type=click.Choice(["vgg16", "toyfaces"]),
    default="vgg16",
    show_default=True,
    help="F of the feature term: vgg16 = VGG16 conv4_3 (the paper's, ImageNet weights); toyfaces = the embedded "
    "classifier's stages (offline; the term is then the projector's toyfaces distance).",
)
@click.option(
    "--feature-size",
    type=click.IntRange(min=8),
    default=None,
    help="Images are resized (nearest) to this size for VGG16 [default: 256, as published; the image size is "
    "much faster].",
)
@click.option(
    "--random-backbone",
    is_flag=True,
    help="An untrained VGG16 for the feature term (offline runs; it then compares random features).",
)
@click.option(
    "--discriminator",
    default=None,
    help="Checkpoint whose discriminator D starts from [default: --model's D when it holds one, else a new D].",
)
@click.option(
    "--snapshot-every",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Steps between snapshots (encoder.safetensors and the resume point state.pt).",
)
@click.option(
    "--log-every", type=click.IntRange(min=1), default=10, show_default=True, help="Steps between rows of metrics.csv."
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed.")
@opt.device_opt
def train_encoder_cmd(**kw):
    """Train GH-Feat's hierarchical encoder for a generator (Xu et al., CVPR 2021).

    A ResNet with a feature pyramid and spatial alignment predicts every layer's style
    code (S space) as a residual around the styles of w_avg: the deepest features give
    the coarse layers, the shallowest the fine ones. The generator stays frozen and acts
    as the loss: pixel MSE + VGG16 conv4_3 features + an adversarial term (D starts from
    the checkpoint's discriminator when it has one) + a penalty on the residuals, with the
    paper's weights. Trains on --data and/or the generator's own samples.

    Writes --out/encoder.safetensors (for `latentlab encode` and `latentlab features`),
    metrics.csv and state.pt; rerun the same command to resume (the result equals an
    uninterrupted run); Ctrl-C or SIGTERM writes a snapshot after the current step and stops.
    One process: torchrun with more than one process is refused.

    \b
    Example:
      latentlab train encoder --model ffhq256.pkl --data ffhq256/ --steps 100000 --mirror --out runs/enc
      latentlab train encoder --data toyfaces/images --steps 4000 --lambda-feat 0 --out runs/toyenc   # offline, no VGG
    """
    from latentlab.errors import ConfigError
    from latentlab.inversion.encoder_training import ENCODER_FILE, train_encoder
    from latentlab.train.loop import open_dataset
    from latentlab.utils.distributed import env_ranks

    from .train_commands import stop_on_ctrl_c

    if env_ranks()[1] > 1:
        raise ConfigError(
            "latentlab train encoder runs in one process: torchrun with WORLD_SIZE > 1 is not supported "
            "(run it alone, on one GPU with --device cuda)"
        )
    if kw["feature_net"] != "vgg16":
        for flag, given in (("--random-backbone", kw["random_backbone"]), ("--feature-size", kw["feature_size"])):
            if given:
                raise click.UsageError(f"{flag} is a VGG16 setting; it contradicts --feature-net {kw['feature_net']}")
    if kw["feature_size"] is None:
        kw["feature_size"] = 256
    dev = opt.device(kw.pop("device"))
    G, D, spec = _load_generator_and_d(kw.pop("ckpt"), dev)
    d_spec = kw.pop("discriminator")
    d_source = f"checkpoint:{spec}" if D is not None else None
    if d_spec is not None:
        from latentlab.checkpoints import load_checkpoint

        D = load_checkpoint(d_spec, device=dev).D
        if D is None:
            raise ConfigError(f"--discriminator {d_spec}: holds no discriminator")
        d_source = f"checkpoint:{d_spec}"
    data = kw.pop("data")
    max_images, xflip = kw.pop("max_images"), kw.pop("xflip")
    dataset = None
    if data is not None:
        dataset = open_dataset(data, G.img_resolution, G.img_channels, xflip=xflip, max_images=max_images)
    elif max_images is not None or xflip:
        raise click.UsageError("--max-images and --mirror need --data")
    out_dir, steps = kw.pop("out_dir"), kw.pop("steps")
    depth, stem = kw.pop("depth"), kw.pop("stem_down")
    with stop_on_ctrl_c():
        trainer = train_encoder(
            G,
            out_dir,
            steps,
            dataset,
            D,
            depth=None if depth is None else int(depth),
            stem_down=None if stem is None else int(stem),
            vgg_weights=None if kw.pop("random_backbone") else "torchvision",
            d_source=d_source,
            device=dev,
            **kw,
        )
    m = trainer.last_metrics
    summary = f"; last step: pixel MSE {m['mse']:.4g}" if "mse" in m else ""
    click.echo(
        f"trained the encoder to step {trainer.step_}{summary}; wrote {ENCODER_FILE}, state.pt and metrics.csv to {out_dir}"
    )


def _load_encoder(path, dev):
    from latentlab.inversion.encoder import load_encoder

    return load_encoder(path, device=dev)


@click.command("encode")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--encoder",
    "encoder_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="An encoder.safetensors [default: the embedded model's shipped encoder].",
)
@opt.model
@click.option(
    "--refine",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Then run N projector steps in S space starting from the encoder's codes (0: the encoder alone).",
)
@opt.align
@opt.batch
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the refinement's noise.")
@opt.inversion_distance
@opt.device_opt
@opt.out(lock=True, help="Output folder: latents.npz (S codes + noise), recon_<name>.png, metrics.csv, project.json.")
def encode_cmd(
    images,
    encoder_path,
    ckpt,
    refine,
    align,
    landmarks,
    batch_size,
    seed,
    distance_name,
    random_backbone,
    device,
    out_dir,
):
    """Invert IMAGES with a GH-Feat encoder (one forward pass), optionally refined by the projector.

    Writes the same files as `latentlab project`: latents.npz (space s: the packed per-layer
    styles, the model id, the image names; the noise maps as noise0, noise1, ... which are the
    generator's own constant noise unless --refine optimised them), recon_<name>.png,
    metrics.csv (per image: the distance (--distance), MSE, PSNR, SSIM) and project.json. The encoder must belong
    to --model. --refine N continues with N projector steps in S space from the encoder's
    codes and the generator's constant noise, i.e. from the encoder's reconstruction
    (in-domain inversion's hybrid).

    \b
    Example:
      latentlab encode photo.png --encoder runs/enc/encoder.safetensors --out e/
      latentlab encode a.png b.png --encoder runs/enc/encoder.safetensors --refine 100 --out e2/
    """
    from latentlab import defaults
    from latentlab.inversion import load_targets, write_projection
    from latentlab.inversion.encoder import check_encoder_for, encode_images
    from latentlab.utils.progress import progress_bar
    from latentlab.utils.versions import versions

    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    encoder_path = opt.encoder_file(encoder_path, G, ckpt)
    enc = _load_encoder(encoder_path, dev)
    check_encoder_for(enc, G, where=f"--encoder {encoder_path}")
    targets, names = load_targets(images, G.img_resolution, G.img_channels, align=align, landmarks=landmarks)
    distance = opt.inversion_distance_for(distance_name, random_backbone, G, dev)  # after the cheap checks
    with progress_bar(total=len(names), desc="encode", unit="img", what="images") as bar:
        result = encode_images(G, enc, targets, names, batch_size=batch_size, distance=distance, progress=bar)
    if refine:
        from latentlab.inversion import project

        with progress_bar(total=refine, desc="refine", unit="step", what="steps", hint="use a smaller --refine") as bar:
            refined = project(
                G,
                targets,
                refine,
                space="s",
                init=result.codes,
                init_noise=result.noise,  # the generator's constant noise: refinement starts at the encoder's render
                distance=distance,
                seed=seed,
                names=names,
                device=dev,
                progress=bar,
            )
        refined.codes.meta["encoder"] = result.codes.meta.get("encoder")
        refined.settings["encoder"] = result.settings["encoder"]
        result = refined
    record = dict(
        model=ckpt or defaults.NAME, encoder=encoder_path, refine=refine, images=list(images), versions=versions()
    )
    files = write_projection(result, names, out_dir, record)
    mean = {k: float(v.mean()) for k, v in result.metrics.items()}
    click.echo(
        f"encoded {len(names)} image(s){f' (+{refine} refinement steps)' if refine else ''}: mean {distance.__name__} distance "
        f"{mean['distance']:.4g}, PSNR {mean['psnr']:.2f} dB, SSIM {mean['ssim']:.3f}; wrote "
        f"{', '.join(files[:3])}{', ...' if len(files) > 3 else ''} to {out_dir}"
    )


@click.command("features")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--encoder",
    "encoder_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="An encoder.safetensors [default: the embedded model's shipped encoder].",
)
@opt.align
@opt.batch
@opt.device_opt
@opt.out(help="Output folder: features.npz.")
def features_cmd(images, encoder_path, align, landmarks, batch_size, device, out_dir):
    """GH-Feat features of IMAGES: the encoder's style codes per level (coarse, middle, fine).

    Writes features.npz with the arrays coarse, middle and fine ([N, d] each: the
    predicted S codes of the level's layers, concatenated), names (the image names),
    model_id (the generator the encoder belongs to) and levels (JSON: level -> S layers).
    No generator is needed.

    \b
    Example:
      latentlab features faces/*.png --encoder runs/enc/encoder.safetensors --out feats/
    """
    import os

    from latentlab.inversion import load_targets
    from latentlab.inversion.encoder import write_features
    from latentlab.utils.progress import progress_bar

    dev = opt.device(device)
    if encoder_path is None:
        from latentlab import defaults

        if not os.path.isfile(defaults.encoder_path()):
            raise click.UsageError("pass --encoder FILE (the embedded model's encoder is not installed)")
        encoder_path = defaults.encoder_path()
    enc = _load_encoder(encoder_path, dev)
    targets, names = load_targets(images, enc.img_resolution, enc.img_channels, align=align, landmarks=landmarks)
    path = os.path.join(out_dir, "features.npz")
    with progress_bar(total=len(names), desc="features", unit="img", what="images") as bar:
        feats = write_features(enc, targets, names, path, batch_size=batch_size, progress=bar)
    dims = ", ".join(f"{k} {v.shape[1]}" for k, v in feats.items())
    click.echo(f"wrote features.npz, the GH-Feat features of {len(names)} image(s) ({dims} dimensions), to {out_dir}")


ALL = [encode_cmd, features_cmd]
