"""Type aliases for annotations: the generator classes every latent, edit and truncation function accepts."""

from typing import Union

from .generator import Generator
from .stylegan1 import StyleGAN1Generator
from .stylegan3 import StyleGAN3Generator

# A generator of any generation (same interface: mapping, synthesis, z_dim, c_dim, w_dim, num_ws).
AnyGenerator = Union[Generator, StyleGAN1Generator, StyleGAN3Generator]

__all__ = ["AnyGenerator"]
