"""Where weights come from: a bundled name, a local path, or a Hugging Face Hub repo id[@revision].

Hub access goes through ``huggingface_hub`` (``list_repo_files`` + ``hf_hub_download``) and the
standard HF cache, so ``HF_ENDPOINT``, ``HF_HOME``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` behave as
everywhere else. When the Hub can't be reached, a cached snapshot is used. Bundled models never
touch the network.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SourceError, UnsafeCheckpointError, UnsupportedCheckpointError

if TYPE_CHECKING:
    import torch  # imported where weights are read: the command line checks a source before torch

PACKAGE_ROOT = Path(__file__).resolve().parent
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")
MAX_WEIGHT_BYTES = 2 * 1024**3
MAX_SOURCE_CHARS = 1024
# A model folder holds a handful of files; looking further (a home folder, /) only wastes time.
MAX_FOLDER_ENTRIES = 500
MAX_FOLDER_DEPTH = 2


def bundled_dir() -> Path:
    """The folder of bundled checkpoints: $GANDEMO_WEIGHTS_DIR, else the repository's weights/ (a
    checkout, or ``pip install -e .``), else the copy an installed package carries (gandemo/bundled)."""
    if os.environ.get("GANDEMO_WEIGHTS_DIR"):
        return Path(os.environ["GANDEMO_WEIGHTS_DIR"])
    checkout = PACKAGE_ROOT.parent / "weights"
    return checkout if checkout.is_dir() else PACKAGE_ROOT / "bundled"


def bundled_models() -> list[str]:
    root = bundled_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())


@dataclass
class ResolvedFiles:
    """The files that make up one model, wherever they came from."""

    kind: str  # "bundled" | "local" | "hub"
    label: str  # human-readable source, e.g. "Hub: huggan/dcgan-mnist@main"
    weights: Path
    config: Path | None = None
    card: Path | None = None
    all_files: list[str] = field(default_factory=list)


_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


# A revision is a branch, a tag, a commit hash or "refs/pr/N": git ref characters, "/" only between parts,
# never "." or ".." as a part. It names a file under the cache's refs/ folder, so nothing else may pass.
_REVISION = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
MAX_REVISION_CHARS = 128
_COMMIT = re.compile(r"[0-9a-f]{40}")


def valid_revision(revision: str) -> bool:
    """Whether ``revision`` is a well-formed branch, tag, commit or PR ref (no path tricks)."""
    return (len(revision) <= MAX_REVISION_CHARS and bool(_REVISION.match(revision)) and ".." not in revision
            and not revision.endswith((".", ".lock")))


def parse_repo_id(text: str) -> tuple[str, str | None]:
    """'owner/name[@revision]' -> (repo_id, revision), or SourceError."""
    repo_id, _, revision = text.strip().partition("@")
    if _ and revision and _REPO_ID.match(repo_id) and not valid_revision(revision):
        raise SourceError(
            f"The revision after '@' in '{repo_id}@...' is not a branch, tag, commit hash or refs/pr/N "
            "(letters, digits, '.', '_', '-', and '/' between parts)."
        )
    if not _REPO_ID.match(repo_id) or ".." in repo_id or repo_id.endswith((".", "-")) or (_ and not revision):
        raise SourceError(
            f"'{text}' is not a bundled model ({', '.join(bundled_models()) or 'none installed'}), "
            "an existing local file or folder, or a Hub repo id like 'owner/name' or 'owner/name@revision'."
        )
    return repo_id, revision or None


def source_kind(source: object, allow_local: bool = True) -> tuple[str, str]:
    """What a user's model source names, checked without reading weights or asking the Hub: ("bundled", name),
    ("local", path) or ("hub", repo id[@revision]); SourceError for a source that can't resolve to any.

    ``allow_local=False`` (a shared server) never looks at the file system for ``source``: only
    bundled names and Hub repo ids resolve."""
    if not isinstance(source, str):
        raise SourceError("No model given: pick a bundled model or type a Hub repo id or a local path.")
    source = source.strip()
    if not source:
        raise SourceError("No model given: pick a bundled model or type a Hub repo id or a local path.")
    if len(source) > MAX_SOURCE_CHARS:
        raise SourceError(f"That model name is {len(source)} characters long; a repo id or path has at most {MAX_SOURCE_CHARS}.")
    if source in bundled_models():
        return "bundled", source
    if allow_local:
        path = Path(source).expanduser()
        if path_exists(path):
            if not path.is_dir() and path.suffix.lower() not in WEIGHT_SUFFIXES:
                raise SourceError(f"'{path.name}' is not a weights file: expected one of {', '.join(WEIGHT_SUFFIXES)}.")
            return "local", source
        if source.startswith(("/", "./", "../", "~")) or os.sep in source.replace("/", "") or source.lower().endswith(WEIGHT_SUFFIXES):
            raise SourceError(f"No such file or folder: {source}")
    parse_repo_id(source)
    return "hub", source


def resolve(source: str, allow_local: bool = True) -> ResolvedFiles:
    """Turn a user's model source into local files (downloading from the Hub when needed); what is
    accepted, and ``allow_local``, as in ``source_kind``."""
    kind, source = source_kind(source, allow_local)
    if kind == "bundled":
        files = choose_in_folder(bundled_dir() / source, f"bundled: {source}")
    elif kind == "hub":
        return download_from_hub(*parse_repo_id(source))
    elif (path := Path(source).expanduser()).is_dir():
        files = choose_in_folder(path, f"local: {path}")
    else:
        sibling_config = path.parent / "config.json"
        files = ResolvedFiles("local", f"local: {path}", path, sibling_config if sibling_config.is_file() and path.name == "model.safetensors" else None)
    files.kind = kind
    return files


def choose_weights(names: list[str]) -> str | None:
    """Pick the generator weights among a repo's files (None if there is nothing usable).

    Preference: model.safetensors, pytorch_model.bin, generator.*, the newest netG_epoch_N,
    then any other safetensors/bin/pth file with 'gen' in its name, then any single weights file.
    """
    top = [n for n in names if n.lower().endswith(WEIGHT_SUFFIXES)]
    for preferred in ("model.safetensors", "pytorch_model.bin"):
        if preferred in top:
            return preferred
    gens = [n for n in top if Path(n).stem.lower() in ("generator", "netg", "g", "gen", "generator_ema")]
    if gens:
        return sorted(gens, key=lambda n: (not n.endswith(".safetensors"), n))[0]
    epochs = [(int(m.group(1)), n) for n in top if (m := re.search(r"netG_epoch_(\d+)\.pth?$", n))]
    if epochs:
        return max(epochs)[1]
    named = [n for n in top if "gen" in Path(n).name.lower() or "netg" in Path(n).name.lower()]
    if named:
        return sorted(named, key=lambda n: (not n.endswith(".safetensors"), n))[0]
    return top[0] if len(top) == 1 else None


def path_exists(path: Path) -> bool:
    """Path.exists, False (not an error) for a name the file system refuses: too long, a NUL byte."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def folder_files(folder: Path) -> list[str]:
    """The files of a model folder (relative names), at most MAX_FOLDER_DEPTH levels deep.

    Stops with an error past MAX_FOLDER_ENTRIES entries: a model folder is small, and walking a
    home folder would keep the server busy for many seconds."""
    names: list[str] = []
    seen = 0
    pending = [(folder, 0)]
    while pending:
        current, depth = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > MAX_FOLDER_ENTRIES:
                raise UnsupportedCheckpointError(
                    f"{folder.name or folder} holds too many files to be a model folder (more than {MAX_FOLDER_ENTRIES}); "
                    "point at the folder with config.json + model.safetensors, or at the weights file itself.")
            if entry.name == ".cache":
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth + 1 < MAX_FOLDER_DEPTH:
                        pending.append((Path(entry.path), depth + 1))
                elif entry.is_file():
                    names.append(str(Path(entry.path).relative_to(folder)))
            except OSError:
                continue
    return sorted(names)


def choose_in_folder(folder: Path, label: str) -> ResolvedFiles:
    names = folder_files(folder)
    chosen = choose_weights(names)
    if chosen is None:  # the count, not the names: an error must not list a server folder
        raise UnsupportedCheckpointError(
            f"{label} holds no generator weights ({len(names)} file(s), none of them usable); expected model.safetensors "
            "(with config.json), pytorch_model.bin, generator.pth or netG_epoch_N.pth."
        )
    config = folder / "config.json"
    card = folder / "README.md"
    return ResolvedFiles(
        "local", label, folder / chosen,
        config if config.is_file() else None, card if card.is_file() else None, names,
    )


def _short_list(names: list[str], limit: int = 8) -> str:
    if not names:
        return "no files"
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def download_from_hub(repo_id: str, revision: str | None = None) -> ResolvedFiles:
    """Fetch the generator files of a Hub repo into the HF cache (or find them there offline)."""
    from huggingface_hub import HfApi, constants, hf_hub_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    label = f"Hub: {repo_id}" + (f"@{revision}" if revision else "")
    rev_text = f" at revision '{revision}'" if revision else ""
    names: list[str] | None = None
    reason = None
    if constants.HF_HUB_OFFLINE:
        reason = "offline mode is on (HF_HUB_OFFLINE=1)"
    else:
        try:
            names = HfApi().list_repo_files(repo_id, revision=revision)
        except GatedRepoError as e:
            raise SourceError(gated_message(repo_id)) from e
        except RevisionNotFoundError as e:
            raise SourceError(f"'{repo_id}' has no revision '{revision}' (branch, tag or commit).") from e
        except RepositoryNotFoundError as e:
            raise SourceError(
                f"No model repo '{repo_id}' on the Hub (check the spelling; if it is private, set HF_TOKEN)."
            ) from e
        except (OfflineModeIsEnabled, OSError, HfHubHTTPError, *network_errors()) as e:
            reason = f"the Hub could not be reached ({type(e).__name__})"

    if names is None:
        folder = cached_snapshot(repo_id, revision)
        if folder is None:
            hint = ("Unset HF_HUB_OFFLINE to allow the download." if constants.HF_HUB_OFFLINE
                    else "Check the internet connection (or HF_ENDPOINT) and try again.")
            raise SourceError(f"'{repo_id}'{rev_text} is not in the local Hugging Face cache and {reason}. {hint}")
        files = choose_in_folder(folder, label + " (cached)")
        files.kind = "hub"
        return files

    chosen = choose_weights(names)
    if chosen is None:
        raise UnsupportedCheckpointError(
            f"'{repo_id}'{rev_text} holds no generator weights: found {_short_list(names)}; expected "
            "model.safetensors (with config.json), pytorch_model.bin, generator.pth or netG_epoch_N.pth."
        )

    def fetch(name: str) -> Path:
        try:
            return Path(hf_hub_download(repo_id, name, revision=revision))
        except GatedRepoError as e:  # the Hub lists a gated repo's files openly but refuses downloads
            raise SourceError(gated_message(repo_id)) from e
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError, *network_errors()) as e:
            raise SourceError(f"Downloading '{name}' from '{repo_id}' failed: {e.__class__.__name__}: {first_line(e)}") from e

    return ResolvedFiles(
        "hub", label, fetch(chosen),
        fetch("config.json") if "config.json" in names and chosen.endswith(".safetensors") else None,
        fetch("README.md") if "README.md" in names else None,
        names,
    )


def gated_message(repo_id: str) -> str:
    return (f"'{repo_id}' is a gated repo: accept its conditions on its Hub page, then log in "
            "(huggingface-cli login or HF_TOKEN) and try again.")


def first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:200]


def network_errors() -> tuple[type[BaseException], ...]:
    """Transport-level errors of whichever HTTP library huggingface_hub uses (httpx2, httpx)."""
    errors: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
            errors.append(module.TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The cached snapshot folder for repo_id@revision, or None."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    storage = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    rev = revision or "main"
    if not valid_revision(rev):
        return None
    commit = rev if _COMMIT.fullmatch(rev) else None
    ref = storage / "refs" / rev
    if commit is None and ref.is_file() and not ref.is_symlink() and ref.stat().st_size <= 64:
        commit = ref.read_text(errors="replace").strip()
    # a ref file holds a commit hash; anything else (a path a stranger hopes to open) is not a snapshot
    if commit is None or not _COMMIT.fullmatch(commit):
        return None
    folder = storage / "snapshots" / commit
    return folder if folder.is_dir() else None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file, or from a torch pickle under ``weights_only=True``.

    Pickles that need to import or call anything beyond plain tensors are refused: the
    unpickler stops before any of that code runs.
    """
    path = Path(path)
    if path.stat().st_size > MAX_WEIGHT_BYTES:
        raise UnsupportedCheckpointError(f"{path.name} is larger than {MAX_WEIGHT_BYTES // 1024**3} GB; not a small GAN generator.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise UnsupportedCheckpointError(f"{path.name} is not a valid safetensors file ({e}).") from e
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"version https://git-lfs"):
        raise UnsupportedCheckpointError(f"{path.name} is a Git LFS pointer, not the weights: fetch them with 'git lfs pull'.")
    if not head.startswith((b"PK\x03\x04", b"\x80")):
        what = "empty" if not head else "neither a torch.save archive nor a pickle"
        raise UnsupportedCheckpointError(f"{path.name} is not a PyTorch checkpoint ({what}).")
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = str(e).split("\n")
        culprit = next((line.strip() for line in detail if "GLOBAL" in line or "Unsupported" in line), detail[0])
        raise UnsafeCheckpointError(
            f"Refused to load {path.name}: it contains pickled Python objects beyond plain tensors "
            f"({culprit[:160]}). Loading it would run code from the file, so nothing was executed. "
            "Ask the author for a safetensors file or a plain state_dict."
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise UnsupportedCheckpointError(f"{path.name} is not a readable PyTorch checkpoint ({first_line(e)}).") from e
    return unwrap_state_dict(obj, path.name)


def unwrap_state_dict(obj: object, name: str) -> dict[str, torch.Tensor]:
    """Accept a plain state dict or one nested under a common key (state_dict, generator, netG...)."""
    import torch

    for _ in range(2):
        if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        if isinstance(obj, dict):
            for key in ("generator_ema", "generator", "netG", "G", "state_dict", "model"):
                if isinstance(obj.get(key), dict):
                    obj = obj[key]
                    break
            else:
                break
    raise UnsupportedCheckpointError(
        f"{name} holds no state dict of tensors (found {type(obj).__name__}"
        + (f" with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, dict) else "")
        + ")."
    )


def push_folder(folder: str | Path, repo_id: str, token: str, private: bool = True,
                commit_message: str = "Upload GAN trained with gandemo") -> str:
    """Create (if needed) a model repo and upload a checkpoint folder; returns the repo URL.

    The token is passed straight to huggingface_hub for this call only: never stored, logged or
    put into an error message.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id.strip()) or ".." in repo_id:
        shown = repo_id[:80] if isinstance(repo_id, str) else type(repo_id).__name__
        if isinstance(repo_id, str) and "@" in repo_id:
            raise SourceError("Push to a repo id without '@revision'.")
        raise SourceError(f"'{shown}' is not a Hub repo id: it looks like 'your-name/model-name' (letters, digits, "
                          "'-', '_' and '.', one '/' between the owner and the name).")
    repo_id, revision = parse_repo_id(repo_id)
    token = (token or "").strip()
    if not token:
        raise SourceError("A Hugging Face access token with write permission is needed to push (huggingface.co/settings/tokens).")
    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise SourceError(f"{folder} is not a gandemo checkpoint (config.json + model.safetensors).")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message,
                          ignore_patterns=[".*", "**/.*", "previews/**"])  # previews stay local: a long run has hundreds
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            raise SourceError(f"The Hub refused the token for '{repo_id}' (HTTP {status}): it needs write access to that namespace.") from None
        raise SourceError(f"Pushing to '{repo_id}' failed (HTTP {status}).") from None
    except (OSError, *network_errors()) as e:
        raise SourceError(f"Pushing to '{repo_id}' failed: the Hub could not be reached ({type(e).__name__}).") from None
    return str(url).rstrip("/") if url else f"{repo_id}"
