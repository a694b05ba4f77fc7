"""Reading JSON from users' files with bounded cost, and checking its shape: the one JSON reader of latentlab.

Every JSON latentlab reads from a file a user may have downloaded (a boundary folder's index.json, a sample
manifest, a dataset.json, the metadata of a clusters file, a classifier or an encoder) goes through here:

    doc = load_json(path, INDEX_SCHEMA)            # ConfigError naming the file (and key) on any problem
    meta = loads_json(text, "clf.safetensors: metadata 'arch'", ARCH, error=CheckpointError)

Before parsing: the size is capped (`MAX_JSON_BYTES`, or the caller's `max_bytes`) and the nesting depth is
measured on the text itself (Python's json module parses by recursion, so `[[[[...` a million deep would be a
RecursionError or worse); a document nested deeper than `MAX_JSON_DEPTH` is refused without being parsed.
After parsing, a small schema (`Obj`, `Map`, `List`, `Num`, `Str`, `Bool`, `AnyOf`, `Anything`) checks types,
required keys and numeric ranges, and the error names the file and the key path (`attributes.smile.file`).
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Type, Union

import numpy as np

from ..errors import ConfigError, LatentlabError
from .limits import MAX_JSON_BYTES, MAX_JSON_DEPTH

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def json_depth(text: Union[str, bytes]) -> int:
    """The deepest nesting of [ and { in a JSON text, brackets inside strings not counted; linear, no recursion.

    An unterminated string counts as text to its end (the parser refuses it later)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    raw = _STRING.sub(b"", raw)  # complete strings removed
    q = raw.find(b'"')  # an unterminated string: nothing after it is structure
    if q >= 0:
        raw = raw[:q]
    codes = np.frombuffer(raw, dtype=np.uint8)
    step = np.zeros(codes.shape, dtype=np.int64)
    step[(codes == ord("[")) | (codes == ord("{"))] = 1
    step[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(np.cumsum(step).max(initial=0))


def loads_json(
    text: Union[str, bytes],
    source: str,
    schema: Any = None,
    *,
    error: Type[LatentlabError] = ConfigError,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse a JSON text from `source` (a file name, or e.g. "clf.safetensors: metadata 'arch'") and check it
    against `schema` (None: no check). Raises `error` (ConfigError, or CheckpointError for a checkpoint's
    metadata) naming `source`: too large, nested too deep, not JSON, or not of the schema's shape."""
    size = len(text)
    if size > max_bytes:
        raise error(f"{source}: {size} bytes of JSON, more than the {max_bytes} this file may hold")
    depth = json_depth(text)
    if depth > max_depth:
        raise error(f"{source}: JSON nested {depth} levels deep (at most {max_depth} allowed)")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, too many digits
        raise error(f"{source}: not valid JSON ({_short(str(e))})") from None
    if schema is not None:
        check(value, schema, source, error=error)
    return value


def load_json(
    path: Union[str, os.PathLike],
    schema: Any = None,
    *,
    error: Type[LatentlabError] = ConfigError,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Read and check the JSON file `path` (see `loads_json`); the size is checked before reading.
    OSError (missing file, permission) propagates, as for any file."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size > max_bytes:
        raise error(f"{path}: {size} bytes of JSON, more than the {max_bytes} this file may hold")
    with open(path, "rb") as f:
        raw = f.read(max_bytes + 1)
    return loads_json(raw, path, schema, error=error, max_bytes=max_bytes, max_depth=max_depth)


# ---------------------------------------------------------------------------------------------------- schemas
class Schema:
    """A shape a JSON value must have; `check(value, path, fail)` calls fail(path, message) on a mismatch."""

    def check(self, value: Any, path: str, fail: Callable[[str, str], None]) -> None:
        raise NotImplementedError


class Anything(Schema):
    """Any JSON value."""

    def check(self, value, path, fail):
        pass


class Str(Schema):
    """A string of at most `max_len` characters (None: any length)."""

    def __init__(self, max_len: Optional[int] = None):
        self.max_len = max_len

    def check(self, value, path, fail):
        if not isinstance(value, str):
            fail(path, f"expected a string, got {_kind(value)}")
        elif self.max_len is not None and len(value) > self.max_len:
            fail(path, f"string of {len(value)} characters, at most {self.max_len} allowed")


class Bool(Schema):
    """true or false."""

    def check(self, value, path, fail):
        if not isinstance(value, bool):
            fail(path, f"expected true or false, got {_kind(value)}")


class Num(Schema):
    """A finite number (an integer with integer=True; booleans are not numbers) in [lo, hi]."""

    def __init__(self, lo: Optional[float] = None, hi: Optional[float] = None, integer: bool = False):
        self.lo, self.hi, self.integer = lo, hi, integer

    def check(self, value, path, fail):
        what = "an integer" if self.integer else "a number"
        ok = isinstance(value, int) if self.integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            fail(path, f"expected {what}, got {_kind(value)}")
        elif not math.isfinite(value):
            fail(path, f"expected a finite number, got {value}")
        elif (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            lo = "-inf" if self.lo is None else f"{self.lo:g}"
            hi = "inf" if self.hi is None else f"{self.hi:g}"
            fail(path, f"{_short(repr(value))} is outside [{lo}, {hi}]")


def Int(lo: Optional[float] = None, hi: Optional[float] = None) -> Num:
    """An integer in [lo, hi]."""
    return Num(lo, hi, integer=True)


class List(Schema):
    """A list whose items have shape `item`, with min_len..max_len items."""

    def __init__(self, item: Any = None, min_len: int = 0, max_len: Optional[int] = None):
        self.item, self.min_len, self.max_len = _schema(item), min_len, max_len

    def check(self, value, path, fail):
        if not isinstance(value, list):
            fail(path, f"expected a list, got {_kind(value)}")
            return
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            most = "" if self.max_len is None else f" and at most {self.max_len}"
            fail(path, f"list of {len(value)} items, expected at least {self.min_len}{most}")
        for i, v in enumerate(value):
            self.item.check(v, f"{path}[{i}]", fail)


class Obj(Schema):
    """An object with known keys: `fields` maps a key to its shape, keys in `required` must be present; other
    keys are allowed (newer files may add fields) unless extra=False."""

    def __init__(self, fields: Dict[str, Any], required: Iterable[str] = (), extra: bool = True):
        self.fields = {k: _schema(v) for k, v in fields.items()}
        self.required = tuple(required)
        self.extra = extra

    def check(self, value, path, fail):
        if not isinstance(value, dict):
            fail(path, f"expected an object, got {_kind(value)}")
            return
        for k in self.required:
            if k not in value:
                fail(_join(path, k), "missing")
        for k, v in value.items():
            if k in self.fields:
                self.fields[k].check(v, _join(path, k), fail)
            elif not self.extra:
                fail(_join(path, k), f"unexpected key (known: {', '.join(self.fields)})")


class Map(Schema):
    """An object with arbitrary keys (at most max_items), every value of shape `value`."""

    def __init__(self, value: Any = None, max_items: Optional[int] = None):
        self.value, self.max_items = _schema(value), max_items

    def check(self, value, path, fail):
        if not isinstance(value, dict):
            fail(path, f"expected an object, got {_kind(value)}")
            return
        if self.max_items is not None and len(value) > self.max_items:
            fail(path, f"{len(value)} entries, at most {self.max_items} allowed")
        for k, v in value.items():
            self.value.check(v, _join(path, k), fail)


class AnyOf(Schema):
    """One of several shapes (e.g. AnyOf(None, Int(0)) for an optional integer); when none fits, the problem
    reported is that of the first option that is not null."""

    def __init__(self, *options: Any):
        self.options = [_schema(o) for o in options]

    def check(self, value, path, fail):
        first = None
        for option in self.options:
            problems: list = []
            option.check(value, path, lambda p, m: problems.append((p, m)))
            if not problems:
                return
            if first is None and not isinstance(option, _Null):
                first = problems[0]
        fail(*(first or (path, f"expected null, got {_kind(value)}")))


class _Null(Schema):
    def check(self, value, path, fail):
        if value is not None:
            fail(path, f"expected null, got {_kind(value)}")


def _schema(s: Any) -> Schema:
    """Shorthands: None -> null, str/bool/int/float -> Str()/Bool()/Int()/Num(), a Schema as is."""
    if isinstance(s, Schema):
        return s
    if s is None:
        return _Null()
    shorthand = {str: Str(), bool: Bool(), int: Int(), float: Num()}
    if s in shorthand:
        return shorthand[s]
    raise TypeError(f"not a schema: {s!r}")


def check(value: Any, schema: Any, source: str, error: Type[LatentlabError] = ConfigError, path: str = "") -> Any:
    """Check a parsed JSON value against `schema`; raise `error` "SOURCE: KEY.PATH: problem" on the first
    mismatch. Returns the value."""

    def fail(where, message):
        raise error(f"{source}: {where or 'top level'}: {message}")

    _schema(schema).check(value, path, fail)
    return value


def _join(path: str, key: Any) -> str:
    key = _short(str(key), 40)
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _short(repr(value))
    if isinstance(value, str):
        return f"the string {_short(repr(value))}"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------- path entries
def inside_folder(
    entry: str, folder: Union[str, os.PathLike], source: str, key: str, error: Type[LatentlabError] = ConfigError
) -> str:
    """`folder`/`entry` for a file an index names, refusing entries that point outside the folder: absolute
    paths, drive letters, '..' components (a downloaded index.json must not make latentlab read other files)."""
    parts = re.split(r"[\\/]", entry)
    if not entry or os.path.isabs(entry) or entry.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", entry):
        raise error(f"{source}: {key}: {entry!r} must be a file name relative to its folder")
    if ".." in parts:
        raise error(f"{source}: {key}: {entry!r} points outside its folder ('..')")
    return os.path.join(os.fspath(folder), *[p for p in parts if p not in ("", ".")])


def require_keys(
    value: Mapping[str, Any], keys: Sequence[str], source: str, error: Type[LatentlabError] = ConfigError
) -> None:
    """Refuse a dict that lacks any of `keys`, naming them all."""
    missing = [k for k in keys if k not in value]
    if missing:
        raise error(f"{source}: missing {', '.join(missing)}")
