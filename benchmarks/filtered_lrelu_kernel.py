"""StyleGAN3's filtered_lrelu calls one by one: our kernel, the reference ops and NVIDIA's plugin side by side.

    python benchmarks/filtered_lrelu_kernel.py --config sg3t-256 --batch 8 --device cuda --official ~/stylegan3

Records every filtered_lrelu call of one forward pass of a synthetic generator (input, filters, factors,
padding, gain, clamp, dtype: float16 above 16 px on a GPU, as NVIDIA's default), then replays each call with
each implementation: the median time over --iters runs after warm-up (CUDA events on a GPU) and the max abs
difference from the reference path evaluated in float64. Forward only. On a CPU `ours` is the kernel's host loop
(the same per-tile code, one thread), which checks the script rather than times anything.
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.generator_throughput import CONFIGS, synthetic_generator  # noqa: E402


def record_calls(G, batch, device):
    """[(x, kwargs)] of every filtered_lrelu call in one forward pass of G."""
    import latentlab.models.stylegan3 as sg3

    calls, original = [], sg3.filtered_lrelu

    def recording(x, **kw):
        calls.append(
            (x.detach().clone(), {k: (v.detach().clone() if torch.is_tensor(v) else v) for k, v in kw.items()})
        )
        return original(x, **kw)

    sg3.filtered_lrelu = recording
    try:
        z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(1)).to(device)
        with torch.no_grad():
            G(z, torch.zeros([batch, G.c_dim], device=device), noise_mode="const")
    finally:
        sg3.filtered_lrelu = original
    return calls


def median_ms(fn, iters, device):
    for _ in range(3):
        fn()
    times = []
    for _ in range(iters):
        if device.startswith("cuda"):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(c for c in CONFIGS if c.startswith("sg3")), default="sg3t-256")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--official", help="a stylegan3 checkout: also time NVIDIA's filtered_lrelu plugin")
    args = ap.parse_args()
    from latentlab.ops.cuda.functions import filtered_lrelu_cuda
    from latentlab.ops.filtered_lrelu import filtered_lrelu
    from latentlab.ops.upfirdn2d import parse_padding

    def ours(x, kw):  # the kernel entry `filtered_lrelu(impl="cuda")` takes; on a CPU tensor, its host loop
        clamp = kw.get("clamp")
        return filtered_lrelu_cuda(x, kw.get("fu"), kw.get("fd"), kw.get("b"), kw.get("up", 1), kw.get("down", 1),
                                   parse_padding(kw.get("padding", 0)), float(kw.get("gain", 2**0.5)),
                                   float(kw.get("slope", 0.2)), None if clamp is None else float(clamp),
                                   bool(kw.get("flip_filter", False)))  # fmt: skip

    impls = {
        "ours": ours,
        "ref": lambda x, kw: filtered_lrelu(x, impl="ref", **kw),
    }
    if args.official:
        from benchmarks.official_training import import_official

        import_official(args.official)
        from torch_utils.ops import filtered_lrelu as theirs

        impls["official"] = lambda x, kw: theirs.filtered_lrelu(x, impl="cuda", **kw)
    G = synthetic_generator(args.config, args.device)
    calls = record_calls(G, args.batch, args.device)
    names = list(impls)
    print(f"{len(calls)} calls, batch {args.batch}, {args.device}; ms per call (median of {args.iters}); "
          "error = max |y - y_float64_ref|")  # fmt: skip
    print(f"{'#':>2} {'input':>22} {'dtype':>8} up dn taps " + " ".join(f"{n + ' ms':>11}" for n in names)
          + " " + " ".join(f"{n + ' err':>11}" for n in names if n != "ref"))  # fmt: skip
    total = dict.fromkeys(names, 0.0)
    for i, (x, kw) in enumerate(calls):
        kw64 = {k: (v.double() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in kw.items()}
        truth = filtered_lrelu(x.double(), impl="ref", **kw64)
        ms, err = {}, {}
        with torch.no_grad():
            for name, fn in impls.items():
                ms[name] = median_ms(lambda fn=fn: fn(x, kw), args.iters, args.device)
                total[name] += ms[name]
                err[name] = float((fn(x, kw).double() - truth).abs().max())
        taps = "x".join(str(kw[f].shape[-1]) if kw.get(f) is not None else "-" for f in ("fu", "fd"))
        print(f"{i:>2} {str(tuple(x.shape)):>22} {str(x.dtype)[6:]:>8} {kw.get('up', 1):>2} {kw.get('down', 1):>2} "
              f"{taps:>4} " + " ".join(f"{ms[n]:>11.3f}" for n in names) + " "
              + " ".join(f"{err[n]:>11.2e}" for n in names if n != "ref"), flush=True)  # fmt: skip
    print("total ms: " + ", ".join(f"{n} {t:.2f}" for n, t in total.items()))


if __name__ == "__main__":
    main()
