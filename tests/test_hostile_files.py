"""The remaining user-file readers on the bounded, schema-checked readers (issue 16, second pass): JSON through
`latentlab.utils.safe_json`, .npy/.npz through `latentlab.utils.npy`, images through `datasets.images.open_image`.

Each hostile or broken file (built here at run time, never committed) must end in one ConfigError /
CheckpointError line naming the file and the problem: never a traceback, a RecursionError, a MemoryError or
minutes of work. Most cases call the library (fast); two subprocess runs of the real CLI under a memory cap
(tests/hostile.py) cover the most user-facing paths: classifier training on a folder with a bomb image, and
`latentlab sample` resuming over a corrupted chunk.
"""

import functools
import io
import json
import os
import struct
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile import assert_no_leftovers, assert_one_line_error, run_capped
from PIL import Image

from latentlab.errors import CheckpointError, ConfigError

DEEP = 300_000  # nesting far beyond MAX_JSON_DEPTH (json's recursive parser would fail around 10^3-10^4)


# ------------------------------------------------------------------------------------------------ builders
def deep_json(depth=DEEP):
    return "[" * depth + "]" * depth


def npy_header(shape, descr="<f8"):
    """The bytes of an .npy header claiming `shape` of `descr` (no data)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def png_claiming(width, height):
    """A PNG whose IHDR claims width x height pixels, with one tiny IDAT (a few dozen bytes in all)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def npz_named_npy(path):
    """An .npz archive saved under an .npy name."""
    buf = io.BytesIO()
    np.savez(buf, a=np.ones(3))
    path.write_bytes(buf.getvalue())
    return path


def terabyte_npy(path):
    """200 bytes claiming a 10^6 x 10^6 float64 array (8 TB)."""
    path.write_bytes(npy_header((10**6, 10**6)) + b"\0" * 64)
    return path


def refused(exc_type, call, *fragments):
    """Run `call`; it must raise `exc_type` with a one-line message holding every fragment. Returns the line."""
    with pytest.raises(exc_type) as e:
        call()
    line = str(e.value)
    assert "\n" not in line, line
    for f in fragments:
        assert str(f) in line, (f, line)
    return line


# ------------------------------------------------------------------------------------------------ JSON readers
def test_toyfaces_dataset_info_is_schema_checked(tmp_path):
    from latentlab.attributes.toyfaces_training import dataset_info

    assert dataset_info(tmp_path) == {}  # no dataset.json: nothing to record
    info = tmp_path / "dataset.json"
    info.write_text(json.dumps({"format": "latentlab-toyfaces", "version": 1, "n": 4, "seed": 3, "resolution": 64,
                                "attributes": ["smile"]}))  # fmt: skip
    assert dataset_info(tmp_path) == {"format": "latentlab-toyfaces", "version": 1, "n": 4, "seed": 3, "resolution": 64}
    for text, problem in [
        (deep_json(), f"JSON nested {DEEP} levels deep"),  # was a RecursionError
        ('{"n": "many"}', "n: expected an integer, got the string 'many'"),  # was recorded as is
        ('{"resolution": 1e400}', "resolution: expected an integer"),
        ("[1, 2]", "top level: expected an object, got a list"),  # was an AttributeError, silently ignored
        ('{"seed": 1', "not valid JSON"),
    ]:
        info.write_text(text)
        refused(ConfigError, lambda: dataset_info(tmp_path), f"{info}: ", problem)


def _als_folder(tmp_path, meta, logits=None):
    folder = tmp_path / f"als{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    np.save(folder / "logits.npy", np.zeros((2, 3, 1)) if logits is None else logits)
    (folder / "als.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return folder


def test_saved_als_report_meta_and_logits_are_checked(tmp_path):
    from latentlab.studies.reports import read_als_report

    # valid: ALS of a straight line is 0, of a bent path (0, 1, 0 over t) positive (paper protocol: mean squared
    # distance from the straight line, (1^2) / 3 frames here, averaged over 1 pair)
    bent = np.array([[[0.0], [1.0], [0.0]]])
    res = read_als_report(str(_als_folder(tmp_path, {"protocol": "paper", "names": ["smile"]}, bent)))
    assert list(res.index) == ["smile", "mean"] and res["smile"] > 0
    flat = read_als_report(str(_als_folder(tmp_path, {"protocol": "paper"}, np.zeros((1, 3, 2)))))
    assert flat["mean"] == 0

    for meta, problem in [
        (deep_json(), f"JSON nested {DEEP} levels deep"),
        ({"protocol": 5}, "protocol: expected a string, got 5"),
        ({"names": ["a"]}, "protocol: missing"),
        ({"protocol": "paper", "names": "smile"}, "names: expected a list"),
        ({"protocol": "paper", "standardize": "yes"}, "standardize: expected true or false"),
        ({"protocol": "paper", "units": [1]}, "units: expected an object"),
    ]:
        folder = _als_folder(tmp_path, meta)
        refused(ConfigError, lambda: read_als_report(str(folder)), f"{folder / 'als.json'}: ", problem)

    for build, problem in [
        (npz_named_npy, "an .npz archive, not a single ALS logits array"),
        (terabyte_npy, "header claims a 1000000x1000000 float64 array"),
    ]:
        folder = _als_folder(tmp_path, {"protocol": "paper"})
        build(folder / "logits.npy")
        refused(ConfigError, lambda: read_als_report(str(folder)), f"{folder / 'logits.npy'}: ", problem)


def test_saved_ppl_report_label_and_distances_are_checked(tmp_path):
    from latentlab.studies.ppl_figures import read_ppl_report

    folder = tmp_path / "run7"
    folder.mkdir()
    d = np.array([1.0, 2.0, 4.0])
    np.save(folder / "distances.npy", d)
    label, got = read_ppl_report(folder)  # no ppl.json: the folder's name
    assert label == "run7" and np.array_equal(got, d)
    (folder / "ppl.json").write_text(json.dumps({"label": "psi 0.5", "mean": 2.0, "histogram": {"counts": [1]}}))
    assert read_ppl_report(folder)[0] == "psi 0.5"
    (folder / "ppl.json").write_text(json.dumps({"label": None, "mean": 2.0}))
    assert read_ppl_report(folder)[0] == "run7"

    meta = folder / "ppl.json"
    for text, problem in [
        (deep_json(), f"JSON nested {DEEP} levels deep"),  # was a RecursionError
        ('{"label": ["a"]}', "label: expected a string, got a list"),  # was str(['a']) as the label
        ('"label"', "top level: expected an object"),
    ]:
        meta.write_text(text)
        refused(ConfigError, lambda: read_ppl_report(folder), f"{meta}: ", problem)
    meta.unlink()
    for build, problem in [
        (npz_named_npy, "an .npz archive, not a single array of path lengths"),
        (terabyte_npy, "header claims a 1000000x1000000 float64 array"),
    ]:
        build(folder / "distances.npy")
        refused(ConfigError, lambda: read_ppl_report(folder), f"{folder / 'distances.npy'}: ", problem)


def test_landmarks_files_are_bounded_and_schema_checked(tmp_path):
    from latentlab.inversion import align as A

    five = {"left_eye": [40, 50], "right_eye": [60, 50], "mouth_left": [42, 70], "mouth_right": [58, 70]}
    # many entries are read in linear time (duplicate keys used to be found by list.count: 10^10 steps here)
    many = {f"img{i}": 0 for i in range(100_000)}
    path = tmp_path / "many.json"
    path.write_text(json.dumps(dict(many, photo=five)))
    start = time.perf_counter()
    kp = A.read_landmarks(str(path), ["photo.png"])[0]
    assert time.perf_counter() - start < 10
    np.testing.assert_allclose(kp.eye_left, [40, 50])
    np.testing.assert_allclose(kp.mouth_right, [58, 70])
    path.write_text(json.dumps(many)[:-1] + ', "img5": 1}')
    refused(ConfigError, lambda: A.read_landmarks(str(path), ["photo.png"]), f"{path}: 'img5' appears twice")

    for entry, problem in [
        (dict(five, left_eye=[[[[1, 2]]]]), "'photo' left_eye: every point must be [x, y]"),
        (dict(five, right_eye=[1e400, 50]), "'photo' right_eye: landmarks must be finite numbers"),
        (dict(five, nose="here"), "'photo' nose: every point must be [x, y]"),
        ([[0, 0]] * 67 + [["1", 2]], "'photo': every point must be [x, y]"),
        (None, "'photo': expected 68 [x, y] points or an object"),
    ]:
        path.write_text(json.dumps({"photo": entry}).replace("Infinity", "1e400"))
        refused(ConfigError, lambda: A.read_landmarks(str(path), ["photo.png"]), f"{path}: ", problem)

    for build, problem in [
        (npz_named_npy, "an .npz archive, not a single landmarks (.npy) array"),
        (terabyte_npy, "header claims a 1000000x1000000 float64 array"),
    ]:
        npy = build(tmp_path / "marks.npy")
        refused(ConfigError, lambda: A.read_landmarks(str(npy), ["photo.png"]), f"{npy}: ", problem)
    np.save(tmp_path / "wide.npy", np.zeros((68, 2), np.complex128))
    refused(ConfigError, lambda: A.read_landmarks(str(tmp_path / "wide.npy"), ["p.png"]), "not a numeric array")


def _native_file(path, networks, extras="{}"):
    from safetensors.torch import save_file

    meta = {"format": "latentlab-checkpoint", "version": "1", "networks": networks, "extras": extras}
    save_file({"G_ema/x": torch.zeros(1)}, str(path), metadata=meta)
    return path


def test_native_checkpoint_metadata_is_schema_checked(tmp_path):
    from latentlab.checkpoints.native import read_native

    good = json.dumps({"G_ema": {"class_name": "Generator", "init_kwargs": {"z_dim": 4}}})
    source, nets, extras = read_native(_native_file(tmp_path / "ok.safetensors", good, '{"step": 3}'))
    assert nets["G_ema"][:2] == ("Generator", {"z_dim": 4}) and extras == {"step": 3}
    assert set(nets["G_ema"][2]) == {"x"}

    for networks, extras, problem in [
        ("[]", "{}", "metadata 'networks': top level: expected an object, got a list"),
        (json.dumps({"G": {"class_name": 7, "init_kwargs": {}}}), "{}", "G.class_name: expected a string"),
        (json.dumps({"G": {"class_name": "Generator", "init_kwargs": [1]}}), "{}", "G.init_kwargs: expected an obj"),
        (json.dumps({"G": {"class_name": "Generator"}}), "{}", "G.init_kwargs: missing"),
        (json.dumps({f"N{i}": {"class_name": "x", "init_kwargs": {}} for i in range(20)}), "{}", "20 entries"),
        (good, "[1]", "metadata 'extras': top level: expected an object"),
        (good, deep_json(), f"metadata nested {DEEP} levels deep in 'extras'"),
        ("{", "{}", "metadata 'networks': not valid JSON"),
    ]:
        path = _native_file(tmp_path / "bad.safetensors", networks, extras)
        refused(CheckpointError, lambda: read_native(path), f"{path}: ", problem)


def test_registry_json_is_schema_checked(tmp_path, monkeypatch):
    from latentlab import defaults
    from latentlab.checkpoints import download

    shipped = download.registry(None, shipped=True)  # the real registry passes its schema
    assert shipped and all("url" in e or "shipped" in e for e in shipped.values())

    path = tmp_path / "registry.json"
    monkeypatch.setattr(defaults, "shipped_path", lambda *parts: str(path))
    for doc, problem in [
        (deep_json(), f"JSON nested {DEEP} levels deep"),
        ({"_comment": "x", "ffhq": {"url": "https://a/b.pkl", "resolution": "1024"}}, "ffhq.resolution: expected an"),
        ({"ffhq": {"description": "no file"}}, "ffhq.url: missing"),
        ({"ffhq": {"url": "https://a/b.pkl", "mirrors": "https://c"}}, "ffhq.mirrors: expected a list"),
        ({"ffhq": "https://a/b.pkl"}, "ffhq: expected an object, got a string"),
    ]:
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        refused(ConfigError, lambda: download.registry("generator"), f"{path}: ", problem)


@functools.lru_cache(maxsize=1)
def _tiny_networks():
    from latentlab.train.loop import scratch_networks

    return scratch_networks(8, z_dim=4, w_dim=4, map_layers=1, channel_base=64, channel_max=8)


def _training_state(folder, **records):
    """A training_state.pt with a tiny valid run's records, some replaced by `records`."""
    from latentlab.train.loop import STATE_FILE, TrainingOptions, _network_spec

    G, D = _tiny_networks()
    state = {
        "step": 0,
        "world": 1,
        "options": json.dumps(TrainingOptions().resolved(8).to_dict()),
        "networks": json.dumps({"G": _network_spec(G), "D": _network_spec(D), "G_ema": _network_spec(G)}),
        "regularizer_config": "null",
        "G": G.state_dict(),
        "D": D.state_dict(),
        "G_ema": G.state_dict(),
    }
    nets = json.loads(state["networks"])
    state.update(records)
    folder.mkdir(exist_ok=True)
    torch.save(state, folder / STATE_FILE)
    return folder / STATE_FILE, nets


def test_training_state_records_are_schema_checked(tmp_path):
    from latentlab.train.loop import Trainer

    path, nets = _training_state(tmp_path / "ok")
    peek = Trainer.peek(str(tmp_path / "ok"))
    assert peek["resolution"] == 8 and peek["network"]["z_dim"] == 4 and peek["regularizer"] is None

    huge = json.loads(json.dumps(nets))
    huge["G"]["init_kwargs"]["img_resolution"] = 2**20
    absurd_d = json.loads(json.dumps(nets))
    absurd_d["D"]["init_kwargs"]["img_resolution"] = 2**20
    options = json.loads(json.dumps(_training_options()))
    options["lr"] = "fast"
    cases = [
        (dict(networks=deep_json()), "peek", ConfigError, f"'networks': JSON nested {DEEP} levels deep"),
        (dict(networks=json.dumps(huge)), "peek", ConfigError, "G.init_kwargs.img_resolution: 1048576 is outside"),
        (dict(networks=None), "peek", ConfigError, "no 'networks' record"),
        (dict(regularizer_config="[1]"), "peek", ConfigError, "'regularizer_config': top level: expected an object"),
        (dict(options=json.dumps(options)), "resume", ConfigError, "'options': lr: expected a number"),
        (dict(options='{"warp": 9}'), "resume", ConfigError, "'options': unknown training options ['warp']"),
        (
            dict(networks=json.dumps(absurd_d)),
            "resume",
            CheckpointError,
            "network D: constructor argument 'img_resolution'",
        ),
        (dict(G={}), "resume", ConfigError, "network G: weights do not fit its record"),
    ]
    for records, call, exc, problem in cases:
        folder = tmp_path / f"s{len(list(tmp_path.iterdir()))}"
        path, _ = _training_state(folder, **records)
        run = (lambda: Trainer.peek(str(folder))) if call == "peek" else (lambda: Trainer.resume(str(folder), None))
        refused(exc, run, f"{path}: ", problem)
    torch.save([1, 2], path)
    refused(ConfigError, lambda: Trainer.peek(str(folder)), f"{path}: not a training state")


def _training_options():
    from latentlab.train.loop import TrainingOptions

    return TrainingOptions().resolved(8).to_dict()  # as a run stores them: every setting resolved


def test_saved_trainer_config_is_parsed_with_bounds():
    from latentlab.utils.validate import check_saved_state

    state = {"format": "f", "version": 1, "config": json.dumps({"k": 3, "lr": 0.1})}
    check_saved_state(state, "f", 1, {"k": 3, "lr": 0.1}, "run/state.pt", "clusters state")  # equal: passes
    refused(ConfigError, lambda: check_saved_state(state, "f", 1, {"k": 4, "lr": 0.1}, "s.pt", "x"), "k 3 (now 4)")
    for config, problem in [
        (deep_json(), f"run/state.pt: 'config': JSON nested {DEEP} levels deep"),  # was a RecursionError
        ("[3]", "run/state.pt: 'config': top level: expected an object"),  # was an AttributeError
        (None, "run/state.pt: no 'config' record"),  # was a KeyError / TypeError
        ("{", "run/state.pt: 'config': not valid JSON"),
    ]:
        bad = dict(state, config=config)
        refused(
            ConfigError, lambda: check_saved_state(bad, "f", 1, {"k": 3}, "run/state.pt", "clusters state"), problem
        )


# ------------------------------------------------------------------------------------------------ sample chunks
class _MeanColour:
    names = ["red", "green", "blue"]

    def __call__(self, img):
        return img.mean(dim=(2, 3))


def _deflated_npz(path, arrays, corrupt=None):
    path = Path(path)
    """An .npz written with deflate; `corrupt`: a member whose compressed stream is garbled at its start."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr)
            z.writestr(name + ".npy", buf.getvalue())
    if corrupt is not None:
        raw = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(corrupt + ".npy")
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        raw[start : start + 8] = b"\xff" * 8  # an invalid deflate block header
        path.write_bytes(bytes(raw))
    return path


def test_damaged_sample_chunks_are_named_and_recomputed(tiny_generator, tmp_path):
    from latentlab.sampling import SampleTable, sample
    from latentlab.sampling.store import chunk_path, chunk_problem

    # chunks of 80: w's data (80 x 16 float32) outlasts zipfile's first 4 KiB read, so reading the headers leaves
    # w's CRC unchecked, as in real chunks
    kw = dict(n=240, seed_start=0, chunk_size=80, batch_size=80, progress=False)
    out = tmp_path / "s"
    sample(tiny_generator, _MeanColour(), out, **kw)
    table = SampleTable(out)
    reference = table.load(table.fields)
    good = {k: reference[k][80:160] for k in table.fields}

    _deflated_npz(chunk_path(out, 1), good, corrupt="w")  # was a zlib.error traceback
    many = zipfile.ZipFile(chunk_path(out, 2), "w")
    with many:  # more members than any .npz may hold
        for i in range(5000):
            many.writestr(f"m{i}.npy", b"")
    manifest = table.manifest
    assert chunk_problem(out, 1, manifest).startswith("unreadable: not a readable npz (error: Error -3")
    assert "5000 members (at most 4096)" in chunk_problem(out, 2, manifest)
    line = refused(ConfigError, lambda: SampleTable(out), str(out), "2 of 3 chunks are missing or damaged")
    assert "chunk_000001.npz" in line and "chunk_000002.npz" in line

    report = sample(tiny_generator, _MeanColour(), out, **kw)  # a resume recomputes exactly those two
    assert report.repaired == [1, 2] and report.skipped == [0]
    again = SampleTable(out).load(table.fields)
    assert all(np.array_equal(again[k], reference[k]) for k in table.fields)

    # data damaged behind intact headers (the scan reads only the seeds): the reader names the chunk and the array
    path = Path(chunk_path(out, 2))
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("w.npy")
    raw[info.header_offset + 30 + len("w.npy") + len(info.extra) + 5000] ^= 0xFF  # a byte of w's data (stored)
    path.write_bytes(bytes(raw))
    table = SampleTable(out)  # headers and seeds still agree
    assert table.load(("seeds",))["seeds"].tolist() == list(range(240))
    refused(ConfigError, lambda: table.load(("w",)), f"{path}: array 'w' is unreadable", "Bad CRC-32", "rerun")


# ------------------------------------------------------------------------------------------------ images
def test_classifier_images_and_video_frames_are_header_checked(tmp_path):
    import pandas as pd

    from latentlab.attributes.toyfaces_training import load_toyfaces_images
    from latentlab.attributes.training import CelebAImages
    from latentlab.inversion.video import ProjectionVideo, mp4_writer_available

    Image.new("RGB", (4, 4), (200, 10, 10)).save(tmp_path / "ok.png")
    (tmp_path / "bomb.png").write_bytes(png_claiming(100_000, 100_000))  # 10^10 pixels: PIL's own bomb error
    (tmp_path / "big.png").write_bytes(png_claiming(9000, 9000))  # above our 8192^2, below PIL's limit

    images = load_toyfaces_images(str(tmp_path), pd.DataFrame({"file": ["ok.png"]}), progress=False)
    assert images.shape == (1, 3, 4, 4) and images[0, :, 0, 0].tolist() == [200, 10, 10]
    for name, problem in [("bomb.png", "refused as a decompression bomb"), ("big.png", "header claims 9000x9000")]:
        table = pd.DataFrame({"file": ["ok.png", name]})
        path = os.path.join(str(tmp_path), name)
        refused(ConfigError, lambda: load_toyfaces_images(str(tmp_path), table, progress=False), path, problem)
        celeba = CelebAImages(pd.DataFrame({"path": [path], "Smiling": [1]}), ["Smiling"], 8)
        refused(ConfigError, lambda: celeba[0], path, problem)
    with pytest.raises(FileNotFoundError, match="missing.png: image listed in labels.csv is missing"):
        load_toyfaces_images(str(tmp_path), pd.DataFrame({"file": ["missing.png"]}), progress=False)

    if mp4_writer_available():
        video = ProjectionVideo(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), tmp_path / "v", num_steps=2)
        video.paths = [str(tmp_path / "bomb.png")]
        refused(ConfigError, lambda: video.write_mp4(tmp_path / "v.mp4"), str(tmp_path / "bomb.png"), "bomb")
        assert not (tmp_path / "v.mp4").exists()
        assert_no_leftovers(tmp_path)


# ------------------------------------------------------------------------------------------------ real CLI
@pytest.mark.slow
def test_cli_classifier_training_on_a_folder_with_a_bomb_image(tmp_path):
    from latentlab.datasets.toyfaces import write_dataset

    data = tmp_path / "toy"
    write_dataset(str(data), 4, workers=1, progress=False)
    bomb = data / "images" / "000002.png"
    bomb.write_bytes(png_claiming(100_000, 100_000))
    proc = run_capped(["train-classifier", "--toyfaces", data, "--out", tmp_path / "clf", "--epochs", 1], tmp_path)
    assert_one_line_error(proc, str(bomb), "decompression bomb")
    assert not (tmp_path / "clf" / "classifier.safetensors").exists()
    assert_no_leftovers(tmp_path)


@pytest.mark.slow
def test_cli_sample_resume_over_a_corrupted_chunk(tmp_path):
    out = tmp_path / "s"
    args = ["sample", "--n", 8, "--chunk", 4, "--batch", 4, "--device", "cpu", "--out", out]
    first = run_capped(args, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    chunk = out / "chunk_000001.npz"
    with np.load(chunk) as npz:
        arrays = {k: npz[k] for k in npz.files}
    _deflated_npz(chunk, arrays, corrupt="z")  # crashed the resume scan with a zlib.error before
    proc = run_capped(args, tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "repaired 1 damaged chunk" in proc.stdout, proc.stdout
    with np.load(chunk) as npz:
        assert np.array_equal(npz["z"], arrays["z"]) and np.array_equal(npz["seeds"], arrays["seeds"])
    assert_no_leftovers(out)
