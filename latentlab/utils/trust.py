"""Explicit trust for files that are programs (TorchScript classifiers), without importing torch.

Every other file latentlab reads is data: checkpoints through an allowlist unpickler, state dicts through
`torch.load(weights_only=True)` or safetensors, so no code from the file runs. A TorchScript file is different:
loading and calling it runs code its author compiled into it. Such a file is loaded only when the caller says
it trusts it (`trust_code=True` in Python, `--trust-code` on the command line); `require_trust` is that check,
and the strings below are the one wording of it (torch-free, so that `latentlab --help` stays fast).
"""

from ..errors import ConfigError

__all__ = ["TRUST_CODE_HELP", "TRUST_HINT", "require_trust"]

# The --trust-code option's help, shared by the CLI and the analyses/ scripts.
TRUST_CODE_HELP = (
    "Allow a torchscript:FILE classifier. A TorchScript file is a program: loading it runs code from the file, "
    "so pass this only for files you trust. Prefer state dicts (resnet:FILE, toyfaces:FILE.safetensors), from "
    "which no code runs; other classifiers ignore this flag."
)

# How to opt in, and the safe alternative: the end of the refusal message (both spellings: the same loader
# serves the CLI and Python users).
TRUST_HINT = (
    "pass --trust-code (trust_code=True in Python) only for a file you trust, or use a state dict instead "
    "(resnet:FILE.pt or .safetensors, toyfaces:FILE.safetensors), from which no code runs"
)


def require_trust(path, trust_code):
    """ConfigError unless `trust_code` is True: the file at `path` is a TorchScript program and would run code.
    Checked before the file is opened."""
    if trust_code is not True:
        raise ConfigError(
            f"{path}: a TorchScript classifier is a program (loading it runs code from the file); {TRUST_HINT}"
        )
