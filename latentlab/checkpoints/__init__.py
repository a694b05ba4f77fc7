"""Checkpoint I/O: safe readers for official formats, latentlab's safetensors format, the loader."""

from .loader import Checkpoint, build_network, convert, load_checkpoint, load_generator
from .native import read_native, save_native

__all__ = ["Checkpoint", "build_network", "convert", "load_checkpoint", "load_generator", "read_native", "save_native"]
