"""Semantic directions: the `Direction` type lives in `latentlab.latents.directions` (shared with boundaries).

Re-exported here so that `latentlab.edits.directions` imports keep working.
"""

from ..latents.directions import Direction, infer_space, load_direction, orthogonalize

__all__ = ["Direction", "infer_space", "load_direction", "orthogonalize"]
