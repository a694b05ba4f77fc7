"""The on-disk format of a sample folder, and `SampleTable`, which reads one back chunk by chunk.

A folder holds `manifest.json` (see manifest.py) and `chunk_{k:06d}.npz` files, chunk k
holding seeds [seed_start + k*chunk_size, ...) in order. Arrays per chunk (n_k rows):
    seeds  [n_k] int64
    z      [n_k, z_dim] float32          exactly latentlab.z_from_seeds(seeds)
    w      [n_k, w_dim] float32          ws[:, 0] after truncation
    wplus  [n_k, num_ws, w_dim] float32  only when a truncation cutoff makes the layers differ
    styles [n_k, S] float32              only with save_styles (packed S-space vectors)
    images [n_k, t, t, C] uint8          only with save_images (thumbnails)
    scores [n_k, A] float32              classifier logits, columns = manifest["names"]
A chunk file is written atomically and is the only record that the chunk is done: a
missing or damaged one (unreadable, wrong fields, shapes or seeds) is simply recomputed.
Several ranks write into the same folder, so merging their work is just reading it.
"""

import os
import zipfile
import zlib

import numpy as np

from ..errors import ConfigError
from ..utils.atomic import save_npz
from ..utils.limits import MAX_NPZ_MEMBERS
from ..utils.npy import load_npz
from .manifest import read_manifest

__all__ = ["SampleTable", "chunk_name", "chunk_path", "chunk_problem", "chunk_seeds", "write_chunk"]


def chunk_name(k):
    return f"chunk_{k:06d}.npz"


def chunk_path(out_dir, k):
    return os.path.join(os.fspath(out_dir), chunk_name(k))


def chunk_seeds(manifest, k):
    """The seeds of chunk k (int64), from the manifest's n, seed_start and chunk_size."""
    start = manifest["seed_start"] + k * manifest["chunk_size"]
    stop = manifest["seed_start"] + min(manifest["n"], (k + 1) * manifest["chunk_size"])
    return np.arange(start, stop, dtype=np.int64)


def write_chunk(out_dir, k, arrays):
    save_npz(chunk_path(out_dir, k), arrays)


def _npz_headers(path):
    """{field: (shape, dtype)} from the .npy headers inside an npz, reading no array data.

    ValueError (ConfigError) when the file is not a readable npz, has more members than an .npz may
    (`MAX_NPZ_MEMBERS`), or a member's size disagrees with its header (a truncated, forged or foreign file).
    """
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_NPZ_MEMBERS:
                raise ConfigError(f"{len(infos)} members (at most {MAX_NPZ_MEMBERS})")
            for info in infos:
                if not info.filename.endswith(".npy"):
                    raise ConfigError(f"unexpected member {info.filename[:100]!r}")
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version not in ((1, 0), (2, 0)):
                        raise ConfigError(f"{info.filename}: npy format version {version} is not one we write")
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(f)
                    count = 1
                    for d in shape:  # Python integers: a forged shape cannot overflow into a small size
                        count *= int(d)
                    expected = f.tell() + count * dtype.itemsize
                if info.file_size != expected:
                    raise ConfigError(f"{info.filename}: {info.file_size} bytes where the header implies {expected}")
                out[info.filename[:-4]] = (tuple(shape), dtype)
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error, RuntimeError, NotImplementedError, SyntaxError) as e:
        # truncated or corrupted members, encrypted or unsupported compression, unparsable headers
        raise ConfigError(f"not a readable npz ({type(e).__name__}: {str(e)[:200]})") from None
    return out


def chunk_problem(out_dir, k, manifest):
    """None when chunk k exists and agrees with the manifest; otherwise why not (a short phrase).

    Checks the fields, every shape and dtype from the npy headers, and the seeds
    themselves; the bulk data is not read (writes are atomic, so a damaged file is a
    truncated or foreign one, which these checks catch).
    """
    path = chunk_path(out_dir, k)
    if not os.path.exists(path):
        return "missing"
    try:
        headers = _npz_headers(path)
    except ValueError as e:
        return f"unreadable: {e}"
    seeds = chunk_seeds(manifest, k)
    want = manifest["fields"]
    if set(headers) != set(want):
        return f"has fields {sorted(headers)[:20]}, expected {sorted(want)}"
    for name, spec in want.items():
        shape, dtype = headers[name]
        expected = (len(seeds), *spec["shape"])
        if shape != expected or dtype != np.dtype(spec["dtype"]):
            return f"{name} is {dtype}{list(shape)}, expected {spec['dtype']}{list(expected)}"
    try:  # headers checked again by latentlab.utils.npy before the data is read
        found = load_npz(path, keys=("seeds",), what="sample chunk")["seeds"]
    except ConfigError as e:  # damaged member data
        return f"unreadable seeds ({e})"
    if not np.array_equal(found, seeds):
        return f"holds seeds {found[:1].tolist()}..., expected {seeds[0]}..{seeds[-1]}"
    return None


def _as_fields(fields):
    if isinstance(fields, str):
        return (fields,)
    fields = tuple(fields)
    if not fields or not all(isinstance(f, str) for f in fields):
        raise ConfigError(f"fields must be a non-empty list of field names, got {fields!r}")
    return fields


class SampleTable:
    """Read a sample folder: `len`, `names`, `seeds()`, `load`, `iter_chunks`, `scores_frame`, `export`.

    Nothing is loaded up front beyond the manifest and the chunks' headers and seeds;
    `iter_chunks` holds one chunk at a time and `load` only the concatenated result.
    A folder with missing or damaged chunks is refused unless `allow_partial=True`
    (then only the valid chunks are read, still in seed order).
    """

    def __init__(self, out_dir, allow_partial=False):
        self.out_dir = os.fspath(out_dir)
        self.manifest = read_manifest(self.out_dir)
        self.names = list(self.manifest["names"])
        self.fields = tuple(self.manifest["fields"])
        self._chunks, missing = self._scan()
        if missing and not allow_partial:
            first = ", ".join(f"{chunk_name(k)} ({why})" for k, why in missing[:3])
            raise ConfigError(
                f"{self.out_dir}: {len(missing)} of {self.manifest['num_chunks']} chunks are missing or "
                f"damaged ({first}{', ...' if len(missing) > 3 else ''}); rerun the same "
                "`latentlab sample` command to complete them, or read with allow_partial=True"
            )
        self._len = sum(n for _, n in self._chunks)

    def _scan(self):
        good, bad = [], []
        for k in range(self.manifest["num_chunks"]):
            why = chunk_problem(self.out_dir, k, self.manifest)
            if why is None:
                good.append((k, len(chunk_seeds(self.manifest, k))))
            else:
                bad.append((k, why))
        return good, bad

    def __len__(self):
        return self._len

    def __repr__(self):
        return (
            f"SampleTable({self.out_dir!r}: {len(self)} samples in {len(self._chunks)} chunks, "
            f"fields {', '.join(self.fields)}, {len(self.names)} attributes)"
        )

    @property
    def chunks(self):
        """Indices of the chunks this table reads."""
        return [k for k, _ in self._chunks]

    def missing_chunks(self):
        """Indices of the chunks missing or damaged on disk now (rescanned on every call)."""
        return [k for k, _ in self._scan()[1]]

    def seeds(self):
        return self.load(fields=("seeds",))["seeds"]

    def _check_fields(self, fields):
        fields = _as_fields(fields)
        for f in fields:
            if f not in self.fields:
                hint = {
                    "styles": " (sample with --styles / save_styles=True)",
                    "images": " (sample with --images / save_images=True)",
                    "wplus": " (only stored when a truncation cutoff makes the ws layers differ; use w)",
                }.get(f, "")
                raise ConfigError(f"no field {f!r} in {self.out_dir}{hint}; it has {', '.join(self.fields)}")
        return fields

    def _attr_columns(self, attrs):
        if attrs is None:
            return None
        attrs = [attrs] if isinstance(attrs, str) else list(attrs)
        unknown = [a for a in attrs if a not in self.names]
        if unknown or not attrs:
            raise ConfigError(
                f"unknown attributes {unknown or attrs}; the samples in {self.out_dir} have: {', '.join(self.names)}"
            )
        return [self.names.index(a) for a in attrs]

    def field_spec(self, field):
        """(per-row shape, dtype) of a field."""
        spec = self.manifest["fields"][self._check_fields(field)[0]]
        return tuple(spec["shape"]), np.dtype(spec["dtype"])

    def iter_chunks(self, fields=("w", "scores"), attrs=None):
        """Yield one dict of arrays per chunk, in seed order; `attrs` picks score columns by name."""
        fields = self._check_fields(fields)
        cols = self._attr_columns(attrs)
        for k, n in self._chunks:
            # each member's header is checked again before its data is read (the chunk may have changed since the
            # scan): damaged data, a missing field or another shape is one ConfigError naming the chunk
            path = chunk_path(self.out_dir, k)
            try:
                out = load_npz(path, keys=fields, what="sample chunk")
            except ConfigError as e:  # e.g. damaged data behind intact headers (the scan reads only the seeds)
                raise ConfigError(
                    f"{e}; delete it and rerun the same `latentlab sample` command to recompute it"
                ) from None
            for f in fields:
                shape, dtype = self.field_spec(f)
                got = out.get(f)
                if got is None or got.shape != (n, *shape) or got.dtype != dtype:
                    found = "missing" if got is None else f"{got.dtype}{list(got.shape)}"
                    raise ConfigError(
                        f"{path}: {f} is {found}, expected {dtype}{[n, *shape]} (the chunk changed since it was checked)"
                    )
            out = {f: out[f] for f in fields}
            if cols is not None and "scores" in out:
                out["scores"] = np.ascontiguousarray(out["scores"][:, cols])
            yield out

    def load(self, fields=("w", "scores"), attrs=None):
        """{field: array over all samples} in seed order, filled chunk by chunk into preallocated arrays."""
        fields = self._check_fields(fields)
        cols = self._attr_columns(attrs)
        out = {}
        for f in fields:
            shape, dtype = self.field_spec(f)
            if f == "scores" and cols is not None:
                shape = (len(cols),)
            out[f] = np.empty((len(self), *shape), dtype=dtype)
        row = 0
        for part in self.iter_chunks(fields, attrs):
            n = len(part[fields[0]])
            for f in fields:
                out[f][row : row + n] = part[f]
            row += n
        return out

    def scores_frame(self, attrs=None):
        """pandas DataFrame of the scores (logits): one column per attribute, indexed by seed."""
        import pandas as pd

        data = self.load(fields=("seeds", "scores"), attrs=attrs)
        columns = self.names if attrs is None else ([attrs] if isinstance(attrs, str) else list(attrs))
        return pd.DataFrame(data["scores"], index=pd.Index(data["seeds"], name="seed"), columns=columns)

    def export(self, path, fields=None):
        """Write the table as one file: `.npz` (always available) or `.parquet` (needs pyarrow). Returns path."""
        from .export import export_table

        return export_table(self, path, self._check_fields(fields if fields is not None else self.fields))
