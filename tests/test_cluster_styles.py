"""Fitted cluster truncation on the levels' styles: levels get their own clusters, and the move is exact in style space."""

import importlib.util
import json

import numpy as np
import pytest
import torch
from torch import nn

from conftest import make_tiny_generator
from latentlab import Generator
from latentlab.truncation import ClusterTruncation, Truncation

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None, reason="cluster fitting needs scikit-learn"
)

COARSE, MIDDLE = [0, 1, 2], [3, 4]  # tiny generator: 6 ws; ws 5 (the last) keeps its code


@pytest.fixture(autouse=True)
def no_grad():
    with torch.no_grad():
        yield


def tiny(split=False):
    """The tiny 16 px generator; split=True: coarse style layers read only w[:8], middle (and last) only w[8:]."""
    G = make_tiny_generator()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
        if split:
            for _, layer, i in G.synthesis.style_layers():
                if i in COARSE:
                    layer.affine.weight[:, 8:] = 0
                else:
                    layer.affine.weight[:, :8] = 0
    return G


def zs(n, seed=0):
    return torch.from_numpy(np.random.RandomState(seed).randn(n, 16).astype(np.float32))


def styles_of(G, ws):
    """name -> [N, C] float64, through the public S-space API (independent of the truncation's own code)."""
    return {k: v.double() for k, v in G.synthesis.compute_styles(ws).items()}


def names_at(G, idx):
    return [name for name, _, i in G.synthesis.style_layers() if i in idx]


def matched_distances(a, b):
    from scipy.optimize import linear_sum_assignment

    d = torch.cdist(a.double(), b.double()).numpy()
    rows, cols = linear_sum_assignment(d)
    return d[rows, cols]


# --- levels get their own clusters -------------------------------------------------------------
@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_levels_do_not_share_their_clusters(method):
    G = tiny(split=True)
    kw = dict(k=4, levels=("coarse", "middle"), method=method)
    t = ClusterTruncation(**kw).fit(G, n_samples=600, batch_size=250)
    assert t.representation == "styles" and t.layers_ == {"coarse": COARSE, "middle": MIDDLE}
    coarse, middle = t.centers_["coarse"][:, 0], t.centers_["middle"][:, 0]
    spread = min(torch.pdist(coarse.double()).median(), torch.pdist(middle.double()).median())
    assert matched_distances(coarse, middle).min() > 0.25 * spread  # every coarse centre is far from every middle one
    # each level's centres spread along the W directions its own styles read
    for level, own in (("coarse", slice(0, 8)), ("middle", slice(8, 16))):
        c = t.centers_[level][:, 0].double()
        c = c - c.mean(0)
        assert (c[:, own] ** 2).sum() > 0.55 * (c**2).sum(), level
    # the 'w' baseline clusters one W for every level: identical centres, which is what the styles avoid
    w = ClusterTruncation(**kw, representation="w").fit(G, n_samples=600, batch_size=250)
    assert torch.allclose(w.centers_["coarse"][:, 0], w.centers_["middle"][:, 0], atol=1e-6)


class SharedPlantedMapping(nn.Module):
    """Like a real mapping, one w on every layer: w[:8] near one of 3 centres, w[8:] near one of 4 (independently)."""

    def __init__(self, num_ws):
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.num_ws, self.w_dim = num_ws, 16
        self.a, self.b = 4 * torch.randn(3, 8, generator=g), 4 * torch.randn(4, 8, generator=g)
        self.register_buffer("w_avg", torch.zeros(16))

    def ids(self, z):
        return z[:, :3].argmax(1), z[:, 3:7].argmax(1)

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, **_):
        ia, ib = self.ids(z)
        w = torch.cat([self.a[ia], self.b[ib]], dim=1) + 0.02 * z.roll(5, dims=1)
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)


def test_each_level_recovers_its_own_planted_clusters():
    G = tiny(split=True)
    G.mapping = SharedPlantedMapping(G.num_ws)
    t = ClusterTruncation(k={"coarse": 3, "middle": 4}, psi=0.0, levels=("coarse", "middle")).fit(G, n_samples=800)
    z = zs(60, seed=3)
    ia, ib = G.mapping.ids(z)
    z_fit = zs(800, seed=0)  # the fitting sample (fit draws z from RandomState(seed))
    w_fit = G.mapping(z_fit)[:, 0]
    for level, planted, own, truth in (
        ("coarse", G.mapping.a, slice(0, 8), ia),
        ("middle", G.mapping.b, slice(8, 16), ib),
    ):
        c = t.centers_[level][:, 0]
        d = torch.cdist(planted.double(), c[:, own].double())
        to = d.argmin(1)
        assert sorted(to.tolist()) == list(range(len(planted))) and d.min(1).values.max() < 0.05, level
        assert torch.equal(t.predict(G, level, z=z), to[truth])
        # the whole centre, the other half of W included, is the mean of the members' w
        members = to[G.mapping.ids(z_fit)[0 if own.start == 0 else 1]]
        for k in range(len(planted)):
            torch.testing.assert_close(c[k], w_fit[members == k].mean(0), rtol=0, atol=1e-4)


# --- the move is the style-space move ------------------------------------------------------------
@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_moving_toward_the_w_centre_moves_every_style_toward_the_level_centroid(method):
    G = tiny()
    ws_fit = G.mapping(zs(500, seed=1), None)
    t = ClusterTruncation(k=3, psi=0.3, levels=("coarse", "middle"), method=method, dims=6).fit_ws(ws_fit, G)
    s_fit = styles_of(G, ws_fit)
    ws = G.mapping(zs(40, seed=2), None)
    s, s_moved = styles_of(G, ws), styles_of(G, t.transform_ws(G, ws))
    for level, idx in t.layers_.items():
        feats = t.features(G, ws_fit, level).numpy()
        if method == "kmeans":
            labels = t.predict(ws_fit, level, G=G).numpy()
            r = np.eye(3)[labels]  # 0/1 membership
        else:
            from sklearn.mixture import GaussianMixture

            gmm = GaussianMixture(3, covariance_type="full")  # sklearn's own posteriors from the stored parameters
            for f, a in t.params_[level].items():
                setattr(gmm, f"{f}_", a)
            r = gmm.predict_proba(feats)
        ids = t.predict(ws, level, G=G).numpy()
        for name in names_at(G, idx):
            centroid = (r.T @ s_fit[name].numpy()) / r.sum(0)[:, None]  # weighted mean of the members' styles
            expected = centroid[ids] + 0.3 * (s[name].numpy() - centroid[ids])
            np.testing.assert_allclose(s_moved[name].numpy(), expected, rtol=0, atol=2e-5, err_msg=name)
    for name in names_at(G, [5]):  # the last ws index keeps its code
        assert torch.equal(s_moved[name], s[name])


def test_the_pca_is_the_level_styles_own():
    G = tiny()
    ws = G.mapping(zs(400, seed=4), None)
    full = ClusterTruncation(k=2, levels=("coarse", "middle"), dims=None, method="kmeans").fit_ws(ws, G, batch_size=64)
    low = ClusterTruncation(k=2, levels=("coarse", "middle"), dims=5, method="kmeans").fit_ws(ws, G, batch_size=1000)
    s = styles_of(G, ws)
    for level, idx in full.layers_.items():
        X = np.concatenate([s[name].numpy() for name in names_at(G, idx)], axis=1)
        assert full.style_layers_[level] == names_at(G, idx)
        np.testing.assert_allclose(full.pca_[level]["mean"], X.mean(0), atol=1e-9)
        assert full.pca_[level]["components"].shape == (16, X.shape[1])  # styles are affine in w: rank w_dim
        evals, evecs = np.linalg.eigh(np.cov(X.T, bias=True))
        top = evecs[:, ::-1][:, :5]
        comps = low.pca_[level]["components"]
        np.testing.assert_allclose(comps @ comps.T, np.eye(5), atol=1e-9)
        np.testing.assert_allclose(comps.T @ comps, top @ top.T, atol=1e-6)  # the same 5-dim subspace


def test_style_clusters_need_their_generator(tmp_path):
    G = tiny()
    t = ClusterTruncation(k=2, levels=("coarse",), method="kmeans").fit(G, n_samples=50)
    ws = G.mapping(zs(4), None)
    with pytest.raises(ValueError, match="pass the generator"):
        t.predict(ws, "coarse")
    with pytest.raises(ValueError, match="needs the generator|fit_ws\\(ws, G\\)"):
        ClusterTruncation(k=2).fit_ws(ws)
    wider = Generator(
        z_dim=16,
        c_dim=0,
        w_dim=16,
        img_resolution=16,
        img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=512, channel_max=32),
    ).eval()
    with pytest.raises(ValueError, match="fitted on another generator"):
        t.transform_ws(wider, wider.mapping(zs(4), None))


def test_style_state_round_trips_and_old_w_files_still_load(tmp_path):
    G = tiny()
    z = zs(20, seed=5)
    t = ClusterTruncation(k=3, psi=0.4, levels=("coarse", "middle"), dims=5).fit(G, n_samples=200)
    path = t.save(tmp_path / "c.npz")
    with np.load(path, allow_pickle=False) as f:
        assert all(f[key].dtype != object for key in f.files)
    for u in (Truncation.load(path), Truncation.from_dict(json.loads(json.dumps(t.to_dict())))):
        assert (u.representation, u.dims, u.style_layers_, u.info_) == (
            "styles",
            5,
            t.style_layers_,
            {"n_samples": 200},
        )
        for level in t.layers_:
            assert torch.equal(u.centers_[level], t.centers_[level])
            for f in ("mean", "components"):
                assert np.array_equal(u.pca_[level][f], t.pca_[level][f])
        assert torch.equal(u(G, z), t(G, z))
    # a file from before the representation existed: W clustering, centres = estimator means, no 'centers' entry
    w = ClusterTruncation(k=3, psi=0.4, levels=("coarse", "middle"), representation="w").fit(G, n_samples=200)
    old = w.to_dict()
    for key in ("representation", "dims"):
        del old["params"][key]
    old["state"] = {"layers": old["state"]["layers"], "params": old["state"]["params"]}
    loaded = Truncation.from_dict(json.loads(json.dumps(old)))
    assert loaded.representation == "w" and "w k=3" in loaded.name
    assert torch.equal(loaded(G, z), w(G, z))
    mismatch = t.to_dict()
    mismatch["params"]["representation"] = "w"
    with pytest.raises(ValueError, match="clusters 'styles' but the parameters say 'w'"):
        Truncation.from_dict(mismatch)
