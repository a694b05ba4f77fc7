"""Reading projection targets from image files and writing a projection's results into a folder."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, ImageOps

from ..datasets.images import open_image
from ..errors import ConfigError
from ..utils.atomic import write_text
from ..utils.images import save_png, to_pil, to_uint8
from .align import FaceKeypoints, align_face, check_keypoints, detect_keypoints, read_landmarks, require_detector
from .projector import ProjectionResult

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def load_targets(
    paths: Sequence[str], resolution: int, channels: int, align: bool = False, landmarks: Optional[str] = None
) -> Tuple[torch.Tensor, List[str]]:
    """uint8 targets [N, C, R, R] and their names (file names without folder and suffix).

    align: crop and align every image as FFHQ was (`latentlab.inversion.align`) to resolution x
    resolution, from the landmarks file `landmarks` (formats in that module) or, without one, the
    optional face detector (`pip install 'latentlab[align]'`); the photo is read as displayed (its
    EXIF orientation applied). Without align an image must already be resolution x resolution.
    Either way refuses, naming the file, an image whose colour (grey vs RGB) differs from the
    generator's; RGBA and palette images are read as RGB."""
    if not paths:
        raise ConfigError("no images given")
    if landmarks and not align:
        raise ConfigError(f"--landmarks {landmarks}: the landmarks are for --align; add --align")
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(names)) != len(names):
        raise ConfigError("two images have the same file name; give images with distinct names")
    keypoints: Optional[List[FaceKeypoints]] = None
    if align:
        keypoints = read_landmarks(landmarks, paths) if landmarks else None
        if keypoints is None:
            require_detector()  # one line naming the extra, before any image is read
    arrays = []
    for i, path in enumerate(paths):
        try:
            with open_image(path, path) as im:  # size checked from the header before decoding (bombs refused)
                mode, size = im.mode, im.size
                grey = mode in GREY_MODES
                if grey != (channels == 1):
                    what = "greyscale" if grey else "colour"
                    raise ConfigError(f"{path}: a {what} image ({mode}) for a generator with {channels} channel(s)")
                if align:
                    photo = ImageOps.exif_transpose(im).convert("L" if grey else "RGB")
                    if keypoints is not None:
                        kp = keypoints[i]
                        check_keypoints(kp, photo.size, f"{landmarks}: {os.path.basename(path)}")
                    else:
                        kp = detect_keypoints(photo, path)
                    arr = np.asarray(align_face(photo, kp, resolution))
                elif size != (resolution, resolution):
                    raise ConfigError(
                        f"{path}: image is {size[0]}x{size[1]}, the generator makes {resolution}x{resolution} "
                        "(align a face photo with --align, or crop/resize it first)"
                    )
                else:
                    arr = np.asarray(im.convert("L" if grey else "RGB"))
        except (OSError, Image.DecompressionBombError) as e:
            raise ConfigError(f"{path}: cannot read this image ({e})") from None
        arrays.append(arr[..., None] if arr.ndim == 2 else arr)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous(), names


PROJECTION_FORMATS = ("latentlab", "nvidia")


def check_projection_format(latents_format: str, space: str) -> None:
    """Refuse (ConfigError) a latents format the projection cannot be written in, before it runs: 'nvidia' adds
    NVIDIA's projected_w.npz, W+ codes, which S-space codes cannot become."""
    if latents_format not in PROJECTION_FORMATS:
        raise ConfigError(f"unknown latents format {latents_format!r}; choose from {', '.join(PROJECTION_FORMATS)}")
    if latents_format == "nvidia" and space == "s":
        raise ConfigError(
            "--latents-format nvidia writes W+ codes (projected_w.npz), and S-space codes have no W+ equivalent; "
            "project with --space w or w+"
        )


def write_projection(
    result: ProjectionResult,
    names: Sequence[str],
    out_dir: str,
    record: dict,
    G: Optional[AnyGenerator] = None,
    latents_format: str = "latentlab",
) -> List[str]:
    """latents.npz (the codes, with noise0..noiseK arrays [N, 1, R, R]), recon_<name>.png, metrics.csv
    (one row per image) and project.json (`record` plus the settings); returns the file names.
    latents_format 'nvidia' (needs G, W or W+ codes) adds projected_w.npz, the layout of stylegan2-ada-pytorch's
    projector output, which its generate.py --projected-w renders (without the optimised noise, which that file
    cannot hold: its renders use the generator's constant noise)."""
    from ..latents.codes import NVIDIA_W_FILE

    check_projection_format(latents_format, result.codes.space)
    files = ["latents.npz"]
    noise = {f"noise{i}": n.cpu().numpy() for i, n in enumerate(result.noise)}
    result.codes.save(os.path.join(out_dir, "latents.npz"), **noise)
    if latents_format == "nvidia":
        if G is None:
            raise ValueError("write_projection: latents_format 'nvidia' needs the generator G")
        result.codes.save_projected_w(os.path.join(out_dir, NVIDIA_W_FILE), G)
        files.append(NVIDIA_W_FILE)
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
