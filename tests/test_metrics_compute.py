"""Distribution metrics (issue 17): FeatureStats, the image sources, FID / KID / precision-recall on features, the
named metrics with their dataset-statistics cache, the torchrun split, and `latentlab metrics`.

Every value is checked against an independent computation: numpy/scipy FID as NVIDIA writes it, NVIDIA's KID
loop re-written here with explicit kernel sums, brute-force precision/recall on full float16 distance matrices,
hand-computed point clouds. The feature extractor is a stub (a fixed random linear map of 4x4-pooled pixels)
that follows the extractor contract, so nothing here needs network weights.
"""

import json
import os
import threading
import zipfile

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from conftest import make_tiny_generator, run_cli
from latentlab.errors import ConfigError


# ---------------------------------------------------------------------------------------------- helpers
class StubExtractor:
    """The extractor contract (`latentlab.metrics.extractors`): uint8 [N, 3, H, W] -> float32 [N, F]."""

    name = "stub"
    cache_id = "stub-seed0"

    def __init__(self, feature_dim=8, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.feature_dim = feature_dim
        self.W = torch.randn(48, feature_dim, generator=g)
        self.device = torch.device("cpu")
        self.calls = 0
        self.images = 0

    def __call__(self, images):
        assert images.dtype == torch.uint8 and images.ndim == 4 and images.shape[1] == 3
        self.calls += 1
        self.images += len(images)
        x = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)
        return x @ self.W


def nvidia_fid(a, b):
    """FID as StyleGAN2-ADA computes it: biased covariance, scipy's sqrtm of the product, real part."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False, bias=True), np.cov(b, rowvar=False, bias=True)
    s = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.real(np.square(mu1 - mu2).sum() + np.trace(s1 + s2 - 2 * s)))


def write_pngs(folder, n, res=16, seed=0, channels=3):
    os.makedirs(folder, exist_ok=True)
    rs = np.random.RandomState(seed)
    for i in range(n):
        arr = rs.randint(0, 256, (res, res, channels) if channels == 3 else (res, res), dtype=np.uint8)
        Image.fromarray(arr).save(os.path.join(folder, f"{i:03d}.png"))
    return str(folder)


def read_pngs(folder):
    names = sorted(f for f in os.listdir(folder) if f.endswith(".png"))
    return np.stack([np.asarray(Image.open(os.path.join(folder, f)).convert("RGB")) for f in names]).transpose(
        0, 3, 1, 2
    )


def all_images(it):
    return torch.cat(list(it)).numpy()


# ---------------------------------------------------------------------------------------------- FeatureStats
def test_feature_stats_mean_cov_equal_numpy_and_max_items_truncates(tmp_path):
    from latentlab.metrics.stats import FeatureStats

    rs = np.random.RandomState(1)
    x = (rs.randn(57, 6) @ rs.randn(6, 6) + 3).astype(np.float32)
    s = FeatureStats(capture_all=True, capture_mean_cov=True, max_items=50)
    for a, b in ((0, 7), (7, 30), (30, 57)):  # uneven batches, the last one cut at max_items
        s.append(torch.from_numpy(x[a:b]) if a else x[a:b])
    assert s.is_full() and s.num_items == 50
    s.append(x[:5])  # ignored once full
    ref = x[:50].astype(np.float64)
    mean, cov = s.get_mean_cov()
    np.testing.assert_allclose(mean, ref.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(ref, rowvar=False, bias=True), rtol=1e-9, atol=1e-12)  # NVIDIA's: / n
    np.testing.assert_allclose(s.get_mean_cov(unbiased=True)[1], np.cov(ref, rowvar=False), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(s.get_all(), x[:50])

    path = s.save(tmp_path / "s.npz")
    back = FeatureStats.load(path, max_bytes=1 << 20)
    assert back.num_items == 50 and back.capture_all and back.capture_mean_cov
    np.testing.assert_array_equal(back.get_mean_cov()[1], cov)
    np.testing.assert_array_equal(back.get_all(), x[:50])
    with pytest.raises(ConfigError, match="s.npz"):  # bounded: the arrays are more than 1 kB
        FeatureStats.load(path, max_bytes=1000)
    np.savez(tmp_path / "other.npz", meta=np.array(json.dumps({"format": "nope"})))
    with pytest.raises(ConfigError, match="other.npz"):
        FeatureStats.load(tmp_path / "other.npz")
    with pytest.raises(ConfigError, match="non-finite"):
        FeatureStats(capture_mean_cov=True).append(np.array([[np.nan, 1.0]]))


# ---------------------------------------------------------------------------------------------- FID
@pytest.mark.parametrize("n,f", [(300, 16), (40, 24)])  # (40, 24): rank-deficient covariances too
def test_fid_equals_scipy_sqrtm_as_nvidia_computes_it(n, f):
    from latentlab.metrics.fid import fid_from_features, fid_from_stats
    from latentlab.metrics.stats import FeatureStats

    rs = np.random.RandomState(n)
    a = (rs.randn(n, f) @ rs.randn(f, f) * 0.5).astype(np.float32)
    b = (rs.randn(n, f) * 1.3 + 0.2).astype(np.float32)
    expected = nvidia_fid(a, b)
    assert fid_from_features(a, b) == pytest.approx(expected, rel=1e-6)
    sa, sb = FeatureStats(capture_mean_cov=True), FeatureStats(capture_mean_cov=True)
    for i in range(0, n, 7):
        sa.append(a[i : i + 7])
        sb.append(b[i : i + 7])
    assert fid_from_stats(*sa.get_mean_cov(), *sb.get_mean_cov()) == pytest.approx(expected, rel=1e-6)
    assert fid_from_features(a, a) < 1e-6 * expected  # a set against itself
    assert fid_from_features(a, a + 1) == pytest.approx(f, rel=1e-6)  # a shift by 1 in every dimension: |d|^2 = f


# ---------------------------------------------------------------------------------------------- KID
def nvidia_kid_loop(gen, real, num_subsets, max_subset_size, seed):
    """NVIDIA's KID with the global RNG seeded, every kernel sum written out as a loop."""
    np.random.seed(seed)
    n = real.shape[1]
    m = min(len(real), len(gen), max_subset_size)
    k = lambda u, v: (float(np.dot(u, v)) / n + 1) ** 3  # noqa: E731
    t = 0.0
    for _ in range(num_subsets):
        x = gen[np.random.choice(len(gen), m, replace=False)].astype(np.float64)
        y = real[np.random.choice(len(real), m, replace=False)].astype(np.float64)
        same = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
        cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
        t += same / (m - 1) - 2 * cross / m
    return t / num_subsets / m


def test_kid_equals_nvidias_loop_and_a_hand_computation():
    from latentlab.metrics.kid import kid

    rs = np.random.RandomState(0)
    gen = rs.randn(13, 3).astype(np.float32)
    real = (rs.randn(11, 3) + 0.5).astype(np.float32)
    for seed in (0, 5):
        expected = nvidia_kid_loop(gen, real, 4, 6, seed)
        assert kid(gen, real, num_subsets=4, max_subset_size=6, seed=seed) == pytest.approx(expected, rel=1e-9)
    # by hand, d = 1, x = {0, 1}, y = {0, 2}: m = 2, every subset is the whole set; k(u, v) = (uv + 1)^3
    # same pairs: k(0,1) twice + k(0,2) twice = 4; cross: k(0,0) + k(0,2) + k(1,0) + k(1,2) = 1 + 1 + 1 + 27 = 30
    # t = 4 / (m - 1) - 2 * 30 / m = -26; KID = t / m = -13
    x, y = np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]])
    assert kid(x, y, num_subsets=3) == pytest.approx(-13.0)
    big = rs.randn(400, 4)
    assert abs(kid(big[:200], big[200:], num_subsets=20, max_subset_size=100)) < 0.05  # same distribution: ~0
    assert kid(big[:200], big[200:] + 2, num_subsets=20, max_subset_size=100) > 1.0
    with pytest.raises(ConfigError, match="at least 2"):
        kid(gen, real[:1])


# ---------------------------------------------------------------------------------------------- precision/recall
def brute_force_pr(real, gen, k):
    """NVIDIA's compute_pr on one process: float16 features, torch.cdist of float16 tensors (its matrix-product path,
    which NVIDIA's batch sizes always take; forced here for small sets), kthvalue(k + 1) in float32 cast to float16,
    `<=` in float16, the whole N x N matrix at once."""
    r, g = torch.as_tensor(real).half(), torch.as_tensor(gen).half()

    def cdist(a, b):
        return torch.cdist(a[None], b[None], compute_mode="use_mm_for_euclid_dist")[0]

    out = []
    for manifold, probes in ((r, g), (g, r)):
        kth = cdist(manifold, manifold).float().kthvalue(k + 1).values.half()
        inside = (cdist(probes, manifold) <= kth).any(dim=1)
        out.append(int(inside.sum()) / len(inside))  # NVIDIA takes a float32 mean: the same to 1e-7
    return tuple(out)


def test_half_distances_replicate_torchs_float16_cdist():
    """What NVIDIA's distances are: torch.cdist on float16 tensors. Plain float32 distances rounded to float16 miss
    it by a float16 step in a large share of entries; the replicated float16 arithmetic matches nearly all."""
    from latentlab.metrics.precision_recall import half_distances

    rs = np.random.RandomState(0)
    a = np.maximum(rs.randn(60, 256), 0).astype(np.float32)
    b = np.maximum(rs.randn(70, 256) * 1.1, 0).astype(np.float32)
    torch_half = torch.cdist(torch.from_numpy(a).half()[None], torch.from_numpy(b).half()[None])[0].float()
    exact = torch.cdist(torch.from_numpy(a).half().double(), torch.from_numpy(b).half().double()).half().float()
    assert float((half_distances(a, b) != torch_half).float().mean()) < 0.005
    assert float((exact != torch_half).float().mean()) > 0.05


def test_precision_recall_on_known_point_clouds():
    from latentlab.metrics.precision_recall import precision_recall

    rs = np.random.RandomState(0)
    a = rs.randn(30, 5).astype(np.float32)
    assert precision_recall(a, a, k=3) == (1.0, 1.0)  # identical sets
    assert precision_recall(a, a + 100, k=3) == (0.0, 0.0)  # disjoint, far apart
    two_clusters = np.concatenate([a, a[:15] + 20])
    p, r = precision_recall(two_clusters, a, k=3)  # generated = one of the real clusters
    assert p == 1.0 and r == pytest.approx(30 / 45)
    # float16, as NVIDIA's: the probe is 1.000488 from (0, 0), whose radius (k = 1) is 1; in float32 it would be
    # outside, but 1.000488 rounds to 1.0 in float16 and 1.0 <= 1.0
    real = np.array([[0, 0], [1, 0], [2, 0], [3, 0]], np.float32)
    gen = np.array([[0.03125, -1.0], [0.03125, -1.0]], np.float32)
    assert precision_recall(real, gen, k=1)[0] == 1.0
    assert brute_force_pr(real, gen, 1)[0] == 1.0
    with pytest.raises(ConfigError, match="at least 4"):
        precision_recall(a[:3], a, k=3)


def test_precision_recall_batched_equals_brute_force_and_memory_stays_in_blocks(monkeypatch):
    from latentlab.metrics import precision_recall as pr

    rs = np.random.RandomState(3)
    real = rs.randn(37, 6).astype(np.float32)
    real[5] = real[6]  # a duplicate: self-inclusion and ties
    gen = (rs.randn(29, 6) * 1.2 + 0.3).astype(np.float32)
    expected = brute_force_pr(real, gen, 3)
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1
    shapes = []
    original = pr._distances

    def recording(rows, cols):
        shapes.append((rows.shape[0], cols.shape[0]))
        return original(rows, cols)

    monkeypatch.setattr(pr, "_distances", recording)
    assert pr.precision_recall(real, gen, k=3) == expected  # one block
    shapes.clear()
    assert pr.precision_recall(real, gen, k=3, row_batch=5, col_batch=4) == expected
    assert max(r for r, _ in shapes) <= 5 and max(c for _, c in shapes) <= 4  # never more than row x col


# ---------------------------------------------------------------------------------------------- sources
def test_generator_images_are_nvidias_uint8_and_reproducible():
    from latentlab.metrics.sources import Z_BLOCK, generator_images

    G = make_tiny_generator()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)  # so that the noise shows
    full = all_images(generator_images(G, 10, seed=3, batch_size=4))
    assert full.dtype == np.uint8 and full.shape == (10, 3, 16, 16)
    np.testing.assert_array_equal(full, all_images(generator_images(G, 10, seed=3, batch_size=10)))
    np.testing.assert_array_equal(full[:6], all_images(generator_images(G, 6, seed=3, batch_size=5)))  # prefix
    assembled = np.zeros_like(full)
    for r in range(3):  # three ranks, each rendering its items i % 3 == r
        assembled[r::3] = all_images(generator_images(G, 10, seed=3, batch_size=2, indices=range(r, 10, 3)))
    np.testing.assert_array_equal(assembled, full)
    assert (full != all_images(generator_images(G, 10, seed=4, batch_size=4))).any()
    assert (full != all_images(generator_images(G, 10, seed=3, noise_mode="const"))).any()  # the noise is random

    # independently: z = the seed's CPU torch.Generator stream; const noise; (x * 127.5 + 128).clamp -> uint8
    z = torch.randn([Z_BLOCK, G.z_dim], generator=torch.Generator().manual_seed(7))[:3]
    with torch.no_grad():
        x = G.synthesis(G.mapping(z, None), noise_mode="const")
    expected = (x * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    np.testing.assert_array_equal(all_images(generator_images(G, 3, seed=7, noise_mode="const")), expected)
    with torch.no_grad():
        xt = G.synthesis(G.mapping(z, None, truncation_psi=0.5), noise_mode="const")
    got = all_images(generator_images(G, 3, seed=7, noise_mode="const", truncation="w:0.5"))
    np.testing.assert_array_equal(got, (xt * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy())


def test_generator_images_grayscale_and_conditional_labels():
    from latentlab import Generator
    from latentlab.metrics.sources import generator_images

    torch.manual_seed(0)
    kw = dict(z_dim=8, w_dim=8, img_resolution=8, mapping_kwargs=dict(num_layers=1))
    gray = Generator(c_dim=0, img_channels=1, synthesis_kwargs=dict(channel_base=64, channel_max=8), **kw).eval()
    x = all_images(generator_images(gray, 2, noise_mode="const"))
    assert x.shape == (2, 3, 8, 8) and (x[:, 0] == x[:, 1]).all() and (x[:, 0] == x[:, 2]).all()
    cond = Generator(c_dim=2, img_channels=3, synthesis_kwargs=dict(channel_base=64, channel_max=8), **kw).eval()
    with pytest.raises(ConfigError, match="conditional"):
        next(generator_images(cond, 2))
    one = all_images(generator_images(cond, 4, labels=[[1, 0]], noise_mode="const"))
    other = all_images(generator_images(cond, 4, labels=[[0, 1]], noise_mode="const"))
    assert (one != other).any()  # the label reaches the mapping


def test_dataset_images_read_in_order_and_refuse_another_resolution(tmp_path):
    from latentlab.metrics.sources import dataset_images

    folder = write_pngs(tmp_path / "d", 7)
    expected = read_pngs(folder)
    np.testing.assert_array_equal(all_images(dataset_images(folder, 16, batch_size=3)), expected)
    np.testing.assert_array_equal(all_images(dataset_images(folder, 16, max_items=4, indices=[1, 3])), expected[[1, 3]])
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf:
        for f in sorted(os.listdir(folder)):
            zf.write(os.path.join(folder, f), f"imgs/{f}")
    np.testing.assert_array_equal(all_images(dataset_images(tmp_path / "d.zip", 16)), expected)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(os.path.join(folder, "004.png"))
    with pytest.raises(ConfigError, match=r"'004.png' is 32x32, but the generator makes 16x16"):
        all_images(dataset_images(folder, 16))


# ---------------------------------------------------------------------------------------------- names
def test_metric_names_as_nvidias_and_generic_counts():
    from latentlab.metrics.compute import parse_metric, parse_metrics

    def spec(name):
        s = parse_metric(name)
        return s.kind, s.num_gen, s.max_real, s.k

    assert spec("fid50k_full") == ("fid", 50000, None, 0)
    assert spec("fid50k") == ("fid", 50000, 50000, 0)
    assert spec("kid50k_full") == ("kid", 50000, 1_000_000, 0)
    assert spec("kid50k") == ("kid", 50000, 50000, 0)
    assert spec("pr50k3_full") == ("pr", 50000, 200_000, 3)
    assert spec("pr50k3") == ("pr", 50000, 50000, 3)
    assert spec("fid2k_full") == ("fid", 2000, None, 0) and spec("fid40") == ("fid", 40, 40, 0)
    assert spec("pr1k5") == ("pr", 1000, 1000, 5)
    assert parse_metric("pr50k3_full").result_keys == ("pr50k3_full_precision", "pr50k3_full_recall")
    assert [s.name for s in parse_metrics("fid50k_full, kid50k_full,fid50k_full")] == ["fid50k_full", "kid50k_full"]
    for bad in ("fid", "fid50k_fulll", "is50k", "pr50k", "fid1"):
        with pytest.raises(ConfigError, match="metric"):
            parse_metric(bad)
    with pytest.raises(ConfigError, match="latentlab ppl"):
        parse_metric("ppl_wend")


# ---------------------------------------------------------------------------------------------- compute_metrics
def _independent_features(G, folder, ext, n_gen, seed=0):
    from latentlab.metrics.sources import generator_images

    gen = torch.cat([ext(x) for x in generator_images(G, n_gen, seed=seed, batch_size=100)]).numpy()
    real = ext(torch.from_numpy(read_pngs(folder))).numpy()
    return gen, real


def test_compute_metrics_equal_independent_computations_from_shared_features(tmp_path):
    from latentlab.metrics.compute import compute_metrics, metric_values
    from latentlab.metrics.kid import kid

    G = make_tiny_generator()
    folder = write_pngs(tmp_path / "real", 25)
    ext = StubExtractor()
    res = compute_metrics(
        G, folder, "fid40_full,kid40_full,fid30,pr1k3", extractor=ext, batch_size=16, cache_dir=str(tmp_path / "c")
    )
    assert ext.images == 1000 + 25  # each image once, however many metrics use it
    gen, real = _independent_features(G, folder, StubExtractor(), 1000)
    assert res["fid40_full"]["fid40_full"] == pytest.approx(nvidia_fid(gen[:40], real), rel=1e-6)
    assert res["fid30"]["fid30"] == pytest.approx(nvidia_fid(gen[:30], real), rel=1e-6)  # 30 real: all 25 here
    assert res["kid40_full"]["kid40_full"] == pytest.approx(
        kid(gen[:40], real, seed=0), rel=1e-12
    )  # NVIDIA's loop: above
    p, r = brute_force_pr(real, gen, 3)
    assert (res["pr1k3"]["pr1k3_precision"], res["pr1k3"]["pr1k3_recall"]) == (p, r)
    assert res["fid40_full"]["num_real"] == 25 and res["pr1k3"]["num_gen"] == 1000
    assert set(metric_values(res)) == {"fid40_full", "kid40_full", "fid30", "pr1k3_precision", "pr1k3_recall"}
    with pytest.raises(ConfigError, match=r"kid40_full: KID needs at least 2 real images"):
        compute_metrics(G, write_pngs(tmp_path / "one", 1), "kid40_full", extractor=ext, cache=False)
    with pytest.raises(ConfigError, match="at least 4 real images"):
        compute_metrics(G, write_pngs(tmp_path / "three", 3), "pr1k3", extractor=ext, cache=False)


def test_compute_metrics_under_truncation_fits_what_needs_fitting(tmp_path):
    from latentlab.metrics.compute import compute_metrics
    from latentlab.metrics.sources import generator_images
    from latentlab.studies.reports import TruncationRow

    G = make_tiny_generator()
    folder = write_pngs(tmp_path / "real", 10)
    ext = StubExtractor()
    res = compute_metrics(G, folder, "fid20", extractor=ext, truncation="w:0.5", cache=False)
    gen = torch.cat([ext(x) for x in generator_images(G, 20, truncation="w:0.5")]).numpy()
    real = ext(torch.from_numpy(read_pngs(folder))).numpy()
    assert res["fid20"]["fid20"] == pytest.approx(nvidia_fid(gen, real), rel=1e-6)
    row = TruncationRow.parse("clusters:k=2,psi=0.5")
    assert not row.truncation.is_fitted
    fitted = compute_metrics(G, folder, "fid20", extractor=ext, truncation=row, fit_samples=200, cache=False)
    assert row.truncation.is_fitted and fitted["fid20"]["fid20"] != res["fid20"]["fid20"]


def test_dataset_statistics_cache_hit_miss_and_invalidation(tmp_path, monkeypatch):
    from latentlab.metrics import compute, sources

    G = make_tiny_generator()
    folder = write_pngs(tmp_path / "real", 12)
    cache = tmp_path / "cache"
    logs = []

    def run(**kw):
        ext = StubExtractor()
        res = compute.compute_metrics(G, folder, "fid20", extractor=ext, cache_dir=str(cache), log=logs.append, **kw)
        return res["fid20"]["fid20"], ext.images

    first, seen = run()
    assert seen == 20 + 12 and len(os.listdir(cache)) == 1 and "cached in" in logs[-1]
    second, seen = run()
    assert seen == 20 and second == first and "from the cache" in logs[-1]  # the real images were not read
    wider, seen = run(batch_size=5)
    assert seen == 20 and wider == pytest.approx(first, rel=1e-12)  # the settings in the key are the metric's own

    # one pixel of one image changes: another dataset, another cache entry
    arr = np.asarray(Image.open(os.path.join(folder, "003.png"))).copy()
    arr[0, 0, 0] ^= 0xFF
    Image.fromarray(arr).save(os.path.join(folder, "003.png"))
    changed, seen = run()
    assert seen == 20 + 12 and changed != first and len(os.listdir(cache)) == 2
    # a damaged cache file is recomputed and replaced, with a note
    for f in os.listdir(cache):
        with open(cache / f, "wb") as fh:
            fh.write(b"PK\x03\x04garbage")
    again, seen = run()
    assert seen == 20 + 12 and again == changed and any("damaged" in line for line in logs)
    # without the cache nothing is read or written
    monkeypatch.setattr(sources, "dataset_fingerprint", lambda *a, **k: pytest.fail("hashed without the cache"))
    _, seen = run(cache=False)
    assert seen == 20 + 12


def test_zip_fingerprint_follows_the_crcs(tmp_path):
    from latentlab.metrics.sources import dataset_fingerprint

    folder = write_pngs(tmp_path / "d", 3)
    path = tmp_path / "d.zip"

    def make_zip():
        with zipfile.ZipFile(path, "w") as zf:
            for f in sorted(os.listdir(folder)):
                zf.write(os.path.join(folder, f), f)
        return dataset_fingerprint(path)

    a = make_zip()
    assert make_zip() == a and dataset_fingerprint(folder) != a
    write_pngs(folder, 1, seed=9)  # 000.png rewritten
    assert make_zip() != a


# ---------------------------------------------------------------------------------------------- torchrun split
class ThreadRanks:
    """torchrun's collectives between threads: rank r is a thread; gather_rows / broadcast meet at a barrier."""

    def __init__(self, world):
        self.world = world
        self.local = threading.local()
        self.barrier = threading.Barrier(world, timeout=60)
        self.slots = [None] * world
        self.gathers = 0

    def rank(self):
        return self.local.rank

    def gather_rows(self, indices, rows, total):
        r = self.local.rank
        self.slots[r] = (list(indices), np.asarray(rows))
        self.barrier.wait()
        parts = list(self.slots)
        self.barrier.wait()  # every rank has read the slots before the next call fills them
        if r == 0:
            self.gathers += 1
        out = np.empty((total, *parts[r][1].shape[1:]), dtype=parts[r][1].dtype)
        for idx, part in parts:
            out[idx] = part
        return out

    def from_rank0(self, obj):
        if self.local.rank == 0:
            self.slots[0] = obj
        self.barrier.wait()
        value = self.slots[0]
        self.barrier.wait()
        return value

    def run(self, fn):
        results, errors = [None] * self.world, []

        def body(r):
            self.local.rank = r
            try:
                results[r] = fn(r)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
                self.barrier.abort()

        threads = [threading.Thread(target=body, args=(r,)) for r in range(self.world)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return results


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_split_the_work_and_return_the_single_process_numbers(tmp_path, monkeypatch, world):
    """Simulated ranks (threads meeting in gather_rows, each with its own copy of G as a process has): each renders
    and reads only its items (i % world == rank), and every rank returns what one process computes."""
    import copy

    from latentlab.metrics import compute
    from latentlab.utils import distributed

    G = make_tiny_generator()
    folder = write_pngs(tmp_path / "real", 11)
    names = "fid23_full,kid23_full,fid9"
    single = compute.compute_metrics(G, folder, names, extractor=StubExtractor(), batch_size=4, cache=False)

    group = ThreadRanks(world)
    monkeypatch.setattr(distributed, "gather_rows", group.gather_rows)
    monkeypatch.setattr(compute, "_ranks", lambda: (group.rank(), world))
    monkeypatch.setattr(compute, "_from_rank0", group.from_rank0)
    exts = [StubExtractor() for _ in range(world)]
    gens = [copy.deepcopy(G) for _ in range(world)]
    cache = str(tmp_path / "cache")
    out = group.run(
        lambda r: compute.compute_metrics(gens[r], folder, names, extractor=exts[r], batch_size=4, cache_dir=cache)
    )
    for r in range(world):
        assert exts[r].images == len(range(r, 23, world)) + len(range(r, 11, world))  # only its own items
        for name, entry in single.items():
            for key, value in entry.items():
                expected = value if isinstance(value, str) else pytest.approx(value, rel=1e-9, abs=1e-12)
                assert out[r][name][key] == expected, (r, name, key)
    assert len(os.listdir(cache)) == 2  # rank 0 alone writes the cache: 11 and 9 real images
    exts = [StubExtractor() for _ in range(world)]
    again = group.run(
        lambda r: compute.compute_metrics(
            gens[r], folder, "fid23_full", extractor=exts[r], batch_size=4, cache_dir=cache
        )
    )
    assert all(e.images == len(range(r, 23, world)) for r, e in enumerate(exts))  # every rank took the cache hit
    assert again[0]["fid23_full"]["fid23_full"] == pytest.approx(single["fid23_full"]["fid23_full"], rel=1e-9)


@pytest.mark.parametrize("world", [2, 3])
def test_precision_recall_rows_split_across_ranks_equal_one_process(monkeypatch, world):
    from latentlab.metrics import compute
    from latentlab.metrics.precision_recall import precision_recall
    from latentlab.utils import distributed

    rs = np.random.RandomState(world)
    real, gen = rs.randn(23, 5).astype(np.float32), (rs.randn(19, 5) + 0.4).astype(np.float32)
    expected = precision_recall(real, gen, k=3)
    group = ThreadRanks(world)
    monkeypatch.setattr(distributed, "gather_rows", group.gather_rows)
    rows = [[] for _ in range(world)]

    class Rows:  # counts the distance rows each rank computes
        def __init__(self, r):
            self.r = r

        def update(self, n):
            rows[self.r].append(n)

    out = group.run(lambda r: compute._precision_recall_split(real, gen, 3, 4, 5, "cpu", r, world, Rows(r)))
    assert all(o == expected for o in out) and 0 < expected[0] < 1
    assert [sum(x) for x in rows] == [2 * (len(range(r, 23, world)) + len(range(r, 19, world))) for r in range(world)]


# ---------------------------------------------------------------------------------------------- the command
@pytest.fixture
def tiny_ckpt(tmp_path):
    from latentlab.checkpoints import save_native

    path = tmp_path / "tiny.safetensors"
    save_native(path, {"G_ema": make_tiny_generator()}, "latentlab")
    return path


@pytest.fixture
def stub_extractor(monkeypatch):
    """--extractor stub builds the StubExtractor (the command otherwise resolves specs through M1a's extractors)."""
    from latentlab.metrics import compute

    original = compute.load_extractor

    def load(spec, *args, **kwargs):
        if spec == "stub":
            return "stub", StubExtractor
        return original(spec, *args, **kwargs)

    monkeypatch.setattr(compute, "load_extractor", load)


def test_cli_metrics_end_to_end(tmp_path, tiny_ckpt, stub_extractor, capsys, monkeypatch):
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    folder = write_pngs(tmp_path / "real", 20)
    args = ("metrics", "--model", tiny_ckpt, "--data", folder, "--extractor", "stub", "--batch", "50")
    code, out, err = run_cli(capsys, *args, "--metrics", "fid30_full,kid30_full,pr1k3_full", "--out", tmp_path / "o")
    assert code == 0, err
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    gen, real = _independent_features(make_tiny_generator(), folder, StubExtractor(), 1000)
    assert doc["results"]["fid30_full"] == pytest.approx(nvidia_fid(gen[:30], real), rel=1e-6)
    assert doc["results"]["pr1k3_full_precision"] == brute_force_pr(real, gen, 3)[0]
    assert doc["settings"]["seed"] == 0 and doc["metrics"]["kid30_full"]["num_real"] == 20
    csv_lines = (tmp_path / "o" / "metrics.csv").read_text().splitlines()
    assert csv_lines[0] == "metric,key,value,num_gen,num_real,extractor" and len(csv_lines) == 5
    table = out.splitlines()
    assert table[0].split() == ["metric", "value", "generated", "real", "features"]
    assert table[1].split()[:2] == ["fid30_full", f"{doc['results']['fid30_full']:.6g}"]
    assert "cached in" in err

    # the same with --trunc: another number, and the dataset side from the cache
    code, out, err = run_cli(capsys, *args, "--metrics", "fid30_full", "--trunc", "0.5")
    assert code == 0 and "from the cache" in err, err
    assert float(out.splitlines()[1].split()[1]) != pytest.approx(doc["results"]["fid30_full"])


@pytest.mark.parametrize(
    "extra,message",
    [
        (("--metrics", "fid30,isx"), "unknown metric 'isx'"),
        (("--data", "MISSING"), "missing: no such folder or zip file"),
        (("--data", "BIG"), "is 32x32, but the generator makes 16x16"),
        (("--data", "ONE", "--metrics", "kid30_full"), "KID needs at least 2 real images"),
        (("--variant", "w:0.5", "--trunc", "0.5"), "not both"),
        (("--variant", "nope:1"), "--variant"),
    ],
)
def test_cli_metrics_refuses_bad_input_in_one_line(
    tmp_path, tiny_ckpt, stub_extractor, capsys, monkeypatch, extra, message
):
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    good = write_pngs(tmp_path / "real", 4)
    big = write_pngs(tmp_path / "big", 2, res=32)
    one = write_pngs(tmp_path / "one", 1)
    swap = {"MISSING": str(tmp_path / "missing"), "BIG": big, "ONE": one}
    extra = tuple(swap.get(a, a) for a in extra)
    base = ["metrics", "--model", tiny_ckpt, "--extractor", "stub", "--metrics", "fid30"]
    if "--data" not in extra:
        base += ["--data", good]
    code, out, err = run_cli(capsys, *base, *extra)
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("latentlab: error:")


def test_cli_metrics_with_the_toyfaces_extractor(tmp_path, tiny_ckpt, capsys, monkeypatch):
    """The real extractor path (`extractors.get_extractor('toyfaces')`, offline): values equal FID computed here from
    that extractor's features of the same images."""
    from latentlab.metrics.extractors import get_extractor

    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    folder = write_pngs(tmp_path / "real", 12)
    code, out, err = run_cli(
        capsys, "metrics", "--model", tiny_ckpt, "--data", folder, "--extractor", "toyfaces", "--metrics", "fid24_full",
        "--out", tmp_path / "o",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    gen, real = _independent_features(make_tiny_generator(), folder, get_extractor("toyfaces"), 24)
    assert doc["results"]["fid24_full"] == pytest.approx(nvidia_fid(gen, real), rel=1e-5)
    assert doc["metrics"]["fid24_full"]["extractor"].startswith("toyfaces-")


@pytest.mark.slow  # two gloo processes and a single one: ~20 s of process start-up
def test_torchrun_gives_the_single_process_numbers(tmp_path, tiny_ckpt):
    import socket
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, OMP_NUM_THREADS="1", LATENTLAB_CACHE=str(tmp_path / "cache"))
    folder = write_pngs(tmp_path / "real", 9)
    args = [sys.executable, "-m", "latentlab", "metrics", "--model", str(tiny_ckpt), "--data", folder]
    args += ["--extractor", "toyfaces", "--metrics", "fid20_full,kid20_full", "--batch", "4", "--device", "cpu"]
    single = subprocess.run(
        args + ["--out", str(tmp_path / "one"), "--no-cache"], env=env, capture_output=True, text=True
    )
    assert single.returncode == 0, single.stderr[-2000:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2")
    procs = [
        subprocess.Popen(
            args + ["--out", str(tmp_path / "two")],
            env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    (out0, err0), (out1, err1) = [p.communicate(timeout=300) for p in procs]
    assert procs[0].returncode == 0 and procs[1].returncode == 0, err0[-2000:] + err1[-2000:]
    assert out1 == "" and "fid20_full" in out0
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["settings"]["processes"] == 2 and one["settings"]["processes"] == 1
    for key, value in one["results"].items():
        assert two["results"][key] == pytest.approx(value, rel=1e-5), key
