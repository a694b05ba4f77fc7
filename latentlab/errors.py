"""Exceptions raised by latentlab."""


class CheckpointError(Exception):
    """A checkpoint file could not be read: unsafe, damaged, or of an unsupported kind.

    The message always names the file and the problem, e.g.
    ``"ffhq.pkl: refuses global 'os.system' (not an allowed checkpoint object)"``.
    """
