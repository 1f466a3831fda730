"""``python -m gandemo train``: a real subprocess on a folder of tiny PNGs, then ``--resume``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train import write_pngs

from gandemo import load_generator

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
    previews = sorted(p.name for p in (tmp_path / "my-run-previews").iterdir())
    assert previews == ["step0000003.png", "step0000006.png"], previews
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "--out was not honoured"

    proc = gandemo_cli(["train", str(data), "--resume", str(out), "--steps", "10", *TINY], cli_env)
    assert proc.returncode == 0, shown(proc)
    assert "Finished 10 steps." in proc.stdout + proc.stderr, shown(proc)
    state = json.loads((out / "training" / "state.json").read_text())
    assert state["config"]["mirror"] is True  # a resumed run keeps its saved settings
    assert state["step"] == 10 and [h["step"] for h in state["history"]] == list(range(1, 11))
    load_generator(str(out), device="cpu")


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
