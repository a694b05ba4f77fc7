"""NVIDIA's StyleGAN2-ADA training iteration, run from a local stylegan2-ada-pytorch checkout on given weights.

Used side by side with latentlab's loop by `benchmarks/training_throughput.py` (rows `gan-official`) and by
`tests/fixtures/training_step/make_fixture.py` (the recorded ground truth of tests/test_training_step_official.py).
The inner loop of their `training/training_loop.py`, one process: the phases Gmain, Greg, Dmain, Dreg (lazy
regularisation every `g_reg_interval` / `d_reg_interval` iterations), one Adam per network with the lazy
rescaling of lr and betas, `all_gen_z` drawn up front for every phase, NaN/inf gradients cleaned, then the G_ema
update with `cur_nimg` counted before the iteration. The loss is their `training.loss.StyleGAN2Loss`; their CPU
paths are their reference ops. Real images are passed in (their DataLoader is not part of the timed step).
"""

import copy
import os
import sys
import types

import torch


def import_official(repo):
    """Put the checkout on sys.path (their conv2d_gradfix imports pkg_resources, gone from recent setuptools), and
    let their plugin loader import what torch built: it calls importlib.import_module(name) after
    cpp_extension.load, which recent torch no longer makes importable by name."""
    sys.path.insert(0, os.path.abspath(os.path.expanduser(repo)))
    from torch.utils import cpp_extension

    if not getattr(cpp_extension.load, "_registers_module", False):
        load = cpp_extension.load

        def registering_load(name, *args, **kwargs):
            module = load(name, *args, **kwargs)
            sys.modules.setdefault(name, module)
            return module

        registering_load._registers_module = True
        cpp_extension.load = registering_load
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        from packaging.version import parse

        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)  # type: ignore[assignment]


class OfficialIteration:
    """One call = one iteration of their loop on (G, D) built from the given kwargs and state dicts.

    repo: stylegan2-ada-pytorch checkout. G_kwargs / D_kwargs: constructor kwargs (latentlab's `init_kwargs`
    are theirs). G_state / D_state: state dicts (official parameter names). options: an object with batch_size,
    lr, betas, eps, r1_gamma, pl_weight, style_mixing_prob, pl_batch_shrink, pl_decay, g_reg_interval,
    d_reg_interval, ema_kimg, ema_rampup (latentlab's resolved TrainingOptions has them all).
    """

    PHASES = ("Gmain", "Greg", "Dmain", "Dreg")

    def __init__(self, repo, G_kwargs, D_kwargs, G_state, D_state, options, device="cpu"):
        import_official(repo)
        from training.loss import StyleGAN2Loss
        from training.networks import Discriminator, Generator

        o = self.options = options
        self.device = torch.device(device)
        self.G = Generator(**copy.deepcopy(dict(G_kwargs)))
        self.D = Discriminator(**copy.deepcopy(dict(D_kwargs)))
        self.G.load_state_dict(G_state)
        self.D.load_state_dict(D_state)
        self.G = self.G.to(self.device).train().requires_grad_(False)
        self.D = self.D.to(self.device).train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.loss = StyleGAN2Loss(
            self.device,
            self.G.mapping,
            self.G.synthesis,
            self.D,
            style_mixing_prob=o.style_mixing_prob,
            r1_gamma=o.r1_gamma,
            pl_batch_shrink=o.pl_batch_shrink,
            pl_decay=o.pl_decay,
            pl_weight=o.pl_weight,
        )
        self.phases = []
        for net, interval in ((self.G, o.g_reg_interval), (self.D, o.d_reg_interval)):
            ratio = interval / (interval + 1)
            opt = torch.optim.Adam(net.parameters(), lr=o.lr * ratio, betas=[b**ratio for b in o.betas], eps=o.eps)
            self.phases += [(net, opt, 1), (net, opt, interval)]
        self.batch_idx = 0
        self.cur_nimg = 0

    def __call__(self, real_img, real_c=None, record=None):
        """One iteration on real_img [batch, C, R, R] in [-1, 1]; `record` (a dict) receives each phase's
        gradients {phase: {param name: grad}} before its optimiser step."""
        o, G = self.options, self.G
        n = real_img.shape[0]
        real_c = torch.zeros([n, 0], device=self.device) if real_c is None else real_c
        all_gen_z = torch.randn([len(self.phases) * o.batch_size, G.z_dim], device=self.device).split(o.batch_size)
        for name, (net, opt, interval), gen_z in zip(self.PHASES, self.phases, all_gen_z):
            if self.batch_idx % interval != 0:
                continue
            opt.zero_grad(set_to_none=True)
            net.requires_grad_(True)
            gen_z = gen_z[:n]
            self.loss.accumulate_gradients(
                phase=name, real_img=real_img, real_c=real_c, gen_z=gen_z, gen_c=real_c[:0].new_zeros([n, G.c_dim]),
                sync=True, gain=interval,
            )  # fmt: skip
            net.requires_grad_(False)
            for p in net.parameters():
                if p.grad is not None:
                    torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            if record is not None:
                record[name] = {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
            opt.step()
        ema_nimg = o.ema_kimg * 1000
        if o.ema_rampup:
            ema_nimg = min(ema_nimg, self.cur_nimg * o.ema_rampup)
        beta = 0.5 ** (o.batch_size / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)
        self.cur_nimg += o.batch_size
        self.batch_idx += 1
