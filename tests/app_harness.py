"""Run the real app (``python app.py --port N``) in a subprocess for app and browser tests.

    from app_harness import app  # noqa: F401 - the fixture

    def test_something(app: AppProcess) -> None:
        client = app.client(tmp_path)  # gradio_client.Client talking HTTP to the subprocess

The app runs with the session's stand-in Hub (HF_ENDPOINT and HF_HOME come from tests/conftest.py,
which sets them in ``os.environ`` before anything imports huggingface_hub), on the CPU, with its
output folder and Gradio's file cache in a temporary folder. Its stdout/stderr go to a log file
whose tail is shown whenever something goes wrong.

Test modules that import the ``app`` fixture share ONE server: pytest makes a separate fixture
definition per importing module, so the server itself is reference-counted here and stopped when
the last user is done. Stopping checks that the process was still alive (it didn't crash while
serving) and that it ends on SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from gradio_client import Client

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
# What gandemo.ui.common.human_errors logs when a handler fails in a way nobody planned for.
UNEXPECTED_ERROR_MARK = "unexpected error in"


class AppCrashedError(AssertionError):
    """The app process died, failed to start, or did not stop cleanly (message holds its log tail)."""


def free_port() -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_env(workdir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The app's environment: ``base`` (default: this process's, i.e. the stand-in Hub under pytest)
    plus CPU only, no analytics or telemetry, and output folders inside ``workdir``."""
    env = dict(os.environ if base is None else base)
    env.update({
        "GANDEMO_DEVICE": "cpu",
        "GANDEMO_OUTPUT_DIR": str(workdir / "outputs"),
        "GANDEMO_RUNS_DIR": str(workdir / "runs"),
        "OMP_NUM_THREADS": "1",
        "GRADIO_TEMP_DIR": str(workdir / "gradio-cache"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p),
    })
    for name in ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "SPACE_ID"):
        env.pop(name, None)
    return env


@dataclass
class AppProcess:
    """A running ``app.py`` subprocess."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    workdir: Path
    clients: list[Client] = field(default_factory=list)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path}:\n" + "\n".join(tail)

    def log_mark(self) -> int:
        """A position in the log, for ``unexpected_errors(since=...)``."""
        return len(self.log_text())

    def unexpected_errors(self, since: int = 0) -> list[str]:
        """Log lines (after position ``since``) where the app reported an error it did not turn into a
        human message."""
        return [line for line in self.log_text()[since:].splitlines() if UNEXPECTED_ERROR_MARK in line]

    def assert_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise AppCrashedError(f"The app process exited with status {code} while tests used it.\n{self.log_tail()}")

    def client(self, download_dir: Path) -> Client:
        """A gradio_client talking to the app; downloaded files land in ``download_dir``."""
        from gradio_client import Client

        self.assert_alive()
        download_dir.mkdir(parents=True, exist_ok=True)
        client = Client(self.url, download_files=str(download_dir), verbose=False)
        self.clients.append(client)
        return client

    def stop(self) -> int:
        """End the app and return its exit status. SIGTERM rather than Ctrl-C: Gradio's Ctrl-C path
        waits several seconds for idle keep-alive connections, and a clean shutdown isn't under test."""
        for client in self.clients:
            with suppress(Exception):  # a client that won't close must not hide the app's state
                client.close()
        self.clients.clear()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        return int(self.proc.returncode)


def _wait_until_serving(app: AppProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if app.proc.poll() is not None:
            raise AppCrashedError(f"The app exited with status {app.proc.returncode} during startup.\n{app.log_tail()}")
        try:
            with urllib.request.urlopen(f"{app.url}/gradio_api/info", timeout=5) as resp:
                if resp.status == 200:
                    return
                last_error = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as e:
            last_error = f"{type(e).__name__}: {e}"
        time.sleep(0.3)
    raise AppCrashedError(f"The app did not answer at {app.url} within {timeout:.0f} s ({last_error}).\n{app.log_tail()}")


@contextmanager
def running_app(
    workdir: Path, env: dict[str, str] | None = None, timeout: float = STARTUP_TIMEOUT_S
) -> Iterator[AppProcess]:
    """Start ``python app.py --port <free port>`` in the repository root, wait until it answers,
    yield it, then stop it; raises AppCrashedError if it died on the way or would not stop."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "app.log"
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT, env=app_env(workdir, env), stdout=log, stderr=subprocess.STDOUT,
        )
    app = AppProcess(f"http://127.0.0.1:{port}", proc, log_path, workdir)
    try:
        _wait_until_serving(app, timeout)
    except BaseException:
        app.stop()
        raise
    crashed: AppCrashedError | None = None
    try:
        yield app
    finally:
        if proc.poll() is not None:
            crashed = AppCrashedError(f"The app crashed (exit status {proc.returncode}) while tests used it.\n{app.log_tail()}")
        code = app.stop()
    if crashed is not None:
        raise crashed
    if code not in (0, -signal.SIGTERM):
        raise AppCrashedError(f"The app exited with status {code} when asked to stop (SIGKILL needed?).\n{app.log_tail()}")


def _remove_if_clean(workdir: Path, exc_type: type[BaseException] | None) -> bool:
    """Remove the app's folder unless something failed (then its log stays for a closer look)."""
    if exc_type is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return False


def single_thread_env(workdir: Path) -> dict[str, str]:
    """The default environment of a shared app: this process's (the stand-in Hub) with one intra-op
    thread: on 2 shared cores torch's spinning thread pool is many times slower."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


class SharedApp:
    """One app for the whole session, however many modules ask for it (reference-counted).

    ``env_for(workdir)`` gives the app's environment; ``acquire(before_start)`` runs ``before_start``
    once, just before the app is started.
    """

    def __init__(self, prefix: str = "gandemo-app-",
                 env_for: Callable[[Path], dict[str, str]] = single_thread_env) -> None:
        self.prefix = prefix
        self.env_for = env_for
        self.stack: ExitStack | None = None
        self.app: AppProcess | None = None
        self.users = 0
        self.startup_error: AppCrashedError | None = None

    def acquire(self, before_start: Callable[[], None] | None = None) -> AppProcess:
        if self.startup_error is not None:  # don't wait another 90 s for every module
            raise AppCrashedError(f"(the app failed to start earlier in this session)\n{self.startup_error}")
        if self.app is None:
            with ExitStack() as stack:
                workdir = Path(tempfile.mkdtemp(prefix=self.prefix))
                stack.push(lambda exc_type, *_: _remove_if_clean(workdir, exc_type))
                if before_start is not None:
                    before_start()
                try:
                    self.app = stack.enter_context(running_app(workdir, env=self.env_for(workdir)))
                except AppCrashedError as e:
                    self.startup_error = e
                    raise
                self.stack = stack.pop_all()
        self.users += 1
        assert self.app is not None
        return self.app

    def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self.stack is not None:
            stack, self.stack, self.app = self.stack, None, None
            stack.close()  # raises AppCrashedError if the app died or would not stop


def shared_app_fixture(shared: SharedApp, doc: str) -> Callable[[], Iterator[AppProcess]]:
    """A session fixture that acquires ``shared`` for its users and releases it after them."""

    def fixture() -> Iterator[AppProcess]:
        app = shared.acquire()
        try:
            yield app
        finally:
            shared.release()

    fixture.__doc__ = doc
    return pytest.fixture(scope="session")(fixture)


_SHARED = SharedApp()
app = shared_app_fixture(_SHARED, "The app running in a subprocess, shared by every test module that imports this fixture.")
