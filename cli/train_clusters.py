"""`latentlab train clusters`: a thin shell over latentlab.train.clusters.train_cluster_mappings."""

import click

from . import options as opt
from .conventions import alias


@click.command()
@opt.model
@click.option(
    "--steps",
    type=click.IntRange(min=0),
    required=True,
    help="Total mapping steps (each after --n-critic critic steps); a resumed run counts the ones done.",
)
@opt.resumable_out(
    ("state.pt", "clusters.npz", "metrics.csv"),
    "cluster-mapping run",
    help="Run folder (clusters.npz, metrics.csv, state.pt); rerun with the same --out to resume.",
)
@click.option(
    "--levels",
    default="coarse,middle,fine",
    show_default=True,
    help="Levels to structure: coarse, middle (or medium), fine, comma-separated.",
)
@click.option(
    "--k", type=int, default=8, show_default=True, help="Gaussians (clusters) per level (>= 2, as clusters:k=)."
)
@click.option(
    "--batch", "batch_size", type=click.IntRange(min=1), default=64, show_default=True, help="Codes per step."
)
@click.option(
    "--n-critic", type=click.IntRange(min=1), default=5, show_default=True, help="Critic steps per mapping step."
)
@click.option(
    "--lambda-gp", type=opt.FiniteFloat(min=0), default=10.0, show_default=True, help="Gradient-penalty weight."
)
@click.option(
    "--lambda-cls", type=opt.FiniteFloat(min=0), default=1.0, show_default=True, help="Classifier-loss weight."
)
@click.option(
    "--lr",
    type=opt.FiniteFloat(min=0, min_open=True),
    default=1e-4,
    show_default=True,
    help="Adam learning rate (betas 0, 0.9) of critics and mappings.",
)
@click.option(
    "--trunc",
    "psi",
    type=opt.FINITE,
    default=0.7,
    show_default=True,
    help="Truncation psi stored in the clusters file.",
    **alias("--psi"),
)
@click.option(
    "--snapshot-every",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Steps between training-state snapshots (the resume points).",
)
@click.option(
    "--log-every", type=click.IntRange(min=1), default=10, show_default=True, help="Steps between rows of metrics.csv."
)
@click.option(
    "--cluster-classifier",
    "classifier",
    type=click.Choice(["code", "image"]),
    default="code",
    show_default=True,
    **alias("--classifier"),
    help="Cluster classifier: an MLP on the W code (fast) or a small CNN on the image rendered with the "
    "level's code (the paper's; renders every step, so slower, best on a GPU).",
)
@click.option(
    "--center-samples",
    type=click.IntRange(min=1),
    default=10000,
    show_default=True,
    help="Samples per Gaussian whose mapped mean is the cluster centre.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed.")
@opt.device_opt
def clusters(
    ckpt,
    steps,
    out_dir,
    levels,
    k,
    batch_size,
    n_critic,
    lambda_gp,
    lambda_cls,
    lr,
    psi,
    snapshot_every,
    log_every,
    classifier,
    center_samples,
    seed,
    device,
):
    """Learn multi-level cluster mappings of W+ for cluster truncation (Katzir et al. 2022).

    Per level, a new mapping network fed by a learnable mixture of K Gaussians is
    trained (WGAN-GP) to reproduce the model's own w, with a classifier that tells
    the clusters apart (on the code, or on the rendered image with --cluster-classifier image);
    the model itself stays frozen. Cluster centres are the means of each Gaussian's mapped
    samples. Writes DIR/clusters.npz (use it with `latentlab truncate --clusters`, where
    --choose picks the cluster per level, or `clusters:FILE`), DIR/metrics.csv and
    DIR/state.pt; rerunning with the same settings resumes from DIR/state.pt, which
    Ctrl-C or SIGTERM also writes (after the current step) before it stops.

    \b
    Example:
      latentlab train clusters --model ffhq.pkl --steps 20000 --out out/clusters
      latentlab train clusters --model ffhq.pkl --steps 20000 --levels coarse,medium --k 16 --out out/clusters16
      latentlab train clusters --model ffhq.pkl --steps 20000 --cluster-classifier image --device cuda --out out/clusters_img
      latentlab truncate --model ffhq.pkl --clusters out/clusters/clusters.npz --choose coarse=3 --tsne --out out/trunc
    """
    from latentlab.train.clusters import CLUSTERS_FILE, train_cluster_mappings
    from latentlab.truncation.cluster_base import check_cluster_count

    from .train_commands import stop_on_ctrl_c  # Ctrl-C/SIGTERM: one line naming the resume point, exit 130/143

    check_cluster_count(k, "--k")  # the same rule and line as truncate's clusters:k=
    level_list = [p.strip() for p in levels.split(",") if p.strip()]
    if not level_list:
        raise click.UsageError("--levels names no level")
    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    with stop_on_ctrl_c():
        t = train_cluster_mappings(
            G,
            out_dir,
            steps,
            levels=level_list,
            k=k,
            batch_size=batch_size,
            n_critic=n_critic,
            lambda_gp=lambda_gp,
            lambda_cls=lambda_cls,
            lr=lr,
            psi=psi,
            seed=seed,
            snapshot_every=snapshot_every,
            log_every=log_every,
            device=dev,
            progress=True,
            classifier=classifier,
            center_samples=center_samples,
        )
    acc = t.info_.get("accuracy", {})
    click.echo(
        f"wrote {CLUSTERS_FILE}, metrics.csv and state.pt ({t.info_.get('steps')} steps, levels {', '.join(t.layers_)}) "
        f"to {out_dir}"
    )
    click.echo(
        "classifier accuracy: "
        + ", ".join(
            f"{level} {acc[level]:.3f} (chance {1 / t.k_for(level):.3f})" for level in t.layers_ if level in acc
        )
    )
