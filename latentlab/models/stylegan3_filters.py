"""The low-pass filters of StyleGAN3's layers: Kaiser-windowed sinc (separable) and jinc (radial) designs.

The filters are persistent buffers of official pickles, so a loaded model uses the file's taps; these
designs build new networks (and are checked against the file's taps in the tests). The separable design
is the Kaiser window method (`scipy.signal.firwin(numtaps, cutoff, width=..., fs=...)`): an ideal low-pass
impulse response 2 f_c / f_s sinc(2 f_c / f_s n) times a Kaiser window whose beta follows Kaiser's
empirical formulas for the attenuation that `numtaps` taps reach over the transition band `width`,
normalised to unit DC gain. Computed in float64, stored as float32, as the official code does.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

__all__ = ["kaiser_atten", "kaiser_beta", "bessel_j1", "design_lowpass_filter"]


def kaiser_atten(numtaps: int, width: float) -> float:
    """Attenuation (dB) a Kaiser FIR of `numtaps` taps reaches; `width` is the transition band over Nyquist."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(atten: float) -> float:
    """Kaiser's beta for a stop-band attenuation of `atten` dB."""
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def bessel_j1(x: np.ndarray, points: int = 512) -> np.ndarray:
    """J1(x) = 1/(2 pi) int_0^{2 pi} cos(t - x sin t) dt by the trapezoidal rule.

    The integrand is smooth and periodic, so the rule converges exponentially: 512 points reach float64
    precision for |x| < 200 (StyleGAN3's radial filters need |x| < 60).
    """
    t = np.arange(points) * (2 * np.pi / points)
    x = np.asarray(x, dtype=np.float64)
    return np.cos(t - x[..., None] * np.sin(t)).mean(axis=-1)


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> Optional[torch.Tensor]:
    """A float32 low-pass filter of `numtaps` taps (None for one tap: the identity).

    cutoff: cutoff frequency (f_c); width: transition band width (2 f_h); fs: sampling rate, all in the
    same units. radial=False: 1-D separable [numtaps]; radial=True: 2-D radially symmetric jinc
    [numtaps, numtaps] with the separable Kaiser window, normalised to unit sum.
    """
    if numtaps < 1:
        raise ValueError(f"a filter needs at least one tap, got {numtaps}")
    if numtaps == 1:
        return None
    window = np.kaiser(numtaps, kaiser_beta(kaiser_atten(numtaps, width / (fs / 2))))
    if not radial:
        c = cutoff / (fs / 2)  # cutoff relative to Nyquist
        n = np.arange(numtaps) - (numtaps - 1) / 2
        h = c * np.sinc(c * n) * window
        return torch.as_tensor(h / h.sum(), dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = bessel_j1(2 * cutoff * np.pi * r) / (np.pi * r)
    f = f * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)
