"""Checkpoints on the Hugging Face Hub: ``hf://owner/repo/path/to/file.pkl[@revision]``.

`resolve` (and with it `load_checkpoint` and every `--model`) hands such a spec to `fetch`, which
downloads the file with `huggingface_hub.hf_hub_download` (the optional extra `latentlab[hub]`) and
returns the file in the Hugging Face cache; the caller then reads it like any local checkpoint.
huggingface_hub does the rest as every Hugging Face library does: its cache (`HF_HUB_CACHE`, else
`$HF_HOME/hub`, else ~/.cache/huggingface/hub), ETags, a connection that breaks off mid-file resumed
with a Range request (within the call: recent huggingface_hub versions, 2.4 among them, keep no partial
file once a call has failed), `HF_ENDPOINT`, `HF_TOKEN` for private and gated repositories, and `HF_HUB_OFFLINE=1` (the
cached copy only, no request; read here also when it is set after huggingface_hub was imported).
The download's bar is latentlab's own (`utils.progress.progress_bar`).

Accepted forms (checked strictly by `parse`; anything else is a one-line ConfigError):

    hf://owner/repo/path/to/file.pkl               the default branch (main)
    hf://owner/repo/path/to/file.pkl@v1.0          a branch or tag (also refs/pr/N)
    hf://owner/repo/path/to/file.pkl@<40-hex sha>  a commit: once cached, no request at all
    hf://owner/repo@v1.0/path/to/file.pkl          huggingface_hub's own hf:// URI form
    hf://datasets/owner/repo/file.pkl              a dataset (or spaces/...) repository's file

The revision is what follows the last '@', so a file whose name holds an '@' is written with an
explicit revision (`hf://owner/repo/a@b.pkl@main`). Failures are one line naming the spec and what to do
(see `_explain`): a missing repository, revision or file; a gated or private repository (log in);
offline without a cached copy (what to fetch); an unreachable endpoint (which one, and why).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from typing import Any, Callable, NamedTuple, Optional

from ..errors import CheckpointError, ConfigError, LatentlabError
from ..utils.optional import require

SCHEME = "hf://"
FORM = "hf://owner/repo/path/to/file.pkl[@revision]"
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}  # URI prefix -> repo_type
MAX_SPEC = 2000

# The Hub's rules for a namespace (user or organisation) and a repository name: ASCII letters, digits,
# '-', '_' and '.', neither starting nor ending with '-' or '.', at most 96 characters, no '--' or '..'.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
# A branch or tag name (git's ref rules, on the characters refs use in practice) or a commit hash.
_REVISION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/+-]{0,254}")
# Revisions with a '/' that huggingface_hub's URI form knows where to end: refs/pr/N, refs/convert/<name>.
_SPECIAL_REF = re.compile(r"refs/(?:pr/\d+|convert/[A-Za-z0-9_.-]+)(?=/)")
_TRUE = {"1", "ON", "YES", "TRUE"}


class HubFile(NamedTuple):
    """A parsed hf:// spec."""

    repo_type: str  # 'model', 'dataset' or 'space'
    repo_id: str  # owner/name
    filename: str  # path inside the repository, '/'-separated
    revision: Optional[str]  # branch, tag or commit; None: the default branch

    @property
    def where(self) -> str:
        """The repository as the Hub's web address path names it: owner/name, datasets/owner/name, ..."""
        prefix = {v: k for k, v in REPO_TYPES.items()}[self.repo_type] + "/" if self.repo_type != "model" else ""
        return prefix + self.repo_id

    @property
    def at(self) -> str:
        return f"revision {self.revision!r}" if self.revision else "the default branch (main)"


def is_hub_spec(spec: str) -> bool:
    """Whether `spec` is meant for the Hub (starts with hf://); `parse` then says whether it is well formed."""
    return spec.startswith(SCHEME)


def _short(spec: str) -> str:
    """The spec as an error message names it: on one line, at most about 200 characters."""
    spec = spec if spec.isprintable() else ascii(spec)
    return spec if len(spec) <= 200 else spec[:200] + "..."


def _check_revision(spec: str, rev: str) -> str:
    bad = not _REVISION.fullmatch(rev) or ".." in rev or "//" in rev or rev.endswith(("/", ".", ".lock")) or "/." in rev
    if bad:
        raise ConfigError(
            f"{_short(spec)}: revision {rev[:100]!r} is not a branch or tag name (letters, digits, '.', '_', '-', "
            f"'/', '+'; no '..') or a 40-hex commit; expected {FORM}"
        )
    return rev


def parse(spec: str) -> HubFile:
    """Split an hf:// spec into repository, file and revision; ConfigError (one line naming the spec) when malformed."""
    where = _short(spec)
    if not is_hub_spec(spec):
        raise ConfigError(f"{where}: not a Hugging Face Hub spec; expected {FORM}")
    if len(spec) > MAX_SPEC:
        raise ConfigError(f"{where}: longer than {MAX_SPEC} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in spec) or "\\" in spec:
        raise ConfigError(f"{where}: control characters and backslashes are not allowed; expected {FORM}")
    parts = spec[len(SCHEME) :].split("/")
    repo_type = "model"
    if parts[0] in ("buckets", "kernels"):
        raise ConfigError(f"{where}: only files of model, dataset and space repositories are checkpoints here")
    if parts[0] in REPO_TYPES:
        repo_type = REPO_TYPES[parts.pop(0)]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ConfigError(f"{where}: names no repository (owner/name); expected {FORM}")
    owner, name = parts[0], parts[1]
    revision: Optional[str] = None
    rest = "/".join(parts[2:])
    if "@" in name:  # huggingface_hub's form: owner/repo@rev/path
        name, after = name.split("@", 1)
        after = "/".join([after, *parts[2:]])
        special = _SPECIAL_REF.match(after)
        cut = special.end() if special else (after.find("/") if "/" in after else len(after))
        revision, rest = after[:cut], after[cut + 1 :]
        if not revision:
            raise ConfigError(f"{where}: empty revision after '@'; expected {FORM}")
        if "@" in rest:
            raise ConfigError(f"{where}: two revisions (after the repository and after the file); give one")
    elif "@" in rest:  # owner/repo/path@rev
        rest, revision = rest.rsplit("@", 1)
        if not revision:
            raise ConfigError(f"{where}: empty revision after '@'; expected {FORM}")
    for kind, value in (("owner", owner), ("repository name", name)):
        if not _NAME.fullmatch(value) or "--" in value or ".." in value:
            raise ConfigError(
                f"{where}: {kind} {value[:100]!r} does not follow the Hub's rules (letters, digits, '-', '_', '.'; "
                "at most 96; not starting or ending with '-' or '.'; no '--' or '..')"
            )
    if name.endswith(".git"):
        raise ConfigError(f"{where}: repository name {name!r} may not end in '.git'")
    if not rest:
        raise ConfigError(f"{where}: names no file in the repository; expected {FORM}")
    segments = rest.split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise ConfigError(
            f"{where}: the file path {rest[:200]!r} must be relative, without empty, '.' or '..' parts; expected {FORM}"
        )
    if revision is not None:
        _check_revision(spec, revision)
    return HubFile(repo_type, f"{owner}/{name}", rest, revision)


def _offline(constants: Any) -> bool:
    """HF_HUB_OFFLINE as huggingface_hub read it at import, or as the environment says now."""
    at_import = constants.is_offline_mode() if hasattr(constants, "is_offline_mode") else constants.HF_HUB_OFFLINE
    return bool(at_import) or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def _bar_factory(ref: HubFile, progress: bool) -> Callable[..., Any]:
    """What huggingface_hub gets as its `tqdm_class`: latentlab's own bar (`utils.progress.progress_bar`: a line
    per few seconds in a log, rank 0 only, LATENTLAB_PROGRESS=0), named after the file, off unless `progress`."""
    from ..utils.progress import progress_bar

    def make(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("name", None)  # huggingface_hub names its own bars (for logging); tqdm takes no name
        off = kwargs.pop("disable", None) is True
        kwargs["desc"] = ref.filename.rsplit("/", 1)[-1]
        return progress_bar(*args, enabled=progress and not off, large=float("inf"), **kwargs)

    return make


def fetch(spec: str, progress: bool = True) -> str:
    """The local file (in the Hugging Face cache) of hf:// `spec`, downloaded on first use; see the module docstring.

    ConfigError for a malformed spec, MissingDependency without huggingface_hub, CheckpointError (one line
    naming the spec) when the file cannot be had."""
    ref = parse(spec)
    hub = require("huggingface_hub", "huggingface_hub", f"{_short(spec)} (a Hugging Face Hub file)")
    constants = importlib.import_module("huggingface_hub.constants")  # submodules: huggingface_hub imports lazily
    errors = importlib.import_module("huggingface_hub.utils")
    offline = _offline(constants)
    kwargs: dict = dict(repo_type=ref.repo_type, revision=ref.revision, local_files_only=offline)
    if "tqdm_class" in inspect.signature(hub.hf_hub_download).parameters:  # huggingface_hub >= 0.3x
        kwargs["tqdm_class"] = _bar_factory(ref, progress)
    try:
        return os.fspath(hub.hf_hub_download(ref.repo_id, ref.filename, **kwargs))
    except Exception as e:  # everything huggingface_hub and its HTTP client raise is worded below, else re-raised
        err = _explain(spec, ref, e, errors, constants, offline)
        if err is None:
            raise
        raise err from None


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    text = text if len(text) <= 300 else text[:300] + "..."
    return text or type(e).__name__


def _status(e: BaseException) -> Optional[int]:
    response = getattr(e, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _is_network_error(e: BaseException) -> bool:
    """A failure to reach the server: the OS's, or one of the HTTP client libraries huggingface_hub uses."""
    if isinstance(e, (ConnectionError, TimeoutError)):
        return True
    return type(e).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "requests", "urllib3")


def _login_hint() -> str:
    return "log in: set HF_TOKEN to a Hugging Face access token, or run `hf auth login`"


def _explain(
    spec: str, ref: HubFile, e: BaseException, errors: Any, constants: Any, offline: bool
) -> Optional[LatentlabError]:
    """The one-line error for what hf_hub_download raised (errors: huggingface_hub.utils, where its exception
    classes are), or None for anything unexpected (a bug: re-raised as it is)."""
    kind = lambda name: getattr(errors, name, ())  # absent in some huggingface_hub version: matches nothing
    where = _short(spec)
    endpoint = getattr(constants, "ENDPOINT", "the Hub")
    cache = getattr(constants, "HF_HUB_CACHE", "the Hugging Face cache")
    web = f"{endpoint}/{ref.where}"
    if isinstance(e, kind("LocalEntryNotFoundError")):
        cause = e.__cause__ or e.__context__
        if offline or isinstance(cause, kind("OfflineModeIsEnabled")):
            rev = f" --revision {ref.revision}" if ref.revision else ""
            typ = f" --repo-type {ref.repo_type}" if ref.repo_type != "model" else ""
            return CheckpointError(
                f"{where}: not in the Hugging Face cache ({cache}) and offline mode is on (HF_HUB_OFFLINE=1): "
                f"run once with HF_HUB_OFFLINE=0, or fetch it where the Hub can be reached with "
                f"`hf download {ref.repo_id} {ref.filename}{rev}{typ}` and copy that cache here"
            )
        if cause is not None and _is_network_error(cause):
            return CheckpointError(
                f"{where}: cannot reach {endpoint} ({_first_line(cause)}) and no copy is cached in {cache}; "
                "check the connection and HF_ENDPOINT"
            )
        if cause is not None and cause is not e:
            inner = _explain(spec, ref, cause, errors, constants, offline)
            if inner is not None:
                return inner
        return CheckpointError(f"{where}: could not reach {endpoint} and no copy is cached in {cache}")
    if isinstance(e, kind("GatedRepoError")):
        return CheckpointError(
            f"{where}: {ref.where} is a gated repository: accept its conditions at {web} and {_login_hint()}"
        )
    if isinstance(e, kind("RepositoryNotFoundError")):
        return CheckpointError(
            f"{where}: repository {ref.where} not found on {endpoint}; if it is private or gated, {_login_hint()}"
        )
    if isinstance(e, kind("RevisionNotFoundError")):
        return CheckpointError(f"{where}: revision {ref.revision!r} not found in repository {ref.where} ({web})")
    if isinstance(e, kind("EntryNotFoundError")):
        return CheckpointError(f"{where}: file {ref.filename!r} not found in repository {ref.where} at {ref.at}")
    if isinstance(e, kind("HfHubHTTPError")) or _status(e) is not None:
        code = _status(e)
        if code in (401, 403):
            return CheckpointError(f"{where}: {endpoint} refused access to {ref.where} (HTTP {code}); {_login_hint()}")
        return CheckpointError(f"{where}: {endpoint} answered HTTP {code} ({_first_line(e)}); try again later")
    if isinstance(e, kind("FileMetadataError")):
        return CheckpointError(
            f"{where}: {endpoint} does not answer like the Hugging Face Hub ({_first_line(e)}); check HF_ENDPOINT"
        )
    if _is_network_error(e):
        return CheckpointError(
            f"{where}: cannot reach {endpoint} ({_first_line(e)}); check the connection and HF_ENDPOINT"
        )
    if isinstance(e, ValueError):  # huggingface_hub's own checks of the repository id or the file name
        return ConfigError(f"{where}: {_first_line(e)}")
    if isinstance(e, OSError):  # an incomplete download, a full disk, a cache that cannot be written
        return CheckpointError(f"{where}: download failed ({_first_line(e)}); run again to retry")
    return None
