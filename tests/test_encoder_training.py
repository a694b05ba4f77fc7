"""Training GH-Feat's encoder (latentlab.inversion.encoder_training) and `latentlab train encoder`."""

import csv
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import make_tiny_generator, run_cli
from latentlab.errors import ConfigError
from latentlab.inversion.encoder import HierarchicalEncoder, load_encoder
from latentlab.inversion.encoder_training import (
    ClassifierStageFeatures,
    EncoderTrainer,
    VGG16Features,
    discriminator_loss,
    encoder_loss,
    feature_loss,
    fresh_discriminator,
    learning_rate,
    pixel_loss,
    style_regularizer,
    train_encoder,
)
from latentlab.train.losses import r1_penalty

SMALL = dict(depth=10, width=4, fpn_channels=8)
FAST = dict(depth=10, width=4, fpn_channels=8, vgg_weights=None, feature_size=16, batch_size=4, progress=False)


def small_encoder(G, seed=0):
    torch.manual_seed(seed)
    return HierarchicalEncoder.for_generator(G, w_avg_samples=200, **SMALL)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Ten 16 px RGB images."""
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.RandomState(1)
    for i in range(10):
        Image.fromarray(rng.randint(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def dataset(folder, **kw):
    from latentlab.train.loop import open_dataset

    return open_dataset(str(folder), 16, 3, **kw)


# ---- loss terms against hand values ------------------------------------------------------------
def test_pixel_feature_and_regulariser_terms():
    x = torch.zeros(1, 1, 2, 2)
    rec = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert pixel_loss(x, rec).item() == pytest.approx(7.5)  # (1 + 4 + 9 + 16) / 4: a mean, not a sum
    assert feature_loss(rec, x).item() == pytest.approx(7.5)
    delta = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    assert style_regularizer(delta).item() == pytest.approx(7.0)  # per image sums 5 and 9, averaged


def test_encoder_loss_hand_values():
    x = torch.zeros(2, 1, 1, 2)
    rec = torch.tensor([[[[1.0, 1.0]]], [[[0.0, 2.0]]]])  # squared errors 1, 1, 0, 4: mean 1.5
    delta = torch.tensor([[1.0, 2.0], [3.0, 0.0]])  # reg 7
    scores = torch.tensor([[0.5], [-1.5]])
    f_x, f_rec = torch.zeros(2, 3), torch.full((2, 3), 2.0)  # feat 4
    loss, s = encoder_loss(x, rec, delta, scores, f_x, f_rec, lambda_adv=0.1, lambda_feat=0.01, lambda_reg=0.5)
    # linear: adv = -mean D = 0.5
    assert s["mse"].item() == pytest.approx(1.5) and s["adv"].item() == pytest.approx(0.5)
    assert s["feat"].item() == pytest.approx(4.0) and s["reg"].item() == pytest.approx(7.0)
    assert loss.item() == pytest.approx(1.5 + 0.1 * 0.5 + 0.01 * 4 + 0.5 * 7)
    loss, s = encoder_loss(x, rec, delta, scores, gan_loss="logistic")  # the paper's default weights
    adv = (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(1.5))) / 2  # softplus(-D)
    assert s["adv"].item() == pytest.approx(adv) and s["feat"].item() == 0
    assert loss.item() == pytest.approx(1.5 + 0.1 * adv + 5e-4 * 7)
    with pytest.raises(ConfigError, match="gan_loss"):
        encoder_loss(x, rec, delta, gan_loss="hinge")


def test_discriminator_loss_hand_values():
    real, fake, grad_sq = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0]), torch.tensor([2.0, 4.0])
    loss, s = discriminator_loss(real, fake, grad_sq, lambda_gp=5.0)
    assert loss.item() == pytest.approx((1.0 - 2.0) + 5 * 3.0)  # E D(fake) - E D(real) + 5 E |grad|^2
    assert s["D_real"].item() == 2.0 and s["D_fake"].item() == 1.0 and s["gp"].item() == 3.0
    loss, _ = discriminator_loss(real, fake, grad_sq, lambda_gp=0.0, gan_loss="logistic")
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    assert loss.item() == pytest.approx((sp(0.0) + sp(2.0)) / 2 + (sp(-1.0) + sp(-3.0)) / 2)


def test_gradient_penalty_of_a_linear_critic_is_the_squared_weight_norm():
    a = torch.tensor([[[[1.0, -2.0], [0.5, 0.0]]]])  # D(x) = sum(a * x): grad_x D = a everywhere

    x = torch.randn(3, 1, 2, 2, requires_grad=True)
    grad_sq = r1_penalty((a * x).sum(dim=(1, 2, 3)), x)
    assert torch.allclose(grad_sq, torch.full((3,), 1 + 4 + 0.25))  # summed over pixels, per image


def test_learning_rate_decays_exponentially():
    assert learning_rate(0) == pytest.approx(1e-4)
    assert learning_rate(10000) == pytest.approx(0.8e-4)
    assert learning_rate(5000, lr=1.0, lr_decay=0.8, decay_every=10000) == pytest.approx(math.sqrt(0.8))
    assert learning_rate(30, lr=2.0, lr_decay=0.5, decay_every=10) == pytest.approx(0.25)


def test_vgg_features_are_conv4_3_of_resized_normalised_images(tmp_path):
    import torchvision

    Fx = VGG16Features(None, input_size=16, seed=3)
    with torch.device("meta"):  # the architecture: torchvision's VGG16 up to conv4_3 and its ReLU
        ref_net = torchvision.models.vgg16(weights=None).features[:23]
    assert str(ref_net) == str(Fx.net) and isinstance(ref_net[21], torch.nn.Conv2d)
    assert {k: v.shape for k, v in ref_net.state_dict().items()} == {k: v.shape for k, v in Fx.net.state_dict().items()}
    assert not any(p.requires_grad for p in Fx.parameters())
    x = (torch.rand(2, 3, 8, 8) * 2 - 1).requires_grad_(True)
    out = Fx(x)
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    h = ((x.detach().repeat_interleave(2, dim=2).repeat_interleave(2, dim=3) + 1) / 2 - mean) / std  # nearest x2
    with torch.no_grad():
        for layer in Fx.net:
            if isinstance(layer, torch.nn.Conv2d):
                h = F.relu(F.conv2d(h, layer.weight, layer.bias, padding=1))
            elif isinstance(layer, torch.nn.MaxPool2d):
                h = F.max_pool2d(h, 2)
    assert out.shape == (2, 512, 2, 2) and torch.allclose(out, h, atol=1e-5)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients reach the images, not F
    Fx.train()
    assert not Fx.training
    again = VGG16Features(None, input_size=16, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(Fx.state_dict().values(), again.state_dict().values()))  # seeded
    path = str(tmp_path / "vgg.pt")  # a torchvision vgg16 state dict file: its conv1_1 ... conv4_3 are read
    other = VGG16Features(None, input_size=16, seed=4)
    torch.save(
        {f"features.{k}": v for k, v in other.net.state_dict().items()} | {"classifier.0.bias": torch.zeros(3)}, path
    )
    loaded = VGG16Features(path, input_size=16)
    assert all(torch.equal(a, b) for a, b in zip(other.net.state_dict().values(), loaded.net.state_dict().values()))


# ---- the trainer ---------------------------------------------------------------------------------
def test_gradients_flow_only_where_they_should(image_folder):
    """G frozen (never a gradient, weights unchanged); D frozen in the E step; L_D leaves E's gradients alone."""
    G = make_tiny_generator()
    g_before = [p.detach().clone() for p in G.parameters()]
    E, D = small_encoder(G), fresh_discriminator(G, seed=1)
    tr = EncoderTrainer(G, E, D, dataset(image_folder), batch_size=4, features=lambda t: t.mean(1, keepdim=True))
    seen = {}

    def grads(net):
        return [None if p.grad is None else p.grad.detach().clone() for p in net.parameters()]

    def spy(opt, name):
        step = opt.step

        def wrapped(*a, **k):
            seen[name] = {"E": grads(E), "D": grads(D), "G": grads(G)}
            return step(*a, **k)

        opt.step = wrapped

    spy(tr.opt_E, "E")
    spy(tr.opt_D, "D")
    e_before = [p.detach().clone() for p in E.parameters()]
    d_before = [p.detach().clone() for p in D.parameters()]
    tr.step()
    assert all(g is None for g in seen["E"]["D"])  # the E step gave D no gradient
    d_after_first = seen["D"]["D"]
    tr.step()  # the second step: the heads are no longer zero, so the backbone gets gradients too
    assert all(g is None for g in seen["E"]["G"] + seen["D"]["G"])
    assert all(torch.equal(a, b) for a, b in zip(seen["E"]["D"], d_after_first))  # nor in the second step
    assert all(g is not None and g.abs().sum() > 0 for g in seen["E"]["E"])
    assert all(g is not None for g in seen["D"]["D"]) and sum(g.abs().sum() for g in seen["D"]["D"]) > 0
    assert all(torch.equal(a, b) for a, b in zip(seen["E"]["E"], seen["D"]["E"]))  # L_D added nothing to E
    assert all(torch.equal(a, b) for a, b in zip(g_before, G.parameters()))
    assert not any(p.requires_grad for p in G.parameters()) and not any(p.requires_grad for p in D.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(e_before, E.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, D.parameters()))


def test_batches_mix_dataset_images_and_generator_samples(image_folder):
    from latentlab.train.dataset import PositionSampler, load_batch

    G = make_tiny_generator()
    ds = dataset(image_folder)
    tr = EncoderTrainer(G, small_encoder(G), None, ds, gen_fraction=0.5, batch_size=4, lambda_adv=0.0, seed=3)
    a, b = tr.batch(), tr.batch()
    sampler = PositionSampler(len(ds), seed=3)
    real, _ = load_batch(ds, sampler, 0, 4)  # positions 0-1, then 2-3
    rng = torch.Generator().manual_seed(2 * 3 + 1)
    with torch.no_grad():
        fake = [G.synthesis(G.mapping(torch.randn(2, G.z_dim, generator=rng), None), noise_mode="const") for _ in "ab"]
    assert torch.equal(a[:2], real[:2]) and torch.equal(b[:2], real[2:])
    assert torch.allclose(a[2:], fake[0]) and torch.allclose(b[2:], fake[1])
    only_gen = EncoderTrainer(G, small_encoder(G), None, None, batch_size=2, lambda_adv=0.0)
    assert only_gen.n_gen == 2 and only_gen.batch().shape == (2, 3, 16, 16)


def read_metrics(folder):
    with open(os.path.join(folder, "metrics.csv")) as f:
        return [{k: v for k, v in r.items() if k != "sec_per_step"} for r in csv.DictReader(f)]


def test_resume_equals_the_uninterrupted_run_and_refuses_other_settings(tmp_path, image_folder):
    G = make_tiny_generator()
    ds = dataset(image_folder)
    kw = dict(FAST, gen_fraction=0.5, log_every=1, seed=2)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    train_encoder(G, a, 4, ds, **kw)
    train_encoder(G, b, 2, ds, **kw)
    with open(os.path.join(b, "metrics.csv"), "a") as f:  # a row written after the snapshot by a run that died
        f.write("3,0,0,0,0,0,0,0,0,0,0,0\n")
    tb = train_encoder(G, b, 4, ds, **kw)
    assert tb.step_ == 4 and tb.data_pos == 8
    ea, eb = load_encoder(os.path.join(a, "encoder.safetensors")), load_encoder(os.path.join(b, "encoder.safetensors"))
    assert all(torch.equal(x, y) for x, y in zip(ea.state_dict().values(), eb.state_dict().values()))
    assert ea.info["steps"] == 4
    sa = torch.load(os.path.join(a, "state.pt"), weights_only=True)
    sb = torch.load(os.path.join(b, "state.pt"), weights_only=True)
    assert all(torch.equal(sa["D"][k], sb["D"][k]) for k in sa["D"]) and torch.equal(sa["rng"], sb["rng"])
    assert read_metrics(a) == read_metrics(b) and [r["step"] for r in read_metrics(a)] == ["1", "2", "3", "4"]
    with pytest.raises(ConfigError, match="different settings: lambda_reg"):
        train_encoder(G, b, 5, ds, **{**kw, "lambda_reg": 1e-3})
    with pytest.raises(ConfigError, match="different settings: .*model"):
        train_encoder(make_tiny_generator(seed=1), b, 5, ds, **kw)
    assert torch.load(os.path.join(b, "state.pt"), weights_only=True)["step"] == 4  # refusals changed nothing


def test_ctrl_c_writes_a_resume_point(tmp_path, monkeypatch):
    from latentlab.inversion import encoder_training
    from latentlab.train.interrupt import TrainingInterrupted

    class Pressed(encoder_training.StopOnInterrupt):
        def __enter__(self):
            super().__enter__()
            self.requested = True  # as if Ctrl-C came during the first step
            return self

    monkeypatch.setattr(encoder_training, "StopOnInterrupt", Pressed)
    G = make_tiny_generator()
    out = str(tmp_path / "r")
    with pytest.raises(TrainingInterrupted, match="after step 1"):
        train_encoder(G, out, 5, None, **{**FAST, "lambda_feat": 0.0})
    assert torch.load(os.path.join(out, "state.pt"), weights_only=True)["step"] == 1
    assert load_encoder(os.path.join(out, "encoder.safetensors")).info["steps"] == 1


def test_trainer_refuses_bad_settings(image_folder):
    G = make_tiny_generator()
    E = small_encoder(G)
    with pytest.raises(ConfigError, match="gen_fraction must be 1"):
        EncoderTrainer(G, E, None, None, gen_fraction=0.5, lambda_adv=0.0)
    with pytest.raises(ConfigError, match="minibatch-std group 4"):
        EncoderTrainer(G, E, fresh_discriminator(G), dataset(image_folder), batch_size=6)
    with pytest.raises(ConfigError, match="another model"):
        EncoderTrainer(make_tiny_generator(seed=1), E, None, None, lambda_adv=0.0)
    with pytest.raises(ConfigError, match="8x8 px images"):
        from latentlab.train.loop import open_dataset

        EncoderTrainer(G, E, None, open_dataset(str(image_folder), 8, 3), lambda_adv=0.0)


# ---- the command -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from latentlab.checkpoints import save_native

    path = str(tmp_path_factory.mktemp("ck") / "tiny.safetensors")
    save_native(path, {"G_ema": make_tiny_generator()}, "latentlab")
    return path


def test_train_encoder_command_trains_and_resumes(capsys, tmp_path, tiny_ckpt, image_folder):
    out = tmp_path / "run"
    args = [
        "train", "encoder", "--model", tiny_ckpt, "--data", image_folder, "--gen-fraction", "0.5", "--out", out,
        "--batch", "4", "--depth", "10", "--width", "4", "--fpn-channels", "8", "--feature-size", "16",
        "--random-backbone", "--log-every", "1", "--seed", "1",
    ]  # fmt: skip
    code, stdout, err = run_cli(capsys, *args, "--steps", "2")
    assert code == 0, err
    assert "trained the encoder to step 2" in stdout and sorted(os.listdir(out)) == [
        "encoder.safetensors",
        "metrics.csv",
        "state.pt",
    ]
    enc = load_encoder(out / "encoder.safetensors")
    assert enc.init_kwargs["depth"] == 10 and enc.info["steps"] == 2
    code, stdout, err = run_cli(capsys, *args, "--steps", "3")
    assert code == 0, err
    assert "resuming" in stdout and "to step 3" in stdout
    code, _, err = run_cli(capsys, *args, "--steps", "4", "--lambda-reg", "0.1")
    assert code == 1 and "different settings: lambda_reg" in err and len(err.strip().splitlines()) == 1


def test_toyfaces_feature_term_equals_the_projectors_toyfaces_distance():
    """F = the embedded classifier's stages: mean (F(a) - F(b))^2 is the projector's toyfaces distance (`StageDistance`
    on [0, 255] images), recomputed here from the raw stage activations."""
    from latentlab.inversion.distances import StageDistance, ToyFacesStages

    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    feats = ClassifierStageFeatures()
    assert feats.spec["name"] == "toyfaces-stages" and not feats.training
    got = torch.stack([feature_loss(feats(a[i : i + 1]), feats(b[i : i + 1])) for i in range(2)])
    stages = ToyFacesStages()
    by_hand = torch.zeros(2)
    for x, y in zip(stages(a), stages(b)):
        ux, uy = x / x.norm(dim=1, keepdim=True), y / y.norm(dim=1, keepdim=True)
        by_hand += (ux - uy).square().sum(dim=1).mean(dim=(1, 2))
    torch.testing.assert_close(got, by_hand, rtol=1e-4, atol=1e-6)
    dist = StageDistance(stages)((a + 1) * 127.5, (b + 1) * 127.5)
    torch.testing.assert_close(got, dist, rtol=1e-4, atol=1e-6)
    assert feature_loss(feats(a), feats(a)).item() == 0


def test_toyfaces_feature_net_is_refused_for_grey_generators_and_unknown_names(tmp_path):
    from latentlab import Generator

    torch.manual_seed(0)
    grey = Generator(16, 0, 16, 16, 1, mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_max=16))
    kw = dict(FAST, lambda_adv=0.0)
    with pytest.raises(ConfigError, match="takes RGB images"):
        train_encoder(grey.eval(), str(tmp_path / "a"), 0, feature_net="toyfaces", **kw)
    with pytest.raises(ConfigError, match="choose from vgg16, toyfaces"):
        train_encoder(make_tiny_generator(), str(tmp_path / "b"), 0, feature_net="vgg19", **kw)


def test_train_encoder_with_the_toyfaces_feature_net(capsys, tmp_path):
    """--feature-net toyfaces trains offline on the embedded model (no VGG download), records F in the settings
    (a resume with VGG16 is refused), and refuses the VGG16-only flags."""
    out = tmp_path / "run"
    args = ["train", "encoder", "--model", "toyfaces", "--steps", "1", "--batch", "4", "--depth", "10", "--width", "4",
            "--fpn-channels", "8", "--lambda-adv", "0", "--log-every", "1", "--out", out]  # fmt: skip
    for flag in (["--random-backbone"], ["--feature-size", "64"]):  # refused before anything is loaded
        code, _, err = run_cli(capsys, *args, "--feature-net", "toyfaces", *flag, "--out", tmp_path / "x")
        assert code == 2 and f"{flag[0]} is a VGG16 setting" in err, err
    code, stdout, err = run_cli(capsys, *args, "--feature-net", "toyfaces")
    assert code == 0, err
    with open(out / "metrics.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["feat"]) > 0
    code, _, err = run_cli(capsys, *args[:4], "--steps", "2", *args[6:], "--random-backbone")
    assert code == 1 and "different settings: features" in err and len(err.strip().splitlines()) == 1, err


def test_train_encoder_command_bad_inputs(capsys, tmp_path, tiny_ckpt, image_folder, monkeypatch):
    base = ["train", "encoder", "--model", tiny_ckpt, "--steps", "1", "--depth", "10", "--random-backbone"]
    cases = [
        (["--gen-fraction", "0.5"], "gen_fraction must be 1"),
        (["--data", image_folder, "--batch", "6"], "minibatch-std group 4"),
        (["--max-images", "3"], "--max-images and --mirror need --data"),
        (["--discriminator", tiny_ckpt], "holds no discriminator"),
    ]
    for i, (extra, message) in enumerate(cases):
        code, _, err = run_cli(capsys, *base, *extra, "--out", tmp_path / f"o{i}")
        assert code in (1, 2) and message in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, _, err = run_cli(capsys, *base, "--out", tmp_path / "t")
    assert code == 1 and "torchrun" in err and len(err.strip().splitlines()) == 1, err


def test_gp_every_applies_the_penalty_lazily_with_the_interval_as_weight(image_folder):
    G = make_tiny_generator()
    kw = dict(batch_size=4, lambda_feat=0.0, gp_every=2, seed=4)
    tr = EncoderTrainer(G, small_encoder(G), fresh_discriminator(G), dataset(image_folder), **kw)
    first, second = tr.step(), tr.step()
    assert first["gp"] > 0 and second["gp"] == 0  # step 0 has the penalty, step 1 not
    assert first["loss_D"] == pytest.approx(first["D_fake"] - first["D_real"] + 2 * 5.0 * first["gp"], rel=1e-5)
    assert second["loss_D"] == pytest.approx(second["D_fake"] - second["D_real"], rel=1e-5)


def test_feature_term_uses_f_on_both_images(image_folder):
    """The E step's feature term equals mean (F(x) - F(G(E(x))))^2 recomputed from the trainer's own pieces."""
    G = make_tiny_generator()
    Fx = lambda t: F.avg_pool2d(t, 4)  # noqa: E731
    tr = EncoderTrainer(G, small_encoder(G), None, dataset(image_folder), batch_size=4, features=Fx, lambda_adv=0.0)
    x = tr.batch()
    tr.data_pos = 0  # the step reads the same images again
    E = tr.E
    E.train()
    with torch.no_grad():
        rec = G.synthesis(styles=E(x), noise_mode="const")
    m = tr.step()
    assert m["feat"] == pytest.approx(float((Fx(x) - Fx(rec)).square().mean()), rel=1e-4)
    assert m["mse"] == pytest.approx(float((x - rec).square().mean()), rel=1e-4)


def test_cli_feature_net_choices_are_the_library_names():
    """The CLI lists F's names itself (importing the training module at --help time would load torch's heavy parts);
    this keeps the two lists one."""
    from latentlab.cli.encoder_commands import train_encoder_cmd
    from latentlab.inversion.encoder_training import FEATURE_NETS

    (option,) = [p for p in train_encoder_cmd.params if p.name == "feature_net"]
    assert tuple(option.type.choices) == FEATURE_NETS
