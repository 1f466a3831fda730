"""The one core entry point for "train a GAN on these images", shared by the CLI and the UI:
intake -> settings -> Trainer (new or resumed), plus packaging a finished run."""

from __future__ import annotations

import math
import os
import secrets
import shutil
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import torch

from .errors import InvalidInputError
from .gan.train import TRAINING_DIR, TrainConfig, Trainer
from .intake import IntakeOptions, load_images


def runs_dir() -> Path:
    """Where training runs are written ($GANDEMO_RUNS_DIR, default ./runs)."""
    root = Path(os.environ.get("GANDEMO_RUNS_DIR") or "runs")
    root.mkdir(parents=True, exist_ok=True)
    return root


def new_run_dir(name: str | None = None) -> Path:
    """A fresh run folder; its name ends in 128 random bits because, on a shared server, knowing a
    run's name is what lets a browser sample it (see gandemo.access)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in (name or "")).strip("-")[:40]
    return runs_dir() / f"{safe or 'run'}-{stamp}-{secrets.token_hex(16)}"


def list_runs() -> list[Path]:
    """Resumable runs, newest first."""
    root = runs_dir()
    runs = [p for p in root.iterdir() if not p.name.startswith(".") and (p / TRAINING_DIR / "state.json").is_file()]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


def steps_for_epochs(epochs: float, images: int, batch_size: int) -> int:
    """Steps for ``epochs`` passes over ``images`` images: one batch per step, and the Trainer walks the
    whole set in a fresh order every epoch (a last partial batch carries over into the next epoch)."""
    if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or not math.isfinite(epochs) or epochs <= 0:
        raise InvalidInputError(f"Epochs must be a positive number (got {epochs!r}).")
    return max(1, math.ceil(epochs * images / batch_size))


def prepare_trainer(
    sources: list,
    config: TrainConfig,
    out_dir: str | Path | None = None,
    intake: IntakeOptions | None = None,
    resume: str | Path | None = None,
    device: str | torch.device | None = None,
    epochs: float | None = None,
) -> tuple[Trainer, str]:
    """Load and check the images, then build a Trainer (continuing ``resume`` when given).

    ``epochs``, when given, sets the length instead of ``config.steps``: that many passes over the
    usable images (for a resumed run, in total, like ``steps``).
    Returns the trainer and the intake summary ("used 187 of 200 files; skipped: ..."), followed, with
    ``epochs``, by what they come to ("50 epochs of 187 images at batch 32: 293 steps in total.").
    """
    if epochs is not None:
        steps_for_epochs(epochs, 1, 1)  # a bad value fails before the images are read
    saved_steps = 0
    if resume is not None:
        resume = Path(resume)
        if not (resume / TRAINING_DIR / "state.json").is_file():
            raise InvalidInputError(f"{resume} is not a resumable training run (it has no {TRAINING_DIR}/state.json).")
        saved = Trainer.resume_config(resume)
        saved_steps = saved.steps
        config = TrainConfig(**{**saved.__dict__, "steps": max(config.steps, saved.steps)})
    options = replace(intake or IntakeOptions(), size=config.image_size)
    if resume is not None:  # the saved networks fix the channel count
        options = replace(options, channels=config.channels, alpha="keep" if config.channels == 4 else options.alpha)
    dataset = load_images(sources, options)
    config.channels = dataset.channels
    if epochs is not None:
        config.steps = max(saved_steps, steps_for_epochs(epochs, dataset.images.shape[0], config.batch_size))
        config.validate()
    summary = dataset.summary()
    if resume is not None:
        trainer = Trainer.resume(resume, dataset.images, out_dir=out_dir or resume, steps=config.steps, device=device)
    else:
        trainer = Trainer(dataset.images, config, out_dir or new_run_dir(), device=device, data_summary=summary)
    if epochs is not None:
        summary += (f" {epochs:g} epochs of {dataset.images.shape[0]} images at batch {config.batch_size}: "
                    f"{config.steps} steps in total.")
    return trainer, summary


def zip_run(folder: str | Path, dest: str | Path | None = None) -> Path:
    """The run folder as one .zip (the generator, its card and the resumable training state)."""
    folder = Path(folder)
    dest = Path(dest) if dest else folder.with_suffix(".zip")
    tmp = dest.with_name(f".{dest.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, Path(folder.name) / path.relative_to(folder))
    os.replace(tmp, dest)
    return dest


def remove_run(folder: str | Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
