"""ALS, PPL and the correlation study split across two gloo processes give the single-process result."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r"""
import json, sys, torch
from latentlab import Generator
from latentlab.sampling import init_from_env
from latentlab.studies import perceptual_path_length
from latentlab.studies.reports import als_study
torch.manual_seed(0)
G = Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
              mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=16)).eval()
init_from_env("cpu")
class Clf:
    names = None
    def __call__(self, img):
        return img.mean(dim=[2, 3])
clf = Clf()
mse = lambda a, b: ((a - b) ** 2).mean(dim=[1, 2, 3])
a = als_study(G, clf, pairs=5, steps=3, batch_size=2)
p = perceptual_path_length(G, num_samples=7, distance=mse, batch_size=2)
import numpy as np
from latentlab.studies.reports import corr_study
clf.names = ["r", "g", "b"]
dirs = {("w", "r"): np.eye(16)[0], ("z", "r"): np.eye(16)[1]}
c = corr_study(G, clf, dirs, [4, 2, 9, 7, 1], "-1:1:3", {"r": "r"})
print("RESULT " + json.dumps(dict(als=a.tolist(), logits=a.attrs["logits"].tolist(), ppl=p.distances.tolist(),
                                  corr=c["frame"].values.tolist())), flush=True)
from latentlab.utils.distributed import shutdown
shutdown()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(env_extra):
    env = dict(os.environ, PYTHONPATH=ROOT, **env_extra)
    return subprocess.Popen(
        [sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def result(p):
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err[-2000:]
    return json.loads(out.split("RESULT ", 1)[1])


@pytest.mark.slow
def test_two_ranks_equal_one():
    single = result(run({}))
    env = dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE="2")
    ranks = [result(p) for p in [run(dict(env, RANK=str(r), LOCAL_RANK=str(r))) for r in (0, 1)]]
    for r in ranks:  # every rank ends with the full, gathered result
        np.testing.assert_allclose(r["logits"], single["logits"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r["als"], single["als"], rtol=1e-4, atol=1e-9)
        np.testing.assert_allclose(r["ppl"], single["ppl"], rtol=1e-2)  # float32 images 1e-4 apart (see test_ppl)
        assert [row[:4] for row in r["corr"]] == [row[:4] for row in single["corr"]]  # same rows, same order
        np.testing.assert_allclose(
            [row[4:] for row in r["corr"]], [row[4:] for row in single["corr"]], rtol=1e-5, atol=1e-6
        )
