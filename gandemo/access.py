"""Who may load what: the one place that decides which model sources and runs a visitor can reach.

Two modes:

- ``local``: one person on their own machine (``python app.py`` on 127.0.0.1, the CLI, the Python
  API). Any local file or folder may be loaded, every run on the server is theirs.
- ``shared``: strangers use the app (a Hugging Face Space, a ``--share`` link, a non-loopback host).
  A model source is then only a bundled name, a Hub repo id, a file the visitor uploaded
  (``upload:<key>``) or a run made through the app (``run:<name>``); never a server path. A run
  belongs to the browser that started it: run lists, resume and Hub push check the owner key the
  browser holds; sampling a run needs its name, which carries 128 random bits, so it works like a
  secret link its owner may share on purpose.

The mode comes from ``configure(mode=...)`` (``app.py --mode``), else ``$GANDEMO_MODE``, else
``local``; ``app.py`` resolves ``auto`` from how it is launched (see ``mode_for_launch``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path

from .errors import GandemoError

MODES = ("auto", "local", "shared")
RUN_PREFIX = "run:"
UPLOAD_PREFIX = "upload:"
OWNERS_DIR = ".owners"
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,120}$")
_UPLOAD_KEY = re.compile(r"^[0-9a-f]{32}/[^/\\]{1,200}$")
MAX_UPLOADS = 256

_lock = threading.Lock()
_mode: str | None = None
_uploads: OrderedDict[str, Path] = OrderedDict()


class AccessError(GandemoError):
    """A visitor asked for something that is not theirs (or not reachable on a shared server)."""


def mode_for_launch(requested: str, host: str, share: bool, on_space: bool) -> str:
    """``auto`` becomes ``shared`` on a Space, with a share link, or on a non-loopback interface."""
    if requested not in MODES:
        raise GandemoError(f"Access mode must be one of {', '.join(MODES)} (got {requested!r}).")
    if requested != "auto":
        return requested
    if on_space or share:
        return "shared"
    return "local" if _is_loopback(host) else "shared"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configure(mode: str) -> None:
    """Set the mode for this process (``local`` or ``shared``)."""
    global _mode
    if mode not in ("local", "shared"):
        raise GandemoError(f"Access mode must be 'local' or 'shared' here (got {mode!r}).")
    _mode = mode


def current_mode() -> str:
    if _mode is not None:
        return _mode
    env = (os.environ.get("GANDEMO_MODE") or "local").strip().lower()
    return env if env in ("local", "shared") else "shared"  # a typo must not open the server up


def is_shared() -> bool:
    return current_mode() == "shared"


# ---------------------------------------------------------------------------- owners and runs
def new_owner_key() -> str:
    """A fresh key for one browser; it stays in that browser (BrowserState) and nowhere else."""
    return secrets.token_urlsafe(24)


def _digest(owner_key: str) -> str:
    return hashlib.sha256(owner_key.encode()).hexdigest()


def runs_root() -> Path:
    from .training import runs_dir

    return runs_dir()


def claim_run(run_dir: str | Path, owner_key: str) -> None:
    """Record that ``owner_key``'s browser made this run (outside the run folder: never zipped or pushed)."""
    folder = runs_root() / OWNERS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / Path(run_dir).name).write_text(_digest(owner_key))


def owns_run(run_dir: str | Path, owner_key: str | None) -> bool:
    if not owner_key:
        return False
    record = runs_root() / OWNERS_DIR / Path(run_dir).name
    try:
        return secrets.compare_digest(record.read_text().strip(), _digest(owner_key))
    except OSError:
        return False


def run_handle(run_dir: str | Path) -> str:
    """How a run is named to a visitor: ``run:<name>`` when shared (no server path), the path when local."""
    return f"{RUN_PREFIX}{Path(run_dir).name}" if is_shared() else str(run_dir)


def run_folder(handle: str) -> Path:
    """The folder of a run named ``run:<name>`` (a direct child of the runs folder), or AccessError."""
    name = handle[len(RUN_PREFIX):] if handle.startswith(RUN_PREFIX) else ""
    if not _RUN_NAME.match(name):
        raise AccessError(f"'{handle[:80]}' is not the name of a run (expected run:<name>).")
    folder = runs_root() / name
    if not (folder / "config.json").is_file():
        raise AccessError(f"There is no finished run called {name} on this server (runs are kept for a while, not forever).")
    return folder


def visitor_run(handle: str, owner_key: str | None, *, need_owner: bool) -> Path:
    """The run folder a visitor refers to (``run:<name>``, or a path in local mode), checked for them.

    In shared mode only ``run:<name>`` is accepted, and with ``need_owner`` (resume, push, listing)
    the browser's owner key must match the run's."""
    if not isinstance(handle, str):
        raise AccessError("A run is named by text (run:<name>, or a folder on a local launch).")
    handle = handle.strip()
    if not is_shared():
        return run_folder(handle) if handle.startswith(RUN_PREFIX) else Path(handle)
    folder = run_folder(handle) if handle.startswith(RUN_PREFIX) else None
    if folder is None:
        raise AccessError("On a shared server a run is named run:<name>, as the Train tab shows it; server paths are not available.")
    if need_owner and not owns_run(folder, owner_key):
        raise AccessError(f"{handle[:80]} was not made in this browser: only the browser that trained a run can resume or push it.")
    return folder


def visible_runs(owner_key: str | None, runs: list[Path]) -> list[Path]:
    """The runs a visitor may list: all of them locally, their own when shared."""
    if not is_shared():
        return runs
    return [r for r in runs if owns_run(r, owner_key)]


# ---------------------------------------------------------------------------- uploads
def register_upload(path: str | Path) -> str:
    """Name an uploaded weights file ``upload:<key>``; the key stands for this exact file, for a while."""
    path = Path(path)
    key = f"{secrets.token_hex(16)}/{path.name[:200]}"
    with _lock:
        _uploads[key] = path
        while len(_uploads) > MAX_UPLOADS:
            _uploads.popitem(last=False)
    return UPLOAD_PREFIX + key


def forget_upload(handle: str) -> None:
    """Drop an upload's name (a file that turned out not to be weights must not take a place in the table)."""
    with _lock:
        _uploads.pop(handle[len(UPLOAD_PREFIX):], None)


def upload_path(handle: str) -> Path:
    key = handle[len(UPLOAD_PREFIX):]
    with _lock:
        path = _uploads.get(key) if _UPLOAD_KEY.match(key) else None
        if path is not None:  # the least recently used names go first, not the first registered
            _uploads.move_to_end(key)
    if path is None or not path.is_file():
        raise AccessError("That uploaded file is no longer on the server: upload it again.")
    return path


# ---------------------------------------------------------------------------- model sources
def model_source(source: str) -> tuple[str, bool]:
    """Map what a visitor typed or picked to what ``load_generator`` may open, for the current mode:
    ``(source, allow_local)``.

    ``run:`` and ``upload:`` handles become paths; in shared mode anything that is not a bundled
    name or a Hub repo id is refused without touching the file system, and a repo id is never
    looked up as a local path (``runs/x`` is a repo id there, not a folder)."""
    from .hub import bundled_models, parse_repo_id

    source = (source or "").strip()
    if source.startswith(RUN_PREFIX):
        return str(run_folder(source)), True
    if source.startswith(UPLOAD_PREFIX):
        return str(upload_path(source)), True
    if not is_shared() or not source or source in bundled_models():
        return source, not is_shared()
    try:
        parse_repo_id(source)
    except GandemoError:
        raise AccessError(
            f"'{source[:80]}' is not available on a shared server: choose a bundled model, type a Hub repo id "
            "(owner/name), upload a weights file, or open a run you trained here. Server paths can't be loaded."
        ) from None
    return source, False


# ---------------------------------------------------------------------------- a shared server's budgets
# A stranger must not hold the trainer for days or fill the disk: on a shared server a training job ends
# (saved, resumable) after $GANDEMO_TRAIN_MAX_MINUTES, and runs nobody touched for
# $GANDEMO_RUNS_MAX_AGE_HOURS, or the least recently touched ones beyond $GANDEMO_RUNS_QUOTA, are deleted.
# Locally there are no such limits unless the variables are set.
SHARED_TRAIN_MAX_MINUTES = 30.0
SHARED_RUNS_MAX_AGE_HOURS = 48.0
SHARED_RUNS_QUOTA = "10GB"
# the downloads of all requests together (grids, GIFs, checkpoint zips; each is also copied once into Gradio's
# cache), beyond their one hour: the least recently written go first ($GANDEMO_OUTPUTS_QUOTA)
SHARED_OUTPUTS_QUOTA = "5GB"
SHARED_LAB_RUN_MAX_SECONDS = 60.0  # one /lab_run call ($GANDEMO_LAB_RUN_MAX_SECONDS)
# the pixels one upload may decode ($GANDEMO_INTAKE_MAX_MEGAPIXELS): a 10 kB PNG can decode to 89 megapixels. 2,000
# is e.g. 160 PNG photos of 12 megapixels, or 10,000 JPEG photos (decoded at 1/8 scale), in about 5 s of CPU
SHARED_INTAKE_MAX_MEGAPIXELS = 2000.0


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise GandemoError(f"{name} must be a number (got {text!r}).") from None
    if not value >= 0 or value == float("inf"):
        raise GandemoError(f"{name} must be 0 (no limit) or a positive number (got {text!r}).")
    return value


def train_time_limit_s() -> float:
    """Seconds a training job may run before it is stopped and saved (0: no limit)."""
    return 60 * _env_number("GANDEMO_TRAIN_MAX_MINUTES", SHARED_TRAIN_MAX_MINUTES if is_shared() else 0)


def lab_run_limit_s() -> float:
    """Seconds one /lab_run call may compute (0: no limit)."""
    return _env_number("GANDEMO_LAB_RUN_MAX_SECONDS", SHARED_LAB_RUN_MAX_SECONDS if is_shared() else 0)


def intake_pixel_budget() -> int:
    """Pixels one upload of training images may decode (0: no budget)."""
    return int(1e6 * _env_number("GANDEMO_INTAKE_MAX_MEGAPIXELS", SHARED_INTAKE_MAX_MEGAPIXELS if is_shared() else 0))


def _env_size(name: str, shared_default: str) -> int:
    """Bytes from $name ('10GB'), else ``shared_default`` on a shared server; 0 (no quota) locally or for '0'."""
    text = os.environ.get(name, "").strip() or (shared_default if is_shared() else "0")
    return 0 if text == "0" else parse_size(text, name)


def runs_budget() -> tuple[float, int]:
    """(max age of an untouched run in seconds, most bytes all runs may hold); 0 means no limit."""
    age = 3600 * _env_number("GANDEMO_RUNS_MAX_AGE_HOURS", SHARED_RUNS_MAX_AGE_HOURS if is_shared() else 0)
    return age, _env_size("GANDEMO_RUNS_QUOTA", SHARED_RUNS_QUOTA)


def _usage(folder: Path) -> tuple[float, int]:
    """(when anything in ``folder`` was last written, its bytes)."""
    last, size = folder.stat().st_mtime, 0
    for path in folder.rglob("*"):
        try:
            stat = path.lstat()
        except OSError:
            continue
        last = max(last, stat.st_mtime)
        size += stat.st_size if path.is_file() else 0
    return last, size


def prune_folders(root: Path, max_age_s: float = 0, quota: int = 0, keep: tuple[str | Path, ...] = (),
                  spare_newer_than_s: float = 0, now: float | None = None) -> list[Path]:
    """Delete the folders in ``root`` (not hidden ones, not links) that nothing wrote to for ``max_age_s``, then the
    least recently written until all fit in ``quota`` bytes; 0 turns either off. Folders named in ``keep``, and
    those written in the last ``spare_newer_than_s``, stay. Returns the folders deleted, oldest first."""
    if not max_age_s and not quota:
        return []
    import shutil

    kept = {Path(k).name for k in keep}
    folders = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
            continue
        try:
            folders.append((*_usage(folder), folder))
        except OSError:
            continue
    folders.sort(key=lambda f: f[0])
    now = time.time() if now is None else now
    total = sum(size for _, size, _ in folders)
    removed = []
    for last, size, folder in folders:
        if folder.name in kept or now - last < spare_newer_than_s:
            continue
        if (max_age_s and now - last > max_age_s) or (quota and total > quota):
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
            removed.append(folder)
    return removed


def prune_runs(keep: tuple[str | Path, ...] = (), now: float | None = None) -> list[str]:
    """Delete runs beyond ``runs_budget()``: first those untouched for longer than the max age, then the
    least recently written until all runs fit the quota. Runs named in ``keep`` (a running job's, the one
    being resumed) stay, and so does each run's owner record only while its run does. Returns the names
    deleted, oldest first."""
    max_age, quota = runs_budget()
    root = runs_root()
    removed = prune_folders(root, max_age, quota, keep=keep, now=now)
    for folder in removed:
        (root / OWNERS_DIR / folder.name).unlink(missing_ok=True)
    return [folder.name for folder in removed]


def outputs_quota() -> int:
    """Bytes the downloadable files of all requests may take ($GANDEMO_OUTPUTS_QUOTA; 0: no quota)."""
    return _env_size("GANDEMO_OUTPUTS_QUOTA", SHARED_OUTPUTS_QUOTA)


# ---------------------------------------------------------------------------- upload size
DEFAULT_MAX_UPLOAD = "200MB"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?i?b?)\s*$", re.I)


def parse_size(text: str | int, what: str = "An upload limit") -> int:
    """'200MB', '1.5 GB', '500k' or a byte count -> bytes (decimal units, like Gradio's own)."""
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise GandemoError(f"{what} looks like 200MB, 1GB or 500kB (got {text!r}).")
    unit = m.group(2).lower()[:1]
    value = int(float(m.group(1)) * {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9}[unit])
    if value < 1024:
        raise GandemoError(f"{what} of {value} bytes is too small to upload an image (use e.g. 200MB).")
    return value


def max_upload_bytes() -> int:
    """The largest file a visitor may upload ($GANDEMO_MAX_FILE_SIZE, default 200MB)."""
    return parse_size(os.environ.get("GANDEMO_MAX_FILE_SIZE") or DEFAULT_MAX_UPLOAD)


def format_size(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


# ---------------------------------------------------------------------------- messages
def redact_paths(message: str, extra_roots: tuple[Path, ...] = ()) -> str:
    """On a shared server a message never shows where things live on it: the runs folder, the app's
    own folder, the temp folder and the home folder become short names (a run is then 'runs/<name>',
    which is the name its owner already knows)."""
    if not is_shared():
        return message
    import tempfile

    roots = [(runs_root(), "runs"), (Path(__file__).resolve().parent.parent, "app"),
             *((r, "files") for r in extra_roots), (Path(tempfile.gettempdir()), "tmp"), (Path.home(), "home")]
    for root, name in roots:
        for form in {str(root), str(root.resolve())}:
            if form and form != "/" and form in message:
                message = message.replace(form, f"<{name}>")
    return message
