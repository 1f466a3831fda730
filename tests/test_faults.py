"""Faults (issue 8 §4): time-bounded checkpoint loss with exact resume, a damaged run folder named in one
sentence, read-only and full disks refused early or survived with the last checkpoint intact, a run in
one folder (previews included), and settings of 0 that used to divide by zero."""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image
from test_train import coloured_shapes, run, state_of, step_events, tiny_config, write_pngs

from gandemo import load_generator
from gandemo.errors import GandemoError, InvalidInputError, UnsupportedCheckpointError
from gandemo.gan import checkpoint as checkpoint_module
from gandemo.gan import runs as runs_module
from gandemo.gan.models import DCGANGenerator
from gandemo.gan.runs import CheckpointWriteError, RunFolder, RunFolderError
from gandemo.gan.train import TrainConfig, Trainer
from gandemo.training import prepare_trainer, zip_run

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def rgb() -> torch.Tensor:
    return coloured_shapes(12, channels=3)


class FakeClock:
    """Seconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def weights_of(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {f"{name}.{k}": v for name, module in (("G", trainer.G), ("D", trainer.D), ("G_ema", trainer.G_ema))
            for k, v in module.state_dict().items()}


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_sentence(message: str) -> None:
    assert "\n" not in message and message.endswith(".") and message.count(". ") == 0, message
    assert "weights_only" not in message and "Traceback" not in message and "unexpected" not in message, message


# ------------------------------------------------------------------------------------- 1. time-bounded loss
def test_a_time_triggered_checkpoint_then_a_kill_resumes_equal_to_an_uninterrupted_run(rgb: torch.Tensor,
                                                                                       tmp_path: Path) -> None:
    whole = Trainer(rgb, tiny_config(steps=12, checkpoint_minutes=0), tmp_path / "whole", device="cpu")
    run(whole)

    clock = FakeClock()
    killed = Trainer(rgb, tiny_config(steps=12, checkpoint_minutes=5), tmp_path / "killed", device="cpu", clock=clock)
    checkpoints = []
    for event in killed.train():
        if event.kind in ("step", "preview") and event.step == 3:
            clock.now += 4 * 60  # not yet five minutes
        if event.kind in ("step", "preview") and event.step == 4:
            clock.now += 61  # five minutes since the start: a checkpoint after this step
        if event.kind == "checkpoint":
            checkpoints.append(event.step)
        if event.step == 7:
            break  # killed: no save on the way out
    assert checkpoints == [4], "one checkpoint, when five minutes had passed (checkpoint_every is 1000)"
    assert state_of(tmp_path / "killed")["step"] == 4

    resumed = Trainer.resume(tmp_path / "killed", rgb, device="cpu")
    events = run(resumed)
    assert [e.step for e in step_events(events)] == list(range(5, 13))
    expected, got = weights_of(whole), weights_of(resumed)
    for name, tensor in expected.items():
        assert torch.equal(tensor, got[name]), f"{name} differs from the uninterrupted run"


def test_the_time_trigger_counts_from_the_last_save_and_zero_turns_it_off(rgb: torch.Tensor, tmp_path: Path) -> None:
    clock = FakeClock()
    trainer = Trainer(rgb, tiny_config(steps=9, checkpoint_minutes=1, checkpoint_every=3), tmp_path / "run",
                      device="cpu", clock=clock)
    saved = []
    for event in trainer.train():
        if event.kind == "checkpoint":
            saved.append(event.step)
        elif event.step in (2, 5):
            clock.now += 45  # 45 s after step 2, 90 s after step 5 (but step 3 saved in between: 45 s since)
        elif event.step == 7:
            clock.now += 60
    assert saved == [3, 6, 7], saved

    clock = FakeClock()
    off = Trainer(rgb, tiny_config(steps=4, checkpoint_minutes=0), tmp_path / "off", device="cpu", clock=clock)
    kinds = []
    for event in off.train():
        clock.now += 3600
        kinds.append(event.kind)
    assert "checkpoint" not in kinds and kinds[-1] == "done"


@pytest.mark.parametrize("minutes", [-1, float("nan"), float("inf"), "5", True])
def test_checkpoint_minutes_are_validated(minutes: object) -> None:
    with pytest.raises(InvalidInputError, match="checkpoint minutes must be between 0"):
        tiny_config(checkpoint_minutes=minutes).validate()


# ------------------------------------------------------------------------------------- 2. a damaged run folder
@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 3-step run and the folder of images it was trained on (copy the run before damaging it)."""
    root = tmp_path_factory.mktemp("saved-run")
    images = root / "images"
    write_pngs(images, 12)
    torch.set_num_threads(1)
    trainer, _ = prepare_trainer([images], tiny_config(steps=3), out_dir=root / "run", device="cpu")
    run(trainer)
    return root / "run", images


def damaged_copy(saved_run: tuple[Path, Path], tmp_path: Path, damage: str) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(saved_run[0], folder)
    if damage == "model deleted":
        (folder / "model.safetensors").unlink()
    elif damage == "model garbage":
        (folder / "model.safetensors").write_bytes(b"\x00garbage" * 50)
    elif damage == "optimizers garbage":
        (folder / "training" / "optimizers.pt").write_bytes(b"garbage" * 50)
    elif damage == "state truncated":
        text = (folder / "training" / "state.json").read_text()
        (folder / "training" / "state.json").write_text(text[: len(text) // 2])
    elif damage == "live deleted":
        (folder / "training" / "generator_live.safetensors").unlink()
    return folder


# damage -> (file named, what is wrong, what still works, whether Generate still loads the run)
DAMAGES = {
    "model deleted": ("model.safetensors", "is missing", "training/generator_live.safetensors", False),
    "model garbage": ("model.safetensors", "is not a valid safetensors file", "training/generator_live.safetensors",
                      False),
    "optimizers garbage": ("training/optimizers.pt", "is not a readable file of tensors", "still opens in Generate",
                           True),
    "state truncated": ("training/state.json", "is not valid JSON", "still opens in Generate", True),
    "live deleted": ("training/generator_live.safetensors", "is missing", "still opens in Generate", True),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_resuming_a_damaged_run_names_the_file_and_what_still_works(damage: str, saved_run: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    folder = damaged_copy(saved_run, tmp_path, damage)
    name, problem, still, _ = DAMAGES[damage]
    with pytest.raises(GandemoError) as caught:
        prepare_trainer([saved_run[1]], tiny_config(steps=6), resume=folder, device="cpu")
    message = str(caught.value)
    one_sentence(message)
    assert f"{folder} is damaged: {name} " in message and problem in message and still in message, message
    assert "resumed" in message or "can't be resumed" in message, message


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_generate_loads_exactly_the_runs_model_file_or_says_why_not(damage: str, saved_run: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    folder = damaged_copy(saved_run, tmp_path, damage)
    name, problem, still, loads = DAMAGES[damage]
    if loads:
        gen = load_generator(str(folder), device="cpu")
        assert gen.layout == "gandemo"
        assert torch.equal(gen.module.state_dict()["net.0.weight"],
                           load_generator(str(saved_run[0]), device="cpu").module.state_dict()["net.0.weight"])
        return
    with pytest.raises(UnsupportedCheckpointError) as caught:  # never the live generator in its place
        load_generator(str(folder), device="cpu")
    message = str(caught.value)
    one_sentence(message)
    assert f"{name} (the generator) {problem}" in message and still in message, message


def test_a_native_folder_without_model_safetensors_uses_no_other_file(saved_run: tuple[Path, Path],
                                                                      tmp_path: Path) -> None:
    """Not a run, just config.json + another weights file: the config names model.safetensors, so no load."""
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copyfile(saved_run[0] / "config.json", folder / "config.json")
    shutil.copyfile(saved_run[0] / "training" / "generator_live.safetensors", folder / "generator.safetensors")
    with pytest.raises(UnsupportedCheckpointError, match="model.safetensors, is missing; no other file"):
        load_generator(str(folder), device="cpu")


def test_resume_reads_optimizers_as_tensors_only(saved_run: tuple[Path, Path], tmp_path: Path) -> None:
    """A pickle that would run code is refused as damaged, and nothing in it runs."""
    folder = damaged_copy(saved_run, tmp_path, "none")
    marker = tmp_path / "ran"
    payload = {"opt_g": {}, "opt_d": {}, "rng": torch.zeros(1), "order": torch.zeros(1), "x": _RunsCode(str(marker))}
    torch.save(payload, folder / "training" / "optimizers.pt")
    with pytest.raises(RunFolderError, match="training/optimizers.pt .* is not a readable file of tensors"):
        Trainer.resume(folder, coloured_shapes(12), device="cpu")
    assert not marker.exists()


class _RunsCode:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (Path(self.path), "ran"))


# ------------------------------------------------------------------------------------- 3. read-only, full disk
def test_a_read_only_output_folder_is_refused_before_any_training(rgb: torch.Tensor, tmp_path: Path) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        if os.access(parent, os.W_OK):
            pytest.skip("running as root: chmod does not stop root's writes "
                        "(test_a_folder_that_refuses_writes_is_refused_before_any_training injects the error instead)")
        with pytest.raises(CheckpointWriteError, match="Can't write checkpoints to .*locked/run .*; choose another"):
            next(Trainer(rgb, tiny_config(), parent / "run", device="cpu").train())
    finally:
        parent.chmod(0o755)


def test_a_folder_that_refuses_writes_is_refused_before_any_training(rgb: torch.Tensor, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    images = tmp_path / "images"
    write_pngs(images, 12)

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(runs_module.tempfile, "mkstemp", read_only)
    with pytest.raises(CheckpointWriteError) as caught:
        prepare_trainer([images], tiny_config(), out_dir=tmp_path / "out" / "run", device="cpu")
    assert str(caught.value) == (f"Can't write checkpoints to {tmp_path / 'out' / 'run'} (the file system is read-only); "
                                 "choose another output folder.")
    trainer = Trainer(rgb, tiny_config(), tmp_path / "run", device="cpu")
    steps = []
    monkeypatch.setattr(trainer, "train_step", lambda: steps.append(1))
    with pytest.raises(CheckpointWriteError, match="the file system is read-only"):
        list(trainer.train())
    assert steps == [] and not (tmp_path / "run").exists() and not (tmp_path / "out").exists()


def test_too_little_free_space_is_said_before_training(rgb: torch.Tensor, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs_module.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    with pytest.raises(CheckpointWriteError, match=r"its disk has 1 MB free and a checkpoint needs about \d+ MB"):
        next(Trainer(rgb, tiny_config(), tmp_path / "run", device="cpu").train())


def _fail_nth(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, n: int) -> None:
    """Make the n-th call of owner.name (from now on) raise 'No space left on device'."""
    real = getattr(owner, name)
    calls = []

    def failing(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)


# where the disk fills up during a save: (object, attribute, which call fails)
FULL_AT = {
    "discriminator": (runs_module, "save_file", 1),
    "optimizers": (runs_module.torch, "save", 1),
    "generator": (DCGANGenerator, "save_pretrained", 1),
    "samples": (Image.Image, "save", 1),
    "carrying previews": (checkpoint_module.os, "replace", 1),
    "moving the old one aside": (checkpoint_module.os, "replace", 2),
    "moving the new one in": (checkpoint_module.os, "replace", 3),
}


@pytest.mark.parametrize("where", list(FULL_AT))
def test_a_full_disk_during_a_save_keeps_the_last_checkpoint_and_says_so(where: str, rgb: torch.Tensor,
                                                                         tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    folder = runs / "run"
    trainer = Trainer(rgb, tiny_config(steps=3), folder, device="cpu")
    run(trainer)
    RunFolder(folder).preview_path(3).parent.mkdir()
    RunFolder(folder).preview_path(3).write_bytes(b"a preview")
    good = files_of(folder)

    _fail_nth(monkeypatch, *FULL_AT[where])
    trainer.config.steps = 5
    with pytest.raises(CheckpointWriteError) as caught:
        run(trainer)
    monkeypatch.undo()
    assert str(caught.value) == f"Could not save step 5 to {folder} (the disk is full); the checkpoint of step 3 there is intact."
    assert files_of(folder) == good, "the last checkpoint (and its previews) changed"
    assert sorted(p.name for p in runs.iterdir()) == ["run"], "temporary or backup folders were left behind"
    load_generator(str(folder), device="cpu")
    assert Trainer.resume(folder, rgb, device="cpu").step == 3


def test_a_failed_first_save_says_nothing_was_saved(rgb: torch.Tensor, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_nth(monkeypatch, runs_module, "save_file", 1)
    with pytest.raises(CheckpointWriteError, match=r"Could not save step 2 to .* \(the disk is full\); nothing had "
                                                   r"been saved there yet\.$"):
        run(Trainer(rgb, tiny_config(steps=2), tmp_path / "run", device="cpu"))
    assert list(tmp_path.iterdir()) == []


def test_stop_with_a_full_disk_says_which_checkpoint_is_intact(rgb: torch.Tensor, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer(rgb, tiny_config(steps=20, checkpoint_every=4), tmp_path / "run", device="cpu")
    cancel = threading.Event()
    with pytest.raises(CheckpointWriteError, match="Could not save step 6 .*the checkpoint of step 4 there is intact"):
        for event in trainer.train(cancel):
            if event.step == 6:
                _fail_nth(monkeypatch, runs_module, "save_file", 1)
                cancel.set()
    assert state_of(tmp_path / "run")["step"] == 4


# ------------------------------------------------------------------------------------- 4. one folder per run
def test_saves_keep_the_previews_in_the_run_folder_and_zip_leaves_them_out(rgb: torch.Tensor, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    trainer = Trainer(rgb, tiny_config(steps=4, checkpoint_every=2), folder, device="cpu")
    for event in trainer.train():
        if event.step == 1:  # a preview before the first save, written as the CLI writes them
            event.preview = Image.new("RGB", (4, 4))
        if event.preview is not None:
            path = RunFolder(folder).preview_path(event.step)
            path.parent.mkdir(parents=True, exist_ok=True)
            event.preview.save(path)
    first = (folder / "previews" / "step0000001.png").read_bytes()
    assert sorted(p.name for p in (folder / "previews").iterdir()) == ["step0000001.png", "step0000004.png"]
    assert Image.open(folder / "previews" / "step0000001.png").size == (4, 4) and first, "a save lost the previews"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with zipfile.ZipFile(zip_run(folder, tmp_path / "run.zip")) as zf:
        names = set(zf.namelist())
    assert {"run/model.safetensors", "run/config.json", "run/training/state.json"} <= names
    assert not any("previews" in n for n in names), names


# ------------------------------------------------------------------------------------- 5. zero means off
def test_preview_and_checkpoint_every_zero_mean_only_at_the_end(rgb: torch.Tensor, tmp_path: Path) -> None:
    clock = FakeClock()
    trainer = Trainer(rgb, tiny_config(steps=5, preview_every=0, checkpoint_every=0), tmp_path / "run",
                      device="cpu", clock=clock)
    events = run(trainer)
    assert [e.step for e in events if e.preview is not None] == [5]
    assert [e.kind for e in events if e.checkpoint is not None] == ["done"]
    assert json.loads((tmp_path / "run" / "training" / "state.json").read_text())["step"] == 5


@pytest.mark.parametrize(("name", "value"), [("preview_every", -1), ("checkpoint_every", -5),
                                             ("preview_every", 2.5), ("checkpoint_every", True)])
def test_preview_and_checkpoint_every_must_be_whole_numbers_from_zero(name: str, value: object) -> None:
    words = name.replace("_", " ")
    with pytest.raises(InvalidInputError, match=f"{words} must be a whole number of steps from 0 \\(off\\)"):
        TrainConfig(**{name: value}).validate()
