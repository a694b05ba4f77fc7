"""Reading attributes and one space's codes from a sample folder (latentlab.sampling.select), the library behind
`latentlab boundary` and `latentlab separability`; a planted table, so every expectation is known by hand."""

import numpy as np
import pytest
import torch


class Table:
    """A stand-in for SampleTable with planted arrays (the attributes select reads: names, fields, manifest...)."""

    def __init__(self, names=("Smiling", "Male", "Young"), wplus=False, num_ws=None, n=5):
        rs = np.random.RandomState(0)
        self.out_dir, self.names = "planted", list(names)
        self.data = dict(
            seeds=np.arange(10, 10 + n),
            z=rs.randn(n, 4),
            w=rs.randn(n, 3),
            styles=rs.randn(n, 7),
            scores=rs.randn(n, len(names)),
        )
        if wplus:
            self.data["wplus"] = rs.randn(n, 6, 3)
        self.fields = tuple(k for k in ("seeds", "z", "w", "wplus", "styles", "scores") if k in self.data)
        self.manifest = {} if num_ws is None else {"num_ws": num_ws}

    def field_spec(self, field):
        return self.data[field].shape[1:], self.data[field].dtype

    def load(self, fields):
        return {f: self.data[f] for f in fields}


def test_resolve_attributes():
    from latentlab.sampling.select import resolve_attributes

    t = Table()
    assert resolve_attributes(t, ["young", "Smiling"]) == ["Young", "Smiling"]  # exact, else case-insensitive
    assert resolve_attributes(t, ["all"]) == ["Smiling", "Male", "Young"]
    for given, option, message in (
        (["Male", "male"], "--attr", "--attr names attribute 'Male' twice"),
        (
            ["Bald"],
            "--attrs",
            "--attrs Bald: unknown attribute 'Bald'; the samples in planted have: Smiling, Male, Young",
        ),
        (["all", "Male"], "--attr", "--attr all cannot be combined with other attributes"),
    ):
        with pytest.raises(ValueError) as e:
            resolve_attributes(t, given, option)
        assert str(e.value) == message
    with pytest.raises(ValueError, match="unknown attribute 'all'"):
        resolve_attributes(t, ["all"], "--condition", allow_all=False)


def test_boundary_attributes():
    from latentlab.sampling.select import boundary_attributes

    t = Table()
    assert boundary_attributes(t, ["all"], ["male"]) == (["Smiling", "Young"], ["Male"])
    assert boundary_attributes(t, ["Young"]) == (["Young"], [])
    with pytest.raises(ValueError, match="--attr young --condition young|--attr Young --condition Young"):
        boundary_attributes(t, ["Young"], ["young"])
    with pytest.raises(ValueError, match="none is left to train"):
        boundary_attributes(t, ["all"], ["Smiling", "Male", "Young"])


def test_codes_and_scores_per_space():
    from latentlab.sampling.select import codes_and_scores

    t = Table(wplus=True)
    d = t.data
    for space, field in (("z", "z"), ("w", "w"), ("s", "styles")):
        codes, scores, seeds = codes_and_scores(t, space, ["Young", "Smiling"])
        np.testing.assert_array_equal(codes, d[field])
        np.testing.assert_array_equal(scores, d["scores"][:, [2, 0]])  # columns in the order asked
        np.testing.assert_array_equal(seeds, np.arange(10, 15))
    codes, _, _ = codes_and_scores(t, "w+", ["Male"], layer=4)
    np.testing.assert_array_equal(codes, d["wplus"][:, 4])
    with pytest.raises(ValueError, match="--layer 6 does not exist: the samples have ws layers 0-5"):
        codes_and_scores(t, "w+", ["Male"], layer=6)
    with pytest.raises(ValueError, match="needs --layer K"):
        codes_and_scores(t, "w+", ["Male"])
    with pytest.raises(ValueError, match="unknown space 'q'"):
        codes_and_scores(t, "q", ["Male"])


def test_w_plus_from_one_w_per_sample():
    from latentlab.sampling.select import codes_and_scores, num_ws

    t = Table(num_ws=8)  # one w per sample, the manifest says how many layers: every layer's code is that w
    assert num_ws(t) == 8 and num_ws(Table(wplus=True)) == 6 and num_ws(Table()) is None
    np.testing.assert_array_equal(codes_and_scores(t, "w+", ["Male"], layer=7)[0], t.data["w"])
    with pytest.raises(ValueError, match="do not record how many ws layers"):
        codes_and_scores(Table(), "w+", ["Male"], layer=0)


def test_on_a_real_sample_folder(tiny_generator, tmp_path):
    from latentlab.sampling import SampleTable, sample
    from latentlab.sampling.select import codes_and_scores, resolve_attributes

    class Colour(torch.nn.Module):
        names = ["red", "green"]

        def forward(self, x):
            return x.mean(dim=[2, 3])[:, :2]

    sample(tiny_generator, Colour(), tmp_path, n=6, chunk_size=4, batch_size=3, progress=False, save_styles=True)
    table = SampleTable(tmp_path)
    names = resolve_attributes(table, ["GREEN"])
    assert names == ["green"]
    codes, scores, seeds = codes_and_scores(table, "s", names)
    data = table.load(fields=("styles", "scores"))
    np.testing.assert_array_equal(codes, data["styles"])
    np.testing.assert_array_equal(scores, data["scores"][:, 1:])
    assert seeds.tolist() == list(range(6))
