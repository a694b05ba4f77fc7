"""Reading projection targets from image files and writing a projection's results into a folder."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import List, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError
from ..utils.atomic import write_text
from ..utils.images import save_png, to_pil, to_uint8
from .projector import ProjectionResult

GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def load_targets(paths: Sequence[str], resolution: int, channels: int) -> Tuple[torch.Tensor, List[str]]:
    """uint8 targets [N, C, R, R] and their names (file names without folder and suffix).

    Refuses, naming the file, an image that is not resolution x resolution (alignment/resizing is
    not implemented yet) or whose colour (grey vs RGB) differs from the generator's; RGBA and
    palette images are read as RGB."""
    if not paths:
        raise ConfigError("no images given")
    arrays, names = [], []
    for path in paths:
        try:
            with Image.open(path) as im:
                im.load()
                mode, size = im.mode, im.size
                grey = mode in GREY_MODES
                if grey != (channels == 1):
                    what = "greyscale" if grey else "colour"
                    raise ConfigError(f"{path}: a {what} image ({mode}) for a generator with {channels} channel(s)")
                if size != (resolution, resolution):
                    raise ConfigError(
                        f"{path}: image is {size[0]}x{size[1]}, the generator makes {resolution}x{resolution} "
                        "(crop/resize it first: alignment (--align) is not implemented yet)"
                    )
                arr = np.asarray(im.convert("L" if grey else "RGB"))
        except (OSError, Image.DecompressionBombError) as e:
            raise ConfigError(f"{path}: cannot read this image ({e})") from None
        arrays.append(arr[..., None] if arr.ndim == 2 else arr)
        names.append(os.path.splitext(os.path.basename(path))[0])
    if len(set(names)) != len(names):
        raise ConfigError("two images have the same file name; give images with distinct names")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous(), names


def write_projection(result: ProjectionResult, names: Sequence[str], out_dir: str, record: dict) -> List[str]:
    """latents.npz (the codes, with noise0..noiseK arrays [N, 1, R, R]), recon_<name>.png, metrics.csv
    (one row per image) and project.json (`record` plus the settings); returns the file names."""
    files = ["latents.npz"]
    noise = {f"noise{i}": n.cpu().numpy() for i, n in enumerate(result.noise)}
    result.codes.save(os.path.join(out_dir, "latents.npz"), **noise)
    for name, img in zip(names, to_uint8(result.images)):
        save_png(to_pil(img), os.path.join(out_dir, f"recon_{name}.png"))
        files.append(f"recon_{name}.png")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    keys = list(result.metrics)
    writer.writerow(["image", *keys])
    for i, name in enumerate(names):
        writer.writerow([name, *(f"{float(result.metrics[k][i]):.6g}" for k in keys)])
    write_text(os.path.join(out_dir, "metrics.csv"), buf.getvalue())
    summary = {k: float(np.mean(v)) for k, v in result.metrics.items()}
    doc = dict(record, settings=result.settings, targets=list(names), mean_metrics=summary, files=[*files])
    doc["files"] += ["metrics.csv", "project.json"]
    write_text(os.path.join(out_dir, "project.json"), json.dumps(doc, indent=2) + "\n")
    return doc["files"]
