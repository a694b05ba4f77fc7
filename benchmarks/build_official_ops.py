"""Compile NVIDIA's CUDA plugins from a stylegan2-ada-pytorch or stylegan3 checkout, and say whether they loaded.

    python benchmarks/build_official_ops.py ~/stylegan2-ada-pytorch

Their ops fall back to slow reference code with only a warning when a build fails; a side-by-side benchmark
against that fallback would time the wrong thing, so `benchmarks/gpu_session.sh` builds them first with this and
stops on failure (exit status 1).
"""

import importlib
import os
import sys
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.official_training import import_official  # noqa: E402


def main():
    repo = sys.argv[1]
    import_official(repo)
    ops = ["bias_act", "upfirdn2d"] + (["filtered_lrelu"] if os.path.isfile(
        os.path.join(repo, "torch_utils", "ops", "filtered_lrelu.py")) else [])  # fmt: skip
    failed = []
    for name in ops:
        module = importlib.import_module(f"torch_utils.ops.{name}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ok = bool(module._init())
            # stylegan2-ada-pytorch's bias_act/upfirdn2d return False and warn when the build failed
            ok = ok and getattr(module, "_plugin", None) is not None
        print(f"{repo}: {name}: {'built' if ok else 'FAILED'}", flush=True)
        for w in caught:
            print(f"  warning: {str(w.message)[-1500:]}", flush=True)
        if not ok:
            failed.append(name)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
