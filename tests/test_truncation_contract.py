"""Truncation variants follow scikit-learn's estimator contract; the two cluster variants are siblings.

Constructors store parameters only (no attribute ending in '_' before fit), fit returns self,
one `check_is_fitted`, no variant inherits a `fit` it must disable, and clusters files written
before the restructuring (tests/fixtures/clusters_files, see its README) load and predict exactly
as the old code did.
"""

import os
import re
import warnings

import numpy as np
import pytest
import torch

from latentlab.truncation import (
    BaseClusterTruncation,
    ClusterTruncation,
    LayerScheduleTruncation,
    LearnedClusterTruncation,
    NotFittedError,
    NoTruncation,
    RadiusClamp,
    Truncation,
    WTruncation,
    ZTruncatedNormal,
    check_is_fitted,
    parse_truncation,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "clusters_files")


def fitted_attributes(obj):
    return sorted(k for k in vars(obj) if k.endswith("_") and not k.startswith("_"))


@pytest.mark.parametrize(
    "make",
    [
        lambda: NoTruncation(),
        lambda: WTruncation(0.5, 2),
        lambda: LayerScheduleTruncation([0.5, 1.0]),
        lambda: ZTruncatedNormal(2.0),
        lambda: RadiusClamp(90),
        lambda: RadiusClamp(radius=2.0),
        lambda: ClusterTruncation(k=3),
        lambda: LearnedClusterTruncation(k=3, classifier="image"),
    ],
)
def test_constructors_store_parameters_only(make):
    t = make()
    assert fitted_attributes(t) == []
    # every parameter is stored under its own name, as get_params reports it
    for name, value in t.get_params().items():
        got = getattr(t, name)
        got = list(got) if isinstance(got, tuple) else got  # level names are stored as a tuple, listed for JSON
        assert np.array_equal(got, value) if isinstance(value, np.ndarray) else got == value


def test_fit_returns_self_and_sets_underscored_state(tiny_generator):
    G = tiny_generator
    clamp = RadiusClamp(80)
    assert clamp.fit(G, n_samples=40) is clamp and fitted_attributes(clamp) == ["radius_"]
    w = WTruncation(0.5)
    assert w.fit(G) is w and fitted_attributes(w) == []
    pytest.importorskip("sklearn")
    c = ClusterTruncation(k=2, method="kmeans", levels=("coarse",))
    assert c.fit(G, n_samples=30) is c
    assert fitted_attributes(c) == ["centers_", "info_", "layers_", "params_", "pca_", "style_layers_"]
    ws = G.mapping(torch.randn(20, 16), None)
    c2 = ClusterTruncation(k=2, method="kmeans", levels={"a": [0, 1]}, representation="w")
    assert c2.fit_ws(ws) is c2 and c2.is_fitted


def test_check_is_fitted_is_the_one_check():
    for t, hint in (
        (RadiusClamp(90), "call fit(G) first or give radius="),
        (ClusterTruncation(k=2), "call fit(G) first or load a fitted file"),
        (LearnedClusterTruncation(k=2), "holds no trained networks"),
    ):
        with pytest.raises(NotFittedError, match=f"{type(t).__name__} is not fitted: .*{re.escape(hint)}"):
            check_is_fitted(t)
    assert check_is_fitted(RadiusClamp(radius=1.0)).radius == 1.0
    assert check_is_fitted(NoTruncation()).kind == "none"
    # no per-class copies left
    for cls in (Truncation, RadiusClamp, BaseClusterTruncation, ClusterTruncation, LearnedClusterTruncation):
        assert "_check_fitted" not in vars(cls)


def test_cluster_variants_are_siblings():
    assert issubclass(ClusterTruncation, BaseClusterTruncation)
    assert issubclass(LearnedClusterTruncation, BaseClusterTruncation)
    assert not issubclass(LearnedClusterTruncation, ClusterTruncation)
    for name in ("fit_ws", "fit_codes", "params_", "pca_"):
        assert not hasattr(LearnedClusterTruncation(k=2), name)
    # the learned variant's fit is its own refusal, not an inherited fit switched off
    assert "fit" in vars(LearnedClusterTruncation) and "fit" not in vars(BaseClusterTruncation)
    with pytest.raises(ValueError, match="trained, not fitted"):
        LearnedClusterTruncation(k=2).fit(None)


def test_old_clusters_files_load_and_predict_as_before(tmp_path):
    exp = np.load(os.path.join(FIXTURES, "expected.npz"))
    q = torch.from_numpy(exp["ws"])
    fitted_path, learned_path = os.path.join(FIXTURES, "fitted.npz"), os.path.join(FIXTURES, "learned.npz")
    for fitted in (
        Truncation.load(fitted_path),
        ClusterTruncation.load(fitted_path),
        parse_truncation(f"clusters:{fitted_path}"),
    ):
        assert type(fitted) is ClusterTruncation and fitted.is_fitted
        with torch.no_grad():
            assert np.array_equal(fitted.transform_ws(None, q).numpy(), exp["fitted_out"])
        assert np.array_equal(fitted.predict(q, "a").numpy(), exp["fitted_ids_a"])
        assert np.array_equal(fitted.centers_["a"].numpy(), exp["fitted_centers_a"])
    assert len(set(exp["fitted_ids_a"].tolist())) == 2  # the fixture exercises both clusters
    loaders = (Truncation.load, ClusterTruncation.load, LearnedClusterTruncation.load, BaseClusterTruncation.load)
    for learned in [load(learned_path) for load in loaders] + [parse_truncation(f"clusters:{learned_path}")]:
        assert type(learned) is LearnedClusterTruncation and learned.layers_ == {"a": [0, 1], "b": [2]}
        with torch.no_grad():
            assert np.array_equal(learned.transform_ws(None, q).numpy(), exp["learned_out"])
            codes = learned.sample_codes("a", torch.tensor([0, 1, 1]), torch.ones(3, 3))
        assert np.array_equal(codes.numpy(), exp["learned_codes_a"])
        assert np.array_equal(learned.predict(q, "b").numpy(), exp["learned_ids_b"])
        assert np.array_equal(learned.centers_["b"].numpy(), exp["learned_centers_b"])
    with pytest.raises(ValueError, match="not a LearnedClusterTruncation"):
        LearnedClusterTruncation.load(fitted_path)
    with pytest.raises(ValueError, match="not a ClusterTruncation"):
        ClusterTruncation.load(WTruncation(0.5).save(tmp_path / "w.npz"))


def test_centers_is_a_read_only_deprecated_alias():
    t = Truncation.load(os.path.join(FIXTURES, "fitted.npz"))
    with pytest.warns(DeprecationWarning, match="centers_"):
        old = t.centers
    assert old is t.centers_
    with pytest.raises(AttributeError):
        t.centers = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t.centers_  # the new name does not warn
    with pytest.raises(NotFittedError), pytest.warns(DeprecationWarning):
        ClusterTruncation(k=2).centers
