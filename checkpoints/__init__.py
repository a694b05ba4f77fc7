"""Data shipped with latentlab: the registry of known checkpoints (registry.json)."""
