"""The StyleGAN2 training loop: from scratch or fine-tuning an official checkpoint.

One step = the four lazy-regularised phases of StyleGAN2 (G main, G path length every
`g_reg_interval` steps, D main, D R1 every `d_reg_interval` steps), then the G EMA update.
Everything a resumed run needs (networks, optimisers, path-length mean, RNG states,
step) goes into `training_state.pt` together with each snapshot, so stopping after
any snapshot and resuming gives the same networks as an uninterrupted run. Ctrl-C writes a
snapshot and the resume state after the step under way, then stops (a second one stops at once).

Output folder:
  network-snapshot-NNNNNN.safetensors  G, D, G_ema after step NNNNNN (latentlab format;
                                        `.pkl` beside it with `export_pkl`)
  training_state.pt                     resume point (weights-only torch file)
  options.json                          the run's settings
  metrics.csv                           averaged stats every `log_every` steps
  metrics-eval.csv                      metrics of G_ema (FID, ...) from `evaluators`, see below
  tensorboard/                          the same stats (and metrics under Metrics/<name>), when TensorBoard
                                        is installed

Metrics during training (`evaluators`, see `latentlab.train.evaluation`): as in StyleGAN2-ADA, G_ema is
evaluated at the snapshots: at step 0 of a new run, every `metrics_every`-th snapshot (the steps that are
multiples of snapshot_every * metrics_every) and at the last step of `train()`, not at a Ctrl-C snapshot
before the last step (the resumed run evaluates that step first if it is one of those). Evaluation comes
before the snapshot it belongs to is written, runs with the RNG state saved and restored (exact resume
still holds), and calls the evaluators on every rank (`latentlab.metrics` splits its work across
torchrun's ranks); rank 0 writes the values.
"""

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch

from ..checkpoints.native import save_native
from ..errors import ConfigError
from ..models import Discriminator, Generator
from ..utils import distributed as dist_utils
from ..utils import limits
from ..utils.atomic import remove_stale_temps, save_torch, write_text
from ..utils.metrics import MetricsCSV
from ..utils.safe_json import AnyOf, Anything, Bool, Int, List, Map, Num, Obj, Str, loads_json
from .augment import AdaptiveP, make_pipe
from .dataset import ImageDataset, PositionSampler, load_batch
from .evaluation import EVAL_FILE, EvalLog, check_values
from .interrupt import StopOnInterrupt, TrainingInterrupted
from .losses import StyleGAN2Loss

STATE_FILE = "training_state.pt"
LAST_VALUE_COLUMNS = ("augment_p",)  # logged as at the row's step; the others are means over the interval
OPTIONS_FILE = "options.json"
METRICS_FILE = "metrics.csv"
BASE_COLUMNS = (
    "step",
    "kimg",
    "sec_per_step",
    "loss_G",
    "D_fake_G",
    "pl_penalty",
    "pl_mean",
    "loss_D",
    "D_real",
    "D_fake",
    "r1_penalty",
    "r_t",  # E[sign(D(real))] over the interval's D passes on reals: ADA's overfitting measure
    "augment_p",  # the augmentation probability at the end of each step
)


# Why `check_trainable` refuses StyleGAN3 generators (one line, after the file or network it names).
STYLEGAN3_NOT_TRAINABLE = (
    "StyleGAN3 generators cannot be trained here: latentlab's training loop is StyleGAN2's, and StyleGAN3's own "
    "(its losses, blurred discriminator inputs, schedules) is not implemented; train it with NVlabs/stylegan3"
)


def check_trainable(G, where="the generator"):
    """ConfigError (one line starting with `where`) for a generator the StyleGAN2 loop cannot train (StyleGAN3)."""
    if getattr(G, "generation", 2) == 3:
        raise ConfigError(f"{where}: {STYLEGAN3_NOT_TRAINABLE}")


@dataclass
class TrainingOptions:
    """Settings of a run. None means 'choose as StyleGAN2-ADA does' (see `resolved`).

    cfg: one of StyleGAN2-ADA's configurations (`latentlab.train.presets`: auto, stylegan2, paper256, paper512,
    paper1024, cifar) filling the settings left None below; without one: batch 16, lr 0.0025, mixing 0.9,
    path length 2, EMA ramp-up 0.05 and the `auto` formulas for gamma and the EMA half-life.
    lr: Adam learning rate of G and D (betas (0, 0.99), eps 1e-8; with lazy
    regularisation both are adjusted by interval / (interval + 1) as in StyleGAN2).
    r1_gamma: R1 weight; None = 0.0002 * resolution^2 / batch_size (ADA's heuristic).
    ema_kimg: half-life of G_ema in thousands of images; None = batch_size * 10 / 32.
    ema_rampup: the half-life is at most ema_rampup * images seen so far (0: off).
    aug: discriminator augmentation (`latentlab.train.augment`): 'noaug', 'ada' (p adapted towards
    ada_target, moved by batch * ada_interval / (ada_kimg * 1000) every ada_interval steps) or 'fixed' (p stays
    aug_p); aug_p: the starting p; augpipe: the pipeline (PRESETS of augment: 'bgc' as StyleGAN2-ADA).
    metrics: names of the metrics evaluated during training (the keys of the Trainer's `evaluators`); None:
    those of the evaluators given (a resumed run: the stored ones). metrics_every: evaluate every N-th
    snapshot. metrics_settings: the evaluators' settings (e.g. feature extractor, seed), recorded so that a
    resumed run uses the same; metrics_data: their real images (may change on resume, as the training data).
    """

    batch_size: int = None
    lr: float = None
    betas: tuple = (0.0, 0.99)
    eps: float = 1e-8
    r1_gamma: float = None
    style_mixing_prob: float = None
    pl_weight: float = None
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    g_reg_interval: int = 4
    d_reg_interval: int = 16
    ema_kimg: float = None
    ema_rampup: float = None
    cfg: str = None
    aug: str = None
    aug_p: float = None
    augpipe: str = None
    ada_target: float = None
    ada_interval: int = 4
    ada_kimg: float = None
    d_warmup: int = None
    xflip: bool = False
    seed: int = 0
    snapshot_every: int = 500
    log_every: int = 10
    export_pkl: bool = False
    metrics: list = None
    metrics_every: int = 1
    metrics_settings: dict = None
    metrics_data: str = None
    extra: dict = field(default_factory=dict)  # settings of add-on terms (e.g. HSR), for the record

    # Settings that may differ between a run and its resumption.
    RESUMABLE_CHANGES = ("snapshot_every", "log_every", "export_pkl", "metrics_every", "metrics_data")

    # Without a cfg, what None means for the settings a cfg would fill (r1_gamma, ema_kimg: formulas below).
    DEFAULTS = {"batch_size": 16, "lr": 0.0025, "style_mixing_prob": 0.9, "pl_weight": 2.0, "ema_rampup": 0.05}
    RUN_DEFAULTS = {"aug": "noaug", "aug_p": 0.0, "augpipe": "bgc", "ada_target": 0.6, "ada_kimg": 500, "d_warmup": 0}

    def resolved(self, resolution, world=1):
        """A copy with every None filled: from `cfg` for `resolution` and `world` processes, else DEFAULTS."""
        o = copy.deepcopy(self)
        fill = dict(self.DEFAULTS)
        if o.cfg is not None:
            from .presets import resolve_preset

            fill = resolve_preset(o.cfg, resolution, world)["options"]
        for k, v in {**fill, **self.RUN_DEFAULTS}.items():
            if getattr(o, k) is None:
                setattr(o, k, v)
        if not (isinstance(o.batch_size, int) and o.batch_size >= 1):
            raise ConfigError(f"batch_size must be an integer >= 1, got {o.batch_size!r}")
        o.betas = tuple(float(b) for b in o.betas)
        if o.r1_gamma is None:
            o.r1_gamma = 0.0002 * resolution**2 / o.batch_size
        if o.ema_kimg is None:
            o.ema_kimg = o.batch_size * 10 / 32
        o.check()
        return o

    def check(self):
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        for name in ("lr", "eps"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("r1_gamma", "pl_weight", "ema_kimg"):
            v = getattr(self, name)
            if v is not None and not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"{name} must be a finite number >= 0, got {v}")
        if not 0 <= self.style_mixing_prob <= 1:
            raise ConfigError(f"style_mixing_prob must be in [0, 1], got {self.style_mixing_prob}")
        if self.ema_rampup is not None and not (self.ema_rampup >= 0 and math.isfinite(self.ema_rampup)):
            raise ConfigError(f"ema_rampup must be a finite number >= 0, got {self.ema_rampup}")
        from .augment import AUG_MODES, PRESETS
        from .presets import preset

        if self.cfg is not None:
            preset(self.cfg)  # unknown names: ConfigError listing the known ones
        if self.aug not in AUG_MODES:
            raise ConfigError(f"aug must be one of {', '.join(AUG_MODES)}, got {self.aug!r}")
        if self.augpipe not in PRESETS:
            raise ConfigError(f"augpipe must be one of {', '.join(PRESETS)}, got {self.augpipe!r}")
        for name in ("aug_p", "ada_target"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not (isinstance(self.d_warmup, int) and self.d_warmup >= 0):
            raise ConfigError(f"d_warmup must be an integer >= 0, got {self.d_warmup!r}")
        if not (self.ada_kimg > 0 and math.isfinite(self.ada_kimg)):
            raise ConfigError(f"ada_kimg must be a finite number > 0, got {self.ada_kimg}")
        for name in (
            "g_reg_interval",
            "d_reg_interval",
            "snapshot_every",
            "log_every",
            "pl_batch_shrink",
            "metrics_every",
            "ada_interval",
        ):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def unset(cls, **given):
        """Options with every setting None (= the stored run's, when resuming) except `given`."""
        return cls(**{f.name: None for f in fields(cls) if f.name != "extra"}, **given)

    def to_dict(self):
        d = asdict(self)
        d["betas"] = None if d["betas"] is None else list(d["betas"])
        if d["metrics"] is not None:
            d["metrics"] = list(d["metrics"])
        return d

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown training options {unknown}")
        d = dict(d)
        if "ema_rampup" in d and d["ema_rampup"] is None:  # a stored (resolved) run's None: no ramp-up
            d["ema_rampup"] = 0.0
        return cls(**{k: tuple(v) if k == "betas" else v for k, v in d.items()})


def scratch_networks(
    resolution,
    img_channels=3,
    z_dim=512,
    w_dim=512,
    map_layers=2,
    channel_base=16384,
    channel_max=512,
    c_dim=0,
    fp16=False,
    mbstd_group=4,
    d_architecture="resnet",
    seed=0,
):
    """A new (G, D) pair with StyleGAN2-ADA's layout; fp16 adds its 4 fp16 resolutions and conv clamp 256.

    d_architecture: D's 'resnet' (StyleGAN2) or 'orig' (the `cifar` preset's) blocks.
    """
    fp16_kw = dict(num_fp16_res=4, conv_clamp=256) if fp16 else dict(num_fp16_res=0, conv_clamp=None)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
        torch.manual_seed(seed)
        G = Generator(
            z_dim=z_dim,
            c_dim=c_dim,
            w_dim=w_dim,
            img_resolution=resolution,
            img_channels=img_channels,
            mapping_kwargs=dict(num_layers=map_layers),
            synthesis_kwargs=dict(channel_base=channel_base, channel_max=channel_max, **fp16_kw),
        )
        D = Discriminator(
            c_dim=c_dim,
            img_resolution=resolution,
            img_channels=img_channels,
            channel_base=channel_base,
            channel_max=channel_max,
            architecture=d_architecture,
            epilogue_kwargs=dict(mbstd_group_size=mbstd_group),
            **fp16_kw,
        )
    return G, D


def _network_spec(net):
    return {"class_name": type(net).__name__, "init_kwargs": net.init_kwargs}


def _build(spec, where="training state"):
    """The network a training state's record describes; its kwargs range-checked and its size counted on the
    meta device first (`checkpoints.budget.plan_network`: CheckpointError naming `where`)."""
    from ..checkpoints.budget import plan_network

    cls = {"Generator": Generator, "Discriminator": Discriminator}.get(spec["class_name"])
    if cls is None:
        raise ConfigError(f"{where} holds an unsupported network class {spec['class_name'][:100]!r}")
    plan_network(where, cls, spec["init_kwargs"])
    return cls(**spec["init_kwargs"])


# The JSON records inside training_state.pt (`Trainer.snapshot`), checked by `latentlab.utils.safe_json` on
# resume (size, depth, shape; ConfigError naming the state file and the record).
_NET_RECORD = Obj(
    {"class_name": Str(100), "init_kwargs": Map(Anything(), max_items=256)}, required=["class_name", "init_kwargs"]
)
_G_KWARGS = Obj(
    {
        "z_dim": Int(1, limits.MAX_DIM),
        "w_dim": Int(1, limits.MAX_DIM),
        "img_resolution": Int(4, limits.MAX_RESOLUTION),
        "img_channels": Int(1, limits.MAX_IMG_CHANNELS),
        "mapping_kwargs": AnyOf(None, Obj({"num_layers": Int(1, limits.MAX_MAPPING_LAYERS)})),
        "synthesis_kwargs": AnyOf(
            None,
            Obj(
                {
                    "channel_base": Int(1, limits.MAX_CHANNEL_BASE),
                    "channel_max": Int(1, limits.MAX_CHANNELS),
                    "num_fp16_res": Int(0, 64),
                }
            ),
        ),
    },
    required=["z_dim", "w_dim", "img_resolution", "img_channels"],
)
STATE_NETWORKS_SCHEMA = Obj(
    {
        "G": Obj({"class_name": Str(100), "init_kwargs": _G_KWARGS}, required=["class_name", "init_kwargs"]),
        "D": _NET_RECORD,
        "G_ema": _NET_RECORD,
    },
    required=["G", "D", "G_ema"],
)
_OPTIONAL_NUM = AnyOf(None, Num())
STATE_OPTIONS_SCHEMA = Obj(  # the types of TrainingOptions' fields (unknown names: from_dict; ranges: check)
    {
        **{k: Int(1) for k in ("batch_size", "pl_batch_shrink", "g_reg_interval", "d_reg_interval")},
        **{k: Int(1) for k in ("snapshot_every", "log_every", "metrics_every")},
        **{k: Num() for k in ("lr", "eps", "style_mixing_prob", "pl_weight", "pl_decay")},
        **{k: _OPTIONAL_NUM for k in ("r1_gamma", "ema_kimg", "ema_rampup")},
        "betas": List(Num(), 2, 2),
        "xflip": Bool(),
        "export_pkl": Bool(),
        "seed": Int(),
        "extra": Map(Anything()),
        "metrics": AnyOf(None, List(Str(100), 0, 100)),
        "metrics_settings": AnyOf(None, Map(Anything(), max_items=100)),
        "metrics_data": AnyOf(None, Str(4096)),
        "cfg": AnyOf(None, Str(20)),
        "aug": Str(10),
        "augpipe": Str(20),
        **{k: Num() for k in ("aug_p", "ada_target", "ada_kimg")},
        "ada_interval": Int(1),
        "d_warmup": Int(0),
    }
)
STATE_ADA_SCHEMA = Obj(
    {"sign_sum": Num(), "count": Int(0), "last_rt": AnyOf(None, Num())}, required=["sign_sum", "count"]
)
STATE_REGULARIZER_SCHEMA = AnyOf(None, Map(Anything()))


def _state_json(state, key, path, schema, default=None):
    """The JSON record `key` of a training state, parsed and checked; ConfigError naming the file and the key."""
    text = state.get(key, default)
    if not isinstance(text, (str, bytes)):
        raise ConfigError(f"{path}: no {key!r} record (a damaged or foreign training state)")
    return loads_json(text, f"{path}: {key!r}", schema)


class Trainer:
    """Train or fine-tune (G, D) on an ImageDataset, writing snapshots into `out_dir`.

    G, D: latentlab networks (G_ema: optional starting EMA, else a copy of G).
    regularizer: optional add-on generator term (e.g. `latentlab.train.hsr.HSRTerm`)
    with `resolutions`, `weight(kimg)`, `__call__(features, images) -> (loss, stats)`,
    `parameters()`, `state_dict()`, `load_state_dict()` and `log_keys`.
    evaluators: optional {name: callable(G_ema) -> {result key: value}} evaluated at snapshots into
    metrics-eval.csv and TensorBoard (module docstring; `latentlab.metrics.training.training_evaluators`
    builds them for FID, KID, precision/recall and PPL); their names are recorded as options.metrics.
    Use `Trainer.resume(out_dir, dataset)` to continue a run.
    """

    def __init__(
        self,
        out_dir,
        G,
        D,
        dataset,
        options=None,
        G_ema=None,
        regularizer=None,
        device="cpu",
        progress=True,
        source=None,
        evaluators=None,
    ):
        self.out_dir = os.fspath(out_dir)
        self.device = torch.device(device)
        self.rank, self.world = dist_utils.world() or (0, 1)
        self.dataset = dataset
        check_trainable(G, "Trainer")
        if (dataset.resolution, dataset.channels) != (G.img_resolution, G.img_channels):
            raise ConfigError(
                f"dataset gives {dataset.channels}x{dataset.resolution}px images, generator makes "
                f"{G.img_channels}x{G.img_resolution}px"
            )
        if dataset.label_dim != G.c_dim or D.c_dim != G.c_dim:
            raise ConfigError(f"labels: dataset has {dataset.label_dim}, G takes {G.c_dim}, D takes {D.c_dim}")
        self.options = (options or TrainingOptions()).resolved(G.img_resolution, self.world)
        o = self.options
        self.evaluators = _check_evaluators(evaluators, o, self.out_dir)
        if o.batch_size % self.world:
            raise ConfigError(f"batch_size {o.batch_size} is not divisible by the {self.world} processes")
        self.batch_gpu = o.batch_size // self.world
        group = D.b4.mbstd.group_size if hasattr(D.b4, "mbstd") and D.b4.mbstd is not None else None
        if group and self.batch_gpu % min(group, self.batch_gpu):
            raise ConfigError(f"per-process batch {self.batch_gpu} is not divisible by D's minibatch-std group {group}")
        self.progress = progress and self.rank == 0
        self.source = source
        self.G = G.to(self.device).train().requires_grad_(False)
        self.D = D.to(self.device).train().requires_grad_(False)
        self.G_ema = (G_ema if G_ema is not None else copy.deepcopy(G)).to(self.device).eval().requires_grad_(False)
        self.regularizer = regularizer.to(self.device) if regularizer is not None else None
        # Discriminator augmentation: the pipeline (p a buffer of it) and, for ADA, p's controller.
        self.augment_pipe = make_pipe(o.aug, o.augpipe, o.aug_p)
        if self.augment_pipe is not None:
            self.augment_pipe = self.augment_pipe.to(self.device).train().requires_grad_(False)
        self.ada = AdaptiveP(o.ada_target, o.ada_interval, o.ada_kimg) if o.aug == "ada" else None
        self._signs = [0.0, 0]  # sum and count of sign(D(real)) in the step under way (logged as r_t)
        self.loss = StyleGAN2Loss(
            self.G,
            self.D,
            r1_gamma=o.r1_gamma,
            style_mixing_prob=o.style_mixing_prob,
            pl_weight=o.pl_weight,
            pl_batch_shrink=o.pl_batch_shrink,
            pl_decay=o.pl_decay,
            augment_pipe=self.augment_pipe,
            observe_real=self._observe_real,
        )
        # As StyleGAN2-ADA: the lazy-regularisation rescaling follows the interval even when the weight is 0 (its
        # cifar configuration, path length off, trains G at 4/5 of the rate with betas ** 0.8).
        self.opt_G = self._adam(self.G.parameters(), o.g_reg_interval)
        self.opt_D = self._adam(self.D.parameters(), o.d_reg_interval)
        self.opt_reg = self._adam(self.regularizer.parameters(), None) if self.regularizer is not None else None
        self.sampler = PositionSampler(len(dataset), seed=o.seed)
        self.step = 0
        self._stats = {}
        self._metrics = None
        self._evals = None
        self._bar = None
        self._tb = None
        if self.world > 1:  # every rank starts from rank 0's weights
            for net in (self.G, self.D, self.G_ema) + ((self.regularizer,) if self.regularizer is not None else ()):
                for t in list(net.parameters()) + list(net.buffers()):
                    torch.distributed.broadcast(t.data, src=0)
        torch.manual_seed(o.seed * self.world + self.rank)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(o.seed * self.world + self.rank)
            # As NVIDIA's training loop (its --allow-tf32 is off by default): no TF32, whose 10-bit mantissa moves
            # losses and gradients ~1e-3 away from float32; cuDNN times its algorithms once per shape.
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cudnn.benchmark = True

    # ---------------------------------------------------------------------------------- setup

    def _adam(self, params, reg_interval):
        o = self.options
        # Lazy regularisation takes extra optimiser steps; rescale so the effective rate is unchanged.
        ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
        return torch.optim.Adam(list(params), lr=o.lr * ratio, betas=tuple(b**ratio for b in o.betas), eps=o.eps)

    @classmethod
    def resume(cls, out_dir, dataset, options=None, regularizer=None, device="cpu", progress=True, evaluators=None):
        """Continue the run in `out_dir` from its last snapshot.

        `options`, when given, must match the stored ones (apart from RESUMABLE_CHANGES; None values keep the
        stored ones). A run that evaluates metrics needs `evaluators` of the same names.
        """
        state = read_state(out_dir)
        path = os.path.join(out_dir, STATE_FILE)
        recorded = _state_json(state, "options", path, STATE_OPTIONS_SCHEMA)
        try:
            stored = TrainingOptions.from_dict(recorded)
        except ConfigError as e:  # unknown option names
            raise ConfigError(f"{path}: 'options': {e}") from None
        if options is not None:
            check_same_options(stored, options, out_dir)
            for k in TrainingOptions.RESUMABLE_CHANGES:
                if getattr(options, k) is not None:
                    setattr(stored, k, getattr(options, k))
        specs = _state_json(state, "networks", path, STATE_NETWORKS_SCHEMA)
        nets = {}
        for name in ("G", "D", "G_ema"):
            nets[name] = _build(specs[name], f"{path}: network {name}")
            try:
                nets[name].load_state_dict(state[name])
            except (KeyError, TypeError, AttributeError, RuntimeError) as e:  # missing, or of another architecture
                msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                raise ConfigError(f"{path}: network {name}: weights do not fit its record ({msg})") from None
        if (regularizer is None) != (state.get("regularizer") is None):
            raise ConfigError(
                f"{out_dir}: the run was {'not ' if state.get('regularizer') is None else ''}"
                "trained with an add-on regulariser; resume it with the same command"
            )
        if regularizer is not None:
            regularizer.load_state_dict(state["regularizer"])
        trainer = cls(
            out_dir,
            nets["G"],
            nets["D"],
            dataset,
            options=stored,
            G_ema=nets["G_ema"],
            regularizer=regularizer,
            device=device,
            progress=progress,
            source=state.get("source"),
            evaluators=evaluators,
        )
        trainer._load_state(state)
        return trainer

    @staticmethod
    def peek(out_dir):
        """Resolution, channels, step, network and options of the run stored in `out_dir` (without building it)."""
        state = read_state(out_dir, mmap=True)  # tensors stay on disk: only the JSON records are read
        path = os.path.join(out_dir, STATE_FILE)
        g = _state_json(state, "networks", path, STATE_NETWORKS_SCHEMA)["G"]["init_kwargs"]
        syn, mapping = g.get("synthesis_kwargs") or {}, g.get("mapping_kwargs") or {}
        network = {
            "z_dim": g["z_dim"],
            "w_dim": g["w_dim"],
            "map_layers": mapping.get("num_layers", 8),
            "channel_base": syn.get("channel_base", 32768),
            "channel_max": syn.get("channel_max", 512),
            "fp16": syn.get("num_fp16_res", 0) > 0,
        }
        return {
            "resolution": g["img_resolution"],
            "channels": g["img_channels"],
            "step": int(state["step"]),
            "network": network,
            "regularizer": _state_json(state, "regularizer_config", path, STATE_REGULARIZER_SCHEMA, "null"),
            "options": _state_json(state, "options", path, STATE_OPTIONS_SCHEMA),
        }

    def _load_state(self, state):
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        if self.opt_reg is not None:
            self.opt_reg.load_state_dict(state["opt_reg"])
        self.loss.pl_mean.copy_(state["pl_mean"])
        self.step = int(state["step"])
        path = os.path.join(self.out_dir, STATE_FILE)
        if self.augment_pipe is not None:
            p = state.get("augment_p")
            if not (torch.is_tensor(p) and p.numel() == 1 and 0 <= float(p) < float("inf")):
                raise ConfigError(f"{path}: no valid 'augment_p' (the augmentation probability) for this ADA run")
            self.augment_pipe.p.fill_(float(p))
        if self.ada is not None:
            self.ada.load_state_dict(_state_json(state, "ada", path, STATE_ADA_SCHEMA))
        rng = state.get(f"rng_{self.rank}")
        if rng is not None and int(state.get("world", 1)) == self.world:
            torch.set_rng_state(rng["cpu"])
            if self.device.type == "cuda" and rng.get("cuda") is not None:
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        else:  # another process count: a fresh but deterministic stream
            torch.manual_seed(self.options.seed * 1_000_003 + self.step * self.world + self.rank)

    # ---------------------------------------------------------------------------------- training

    @property
    def kimg(self):
        return self.step * self.options.batch_size / 1000

    def _sync_grads(self, params):
        params = [p for p in params if p.grad is not None]
        if self.world > 1 and params:
            flat = torch.cat([p.grad.flatten() for p in params])
            torch.distributed.all_reduce(flat)
            flat /= self.world
            torch.nn.utils.vector_to_parameters(flat, [p.grad for p in params])
        for p in params:  # fp16 layers can overflow; keep the update finite as StyleGAN2-ADA does
            torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)

    def _sync_mean(self, t):
        if self.world > 1:
            t = t.clone()
            torch.distributed.all_reduce(t)
            t /= self.world
        return t

    PHASES = ("G main", "G reg", "D main", "D reg")  # each draws its own latents, every step

    def _latents(self):
        """This rank's (z, c) for each of PHASES, drawn up front as StyleGAN2-ADA's loop draws them: one
        [len(PHASES) * batch, z_dim] normal draw per step (skipped phases included), each rank taking the first
        batch_gpu rows of every phase's block; so one seed gives the official run's latents. Labels of
        conditional runs come from torch's generator after that (the official loop uses NumPy's)."""
        o, n = self.options, self.batch_gpu
        blocks = torch.randn([len(self.PHASES) * o.batch_size, self.G.z_dim], device=self.device).split(o.batch_size)
        out = []
        for z in blocks:
            z = z[:n]
            if self.G.c_dim == 0:
                out.append((z, self.G.empty_c(n, self.device)))
                continue
            idx = torch.randint(len(self.dataset), [n]).tolist()
            c = np.stack([self.dataset.sample(i)[1] for i in idx])
            out.append((z, torch.from_numpy(c).to(self.device)))
        return dict(zip(self.PHASES, out))

    def _phase(self, module_params, opt, loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        self._sync_grads(module_params)
        opt.step()

    def train_step(self):
        """One StyleGAN2 iteration; returns this step's stats."""
        o, stats = self.options, {}
        D, n = self.D, self.batch_gpu
        start = self.step * o.batch_size + self.rank
        real, real_c = load_batch(self.dataset, self.sampler, start, n, stride=self.world, device=self.device)

        latents = self._latents()
        if self.step >= o.d_warmup:
            self._g_phases(stats, latents)

        # D main (+ lazy R1).
        D.requires_grad_(True)
        z, c = latents["D main"]
        loss, s = self.loss.d_main(z, c, real, real_c)
        self._phase(D.parameters(), self.opt_D, loss)
        stats.update(s)
        if o.r1_gamma > 0 and self.step % o.d_reg_interval == 0:
            loss, s = self.loss.d_reg(real, real_c)
            self._phase(D.parameters(), self.opt_D, loss * o.d_reg_interval)
            stats.update(s)
        D.requires_grad_(False)

        self.step += 1
        if self.step > o.d_warmup:  # G trained this step
            self._update_ema()
        if self.ada is not None:  # ADA: every ada_interval steps, move p towards r_t = target
            p = self.ada.update(self.step, o.batch_size, float(self.augment_pipe.p), sync=self._sync_sum)
            if p is not None:
                self.augment_pipe.p.fill_(p)
        total, count = self._signs
        self._signs = [0.0, 0]
        if count:
            stats["r_t"] = total / count
        stats["augment_p"] = float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0
        return stats

    def _observe_real(self, real_logits):
        """Every D pass on reals (main and R1): ADA's r_t and the logged one."""
        signs = real_logits.detach().sign()
        self._signs[0] += float(signs.sum())
        self._signs[1] += signs.numel()
        if self.ada is not None:
            self.ada.observe(real_logits)

    def _sync_sum(self, t):
        if self.world > 1:
            t = t.to(self.device)
            torch.distributed.all_reduce(t)
        return t.cpu()

    def _g_phases(self, stats, latents):
        """G main (+ add-on regulariser on the same images), then the lazy path-length phase."""
        o, G = self.options, self.G
        G.requires_grad_(True)
        z, c = latents["G main"]
        reg_weight = self.regularizer.weight(self.kimg) if self.regularizer is not None else 0.0
        if reg_weight > 0:
            with self.regularizer.capture(G) as feats:
                loss, img, s = self.loss.g_main(z, c)
            reg_loss, reg_stats = self.regularizer(feats, img)
            loss = loss + reg_weight * reg_loss
            stats.update(reg_stats)
            self.opt_reg.zero_grad(set_to_none=True)
            self._phase(G.parameters(), self.opt_G, loss)
            self._sync_grads(self.regularizer.parameters())
            self.opt_reg.step()
        else:
            loss, img, s = self.loss.g_main(z, c)
            self._phase(G.parameters(), self.opt_G, loss)
        stats.update(s)
        stats["reg_weight"] = reg_weight
        if o.pl_weight > 0 and self.step % o.g_reg_interval == 0:
            z, c = latents["G reg"]
            loss, s = self.loss.g_pl(z, c, sync=self._sync_mean)
            self._phase(G.parameters(), self.opt_G, loss * o.g_reg_interval)
            stats.update(s)
        G.requires_grad_(False)

    @torch.no_grad()
    def _update_ema(self):
        o = self.options
        nimg = (self.step - 1) * o.batch_size  # images before this step, as StyleGAN2-ADA's cur_nimg at its EMA
        ema_nimg = o.ema_kimg * 1000
        if o.ema_rampup:  # 0 / None: no ramp-up
            ema_nimg = min(ema_nimg, nimg * o.ema_rampup)
        beta = 0.5 ** (o.batch_size / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def train(self, steps):
        """Train until `steps` steps in total (resumed runs count the steps already done).

        Ctrl-C or SIGTERM (main thread) stops after the step under way: the metrics of the partial
        logging interval, a snapshot and the resume state are written, then `TrainingInterrupted`
        (a KeyboardInterrupt naming the resume point) is raised; a second one stops at once
        (`latentlab.train.interrupt`). Resuming then gives the same networks as an uninterrupted run.

        With `evaluators`, their `prepare(G_ema)` runs first, then G_ema is evaluated at step 0 of a new run
        (or at the resume point when that evaluation is due and missing) and at the snapshots (module docstring).
        """
        o = self.options
        if self.rank == 0:
            os.makedirs(self.out_dir, exist_ok=True)
            remove_stale_temps(self.out_dir)  # left by a run killed mid-write (snapshots are gigabytes)
            write_text(os.path.join(self.out_dir, OPTIONS_FILE), json.dumps(self._record(), indent=2) + "\n")
        self._metrics = (
            MetricsCSV(os.path.join(self.out_dir, METRICS_FILE), self._columns(), self.step) if self.rank == 0 else None
        )
        self._open_eval_log()
        if self.evaluators and steps > self.step:
            with self._quiet_rng():
                for fn in self.evaluators.values():  # check inputs, load networks: before any training
                    if callable(getattr(fn, "prepare", None)):
                        fn.prepare(self.G_ema)
        bar = None
        if self.progress and steps > self.step:
            from ..utils.progress import progress_bar

            bar = progress_bar(
                total=steps,
                initial=self.step,
                desc="training",
                unit="step",
                what="training steps",
                hint="Ctrl-C stops with a snapshot; rerun the command to resume",
            )
        self._bar = bar
        t0 = time.perf_counter()
        try:
            with StopOnInterrupt() as stop:
                if self.evaluators and steps > self.step and self._missing_evaluation():
                    self.evaluate()  # step 0 of a new run, or a due evaluation a Ctrl-C snapshot skipped
                while self.step < steps:
                    stats = self.train_step()
                    for k, v in stats.items():
                        self._stats.setdefault(k, []).append(v)
                    if bar is not None:
                        bar.update(1)
                        losses = {k: f"{stats[v]:.3f}" for k, v in (("G", "loss_G"), ("D", "loss_D")) if v in stats}
                        bar.set_postfix(kimg=f"{self.kimg:.1f}", **losses)
                    interrupted = self._agree(stop.requested)
                    if self.step % o.log_every == 0 or self.step == steps or (interrupted and self._stats):
                        self._log((time.perf_counter() - t0) / max(len(self._stats.get("loss_D", [])), 1))
                        t0 = time.perf_counter()
                    if self.step % o.snapshot_every == 0 or self.step == steps or interrupted:
                        if self.evaluators and self._evaluation_due(steps) and not (interrupted and self.step < steps):
                            self.evaluate()  # before the snapshot: a run killed meanwhile redoes this step
                        self.snapshot()
                    if interrupted and self.step < steps:
                        raise TrainingInterrupted(self.step, os.path.join(self.out_dir, STATE_FILE), signum=stop.signum)
        finally:
            self._bar = None
            if bar is not None:
                bar.close()
            if self._metrics is not None:
                self._metrics.close()
            if self._tb:
                self._tb.flush()
        return self

    # ---------------------------------------------------------------------------------- metrics

    def _evaluation_due(self, steps):
        """Whether the snapshot at this step is evaluated: every metrics_every-th snapshot, and the last step."""
        o = self.options
        return self.step % (o.snapshot_every * o.metrics_every) == 0 or self.step == steps

    def _open_eval_log(self):
        """Rank 0's metrics-eval.csv: a resumed run keeps the rows up to its step, a new run starts it empty."""
        path = os.path.join(self.out_dir, EVAL_FILE)
        self._evals = None
        if self.rank != 0:
            return
        if self.evaluators:
            self._evals = EvalLog(path, keep_through=self.step if self.step > 0 else -1)
        elif self.step == 0 and os.path.exists(path):  # an old run's values are not this run's
            os.remove(path)

    def _missing_evaluation(self):
        """Whether G_ema at this step needs evaluating before training on: step 0 of a new run, or a resume
        point that was due (a Ctrl-C snapshot skips evaluation) and has no values. Rank 0 decides for all."""
        o = self.options
        due = self.step == 0 or self.step % (o.snapshot_every * o.metrics_every) == 0
        missing = due and (self._evals is None or self.step not in self._evals.steps())
        if self.world > 1:
            flag = torch.tensor([1.0 if missing else 0.0], device=self.device)
            torch.distributed.broadcast(flag, src=0)
            missing = bool(flag.item() > 0)
        return missing

    def _quiet_rng(self):
        """A context in which evaluators may draw random numbers without moving the training's RNG streams."""
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    def evaluate(self):
        """Evaluate G_ema with every evaluator (on every rank); rank 0 logs the values to metrics-eval.csv and
        TensorBoard (Metrics/<result key>) and returns {result key: value}."""
        values, seconds, total = {}, {}, 0.0
        with self._quiet_rng(), torch.no_grad():
            for name, fn in self.evaluators.items():
                self.G_ema.eval()
                t0 = time.perf_counter()
                got = check_values(name, fn(self.G_ema))
                took = time.perf_counter() - t0
                total += took
                for k, v in got.items():
                    if k in values:
                        raise ConfigError(f"metric evaluator {name!r} returns {k!r}, which another one returned")
                    values[k], seconds[k] = v, took
        self.G_ema.eval().requires_grad_(False)
        if self._evals is None:  # not rank 0
            return values
        snapshot = os.path.basename(self.snapshot_path()) if self.step > 0 else ""
        self._evals.append(self.step, self.kimg, snapshot, values, seconds)
        tb = self._tensorboard()
        if tb is not None:
            for k, v in values.items():
                tb.add_scalar(f"Metrics/{k}", v, self.step)
            tb.flush()
        if self.progress:
            text = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
            line = f"metrics at step {self.step} ({self.kimg:.1f} kimg): {text} [{total:.0f} s]"
            if self._bar is not None:
                self._bar.write(line)
            else:
                print(line, flush=True)
        return values

    def _agree(self, requested):
        """Whether to stop now: under torchrun, every rank stops at the same step once any rank was interrupted."""
        if self.world == 1:
            return requested
        flag = torch.tensor([1.0 if requested else 0.0], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item() > 0)

    # ---------------------------------------------------------------------------------- outputs

    def _record(self):
        return {
            "options": self.options.to_dict(),
            "dataset": {
                "path": os.path.abspath(self.dataset.path),
                "images": self.dataset.num_images,
                "resolution": self.dataset.resolution,
                "xflip": self.dataset.xflip,
            },
            "source": self.source,
            "world_size": self.world,
            "G": _network_spec(self.G),
            "D": _network_spec(self.D),
            "regularizer": getattr(self.regularizer, "config", None),
        }

    def snapshot_path(self, step=None, ext=".safetensors"):
        return os.path.join(self.out_dir, f"network-snapshot-{self.step if step is None else step:06d}{ext}")

    def snapshot(self):
        """Write the networks (latentlab format, optionally .pkl) and then the resume state, atomically."""
        rngs = self._gather_rng()
        if self.rank != 0:
            return
        nets = {"G": self.G, "D": self.D, "G_ema": self.G_ema}
        extras = {"step": self.step, "kimg": self.kimg, "training": self._record()}
        if self.augment_pipe is not None:
            extras["augment"] = {"pipe": self.options.augpipe, "p": float(self.augment_pipe.p)}
        save_native(self.snapshot_path(), nets, source_format="latentlab-training", extras=extras)
        if self.options.export_pkl:
            from ..checkpoints.export import save_official_pickle

            save_official_pickle(
                self.snapshot_path(ext=".pkl"),
                {**nets, "augment_pipe": self.augment_pipe},
                extras={"progress": {"step": self.step, "kimg": self.kimg}},
            )
        state = {
            "step": self.step,
            "world": self.world,
            "options": json.dumps(self.options.to_dict()),
            "networks": json.dumps({k: _network_spec(v) for k, v in nets.items()}),
            "source": self.source,
            "pl_mean": self.loss.pl_mean.detach().cpu(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "opt_reg": self.opt_reg.state_dict() if self.opt_reg is not None else None,
            "regularizer": self.regularizer.state_dict() if self.regularizer is not None else None,
            "regularizer_config": json.dumps(getattr(self.regularizer, "config", None)),
            "augment_p": self.augment_pipe.p.detach().cpu() if self.augment_pipe is not None else None,
            "ada": json.dumps(self.ada.state_dict()) if self.ada is not None else None,
            **{k: {n: t.detach().cpu() for n, t in v.state_dict().items()} for k, v in nets.items()},
            **{f"rng_{r}": rng for r, rng in enumerate(rngs)},
        }
        save_torch(os.path.join(self.out_dir, STATE_FILE), state)

    def _gather_rng(self):
        mine = {
            "cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
        }
        if self.world == 1:
            return [mine]
        out = [None] * self.world
        torch.distributed.all_gather_object(out, mine)
        return out

    def _columns(self):
        extra = list(self.regularizer.log_keys) if self.regularizer is not None else []
        return list(BASE_COLUMNS) + ["reg_weight"] + extra

    def _log(self, sec_per_step):
        stats, self._stats = self._stats, {}
        if self._metrics is None:  # not rank 0
            return
        row = {"step": self.step, "kimg": round(self.kimg, 4), "sec_per_step": round(sec_per_step, 4)}
        for k, v in stats.items():
            row[k] = float(v[-1] if k in LAST_VALUE_COLUMNS else np.mean(v))
        self._metrics.write(row)
        tb = self._tensorboard()
        if tb is not None:
            for k, v in row.items():
                if k != "step":
                    tb.add_scalar(k, v, self.step)

    def _tensorboard(self):
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # TensorBoard is optional
                self._tb = False
                return None
            self._tb = SummaryWriter(os.path.join(self.out_dir, "tensorboard"))
        return self._tb or None


def _check_evaluators(evaluators, options, out_dir):
    """`evaluators` as a dict {name: callable}; options.metrics set to their names, or checked against them.

    Evaluators with `settings` (a JSON-able dict, e.g. `latentlab.metrics.training.TrainingEvaluators`) have them
    recorded as options.metrics_settings, or checked against those of the run being resumed; their `data` (the
    real images, which may move between sessions) is recorded as options.metrics_data.
    """
    if evaluators is not None and not isinstance(evaluators, dict):
        raise ConfigError(f"evaluators must be a dict of name -> callable, got {type(evaluators).__name__}")
    settings = getattr(evaluators, "settings", None)
    data = getattr(evaluators, "data", None)
    evaluators = dict(evaluators or {})
    for name, fn in evaluators.items():
        if not isinstance(name, str) or not name or not callable(fn):
            raise ConfigError(f"evaluators must map metric names to callables, got {name!r}: {fn!r:.80}")
    names = list(evaluators)
    if options.metrics is None:
        options.metrics = names
    elif list(options.metrics) != names:
        if not names:
            raise ConfigError(
                f"the run evaluates the metrics {','.join(options.metrics)}: resume it with evaluators of those "
                "names (the same --metrics)"
            )
        raise ConfigError(f"metrics {list(options.metrics)} do not match the evaluators given ({names})")
    if settings is not None:
        settings = json.loads(json.dumps(settings))  # as the run records it
        if options.metrics_settings is None:
            options.metrics_settings = settings
        elif options.metrics_settings != settings:
            stored = options.metrics_settings
            k = next(k for k in sorted(set(stored) | set(settings)) if stored.get(k) != settings.get(k))
            raise ConfigError(
                f"{out_dir}: holds a run whose metrics use {k}={stored.get(k)!r}, not {settings.get(k)!r}; "
                "use another --out folder"
            )
    if data is not None:
        options.metrics_data = os.fspath(data)
    return evaluators


def read_state(out_dir, mmap=False):
    """The resume state in `out_dir` (weights-only load); ValueError naming the file if unreadable."""
    path = os.path.join(out_dir, STATE_FILE)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (OSError, RuntimeError, EOFError) as e:  # torch's messages run over several lines: the first one
        raise ConfigError(f"{path}: unreadable training state ({(str(e).splitlines() or [''])[0][:300]})") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: not a training state (holds a {type(state).__name__}, not a dict)")
    return state


def check_same_options(stored, given, out_dir):
    """ValueError naming the first setting that differs (resumable ones excepted)."""
    a, b = stored.to_dict(), given.to_dict()
    for k in a:
        if k in TrainingOptions.RESUMABLE_CHANGES:
            continue
        if a[k] != b[k] and b[k] is not None:  # None = 'automatic', which the stored run resolved
            raise ConfigError(f"{out_dir}: holds a run with {k}={a[k]!r}, not {b[k]!r}; use another --out folder")


def open_dataset(path, resolution, channels=3, xflip=False, use_labels=False, max_images=None):
    """The ImageDataset a Trainer expects (a thin alias kept for symmetry with the CLI)."""
    return ImageDataset(path, resolution, channels=channels, xflip=xflip, use_labels=use_labels, max_images=max_images)
