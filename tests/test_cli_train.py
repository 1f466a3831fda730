"""``python -m gandemo train``: a real subprocess on a folder of tiny PNGs, then ``--resume``."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from test_train import write_pngs

from gandemo import cli, load_generator
from gandemo.gan import runs as runs_module
from gandemo.gan.train import Trainer, TrainEvent

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = ["--size", "32", "--width", "8", "--batch-size", "8", "--preview-every", "3", "--device", "cpu"]


def gandemo_cli(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gandemo", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def shown(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


@pytest.fixture
def cli_env(hf_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    # one intra-op thread: the 2 shared cores are faster that way for tiny models
    return {**hf_env, "OMP_NUM_THREADS": "1", "GANDEMO_RUNS_DIR": str(tmp_path / "runs"), "PYTHONUNBUFFERED": "1"}


def test_train_a_folder_then_resume(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = tmp_path / "shapes"
    write_pngs(data, 12)
    (data / "notes.txt").write_text("not an image\n")
    out = tmp_path / "my-run"

    proc = gandemo_cli(["train", str(data), "--steps", "6", "--out", str(out), "--mirror", *TINY], cli_env)
    assert proc.returncode == 0, shown(proc)
    summary = proc.stdout.splitlines()[0]
    assert summary.startswith("Used 12 of 13 files") and "notes.txt" in summary, shown(proc)
    assert f"writing {out}" in proc.stdout and "Finished 6 steps." in proc.stdout + proc.stderr, shown(proc)
    state = json.loads((out / "training" / "state.json").read_text())
    assert state["step"] == 6 and state["config"]["width_g"] == 8 and state["config"]["image_size"] == 32
    assert state["config"]["mirror"] is True  # flips are opt-in (--mirror); TrainConfig's default is off
    gen = load_generator(str(out), device="cpu")
    assert (gen.image_size, gen.channels) == (32, 3)
    assert bool(torch.isfinite(gen.sample([0, 1])).all())
    previews = sorted(p.name for p in (out / "previews").iterdir())  # a run is one folder, previews included
    assert previews == ["step0000003.png", "step0000006.png"], previews
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-run", "shapes"], "something was written outside the run"
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "--out was not honoured"

    proc = gandemo_cli(["train", str(data), "--resume", str(out), "--steps", "10", *TINY], cli_env)
    assert proc.returncode == 0, shown(proc)
    assert "Finished 10 steps." in proc.stdout + proc.stderr, shown(proc)
    state = json.loads((out / "training" / "state.json").read_text())
    assert state["config"]["mirror"] is True  # a resumed run keeps its saved settings
    assert state["step"] == 10 and [h["step"] for h in state["history"]] == list(range(1, 11))
    load_generator(str(out), device="cpu")
    previews = sorted(p.name for p in (out / "previews").iterdir())  # the resumed run's saves kept the first ones
    assert previews == ["step0000003.png", "step0000006.png", "step0000009.png", "step0000010.png"], previews


def test_train_for_epochs(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = tmp_path / "shapes"
    write_pngs(data, 12)
    out = tmp_path / "run"
    proc = gandemo_cli(["train", str(data), "--epochs", "2", "--out", str(out), *TINY], cli_env)
    assert proc.returncode == 0, shown(proc)
    assert "2 epochs of 12 images at batch 8: 3 steps in total" in proc.stdout, shown(proc)
    assert "Finished 3 steps." in proc.stdout + proc.stderr, shown(proc)
    assert json.loads((out / "training" / "state.json").read_text())["step"] == 3

    proc = gandemo_cli(["train", str(data), "--epochs", "2", "--steps", "5", *TINY], cli_env)
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr, shown(proc)
    proc = gandemo_cli(["train", str(data), "--epochs", "0", "--out", str(tmp_path / "zero"), *TINY], cli_env)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: Epochs must be a positive number (got 0.0).", shown(proc)
    assert not (tmp_path / "zero").exists()


@pytest.mark.parametrize("problem", ["too-few-images", "not-a-run"])
def test_bad_input_is_one_line_and_a_non_zero_exit(problem: str, tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = tmp_path / "few"
    write_pngs(data, 3 if problem == "too-few-images" else 12)
    args = ["train", str(data), "--steps", "4", "--out", str(tmp_path / "out"), *TINY]
    if problem == "not-a-run":
        args += ["--resume", str(data)]
    proc = gandemo_cli(args, cli_env)
    assert proc.returncode == 2, shown(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), shown(proc)
    assert "Traceback" not in proc.stderr
    if problem == "too-few-images":
        assert "Only 3 of 3 files are usable images; training needs at least 8." in lines[0], shown(proc)
    else:
        assert "not a resumable training run" in lines[0], shown(proc)
    assert not (tmp_path / "out").exists()


def test_preview_and_checkpoint_every_zero_mean_only_at_the_end(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = tmp_path / "shapes"
    write_pngs(data, 12)
    out = tmp_path / "run"
    proc = gandemo_cli(["train", str(data), "--steps", "4", "--out", str(out), *TINY, "--preview-every", "0",
                        "--checkpoint-every", "0", "--checkpoint-minutes", "0"], cli_env)
    assert proc.returncode == 0, shown(proc)
    assert "Finished 4 steps." in proc.stdout + proc.stderr and "Checkpoint saved" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in (out / "previews").iterdir()) == ["step0000004.png"]
    assert json.loads((out / "training" / "state.json").read_text())["step"] == 4


@pytest.mark.parametrize(("flag", "value", "sentence"), [
    ("--preview-every", "-1", "preview every must be a whole number of steps from 0 (off) to 1,000,000 (got -1)"),
    ("--checkpoint-every", "-5", "checkpoint every must be a whole number of steps from 0 (off) to 1,000,000 (got -5)"),
    ("--checkpoint-minutes", "-1", "checkpoint minutes must be between 0 (off) and 10,080 (a week) (got -1.0)"),
])
def test_bad_intervals_are_one_line_before_anything_is_read(flag: str, value: str, sentence: str, tmp_path: Path,
                                                            cli_env: dict[str, str]) -> None:
    proc = gandemo_cli(["train", str(tmp_path / "no-images-here"), "--out", str(tmp_path / "run"), *TINY, flag, value],
                       cli_env)
    assert proc.returncode == 2, shown(proc)
    assert proc.stderr.strip() == f"error: Invalid training settings: {sentence}.", shown(proc)
    assert not (tmp_path / "run").exists()


def test_help_says_what_zero_means(cli_env: dict[str, str]) -> None:
    proc = gandemo_cli(["train", "--help"], cli_env)
    text = " ".join(proc.stdout.split())
    assert "--checkpoint-minutes" in text and "0 = off" in text, text
    assert "0: only at the end" in text and "0: only by time" in text, text


def test_resuming_a_damaged_run_is_one_line_naming_the_file(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = tmp_path / "shapes"
    write_pngs(data, 12)
    out = tmp_path / "run"
    assert cli.main(["train", str(data), "--steps", "2", "--out", str(out), *TINY]) == 0  # in this process: quicker
    (out / "training" / "optimizers.pt").write_bytes(b"garbage" * 20)
    proc = gandemo_cli(["train", str(data), "--resume", str(out), "--steps", "4", *TINY], cli_env)
    assert proc.returncode == 2, shown(proc)
    assert proc.stderr.strip() == (
        f"error: The run {out} is damaged: training/optimizers.pt (the optimisers' and random state) is not a "
        "readable file of tensors, so the run can't be resumed, but its generator (model.safetensors) still opens "
        "in Generate; to train further, start a new run or restore the folder from a copy."), shown(proc)


# ------------------------------------------------------------------------------------- in-process: injected faults
@pytest.fixture
def shapes(tmp_path: Path, one_thread: None) -> Path:
    write_pngs(tmp_path / "shapes", 12)
    return tmp_path / "shapes"


def test_a_folder_that_refuses_writes_is_said_before_training(shapes: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(runs_module.tempfile, "mkstemp", read_only)
    out = tmp_path / "run"
    assert cli.main(["train", str(shapes), "--steps", "4", "--out", str(out), *TINY]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: Can't write checkpoints to {out} (the file system is read-only); choose another output folder.")
    assert not out.exists()


def test_ctrl_c_with_a_full_disk_says_which_checkpoint_is_intact(shapes: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    real_train, real_save_file = Trainer.train, runs_module.save_file
    calls = []

    def ctrl_c_after_step_2(self: Trainer, cancel: object = None) -> Iterator[TrainEvent]:
        for event in real_train(self, cancel):
            yield event
            if event.kind in ("step", "preview") and event.step == 2:
                raise KeyboardInterrupt

    def full_after_one_save(*args: object, **kwargs: object) -> None:  # a save writes two safetensors files
        calls.append(1)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save_file(*args, **kwargs)

    monkeypatch.setattr(Trainer, "train", ctrl_c_after_step_2)
    monkeypatch.setattr(runs_module, "save_file", full_after_one_save)
    out = tmp_path / "run"
    code = cli.main(["train", str(shapes), "--steps", "6", "--checkpoint-every", "1", "--out", str(out), *TINY])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1] == (
        f"error: Could not save step 2 to {out} (the disk is full); the checkpoint of step 1 there is intact."), err
    assert json.loads((out / "training" / "state.json").read_text())["step"] == 1
    load_generator(str(out), device="cpu")


def test_lr_drop_schedule_from_the_command_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = tmp_path / "shapes"
    write_pngs(data, 12)
    out = tmp_path / "run"
    proc = gandemo_cli(["train", str(data), "--steps", "5", "--out", str(out), "--lr-drop", "2:0.1",
                        "--lr-drop", "4:0.5", "--auto-lr-drop", *TINY], cli_env)
    assert proc.returncode == 0, shown(proc)
    assert "[info] step 2: Learning rates lowered by the schedule (×0.1): G 2.00e-04 → 2.00e-05" in proc.stdout, shown(proc)
    state = json.loads((out / "training" / "state.json").read_text())
    assert state["config"]["lr_drops"] == [[2, 0.1], [4, 0.5]] and state["config"]["auto_lr_drop"] is True
    assert [(c["step"], c["factor"]) for c in state["lr_changes"]] == [(2, 0.1), (4, 0.5)]
    assert [h["lr_g"] for h in state["history"]] == pytest.approx([2e-4, 2e-4, 2e-5, 2e-5, 1e-5])

    proc = gandemo_cli(["train", str(data), "--lr-drop", "2", *TINY], cli_env)
    assert proc.returncode == 2 and "STEP:FACTOR, e.g. 1000:0.1 (got '2')" in proc.stderr, shown(proc)
