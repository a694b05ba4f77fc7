"""Checks of numeric arguments, one ValueError line naming the argument: the one place for them.

    from latentlab.utils.validate import check_int, check_number
    n = check_int("n_samples", n_samples, lo=1)
    psi = check_number("psi", psi)                       # any finite real
    p = check_number("percentile", p, 0, 100, lo_open=True)

bool is refused where a number is expected (True is an int to Python, never a count to a user);
NumPy scalars and one-element tensors are accepted.
"""

import math

import numpy as np

from ..errors import ConfigError


def _scalar(value):
    if hasattr(value, "numel") and hasattr(value, "item") and value.numel() == 1:  # a one-element torch tensor
        return value.item()
    return value


def check_number(name, value, lo=-math.inf, hi=math.inf, lo_open=False):
    """A finite real in [lo, hi] ((lo, hi] with lo_open), returned as float."""
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < lo or value > hi or (lo_open and value == lo):
        bounds = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise ConfigError(f"{name} must be a finite number in {bounds}, got {value!r}")
    return value


def check_int(name, value, lo=0, hi=None):
    """An integer >= lo (and <= hi when given), returned as int."""
    value = _scalar(value)
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not integer or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ConfigError(f"{name} must be an integer {rng}, got {value!r}")
    return int(value)


def check_saved_state(state, fmt, version, config, source, what):
    """A trainer's saved state (dict with 'format', 'version' and 'config' as JSON) fits this trainer: its format
    is `fmt` (else "`source` is not a `what`"), its version `version`, and its config equals `config` key by
    key (else one line listing every differing setting, saved and now). The saved config is parsed with
    `safe_json.loads_json` (size and depth checked, an object required): ConfigError naming `source`."""
    import json

    from .safe_json import Anything, Map, loads_json

    if not isinstance(state, dict) or state.get("format") != fmt:
        raise ConfigError(f"{source} is not a {what}")
    if state.get("version") != version:
        raise ConfigError(
            f"{source} has state version {str(state.get('version'))[:40]}, this latentlab reads {version}"
        )
    if not isinstance(state.get("config"), (str, bytes)):
        raise ConfigError(f"{source}: no 'config' record (a damaged {what})")
    saved = loads_json(state["config"], f"{source}: 'config'", Map(Anything(), max_items=1000))
    mine = json.loads(json.dumps(config, sort_keys=True))
    diff = [
        f"{key} {saved.get(key)!r} (now {mine.get(key)!r})"
        for key in sorted(set(saved) | set(mine))
        if saved.get(key) != mine.get(key)
    ]
    if diff:
        raise ConfigError(
            f"{source} was trained with different settings: {'; '.join(diff)}. "
            "Resume with the same settings or start in a new folder"
        )
