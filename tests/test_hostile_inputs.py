"""Hostile and broken input files (JSON, .npy/.npz, datasets) and absurd command-line ranges: each ends in one
line naming the file (or option) and the problem, within bounded time and memory (issue 16).

The hostile files are built at run time in tmp_path. Fast in-process tests check the checkers themselves
(`latentlab.utils.safe_json`, `latentlab.utils.npy`, the dataset reader, the range parsers); the subprocess
tests run the real CLI under a memory cap (tests/hostile.py) and are grouped, several cases per run.
"""

import io
import json
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest
from hostile import assert_no_leftovers, assert_one_line_error, run_capped
from PIL import Image

from latentlab.datasets.images import ImageDataset, open_image
from latentlab.edits.linear import MAX_ALPHAS, parse_alphas
from latentlab.edits.registry import attributes_in
from latentlab.errors import CheckpointError, ConfigError
from latentlab.latents.codes import LatentCodes
from latentlab.latents.directions import load_direction
from latentlab.latents.layers import check_layer_spec
from latentlab.latents.seeds import MAX_SEEDS, parse_seeds
from latentlab.sampling.manifest import read_manifest
from latentlab.truncation.base import Truncation
from latentlab.utils.npy import load_npy, load_npz
from latentlab.utils.safe_json import (
    MAX_JSON_DEPTH,
    AnyOf,
    Int,
    List,
    Map,
    Obj,
    Str,
    inside_folder,
    json_depth,
    load_json,
    loads_json,
)


# ------------------------------------------------------------------------------------------------ builders
def npy_header(shape, descr="<f8"):
    """The bytes of an .npy header claiming `shape` of `descr` (no data)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def png_claiming(width, height):
    """A PNG whose IHDR claims width x height pixels, with one tiny IDAT (the header is what matters)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def png_bytes(size=8, color=(10, 20, 30)):
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ JSON reader
def test_json_depth_counts_brackets_outside_strings_only():
    # independent expectation: hand-counted depths
    assert json_depth('{"a": [1, {"b": "[[[{{{"}]}') == 3
    assert json_depth('"[[[" ') == 0
    assert json_depth(r'["a\"[[", [[]]]') == 3  # an escaped quote does not end the string
    assert json_depth("[]" * 1000) == 1
    t0 = time.perf_counter()
    assert json_depth("[" * 2_000_000) == 2_000_000  # linear, no recursion
    assert time.perf_counter() - t0 < 5


def test_loads_json_refuses_deep_large_and_broken_text_naming_the_source():
    deep = "[" * 200_000 + "]" * 200_000  # json.loads alone would raise RecursionError
    with pytest.raises(ConfigError, match=r"^deep\.json: JSON nested 200000 levels deep \(at most 64"):
        loads_json(deep, "deep.json")
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads_json(ok, "ok.json") is not None
    with pytest.raises(ConfigError, match=r"^big\.json: 101 bytes of JSON, more than the 100"):
        loads_json("x" * 101, "big.json", max_bytes=100)
    with pytest.raises(CheckpointError, match=r"^m: not valid JSON"):
        loads_json("{'single': 1}", "m", error=CheckpointError)
    with pytest.raises(ConfigError, match="not valid JSON"):
        loads_json("1" * 10_000, "digits.json")  # Python refuses ints of more than 4300 digits


def test_schema_names_the_key_path_and_the_problem():
    schema = Obj(
        {"attributes": Map(Obj({"file": Str(), "space": AnyOf(None, Str())}, required=["file"])), "n": Int(1, 10)},
        required=["attributes"],
    )
    cases = {
        '{"attributes": {"smile": {"file": 3}}}': "idx.json: attributes.smile.file: expected a string, got 3",
        '{"attributes": {"smile": {}}}': "idx.json: attributes.smile.file: missing",
        "[]": "idx.json: top level: expected an object, got a list",
        '{"attributes": {}, "n": 1e300}': "idx.json: n: expected an integer, got 1e+300",
        '{"attributes": {}, "n": 11}': "idx.json: n: 11 is outside [1, 10]",
        '{"attributes": {}, "n": true}': "idx.json: n: expected an integer, got true",
        '{"attributes": {"a": {"file": "x", "space": 4}}}': "idx.json: attributes.a.space: expected a string, got 4",
    }
    for text, message in cases.items():
        with pytest.raises(ConfigError) as e:
            loads_json(text, "idx.json", schema)
        assert str(e.value) == message
    assert loads_json('{"attributes": {"a": {"file": "x", "space": null}}}', "idx.json", schema)["attributes"]
    with pytest.raises(ConfigError, match=r"l\.json: \[2\]: expected an integer"):
        loads_json('[1, 2, "3"]', "l.json", List(Int()))


def test_load_json_checks_the_size_before_reading(tmp_path):
    p = tmp_path / "huge.json"
    with open(p, "wb") as f:
        f.truncate(200 << 20)  # a sparse 200 MiB file: refused from its size, never read
    with pytest.raises(ConfigError, match=r"huge\.json: 209715200 bytes of JSON"):
        load_json(p)


def test_index_entries_may_not_leave_their_folder(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    assert inside_folder("sub/smile.npy", folder, "i", "k") == str(folder / "sub" / "smile.npy")
    for bad in ("/etc/passwd", "../secret.npy", "a/../../x.npy", "C:\\x.npy", "..\\x.npy", ""):
        with pytest.raises(ConfigError, match="i: k:"):
            inside_folder(bad, folder, "i", "k")
    (tmp_path / "secret.npy").write_bytes(b"")
    (folder / "index.json").write_text(json.dumps({"attributes": {"smile": {"file": "../secret.npy"}}}))
    with pytest.raises(ConfigError, match=r"index\.json: attributes\.smile\.file: '\.\./secret\.npy' points outside"):
        attributes_in(str(folder))
    (folder / "index.json").write_text(json.dumps({"attributes": {"smile": {"file": ["a"]}}}))
    with pytest.raises(ConfigError, match=r"attributes\.smile\.file: expected a string"):
        attributes_in(str(folder))
    (folder / "index.json").write_text(json.dumps({"attributes": {"smile": {"file": "smile.npy", "space": "w"}}}))
    assert attributes_in(str(folder))["smile"] == {"file": str(folder / "smile.npy"), "space": "w"}


def test_manifest_with_absurd_numbers_is_refused(tmp_path):
    m = {
        "format": "latentlab-samples",
        "format_version": 1,
        "model_hash": "ab",
        "classifier": {},
        "names": ["smile"],
        "n": 10,
        "seed_start": 0,
        "chunk_size": 5,
        "num_chunks": 2,
        "truncation_psi": 1.0,
        "truncation_cutoff": None,
        "noise_mode": "const",
        "class_idx": None,
        "save_styles": False,
        "save_images": False,
        "thumb_size": None,
        "fields": {"z": {"shape": [512], "dtype": "float32"}},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    assert read_manifest(tmp_path)["n"] == 10
    for change, message in [
        ({"num_chunks": 10**15}, "num_chunks: 1000000000000000 is outside"),
        ({"num_chunks": 3}, "num_chunks 3 does not match n 10 in chunks of 5"),
        ({"chunk_size": 0}, "chunk_size: 0 is outside"),
        ({"names": {"a": 1}}, "names: expected a list, got an object"),
        ({"fields": {"z": {"shape": "512", "dtype": "float32"}}}, "fields.z.shape: expected a list"),
        ({"seed_start": 2**32 - 5}, "go past"),
    ]:
        (tmp_path / "manifest.json").write_text(json.dumps({**m, **change}))
        with pytest.raises(ConfigError) as e:
            read_manifest(tmp_path)
        assert str(tmp_path / "manifest.json") in str(e.value) and message in str(e.value), str(e.value)


# ------------------------------------------------------------------------------------------------ .npy / .npz
def test_load_npy_refuses_lying_and_unusual_files_before_reading(tmp_path):
    good = np.arange(6, dtype=np.float64).reshape(1, 6)
    np.save(tmp_path / "good.npy", good)
    np.testing.assert_array_equal(load_npy(tmp_path / "good.npy"), good)

    np.savez(tmp_path / "arch.npz", a=good)
    (tmp_path / "arch.npz").rename(tmp_path / "named.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "tera.npy").write_bytes(npy_header((10**6, 10**6)) + b"\0" * 64)  # claims 8 TB
    np.save(tmp_path / "struct.npy", np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]))
    (tmp_path / "object.npy").write_bytes(npy_header((3,), "|O") + b"\0" * 24)
    (tmp_path / "text.npy").write_bytes(b"not numpy at all")
    np.save(tmp_path / "strings.npy", np.array(["a", "b"]))
    cases = {
        "named.npy": "an .npz archive, not a single",
        "empty.npy": "empty file",
        "tera.npy": "header claims a 1000000x1000000 float64 array (8000000000000 bytes) but the file holds 64 bytes",
        "struct.npy": "structured or object dtype",
        "object.npy": "structured or object dtype",
        "text.npy": "not a valid .npy array",
        "strings.npy": "is not a numeric array",
    }
    for name, message in cases.items():
        with pytest.raises(ConfigError) as e:
            load_npy(tmp_path / name)
        assert str(e.value).startswith(str(tmp_path / name)) and message in str(e.value), str(e.value)
    with pytest.raises(ConfigError, match="more than the 16 bytes"):
        load_npy(tmp_path / "good.npy", max_bytes=16)


def test_load_npz_checks_every_member_before_reading_any(tmp_path):
    np.savez(tmp_path / "good.npz", codes=np.ones((2, 3), np.float32), space=np.asarray("w"))
    out = load_npz(tmp_path / "good.npz")
    assert set(out) == {"codes", "space"} and out["codes"].shape == (2, 3) and str(out["space"]) == "w"
    assert set(load_npz(tmp_path / "good.npz", keys=["space"])) == {"space"}

    with zipfile.ZipFile(tmp_path / "forged.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("space.npy", npy_header((), "<U1") + "w".encode("utf-32-le"))
        z.writestr("codes.npy", npy_header((100_000, 100_000), "<f4") + b"\0" * 100)  # 40 GB claimed
    with pytest.raises(ConfigError, match=r"forged\.npz: array 'codes': header claims a 100000x100000 float32"):
        load_npz(tmp_path / "forged.npz")
    with zipfile.ZipFile(tmp_path / "objects.npz", "w") as z:
        z.writestr("codes.npy", npy_header((2,), "|O") + b"\0" * 16)
    with pytest.raises(ConfigError, match=r"array 'codes': structured or object dtype"):
        load_npz(tmp_path / "objects.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(ConfigError, match=r"single\.npz: a single \.npy array, not a"):
        load_npz(tmp_path / "single.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(ConfigError, match=r"junk\.npz: damaged \.npz archive"):
        load_npz(tmp_path / "junk.npz")


def test_readers_of_directions_latents_and_clusters_use_the_checks(tmp_path):
    (tmp_path / "dir.npy").write_bytes(npy_header((1, 10**12)) + b"\0" * 8)
    with pytest.raises(ConfigError, match=r"dir\.npy: header claims"):
        load_direction(str(tmp_path / "dir.npy"))
    np.save(tmp_path / "lat.npy", np.ones((2, 512), np.float32))
    (tmp_path / "lat.npy").rename(tmp_path / "lat.npz")
    with pytest.raises(ConfigError, match=r"lat\.npz: a single \.npy array"):
        LatentCodes.load(tmp_path / "lat.npz")
    np.savez(tmp_path / "text_codes.npz", codes=np.array(["a"]), space=np.asarray("w"))
    with pytest.raises(ConfigError, match=r"array 'codes' has dtype <U1, expected numbers"):
        LatentCodes.load(tmp_path / "text_codes.npz")
    deep = "[" * 100_000 + "]" * 100_000
    np.savez(tmp_path / "deep.npz", kind=np.asarray("clusters"), meta=np.asarray(deep))
    with pytest.raises(ConfigError, match=r"deep\.npz: meta: JSON nested 100000 levels deep"):
        Truncation.load(tmp_path / "deep.npz")
    meta = json.dumps({"params": {"no_such_parameter": 1}, "state": {}})
    np.savez(tmp_path / "kwargs.npz", kind=np.asarray("w"), meta=np.asarray(meta))
    with pytest.raises(ConfigError, match=r"kwargs\.npz: not a valid truncation file \(TypeError"):
        Truncation.load(tmp_path / "kwargs.npz")
    meta = json.dumps({"params": {}, "state": {"layers": {"coarse": list(range(5000))}}})
    np.savez(tmp_path / "layers.npz", kind=np.asarray("clusters"), meta=np.asarray(meta))
    with pytest.raises(ConfigError, match=r"layers\.npz: meta: state\.layers\.coarse: list of 5000 items"):
        Truncation.load(tmp_path / "layers.npz")


# ------------------------------------------------------------------------------------------------ datasets
def test_dataset_zip_bomb_and_huge_image_headers_are_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.png", png_bytes())
        z.writestr("b.bmp", b"\0" * (16 << 20))  # 16 MiB of zeros deflate to ~16 KB: ~1000x
    with pytest.raises(ConfigError, match=r"bomb\.zip: 'b\.bmp' inflates \d+x \(at most 200x"):
        ImageDataset(bomb, 8)

    huge = tmp_path / "huge.zip"
    with zipfile.ZipFile(huge, "w") as z:
        z.writestr("a.png", png_bytes())
        z.writestr("b.png", png_claiming(9000, 9000))  # above our 8192^2, below PIL's own warning
        z.writestr("c.png", png_claiming(200_000, 200_000))  # PIL itself raises DecompressionBombError
    ds = ImageDataset(huge, 8)
    assert ds.image(0).shape == (3, 8, 8)
    with pytest.raises(ConfigError, match=r"huge\.zip: image 'b\.png': header claims 9000x9000 pixels"):
        ds.image(1)
    with pytest.raises(ConfigError, match=r"huge\.zip: image 'c\.png': refused as a decompression bomb"):
        ds.image(2)
    # PIL's warning (between its limit and twice it) becomes the same one line, not a warning and a decode
    with pytest.raises(ConfigError, match="x.png: refused as a decompression bomb"):
        open_image(png_claiming(10_000, 10_000), "x.png", max_pixels=10**12)


def test_dataset_labels_with_absurd_values_are_refused(tmp_path):
    def dataset(labels):
        folder = tmp_path / f"ds{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "a.png").write_bytes(png_bytes())
        (folder / "b.png").write_bytes(png_bytes())
        (folder / "dataset.json").write_text(json.dumps({"labels": labels}))
        return folder

    ds = ImageDataset(dataset([["a.png", 2], ["b.png", 0]]), 8, use_labels=True)
    np.testing.assert_array_equal(ds.labels, [[0, 0, 1], [1, 0, 0]])  # one-hot by hand
    for labels, message in [
        ([["a.png", 10**12], ["b.png", 0]], "labels[0][1]: 1000000000000 is outside [0, 99999]"),
        ([["a.png", -1], ["b.png", 0]], "labels[0][1]: -1 is outside"),
        ([["a.png", 1], ["b.png", [0.5]]], "all be class indices or all be vectors"),
        ([["a.png", [1.0]], ["b.png", [0.5, 2]]], "label vectors of different lengths"),
        ([["a.png", "x"], ["b.png", 0]], "labels[0][1]: expected a number"),
        ([[3, 1], ["b.png", 0]], "labels[0][0]: expected a string"),
        ({"a.png": 1}, "labels: expected a list"),
    ]:
        with pytest.raises(ConfigError) as e:
            ImageDataset(dataset(labels), 8, use_labels=True)
        assert "dataset.json" in str(e.value) and message in str(e.value), str(e.value)


# ------------------------------------------------------------------------------------------------ ranges
def test_range_parsers_refuse_absurd_counts_before_building_them():
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=f"makes 1000000001 seeds, more than {MAX_SEEDS}"):
        parse_seeds("0-1000000000")
    with pytest.raises(ConfigError, match=f"more than {MAX_SEEDS}"):
        parse_seeds(f"0-{MAX_SEEDS - 1},7")
    assert len(parse_seeds(f"0-{MAX_SEEDS - 1}")) == MAX_SEEDS
    with pytest.raises(ConfigError, match=f"10000000 values, at most {MAX_ALPHAS}"):
        parse_alphas("-3:3:10000000")
    assert parse_alphas("-3:3:7") == [-3, -2, -1, 0, 1, 2, 3]
    with pytest.raises(ConfigError, match="no model has a layer 1000000000"):
        check_layer_spec("0-1000000000")
    assert time.perf_counter() - t0 < 5  # nothing of the claimed size was built


# ------------------------------------------------------------------------------------------------ the real CLI
@pytest.mark.slow
def test_cli_refuses_absurd_ranges_and_devices_in_one_line(tmp_path):
    out = tmp_path / "out"
    cases = [
        (["generate", "--seeds", "0-1000000000"], ["--seeds", "1000000 per run"]),
        (["edit", "--attr", "smile", "--alpha", "-3:3:10000000"], ["--alpha", "at most 10000"]),
        (["interpolate", "--frames", "100000000"], ["--frames", "10000"]),
        (["edit", "--attr", "smile", "--layers", "0-1000000000"], ["--layers", "no model has a layer"]),
        (["generate", "--seeds", "0", "--device", "gpu"], ["--device", "'gpu' is not a device"]),
        (["generate", "--seeds", "0", "--device", "cuda:-1"], ["--device", "'cuda:-1'"]),
    ]
    for args, fragments in cases:
        t0 = time.perf_counter()
        proc = run_capped([*args, "--out", out], tmp_path)
        assert_one_line_error(proc, *fragments)
        assert time.perf_counter() - t0 < 60
    assert not out.exists()


@pytest.mark.slow
def test_cli_refuses_hostile_direction_latents_boundary_and_cluster_files(tmp_path):
    (tmp_path / "tera.npy").write_bytes(npy_header((1, 10**12)) + b"\0" * 8)
    np.save(tmp_path / "lat.npy", np.ones((2, 64), np.float32))
    (tmp_path / "lat.npy").rename(tmp_path / "lat.npz")
    bdir = tmp_path / "bounds"
    bdir.mkdir()
    (bdir / "index.json").write_text(json.dumps({"attributes": {"smile": {"file": "/etc/passwd"}}}))
    deepdir = tmp_path / "deep"
    deepdir.mkdir()
    (deepdir / "index.json").write_text("[" * 500_000 + "]" * 500_000)
    deep = "[" * 100_000 + "]" * 100_000
    np.savez(tmp_path / "clusters.npz", kind=np.asarray("clusters"), meta=np.asarray(deep))
    out = tmp_path / "out"
    cases = [
        (["edit", "--boundary", tmp_path / "tera.npy", "--seeds", "0"], [tmp_path / "tera.npy", "header claims"]),
        (["edit", "--boundary", tmp_path / "tera.npy", "--latents", tmp_path / "lat.npz"], ["lat.npz"]),
        (["edit", "--boundaries", bdir, "--attr", "smile", "--seeds", "0"], ["index.json", "attributes.smile.file"]),
        (["edit", "--boundaries", deepdir, "--attr", "smile", "--seeds", "0"], ["index.json", "nested 500000"]),
        (["truncate", "--seeds", "0", "--clusters", tmp_path / "clusters.npz"], ["clusters.npz", "nested 100000"]),
    ]
    for args, fragments in cases:
        proc = run_capped([*args, "--out", out], tmp_path)
        assert_one_line_error(proc, *fragments)
    assert_no_leftovers(tmp_path)
