"""Optimisation-based projection of images into W, W+ or S, following the StyleGAN2-ADA projector.

The procedure of NVlabs/stylegan2-ada-pytorch `projector.py`, every setting a parameter with the
published default: start from w_avg (10 000 z from RandomState(123), mapped); Adam (0.9, 0.999) on w
and on every noise buffer (initialised N(0, 1)); learning rate 0.1 with a linear ramp-up over the
first 5 % of the steps and a cosine ramp-down over the last 25 %; Gaussian noise of scale
w_std * 0.05 * max(0, 1 - t / 0.75)^2 added to w at each step; a perceptual distance between
synthesis and target (both in [0, 255], area-downsampled to 256 px when larger); the noise
regulariser (squared autocorrelation at shift 1 in x and y over a pyramid down to 8x8) with weight
1e5; every noise buffer renormalised to mean 0 / std 1 after each step; synthesis with noise_mode='const'.

Differences, on purpose:
- The default distance is the `lpips` package's LPIPS-VGG (`latentlab.studies.ppl.LPIPSDistance`:
  unit-normalised VGG16 features weighted by its learned linear layers and averaged over positions).
  The official projector uses NVIDIA's TorchScript VGG16 export and sums squared feature differences;
  the two measure the same kind of distance but not on the same scale, so the balance against the
  noise regulariser differs from the official run. Any callable distance(synth, target) -> [N] works.
- Batches: every target has its own w (or w+) and its own noise maps ([N, 1, R, R]); the loss is the
  sum over images, so an image's optimisation does not depend on the others in its batch.
- W+ (one w per layer) and an optional pixel MSE term (on [-1, 1] images, weight `pixel_weight`, 0 by
  default) as later projectors add.
- S (style space): the packed per-layer styles `G.synthesis.pack_styles(G.synthesis.compute_styles(ws))`
  are optimised directly and rendered with `G.synthesis(styles=...)`; the start is the styles of w_avg.
  The exploration noise is the W+ projector's noise seen through the affine layers: at progress t a draw
  eps [N, num_ws, w_dim] of std w_noise_scale(t, w_std) (exactly W+'s) is mapped to S by the linear part
  of every layer's affine map, styles(eps) - styles(0) (`s_noise`). So S is explored exactly as much,
  relative to the spread of its codes, as W and W+ are (each style channel is perturbed by about
  0.05 * sqrt(w_dim) times its own std across w samples when w is roughly isotropic), rather than by a
  per-channel 0.05 * std, which would explore sqrt(w_dim) times less than the published W setting.
- Starting codes: `init` (codes of this model in any space up to `space`, converted forward) and
  `init_noise` replace w_avg and the random initial noise maps (the hybrid encoder + projector).
- Generators without noise inputs (StyleGAN3) have no noise maps: the codes alone are optimised, and
  the noise regulariser has nothing to act on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..latents.codes import SPACES, LatentCodes
from ..models.identity import model_hash
from ..models.noise import noise_layers, noise_override

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---- schedules -------------------------------------------------------------------------------
def lr_at(t: float, initial_lr: float = 0.1, lr_rampdown: float = 0.25, lr_rampup: float = 0.05) -> float:
    """Learning rate at progress t = step / num_steps: cosine ramp-down over the last `lr_rampdown`
    of the run, linear ramp-up over the first `lr_rampup` (0 turns a ramp off)."""
    down = min(1.0, (1.0 - t) / lr_rampdown) if lr_rampdown > 0 else 1.0
    up = min(1.0, t / lr_rampup) if lr_rampup > 0 else 1.0
    return initial_lr * 0.5 * (1.0 - math.cos(math.pi * down)) * up


def w_noise_scale(t: float, w_std: float, initial_noise_factor: float = 0.05, noise_ramp: float = 0.75) -> float:
    """Std of the Gaussian noise added to w at progress t: w_std * factor * max(0, 1 - t / noise_ramp)^2."""
    return w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp) ** 2


# ---- noise maps ------------------------------------------------------------------------------
def noise_regularization(noise: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per image [N]: for every noise map [N, 1, R, R], summed over a pyramid that halves it (2x2
    average) down to 8x8, mean(n * roll(n, 1, x))^2 + mean(n * roll(n, 1, y))^2 (the means per image).

    Maps smaller than 8x8 contribute their own level only (as in the official code's loop)."""
    total: Optional[torch.Tensor] = None
    for n in noise:
        if n.ndim != 4:
            raise ConfigError(f"noise maps must be [N, 1, R, R], got {tuple(n.shape)}")
        while True:
            x = (n * torch.roll(n, shifts=1, dims=3)).mean(dim=(1, 2, 3)) ** 2
            y = (n * torch.roll(n, shifts=1, dims=2)).mean(dim=(1, 2, 3)) ** 2
            total = x + y if total is None else total + x + y
            if n.shape[-1] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    if total is None:
        raise ConfigError("no noise maps given")
    return total


@torch.no_grad()
def renormalize_noise_(noise: Sequence[torch.Tensor]) -> None:
    """In place: every image's map of every noise layer to mean 0 and (population) std 1."""
    for n in noise:
        mean = n.mean(dim=(1, 2, 3), keepdim=True)
        std = (n - mean).square().mean(dim=(1, 2, 3), keepdim=True).sqrt()
        n.sub_(mean).div_(std)


# ---- statistics of W -------------------------------------------------------------------------
@torch.no_grad()
def w_stats(
    G: AnyGenerator, samples: int = 10000, device: Union[torch.device, str] = "cpu"
) -> Tuple[torch.Tensor, float]:
    """(w_avg [w_dim], w_std) over `samples` z drawn with np.random.RandomState(123), mapped without
    truncation; w_std = sqrt(sum ||w - w_avg||^2 / samples) as in the official projector."""
    if samples < 1:
        raise ConfigError(f"w_avg_samples must be at least 1, got {samples}")
    if getattr(G, "c_dim", 0):
        raise ConfigError("projection of conditional generators is not implemented yet (c_dim > 0)")
    z = torch.from_numpy(np.random.RandomState(123).randn(samples, G.z_dim)).float()
    ws = []
    for chunk in z.split(1000):
        chunk = chunk.to(device)
        ws.append(G.mapping(chunk, torch.zeros([len(chunk), 0], device=device))[:, 0].double())
    w = torch.cat(ws)
    w_avg = w.mean(0)
    w_std = float(((w - w_avg).square().sum() / samples).sqrt())
    return w_avg.float(), w_std


# ---- S space -----------------------------------------------------------------------------------
def s_noise(G: AnyGenerator, eps: torch.Tensor) -> torch.Tensor:
    """Packed S perturbation [N, sum C] of a W+ perturbation eps [N, num_ws, w_dim]: every layer's affine
    map without its bias, styles(eps) - styles(0), so that styles(ws + eps) = styles(ws) + s_noise(G, eps)
    (the affine maps are linear plus a bias)."""
    syn = G.synthesis
    return syn.pack_styles(syn.compute_styles(eps)) - syn.pack_styles(syn.compute_styles(torch.zeros_like(eps)))


def styles_of(G: AnyGenerator, w: torch.Tensor) -> torch.Tensor:
    """Packed styles [N, sum C] of w [N, w_dim] (the same w at every layer)."""
    return G.synthesis.pack_styles(G.synthesis.compute_styles(w.unsqueeze(1).repeat(1, G.num_ws, 1)))


# ---- starting point --------------------------------------------------------------------------
def _start_codes(
    G: AnyGenerator, init: LatentCodes, space: str, n_img: int, model_id: str, device: Union[torch.device, str]
) -> torch.Tensor:
    """init's codes converted forward to `space`, on `device`, detached (ConfigError for other models,
    backward conversions, a count that differs from the targets')."""
    if init.model_id and init.model_id != model_id[: len(init.model_id)]:
        raise ConfigError(
            f"init: these codes belong to another model (id {init.model_id}, this one is "
            f"{model_id[: len(init.model_id)]})"
        )
    if len(init) != n_img:
        raise ConfigError(f"init: {len(init)} codes for {n_img} targets")
    if SPACES.index(init.space) > SPACES.index(space):
        raise ConfigError(
            f"init: cannot start a projection in {space!r} from {init.space!r} codes (codes convert forward "
            f"only, z -> w -> w+ -> s): project in {init.space!r} or a later space"
        )
    with torch.no_grad():
        codes = init.replace(data=init.data.to(device).float(), c=None).to(space, G)
    return codes.data.detach().clone()


def _start_noise(
    G: AnyGenerator, init_noise: Sequence[torch.Tensor], n_img: int, device: Union[torch.device, str]
) -> List[torch.Tensor]:
    layers = noise_layers(G.synthesis)
    if len(init_noise) != len(layers):
        raise ConfigError(f"init_noise: {len(init_noise)} noise maps for {len(layers)} noise layers")
    out = []
    for k, (n, (_, r)) in enumerate(zip(init_noise, layers)):
        if tuple(n.shape) != (n_img, 1, r, r):
            raise ConfigError(f"init_noise[{k}] must be [{n_img}, 1, {r}, {r}], got {tuple(n.shape)}")
        out.append(n.detach().to(device=device, dtype=torch.float32).clone())
    return out


# ---- the projector ---------------------------------------------------------------------------
@dataclass
class ProjectionResult:
    codes: LatentCodes  # w [N, w_dim], w+ [N, num_ws, w_dim] or s [N, sum C], carrying the noise maps
    noise: List[torch.Tensor]  # one [N, 1, R, R] per noise layer, in module order
    images: torch.Tensor  # final synthesis [N, C, H, W] in about [-1, 1]
    metrics: Dict[str, np.ndarray]  # per image: distance, mse, psnr, ssim
    settings: dict = field(default_factory=dict)


def _to_255(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.float()
    return (images.float() + 1) * 127.5


def _downsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=(256, 256), mode="area") if x.shape[-1] > 256 else x


def default_distance(pretrained_backbone: bool = True) -> Distance:
    """LPIPS-VGG of the `lpips` package on [0, 255] images (grey images repeated to RGB), per image [N]."""
    from ..studies.ppl import LPIPSDistance

    lp = LPIPSDistance(pretrained_backbone=pretrained_backbone)

    def distance(synth, target):
        if synth.shape[1] == 1:
            synth, target = synth.repeat(1, 3, 1, 1), target.repeat(1, 3, 1, 1)
        return lp.to(synth.device)(synth, target)

    return distance


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM per image [N] of images in [0, 1] (Gaussian window, 'valid' positions, per channel;
    the window shrinks to the image size for small images)."""
    window = min(window, a.shape[-1], a.shape[-2])
    x = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = (g / g.sum()).to(device=a.device, dtype=a.dtype)
    c = a.shape[1]
    k = (g[:, None] * g[None, :]).expand(c, 1, window, window)
    f = lambda t: F.conv2d(t, k, groups=c)  # noqa: E731
    mu_a, mu_b = f(a), f(b)
    var_a, var_b, cov = f(a * a) - mu_a**2, f(b * b) - mu_b**2, f(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


Snapshot = Callable[[int, torch.Tensor], None]


def pixel_metrics(images: torch.Tensor, targets_pm1: torch.Tensor) -> Dict[str, np.ndarray]:
    """Per image, on [0, 1] pixels (float64): 'mse', 'psnr' (10 log10(1 / mse)) and 'ssim', of renders and
    targets both in about [-1, 1]."""
    a = ((images.double() + 1) / 2).clamp(0, 1)
    b = ((targets_pm1.double() + 1) / 2).clamp(0, 1)
    mse = (a - b).square().flatten(1).mean(1)
    return {
        "mse": mse.cpu().numpy(),
        "psnr": (10 * torch.log10(1 / mse.clamp_min(1e-12))).cpu().numpy(),
        "ssim": ssim(a, b).cpu().numpy(),
    }


def project(
    G: AnyGenerator,
    target: torch.Tensor,
    num_steps: int = 1000,
    *,
    space: str = "w",
    init: Optional[LatentCodes] = None,
    init_noise: Optional[Sequence[torch.Tensor]] = None,
    distance: Optional[Distance] = None,
    pretrained_backbone: bool = True,
    pixel_weight: float = 0.0,
    noise_regularize_weight: float = 1e5,
    initial_lr: float = 0.1,
    lr_rampdown: float = 0.25,
    lr_rampup: float = 0.05,
    initial_noise_factor: float = 0.05,
    noise_ramp: float = 0.75,
    w_avg_samples: int = 10000,
    seed: int = 0,
    names: Optional[Sequence[str]] = None,
    snapshot_every: int = 0,
    on_snapshot: Optional[Snapshot] = None,
    device: Union[torch.device, str] = "cpu",
    progress: Any = None,
) -> ProjectionResult:
    """Project target images [N, C, H, W] (float in [-1, 1], or uint8 in [0, 255]) into `space`
    ('w', 'w+' or 's': the packed per-layer styles; see the module docstring for S's exploration noise).

    init: codes of this model (any space up to `space`: z, w, w+, s; converted forward) to start from
    instead of w_avg, one per target; init_noise: the noise maps to start from (one [N, 1, R, R] per
    noise layer, `latentlab.models.noise.noise_layers` order) instead of N(0, 1) draws; when not given,
    noise that `init` carries (`init.noise`, from a latents file) is used. distance(synth, target) -> [N]
    on [0, 255] images (after the 256-px area downsampling); default: LPIPS-VGG (`default_distance`;
    pretrained_backbone=False: an untrained VGG, for offline tests only). pixel_weight adds
    pixel_weight * mean squared error on [-1, 1] images. `seed` fixes the initial noise maps and the
    exploration noise (drawn on the CPU, so the same on every device). `names`: the targets' names,
    stored in the codes' meta. on_snapshot(step, images): called with the synthesis [N, C, H, W] of
    the current codes and noise (no exploration noise) after 0, snapshot_every, 2 * snapshot_every, ...
    steps and after the last step (step = num_steps); the optimisation video. `progress`: a tqdm-like
    bar, updated once per step.
    """
    if space not in ("w", "w+", "s"):
        raise ConfigError(f"space must be 'w', 'w+' or 's', got {space!r}")
    if num_steps < 1:
        raise ConfigError(f"num_steps must be at least 1, got {num_steps}")
    if target.ndim != 4:
        raise ConfigError(f"targets must be [N, C, H, W], got shape {tuple(target.shape)}")
    want = (G.img_channels, G.img_resolution, G.img_resolution)
    if tuple(target.shape[1:]) != want:
        raise ConfigError(f"targets of shape {tuple(target.shape[1:])} do not fit this generator ({want}; C, H, W)")
    if names is not None and len(names) != len(target):
        raise ConfigError(f"{len(names)} names for {len(target)} targets")
    if on_snapshot is not None and snapshot_every < 1:
        raise ConfigError(f"snapshot_every must be at least 1 with on_snapshot, got {snapshot_every}")
    if init_noise is None and init is not None:
        init_noise = getattr(init, "noise", None)
    settings = dict(
        num_steps=num_steps,
        space=space,
        init="w_avg" if init is None else f"given {init.space} codes",
        init_noise="random" if init_noise is None else "given",
        distance="lpips-vgg" if distance is None else getattr(distance, "__name__", "custom"),
        pretrained_backbone=pretrained_backbone if distance is None else None,  # a given distance decides
        pixel_weight=pixel_weight,
        noise_regularize_weight=noise_regularize_weight,
        initial_lr=initial_lr,
        lr_rampdown=lr_rampdown,
        lr_rampup=lr_rampup,
        initial_noise_factor=initial_noise_factor,
        noise_ramp=noise_ramp,
        w_avg_samples=w_avg_samples,
        seed=seed,
    )
    model_id = model_hash(G)
    n_img = len(target)
    start = None if init is None else _start_codes(G, init, space, n_img, model_id, device)
    noise_start = None if init_noise is None else _start_noise(G, init_noise, n_img, device)
    dist_fn = distance if distance is not None else default_distance(pretrained_backbone)
    target = target.to(device)
    target_255 = _downsample(_to_255(target))
    target_pm1 = _to_255(target) / 127.5 - 1

    w_avg, w_std = w_stats(G, w_avg_samples, device)
    w_avg = w_avg.to(device)
    gen = torch.Generator().manual_seed(int(seed))
    if start is not None:
        x_opt = start
    elif space == "w":
        x_opt = w_avg.repeat(n_img, 1)
    elif space == "w+":
        x_opt = w_avg.repeat(n_img, G.num_ws, 1)
    else:
        with torch.no_grad():
            x_opt = styles_of(G, w_avg[None]).repeat(n_img, 1)
    x_opt.requires_grad_(True)
    # drawn even when init_noise replaces them, so that the exploration noise of a seed stays the same
    noise = [torch.randn([n_img, 1, r, r], generator=gen).to(device) for _, r in noise_layers(G.synthesis)]
    noise = [n.requires_grad_(True) for n in (noise if noise_start is None else noise_start)]
    opt = torch.optim.Adam([x_opt, *noise], lr=initial_lr, betas=(0.9, 0.999))
    eps_shape = [n_img, G.w_dim] if space == "w" else [n_img, G.num_ws, G.w_dim]

    def synthesize(x):
        with noise_override(G.synthesis, noise):
            if space == "s":
                return G.synthesis(styles=x, noise_mode="const")
            if space == "w":
                x = x.unsqueeze(1).repeat(1, G.num_ws, 1)
            return G.synthesis(x, noise_mode="const")

    def snapshot(step, images=None):
        if on_snapshot is not None and (step % snapshot_every == 0 or step == num_steps):
            with torch.no_grad():
                on_snapshot(step, (synthesize(x_opt) if images is None else images).detach())

    flags = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)  # gradients go to the codes and the noise only
    try:
        snapshot(0)
        for step in range(num_steps):
            t = step / num_steps
            for group in opt.param_groups:
                group["lr"] = lr_at(t, initial_lr, lr_rampdown, lr_rampup)
            scale = w_noise_scale(t, w_std, initial_noise_factor, noise_ramp)
            eps = torch.randn(eps_shape, generator=gen).to(device) * scale
            if space == "s" and scale > 0:
                eps = s_noise(G, eps)
            synth = synthesize(x_opt + eps if scale > 0 else x_opt)
            loss = dist_fn(_downsample((synth + 1) * 127.5), target_255).sum()
            if noise_regularize_weight and noise:  # a generator without noise inputs (StyleGAN3) has no maps
                loss = loss + noise_regularize_weight * noise_regularization(noise).sum()
            if pixel_weight:
                loss = loss + pixel_weight * (synth - target_pm1).square().flatten(1).mean(1).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            renormalize_noise_(noise)
            if progress is not None:
                progress.update(1)
            if step + 1 < num_steps:
                snapshot(step + 1)
        with torch.no_grad():
            images = synthesize(x_opt)
            final_distance = dist_fn(_downsample((images + 1) * 127.5), target_255)
        snapshot(num_steps, images)
    finally:
        for p, flag in zip(G.parameters(), flags):
            p.requires_grad_(flag)

    metrics = {"distance": final_distance.detach().cpu().double().numpy(), **pixel_metrics(images, target_pm1)}
    meta: Dict[str, Any] = {"projector": settings}
    if names is not None:
        meta["targets"] = [str(n) for n in names]
    final_noise = [n.detach() for n in noise]
    codes = LatentCodes(x_opt.detach(), space, model_id=model_id, meta=meta, noise=final_noise)
    return ProjectionResult(codes, final_noise, images.detach(), metrics, settings)
