"""One lab per visitor: a bounded registry with idle expiry, so a class of 30 on one link each gets
their own 2D GAN and the server never holds more labs than it can run.

No Gradio here: the UI keys labs by its browser session id and calls ``drop`` when a page closes.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from ..errors import GandemoError
from .config import LabConfig
from .lab import Lab

DEFAULT_MAX_LABS = 40
DEFAULT_IDLE_S = 15 * 60


class LabsFullError(GandemoError):
    """Every lab slot is taken."""


@dataclass
class LabSession:
    """A visitor's lab plus what the live view needs: whether it plays, and a lock that keeps
    the play loop and a setting change from touching the networks at the same time."""

    lab: Lab
    lock: threading.RLock = field(default_factory=threading.RLock)
    playing: bool = False
    last_used: float = field(default_factory=time.monotonic)
    narration: str = ""  # catalog key of the last phase explained in step-by-step mode

    def touch(self) -> None:
        self.last_used = time.monotonic()


class LabRegistry:
    def __init__(self, max_labs: int | None = None, idle_s: float | None = None) -> None:
        self.max_labs = max_labs or int(os.environ.get("GANDEMO_MAX_LABS", DEFAULT_MAX_LABS))
        self.idle_s = idle_s or float(os.environ.get("GANDEMO_LAB_IDLE_S", DEFAULT_IDLE_S))
        self._labs: dict[str, LabSession] = {}
        self._lock = threading.Lock()

    def get(self, key: str, config: LabConfig | None = None) -> LabSession:
        """The visitor's lab, made from ``config`` (default settings) on first use."""
        with self._lock:
            self._expire()
            session = self._labs.get(key)
            if session is None:
                if len(self._labs) >= self.max_labs:
                    raise LabsFullError(
                        f"All {self.max_labs} labs on this server are in use. Labs close when their page closes or "
                        f"after {self.idle_s / 60:.0f} idle minutes; please try again in a few minutes.")
                session = LabSession(Lab(config or LabConfig()))
                self._labs[key] = session
            session.touch()
            return session

    def peek(self, key: str) -> LabSession | None:
        with self._lock:
            return self._labs.get(key)

    def drop(self, key: str) -> None:
        with self._lock:
            session = self._labs.pop(key, None)
        if session is not None:
            session.playing = False

    def playing(self) -> int:
        """How many labs are playing now (the live view paces itself by it)."""
        with self._lock:
            return sum(1 for s in self._labs.values() if s.playing)

    def __len__(self) -> int:
        with self._lock:
            return len(self._labs)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._labs.items() if now - s.last_used > self.idle_s]:
            self._labs.pop(key).playing = False
