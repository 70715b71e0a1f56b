"""The Hugging Face Hub: every model source to a local folder, `load`, `pull` and `push`, Hub errors as one line.

One resolver maps every model source to a local folder: a run or model folder as is; `hf://org/name[@rev]`, or a
bare `org/name[@rev]` that is no local path, to a snapshot in huggingface_hub's cache (read-only for us: commands
write their outputs elsewhere). Only the files below are ever downloaded, so pickle weights never reach the disk.
huggingface_hub and torch load only when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from genzoo.core.errors import GenzooError
from genzoo.modelfile.folder import (
    CONFIG_NAME,
    FORMAT,
    WEIGHTS_NAME,
    check_weights_file,
    load_folder,
    read_config,
    resolve_model_folder,
)

if TYPE_CHECKING:
    import torch

HUB_PREFIX = "hf://"
HUB_FILES = [CONFIG_NAME, WEIGHTS_NAME, "README.md", "recipe.yaml", "eval.json", "*.png"]
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_REPO_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"


def parse_hub_source(source) -> tuple[str, str | None] | None:
    """(repo_id, revision) for `hf://org/name[@rev]`, or for a bare `org/name[@rev]` string that is not a local
    path; None for a local source. A `Path` object is always local."""
    import re

    if isinstance(source, Path):
        return None
    text = str(source)
    if text.startswith(HUB_PREFIX):
        repo_id, _, revision = text[len(HUB_PREFIX) :].partition("@")
        if not re.fullmatch(rf"(?:{_REPO_ID}/)?{_REPO_ID}", repo_id) or (not revision and "@" in text):
            raise GenzooError(f"'{text}' is not a Hub model id", "write hf://org/name or hf://org/name@revision")
        return repo_id, revision or None
    if Path(text).exists() or Path(text).parent.is_dir() and Path(text).parent != Path("."):
        return None  # a local path, or one whose folder exists locally (runs/<typo>): never a Hub id
    match = re.fullmatch(rf"({_REPO_ID}/{_REPO_ID})(?:@(.+))?", text)
    return (match.group(1), match.group(2)) if match else None


def output_path(source, name: str) -> Path:
    """Where a command writes its output by default: next to a local source; in the current folder for a Hub source
    (the Hugging Face cache is never written)."""
    return Path(name) if parse_hub_source(source) else Path(source) / name


def resolve_source(source, *, local_files_only: bool = False) -> Path:
    """A local model folder for any model source (run folder, model folder, Hub id): the one resolver of genzoo."""
    hub = parse_hub_source(source)
    if hub is None:
        return resolve_model_folder(source)
    bare = not str(source).startswith(HUB_PREFIX)
    return hub_snapshot(*hub, local_files_only=local_files_only, bare_source=str(source) if bare else None)


def _label(repo_id: str, revision: str | None) -> str:
    return f"{repo_id}@{revision}" if revision else repo_id


def _offline(local_files_only: bool) -> bool:
    from huggingface_hub import constants

    return local_files_only or constants.is_offline_mode()


def hub_snapshot(
    repo_id: str, revision: str | None = None, *, local_files_only: bool = False, bare_source: str | None = None
) -> Path:
    """Download (or find in huggingface_hub's cache) a genzoo model from the Hub; returns the snapshot folder.

    Honours HF_HUB_OFFLINE, HF_ENDPOINT, HF_HOME/HF_HUB_CACHE and the saved token, like every Hugging Face library.
    A repository without model.safetensors (pickle-only, or not a genzoo model) is refused.
    """
    from huggingface_hub import snapshot_download

    from genzoo.core.version import __version__

    label = _label(repo_id, revision)
    with (
        _hub_errors(label, "download", bare_source=bare_source, local_files_only=local_files_only),
        _no_progress_bars(),
    ):
        folder = Path(
            snapshot_download(
                repo_id,
                revision=revision,
                allow_patterns=HUB_FILES,
                local_files_only=local_files_only,
                library_name="genzoo",
                library_version=__version__,
            )
        )
    if not (folder / WEIGHTS_NAME).is_file():
        pickles = [f for f in _repo_files(repo_id, folder) if f.endswith(PICKLE_SUFFIXES)]
        if pickles:
            raise GenzooError(
                f"Hub model '{label}' holds only pickle weights ({', '.join(pickles[:3])}), no {WEIGHTS_NAME}",
                "genzoo never loads pickle, because unpickling can run code: ask its author for a "
                "safetensors export (`genzoo push` writes one)",
            )
        hint = " (or it is only partly cached: pull it once with network access)" if _offline(local_files_only) else ""
        raise GenzooError(
            f"Hub repo '{label}' has no {WEIGHTS_NAME}{hint}",
            "it is not a genzoo model: a genzoo model is config.json + model.safetensors",
        )
    if not (folder / CONFIG_NAME).is_file():
        raise GenzooError(
            f"Hub repo '{label}' has no {CONFIG_NAME}", "it is not a genzoo model (`genzoo push` writes one)"
        )
    return folder


def _repo_files(repo_id: str, snapshot: Path) -> list[str]:
    """Files the repo holds, from the tree listing huggingface_hub cached (no network), else the snapshot folder."""
    names = {p.name for p in snapshot.iterdir()} if snapshot.is_dir() else set()
    try:
        from huggingface_hub import get_cached_repo_tree

        names |= {f.path for f in get_cached_repo_tree(repo_id, revision=snapshot.name)}
    except Exception:  # no cached listing (hand-filled cache, older huggingface_hub): the folder is what we know
        pass
    return sorted(names)


def load(
    path: str | Path, device: str | torch.device = "cpu", *, local_files_only: bool = False, sampler: str | None = None
) -> torch.nn.Module:
    """Rebuild a model from a model folder, a run folder, or a Hub model (`hf://org/name[@rev]`, or `org/name` when
    no such local folder exists), weights loaded, in eval mode; `sampler`: draw codes from that fitted sampler."""
    return load_folder(resolve_source(path, local_files_only=local_files_only), device, sampler)


def pull(source: str, *, local_files_only: bool = False, to: Path | None = None) -> tuple[Path, str]:
    """Fetch a Hub model into the cache and check it (config and a whole safetensors file); optionally copy it into
    the plain folder `to`. Returns (folder, commit hash)."""
    import shutil

    from genzoo.core.io import atomic_dir

    text = str(source)
    hub = parse_hub_source(text if text.startswith(HUB_PREFIX) else HUB_PREFIX + text)
    folder = hub_snapshot(*hub, local_files_only=local_files_only)
    label = _label(*hub)
    read_config(
        folder,
        f"Hub repo '{label}' is not a genzoo model (its config.json is not format {FORMAT})",
        "pull models written by `genzoo push`",
    )
    try:
        check_weights_file(folder / WEIGHTS_NAME)
    except GenzooError as exc:
        raise GenzooError(
            f"Hub model '{label}' has a broken {WEIGHTS_NAME}: {exc.problem}",
            "ask its author to push it again; nothing was loaded",
        ) from None
    if to is not None:
        with atomic_dir(to) as tmp:
            for f in folder.iterdir():
                shutil.copyfile(f, tmp / f.name)  # follows the cache's symlinks: a plain, self-contained folder
    return folder, folder.name


def check_repo_id(repo_id: str) -> str:
    import re

    repo_id = repo_id[len(HUB_PREFIX) :] if repo_id.startswith(HUB_PREFIX) else repo_id
    if not re.fullmatch(rf"{_REPO_ID}/{_REPO_ID}", repo_id) or "@" in repo_id:
        raise GenzooError(
            f"'{repo_id}' is not a Hub repo id", "write --repo org/name (letters, digits, '-', '_', '.')"
        )
    return repo_id


def push(
    source,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    dry_run: Path | None = None,
    license: str | None = None,
) -> dict:
    """Upload a run (or model folder) to the Hub as one commit: model, recipe, samples, eval.json, model card.

    The upload is built in a temporary folder first; the Hub commit is all-or-nothing. With `dry_run`, the upload
    is written into that folder and nothing is sent. Returns {"url", "commit", "files", "notes"}.
    """
    import shutil
    import tempfile

    from genzoo.core.io import atomic_dir
    from genzoo.core.version import __version__
    from genzoo.modelfile.card import build_upload

    repo_id = check_repo_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="genzoo-push-") as tmp:
        built = build_upload(source, Path(tmp) / "upload", repo_id, license)
        upload = Path(tmp) / "upload"
        if dry_run is not None:
            with atomic_dir(dry_run) as staging:
                shutil.copytree(upload, staging, dirs_exist_ok=True)
            return {"url": None, "commit": None, "files": built["files"], "notes": built["notes"]}

        from huggingface_hub import HfApi, constants, get_token

        if not get_token():
            raise GenzooError(
                "no Hugging Face token found, and pushing needs one",
                "run `hf auth login` (or set HF_TOKEN) with a token that has write access",
            )
        config = built["config"]
        api = HfApi(library_name="genzoo", library_version=__version__)
        message = (
            commit_message
            or f"genzoo push: {config['model']['name']} + {(config.get('prior') or {}).get('name')}"
            f", step {config.get('step')}"
        )
        with _hub_errors(repo_id, "push to"), _no_progress_bars():
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if revision and revision != constants.DEFAULT_REVISION:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(
                repo_id=repo_id, folder_path=str(upload), revision=revision, commit_message=message
            )
    return {
        "url": f"{constants.ENDPOINT}/{repo_id}",
        "commit": info.oid,
        "files": built["files"],
        "notes": built["notes"],
    }


# -- huggingface_hub's errors as one line ----------------------------------------------------------------------------


def _scrub(text: str) -> str:
    """Never show a token: the saved/env token and anything shaped like one are masked."""
    import re

    try:
        from huggingface_hub import get_token

        token = get_token()
    except Exception:
        token = None
    if token:
        text = text.replace(token, "***")
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text)


def _is_network_error(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__module__.split(".")[0] in (
            "httpx",
            "httpx2",
            "httpcore",
            "requests",
            "urllib3",
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class _no_progress_bars:
    """huggingface_hub's tqdm bars off while we call it (the CLI shows its own status); restored afterwards."""

    def __enter__(self):
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars

        self._was = are_progress_bars_disabled()
        disable_progress_bars()

    def __exit__(self, *exc):
        from huggingface_hub.utils import enable_progress_bars

        if not self._was:
            enable_progress_bars()


class _hub_errors:
    """Turn huggingface_hub's exceptions into one GenzooError line with a fix; tokens never appear."""

    def __init__(self, label: str, action: str, *, bare_source: str | None = None, local_files_only: bool = False):
        self.label, self.action, self.bare, self.local_files_only = label, action, bare_source, local_files_only

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, (GenzooError, KeyboardInterrupt)) or not isinstance(exc, Exception):
            return False
        problem, fix = self._explain(exc)
        if self.bare:
            problem = f"'{self.bare}' is not a local folder, and as a Hub id: {problem}"
            fix = f"check the path of a local run or model folder; for the Hub: {fix}"
        raise GenzooError(_scrub(problem), _scrub(fix)) from None

    def _explain(self, exc: Exception) -> tuple[str, str]:
        from huggingface_hub import constants, errors

        label, endpoint = self.label, constants.ENDPOINT
        offline = _offline(self.local_files_only)
        retry = "check your connection, proxy and HF_ENDPOINT, then try again"
        if isinstance(exc, errors.LocalTokenNotFoundError):
            return "no Hugging Face token found", "run `hf auth login` or set HF_TOKEN"
        if isinstance(exc, errors.IncompleteSnapshotError):
            return (
                f"the cached copy of '{label}' is incomplete and the Hub cannot be reached",
                f"run `genzoo pull {label}` with network access",
            )
        if isinstance(exc, (errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError)):
            if offline:
                how = "--local-files-only" if self.local_files_only else "HF_HUB_OFFLINE=1"
                return (
                    f"'{label}' is not in the local Hugging Face cache and downloads are off ({how})",
                    f"run `genzoo pull {label}` once with network access, or unset HF_HUB_OFFLINE",
                )
            return (
                f"could not reach the Hugging Face Hub at {endpoint}, and '{label}' is not in the local cache",
                retry,
            )
        if isinstance(exc, errors.RevisionNotFoundError):
            return f"'{label}': no such revision on the Hub", "give an existing branch, tag or commit after '@'"
        if isinstance(exc, errors.GatedRepoError):
            return (
                f"'{label}' is gated on the Hub",
                "accept its conditions on its Hub page, then log in (`hf auth login` or HF_TOKEN)",
            )
        if isinstance(exc, errors.RepositoryNotFoundError):
            if self.action == "download":
                return (
                    f"the Hub has no model '{label}' (or it is private and your token cannot see it)",
                    "check the name; for a private model log in with `hf auth login` or set HF_TOKEN",
                )
            return (
                f"cannot {self.action} '{label}': the Hub says it does not exist or your token cannot write to it",
                "check the name and use a token with write access (`hf auth login` or HF_TOKEN)",
            )
        if isinstance(exc, errors.HFValidationError):
            return f"'{label}' is not a valid Hub repo id", "write org/name (letters, digits, '-', '_', '.')"
        if isinstance(exc, errors.HfHubHTTPError) and getattr(exc, "response", None) is not None:
            status = exc.response.status_code
            server = (getattr(exc, "server_message", None) or "").strip().splitlines()
            said = f": {server[0]}" if server else ""
            if status == 401:
                return (
                    f"the Hub rejected your token (401) while trying to {self.action} '{label}'",
                    "log in again with `hf auth login` or set HF_TOKEN to a valid token",
                )
            if status == 403:
                return (
                    f"your token may not {self.action} '{label}' (403 Forbidden{said})",
                    "use a token with write access to that namespace, or push under your own name",
                )
            nothing = "; the commit is all-or-nothing, so nothing changed" if self.action != "download" else ""
            return (
                f"the Hub answered {status} while trying to {self.action} '{label}'{said}",
                f"try again later{nothing}",
            )
        if _is_network_error(exc):
            return (
                f"could not reach the Hugging Face Hub at {endpoint} to {self.action} '{label}' "
                f"({type(exc).__name__})",
                retry + "; HF_HUB_OFFLINE=1 uses only the local cache",
            )
        if isinstance(exc, ValueError) and "README.md" in str(exc):
            return f"the Hub refused the model card's metadata ({str(exc).splitlines()[0]})", "report this genzoo bug"
        return (
            f"the Hub call to {self.action} '{label}' failed "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            "run again with --debug for the full traceback",
        )
