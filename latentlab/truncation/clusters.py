"""Multi-level cluster truncation (Katzir et al. 2022, "Multi-level latent space structuring for generative control").

Each level (coarse / middle / fine ws layers) gets its own clusters; truncation moves each
level's layers toward the W centre of the cluster its code falls in, instead of toward the
single mean w_avg, which keeps the sample's mode while removing outliers.

What is clustered (`representation`):

- 'styles' (default): what the level's layers actually receive, the styles (affine outputs
  s_j(w_i) = A_j w_i + b_j, `G.synthesis.style_layers()`) of every style layer j whose ws
  index i is in the level, concatenated, then reduced by PCA to `dims` components. A code
  from G.mapping repeats one w on every layer, so clustering the mean w of each level (the
  'w' baseline) fits the very same clusters at every level: a single clustering of W, which
  is what the paper shows failing. The levels' styles differ: each level sees W through its
  own affine maps, so the PCA keeps the directions of W that move that level's styles most,
  and k-means / diagonal GMMs measure distance in that level's style metric. (A full-covariance
  GMM is affine-invariant: on all components, dims=None or dims >= w_dim, it clusters W itself
  up to its initialisation. It is `dims` < w_dim that gives each level its own subspace.)
- 'w': the level's mean w, clustered directly; the single-W baseline kept for comparison.

The W centre of cluster k at ws index i is the responsibility-weighted mean of the members'
w_i (GMM responsibilities, or 0/1 k-means membership), c_{k,i} = sum_n r_nk w_{n,i} / sum_n r_nk.
Styles are affine in w and the weights sum to one, so s_j(c_{k,i}) is the same weighted mean
of the members' styles: the level's style-space centroid. Moving a code toward it,
w_i <- c_{k,i} + psi (w_i - c_{k,i}) for every i in the level, therefore moves every style
layer j of the level exactly toward its centroid: s_j <- s_j(c) + psi (s_j - s_j(c)).

The fitted variant here and the learned one (`learned_clusters.py`) are siblings on
`BaseClusterTruncation` (cluster_base.py), which moves codes toward the centres (`move`),
truncates, generates from chosen clusters and predicts; each variant gives the level
`features` and `assign` (features -> cluster id). Prediction runs in torch float64 from
stored arrays, so a saved file (npz, no pickle) restores the exact predictor; scikit-learn
is needed only for fitting.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError
from .base import check_int, check_ws, sample_ws
from .cluster_base import BaseClusterTruncation, KSpec, LevelsSpec

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

METHODS = ("gmm", "kmeans")
COVARIANCE_TYPES = ("full", "diag")
REPRESENTATIONS = ("styles", "w")
ESTIMATOR_FIELDS = {"gmm": ("means", "covariances", "weights", "precisions_cholesky"), "kmeans": ("cluster_centers",)}
RANK_TOL = 1e-9  # PCA keeps components with variance > RANK_TOL * the largest (styles are affine in w: rank <= w_dim)


class ClusterTruncation(BaseClusterTruncation):
    """Cluster truncation fitted on samples of G: w_i <- c_{k,i} + psi (w_i - c_{k,i}) for the level's ws indices i.

    k: clusters per level (int, or dict level -> int). psi: how far codes stay from their
    centre (0: onto it, 1: unchanged). levels: level names (coarse, middle, fine) or a dict
    name -> list of ws indices. method: 'gmm' or 'kmeans'. keep_last: the last ws index
    belongs to no level and keeps the untruncated code. covariance_type: the GMM's 'full'
    or 'diag'. max_iter: EM / k-means iterations. representation: 'styles' (the level's
    styles, PCA-reduced; needs G to fit and to assign) or 'w' (the level's mean w: the
    single-W baseline). dims: PCA components of the styles (None: every component with
    non-negligible variance). Named levels without layers on a generator (e.g. fine at
    16 px) are skipped.

    Fitted state (set by `fit`, `fit_ws`, `fit_codes` or a loaded file; absent before):
    `layers_` (level -> ws indices), `centers_` (level -> [k, len(layers), w_dim]
    float32 W centres, one row per ws index of the level), `params_` (level -> estimator
    arrays in the feature space), `pca_` (level -> {'mean' [D], 'components' [d, D]},
    styles only), `style_layers_` (level -> style layer names, styles only), `info_`.
    Files written before `representation` existed are W clusterings and load as 'w'.
    `ClusterTruncation.load` reads learned clusters files too (a `LearnedClusterTruncation`
    comes back), as `clusters:FILE` does.
    """

    kind = "clusters"
    load_family = BaseClusterTruncation  # load / from_dict accept either kind of clusters file
    not_fitted_hint = "call fit(G) first or load a fitted file"

    # fitted state besides layers_ and centers_ (absent before fitting)
    params_: Dict[str, Dict[str, np.ndarray]]
    pca_: Dict[str, Dict[str, np.ndarray]]
    style_layers_: Dict[str, List[str]]
    info_: Dict[str, Any]

    def __init__(
        self,
        k: KSpec = 8,
        psi: float = 0.7,
        levels: LevelsSpec = ("coarse", "middle", "fine"),
        method: str = "gmm",
        keep_last: bool = True,
        covariance_type: str = "full",
        max_iter: int = 100,
        representation: str = "styles",
        dims: Optional[int] = 64,
    ) -> None:
        super().__init__(k=k, psi=psi, levels=levels, keep_last=keep_last)
        if method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        self.method = method
        if covariance_type not in COVARIANCE_TYPES:
            raise ConfigError(f"covariance_type must be one of {', '.join(COVARIANCE_TYPES)}, got {covariance_type!r}")
        self.covariance_type = covariance_type
        self.max_iter = check_int("max_iter", max_iter, lo=1)
        if representation not in REPRESENTATIONS:
            raise ConfigError(f"representation must be one of {', '.join(REPRESENTATIONS)}, got {representation!r}")
        self.representation = representation
        self.dims = None if dims is None else check_int("dims", dims, lo=1)

    @property
    def name(self) -> str:
        k = self._k_text()
        method = f"gmm-{self.covariance_type}" if self.method == "gmm" else self.method
        rep = "w" if self.representation == "w" else "styles" + ("" if self.dims is None else f"/{self.dims}")
        return f"clusters {method} {rep} k={k} psi={self.psi:g}"

    # --- fitting ------------------------------------------------------------------
    def fit(
        self, G: AnyGenerator, n_samples: int = 10000, seed: int = 0, batch_size: int = 1000, progress: bool = False
    ) -> ClusterTruncation:
        """Fit on n_samples seeded codes of G; only one batch of ws is in memory at a time.

        The styles representation reads the sample three times (style statistics for the
        PCA, projected features, W centres), regenerating the same ws each time.
        """
        layers = self.resolve_layers(G)
        n_samples = check_int("n_samples", n_samples, lo=1)

        def batches(step):
            return sample_ws(G, n_samples, seed, batch_size, progress, desc=f"fitting clusters ({step})")

        return self._fit(G, layers, batches, n_samples, seed)

    def fit_ws(
        self,
        ws: Union[torch.Tensor, np.ndarray],
        G: Optional[AnyGenerator] = None,
        seed: int = 0,
        batch_size: int = 1000,
    ) -> ClusterTruncation:
        """Fit on given ws [N, num_ws, w_dim] (W+ codes allowed); G is needed for styles and named levels."""
        ws = check_ws(G, torch.as_tensor(ws))
        if self.representation == "styles" and G is None:
            raise ConfigError("style clusters are fitted on the generator's styles: call fit_ws(ws, G)")
        layers = self.resolve_layers(G if G is not None else ws.shape[1])
        batch_size = check_int("batch_size", batch_size, lo=1)

        def batches(step):
            return ((s, ws[s : s + batch_size].detach()) for s in range(0, len(ws), batch_size))

        return self._fit(G, layers, batches, len(ws), seed)

    def fit_codes(
        self, codes: Mapping[str, np.ndarray], layers: Mapping[str, Sequence[int]], seed: int = 0
    ) -> ClusterTruncation:
        """'w' representation: fit one estimator per level on level codes {level: [N, w_dim]} (centres = its means)."""
        if self.representation != "w":
            raise ConfigError(
                "fit_codes fits the 'w' representation; style clusters need the ws: use fit(G) or fit_ws(ws, G)"
            )
        params = {n: self._fit_estimator(_check_count(n, codes[n], self.k_for(n)), self.k_for(n), seed) for n in layers}
        centers = {n: np.repeat(_means(self.method, params[n])[:, None], len(layers[n]), axis=1) for n in layers}
        self.set_state(
            {
                "representation": "w",
                "layers": layers,
                "params": params,
                "centers": centers,
                "info": {"n_samples": len(next(iter(codes.values())))},
            }
        )
        return self

    def _fit(self, G, layers, batches, n_samples, seed):
        for n in layers:
            if n_samples < self.k_for(n):
                raise ConfigError(f"level {n!r}: {n_samples} samples cannot make {self.k_for(n)} clusters")
        with torch.no_grad():
            if self.representation == "w":
                codes = {n: [] for n in layers}
                for _, ws in batches("codes"):
                    for n, idx in layers.items():
                        codes[n].append(ws[:, idx].mean(dim=1).float().cpu().numpy())
                return self.fit_codes({n: np.concatenate(c) for n, c in codes.items()}, layers, seed)
            names = {n: [name for name, _, i in G.synthesis.style_layers() if i in idx] for n, idx in layers.items()}
            pca = self._fit_pca(G, layers, batches)
            feats = {n: np.empty((n_samples, len(pca[n]["components"])), dtype=np.float64) for n in layers}
            for start, ws in batches("features"):
                for n, idx in layers.items():
                    feats[n][start : start + len(ws)] = _project(level_styles(G, ws, idx), pca[n]).cpu().numpy()
            params = {
                n: self._fit_estimator(_check_count(n, feats[n], self.k_for(n)), self.k_for(n), seed) for n in layers
            }
            sums = {n: 0 for n in layers}
            mass = {n: 0 for n in layers}
            for start, ws in batches("centres"):
                for n, idx in layers.items():
                    x = torch.from_numpy(feats[n][start : start + len(ws)])
                    r = _responsibilities(self.method, self.covariance_type, params[n], x)  # [B, k] float64
                    sums[n] = sums[n] + torch.einsum("bk,bld->kld", r, ws[:, idx].double().cpu())
                    mass[n] = mass[n] + r.sum(0)
            centers = {}
            for n in layers:
                if (mass[n] <= 0).any():
                    raise ConfigError(f"level {n!r}: cluster {int(torch.nonzero(mass[n] <= 0)[0])} has no members")
                centers[n] = (sums[n] / mass[n].view(-1, 1, 1)).numpy()
        self.set_state(
            {
                "representation": "styles",
                "layers": layers,
                "style_layers": names,
                "pca": pca,
                "params": params,
                "centers": centers,
                "info": {"n_samples": int(n_samples)},
            }
        )
        return self

    def _fit_pca(self, G, layers, batches):
        """level -> {'mean', 'components'}: the top `dims` principal directions of the level's styles."""
        shift, s1, s2, count = {}, {}, {}, 0
        for _, ws in batches("style statistics"):
            for n, idx in layers.items():
                s = level_styles(G, ws, idx)
                if n not in shift:  # accumulate around the first batch's mean: no cancellation in the covariance
                    shift[n], s1[n], s2[n] = s.mean(0), 0, 0
                d = s - shift[n]
                s1[n] = s1[n] + d.sum(0)
                s2[n] = s2[n] + d.T @ d
            count += len(ws)
        pca = {}
        for n in layers:
            m = s1[n] / count
            cov = s2[n] / count - torch.outer(m, m)
            evals, evecs = torch.linalg.eigh(cov.cpu())  # ascending
            evals, evecs = evals.flip(0), evecs.flip(1)
            rank = int((evals > RANK_TOL * max(float(evals[0]), 1e-300)).sum())
            d = max(1, min(rank, count - 1, self.dims if self.dims is not None else rank))
            pca[n] = {"mean": (shift[n] + m).cpu().numpy(), "components": evecs[:, :d].T.contiguous().numpy()}
        return pca

    def _fit_estimator(self, X, k, seed):
        try:
            from sklearn.cluster import KMeans
            from sklearn.mixture import GaussianMixture
        except ImportError:  # an optional dependency: only fitting needs it, loading a fitted file does not
            raise ImportError(
                "fitting cluster truncation needs scikit-learn: pip install 'latentlab[analysis]'"
            ) from None
        if self.method == "gmm":
            est = GaussianMixture(
                n_components=k, covariance_type=self.covariance_type, max_iter=self.max_iter, random_state=seed
            ).fit(X)
            return {
                "means": est.means_,
                "covariances": est.covariances_,
                "weights": est.weights_,
                "precisions_cholesky": est.precisions_cholesky_,
            }
        est = KMeans(n_clusters=k, max_iter=self.max_iter, n_init=1, random_state=seed).fit(X)
        return {"cluster_centers": est.cluster_centers_}

    # --- the two steps the shared base runs ----------------------------------------
    def features(self, G: Optional[AnyGenerator], ws: torch.Tensor, level: str) -> torch.Tensor:
        """What `assign` reads for a level, from ws [N, num_ws, w_dim]: [N, d] float64.

        styles: the level's concatenated styles, PCA-projected (needs G); w: the level's mean w.
        """
        idx = self.layers_[level]
        if self.representation == "w":
            return ws[:, idx].mean(dim=1).to(torch.float64)
        if G is None:
            raise ConfigError(
                "style clusters assign codes by their styles: pass the generator (predict(ws, level, G=G))"
            )
        names = [name for name, _, i in G.synthesis.style_layers() if i in idx]
        if names != self.style_layers_[level]:
            raise ConfigError(
                f"level {level!r} was fitted on style layers {', '.join(self.style_layers_[level])}; "
                f"this generator has {', '.join(names) or 'none'} there: fitted on another generator"
            )
        with torch.no_grad():
            s = level_styles(G, ws, idx)
        if s.shape[1] != self.pca_[level]["mean"].shape[0]:
            raise ConfigError(
                f"level {level!r} was fitted on {self.pca_[level]['mean'].shape[0]} style channels; "
                f"this generator has {s.shape[1]}: fitted on another generator"
            )
        return _project(s, self.pca_[level])

    def assign(self, level: str, feats: torch.Tensor) -> torch.Tensor:
        """Cluster id [N] (long) of each level feature row [N, d]: the most likely component / nearest centre."""
        p = {f: torch.from_numpy(a).to(feats.device) for f, a in self.params_[level].items()}
        x = feats.to(torch.float64)
        if self.method == "kmeans":
            c = p["cluster_centers"]
            sq = (x * x).sum(1, keepdim=True) - 2 * x @ c.T + (c * c).sum(1)
            return sq.argmin(dim=1)
        return _gmm_log_likelihood(x, p, self.covariance_type).argmax(dim=1)

    # --- serialisation ------------------------------------------------------------
    def get_params(self) -> Dict[str, Any]:
        return {
            "k": self.k,
            "psi": self.psi,
            "levels": self._levels_param(),
            "method": self.method,
            "keep_last": self.keep_last,
            "covariance_type": self.covariance_type,
            "max_iter": self.max_iter,
            "representation": self.representation,
            "dims": self.dims,
        }

    def get_state(self) -> Dict[str, Any]:
        if not self.is_fitted:
            return {}
        state = {
            "representation": self.representation,
            "layers": self.layers_,
            "params": self.params_,
            "centers": {n: c.numpy() for n, c in self.centers_.items()},
            "info": self.info_,
        }
        if self.representation == "styles":
            state.update(pca=self.pca_, style_layers=self.style_layers_)
        return state

    def set_state(self, state: Dict[str, Any]) -> None:
        if not state:
            return
        if "representation" not in state:  # files from before 'representation' existed hold W clusterings
            self.representation = "w"
        rep = state.get("representation", "w")
        if rep not in REPRESENTATIONS:
            raise ConfigError(f"unknown cluster representation {rep!r} in the fitted state")
        if rep != self.representation:
            raise ConfigError(f"the fitted state clusters {rep!r} but the parameters say {self.representation!r}")
        layers = {str(n): [int(i) for i in idx] for n, idx in state["layers"].items()}
        params, centers, pca, names = {}, {}, {}, {}
        for n in layers:
            fields = state["params"][n]
            missing = [f for f in ESTIMATOR_FIELDS[self.method] if f not in fields]
            if missing:
                raise ConfigError(f"level {n!r}: the fitted {self.method} state lacks {', '.join(missing)}")
            params[n] = {f: np.asarray(fields[f], dtype=np.float64) for f in ESTIMATOR_FIELDS[self.method]}
            if "centers" in state:
                c = np.asarray(state["centers"][n], dtype=np.float32)
            else:  # an old W clustering: the estimator's means are the centres of every layer of the level
                c = np.repeat(_means(self.method, params[n])[:, None], len(layers[n]), axis=1).astype(np.float32)
            if c.ndim != 3 or c.shape[:2] != (len(_means(self.method, params[n])), len(layers[n])):
                raise ConfigError(f"level {n!r}: centres have shape {c.shape}, expected [k, {len(layers[n])}, w_dim]")
            centers[n] = torch.from_numpy(c.copy())
            if rep == "styles":
                if n not in state.get("pca", {}) or n not in state.get("style_layers", {}):
                    raise ConfigError(f"level {n!r}: the fitted style clusters lack their PCA or style layers")
                p = state["pca"][n]
                pca[n] = {
                    "mean": np.asarray(p["mean"], dtype=np.float64),
                    "components": np.asarray(p["components"], dtype=np.float64),
                }
                d = params[n][ESTIMATOR_FIELDS[self.method][0]].shape[1]
                if pca[n]["components"].shape != (d, len(pca[n]["mean"])):
                    raise ConfigError(
                        f"level {n!r}: PCA components {pca[n]['components'].shape} do not match "
                        f"{d} features of {len(pca[n]['mean'])} style channels"
                    )
                names[n] = [str(s) for s in state["style_layers"][n]]
        self.layers_, self.params_, self.centers_, self.pca_, self.style_layers_ = layers, params, centers, pca, names
        self.info_ = dict(state.get("info") or {})


# --- helpers ---------------------------------------------------------------------------
def level_styles(G: AnyGenerator, ws: torch.Tensor, idx: Sequence[int]) -> torch.Tensor:
    """The styles of every style layer fed by a ws index in idx, concatenated: [N, D] float64.

    Computed in the layers' own dtype (their affine maps take it), returned in float64.
    """
    parts = []
    for _, layer, i in G.synthesis.style_layers():
        if i in idx:
            p = next(layer.parameters(), None)
            parts.append(layer.style(ws[:, i].to(p.dtype if p is not None else torch.float32)).to(torch.float64))
    if not parts:
        raise ConfigError(f"no style layer takes ws {idx}")
    return torch.cat(parts, dim=1)


def _project(styles, pca):
    mean = torch.from_numpy(pca["mean"]).to(styles.device)
    comps = torch.from_numpy(pca["components"]).to(styles.device)
    return (styles.to(torch.float64) - mean) @ comps.T


def _means(method, params):
    return params["means" if method == "gmm" else "cluster_centers"]


def _check_count(level, X, k):
    X = np.asarray(X, dtype=np.float64)  # full covariances in float32 lose definiteness
    if len(X) < k:
        raise ConfigError(f"level {level!r}: {len(X)} samples cannot make {k} clusters")
    return X


def _responsibilities(method, covariance_type, params, x):
    """[N, k] float64 cluster weights of each row: GMM posteriors, or one-hot nearest k-means centre."""
    p = {f: torch.from_numpy(np.asarray(a, dtype=np.float64)) for f, a in params.items()}
    if method == "kmeans":
        c = p["cluster_centers"]
        ids = ((x * x).sum(1, keepdim=True) - 2 * x @ c.T + (c * c).sum(1)).argmin(1)
        return torch.nn.functional.one_hot(ids, len(c)).to(torch.float64)
    return torch.softmax(_gmm_log_likelihood(x, p, covariance_type), dim=1)


def _gmm_log_likelihood(x, p, covariance_type):
    """log(weight_k) + log N(x | mean_k, cov_k) for x [N, d] -> [N, k] (sklearn's parametrisation)."""
    means, chol = p["means"], p["precisions_cholesky"]
    if covariance_type == "full":
        log_det = torch.diagonal(chol, dim1=-2, dim2=-1).log().sum(-1)  # log|precision|^(1/2)
        y = torch.einsum("nd,kde->nke", x, chol) - torch.einsum("kd,kde->ke", means, chol)
    else:
        log_det = chol.log().sum(-1)
        y = (x.unsqueeze(1) - means) * chol
    d = x.shape[1]
    return -0.5 * (d * math.log(2 * math.pi) + (y * y).sum(-1)) + log_det + p["weights"].log()


_MOVED = ("LEAKY_SLOPE", "LEARNED_FIELDS", "LearnedClusterTruncation", "mlp_forward", "cnn_forward")


def __getattr__(name):
    """The learned variant lives in learned_clusters.py; old imports from this module keep working."""
    if name in _MOVED:
        from . import learned_clusters

        return getattr(learned_clusters, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
