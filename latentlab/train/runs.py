"""One call per kind of run: what the `latentlab train ...` commands do, as Python functions."""

import copy
import os

import torch

from ..datasets.images import ImageDataset
from ..errors import ConfigError
from .loop import STATE_FILE, Trainer, TrainingOptions, check_trainable, scratch_networks


def is_resumable(out_dir):
    return os.path.isfile(os.path.join(out_dir, STATE_FILE))


def load_for_finetuning(model, device="cpu", new_d=False, seed=0):
    """(G, D, G_ema) from a checkpoint, ready for training.

    A checkpoint without D (e.g. a G_ema-only release) is refused unless `new_d`: then D is a new
    StyleGAN2-ADA discriminator for G's images (G's channel base and maximum, minibatch-std group 4, seeded by
    `seed`); train it alone first (`TrainingOptions.d_warmup`). G is G_ema's copy when the file has no G.
    """
    from ..checkpoints import load_checkpoint

    ckpt = load_checkpoint(model)
    G = ckpt.G if ckpt.G is not None else copy.deepcopy(ckpt.G_ema)
    check_trainable(G, str(model))
    if getattr(G, "generation", 2) != 2 or type(G).__name__ != "Generator":
        raise ConfigError(f"{model}: only StyleGAN2 networks can be trained (this is a {type(G).__name__})")
    D = ckpt.D
    if new_d:
        D = new_discriminator(G, seed=seed)
    elif D is None:
        raise ConfigError(
            f"{model}: holds no discriminator; fine-tuning needs G and D (official training pickles have both), "
            "or a new D (--new-d, with --d-warmup steps training it alone first)"
        )
    return G, D, ckpt.G_ema


def new_discriminator(G, seed=0, c_dim=None, match_precision=True):
    """A new StyleGAN2-ADA discriminator (resnet, minibatch-std group 4: the defaults) for G's images and widths.

    c_dim: its label dimension (default G's); match_precision: G's fp16 resolutions and conv clamp (else fp32).
    Seeded by `seed` without touching the caller's RNG.
    """
    from ..models import Discriminator

    syn = G.synthesis
    precision = dict(num_fp16_res=getattr(syn, "num_fp16_res", 0), conv_clamp=getattr(syn, "conv_clamp", None))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return Discriminator(
            c_dim=G.c_dim if c_dim is None else c_dim,
            img_resolution=G.img_resolution,
            img_channels=G.img_channels,
            channel_base=int(getattr(syn, "channel_base", 32768)),
            channel_max=int(getattr(syn, "channel_max", 512)),
            **(precision if match_precision else {}),
        )


def train_gan(
    data,
    out_dir,
    steps,
    resolution=None,
    model=None,
    options=None,
    network_kwargs=None,
    xflip=False,
    use_labels=False,
    max_images=None,
    regularizer=None,
    device="cpu",
    progress=True,
    evaluators=None,
    new_d=False,
):
    """Train from scratch (`resolution`, `network_kwargs` for `scratch_networks`) or fine-tune `model`
    (`new_d`: with a new discriminator, see `load_for_finetuning`).

    options.cfg (a `latentlab.train.presets` name) fills the settings left None, the networks' too when training
    from scratch (a fine-tuned model keeps its own).
    A folder that already holds a run is resumed (its settings must match). evaluators: metrics evaluated
    at snapshots (`Trainer`; `latentlab.metrics.training.training_evaluators` builds them).
    Returns the Trainer after `steps` steps in total.
    """
    dev = str(device)
    if options is None and is_resumable(out_dir):  # resume with the run's own settings
        options = TrainingOptions.unset()
    options = copy.copy(options) if options is not None else TrainingOptions()
    options.xflip = bool(xflip)
    if is_resumable(out_dir):
        stored = Trainer.peek(out_dir)
        res, ch = stored["resolution"], stored["channels"]
        if resolution is not None and resolution != res:
            raise ConfigError(f"{out_dir}: holds a {res}px run, not {resolution}px; use another --out folder")
        given = {k: v for k, v in (network_kwargs or {}).items() if v is not None}
        for k, v in given.items():
            if k in stored["network"] and stored["network"][k] != v:
                raise ConfigError(
                    f"{out_dir}: holds a run with {k}={stored['network'][k]!r}, not {v!r}; use another --out folder"
                )
        ds = ImageDataset(data, res, channels=ch, xflip=xflip, use_labels=use_labels, max_images=max_images)
        trainer = Trainer.resume(
            out_dir, ds, options=options, regularizer=regularizer, device=dev, progress=progress, evaluators=evaluators
        )
        if progress and trainer.rank == 0:
            print(f"resuming {out_dir} at step {trainer.step} ({trainer.kimg:.1f} kimg)", flush=True)
    else:
        if model is not None:
            G, D, G_ema = load_for_finetuning(model, new_d=new_d, seed=options.seed)
            if resolution is not None and resolution != G.img_resolution:
                raise ConfigError(f"{model} makes {G.img_resolution}px images, not {resolution}px")
            if G.c_dim > 0 and not use_labels:
                raise ConfigError(
                    f"{model} is conditional ({G.c_dim} labels): fine-tune it with labels (--cond, dataset.json)"
                )
            source = str(model)
            # As StyleGAN2-ADA's train.py when resuming from a pickle: ADA reacts faster, no EMA ramp-up.
            if options.ada_kimg is None:
                options.ada_kimg = 100
            if options.ema_rampup is None:
                options.ema_rampup = 0.0
        else:
            if resolution is None:
                raise ConfigError("training from scratch needs a resolution (--resolution)")
            kw = {k: v for k, v in (network_kwargs or {}).items() if v is not None}
            if options.cfg is not None:  # the preset's networks, where not given
                from ..utils import distributed as dist_utils
                from .presets import resolve_preset

                world = (dist_utils.world() or (0, 1))[1]
                for k, v in resolve_preset(options.cfg, resolution, world)["network"].items():
                    kw.setdefault(k, v)
            kw.setdefault("fp16", dev.startswith("cuda"))
            if use_labels:
                probe = ImageDataset(data, resolution, use_labels=True, max_images=max_images)
                kw["c_dim"] = probe.label_dim
            G, D = scratch_networks(resolution, seed=options.seed, **kw)
            G_ema, source = None, None
        ds = ImageDataset(
            data, G.img_resolution, channels=G.img_channels, xflip=xflip, use_labels=use_labels, max_images=max_images
        )
        trainer = Trainer(
            out_dir,
            G,
            D,
            ds,
            options=options,
            G_ema=G_ema,
            regularizer=regularizer,
            device=dev,
            progress=progress,
            source=source,
            evaluators=evaluators,
        )
    trainer.train(steps)
    return trainer


def train_hsr(
    data,
    out_dir,
    steps,
    model=None,
    resolution=None,
    extractor=None,
    extractor_weights=None,
    layers=None,
    gen_resolutions="auto",
    weight=1.0,
    warmup_kimg=None,
    hidden=4096,
    grid=14,
    options=None,
    network_kwargs=None,
    device="cpu",
    progress=True,
    **kwargs,
):
    """Fine-tune `model` (or train from scratch at `resolution`) with the HSR regulariser.

    extractor / extractor_weights: the frozen feature network F (`latentlab.train.extractors.make_extractor`,
    default the paper's ViT-S/16 DINO). Weights: None (the default) = F's pretrained weights
    (`default_weights`: for DINO, dino_deitsmall16_pretrain.pth from Facebook's DINO release, downloaded
    by name into the cache and verified; offline, MissingWeights says which file to put where), a
    local file or known file name, 'timm' / 'torchvision' (their downloads), or 'none' for a random F,
    the explicit baseline. gen_resolutions: generator blocks supervised ('auto' = the paper's 64, 32, 16, 8 where
    present). warmup_kimg: HSR is off for the first kimg of the run; None = 0 when fine-tuning a
    trained model, 500 (the paper's) when training from scratch. A resumed run rebuilds the same term.
    """
    from .extractors import default_weights, make_extractor
    from .hsr import DEFAULT_EXTRACTOR, HSRTerm

    if is_resumable(out_dir):
        stored = Trainer.peek(out_dir)["regularizer"]
        if not stored or stored.get("kind") != "hsr":
            raise ConfigError(f"{out_dir}: holds a run without HSR; use another --out folder")
        given_spec = {"name": extractor, "weights": extractor_weights}
        spec = stored.get("extractor") or {}
        for k, v in given_spec.items():
            if k in spec and v is not None and _norm(spec[k]) != _norm(v):
                raise ConfigError(f"{out_dir}: holds an HSR run with extractor {k}={spec[k]!r}, not {v!r}")
        term = HSRTerm.from_config(stored)
    else:
        if model is None and resolution is None:
            raise ConfigError("HSR training needs --model CKPT to fine-tune, or --resolution to train from scratch")
        # F first: missing weights are reported before a large model is loaded
        name = extractor or DEFAULT_EXTRACTOR
        weights = default_weights(name) if extractor_weights is None else _none(extractor_weights)
        F = make_extractor(name, weights=weights, layers=layers)
        if model is not None:
            G, _, _ = load_for_finetuning(model, new_d=kwargs.get("new_d", False))
            warmup = 0.0 if warmup_kimg is None else warmup_kimg
        else:
            kw = {k: v for k, v in (network_kwargs or {}).items() if v is not None}
            G, _ = scratch_networks(resolution, **{k: v for k, v in kw.items() if k != "fp16"})
            warmup = 500.0 if warmup_kimg is None else warmup_kimg
        with torch.random.fork_rng(devices=[]):  # predictors start from the run's seed, whatever ran before
            torch.manual_seed((options or TrainingOptions()).seed)
            term = HSRTerm.for_generator(
                G,
                weight=weight,
                warmup_kimg=warmup,
                extractor=F,
                gen_resolutions=gen_resolutions,
                hidden=hidden,
                grid=grid,
            )
    return train_gan(
        data,
        out_dir,
        steps,
        model=model,
        resolution=resolution,
        options=options,
        network_kwargs=network_kwargs,
        regularizer=term,
        device=device,
        progress=progress,
        **kwargs,
    )


def _none(v):
    return None if v is None or str(v).lower() == "none" else v


def _norm(v):
    return "none" if v is None else str(v)
