"""Learned multi-level cluster truncation (Katzir et al. 2022, "Multi-level latent space structuring").

Per level l: a mixture of K Gaussians N(mu_k, diag(sigma_k^2)) in an input space of z_dim
dimensions, a mapping MLP M_l into W and a classifier C_l that tells which Gaussian a code
came from. Trained by `latentlab.train.clusters` (see there); this module holds the result
as plain arrays and runs it with the two fixed network forms below, which the trainer runs
too, so a saved file predicts bit for bit what the trained networks did (same dtype and device).

The classifier comes in two forms (the `classifier` parameter):

- 'code': an MLP on the level's code (w_dim -> ... -> K). Fast; reads only W.
- 'image': a small CNN on the image rendered from the code (the paper's classifier works in
  the image domain). Rendering needs G: `assign` renders G.synthesis(ws, noise_mode='const')
  of the codes being truncated. Fixed architecture (`cnn_forward`): the image is average-pooled
  to CNN_INPUT x CNN_INPUT (adaptive_avg_pool2d), then every conv layer but the last
  array is a 3x3 convolution with stride 2, padding 1 and LeakyReLU(0.2); global average
  pooling; the last array is a linear layer to K logits. Widths come from the arrays.

Cluster centres are the means of each Gaussian's codes, c_{l,k} = E_eps[M_l(mu_k + sigma_k eps)],
estimated from `center_samples` draws (`mixture_centers`), not M_l(mu_k): the mapping is
non-linear, so the image of the Gaussian's mean is not the mean of its codes.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import check_int, check_is_fitted, check_ws, map_z
from .cluster_base import BaseClusterTruncation, KSpec, LevelsSpec

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

LEAKY_SLOPE = 0.2  # slope of the hidden layers' LeakyReLU in the learned networks (mapping, classifiers, critic)
CNN_INPUT = 32  # the image classifier pools every image to this size first
CLASSIFIERS = ("code", "image")
CENTER_SAMPLES = 10000
LEARNED_FIELDS = ("mu", "log_sigma", "log_weights", "centers", "mapping", "classifier")


def mlp_forward(
    x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], slope: float = LEAKY_SLOPE
) -> torch.Tensor:
    """A plain MLP: F.linear per layer, LeakyReLU(slope) after every layer but the last.

    weights[i] is [out, in] and biases[i] is [out] (nn.Linear's layout).
    """
    for i, (w, b) in enumerate(zip(weights, biases)):
        x = F.linear(x, w, b)
        if i < len(weights) - 1:
            x = F.leaky_relu(x, slope)
    return x


def cnn_forward(
    x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], slope: float = LEAKY_SLOPE
) -> torch.Tensor:
    """The image classifier: images [N, C, H, W] -> logits [N, K] (architecture in the module docstring).

    weights[:-1] are conv kernels [out, in, 3, 3] (nn.Conv2d's layout), weights[-1] is [K, in].
    """
    x = F.adaptive_avg_pool2d(x, CNN_INPUT)
    for w, b in zip(weights[:-1], biases[:-1]):
        x = F.leaky_relu(F.conv2d(x, w, b, stride=2, padding=1), slope)
    return F.linear(x.mean(dim=(2, 3)), weights[-1], biases[-1])


def mixture_centers(
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    mapping: Mapping[str, Sequence[torch.Tensor]],
    n_samples: int = CENTER_SAMPLES,
    seed: int = 0,
    chunk: int = 4096,
) -> torch.Tensor:
    """c_k = mean over n_samples eps of M(mu_k + sigma_k eps) -> [K, w_dim] float32.

    mu, log_sigma: [K, x_dim] tensors; mapping: {'weights': [...], 'biases': [...]} on their device.
    eps: n_samples rows from torch.Generator().manual_seed(seed).randn(n_samples, x_dim)
    (CPU, float32, then moved), the same draws for every k; the mean accumulates in float64.
    """
    n_samples = check_int("center_samples", n_samples, lo=1)
    eps = torch.randn(n_samples, mu.shape[1], generator=torch.Generator().manual_seed(seed)).to(mu.device)
    out: List[torch.Tensor] = []
    with torch.no_grad():
        for m, s in zip(mu, log_sigma.exp()):
            total: Any = 0  # becomes a float64 tensor [w_dim] with the first chunk
            for e in eps.split(chunk):
                total = total + mlp_forward(m + s * e, mapping["weights"], mapping["biases"]).to(torch.float64).sum(0)
            out.append(total / n_samples)
    return torch.stack(out).to(torch.float32)


class LearnedClusterTruncation(BaseClusterTruncation):
    """Cluster truncation with learned per-level mappings (Katzir et al. 2022); see the module docstring.

    A sibling of the fitted `ClusterTruncation` on `BaseClusterTruncation`. `assign` is
    argmax C_l(code) ('code') or argmax C_l(G.synthesis(ws)) ('image'); `move` is the base
    class's w_i <- c + psi (w_i - c) with c = c_{l,k}. Trained by
    `latentlab.train.clusters.train_cluster_mappings`, not fitted: `fit` only says so; the
    state comes from the file the trainer writes (or `set_state`). save/load store every
    network as plain arrays (no pickle, no module code).

    k, psi, levels, keep_last: as in ClusterTruncation. classifier: 'code' or 'image'.
    State per level (`nets_[level]`): mu [K, x_dim], log_sigma [K, x_dim], log_weights [K],
    centers [K, w_dim], mapping / classifier {'weights': [...], 'biases': [...]} (float32;
    mapping: MLP layers [out, in]; classifier: see `mlp_forward` / `cnn_forward`).
    `centers_[level]` is [K, len(layers), w_dim] (the centre on every ws index of the level).
    `info_` records steps, accuracy, center_samples and center_seed.
    """

    kind = "learned-clusters"
    not_fitted_hint = (
        "it holds no trained networks: load a clusters file written by latentlab.train.clusters.train_cluster_mappings"
    )

    # fitted state besides layers_ and centers_ (absent before loading a trained file)
    # level -> {'mu', 'log_sigma', 'log_weights', 'centers': tensors, 'mapping', 'classifier': {'weights', 'biases'}}
    nets_: Dict[str, Dict[str, Any]]
    info_: Dict[str, Any]

    def __init__(
        self,
        k: KSpec = 8,
        psi: float = 0.7,
        levels: LevelsSpec = ("coarse", "middle", "fine"),
        keep_last: bool = True,
        classifier: str = "code",
    ) -> None:
        super().__init__(k=k, psi=psi, levels=levels, keep_last=keep_last)
        if classifier not in CLASSIFIERS:
            raise ConfigError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {classifier!r}")
        self.classifier = classifier

    @property
    def name(self) -> str:
        k = self._k_text()
        return f"learned clusters k={k} psi={self.psi:g}" + (
            " (image classifier)" if self.classifier == "image" else ""
        )

    def fit(
        self, G: AnyGenerator, n_samples: int = 10000, seed: int = 0, batch_size: int = 1000, progress: bool = False
    ) -> LearnedClusterTruncation:
        """Refuses, with one line saying how learned clusters are made (for callers that fit unfitted variants)."""
        raise ConfigError(
            "learned clusters are trained, not fitted: use latentlab.train.clusters.train_cluster_mappings "
            "(or `latentlab train clusters`) and load the clusters file it writes"
        )

    # --- the learned networks -----------------------------------------------------
    def classify(self, level: str, x: torch.Tensor) -> torch.Tensor:
        """Classifier logits [N, K] of level codes [N, w_dim] ('code') or rendered images [N, C, H, W] ('image')."""
        level = self._level_key(level)
        net = self.nets_[level]["classifier"]
        w, b = [a.to(x.device) for a in net["weights"]], [a.to(x.device) for a in net["biases"]]
        return (cnn_forward if self.classifier == "image" else mlp_forward)(x.to(torch.float32), w, b)

    def map(self, level: str, x: torch.Tensor) -> torch.Tensor:
        """M_l(x): mapping-network inputs [N, x_dim] -> level codes [N, w_dim]."""
        level = self._level_key(level)
        net = self.nets_[level]["mapping"]
        dev = x.device
        return mlp_forward(x.to(torch.float32), [w.to(dev) for w in net["weights"]], [b.to(dev) for b in net["biases"]])

    def sample_codes(
        self, level: str, ids: Union[int, Sequence[int], torch.Tensor], eps: Union[torch.Tensor, np.ndarray]
    ) -> torch.Tensor:
        """Codes M_l(mu_k + sigma_k * eps) of Gaussians ids [N] for standard-normal eps [N, x_dim]."""
        level = self._level_key(level)
        n = self.nets_[level]
        eps = torch.as_tensor(eps).to(torch.float32)
        ids = self._chosen_ids(level, ids, len(eps), eps.device)
        mu, sigma = n["mu"].to(eps.device)[ids], n["log_sigma"].to(eps.device)[ids].exp()
        return self.map(level, mu + sigma * eps)

    def recompute_centers(self, n_samples: int = CENTER_SAMPLES, seed: int = 0) -> LearnedClusterTruncation:
        """Replace the centres by sample means of each Gaussian's codes (`mixture_centers`); returns self."""
        check_is_fitted(self)
        for level, n in self.nets_.items():
            n["centers"] = mixture_centers(n["mu"], n["log_sigma"], n["mapping"], n_samples, seed)
            self.centers_[level] = _per_layer(n["centers"], len(self.layers_[level]))
        self.info_.update(center_samples=int(n_samples), center_seed=int(seed))
        return self

    # --- the steps the truncation runs ---------------------------------------------
    def features(self, G: Optional[AnyGenerator], ws: torch.Tensor, level: str) -> torch.Tensor:
        """The classifier's input: the level's mean w ('code') or the image G renders from ws ('image')."""
        return self._level_features(G, ws, [self._level_key(level)])[self._level_key(level)]

    def _level_features(self, G, ws, levels):
        if not levels:
            return {}
        if self.classifier == "code":
            return {level: ws[:, self.layers_[level]].mean(dim=1) for level in levels}
        if G is None:
            raise ConfigError(
                "the image classifier reads the rendered codes: pass the generator (predict(ws, level, G=G))"
            )
        with torch.no_grad():
            images = G.synthesis(ws.to(torch.float32), noise_mode="const")  # one render serves every level
        return {level: images for level in levels}

    def assign(self, level: str, x: torch.Tensor) -> torch.Tensor:
        """Cluster id [N] of each classifier input: argmax of the level's classifier."""
        with torch.no_grad():
            return self.classify(level, x).argmax(dim=1)

    def generate(
        self,
        G: AnyGenerator,
        z: torch.Tensor,
        clusters: Mapping[str, Any],
        c: Optional[torch.Tensor] = None,
        eps: Union[torch.Tensor, np.ndarray, None] = None,
    ) -> torch.Tensor:
        """Controlled generation: per chosen level, codes sampled from that level's Gaussian k through M_l.

        clusters: {level: id or [N] ids}. For a chosen level the layers get
        M_l(mu_k + sigma_k * eps) (eps defaults to z, so a z gives one image per choice),
        then move toward c_{l,k} by psi. Levels not chosen keep the original mapping's
        w, truncated toward their predicted cluster; the last layer (keep_last) keeps the
        original code. Returns ws; G.synthesis(ws) renders them.
        """
        clusters = self.check_clusters(clusters)
        ws = check_ws(G, map_z(G, z, c))
        eps = z if eps is None else torch.as_tensor(eps, device=ws.device)
        x_dim = next(iter(self.nets_.values()))["mu"].shape[1]
        if eps.ndim != 2 or eps.shape != (len(ws), x_dim):
            raise ConfigError(f"eps must be [{len(ws)}, {x_dim}] (the mixtures' input size), got {tuple(eps.shape)}")
        out = ws.clone()
        for level, value in clusters.items():
            ids = self._chosen_ids(level, value, len(ws), ws.device)
            codes = self.sample_codes(level, ids, eps.to(ws.device)).to(ws.dtype)
            out[:, self.layers_[level]] = codes.unsqueeze(1)
        return self._apply(G, out, clusters)

    # --- serialisation ------------------------------------------------------------
    def get_params(self) -> Dict[str, Any]:
        return {
            "k": self.k,
            "psi": self.psi,
            "levels": self._levels_param(),
            "keep_last": self.keep_last,
            "classifier": self.classifier,
        }

    def get_state(self) -> Dict[str, Any]:
        if not self.is_fitted:
            return {}
        nets = {}
        for level, n in self.nets_.items():
            nets[level] = {f: n[f].numpy() for f in LEARNED_FIELDS[:4]}
            for f in ("mapping", "classifier"):
                nets[level][f] = {p: [a.numpy() for a in n[f][p]] for p in ("weights", "biases")}
        return {"layers": self.layers_, "nets": nets, "info": self.info_}

    def set_state(self, state: Dict[str, Any]) -> None:
        if not state:
            return
        layers = {str(n): [int(i) for i in idx] for n, idx in state["layers"].items()}
        nets, centers = {}, {}
        for level in layers:
            raw = state["nets"].get(level) if isinstance(state.get("nets"), dict) else None
            if raw is None:
                raise ConfigError(f"level {level!r}: the learned-clusters state has no networks")
            missing = [f for f in LEARNED_FIELDS if f not in raw]
            if missing:
                raise ConfigError(f"level {level!r}: the learned-clusters state lacks {', '.join(missing)}")
            n = {f: _f32(raw[f]) for f in LEARNED_FIELDS[:4]}
            for f in ("mapping", "classifier"):
                n[f] = {p: [_f32(a) for a in raw[f][p]] for p in ("weights", "biases")}
            _check_learned(level, n, self.k_for(level), self.classifier)
            nets[level], centers[level] = n, _per_layer(n["centers"], len(layers[level]))
        self.layers_, self.nets_, self.centers_ = layers, nets, centers
        self.info_ = dict(state.get("info") or {})
        if "center_samples" not in self.info_:
            warnings.warn(
                "these learned clusters come from an older trainer: their centres are M_l(mu_k), not the mean "
                "of each Gaussian's codes; recompute_centers() replaces them",
                stacklevel=2,
            )


def _per_layer(centers, n_layers):
    return centers.unsqueeze(1).expand(-1, n_layers, -1).contiguous()


def _f32(a):
    return torch.from_numpy(np.array(a, dtype=np.float32))  # a copy: the state never aliases the caller's arrays


def _check_learned(level, n, k, classifier):
    """Shapes of one level's learned networks fit together (else a clear ValueError)."""

    def bad(what):
        raise ConfigError(f"level {level!r}: inconsistent learned-clusters state: {what}")

    mu, log_sigma, log_weights, centers = n["mu"], n["log_sigma"], n["log_weights"], n["centers"]
    if mu.ndim != 2 or mu.shape[0] != k:
        bad(f"mu has shape {tuple(mu.shape)}, expected [{k}, x_dim]")
    if log_sigma.shape != mu.shape or log_weights.shape != (k,):
        bad(
            f"log_sigma {tuple(log_sigma.shape)} / log_weights {tuple(log_weights.shape)} do not match mu {tuple(mu.shape)}"
        )
    if centers.ndim != 2 or centers.shape[0] != k:
        bad(f"centers have shape {tuple(centers.shape)}, expected [{k}, w_dim]")
    w_dim = centers.shape[1]
    for f, d_in, d_out in (("mapping", mu.shape[1], w_dim), ("classifier", w_dim, k)):
        ws, bs = n[f]["weights"], n[f]["biases"]
        if not ws or len(ws) != len(bs):
            bad(f"{f} needs as many weights as biases, at least one")
        conv = f == "classifier" and classifier == "image"
        dims = [None if conv else d_in]  # an image classifier's input channels are the generator's
        for i, (w, b) in enumerate(zip(ws, bs)):
            want = 4 if conv and i < len(ws) - 1 else 2
            if (
                w.ndim != want
                or (want == 4 and w.shape[2:] != (3, 3))
                or dims[-1] not in (None, w.shape[1])
                or b.shape != (w.shape[0],)
            ):
                kind = "a 3x3 conv" if want == 4 else "a linear layer"
                bad(
                    f"{f} layer {i} should be {kind} after width {dims[-1]}: weight {tuple(w.shape)}, bias {tuple(b.shape)}"
                )
            dims.append(w.shape[0])
        if dims[-1] != d_out:
            bad(f"{f} ends with width {dims[-1]}, expected {d_out}")
