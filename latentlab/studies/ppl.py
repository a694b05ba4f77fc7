"""Perceptual path length (StyleGAN paper, section 4.1) as the official StyleGAN2-ADA metric computes it.

Pairs z0, z1 ~ N(0, I); sampling 'full' draws t ~ U[0, 1), 'end' uses t = 0. In Z the
two points slerp between the normalised z's at t and t + eps and are then mapped; in W
both z's are mapped first and lerped. No truncation; constant noise shared by the pair.
Images are optionally cropped to the face (c = H/8: rows 3c..7c, columns 2c..6c), box-
downsampled to 256 when larger, grey repeated to RGB, scaled from [-1, 1] to [0, 255];
the distance (LPIPS-VGG by default) divided by eps^2 is the path length of that pair.
Values below the 1st and above the 99th percentile are dropped before averaging.
"""
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

EPS = 1e-4


def slerp_unit(a, b, t):
    """Spherical interpolation between the directions of a and b, per-sample t [N, 1]; unit output."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    p = t * torch.acos(d)
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    out = a * torch.cos(p) + c * torch.sin(p)
    return out / out.norm(dim=-1, keepdim=True)


def prepare_images(img, crop=False):
    """[-1, 1] images -> [0, 255] RGB at <= 256 px, as the metric feeds them to the distance."""
    if crop:
        c = img.shape[2] // 8
        img = img[:, :, c * 3 : c * 7, c * 2 : c * 6]
    factor = img.shape[2] // 256
    if factor > 1:  # box filter by reshaping, as the official metric does
        n, ch, h, w = img.shape
        img = img.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=[3, 5])
    if img.shape[1] == 1:
        img = img.repeat(1, 3, 1, 1)
    return (img + 1) * (255 / 2)


class LPIPSDistance(torch.nn.Module):
    """LPIPS (VGG) between [0, 255] images via the `lpips` package.

    pretrained_backbone=False builds the VGG without ImageNet weights (no download;
    used by the tests): distances then differ from published PPL values.
    """

    def __init__(self, pretrained_backbone=True):
        super().__init__()
        import lpips

        self.net = lpips.LPIPS(net="vgg", pnet_rand=not pretrained_backbone, verbose=False).eval().requires_grad_(False)

    def forward(self, a, b):
        return self.net(a / 127.5 - 1, b / 127.5 - 1).reshape(-1)


@dataclass
class PPLResult:
    mean: float
    distances: np.ndarray  # every pair's path length, unfiltered
    kept: np.ndarray  # boolean mask: inside the [1st, 99th] percentile band
    seeds: np.ndarray  # pair index -> seed used to draw it
    extra: Any = None

    def histogram(self, bins=50):
        return np.histogram(self.distances[self.kept], bins=bins)


@torch.no_grad()
def pair_images(G, z0, z1, t, space="w", epsilon=EPS, noise_mode="const", c=None):
    """The two images at t and t + eps of each pair: ([N, C, H, W], [N, C, H, W])."""
    c = torch.zeros([len(z0), G.c_dim], device=z0.device) if c is None else c
    t = t.reshape(-1, 1)
    if space == "z":
        za, zb = slerp_unit(z0, z1, t), slerp_unit(z0, z1, t + epsilon)
        wa, wb = G.mapping(za, c), G.mapping(zb, c)
    elif space == "w":
        w0, w1 = G.mapping(z0, c), G.mapping(z1, c)
        tt = t.reshape(-1, 1, 1)
        wa, wb = torch.lerp(w0, w1, tt), torch.lerp(w0, w1, tt + epsilon)
    else:
        raise ValueError(f"space must be 'z' or 'w', got {space!r}")
    return G.synthesis(wa, noise_mode=noise_mode), G.synthesis(wb, noise_mode=noise_mode)


def _draw_pairs(indices, seed, z_dim, sampling, device):
    """z0, z1, t of the pairs `indices`; pair i always comes from RandomState(seed + i)."""
    draws = [np.random.RandomState(seed + i) for i in indices]
    z0 = torch.from_numpy(np.stack([r.randn(z_dim) for r in draws])).float().to(device)
    z1 = torch.from_numpy(np.stack([r.randn(z_dim) for r in draws])).float().to(device)
    t = torch.from_numpy(np.array([r.uniform() if sampling == "full" else 0.0 for r in draws])).float().to(device)
    return z0, z1, t


@torch.no_grad()
def extreme_pairs(G, result, k=8, space="w", sampling="full", seed=0, epsilon=EPS, device="cpu"):
    """uint8 images of the k lowest and k highest path-length pairs (re-rendered from their seeds).

    Returns {'lowest': [k, 2, H, W, C], 'highest': [k, 2, H, W, C]}, the two images of each pair side by side.
    """
    from ..utils.images import to_uint8

    order = np.argsort(result.distances)
    out = {}
    for name, idx in (("lowest", order[:k]), ("highest", order[::-1][:k])):
        z0, z1, t = _draw_pairs([int(i) for i in idx], seed, G.z_dim, sampling, device)
        a, b = pair_images(G, z0, z1, t, space, epsilon)
        out[name] = np.stack([to_uint8(a), to_uint8(b)], axis=1)
    return out


@torch.no_grad()
def perceptual_path_length(G, num_samples=100_000, space="w", sampling="full", crop=False, epsilon=EPS,
                           distance=None, batch_size=16, seed=0, device="cpu", progress=None):
    """PPL of generator G. `distance`: callable ([N,3,H,W] in [0,255], same) -> [N]; LPIPS-VGG by default.

    Pair i is drawn from RandomState(seed + i) (z0, z1, then t), so results do not
    depend on the batch size; under torchrun (an initialised process group) rank r
    measures the pairs i % world_size == r and every rank gets the gathered result.
    """
    if sampling not in ("full", "end"):
        raise ValueError(f"sampling must be 'full' or 'end', got {sampling!r}")
    from .parallel import gather_rows, rank_items

    distance = distance or LPIPSDistance().to(device)
    mine = rank_items(num_samples)  # under torchrun each rank measures its share of the pairs
    local = np.empty(len(mine))
    for k in range(0, len(mine), batch_size):
        idx = mine[k : k + batch_size]
        z0, z1, t = _draw_pairs(idx, seed, G.z_dim, sampling, device)
        a, b = pair_images(G, z0, z1, t, space, epsilon)
        d = distance(prepare_images(a, crop), prepare_images(b, crop))
        local[k : k + len(idx)] = torch.as_tensor(d).double().cpu().numpy() / epsilon**2
        if progress is not None:
            progress.update(len(idx))
    out = gather_rows(mine, local, num_samples)
    lo = np.percentile(out, 1, method="lower")
    hi = np.percentile(out, 99, method="higher")
    kept = (out >= lo) & (out <= hi)
    return PPLResult(mean=float(out[kept].mean()), distances=out, kept=kept, seeds=np.arange(seed, seed + num_samples))
