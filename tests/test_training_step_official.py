"""latentlab's StyleGAN2 training step against NVIDIA's own, recorded on the same weights, images and seeds.

The fixture (tests/fixtures/training_step/, made by its make_fixture.py from a stylegan2-ada-pytorch checkout)
holds two iterations of their loop: every phase's gradients before its optimiser step (Gmain, Greg with the
path-length term, Dmain, Dreg with R1; style mixing on), then G, D, G_ema and the path-length mean after each
iteration. Our Trainer, started from the same weights, fed the same 8 images and seeded the same way before each
step, must give the same losses' gradients and the same networks to 1e-4 relative: the same latents drawn in the
same order (all phases' z up front, mixing cutoffs, noise, path-length noise), the same lazy Adam rescaling and
the same EMA schedule.
"""

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from latentlab.models import Discriminator, Generator
from latentlab.train import Trainer, TrainingOptions

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "training_step")
# A stylegan2-ada-pytorch checkout: with a GPU, NVIDIA's loop and plugins run beside ours in this process.
OFFICIAL = os.environ.get("LATENTLAB_SG2ADA")
PHASES_BY_ITERATION = {0: ["Gmain", "Greg", "Dmain", "Dreg"], 1: ["Gmain", "Dmain"]}


class FixedImages:
    """The fixture's real images as a training dataset, read in order."""

    def __init__(self, reals):
        self.reals = reals.numpy()
        self.resolution, self.channels, self.label_dim = self.reals.shape[-1], self.reals.shape[1], 0

    def __len__(self):
        return len(self.reals)

    def sample(self, j):
        return self.reals[j], np.zeros([0], np.float32)


class InOrder:
    def index(self, position):
        return int(position) % 8


@pytest.fixture(scope="module")
def recorded():
    with open(os.path.join(HERE, "training_step.json")) as f:
        meta = json.load(f)
    return meta, load_file(os.path.join(HERE, "training_step.safetensors"))


def _part(tensors, prefix):
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _close(ours, theirs, where, rtol=1e-4):
    """Each tensor within rtol of the official one, relative to that tensor's largest magnitude."""
    assert set(ours) == set(theirs), f"{where}: names differ: {sorted(set(ours) ^ set(theirs))[:5]}"
    for name, t in theirs.items():
        o = ours[name].detach().to(t.dtype)
        scale = float(t.abs().max()) or 1.0
        err = float((o - t).abs().max()) / scale
        assert err <= rtol, f"{where}/{name}: relative error {err:.2e}"


def _trainer(meta, tensors, tmp_path, device="cpu"):
    G = Generator(**meta["G_kwargs"])
    D = Discriminator(**meta["D_kwargs"])
    G.load_state_dict(_part(tensors, "init/G/"))
    D.load_state_dict(_part(tensors, "init/D/"))
    o = dict(meta["options"])
    options = TrainingOptions(**{**o, "betas": tuple(o["betas"]), "ema_rampup": o["ema_rampup"] or 0.0, "aug": "noaug"})
    tr = Trainer(tmp_path / "run", G, D, FixedImages(tensors["reals"]), options, device=device, progress=False)
    tr.sampler = InOrder()
    return tr


def _record_phases(tr, log):
    """Wrap both optimisers' step so each phase's gradients are kept before the update."""
    for opt, net in ((tr.opt_G, tr.G), (tr.opt_D, tr.D)):
        step = opt.step

        def recording(*a, _step=step, _net=net, **k):
            log.append({n: p.grad.clone() for n, p in _net.named_parameters() if p.grad is not None})
            return _step(*a, **k)

        opt.step = recording


def test_two_iterations_match_nvidia(recorded, tmp_path):
    meta, tensors = recorded
    tr = _trainer(meta, tensors, tmp_path)
    for k in range(meta["iterations"]):
        log = []
        _record_phases(tr, log)
        torch.manual_seed(meta["seed"] + k)
        tr.train_step()
        names = PHASES_BY_ITERATION[k]
        assert len(log) == len(names), f"iteration {k}: {len(log)} optimiser steps, expected {names}"
        for phase, grads in zip(names, log):
            _close(grads, _part(tensors, f"it{k}/{phase}/"), f"it{k}/{phase} gradients")
        for name, net in (("G", tr.G), ("D", tr.D), ("G_ema", tr.G_ema)):
            _close(net.state_dict(), _part(tensors, f"it{k}/{name}/"), f"it{k}/{name} after the step")
        assert float(tr.loss.pl_mean) == pytest.approx(float(tensors[f"it{k}/pl_mean"]), rel=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.skipif(not OFFICIAL, reason="LATENTLAB_SG2ADA (a stylegan2-ada-pytorch checkout) is not set")
def test_the_cuda_step_matches_nvidia_on_the_gpu(recorded, tmp_path):
    """On the GPU our kernels (bias_act, upfirdn2d, first and second derivatives) meet NVIDIA's compiled plugins: their
    loop and ours, from the fixture's weights and images, seeded alike, two iterations, every phase's gradients and
    the networks after each step within 1e-4 relative. Their loop is recorded here, not in the fixture: the GPU's
    random streams differ from the CPU's."""
    import sys
    import types

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from benchmarks.official_training import OfficialIteration

    meta, tensors = recorded
    tr = _trainer(meta, tensors, tmp_path, device="cuda")
    # The Trainer turned TF32 off, as NVIDIA's loop does; their iteration below runs under the same settings.
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    theirs = OfficialIteration(OFFICIAL, meta["G_kwargs"], meta["D_kwargs"], _part(tensors, "init/G/"),
                               _part(tensors, "init/D/"), types.SimpleNamespace(**meta["options"]), device="cuda")  # fmt: skip
    reals = tensors["reals"].to("cuda", torch.float32) / 127.5 - 1
    for k in range(meta["iterations"]):
        record, log = {}, []
        torch.manual_seed(meta["seed"] + k)
        theirs(reals, record=record)
        _record_phases(tr, log)
        torch.manual_seed(meta["seed"] + k)
        tr.train_step()
        names = PHASES_BY_ITERATION[k]
        assert list(record) == names and len(log) == len(names), (list(record), len(log))
        for phase, grads in zip(names, log):
            _close(grads, record[phase], f"cuda it{k}/{phase} gradients")
        for name in ("G", "D", "G_ema"):
            _close(getattr(tr, name).state_dict(), getattr(theirs, name).state_dict(), f"cuda it{k}/{name}")
        assert float(tr.loss.pl_mean) == pytest.approx(float(theirs.loss.pl_mean), rel=1e-4)


def test_the_recording_is_not_trivial(recorded):
    """The fixture exercises what it claims: style mixing changed ws, every phase moved its network, G_ema lags."""
    meta, tensors = recorded
    for phase in PHASES_BY_ITERATION[0]:
        grads = _part(tensors, f"it0/{phase}/")
        assert grads and all(torch.isfinite(g).all() for g in grads.values())
        assert sum(float(g.abs().sum()) for g in grads.values()) > 0, phase
    assert float(tensors["it0/pl_mean"]) > 0
    g, g_ema = _part(tensors, "it1/G/"), _part(tensors, "it1/G_ema/")
    moved = [float((g[n] - g_ema[n]).abs().max()) for n in g if g[n].is_floating_point()]
    assert max(moved) > 1e-5  # EMA half-life 20 images: G_ema trails G after the second step


def test_the_cpu_step_runs_channels_last(recorded, tmp_path):
    """The comparison above covers the fast CPU path: G's and D's convolutions see channels-last activations
    there (NVIDIA's reference ops use contiguous ones), so the two layouts agree to the tolerance."""
    meta, tensors = recorded
    tr = _trainer(meta, tensors, tmp_path)
    seen = []

    def hook(module, args):
        seen.append((type(module).__name__, args[0].is_contiguous(memory_format=torch.channels_last)))

    handles = [tr.D.b16.conv0.register_forward_pre_hook(hook), tr.G.synthesis.b16.conv1.register_forward_pre_hook(hook)]
    try:
        tr.train_step()
    finally:
        for h in handles:
            h.remove()
    assert len({name for name, _ in seen}) == 2 and all(cl for _, cl in seen), seen


def test_trained_blocks_above_64_px_keep_the_contiguous_layout():
    """oneDNN's channels-last weight gradients are slow above 64 px: such blocks stay contiguous while their weights
    train, and use channels-last otherwise (frozen weights, no autograd, or 64 px and below)."""
    from latentlab.models.layers import CPU_CHANNELS_LAST_MAX_TRAINED_RES, cpu_channels_last

    block = torch.nn.Conv2d(4, 4, 3)
    above = 2 * CPU_CHANNELS_LAST_MAX_TRAINED_RES
    assert not cpu_channels_last(block, above)
    assert cpu_channels_last(block, CPU_CHANNELS_LAST_MAX_TRAINED_RES)
    with torch.no_grad():
        assert cpu_channels_last(block, above)
    block.requires_grad_(False)
    assert cpu_channels_last(block, above)
