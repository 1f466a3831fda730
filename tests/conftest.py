"""Test-wide setup: one local stand-in Hugging Face Hub and a private HF cache for the whole session.

``huggingface_hub`` reads HF_ENDPOINT, HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE when it is
imported, so this module starts the stand-in Hub and sets the environment at import time,
before any test module (or gandemo, which imports huggingface_hub) is imported:

- HF_ENDPOINT        -> the stand-in Hub (tests/hub_server.py); nothing reaches huggingface.co
- HF_HOME, HF_HUB_CACHE -> a fresh temporary folder, removed at the end of the session
- HF_HUB_DISABLE_TELEMETRY=1, progress bars off; HF_TOKEN and HF_HUB_OFFLINE unset
- GANDEMO_DEVICE=cpu

Fixtures for every test file:

- ``hub``: the session's :class:`hub_server.StandInHub`. Add repos with unique names
  (``factories.unique_repo_id``), e.g. ``hub.add_repo(repo_id, {"config.json": ..., ...})``;
  check traffic with ``hub.mark()`` / ``hub.requests_since(mark)`` / ``hub.files_fetched(repo_id)``.
- ``hf_env``: a full environment (a fresh copy of ``os.environ``) for subprocesses that must use
  the same Hub and cache: pass it as ``env=`` to ``subprocess``; the repository root is on its
  PYTHONPATH so ``import gandemo`` works. Add ``HF_HUB_OFFLINE=1`` to it for offline runs.
- ``run_python``: ``run_python(code, env={"HF_HUB_OFFLINE": "1"}, timeout=120, check=True)`` runs
  ``code`` with this interpreter in the repository root, with ``hf_env`` plus ``env`` (a value of
  None removes a variable), and returns the ``subprocess.CompletedProcess`` (text output). With
  ``check`` a non-zero exit fails the test and shows stdout and stderr.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
for _p in (str(TESTS_DIR), str(REPO_ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

if "huggingface_hub" in sys.modules:  # pragma: no cover - a plugin imported it before us
    raise RuntimeError(
        "huggingface_hub was imported before tests/conftest.py could point HF_ENDPOINT at the stand-in Hub; "
        "run the tests without plugins that import it (or set HF_ENDPOINT yourself)."
    )

from hub_server import StandInHub  # noqa: E402

HUB = StandInHub().start()
HF_HOME_DIR = Path(tempfile.mkdtemp(prefix="gandemo-tests-hf-"))
HF_SETTINGS = {
    "HF_ENDPOINT": HUB.url,
    "HF_HOME": str(HF_HOME_DIR),
    "HF_HUB_CACHE": str(HF_HOME_DIR / "hub"),
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "HF_HUB_DISABLE_SYMLINKS_WARNING": "1",
    "GANDEMO_DEVICE": "cpu",
}
HF_UNSET = (
    "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
    "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE", "HUGGINGFACE_CO_STAGING",
)
os.environ.update(HF_SETTINGS)
for _name in HF_UNSET:
    os.environ.pop(_name, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    HUB.stop()
    shutil.rmtree(HF_HOME_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def hub() -> StandInHub:
    """The session's stand-in Hub (HF_ENDPOINT points at it). Use unique repo ids per test."""
    return HUB


@pytest.fixture
def hf_env() -> dict[str, str]:
    """A fresh, complete environment for subprocesses: same stand-in Hub, same HF cache, no token."""
    env = dict(os.environ)
    env.update(HF_SETTINGS)
    for name in HF_UNSET:
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture
def run_python(hf_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_python(code, env=None, timeout=120, check=True)``: run code in a fresh interpreter."""

    def run(code: str, env: dict[str, str | None] | None = None, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        full_env = dict(hf_env)
        for name, value in (env or {}).items():
            if value is None:
                full_env.pop(name, None)
            else:
                full_env[name] = value
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=full_env, capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(f"subprocess exited with {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def browser():  # noqa: ANN201 - playwright's Browser; imported lazily so non-browser runs don't need it
    """One Chromium for every browser test (skips locally, fails with CI=true, when it can't run)."""
    from browser_support import launch_browser

    yield from launch_browser()


@pytest.fixture
def js_errors() -> list[str]:
    """Uncaught JavaScript errors of the test's page (filled by browser_support.open_page)."""
    return []


@pytest.fixture(scope="module")
def one_thread():  # noqa: ANN201 - a generator fixture
    """One torch intra-op thread for a module: on a small shared CPU, torch's thread pool spinning
    against other work makes tiny models many times slower. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
