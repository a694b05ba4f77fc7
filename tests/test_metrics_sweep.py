"""Truncation sweeps (issue 17): `latentlab.metrics.sweep.truncation_sweep`, its figures and `latentlab sweep`.

Every point must equal an independent `compute_metrics` call with that point's truncation (the sweep is only the
loop, the sharing and the bookkeeping); the sharing is checked by counting what the stub extractor sees and how
often a clusters variant is fitted; the psi override of saved clusters files against files saved with that psi.
Generator: conftest's tiny one; real images: a few of its own renders (another seed) saved as PNGs; extractor: a
stub (a fixed random linear map of 4x4-pooled pixels) following the extractor contract.
"""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import make_tiny_generator, run_cli
from latentlab.errors import ConfigError

METRICS = "fid12_full,kid12_full"  # small counts (precision/recall counts thousands: pr1k3 is 1000 images)
PR_METRICS = "fid12_full,pr1k3"


class StubExtractor:
    """The extractor contract (`latentlab.metrics.extractors`): uint8 [N, 3, H, W] -> float32 [N, F]; counts images."""

    name = "stub"
    cache_id = "stub-seed0"
    feature_dim = 8

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.W = torch.randn(48, self.feature_dim, generator=g)
        self.device = torch.device("cpu")
        self.images = 0

    def __call__(self, images):
        self.images += len(images)
        return torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1) @ self.W


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """10 PNGs rendered by the tiny generator (seed 99, not the sweep's seed)."""
    from latentlab.metrics.sources import generator_images

    folder = tmp_path_factory.mktemp("renders")
    images = torch.cat(list(generator_images(make_tiny_generator(), 10, seed=99, batch_size=10)))
    for i, img in enumerate(images.permute(0, 2, 3, 1).numpy()):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    return str(folder)


@pytest.fixture
def G():
    return make_tiny_generator()


def _sweep(G, data, variants, psis, metrics=METRICS, **kw):
    from latentlab.metrics.sweep import truncation_sweep

    kw.setdefault("extractor", StubExtractor())
    kw.setdefault("fit_samples", 200)
    return truncation_sweep(G, data, variants, psis, metrics=metrics, **kw)


def _independent(G, data, truncation, metrics=METRICS, **kw):
    """compute_metrics of one truncation, its values in the sweep's column order (fid, kid or fid, precision, recall)."""
    from latentlab.metrics.compute import compute_metrics, metric_values

    res = compute_metrics(G, data, metrics, extractor=StubExtractor(), truncation=truncation, cache=False, **kw)
    return tuple(metric_values(res).values())


def _values(df, variant, psi):
    row = df[(df["variant"] == variant) & (df["psi"] == psi)]
    assert len(row) == 1
    cols = [c for c in ("fid", "kid", "precision", "recall") if c in df.columns]
    return tuple(float(row.iloc[0][c]) for c in cols)


def _learned_file(path, psi):
    """A learned clusters file for the tiny generator (w_dim 16): two levels, K = 2, seeded random networks."""
    from latentlab.truncation import LearnedClusterTruncation

    r = np.random.RandomState(1)
    nets = {}
    for level in ("a", "b"):
        nets[level] = {
            "mu": r.randn(2, 3).astype(np.float32),
            "log_sigma": (0.1 * r.randn(2, 3)).astype(np.float32),
            "log_weights": np.log(np.full(2, 0.5, np.float32)),
            "centers": (2 * r.randn(2, 16)).astype(np.float32),
            "mapping": {"weights": [r.randn(16, 3).astype(np.float32)], "biases": [r.randn(16).astype(np.float32)]},
            "classifier": {
                "weights": [r.randn(6, 16).astype(np.float32), r.randn(2, 6).astype(np.float32)],
                "biases": [r.randn(6).astype(np.float32), r.randn(2).astype(np.float32)],
            },
        }
    t = LearnedClusterTruncation(k=2, psi=psi, levels={"a": [0, 1], "b": [2, 3]}, keep_last=True)
    t.set_state(
        {
            "layers": {"a": [0, 1], "b": [2, 3]},
            "nets": nets,
            "info": {"steps": 0, "center_samples": 100, "center_seed": 0},
        }
    )
    return t.save(path)


# ---------------------------------------------------------------------------------------------- parsing
def test_psi_forms():
    from latentlab.metrics.sweep import parse_psis

    assert parse_psis("0.3:1.0:8") == [float(v) for v in np.linspace(0.3, 1.0, 8)]
    assert parse_psis("0.3:1.0:8")[0] == 0.3 and parse_psis("0.3:1.0:8")[-1] == 1.0
    assert parse_psis("0.5, 0.7,1") == [0.5, 0.7, 1.0] and parse_psis("0.7") == [0.7] and parse_psis(1) == [1.0]
    assert parse_psis([0.2, 0.4]) == [0.2, 0.4] and parse_psis("0.5:0.5:1") == [0.5]
    for bad, message in [
        ("0.3:1:0", "count must be in 1..100"),
        ("0.3:1:x", "bad psi '0.3:1:x'"),
        ("0.3:1", "bad psi '0.3:1'"),
        ("0.5,,1", "an empty value"),
        ("0.5,nan", "finite"),
        ("0.5,0.5", "repeat"),
        ("0.2:0.4:1", "one value between two different ends"),
        ("", "an empty value"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_psis(bad)


def test_variant_forms_and_one_line_refusals(tmp_path):
    from latentlab.metrics.sweep import parse_variant
    from latentlab.truncation import ClusterTruncation, WTruncation

    w = parse_variant("w")
    assert w.family == "w" and isinstance(w.truncation, WTruncation) and w.label == "W truncation"
    t = parse_variant("w@3").at(0.4)
    assert (t.psi, t.cutoff) == (0.4, 3)
    c = parse_variant("clusters:k=3,method=kmeans")
    assert c.family == "clusters-fit" and isinstance(c.truncation, ClusterTruncation) and c.truncation.k == 3
    assert c.needs_fit and c.label.startswith("fitted clusters kmeans")
    np.save(tmp_path / "c.npy", np.zeros(16, np.float32))
    centre = parse_variant(f"center:{tmp_path / 'c.npy'}@2").at(0.5)
    assert centre.psi == 0.5 and centre.cutoff == 2 and centre.center.shape == (16,)
    for spec, message in [
        ("w:0.7", "fixes psi"),
        ("w@8:0.7", "fixes psi"),
        ("clusters:k=8,psi=0.5", "give 'clusters:k=8'"),
        (f"center:{tmp_path / 'c.npy'}:0.5", "fixes psi"),
        ("none", "no psi to sweep"),
        ("z:2", "no psi to sweep"),
        ("clamp:95", "no psi to sweep"),
        ("schedule:0.5,1", "no psi to sweep"),
        ("w@x", "not a layer count"),
        ("clusters:" + str(tmp_path / "missing.npz"), "no such file"),
        ("clusters:k=1", "at least 2 clusters"),
        ("bogus", "unknown sweep variant"),
    ]:
        with pytest.raises(ConfigError, match=message) as e:
            parse_variant(spec)
        assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------- the sweep
def test_points_equal_independent_compute_metrics_and_work_is_shared(G, renders, tmp_path, monkeypatch):
    """Each point = compute_metrics with that truncation; the clusters variant is fitted once for all psis; the
    dataset's features are extracted once (10 real images), the generated ones once per point (12 each)."""
    from latentlab.truncation import ClusterTruncation

    fits = []
    original_fit = ClusterTruncation.fit

    def counting_fit(self, *args, **kwargs):
        fits.append(self.psi)
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(ClusterTruncation, "fit", counting_fit)
    ext = StubExtractor()
    psis = [0.4, 0.7, 1.0]
    df = _sweep(G, renders, ["w", "clusters:k=2,dims=4"], psis, extractor=ext, cache_dir=str(tmp_path / "cache"))
    assert len(fits) == 1  # fitted once, reused at every psi
    assert ext.images == 10 + len(df) * 12  # one dataset pass for all six points
    assert list(df["variant"]) == ["w"] * 3 + ["clusters:k=2,dims=4"] * 3 and list(df["psi"]) == psis * 2
    assert list(df.columns) == ["variant", "label", "psi", "fid", "kid", "num_gen", "seconds"]
    assert (df["num_gen"] == 12).all()

    for psi in psis:
        assert _values(df, "w", psi) == _independent(G, renders, f"w:{psi}")
        assert _values(df, "clusters:k=2,dims=4", psi) == _independent(
            G, renders, f"clusters:k=2,dims=4,psi={psi}", fit_samples=200
        )
    assert len(fits) == 1 + len(psis)  # (each independent call fitted its own)
    fids = list(df["fid"][:3])
    assert len(set(fids)) == 3  # psi changes the images: the comparison above can fail
    # psi = 1 is the untruncated generator for every variant
    assert _values(df, "w", 1.0) == _values(df, "clusters:k=2,dims=4", 1.0) == _independent(G, renders, None)


def test_psi_override_of_saved_fitted_and_learned_clusters_files(G, renders, tmp_path):
    """A file's own psi is replaced at every point: the sweep of a file saved with psi 0.9 equals metrics of the
    same clusters saved with psi 0.4 (fitted: fitted again with the same seed, which gives the same clusters)."""
    from latentlab.truncation import ClusterTruncation

    f9 = ClusterTruncation(k=2, dims=4, psi=0.9).fit(G, n_samples=200, seed=0).save(tmp_path / "f9.npz")
    f4 = ClusterTruncation(k=2, dims=4, psi=0.4).fit(G, n_samples=200, seed=0).save(tmp_path / "f4.npz")
    l9 = _learned_file(tmp_path / "l9.npz", 0.9)
    l4 = _learned_file(tmp_path / "l4.npz", 0.4)
    variants = [f"clusters:{f9}", f"clusters:{l9}"]
    df = _sweep(G, renders, variants, [0.4, 1.0], cache_dir=str(tmp_path / "cache"))
    assert _values(df, variants[0], 0.4) == _independent(G, renders, f"clusters:{f4}")
    assert _values(df, variants[1], 0.4) == _independent(G, renders, f"clusters:{l4}")
    assert _values(df, variants[1], 0.4) != _independent(G, renders, f"clusters:{l9}")  # the override mattered
    assert _values(df, variants[1], 1.0) == _independent(G, renders, None)
    labels = list(dict.fromkeys(df["label"]))
    assert labels == ["clusters gmm-full styles/4 k=2 (f9.npz)", "learned clusters k=2 (l9.npz)"]


def test_resume_after_an_interruption_computes_only_the_missing_points(G, renders, tmp_path, monkeypatch):
    from latentlab.metrics import compute
    from latentlab.metrics.sweep import read_sweep
    from latentlab.truncation import ClusterTruncation

    variants, psis = ["w", "clusters:k=2,dims=4"], [0.5, 1.0]
    whole = _sweep(G, renders, variants, psis, cache_dir=str(tmp_path / "cache"))

    calls, fits = [], []
    original, original_fit = compute.compute_metrics, ClusterTruncation.fit

    def interrupted(*args, **kwargs):
        calls.append(kwargs["truncation"].psi)
        if len(calls) == 4:
            raise KeyboardInterrupt  # Ctrl-C during the 4th point: three are kept
        return original(*args, **kwargs)

    def counting_fit(self, *args, **kwargs):
        fits.append(1)
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(compute, "compute_metrics", interrupted)
    monkeypatch.setattr(ClusterTruncation, "fit", counting_fit)
    out = tmp_path / "sweep"
    with pytest.raises(KeyboardInterrupt):
        _sweep(G, renders, variants, psis, out_dir=str(out), cache_dir=str(tmp_path / "cache"))
    assert len(pd.read_csv(out / "sweep.csv")) == 3 and len(fits) == 1 and (out / "fitted_1.npz").exists()
    assert not (out / "sweep.png").exists()  # figures when complete

    calls.clear()
    monkeypatch.setattr(compute, "compute_metrics", lambda *a, **k: calls.append(1) or original(*a, **k))
    logs = []
    df = _sweep(G, renders, variants, psis, out_dir=str(out), cache_dir=str(tmp_path / "cache"), log=logs.append)
    assert len(calls) == 1 and len(fits) == 1  # the one missing point; the saved fitted clusters reused
    assert any("resuming" in line and "3 of 4" in line for line in logs)
    cols = ["variant", "label", "psi", "fid", "kid", "num_gen"]
    pd.testing.assert_frame_equal(df[cols], whole[cols])
    pd.testing.assert_frame_equal(read_sweep(str(out))[1][cols], whole[cols], check_dtype=False)  # bit for bit
    for stem in ("sweep", "fid_psi"):  # FID and KID: FID against psi
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.pdf").stat().st_size > 0
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["settings"]["psis"] == psis and doc["settings"]["metrics"] == METRICS.split(",")

    calls.clear()  # complete: nothing computed again
    _sweep(G, renders, variants, psis, out_dir=str(out), cache_dir=str(tmp_path / "cache"))
    assert calls == []
    with pytest.raises(ConfigError, match="other settings: seed 0 \\(now 1\\)"):
        _sweep(G, renders, variants, psis, out_dir=str(out), seed=1, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="other settings: psis"):
        _sweep(G, renders, variants, [0.5], out_dir=str(out), cache_dir=str(tmp_path / "cache"))
    (out / "sweep.csv").write_text("variant,label,psi,fid,kid,num_gen,seconds\nw,W,0.5,,1,12,1\n")
    with pytest.raises(ConfigError, match="sweep.csv: not a readable sweep table \\(line 2 has empty values"):
        _sweep(G, renders, variants, psis, out_dir=str(out), cache_dir=str(tmp_path / "cache"))


def test_precision_recall_points_equal_independent_compute_metrics(G, renders, tmp_path):
    df = _sweep(G, renders, ["w"], [0.3, 1.0], metrics=PR_METRICS, cache_dir=str(tmp_path / "cache"))
    assert list(df.columns) == ["variant", "label", "psi", "fid", "precision", "recall", "num_gen", "seconds"]
    assert _values(df, "w", 0.3) == _independent(G, renders, "w:0.3", PR_METRICS)
    assert (df["num_gen"] == 1000).all() and _values(df, "w", 0.3) != _values(df, "w", 1.0)
    assert 0 <= df["precision"].min() and df["recall"].max() <= 1


def test_without_the_cache_the_dataset_is_still_read_once(G, renders, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "user-cache"))
    ext = StubExtractor()
    df = _sweep(G, renders, ["w"], [0.5, 0.8, 1.0], extractor=ext, cache=False)
    assert ext.images == 10 + 3 * 12 and not (tmp_path / "user-cache").exists()
    assert _values(df, "w", 0.8) == _independent(G, renders, "w:0.8")


def test_sweep_refusals_come_before_any_work(G, renders, tmp_path, monkeypatch):
    from latentlab.metrics.sweep import truncation_sweep
    from latentlab.truncation import ClusterTruncation

    monkeypatch.setattr(ClusterTruncation, "fit", lambda *a, **k: pytest.fail("fitted before the inputs were checked"))
    big = tmp_path / "big"
    big.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(big / f"{i}.png")
    for kw, message in [
        (dict(metrics="fid12_full,fid20_full"), "one metric per kind; fid"),
        (dict(metrics="kid12_full"), "needs FID or precision/recall"),
        (dict(variants=["w", "w"]), "given twice"),
        (dict(variants=[]), "no variant"),
        (dict(data="/nonexistent/folder"), "no such folder or zip"),
        (dict(data=str(big)), "is 32x32, but the generator makes 16x16"),
        (dict(metrics="fid12_full,pr1k30"), "needs at least 31 real images"),
        (dict(noise_mode="loud"), "noise_mode must be"),
    ]:
        args = dict(variants=["clusters:k=2,dims=4"], data=renders, metrics=METRICS)
        args.update(kw)
        data, variants = args.pop("data"), args.pop("variants")
        with pytest.raises(ConfigError, match=message):
            truncation_sweep(G, data, variants, [0.5], extractor=StubExtractor(), **args)


# ---------------------------------------------------------------------------------------------- figures
def test_figures_draw_one_curve_per_variant_with_psi_labels(tmp_path, monkeypatch):
    from latentlab.metrics import sweep_figures as sf

    df = pd.DataFrame(
        {
            "variant": ["w"] * 3 + ["c"] * 3,
            "label": ["W truncation"] * 3 + ["fitted clusters"] * 3,
            "psi": [0.5, 0.75, 1.0] * 2,
            "fid": [9.0, 5.0, 4.0, 7.0, 4.5, 4.0],
            "precision": [0.9, 0.8, 0.7, 0.95, 0.85, 0.7],
            "recall": [0.2, 0.4, 0.6, 0.3, 0.5, 0.6],
        }
    )
    drawn = []
    original = sf._draw

    def recording(ax, frame, panel):
        original(ax, frame, panel)
        drawn.append((panel[0], [(tuple(l.get_xdata()), tuple(l.get_ydata())) for l in ax.get_lines()],
                      sorted(t.get_text() for t in ax.texts)))  # fmt: skip

    monkeypatch.setattr(sf, "_draw", recording)
    paths = sf.sweep_figures(df, str(tmp_path), title="t")
    assert sorted(os.path.basename(p) for p in paths) == sorted(
        f"{s}.{e}" for s in ("precision_recall", "precision_fid", "sweep") for e in ("png", "pdf")
    )
    stem, lines, texts = drawn[0]
    assert stem == "precision_recall" and lines[0] == ((0.2, 0.4, 0.6), (0.9, 0.8, 0.7))
    assert lines[1] == ((0.3, 0.5, 0.6), (0.95, 0.85, 0.7)) and texts == sorted(["0.5", "0.75", "1"] * 2)
    assert drawn[1][0] == "precision_fid" and drawn[1][1][0] == ((9.0, 5.0, 4.0), (0.9, 0.8, 0.7))
    assert [p[0] for p in sf.sweep_panels(df[["label", "psi", "fid"]])] == ["fid_psi"]
    assert sf.sweep_figures(df.iloc[:0], str(tmp_path / "none")) == []


# ---------------------------------------------------------------------------------------------- the command
@pytest.fixture
def tiny_ckpt(tmp_path):
    from latentlab.checkpoints import save_native

    path = tmp_path / "tiny.safetensors"
    save_native(path, {"G_ema": make_tiny_generator()}, "latentlab")
    return path


@pytest.fixture
def stub_extractor(monkeypatch):
    """--extractor stub builds the StubExtractor."""
    from latentlab.metrics import compute

    original = compute.load_extractor
    monkeypatch.setattr(
        compute,
        "load_extractor",
        lambda spec, *a, **k: ("stub", StubExtractor) if spec == "stub" else original(spec, *a, **k),
    )


def test_cli_sweep_end_to_end_and_resume(tmp_path, tiny_ckpt, renders, stub_extractor, capsys, monkeypatch):
    from latentlab.metrics.sweep import read_sweep

    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o"
    learned = _learned_file(tmp_path / "learned.npz", 0.9)
    args = ["sweep", "--model", tiny_ckpt, "--data", renders, "--curve", "w", "--curve", f"clusters:{learned}",
            "--psis", "0.5:1:2", "--metrics", METRICS, "--extractor", "stub", "--out", out]  # fmt: skip
    code, stdout, err = run_cli(capsys, *args)
    assert code == 0, err
    df = read_sweep(str(out))[1]
    G = make_tiny_generator()
    assert _values(df, "w", 0.5) == _independent(G, renders, "w:0.5")
    learned5 = _learned_file(tmp_path / "learned5.npz", 0.5)
    assert _values(df, f"clusters:{learned}", 0.5) == _independent(G, renders, f"clusters:{learned5}")
    assert (out / "sweep.png").exists() and (out / "fid_psi.pdf").exists() and (out / "sweep.json").exists()
    lines = stdout.strip().splitlines()
    assert lines[0].split() == ["variant", "psi", "fid", "kid"] and len(lines) == 6
    assert lines[1].split() == ["w", "0.5", f"{df['fid'][0]:.4g}", f"{df['kid'][0]:.4g}"]
    assert lines[-1].endswith(f"to {out}")
    code, stdout, err = run_cli(capsys, *args)  # complete: resumed, nothing computed
    assert code == 0 and "4 of 4 points done" in err, err
    code, _, err = run_cli(capsys, *args[:-2], "--seed", "3", "--out", out)
    assert code == 1 and "other settings: seed 0 (now 3)" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "extra,message",
    [
        (("--curve", "w:0.7"), "--curve w:0.7: variant 'w:0.7' fixes psi"),
        (("--curve", "clusters:k=8,psi=0.5"), "give 'clusters:k=8'"),
        (("--curve", "z:2"), "no psi to sweep"),
        (("--curve", "w", "--psis", "0.5:x:3"), "--psis: bad psi"),
        (("--curve", "w", "--metrics", "fid12,fid14"), "one metric per kind"),
        (("--curve", "w", "--data", "MISSING"), "no such folder or zip file"),
        (("--psis", "0.5"), "give at least one --curve"),
    ],
)
def test_cli_sweep_refuses_bad_input_in_one_line(tmp_path, tiny_ckpt, renders, stub_extractor, capsys, extra, message):
    base = ["sweep", "--model", tiny_ckpt, "--extractor", "stub", "--metrics", METRICS, "--out", tmp_path / "o"]
    if "--psis" not in extra:
        base += ["--psis", "0.5,1"]
    extra = tuple(str(tmp_path / "missing") if a == "MISSING" else a for a in extra)
    if "--data" not in extra:
        base += ["--data", renders]
    code, out, err = run_cli(capsys, *base, *extra)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("latentlab: error:") and not (tmp_path / "o").exists()
