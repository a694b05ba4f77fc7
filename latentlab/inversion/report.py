"""Inversion side by side on labelled images: projector, encoder, encoder + refinement.

For images whose true attributes are known (toyfaces renders: real images from the generator's
point of view), `compare_inversions` inverts the same images three ways and measures

- reconstruction: the projector's per-image metrics (perceptual distance, MSE, PSNR, SSIM on [0, 1]
  pixels), their means, and wall-clock seconds per image;
- meaning: how often the attribute classifier's decisions on the reconstruction agree with the
  image's true labels (next to how often they agree on the original image, the ceiling);
- editing: a smile edit of every reconstruction (W codes: w + alpha n; S codes: the same move carried
  into S exactly, `latentlab.edits.linear.direction_in_s`).

`write_inversion_report` writes summary.md, metrics.csv (per image and method), agreement.csv and
figure.png (rows: originals, then per method its reconstructions and their edits, labelled; columns: the images).
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..edits.linear import edit
from ..errors import ConfigError
from ..latents.directions import Direction

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator
    from .encoder import HierarchicalEncoder
    from .projector import Distance, ProjectionResult


def compare_inversions(
    G: AnyGenerator,
    targets: torch.Tensor,
    true_labels: Any,
    classifier: Any,
    encoder: Optional[HierarchicalEncoder] = None,
    steps: int = 1000,
    refine: int = 100,
    distance: Optional[Distance] = None,
    edit_direction: Optional[Direction] = None,
    edit_alpha: float = 2.0,
    space: str = "w",
    seed: int = 0,
    w_avg_samples: int = 10000,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    log: Any = print,
) -> Dict[str, Any]:
    """Invert uint8 targets [N, C, R, R] with the projector (`steps` in `space`), the encoder and the encoder
    followed by `refine` projector steps in S (the last two when `encoder` is given; `steps` or `refine`
    0 skips that method). true_labels: [N, A] 0/1 array in the classifier's attribute order.

    Returns {'methods': {name: {'result', 'seconds', 'agreement', 'images', 'edited'}}, 'original_agreement',
    'names' (attribute names)}."""
    from .encoder import encode_images
    from .projector import project

    true_labels = np.asarray(true_labels)
    if true_labels.shape != (len(targets), len(classifier.names)):
        raise ConfigError(
            f"true labels of shape {true_labels.shape} for {len(targets)} images x {len(classifier.names)} attributes"
        )
    targets = targets.to(device)

    def agreement(images_pm1: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            got = classifier.binary(images_pm1, batch_size=64).cpu().numpy()
        return (got == true_labels).mean(axis=0)

    results: Dict[str, ProjectionResult] = {}
    seconds: Dict[str, float] = {}
    if steps:
        log(f"projector: {steps} steps in {space} for {len(targets)} images")
        t0 = time.perf_counter()
        results[f"projector ({space}, {steps} steps)"] = project(
            G, targets, steps, space=space, distance=distance, seed=seed, w_avg_samples=w_avg_samples, device=device
        )
        seconds[f"projector ({space}, {steps} steps)"] = time.perf_counter() - t0
    if encoder is not None:
        log("encoder")
        t0 = time.perf_counter()
        enc_res = encode_images(G, encoder, targets, batch_size=batch_size, distance=distance)
        seconds["encoder"] = time.perf_counter() - t0
        results["encoder"] = enc_res
        if refine:
            log(f"encoder + {refine} projector steps in s")
            t0 = time.perf_counter()
            name = f"encoder + {refine} steps"
            results[name] = project(
                G,
                targets,
                refine,
                space="s",
                init=enc_res.codes,
                init_noise=enc_res.noise,
                distance=distance,
                seed=seed,
                w_avg_samples=w_avg_samples,
                device=device,
            )
            seconds[name] = time.perf_counter() - t0 + seconds["encoder"]
    methods: Dict[str, Dict[str, Any]] = {}
    for name, res in results.items():
        entry: Dict[str, Any] = dict(result=res, seconds=seconds[name], agreement=agreement(res.images.to(device)))
        codes = res.codes.replace(noise=list(res.noise))  # rendered with their own noise maps
        entry["images"] = codes.render_uint8(G, batch_size=batch_size)
        if edit_direction is not None:
            entry["edited"] = edit(codes, edit_direction, edit_alpha, G).render_uint8(G, batch_size=batch_size)
        methods[name] = entry
    original = agreement(targets.float() / 127.5 - 1)
    return dict(methods=methods, original_agreement=original, names=list(classifier.names), n=len(targets))


def write_inversion_report(
    comparison: Dict[str, Any],
    targets: torch.Tensor,
    out_dir: str,
    image_names: Optional[Sequence[str]] = None,
    settings: Optional[dict] = None,
    figure_images: int = 8,
    edit_label: str = "smile +2",
) -> List[str]:
    """summary.md, summary.json, metrics.csv, agreement.csv and figure.png into out_dir; returns the summary lines."""
    import pandas as pd

    from ..studies.reports import markdown_table, write_csv
    from ..utils.atomic import write_text
    from ..utils.images import labelled_grid, save_png, to_pil

    os.makedirs(out_dir, exist_ok=True)
    n = comparison["n"]
    image_names = list(image_names) if image_names is not None else [str(i) for i in range(n)]
    rows, means, agree = [], {}, {"original image": comparison["original_agreement"]}
    for name, m in comparison["methods"].items():
        res = m["result"]
        for i in range(n):
            rows.append(dict(method=name, image=image_names[i], **{k: float(v[i]) for k, v in res.metrics.items()}))
        means[name] = dict(
            {k: float(np.mean(v)) for k, v in res.metrics.items()},
            seconds_per_image=m["seconds"] / n,
            attribute_agreement=float(np.mean(m["agreement"])),
        )
        agree[name] = m["agreement"]
    write_csv(pd.DataFrame(rows), os.path.join(out_dir, "metrics.csv"), index=False)
    agreement = pd.DataFrame(agree, index=comparison["names"]).T
    agreement["mean"] = agreement.mean(axis=1)
    agreement.index.name = "reconstruction"
    write_csv(agreement, os.path.join(out_dir, "agreement.csv"))
    table = pd.DataFrame(means).T
    table.index.name = "method"

    k = min(figure_images, n)
    originals = targets[:k].permute(0, 2, 3, 1).cpu().numpy().astype(np.uint8)
    strips, labels = [originals], ["originals"]
    for name, m in comparison["methods"].items():
        strips.append(m["images"][:k])
        labels.append(name)
        if "edited" in m:
            strips.append(m["edited"][:k])
            labels.append(f"{name}: {edit_label}")
    grid = np.concatenate(strips)
    if grid.shape[-1] == 1:
        grid = grid.repeat(3, axis=-1)
    # Rows named after the methods, columns after the images; upscaled so that small faces can be read.
    figure = labelled_grid(grid, cols=k, row_labels=labels, col_labels=image_names[:k])
    save_png(to_pil(figure), os.path.join(out_dir, "figure.png"))

    lines = [
        "# Inversion: projector, encoder, encoder + refinement",
        "",
        f"{n} images. Metrics per method (means over images): `distance` is the perceptual distance the "
        "methods optimise/are scored with (see settings), MSE and PSNR on [0, 1] pixels, SSIM (11x11 Gaussian "
        "window), wall-clock seconds per image (batch of all images), and the share of attribute decisions of "
        "the classifier on the reconstruction that agree with the image's true labels.",
        "",
        markdown_table(table).rstrip(),
        "",
        "Attribute agreement with the true labels (the first row: the classifier on the original images):",
        "",
        markdown_table(agreement, "{:.3f}").rstrip(),
        "",
        "`figure.png`, top to bottom: " + "; ".join(labels) + ".",
    ]
    write_text(os.path.join(out_dir, "summary.md"), "\n".join(lines) + "\n")
    summary = dict(settings or {}, n=n, methods=means, agreement={k: v.tolist() for k, v in agree.items()})
    summary["attributes"] = comparison["names"]
    write_text(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2, default=str) + "\n")
    return lines
