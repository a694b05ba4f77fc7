"""Perceptual path length (StyleGAN paper, section 4.1) as the official StyleGAN2-ADA metric computes it.

Pairs z0, z1 ~ N(0, I); sampling 'full' draws t ~ U[0, 1), 'end' uses t = 0. In Z the
two points slerp between the normalised z's at t and t + eps and are then mapped; in W
both z's are mapped first and lerped. Noise: the official sampler overwrites every noise
buffer with fresh N(0, 1) noise before each batch and renders with `noise_mode='const'`, so
the two images of a pair share one noise draw and different draws vary the noise; here each
pair gets its own draw (shared by its two images), so values do not depend on the batch size.
Conditional models: each pair's label comes from the dataset's labels (drawn uniformly, as
the official metric does) or, with labels='uniform', is a uniformly drawn one-hot class.
Images are optionally cropped to the face (c = H/8: rows 3c..7c, columns 2c..6c), then box-
downsampled by img_resolution // 256 (the factor comes from the generator's resolution, not
from the cropped size: a cropped 1024 px image becomes 128 px, as in the official code), grey
repeated to RGB, scaled from [-1, 1] to [0, 255]; the distance (LPIPS-VGG by default)
divided by eps^2 is the path length of that pair. Values below the 1st and above the 99th
percentile are dropped before averaging.

Deliberate differences, documented: the default distance is the `lpips` package's VGG
(the official metric uses NVIDIA's TorchScript export of the same network); pair i draws
z0, z1, t, its label and its noise seed from RandomState(seed + i), not from one global
stream. Additions: truncation (psi, cutoff applied by the mapping), and pairs of given codes
(`latents`: a LatentCodes in z, w, w+ or s; pair i joins two distinct codes drawn by its
RandomState, interpolated in the codes' own space).
"""

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..models.noise import draw_noise, noise_override

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


def prepare_images(img, crop=False, resolution=None):
    """[-1, 1] images -> [0, 255] RGB as the metric feeds them to the distance.

    resolution: the generator's img_resolution, which sets the box-downsampling factor
    (resolution // 256) as in the official metric, also after a crop; default: the image's size.
    """
    resolution = img.shape[2] if resolution is None else int(resolution)
    if crop:
        if img.shape[2] != img.shape[3]:
            raise ConfigError(f"--crop needs square images, got {img.shape[2]}x{img.shape[3]}")
        c = img.shape[2] // 8
        img = img[:, :, c * 3 : c * 7, c * 2 : c * 6]
    factor = resolution // 256
    if factor > 1:  # box filter by reshaping, as the official metric does
        n, ch, h, w = img.shape
        img = img.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=[3, 5])
    if img.shape[1] == 1:
        img = img.repeat(1, 3, 1, 1)
    return (img + 1) * (255 / 2)


VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"


class LPIPSDistance(torch.nn.Module):
    """LPIPS (VGG) between [0, 255] images via the `lpips` package.

    pretrained_backbone=False builds the VGG without ImageNet weights (no download;
    used by the tests): distances then differ from published PPL values.
    Without internet and without torchvision's cached VGG16 file, raises MissingWeights
    naming the file to download and where to put it.
    """

    def __init__(self, pretrained_backbone=True):
        super().__init__()
        import warnings

        import lpips

        from ..errors import MissingWeights

        try:
            with warnings.catch_warnings():  # torchvision's 'pretrained' deprecation notices are lpips' business
                warnings.simplefilter("ignore")
                net = lpips.LPIPS(net="vgg", pnet_rand=not pretrained_backbone, verbose=False)
        except OSError as e:  # urllib's URLError and socket errors are OSErrors
            folder = os.path.join(torch.hub.get_dir(), "checkpoints")
            raise MissingWeights(
                f"LPIPS-VGG needs torchvision's ImageNet VGG16 weights, which could not be downloaded "
                f"({getattr(e, 'reason', e)}): put {VGG16_URL} into {folder}/ (or use an untrained "
                "backbone for an offline smoke run: --random-backbone)"
            ) from None
        self.net = net.eval().requires_grad_(False)

    def forward(self, a, b):
        return self.net(a / 127.5 - 1, b / 127.5 - 1).reshape(-1)


def kept_mask(distances: np.ndarray) -> np.ndarray:
    """The official filter: True inside the [1st, 99th] percentile band ('lower' / 'higher' percentiles)."""
    lo = np.percentile(distances, 1, method="lower")
    hi = np.percentile(distances, 99, method="higher")
    return (distances >= lo) & (distances <= hi)


@dataclass
class PPLResult:
    mean: float
    distances: np.ndarray  # every pair's path length, unfiltered
    kept: np.ndarray  # boolean mask: inside the [1st, 99th] percentile band
    seeds: np.ndarray  # pair index -> seed of the RandomState that drew it
    settings: dict = field(default_factory=dict)  # what was measured (space, sampling, crop, psi, labels, ...)
    extra: Any = None

    def histogram(self, bins=50):
        return np.histogram(self.distances[self.kept], bins=bins)

    def band(self, fraction=0.1, which="lowest"):
        """Pair indices in the lowest / highest `fraction` of path lengths, sorted by path length."""
        if not 0 < fraction <= 1:
            raise ConfigError(f"band fraction must be in (0, 1], got {fraction}")
        return self.ranked(which)[: max(1, int(round(len(self.distances) * fraction)))]

    def ranked(self, which="lowest"):
        """Every pair index by path length, 'lowest' or 'highest' first: one stable ascending sort, reversed for
        'highest' (so tied pairs come lowest index first in 'lowest', highest index first in 'highest')."""
        if which not in ("lowest", "highest"):
            raise ConfigError(f"which must be 'lowest' or 'highest', got {which!r}")
        order = np.argsort(self.distances, kind="stable")
        return order if which == "lowest" else order[::-1]


# ---- pairs ------------------------------------------------------------------------------------
class Labels:
    """Where conditional labels come from: None (unconditional), 'uniform' (one-hot classes) or a table [M, c_dim]."""

    def __init__(self, G, labels=None):
        self.c_dim = int(getattr(G, "c_dim", 0) or 0)
        self.kind, self.table = "none", None
        if self.c_dim == 0:
            if labels is not None:
                raise ConfigError("labels were given but the generator is unconditional (c_dim 0)")
            return
        if labels is None or (isinstance(labels, str) and labels == "uniform"):
            self.kind = "uniform"
            return
        table = np.asarray(labels, dtype=np.float32)
        if table.ndim != 2 or table.shape[1] != self.c_dim or len(table) == 0:
            raise ConfigError(f"label table must be [M, {self.c_dim}] for this generator, got shape {table.shape}")
        self.kind, self.table = "table", table

    def describe(self):
        return {
            "none": "none",
            "uniform": "uniform one-hot",
            "table": f"dataset labels ({0 if self.table is None else len(self.table)})",
        }[self.kind]

    def draw(self, r):
        """One label [c_dim] from RandomState r (nothing drawn for unconditional models)."""
        if self.kind == "uniform":
            out = np.zeros(self.c_dim, dtype=np.float32)
            out[r.randint(self.c_dim)] = 1
            return out
        if self.kind == "table":
            return self.table[r.randint(len(self.table))]
        return np.zeros(0, dtype=np.float32)


def dataset_labels(path, G):
    """The label table [M, c_dim] of a dataset folder/zip with dataset.json (training-loop layout)."""
    from ..datasets.images import ImageDataset

    ds = ImageDataset(path, G.img_resolution, use_labels=True)
    if ds.label_dim != G.c_dim:
        raise ConfigError(f"{path}: dataset labels have {ds.label_dim} values, the generator expects {G.c_dim}")
    return ds.labels


@dataclass
class Pairs:
    """Drawn pairs: endpoints a, b (codes of `space`), t [P], labels c [P, c_dim], noise seeds [P]."""

    a: torch.Tensor
    b: torch.Tensor
    t: torch.Tensor
    c: torch.Tensor
    noise_seeds: list
    space: str


def draw_pairs(G, indices, seed=0, space="w", sampling="full", labels=None, latents=None, device="cpu"):
    """The pairs `indices`; pair i always comes from RandomState(seed + i).

    Random pairs: z0, z1, t, label, noise seed (in that order). Given codes (`latents`):
    two distinct code indices, t, label (the codes' own labels when they have them), noise seed.
    """
    labels = labels if isinstance(labels, Labels) else Labels(G, labels)
    a, b, ts, cs, noise = [], [], [], [], []
    for i in indices:
        r = np.random.RandomState(seed + int(i))
        if latents is None:
            a.append(r.randn(G.z_dim))
            b.append(r.randn(G.z_dim))
        else:
            j, k = r.choice(len(latents), 2, replace=False)
            a.append(int(j))
            b.append(int(k))
        ts.append(r.uniform() if sampling == "full" else 0.0)
        c = labels.draw(r)
        if latents is not None and latents.c is not None:
            c = latents.c[a[-1]].cpu().numpy()
        cs.append(c)
        noise.append(int(r.randint(2**31 - 1)))
    if latents is None:
        to = lambda x: torch.from_numpy(np.stack(x)).float().to(device)  # noqa: E731
        A, B = to(a), to(b)
    else:
        data = latents.data.to(device)
        A, B = data[a], data[b]
    t = torch.tensor(ts, dtype=torch.float32, device=device)
    c = torch.from_numpy(np.stack(cs).astype(np.float32)).to(device) if cs else torch.zeros([0, 0], device=device)
    return Pairs(A, B, t, c, noise, space)


def _map(G, z, c, psi, cutoff):
    if psi == 1 and cutoff is None:
        return G.mapping(z, c)
    return G.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)


def _interpolate(G, pairs, t, psi=1.0, cutoff=None):
    """Codes at per-pair positions t [P] along each pair's path, ready to render (ws, or packed styles for 's')."""
    a, b, space = pairs.a, pairs.b, pairs.space
    if space == "z":
        return _map(G, slerp_unit(a, b, t.reshape(-1, 1)), pairs.c, psi, cutoff)
    shape = [-1] + [1] * (a.ndim - 1)
    return torch.lerp(a, b, t.reshape(shape))


def _render(G, codes, space, noise_mode):
    if space == "s":
        return G.synthesis(styles=codes, noise_mode=noise_mode)
    if codes.ndim == 2:
        codes = codes[:, None].repeat(1, G.num_ws, 1)
    return G.synthesis(codes, noise_mode=noise_mode)


@torch.no_grad()
def render_path(G, pairs, t, psi=1.0, cutoff=None):
    """Images [P, C, H, W] at positions t [P] of each pair, with the pair's own noise."""
    codes = _interpolate(G, pairs, t, psi, cutoff)
    space = "w+" if pairs.space == "z" else pairs.space
    if not hasattr(G, "synthesis") or not isinstance(G.synthesis, torch.nn.Module):
        return _render(G, codes, space, "const")
    with noise_override(G.synthesis, draw_noise(G.synthesis, pairs.noise_seeds, codes.device)):
        return _render(G, codes, space, "const")


def prepare_pairs(G, pairs, psi=1.0, cutoff=None):
    """Random pairs in W are mapped (with truncation) before the lerp, as the official metric maps z0, z1 first."""
    if pairs.space != "w_from_z":
        return pairs
    ws = _map(G, torch.cat([pairs.a, pairs.b]), torch.cat([pairs.c, pairs.c]), psi, cutoff)
    w0, w1 = ws.chunk(2)
    return Pairs(w0, w1, pairs.t, pairs.c, pairs.noise_seeds, "w+")


@torch.no_grad()
def pair_images(G, pairs, epsilon=EPS, psi=1.0, cutoff=None):
    """The two images at t and t + eps of each pair: ([P, C, H, W], [P, C, H, W]), sharing each pair's noise."""
    pairs = prepare_pairs(G, pairs, psi, cutoff)
    both = Pairs(
        torch.cat([pairs.a, pairs.a]),
        torch.cat([pairs.b, pairs.b]),
        torch.cat([pairs.t, pairs.t + epsilon]),
        torch.cat([pairs.c, pairs.c]),
        pairs.noise_seeds * 2,
        pairs.space,
    )
    return render_path(G, both, both.t, psi, cutoff).chunk(2)


def _pairs_for(G, indices, seed, space, sampling, labels, latents, device):
    pairs = draw_pairs(G, indices, seed, space, sampling, labels, latents, device)
    if latents is None and space == "w":
        pairs.space = "w_from_z"  # mapped (and truncated) first, then lerped
    return pairs


def _check(G, space, sampling, latents, truncation_psi):
    if sampling not in ("full", "end"):
        raise ConfigError(f"sampling must be 'full' or 'end', got {sampling!r}")
    if latents is None:
        space = "w" if space is None else space
        if space not in ("z", "w"):
            raise ConfigError(f"random pairs live in 'z' or 'w', got space {space!r}")
        return space
    from ..latents.codes import space_dim

    if space is not None and space != latents.space:
        raise ConfigError(f"the latents are {latents.space} codes; space {space!r} does not match")
    if latents.space != "z" and truncation_psi != 1:
        raise ConfigError("truncation applies when mapping from Z: given w/w+/s codes are used as they are")
    if len(latents) < 2:
        raise ConfigError(f"PPL on given latents needs at least 2 codes, got {len(latents)}")
    d = space_dim(G, latents.space)
    if latents.data.shape[-1] != d or (latents.space == "w+" and latents.data.shape[1] != G.num_ws):
        raise ConfigError(f"{latents.space} codes of shape {tuple(latents.data.shape)} do not fit this generator")
    return latents.space


@torch.no_grad()
def perceptual_path_length(
    G,
    num_samples=100_000,
    space=None,
    sampling="full",
    crop=False,
    epsilon=EPS,
    distance=None,
    batch_size=16,
    seed=0,
    device="cpu",
    progress=None,
    labels=None,
    truncation_psi=1.0,
    truncation_cutoff=None,
    latents=None,
):
    """PPL of generator G. `distance`: callable ([N,3,H,W] in [0,255], same) -> [N]; LPIPS-VGG by default.

    space: 'z' or 'w' for random pairs (default 'w'); with `latents` (a LatentCodes), the codes'
    own space. labels (conditional models): None or 'uniform' (a uniformly drawn one-hot class
    per pair, the default), or a label table [M, c_dim] drawn from uniformly (`dataset_labels`);
    the official metric draws the dataset's labels. truncation_psi / truncation_cutoff:
    PPL under truncation (the mapping truncates each endpoint; not in the official metric).

    Pair i is drawn from RandomState(seed + i), so results do not depend on the batch size;
    under torchrun (an initialised process group) rank r measures the pairs i % world_size == r
    and every rank gets the gathered result.
    """
    space = _check(G, space, sampling, latents, truncation_psi)
    from ..utils.distributed import gather_rows, rank_items

    lab = Labels(G, labels)
    distance = distance or LPIPSDistance().to(device)
    resolution = getattr(G, "img_resolution", None)
    mine = rank_items(num_samples)  # under torchrun each rank measures its share of the pairs
    local = np.empty(len(mine))
    for k in range(0, len(mine), batch_size):
        idx = mine[k : k + batch_size]
        pairs = _pairs_for(G, idx, seed, space, sampling, lab, latents, device)
        a, b = pair_images(G, pairs, epsilon, truncation_psi, truncation_cutoff)
        d = distance(prepare_images(a, crop, resolution), prepare_images(b, crop, resolution))
        local[k : k + len(idx)] = torch.as_tensor(d).double().cpu().numpy() / epsilon**2
        if progress is not None:
            progress.update(len(idx))
    out = gather_rows(mine, local, num_samples)
    kept = kept_mask(out)
    settings = dict(
        space=space,
        sampling=sampling,
        crop=bool(crop),
        epsilon=epsilon,
        seed=seed,
        labels=lab.describe(),
        truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff,
        latents=None if latents is None else len(latents),
    )
    return PPLResult(
        mean=float(out[kept].mean()),
        distances=out,
        kept=kept,
        seeds=np.arange(seed, seed + num_samples),
        settings=settings,
    )


# ---- figures' images --------------------------------------------------------------------------
def _replay(G, result, indices, latents=None, labels=None, device="cpu"):
    s = result.settings
    space = s.get("space", "w")
    return _pairs_for(
        G, [int(i) for i in indices], int(s.get("seed", 0)), space, s.get("sampling", "full"), labels, latents, device
    )


def extreme_indices(result, k=8):
    """{'lowest': the k pairs of lowest path length, lowest first; 'highest': the k highest, highest first}."""
    return {which: result.ranked(which)[:k] for which in ("lowest", "highest")}


def strip_indices(result, fraction=0.1, k=4):
    """{'lowest' / 'highest': k pairs evenly spread over that `fraction` band (`PPLResult.band` order)}."""
    out = {}
    for which in ("lowest", "highest"):
        band = result.band(fraction, which)
        out[which] = band[np.linspace(0, len(band) - 1, min(k, len(band))).round().astype(int)]
    return out


@torch.no_grad()
def extreme_pairs(G, result, k=8, latents=None, labels=None, device="cpu"):
    """uint8 images of the k lowest and k highest path-length pairs (re-rendered from their seeds).

    Returns {'lowest': [k, 2, H, W, C], 'highest': [k, 2, H, W, C]}, the two images of each pair side by side.
    """
    from ..utils.images import to_uint8

    s = result.settings
    out = {}
    for name, idx in extreme_indices(result, k).items():
        pairs = _replay(G, result, idx, latents, labels, device)
        a, b = pair_images(G, pairs, s.get("epsilon", EPS), s.get("truncation_psi", 1.0), s.get("truncation_cutoff"))
        out[name] = np.stack([to_uint8(a), to_uint8(b)], axis=1)
    return out


@torch.no_grad()
def band_strips(G, result, fraction=0.1, k=4, frames=8, latents=None, labels=None, device="cpu"):
    """Interpolation strips of pairs from the lowest and highest `fraction` of path lengths (HSR paper figures).

    k pairs per band, evenly spread over the band (`strip_indices`); each strip renders its whole path
    (t = 0 .. 1 in `frames` steps) with the pair's noise. Returns
    {'lowest': uint8 [k, frames, H, W, C], 'highest': ...}.
    """
    from ..utils.images import to_uint8

    if frames < 2:
        raise ConfigError(f"frames must be >= 2, got {frames}")
    s = result.settings
    out = {}
    for which, chosen in strip_indices(result, fraction, k).items():
        pairs = prepare_pairs(
            G,
            _replay(G, result, chosen, latents, labels, device),
            s.get("truncation_psi", 1.0),
            s.get("truncation_cutoff"),
        )
        strips = []
        for f in np.linspace(0, 1, frames):
            t = torch.full_like(pairs.t, float(f))
            strips.append(to_uint8(render_path(G, pairs, t, s.get("truncation_psi", 1.0), s.get("truncation_cutoff"))))
        out[which] = np.stack(strips, axis=1)
    return out
