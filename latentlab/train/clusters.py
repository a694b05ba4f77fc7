"""Learned multi-level cluster mappings for cluster truncation (Katzir et al. 2022,
"Multi-level Latent Space Structuring for Generative Control").

For each level l (coarse / middle / fine layers of W+, as `latentlab.latents.layers`
defines them; the last ws layer belongs to no level and keeps the original code):

- a mixture of K Gaussians in an input space of z_dim dimensions: learnable means
  mu_k (init N(0, I) * mu_scale), learnable diagonal log-std log_sigma_k (init
  log(init_sigma)), fixed uniform weights; a sample is k ~ Cat(1/K), eps ~ N(0, I),
  x = mu_k + sigma_k * eps (reparameterised, so the mixture learns);
- a new mapping network M_l: `mapping_layers` (4) fully connected layers of width w_dim,
  LeakyReLU(0.2) after all but the last (a linear output layer); w_l = M_l(x);
- a classifier C_l that says which Gaussian produced a code: cross-entropy(C_l(.), k),
  trained with M_l and the mixture. `classifier='code'` (default; fast, the sensible choice
  on a CPU): an MLP on the level code, w_dim -> hidden -> hidden -> K. `classifier='image'`
  (the paper's, image domain): a small CNN (`latentlab.truncation.learned_clusters.cnn_forward`,
  widths `cnn_channels`) on G.synthesis(ws, noise_mode='const') of ws whose level layers get
  the mapped code M_l(x) and whose other layers get the generator's own w for a fresh z; its
  loss reaches M_l and the mixture through the frozen synthesis network;
- a WGAN-GP critic D_l (MLP w_dim -> hidden -> hidden -> 1) on level codes. Real codes
  are the frozen generator's own w = G.mapping(z) (fresh z every critic step; all layers
  of a level share that w); fake codes are M_l(x).
  critic loss  D(fake) - D(real) + lambda_gp (|grad D(interp)|_2 - 1)^2,
  mapping loss -D(fake) + lambda_cls CE(C(fake), k),
  n_critic (5) critic steps per mapping step; Adam(lr=1e-4, betas=(0.0, 0.9)) for both
  sides, as in WGAN-GP (Gulrajani et al. 2017).

All layers are plain linear (or, in the image classifier, 3x3 conv) layers in nn.Linear's /
nn.Conv2d's layout (He-normal weights, zero biases, drawn from the trainer's own seeded
generator), run by `latentlab.truncation.learned_clusters.mlp_forward` / `cnn_forward`, the
very functions that the saved truncation uses, so a clusters file predicts exactly what the
trained networks did. (StyleGAN's equalised-lr layers with lr_multiplier 0.01 would learn
100x slower at WGAN-GP's lr.)

Cluster centres (`to_truncation`): c_{l,k} = mean of M_l(mu_k + sigma_k eps) over
`center_samples` draws of eps (`mixture_centers`, seeded with the trainer's seed), the mean of
the Gaussian's codes; the count is recorded in the file's info.

The pretrained generator is frozen (requires_grad False): its parameters never change. It
runs under no_grad except for the image classifier's renders, which pass gradients to the
codes only. Conditional generators (c_dim > 0) are refused.

Files in `out/`: `state.pt` (every network, both optimizers, the sampling RNG and the
step; written atomically, read with torch.load(weights_only=True)), `metrics.csv`
(one row per logged step) and `clusters.npz` (a `LearnedClusterTruncation`, loadable by
`latentlab.truncation.Truncation.load`, `clusters:FILE` and `latentlab truncate --clusters`).
Training from a folder with `state.pt` resumes: the result equals an uninterrupted run
with the same settings; a run with other settings (k, levels, model, ...) is refused.
"""

import hashlib
import json
import math
import os
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..latents.layers import LEVEL_ALIASES, LEVELS
from ..truncation.base import generator_device, map_z
from ..truncation.cluster_base import check_cluster_count
from ..truncation.learned_clusters import (
    CENTER_SAMPLES,
    CLASSIFIERS,
    LEAKY_SLOPE,
    LearnedClusterTruncation,
    cnn_forward,
    mixture_centers,
    mlp_forward,
)
from ..utils.atomic import remove_stale_temps, save_torch
from ..utils.metrics import MetricsCSV
from ..utils.validate import check_int, check_number, check_saved_state
from .interrupt import StopOnInterrupt, TrainingInterrupted

STATE_FILE = "state.pt"
CLUSTERS_FILE = "clusters.npz"
METRICS_FILE = "metrics.csv"
STATE_FORMAT = "latentlab-cluster-mappings"
STATE_VERSION = 1
METRICS = ("critic_loss", "wdist", "gp", "g_loss", "cls_loss", "cls_acc")


# --- networks ------------------------------------------------------------------------
class MLP(nn.Module):
    """Linear layers dims[0] -> dims[1] -> ... with LeakyReLU(0.2) between them (none after the last)."""

    def __init__(self, dims, generator=None):
        super().__init__()
        self.dims = [int(d) for d in dims]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        last = len(self.dims) - 2
        for i, (d_in, d_out) in enumerate(zip(self.dims[:-1], self.dims[1:])):
            # He init: a LeakyReLU layer keeps the scale of its input (gain 1 for the linear output layer)
            gain = 1.0 if i == last else math.sqrt(2 / (1 + LEAKY_SLOPE**2))
            self.weights.append(nn.Parameter(torch.randn(d_out, d_in, generator=generator) * (gain / math.sqrt(d_in))))
            self.biases.append(nn.Parameter(torch.zeros(d_out)))

    def forward(self, x, detach_params=False):
        """detach_params: gradients flow to x but never into this MLP's parameters."""
        ws, bs = list(self.weights), list(self.biases)
        if detach_params:
            ws, bs = [w.detach() for w in ws], [b.detach() for b in bs]
        return mlp_forward(x, ws, bs)

    def arrays(self):
        return {
            "weights": [w.detach().cpu().numpy() for w in self.weights],
            "biases": [b.detach().cpu().numpy() for b in self.biases],
        }


class ConvClassifier(nn.Module):
    """The image classifier: 3x3 stride-2 convs channels[0] -> channels[1] -> ..., LeakyReLU(0.2), global
    average pooling, a linear layer to k logits (`cnn_forward`, after pooling the image to CNN_INPUT px)."""

    def __init__(self, in_channels, channels, k, generator=None):
        super().__init__()
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        gain = math.sqrt(2 / (1 + LEAKY_SLOPE**2))
        for c_in, c_out in zip([in_channels, *channels[:-1]], channels):
            self.weights.append(
                nn.Parameter(torch.randn(c_out, c_in, 3, 3, generator=generator) * (gain / math.sqrt(9 * c_in)))
            )
            self.biases.append(nn.Parameter(torch.zeros(c_out)))
        self.weights.append(nn.Parameter(torch.randn(k, channels[-1], generator=generator) / math.sqrt(channels[-1])))
        self.biases.append(nn.Parameter(torch.zeros(k)))

    def forward(self, x):
        return cnn_forward(x, list(self.weights), list(self.biases))

    def arrays(self):
        return MLP.arrays(self)


class LevelNets(nn.Module):
    """One level's mixture (mu, log_sigma, log_weights), mapping M, classifier C and critic D."""

    def __init__(
        self,
        x_dim,
        w_dim,
        k,
        mapping_layers=4,
        hidden=None,
        mu_scale=1.0,
        init_sigma=1.0,
        generator=None,
        classifier="code",
        img_channels=3,
        cnn_channels=(32, 64, 128),
    ):
        super().__init__()
        hidden = hidden or w_dim
        self.k, self.x_dim = k, x_dim
        self.mu = nn.Parameter(torch.randn(k, x_dim, generator=generator) * mu_scale)
        self.log_sigma = nn.Parameter(torch.full((k, x_dim), math.log(init_sigma)))
        self.register_buffer("log_weights", torch.full((k,), -math.log(k)))  # uniform, fixed
        self.mapping = MLP([x_dim] + [w_dim] * mapping_layers, generator)
        if classifier == "image":
            self.classifier = ConvClassifier(img_channels, list(cnn_channels), k, generator)
        else:
            self.classifier = MLP([w_dim, hidden, hidden, k], generator)
        self.critic = MLP([w_dim, hidden, hidden, 1], generator)

    def sample(self, n, generator):
        """(ids [n], x [n, x_dim]): k ~ Cat(uniform), x = mu_k + sigma_k * eps, differentiable in mu and sigma."""
        ids = torch.randint(self.k, (n,), generator=generator, device=self.mu.device)
        eps = torch.randn(n, self.x_dim, generator=generator, device=self.mu.device)
        return ids, self.mu[ids] + self.log_sigma[ids].exp() * eps

    def mapping_parameters(self):
        """What the mapping step trains: M, the mixture and the classifier."""
        return [self.mu, self.log_sigma, *self.mapping.parameters(), *self.classifier.parameters()]

    def centers(self, n_samples=CENTER_SAMPLES, seed=0):
        """[K, w_dim]: mean of M(mu_k + sigma_k eps) over n_samples seeded eps (`mixture_centers`)."""
        mapping = {
            "weights": [w.detach() for w in self.mapping.weights],
            "biases": [b.detach() for b in self.mapping.biases],
        }
        return mixture_centers(self.mu.detach(), self.log_sigma.detach(), mapping, n_samples, seed)


# --- loss terms ------------------------------------------------------------------------
def gradient_penalty(critic, real, fake, alpha, lambda_gp=10.0):
    """lambda_gp * mean (|grad D(interp)|_2 - 1)^2, interp = alpha real + (1 - alpha) fake (alpha [N])."""
    a = alpha.reshape(-1, 1).to(real.dtype)
    interp = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(interp).sum(), interp, create_graph=True)
    return lambda_gp * (grad.norm(2, dim=1) - 1).square().mean()


def critic_loss(critic, real, fake, alpha, lambda_gp=10.0):
    """WGAN-GP critic loss mean D(fake) - mean D(real) + GP; (loss, stats). fake is detached."""
    d_real, d_fake = critic(real.detach()).mean(), critic(fake.detach()).mean()
    gp = gradient_penalty(critic, real, fake, alpha, lambda_gp)
    loss = d_fake - d_real + gp
    return loss, {"critic_loss": loss.detach(), "wdist": (d_real - d_fake).detach(), "gp": gp.detach()}


def mapping_loss(critic, classifier, fake, ids, lambda_cls=1.0, inputs=None):
    """-mean D(fake) + lambda_cls CE(C(inputs), ids); (loss, stats). The critic's parameters get no gradient.

    inputs: what the classifier reads (default the codes fake; images rendered from them for an image classifier).
    """
    logits = classifier(fake if inputs is None else inputs)
    cls = F.cross_entropy(logits, ids)
    adv = -critic(fake, detach_params=True).mean()
    loss = adv + lambda_cls * cls
    acc = (logits.argmax(dim=1) == ids).float().mean()
    return loss, {"g_loss": adv.detach(), "cls_loss": cls.detach(), "cls_acc": acc.detach()}


# --- the trainer -------------------------------------------------------------------------
class ClusterMappingTrainer:
    """Trains one LevelNets per level against a frozen generator G; see the module docstring.

    steps counted in mapping steps (each after n_critic critic steps). `fit(steps)` trains up to
    `steps` in total; `resume(out)` restores a snapshot; `to_truncation(psi)` gives the result.
    """

    def __init__(
        self,
        G,
        levels=("coarse", "middle", "fine"),
        k=8,
        batch_size=64,
        n_critic=5,
        lambda_gp=10.0,
        lambda_cls=1.0,
        lr=1e-4,
        betas=(0.0, 0.9),
        seed=0,
        device=None,
        mapping_layers=4,
        hidden=None,
        mu_scale=1.0,
        init_sigma=1.0,
        classifier="code",
        cnn_channels=(32, 64, 128),
    ):
        if getattr(G, "c_dim", 0) > 0:
            raise ConfigError(
                f"learned cluster mappings support unconditional generators only; this one has c_dim={G.c_dim}"
            )
        if isinstance(levels, str):
            levels = [p.strip() for p in levels.split(",") if p.strip()]
        levels = [LEVEL_ALIASES.get(n, n) for n in levels]
        unknown = [n for n in levels if n not in LEVELS]
        if unknown:
            raise ConfigError(f"unknown level {unknown[0]!r}; use coarse, middle (medium) or fine")
        if isinstance(k, dict):
            k = {LEVEL_ALIASES.get(n, n): v for n, v in k.items()}
        if classifier not in CLASSIFIERS:
            raise ConfigError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {classifier!r}")
        cnn_channels = [check_int("cnn_channels", c, lo=1) for c in cnn_channels]
        if not cnn_channels:
            raise ConfigError("cnn_channels must name at least one conv width")
        self.classifier = classifier
        self.device = torch.device(device) if device is not None else generator_device(G)
        self.G = G.to(self.device).requires_grad_(False)  # frozen: its parameters never get gradients
        layers = LearnedClusterTruncation(levels=tuple(levels)).resolve_layers(G)  # drops levels without layers
        if isinstance(k, dict) and set(layers) - set(k):
            raise ConfigError(f"k must give a count for every level with layers ({', '.join(layers)}), got {sorted(k)}")
        self.layers = layers
        self.k = {n: check_cluster_count(k[n] if isinstance(k, dict) else k, f"k[{n!r}]") for n in layers}
        self.batch_size = check_int("batch_size", batch_size, lo=1)
        self.n_critic = check_int("n_critic", n_critic, lo=1)
        self.lambda_gp = check_number("lambda_gp", lambda_gp, lo=0)
        self.lambda_cls = check_number("lambda_cls", lambda_cls, lo=0)
        self.lr = check_number("lr", lr, lo=0, lo_open=True)
        self.betas = tuple(check_number("beta", b, 0, 1) for b in betas)
        self.seed = check_int("seed", seed)
        self.x_dim = G.z_dim
        self.config = dict(
            model=generator_fingerprint(G),
            z_dim=G.z_dim,
            w_dim=G.w_dim,
            num_ws=G.num_ws,
            layers=layers,
            k=self.k,
            batch_size=self.batch_size,
            n_critic=self.n_critic,
            lambda_gp=self.lambda_gp,
            lambda_cls=self.lambda_cls,
            lr=self.lr,
            betas=list(self.betas),
            seed=self.seed,
            mapping_layers=check_int("mapping_layers", mapping_layers, 1),
            hidden=int(hidden or G.w_dim),
            mu_scale=float(mu_scale),
            init_sigma=check_number("init_sigma", init_sigma, 0, lo_open=True),
        )
        if classifier == "image":  # only then: runs with the code classifier resume snapshots from before the option
            self.config.update(classifier=classifier, cnn_channels=cnn_channels)
        init = torch.Generator().manual_seed(2 * self.seed)
        self.nets = nn.ModuleDict(
            {
                n: LevelNets(
                    self.x_dim,
                    G.w_dim,
                    self.k[n],
                    mapping_layers,
                    hidden,
                    mu_scale,
                    init_sigma,
                    init,
                    classifier,
                    G.img_channels,
                    cnn_channels,
                )
                for n in layers
            }
        ).to(self.device)
        self.opt_critic = torch.optim.Adam(
            [p for n in self.nets.values() for p in n.critic.parameters()], lr=self.lr, betas=self.betas
        )
        self.opt_mapping = torch.optim.Adam(
            [p for n in self.nets.values() for p in n.mapping_parameters()], lr=self.lr, betas=self.betas
        )
        self.rng = torch.Generator(device=self.device).manual_seed(2 * self.seed + 1)
        self.step_ = 0
        self.last_metrics = {}

    # --- one step ------------------------------------------------------------------------
    def real_codes(self, n=None):
        """{level: [n, w_dim]} codes of the frozen generator for fresh z (the level's mean w, as truncation sees it)."""
        n = n or self.batch_size
        z = torch.randn(n, self.G.z_dim, generator=self.rng, device=self.device)
        with torch.no_grad():
            ws = map_z(self.G, z)
        return {level: ws[:, idx].mean(dim=1) for level, idx in self.layers.items()}

    def render(self, level, codes, generator=None):
        """Images G renders with the level's layers set to codes [N, w_dim] and the others to G's own w for fresh z.

        Differentiable in codes (G's parameters stay frozen); noise_mode 'const'.
        """
        z = torch.randn(
            len(codes), self.G.z_dim, generator=self.rng if generator is None else generator, device=self.device
        )
        with torch.no_grad():
            ws = map_z(self.G, z)
        ws = ws.clone()
        ws[:, self.layers[level]] = codes.unsqueeze(1).to(ws.dtype)
        return self.G.synthesis(ws, noise_mode="const")

    def classifier_inputs(self, level, codes, generator=None):
        """What the level's classifier reads for codes: the codes, or their renders (classifier='image')."""
        return codes if self.classifier == "code" else self.render(level, codes, generator)

    def critic_loss(self, real):
        """Summed critic loss over levels for real codes {level: [N, w_dim]}; fakes are drawn here, without grad."""
        total, stats = 0, {}
        for level, nets in self.nets.items():
            with torch.no_grad():
                _, x = nets.sample(len(real[level]), self.rng)
                fake = nets.mapping(x)
            alpha = torch.rand(len(fake), generator=self.rng, device=self.device)
            loss, st = critic_loss(nets.critic, real[level], fake, alpha, self.lambda_gp)
            total = total + loss
            stats.update({f"{level}/{k}": v for k, v in st.items()})
        return total, stats

    def mapping_loss(self):
        """Summed mapping + classifier loss over levels, on fresh mixture samples."""
        total, stats = 0, {}
        for level, nets in self.nets.items():
            ids, x = nets.sample(self.batch_size, self.rng)
            fake = nets.mapping(x)
            loss, st = mapping_loss(
                nets.critic, nets.classifier, fake, ids, self.lambda_cls, self.classifier_inputs(level, fake)
            )
            total = total + loss
            stats.update({f"{level}/{k}": v for k, v in st.items()})
        return total, stats

    def step(self):
        """n_critic critic updates, then one mapping update; returns this step's metrics (floats)."""
        sums = {}
        for _ in range(self.n_critic):
            loss, stats = self.critic_loss(self.real_codes())
            self.opt_critic.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_critic.step()
            for key, v in stats.items():
                sums[key] = sums.get(key, 0) + v
        loss, stats = self.mapping_loss()
        self.opt_mapping.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_mapping.step()
        self.step_ += 1
        values = {key: v / self.n_critic for key, v in sums.items()}
        values.update(stats)
        self.last_metrics = {key: float(v) for key, v in values.items()}
        return self.last_metrics

    # --- training loop ----------------------------------------------------------------
    def fit(self, steps, out=None, snapshot_every=500, log_every=10, progress=True):
        """Train until `steps` mapping steps in total (a resumed trainer counts those done before).

        With `out`: metrics go to out/metrics.csv every log_every steps, the state to
        out/state.pt every snapshot_every steps and at the end; Ctrl-C or SIGTERM (main thread) then writes
        out/state.pt after the step under way and raises `TrainingInterrupted` (a second one
        stops at once); resuming gives the same result as an uninterrupted run.
        """
        steps = check_int("steps", steps)
        snapshot_every = check_int("snapshot_every", snapshot_every or 0)
        log_every = check_int("log_every", log_every, lo=1)
        from ..utils.progress import progress_bar

        writer = MetricsCSV(os.path.join(out, METRICS_FILE), self.columns(), self.step_) if out is not None else None
        try:
            stopper = StopOnInterrupt() if out is not None else nullcontext()  # Ctrl-C needs a folder to snapshot into
            with (
                progress_bar(
                    total=steps,
                    initial=min(self.step_, steps),
                    desc="cluster mappings",
                    unit="step",
                    enabled=progress,
                    what="mapping steps",
                    hint="use --steps to reduce",
                ) as bar,
                stopper as stop,
            ):
                while self.step_ < steps:
                    m = self.step()
                    bar.set_postfix_str(
                        " ".join(
                            f"{lv[:1]}:W={m[f'{lv}/wdist']:.3g},acc={m[f'{lv}/cls_acc']:.2f}" for lv in self.layers
                        ),
                        refresh=False,
                    )
                    bar.update(1)
                    if writer is not None and (self.step_ % log_every == 0 or self.step_ == steps):
                        writer.write({"step": self.step_, **{c: f"{m[c]:.6g}" for c in self.columns()[1:]}})
                    interrupted = stop is not None and stop.requested and self.step_ < steps
                    if (
                        out is not None
                        and snapshot_every
                        and (self.step_ % snapshot_every == 0 or interrupted)
                        and self.step_ < steps
                    ):
                        self.save_state(out)
                    if interrupted:
                        raise TrainingInterrupted(self.step_, os.path.join(out, STATE_FILE), signum=stop.signum)
        finally:
            if writer is not None:
                writer.close()
        if out is not None:
            self.save_state(out)
        return self

    def columns(self):
        return ["step"] + [f"{level}/{m}" for level in self.layers for m in METRICS]

    # --- results -----------------------------------------------------------------------
    def evaluate(self, n=1000, seed=None):
        """{level: accuracy} of each classifier on n fresh mixture samples (own RNG: training is unaffected).

        An image classifier renders every sample: it runs in batches of batch_size.
        """
        g = torch.Generator(device=self.device).manual_seed(self.seed + 12345 if seed is None else seed)
        acc = {}
        with torch.no_grad():
            for level, nets in self.nets.items():
                right, step = 0, n if self.classifier == "code" else self.batch_size
                for start in range(0, n, step):
                    ids, x = nets.sample(min(step, n - start), g)
                    inputs = self.classifier_inputs(level, nets.mapping(x), g)
                    right += int((nets.classifier(inputs).argmax(1) == ids).sum())
                acc[level] = right / n
        return acc

    def to_truncation(self, psi=0.7, accuracy=None, center_samples=CENTER_SAMPLES):
        """The trained mappings as a LearnedClusterTruncation (classifiers, mixtures and centres
        c_{l,k} = mean of M_l(mu_k + sigma_k eps) over center_samples eps seeded with the trainer's seed)."""
        ks = set(self.k.values())
        k = ks.pop() if len(ks) == 1 else dict(self.k)  # one count for every level: stored as one int
        t = LearnedClusterTruncation(
            k=k, psi=psi, levels=tuple(self.layers), keep_last=True, classifier=self.classifier
        )
        nets = {}
        for level, n in self.nets.items():
            nets[level] = {
                "mu": n.mu.detach().cpu().numpy(),
                "log_sigma": n.log_sigma.detach().cpu().numpy(),
                "log_weights": n.log_weights.cpu().numpy(),
                "centers": n.centers(center_samples, self.seed).cpu().numpy(),
                "mapping": n.mapping.arrays(),
                "classifier": n.classifier.arrays(),
            }
        info = {
            "steps": self.step_,
            "model": self.config["model"],
            "classifier": self.classifier,
            "center_samples": int(center_samples),
            "center_seed": self.seed,
        }
        if accuracy is not None:
            info["accuracy"] = accuracy
        t.set_state({"layers": self.layers, "nets": nets, "info": info})
        return t

    # --- snapshots -----------------------------------------------------------------------
    def state_dict(self):
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "config": json.dumps(self.config, sort_keys=True),
            "step": self.step_,
            "nets": self.nets.state_dict(),
            "opt_critic": self.opt_critic.state_dict(),
            "opt_mapping": self.opt_mapping.state_dict(),
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state, source="the snapshot"):
        check_saved_state(state, STATE_FORMAT, STATE_VERSION, self.config, source, "cluster-mapping training state")
        self.nets.load_state_dict(state["nets"])
        self.opt_critic.load_state_dict(state["opt_critic"])
        self.opt_mapping.load_state_dict(state["opt_mapping"])
        self.rng.set_state(state["rng"])
        self.step_ = int(state["step"])
        return self

    def save_state(self, out):
        """Write out/state.pt atomically (a crash mid-write leaves the previous snapshot)."""
        path = os.path.join(out, STATE_FILE)
        save_torch(path, self.state_dict())
        return path

    def resume(self, out):
        """Restore out/state.pt if there is one; True when resumed. Refuses other settings (ValueError)."""
        path = os.path.join(out, STATE_FILE)
        if not os.path.exists(path):
            return False
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a foreign or damaged file: one clear line
            raise ConfigError(f"cannot read the training state {path}: {e}") from None
        self.load_state_dict(state, source=path)
        return True


def train_cluster_mappings(
    G,
    out,
    steps,
    levels=("coarse", "middle", "fine"),
    k=8,
    batch_size=64,
    n_critic=5,
    lambda_gp=10.0,
    lambda_cls=1.0,
    lr=1e-4,
    psi=0.7,
    seed=0,
    snapshot_every=500,
    log_every=10,
    device=None,
    progress=True,
    classifier="code",
    center_samples=CENTER_SAMPLES,
    **arch,
):
    """Train learned cluster mappings on G (resuming from out/ when it holds a state) -> LearnedClusterTruncation.

    Writes out/state.pt, out/metrics.csv and out/clusters.npz (see the module docstring).
    steps: total mapping steps. classifier: 'code' (MLP on W codes, fast) or 'image' (CNN on
    renders, the paper's). center_samples: draws per Gaussian for the cluster centres.
    arch: mapping_layers, hidden, mu_scale, init_sigma, betas, cnn_channels.
    """
    trainer = ClusterMappingTrainer(
        G,
        levels=levels,
        k=k,
        batch_size=batch_size,
        n_critic=n_critic,
        lambda_gp=lambda_gp,
        lambda_cls=lambda_cls,
        lr=lr,
        seed=seed,
        device=device,
        classifier=classifier,
        **arch,
    )
    check_int("center_samples", center_samples, lo=1)
    os.makedirs(out, exist_ok=True)
    remove_stale_temps(out)  # left by a run killed mid-write
    if trainer.resume(out):
        print(f"resuming {out} at step {trainer.step_}", flush=True)  # as train gan|hsr|encoder say
    trainer.fit(steps, out, snapshot_every=snapshot_every, log_every=log_every, progress=progress)
    t = trainer.to_truncation(psi, accuracy=trainer.evaluate(), center_samples=center_samples)
    t.save(os.path.join(out, CLUSTERS_FILE))
    return t


def generator_fingerprint(G):
    """Short SHA-256 of G's architecture and every parameter and buffer: a resume refuses another model."""
    h = hashlib.sha256(json.dumps(getattr(G, "init_kwargs", {}), sort_keys=True, default=str).encode())
    for name, t in sorted(G.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{t.numel()};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
