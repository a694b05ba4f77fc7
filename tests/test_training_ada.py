"""ADA in the training loop: StyleGAN2-ADA's --cfg presets, losses through the augmentation pipeline, the p
controller inside a Trainer, exact resume, the .pkl export of augment_pipe, the `train gan` options and
fine-tuning defaults. (The pipeline's own transforms are tested in test_augment.py.)"""

import csv
import json

import numpy as np
import pytest
import torch

from conftest import blob_images, run_cli
from latentlab.errors import ConfigError
from latentlab.train import ImageDataset, StyleGAN2Loss, Trainer, TrainingOptions, scratch_networks
from latentlab.train.augment import AugmentPipe
from latentlab.train.presets import resolve_preset
from latentlab.train.runs import train_gan

NET = dict(z_dim=8, w_dim=8, channel_base=128, channel_max=8)  # tiny 16 px networks
NET_ARGS = ["--z-dim", 8, "--w-dim", 8, "--channel-base", 128, "--channel-max", 8]
# Fast, deterministic runs: snapshots only at the end, both lazy regularisers every other step.
OPTS = dict(batch_size=4, snapshot_every=100, log_every=1, g_reg_interval=2, d_reg_interval=2)
F32 = 1e-6  # p is kept in a float32 buffer


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions on a shared 2-core machine are ~10x faster on one thread than on two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """8 smooth random 16x16 colour blobs."""
    return blob_images(tmp_path_factory.mktemp("ada_imgs"), 8, seed=1)


def tiny_trainer(out, image_dir, seed=0, **options):
    G, D = scratch_networks(16, seed=seed, **NET)
    opts = TrainingOptions(**{**OPTS, **options})
    return Trainer(out, G, D, ImageDataset(image_dir, 16), opts, progress=False)


def same_networks(a, b):
    for name in ("G", "D", "G_ema"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        if set(sa) != set(sb) or not all(torch.equal(sa[k], sb[k]) for k in sa):
            return False
    return True


def read_metrics(folder):
    with open(folder / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def options_record(folder):
    return json.loads((folder / "options.json").read_text())


def force_logits(trainer, sign_of):
    """Make every D call of the trainer's loss return sign_of(img) (+1 / -1) per image, keeping the real D and
    the augmentation in the graph (with weight 0)."""
    run_D = trainer.loss.run_D

    def patched(img, c):
        logits = run_D(img, c)
        return torch.full_like(logits, float(sign_of(img))) + 0 * logits

    trainer.loss.run_D = patched


# ------------------------------------------------------------------------------------------- presets


@pytest.mark.parametrize(
    "res, gpus, batch, mbstd, channel_base, lr",
    [
        (64, 1, 32, 4, 16384, 0.0025),  # min(4096 / 64, 32) = 32
        (256, 1, 16, 4, 16384, 0.0025),  # 4096 / 256 = 16
        (512, 1, 8, 4, 32768, 0.0025),  # 512 px and up: fmaps 1
        (1024, 1, 4, 4, 32768, 0.002),  # 1024 px: lr 0.002
        (2048, 1, 2, 2, 32768, 0.002),  # the group is the per-GPU batch when that is below 4
        (256, 8, 64, 4, 16384, 0.0025),  # max(min(8 * 16, 64), 8) = 64; group min(64 / 8, 4) = 4
        (1024, 8, 32, 4, 32768, 0.002),  # min(8 * 4, 64) = 32
        (64, 4, 64, 4, 16384, 0.0025),  # min(4 * 32, 64) = 64; group min(16, 4)
    ],
)
def test_auto_preset_hand_values(res, gpus, batch, mbstd, channel_base, lr):
    got = resolve_preset("auto", res, gpus)
    o, n = got["options"], got["network"]
    assert o["batch_size"] == batch
    assert o["lr"] == lr
    assert o["r1_gamma"] == pytest.approx(0.0002 * res * res / batch, rel=1e-12)
    assert o["ema_kimg"] == pytest.approx(batch * 10 / 32, rel=1e-12)
    assert o["ema_rampup"] == 0.05 and o["style_mixing_prob"] == 0.9 and o["pl_weight"] == 2.0
    assert n == dict(
        map_layers=2, channel_base=channel_base, channel_max=512, mbstd_group=mbstd, d_architecture="resnet"
    )


def test_auto_preset_spot_values():
    assert resolve_preset("auto", 64)["options"]["r1_gamma"] == pytest.approx(0.0256)  # 0.0002 * 4096 / 32
    assert resolve_preset("auto", 64)["options"]["ema_kimg"] == 10
    assert resolve_preset("auto", 256)["options"]["r1_gamma"] == pytest.approx(0.8192)
    assert resolve_preset("auto", 1024)["options"]["r1_gamma"] == pytest.approx(52.4288)
    assert resolve_preset("auto", 256, 8)["options"]["r1_gamma"] == pytest.approx(0.2048)


def test_fixed_presets_hand_values():
    p = resolve_preset("paper256", 256)
    assert p["options"] == dict(
        batch_size=64, lr=0.0025, r1_gamma=1, ema_kimg=20, ema_rampup=0.0, style_mixing_prob=0.9, pl_weight=2.0
    )
    assert p["network"] == dict(
        map_layers=8, channel_base=16384, channel_max=512, mbstd_group=8, d_architecture="resnet"
    )
    # A fixed preset does not depend on the resolution or the process count.
    assert resolve_preset("paper256", 64, 4) == p
    c = resolve_preset("cifar", 32)
    assert c["options"] == dict(
        batch_size=64, lr=0.0025, r1_gamma=0.01, ema_kimg=500, ema_rampup=0.05, style_mixing_prob=0.0, pl_weight=0.0
    )
    assert c["network"] == dict(
        map_layers=2, channel_base=32768, channel_max=512, mbstd_group=32, d_architecture="orig"
    )
    s = resolve_preset("stylegan2", 1024)
    assert (s["options"]["batch_size"], s["options"]["r1_gamma"], s["options"]["ema_kimg"]) == (32, 10, 10)
    assert (s["network"]["map_layers"], s["network"]["channel_base"], s["network"]["mbstd_group"]) == (8, 32768, 4)
    assert resolve_preset("paper512", 512)["options"]["r1_gamma"] == 0.5
    assert resolve_preset("paper1024", 1024)["options"]["lr"] == 0.002


def test_unknown_preset_and_bad_gpus_are_refused():
    with pytest.raises(ConfigError, match="unknown training configuration 'paper128'.*auto"):
        resolve_preset("paper128", 128)
    with pytest.raises(ConfigError, match="gpus"):
        resolve_preset("auto", 128, 0)
    with pytest.raises(ConfigError, match="unknown training configuration"):
        TrainingOptions(cfg="nope").resolved(64)


def test_resolved_options_take_the_preset_where_not_given():
    o = TrainingOptions(cfg="paper256", batch_size=8).resolved(256)
    assert o.batch_size == 8  # explicit
    assert (o.lr, o.r1_gamma, o.ema_kimg, o.ema_rampup, o.style_mixing_prob, o.pl_weight) == (
        0.0025,
        1,
        20,
        0.0,
        0.9,
        2.0,
    )
    assert (o.aug, o.augpipe, o.ada_target, o.ada_kimg) == ("noaug", "bgc", 0.6, 500)
    # As StyleGAN2-ADA's train.py: an explicit --batch does not change auto's gamma and EMA (computed from its batch).
    a = TrainingOptions(cfg="auto", batch_size=8, r1_gamma=3.0).resolved(256)
    assert (a.batch_size, a.r1_gamma, a.ema_kimg) == (8, 3.0, 5.0)
    # Without a cfg: the DEFAULTS and the formulas on the batch actually used.
    d = TrainingOptions(batch_size=8).resolved(64)
    assert (d.lr, d.r1_gamma, d.ema_kimg, d.ema_rampup) == (0.0025, pytest.approx(0.0002 * 64 * 64 / 8), 2.5, 0.05)


# ------------------------------------------------------------------------------------------- losses through the pipe


def _g_grads(pipe, seed=0):
    G, D = scratch_networks(16, seed=0, **NET)
    G.train()
    loss = StyleGAN2Loss(G, D, style_mixing_prob=0.0, augment_pipe=pipe)
    torch.manual_seed(seed)
    G.requires_grad_(True)
    D.requires_grad_(False)
    value, _, _ = loss.g_main(torch.randn(4, 8), torch.zeros(4, 0))
    value.backward()
    return {n: p.grad.clone() for n, p in G.named_parameters() if p.grad is not None}


def test_generator_is_trained_through_the_augmented_fakes():
    plain = _g_grads(None)
    augmented = _g_grads(AugmentPipe.from_preset("bgc"))  # p = 1
    assert set(augmented) == set(plain)
    assert sum(float(g.abs().sum()) for g in augmented.values()) > 0
    assert all(torch.isfinite(g).all() for g in augmented.values())
    assert any(not torch.equal(augmented[k], plain[k]) for k in plain)
    # p = 0 is the identity: the very same gradients.
    off = AugmentPipe.from_preset("bgc")
    off.p.zero_()
    identity = _g_grads(off)
    assert all(torch.equal(identity[k], plain[k]) for k in plain)


def test_r1_through_the_pipe_and_observe_real():
    G, D = scratch_networks(16, seed=0, **NET)
    seen = []
    loss = StyleGAN2Loss(
        G.train(), D.train(), augment_pipe=AugmentPipe.from_preset("bgc"), observe_real=seen.append, r1_gamma=10.0
    )
    real = torch.rand(4, 3, 16, 16) * 2 - 1
    c = torch.zeros(4, 0)
    D.requires_grad_(False)
    G.requires_grad_(True)
    loss.g_main(torch.randn(4, 8), c)
    assert seen == []  # fakes are not observed
    D.requires_grad_(True)
    G.requires_grad_(False)
    _, stats = loss.d_main(torch.randn(4, 8), c, real, c)
    assert len(seen) == 1 and seen[0].shape == (4, 1) and not seen[0].requires_grad
    assert float(seen[0].mean()) == pytest.approx(stats["D_real"], abs=1e-6)
    value, stats = loss.d_reg(real, c)
    assert len(seen) == 2 and seen[1].shape == (4, 1)
    assert np.isfinite(stats["r1_penalty"]) and stats["r1_penalty"] > 0
    D.zero_grad(set_to_none=True)
    value.backward()
    grads = [p.grad for p in D.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


class _LinearCritic(torch.nn.Module):
    """D(x) = <a, x>: its gradient with respect to its input is a, everywhere."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(2)))

    def forward(self, img, c):
        return (img * self.a).sum(dim=[1, 2, 3])[:, None]


def test_r1_is_the_gradient_wrt_the_unaugmented_real():
    """With a contrast-only pipe, D sees k_i x_i: the gradient with respect to the un-augmented x_i is k_i a,
    so R1 = mean_i k_i^2 |a|^2 (|a|^2 were it taken with respect to the augmented image)."""
    G, _ = scratch_networks(16, seed=0, **NET)
    D = _LinearCritic()
    seen = []
    pipe = AugmentPipe(contrast=1)  # p = 1
    loss = StyleGAN2Loss(G, D, r1_gamma=2.0, augment_pipe=pipe, observe_real=seen.append)
    real = torch.rand(6, 3, 16, 16) * 2 - 1
    value, stats = loss.d_reg(real, torch.zeros(6, 0))
    k = seen[0][:, 0] / D(real, None)[:, 0].detach()  # each image's contrast factor
    assert float((k - 1).abs().max()) > 1e-3  # contrast really applied
    a2 = float(D.a.detach().square().sum())
    expected = float((k.square() * a2).mean())
    assert stats["r1_penalty"] == pytest.approx(expected, rel=1e-4)
    assert float(value.detach()) == pytest.approx(expected, rel=1e-4)  # gamma / 2 = 1


# ------------------------------------------------------------------------------------------- the controller


def test_ada_raises_p_when_d_is_sure_of_the_reals(tmp_path, image_dir):
    tr = tiny_trainer(tmp_path, image_dir, aug="ada", ada_interval=4, ada_kimg=0.1, log_every=2)
    force_logits(tr, lambda img: 1.0)
    ps, train_step = [], tr.train_step

    def recording_step():
        stats = train_step()
        ps.append(float(tr.augment_pipe.p))
        return stats

    tr.train_step = recording_step
    tr.train(8)
    # step = sign(1 - 0.6) * batch 4 * interval 4 / (0.1 kimg * 1000) = 0.16, every 4 steps.
    assert ps[:3] == [0, 0, 0]
    assert ps[3:7] == pytest.approx([0.16] * 4, abs=F32)
    assert ps[7] == pytest.approx(0.32, abs=F32)
    assert tr.ada.last_rt == 1.0
    rows = read_metrics(tmp_path)
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]
    # augment_p: the value at the row's step (the mean over steps 3-4 would be 0.08); r_t: the interval's mean.
    assert [float(r["augment_p"]) for r in rows] == pytest.approx([0, 0.16, 0.16, 0.32], abs=F32)
    assert [float(r["r_t"]) for r in rows] == [1.0] * 4


def test_ada_p_stays_at_zero_when_d_is_unsure(tmp_path, image_dir):
    tr = tiny_trainer(tmp_path, image_dir, aug="ada", ada_interval=4, ada_kimg=0.1, log_every=4)
    force_logits(tr, lambda img: -1.0)
    tr.train(8)
    assert float(tr.augment_pipe.p) == 0.0 and tr.ada.last_rt == -1.0
    rows = read_metrics(tmp_path)
    assert [float(r["augment_p"]) for r in rows] == [0.0, 0.0]
    assert [float(r["r_t"]) for r in rows] == [-1.0, -1.0]


def test_ada_counts_the_r1_passes_on_reals(tmp_path, image_dir):
    """D says +1 in the main pass on reals and -1 in the R1 pass (its input needs grad there). R1 runs at steps
    1, 3, 5, 7 (d_reg_interval 2), so r_t over 4 steps = (16 - 8) / 24 = 1/3 < 0.6 and p goes down."""
    tr = tiny_trainer(tmp_path, image_dir, aug="ada", aug_p=0.5, ada_interval=4, ada_kimg=0.1)
    force_logits(tr, lambda img: -1.0 if img.requires_grad else 1.0)
    tr.train(8)
    assert tr.ada.last_rt == pytest.approx(1 / 3)
    assert float(tr.augment_pipe.p) == pytest.approx(0.5 - 2 * 0.16, abs=F32)
    rows = read_metrics(tmp_path)
    assert [float(r["r_t"]) for r in rows] == [0.0, 1.0] * 4  # (4 - 4) / 8 with R1, 4 / 4 without
    assert [float(r["augment_p"]) for r in rows] == pytest.approx([0.5] * 3 + [0.34] * 4 + [0.18], abs=F32)


def test_fixed_p_zero_is_noaug_bit_for_bit(tmp_path, image_dir):
    plain = tiny_trainer(tmp_path / "a", image_dir, aug="noaug").train(3)
    zero = tiny_trainer(tmp_path / "b", image_dir, aug="fixed", aug_p=0.0).train(3)
    half = tiny_trainer(tmp_path / "c", image_dir, aug="fixed", aug_p=0.5).train(3)
    assert plain.augment_pipe is None and float(zero.augment_pipe.p) == 0.0
    assert same_networks(plain, zero)
    assert not same_networks(plain, half)
    assert float(half.augment_pipe.p) == 0.5  # fixed: never adapted
    assert [float(r["augment_p"]) for r in read_metrics(tmp_path / "c")] == [0.5] * 3


@pytest.mark.slow
def test_exact_resume_with_ada(tmp_path, image_dir):
    """Interval 3: the resume point (step 4) falls inside an interval, so the controller's sums matter too."""
    kw = dict(aug="ada", aug_p=0.5, ada_interval=3, ada_kimg=0.1)  # a move of 4 * 3 / 100 = 0.12
    straight = tiny_trainer(tmp_path / "a", image_dir, **kw).train(8)
    half = tiny_trainer(tmp_path / "b", image_dir, **kw).train(4)
    p4, ada4 = float(half.augment_pipe.p), half.ada.state_dict()
    assert p4 == pytest.approx(0.38, abs=F32) or p4 == pytest.approx(0.62, abs=F32)  # moved once, at step 3
    assert ada4["count"] > 0  # step 4's real passes, not yet used
    resumed = Trainer.resume(tmp_path / "b", ImageDataset(image_dir, 16), progress=False)
    assert resumed.step == 4 and float(resumed.augment_pipe.p) == p4 and resumed.ada.state_dict() == ada4
    resumed.train(8)
    assert same_networks(straight, resumed)
    assert float(resumed.augment_pipe.p) == float(straight.augment_pipe.p)
    assert resumed.ada.state_dict() == straight.ada.state_dict()
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [r["step"] for r in b] == [str(i) for i in range(1, 9)]
    for col in ("loss_G", "loss_D", "r_t", "augment_p"):
        assert [r[col] for r in a] == [r[col] for r in b], col


def test_export_pkl_holds_the_augment_pipe_as_data(tmp_path, image_dir, monkeypatch):
    from latentlab.checkpoints import load_checkpoint, safe_pickle
    from latentlab.train.augment import PRESETS

    tr = tiny_trainer(tmp_path, image_dir, aug="ada", aug_p=0.25, ada_interval=1, ada_kimg=0.1, export_pkl=True)
    tr.train(1)
    p = float(tr.augment_pipe.p)
    assert p == pytest.approx(0.25 + 0.04, abs=F32) or p == pytest.approx(0.25 - 0.04, abs=F32)  # moved once
    pkl = tmp_path / "network-snapshot-000001.pkl"
    ck = load_checkpoint(pkl)
    z = torch.randn(2, 8)
    assert torch.equal(ck.G_ema(z), tr.G_ema(z))
    summary = ck.extras["augment_pipe"]
    assert summary["class_name"] == "AugmentPipe"
    kwargs = summary["init_kwargs"]
    assert kwargs == AugmentPipe.from_preset("bgc").init_kwargs
    assert all(kwargs[k] == 1 for k in PRESETS["bgc"]) and len(PRESETS["bgc"]) == 12
    assert kwargs["imgfilter"] == kwargs["noise"] == kwargs["cutout"] == 0

    metas = []
    real = safe_pickle._ALLOWED[("torch_utils.persistence", "_reconstruct_persistent_obj")]

    def recording(meta):
        metas.append(meta)
        return real(meta)

    monkeypatch.setitem(safe_pickle._ALLOWED, ("torch_utils.persistence", "_reconstruct_persistent_obj"), recording)
    raw = safe_pickle.load_pickle(pkl)
    pipe = raw["augment_pipe"]
    assert pipe.class_name == "AugmentPipe" and pipe.init_kwargs == kwargs
    assert float(pipe.state["_buffers"]["p"]) == p
    assert torch.equal(pipe.state["_buffers"]["Hz_geom"], tr.augment_pipe.Hz_geom)
    (meta,) = [m for m in metas if m["class_name"] == "AugmentPipe"]
    src = meta["module_src"]
    assert src.strip() and all(line.startswith("#") for line in src.splitlines())


# ------------------------------------------------------------------------------------------- CLI


def _cli_run(capsys, out, image_dir, *extra, steps=1):
    args = ["train", "gan", "--data", image_dir, "--resolution", 16, "--out", out, "--steps", steps]
    return run_cli(capsys, *args, "--batch", 4, *NET_ARGS, *extra)


def test_cli_names_match_the_library():
    from latentlab.cli import train_commands
    from latentlab.train import augment, presets

    assert train_commands.CFG_NAMES == tuple(presets.PRESETS)
    assert train_commands.AUG_PIPES == tuple(augment.PRESETS)
    assert set(train_commands.AUG_MODES) == set(augment.AUG_MODES)


def test_cli_new_run_defaults_to_auto_and_ada_and_resumes(tmp_path, image_dir, capsys):
    out = tmp_path / "run"
    code, _, err = _cli_run(capsys, out, image_dir)
    assert code == 0, err
    rec = options_record(out)
    o = rec["options"]
    assert (o["cfg"], o["aug"], o["augpipe"], o["ada_target"], o["ada_kimg"]) == ("auto", "ada", "bgc", 0.6, 500)
    # auto at 16 px: batch min(4096 / 16, 32) = 32 (gamma and EMA follow it, as in train.py); --batch 4 used.
    assert o["batch_size"] == 4
    assert o["r1_gamma"] == pytest.approx(0.0002 * 16 * 16 / 32) and o["ema_kimg"] == 10
    assert rec["G"]["init_kwargs"]["mapping_kwargs"]["num_layers"] == 2
    assert rec["D"]["init_kwargs"]["epilogue_kwargs"]["mbstd_group_size"] == 4
    assert rec["D"]["init_kwargs"]["architecture"] == "resnet"

    for flag, value, stored in (("--cfg", "paper256", "'auto'"), ("--aug", "noaug", "'ada'")):
        code, _, err = _cli_run(capsys, out, image_dir, flag, value, steps=2)
        assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert f"{flag[2:]}={stored}" in err and value in err, err
    code, _, err = _cli_run(capsys, out, image_dir, "--aug", "fixed", "--p", 0.3, steps=2)
    assert code != 0 and "aug='ada'" in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "network-snapshot-000002.safetensors").exists()

    code, stdout, err = _cli_run(capsys, out, image_dir, steps=2)  # neither: the run's own
    assert code == 0 and "resuming" in stdout, err
    o = options_record(out)["options"]
    assert (o["cfg"], o["aug"], o["batch_size"]) == ("auto", "ada", 4)
    state = torch.load(out / "training_state.pt", weights_only=True)
    assert state["step"] == 2 and torch.is_tensor(state["augment_p"])


def test_cli_paper256_and_cifar_presets(tmp_path, image_dir, capsys):
    code, _, err = _cli_run(capsys, tmp_path / "p", image_dir, "--cfg", "paper256")
    assert code == 0, err
    rec = options_record(tmp_path / "p")
    o = rec["options"]
    assert (o["cfg"], o["batch_size"], o["r1_gamma"], o["ema_kimg"], o["ema_rampup"]) == ("paper256", 4, 1, 20, 0.0)
    assert rec["G"]["init_kwargs"]["mapping_kwargs"]["num_layers"] == 8
    assert rec["D"]["init_kwargs"]["epilogue_kwargs"]["mbstd_group_size"] == 8

    code, _, err = _cli_run(capsys, tmp_path / "c", image_dir, "--cfg", "cifar", "--aug", "noaug")
    assert code == 0, err
    rec = options_record(tmp_path / "c")
    o = rec["options"]
    assert (o["aug"], o["pl_weight"], o["style_mixing_prob"], o["r1_gamma"], o["ema_kimg"]) == (
        "noaug",
        0,
        0,
        0.01,
        500,
    )
    assert rec["D"]["init_kwargs"]["architecture"] == "orig"
    assert rec["D"]["init_kwargs"]["epilogue_kwargs"]["mbstd_group_size"] == 32
    state = torch.load(tmp_path / "c" / "training_state.pt", weights_only=True)
    assert json.loads(state["networks"])["D"]["init_kwargs"]["architecture"] == "orig"
    assert state["augment_p"] is None


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--p", 0.2], "--p"),
        (["--aug", "ada", "--p", 0.2], "--p"),
        (["--aug", "fixed"], "--aug fixed needs --p"),
        (["--aug", "noaug", "--target", 0.5], "--target"),
        (["--aug", "fixed", "--p", 0.2, "--target", 0.5], "--target"),
    ],
)
def test_cli_augmentation_usage_errors(tmp_path, image_dir, capsys, extra, words):
    out = tmp_path / "run"
    code, _, err = _cli_run(capsys, out, image_dir, *extra)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and words in err, err
    assert not (out / "training_state.pt").exists()


# ------------------------------------------------------------------------------------------- fine-tuning


def test_finetuning_defaults_and_conditional_refusal(tmp_path, image_dir):
    from latentlab.checkpoints import save_native

    G, D = scratch_networks(16, seed=3, **NET)
    save_native(tmp_path / "start.safetensors", {"G": G, "D": D, "G_ema": G}, source_format="test")
    start = tmp_path / "start.safetensors"
    train_gan(image_dir, tmp_path / "ft", 1, model=start, options=TrainingOptions(**OPTS), progress=False)
    o = options_record(tmp_path / "ft")["options"]
    assert o["ada_kimg"] == 100 and o["ema_rampup"] == 0.0
    opts = TrainingOptions(**OPTS, ada_kimg=7.0, ema_rampup=0.5, aug="ada")
    tr = train_gan(image_dir, tmp_path / "ft2", 1, model=start, options=opts, progress=False)
    o = options_record(tmp_path / "ft2")["options"]
    assert o["ada_kimg"] == 7.0 and o["ema_rampup"] == 0.5 and tr.ada.speed_kimg == 7.0
    # From scratch: StyleGAN2-ADA's 500 kimg and auto's ramp-up.
    scratch = train_gan(
        image_dir, tmp_path / "s", 1, resolution=16, network_kwargs=NET, options=TrainingOptions(**OPTS), progress=False
    )
    assert (scratch.options.ada_kimg, scratch.options.ema_rampup) == (500, 0.05)

    Gc, Dc = scratch_networks(16, seed=3, c_dim=3, **NET)
    save_native(tmp_path / "cond.safetensors", {"G": Gc, "D": Dc, "G_ema": Gc}, source_format="test")
    with pytest.raises(ConfigError, match="--cond"):
        train_gan(image_dir, tmp_path / "ftc", 1, model=tmp_path / "cond.safetensors", progress=False)
    assert not (tmp_path / "ftc").exists()


def test_finetuning_does_not_mutate_given_options(tmp_path, image_dir):
    from latentlab.checkpoints import save_native

    G, D = scratch_networks(16, seed=3, **NET)
    save_native(tmp_path / "start.safetensors", {"G": G, "D": D, "G_ema": G}, source_format="test")
    opts = TrainingOptions(**OPTS)
    train_gan(image_dir, tmp_path / "ft", 1, model=tmp_path / "start.safetensors", options=opts, progress=False)
    assert opts.ada_kimg is None and opts.ema_rampup is None


def test_python_resume_without_options_keeps_the_runs_settings(tmp_path, image_dir):
    """train_gan(data, out, steps) on a folder holding an ADA run (non-default seed, fixed p) continues it as is."""
    opts = TrainingOptions(**OPTS, aug="fixed", aug_p=0.3, augpipe="bg", seed=5)
    straight = train_gan(image_dir, tmp_path / "a", 4, resolution=16, network_kwargs=NET, options=opts, progress=False)
    train_gan(image_dir, tmp_path / "b", 2, resolution=16, network_kwargs=NET, options=opts, progress=False)
    resumed = train_gan(image_dir, tmp_path / "b", 4, progress=False)
    o = resumed.options
    assert (o.aug, o.aug_p, o.augpipe, o.seed) == ("fixed", 0.3, "bg", 5)
    assert same_networks(straight, resumed)


def test_g_only_checkpoint_needs_new_d_and_d_warmup_trains_d_alone(tmp_path, image_dir, capsys):
    from latentlab.checkpoints import save_native

    G, _ = scratch_networks(16, seed=3, **NET)
    start = tmp_path / "g_only.safetensors"
    save_native(start, {"G_ema": G}, source_format="test")
    with pytest.raises(ConfigError, match="--new-d"):
        train_gan(image_dir, tmp_path / "x", 1, model=start, progress=False)
    code, _, err = run_cli(
        capsys,
        "train",
        "gan",
        "--data",
        image_dir,
        "--resolution",
        16,
        "--new-d",
        "--steps",
        1,
        "--out",
        tmp_path / "y",
        *NET_ARGS,
    )
    assert code == 2 and "--new-d" in err and len(err.strip().splitlines()) == 1

    opts = TrainingOptions(**OPTS, d_warmup=3, aug="noaug")
    tr = train_gan(image_dir, tmp_path / "ft", 3, model=start, new_d=True, options=opts, progress=False)
    g0 = G.state_dict()
    # During the warm-up G's weights stay (its w_avg buffer tracks the mapped w, as in any G call in training
    # mode) and G_ema stays whole.
    assert all(torch.equal(p, g0[k]) for k, p in tr.G.named_parameters())
    assert all(torch.equal(tr.G_ema.state_dict()[k], g0[k]) for k in g0)
    assert tr.G is not tr.G_ema
    fresh = __import__("latentlab.train.runs", fromlist=["new_discriminator"]).new_discriminator(G, seed=0)
    d0 = fresh.state_dict()
    assert any(not torch.equal(tr.D.state_dict()[k], d0[k]) for k in d0)  # D trained from its new start
    assert D_kwargs_follow(G, tr.D)
    rows = read_metrics(tmp_path / "ft")
    assert all(r["loss_G"] == "" for r in rows) and all(r["loss_D"] for r in rows)
    tr = train_gan(image_dir, tmp_path / "ft", 5, model=start, new_d=True, progress=False)  # resumes, G trains
    assert any(not torch.equal(p, g0[k]) for k, p in tr.G.named_parameters())
    assert read_metrics(tmp_path / "ft")[-1]["loss_G"] != ""


def D_kwargs_follow(G, D):
    syn = G.init_kwargs["synthesis_kwargs"]
    k = D.init_kwargs
    return (k["img_resolution"], k["channel_base"], k["channel_max"], k["c_dim"]) == (
        G.img_resolution,
        syn["channel_base"],
        syn["channel_max"],
        G.c_dim,
    )


def test_finetuning_a_conditional_official_pickle_with_labels(tmp_path, image_dir, capsys):
    """`train gan --model cond.pkl --cond` fine-tunes a conditional StyleGAN2-ADA pickle on dataset.json labels,
    with ADA, and the labels reach G and D (class indices become one-hot vectors of the model's c_dim)."""
    import shutil

    from latentlab.checkpoints import load_checkpoint
    from latentlab.checkpoints.export import save_official_pickle

    G, D = scratch_networks(16, seed=4, c_dim=3, **NET)
    save_official_pickle(tmp_path / "cond.pkl", {"G": G, "D": D, "G_ema": G})
    data = tmp_path / "labelled"
    shutil.copytree(image_dir, data)
    names = sorted(p.name for p in data.glob("*.png"))
    (data / "dataset.json").write_text(json.dumps({"labels": [[n, i % 3] for i, n in enumerate(names)]}))
    out = tmp_path / "ft"
    args = ["train", "gan", "--model", tmp_path / "cond.pkl", "--data", data, "--steps", 2, "--batch", 4]
    code, _, err = run_cli(capsys, *args, "--out", out)
    assert code == 1 and "--cond" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, *args, "--cond", "--out", out)
    assert code == 0, err
    record = options_record(out)
    assert record["options"]["aug"] == "ada" and record["options"]["ada_kimg"] == 100
    tuned = load_checkpoint(out / "network-snapshot-000002.safetensors")
    assert tuned.G.c_dim == 3 and tuned.D.c_dim == 3
    assert any(not torch.equal(p, q) for p, q in zip(tuned.G.parameters(), G.parameters()))
