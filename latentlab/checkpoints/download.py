"""Resolve a checkpoint argument (path, registry name, URL or hf:// spec) to a local file, downloading if needed.

The registry (`registry.json` in latentlab's shipped data, `latentlab.defaults.shipped_dir()`; the
repository's `checkpoints/` folder) is the one table of names: generators (`--model ffhq`,
`latentlab models`), attribute classifiers (NVIDIA's CelebA-HQ classifiers behind `--classifier
nvidia-celebahq`) and boundary files (InterFaceGAN's, `latentlab models --kind boundary`); docs/MODELS.md
shows it as tables. Most entries are downloads (`url`): `fetch(name)` puts one into the cache
(`cache_dir()`, one file per entry, named as in `cached_path`) on first use. A "shipped" entry
(`"shipped": "<path in the shipped data>"`, the embedded toyfaces model) names a file that ships
inside the package: `fetch` returns it as it is, and nothing is downloaded.

Downloads stream into `<dest>.part` with a progress bar, resume from that partial file with an
HTTP Range request, and are renamed into place only when complete and verified (`check_file`): against
the entry's sha256 where one is pinned; otherwise by their size (`size_range`: 0.5x to 2x the entry's
approximate size_mb) and by reading them, without running code, as what the entry says they are (a
generator's format, generation, resolution and latent sizes; a classifier's network and resolution; a
boundary's shape). A file that fails is removed, never kept for resuming, and the next URL of the entry
is tried. A server that answers with a web page instead of the file (Google Drive does for large files)
is an error, never a saved file. When no URL of an entry can be reached (offline, say), the one-line
error names the URL and the exact path to place the file at; a file placed there by hand is used as it
is (its reader checks it when loading).

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
from .tags import ALL_FORMATS, FORMAT_LATENTLAB, FORMAT_SG1_TF, FORMAT_SG2_TF

CHUNK = 1 << 20
MIB = 1 << 20  # size_mb counts MiB
KINDS = ("generator", "classifier", "boundary")
# A download without a pinned sha256 must weigh between these multiples of its entry's size_mb. The sizes are
# estimates (parameter counts of the official configurations; publishers state none), and pickles carry extras
# (augmentation pipes, training options, sometimes optimiser states), so the range is wide: it catches what the
# size can catch (an error page, a cut-off file, another model family), and reading the file checks the rest.
SIZE_FACTORS = (0.5, 2.0)
# NetworkRecord.class_name of a generator -> its StyleGAN generation (generator classes of loader.NETWORK_CLASSES)
GENERATIONS = {"StyleGAN1Generator": 1, "Generator": 2, "StyleGAN3Generator": 3}
# where each generator class keeps resolution and latent sizes among its constructor kwargs (the v1 class keeps
# the TensorFlow names)
_KWARG_NAMES = {
    "StyleGAN1Generator": {
        "resolution": "resolution",
        "z_dim": "latent_size",
        "w_dim": "dlatent_size",
        "c_dim": "label_size",
    }
}
_SG2_KWARG_NAMES = {"resolution": "img_resolution", "z_dim": "z_dim", "w_dim": "w_dim", "c_dim": "c_dim"}


def cache_dir() -> str:
    """$LATENTLAB_CACHE, else ~/.cache/latentlab."""
    return os.environ.get("LATENTLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "latentlab")


_URL = Str(4096)
_DIM = Int(0, 1 << 16)
_ENTRY = {
    "url": _URL,
    "mirrors": List(_URL, max_len=64),
    "sha256": AnyOf(None, Str(64)),
    "filename": Str(255),
    "shipped": Str(1000),
    "kind": Str(32),
    "set": Str(100),
    "format": Str(100),
    "generation": Int(1, 3),
    "architecture": Str(32),
    "resolution": Int(1, MAX_RESOLUTION),
    "z_dim": _DIM,
    "w_dim": _DIM,
    "c_dim": _DIM,
    "dim": Int(1, 1 << 16),
    "network": Str(100),
    "size_mb": Num(0),
    "licence": Str(100),
    "licence_url": _URL,
    "page": _URL,
    "description": Str(1000),
}
# registry.json: {name: entry} (a download with `url`, or a file that ships with `shipped`; fields read by latentlab
# typed, others free) and "_comment"-style strings; checked by `latentlab.utils.safe_json` on every read.
REGISTRY_SCHEMA = Map(AnyOf(Obj(_ENTRY, required=["url"]), Obj(_ENTRY, required=["shipped"]), Str()), max_items=10_000)


class VerificationError(CheckpointError):
    """A download arrived but is not the file its registry entry describes (checksum, size or structure);
    it was removed."""


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
    default when an entry names none, 'classifier' or 'boundary'; kind=None: every kind): the downloads, and
    with shipped=True also the entries whose file ships inside the package (the embedded model)."""
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"kind must be one of {KINDS} or None, got {kind!r}")
    return {
        k: v
        for k, v in _all_entries().items()
        if (kind is None or kind_of(v) == kind) and (shipped or "shipped" not in v)
    }


def kind_of(entry: Dict[str, Any]) -> str:
    """A registry entry's kind: its `kind`, else 'generator'."""
    return entry.get("kind", "generator")


def is_shipped(entry: Dict[str, Any]) -> bool:
    """Whether a registry entry's file ships inside the package (no download)."""
    return "shipped" in entry


def _plain_name(text: Any) -> bool:
    return isinstance(text, str) and text not in ("", ".", "..") and os.path.basename(text) == text and "/" not in text


def cached_path(name: str, entry: Optional[Dict[str, Any]] = None) -> str:
    """Where the cache keeps registry entry `name`: <cache>/<name><suffix of its URL, else .pkl>; a boundary
    file under its official name in <cache>/boundaries/<set>/ (a folder of the publisher's files, as
    `--boundaries` takes it)."""
    entry = entry if entry is not None else registry(None)[name]
    suffix = os.path.splitext(urllib.parse.urlparse(entry["url"]).path)[1] or ".pkl"
    if kind_of(entry) == "boundary":
        fname, folder = official_filename(entry), entry.get("set", "other")
        return os.path.join(
            cache_dir(),
            "boundaries",
            folder if _plain_name(folder) else "other",
            fname if fname is not None and _plain_name(fname) else name + suffix,
        )
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
    Where two entries share an official file name (StyleGAN2-ADA's PyTorch and TensorFlow pickles), the
    first in the registry (the PyTorch one) is meant.
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


# ------------------------------------------------------------------------------------------ verification


def size_range(entry: Dict[str, Any]) -> Optional[Tuple[int, int]]:
    """(fewest, most) bytes a download of `entry` may have (SIZE_FACTORS times its size_mb), or None
    when the entry states no size."""
    size = entry.get("size_mb")
    if size is None:
        return None
    return int(size * MIB * SIZE_FACTORS[0]), int(size * MIB * SIZE_FACTORS[1]) + 1


def human_size(n: float) -> str:
    """'364 MB', '4.1 KB', '812 bytes' (binary units, as size_mb)."""
    for unit, scale in (("GB", 1 << 30), ("MB", MIB), ("KB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{int(n)} bytes"


def _without_path(message: str, path: str) -> str:
    """A reader's message without its leading '<path>: ' (the caller names the download itself)."""
    return message[len(path) + 2 :] if message.startswith(path + ": ") else message


def check_file(path: Union[str, os.PathLike], entry: Dict[str, Any], structure: bool = True) -> None:
    """Raise CheckpointError (one line saying what differs) unless the file at `path` is plausibly the file
    of registry entry `entry`: its size within `size_range` (when the entry states one) and, with
    structure=True, its contents as the entry's kind says, read without running code:

    * generator: read by the checkpoint reader of the entry's `format` (which must be the format found); its
      generator network (G_ema, else G) of the entry's `generation` (its class, `GENERATIONS`), with the
      entry's `resolution` and, where the entry gives them, z_dim, w_dim and c_dim (and, for StyleGAN3, the
      T or R configuration where the network's arguments say which);
    * classifier: one network of StyleGAN's TensorFlow code, of the entry's `format`, built by its `network`
      (e.g. D_basic) for images of its `resolution`;
    * boundary: a .npy array of floats, finite, of shape [dim] or [1, dim] (dim: the entry's, else 512).

    Nothing else is parsed: an entry without a format (a plain file) is checked by its size only.
    """
    path = os.fspath(path)
    bounds = size_range(entry)
    if bounds is not None:
        got = os.path.getsize(path)
        if not bounds[0] <= got <= bounds[1]:
            raise CheckpointError(
                f"it has {human_size(got)}, expected about {human_size(entry['size_mb'] * MIB)} "
                f"(between {human_size(bounds[0])} and {human_size(bounds[1])})"
            )
    if not structure:
        return
    kind = kind_of(entry)
    try:
        if kind == "generator":
            _check_generator(path, entry)
        elif kind == "classifier":
            _check_classifier(path, entry)
        elif kind == "boundary":
            _check_boundary(path, entry)
    except CheckpointError as e:
        raise CheckpointError(_without_path(str(e), path)) from None


def _generator_network(path: str, fmt: str) -> Tuple[str, str, Dict[str, Any], list]:
    """(format found, generator class name, its init kwargs, network names) of a checkpoint file."""
    if fmt == FORMAT_LATENTLAB:
        from .native import read_native

        _, nets, _ = read_native(path)
        found, specs = FORMAT_LATENTLAB, {k: (cls, kw) for k, (cls, kw, _) in nets.items()}
    else:
        from .formats import read_checkpoint

        raw = read_checkpoint(path)
        found, specs = raw.format, {k: (r.class_name, r.init_kwargs) for k, r in raw.networks.items()}
    key = "G_ema" if "G_ema" in specs else "G"
    if key not in specs:
        raise CheckpointError(f"it holds no generator (networks: {', '.join(sorted(specs)) or 'none'})")
    return found, specs[key][0], specs[key][1], sorted(specs)


def _find_kwarg(kwargs: Dict[str, Any], name: str) -> Any:
    """A constructor argument at the top level of `kwargs` or in its synthesis_kwargs (None if absent)."""
    if name in kwargs:
        return kwargs[name]
    nested = kwargs.get("synthesis_kwargs")
    return nested.get(name) if isinstance(nested, dict) else None


def _check_generator(path: str, entry: Dict[str, Any]) -> None:
    fmt = entry.get("format")
    if fmt is None:
        return  # nothing to read it as
    if fmt not in ALL_FORMATS:
        raise CheckpointError(f"the registry names format {fmt!r}, which latentlab does not read")
    found, cls, kwargs, _ = _generator_network(path, fmt)
    if found != fmt:
        raise CheckpointError(f"it is a {found} checkpoint, expected {fmt}")
    generation = GENERATIONS.get(cls)
    want = entry.get("generation")
    if want is not None and generation != want:
        what = f"generation {generation}" if generation else "of no StyleGAN generation latentlab knows"
        raise CheckpointError(f"its generator is a {cls} ({what}), expected a generation {want} generator")
    names = _KWARG_NAMES.get(cls, _SG2_KWARG_NAMES)
    res = kwargs.get(names["resolution"])
    if entry.get("resolution") is not None and res != entry["resolution"]:
        raise CheckpointError(
            f"its generator makes {res}x{res} images, expected {entry['resolution']}x{entry['resolution']}"
        )
    for dim in ("z_dim", "w_dim", "c_dim"):
        got = kwargs.get(names[dim]) or 0  # a v1 label_size / c_dim of None means no labels
        if entry.get(dim) is not None and got != entry[dim]:
            raise CheckpointError(f"its generator has {dim} {got}, expected {entry[dim]}")
    arch = entry.get("architecture") or ""
    if generation == 3 and arch in ("stylegan3-t", "stylegan3-r"):
        # StyleGAN3-R is the generator built with radially symmetric filters (and 1x1 convolutions); the official
        # constructor's default, kept by T pickles, is use_radial_filters=False
        found_arch = "stylegan3-r" if _find_kwarg(kwargs, "use_radial_filters") else "stylegan3-t"
        if found_arch != arch:
            raise CheckpointError(f"its generator is a {found_arch} network, expected {arch}")


def _check_classifier(path: str, entry: Dict[str, Any]) -> None:
    from .records import describe
    from .safe_pickle import TFNetwork, load_pickle
    from .tf_common import static_kwargs

    obj = load_pickle(path)
    state = getattr(obj, "state", None)
    if not isinstance(obj, TFNetwork) or not isinstance(state, dict):
        raise CheckpointError(f"expected one network of StyleGAN's TensorFlow code, found a {describe(obj)}")
    version = state.get("version")
    found = FORMAT_SG1_TF if not isinstance(version, int) or version < 4 else FORMAT_SG2_TF  # as formats.detect_format
    if entry.get("format") is not None and found != entry["format"]:
        raise CheckpointError(f"it is a {found} network, expected {entry['format']}")
    func = state.get("build_func_name")
    if entry.get("network") is not None and func != entry["network"]:
        raise CheckpointError(f"its network was built by {func!r}, expected {entry['network']!r}")
    static = static_kwargs(path, "classifier", obj)
    res = static.get("resolution", 32)  # D_basic's default
    if entry.get("resolution") is not None and res != entry["resolution"]:
        raise CheckpointError(f"it reads {res}x{res} images, expected {entry['resolution']}x{entry['resolution']}")


def _check_boundary(path: str, entry: Dict[str, Any]) -> None:
    import numpy as np

    dim = entry.get("dim") or 512
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
    except (ValueError, OSError, EOFError) as e:
        raise CheckpointError(f"not a .npy array file ({str(e)[:120]})") from None
    if dtype.kind != "f" or tuple(shape) not in ((dim,), (1, dim)):
        raise CheckpointError(
            f"a .npy array of {dtype} and shape {list(shape)}, expected floats of shape [{dim}] or [1, {dim}]"
        )
    try:
        values = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise CheckpointError(f"a damaged .npy array ({str(e)[:120]})") from None
    if not np.isfinite(values).all():
        raise CheckpointError("its values are not all finite")


# ------------------------------------------------------------------------------------------ transfers


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def download(
    url: str,
    dest: str,
    sha256: Optional[str] = None,
    progress: bool = True,
    timeout: float = 60,
    verify: Optional[Callable[[str], Any]] = None,
    expected: Optional[str] = None,
    size_bounds: Optional[Tuple[int, int]] = None,
) -> str:
    """Fetch `url` into `dest` (resuming a previous partial download); return dest.

    The partial file `dest`.part enters `dest` only when complete, matching `sha256` (when given) and
    passing verify(part) (when given; raising CheckpointError or ValueError, its message saying what
    differs). size_bounds (fewest, most bytes) refuses a server that announces another size before a byte
    is fetched. A file that fails is removed (never resumed) and VerificationError names the URL and
    `expected` (what the file should be, e.g. a registry name).
    """
    from ..utils.progress import progress_bar

    what = expected or os.path.basename(dest)

    def refuse(problem):
        _remove(part)  # a wrong file must not be resumed
        raise VerificationError(f"{url}: the downloaded file is not the expected {what} ({problem}); it was removed")

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
            if total is not None and size_bounds is not None and not size_bounds[0] <= total <= size_bounds[1]:
                refuse(
                    f"the server announces {human_size(total)}, expected between {human_size(size_bounds[0])} "
                    f"and {human_size(size_bounds[1])}"
                )
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
            _remove(part)  # a corrupt file must not be resumed
            raise VerificationError(
                f"{url}: sha256 mismatch (expected {sha256}, got {got}); the partial file was removed"
            )
    if verify is not None:
        try:
            verify(part)
        except (CheckpointError, ValueError) as e:
            refuse(_without_path(str(e), part))
    os.replace(part, dest)
    return dest


def fetch(
    name: str, kind: Optional[str] = None, progress: bool = True, verify: Optional[Callable[[str], Any]] = None
) -> str:
    """Local path of registry entry `name` (of `kind`, None: any), downloaded into the cache on first use.

    Tries the entry's `url`, then its `mirrors`, until one gives the expected file. A download enters the
    cache only when verified: against the entry's sha256 when it pins one; otherwise by `check_file` (its
    size and, read without running code, its structure). verify(path): the caller's own structural check
    (raising CheckpointError or ValueError), run on the complete download before it enters the cache in
    place of `check_file`'s reading of the file (which it then need not read twice); a file that fails
    any check is removed. A file already in the cache is returned as it is (its reader checks it when
    loading), and so is the file of a shipped entry.
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
    sha = entry.get("sha256")

    def check(path):
        if not sha:  # a pinned checksum says all a size or a structure could
            check_file(path, entry, structure=verify is None)
        if verify is not None:
            verify(path)

    errors, refused = [], 0
    for url in urls:
        try:
            download(
                url,
                dest,
                sha,
                progress,
                verify=check if (verify is not None or not sha) else None,
                expected=name,
                size_bounds=None if sha else size_range(entry),
            )
            break
        except VerificationError as e:
            errors.append(str(e))
            refused += 1
        except CheckpointError as e:
            errors.append(str(e))
    else:
        if refused == len(errors):  # every URL answered, with a file that is not this entry's
            raise CheckpointError("; ".join(errors))
        raise CheckpointError(
            f"{name}: could not download it ({'; '.join(errors)}); without internet, download "
            f"{urls[0]} elsewhere and place it at {dest}"
        )
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
    names = sorted(registry(shipped=True))
    known = ", ".join(names) if len(names) <= 12 else f"{len(names)} names, `latentlab models` lists them"
    raise CheckpointError(f"{spec}: no such file, and not a known checkpoint name ({known}), URL or {hub.FORM}")
