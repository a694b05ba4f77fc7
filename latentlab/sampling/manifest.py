"""manifest.json: what a sample folder holds, written before any chunk so that every chunk has a known meaning.

A run may only add chunks to a folder whose manifest describes the same request;
otherwise chunks of different models, classifiers or truncations would silently mix.
"""

import json
import os

from ..errors import ConfigError
from ..latents.seeds import MAX_SEED
from ..utils.atomic import write_text
from ..utils.safe_json import AnyOf, Anything, Bool, Int, List, Map, Num, Obj, Str, check, load_json
from ..utils.versions import versions

MANIFEST = "manifest.json"
FORMAT = "latentlab-samples"
FORMAT_VERSION = 1
TMP_PREFIX = ".tmp-"  # temporary files of utils.atomic.atomic_path

# Keys that describe the data; they must agree between a folder and a run that adds to it.
# (versions and the creation details are informative only: a torch upgrade may resume a run.)
REQUEST_KEYS = (
    "format",
    "format_version",
    "model_hash",
    "classifier",
    "names",
    "n",
    "seed_start",
    "chunk_size",
    "num_chunks",
    "truncation_psi",
    "truncation_cutoff",
    "noise_mode",
    "class_idx",
    "save_styles",
    "save_images",
    "thumb_size",
    "fields",
)

# The types and ranges of a manifest's request keys (`read_manifest` refuses a file that breaks them: a
# downloaded folder must not make `sample` loop over 10^15 chunks or index names with a dict).
_COUNT = Int(1, MAX_SEED + 1)  # one sample per seed at most
MANIFEST_SCHEMA = Obj(
    {
        "format": Str(),
        "format_version": Int(),
        "model_hash": AnyOf(None, Str(256)),
        "classifier": Anything(),
        "names": List(Str(256), max_len=100_000),
        "n": _COUNT,
        "seed_start": Int(0, MAX_SEED),
        "chunk_size": _COUNT,
        "num_chunks": _COUNT,
        "truncation_psi": Num(),
        "truncation_cutoff": AnyOf(None, Int(0, 10_000)),
        "noise_mode": Str(16),
        "class_idx": AnyOf(None, Int(0, 1 << 31)),
        "save_styles": Bool(),
        "save_images": Bool(),
        "thumb_size": AnyOf(None, Int(1, 1 << 16)),
        "fields": Map(Obj({"shape": List(Int(0, 1 << 31), max_len=8), "dtype": Str(32)}, required=["shape", "dtype"])),
    },
    required=REQUEST_KEYS,
)


def build_manifest(
    model_hash,
    classifier,
    names,
    n,
    seed_start,
    chunk_size,
    truncation_psi,
    truncation_cutoff,
    noise_mode,
    class_idx,
    save_styles,
    save_images,
    thumb_size,
    fields,
):
    """The manifest dict (JSON types only). `classifier`: its identity (a dict);
    `fields`: name -> (per-row shape, dtype name)."""
    m = dict(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        model_hash=model_hash,
        classifier=classifier,
        names=list(names),
        n=int(n),
        seed_start=int(seed_start),
        chunk_size=int(chunk_size),
        num_chunks=-(-int(n) // int(chunk_size)),
        truncation_psi=float(truncation_psi),
        truncation_cutoff=truncation_cutoff,
        noise_mode=noise_mode,
        class_idx=class_idx,
        save_styles=bool(save_styles),
        save_images=bool(save_images),
        thumb_size=int(thumb_size) if save_images else None,
        fields={k: dict(shape=[int(d) for d in shape], dtype=str(dtype)) for k, (shape, dtype) in fields.items()},
        versions=versions(),
    )
    return json.loads(json.dumps(m))  # exactly what reading the file back gives (tuples -> lists, ...)


def manifest_path(out_dir):
    return os.path.join(os.fspath(out_dir), MANIFEST)


def read_manifest(out_dir):
    """The manifest of a sample folder; ValueError when there is none or it is not one of ours."""
    path = manifest_path(out_dir)
    if not os.path.isdir(out_dir):
        raise ConfigError(f"{out_dir}: no such folder")
    if not os.path.exists(path):
        raise ConfigError(f"{out_dir} is not a sample folder: it has no {MANIFEST} (written by `latentlab sample`)")
    try:
        m = load_json(path)
    except OSError as e:
        raise ConfigError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a latentlab sample manifest")
    if m.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{path}: format version {m.get('format_version')} is not supported "
            f"(this latentlab reads version {FORMAT_VERSION})"
        )
    missing = [k for k in REQUEST_KEYS if k not in m]
    if missing:
        raise ConfigError(f"{path}: manifest lacks {', '.join(missing)}")
    check(m, MANIFEST_SCHEMA, path)
    if m["num_chunks"] != -(-m["n"] // m["chunk_size"]):
        raise ConfigError(
            f"{path}: num_chunks {m['num_chunks']} does not match n {m['n']} in chunks of {m['chunk_size']}"
        )
    if m["seed_start"] + m["n"] - 1 > MAX_SEED:
        raise ConfigError(f"{path}: seeds {m['seed_start']}..{m['seed_start'] + m['n'] - 1} go past {MAX_SEED}")
    return m


def differences(found, wanted):
    """[(key, found value, wanted value)] for the request keys that differ."""
    return [(k, found.get(k), wanted.get(k)) for k in REQUEST_KEYS if found.get(k) != wanted.get(k)]


def check_matches(out_dir, wanted):
    """ValueError naming every differing field unless the folder's manifest describes the `wanted` request."""
    found = read_manifest(out_dir)
    diff = differences(found, wanted)
    if diff:
        parts = "; ".join(f"{k}: folder has {_short(a)}, this run asks for {_short(b)}" for k, a, b in diff)
        raise ConfigError(
            f"{out_dir} holds samples of a different request ({parts}). "
            "Resume with the same options, or choose another output folder"
        )
    return found


def _short(value, limit=80):
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _visible_entries(out_dir):
    """Folder entries other than our temporary files (left by killed writers) and the folder's lock."""
    from ..utils.outdir import is_bookkeeping

    return [e for e in os.listdir(out_dir) if not is_bookkeeping(e)]


def ensure_manifest(out_dir, wanted):
    """Write the manifest into a new or empty folder, or check that the existing one matches.

    A non-empty folder without a manifest is refused: its files are not ours to mix with.
    """
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ConfigError(f"{out_dir} exists and is not a folder")
    os.makedirs(out_dir, exist_ok=True)
    if os.path.exists(manifest_path(out_dir)):
        return check_matches(out_dir, wanted)
    entries = _visible_entries(out_dir)
    if entries:
        if os.path.exists(manifest_path(out_dir)):  # another rank wrote it meanwhile
            return check_matches(out_dir, wanted)
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        raise ConfigError(
            f"{out_dir} is not empty ({shown}) and is not a sample folder (no {MANIFEST}); "
            "choose a new or empty output folder"
        )
    write_text(manifest_path(out_dir), json.dumps(wanted, indent=1) + "\n")
    return wanted


def remove_stale_temporaries(out_dir):
    """Delete temporary files left by a killed run (only call when no other writer is active)."""
    for e in os.listdir(out_dir):
        if e.startswith(TMP_PREFIX):
            try:
                os.unlink(os.path.join(out_dir, e))
            except FileNotFoundError:
                pass
