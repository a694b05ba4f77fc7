"""`latentlab als` and `latentlab ppl` end to end on the official fixture (offline)."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from cli.errors import run
from cli.main import app
from conftest import fixture_path

ADA = fixture_path("sg2ada_skip32.pkl")

SRC = '''
import torch
class MeanColour(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=[2, 3])
torch.jit.script(MeanColour()).save(PATH)
'''


def cli(capsys, *args):
    code = run(app, [str(a) for a in args])
    o = capsys.readouterr()
    return code, o.out, o.err


@pytest.fixture
def classifier(tmp_path):
    path = tmp_path / "clf.pt"
    script = tmp_path / "make.py"
    script.write_text(SRC.replace("PATH", repr(str(path))))
    import subprocess
    import sys

    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    return path


def test_als_command_writes_tables(capsys, tmp_path, classifier):
    code, out, err = cli(capsys, "als", "--model", ADA, "--classifier", f"torchscript:{classifier}", "--pairs", "5",
                         "--steps", "4", "--batch", "3", "--out", tmp_path / "a")
    assert code == 0, err
    assert "mean ALS (paper, 5 pairs, 4 steps, w)" in out
    table = pd.read_csv(tmp_path / "a" / "als.csv")
    logits = np.load(tmp_path / "a" / "logits.npy")
    assert logits.shape == (5, 5, 3)
    t = np.linspace(0, 1, 5)[None, :, None]
    delta = (logits - ((1 - t) * logits[:, :1] + t * logits[:, -1:])) ** 2
    np.testing.assert_allclose(table.iloc[0, :3].values, delta[:, 1:].sum(1).mean(0) / 4, rtol=1e-6)
    assert len(pd.read_csv(tmp_path / "a" / "per_pair.csv")) == 5


def test_ppl_command_offline(capsys, tmp_path):
    pytest.importorskip("lpips")
    code, out, err = cli(capsys, "ppl", "--model", ADA, "--samples", "6", "--random-backbone", "--batch", "3",
                         "--out", tmp_path / "p.json")
    assert code == 0, err
    res = json.loads((tmp_path / "p.json").read_text())
    assert res["samples"] == 6 and res["mean"] > 0 and sum(res["histogram"]["counts"]) >= 4
