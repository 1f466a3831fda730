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

from .errors import GandemoError, InvalidInputError
from .gan import distributed
from .gan.runs import RunFolder, why
from .gan.settings import check_epochs
from .gan.train import TrainConfig, Trainer
from .intake import IntakeOptions, load_images


def runs_dir() -> Path:
    """Where training runs are written ($GANDEMO_RUNS_DIR, default ./runs)."""
    root = Path(os.environ.get("GANDEMO_RUNS_DIR") or "runs")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GandemoError(f"Can't create the runs folder {root} ({why(e)}); set GANDEMO_RUNS_DIR "
                           "(or --out) to a folder you can write.") from e
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
    runs = [p for p in root.iterdir() if not p.name.startswith(".") and RunFolder(p).is_resumable()]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


def steps_for_epochs(epochs: float, images: int, batch_size: int) -> int:
    """Steps for ``epochs`` passes over ``images`` images: one batch per step, and the Trainer walks the
    whole set in a fresh order every epoch (a last partial batch carries over into the next epoch)."""
    return max(1, math.ceil(check_epochs(epochs) * images / batch_size))


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
        run = RunFolder(resume)
        if not run.is_resumable():
            raise InvalidInputError(f"{resume} is not a resumable training run (it has no {run.STATE}).")
        run.check_resumable()  # a missing file is named before the images are read
        saved = Trainer.resume_config(resume)
        saved_steps = saved.steps
        # a resumed run keeps its settings; a longer length, and learning-rate drops asked for now, are added
        drops = tuple(sorted({*saved.lr_drops, *config.lr_drops}))
        config = TrainConfig(**{**saved.__dict__, "steps": max(config.steps, saved.steps), "lr_drops": drops,
                                "auto_lr_drop": saved.auto_lr_drop or config.auto_lr_drop})
    ranks = distributed.current()  # under torchrun: rank 0 names the run folder and is the one that writes it
    if ranks.is_main:
        out_dir = Path(out_dir) if out_dir else (Path(resume) if resume is not None else new_run_dir())
        RunFolder(out_dir).check_writable()  # a read-only output folder is said before the images are read
    out_dir = Path(ranks.main_json(str(out_dir) if ranks.is_main else None))
    options = replace(intake or IntakeOptions(), size=config.image_size)
    if resume is not None:  # the saved networks fix the channel count
        options = replace(options, channels=config.channels, alpha="keep" if config.channels == 4 else options.alpha)
    dataset = load_images(sources, options)
    config.channels = dataset.channels
    if epochs is not None:
        # a step takes --batch-size images on each of torchrun's ranks
        config.steps = max(saved_steps, steps_for_epochs(epochs, dataset.images.shape[0],
                                                         config.batch_size * ranks.world_size))
        config.validate()
    summary = dataset.summary()
    if resume is not None:
        trainer = Trainer.resume(resume, dataset.images, out_dir=out_dir, steps=config.steps, device=device)
        trainer.config.lr_drops, trainer.config.auto_lr_drop = config.lr_drops, config.auto_lr_drop
    else:
        trainer = Trainer(dataset.images, config, out_dir, device=device, data_summary=summary)
    if epochs is not None:
        batch = f"{config.batch_size}" + (f" x {ranks.world_size} processes" if ranks.active else "")
        summary += (f" {epochs:g} epochs of {dataset.images.shape[0]} images at batch {batch}: "
                    f"{config.steps} steps in total.")
    return trainer, summary


def zip_run(folder: str | Path, dest: str | Path | None = None) -> Path:
    """The run's checkpoint as one .zip: the generator, its card and the resumable training state.

    The previews the CLI writes into the run folder (previews/) stay out: they are a record of the
    training, not part of the checkpoint, and a long run has hundreds of them."""
    folder = Path(folder)
    dest = Path(dest) if dest else folder.with_suffix(".zip")
    tmp = dest.with_name(f".{dest.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.is_file() and relative.parts[0] != RunFolder.PREVIEWS:
                zf.write(path, Path(folder.name) / relative)
    os.replace(tmp, dest)
    return dest


def remove_run(folder: str | Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
