"""Exceptions raised by latentlab.

Every expected failure is a `LatentlabError`; the command line reports those (and OSErrors) in one
line and a non-zero exit, and lets anything else show as the bug it is (with its traceback).

    LatentlabError
    |- CheckpointError      a checkpoint or weights file is unsafe, damaged or unsupported
    |- ConfigError          a bad argument, option or input value (also a ValueError)
    |- MissingDependency    an optional package is not installed (also an ImportError and a ValueError)
    `- MissingWeights       pretrained weights are neither cached nor downloadable
"""


class LatentlabError(Exception):
    """Base of latentlab's expected errors: the command line reports them in one line."""


class CheckpointError(LatentlabError):
    """A checkpoint file could not be read: unsafe, damaged, or of an unsupported kind.

    The message always names the file and the problem, e.g.
    ``"ffhq.pkl: refuses global 'os.system' (not an allowed checkpoint object)"``.
    """


class ConfigError(LatentlabError, ValueError):
    """A bad argument, option or input value; the message names it and what is accepted.

    Also a ValueError, so code that caught ValueError before keeps working.
    """


class MissingWeights(LatentlabError):
    """Pretrained weights a feature needs are neither cached nor downloadable; the message says what to fetch and where."""


class MissingDependency(LatentlabError, ImportError, ValueError):
    """An optional package a feature needs is not installed; the message names it and the pip command
    (`latentlab.utils.optional.require`). Also an ImportError and a ValueError, as callers caught before."""
