"""Precomputed attribute scores keyed by seed (a CSV or Parquet table, or a DataFrame).

Not an image classifier: it answers `scores_for(seeds)` from the table, with the same
`names` / `index` / `select` as the classifiers so code can take either.
"""

import os

import numpy as np

from ..errors import ConfigError
from ..utils.optional import MissingDependency, available
from .base import NamedAttributes, check_names
from .celeba import resolve_name

__all__ = ["TableScores"]


def _read(path):
    import pandas as pd

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such scores table")
    ext = os.path.splitext(path)[1].lower()
    if ext in (".parquet", ".pq"):
        if not (available("pyarrow") or available("fastparquet")):
            raise MissingDependency(f"{path}: reading Parquet needs pyarrow or fastparquet: pip install pyarrow")
        return pd.read_parquet(path)
    if ext in (".csv", ".txt", ".tsv"):
        try:
            return pd.read_csv(path, sep="\t" if ext == ".tsv" else ",")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not a readable CSV table ({e})") from None
    raise ConfigError(f"{path}: unknown table type {ext!r}; use .csv or .parquet")


class TableScores(NamedAttributes):
    """Scores [N, A] for seeds, looked up in a table with a `key` column (default 'seed').

    names: the score columns to use (aliases and other spellings allowed); by default every
    numeric column except the key.
    """

    def __init__(self, path_or_dataframe, key="seed", names=None):
        import pandas as pd

        if isinstance(path_or_dataframe, pd.DataFrame):
            df, self.source = path_or_dataframe, "table"
        else:
            df, self.source = _read(path_or_dataframe), os.fspath(path_or_dataframe)
        if key not in df.columns:
            raise ConfigError(f"{self.source}: no key column {key!r}; columns: {', '.join(map(str, df.columns))}")
        keys = df[key]
        if not pd.api.types.is_integer_dtype(keys):
            raise ConfigError(f"{self.source}: key column {key!r} must hold integer seeds, has dtype {keys.dtype}")
        if keys.duplicated().any():
            raise ConfigError(f"{self.source}: seed {int(keys[keys.duplicated()].iloc[0])} appears more than once")
        candidates = [c for c in df.columns if c != key]
        if names is None:
            chosen = [c for c in candidates if pd.api.types.is_numeric_dtype(df[c])]
            if not chosen:
                raise ConfigError(f"{self.source}: no numeric score columns besides {key!r}")
            names, signs = [str(c) for c in chosen], [1] * len(chosen)
        else:
            names = check_names([names] if isinstance(names, str) else names)
            resolved = [resolve_name(n, [str(c) for c in candidates]) for n in names]
            chosen, signs = [candidates[i] for i, _ in resolved], [s for _, s in resolved]
            bad = [c for c in chosen if not pd.api.types.is_numeric_dtype(df[c])]
            if bad:
                raise ConfigError(f"{self.source}: column {bad[0]!r} is not numeric")
        self.names = list(names)
        self.key = key
        values = df[chosen].to_numpy(dtype=np.float64) * np.asarray(signs, dtype=np.float64)
        if not np.isfinite(values).all():
            row = int(np.argwhere(~np.isfinite(values))[0][0])
            raise ConfigError(f"{self.source}: missing or non-finite score for seed {int(keys.iloc[row])}")
        self._values = values.astype(np.float32)
        self._seeds = keys.to_numpy(dtype=np.int64)
        self._row = {int(s): i for i, s in enumerate(self._seeds)}

    @property
    def seeds(self):
        return self._seeds.copy()

    def scores_for(self, seeds):
        """float32 [N, A] for these seeds, in that order; ValueError listing seeds the table lacks."""
        seeds = [int(s) for s in np.asarray(seeds).reshape(-1)]
        missing = [s for s in seeds if s not in self._row]
        if missing:
            shown = ", ".join(map(str, missing[:20])) + (", ..." if len(missing) > 20 else "")
            raise ConfigError(f"{self.source}: no scores for {len(missing)} seed(s): {shown}")
        return self._values[[self._row[s] for s in seeds]]

    def select(self, names):
        import pandas as pd

        names, resolved = self._resolve_all(names)
        df = pd.DataFrame({n: self._values[:, i] * s for n, (i, s) in zip(names, resolved)})
        df.insert(0, self.key, self._seeds)
        out = TableScores(df, key=self.key)
        out.source = self.source
        return out

    def __len__(self):
        return len(self._seeds)

    def __repr__(self):
        return f"TableScores({self.source!r}, {len(self)} seeds, {len(self.names)} attributes)"
