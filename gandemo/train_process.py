"""A training job in its own process, so that a web server and a trainer sharing a small CPU don't share
one Python interpreter.

In one process the trainer's Python code (a small model's step is mostly Python between short torch calls)
waits for the same GIL as every web request, and a class of students clicking Generate took 90% of the
training speed (benchmarks/classroom_load.py). A child process has its own interpreter and its own
scheduling priority. The parent prepares the Trainer as always (images read and checked, run folder
made, errors said at once); the child builds the same Trainer from the prepared images and settings,
trains, and sends every event back. The parent's ``TrainingProcess`` looks like a Trainer to the rest of
the app: ``train(cancel)`` yields the child's events, ``set_learning_rates`` / ``lower_learning_rates``
are asked of the child's trainer and answered.

Used on the CPU (where the GIL and the cores are the limit); CUDA jobs stay in a thread of the server.
``GANDEMO_TRAIN_PROCESS=0`` keeps every job in a thread, ``=1`` uses a process on any device.

Children come from a fork server (``multiprocessing``'s "forkserver"), not each from a fresh interpreter.
A spawned child imported torch and, at its first optimiser, torch._dynamo, and ran the app's main module
again (which then imported Gradio): about 10 s before its first step on a 2-core CPU
(benchmarks/train_start.py). The fork server imports torch, torch._dynamo and the trainer once, and each
job is a fork of it that starts in a fraction of a second. A child still runs the main module again (Python
3.11's fork server is not given its path to preload), so app.py imports the UI inside ``main()``. The fork
server is a single-threaded process of its own: unlike a fork of the threaded web server, it holds no
locks. Where the platform has no fork server (Windows), children are spawned.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import GandemoError, InvalidInputError
from .gan.train import TrainConfig, Trainer, TrainEvent

__all__ = ["TrainingProcess", "use_process", "warm_up"]
STOP_TIMEOUT_S = 60.0  # a child asked to stop (it saves a checkpoint first) is killed after this time
POLL_S = 0.2  # how often the parent looks at the stop flag and the child's health while no event arrives
ANSWER_TIMEOUT_S = 30.0  # a learning-rate request the child doesn't answer in this time is reported
_REQUESTS = ("set_learning_rates", "lower_learning_rates")  # what the parent may ask of the child's trainer
# what the fork server imports once for every child: torch, and what building a Trainer imports ("__main__",
# multiprocessing's default, preloads nothing on Python 3.11: see the module's docstring)
FORKSERVER_PRELOAD = ["__main__", "torch", "torch._dynamo", "gandemo.gan.train", "gandemo.train_process"]
_warm_lock = threading.Lock()
_dynamo_warming = False  # warm_up() has started importing torch._dynamo in this process


def process_context() -> multiprocessing.context.BaseContext:
    """Where training children come from: the fork server (see the module's docstring), or spawn without one."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(FORKSERVER_PRELOAD)  # read when the server starts, at the first job
    return context


def warm_up() -> None:
    """Get the first job ready to start as fast as the later ones, while the visitor still chooses settings
    (the Train tab calls this on an upload): start the fork server, which imports what a child needs in a
    process of its own, and import torch._dynamo here in a background thread (building the job's trainer in
    this process imports it at the first optimiser, 2-4 s). Returns at once; cheap to call again."""
    global _dynamo_warming
    if process_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
    with _warm_lock:
        if _dynamo_warming or "torch._dynamo" in sys.modules:
            return
        _dynamo_warming = True
    threading.Thread(target=importlib.import_module, args=("torch._dynamo",), name="gandemo-warm-up", daemon=True).start()


def use_process(device: torch.device) -> bool:
    """Whether a training job on ``device`` runs in its own process (see the module's docstring)."""
    wanted = os.environ.get("GANDEMO_TRAIN_PROCESS", "auto").strip().lower()
    if wanted in ("0", "false", "no", "thread"):
        return False
    if wanted in ("1", "true", "yes", "process"):
        return True
    return device.type == "cpu"


@dataclass
class _Recipe:
    """What the child needs to build the trainer the parent prepared."""

    data: torch.Tensor  # uint8 (N, C, H, W), as the parent's trainer holds it
    config: TrainConfig
    out_dir: str
    resumed: bool
    data_summary: str
    nice: int
    threads: int


class TrainingProcess:
    """A prepared Trainer, run in a child process; stands in for it in the parent (see the module's docstring)."""

    def __init__(self, trainer: Trainer, *, resumed: bool, nice: int = 0) -> None:
        self.config, self.out_dir, self.device = trainer.config, trainer.out_dir, trainer.device
        self.data = trainer.data  # the images it learns from (the Train tab shows some beside the samples)
        context = process_context()  # never a fork of the threaded web server: it could inherit held locks
        self._events = context.Queue()
        self._stop = context.Event()
        self._requests, child_end = context.Pipe()
        # the child's lifeline: this process holds the writing end and never writes, so the child reads end of
        # file exactly when this process is gone (its parent process may be the fork server, which outlives it)
        child_lifeline, self._lifeline = context.Pipe(duplex=False)
        # and the parent's: the child holds the writing end and never writes, so this end reads end of file exactly
        # when the child is gone. Its exit status comes through the fork server, which may be gone before it
        # (killed: the job isn't its child and goes on), and then reads as an exit with code 255.
        self._pulse, self._child_pulse = context.Pipe(duplex=False)
        self._requests_lock = threading.Lock()
        recipe = _Recipe(trainer.data.cpu(), trainer.config, str(trainer.out_dir), resumed,
                         getattr(trainer, "data_summary", "") or "", max(0, nice), torch.get_num_threads())
        self.process = context.Process(target=_child, args=(recipe, self._events, self._stop, child_end, child_lifeline,
                                                                self._child_pulse),
                                       name=f"gandemo-training-{Path(trainer.out_dir).name[:12]}", daemon=True)

    def train(self, cancel: threading.Event | None = None) -> Iterator[TrainEvent]:
        """Start the child and yield its events until it ends; ``cancel`` stops it like a Trainer's."""
        self.process.start()
        self._child_pulse.close()  # the child has its own copy now; ours would keep the pulse from ending
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    self._stop.set()
                try:
                    kind, payload = self._events.get(timeout=POLL_S)
                except queue.Empty:
                    if self._child_running():
                        continue
                    try:  # the child may have sent its last words just before it ended
                        kind, payload = self._events.get(timeout=1.0)
                    except queue.Empty:
                        raise GandemoError(
                            f"The training process ended unexpectedly (exit code {self.process.exitcode}). The run "
                            "folder keeps its last checkpoint: resume it to continue.") from None
                if kind == "event":
                    yield payload
                elif kind == "error":
                    raise GandemoError(payload)
                elif kind == "crash":
                    raise RuntimeError(payload)
                else:  # "end"
                    return
        finally:
            self._stop.set()  # a follower that went away (server stopping) stops the child too
            if not self._pulse.poll(STOP_TIMEOUT_S):  # the child saves a checkpoint and ends, or is killed
                self._kill()
            self.process.join(timeout=5)  # its exit status, from the fork server if that is still there
            self._lifeline.close()
            self._pulse.close()

    def _child_running(self) -> bool:
        """Whether the child has started and not ended (see the pulse in ``__init__``)."""
        if self.process.pid is None:
            return False
        try:
            return not self._pulse.poll(0)
        except (OSError, ValueError):  # closed: train() has ended, and with it the child
            return False

    def _kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        elif self._child_running() and self.process.pid is not None:  # its fork server is gone (see __init__)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)

    def set_learning_rates(self, lr_g: float | None = None, lr_d: float | None = None,
                           reason: str = "manual") -> tuple[float, float]:
        """As ``Trainer.set_learning_rates``, asked of the child's trainer."""
        return self._ask("set_learning_rates", lr_g, lr_d, reason)

    def lower_learning_rates(self, factor: float = 0.1, reason: str = "manual") -> tuple[float, float]:
        """As ``Trainer.lower_learning_rates``, asked of the child's trainer."""
        return self._ask("lower_learning_rates", factor, reason)

    def _ask(self, name: str, *args: Any) -> Any:
        with self._requests_lock:
            if not self._child_running():
                raise InvalidInputError("The training job has ended: there is nothing to change.")
            self._requests.send((name, args))
            if not self._requests.poll(ANSWER_TIMEOUT_S):
                raise GandemoError(f"The training process did not answer within {ANSWER_TIMEOUT_S:.0f} s.")
            ok, value = self._requests.recv()
        if not ok:
            raise InvalidInputError(value)
        return tuple(value)


# ------------------------------------------------------------------------------------------ the child
def _child(recipe: _Recipe, events: Any, stop: Any, requests: Any, lifeline: Any, pulse: Any) -> None:
    """The child process: build the trainer, answer requests, train, send every event, say how it ended.
    ``pulse`` is only held, never used: it closes when this process ends (see TrainingProcess.__init__)."""
    if recipe.nice and hasattr(os, "nice"):
        os.nice(recipe.nice)
    torch.set_num_threads(recipe.threads)
    orphaned = threading.Event()
    threading.Thread(target=_watch_server, args=(lifeline, stop, orphaned), daemon=True).start()
    try:
        trainer = _build(recipe)
        threading.Thread(target=_answer, args=(trainer, requests), daemon=True).start()
        for event in trainer.train(stop):
            events.put(("event", event))
        events.put(("end", None))
    except GandemoError as e:
        events.put(("error", str(e)))
    except BaseException as e:  # noqa: BLE001 - the parent says what happened; the server stays up
        traceback.print_exc()
        events.put(("crash", f"{type(e).__name__}: {e}"))
    finally:
        events.close()
        _drain(events, orphaned)


def _drain(events: Any, orphaned: threading.Event) -> None:
    """Wait until every queued event has reached the parent, unless the parent is gone: nobody will read
    them then, and as this process holds the queue's read end too, its writes would block, not fail, and
    keep it (and its memory) forever."""
    drained = threading.Event()

    def join() -> None:
        events.join_thread()
        drained.set()

    threading.Thread(target=join, daemon=True).start()
    while not drained.wait(0.5):
        if orphaned.is_set():
            events.cancel_join_thread()
            return


def _build(recipe: _Recipe) -> Trainer:
    """The parent's trainer again: a resumed run from its folder, a new one from its settings."""
    config = recipe.config
    if recipe.resumed:
        trainer = Trainer.resume(recipe.out_dir, recipe.data, out_dir=recipe.out_dir, steps=config.steps)
        # what the parent changed on top of the saved settings (planned drops asked for now, checkpoints)
        trainer.config.lr_drops, trainer.config.auto_lr_drop = config.lr_drops, config.auto_lr_drop
        trainer.config.checkpoint_every = config.checkpoint_every
        return trainer
    return Trainer(recipe.data, config, recipe.out_dir, data_summary=recipe.data_summary)


def _answer(trainer: Trainer, requests: Any) -> None:
    """Answer the parent's learning-rate requests with what the trainer says (or why it refuses)."""
    while True:
        try:
            name, args = requests.recv()
        except (EOFError, OSError):
            return
        try:
            if name not in _REQUESTS:
                raise InvalidInputError(f"Unknown request {name!r}.")
            requests.send((True, getattr(trainer, name)(*args)))
        except GandemoError as e:
            requests.send((False, str(e)))


def _watch_server(lifeline: Any, stop: Any, orphaned: threading.Event) -> None:
    """Stop (with a checkpoint, like the Stop button) when the server that started this process is gone: its
    end of the lifeline is closed then, and reading ours ends."""
    try:
        while True:
            lifeline.recv()
    except (EOFError, OSError):
        orphaned.set()
        stop.set()
