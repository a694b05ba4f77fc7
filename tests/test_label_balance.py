"""separability and boundary warn (one line, the run goes on) when an attribute's labels are nearly all one class."""

import json
import warnings

import numpy as np
import pytest
import torch

from conftest import make_tiny_generator, run_cli
from latentlab.boundaries import ImbalancedLabelsWarning, linear_separability, train_boundaries, train_boundary


def _caught(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    return result, [str(w.message) for w in seen if issubclass(w.category, ImbalancedLabelsWarning)]


def _planted(negatives, n=1000, seed=0):
    """Logits of n samples: `negatives` confident negatives (-5) and n - negatives positives in (0.1, 2)."""
    logits = np.concatenate([np.full(negatives, -5.0), np.linspace(0.1, 2.0, n - negatives)])
    return np.random.RandomState(seed).permutation(logits)


def test_separability_warns_when_the_kept_labels_are_nearly_one_class():
    rng = np.random.RandomState(0)
    codes = rng.randn(1000, 4)
    # keep 0.5: the 500 most confident samples, which include every confident negative
    logits = np.stack([rng.randn(1000), _planted(24), _planted(25)], axis=1)
    res, caught = _caught(
        linear_separability, codes, logits, names=["balanced", "rare24", "rare25"], keep=0.5, svm="primal"
    )
    expected = (
        "rare24: the attribute is absent in only 4.8% of the 500 kept samples (score > 0 = present): "
        "H(Y|X) is near 0 for any codes, so its entropy says little about separability"
    )
    assert caught == [expected] and res.warnings == [expected]  # 25 of 500 = 5.0% is not below the 5 % line
    assert res.to_dict()["warnings"] == [expected]
    assert np.isfinite(res.score)  # the metric is still computed


def test_boundary_warns_when_both_ends_are_one_class():
    rng = np.random.RandomState(1)
    codes = rng.randn(1000, 4)
    scores = _planted(1)  # one negative sample in 1000: the bottom 2% are almost all 'present'
    b, caught = _caught(train_boundary, codes, scores, ratio=0.02, meta={"attribute": "glasses"})
    # 20 from each end; 14 + 6 of each side are used (train + validation); 1 of the 40 is absent
    expected = (
        "glasses: the attribute is absent in only 2.5% of the 40 samples used (20 from each end) "
        "(score > 0 = present): both ends are one class, so the boundary separates degrees of it and its "
        "accuracy means little"
    )
    assert caught == [expected] and b.warnings == [expected] and b.report()["warnings"] == [expected]
    b, caught = _caught(train_boundary, codes, rng.randn(1000), ratio=0.02)
    assert caught == [] and b.warnings == []
    # a 'present' that is rare at the top end warns too, named by the column
    out, caught = _caught(train_boundaries, codes, np.stack([-scores, rng.randn(1000)], 1), ["rare", "ok"], ratio=0.02)
    assert [m.split(":")[0] for m in caught] == ["rare"] and "present in only 2.5%" in caught[0]
    assert out["rare"].warnings == caught and out["ok"].warnings == []


# ------------------------------------------------------------------------------------------- command line


class Planted(torch.nn.Module):
    """red: the mean red channel (about half the faces each way); always: positive for every image."""

    names = ["red", "always"]

    def forward(self, images):
        m = images.mean(dim=[2, 3])
        return torch.stack([m[:, 0] * 10, 10 + m.sum(1)], dim=1)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from latentlab.sampling import sample

    G = make_tiny_generator()
    out = tmp_path_factory.mktemp("samples")
    sample(G, Planted(), out, n=400, chunk_size=400, batch_size=100, progress=False)
    return out


def _kept_minority(logits, keep=0.5):
    kept = np.argsort(-np.abs(logits), kind="stable")[: int(len(logits) * keep)]
    frac = np.mean(logits[kept] > 0)
    return min(frac, 1 - frac)


def test_cli_separability_and_boundary_print_one_line_and_go_on(samples, tmp_path, capsys):
    from latentlab.sampling import SampleTable

    scores = SampleTable(samples).load(fields=("scores",))["scores"]
    assert (scores[:, 1] > 0).all() and _kept_minority(scores[:, 0]) >= 0.05  # the planted structure

    code, out, err = run_cli(capsys, "separability", "--samples-dir", samples, "--svm", "primal")
    assert code == 0, err
    assert err.splitlines() == [
        "latentlab: warning: always: the attribute is absent in only 0.0% of the 200 kept "
        "samples (score > 0 = present): H(Y|X) is near 0 for any codes, so its entropy says "
        "little about separability"
    ]
    assert "always" in out and "red" in out and "2^(sum H)" in out

    code, out, err = run_cli(
        capsys, "boundary", "--samples-dir", samples, "--attr", "all", "--ratio", 0.1, "--out", tmp_path / "b"
    )
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("latentlab: warning:")]
    assert lines == [
        "latentlab: warning: always: the attribute is absent in only 0.0% of the 80 samples used "
        "(40 from each end) (score > 0 = present): both ends are one class, so the boundary separates "
        "degrees of it and its accuracy means little"
    ]
    assert (tmp_path / "b" / "always.npy").exists() and (tmp_path / "b" / "red.npy").exists()
    assert json.loads((tmp_path / "b" / "always.json").read_text())["warnings"] == [
        lines[0][len("latentlab: warning: ") :]
    ]
    assert json.loads((tmp_path / "b" / "red.json").read_text())["warnings"] == []
