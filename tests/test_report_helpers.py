"""Helpers the ALS/PPL commands and the analyses scripts share (latentlab.studies.reports): labels of compared
models and folders, the classifier an ALS study scores with."""

import os

import pytest
import torch


def test_labelled_paths(tmp_path):
    from latentlab.studies.reports import labelled

    (tmp_path / "run.v2").mkdir()
    (tmp_path / "a=b").mkdir()  # an existing path is never split at '='
    model = tmp_path / "ffhq.pkl"
    model.write_bytes(b"")
    got = labelled([str(model), f"HSR={tmp_path / 'x.pkl'}", str(tmp_path / "run.v2"), str(tmp_path / "a=b")])
    assert got == {
        "ffhq": str(model),
        "HSR": str(tmp_path / "x.pkl"),
        "run.v2": str(tmp_path / "run.v2"),
        "a=b": str(tmp_path / "a=b"),
    }
    assert labelled(["p/one.pkl", "q/two.pkl"], ["A", "B"]) == {"A": "p/one.pkl", "B": "q/two.pkl"}
    with pytest.raises(ValueError, match="1 labels for 2 --model"):
        labelled(["a", "b"], ["A"], "--model")
    with pytest.raises(ValueError, match="--reports: two are labelled 'base'"):
        labelled([os.path.join("x", "base"), os.path.join("y", "base")], option="--reports")


def test_read_als_reports_names_the_option(tmp_path):
    from latentlab.studies.reports import read_als_reports

    with pytest.raises(ValueError) as e:
        read_als_reports([str(tmp_path / "nope")], option="--reports")
    assert str(e.value) == f"--reports {tmp_path / 'nope'}: no such ALS report folder"


def test_als_classifier_selects_and_checks_the_pair_attribute():
    from latentlab.attributes.base import AttributeClassifier
    from latentlab.studies.reports import als_classifier

    class Three(AttributeClassifier):
        def __init__(self):
            super().__init__(["Smiling", "Male", "Young"])

        def forward(self, x):
            return x.mean(dim=[2, 3])

    clf = als_classifier(Three(), "Young, Smiling", pair_attribute="Young")
    assert list(clf.names) == ["Young", "Smiling"] and not clf.training
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(clf(x), x.mean(dim=[2, 3])[:, [2, 0]])
    with pytest.raises(ValueError, match="--pair-attr 'Male' is not one of the scored attributes: Young, Smiling"):
        als_classifier(Three(), ["Young", "Smiling"], pair_attribute="Male")
    plain = lambda x: x  # noqa: E731  (a plain callable: no names, no select, no .to)
    assert als_classifier(plain, pair_attribute="anything") is plain
