"""Long-running work (training, style transfer): one job per device at a time.

A job runs in a background thread and records its events, so it keeps going when the browser
tab that started it closes, and any page can re-attach to it and replay where it stands. The
job's owner holds a token (kept in the browser) that is needed to stop it; other visitors see
that the device is busy and how far the running job has got.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import GandemoError


class BusyError(GandemoError):
    """Another job holds the device."""


@dataclass
class Job:
    kind: str
    device: str
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    started: float = field(default_factory=time.time)
    status: str = "running"  # running | done | stopped | error
    time_limit_s: float = 0.0  # the job is stopped (as by its owner) after this long; 0: no limit
    limit_reached: bool = False  # it was stopped by that limit
    error: str = ""
    progress: str = "starting"
    events: list[Any] = field(default_factory=list)  # the first event, then the most recent ones
    dropped: int = 0  # how many events were trimmed from the log (those after the first)
    cancel: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)
    max_events: int = 20000

    @property
    def finished(self) -> bool:
        return self.status != "running"

    @property
    def recorded(self) -> int:
        """How many events were recorded in all, trimmed ones included (the next event's position)."""
        return len(self.events) + self.dropped

    def record(self, event: Any) -> None:
        with self.changed:
            self.events.append(event)
            excess = len(self.events) - self.max_events
            if excess > 0:  # keep the first (e.g. "start", which re-attaching pages use) and the most recent ones
                del self.events[1: 1 + excess]
                self.dropped += excess
            self.changed.notify_all()

    def finish(self, status: str, error: str = "") -> None:
        with self.changed:
            self.status, self.error = status, error
            self.changed.notify_all()

    def follow(self, start: int = 0, timeout: float = 0.5) -> Iterator[list[Any]]:
        """Yield batches of new events, from absolute position ``start``, until the job ends (an empty
        batch every ``timeout`` s while nothing happens, so a caller can update its clock or notice a
        disconnect). Positions count every event recorded, so they stay valid when the log is trimmed;
        a follower that fell behind the trimmed part skips to the events still kept."""
        seen = start
        while True:
            with self.changed:
                if self.recorded <= seen and not self.finished:
                    self.changed.wait(timeout)
                batch = self.events[self._index(seen):]
                seen, done = self.recorded, self.finished
            yield batch
            if done:
                return

    def _index(self, position: int) -> int:
        """Index in ``events`` of the event at absolute ``position``, or of the next one still kept."""
        if position <= 0:
            return 0
        return max(1, position - self.dropped)

    def stop(self, token: str | None) -> bool:
        if token != self.token:
            return False
        self.cancel.set()
        return True


def lower_priority(nice: int) -> bool:
    """Raise the calling thread's nice value by ``nice`` (no-op where the OS can't); True if done."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        return True
    except (OSError, AttributeError):
        return False


class JobManager:
    """Admits one running job per device."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._running: dict[str, str] = {}  # device -> job id

    def running(self, device: str) -> Job | None:
        with self._lock:
            job_id = self._running.get(device)
            return self._jobs.get(job_id) if job_id else None

    def get(self, job_id: str | None) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id or "")

    def start(self, kind: str, device: str, work: Callable[[Job], Iterator[Any]],
              describe: Callable[[Any], str] = str, nice: int = 0, time_limit_s: float = 0.0) -> Job:
        """Run ``work(job)`` in a thread, recording every event it yields; BusyError if the device is taken.

        ``nice`` > 0 lowers the thread's CPU priority (Linux: threads are scheduled one by one), so a
        long job on a small machine yields the CPU to visitors' quick requests and takes the rest.
        ``time_limit_s`` > 0 sets the job's ``cancel`` after that long (``limit_reached`` says so): the
        work stops the way its owner's Stop would stop it, so a shared device is never held for good."""
        with self._lock:
            current = self._jobs.get(self._running.get(device, ""))
            if current is not None and not current.finished:
                elapsed = time.time() - current.started
                raise BusyError(
                    f"The {device} is busy with another {current.kind} job ({current.progress}; running for "
                    f"{elapsed / 60:.0f} min). Only one job runs per device at a time: try again when it ends."
                )
            job = Job(kind=kind, device=device, time_limit_s=time_limit_s)
            self._jobs[job.id] = job
            self._running[device] = job.id
            # forget old finished jobs, keeping the last few for re-attaching pages
            finished = [j for j in self._jobs.values() if j.finished]
            for old in sorted(finished, key=lambda j: j.started)[:-8]:
                self._jobs.pop(old.id, None)

        def limit() -> None:
            if not job.finished and not job.cancel.is_set():
                job.limit_reached = True
                job.cancel.set()

        timer = threading.Timer(time_limit_s, limit) if time_limit_s > 0 else None
        if timer is not None:
            timer.daemon = True

        def run() -> None:
            lower_priority(nice)
            if timer is not None:
                timer.start()
            try:
                for event in work(job):
                    job.progress = describe(event)
                    job.record(event)
                job.finish("stopped" if job.cancel.is_set() else "done")
            except GandemoError as e:
                job.finish("error", str(e))
            except Exception as e:  # noqa: BLE001 - a job's crash must not take the server down
                traceback.print_exc()
                job.finish("error", f"{type(e).__name__}: {e}")
            finally:
                if timer is not None:
                    timer.cancel()

        threading.Thread(target=run, name=f"gandemo-{kind}-{job.id}", daemon=True).start()
        return job


JOBS = JobManager()
