"""The optimisation video of a projection: target | synthesis frames every k steps, and an MP4 of them.

As the official projector's proj.mp4 (the target beside the current synthesis, 10 frames/s, libx264),
with two differences: a frame is written every `every` steps (the official video has one per step),
and a batch of targets gives one frame per step with one row per image (target left, synthesis right).
Frames are PNG files `frames/step_NNNN.png` (NNNN: the number of steps taken; 0 is the starting code),
each written atomically as it is made, so a long run's frames can be watched while it runs. The MP4
needs an optional writer (`pip install 'latentlab[video]'`: imageio with its ffmpeg plugin, whose wheel
ships an ffmpeg binary); without it the frames alone are written.
"""

from __future__ import annotations

import os
from typing import List, Optional, Union

import numpy as np
import torch

from ..utils.atomic import atomic_path
from ..utils.images import save_png, to_pil, to_uint8

VIDEO_EXTRA = "video"  # pyproject.toml's extra that installs the MP4 writer


def side_by_side(target: torch.Tensor, synth: torch.Tensor) -> np.ndarray:
    """One frame, uint8 [N * H, 2 * W, C]: row i is target i beside synthesis i.

    target: uint8 [N, C, H, W] in [0, 255] or float in [-1, 1]; synth: float [N, C, H, W] in about [-1, 1]."""
    if target.dtype != torch.uint8:
        target = ((target.detach().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    left = target.detach().permute(0, 2, 3, 1).cpu().numpy()
    rows = np.concatenate([left, to_uint8(synth)], axis=2)  # [N, H, 2W, C]
    return rows.reshape(-1, *rows.shape[2:])


def mp4_writer_available() -> bool:
    """Whether imageio and its ffmpeg plugin can be imported (the `video` extra)."""
    try:
        import imageio  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


class ProjectionVideo:
    """An `on_snapshot` callback for `project`: writes frames/step_NNNN.png under `out_dir`.

    target: the projection's targets (as given to `project`); num_steps: the run's length (sets the
    digits of NNNN, at least 4). `write_mp4` assembles the frames written so far into an MP4."""

    def __init__(self, target: torch.Tensor, out_dir: Union[str, os.PathLike], num_steps: int) -> None:
        self.target = target.detach().cpu()
        self.frames_dir = os.path.join(os.fspath(out_dir), "frames")
        self.digits = max(4, len(str(num_steps)))
        self.paths: List[str] = []

    def __call__(self, step: int, images: torch.Tensor) -> None:
        frame = side_by_side(self.target, images)
        path = os.path.join(self.frames_dir, f"step_{step:0{self.digits}d}.png")
        save_png(to_pil(frame), path)
        self.paths.append(path)

    def write_mp4(self, path: Union[str, os.PathLike], fps: int = 10) -> Optional[str]:
        """Write the frames as an H.264 MP4 (atomically); returns the path, or None without the writer
        (or without frames)."""
        if not self.paths or not mp4_writer_available():
            return None
        import imageio.v2 as imageio

        from ..datasets.images import open_image

        path = os.fspath(path)
        with atomic_path(path, ".mp4") as tmp:
            writer = imageio.get_writer(
                tmp,
                format="FFMPEG",
                mode="I",
                fps=fps,
                codec="libx264",
                bitrate="16M",
                macro_block_size=1,
                ffmpeg_log_level="error",
            )
            try:
                for frame_path in self.paths:
                    with open_image(frame_path, frame_path) as im:  # size checked before decoding
                        frame = np.asarray(im.convert("RGB"))
                    writer.append_data(_even(frame))
            finally:
                writer.close()
        return path


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad a frame by edge replication to even height and width (H.264's 4:2:0 chroma needs both even)."""
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frame
