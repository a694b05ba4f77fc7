"""Export a SampleTable to one file, streaming chunk by chunk so that memory stays flat.

`.npz`: one array per field over all samples plus `names` (attribute names), readable with
np.load; each member is written as an npy header followed by the chunks' bytes, so no field
is ever held in memory whole. `.parquet` (when pyarrow is installed): one row per sample,
columns `seed`, one float32 column per attribute and one fixed-size list column per other
field (flattened rows; the per-row shapes are in the schema metadata), one row group per chunk.
"""

import json
import os
import zipfile

import numpy as np

from ..errors import ConfigError
from ..utils.atomic import atomic_path
from ..utils.optional import require


def export_table(table, path, fields):
    path = os.fspath(path)
    if path.endswith(".npz"):
        return export_npz(table, path, fields)
    if path.endswith(".parquet"):
        return export_parquet(table, path, fields)
    raise ConfigError(f"{path}: export to a .npz or .parquet file")


def export_npz(table, path, fields):
    with atomic_path(path, ".npz") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for field in fields:
            shape, dtype = table.field_spec(field)
            header = dict(descr=np.lib.format.dtype_to_descr(dtype), fortran_order=False, shape=(len(table), *shape))
            with zf.open(field + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_2_0(f, header)
                for part in table.iter_chunks((field,)):
                    f.write(np.ascontiguousarray(part[field], dtype=dtype).tobytes())
        with zf.open("names.npy", "w") as f:
            np.lib.format.write_array(f, np.asarray(table.names, dtype=str))
    return path


def export_parquet(table, path, fields):
    pa = require("pyarrow", "pyarrow", f"{path}: exporting to parquet (or export to a .npz file)")
    pq = require("pyarrow.parquet", "pyarrow", f"{path}: exporting to parquet (or export to a .npz file)")
    vector_fields = [f for f in fields if f not in ("seeds", "scores")]
    clash = set(table.names) & ({"seed"} | set(vector_fields))
    if clash and "scores" in fields:
        raise ConfigError(f"attribute names {sorted(clash)} clash with column names; export to .npz instead")
    shapes = {f: list(table.field_spec(f)[0]) for f in vector_fields}
    meta = {b"latentlab": json.dumps(dict(names=table.names, shapes=shapes, manifest=table.manifest)).encode()}
    read = tuple(dict.fromkeys(("seeds", *fields)))
    with atomic_path(path, ".parquet") as tmp:
        writer = None
        try:
            for part in table.iter_chunks(read):
                cols = {"seed": pa.array(part["seeds"])}
                if "scores" in fields:
                    cols.update({name: pa.array(part["scores"][:, i]) for i, name in enumerate(table.names)})
                for f in vector_fields:
                    flat = part[f].reshape(len(part[f]), -1)
                    cols[f] = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])
                batch = pa.table(cols).replace_schema_metadata(meta)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, batch.schema)
                writer.write_table(batch)
            if writer is None:
                raise ConfigError(f"{path}: the table has no chunks to export")
        finally:
            if writer is not None:
                writer.close()
    return path
