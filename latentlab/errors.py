"""Exceptions raised by latentlab."""


class CheckpointError(Exception):
    """A checkpoint file could not be read: unsafe, damaged, or of an unsupported kind.

    The message always names the file and the problem, e.g.
    ``"ffhq.pkl: refuses global 'os.system' (not an allowed checkpoint object)"``.
    """


class LatentlabError(Exception):
    """Base of latentlab's expected errors: the command line reports them in one line."""


class MissingWeights(LatentlabError):
    """Pretrained weights a feature needs are neither cached nor downloadable; the message says what to fetch and where."""
