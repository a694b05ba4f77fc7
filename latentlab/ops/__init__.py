"""Custom ops of StyleGAN2/3: reference PyTorch path everywhere, compiled CUDA kernels on GPUs."""

from .bias_act import ACTIVATIONS, bias_act, bias_act_ref
from .conv2d_resample import conv2d_resample
from .filtered_lrelu import filtered_lrelu, filtered_lrelu_ref
from .modulated_conv2d import modulated_conv2d
from .upfirdn2d import downsample2d, setup_filter, upfirdn2d, upfirdn2d_ref, upsample2d

__all__ = [
    "ACTIVATIONS",
    "bias_act",
    "bias_act_ref",
    "conv2d_resample",
    "downsample2d",
    "filtered_lrelu",
    "filtered_lrelu_ref",
    "modulated_conv2d",
    "setup_filter",
    "upfirdn2d",
    "upfirdn2d_ref",
    "upsample2d",
]
