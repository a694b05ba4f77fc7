"""The StyleGAN2 training loop: loss terms on tiny tensors, smoke runs, snapshots, exact resume, datasets, CLI."""

import json
import os
import socket
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import blob_images, run_cli
from latentlab import Discriminator, Generator, load_checkpoint, load_generator
from latentlab.checkpoints.tags import FORMAT_SG2_PYTORCH
from latentlab.train import ImageDataset, PositionSampler, StyleGAN2Loss, Trainer, TrainingOptions
from latentlab.train.losses import d_logistic, g_nonsaturating, path_lengths, r1_penalty
from latentlab.train.runs import train_gan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NET = dict(z_dim=16, w_dim=16, map_layers=2, channel_base=256, channel_max=16)


def tiny_pair(seed=0):
    torch.manual_seed(seed)
    G = Generator(
        z_dim=16,
        c_dim=0,
        w_dim=16,
        img_resolution=16,
        img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=256, channel_max=16),
    )
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)
    return G, D


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """20 smooth random 16x16 images (colour blobs), named out of order to check sorting."""
    return blob_images(tmp_path_factory.mktemp("imgs"), 20, seed=0, reverse_names=True)


OPTS = dict(batch_size=4, snapshot_every=2, log_every=1, g_reg_interval=2, d_reg_interval=2)


# ------------------------------------------------------------------------------------------- loss terms


def test_logistic_losses_match_hand_values():
    x = torch.tensor([[-2.0], [0.0], [3.0]])
    assert torch.allclose(g_nonsaturating(x), torch.log1p(torch.exp(-x)))
    real, fake = d_logistic(x, x)
    assert torch.allclose(real, torch.log1p(torch.exp(-x)))
    assert torch.allclose(fake, torch.log1p(torch.exp(x)))
    assert abs(float(g_nonsaturating(torch.zeros(1))) - np.log(2)) < 1e-7


def test_r1_penalty_of_a_linear_critic_is_its_squared_weight_norm():
    a = torch.randn(3, 4, 4, requires_grad=True)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x * a).sum(dim=[1, 2, 3])[:, None]
    penalty = r1_penalty(logits, x)
    assert torch.allclose(penalty, a.detach().square().sum().expand(5))
    (g,) = torch.autograd.grad(penalty.sum(), a)  # create_graph: the penalty trains the critic
    assert torch.allclose(g, 5 * 2 * a.detach())


def test_path_length_of_a_linear_generator():
    A = torch.randn(16, 3 * 4 * 4)
    ws = torch.randn(2, 3, 16, requires_grad=True)
    img = (ws.mean(dim=1) @ A).reshape(2, 3, 4, 4)
    gen = torch.Generator().manual_seed(7)
    lengths = path_lengths(img, ws, generator=gen)
    y = torch.randn(img.shape, generator=torch.Generator().manual_seed(7)) / 4
    # d(img . y)/d ws[:, l] = (A y) / num_ws for each of the 3 layers.
    per_layer = (y.reshape(2, -1) @ A.T) / 3
    expected = per_layer.square().sum(dim=1).sqrt()
    assert torch.allclose(lengths, expected, atol=1e-5)


def test_phases_send_gradients_only_where_they_belong():
    G, D = tiny_pair()
    G.train()
    D.train()
    loss = StyleGAN2Loss(G, D, style_mixing_prob=0.0)
    z, c = torch.randn(4, 16), torch.zeros(4, 0)
    D.requires_grad_(False)
    g_loss, _, _ = loss.g_main(z, c)
    g_loss.backward()
    assert all(p.grad is None for p in D.parameters())
    assert all(p.grad is not None for n, p in G.named_parameters() if "noise_strength" not in n)
    G.zero_grad(set_to_none=True)
    G.requires_grad_(False)
    D.requires_grad_(True)
    real = torch.rand(4, 3, 16, 16) * 2 - 1
    d_loss, stats = loss.d_main(z, c, real, c)
    d_loss.backward()
    assert all(p.grad is None for p in G.parameters())
    assert all(p.grad is not None for p in D.parameters())
    expected = F.softplus(-D(real)).mean() + F.softplus(D(G.synthesis(G.mapping(z, c), noise_mode="const"))).mean()
    assert abs(stats["D_real"] - float(D(real).detach().mean())) < 1e-5 and np.isfinite(float(expected.detach()))


def test_path_length_mean_is_a_running_average():
    G, D = tiny_pair()
    G.train()
    loss = StyleGAN2Loss(G, D, style_mixing_prob=0.0, pl_decay=0.5)
    _, s1 = loss.g_pl(torch.randn(4, 16), torch.zeros(4, 0))
    first = s1["pl_mean"]
    assert first > 0
    _, s2 = loss.g_pl(torch.randn(4, 16), torch.zeros(4, 0))
    assert s2["pl_mean"] != first and abs(float(loss.pl_mean) - s2["pl_mean"]) < 1e-6


def test_style_mixing_switches_ws_at_one_cutoff():
    G, D = tiny_pair()
    loss = StyleGAN2Loss(G.eval(), D, style_mixing_prob=1.0)
    z = torch.randn(3, 16)
    torch.manual_seed(3)
    ws = loss.mapping(z, torch.zeros(3, 0))
    plain = G.mapping(z, None)
    same = torch.isclose(ws, plain).all(dim=2).all(dim=0)
    cutoff = int(same.long().argmin())
    assert 1 <= cutoff < G.num_ws and same[:cutoff].all() and not same[cutoff:].any()


# ------------------------------------------------------------------------------------------- runs


@pytest.mark.slow
def test_smoke_run_trains_and_writes_loadable_snapshots(tmp_path, image_dir):
    G, D = tiny_pair()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    ds = ImageDataset(image_dir, 16)
    tr = Trainer(tmp_path, G, D, ds, TrainingOptions(export_pkl=True, **OPTS), progress=False).train(4)
    changed = [k for k, v in tr.G.state_dict().items() if not torch.equal(v, before[k])]
    assert any("synthesis" in k for k in changed) and any("mapping" in k for k in changed)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert len(rows) == 5 and header[:2] == ["step", "kimg"]
    for row in rows[1:]:
        rec = dict(zip(header, row.split(",")))
        assert np.isfinite(float(rec["loss_G"])) and np.isfinite(float(rec["loss_D"]))
    assert rows[1].split(",")[header.index("r1_penalty")] != ""  # lazy R1 ran at step 0
    assert rows[2].split(",")[header.index("r1_penalty")] == ""  # and not at step 1
    snap = tmp_path / "network-snapshot-000004.safetensors"
    ck = load_checkpoint(snap)
    for name in ("G", "D", "G_ema"):
        net = {"G": tr.G, "D": tr.D, "G_ema": tr.G_ema}[name]
        assert all(torch.equal(ck.networks()[name].state_dict()[k], v) for k, v in net.state_dict().items())
    pkl = load_checkpoint(tmp_path / "network-snapshot-000004.pkl")
    assert pkl.format == FORMAT_SG2_PYTORCH
    z = torch.randn(2, 16)
    assert torch.equal(pkl.G_ema(z), load_generator(snap)(z))
    # G_ema lags G: it is neither the start point nor the current G.
    ema, cur = tr.G_ema.state_dict(), tr.G.state_dict()
    k = "synthesis.b16.conv1.weight"
    assert not torch.equal(ema[k], cur[k]) and not torch.equal(ema[k], before[k])
    assert json.loads((tmp_path / "options.json").read_text())["options"]["batch_size"] == 4


@pytest.mark.slow
def test_resume_reproduces_the_uninterrupted_run(tmp_path, image_dir):
    ds = ImageDataset(image_dir, 16, xflip=True)
    G, D = tiny_pair()
    straight = Trainer(tmp_path / "a", G, D, ds, TrainingOptions(**OPTS), progress=False).train(6)
    G, D = tiny_pair()
    Trainer(tmp_path / "b", G, D, ds, TrainingOptions(**OPTS), progress=False).train(4)
    resumed = Trainer.resume(tmp_path / "b", ds, progress=False)
    assert resumed.step == 4
    resumed.train(6)
    for name in ("G", "D", "G_ema"):
        a, b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert torch.equal(straight.loss.pl_mean, resumed.loss.pl_mean)
    rows = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4", "5", "6"]


def test_resume_refuses_other_settings(tmp_path, image_dir):
    train_gan(
        image_dir, tmp_path, 2, resolution=16, options=TrainingOptions(**OPTS), network_kwargs=NET, progress=False
    )
    with pytest.raises(ValueError, match="batch_size=4, not 8"):
        train_gan(
            image_dir,
            tmp_path,
            4,
            resolution=16,
            options=TrainingOptions(**dict(OPTS, batch_size=8)),
            network_kwargs=NET,
            progress=False,
        )
    with pytest.raises(ValueError, match="w_dim=16, not 32"):
        train_gan(
            image_dir,
            tmp_path,
            4,
            resolution=16,
            options=TrainingOptions(**OPTS),
            network_kwargs=dict(NET, w_dim=32),
            progress=False,
        )
    with pytest.raises(ValueError, match="16px run, not 32px"):
        train_gan(image_dir, tmp_path, 4, resolution=32, options=TrainingOptions(**OPTS), progress=False)
    # Changing only the snapshot interval is allowed.
    tr = train_gan(image_dir, tmp_path, 3, options=TrainingOptions(**dict(OPTS, snapshot_every=5)), progress=False)
    assert tr.step == 3 and tr.options.snapshot_every == 5


def test_finetuning_starts_from_the_checkpoint(tmp_path, image_dir):
    from latentlab.checkpoints import save_native

    G, D = tiny_pair(seed=5)
    save_native(tmp_path / "start.safetensors", {"G": G, "D": D, "G_ema": G}, source_format="test")
    tr = train_gan(
        image_dir,
        tmp_path / "ft",
        1,
        model=tmp_path / "start.safetensors",
        options=TrainingOptions(**OPTS),
        progress=False,
    )
    # One small step away from the start point, not a fresh initialisation.
    a, b = tr.G.state_dict()["synthesis.b16.conv1.weight"], G.state_dict()["synthesis.b16.conv1.weight"]
    assert not torch.equal(a, b) and float((a - b).abs().max()) < 0.05
    save_native(tmp_path / "g_only.safetensors", {"G_ema": G}, source_format="test")
    with pytest.raises(ValueError, match="no discriminator"):
        train_gan(image_dir, tmp_path / "ft2", 1, model=tmp_path / "g_only.safetensors", progress=False)


def test_bad_settings_are_refused(image_dir, tmp_path):
    G, D = tiny_pair()
    ds = ImageDataset(image_dir, 16)
    with pytest.raises(ValueError, match="minibatch-std group"):
        Trainer(tmp_path, G, D, ds, TrainingOptions(batch_size=6), progress=False)
    with pytest.raises(ValueError, match="batch_size must be"):
        Trainer(tmp_path, G, D, ds, TrainingOptions(batch_size=0), progress=False)
    with pytest.raises(ValueError, match="dataset gives 3x32px"):
        Trainer(tmp_path, G, D, ImageDataset(image_dir, 32), TrainingOptions(batch_size=4), progress=False)


# ------------------------------------------------------------------------------------------- datasets


def test_folder_and_zip_datasets_agree_and_mirror(tmp_path, image_dir):
    names = sorted(os.listdir(image_dir))
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf:
        for n in names:
            zf.write(image_dir / n, f"sub/{n}")
    a, b = ImageDataset(image_dir, 16), ImageDataset(tmp_path / "d.zip", 16, xflip=True)
    assert a.names == names and len(a) == 20 and len(b) == 40
    img0 = np.asarray(Image.open(image_dir / names[0])).transpose(2, 0, 1)
    assert np.array_equal(a.sample(0)[0], img0) and np.array_equal(b.sample(0)[0], img0)
    assert np.array_equal(b.sample(20)[0], img0[:, :, ::-1])
    small = ImageDataset(image_dir, 8)
    assert small.sample(0)[0].shape == (3, 8, 8)


def test_dataset_labels_and_errors(tmp_path):
    for i in range(3):
        Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(tmp_path / f"{i}.png")
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["0.png", 1], ["1.png", 0], ["2.png", 2]]}))
    ds = ImageDataset(tmp_path, 8, use_labels=True)
    assert ds.label_dim == 3 and np.array_equal(ds.sample(0)[1], [0, 1, 0])
    Image.new("RGB", (8, 6)).save(tmp_path / "3.png")
    with pytest.raises(ValueError, match="no label for '3.png'"):
        ImageDataset(tmp_path, 8, use_labels=True)
    with pytest.raises(ValueError, match="not square"):
        ImageDataset(tmp_path, 8).image(3)
    with pytest.raises(ValueError, match="no images"):
        ImageDataset(tmp_path / "dataset.json", 8) if False else ImageDataset(_empty(tmp_path), 8)


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_position_sampler_is_a_fresh_permutation_per_epoch():
    s = PositionSampler(10, seed=3)
    e0, e1 = [s.index(p) for p in range(10)], [s.index(p) for p in range(10, 20)]
    assert sorted(e0) == list(range(10)) and sorted(e1) == list(range(10)) and e0 != e1
    assert [PositionSampler(10, seed=3).index(p) for p in (13, 2)] == [e1[3], e0[2]]


# ------------------------------------------------------------------------------------------- CLI and processes


def test_cli_train_gan_runs_and_resumes(tmp_path, image_dir, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "gan",
        "--data",
        image_dir,
        "--resolution",
        16,
        "--out",
        out,
        "--batch",
        4,
        "--z-dim",
        16,
        "--w-dim",
        16,
        "--channel-base",
        256,
        "--channel-max",
        16,
        "--snapshot-every",
        2,
    ]
    code, stdout, err = run_cli(capsys, *args, "--steps", 2)
    assert code == 0, err
    assert "step 2" in stdout and (out / "network-snapshot-000002.safetensors").exists()
    code, stdout, err = run_cli(capsys, *args, "--steps", 3)
    assert code == 0 and "resuming" in stdout and (out / "network-snapshot-000003.safetensors").exists()
    code, _, err = run_cli(capsys, "train", "gan", "--data", image_dir, "--steps", 2, "--out", tmp_path / "x")
    assert code == 1 and err.strip() == "latentlab: error: training from scratch needs a resolution (--resolution)"
    code, stdout, _ = run_cli(capsys, "train", "gan", "--help")
    assert code == 0 and "Example:" in stdout


WORKER = r"""
import sys, torch
from latentlab.sampling import init_from_env
from latentlab.utils.distributed import shutdown
from latentlab.train import ImageDataset, Trainer, TrainingOptions
from test_training import tiny_pair
rank, world = init_from_env("cpu")
G, D = tiny_pair()
if rank == 1:  # a different start on rank 1: the trainer must broadcast rank 0's weights
    G, D = tiny_pair(seed=9)
tr = Trainer(sys.argv[2], G, D, ImageDataset(sys.argv[1], 16), TrainingOptions(batch_size=8, g_reg_interval=2,
             d_reg_interval=2, snapshot_every=3, log_every=1), progress=False).train(3)
flat = torch.cat([p.detach().flatten() for p in list(tr.G.parameters()) + list(tr.D.parameters())])
print("SUM %.10e" % float(flat.double().sum()), flush=True)
shutdown()
"""


@pytest.mark.slow
def test_two_processes_stay_in_sync(tmp_path, image_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]),  # the worker imports test_training
            RANK=str(rank),
            WORLD_SIZE="2",
            LOCAL_RANK=str(rank),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            OMP_NUM_THREADS="1",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(image_dir), str(tmp_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
        )
    outs = [p.communicate(timeout=300) for p in procs]
    sums = []
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
        sums.append([line for line in out.splitlines() if line.startswith("SUM")][0])
    assert sums[0] == sums[1]
    assert (tmp_path / "network-snapshot-000003.safetensors").exists()
    state = torch.load(tmp_path / "training_state.pt", weights_only=True)
    assert state["world"] == 2 and "rng_1" in state


# ------------------------------------------------------------------------------------------- HSR in the loop

HSR_ARGS = dict(extractor="torchvision:resnet18", extractor_weights="none", layers=["layer1", "layer2"], hidden=8)


def test_hsr_run_trains_predictors_and_resumes_exactly(tmp_path, image_dir):
    from latentlab.checkpoints import save_native
    from latentlab.train.runs import train_hsr

    G, D = tiny_pair(seed=2)
    save_native(tmp_path / "start.safetensors", {"G": G, "D": D, "G_ema": G}, source_format="test")
    start = tmp_path / "start.safetensors"
    straight = train_hsr(
        image_dir, tmp_path / "a", 4, model=start, options=TrainingOptions(**OPTS), progress=False, **HSR_ARGS
    )
    train_hsr(image_dir, tmp_path / "b", 2, model=start, options=TrainingOptions(**OPTS), progress=False, **HSR_ARGS)
    resumed = train_hsr(image_dir, tmp_path / "b", 4, options=TrainingOptions(**OPTS), progress=False)
    for name in ("G", "D"):
        a, b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    pa, pb = straight.regularizer.state_dict(), resumed.regularizer.state_dict()
    assert set(pa) == set(pb) and all(torch.equal(pa[k], pb[k]) for k in pa)
    # The predictors were trained (they differ from a fresh build with the same seed) ...
    fresh = train_hsr(
        image_dir,
        tmp_path / "c",
        1,
        model=start,
        options=TrainingOptions(**dict(OPTS, lr=1e-12)),
        progress=False,
        **HSR_ARGS,
    )
    assert any(not torch.equal(pa[k], fresh.regularizer.state_dict()[k]) for k in pa)
    # ... the HSR terms are logged, and the frozen extractor never changed.
    header = (tmp_path / "a" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "hsr_loss" in header and "hsr_b16_layer1" in header
    F = straight.regularizer.hsr.extractor
    assert all(not p.requires_grad and p.grad is None for p in F.parameters())
    # Snapshots are plain generators.
    assert load_generator(tmp_path / "a" / "network-snapshot-000004.safetensors").img_resolution == 16


def test_hsr_resume_and_warmup_rules(tmp_path, image_dir):
    from latentlab.train.runs import train_hsr

    train_gan(
        image_dir,
        tmp_path / "plain",
        1,
        resolution=16,
        options=TrainingOptions(**OPTS),
        network_kwargs=NET,
        progress=False,
    )
    with pytest.raises(ValueError, match="without HSR"):
        train_hsr(image_dir, tmp_path / "plain", 2, options=TrainingOptions(**OPTS), progress=False)
    with pytest.raises(ValueError, match="--model CKPT to fine-tune, or --resolution"):
        train_hsr(image_dir, tmp_path / "x", 1, progress=False, **HSR_ARGS)
    # From scratch the paper's warm-up applies: HSR is off (weight 0) for the first 500 kimg.
    tr = train_hsr(
        image_dir,
        tmp_path / "scratch",
        1,
        resolution=16,
        network_kwargs=NET,
        options=TrainingOptions(**OPTS),
        progress=False,
        **HSR_ARGS,
    )
    assert tr.regularizer.weight(tr.kimg) == 0 and tr.regularizer.weight(500) == 1.0


def test_cli_train_group_lists_all_trainers(capsys):
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0 and all(name in out for name in ("gan", "hsr", "clusters"))
    for name in ("hsr", "clusters"):
        code, out, _ = run_cli(capsys, "train", name, "--help")
        assert code == 0 and "Example:" in out


def test_convert_keeps_only_the_named_networks(tmp_path, image_dir, capsys):
    G, D = tiny_pair()
    tr = Trainer(tmp_path / "run", G, D, ImageDataset(image_dir, 16), TrainingOptions(**OPTS), progress=False).train(2)
    snap = tr.snapshot_path()
    code, out, err = run_cli(capsys, "convert", snap, tmp_path / "g.safetensors", "--networks", "G_ema")
    assert code == 0, err
    ck = load_checkpoint(tmp_path / "g.safetensors")
    assert ck.G is None and ck.D is None and torch.equal(ck.G_ema(torch.ones(1, 16)), tr.G_ema(torch.ones(1, 16)))
    assert os.stat(tmp_path / "g.safetensors").st_mode & 0o044  # readable by others, not mkstemp's 0600
    code, _, err = run_cli(capsys, "convert", snap, tmp_path / "h.safetensors", "--networks", "X")
    assert code == 1 and "has no network 'X' (it has D, G, G_ema)" in err


def test_training_runs_without_tensorboard(tmp_path, image_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as when it is not installed
    G, D = tiny_pair()
    Trainer(tmp_path, G, D, ImageDataset(image_dir, 16), TrainingOptions(**OPTS), progress=False).train(2)
    assert not (tmp_path / "tensorboard").exists()
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 3


def test_metrics_of_an_old_run_in_the_folder_are_not_kept(tmp_path, image_dir):
    (tmp_path / "metrics.csv").write_text("step,kimg\n7,0.1\n9,0.2\n")
    G, D = tiny_pair()
    Trainer(tmp_path, G, D, ImageDataset(image_dir, 16), TrainingOptions(**OPTS), progress=False).train(2)
    steps = [r.split(",")[0] for r in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2"]
