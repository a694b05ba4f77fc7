"""Rendering a page's state with latentlab's own engines: every image is one `latentlab.edits.pipeline.run_edit` call,
the call `latentlab edit` makes, so each frame is exactly the image of a `latentlab edit` command line.

A state may move several sliders, S channels and mix in a second seed's layers; `latentlab edit` moves along one
direction. So a frame is planned as (start codes, one last edit): the last moved slider (or channel) is the edit
that `run_edit` renders, and everything before it (truncation, mixing, the other sliders, each applied with
`latentlab.edits.linear.edit`) makes the start codes. When the start is a plain seed the command is
`latentlab edit --seeds N ...`; otherwise the start codes are exported as a latents file (`start.npz`, the format of
`LatentCodes.save`) and the command reads them with `--latents start.npz`. Either way the command writes the very
PNG the page shows (`tests/test_explore.py` checks the bytes).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import tempfile
import threading
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from ..errors import ConfigError, LatentlabError
from .directions import Directions, Slider, find_sliders
from .state import LEVELS, BadRequest, ModelFacts, State

if TYPE_CHECKING:
    import torch

    from ..latents.codes import LatentCodes
    from ..latents.directions import Direction
    from ..models.aliases import AnyGenerator

EXPORT_DIR = "explore-export"  # the folder the exported command writes into (`--out`)


class Superseded(Exception):
    """A newer request of the same tab arrived while this one waited for the model: it is dropped."""


class ModelLock:
    """One model, one user at a time. A long job (a projection) calls `yield_to_waiting` between its steps, so that
    renders waiting for the model go first and the page stays live while a photo is projected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = threading.Lock()
        self._waiting = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._count:
            self._waiting += 1
        self._lock.acquire()
        with self._count:
            self._waiting -= 1
        try:
            yield
        finally:
            self._lock.release()

    def yield_to_waiting(self, max_wait: float = 10.0) -> None:
        """Called by the holder: let waiting users run until none waits (at most `max_wait` seconds)."""
        if not self._waiting:
            return
        self._lock.release()
        try:
            deadline = time.monotonic() + max_wait
            while self._waiting and time.monotonic() < deadline:
                time.sleep(0.002)
        finally:
            self._lock.acquire()


@dataclass
class Plan:
    """One frame: `run_edit(G, start, direction, [alpha], space, layers, channels, psi, cutoff, noise)`."""

    start: Union[List[int], LatentCodes]
    direction: Optional[Direction]
    alpha: float
    space: str
    layers: Optional[str]
    channels: Optional[str]
    psi: float
    cutoff: Optional[int]
    noise: str
    args: List[str] = field(default_factory=list)  # the `latentlab edit` command line

    @property
    def needs_start_file(self) -> bool:
        return not isinstance(self.start, list)


@dataclass
class Frame:
    png: bytes
    image: np.ndarray  # uint8 [H, W, C]
    scores: Optional[Dict[str, float]]
    plan: Plan
    edited: LatentCodes
    ms: Dict[str, float]

    @property
    def command(self) -> str:
        return " ".join(shlex.quote(a) for a in self.plan.args)


def png_bytes(image: np.ndarray) -> bytes:
    """The PNG of a uint8 [H, W, C] image, encoded as `latentlab.utils.images.save_png` encodes it."""
    from ..utils.images import to_pil

    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG")
    return buf.getvalue()


def _num(x: float) -> str:
    """A float for a command line that reads back to the same float (shortest repr)."""
    return repr(float(x))


class Explorer:
    """The explorer's model side: G, its sliders and classifier; `render(state)` and `export(state)`.

    model: the --model spec G came from (None: the embedded model), used for the registered boundaries and the
    command lines. classifier: an `AttributeClassifier` (None: no scores). encoder: a GH-Feat encoder (enables
    'encode' for photos). Thread-safe: every use of G goes through `self.lock`.
    """

    def __init__(
        self,
        G: AnyGenerator,
        model: Optional[str] = None,
        boundaries_dir: Optional[str] = None,
        boundary_files: Sequence[str] = (),
        z_boundaries_dir: Optional[str] = None,
        classifier: Any = None,
        classifier_spec: Optional[str] = None,
        encoder: Any = None,
        encoder_path: Optional[str] = None,
        project_steps: int = 100,
        device: Union[str, torch.device] = "cpu",
    ):
        from ..latents.layers import level_layers

        self.G, self.model, self.device = G, model, device
        self.boundaries_dir = boundaries_dir
        self.sliders: Dict[str, Slider] = find_sliders(G, model, boundaries_dir, boundary_files, z_boundaries_dir)
        self.directions = Directions(G, model, self.sliders)
        self.classifier, self.classifier_spec = classifier, classifier_spec
        self.encoder, self.encoder_path = encoder, encoder_path
        self.project_steps = int(project_steps)
        self.lock = ModelLock()
        self.levels = {lv: level_layers(G, lv) for lv in LEVELS}
        self.facts = ModelFacts(
            attributes={n: s.spaces for n, s in self.sliders.items()},
            style_dims=dict(G.synthesis.style_dims),
            num_ws=int(G.num_ws),
        )
        from .photos import Photos

        self.photos = Photos(self)

    # ------------------------------------------------------------------------------------------ facts
    def info(self) -> Dict[str, Any]:
        """What the page needs to build its controls (GET /api/info)."""
        from .. import defaults
        from ..models.identity import model_hash
        from ..utils.limits import MAX_EXPLORE_UPLOAD_BYTES
        from . import state as st

        G = self.G
        clf = self.classifier
        return dict(
            model=self.model or defaults.NAME,
            model_id=model_hash(G),
            resolution=int(G.img_resolution),
            channels=int(G.img_channels),
            z_dim=int(G.z_dim),
            w_dim=int(G.w_dim),
            num_ws=int(G.num_ws),
            conditional=bool(G.c_dim),
            levels=self.levels,
            style_layers=[dict(name=k, channels=int(v)) for k, v in G.synthesis.style_dims.items()],
            attributes=[dict(name=n, spaces=s.spaces) for n, s in self.sliders.items()],
            spaces=list(st.SPACES),
            noise_modes=list(st.NOISE_MODES),
            classifier=None
            if clf is None
            else dict(
                spec=defaults.NAME if self.classifier_spec == defaults.classifier_spec() else self.classifier_spec,
                names=list(clf.names),
                kinds=getattr(clf, "score_kinds", None),
            ),
            inversion=dict(
                project=True,
                encode=self.encoder is not None,
                encoder=self.encoder_path,
                project_steps=self.project_steps,
                max_project_steps=self.photos.max_steps,
                project_spaces=["w", "w+"],
                max_upload_bytes=MAX_EXPLORE_UPLOAD_BYTES,
            ),
            limits=dict(psi=list(st.PSI_RANGE), alpha=st.MAX_ALPHA, channel_value=st.MAX_CHANNEL_VALUE),
        )

    def parse(self, doc: Any) -> State:
        from .state import parse_state

        return parse_state(doc, self.facts)

    # ------------------------------------------------------------------------------------------ planning
    def plan(self, s: State) -> Plan:
        """The frame of state `s` as start codes and one last edit (see the module docstring). BadRequest or
        ConfigError (one line) for settings the engines refuse."""
        import torch

        from ..edits.linear import edit
        from ..edits.mixing import style_mix
        from ..edits.pipeline import check_given_codes, start_codes
        from ..latents.layers import parse_layers

        G = self.G
        photo = self.photos.codes(s.photo) if s.photo is not None else None
        attr_space = "s" if photo is not None and photo.space == "s" else s.space
        if photo is not None and photo.space == "s" and s.mix is not None:
            raise BadRequest("mix: this photo's codes are styles (S), which cannot take ws layers from a seed")
        moved, channels = s.moved, s.moved_channels
        for c in s.conditions:
            if moved and _kind(attr_space) not in [_kind(x) for x in self.sliders[c].spaces]:
                raise BadRequest(f"conditions: {c!r} has no {_kind(attr_space).upper()} direction")
        layers = s.layers if s.space == "w+" and s.layers != "all" else None
        ops: List[tuple] = [("attr", n, a) for n, a in moved] + [("chan", c.spec, c.value) for c in channels]
        if not ops:  # the unedited image: an edit of strength 0 (exactly the codes' own image)
            first = next((n for n, sl in self.sliders.items() if s.space in sl.spaces), None)
            if first is not None and attr_space != "s":
                ops = [("attr", first, 0.0)]
            else:
                layer = next(iter(G.synthesis.style_dims))
                ops = [("chan", f"{layer}:0", 0.0)]
        last, before = ops[-1], ops[:-1]
        edit_space = "s" if last[0] == "chan" else attr_space

        start: Union[List[int], LatentCodes]
        if not before and s.mix is None and photo is None:
            start = [s.seed]
        else:
            with torch.no_grad():
                if photo is not None:
                    space0 = "s" if photo.space == "s" else s.space
                    check_given_codes(photo, space0)
                    codes = photo.replace(data=photo.data.to(self.device)).to(space0, G)
                else:
                    codes = start_codes(G, [s.seed], s.space, s.psi, s.cutoff, device=self.device)
                if s.mix is not None:
                    src = start_codes(G, [s.mix.seed], "w+", s.psi, s.cutoff, device=self.device)
                    codes = codes.to("w+", G)
                    codes = codes.replace(data=style_mix(codes.data, src.data, parse_layers(s.mix.layers, G)))
                for kind, name, value in before:
                    if kind == "attr":
                        d = self.directions.get(name, s.conditions, attr_space)
                        codes = edit(codes, d, value, G, layers=layers)
                    else:
                        if codes.space != "s":
                            psi, cutoff = (s.psi, s.cutoff) if codes.space == "z" else (1.0, None)
                            codes = codes.to("s", G, truncation_psi=psi, truncation_cutoff=cutoff)
                        codes = edit(codes, None, value, G, channels=name)
                if edit_space == "s" and codes.space != "s":
                    psi, cutoff = (s.psi, s.cutoff) if codes.space == "z" else (1.0, None)
                    codes = codes.to("s", G, truncation_psi=psi, truncation_cutoff=cutoff)
            start = codes
        given = not isinstance(start, list)
        psi, cutoff = (s.psi, s.cutoff) if not given or start.space == "z" else (1.0, None)  # type: ignore[union-attr]
        if last[0] == "attr":
            direction = self.directions.get(last[1], s.conditions, edit_space)
            plan = Plan(
                start,
                direction,
                last[2],
                edit_space,
                layers if edit_space == "w+" else None,
                None,
                psi,
                cutoff,
                s.noise,
            )
        else:
            plan = Plan(start, None, last[2], "s", None, last[1], psi, cutoff, s.noise)
        plan.args = self._command(s, plan, last)
        return plan

    def _command(self, s: State, plan: Plan, last: tuple) -> List[str]:
        """`latentlab edit ...` that writes this frame (as NAME_alphaA.png) into EXPORT_DIR."""
        args = ["latentlab", "edit"]
        if self.model is not None:
            args += ["--model", self.model]
        args += ["--latents", "start.npz"] if plan.needs_start_file else ["--seeds", str(s.seed)]
        if last[0] == "attr":
            name = last[1]
            src = self.directions.source(name, plan.space)
            conds = self.directions.conditions_for(name, s.conditions)
            folder = self.directions.folder(name, plan.space, conds)
            args += ["--attr", name] if src.path is None else ["--boundary", src.path]
            if folder is not None:
                args += ["--boundaries", os.path.abspath(folder)]
            for c in conds:
                args += ["--condition", self.directions.source(c, plan.space).condition()]
        args += ["--space", plan.space]
        if plan.layers is not None:
            args += ["--layers", plan.layers]
        if plan.channels is not None:
            args += ["--channels", plan.channels]
        args += ["--alpha", _num(plan.alpha)]
        if plan.psi != 1:
            args += ["--trunc", _num(plan.psi)]
        if plan.cutoff is not None:
            args += ["--trunc-cutoff", str(plan.cutoff)]
        if plan.noise != "const":
            args += ["--noise-mode", plan.noise]
        return args + ["--no-original", "--out", EXPORT_DIR]

    # ------------------------------------------------------------------------------------------ rendering
    def render(self, s: State, wanted: Optional[Callable[[], bool]] = None) -> Frame:
        """The frame of state `s`: its PNG, the classifier's scores and the plan. `wanted()` is asked once the
        model is ours: False (a newer request of the same tab is waiting) raises Superseded before any work."""
        with self.lock.hold():
            if wanted is not None and not wanted():
                raise Superseded()
            return self._render(s)

    def _render(self, s: State) -> Frame:
        from ..edits.pipeline import run_edit

        t0 = time.perf_counter()
        plan = self.plan(s)
        t1 = time.perf_counter()
        _, edited, images = run_edit(
            self.G,
            plan.start,
            plan.direction,
            [plan.alpha],
            plan.space,
            plan.layers,
            plan.channels,
            plan.psi,
            plan.cutoff,
            plan.noise,
            None,
            1,
            self.device,
            original=False,
        )
        t2 = time.perf_counter()
        png = png_bytes(images[0])
        t3 = time.perf_counter()
        scores = self.scores(images)
        t4 = time.perf_counter()
        ms = dict(plan=t1 - t0, render=t2 - t1, png=t3 - t2, scores=t4 - t3, total=t4 - t0)
        return Frame(png, images[0], scores, plan, edited, {k: round(v * 1000, 2) for k, v in ms.items()})

    def scores(self, images: np.ndarray) -> Optional[Dict[str, float]]:
        """The classifier's scores of uint8 images [N, H, W, C] (the first image's), read as an image file is read:
        x / 127.5 - 1. None without a classifier."""
        if self.classifier is None:
            return None
        import torch

        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1)
        with torch.no_grad():
            out = self.classifier(x.to(self.device))
        return {n: float(v) for n, v in zip(self.classifier.names, out[0].float().cpu().tolist())}

    # ------------------------------------------------------------------------------------------ export
    def export(self, s: State, what: str = "zip") -> tuple:
        """(bytes, media type, file name) of an export: 'png' (the frame), 'latents' (its codes as a latents file,
        `LatentCodes.save`'s format, which every command reads with --latents), 'command' (the command line) or
        'zip' (all of them, plus start.npz when the command reads one, and the state as explore.json)."""
        if what not in ("zip", "png", "latents", "command"):
            raise BadRequest(f"export: unknown item {what!r}; use zip, png, latents or command")
        frame = self.render(s)
        stem = frame.edited.names()[0]
        command = frame.command + "\n"
        if what == "png":
            return frame.png, "image/png", f"{stem}.png"
        if what == "command":
            return command.encode(), "text/plain; charset=utf-8", "command.txt"
        latents = _codes_bytes(frame.edited)
        if what == "latents":
            return latents, "application/octet-stream", "latents.npz"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("image.png", frame.png)
            z.writestr("latents.npz", latents)
            if frame.plan.needs_start_file:
                z.writestr("start.npz", _codes_bytes(frame.plan.start))  # type: ignore[arg-type]
            z.writestr("command.txt", command)
            record = dict(state=_state_record(s), scores=frame.scores, image=f"{EXPORT_DIR}/{_output_name(frame)}")
            z.writestr("explore.json", json.dumps(record, indent=1))
        return buf.getvalue(), "application/zip", f"explore-{stem}.zip"


def _kind(space: str) -> str:
    return "z" if space == "z" else "w"


def _output_name(frame: Frame) -> str:
    """The file `latentlab edit` writes this frame to (its naming: NAME_alphaA.png)."""
    return f"{frame.edited.names()[0]}_alpha{frame.plan.alpha:+.2f}.png"


def _codes_bytes(codes: LatentCodes) -> bytes:
    with tempfile.TemporaryDirectory(prefix="latentlab-explore-") as tmp:
        path = os.path.join(tmp, "codes.npz")
        codes.save(path)
        with open(path, "rb") as f:
            return f.read()


def _state_record(s: State) -> Dict[str, Any]:
    out: Dict[str, Any] = dict(
        seed=s.seed,
        photo=s.photo,
        space=s.space,
        psi=s.psi,
        cutoff=s.cutoff,
        noise=s.noise,
        attrs=dict(s.attrs),
        conditions=list(s.conditions),
        layers=s.layers,
        channels=[dict(layer=c.layer, channel=c.channel, value=c.value) for c in s.channels],
        mix=None if s.mix is None else dict(seed=s.mix.seed, layers=s.mix.layers),
    )
    return out


def open_explorer(
    G: AnyGenerator,
    model: Optional[str] = None,
    classifier_spec: Optional[str] = None,
    trust_code: bool = False,
    encoder_path: Optional[str] = None,
    device: Union[str, torch.device] = "cpu",
    on_missing_classifier: Optional[Callable[[str], None]] = None,
    **kw: Any,
) -> Explorer:
    """An Explorer for G with the classifier of `classifier_spec` (None: no scores) and the encoder file
    `encoder_path` (None: 'encode' stays off), both loaded on `device`; `kw` as `Explorer`.
    on_missing_classifier(message): called instead of raising when the classifier cannot be loaded (e.g. a default
    classifier not downloaded yet, offline); the explorer then shows no scores."""
    if G.c_dim:
        raise ConfigError(
            f"this generator is conditional ({G.c_dim} labels); the explorer renders unconditional models only "
            "(use `latentlab edit --class N`)"
        )
    classifier = encoder = None
    if classifier_spec is not None:
        from ..attributes import load_classifier

        try:
            classifier = load_classifier(classifier_spec, trust_code=trust_code).to(device).eval()
        except (LatentlabError, OSError) as e:
            if on_missing_classifier is None:
                raise
            on_missing_classifier(f"no attribute scores ({classifier_spec}: {e})")
            classifier_spec = None
    if encoder_path is not None:
        from ..inversion.encoder import check_encoder_for, load_encoder

        encoder = load_encoder(encoder_path, device=device)
        check_encoder_for(encoder, G, where=f"--encoder {encoder_path}")
    explorer = Explorer(
        G,
        model,
        classifier=classifier,
        classifier_spec=classifier_spec,
        encoder=encoder,
        encoder_path=encoder_path,
        device=device,
        **kw,
    )
    return explorer


__all__ = [
    "EXPORT_DIR",
    "ConfigError",
    "Explorer",
    "Frame",
    "ModelLock",
    "Plan",
    "Superseded",
    "open_explorer",
    "png_bytes",
]
