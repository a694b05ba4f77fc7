"""Learned multi-level cluster mappings: loss terms, training, truncation semantics, files, resume and CLI."""

import copy
import csv
import json
import math
import os

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import run_cli
from latentlab import Generator
from latentlab.train.clusters import (
    MLP,
    ClusterMappingTrainer,
    critic_loss,
    gradient_penalty,
    mapping_loss,
    train_cluster_mappings,
)
from latentlab.truncation import (
    ClusterTruncation,
    LearnedClusterTruncation,
    Truncation,
    parse_truncation,
)

COARSE, MIDDLE, LAST = [0, 1, 2], [3, 4], 5  # the tiny generator: 6 ws, 4-8 px coarse, 16 px middle (ws 5 is kept)
FAST = dict(batch_size=16, n_critic=1, lr=3e-3)


def tiny(seed=0, c_dim=0):
    torch.manual_seed(seed)
    return Generator(
        z_dim=16,
        c_dim=c_dim,
        w_dim=16,
        img_resolution=16,
        img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=256, channel_max=16),
    ).eval()


def zs(n, seed=0):
    return torch.from_numpy(np.random.RandomState(seed).randn(n, 16).astype(np.float32))


@pytest.fixture(scope="module")
def trained():
    """(G, G's state before training, trainer, truncation with psi 0): k=4, trained briefly at a high lr."""
    G = tiny()
    before = copy.deepcopy(G.state_dict())
    trainer = ClusterMappingTrainer(G, k=4, seed=0, **{**FAST, "lr": 1e-2}).fit(120, progress=False)
    return G, before, trainer, trainer.to_truncation(psi=0.0)


# --- loss terms ----------------------------------------------------------------------
def linear_critic(a, b=0.0):
    D = MLP([len(a), 1])
    with torch.no_grad():
        D.weights[0].copy_(torch.tensor(a, dtype=torch.float32)[None])
        D.biases[0].fill_(b)
    return D


def test_gradient_penalty_of_a_linear_critic_is_hand_computed():
    g = torch.Generator().manual_seed(0)
    real, fake, alpha = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g), torch.rand(5, generator=g)
    for a in ([3.0, 4.0, 0.0], [0.6, 0.0, 0.8], [0.1, -0.2, 0.2]):
        D = linear_critic(a, b=0.5)
        norm = float(np.linalg.norm(a))
        gp = gradient_penalty(D, real, fake, alpha, lambda_gp=10.0)
        assert gp.item() == pytest.approx(10 * (norm - 1) ** 2, abs=1e-5)
        loss, stats = critic_loss(D, real, fake, alpha, lambda_gp=10.0)
        at = torch.tensor(a)
        d_real, d_fake = (real @ at + 0.5).mean(), (fake @ at + 0.5).mean()
        assert loss.item() == pytest.approx((d_fake - d_real).item() + 10 * (norm - 1) ** 2, abs=1e-5)
        assert stats["wdist"].item() == pytest.approx((d_real - d_fake).item(), abs=1e-6)
    ids = torch.zeros(5, dtype=torch.long)
    loss, stats = mapping_loss(linear_critic([1.0, 2.0, 3.0]), linear_critic([0.0, 0.0, 0.0]), fake, ids, 2.0)
    assert stats["cls_loss"].item() == pytest.approx(0.0)  # one logit: CE is 0
    assert loss.item() == pytest.approx(-(fake @ torch.tensor([1.0, 2.0, 3.0])).mean().item(), abs=1e-5)


def grads(params):
    return [p.grad for p in params]


def test_critic_loss_reaches_only_the_critics():
    G = tiny()
    tr = ClusterMappingTrainer(G, k=3, batch_size=8)
    loss, _ = tr.critic_loss(tr.real_codes())
    loss.backward()
    for nets in tr.nets.values():
        assert all(g is not None for g in grads(nets.critic.parameters()))
        assert all(
            w.grad.abs().sum() > 0 for w in nets.critic.weights
        )  # (the output bias cancels in D(fake) - D(real))
        assert all(g is None for g in grads(nets.mapping_parameters()))
    assert all(p.grad is None and not p.requires_grad for p in G.parameters())


def test_mapping_loss_reaches_mapping_mixture_and_classifier_but_not_the_critics():
    G = tiny()
    tr = ClusterMappingTrainer(G, k=3, batch_size=8)
    loss, _ = tr.mapping_loss()
    loss.backward()
    for nets in tr.nets.values():
        for name, g in zip(
            ["mu", "log_sigma", "mapping", "classifier"],
            [nets.mu.grad, nets.log_sigma.grad, nets.mapping.weights[0].grad, nets.classifier.weights[-1].grad],
        ):
            assert g is not None and g.abs().sum() > 0, name
        assert all(g is None for g in grads(nets.critic.parameters()))
    assert all(p.grad is None for p in G.parameters())


# --- training ---------------------------------------------------------------------------
def test_training_leaves_the_generator_bit_identical_and_the_classifier_learns(trained):
    G, before, trainer, _ = trained
    after = G.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None and not p.requires_grad for p in G.parameters())
    assert trainer.layers == {"coarse": COARSE, "middle": MIDDLE}  # no fine level at 16 px; ws 5 kept out
    acc = trainer.evaluate(n=2000)
    assert min(acc.values()) > 0.6, acc  # chance is 0.25
    assert all(np.isfinite(v) for v in trainer.last_metrics.values())


def test_planted_far_apart_gaussians_are_recovered():
    G = tiny()
    trainer = ClusterMappingTrainer(G, levels=("coarse",), k=2, mu_scale=4.0, seed=3, **FAST).fit(30, progress=False)
    t = trainer.to_truncation(psi=0.0)
    ids = torch.arange(400) % 2
    codes = t.sample_codes("coarse", ids, zs(400, seed=7))
    assert (t.assign("coarse", codes) == ids).float().mean() >= 0.98
    ws = G.mapping(zs(400, seed=7), None)
    ws[:, COARSE] = codes.unsqueeze(1)
    assert (t.predict(ws, "coarse") == ids).float().mean() >= 0.98


# --- truncation semantics -------------------------------------------------------------
def test_psi_zero_gives_the_predicted_centers_and_psi_one_the_identity(trained):
    G, _, trainer, t0 = trained
    z = zs(32, seed=1)
    ws = G.mapping(z, None)
    with torch.no_grad():
        out = t0(G, z)
        for level, idx in t0.layers_.items():
            ids = t0.predict(ws, level)
            assert len(set(ids.tolist())) > 1  # a real assignment, not one constant cluster
            assert torch.equal(out[:, idx], t0.centers_[level][ids])
            assert torch.equal(out[:, idx[-1]], t0.nets_[level]["centers"][ids])  # one centre for every layer
        assert torch.equal(out[:, LAST], ws[:, LAST])
        t1 = trainer.to_truncation(psi=1.0)
        assert torch.equal(t1(G, z), ws)
        half = trainer.to_truncation(psi=0.5)(G, z)
        torch.testing.assert_close(half, 0.5 * out + 0.5 * ws, rtol=0, atol=1e-6)


def test_assign_is_the_classifier_argmax(trained):
    _, _, trainer, t = trained
    codes = torch.randn(50, 16)
    with torch.no_grad():
        for level, nets in trainer.nets.items():
            assert torch.equal(t.assign(level, codes), nets.classifier(codes).argmax(1))
            assert torch.equal(t.classify(level, codes), nets.classifier(codes))


def test_generate_samples_the_chosen_gaussian(trained):
    G, _, trainer, t0 = trained
    z = zs(6, seed=2)
    ws = G.mapping(z, None)
    with torch.no_grad():
        out = t0.generate(G, z, clusters={"coarse": 3})
        assert torch.equal(out[:, COARSE], t0.centers_["coarse"][3].expand(6, 3, 16))
        assert torch.equal(out[:, MIDDLE], t0(G, z)[:, MIDDLE])  # not chosen: original w, toward its predicted cluster
        assert torch.equal(out[:, LAST], ws[:, LAST])
        t1 = trainer.to_truncation(psi=1.0)
        ids = torch.tensor([0, 1, 2, 3, 0, 1])
        free = t1.generate(G, z, clusters={"medium": ids})  # 'medium' is 'middle'
        nets = trainer.nets["middle"]
        x = nets.mu[ids] + nets.log_sigma[ids].exp() * z
        assert torch.equal(free[:, MIDDLE], nets.mapping(x).unsqueeze(1).expand(-1, 2, -1))
        assert torch.equal(free[:, COARSE], ws[:, COARSE]) and torch.equal(free[:, LAST], ws[:, LAST])
    with pytest.raises(ValueError, match="0-3"):
        t0.generate(G, z, clusters={"coarse": 4})
    with pytest.raises(ValueError, match="fitted levels"):
        t0.generate(G, z, clusters={"fine": 0})


# --- files --------------------------------------------------------------------------------
def test_save_load_round_trip_without_pickle(trained, tmp_path):
    G, _, trainer, _ = trained
    t = trainer.to_truncation(psi=0.4)
    path = t.save(tmp_path / "learned.npz")
    with np.load(path, allow_pickle=False) as f:
        assert str(f["kind"]) == "learned-clusters"
        assert all(f[key].dtype != object for key in f.files)
    z = zs(20, seed=4)
    loaded = [
        Truncation.load(path),
        LearnedClusterTruncation.load(path),
        ClusterTruncation.load(path),
        parse_truncation(f"clusters:{path}"),
        Truncation.from_dict(json.loads(json.dumps(t.to_dict()))),
    ]
    with torch.no_grad():
        for u in loaded:
            assert type(u) is LearnedClusterTruncation and u.layers_ == t.layers_ and u.k == t.k and u.psi == 0.4
            assert torch.equal(u(G, z), t(G, z))
            assert torch.equal(
                u.generate(G, z, {"coarse": 2, "middle": 1}), t.generate(G, z, {"coarse": 2, "middle": 1})
            )
            for level in t.layers_:
                assert torch.equal(u.centers_[level], t.centers_[level])
                assert torch.equal(u.predict(G, level, z=z), t.predict(G, level, z=z))
    with pytest.raises(ValueError, match="trained, not fitted"):
        LearnedClusterTruncation(k=2).fit(G)
    broken = t.to_dict()
    broken["state"]["nets"]["coarse"]["centers"] = broken["state"]["nets"]["coarse"]["centers"][:2]
    with pytest.raises(ValueError, match="centers"):
        Truncation.from_dict(broken)


def read_metrics(out):
    with open(os.path.join(out, "metrics.csv"), newline="") as f:
        return list(csv.reader(f))


def test_resume_reproduces_the_uninterrupted_run_and_refuses_other_settings(tmp_path, capsys):
    G = tiny()
    kw = dict(levels=("coarse", "medium"), k=3, seed=5, log_every=1, progress=False, **FAST)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    ta = train_cluster_mappings(G, a, 6, **kw)
    train_cluster_mappings(G, b, 3, **kw)
    assert read_metrics(b)[-1][0] == "3"
    with open(os.path.join(b, "metrics.csv"), "a") as f:  # rows written after the snapshot by a run that then died
        f.write("4,0,0,0,0,0,0,0,0,0,0,0,0\n")
    capsys.readouterr()
    tb = train_cluster_mappings(G, b, 6, **kw)
    assert f"resuming {b} at step 3" in capsys.readouterr().out
    sa = torch.load(os.path.join(a, "state.pt"), weights_only=True)
    sb = torch.load(os.path.join(b, "state.pt"), weights_only=True)
    assert sa["step"] == sb["step"] == 6
    assert sa["nets"].keys() == sb["nets"].keys() and all(torch.equal(sa["nets"][k], sb["nets"][k]) for k in sa["nets"])
    assert torch.equal(sa["rng"], sb["rng"])
    with np.load(os.path.join(a, "clusters.npz")) as fa, np.load(os.path.join(b, "clusters.npz")) as fb:
        assert fa.files == fb.files and all(np.array_equal(fa[k], fb[k]) for k in fa.files)
    assert read_metrics(a) == read_metrics(b) and [r[0] for r in read_metrics(a)[1:]] == [str(i) for i in range(1, 7)]
    assert ta.info_["steps"] == tb.info_["steps"] == 6 and set(ta.info_["accuracy"]) == {"coarse", "middle"}
    with pytest.raises(ValueError, match="different settings: k"):
        train_cluster_mappings(G, b, 7, **{**kw, "k": 4})
    with pytest.raises(ValueError, match="different settings: .*layers"):
        train_cluster_mappings(G, b, 7, **{**kw, "levels": ("coarse",)})
    with pytest.raises(ValueError, match="different settings: model"):
        train_cluster_mappings(tiny(seed=1), b, 7, **kw)
    assert torch.load(os.path.join(b, "state.pt"), weights_only=True)["step"] == 6  # refused runs changed nothing


def test_conditional_generators_are_refused():
    with pytest.raises(ValueError, match="c_dim=2"):
        ClusterMappingTrainer(tiny(c_dim=2))


# --- command line ---------------------------------------------------------------------
def test_cli_trains_and_truncate_uses_the_file(tmp_path, capsys):
    from latentlab.checkpoints import save_native
    from latentlab.cli.train_clusters import clusters

    ckpt = tmp_path / "tiny.safetensors"
    save_native(ckpt, {"G_ema": tiny()}, "latentlab")
    group = click.Group(commands=[clusters])
    out = tmp_path / "run"
    args = [
        "clusters",
        "--model",
        str(ckpt),
        "--steps",
        "3",
        "--out",
        str(out),
        "--levels",
        "coarse,medium",
        "--k",
        "2",
        "--batch",
        "8",
        "--n-critic",
        "1",
        "--device",
        "cpu",
    ]
    res = CliRunner().invoke(group, args)
    assert res.exit_code == 0, res.output
    path = out / "clusters.npz"
    assert f"wrote clusters.npz, metrics.csv and state.pt (3 steps, levels coarse, middle) to {out}" in res.output
    assert "classifier accuracy: coarse" in res.output
    assert sorted(os.listdir(out)) == ["clusters.npz", "metrics.csv", "state.pt"]
    assert Truncation.load(path).info_["steps"] == 3
    assert "Example:" in CliRunner().invoke(group, ["clusters", "--help"]).output
    from latentlab.cli.errors import run

    assert run(group, [("3" if a == "2" else a) for a in args]) == 1  # --k 3 this time
    assert "different settings: k" in capsys.readouterr().err
    code, stdout, err = run_cli(
        capsys,
        "truncate",
        "--model",
        ckpt,
        "--seeds",
        "0-1",
        "--variant",
        "none",
        "--clusters",
        path,
        "--out",
        tmp_path / "trunc",
    )
    assert code == 0, err
    assert "learned clusters k=2 psi=0.7" in stdout
    with open(tmp_path / "trunc" / "truncate.json") as f:
        assert json.load(f)["variants"][1]["spec"] == f"clusters:{path}"


# --- cluster centres ----------------------------------------------------------------------
def test_centers_are_the_mean_of_each_gaussians_codes(trained):
    _, _, trainer, t0 = trained
    assert t0.info_["center_samples"] == 10000 and t0.info_["center_seed"] == trainer.seed
    n = 100000
    many = trainer.to_truncation(center_samples=n)
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for level, nets in trainer.nets.items():
            eps = torch.randn(n, 16, generator=g)  # independent draws: a Monte Carlo check of the definition
            for k in range(4):
                codes = nets.mapping(nets.mu[k] + nets.log_sigma[k].exp() * eps).double()
                mean, se = codes.mean(0), codes.std(0) * math.sqrt(2 / n)  # both estimates' sampling errors
                assert ((many.centers_[level][k, 0].double() - mean).abs() < 5 * se + 1e-6).all(), (level, k)
                at_mu = nets.mapping(nets.mu[k : k + 1])[0].double()  # the old centre M(mu_k) is not the mean
                assert (at_mu - mean).norm() > 10 * se.norm(), (level, k)
            # exactly: the documented draws, torch.Generator().manual_seed(seed).randn(center_samples, x_dim)
            eps0 = torch.randn(10000, 16, generator=torch.Generator().manual_seed(trainer.seed))
            exact = torch.stack(
                [nets.mapping(nets.mu[k] + nets.log_sigma[k].exp() * eps0).double().mean(0) for k in range(4)]
            )
            torch.testing.assert_close(t0.centers_[level][:, 0].double(), exact, rtol=0, atol=1e-5)
    again = LearnedClusterTruncation.from_dict(t0.to_dict()).recompute_centers(10000, seed=trainer.seed)
    assert all(torch.equal(again.centers_[level], t0.centers_[level]) for level in t0.layers_)


def test_files_from_the_older_trainer_warn_and_can_recompute_their_centers(trained):
    G, _, _, t0 = trained
    old = t0.to_dict()
    del old["state"]["info"]["center_samples"]
    for level in t0.layers_:  # the older trainer's centres M_l(mu_k)
        net = t0.nets_[level]
        old["state"]["nets"][level]["centers"] = t0.map(level, net["mu"]).numpy().tolist()
    with pytest.warns(UserWarning, match="older trainer"):
        u = Truncation.from_dict(old)
    assert not torch.equal(u.centers_["coarse"], t0.centers_["coarse"])
    u.recompute_centers(10000, seed=t0.info_["center_seed"])
    assert all(torch.equal(u.centers_[level], t0.centers_[level]) for level in t0.layers_)
    z = zs(8, seed=3)
    with torch.no_grad():
        assert torch.equal(u(G, z), t0(G, z))


# --- image classifier ------------------------------------------------------------------
def test_image_classifier_trains_through_the_frozen_synthesis_and_round_trips(tmp_path):
    G = tiny()
    tr = ClusterMappingTrainer(
        G, levels=("coarse",), k=2, classifier="image", cnn_channels=(4, 8), mu_scale=3.0, seed=1, **FAST
    )
    loss, _ = tr.mapping_loss()
    loss.backward()
    nets = tr.nets["coarse"]
    for name, p in [
        ("mu", nets.mu),
        ("mapping", nets.mapping.weights[0]),
        ("conv", nets.classifier.weights[0]),
        ("fc", nets.classifier.weights[-1]),
    ]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in G.parameters())
    tr.fit(3, progress=False)
    assert tr.config["classifier"] == "image" and 0 <= tr.evaluate(n=40)["coarse"] <= 1
    t = tr.to_truncation(psi=0.3, center_samples=500)
    assert t.classifier == "image" and "image classifier" in t.name
    assert [a.shape for a in t.nets_["coarse"]["classifier"]["weights"]] == [(4, 3, 3, 3), (8, 4, 3, 3), (2, 8)]
    path = t.save(tmp_path / "img.npz")
    u = Truncation.load(path)
    z = zs(64, seed=2)
    with torch.no_grad():
        ws = G.mapping(z, None)
        expected = nets.classifier(G.synthesis(ws, noise_mode="const")).argmax(1)  # the trained CNN on the render
        for v in (t, u):
            assert torch.equal(v.predict(G, "coarse", z=z), expected)
            assert torch.equal(v.predict(ws, "coarse", G=G), expected)
        assert len(set(expected.tolist())) == 2  # both clusters occur: a real assignment
        assert torch.equal(u(G, z), t(G, z))
        assert torch.equal(u.generate(G, z, {"coarse": 1}), t.generate(G, z, {"coarse": 1}))
    with pytest.raises(ValueError, match="pass the generator"):
        u.predict(ws, "coarse")
    broken = t.to_dict()
    broken["state"]["nets"]["coarse"]["classifier"]["weights"][0] = np.zeros((4, 3, 5, 5)).tolist()
    with pytest.raises(ValueError, match="3x3 conv"):
        Truncation.from_dict(broken)


def test_classifier_choice_is_checked():
    with pytest.raises(ValueError, match="classifier must be one of code, image"):
        ClusterMappingTrainer(tiny(), classifier="pixels")
    with pytest.raises(ValueError, match="classifier must be one of code, image"):
        LearnedClusterTruncation(classifier="pixels")


# --- t-SNE figure -----------------------------------------------------------------------
@pytest.mark.parametrize("which", ["learned", "fitted"])
def test_tsne_figure_has_one_colour_per_cluster(trained, tmp_path, which):
    from PIL import Image

    from latentlab.truncation.figures import cluster_embedding_figure

    G, _, _, t = trained
    if which == "fitted":
        t = ClusterTruncation(k=3, levels=("coarse", "middle"), method="kmeans").fit(G, n_samples=300)
    res = cluster_embedding_figure(t, G, str(tmp_path / "tsne"), n=150, seed=0)
    assert res["paths"] == [str(tmp_path / "tsne.png"), str(tmp_path / "tsne.pdf")]
    assert sorted(os.listdir(tmp_path)) == ["tsne.pdf", "tsne.png"]
    pixels = np.asarray(Image.open(tmp_path / "tsne.png").convert("RGB")).reshape(-1, 3)
    found = {tuple(p) for p in np.unique(pixels, axis=0)}
    assert list(res["levels"]) == ["coarse", "middle"]
    for level, d in res["levels"].items():
        k = t.k_for(level)
        rgb = {tuple(int(round(255 * c)) for c in color[:3]) for color in d["colors"]}
        assert len(rgb) == k and rgb <= found  # k distinct colours, all drawn
        assert d["xy"].shape == (150, 2) and np.isfinite(d["xy"]).all()
        if which == "learned":  # every Gaussian equally often, coloured by the Gaussian
            assert np.array_equal(d["ids"], np.arange(150) % k)
        else:  # coloured by the assigned cluster
            z = torch.from_numpy(np.random.RandomState(0).standard_normal((150, 16)).astype(np.float32))
            assert np.array_equal(d["ids"], t.predict(G, level, z=z).numpy())


# --- truncate --clusters: --choose, --psi, --tsne ----------------------------------------
@pytest.fixture(scope="module")
def files(trained, tmp_path_factory):
    """(checkpoint of the trained fixture's G, learned clusters file with psi 0.5, fitted clusters file with psi 0.5)."""
    from latentlab.checkpoints import save_native

    G, _, trainer, _ = trained
    folder = tmp_path_factory.mktemp("cli")
    ckpt = folder / "tiny.safetensors"
    save_native(ckpt, {"G_ema": G}, "latentlab")
    learned = trainer.to_truncation(psi=0.5).save(folder / "learned.npz")
    fitted = ClusterTruncation(k=3, psi=0.5, levels=("coarse", "middle"), method="kmeans").fit(G, n_samples=300)
    return ckpt, learned, fitted.save(folder / "fitted.npz")


def rendered_grid(ckpt, ws):
    import latentlab
    from latentlab.utils.images import make_grid, to_uint8

    G = latentlab.load_generator(str(ckpt))
    with torch.no_grad():
        return make_grid(to_uint8(G.synthesis(ws(G), noise_mode="const")), cols=4)


def png(path):
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_truncate_choose_generates_from_the_chosen_clusters(files, tmp_path, capsys):
    from latentlab.latents import z_from_seeds

    ckpt, learned, _ = files
    z = z_from_seeds([0, 1, 2, 3], 16)
    rows = {}
    for choice in ("coarse=1,medium=2", "coarse=3,medium=2", "coarse=1,middle=0"):
        out = tmp_path / choice.replace(",", "_")
        code, stdout, err = run_cli(
            capsys,
            "truncate",
            "--model",
            ckpt,
            "--seeds",
            "0-3",
            "--variant",
            "none",
            "--clusters",
            learned,
            "--choose",
            choice,
            "--out",
            out,
        )
        assert code == 0, err
        rows[choice] = png(out / "variant1.png")
        wanted = {("middle" if k == "medium" else k): int(v) for k, v in (p.split("=") for p in choice.split(","))}
        assert json.loads((out / "truncate.json").read_text())["variants"][1]["choose"] == wanted
        assert f"choose {choice.replace('medium', 'middle')}" in stdout
        direct = rendered_grid(ckpt, lambda G: Truncation.load(learned).generate(G, z, wanted))
        assert np.array_equal(rows[choice], direct)
    assert not np.array_equal(rows["coarse=1,medium=2"], rows["coarse=3,medium=2"])
    assert not np.array_equal(rows["coarse=1,medium=2"], rows["coarse=1,middle=0"])
    plain = rendered_grid(ckpt, lambda G: Truncation.load(learned)(G, z))
    assert not np.array_equal(rows["coarse=1,medium=2"], plain)


def test_truncate_psi_overrides_the_file_and_tsne_writes_the_figure(files, tmp_path, capsys):
    from latentlab.latents import z_from_seeds

    ckpt, learned, fitted = files
    z = z_from_seeds([0, 1, 2, 3], 16)
    for path in (learned, fitted):
        t = Truncation.load(path)
        assert t.psi == 0.5
        grids = {}
        for psi in (None, "0", "1"):
            out = tmp_path / f"{os.path.basename(path)}_{psi}"
            extra = [] if psi is None else ["--psi", psi]
            code, stdout, err = run_cli(
                capsys,
                "truncate",
                "--model",
                ckpt,
                "--seeds",
                "0-3",
                "--variant",
                "none",
                "--clusters",
                path,
                *extra,
                "--out",
                out,
            )
            assert code == 0, err
            grids[psi] = png(out / "variant1.png")
            t.psi = 0.5 if psi is None else float(psi)
            assert np.array_equal(grids[psi], rendered_grid(ckpt, lambda G: t(G, z)))
            assert f"psi={t.psi:g}" in stdout
        assert np.array_equal(grids["1"], png(tmp_path / f"{os.path.basename(path)}_1" / "variant0.png"))  # psi 1: none
        assert not np.array_equal(grids[None], grids["0"]) and not np.array_equal(grids[None], grids["1"])
    out = tmp_path / "tsne"
    code, stdout, err = run_cli(
        capsys,
        "truncate",
        "--model",
        ckpt,
        "--seeds",
        "0-1",
        "--variant",
        "none",
        "--clusters",
        learned,
        "--tsne",
        "--embed-samples",
        "40",
        "--out",
        out,
    )
    assert code == 0, err
    assert {"tsne.png", "tsne.pdf"} <= set(os.listdir(out)) and "tsne.png" in stdout
    assert json.loads((out / "truncate.json").read_text())["figures"] == ["tsne.png", "tsne.pdf"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--choose", "coarse=1"], "--choose needs --clusters"),
        (["--trunc", "0.5"], "--trunc needs --clusters"),
        (["--psi", "0.5"], "--trunc needs --clusters"),  # the old spelling, a hidden alias
        (["--clusters", "LEARNED", "--choose", "fine=0"], "unknown level 'fine'; fitted levels: coarse, middle"),
        (["--clusters", "LEARNED", "--choose", "coarse=4"], "cluster for level 'coarse' must be an id in 0-3"),
        (["--clusters", "LEARNED", "--choose", "coarse=-1"], "must be an id in 0-3"),
        (["--clusters", "LEARNED", "--choose", "coarse"], "--choose: 'coarse' is not LEVEL=ID"),
        (["--clusters", "LEARNED", "--choose", "coarse=a"], "cluster id 'a' of level 'coarse' is not an integer"),
        (["--clusters", "LEARNED", "--choose", "medium=1,middle=2"], "level 'middle' is chosen twice"),
        (["--clusters", "FITTED", "--psi", "nan"], "not a finite number"),
    ],
)
def test_truncate_choose_and_psi_errors_are_one_line(files, tmp_path, capsys, args, message):
    ckpt, learned, fitted = files
    args = [{"LEARNED": learned, "FITTED": fitted}.get(a, a) for a in args]
    code, _, err = run_cli(capsys, "truncate", "--model", ckpt, "--seeds", "0", *args, "--out", tmp_path / "o")
    assert code in (1, 2) and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()  # refused before any work
