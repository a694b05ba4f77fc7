"""The format tags of checkpoint files, defined once.

A tag names the layout a checkpoint was read from; it is what `Checkpoint.format` and
`RawCheckpoint.format` hold, what `latentlab info` prints, what the model registry's
"format" field says, and the key of `formats.CONVERTERS`. Compare tags with these
names, never with string literals. The layouts are described in docs/FORMATS.md,
docs/SG1_FORMAT.md and docs/ROSINALITY_FORMAT.md.
"""

__all__ = [
    "FORMAT_SG2_PYTORCH",
    "FORMAT_SG2_TF",
    "FORMAT_SG1_TF",
    "FORMAT_ROSINALITY",
    "FORMAT_LATENTLAB",
    "OFFICIAL_FORMATS",
    "ALL_FORMATS",
]

FORMAT_SG2_PYTORCH = "stylegan2-ada-pytorch"  # stylegan2-ada-pytorch / stylegan3-era pickles of StyleGAN2 networks
FORMAT_SG2_TF = "stylegan2-tf"  # NVlabs/stylegan2 and stylegan2-ada TensorFlow pickles (G, D, Gs)
FORMAT_SG1_TF = "stylegan1-tf"  # the original StyleGAN's TensorFlow pickles (G, D, Gs)
# rosinality/stylegan2-pytorch .pt files (train.py, convert_weight.py) and pSp/e4e-style files with its generator
FORMAT_ROSINALITY = "rosinality-stylegan2-pytorch"
FORMAT_LATENTLAB = "latentlab"  # latentlab's own .safetensors checkpoints (the source tag is kept in extras)

OFFICIAL_FORMATS = (FORMAT_SG2_PYTORCH, FORMAT_SG2_TF, FORMAT_SG1_TF, FORMAT_ROSINALITY)
ALL_FORMATS = OFFICIAL_FORMATS + (FORMAT_LATENTLAB,)
