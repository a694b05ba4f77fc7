"""Training GH-Feat's hierarchical encoder with the generator frozen as a learned loss.

Losses (x: a batch of images in [-1, 1], y = E(x) = y_avg + delta_y its S codes, G(y) the render):

    L_E = ||x - G(E(x))||^2 - lambda1 E[D(G(E(x)))] + lambda2 ||F(x) - F(G(E(x)))||^2 + lambda3 L_reg
    L_D = E[D(G(E(x)))] - E[D(x)] + lambda4 E[||grad_x D(x)||^2]

with lambda1 = 0.1 (`lambda_adv`), lambda2 = 5e-5 (`lambda_feat`), lambda3 = 5e-4 (`lambda_reg`),
lambda4 = 5 (`lambda_gp`). How each norm is reduced (the paper writes squared norms; the official
code decides):
- pixel term: the mean over pixels and channels (and images) of the squared difference on [-1, 1]
  images, as the official `tf.reduce_mean(tf.square(fake_X - reals))`;
- feature term: the mean over every feature element of the squared difference, as the official
  `feature_scale * tf.reduce_mean(...)`;
- L_reg = sum over layers of ||delta_y||^2: the sum over every S channel of delta_y^2 per image,
  averaged over the images (the literal squared norm; the official code has no such term);
- gradient penalty: per image the sum over pixels of the squared gradient (`train.losses.r1_penalty`),
  averaged over the images, as the official R1 term (whose weight r1_gamma / 2 = 5 is lambda4); every
  step as published, or with `gp_every` = k only every k-th D step with weight k * lambda4 (StyleGAN2's
  lazy regularisation: the double backward pass is most of a D step's cost on a CPU).
`gan_loss='linear'` (default) is the formula above, the paper's; 'logistic' is the official code's:
softplus(-D(G(E(x)))) for E and softplus(D(G(E(x)))) + softplus(-D(x)) for D.

F (`VGG16Features`): VGG16's conv4_3 output (after its ReLU; the layer Keras calls block4_conv3, which
the official code uses), images resized (nearest neighbour, as the official code) to `input_size`
(256 as published; less for small models, to save time). Weights: torchvision's ImageNet VGG16
('torchvision', downloaded once into torch hub's cache) or untrained and seeded (None: offline runs;
the term then compares random features). The official F is Keras' VGG16 (Caffe weights, BGR input
with the mean subtracted); torchvision's takes ImageNet-normalised RGB, so feature magnitudes differ
and lambda2 is not calibrated for it: `lambda_feat` is a parameter. For the embedded toyfaces model, which
has no ImageNet network offline, F can be its attribute classifier's stages (`ClassifierStageFeatures`,
feature_net='toyfaces'): the term then equals the projector's toyfaces distance.

The generator is frozen: requires_grad False, in eval mode, constant noise; gradients reach E only
through G's forward pass. D's parameters get gradients only from L_D (they are frozen during the E
step). One step = an E update, then a D update on the same images, whose fakes are the E step's
reconstructions (detached; the official code renders them again with the updated E). Adam with
betas (0, 0.99) for both, learning rate lr * lr_decay^(step / decay_every) (continuous exponential
decay as the official `tf.train.exponential_decay(..., staircase=False)`; the official run decays over
a quarter of its steps). lambda_adv = 0 trains without D (no D steps).

Data: each batch holds round(batch_size * gen_fraction) images the generator renders from fresh z
(constant noise) and the rest from an image folder/zip (`latentlab.train.loop.open_dataset`, drawn by
position with `train.dataset.PositionSampler`: exact on resume). All randomness comes from the
trainer's own seeded generator (z drawn on the CPU: the same on every device).

Files in `out/`: `encoder.safetensors` (`save_encoder`: what `latentlab encode` and `latentlab features`
read), `state.pt` (E, D, both optimisers, the RNG, step and data position; torch.load(weights_only=True)),
both written atomically at every snapshot, and `metrics.csv`. Rerunning with the same settings resumes
from state.pt, and the result equals an uninterrupted run; other settings are refused. Ctrl-C or
SIGTERM writes a snapshot after the step under way. One process only: torchrun with WORLD_SIZE > 1 is refused.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models.identity import model_hash
from ..train.dataset import PositionSampler, load_batch
from ..train.interrupt import StopOnInterrupt, TrainingInterrupted
from ..train.losses import r1_penalty
from ..utils.atomic import remove_stale_temps, save_torch
from ..utils.metrics import MetricsCSV
from ..utils.validate import check_int, check_number, check_saved_state
from .encoder import HierarchicalEncoder, save_encoder

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

STATE_FILE = "state.pt"
ENCODER_FILE = "encoder.safetensors"
METRICS_FILE = "metrics.csv"
STATE_FORMAT = "latentlab-encoder-training"
STATE_VERSION = 1
GAN_LOSSES = ("linear", "logistic")
COLUMNS = ("step", "sec_per_step", "lr", "loss_E", "mse", "adv", "feat", "reg", "loss_D", "D_real", "D_fake", "gp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_CONV4_3 = 23  # torchvision's vgg16().features[:23] ends with conv4_3 and its ReLU
FEATURE_NETS = ("vgg16", "toyfaces")  # F by name (`train_encoder(feature_net=...)`)


# ---- F: VGG16 conv4_3 ----------------------------------------------------------------------------
class VGG16Features(nn.Module):
    """F(images in [-1, 1]) -> VGG16 conv4_3 features (after ReLU) [N, 512, S/8, S/8], frozen.

    weights: None (untrained, seeded with `seed`: offline), 'torchvision' (ImageNet weights, downloaded
    once; offline without the cached file: MissingWeights naming it) or a state-dict file of
    torchvision's vgg16. input_size: images are resized (nearest) to it first. Grey images are
    repeated to RGB. Gradients flow to the input, never into F.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, weights: Optional[str] = "torchvision", input_size: int = 256, seed: int = 0) -> None:
        super().__init__()
        import torchvision
        from torchvision.models.vgg import cfgs, make_layers

        from ..train.pretrained import torchvision_pretrained

        self.input_size = check_int("feature input_size", input_size, lo=8)
        if weights == "torchvision":
            full = torchvision_pretrained("vgg16", lambda: torchvision.models.vgg16(weights="DEFAULT"))
            net = full.features[:VGG_CONV4_3]
        else:
            with torch.random.fork_rng(devices=[]):  # torchvision's VGG initialisation, seeded
                torch.manual_seed(int(seed))
                net = make_layers(cfgs["D"], batch_norm=False)[:VGG_CONV4_3]  # VGG16 up to conv4_3 + ReLU
                for m in net.modules():
                    if isinstance(m, nn.Conv2d):
                        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                        nn.init.zeros_(m.bias)  # type: ignore[arg-type]
            if weights is not None:  # a state dict of torchvision's vgg16 (its 'features.N.*' up to conv4_3 are used)
                from ..checkpoints.state_dicts import load_state_dict_strict, read_state_dict

                state, _ = read_state_dict(weights, what="VGG16 state dict")
                keep = {
                    k[len("features.") :]: v
                    for k, v in state.items()
                    if k.startswith("features.") and k.split(".")[1].isdigit() and int(k.split(".")[1]) < VGG_CONV4_3
                }
                load_state_dict_strict(net, keep, os.fspath(weights), "VGG16's conv1_1 ... conv4_3")
        self.net = net.eval().requires_grad_(False)
        self.spec: Dict[str, Any] = {"name": "vgg16-conv4_3", "weights": "none" if weights is None else str(weights)}
        self.spec.update(input_size=self.input_size, seed=int(seed))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGG16Features:  # frozen: always in eval mode
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="nearest")
        x = ((x + 1) / 2 - self.mean) / self.std
        return self.net(x)


class ClassifierStageFeatures(nn.Module):
    """F from the embedded toyfaces classifier: its stage activations (`distances.ToyFacesStages`), each
    unit-normalised over channels at every position and scaled by sqrt(D / P_s) (D: F's output size, P_s: the
    stage's positions), flattened and concatenated. The scale makes `feature_loss`, a mean over F's elements,
    equal the projector's toyfaces distance (`distances.StageDistance`: per stage the channel-summed squared
    difference averaged over positions, summed over stages), so the term reads as that distance.

    For the embedded model, which has no ImageNet-trained network offline: a network that has learned to see
    these faces (pose, smile, glasses) gives the encoder the perceptual signal VGG16 gives it on photos."""

    def __init__(self, path: Optional[str] = None) -> None:
        super().__init__()
        from .. import defaults
        from .distances import ToyFacesStages

        path = path or defaults.classifier_path()
        self.stages = ToyFacesStages(path)
        self.spec: Dict[str, Any] = {"name": "toyfaces-stages", "classifier": os.path.basename(os.fspath(path))}
        self.eval()  # batch norm with its running statistics, whatever the caller does with train()

    def train(self, mode: bool = True) -> ClassifierStageFeatures:  # frozen: always in eval mode
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from .distances import unit_channels

        maps = self.stages(images)
        total = sum(m[0].numel() for m in maps)
        parts = [unit_channels(m).flatten(1) * (total / (m.shape[-2] * m.shape[-1])) ** 0.5 for m in maps]
        return torch.cat(parts, dim=1)


# ---- loss terms ----------------------------------------------------------------------------------
def pixel_loss(x: torch.Tensor, rec: torch.Tensor) -> torch.Tensor:
    """Mean over images, channels and pixels of (x - rec)^2 (images in [-1, 1])."""
    return (x - rec).square().mean()


def feature_loss(f_x: torch.Tensor, f_rec: torch.Tensor) -> torch.Tensor:
    """Mean over every element of (F(x) - F(rec))^2."""
    return (f_x - f_rec).square().mean()


def style_regularizer(delta: torch.Tensor) -> torch.Tensor:
    """L_reg: per image the sum over all S channels (all layers) of delta_y^2, averaged over images."""
    return delta.square().flatten(1).sum(1).mean()


def _check_gan_loss(gan_loss: str) -> str:
    if gan_loss not in GAN_LOSSES:
        raise ConfigError(f"gan_loss must be one of {', '.join(GAN_LOSSES)}, got {gan_loss!r}")
    return gan_loss


def encoder_loss(
    x: torch.Tensor,
    rec: torch.Tensor,
    delta: torch.Tensor,
    fake_scores: Optional[torch.Tensor] = None,
    f_x: Optional[torch.Tensor] = None,
    f_rec: Optional[torch.Tensor] = None,
    lambda_adv: float = 0.1,
    lambda_feat: float = 5e-5,
    lambda_reg: float = 5e-4,
    gan_loss: str = "linear",
) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """L_E and its terms (stats: loss_E, mse, adv, feat, reg; adv = the unweighted adversarial term).

    fake_scores: D(rec) [N] or [N, 1] (None: no adversarial term); f_x / f_rec: F's features (None: no
    feature term). 'linear': adv = -mean D(rec); 'logistic': adv = mean softplus(-D(rec))."""
    _check_gan_loss(gan_loss)
    mse = pixel_loss(x, rec)
    zero = mse.new_zeros([])
    adv = zero
    if fake_scores is not None:
        s = fake_scores.reshape(-1)
        adv = -s.mean() if gan_loss == "linear" else F.softplus(-s).mean()
    feat = feature_loss(f_x, f_rec) if f_x is not None and f_rec is not None else zero
    reg = style_regularizer(delta)
    loss = mse + lambda_adv * adv + lambda_feat * feat + lambda_reg * reg
    stats = {"loss_E": loss, "mse": mse, "adv": adv, "feat": feat, "reg": reg}
    return loss, {k: v.detach() for k, v in stats.items()}


def discriminator_loss(
    real_scores: torch.Tensor,
    fake_scores: torch.Tensor,
    grad_sq: torch.Tensor,
    lambda_gp: float = 5.0,
    gan_loss: str = "linear",
) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """L_D and its terms (stats: loss_D, D_real, D_fake, gp). grad_sq: per real image the summed squared
    gradient of D at it [N] (`r1_penalty`). 'linear': mean D(fake) - mean D(real) + lambda_gp mean grad_sq;
    'logistic': mean softplus(D(fake)) + mean softplus(-D(real)) + lambda_gp mean grad_sq."""
    _check_gan_loss(gan_loss)
    r, f = real_scores.reshape(-1), fake_scores.reshape(-1)
    gp = grad_sq.reshape(-1).mean()
    if gan_loss == "linear":
        adv = f.mean() - r.mean()
    else:
        adv = F.softplus(f).mean() + F.softplus(-r).mean()
    loss = adv + lambda_gp * gp
    stats = {"loss_D": loss, "D_real": r.mean(), "D_fake": f.mean(), "gp": gp}
    return loss, {k: v.detach() for k, v in stats.items()}


def learning_rate(step: int, lr: float = 1e-4, lr_decay: float = 0.8, decay_every: int = 10000) -> float:
    """lr * lr_decay^(step / decay_every): continuous exponential decay (the official, staircase=False)."""
    return float(lr) * float(lr_decay) ** (int(step) / int(decay_every))


# ---- networks the trainer builds ---------------------------------------------------------------
def fresh_discriminator(G: AnyGenerator, seed: int = 0) -> nn.Module:
    """A new StyleGAN2 discriminator of G's resolution and channels (G's channel_base / channel_max when it
    has them), unconditional and in float32, seeded, for generators whose checkpoint holds no D."""
    from ..train.runs import new_discriminator

    return new_discriminator(G, seed=seed, c_dim=0, match_precision=False)


def _mbstd_group(D: nn.Module) -> Optional[int]:
    """The minibatch-stddev group size of a StyleGAN2 (D.b4.mbstd) or StyleGAN v1 (D.mbstd) discriminator."""
    mbstd = getattr(getattr(D, "b4", None), "mbstd", None) or getattr(D, "mbstd", None)
    return getattr(mbstd, "group_size", None) if mbstd is not None else None


# ---- the trainer -------------------------------------------------------------------------------
class EncoderTrainer:
    """Trains a HierarchicalEncoder E for a frozen generator G (and its D); see the module docstring.

    `fit(steps, out)` trains up to `steps` steps in total; `resume(out)` restores out/state.pt.
    """

    def __init__(
        self,
        G: AnyGenerator,
        encoder: HierarchicalEncoder,
        D: Optional[nn.Module] = None,
        dataset: Any = None,
        *,
        gen_fraction: Optional[float] = None,
        batch_size: int = 8,
        lr: float = 1e-4,
        betas: Sequence[float] = (0.0, 0.99),
        lr_decay: float = 0.8,
        decay_every: int = 10000,
        lambda_adv: float = 0.1,
        lambda_feat: float = 5e-5,
        lambda_reg: float = 5e-4,
        lambda_gp: float = 5.0,
        gp_every: int = 1,
        gan_loss: str = "linear",
        features: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        seed: int = 0,
        device: Union[torch.device, str, None] = None,
        d_source: str = "given",
    ) -> None:
        if getattr(G, "c_dim", 0):
            raise ConfigError("encoder training supports unconditional generators only (c_dim > 0)")
        self.device = torch.device(device) if device is not None else next(G.parameters()).device
        self.G = G.to(self.device).eval().requires_grad_(False)  # frozen: a learned loss
        self.E = encoder.to(self.device)
        from .encoder import check_encoder_for

        check_encoder_for(self.E, G)
        self.batch_size = check_int("batch_size", batch_size, lo=1)
        self.lambda_adv = check_number("lambda_adv", lambda_adv, lo=0)
        self.lambda_feat = check_number("lambda_feat", lambda_feat, lo=0)
        self.lambda_reg = check_number("lambda_reg", lambda_reg, lo=0)
        self.lambda_gp = check_number("lambda_gp", lambda_gp, lo=0)
        self.gp_every = check_int("gp_every", gp_every, lo=1)
        self.gan_loss = _check_gan_loss(gan_loss)
        self.lr = check_number("lr", lr, lo=0, lo_open=True)
        self.betas = tuple(check_number("beta", b, 0, 1) for b in betas)
        self.lr_decay = check_number("lr_decay", lr_decay, 0, 1, lo_open=True)
        self.decay_every = check_int("decay_every", decay_every, lo=1)
        self.seed = check_int("seed", seed)
        if gen_fraction is None:
            gen_fraction = 0.0 if dataset is not None else 1.0
        self.gen_fraction = check_number("gen_fraction", gen_fraction, 0, 1)
        if dataset is None and self.gen_fraction < 1:
            raise ConfigError("without a dataset (--data) every image comes from the generator: gen_fraction must be 1")
        self.n_gen = int(round(self.batch_size * self.gen_fraction))
        self.n_data = self.batch_size - self.n_gen
        self.dataset = dataset if self.n_data > 0 else None
        if self.dataset is not None:
            if (self.dataset.resolution, self.dataset.channels) != (G.img_resolution, G.img_channels):
                r, c = self.dataset.resolution, self.dataset.channels
                raise ConfigError(
                    f"the dataset gives {r}x{r} px images with {c} channel(s), the generator makes "
                    f"{G.img_resolution}x{G.img_resolution} px with {G.img_channels}"
                )
            if len(self.dataset) < 1:
                raise ConfigError("the dataset holds no images")
        self.features = features
        self.D: Optional[nn.Module] = None
        if self.lambda_adv > 0:
            if D is None:
                raise ConfigError("lambda_adv > 0 needs a discriminator")
            d_shape = (getattr(D, "img_resolution", None), getattr(D, "img_channels", None))
            d_labels: Any = getattr(D, "c_dim", 0)
            if d_shape != (G.img_resolution, G.img_channels) or d_labels:
                raise ConfigError("the discriminator does not fit the generator (resolution, channels or labels)")
            group = _mbstd_group(D)
            if group and self.batch_size % min(group, self.batch_size):
                raise ConfigError(
                    f"batch size {self.batch_size} is not a multiple of the discriminator's minibatch-std group "
                    f"{group}; use a multiple of {group}"
                )
            self.D = D.to(self.device).train().requires_grad_(False)
        self.opt_E = torch.optim.Adam(self.E.parameters(), lr=self.lr, betas=self.betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=self.lr, betas=self.betas) if self.D is not None else None
        self.rng = torch.Generator().manual_seed(2 * self.seed + 1)
        self.sampler = PositionSampler(len(self.dataset), seed=self.seed) if self.dataset is not None else None
        self.data_pos = 0
        self.step_ = 0
        self.last_metrics: Dict[str, float] = {}
        self.config: Dict[str, Any] = dict(
            model=model_hash(G),
            encoder=self.E.init_kwargs,
            batch_size=self.batch_size,
            gen_fraction=self.gen_fraction,
            data_images=len(self.dataset) if self.dataset is not None else 0,
            lr=self.lr,
            betas=list(self.betas),
            lr_decay=self.lr_decay,
            decay_every=self.decay_every,
            lambda_adv=self.lambda_adv,
            lambda_feat=self.lambda_feat,
            lambda_reg=self.lambda_reg,
            lambda_gp=self.lambda_gp,
            gp_every=self.gp_every,
            gan_loss=self.gan_loss,
            features=getattr(features, "spec", None if features is None else "custom"),
            discriminator=d_source if self.D is not None else None,
            seed=self.seed,
        )

    def set_features(self, features: Optional[Callable[[torch.Tensor], torch.Tensor]]) -> None:
        """Use `features` as F (recorded in the settings a resume compares: its `spec`, else 'custom')."""
        self.features = features
        self.config["features"] = getattr(features, "spec", None if features is None else "custom")

    # ---- one step -----------------------------------------------------------------------------
    def batch(self) -> torch.Tensor:
        """The next training images [batch_size, C, R, R] in [-1, 1]: dataset images, then generator renders."""
        parts = []
        if self.n_data:
            assert self.dataset is not None and self.sampler is not None
            x, _ = load_batch(self.dataset, self.sampler, self.data_pos, self.n_data, device=self.device)
            self.data_pos += self.n_data
            parts.append(x)
        if self.n_gen:
            z = torch.randn([self.n_gen, self.G.z_dim], generator=self.rng).to(self.device)
            with torch.no_grad():
                ws = self.G.mapping(z, torch.zeros([self.n_gen, 0], device=self.device))
                parts.append(self.G.synthesis(ws, noise_mode="const").float())
        return torch.cat(parts)

    def step(self) -> Dict[str, float]:
        """One E update and one D update; returns this step's metrics (floats)."""
        t0 = time.perf_counter()
        lr = learning_rate(self.step_, self.lr, self.lr_decay, self.decay_every)
        for opt in (self.opt_E, self.opt_D):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = lr
        x = self.batch()
        E, G, D = self.E, self.G, self.D

        # E step: D frozen, G frozen; gradients reach E through G's forward pass.
        E.train()
        delta = E.delta(x)
        rec = G.synthesis(styles=E.y_avg + delta, noise_mode="const")
        fake_scores = D(rec) if D is not None else None
        f_x = f_rec = None
        if self.features is not None and self.lambda_feat > 0:
            with torch.no_grad():
                f_x = self.features(x)
            f_rec = self.features(rec)
        loss, stats = encoder_loss(
            x, rec, delta, fake_scores, f_x, f_rec, self.lambda_adv, self.lambda_feat, self.lambda_reg, self.gan_loss
        )
        self.opt_E.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_E.step()

        # D step on the same reals and the E step's reconstructions.
        if D is not None and self.opt_D is not None:
            D.requires_grad_(True)
            try:
                with_gp = self.step_ % self.gp_every == 0 and self.lambda_gp > 0  # every step by default
                real = x.detach().requires_grad_(with_gp)
                real_scores = D(real)
                grad_sq = r1_penalty(real_scores, real) if with_gp else real_scores.new_zeros([len(real)])
                loss_d, d_stats = discriminator_loss(
                    real_scores, D(rec.detach()), grad_sq, self.lambda_gp * self.gp_every, self.gan_loss
                )
                self.opt_D.zero_grad(set_to_none=True)
                loss_d.backward()
                self.opt_D.step()
            finally:
                D.requires_grad_(False)
            stats.update(d_stats)
        self.step_ += 1
        m = {k: float(v) for k, v in stats.items()}
        m.update(lr=lr, sec_per_step=time.perf_counter() - t0)
        self.last_metrics = m
        return m

    # ---- the loop -----------------------------------------------------------------------------
    def fit(
        self,
        steps: int,
        out: Optional[str] = None,
        snapshot_every: int = 500,
        log_every: int = 10,
        progress: bool = True,
    ) -> EncoderTrainer:
        """Train until `steps` steps in total (a resumed trainer counts those done before).

        With `out`: metrics.csv every log_every steps; encoder.safetensors and state.pt every
        snapshot_every steps and at the end; Ctrl-C or SIGTERM (main thread) writes both after the step under
        way and raises `TrainingInterrupted`.
        """
        from ..utils.progress import progress_bar

        steps = check_int("steps", steps)
        snapshot_every = check_int("snapshot_every", snapshot_every, lo=1)
        log_every = check_int("log_every", log_every, lo=1)
        writer = MetricsCSV(os.path.join(out, METRICS_FILE), COLUMNS, self.step_) if out is not None else None
        try:
            stopper = StopOnInterrupt() if out is not None else nullcontext()
            with (
                progress_bar(
                    total=steps,
                    initial=min(self.step_, steps),
                    desc="encoder",
                    unit="step",
                    enabled=progress,
                    what="encoder training steps",
                    hint="use --steps to reduce",
                ) as bar,
                stopper as stop,
            ):
                while self.step_ < steps:
                    m = self.step()
                    bar.set_postfix_str(f"mse={m['mse']:.4g} reg={m['reg']:.3g}", refresh=False)
                    bar.update(1)
                    if writer is not None and (self.step_ % log_every == 0 or self.step_ == steps):
                        writer.write({"step": self.step_, **{c: f"{m[c]:.6g}" for c in COLUMNS[1:] if c in m}})
                    interrupted = stop is not None and stop.requested and self.step_ < steps
                    if out is not None and self.step_ < steps and (self.step_ % snapshot_every == 0 or interrupted):
                        self.save(out)
                    if interrupted:
                        assert out is not None and stop is not None
                        raise TrainingInterrupted(self.step_, os.path.join(out, STATE_FILE), signum=stop.signum)
        finally:
            if writer is not None:
                writer.close()
        if out is not None:
            self.save(out)
        return self

    # ---- snapshots ----------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "config": json.dumps(self.config, sort_keys=True),
            "step": self.step_,
            "data_pos": self.data_pos,
            "E": self.E.state_dict(),
            "D": self.D.state_dict() if self.D is not None else {},
            "opt_E": self.opt_E.state_dict(),
            "opt_D": self.opt_D.state_dict() if self.opt_D is not None else {},
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: Any, source: str = "the snapshot") -> EncoderTrainer:
        check_saved_state(state, STATE_FORMAT, STATE_VERSION, self.config, source, "encoder training state")
        self.E.load_state_dict(state["E"])
        if self.D is not None and self.opt_D is not None:
            self.D.load_state_dict(state["D"])
            self.opt_D.load_state_dict(state["opt_D"])
        self.opt_E.load_state_dict(state["opt_E"])
        self.rng.set_state(state["rng"])
        self.step_ = int(state["step"])
        self.data_pos = int(state["data_pos"])
        return self

    def save(self, out: str) -> str:
        """Write out/encoder.safetensors and out/state.pt, each atomically; returns the encoder's path."""
        path = save_encoder(
            self.E, os.path.join(out, ENCODER_FILE), info={"steps": self.step_, "model": self.config["model"]}
        )
        save_torch(os.path.join(out, STATE_FILE), self.state_dict())
        return path

    def resume(self, out: str) -> bool:
        """Restore out/state.pt if there is one; True when resumed. Refuses other settings (ConfigError)."""
        path = os.path.join(out, STATE_FILE)
        if not os.path.exists(path):
            return False
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a foreign or damaged file: one clear line
            raise ConfigError(f"cannot read the training state {path}: {e}") from None
        self.load_state_dict(state, source=path)
        return True


def default_architecture(G: AnyGenerator) -> Dict[str, int]:
    """The paper's ResNet-50 encoder (width 64, 512 pyramid channels) from 256 px up; below, a small one
    (ResNet-18, width 16, 64 pyramid channels: a few MB for a 64 px model)."""
    if G.img_resolution >= 256:
        return {"depth": 50, "width": 64, "fpn_channels": 512}
    return {"depth": 18, "width": 16, "fpn_channels": 64}


def train_encoder(
    G: AnyGenerator,
    out: str,
    steps: int,
    dataset: Any = None,
    D: Optional[nn.Module] = None,
    *,
    depth: Optional[int] = None,
    width: Optional[int] = None,
    fpn_channels: Optional[int] = None,
    stem_down: Optional[int] = None,
    feature_net: str = "vgg16",
    vgg_weights: Optional[str] = "torchvision",
    feature_size: int = 256,
    d_source: Optional[str] = None,
    snapshot_every: int = 500,
    log_every: int = 10,
    progress: bool = True,
    seed: int = 0,
    device: Union[torch.device, str, None] = None,
    **options: Any,
) -> EncoderTrainer:
    """Train (or resume, from out/state.pt) a GH-Feat encoder for G; returns the trainer after `steps` steps.

    dataset: an ImageDataset (`latentlab.train.loop.open_dataset`) or None (generator samples only).
    D: the checkpoint's discriminator (trained from its weights), or None (a fresh one, seeded).
    depth / width / fpn_channels: None = `default_architecture(G)`; stem_down: None = `for_generator`'s.
    feature_net: F, 'vgg16' (`VGG16Features`, the paper's) or 'toyfaces' (`ClassifierStageFeatures`, the
    embedded classifier's stages, offline); vgg_weights: VGG16's weights (None = untrained, offline);
    feature_size: VGG16's input size.
    options: EncoderTrainer's (batch_size, gen_fraction, lr, lambdas, gan_loss, ...). Writes out/ as the
    module docstring says.
    """
    from ..utils.distributed import env_ranks

    if env_ranks()[1] > 1:
        raise ConfigError(
            "encoder training runs in one process: torchrun with WORLD_SIZE > 1 is not supported "
            "(run it alone, on one GPU with --device cuda)"
        )
    if feature_net not in FEATURE_NETS:
        raise ConfigError(f"unknown feature network {feature_net!r}; choose from {', '.join(FEATURE_NETS)}")
    arch = default_architecture(G)
    for key, value in (("depth", depth), ("width", width), ("fpn_channels", fpn_channels)):
        if value is not None:
            arch[key] = int(value)
    seed = check_int("seed", seed)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
        torch.manual_seed(2 * seed)
        E = HierarchicalEncoder.for_generator(G, stem_down=stem_down, **arch)
    lambda_adv = options.get("lambda_adv", 0.1)
    if lambda_adv and D is None:
        D, d_source = fresh_discriminator(G, seed=2 * seed + 2), "fresh"
    dev = device if device is not None else next(G.parameters()).device
    trainer = EncoderTrainer(
        G,
        E,
        D,
        dataset,
        seed=seed,
        device=dev,
        d_source=d_source or ("checkpoint" if D is not None else "fresh"),
        **options,
    )
    if trainer.lambda_feat > 0:  # F after every setting is checked: it may need a download
        if feature_net == "toyfaces":
            if G.img_channels != 3:
                raise ConfigError("the toyfaces feature network takes RGB images; this generator draws grey ones")
            trainer.set_features(ClassifierStageFeatures().to(dev))
        else:
            trainer.set_features(VGG16Features(vgg_weights, input_size=feature_size, seed=2 * seed + 3).to(dev))
    os.makedirs(out, exist_ok=True)
    remove_stale_temps(out)  # left by a run killed mid-write
    if trainer.resume(out) and progress:
        print(f"resuming {out} at step {trainer.step_}", flush=True)
    trainer.fit(steps, out, snapshot_every=snapshot_every, log_every=log_every, progress=progress)
    return trainer
