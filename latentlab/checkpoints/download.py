"""Resolve a checkpoint argument (path, registry name, URL or hf:// spec) to a local file, downloading if needed.

The registry (`registry.json` in latentlab's shipped data, `latentlab.defaults.shipped_dir()`; the
repository's `checkpoints/` folder) is the one table of names: generators (`--model ffhq`,
`latentlab models`) and attribute classifiers (NVIDIA's CelebA-HQ classifiers behind `--classifier
nvidia-celebahq`). Most entries are downloads (`url`): `fetch(name)` puts one into the cache
(`cache_dir()`, one file per entry, named as in `cached_path`) on first use. A "shipped" entry
(`"shipped": "<path in the shipped data>"`, the embedded toyfaces model) names a file that ships
inside the package: `fetch` returns it as it is, and nothing is downloaded.

Downloads stream into `<dest>.part` with a progress bar, resume from that partial file with an
HTTP Range request, are checked against a sha256 when one is known, and are renamed into place
only when complete. A server that answers with a web page instead of the file (Google Drive does
for large files) is an error, never a saved file. When no URL of an entry can be reached (offline,
say), the one-line error names the URL and the exact path to place the file at.

A file of a Hugging Face Hub repository, `hf://owner/repo/path/to/file.pkl[@revision]`, is fetched by
huggingface_hub instead (`hub.py`): its cache, resuming, revisions, HF_HUB_OFFLINE and HF_TOKEN.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Optional, Tuple, Union

from .. import defaults
from ..errors import CheckpointError, ConfigError
from ..utils.limits import MAX_RESOLUTION
from ..utils.safe_json import AnyOf, Int, List, Map, Num, Obj, Str, load_json
from . import hub

CHUNK = 1 << 20
KINDS = ("generator", "classifier")


def cache_dir() -> str:
    """$LATENTLAB_CACHE, else ~/.cache/latentlab."""
    return os.environ.get("LATENTLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "latentlab")


_URL = Str(4096)
_ENTRY = {
    "url": _URL,
    "mirrors": List(_URL, max_len=64),
    "sha256": AnyOf(None, Str(64)),
    "filename": Str(255),
    "shipped": Str(1000),
    "kind": Str(32),
    "format": Str(100),
    "resolution": Int(1, MAX_RESOLUTION),
    "size_mb": Num(0),
}
# registry.json: {name: entry} (a download with `url`, or a file that ships with `shipped`; fields read by latentlab
# typed, others free) and "_comment"-style strings; checked by `latentlab.utils.safe_json` on every read.
REGISTRY_SCHEMA = Map(AnyOf(Obj(_ENTRY, required=["url"]), Obj(_ENTRY, required=["shipped"]), Str()), max_items=10_000)


def _all_entries():
    path = defaults.shipped_path("registry.json")
    data = load_json(path, REGISTRY_SCHEMA)  # size, depth and shape checked: one line naming the file
    entries = {k: v for k, v in data.items() if not k.startswith("_")}
    for k, v in entries.items():
        if not isinstance(v, dict):
            raise ConfigError(f"{path}: {k[:60]}: expected an object, got a string")
    return entries


def registry(kind: Optional[str] = "generator", shipped: bool = False) -> Dict[str, Dict[str, Any]]:
    """name -> entry dict from the shipped registry.json, for entries of `kind` ('generator', the
    default when an entry names none, or 'classifier'; kind=None: every kind): the downloads, and
    with shipped=True also the entries whose file ships inside the package (the embedded model)."""
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"kind must be one of {KINDS} or None, got {kind!r}")
    return {
        k: v
        for k, v in _all_entries().items()
        if (kind is None or v.get("kind", "generator") == kind) and (shipped or "shipped" not in v)
    }


def is_shipped(entry: Dict[str, Any]) -> bool:
    """Whether a registry entry's file ships inside the package (no download)."""
    return "shipped" in entry


def cached_path(name: str, entry: Optional[Dict[str, Any]] = None) -> str:
    """Where the cache keeps registry entry `name`: <cache>/<name><suffix of its URL, else .pkl>."""
    entry = entry if entry is not None else registry(None)[name]
    suffix = os.path.splitext(urllib.parse.urlparse(entry["url"]).path)[1] or ".pkl"
    return os.path.join(cache_dir(), name + suffix)


def local_path(name: str, entry: Optional[Dict[str, Any]] = None) -> str:
    """Where registry entry `name`'s file is on this machine once fetched: the shipped file, else `cached_path`."""
    entry = entry if entry is not None else registry(None, shipped=True)[name]
    return defaults.shipped_path(*entry["shipped"].split("/")) if is_shipped(entry) else cached_path(name, entry)


def official_filename(entry: Dict[str, Any]) -> Optional[str]:
    """The file name the publisher gives the entry's file: `filename`, else the last part of its URL
    (None for a shipped entry: only its name and its own file stand for it)."""
    if entry.get("filename"):
        return entry["filename"]
    if "url" not in entry:
        return None
    base = os.path.basename(urllib.parse.urlparse(entry["url"]).path)
    return base if os.path.splitext(base)[1] else None


def _same_file(a, b):
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def entry_for(spec: Union[str, os.PathLike], kind: Optional[str] = "generator") -> Optional[Tuple[str, Dict[str, Any]]]:
    """(name, entry) of the registry entry that `spec` stands for, else None.

    spec may be the entry's name ('ffhq'), its official file name or a path ending in it
    ('ffhq.pkl', '~/models/karras2019stylegan-ffhq-1024x1024.pkl'), one of its URLs, an hf:// spec of a
    file of that name, or its local file (the cached download, or the shipped file of a shipped entry).
    """
    spec = os.fspath(spec)
    reg = registry(kind, shipped=True)
    if spec in reg:
        return spec, reg[spec]
    is_url = spec.startswith(("http://", "https://")) or hub.is_hub_spec(spec)
    if hub.is_hub_spec(spec):
        try:
            base = hub.parse(spec).filename.rsplit("/", 1)[-1]
        except ConfigError:
            base = ""  # loading it says what is wrong with it
    else:
        base = os.path.basename(urllib.parse.urlparse(spec).path if is_url else spec)
    for name, entry in reg.items():
        if spec in [entry.get("url"), *entry.get("mirrors", [])]:
            return name, entry
    for name, entry in reg.items():
        if base and base == official_filename(entry):
            return name, entry
        if not is_url and _same_file(spec, local_path(name, entry)):
            return name, entry
    return None


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str, sha256: Optional[str] = None, progress: bool = True, timeout: float = 60) -> str:
    """Fetch `url` into `dest` (resuming a previous partial download); return dest."""
    from ..utils.progress import progress_bar

    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = dest + ".part"
    have = os.path.getsize(part) if os.path.exists(part) else 0
    req = urllib.request.Request(url, headers={"User-Agent": "latentlab"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the partial file is already complete
            resp = None
        else:
            raise CheckpointError(f"{url}: download failed (HTTP {e.code} {e.reason})") from None
    except (urllib.error.URLError, OSError) as e:
        raise CheckpointError(f"{url}: download failed ({getattr(e, 'reason', e)})") from None
    if resp is not None:
        with resp:
            if resp.headers.get_content_type() == "text/html":
                raise CheckpointError(
                    f"{url}: the server sent a web page instead of the file (Google Drive does so "
                    "for large files, asking for a confirmation in a browser)"
                )
            resumed = have and resp.status == 206
            if not resumed:
                have = 0  # server ignored the range: start over
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with (
                open(part, "ab" if resumed else "wb") as f,
                progress_bar(
                    total=total,
                    initial=have,
                    unit="B",
                    unit_scale=True,
                    desc=os.path.basename(dest),
                    enabled=progress,
                    large=float("inf"),  # tqdm's own time left says it
                ) as bar,
            ):
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except OSError as e:
                        raise CheckpointError(f"{url}: download interrupted ({e}); run again to resume") from None
                    if not block:
                        break
                    f.write(block)
                    bar.update(len(block))
            if total is not None and os.path.getsize(part) < total:
                raise CheckpointError(
                    f"{url}: download incomplete ({os.path.getsize(part)} of {total} bytes); run again to resume"
                )
    if sha256:
        got = _sha256(part)
        if got != sha256.lower():
            os.unlink(part)  # a corrupt file must not be resumed
            raise CheckpointError(
                f"{url}: sha256 mismatch (expected {sha256}, got {got}); the partial file was removed"
            )
    os.replace(part, dest)
    return dest


def fetch(
    name: str, kind: Optional[str] = None, progress: bool = True, verify: Optional[Callable[[str], Any]] = None
) -> str:
    """Local path of registry entry `name` (of `kind`, None: any), downloaded into the cache on first use.

    Tries the entry's `url`, then its `mirrors`; checks the sha256 when the entry records one.
    verify(path): an optional structural check of a fresh download (raising CheckpointError or
    ValueError); a download that fails it is removed, so that the next run fetches it again.
    A file already in the cache is returned as it is (its reader checks it when loading), and so is
    the file of a shipped entry.
    """
    reg = registry(kind, shipped=True)
    if name not in reg:
        raise CheckpointError(f"{name}: not in the registry; known: {', '.join(sorted(reg))}")
    entry = reg[name]
    dest = local_path(name, entry)
    if os.path.exists(dest):
        return dest
    if is_shipped(entry):
        raise CheckpointError(f"{name}: its file {dest} ships with latentlab but is missing: reinstall latentlab")
    urls = [entry["url"], *entry.get("mirrors", [])]
    errors = []
    for url in urls:
        try:
            download(url, dest, entry.get("sha256"), progress)
            break
        except CheckpointError as e:
            errors.append(str(e))
    else:
        raise CheckpointError(
            f"{name}: could not download it ({'; '.join(errors)}); without internet, download "
            f"{urls[0]} elsewhere and place it at {dest}"
        )
    if verify is not None:
        try:
            verify(dest)
        except (CheckpointError, ValueError) as e:
            os.unlink(dest)
            raise CheckpointError(
                f"{urls[0]}: the downloaded file is not the expected {name} ({e}); it was removed"
            ) from None
    return dest


def resolve(spec: Union[str, os.PathLike], progress: bool = True) -> str:
    """Local path for `spec`: an existing file, a registry name (e.g. 'ffhq', or 'toyfaces', the shipped
    embedded model) or official file name (e.g. 'karras2019stylegan-ffhq-1024x1024.pkl', fetched when
    not present here), an http(s) URL, or a file of a Hugging Face Hub repository,
    'hf://owner/repo/path/to/file.pkl[@revision]' (`hub.fetch`: huggingface_hub's cache, resumable,
    HF_HUB_OFFLINE honoured; needs `latentlab[hub]`)."""
    spec = os.fspath(spec)
    if hub.is_hub_spec(spec):  # before the file system: a spec from the Hub never means a local folder 'hf:'
        return hub.fetch(spec, progress)
    if os.path.exists(spec):
        return spec
    is_url = spec.startswith(("http://", "https://"))
    found = entry_for(spec) if is_url or os.sep not in spec and "/" not in spec else None
    if found is not None:
        return fetch(found[0], "generator", progress)
    if is_url:
        name = os.path.basename(urllib.parse.urlparse(spec).path) or "checkpoint.pkl"
        digest = hashlib.sha256(spec.encode()).hexdigest()[:12]
        dest = os.path.join(cache_dir(), "urls", f"{digest}-{name}")
        if not os.path.exists(dest):
            download(spec, dest, None, progress)
        return dest
    known = ", ".join(sorted(registry(shipped=True)))
    raise CheckpointError(f"{spec}: no such file, and not a known checkpoint name ({known}), URL or {hub.FORM}")
