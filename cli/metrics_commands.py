"""`latentlab metrics`: FID, KID, precision and recall of a generator against a dataset (`latentlab.metrics`)."""

import click

from . import options as opt
from .types import TRUNCATION


def _echo_err(text):
    click.echo(f"latentlab: {text}", err=True)


@click.command("metrics")
@opt.model
@click.option(
    "--data",
    default=None,
    type=click.Path(),
    metavar="DIR_OR_ZIP",
    help="Real images: a folder or zip of square images at the generator's resolution (the training loop's "
    "dataset; dataset.json labels for conditional models).",
)
@click.option(
    "--metrics",
    "metric_names",
    default="fid50k_full",
    show_default=True,
    help="Comma-separated metrics, named as StyleGAN2-ADA's: fid50k_full, kid50k_full, pr50k3_full (50k generated "
    "vs all real images), fid50k, kid50k, pr50k3 (vs the first 50k), or any count: fid<N>[k][_full], "
    "kid<N>[k][_full], pr<N>k<K>[_full] (e.g. fid2k_full, pr1k3).",
)
@click.option(
    "--extractor",
    default="auto",
    show_default=True,
    help="Feature network: auto (Inception for FID/KID, VGG16 for precision/recall; the toyfaces classifier for "
    "the embedded model), inception, vgg16, clip, toyfaces, inception-untrained, vgg16-untrained (offline "
    "smoke runs: numbers not comparable to published ones). Pretrained weights are downloaded once.",
)
@click.option(
    "--variant",
    type=TRUNCATION,
    default=None,
    help="Truncation spec: w:0.7, w:0.7@8, schedule:..., center:FILE.npy:0.5, z:2.0, clamp:95, "
    "clusters:k=8,psi=0.7 or clusters:FILE.npz [default: none].",
)
@click.option(
    "--trunc",
    "psi",
    type=opt.FINITE,
    default=None,
    help="Truncation psi: the same as --variant w:PSI [default: 1, none].",
)
@opt.trunc_cutoff
@click.option(
    "--fit-samples",
    type=click.IntRange(min=10),
    default=10000,
    show_default=True,
    help="Samples for a --variant that fits (e.g. clusters:k=8,psi=0.7).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the generated images (z, labels, noise) and of KID's subsets.",
)
@click.option(
    "--noise-mode",
    type=click.Choice(["random", "const", "none"]),
    default="random",
    show_default=True,
    help="Noise inputs: random (fresh per image, as NVIDIA's metrics), const or none.",
)
@click.option(
    "--batch",
    "batch_size",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Images per batch (per process).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Neither read nor write the cached dataset statistics (<cache>/metrics-stats).",
)
@click.option(
    "--run",
    "run_dir",
    default=None,
    type=click.Path(),
    metavar="DIR",
    help="Instead of computing metrics: plot those a training run evaluated (`train gan|hsr --metrics`, its "
    "metrics-eval.csv) against kimg into --out (training-metrics.png/.pdf/.csv); --metrics NAMES picks some.",
)
@opt.device_opt
@opt.out(help="Output folder: metrics.json and metrics.csv (with --run: training-metrics.png, .pdf and .csv).")
def metrics_cmd(
    ckpt,
    data,
    metric_names,
    extractor,
    variant,
    psi,
    cutoff,
    fit_samples,
    seed,
    noise_mode,
    batch_size,
    no_cache,
    run_dir,
    device,
    out_dir,
):
    """FID, KID, precision and recall of a generator against real images, as StyleGAN2-ADA's metrics.

    Generated images are seeded (--seed): the same command gives the same numbers. The
    dataset's features are cached per dataset content and feature network, so later runs
    (other models, truncations, seeds) only compute the generated side. Under torchrun the
    images are split across processes; the numbers are those of one process.

    \b
    Example:
      latentlab metrics --model ffhq.pkl --data ~/data/ffhq.zip --metrics fid50k_full,kid50k_full,pr50k3_full
      latentlab metrics --data renders/ --metrics fid2k_full,pr1k3 --out out/m   (the embedded model)
      latentlab metrics --model ffhq.pkl --data ffhq.zip --variant w:0.7 --metrics fid10k_full
      torchrun --nproc_per_node 4 -m latentlab -- metrics --model ffhq.pkl --data ffhq.zip --out out/m
      latentlab metrics --run runs/ffhq --out out/ffhq-metrics     (FID etc. over training: train gan --metrics)
    """
    import os

    from latentlab.errors import ConfigError
    from latentlab.metrics.compute import compute_metrics, parse_metrics
    from latentlab.utils.distributed import join, shutdown

    if run_dir is not None:
        return plot_run(run_dir, metric_names, out_dir)
    specs = parse_metrics(metric_names)  # names, data and truncation refused before the model is loaded
    if data is None:
        raise click.UsageError("give --data DIR_OR_ZIP: the real images to compare with")
    if not os.path.exists(data):
        raise ConfigError(f"--data {data}: no such folder or zip file")
    if variant is not None and (psi is not None or cutoff is not None):
        raise click.UsageError("give --variant or --trunc/--trunc-cutoff, not both")
    if cutoff is not None and psi is None:
        raise click.UsageError("--trunc-cutoff needs --trunc PSI")
    truncation_spec = variant.spec if variant is not None else None
    truncation = variant.truncation if variant is not None else None
    if psi is not None:
        truncation_spec = f"w:{psi:g}" + (f"@{cutoff}" if cutoff is not None else "")
        from latentlab.truncation import WTruncation

        truncation = WTruncation(psi, cutoff)
    dev, rank, world = join(device)
    G = opt.load_model(ckpt, dev)
    if cutoff is not None:
        opt.check_cutoff(G, cutoff)
    results = compute_metrics(
        G,
        data,
        [s.name for s in specs],
        extractor=extractor,
        truncation=truncation,
        seed=seed,
        batch_size=batch_size,
        device=dev,
        cache=not no_cache,
        progress=True,
        noise_mode=noise_mode,
        fit_samples=fit_samples,
        model_spec=ckpt,
        log=_echo_err if rank == 0 else None,
    )
    shutdown()
    if rank != 0:
        return
    rows = metric_rows(results)
    click.echo(format_table(rows))
    if out_dir:
        settings = dict(
            model=ckpt,
            data=os.path.abspath(data),
            metrics=[s.name for s in specs],
            extractor=extractor,
            truncation=truncation_spec,
            seed=seed,
            noise_mode=noise_mode,
            batch=batch_size,
            processes=world,
        )
        write_metrics(out_dir, results, settings)
        click.echo(f"wrote metrics.json and metrics.csv to {out_dir}")


def plot_run(run_dir, metric_names, out_dir):
    """`metrics --run DIR`: the run's metrics over training (metrics-eval.csv) as a table, figure and CSV."""
    import os

    from click.core import ParameterSource

    from latentlab.metrics.training import plot_training_metrics, read_training_metrics, summary_rows

    ctx = click.get_current_context()
    given = [
        p.opts[0]
        for p in ctx.command.params
        if p.name not in ("run_dir", "metric_names", "out_dir", "force", "device")
        and ctx.get_parameter_source(p.name) not in (None, ParameterSource.DEFAULT)
    ]
    if given:
        raise click.UsageError(f"--run plots a training run's metrics: {', '.join(given)} does not apply to it")
    select = None
    if ctx.get_parameter_source("metric_names") not in (None, ParameterSource.DEFAULT):
        select = [n for n in metric_names.split(",") if n.strip()]
    series = read_training_metrics(run_dir, select)
    head = ("metric", "evaluations", "first", "last", "best", "at kimg")
    body = [
        (k, str(n), f"{a:.6g}", f"{b:.6g}", "" if at is None else f"{best:.6g}", "" if at is None else f"{at:g}")
        for k, n, a, b, best, at in summary_rows(series)
    ]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    for r in [head, *body]:
        click.echo("  ".join([r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, len(head))]))
    paths = plot_training_metrics(series, out_dir, title=os.path.basename(os.path.normpath(run_dir)))
    click.echo(f"wrote {', '.join(os.path.basename(p) for p in paths)} to {out_dir}")


def metric_rows(results):
    """[(metric, result key, value, generated, real, features)] of a compute_metrics result."""
    from latentlab.metrics.compute import parse_metric

    rows = []
    for name, entry in results.items():
        for key in parse_metric(name).result_keys:
            rows.append((name, key, entry[key], entry["num_gen"], entry["num_real"], entry["extractor"]))
    return rows


def format_table(rows):
    """The printed table: one line per result key."""
    head = ("metric", "value", "generated", "real", "features")
    body = [(key, f"{value:.6g}", str(ng), str(nr), ext) for _, key, value, ng, nr, ext in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = []
    for r in [head, *body]:
        cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in (1, 2, 3)] + [r[4]]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def write_metrics(out_dir, results, settings):
    """metrics.json ({results: {key: value}, metrics: {name: entry}, settings}) and metrics.csv (one row per
    result key), atomically."""
    import csv
    import io
    import json
    import os

    from latentlab.metrics.compute import metric_values
    from latentlab.utils.atomic import write_text

    os.makedirs(out_dir, exist_ok=True)
    doc = {"results": metric_values(results), "metrics": results, "settings": settings}
    write_text(os.path.join(out_dir, "metrics.json"), json.dumps(doc, indent=2) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["metric", "key", "value", "num_gen", "num_real", "extractor"])
    for row in metric_rows(results):
        w.writerow([row[0], row[1], repr(float(row[2])), *row[3:]])
    write_text(os.path.join(out_dir, "metrics.csv"), buf.getvalue())


# ---- latentlab sweep (truncation sweeps: latentlab.metrics.sweep) -------------------------------------------------
class _SweepVariant(click.ParamType):
    """--curve of `latentlab sweep`: a truncation variant without psi -> `metrics.sweep.SweepVariant` (not --variant:
    that name takes a spec with its psi, `cli.types.TruncationType`)."""

    name = "curve"

    def convert(self, value, param, ctx):
        from latentlab.errors import LatentlabError
        from latentlab.metrics.sweep import parse_variant

        try:
            return parse_variant(value)
        except (ValueError, LatentlabError) as e:
            raise _BadValue(f"--curve {value}: {e}") from None


class _SweepPsis(click.ParamType):
    """--psis of `latentlab sweep`: a value, a list or start:stop:count -> list of floats (not --trunc: that name
    takes one psi)."""

    name = "psis"

    def convert(self, value, param, ctx):
        from latentlab.errors import LatentlabError
        from latentlab.metrics.sweep import parse_psis

        try:
            return value if isinstance(value, list) else parse_psis(value)
        except (ValueError, LatentlabError) as e:
            raise _BadValue(f"--psis: {e}") from None


class _BadValue(click.ClickException):
    """An option value the library refused: one line, exit code 1."""


@click.command("sweep")
@opt.model
@click.option(
    "--data",
    default=None,
    type=click.Path(),
    metavar="DIR_OR_ZIP",
    help="Real images: a folder or zip of square images at the generator's resolution.",
)
@click.option(
    "--curve",
    "variants",
    type=_SweepVariant(),
    multiple=True,
    metavar="SPEC",
    help="A truncation variant without its psi, one curve of the figures (repeatable): w, w@CUTOFF, "
    "center:FILE.npy[@CUTOFF], clusters:k=K[,method=...,cov=...,levels=...,rep=...,dims=...] (fitted once on the "
    "model) or clusters:FILE.npz (a fitted or learned clusters file: its psi is replaced at every point). A spec "
    "that fixes psi (w:0.7) is refused: --psis sets it.",
)
@click.option(
    "--psis",
    "psis",
    type=_SweepPsis(),
    required=True,
    metavar="SPEC",
    help="The truncation psi values: start:stop:count (0.3:1.0:8: eight values, both ends included), a list "
    "(0.5,0.7,1) or one value; every curve is measured at each.",
)
@click.option(
    "--metrics",
    "metric_names",
    default="fid10k_full,pr10k3",
    show_default=True,
    help="Metrics per point, at most one per kind, FID and/or precision/recall (KID optional), named as for "
    "`latentlab metrics`: fid<N>[k][_full], pr<N>k<K>[_full], kid<N>[k][_full].",
)
@click.option(
    "--extractor",
    default="auto",
    show_default=True,
    help="Feature network, as for `latentlab metrics` (auto: Inception for FID, VGG16 for precision/recall; the "
    "toyfaces classifier for the embedded model).",
)
@click.option(
    "--fit-samples",
    type=click.IntRange(min=10),
    default=10000,
    show_default=True,
    help="Samples a clusters:k=... variant is fitted on (once for all psi).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the generated images (the same codes at every point), of the fitting and of KID's subsets.",
)
@click.option(
    "--noise-mode",
    type=click.Choice(["random", "const", "none"]),
    default="random",
    show_default=True,
    help="Noise inputs: random (fresh per image, as NVIDIA's metrics), const or none.",
)
@click.option(
    "--batch",
    "batch_size",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Images per batch (per process).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Keep the dataset statistics in DIR/stats instead of the shared cache (<cache>/metrics-stats); they are "
    "computed once either way.",
)
@opt.device_opt
@opt.resumable_out(
    ("sweep.json", "sweep.csv"),
    "truncation sweep",
    help="Sweep folder (sweep.csv, sweep.json, fitted_N.npz, figures); rerun with the same --out to resume.",
)
def sweep_cmd(
    ckpt,
    data,
    variants,
    psis,
    metric_names,
    extractor,
    fit_samples,
    seed,
    noise_mode,
    batch_size,
    no_cache,
    device,
    out_dir,
):
    """FID and precision/recall of truncation variants over a range of psi: the multi-level paper's curves.

    Every --curve (a truncation variant without its psi) is measured at every --psis value,
    one point each, with the numbers `latentlab metrics` gives for that variant at that psi.
    The dataset's features are computed once for all points, a clusters:k=... variant is
    fitted once. Writes sweep.csv (one row per point: variant, psi, fid, precision,
    recall, ...), sweep.json (the settings) and the figures precision_recall, precision_fid
    and sweep (both), .png and .pdf. Each finished point is saved at once: rerunning the same
    command after a stop computes only the missing points (other settings are refused).

    \b
    Example:
      latentlab sweep --data renders/ --curve w --curve clusters:k=8 --psis 0.3:1.0:8 \\
          --metrics fid5k_full,pr5k3 --out out/sweep          (the embedded model)
      latentlab sweep --model ffhq.pkl --data ffhq.zip --curve w --curve clusters:out/clusters/clusters.npz \\
          --psis 0.3:1.0:8 --metrics fid10k_full,pr10k3 --out out/sweep
    """
    import os

    from latentlab.errors import ConfigError
    from latentlab.metrics.compute import parse_metrics
    from latentlab.metrics.sweep import truncation_sweep
    from latentlab.utils.distributed import join, shutdown

    parse_metrics(metric_names)  # refused before the model is loaded
    if not variants:
        raise ConfigError("give at least one --curve (e.g. --curve w --curve clusters:k=8)")
    if data is None:
        raise ConfigError("give --data DIR_OR_ZIP: the real images to compare with")
    if not os.path.exists(data):
        raise ConfigError(f"--data {data}: no such folder or zip file")
    dev, rank, world = join(device)
    G = opt.load_model(ckpt, dev)
    df = truncation_sweep(
        G,
        data,
        list(variants),
        psis,
        metrics=metric_names,
        extractor=extractor,
        seed=seed,
        batch_size=batch_size,
        device=dev,
        out_dir=out_dir,
        cache=not no_cache,
        progress=rank == 0,
        noise_mode=noise_mode,
        fit_samples=fit_samples,
        model_spec=ckpt,
        log=_echo_err if rank == 0 else None,
    )
    shutdown()
    if rank != 0:
        return
    click.echo(format_sweep(df))
    click.echo(f"wrote sweep.csv, sweep.json and the figures to {out_dir}")


def format_sweep(df):
    """The printed sweep table: variant, psi and the measured values, one line per point."""
    cols = [c for c in ("fid", "kid", "precision", "recall") if c in df.columns]
    head = ["variant", "psi", *cols]
    body = [[str(r["variant"]), f"{r['psi']:g}", *(f"{r[c]:.4g}" for c in cols)] for _, r in df.iterrows()]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return "\n".join(
        "  ".join([r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, len(head))]) for r in [head, *body]
    )


ALL = [metrics_cmd, sweep_cmd]
