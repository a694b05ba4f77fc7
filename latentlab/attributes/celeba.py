"""CelebA's 40 attributes, friendly aliases, and a reader for the standard CelebA folder layout.

Layout (as downloaded; the `Anno/`, `Eval/` and `Img/` subfolders of the official
archive are accepted too):

    ROOT/img_align_celeba/000001.jpg ...
    ROOT/list_attr_celeba.txt       line 1: image count; line 2: the 40 names;
                                    then `000001.jpg  -1  1  1 ...` (-1 = absent, 1 = present)
    ROOT/list_eval_partition.txt    `000001.jpg 0` (0 train, 1 validation, 2 test)
"""

import os
import re

import numpy as np

from ..errors import ConfigError

__all__ = ["CELEBA_40", "ALIASES", "SPLITS", "normalize_name", "resolve_name", "read_celeba", "find_celeba_file"]

# The order of list_attr_celeba.txt (and of every 40-logit CelebA classifier we build).
CELEBA_40 = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
]

# alias -> (CelebA name, sign). A sign of -1 means the alias is the opposite of the CelebA
# attribute, so its logit is the negated one: 'age' is positive for OLD faces (not Young),
# 'beard' positive for faces with a beard (not No_Beard).
ALIASES = {
    "smile": ("Smiling", 1),
    "age": ("Young", -1),
    "old": ("Young", -1),
    "gender": ("Male", 1),
    "eyeglasses": ("Eyeglasses", 1),
    "glasses": ("Eyeglasses", 1),
    "beard": ("No_Beard", -1),
    "hat": ("Wearing_Hat", 1),
    "lipstick": ("Wearing_Lipstick", 1),
    "makeup": ("Heavy_Makeup", 1),
    "blond": ("Blond_Hair", 1),
    "bald": ("Bald", 1),
    "bangs": ("Bangs", 1),
    "mouth_open": ("Mouth_Slightly_Open", 1),
}

SPLITS = {0: "train", 1: "val", 2: "test"}


def normalize_name(name):
    """Case, '-' and ' ' do not matter: 'wavy-hair', 'Wavy Hair' and 'Wavy_Hair' are one attribute."""
    return re.sub(r"[\s\-]+", "_", str(name).strip()).lower()


def resolve_name(name, names):
    """(index into `names`, sign) for an attribute name, a differently spelt one, or an alias.

    Raises ValueError listing the available names when nothing matches.
    """
    names = list(names)
    if name in names:
        return names.index(name), 1
    normalized = [normalize_name(n) for n in names]
    key = normalize_name(name)
    if key in normalized:
        return normalized.index(key), 1
    if key in ALIASES:
        target, sign = ALIASES[key]
        if normalize_name(target) in normalized:
            return normalized.index(normalize_name(target)), sign
    raise ConfigError(f"unknown attribute {name!r}; available: {', '.join(names)}")


def find_celeba_file(root, name, subfolders):
    for sub in ("",) + tuple(subfolders):
        path = os.path.join(root, sub, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(
        f"{root}: no {name} (looked in {', '.join(repr(s or '.') for s in ('',) + tuple(subfolders))})"
    )


def _bad_line(path, lines, expected_fields):
    """Line number (1-based) and text of the first data line without `expected_fields` fields."""
    for i, line in enumerate(lines, start=1):
        if line.strip() and len(line.split()) != expected_fields:
            return i, line.rstrip("\n")
    return None, None


def _read_table(path, skip, expected_fields, what):
    """Whitespace-separated rows as strings, with a line-numbered error for a malformed line."""
    import pandas as pd

    try:
        table = pd.read_csv(path, sep=r"\s+", skiprows=skip, header=None, dtype=str, engine="c")
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{path}: no {what} lines") from None
    except pd.errors.ParserError:
        table = None
    if table is None or table.shape[1] != expected_fields or table.isna().any().any():
        with open(path) as f:
            lines = f.readlines()[skip:]
        n, text = _bad_line(path, lines, expected_fields)
        if n is None:
            raise ConfigError(f"{path}: malformed {what} lines (expected {expected_fields} fields per line)")
        raise ConfigError(f"{path}:{n + skip}: malformed line {text!r} (expected {expected_fields} fields: {what})")
    return table


def _first_bad_value(path, table, skip, allowed, what):
    """Every field after the file name must be one of `allowed`."""
    good = np.isin(table.iloc[:, 1:].to_numpy(), allowed)
    if not good.all():
        row = int(np.argwhere(~good)[0][0])
        raise ConfigError(
            f"{path}:{row + skip + 1}: {what} must be {' or '.join(allowed)}, got line {' '.join(table.iloc[row])!r}"
        )


def read_attr_table(attr_path):
    """`list_attr_celeba.txt` alone: DataFrame with `file` and one -1/1 column per attribute (`attrs['names']`)."""
    import pandas as pd

    attr_path = os.fspath(attr_path)
    if not os.path.isfile(attr_path):
        raise FileNotFoundError(f"{attr_path}: no such attribute table")
    with open(attr_path) as f:
        head = [f.readline(), f.readline()]
    try:
        count = int(head[0].strip())
    except ValueError:
        raise ConfigError(f"{attr_path}:1: expected the number of images, got {head[0].strip()!r}") from None
    names = head[1].split()
    if not names:
        raise ConfigError(f"{attr_path}:2: expected the attribute names, got an empty line")
    if len(set(names)) != len(names):
        raise ConfigError(f"{attr_path}:2: repeated attribute names")
    attrs = _read_table(attr_path, 2, 1 + len(names), f"an image file and {len(names)} values")
    _first_bad_value(attr_path, attrs, 2, ["-1", "1"], "attribute values")
    if len(attrs) != count:
        raise ConfigError(f"{attr_path}: line 1 says {count} images, the file lists {len(attrs)}")
    df = pd.DataFrame({"file": attrs.iloc[:, 0].to_numpy()})
    values = attrs.iloc[:, 1:].astype(np.int8).to_numpy()
    df = pd.concat([df, pd.DataFrame(values, columns=names)], axis=1)
    if df["file"].duplicated().any():
        raise ConfigError(f"{attr_path}: image {df['file'][df['file'].duplicated()].iloc[0]!r} is listed twice")

    df.attrs["names"] = names
    return df


def read_celeba(root):
    """The CelebA annotation tables as one DataFrame, one row per image, in file order.

    Columns: `file`, the attribute names of `list_attr_celeba.txt` (int8, -1 or 1),
    `partition` (0/1/2), `split` ('train'/'val'/'test') and `path` (the image path).
    `df.attrs['names']` lists the attribute names. Raises FileNotFoundError for a
    missing file or folder and ValueError (with the line number) for a malformed line.
    """

    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such CelebA folder")
    attr_path = find_celeba_file(root, "list_attr_celeba.txt", ("Anno",))
    part_path = find_celeba_file(root, "list_eval_partition.txt", ("Eval",))
    image_dir = find_celeba_file(root, "img_align_celeba", ("Img",))
    if not os.path.isdir(image_dir):
        raise NotADirectoryError(f"{image_dir}: not a folder")

    df = read_attr_table(attr_path)
    names = df.attrs["names"]

    part = _read_table(part_path, 0, 2, "an image file and a partition")
    _first_bad_value(part_path, part, 0, ["0", "1", "2"], "partitions")
    partition = dict(zip(part.iloc[:, 0], part.iloc[:, 1].astype(int)))
    missing = [f for f in df["file"] if f not in partition]
    if missing:
        raise ConfigError(f"{part_path}: no partition for {len(missing)} image(s), e.g. {', '.join(missing[:5])}")
    df["partition"] = df["file"].map(partition).astype(np.int8)
    df["split"] = df["partition"].map(SPLITS)
    df["path"] = [os.path.join(image_dir, f) for f in df["file"]]
    df.attrs["names"] = names
    df.attrs["root"] = root
    return df
