import importlib.util
import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from latentlab import Generator
from latentlab.latents.layers import level_layers
from latentlab.models.stylegan1 import StyleGAN1Generator
from latentlab.truncation import (
    ClusterTruncation,
    LayerScheduleTruncation,
    NotFittedError,
    NoTruncation,
    RadiusClamp,
    Truncation,
    WTruncation,
    ZTruncatedNormal,
    compare,
    parse_truncation,
)

needs_sklearn = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None, reason="cluster fitting needs scikit-learn"
)


@pytest.fixture(autouse=True)
def no_grad():
    with torch.no_grad():  # outputs go to NumPy
        yield


@pytest.fixture
def G1():
    torch.manual_seed(1)
    G = StyleGAN1Generator(latent_size=8, dlatent_size=8, resolution=16, mapping_layers=2, fmap_base=32, fmap_max=8)
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    return G.eval()


def zs(n, z_dim, seed=0):
    return torch.from_numpy(np.random.RandomState(seed).randn(n, z_dim).astype(np.float32))


# --- W truncation -----------------------------------------------------------------
def test_psi_one_is_identity(tiny_generator):
    G, z = tiny_generator, zs(4, 16)
    ws = G.mapping(z, None)
    assert torch.equal(WTruncation(1.0)(G, z), ws)
    assert torch.equal(WTruncation(1.0, cutoff=2).transform_ws(G, ws), ws)
    assert torch.equal(NoTruncation()(G, z), ws)


def test_psi_zero_gives_center_on_cut_layers_only(tiny_generator):
    G, z = tiny_generator, zs(4, 16)
    ws = G.mapping(z, None)
    out = WTruncation(0.0, cutoff=2)(G, z)
    assert torch.equal(out[:, :2], G.mapping.w_avg.expand(4, 2, 16))
    assert torch.equal(out[:, 2:], ws[:, 2:])


@pytest.mark.parametrize("psi,cutoff", [(0.7, None), (0.5, 3), (-0.4, 1), (1.3, 8)])
def test_w_truncation_equals_builtin_mapping(tiny_generator, G1, psi, cutoff):
    for G in (tiny_generator, G1):
        z = zs(5, G.z_dim)
        assert torch.equal(
            WTruncation(psi, cutoff)(G, z), G.mapping(z, None, truncation_psi=psi, truncation_cutoff=cutoff)
        )


def test_schedule_matches_per_layer_hand_computation(tiny_generator):
    G, z = tiny_generator, zs(3, 16)
    psis = [1.0, 0.9, 0.5, 0.0, 0.25, -1.0]
    ws = G.mapping(z, None).double().numpy()
    avg = G.mapping.w_avg.double().numpy()
    expected = np.stack([avg + p * (ws[:, l] - avg) for l, p in enumerate(psis)], axis=1)
    np.testing.assert_allclose(LayerScheduleTruncation(psis)(G, z).numpy(), expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="5 psis .* 6 ws layers"):
        LayerScheduleTruncation(psis[:5])(G, z)


def test_custom_centers(tiny_generator):
    G, z = tiny_generator, zs(3, 16)
    ws = G.mapping(z, None).double().numpy()
    c = np.linspace(-1, 1, 16)
    got = WTruncation(0.25, center=c)(G, z).numpy()
    np.testing.assert_allclose(got, c + 0.25 * (ws - c), atol=1e-5)
    per_layer = np.arange(6 * 16, dtype=np.float64).reshape(6, 16) / 10
    got = WTruncation(0.0, cutoff=4, center=per_layer)(G, z).numpy()
    np.testing.assert_allclose(got[:, :4], np.broadcast_to(per_layer[:4], (3, 4, 16)), atol=1e-6)
    np.testing.assert_allclose(got[:, 4:], ws[:, 4:], atol=1e-6)
    with pytest.raises(ValueError, match=r"\[7\].*\[16\].*\[6, 16\]"):
        WTruncation(0.5, center=np.zeros(7))(G, z)


def test_mapping_left_in_train_mode_keeps_w_avg(tiny_generator):
    G = tiny_generator.train()
    before = G.mapping.w_avg.clone()
    WTruncation(0.7)(G, zs(4, 16))
    assert torch.equal(G.mapping.w_avg, before)


@pytest.mark.parametrize(
    "make",
    [
        lambda: WTruncation("a"),
        lambda: WTruncation(0.5, cutoff=-1),
        lambda: WTruncation(math.nan),
        lambda: LayerScheduleTruncation([]),
        lambda: ZTruncatedNormal(0),
        lambda: RadiusClamp(0),
        lambda: RadiusClamp(101),
        lambda: ClusterTruncation(method="dbscan"),
        lambda: ClusterTruncation(k=0),
        lambda: ClusterTruncation(k={"coarse": 2}),
        lambda: ClusterTruncation(levels=("coarse", "tiny")),
        lambda: ClusterTruncation(levels={"a": [0, 1], "b": [1, 2]}),
        lambda: ClusterTruncation(representation="s"),
        lambda: ClusterTruncation(dims=0),
    ],
)
def test_bad_arguments_raise_value_error(make):
    with pytest.raises(ValueError):
        make()


# --- Z truncation ---------------------------------------------------------------
def test_z_resampling_bounds_keeps_inside_and_is_deterministic(tiny_generator):
    t = ZTruncatedNormal(1.5)
    z = 2 * zs(64, 16)
    out = t.truncate_z(z)
    inside = z.abs() <= 1.5
    assert out.abs().max() <= 1.5
    assert torch.equal(out[inside], z[inside])
    assert (out[~inside] != z[~inside]).all() and (~inside).sum() > 100
    assert torch.equal(t.truncate_z(z), out)
    assert torch.equal(t.truncate_z(z[10:13]), out[10:13])  # a row's result does not depend on its batch
    assert not torch.equal(ZTruncatedNormal(1.5, seed=1).truncate_z(z)[~inside], out[~inside])
    assert torch.equal(t(tiny_generator, z), tiny_generator.mapping(out, None))
    with pytest.raises(TypeError, match="acts on z"):
        t.transform_ws(tiny_generator, tiny_generator.mapping(z, None))


def test_z_resampled_entries_follow_the_truncated_normal():
    # every entry is outside, so all are redrawn: N(0,1) given |x| <= 1 has variance
    # 1 - 2 phi(1) / (2 Phi(1) - 1) = 0.2911 (a uniform redraw would give 1/3)
    z = torch.full([1000, 20], 5.0)
    z[:, 0] += torch.arange(1000)  # distinct rows: equal rows would get equal draws
    out = ZTruncatedNormal(1.0).truncate_z(z)
    phi = math.exp(-0.5) / math.sqrt(2 * math.pi)
    var = 1 - 2 * phi / math.erf(1 / math.sqrt(2))
    assert abs(out.mean().item()) < 0.01
    assert abs(out.var().item() - var) < 0.01


# --- radius clamp -----------------------------------------------------------------
def test_radius_clamp_projects_outside_points_only(tiny_generator):
    G = tiny_generator
    g = torch.Generator().manual_seed(0)
    d = torch.randn(8, 6, 16, generator=g)
    d = d / d.norm(dim=-1, keepdim=True)
    radii = torch.tensor([0.5, 1.0, 1.9, 2.1, 3.0, 10.0, 0.0, 100.0]).view(8, 1, 1)
    ws = G.mapping.w_avg + d * radii
    out = RadiusClamp(radius=2.0).transform_ws(G, ws)
    inside = radii.flatten() <= 2
    assert torch.equal(out[inside], ws[inside])
    moved = out[~inside] - G.mapping.w_avg
    np.testing.assert_allclose(moved.norm(dim=-1).numpy(), 2.0, rtol=1e-5)
    np.testing.assert_allclose((moved / 2.0).numpy(), d[~inside].numpy(), atol=1e-5)


def test_radius_clamp_fit_takes_the_percentile(tiny_generator):
    G = tiny_generator
    with pytest.raises(NotFittedError):
        RadiusClamp(90)(G, zs(2, 16))
    t = RadiusClamp(90).fit(G, n_samples=300, seed=3, batch_size=7)
    z = torch.from_numpy(np.random.RandomState(3).standard_normal((300, 16)).astype(np.float32))
    dist = (G.mapping(z, None)[:, 0] - G.mapping.w_avg).norm(dim=-1).numpy()
    assert t.radius_ == pytest.approx(np.percentile(dist, 90), rel=1e-6)
    assert RadiusClamp(90).fit(G, n_samples=300, seed=3, batch_size=1000).radius_ == t.radius_
    full = RadiusClamp(100).fit(G, n_samples=300, seed=3)
    ws = G.mapping(z, None)
    torch.testing.assert_close(full.transform_ws(G, ws), ws, rtol=0, atol=1e-5)  # the farthest point is on the sphere
    assert (t.transform_ws(G, ws) != ws).any(dim=-1).any(dim=-1).sum() == 30


def test_fit_draws_labels_for_conditional_generators():
    torch.manual_seed(0)
    G = Generator(
        z_dim=8,
        c_dim=3,
        w_dim=8,
        img_resolution=8,
        img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=64, channel_max=8),
    ).eval()
    t = RadiusClamp(50).fit(G, n_samples=50, batch_size=16)
    assert t.radius_ > 0
    assert t(G, zs(2, 8), torch.eye(3)[:2]).shape == (2, G.num_ws, 8)


# --- cluster truncation ---------------------------------------------------------
class PlantedMapping(nn.Module):
    """Stands in for G.mapping: coarse layers sit near one of 3 centers, middle layers near one of 4 (W+)."""

    def __init__(self, num_ws, w_dim, coarse, middle):
        super().__init__()
        g = torch.Generator().manual_seed(42)
        self.num_ws, self.w_dim, self.coarse, self.middle = num_ws, w_dim, coarse, middle
        self.c_coarse = 4 * torch.randn(3, w_dim, generator=g)
        self.c_middle = 4 * torch.randn(4, w_dim, generator=g)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def ids(self, z):
        return z[:, :3].argmax(1), z[:, 3:7].argmax(1)

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, **_):
        ic, im = self.ids(z)
        ws = z.unsqueeze(1).repeat(1, self.num_ws, 1)  # the last layer keeps z itself
        noise = 0.01 * torch.cat([torch.zeros_like(z[:, :7]), z[:, 7:]], dim=1)  # independent of the ids: zero mean
        ws[:, self.coarse] = (self.c_coarse[ic] + noise).unsqueeze(1)
        ws[:, self.middle] = (self.c_middle[im] + noise.flip(1)).unsqueeze(1)
        return ws


@pytest.fixture
def planted(tiny_generator):
    G = tiny_generator
    assert level_layers(G, "coarse") == [0, 1, 2] and level_layers(G, "middle") == [3, 4, 5]
    G.mapping = PlantedMapping(G.num_ws, G.w_dim, [0, 1, 2], [3, 4])
    return G


def match(recovered, planted_centers, tol):
    """Index of the recovered center next to each planted one; asserts a one-to-one match within tol."""
    d = torch.cdist(planted_centers.double(), recovered.double())
    idx = d.argmin(1)
    assert sorted(idx.tolist()) == list(range(len(recovered)))
    assert d.min(1).values.max() < tol
    return idx


@needs_sklearn
@pytest.mark.parametrize("method,cov", [("gmm", "full"), ("gmm", "diag"), ("kmeans", "full")])
@pytest.mark.parametrize("rep", ["styles", "w"])
def test_clusters_recover_planted_centers(planted, method, cov, rep):
    G = planted
    t = ClusterTruncation(
        k={"coarse": 3, "middle": 4},
        psi=0.0,
        levels=("coarse", "middle"),
        method=method,
        covariance_type=cov,
        representation=rep,
    ).fit(G, n_samples=400, batch_size=64)
    assert t.layers_ == {"coarse": [0, 1, 2], "middle": [3, 4]}  # keep_last drops ws 5
    assert t.centers_["coarse"].shape == (3, 3, 16) and t.centers_["middle"].shape == (4, 2, 16)
    to_c = match(t.centers_["coarse"][:, 0], G.mapping.c_coarse, 0.01)
    to_m = match(t.centers_["middle"][:, 1], G.mapping.c_middle, 0.01)
    z = zs(50, 16, seed=9)
    ic, im = G.mapping.ids(z)
    assert torch.equal(t.predict(G, "coarse", z=z), to_c[ic])
    assert torch.equal(t.predict(G.mapping(z), "middle", G=G), to_m[im])


@needs_sklearn
def test_cluster_psi_moves_layers_toward_their_center_and_keeps_last(planted):
    G = planted
    z = zs(20, 16, seed=5)
    ws = G.mapping(z)
    t0 = ClusterTruncation(k={"coarse": 3, "middle": 4}, psi=0.0, levels=("coarse", "middle"), method="kmeans").fit(
        G, n_samples=300
    )
    out = t0(G, z)
    for level, idx in t0.layers_.items():
        assert torch.equal(out[:, idx], t0.centers_[level][t0.predict(ws, level, G=G)])
    assert torch.equal(out[:, 5], ws[:, 5])
    half = ClusterTruncation.from_dict({**t0.to_dict(), "params": {**t0.to_dict()["params"], "psi": 0.5}})
    expected = 0.5 * out + 0.5 * ws
    expected[:, 5] = ws[:, 5]
    torch.testing.assert_close(half(G, z), expected, rtol=0, atol=1e-5)
    every = ClusterTruncation(
        k={"coarse": 3, "middle": 4}, psi=0.0, levels=("coarse", "middle"), method="kmeans", keep_last=False
    ).fit(G, n_samples=300)
    assert every.layers_["middle"] == [3, 4, 5] and not torch.equal(every(G, z)[:, 5], ws[:, 5])


@needs_sklearn
def test_cluster_generate_uses_the_chosen_cluster(planted):
    G = planted
    t = ClusterTruncation(k={"coarse": 3, "middle": 4}, psi=0.0, levels=("coarse", "middle"), method="kmeans").fit(
        G, n_samples=300
    )
    z = zs(6, 16, seed=2)
    out = t.generate(G, z, clusters={"coarse": 2})
    assert torch.equal(out[:, :3], t.centers_["coarse"][2].expand(6, 3, 16))
    assert torch.equal(out[:, 3:], t(G, z)[:, 3:])
    per_sample = t.generate(G, z, clusters={"medium": [0, 1, 2, 3, 0, 1]})  # 'medium' is 'middle'
    assert torch.equal(per_sample[:, 3], t.centers_["middle"][[0, 1, 2, 3, 0, 1], 0])
    with pytest.raises(ValueError, match="0-2"):
        t.generate(G, z, clusters={"coarse": 3})
    with pytest.raises(ValueError, match="fitted levels"):
        t.generate(G, z, clusters={"fine": 0})


@needs_sklearn
@pytest.mark.parametrize("cov", ["full", "diag"])
def test_cluster_prediction_agrees_with_sklearn(cov):
    from sklearn.mixture import GaussianMixture

    codes = np.random.RandomState(0).standard_normal((300, 5))  # no clear clusters: many near-ties to get right
    ws = torch.from_numpy(np.repeat(codes[:, None], 3, axis=1))
    t = ClusterTruncation(
        k=4, levels={"all": [0, 1, 2]}, keep_last=False, covariance_type=cov, representation="w"
    ).fit_ws(ws, seed=1)
    ref = GaussianMixture(4, covariance_type=cov, random_state=1).fit(codes)
    assert np.array_equal(t.predict(ws, "all").numpy(), ref.predict(codes))


@needs_sklearn
def test_cluster_save_load_round_trip(planted, tmp_path):
    G = planted
    z = zs(30, 16, seed=4)
    t = ClusterTruncation(k={"coarse": 3, "middle": 4}, psi=0.3, levels=("coarse", "middle")).fit(G, n_samples=300)
    path = t.save(tmp_path / "clusters.npz")
    assert os.listdir(tmp_path) == ["clusters.npz"]
    with np.load(path, allow_pickle=False) as f:
        assert str(f["kind"]) == "clusters"
    for u in (
        Truncation.load(path),
        ClusterTruncation.load(path),
        Truncation.from_dict(json.loads(json.dumps(t.to_dict()))),
    ):
        assert u.layers_ == t.layers_ and u.k == t.k and u.psi == t.psi and u.method == "gmm"
        for level in t.layers_:
            assert torch.equal(u.centers_[level], t.centers_[level])
            assert torch.equal(u.predict(G, level, z=z), t.predict(G, level, z=z))
            for field, a in t.params_[level].items():
                assert np.array_equal(u.params_[level][field], a)
        assert torch.equal(u(G, z), t(G, z))
    unfitted = Truncation.load(ClusterTruncation(k=5).save(tmp_path / "u.npz"))
    assert unfitted.k == 5 and not unfitted.is_fitted
    with pytest.raises(NotFittedError):
        unfitted(G, z)
    with pytest.raises(ValueError, match="not a WTruncation"):
        WTruncation.load(path)


@needs_sklearn
def test_clusters_on_stylegan1(G1):
    t = ClusterTruncation(k=2, psi=0.0, method="kmeans").fit(G1, n_samples=100, batch_size=32)
    assert t.layers_ == {"coarse": [0, 1, 2, 3], "middle": [4]}  # 4,4,8,8,16,16 px; no fine level at 16 px
    z = zs(5, 8)
    ws, out = G1.mapping(z), t(G1, z)
    assert torch.equal(out[:, 5], ws[:, 5])
    assert torch.equal(out[:, :4], t.centers_["coarse"][t.predict(G1, "coarse", z=z)])
    assert t.style_layers_ == {"coarse": ["b4.conv0", "b4.conv1", "b8.conv0", "b8.conv1"], "middle": ["b16.conv0"]}
    assert G1.synthesis(out, noise_mode="const").shape == (5, 3, 16, 16)


# --- specs, files, compare ----------------------------------------------------------
@needs_sklearn
def test_spec_forms(tmp_path, tiny_generator):
    assert isinstance(parse_truncation("none"), NoTruncation)
    t = parse_truncation("w:0.7")
    assert isinstance(t, WTruncation) and (t.psi, t.cutoff) == (0.7, None)
    t = parse_truncation(" W:0.5@8 ")
    assert (t.psi, t.cutoff) == (0.5, 8) and t.name == "w psi=0.5 cutoff=8"
    t = parse_truncation("schedule:1,1,0.7")
    assert t.psis == [1.0, 1.0, 0.7] and t.name == "schedule psi=1x2,0.7"
    np.save(tmp_path / "c.npy", np.ones((1, 16), np.float32))
    t = parse_truncation(f"center:{tmp_path / 'c.npy'}:0.5")
    assert t.psi == 0.5 and t.center.shape == (16,)
    torch.testing.assert_close(t(tiny_generator, zs(2, 16)), 0.5 + 0.5 * tiny_generator.mapping(zs(2, 16), None))
    assert parse_truncation("z:2.5").threshold == 2.5
    assert parse_truncation("clamp:95").percentile == 95 and not parse_truncation("clamp:95").is_fitted
    t = parse_truncation("clusters:k=8,psi=0.6,method=kmeans,cov=diag,keep_last=no,levels=coarse+fine")
    got = (t.k, t.psi, t.method, t.covariance_type, t.keep_last, t.levels, t.representation, t.dims)
    assert got == (8, 0.6, "kmeans", "diag", False, ("coarse", "fine"), "styles", 64)
    t = parse_truncation("clusters:k=3,psi=0.5,rep=w")
    assert (t.representation, t.name) == ("w", "clusters gmm-full w k=3 psi=0.5")
    t = parse_truncation("clusters:k=3,psi=0.5,dims=none,levels=coarse+medium")
    assert (t.dims, t.levels, t.name) == (None, ("coarse", "middle"), "clusters gmm-full styles k=3 psi=0.5")
    fitted = ClusterTruncation(k=2, method="kmeans").fit(tiny_generator, n_samples=50)
    path = fitted.save(tmp_path / "fitted.npz")
    assert torch.equal(
        parse_truncation(f"clusters:{path}")(tiny_generator, zs(3, 16)), fitted(tiny_generator, zs(3, 16))
    )


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "w",
        "w:",
        "w:x",
        "w:0.7@x",
        "none:1",
        "foo:1",
        "z:-1",
        "clamp:0",
        "clamp:101",
        "schedule:1,a",
        "clusters:k=0",
        "clusters:bogus=1",
        "clusters:k",
        "center:0.5",
        "center:missing.npy:0.5",
        "clusters:missing.npz",
        "clusters:NOTCLUSTERS",
        "clusters:k=2,rep=s",
        "clusters:k=2,dims=x",
        "clusters:k=2,dims=0",
    ],
)
def test_bad_specs(spec, tmp_path):
    spec = spec.replace("NOTCLUSTERS", str(WTruncation(0.5).save(tmp_path / "w.npz")))
    with pytest.raises(ValueError, match="accepted: none, w:PSI") as e:
        parse_truncation(spec)
    assert "\n" not in str(e.value)


def test_stateless_round_trips_and_compare(tiny_generator, tmp_path):
    G, z = tiny_generator, zs(4, 16)
    variants = [
        WTruncation(0.6, 3, center=np.ones((6, 16))),
        LayerScheduleTruncation([0.5] * 6),
        ZTruncatedNormal(1.0, seed=7),
        RadiusClamp(radius=1.5),
        NoTruncation(),
    ]
    for t in variants:
        u = Truncation.load(t.save(tmp_path / "t.npz"))
        assert type(u) is type(t) and u.get_params().keys() == t.get_params().keys()
        assert torch.equal(u(G, z), t(G, z))
    fitted = Truncation.from_dict(json.loads(json.dumps(RadiusClamp(80).fit(G, n_samples=40).to_dict())))
    assert fitted.radius_ == RadiusClamp(80).fit(G, n_samples=40).radius_
    out = compare(G, variants + ["w:0.6@3", "w:0.6@3"], z)
    assert list(out)[-2:] == ["w psi=0.6 cutoff=3", "w psi=0.6 cutoff=3 #2"]
    assert torch.equal(out["z threshold=1"], variants[2](G, z))
    assert torch.equal(out["w psi=0.6 cutoff=3"], G.mapping(z, None, truncation_psi=0.6, truncation_cutoff=3))
