"""One Direction type with one save, shared by boundaries and edits (latentlab.latents.directions)."""

import ast
import json
import os

import numpy as np
import pytest

import latentlab
from latentlab.boundaries import Boundary, train_boundaries, write_boundary
from latentlab.latents import directions as D


def make_boundary(normal, **kw):
    fields = dict(
        offset=0.5,
        val_accuracy=0.9,
        remaining_accuracy=0.75,
        train_accuracy=1.0,
        n_train=10,
        n_val=4,
        n_remaining=6,
        solver="linear",
        ratio=0.2,
        split=0.7,
        seed=0,
        fit_seconds=0.01,
        meta={"attribute": "smile"},
    )
    fields.update(kw)
    return Boundary(normal=np.asarray(normal, dtype=np.float64), **fields)


def test_boundaries_do_not_import_edits():
    folder = os.path.dirname(latentlab.boundaries.__file__)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(folder, name)).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = "." * node.level + (node.module or "")
                assert "edits" not in target.split("."), f"boundaries/{name} imports {target}"
            elif isinstance(node, ast.Import):
                assert not any("edits" in a.name.split(".") for a in node.names), f"boundaries/{name}"


def test_one_direction_type_everywhere():
    import latentlab.edits
    import latentlab.edits.directions

    assert latentlab.edits.Direction is D.Direction is latentlab.edits.directions.Direction
    assert latentlab.edits.load_direction is D.load_direction is latentlab.latents.load_direction
    assert latentlab.edits.orthogonalize is D.orthogonalize
    d = make_boundary([3.0, 4.0]).direction(space="w")
    assert type(d) is D.Direction and (d.name, d.space) == ("smile", "w")
    assert np.array_equal(d.vector, [0.6, 0.8]) and d.meta["val_accuracy"] == 0.9


def test_direction_save_writes_the_boundary_folder_layout(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "index.json").write_text(json.dumps({"model": "m", "attributes": {"age": {"file": "age.npy"}}}))
    d = D.Direction(np.array([1.0, 2.0, 2.0]), name="smile", space="w")
    path = d.save(folder / "smile.npy", report={"n": np.int64(3), "acc": np.float32(0.5)}, index={"val_accuracy": 0.9})
    assert path == str(folder / "smile.npy")
    assert sorted(os.listdir(folder)) == ["index.json", "smile.json", "smile.npy"]  # no temporary files left
    arr = np.load(path)
    assert arr.dtype == np.float64 and arr.shape == (1, 3)
    assert np.allclose(arr[0], [1 / 3, 2 / 3, 2 / 3], rtol=0, atol=1e-15)
    assert json.loads((folder / "smile.json").read_text()) == {"n": 3, "acc": 0.5}
    index = json.loads((folder / "index.json").read_text())
    assert index == {
        "model": "m",
        "attributes": {
            "age": {"file": "age.npy"},
            "smile": {"file": "smile.npy", "space": "w", "val_accuracy": 0.9, "report": "smile.json"},
        },
    }
    # without report / index: just the array; like np.save, a bare name gets .npy
    bare = D.Direction(np.ones(2)).save(tmp_path / "bare")
    assert bare == str(tmp_path / "bare.npy") and np.allclose(np.load(bare), np.sqrt(0.5))
    assert not (tmp_path / "bare.json").exists() and not (tmp_path / "index.json").exists()


def test_write_boundary_goes_through_direction_save(tmp_path, monkeypatch):
    calls = []
    real = D.Direction.save

    def spy(self, path, report=None, index=None):
        calls.append((self.name, self.space, os.fspath(path)))
        return real(self, path, report=report, index=index)

    monkeypatch.setattr(D.Direction, "save", spy)
    b = make_boundary([0.0, 0.6, 0.8])
    report = write_boundary(b, tmp_path / "out" / "smiling.npy", space="w", extra={"model_id": "abc"})
    assert calls == [("smiling", "w", str(tmp_path / "out" / "smiling.npy"))]
    expected_report = dict(b.report(), space="w", model_id="abc")
    assert report == expected_report and report["dim"] == 3
    assert json.loads((tmp_path / "out" / "smiling.json").read_text()) == json.loads(json.dumps(expected_report))
    entry = {
        "file": "smiling.npy",
        "space": "w",
        "val_accuracy": 0.9,
        "remaining_accuracy": 0.75,
        "report": "smiling.json",
    }
    assert json.loads((tmp_path / "out" / "index.json").read_text()) == {"attributes": {"smiling": entry}}
    assert np.array_equal(np.load(tmp_path / "out" / "smiling.npy"), [[0.0, 0.6, 0.8]])
    b.save(tmp_path / "plain.npy")  # Boundary.save is Direction.save too
    assert calls[-1] == ("smile", None, str(tmp_path / "plain.npy"))
    with pytest.raises(ValueError, match="must end in .npy"):
        write_boundary(b, tmp_path / "x.txt")


def test_conditioned_boundaries_use_the_shared_orthogonalize():
    rng = np.random.RandomState(0)
    codes = rng.randn(2000, 8)
    scores = np.stack([codes[:, 0] + codes[:, 1], codes[:, 1]], axis=1)
    out = train_boundaries(codes, scores, ["a", "b"], conditions={"a": ["b"]}, ratio=0.1)
    plain = train_boundaries(codes, scores, ["a", "b"], attrs=["a"], ratio=0.1)["a"]
    expected = D.orthogonalize(plain.normal, [out["b"].normal])
    assert np.allclose(out["a"].normal, expected.vector, rtol=0, atol=1e-12)
