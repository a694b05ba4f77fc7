"""Small filtered_lrelu CUDA calls to run under NVIDIA's compute-sanitizer (racecheck, memcheck): StyleGAN3's up-2
and up-4 configurations in float32 and float16, forward (the lean inference path) and backward (recorded forward,
then the gradient chains), checked against the reference ops.

    compute-sanitizer --tool racecheck --racecheck-report hazard python benchmarks/sanitize_filtered_lrelu.py
    compute-sanitizer --tool memcheck python benchmarks/sanitize_filtered_lrelu.py
"""

import torch

from latentlab.ops.filtered_lrelu import filtered_lrelu, filtered_lrelu_ref

torch.manual_seed(0)
worst = 0.0
for up, taps_up in ((2, 12), (4, 24)):
    fu = torch.randn(taps_up).cuda()
    fd = torch.randn(12).cuda()
    for dtype in (torch.float32, torch.float16):
        x = torch.randn(2, 5, 23, 23, device="cuda", dtype=dtype)
        b = torch.randn(5, device="cuda", dtype=dtype)
        pad = taps_up // 2
        kw = dict(up=up, down=2, padding=pad, gain=1.4, slope=0.2, clamp=100.0)
        y = filtered_lrelu(x, fu, fd, b, impl="cuda", **kw)
        r = filtered_lrelu_ref(x.float(), fu, fd, b.float(), **kw)
        worst = max(worst, float((y.float() - r).abs().max() / r.abs().max()))
        xg = x.float().clone().requires_grad_()
        filtered_lrelu(xg, fu, fd, b.float(), impl="cuda", **kw).square().sum().backward()
torch.cuda.synchronize()
print(f"done; largest difference from the reference ops, relative to its largest value: {worst:.1e}")
assert worst < 2e-3, "filtered_lrelu CUDA differs from the reference ops"  # float16 output rounding is ~5e-4
