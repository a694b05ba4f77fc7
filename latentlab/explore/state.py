"""The settings a page sends with every request, read and checked: one `State` per request, no server-side session.

The page keeps its whole state (seed, space, sliders, ...) and sends it as JSON with each render or export, so
several tabs never mix: the server holds only the model, and the photos a tab has uploaded (by a random id).

    {"seed": 3, "space": "w+", "psi": 0.7, "cutoff": null, "noise": "const",
     "attrs": {"smile": 1.5, "age": 0}, "conditions": ["age"], "layers": "coarse",
     "channels": [{"layer": "b64.conv0", "channel": 12, "value": 5}],
     "mix": {"seed": 7, "layers": "fine"}, "photo": null, "rid": 41, "tab": "k2x9"}

Every field is optional (the defaults are the first image a page shows). A field of the wrong type, out of range,
an unknown attribute, layer or key is a `BadRequest`: one line naming the field, answered with HTTP 400.
The checks need only the model's facts (`ModelFacts`), not the model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import ConfigError
from ..latents.seeds import MAX_SEED

SPACES = ("z", "w", "w+")  # the latent space of the sliders; S is reached by channel edits
NOISE_MODES = ("const", "random", "none")
LEVELS = ("coarse", "middle", "fine")
PSI_RANGE = (-1.0, 2.0)  # truncation psi the page may ask for (1 = none; the slider spans 0..1.5)
MAX_ALPHA = 20.0  # |alpha| of an attribute slider, in units of the unit direction (the page's slider spans +-5)
MAX_CHANNEL_VALUE = 200.0  # |value| of one S-channel edit (styles are O(1..10); the CLI's examples use +-10)
MAX_CHANNEL_EDITS = 64  # S-channel edits of one state
MAX_TEXT = 200  # characters of any text field (names, layer specs, ids)
KEYS = ("seed", "photo", "space", "psi", "cutoff", "noise", "attrs", "conditions", "layers", "channels", "mix")
SERVER_KEYS = ("rid", "tab", "ref")  # request bookkeeping, read by the server (ref: also score the unedited image)


class BadRequest(ConfigError):
    """A request the explorer refuses: one line naming the field (HTTP 400, or `status`)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ModelFacts:
    """What the checks need to know of the model: its attributes per latent space, style layers and ws count."""

    attributes: Mapping[str, Sequence[str]]  # name -> spaces it has a direction in ('z', 'w', 'w+')
    style_dims: Mapping[str, int]  # S layer name -> channels
    num_ws: int


@dataclass(frozen=True)
class ChannelEdit:
    layer: str
    channel: int
    value: float

    @property
    def spec(self) -> str:
        """The `--channels` text of this channel (`b64.conv0:12`)."""
        return f"{self.layer}:{self.channel}"


@dataclass(frozen=True)
class Mix:
    seed: int
    layers: str  # a layer spec: levels ('coarse', 'middle,fine') or ws indices ('0-3')


@dataclass(frozen=True)
class State:
    seed: int = 0
    photo: Optional[str] = None
    space: str = "w"
    psi: float = 1.0
    cutoff: Optional[int] = None
    noise: str = "const"
    attrs: Tuple[Tuple[str, float], ...] = ()  # (name, alpha) in the order given; zeros kept
    conditions: Tuple[str, ...] = ()
    layers: str = "all"
    channels: Tuple[ChannelEdit, ...] = ()
    mix: Optional[Mix] = None
    rid: Optional[int] = field(default=None, compare=False)
    tab: Optional[str] = field(default=None, compare=False)
    ref: bool = field(default=False, compare=False)

    @property
    def moved(self) -> List[Tuple[str, float]]:
        """The attribute sliders away from 0, in order."""
        return [(n, a) for n, a in self.attrs if a != 0]

    @property
    def moved_channels(self) -> List[ChannelEdit]:
        return [c for c in self.channels if c.value != 0]

    def unedited(self) -> State:
        """The same image without its edits: no slider, channel or mixing (the base the scores compare with)."""
        return replace(self, attrs=(), channels=(), mix=None, ref=False)


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name} must be an integer, got {_show(value)}")
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be in {lo}..{hi}, got {value}")
    return value


def _number(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{name} must be a number, got {_show(value)}")
    value = float(value)
    if not math.isfinite(value) or not lo <= value <= hi:
        raise BadRequest(f"{name} must be a finite number in [{lo:g}, {hi:g}], got {value!r}")
    return value


def _text(name: str, value: Any, allowed: Optional[Sequence[str]] = None) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string, got {_show(value)}")
    if len(value) > MAX_TEXT:
        raise BadRequest(f"{name}: {len(value)} characters, at most {MAX_TEXT}")
    if allowed is not None and value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _layer_spec(name: str, value: Any, num_ws: int) -> str:
    """A W+ layer spec (`all`, levels, `0-3`, `0,2`), its form and indices checked against num_ws."""
    from ..latents.layers import check_layer_spec

    text = _text(name, value).strip().lower() or "all"
    try:
        check_layer_spec(text)
    except ConfigError as e:
        raise BadRequest(f"{name}: {e}") from None
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", part)
        if m and int(m.group(2) or m.group(1)) >= num_ws:
            raise BadRequest(f"{name}: layer {int(m.group(2) or m.group(1))} does not exist (ws layers 0-{num_ws - 1})")
    return text


def parse_state(doc: Any, facts: ModelFacts) -> State:
    """The `State` of a decoded JSON request body; BadRequest (one line naming the field) for anything wrong."""
    if not isinstance(doc, dict):
        raise BadRequest(f"the settings must be a JSON object, got {type(doc).__name__}")
    unknown = sorted(set(doc) - set(KEYS) - set(SERVER_KEYS))
    if unknown:
        raise BadRequest(f"unknown setting {unknown[0]!r}; the settings are {', '.join(KEYS)}")
    kw: Dict[str, Any] = {}
    if "seed" in doc:
        kw["seed"] = _int("seed", doc["seed"], 0, MAX_SEED)
    if doc.get("photo") is not None:
        kw["photo"] = _text("photo", doc["photo"])
    if "space" in doc:
        kw["space"] = _text("space", doc["space"], SPACES)
    if "psi" in doc:
        kw["psi"] = _number("psi", doc["psi"], *PSI_RANGE)
    if doc.get("cutoff") is not None:
        kw["cutoff"] = _int("cutoff", doc["cutoff"], 0, facts.num_ws)
    if "noise" in doc:
        kw["noise"] = _text("noise", doc["noise"], NOISE_MODES)
    space = kw.get("space", "w")
    if "attrs" in doc:
        attrs = doc["attrs"]
        if not isinstance(attrs, dict):
            raise BadRequest(f"attrs must be an object of attribute: alpha, got {_show(attrs)}")
        out = []
        for name, alpha in attrs.items():
            if name not in facts.attributes:
                known = ", ".join(facts.attributes) or "none"
                raise BadRequest(f"unknown attribute {_show(name)}; this model has: {known}")
            value = _number(f"attrs.{name}", alpha, -MAX_ALPHA, MAX_ALPHA)
            if value != 0 and space not in facts.attributes[name]:
                raise BadRequest(
                    f"attrs.{name}: no {space.upper()} direction for this attribute "
                    f"(it has {', '.join(s.upper() for s in facts.attributes[name]) or 'none'})"
                )
            out.append((name, value))
        kw["attrs"] = tuple(out)
    if "conditions" in doc:
        conds = doc["conditions"]
        if not isinstance(conds, list):
            raise BadRequest(f"conditions must be a list of attribute names, got {_show(conds)}")
        seen: List[str] = []
        for c in conds:
            if not isinstance(c, str) or c not in facts.attributes:
                raise BadRequest(f"conditions: unknown attribute {_show(c)}")
            if c not in seen:
                seen.append(c)
        kw["conditions"] = tuple(seen)
    if "layers" in doc:
        kw["layers"] = _layer_spec("layers", doc["layers"], facts.num_ws)
        if kw["layers"] != "all" and space != "w+":
            raise BadRequest(f"layers {kw['layers']!r}: layer ranges need the W+ space")
    if "channels" in doc:
        kw["channels"] = _channels(doc["channels"], facts)
    if doc.get("mix") is not None:
        kw["mix"] = _mix(doc["mix"], facts)
        if space != "w+":
            raise BadRequest("mix: style mixing copies ws layers, so it needs the W+ space")
    if "rid" in doc and doc["rid"] is not None:
        kw["rid"] = _int("rid", doc["rid"], 0, 2**53)
    if "tab" in doc and doc["tab"] is not None:
        kw["tab"] = _text("tab", doc["tab"])
    if doc.get("ref") is not None:
        if not isinstance(doc["ref"], bool):
            raise BadRequest(f"ref must be true or false, got {_show(doc['ref'])}")
        kw["ref"] = doc["ref"]
    state = State(**kw)
    if state.photo is not None and (state.psi != 1 or state.cutoff is not None):
        raise BadRequest("psi / cutoff: truncation applies to seeds; a photo's codes are used as they are")
    return state


def _channels(value: Any, facts: ModelFacts) -> Tuple[ChannelEdit, ...]:
    if not isinstance(value, list):
        raise BadRequest(f"channels must be a list of {{layer, channel, value}}, got {_show(value)}")
    if len(value) > MAX_CHANNEL_EDITS:
        raise BadRequest(f"channels: {len(value)} edits, at most {MAX_CHANNEL_EDITS}")
    out: List[ChannelEdit] = []
    for k, item in enumerate(value):
        where = f"channels[{k}]"
        if not isinstance(item, dict) or set(item) - {"layer", "channel", "value"}:
            raise BadRequest(f"{where} must be an object with layer, channel and value")
        layer = _text(f"{where}.layer", item.get("layer"))
        if layer not in facts.style_dims:
            raise BadRequest(f"{where}.layer: unknown style layer {layer!r}; layers are {', '.join(facts.style_dims)}")
        channel = _int(f"{where}.channel", item.get("channel"), 0, facts.style_dims[layer] - 1)
        edit = ChannelEdit(
            layer, channel, _number(f"{where}.value", item.get("value"), -MAX_CHANNEL_VALUE, MAX_CHANNEL_VALUE)
        )
        if any(c.layer == edit.layer and c.channel == edit.channel for c in out):
            raise BadRequest(f"{where}: channel {edit.spec} is edited twice")
        out.append(edit)
    return tuple(out)


def _mix(value: Any, facts: ModelFacts) -> Mix:
    if not isinstance(value, dict) or set(value) - {"seed", "layers"}:
        raise BadRequest("mix must be an object with seed and layers (or null)")
    return Mix(
        _int("mix.seed", value.get("seed"), 0, MAX_SEED),
        _layer_spec("mix.layers", value.get("layers", "coarse"), facts.num_ws),
    )
