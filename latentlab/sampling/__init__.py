"""Sample latents, render, score with an attribute classifier and store the results in resumable chunks.

    from latentlab.sampling import sample, SampleTable
    sample(G, classifier, "out/samples", n=500_000, truncation_psi=0.7)   # rerun to resume
    table = SampleTable("out/samples")
    data = table.load(fields=("w", "scores"))                              # in seed order

Folder format: see store.py (chunks) and manifest.py; multi-process runs: latentlab.utils.distributed;
what studies read from a folder (attributes by name, one space's codes and scores): select.py.
"""

from ..utils.distributed import init_from_env, rank_device
from .sampler import SampleReport, sample
from .store import SampleTable

__all__ = ["SampleReport", "SampleTable", "init_from_env", "rank_device", "sample"]
