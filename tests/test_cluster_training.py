"""Learned multi-level cluster mappings: loss terms, training, truncation semantics, files, resume and CLI."""
import copy
import csv
import json
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
    return Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=16, img_channels=3,
                     mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=16)).eval()


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
        assert all(w.grad.abs().sum() > 0 for w in nets.critic.weights)  # (the output bias cancels in D(fake) - D(real))
        assert all(g is None for g in grads(nets.mapping_parameters()))
    assert all(p.grad is None and not p.requires_grad for p in G.parameters())


def test_mapping_loss_reaches_mapping_mixture_and_classifier_but_not_the_critics():
    G = tiny()
    tr = ClusterMappingTrainer(G, k=3, batch_size=8)
    loss, _ = tr.mapping_loss()
    loss.backward()
    for nets in tr.nets.values():
        for name, g in zip(["mu", "log_sigma", "mapping", "classifier"],
                           [nets.mu.grad, nets.log_sigma.grad, nets.mapping.weights[0].grad, nets.classifier.weights[-1].grad]):
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
            assert torch.equal(out[:, idx], t0.centers[level][ids].unsqueeze(1).expand(-1, len(idx), -1))
            expected = trainer.nets[level].mapping(trainer.nets[level].mu)[ids]  # c_k = M(mu_k)
            assert torch.equal(out[:, idx[0]], expected)
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
        assert torch.equal(out[:, COARSE], t0.centers["coarse"][3].expand(6, 3, 16))
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
    loaded = [Truncation.load(path), LearnedClusterTruncation.load(path), ClusterTruncation.load(path),
              parse_truncation(f"clusters:{path}"), Truncation.from_dict(json.loads(json.dumps(t.to_dict())))]
    with torch.no_grad():
        for u in loaded:
            assert type(u) is LearnedClusterTruncation and u.layers_ == t.layers_ and u.k == t.k and u.psi == 0.4
            assert torch.equal(u(G, z), t(G, z))
            assert torch.equal(u.generate(G, z, {"coarse": 2, "middle": 1}), t.generate(G, z, {"coarse": 2, "middle": 1}))
            for level in t.layers_:
                assert torch.equal(u.centers[level], t.centers[level])
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


def test_resume_reproduces_the_uninterrupted_run_and_refuses_other_settings(tmp_path):
    G = tiny()
    kw = dict(levels=("coarse", "medium"), k=3, seed=5, log_every=1, progress=False, **FAST)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    ta = train_cluster_mappings(G, a, 6, **kw)
    train_cluster_mappings(G, b, 3, **kw)
    assert read_metrics(b)[-1][0] == "3"
    with open(os.path.join(b, "metrics.csv"), "a") as f:  # rows written after the snapshot by a run that then died
        f.write("4,0,0,0,0,0,0,0,0,0,0,0,0\n")
    tb = train_cluster_mappings(G, b, 6, **kw)
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
    from cli.train_clusters import clusters
    from latentlab.checkpoints import save_native

    ckpt = tmp_path / "tiny.safetensors"
    save_native(ckpt, {"G_ema": tiny()}, "latentlab")
    group = click.Group(commands=[clusters])
    out = tmp_path / "run"
    args = ["clusters", "--model", str(ckpt), "--steps", "3", "--out", str(out), "--levels", "coarse,medium",
            "--k", "2", "--batch", "8", "--n-critic", "1", "--device", "cpu"]
    res = CliRunner().invoke(group, args)
    assert res.exit_code == 0, res.output
    path = out / "clusters.npz"
    assert f"wrote {path}" in res.output and "classifier accuracy: coarse" in res.output
    assert sorted(os.listdir(out)) == ["clusters.npz", "metrics.csv", "state.pt"]
    assert Truncation.load(path).info_["steps"] == 3
    assert "Example:" in CliRunner().invoke(group, ["clusters", "--help"]).output
    from cli.errors import run

    assert run(group, [("3" if a == "2" else a) for a in args]) == 1  # --k 3 this time
    assert "different settings: k" in capsys.readouterr().err
    code, stdout, err = run_cli(capsys, "truncate", "--model", ckpt, "--seeds", "0-1", "--variant", "none",
                                "--clusters", path, "--out", tmp_path / "trunc")
    assert code == 0, err
    assert "learned clusters k=2 psi=0.7" in stdout
    with open(tmp_path / "trunc" / "truncate.json") as f:
        assert json.load(f)["variants"][1]["spec"] == f"clusters:{path}"
