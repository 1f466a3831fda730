"""One training run on disk, described in one place: which files it holds, how each is read and
written, and what a missing or damaged file means for what can still be done.

    <run>/config.json, model.safetensors      the EMA generator, in the native format: what Generate
    <run>/README.md, samples.png              loads, what is zipped and pushed to the Hub; its card
    <run>/training/state.json                 step, settings, loss history
    <run>/training/optimizers.pt              Adam states and the random streams (tensors only)
    <run>/training/generator_live.safetensors the live generator and the discriminator, for resuming
    <run>/training/discriminator.safetensors
    <run>/previews/step0000100.png            sample grids the CLI writes while training; kept across
                                              saves, not part of a checkpoint (not zipped, not pushed)

A save writes a whole new folder next to the old one and swaps it in (``save_generator``), so a
crash, a full disk or a read-only folder never leaves a half-written checkpoint: the previous one
stays as it was, and the error says so in one sentence.
"""

from __future__ import annotations

import errno
import json
import math
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import GandemoError, UnsupportedCheckpointError

TRAINING_DIR = "training"


class RunFolderError(UnsupportedCheckpointError):
    """A run folder is missing a file or holds a damaged one; the message says which and what still works."""


class CheckpointWriteError(GandemoError):
    """A checkpoint could not be written; the message says why and which checkpoint is still intact."""


class RunFolder:
    """A training run's folder: the names of its files, and how to read, write and check them."""

    CONFIG = "config.json"
    MODEL = "model.safetensors"
    CARD = "README.md"
    SAMPLES = "samples.png"
    STATE = f"{TRAINING_DIR}/state.json"
    OPTIMIZERS = f"{TRAINING_DIR}/optimizers.pt"
    LIVE = f"{TRAINING_DIR}/generator_live.safetensors"
    DISCRIMINATOR = f"{TRAINING_DIR}/discriminator.safetensors"
    PREVIEWS = "previews"

    # what each file holds, in words for messages
    WHAT = {
        CONFIG: "the generator's settings",
        MODEL: "the generator",
        STATE: "the step, settings and loss history",
        OPTIMIZERS: "the optimisers' and random state",
        LIVE: "the live generator",
        DISCRIMINATOR: "the discriminator",
    }
    GENERATE = (CONFIG, MODEL)  # what Generate needs
    RESUME = (STATE, OPTIMIZERS, LIVE, DISCRIMINATOR, MODEL)  # what resuming needs
    OPTIMIZER_KEYS = ("opt_g", "opt_d", "rng", "order")

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    def is_resumable(self) -> bool:
        """Whether this looks like a run to resume (its training state is there; it may still be damaged)."""
        return self.file(self.STATE).is_file()

    def preview_path(self, step: int) -> Path:
        return self.path / self.PREVIEWS / f"step{step:07d}.png"

    # ----------------------------------------------------------------- reading
    def read_state(self) -> dict[str, Any]:
        """training/state.json, checked: a dict with an integer step and a settings dict."""
        if not self.file(self.STATE).is_file():
            raise UnsupportedCheckpointError(
                f"{self.path} is not a resumable gandemo training checkpoint (no {self.STATE}).")
        try:
            state = json.loads(self.file(self.STATE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise self.damaged(self.STATE, _problem(e, "is not valid JSON (cut short or overwritten)")) from e
        if not (isinstance(state, dict) and isinstance(state.get("step"), int) and state["step"] >= 0
                and isinstance(state.get("config"), dict)):
            raise self.damaged(self.STATE, "lacks the step or the settings")
        return state

    def saved_step(self) -> int | None:
        """The step of the checkpoint in this folder, or None when there is none (or it can't be read)."""
        try:
            return int(self.read_state()["step"])
        except GandemoError:
            return None

    def read_tensors(self, name: str, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        try:
            return load_file(str(self.file(name)), device=str(device))
        except FileNotFoundError as e:
            raise self.damaged(name, "is missing") from e
        except (SafetensorError, OSError, ValueError) as e:
            raise self.damaged(name, _problem(e, "is not a valid safetensors file")) from e

    def load_weights(self, module: torch.nn.Module, name: str) -> None:
        """Load ``name`` into ``module`` strictly (names and shapes must match the saved settings)."""
        state = self.read_tensors(name)
        try:
            module.load_state_dict(state)
        except (RuntimeError, ValueError) as e:
            raise self.damaged(name, f"does not match the settings in {self.STATE}") from e

    def read_optimizers(self, device: torch.device) -> dict[str, Any]:
        """training/optimizers.pt, read as tensors only (``weights_only=True``: nothing in it is executed)."""
        path = self.file(self.OPTIMIZERS)
        try:
            opt = torch.load(path, map_location=device, weights_only=True)
        except FileNotFoundError as e:
            raise self.damaged(self.OPTIMIZERS, "is missing") from e
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as e:
            raise self.damaged(self.OPTIMIZERS, _problem(e, "is not a readable file of tensors")) from e
        if not isinstance(opt, dict) or any(k not in opt for k in self.OPTIMIZER_KEYS):
            raise self.damaged(self.OPTIMIZERS, "lacks the optimiser or random state")
        return opt

    def check_resumable(self) -> dict[str, Any]:
        """The checks that are cheap before the images are read: the state, and every file there."""
        state = self.read_state()
        for name in self.RESUME:
            if not self.file(name).is_file():
                raise self.damaged(name, "is missing")
        return state

    def _readable(self, name: str) -> bool:
        try:
            if name.endswith(".safetensors"):
                self.read_tensors(name)
            elif name == self.CONFIG:
                json.loads(self.file(name).read_text(encoding="utf-8"))
            else:
                return self.file(name).is_file()
        except (GandemoError, OSError, ValueError):
            return False
        return True

    def damaged(self, name: str, problem: str) -> RunFolderError:
        """One sentence: which file, what is wrong with it, and what can still be done with the folder."""
        what = self.WHAT.get(name, "")
        head = f"The run {self.path} is damaged: {name}{f' ({what})' if what else ''} {problem}"
        if name in self.GENERATE:
            if self._readable(self.LIVE):
                rest = (f"so the run can be neither opened in Generate nor resumed; {self.LIVE} (the generator "
                        "without its EMA) can still be loaded as a weights file")
            else:
                rest = "so the run can be neither opened in Generate nor resumed; delete it, or restore it from a copy"
        elif all(self._readable(n) for n in self.GENERATE):
            rest = (f"so the run can't be resumed, but its generator ({self.MODEL}) still opens in Generate; "
                    "to train further, start a new run or restore the folder from a copy")
        else:
            rest = "so the run can't be resumed; delete it, or restore it from a copy"
        return RunFolderError(f"{head}, {rest}.")

    # ----------------------------------------------------------------- writing
    def save(self, generator: torch.nn.Module, *, step: int, card: str, sample_grid: Any,
             live: dict[str, torch.Tensor], discriminator: dict[str, torch.Tensor], optimizers: dict[str, Any],
             state: dict[str, Any]) -> Path:
        """Write a whole checkpoint atomically (see ``save_generator``); the previews stay where they are.

        A failure to write (full disk, read-only folder, ...) leaves the previous checkpoint as it was and
        raises CheckpointWriteError saying so."""
        from .checkpoint import save_generator

        def write_training(tmp: Path) -> None:
            (tmp / TRAINING_DIR).mkdir()
            save_file(discriminator, tmp / self.DISCRIMINATOR)
            save_file(live, tmp / self.LIVE)
            torch.save(optimizers, tmp / self.OPTIMIZERS)
            (tmp / self.STATE).write_text(json.dumps(state), encoding="utf-8")

        try:
            return save_generator(generator, self.path, card=card, sample_grid=sample_grid, write=write_training,
                                  keep=(self.PREVIEWS,))
        except OSError as e:
            raise self.write_failed(step, e) from e

    def write_failed(self, step: int, error: OSError) -> CheckpointWriteError:
        before = self.saved_step()
        if before is not None:
            kept = f"the checkpoint of step {before} there is intact"
        elif self.file(self.MODEL).exists():
            kept = "the checkpoint there is unchanged"
        else:
            kept = "nothing had been saved there yet"
        return CheckpointWriteError(f"Could not save step {step} to {self.path} ({why(error)}); {kept}.")

    def check_writable(self, need_bytes: int = 0) -> None:
        """Fail now, with a sentence, if checkpoints can't be written here (before any training is done).

        Checks the nearest existing folder at or above the run's parent folder (where saves write) and
        the run folder itself, by creating and removing a file, and that the disk has ``need_bytes`` free.
        Nothing is created that stays."""
        place = self.path.parent
        while not place.exists() and place != place.parent:
            place = place.parent
        for folder in (place, self.path) if self.path.is_dir() else (place,):
            try:
                handle, probe = tempfile.mkstemp(prefix=".gandemo-write-test-", dir=folder)
                os.close(handle)
                os.unlink(probe)
            except OSError as e:
                raise CheckpointWriteError(
                    f"Can't write checkpoints to {self.path} ({why(e)}); choose another output folder.") from e
        if need_bytes > 0:
            try:
                free = shutil.disk_usage(place).free
            except OSError:
                return
            if free < need_bytes:
                raise CheckpointWriteError(
                    f"Can't write checkpoints to {self.path}: its disk has {_mb(free)} free and a checkpoint "
                    f"needs about {_mb(need_bytes)}; free some space or choose another output folder.")


def checkpoint_bytes(generator: torch.nn.Module, discriminator: torch.nn.Module) -> int:
    """About how much one checkpoint needs on disk: the EMA and live generators, the discriminator, Adam's two
    moments for each network, and a margin for the card, samples and state."""
    g = sum(p.numel() * p.element_size() for p in generator.parameters())
    d = sum(p.numel() * p.element_size() for p in discriminator.parameters())
    return 4 * g + 3 * d + 4 * 1024**2


def why(error: OSError) -> str:
    """An OSError in a few words: 'the disk is full', 'the folder is read-only', ..."""
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "no permission to write there",
        errno.EPERM: "no permission to write there",
    }
    return reasons.get(error.errno, os.strerror(error.errno).lower() if error.errno else str(error) or type(error).__name__)


def _problem(error: BaseException, default: str) -> str:
    if isinstance(error, OSError) and not isinstance(error, FileNotFoundError) and error.errno:
        return f"can't be read ({os.strerror(error.errno).lower()})"
    return default


def _mb(n: float) -> str:
    return f"{math.ceil(n / 1024**2)} MB"
