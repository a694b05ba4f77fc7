"""`latentlab train gan|hsr|clusters`: thin shells over latentlab.train."""

import contextlib

import click

from latentlab.errors import ConfigError

from . import options as opt

# Names the options offer (kept here, without importing torch, and checked against the library by a test).
CFG_NAMES = ("auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar")
AUG_MODES = ("ada", "noaug", "fixed")
AUG_PIPES = ("blit", "geom", "color", "filter", "noise", "cutout", "bg", "bgc", "bgcf", "bgcfn", "bgcfnc")


def _run_options(f):
    """Options every GAN training command shares."""
    decorators = [
        click.option(
            "--data", required=True, type=click.Path(exists=True), help="Image folder or .zip (square images)."
        ),
        click.option(
            "--steps", type=click.IntRange(min=1), required=True, help="Total training steps (G + D updates)."
        ),
        opt.resumable_out(
            ("training_state.pt", "options.json", "metrics.csv"),
            "training run",
            help="Run folder (network-snapshot-*.safetensors, metrics.csv, training_state.pt); rerun "
            "with the same --out to resume.",
        ),
        click.option(
            "--cfg",
            type=click.Choice(CFG_NAMES),
            default=None,
            help="StyleGAN2-ADA's configuration: mapping depth, channels, minibatch-std group (new networks), "
            "batch, lr, gamma, EMA, mixing and path length; the options below override it  [default: auto; "
            "when resuming: the run's].",
        ),
        click.option(
            "--batch",
            "batch_size",
            type=click.IntRange(min=1),
            default=None,
            help="Images per step (over all processes)  [default: from --cfg; auto: min(4096 / resolution, 32)].",
        ),
        click.option(
            "--lr",
            type=opt.FiniteFloat(min=0, min_open=True),
            default=None,
            help="Adam learning rate of G and D  [default: from --cfg; auto: 0.0025, 0.002 at 1024 px].",
        ),
        click.option(
            "--gamma",
            "r1_gamma",
            type=opt.FiniteFloat(min=0),
            default=None,
            help="R1 weight  [default: from --cfg; auto: 0.0002 * resolution^2 / batch].",
        ),
        click.option(
            "--pl-weight",
            type=opt.FiniteFloat(min=0),
            default=None,
            help="Path-length regulariser weight, 0 = off  [default: from --cfg; auto: 2].",
        ),
        click.option(
            "--mixing",
            "style_mixing_prob",
            type=opt.FiniteFloat(0, 1),
            default=None,
            help="Style-mixing probability  [default: from --cfg; auto: 0.9].",
        ),
        click.option(
            "--ema-kimg",
            type=opt.FiniteFloat(min=0),
            default=None,
            help="G_ema half-life in kimg  [default: from --cfg; auto: batch * 10 / 32].",
        ),
        click.option(
            "--aug",
            type=click.Choice(AUG_MODES),
            default=None,
            help="Discriminator augmentation: ada (p adapts to keep E[sign D(real)] at --target), fixed (p = --p) "
            "or noaug  [default: ada; when resuming: the run's].",
        ),
        click.option(
            "--p",
            "aug_p",
            type=opt.FiniteFloat(0, 1),
            default=None,
            help="Augmentation probability of --aug fixed (needed there; ada starts at 0).",
        ),
        click.option(
            "--target",
            "ada_target",
            type=opt.FiniteFloat(0, 1),
            default=None,
            help="ADA's target for E[sign D(real)]  [default: 0.6].",
        ),
        click.option(
            "--augpipe",
            type=click.Choice(AUG_PIPES),
            default=None,
            help="Augmentations: blit (flips, 90-degree turns, integer shifts), geom, color, filter, noise, "
            "cutout and unions  [default: bgc].",
        ),
        click.option(
            "--new-d",
            is_flag=True,
            help="Fine-tune --model with a new discriminator (for checkpoints without one, e.g. G_ema-only files); "
            "train it alone first with --d-warmup.",
        ),
        click.option(
            "--d-warmup",
            type=click.IntRange(min=0),
            default=None,
            metavar="STEPS",
            help="The run's first STEPS steps train D alone (G and G_ema unchanged)  [default: 0].",
        ),
        click.option("--mirror", "xflip", is_flag=True, help="Add x-flipped copies of every image."),
        click.option("--cond", "use_labels", is_flag=True, help="Conditional training on dataset.json labels."),
        click.option("--max-images", type=click.IntRange(min=1), default=None, help="Use only the first N images."),
        click.option(
            "--snapshot-every",
            type=click.IntRange(min=1),
            default=500,
            show_default=True,
            help="Steps between snapshots (the resume points).",
        ),
        click.option(
            "--log-every",
            type=click.IntRange(min=1),
            default=10,
            show_default=True,
            help="Steps between rows of metrics.csv.",
        ),
        click.option(
            "--export-pkl", is_flag=True, help="Also write each snapshot as a stylegan2-ada-pytorch-style .pkl."
        ),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed."),
        click.option(
            "--metrics",
            "metric_names",
            default=None,
            metavar="NAMES",
            help="Metrics of G_ema evaluated during training, comma-separated, into metrics-eval.csv and "
            "TensorBoard (`latentlab metrics --run DIR` plots them): fid50k_full, kid50k_full, pr50k3_full, "
            "fid50k, kid50k, pr50k3, any count (fid2k_full, pr1k3, ...), ppl_zfull, ppl_wfull, ppl_zend, "
            "ppl_wend (50k pairs, face crop) or ppl2_wend (no crop)  [default: none; when resuming: the run's].",
        ),
        click.option(
            "--metrics-every",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            metavar="N",
            help="Evaluate --metrics at every N-th snapshot (steps that are multiples of N x --snapshot-every), "
            "at step 0 and at the last step.",
        ),
        click.option(
            "--metrics-data",
            type=click.Path(exists=True),
            default=None,
            metavar="DIR_OR_ZIP",
            help="Real images of --metrics, at the generator's resolution  [default: --data; when resuming: "
            "the run's].",
        ),
        click.option(
            "--metrics-extractor",
            default=None,
            metavar="SPEC",
            help="Feature network of --metrics, as `latentlab metrics --extractor` (inception, vgg16, toyfaces, "
            "inception-untrained, ...)  [default: auto: Inception for FID/KID, VGG16 for precision/recall; when "
            "resuming: the run's].",
        ),
        opt.device_opt,
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def _training_options(kw):
    """TrainingOptions from the command line: options not given stay None (the --cfg preset's, or the resumed
    run's); a new run without --cfg / --aug gets auto / ada, as StyleGAN2-ADA's train.py."""
    from latentlab.train import TrainingOptions
    from latentlab.train.runs import is_resumable

    new = not is_resumable(kw["out_dir"])
    aug, p, target = kw.pop("aug"), kw.pop("aug_p"), kw.pop("ada_target")
    mode = aug or ("ada" if new else None)
    if p is not None and mode != "fixed":
        raise click.UsageError("--p is the probability of --aug fixed (ada adapts it)")
    if mode == "fixed" and p is None and new:
        raise click.UsageError("--aug fixed needs --p")
    if target is not None and mode not in ("ada", None):
        raise click.UsageError("--target is ADA's (--aug ada)")
    given = dict(
        cfg=kw.pop("cfg") or ("auto" if new else None),
        batch_size=kw.pop("batch_size"),
        lr=kw.pop("lr"),
        r1_gamma=kw.pop("r1_gamma"),
        pl_weight=kw.pop("pl_weight"),
        style_mixing_prob=kw.pop("style_mixing_prob"),
        ema_kimg=kw.pop("ema_kimg"),
        aug=mode,
        aug_p=p,
        ada_target=target,
        augpipe=kw.pop("augpipe"),
        d_warmup=kw.pop("d_warmup"),
    )
    return TrainingOptions(
        **given,  # None: the preset's / the resumed run's / TrainingOptions.resolved's default
        seed=kw.pop("seed"),
        snapshot_every=kw.pop("snapshot_every"),
        log_every=kw.pop("log_every"),
        export_pkl=kw.pop("export_pkl"),
        metrics_every=kw.pop("metrics_every"),
    )


@contextlib.contextmanager
def stop_on_ctrl_c():
    """A training run stopped by Ctrl-C or SIGTERM (it wrote its resume point): one line saying where, exit code
    128 + the signal (130 for Ctrl-C, 143 for SIGTERM)."""
    from latentlab.train.interrupt import TrainingInterrupted

    try:
        yield
    except TrainingInterrupted as e:
        click.echo(f"latentlab: {e}", err=True)
        raise click.exceptions.Exit(e.exit_code) from None


def _metrics_request(kw):
    """The --metrics options, names parsed (unknown ones refused in one line before anything else runs)."""
    from latentlab.metrics.training import parse_training_metrics

    names = kw.pop("metric_names")
    req = dict(
        names=parse_training_metrics(names) if names is not None else None,
        data=kw.pop("metrics_data"),
        extractor=kw.pop("metrics_extractor"),
    )
    if req["extractor"] is not None:
        from latentlab.metrics.extractors import resolve_extractor_spec

        resolve_extractor_spec(req["extractor"])  # an unknown spec: one line now, not after loading the model
    return req


def _evaluators(req, out_dir, data, dev, rank, model):
    """The evaluators of --metrics (a resumed run: its recorded metrics and settings unless given), or None."""
    from latentlab.train import Trainer
    from latentlab.train.runs import is_resumable

    stored = Trainer.peek(out_dir)["options"] if is_resumable(out_dir) else {}
    names = req["names"] if req["names"] is not None else stored.get("metrics") or []
    if not names:
        for option in ("data", "extractor"):
            if req[option] is not None:
                raise click.UsageError(f"--metrics-{option} needs --metrics NAMES")
        return None
    from latentlab.metrics.training import SETTINGS_KEYS, training_evaluators

    settings = {}
    if req["names"] is None:  # the run's own settings
        settings = {k: v for k, v in (stored.get("metrics_settings") or {}).items() if k in SETTINGS_KEYS}
    if req["extractor"] is not None:
        settings["extractor"] = req["extractor"]
    return training_evaluators(
        names,
        req["data"] or stored.get("metrics_data") or data,
        device=dev,
        model_spec=model,
        log=(lambda text: click.echo(f"latentlab: {text}", err=True)) if rank == 0 else None,
        **settings,
    )


def _train(kw, runner=None, **extra):
    from latentlab.train.runs import train_gan
    from latentlab.utils.distributed import join, shutdown

    runner = runner or train_gan
    if kw["new_d"] and extra.get("model") is None:
        raise click.UsageError("--new-d is for fine-tuning --model (a run from scratch always starts with a new D)")
    extra["new_d"] = kw.pop("new_d")
    metrics = _metrics_request(kw)
    dev, rank, _ = join(kw.pop("device"))  # under torchrun: the process group joined, cuda:LOCAL_RANK
    options = _training_options(kw)
    options.metrics = metrics["names"]
    ok = False
    try:
        evaluators = _evaluators(metrics, kw["out_dir"], kw["data"], dev, rank, extra.get("model"))
        with stop_on_ctrl_c():
            trainer = runner(
                kw.pop("data"),
                kw.pop("out_dir"),
                kw.pop("steps"),
                options=options,
                xflip=kw.pop("xflip"),
                use_labels=kw.pop("use_labels"),
                max_images=kw.pop("max_images"),
                device=dev,
                evaluators=evaluators,
                **extra,
            )
        ok = True
    finally:
        shutdown(wait=ok)
    if rank == 0:
        click.echo(
            f"trained to step {trainer.step} ({trainer.kimg:.1f} kimg); networks: {trainer.snapshot_path()}; "
            f"wrote the run to {trainer.out_dir}"
        )


@click.group("train")
def train():
    """Train or fine-tune generators (StyleGAN2 loop, HSR, learned cluster mappings, GH-Feat encoder).

    \b
    Example:
      latentlab train gan --data faces/ --resolution 64 --steps 20000 --out runs/gan
      latentlab train hsr --model ffhq.pkl --data ffhq/ --steps 5000 --out runs/hsr
      latentlab train clusters --model ffhq.pkl --steps 2000 --out runs/clusters
      latentlab train encoder --model ffhq256.pkl --data ffhq256/ --steps 100000 --out runs/enc
    """


@train.command("gan")
@_run_options
@click.option("--resolution", type=click.IntRange(min=4), default=None, help="Image size (from scratch).")
@click.option(
    "--model",
    "ckpt",
    default=None,
    type=str,
    help="Fine-tune this checkpoint (needs G and D): a file, a registry name (see `latentlab models`) or a "
    "URL; without it, train from scratch at --resolution.",
)
@click.option("--z-dim", type=click.IntRange(min=1), default=None, help="[default: 512]")
@click.option("--w-dim", type=click.IntRange(min=1), default=None, help="[default: 512]")
@click.option("--map-layers", type=click.IntRange(min=1), default=None, help="Mapping network depth [default: 2].")
@click.option(
    "--channel-base",
    type=click.IntRange(min=1),
    default=None,
    help="Channels at resolution R are min(channel_base / R, channel_max) [default: 16384].",
)
@click.option("--channel-max", type=click.IntRange(min=1), default=None, help="[default: 512]")
@click.option("--fp16/--no-fp16", default=None, help="fp16 in the 4 highest resolutions [default: on CUDA].")
def gan(**kw):
    """Train a StyleGAN2 from scratch (or fine-tune --model) on an image folder or zip.

    Snapshots (G, D, G_ema) go to --out as network-snapshot-NNNNNN.safetensors, which
    every latentlab command reads; metrics.csv logs the losses. --metrics evaluates G_ema
    at the snapshots, as StyleGAN2-ADA does (metrics-eval.csv; `latentlab metrics --run`
    plots them). Rerun the same command to resume from the last snapshot; Ctrl-C (or
    SIGTERM) writes one after the current step and stops (a second one stops at once). Under torchrun
    the batch is split over processes.

    \b
    Example:
      latentlab train gan --data toyfaces/images --resolution 64 --steps 20000 --out runs/toy \\
          --z-dim 128 --w-dim 128 --channel-base 2048 --channel-max 64
      torchrun --nproc_per_node 4 -m latentlab -- train gan --data ffhq.zip --resolution 256 --steps 100000 --out runs/ffhq
      latentlab train gan --data ffhq256.zip --resolution 256 --steps 100000 --out runs/ffhq --metrics fid50k_full,pr50k3_full
    """
    network = {k: kw.pop(k) for k in ("z_dim", "w_dim", "map_layers", "channel_base", "channel_max", "fp16")}
    _train(kw, resolution=kw.pop("resolution"), model=kw.pop("ckpt"), network_kwargs=network)


ALL = [train]


@train.command("hsr")
@_run_options
@click.option(
    "--model",
    "ckpt",
    default=None,
    type=str,
    help="Checkpoint to fine-tune (needs G and D): a file, a registry name (see `latentlab models`) or a "
    "URL; without it, train from scratch at --resolution.",
)
@click.option("--resolution", type=click.IntRange(min=4), default=None, help="Image size when training from scratch.")
@click.option(
    "--extractor",
    default=None,
    help="Frozen feature network F: vit_small_patch16_224.dino (default, the paper's), dino_vits16, "
    "timm:<model> or torchvision:<model>.",
)
@click.option(
    "--extractor-weights",
    default=None,
    help="F's weights: a local .pth/.safetensors file, a known file name (dino_deitsmall16_pretrain.pth, ...: "
    "downloaded into the cache and verified), 'timm' / 'torchvision' (their downloads), or 'none' "
    "(random F: the explicit offline baseline)  [default: F's pretrained weights; for DINO ViT-S/16 "
    "dino_deitsmall16_pretrain.pth]",
)
@click.option(
    "--extractor-layers", default=None, help="F's layers, comma-separated (ViT: 1-based blocks) [default: 3,6,9,12]."
)
@click.option(
    "--hsr-resolutions",
    default="auto",
    show_default=True,
    help="Generator blocks to supervise, e.g. 64,32,16,8 ('auto': those of 64,32,16,8 the model has).",
)
@click.option(
    "--hsr-weight", type=opt.FiniteFloat(min=0), default=1.0, show_default=True, help="Weight lambda of the HSR loss."
)
@click.option(
    "--hsr-warmup-kimg",
    type=opt.FiniteFloat(min=0),
    default=None,
    help="HSR is off for the run's first kimg [default: 0 when fine-tuning, 500 from scratch].",
)
@click.option(
    "--hsr-hidden", type=click.IntRange(min=1), default=4096, show_default=True, help="Predictor hidden width."
)
def hsr(**kw):
    """Fine-tune a StyleGAN2 with the Hierarchical Semantic Regulariser (Karmali et al., ECCV 2022).

    Predictors (1x1 conv, LeakyReLU, 1x1 conv) map the generator's block features to a
    frozen network's features on the generated image; their squared error, weighted by
    --hsr-weight, joins the generator loss. Snapshots, resuming and --metrics work as in
    `train gan`; the snapshots are plain generators that every command reads.

    \b
    Example:
      latentlab train hsr --model ffhq.pkl --data ffhq/ --steps 5000 --out runs/hsr     # DINO ViT-S/16, fetched once
      latentlab train hsr --model toy.safetensors --data toyfaces/images --steps 200 --out runs/hsr --extractor-weights none
    """
    layers = kw.pop("extractor_layers")
    if layers is not None:  # ViT block numbers as ints, module names as strings
        layers = [int(v) if v.strip().lstrip("-").isdigit() else v.strip() for v in layers.split(",") if v.strip()]
    res = kw.pop("hsr_resolutions")
    if res != "auto":
        try:
            res = tuple(int(v) for v in res.split(","))
        except ValueError:
            raise ConfigError(f"--hsr-resolutions: expected e.g. 64,32,16,8 or auto, got {res!r}") from None
    from latentlab.train.runs import train_hsr

    _train(
        kw,
        runner=train_hsr,
        model=kw.pop("ckpt"),
        resolution=kw.pop("resolution"),
        extractor=kw.pop("extractor"),
        extractor_weights=kw.pop("extractor_weights"),
        layers=layers,
        gen_resolutions=res,
        weight=kw.pop("hsr_weight"),
        warmup_kimg=kw.pop("hsr_warmup_kimg"),
        hidden=kw.pop("hsr_hidden"),
    )


def _add_clusters():
    from .train_clusters import clusters

    train.add_command(clusters, "clusters")


_add_clusters()


def _add_encoder():
    from .encoder_commands import train_encoder_cmd

    train.add_command(train_encoder_cmd, "encoder")


_add_encoder()
