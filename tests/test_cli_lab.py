"""``python -m gandemo lab`` as a person runs it: real subprocesses, real files, short runs.

Good runs write exactly what was asked for (``--json``: one JSON object on stdout); bad input ends
with a non-zero status and ONE line on stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from gandemo.lab.render import frame_size

pytestmark = pytest.mark.timeout(300)
SMALL = ["--batch-size", "64", "--g-units", "32", "--d-units", "32"]


def lab_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gandemo", "lab", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)


def succeeded(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    return proc.stdout


def test_json_has_the_final_metrics_and_the_png_is_the_final_frame(hf_env: dict[str, str], tmp_path: Path) -> None:
    out = succeeded(lab_cli(["--steps", "60", "--seed", "3", "--size", "160", "--out", "f.png", "--json", *SMALL],
                            hf_env, tmp_path))
    result = json.loads(out)  # the whole of stdout is one object
    assert {"modes_covered", "modes_total", "high_quality", "steps", "density_distance", "d_real", "d_fake",
            "loss_d", "loss_g", "seed", "preset", "cure"} <= set(result)
    assert result["steps"] == 60 and result["modes_total"] == 8 and result["seed"] == 3
    assert result["preset"] == "default" and result["cure"] is False
    image = Image.open(tmp_path / "f.png")
    assert image.format == "PNG" and image.size == frame_size(160)


def test_gif_has_the_frames_asked_for_and_overrides_apply(hf_env: dict[str, str], tmp_path: Path) -> None:
    points = tmp_path / "pts.txt"
    points.write_text("\n".join(f"{i},{(i * 7) % 5}" for i in range(20)))
    out = succeeded(lab_cli(["--steps", "20", "--frames", "4", "--size", "96", "--no-plots", "--out", "a.gif",
                             "--points", str(points), "--loss", "hinge", "--lr-g", "0.002", "--json", *SMALL],
                            hf_env, tmp_path))
    result = json.loads(out)
    assert result["dataset"] == "custom" and result["modes_total"] is None
    gif = Image.open(tmp_path / "a.gif")
    assert gif.format == "GIF" and gif.n_frames == 4 and gif.size == (96, 96)


def test_a_live_cure_can_start_mid_run(hf_env: dict[str, str], tmp_path: Path) -> None:
    out = succeeded(lab_cli(["--preset", "lr-too-high", "--steps", "30", "--cure-at", "10", "--json", *SMALL],
                            hf_env, tmp_path))
    assert json.loads(out)["cure"] is True


@pytest.mark.parametrize("args, message", [
    (["--preset", "everything-fine"], "Unknown preset 'everything-fine'"),
    (["--seed", "-1"], "seed must be between"),
    (["--steps", "20001"], "steps must be a whole number between 0 and 20000"),
    (["--out", "x.jpg"], "--out must end in"),
    (["--out", "x.gif"], "needs --frames"),
    (["--frames", "3", "--out", "x.png"], "--frames needs an animated"),
    (["--preset", "mode-collapse", "--cure-at", "5"], "can't start mid-run"),
    (["--points", "missing.txt"], "no such file"),
])
def test_bad_input_is_one_line_on_stderr(hf_env: dict[str, str], tmp_path: Path, args: list[str], message: str) -> None:
    proc = lab_cli(["--steps", "5", *args] if "--steps" not in args else args, hf_env, tmp_path)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not list(tmp_path.iterdir())
