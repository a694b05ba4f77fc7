"""The training-lever benchmark's Winograd convolution computes a 3x3 convolution (its timings mean something)."""

import pytest
import torch
import torch.nn.functional as F

from benchmarks.training_levers import winograd_conv3x3


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_conv3x3_is_a_padded_3x3_convolution(m):
    g = torch.Generator().manual_seed(m)
    x = torch.randn(2, 5, 7, 10, generator=g, requires_grad=True)  # sizes not multiples of the tile
    w = torch.randn(3, 5, 3, 3, generator=g, requires_grad=True)
    gy = torch.randn(2, 3, 7, 10, generator=g)
    y = winograd_conv3x3(m)(x, w)
    ref = F.conv2d(x.double(), w.double(), padding=1)
    assert y.shape == ref.shape
    assert torch.allclose(y.double(), ref, rtol=0, atol=1e-4 * ref.abs().max().item())
    grads = torch.autograd.grad(y, [x, w], gy)
    refs = torch.autograd.grad(ref, [x, w], gy.double())
    for a, b in zip(grads, refs):
        assert torch.allclose(a.double(), b.double(), rtol=0, atol=1e-4 * b.abs().max().item())
