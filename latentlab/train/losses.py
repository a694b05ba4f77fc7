"""StyleGAN2's training objective, one function per term.

- Generator: non-saturating logistic loss softplus(-D(G(z))), plus the path-length
  regulariser E[(|J_w^T y| - a)^2] with y ~ N(0, I/(H W)) and `a` a running mean.
- Discriminator: logistic loss softplus(D(G(z))) + softplus(-D(x)), plus R1 =
  gamma/2 E[|grad_x D(x)|^2] on real images.
Regularisers are "lazy": evaluated every few steps and scaled by that interval
(the caller passes the interval as `gain`), as in StyleGAN2.
With an augmentation pipeline (ADA), D sees every image, real or generated, through it (`run_D`); R1 is the
gradient with respect to the un-augmented real image, as in StyleGAN2-ADA.
"""

import numpy as np
import torch
import torch.nn.functional as F


def g_nonsaturating(fake_logits):
    """Per-sample generator loss softplus(-D(G(z)))."""
    return F.softplus(-fake_logits)


def d_logistic(real_logits, fake_logits):
    """Per-sample discriminator losses (on real, on fake): softplus(-D(x)), softplus(D(G(z)))."""
    return F.softplus(-real_logits), F.softplus(fake_logits)


def r1_penalty(real_logits, real_img):
    """|grad_x D(x)|^2 per sample; real_img must require grad and have produced real_logits."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True, only_inputs=True)
    return grad.square().sum(dim=[1, 2, 3])


def path_lengths(img, ws, generator=None):
    """|J_w^T y| per sample with y ~ N(0, I) / sqrt(H W): how far the image moves per unit step in w."""
    noise = torch.randn(img.shape, device=img.device, generator=generator) / np.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True, only_inputs=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


class StyleGAN2Loss:
    """The four phases of a StyleGAN2 step on (G, D); each returns (loss to backprop, stats dict).

    r1_gamma: R1 weight. style_mixing_prob: probability that a sample's ws switch
    to a second z at a random layer. pl_weight / pl_batch_shrink / pl_decay: path-length
    regulariser (weight 0 turns it off). noise_mode: 'random' as in training.
    augment_pipe: optional `latentlab.train.augment.AugmentPipe` applied before every D call.
    observe_real: optional callback given D's logits on reals after every pass on them (main and R1 phases;
    ADA's r_t averages their signs).
    """

    def __init__(
        self,
        G,
        D,
        r1_gamma=10.0,
        style_mixing_prob=0.9,
        pl_weight=2.0,
        pl_batch_shrink=2,
        pl_decay=0.01,
        noise_mode="random",
        augment_pipe=None,
        observe_real=None,
    ):
        self.G, self.D = G, D
        self.augment_pipe = augment_pipe
        self.observe_real = observe_real
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        self.noise_mode = noise_mode
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)

    def mapping(self, z, c):
        """ws for z, with style mixing: from a random layer on, ws come from a second z.

        The random numbers are drawn as StyleGAN2-ADA's loss draws them (a cutoff in [1, num_ws), a uniform for
        the mixing probability, then the second z, whether or not it is used), so that one seed gives the
        official run's numbers; the second mapping itself is skipped when nothing is mixed.
        """
        G = self.G
        ws = G.mapping(z, c)
        if self.style_mixing_prob > 0 and ws.shape[1] > 1:
            cutoff = int(torch.empty([], dtype=torch.int64, device=ws.device).random_(1, ws.shape[1]))
            if not float(torch.rand([], device=ws.device)) < self.style_mixing_prob:
                cutoff = ws.shape[1]
            z2 = torch.randn_like(z)
            if cutoff < ws.shape[1]:
                ws2 = G.mapping(z2, c, update_w_avg=False)
                ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return ws

    def run_G(self, z, c):
        ws = self.mapping(z, c)
        return self.G.synthesis(ws, noise_mode=self.noise_mode), ws

    def run_D(self, img, c):
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    def _real_logits(self, real_img, real_c):
        logits = self.run_D(real_img, real_c)
        if self.observe_real is not None:
            self.observe_real(logits.detach())
        return logits

    def g_main(self, z, c):
        """Generator adversarial loss; also returns the images (for add-on regularisers)."""
        img, _ = self.run_G(z, c)
        logits = self.run_D(img, c)
        loss = g_nonsaturating(logits).mean()
        return loss, img, {"loss_G": float(loss.detach()), "D_fake_G": float(logits.detach().mean())}

    def g_pl(self, z, c, sync=None):
        """Path-length penalty * weight on a shrunk batch; updates the running mean `pl_mean`.

        sync: optional function averaging a tensor across processes, so that every
        rank keeps the same `pl_mean`.
        """
        n = max(z.shape[0] // self.pl_batch_shrink, 1)
        img, ws = self.run_G(z[:n], c[:n])
        lengths = path_lengths(img, ws)
        mean = lengths.mean()
        if sync is not None:  # the value of every rank's mean, the gradient of this rank's
            mean = mean + (sync(mean.detach()) - mean.detach())
        # As StyleGAN2-ADA: the penalty's target is the updated mean, gradient included (it moves with this batch).
        pl_mean = self.pl_mean.lerp(mean, self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        penalty = (lengths - pl_mean).square()
        # img[:, 0, 0, 0] * 0 keeps every synthesis output in the graph (needed for DDP-style grad sync).
        loss = (penalty * self.pl_weight).mean() + img[:, 0, 0, 0].sum() * 0
        return loss, {"pl_penalty": float(penalty.detach().mean()), "pl_mean": float(self.pl_mean)}

    def d_main(self, z, c, real_img, real_c):
        """Discriminator logistic loss on fakes (G runs without a graph) and reals."""
        with torch.no_grad():
            fake_img, _ = self.run_G(z, c)
        fake_logits = self.run_D(fake_img, c)
        real_logits = self._real_logits(real_img.detach(), real_c)
        loss_real, loss_fake = d_logistic(real_logits, fake_logits)
        loss = loss_real.mean() + loss_fake.mean()
        return loss, {
            "loss_D": float(loss.detach()),
            "D_real": float(real_logits.detach().mean()),
            "D_fake": float(fake_logits.detach().mean()),
        }

    def d_reg(self, real_img, real_c):
        """R1 loss gamma/2 |grad_x D(x)|^2 on real images (the caller scales it by the lazy interval)."""
        real_img = real_img.detach().requires_grad_(True)
        real_logits = self._real_logits(real_img, real_c)
        penalty = r1_penalty(real_logits, real_img)
        # + 0 * logits keeps the epilogue in the graph so every D parameter gets a (zero) gradient.
        loss = penalty.mean() * (self.r1_gamma / 2) + real_logits.sum() * 0
        return loss, {"r1_penalty": float(penalty.detach().mean())}
