"""Resolve a checkpoint argument (path, registry name or URL) to a local file, downloading if needed.

Downloads stream into `<cache>/<name>.part` with a progress bar, resume from
that partial file with an HTTP Range request, are checked against a sha256 when
one is known, and are renamed into place only when complete.
"""
import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from importlib import resources

from ..errors import CheckpointError

CHUNK = 1 << 20


def cache_dir():
    """$LATENTLAB_CACHE, else ~/.cache/latentlab."""
    return os.environ.get("LATENTLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "latentlab")


def registry():
    """name -> entry dict from the shipped checkpoints/registry.json."""
    text = resources.files("checkpoints").joinpath("registry.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url, dest, sha256=None, progress=True, timeout=60):
    """Fetch `url` into `dest` (resuming a previous partial download); return dest."""
    from tqdm import tqdm

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
            resumed = have and resp.status == 206
            if not resumed:
                have = 0  # server ignored the range: start over
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with open(part, "ab" if resumed else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=os.path.basename(dest), disable=not progress
            ) as bar:
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
                raise CheckpointError(f"{url}: download incomplete ({os.path.getsize(part)} of {total} bytes); run again to resume")
    if sha256:
        got = _sha256(part)
        if got != sha256.lower():
            os.unlink(part)  # a corrupt file must not be resumed
            raise CheckpointError(f"{url}: sha256 mismatch (expected {sha256}, got {got}); the partial file was removed")
    os.replace(part, dest)
    return dest


def resolve(spec, progress=True):
    """Local path for `spec`: an existing file, a registry name (e.g. 'ffhq') or an http(s) URL."""
    spec = os.fspath(spec)
    if os.path.exists(spec):
        return spec
    from .. import defaults

    if spec == defaults.NAME:  # the embedded model ships with the package
        return defaults.model_path()
    reg = registry()
    if spec in reg:
        entry = reg[spec]
        suffix = os.path.splitext(urllib.parse.urlparse(entry["url"]).path)[1] or ".pkl"
        dest = os.path.join(cache_dir(), spec + suffix)
        if not os.path.exists(dest):
            download(entry["url"], dest, entry.get("sha256"), progress)
        return dest
    if spec.startswith(("http://", "https://")):
        name = os.path.basename(urllib.parse.urlparse(spec).path) or "checkpoint.pkl"
        digest = hashlib.sha256(spec.encode()).hexdigest()[:12]
        dest = os.path.join(cache_dir(), "urls", f"{digest}-{name}")
        if not os.path.exists(dest):
            download(spec, dest, None, progress)
        return dest
    known = ", ".join(sorted(reg) + [defaults.NAME])
    raise CheckpointError(f"{spec}: no such file, and not a known checkpoint name ({known}) or URL")
