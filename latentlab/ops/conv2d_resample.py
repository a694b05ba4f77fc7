"""2-D convolution fused with FIR up/down-sampling (StyleGAN2's resampling convolution)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .upfirdn2d import Padding, filter_size, parse_padding, upfirdn2d


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: Optional[torch.Tensor] = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Convolve `x` with `w`, upsampling before or downsampling after with filter `f`.

    Args:
        x: [N, groups*Cin, H, W]; w: [Cout, Cin, kh, kw].
        f: low-pass filter from `setup_filter` (used only when up or down > 1).
        up, down: integer factors (not both > 1).
        padding: int, (px, py) or (x0, x1, y0, y1), as for an ordinary conv.
        flip_weight: True = correlation (torch.conv2d); False = true convolution.
    Upsampling is a transposed (strided) convolution followed by the filter, which
    equals zero insertion, filtering and convolution but costs a quarter of the FLOPs.
    """
    if not (isinstance(up, int) and isinstance(down, int) and up >= 1 and down >= 1):
        raise ConfigError(f"up and down must be ints >= 1, got {up!r}, {down!r}")
    if up > 1 and down > 1:
        raise ConfigError("conv2d_resample: up and down together are not supported")
    out_ch, in_ch, kh, kw = w.shape
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    if not flip_weight:  # from here on, `w` is the kernel that is correlated with the input
        w = w.flip([2, 3])

    if up > 1:
        # Padding of the equivalent slow path (zero insertion, filter, conv)...
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
        # ...moved behind the transposed conv, whose full output is k-1 wider.
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        if groups == 1:
            wt = w.transpose(0, 1)
        else:
            wt = w.reshape(groups, out_ch // groups, in_ch, kh, kw).transpose(1, 2)
            wt = wt.reshape(groups * in_ch, out_ch // groups, kh, kw)
        # Cropping inside the transposed conv where both sides crop saves work.
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = F.conv_transpose2d(x, wt.flip([2, 3]), stride=up, padding=[pyt, pxt], groups=groups)
        return upfirdn2d(
            x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up * up, flip_filter=flip_filter
        )

    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
        if kw == 1 and kh == 1:  # 1x1: downsample first, the conv then sees 1/4 of the pixels
            x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
            return F.conv2d(x, w, groups=groups)
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return F.conv2d(x, w, stride=down, groups=groups)

    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return F.conv2d(x, w, padding=[py0, px0], groups=groups)
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1])
    return F.conv2d(x, w, groups=groups)
