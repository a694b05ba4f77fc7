"""Network definitions: one canonical implementation per generation."""

from .discriminator import Discriminator
from .generator import Generator
from .layers import HookPoint
from .mapping import MappingNetwork, truncate
from .synthesis import SynthesisNetwork

__all__ = ["Discriminator", "Generator", "HookPoint", "MappingNetwork", "SynthesisNetwork", "truncate"]
