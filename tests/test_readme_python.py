"""The README's Python example (classifier, ALS, figure) runs as written and gives what it says."""

import contextlib
import io
import os

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_block(marker):
    text = open(os.path.join(REPO, "README.md")).read()
    return text.split(f"<!-- {marker} -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_als_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = readme_block("python:als")
    assert "load_classifier(" in code and "latentlab.als(" in code and "plot_curve(" in code
    scope = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), scope)
    res, clf, G = scope["res"], scope["clf"], scope["G"]
    assert list(res.index) == list(clf.names) + ["mean"] and "smile" in printed.getvalue()
    assert os.path.getsize(tmp_path / "als_curve.png") > 1000 and os.path.getsize(tmp_path / "als_curve.pdf") > 1000
    # the numbers are the paper's ALS of these 20 pairs, recomputed here from the classifier's logits
    w = G.mapping(scope["latentlab"].z_from_seeds(range(40), G.z_dim), None)[:, 0]
    t = torch.linspace(0, 1, 9)
    with torch.no_grad():
        frames = w[0::2, None] + t[None, :, None] * (w[1::2] - w[0::2])[:, None]  # [20, 9, w_dim]
        ws = frames.reshape(-1, 1, G.w_dim).repeat(1, G.num_ws, 1)
        logits = clf(G.synthesis(ws, noise_mode="const")).reshape(20, 9, -1).double().numpy()
    tt = t.double().numpy()[None, :, None]
    dev = (logits - ((1 - tt) * logits[:, :1] + tt * logits[:, -1:])) ** 2
    expected = dev[:, 1:].mean(axis=1).mean(axis=0)
    np.testing.assert_allclose(res.values[:-1], expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(res["mean"], expected.mean(), rtol=1e-4)
