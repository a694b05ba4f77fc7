"""Optimisation-based projection of images into W or W+, following the StyleGAN2-ADA projector.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..latents.codes import LatentCodes
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


# ---- the projector ---------------------------------------------------------------------------
@dataclass
class ProjectionResult:
    codes: LatentCodes  # w [N, w_dim] or w+ [N, num_ws, w_dim]
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


def project(
    G: AnyGenerator,
    target: torch.Tensor,
    num_steps: int = 1000,
    *,
    space: str = "w",
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
    device: Union[torch.device, str] = "cpu",
    progress: Any = None,
) -> ProjectionResult:
    """Project target images [N, C, H, W] (float in [-1, 1], or uint8 in [0, 255]) into `space` ('w' or 'w+').

    distance(synth, target) -> [N] on [0, 255] images (after the 256-px area downsampling); default:
    LPIPS-VGG (`default_distance`; pretrained_backbone=False: an untrained VGG, for offline tests
    only). pixel_weight adds pixel_weight * mean squared error on [-1, 1] images. `seed` fixes the
    initial noise maps and the w noise (drawn on the CPU, so the same on every device). `names`:
    the targets' names, stored in the codes' meta. `progress`: a tqdm-like bar, updated once per step.
    """
    if space not in ("w", "w+"):
        raise ConfigError(f"space must be 'w' or 'w+', got {space!r} (S-space projection is not implemented yet)")
    if num_steps < 1:
        raise ConfigError(f"num_steps must be at least 1, got {num_steps}")
    if target.ndim != 4:
        raise ConfigError(f"targets must be [N, C, H, W], got shape {tuple(target.shape)}")
    want = (G.img_channels, G.img_resolution, G.img_resolution)
    if tuple(target.shape[1:]) != want:
        raise ConfigError(f"targets of shape {tuple(target.shape[1:])} do not fit this generator ({want}; C, H, W)")
    if names is not None and len(names) != len(target):
        raise ConfigError(f"{len(names)} names for {len(target)} targets")
    settings = dict(
        num_steps=num_steps,
        space=space,
        distance="lpips-vgg" if distance is None else getattr(distance, "__name__", "custom"),
        pretrained_backbone=pretrained_backbone,
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
    dist_fn = distance if distance is not None else default_distance(pretrained_backbone)
    model_id = model_hash(G)
    n_img = len(target)
    target = target.to(device)
    target_255 = _downsample(_to_255(target))
    target_pm1 = _to_255(target) / 127.5 - 1

    w_avg, w_std = w_stats(G, w_avg_samples, device)
    gen = torch.Generator().manual_seed(int(seed))
    if space == "w":
        w_opt = w_avg.to(device).repeat(n_img, 1)
    else:
        w_opt = w_avg.to(device).repeat(n_img, G.num_ws, 1)
    w_opt.requires_grad_(True)
    noise = [
        torch.randn([n_img, 1, r, r], generator=gen).to(device).requires_grad_(True)
        for _, r in noise_layers(G.synthesis)
    ]
    opt = torch.optim.Adam([w_opt, *noise], lr=initial_lr, betas=(0.9, 0.999))

    def synthesize(ws):
        if space == "w":
            ws = ws.unsqueeze(1).repeat(1, G.num_ws, 1)
        with noise_override(G.synthesis, noise):
            return G.synthesis(ws, noise_mode="const")

    flags = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)  # gradients go to w and the noise only
    try:
        for step in range(num_steps):
            t = step / num_steps
            for group in opt.param_groups:
                group["lr"] = lr_at(t, initial_lr, lr_rampdown, lr_rampup)
            scale = w_noise_scale(t, w_std, initial_noise_factor, noise_ramp)
            w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * scale
            synth = synthesize(w_opt + w_noise)
            loss = dist_fn(_downsample((synth + 1) * 127.5), target_255).sum()
            if noise_regularize_weight:
                loss = loss + noise_regularize_weight * noise_regularization(noise).sum()
            if pixel_weight:
                loss = loss + pixel_weight * (synth - target_pm1).square().flatten(1).mean(1).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            renormalize_noise_(noise)
            if progress is not None:
                progress.update(1)
        with torch.no_grad():
            images = synthesize(w_opt)
            final_distance = dist_fn(_downsample((images + 1) * 127.5), target_255)
    finally:
        for p, flag in zip(G.parameters(), flags):
            p.requires_grad_(flag)

    a = ((images.double() + 1) / 2).clamp(0, 1)
    b = ((target_pm1.double() + 1) / 2).clamp(0, 1)
    mse = (a - b).square().flatten(1).mean(1)
    metrics = {
        "distance": final_distance.detach().cpu().double().numpy(),
        "mse": mse.cpu().double().numpy(),
        "psnr": (10 * torch.log10(1 / mse.clamp_min(1e-12))).cpu().double().numpy(),
        "ssim": ssim(a, b).cpu().double().numpy(),
    }
    meta: Dict[str, Any] = {"projector": settings}
    if names is not None:
        meta["targets"] = [str(n) for n in names]
    codes = LatentCodes(w_opt.detach(), space, model_id=model_id, meta=meta)
    return ProjectionResult(codes, [n.detach() for n in noise], images.detach(), metrics, settings)
