"""Errors raised by latentlab."""


class CheckpointError(Exception):
    """A checkpoint file is missing, unsafe, corrupt or not of a supported kind (the message names the file)."""
