"""Photos uploaded to the explorer: read as `latentlab project` reads them (`load_targets`), inverted with the
projector (`latentlab.inversion.project`, a short run in a background thread with progress) or the GH-Feat encoder
(`encode_images`), and kept by a random id so that a tab's state can name its photo (`"photo": ID`).

The projection shares the one model with the renders: it holds the model lock and, after every step, lets the
renders that wait for it go first (`ModelLock.yield_to_waiting`), so the page stays live while a photo projects.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Optional

from ..errors import LatentlabError
from .state import BadRequest

if TYPE_CHECKING:
    import torch

    from ..latents.codes import LatentCodes
    from .engine import Explorer

MAX_PHOTOS = 32  # photos kept (least recently used dropped first): a few MB of codes and noise maps each at 1024 px
MAX_JOBS = 64  # projection jobs remembered (finished ones dropped first)
MAX_PROJECT_STEPS = 2000  # steps of one projection from the page (the published 1000, and some)
PREVIEW_EVERY = 10  # steps between the previews a running projection shows


class Cancelled(Exception):
    pass


@dataclass
class Photo:
    id: str
    name: str
    codes: LatentCodes
    target_png: bytes
    method: str
    metrics: Dict[str, float] = field(default_factory=dict)


@dataclass
class Job:
    id: str
    name: str
    total: int
    space: str
    step: int = 0
    done: bool = False
    error: Optional[str] = None
    photo: Optional[str] = None
    preview: Optional[bytes] = None
    started: float = field(default_factory=time.monotonic)
    cancelled: bool = False

    def status(self) -> Dict[str, Any]:
        return dict(
            job=self.id,
            name=self.name,
            step=self.step,
            total=self.total,
            done=self.done,
            error=self.error,
            photo=self.photo,
            seconds=round(time.monotonic() - self.started, 1),
        )


class _Steps:
    """The projector's progress bar: counts steps, lets waiting renders use the model, stops a cancelled job."""

    def __init__(self, job: Job, explorer: Explorer):
        self.job, self.explorer = job, explorer

    def update(self, n: int = 1) -> None:
        self.job.step += n
        if self.job.cancelled:
            raise Cancelled()
        self.explorer.lock.yield_to_waiting()


class Photos:
    def __init__(self, explorer: Explorer):
        self.explorer = explorer
        self.max_steps = MAX_PROJECT_STEPS
        self._photos: OrderedDict[str, Photo] = OrderedDict()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._guard = threading.Lock()
        self._distance: Any = None

    # ------------------------------------------------------------------------------------------ store
    def codes(self, photo_id: str) -> LatentCodes:
        with self._guard:
            photo = self._photos.get(photo_id)
            if photo is None:
                raise BadRequest(
                    f"photo {photo_id!r} is not on the server (it restarted, or dropped it): upload again", 404
                )
            self._photos.move_to_end(photo_id)
            return photo.codes

    def photo(self, photo_id: str) -> Photo:
        self.codes(photo_id)
        return self._photos[photo_id]

    def _add(self, name: str, codes: LatentCodes, target_png: bytes, method: str, metrics: Dict[str, float]) -> Photo:
        photo = Photo(secrets.token_hex(8), name, codes.replace(source=f"photo {name}"), target_png, method, metrics)
        with self._guard:
            self._photos[photo.id] = photo
            while len(self._photos) > MAX_PHOTOS:
                self._photos.popitem(last=False)
        return photo

    # ------------------------------------------------------------------------------------------ reading
    def read_target(self, data: bytes, name: str = "photo") -> torch.Tensor:
        """uint8 [1, C, R, R] of an uploaded image file, read by `load_targets` (header checked before decoding;
        it must have the generator's size and colour: the page crops and resizes it first)."""
        from ..inversion.files import load_targets

        G = self.explorer.G
        with tempfile.TemporaryDirectory(prefix="latentlab-explore-") as tmp:
            path = os.path.join(tmp, _stem(name))
            with open(path, "wb") as f:
                f.write(data)
            try:
                targets, _ = load_targets([path], G.img_resolution, G.img_channels)
            except LatentlabError as e:
                raise BadRequest(str(e).replace(path, "the upload")) from None
        return targets

    def _distance_fn(self) -> Any:
        if self._distance is None:
            from ..inversion.distances import distance_by_name

            self._distance = distance_by_name("auto", self.explorer.G, self.explorer.device)
        return self._distance

    # ------------------------------------------------------------------------------------------ projection
    def start_projection(self, data: bytes, name: str, steps: int, space: str) -> Job:
        """Start projecting an uploaded image (`steps` projector steps into `space`, 'w' or 'w+'): a Job to poll."""
        from .engine import png_bytes

        if not 1 <= steps <= self.max_steps:
            raise BadRequest(f"steps must be in 1..{self.max_steps}, got {steps}")
        if space not in ("w", "w+"):
            raise BadRequest(f"space must be w or w+ for a projection, got {space!r}")
        target = self.read_target(data, name)
        stem = _stem(name)
        job = Job(secrets.token_hex(8), stem, steps, space)
        with self._guard:
            self._jobs[job.id] = job
            while len(self._jobs) > MAX_JOBS:
                finished = next((k for k, j in self._jobs.items() if j.done), None)
                self._jobs.pop(finished if finished is not None else next(iter(self._jobs)))
        target_png = png_bytes(target[0].permute(1, 2, 0).numpy())
        thread = threading.Thread(target=self._project, args=(job, target, target_png), daemon=True)
        thread.start()
        return job

    def _project(self, job: Job, target: torch.Tensor, target_png: bytes) -> None:
        from ..inversion.projector import project
        from ..utils.images import to_uint8
        from .engine import png_bytes

        ex = self.explorer

        def preview(step: int, images: torch.Tensor) -> None:
            job.preview = png_bytes(to_uint8(images)[0])

        try:
            with ex.lock.hold():
                result = project(
                    ex.G,
                    target,
                    job.total,
                    space=job.space,
                    distance=self._distance_fn(),
                    seed=0,
                    names=[job.name],
                    snapshot_every=PREVIEW_EVERY,
                    on_snapshot=preview,
                    device=ex.device,
                    progress=_Steps(job, ex),
                )
            metrics = {k: float(v[0]) for k, v in result.metrics.items()}
            job.photo = self._add(job.name, result.codes, target_png, "project", metrics).id
        except Cancelled:
            job.error = "cancelled"
        except LatentlabError as e:
            job.error = str(e)
        except Exception as e:  # noqa: BLE001 - a job thread must report, never die silently
            job.error = f"projection failed: {type(e).__name__}: {e}"
        finally:
            job.done = True

    def job(self, job_id: str) -> Job:
        with self._guard:
            job = self._jobs.get(job_id)
        if job is None:
            raise BadRequest(f"no projection job {job_id!r} on the server", 404)
        return job

    def cancel_all(self) -> None:
        with self._guard:
            for job in self._jobs.values():
                job.cancelled = True

    # ------------------------------------------------------------------------------------------ encoder
    def encode(self, data: bytes, name: str) -> Photo:
        """Invert an uploaded image with the encoder (one forward pass): the stored Photo (S codes)."""
        from ..inversion.encoder import encode_images
        from .engine import png_bytes

        ex = self.explorer
        if ex.encoder is None:
            raise BadRequest("no encoder: start the explorer with --encoder FILE to encode photos", 409)
        target = self.read_target(data, name)
        with ex.lock.hold():
            result = encode_images(ex.G, ex.encoder, target, [_stem(name)], batch_size=1, distance=self._distance_fn())
        metrics = {k: float(v[0]) for k, v in result.metrics.items()}
        codes = result.codes.replace(noise=result.noise)
        return self._add(_stem(name), codes, png_bytes(target[0].permute(1, 2, 0).numpy()), "encode", metrics)


def _stem(name: str) -> str:
    stem = "".join(ch for ch in os.path.splitext(os.path.basename(name or ""))[0] if ch.isalnum() or ch in "-_")
    return stem[:40] or "photo"
