"""Multi-level cluster truncation ("Multi-level latent space structuring for generative control").

W is clustered separately per level (coarse / middle / fine layers); truncation moves
each level's layers toward the center of the cluster its code falls in, instead of
toward the single mean w_avg, which keeps the sample's mode while removing outliers.

Two steps are separate methods so that a learned variant (e.g. per-level mapping
networks trained elsewhere) can replace either: `assign` (level code -> cluster id)
and `move` (ws, cluster ids -> ws moved toward those clusters' centers).
Prediction runs in torch float64 from stored arrays, so a saved file restores the
exact predictor without pickle; scikit-learn is needed only for fitting.
"""
import math

import numpy as np
import torch

from ..latents.layers import LEVEL_ALIASES, LEVELS, level_layers
from .base import NotFittedError, Truncation, check_int, check_number, check_ws, map_z, sample_ws

METHODS = ("gmm", "kmeans")
COVARIANCE_TYPES = ("full", "diag")
ESTIMATOR_FIELDS = {"gmm": ("means", "covariances", "weights", "precisions_cholesky"), "kmeans": ("cluster_centers",)}


class ClusterTruncation(Truncation):
    """Per-level cluster truncation: w_l <- c + psi (w_l - c), c = center of the level code's cluster.

    k: clusters per level (int, or dict level -> int). levels: level names
    (coarse, middle, fine) or a dict name -> list of ws indices. keep_last: the
    last ws index belongs to no level and keeps the untruncated code. Named
    levels without layers on a given generator (e.g. fine at 16 px) are skipped.
    """

    kind = "clusters"
    requires_fit = True

    def __init__(self, k=8, psi=0.7, levels=("coarse", "middle", "fine"), method="gmm", keep_last=True,
                 covariance_type="full", max_iter=100):
        self.levels = _check_levels(levels)
        names = list(self.levels)
        if isinstance(k, dict):
            if set(k) != set(names):
                raise ValueError(f"k must give one count per level {names}, got keys {sorted(k)}")
            self.k = {n: check_int(f"k[{n!r}]", k[n], lo=1) for n in names}
        else:
            self.k = check_int("k", k, lo=1)
        self.psi = check_number("psi", psi)
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        self.method = method
        if not isinstance(keep_last, bool):
            raise ValueError(f"keep_last must be True or False, got {keep_last!r}")
        self.keep_last = keep_last
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {', '.join(COVARIANCE_TYPES)}, got {covariance_type!r}")
        self.covariance_type = covariance_type
        self.max_iter = check_int("max_iter", max_iter, lo=1)
        self.layers_ = None  # level -> ws indices, set by fit
        self.params_ = {}  # level -> estimator arrays (ESTIMATOR_FIELDS)
        self.centers = {}  # level -> [k, w_dim] float32 tensor

    @property
    def name(self):
        k = self.k if isinstance(self.k, int) else ",".join(f"{n}:{v}" for n, v in self.k.items())
        method = f"gmm-{self.covariance_type}" if self.method == "gmm" else self.method
        return f"clusters {method} k={k} psi={self.psi:g}"

    @property
    def is_fitted(self):
        return self.layers_ is not None

    def k_for(self, level):
        return self.k if isinstance(self.k, int) else self.k[level]

    def resolve_layers(self, G):
        """level -> ws indices for G (or for a number of ws layers, with levels given as a dict)."""
        num_ws = G if isinstance(G, int) else G.num_ws
        if isinstance(self.levels, dict):
            layers = {n: list(idx) for n, idx in self.levels.items()}
            bad = [i for idx in layers.values() for i in idx if i >= num_ws]
            if bad:
                raise ValueError(f"level layer {bad[0]} does not exist: the generator has ws layers 0-{num_ws - 1}")
        elif isinstance(G, int):
            raise ValueError("named levels need the generator to find their layers: pass G, or give levels as a dict")
        else:
            layers = {n: level_layers(G, n) for n in self.levels}
        if self.keep_last:
            layers = {n: [i for i in idx if i != num_ws - 1] for n, idx in layers.items()}
        empty = [n for n, idx in layers.items() if not idx]
        if empty and isinstance(self.levels, dict):
            raise ValueError(f"level {empty[0]!r} has no layers left (keep_last removes ws {num_ws - 1})")
        layers = {n: idx for n, idx in layers.items() if idx}
        if not layers:
            raise ValueError(f"none of the levels {list(self.levels)} has layers on this generator")
        return layers

    # --- fitting ------------------------------------------------------------------
    def fit(self, G, n_samples=10000, seed=0, batch_size=1000, progress=False):
        """Cluster the level codes of n_samples seeded ws; keeps only the codes in memory, not the ws."""
        layers = self.resolve_layers(G)
        codes = {n: np.empty((n_samples, G.w_dim), dtype=np.float32) for n in layers}
        for start, ws in sample_ws(G, n_samples, seed, batch_size, progress, desc="fitting clusters"):
            for n, idx in layers.items():
                codes[n][start:start + len(ws)] = ws[:, idx].mean(dim=1).float().cpu().numpy()
        return self.fit_codes(codes, layers, seed)

    def fit_ws(self, ws, G=None, seed=0):
        """Fit on given ws [N, num_ws, w_dim] (W+ codes allowed); G is needed for named levels."""
        ws = check_ws(G, torch.as_tensor(ws))
        layers = self.resolve_layers(G if G is not None else ws.shape[1])
        codes = {n: ws[:, idx].mean(dim=1).detach().cpu().numpy() for n, idx in layers.items()}
        return self.fit_codes(codes, layers, seed)

    def fit_codes(self, codes, layers, seed=0):
        """Fit one estimator per level on codes {level: [N, w_dim]}; layers {level: ws indices}."""
        params = {}
        for n in layers:
            X = np.asarray(codes[n], dtype=np.float64)  # full covariances in float32 lose definiteness
            if len(X) < self.k_for(n):
                raise ValueError(f"level {n!r}: {len(X)} samples cannot make {self.k_for(n)} clusters")
            params[n] = self._fit_estimator(X, self.k_for(n), seed)
        self.set_state({"layers": layers, "params": params})
        return self

    def _fit_estimator(self, X, k, seed):
        try:
            from sklearn.cluster import KMeans
            from sklearn.mixture import GaussianMixture
        except ImportError:  # an optional dependency: only fitting needs it, loading a fitted file does not
            raise ImportError("fitting cluster truncation needs scikit-learn: pip install 'latentlab[analysis]'") from None
        if self.method == "gmm":
            est = GaussianMixture(n_components=k, covariance_type=self.covariance_type, max_iter=self.max_iter,
                                  random_state=seed).fit(X)
            return {"means": est.means_, "covariances": est.covariances_, "weights": est.weights_,
                    "precisions_cholesky": est.precisions_cholesky_}
        est = KMeans(n_clusters=k, max_iter=self.max_iter, n_init=1, random_state=seed).fit(X)
        return {"cluster_centers": est.cluster_centers_}

    # --- the two overridable steps --------------------------------------------
    def assign(self, level, codes):
        """Cluster id [N] (long) of each level code [N, w_dim]: the most likely component / nearest center."""
        p = {f: torch.from_numpy(a).to(codes.device) for f, a in self.params_[level].items()}
        x = codes.to(torch.float64)
        if self.method == "kmeans":
            c = p["cluster_centers"]
            sq = (x * x).sum(1, keepdim=True) - 2 * x @ c.T + (c * c).sum(1)
            return sq.argmin(dim=1)
        return _gmm_log_likelihood(x, p, self.covariance_type).argmax(dim=1)

    def move(self, ws, level, ids):
        """ws with the level's layers moved toward centers[level][ids] by psi (psi=0: onto the center)."""
        idx = self.layers_[level]
        target = self.centers[level].to(device=ws.device, dtype=ws.dtype)[ids.to(ws.device)]  # [N, w_dim]
        out = ws.clone()
        out[:, idx] = target.unsqueeze(1).lerp(ws[:, idx], self.psi)
        return out

    # --- use --------------------------------------------------------------------
    def transform_ws(self, G, ws):
        return self._apply(G, ws, {})

    def generate(self, G, z, clusters, c=None):
        """Controlled generation: ws truncated toward the chosen cluster per level ({'coarse': 3, ...}).

        A value may be one id for all samples or one per sample; levels not named keep
        their predicted cluster. Returns ws; G.synthesis(ws) renders them.
        """
        return self._apply(G, map_z(G, z, c), clusters)

    def predict(self, x, level, z=None, c=None):
        """Cluster ids [N] of a level for a generator and z, ws [N, num_ws, w_dim] or level codes [N, w_dim]."""
        self._check_level(level)
        if isinstance(x, torch.nn.Module):
            if z is None:
                raise ValueError("predict(G, level) needs z")
            x = map_z(x, z, c)
        x = torch.as_tensor(x)
        if x.ndim == 3:
            x = x[:, self.layers_[level]].mean(dim=1)
        elif x.ndim != 2:
            raise ValueError(f"expected ws [N, num_ws, w_dim] or codes [N, w_dim], got shape {tuple(x.shape)}")
        return self.assign(level, x)

    def _apply(self, G, ws, clusters):
        ws = check_ws(G, ws)
        self._check_fitted()
        top = max(i for idx in self.layers_.values() for i in idx)
        if top >= ws.shape[1]:
            raise ValueError(f"fitted on a generator with more ws layers: level layer {top} does not exist here")
        for level in clusters:
            self._check_level(level)
        out = ws
        for level, idx in self.layers_.items():
            if level in clusters:
                ids = self._chosen_ids(level, clusters[level], len(ws), ws.device)
            else:
                ids = self.assign(level, ws[:, idx].mean(dim=1))
            out = self.move(out, level, ids)
        return out

    def _chosen_ids(self, level, value, n, device):
        ids = torch.as_tensor(value, dtype=torch.long, device=device)
        if ids.ndim == 0:
            ids = ids.expand(n)
        k = len(self.centers[level])
        if ids.shape != (n,) or ids.min() < 0 or ids.max() >= k:
            raise ValueError(f"cluster for level {level!r} must be an id in 0-{k - 1} or {n} of them, got {value!r}")
        return ids

    def _check_fitted(self):
        if not self.is_fitted:
            raise NotFittedError("ClusterTruncation is not fitted: call fit(G) first or load a fitted file")

    def _check_level(self, level):
        self._check_fitted()
        if level not in self.layers_:
            raise ValueError(f"unknown level {level!r}; fitted levels: {', '.join(self.layers_)}")

    # --- serialisation ------------------------------------------------------------
    def get_params(self):
        levels = dict(self.levels) if isinstance(self.levels, dict) else list(self.levels)
        return {"k": self.k, "psi": self.psi, "levels": levels, "method": self.method, "keep_last": self.keep_last,
                "covariance_type": self.covariance_type, "max_iter": self.max_iter}

    def get_state(self):
        if not self.is_fitted:
            return {}
        return {"layers": self.layers_, "params": self.params_}

    def set_state(self, state):
        if not state:
            return
        layers = {str(n): [int(i) for i in idx] for n, idx in state["layers"].items()}
        params, centers = {}, {}
        for n in layers:
            fields = state["params"][n]
            missing = [f for f in ESTIMATOR_FIELDS[self.method] if f not in fields]
            if missing:
                raise ValueError(f"level {n!r}: the fitted {self.method} state lacks {', '.join(missing)}")
            params[n] = {f: np.asarray(fields[f], dtype=np.float64) for f in ESTIMATOR_FIELDS[self.method]}
            mean = params[n]["means" if self.method == "gmm" else "cluster_centers"]
            centers[n] = torch.from_numpy(mean.astype(np.float32))
        self.layers_, self.params_, self.centers = layers, params, centers


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


def _check_levels(levels):
    if isinstance(levels, dict):
        if not levels:
            raise ValueError("levels must name at least one level")
        out, seen = {}, {}
        for name, idx in levels.items():
            if isinstance(idx, (str, bytes)) or not hasattr(idx, "__iter__"):
                raise ValueError(f"level {name!r}: give a list of ws indices, got {idx!r}")
            idx = sorted({check_int(f"level {name!r} layer", i) for i in idx})
            if not idx:
                raise ValueError(f"level {name!r} has no layers")
            for i in idx:
                if i in seen:
                    raise ValueError(f"ws layer {i} is in both level {seen[i]!r} and level {name!r}")
                seen[i] = name
            out[str(name)] = idx
        return out
    if isinstance(levels, str):
        levels = [levels]
    levels = list(levels)
    if not levels:
        raise ValueError("levels must name at least one level")
    canonical = [LEVEL_ALIASES.get(n, n) for n in levels]
    for n in levels:
        if not isinstance(n, str) or LEVEL_ALIASES.get(n, n) not in LEVELS:
            raise ValueError(f"unknown level {n!r}; use coarse, middle (medium), fine or a dict name -> ws indices")
    if len(set(canonical)) != len(canonical):
        raise ValueError(f"levels repeat a level: {levels}")
    return tuple(levels)


# --- learned clusters ----------------------------------------------------------------
LEAKY_SLOPE = 0.2  # slope of the hidden layers' LeakyReLU in the learned MLPs (mapping, classifier, critic)


def mlp_forward(x, weights, biases, slope=LEAKY_SLOPE):
    """A plain MLP: F.linear per layer, LeakyReLU(slope) after every layer but the last.

    weights[i] is [out, in] and biases[i] is [out] (nn.Linear's layout). The trainer
    (`latentlab.train.clusters`) runs the same function, so a saved file predicts bit for bit
    what the trained networks did (same dtype and device).
    """
    for i, (w, b) in enumerate(zip(weights, biases)):
        x = torch.nn.functional.linear(x, w, b)
        if i < len(weights) - 1:
            x = torch.nn.functional.leaky_relu(x, slope)
    return x


LEARNED_FIELDS = ("mu", "log_sigma", "log_weights", "centers", "mapping", "classifier")


class LearnedClusterTruncation(ClusterTruncation):
    """Cluster truncation with learned per-level mappings (Katzir et al. 2022, "Multi-level latent space structuring").

    Per level l: a mixture of K Gaussians N(mu_k, diag(sigma_k^2)) in an input space of
    z_dim dimensions, a mapping MLP M_l into W and a classifier MLP C_l on level codes.
    Centers are c_{l,k} = M_l(mu_k); `assign` is argmax C_l(code); `move` is the base
    class's w_l <- c + psi (w_l - c). Trained by `latentlab.train.clusters.train_cluster_mappings`
    (there is no `fit`); save/load store every network as plain arrays (no pickle, no module code).

    State per level (`nets_[level]`): mu [K, x_dim], log_sigma [K, x_dim], log_weights [K],
    centers [K, w_dim], mapping / classifier {'weights': [W_i [out, in]], 'biases': [b_i [out]]}
    (float32; hidden layers LeakyReLU(0.2), last layer linear).
    """

    kind = "learned-clusters"
    requires_fit = True

    def __init__(self, k=8, psi=0.7, levels=("coarse", "middle", "fine"), keep_last=True):
        super().__init__(k=k, psi=psi, levels=levels, keep_last=keep_last)
        self.nets_ = {}  # level -> {field: float32 tensors}, see the class docstring
        self.info_ = {}  # training record (steps, final classifier accuracy); informative only

    @property
    def name(self):
        k = self.k if isinstance(self.k, int) else ",".join(f"{n}:{v}" for n, v in self.k.items())
        return f"learned clusters k={k} psi={self.psi:g}"

    def fit(self, G, n_samples=10000, seed=0, batch_size=1000, progress=False):
        raise ValueError("learned clusters are trained, not fitted: use latentlab.train.clusters.train_cluster_mappings "
                         "(or `latentlab train clusters`) and load the clusters file it writes")

    def fit_codes(self, codes, layers, seed=0):
        self.fit(None)

    def _check_fitted(self):
        if not self.is_fitted:
            raise NotFittedError("LearnedClusterTruncation holds no trained networks: load a clusters file written by "
                                 "latentlab.train.clusters.train_cluster_mappings")

    # --- the learned networks -----------------------------------------------------
    def classify(self, level, codes):
        """Classifier logits [N, K] of level codes [N, w_dim]."""
        return self._run(level, "classifier", codes)

    def map(self, level, x):
        """M_l(x): mapping-network inputs [N, x_dim] -> level codes [N, w_dim]."""
        return self._run(level, "mapping", x)

    def _run(self, level, which, x):
        level = _canonical(level)
        self._check_level(level)
        net = self.nets_[level][which]
        dev = x.device
        return mlp_forward(x.to(torch.float32), [w.to(dev) for w in net["weights"]], [b.to(dev) for b in net["biases"]])

    def sample_codes(self, level, ids, eps):
        """Codes M_l(mu_k + sigma_k * eps) of Gaussians ids [N] for standard-normal eps [N, x_dim]."""
        level = _canonical(level)
        self._check_level(level)
        n = self.nets_[level]
        eps = torch.as_tensor(eps).to(torch.float32)
        ids = self._chosen_ids(level, ids, len(eps), eps.device)
        mu, sigma = n["mu"].to(eps.device)[ids], n["log_sigma"].to(eps.device)[ids].exp()
        return self.map(level, mu + sigma * eps)

    def assign(self, level, codes):
        """Cluster id [N] of each level code: argmax of the level's classifier."""
        return self.classify(level, codes).argmax(dim=1)

    def predict(self, x, level, z=None, c=None):
        return super().predict(x, _canonical(level), z=z, c=c)

    def generate(self, G, z, clusters, c=None, eps=None):
        """Controlled generation: per chosen level, codes sampled from that level's Gaussian k through M_l.

        clusters: {level: id or [N] ids}. For a chosen level the layers get
        M_l(mu_k + sigma_k * eps) (eps defaults to z, so a z gives one image per choice),
        then move toward c_{l,k} by psi. Levels not chosen keep the original mapping's
        w, truncated toward their predicted cluster; the last layer (keep_last) keeps the
        original code. Returns ws; G.synthesis(ws) renders them.
        """
        self._check_fitted()
        clusters = {_canonical(level): v for level, v in clusters.items()}
        for level in clusters:
            self._check_level(level)
        ws = check_ws(G, map_z(G, z, c))
        eps = z if eps is None else torch.as_tensor(eps, device=ws.device)
        x_dim = next(iter(self.nets_.values()))["mu"].shape[1]
        if eps.ndim != 2 or eps.shape != (len(ws), x_dim):
            raise ValueError(f"eps must be [{len(ws)}, {x_dim}] (the mixtures' input size), got {tuple(eps.shape)}")
        out = ws.clone()
        for level, value in clusters.items():
            ids = self._chosen_ids(level, value, len(ws), ws.device)
            codes = self.sample_codes(level, ids, eps.to(ws.device)).to(ws.dtype)
            out[:, self.layers_[level]] = codes.unsqueeze(1)
        return self._apply(G, out, clusters)

    # --- serialisation ------------------------------------------------------------
    def get_params(self):
        levels = dict(self.levels) if isinstance(self.levels, dict) else list(self.levels)
        return {"k": self.k, "psi": self.psi, "levels": levels, "keep_last": self.keep_last}

    def get_state(self):
        if not self.is_fitted:
            return {}
        nets = {}
        for level, n in self.nets_.items():
            nets[level] = {f: n[f].numpy() for f in LEARNED_FIELDS[:4]}
            for f in ("mapping", "classifier"):
                nets[level][f] = {p: [a.numpy() for a in n[f][p]] for p in ("weights", "biases")}
        return {"layers": self.layers_, "nets": nets, "info": self.info_}

    def set_state(self, state):
        if not state:
            return
        layers = {str(n): [int(i) for i in idx] for n, idx in state["layers"].items()}
        nets, centers = {}, {}
        for level in layers:
            raw = state["nets"].get(level) if isinstance(state.get("nets"), dict) else None
            if raw is None:
                raise ValueError(f"level {level!r}: the learned-clusters state has no networks")
            missing = [f for f in LEARNED_FIELDS if f not in raw]
            if missing:
                raise ValueError(f"level {level!r}: the learned-clusters state lacks {', '.join(missing)}")
            n = {f: _f32(raw[f]) for f in LEARNED_FIELDS[:4]}
            for f in ("mapping", "classifier"):
                n[f] = {p: [_f32(a) for a in raw[f][p]] for p in ("weights", "biases")}
            _check_learned(level, n, self.k_for(level))
            nets[level], centers[level] = n, n["centers"]
        self.layers_, self.nets_, self.centers = layers, nets, centers
        self.params_ = {}
        self.info_ = dict(state.get("info") or {})


def _canonical(level):
    return LEVEL_ALIASES.get(level, level) if isinstance(level, str) else level


def _f32(a):
    return torch.from_numpy(np.array(a, dtype=np.float32))  # a copy: the state never aliases the caller's arrays


def _check_learned(level, n, k):
    """Shapes of one level's learned networks fit together (else a clear ValueError)."""
    def bad(what):
        raise ValueError(f"level {level!r}: inconsistent learned-clusters state: {what}")

    mu, log_sigma, log_weights, centers = n["mu"], n["log_sigma"], n["log_weights"], n["centers"]
    if mu.ndim != 2 or mu.shape[0] != k:
        bad(f"mu has shape {tuple(mu.shape)}, expected [{k}, x_dim]")
    if log_sigma.shape != mu.shape or log_weights.shape != (k,):
        bad(f"log_sigma {tuple(log_sigma.shape)} / log_weights {tuple(log_weights.shape)} do not match mu {tuple(mu.shape)}")
    for f, d_in, d_out in (("mapping", mu.shape[1], centers.shape[-1]), ("classifier", centers.shape[-1], k)):
        ws, bs = n[f]["weights"], n[f]["biases"]
        if not ws or len(ws) != len(bs):
            bad(f"{f} needs as many weights as biases, at least one")
        dims = [d_in]
        for w, b in zip(ws, bs):
            if w.ndim != 2 or w.shape[1] != dims[-1] or b.shape != (w.shape[0],):
                bad(f"{f} layer {len(dims) - 1}: weight {tuple(w.shape)}, bias {tuple(b.shape)} after width {dims[-1]}")
            dims.append(w.shape[0])
        if dims[-1] != d_out:
            bad(f"{f} ends with width {dims[-1]}, expected {d_out}")
    if centers.shape != (k, centers.shape[-1]):
        bad(f"centers have shape {tuple(centers.shape)}, expected [{k}, w_dim]")
