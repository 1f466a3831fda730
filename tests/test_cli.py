"""``python -m gandemo`` as a person runs it: real subprocesses, real files, the bundled model.

Good runs write exactly what was asked for; bad input ends with a non-zero status and ONE line on
stderr (no traceback).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.timeout(300)


def gandemo(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gandemo", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=240)


def succeeded(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    return proc.stdout


def opened(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image


def test_sample_one_image_at_native_size(hf_env: dict[str, str], tmp_path: Path) -> None:
    out = succeeded(gandemo(["sample", "--num", "1", "--seed", "5", "--out", "x.png"], hf_env, tmp_path))
    image = opened(tmp_path / "x.png")
    assert image.format == "PNG" and image.size == (32, 32) and image.mode == "L"
    assert "x.png" in out and "1 image(s)" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"], "exactly one file"


def test_sample_grid_holds_the_seeded_images(hf_env: dict[str, str], tmp_path: Path) -> None:
    succeeded(gandemo(["sample", "--num", "6", "--seed", "3", "--columns", "3", "--scale", "2", "--out", "grid.png"],
                      hf_env, tmp_path))
    grid = opened(tmp_path / "grid.png")
    assert grid.size == (3 * 32 * 2, 2 * 32 * 2) and grid.mode == "L"
    native = grid.resize((grid.width // 2, grid.height // 2), Image.Resampling.NEAREST)
    assert np.array_equal(np.asarray(native.resize(grid.size, Image.Resampling.NEAREST)), np.asarray(grid)), \
        "--scale 2 should be a crisp nearest-neighbour upscale"
    # the grid starts at --seed: its 3rd cell (row 1, column 3) is seed 5
    succeeded(gandemo(["sample", "--num", "1", "--seed", "5", "--out", "five.png"], hf_env, tmp_path))
    five = np.asarray(opened(tmp_path / "five.png"))
    assert np.array_equal(np.asarray(native)[0:32, 64:96], five)


def test_interpolate_gif_has_the_frames_asked_for(hf_env: dict[str, str], tmp_path: Path) -> None:
    out = succeeded(gandemo(["interpolate", "--seeds", "1", "2", "--frames", "8", "--out", "x.gif"], hf_env, tmp_path))
    gif = Image.open(tmp_path / "x.gif")
    assert gif.format == "GIF" and getattr(gif, "n_frames", 1) == 8 and gif.size == (32, 32)
    assert "8 frames" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["interpolate", "--seeds", "1", "2", "--frames", "0", "--out", "x.gif"], "between 2 and 120 frames"),
        (["sample", "--out", "x.jpg"], "--out must end in .png, got 'x.jpg'"),
        (["sample", "--model", "not a repo!!", "--out", "x.png"], "Hub repo id like 'owner/name'"),
        (["sample", "--model", "./no/such/folder", "--out", "x.png"], "No such file or folder: ./no/such/folder"),
    ],
    ids=["frames-0", "bad-out-suffix", "malformed-model-id", "missing-local-path"],
)
def test_bad_input_is_one_line_on_stderr(hf_env: dict[str, str], tmp_path: Path, args: list[str], message: str) -> None:
    proc = gandemo(args, hf_env, tmp_path)
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert list(tmp_path.iterdir()) == [], "a failed run must not leave files behind"


def test_help_and_refusals_come_before_torch(run_python) -> None:  # noqa: ANN001 - conftest's fixture
    """--help, a typo, every check that needs no model and a file or model that isn't there are answered without
    importing torch (5 s on a small CPU), and the refusal is the same one line."""
    code = """
import contextlib, io, sys
from gandemo.cli import main
cases = [["--help"], ["train", "--help"], ["lab", "--help"], ["style", "--help"],
         ["train", "imgs", "--lr-g", "0"], ["train", "imgs", "--arch", "vit"], ["lab", "--preset", "nope"],
         ["lab", "--steps", "999999999"], ["lab", "--g-units", "1000"], ["sample", "--out", "x.txt"],
         ["interpolate", "--seeds", "1", "2", "--fps", "0", "--out", "x.gif"], ["style", "a.png", "b.png", "--out", "x.txt"],
         ["sample", "--num", "0", "--out", "x.png"], ["sample", "--seed", "-1", "--out", "x.png"],
         ["interpolate", "--seeds", "1", "2", "3", "--frames", "2", "--out", "x.gif"], ["train", "imgs", "--epochs", "0"],
         ["sample", "--model", "./no/such/folder", "--out", "x.png"],
         ["interpolate", "--seeds", "1", "2", "--model", "not a repo!!", "--out", "x.gif"],
         ["train", "no/such/imgs", "no/more", "--out", "run"], ["style", "no.png", "b.png", "--out", "x.png"],
         ["style", sys.executable, "a.png", "b.png", "--out", "x.png"],
         ["style", "no.png", "b.png", "--steps", "0", "--out", "x.png"]]
for argv in cases:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    print(repr(argv), code, lines[-1] if lines else "", sep=" | ")
print("torch imported:", "torch" in sys.modules)
"""
    out = run_python(code).stdout
    rows = [line.split(" | ") for line in out.splitlines() if " | " in line]
    assert len(rows) == 22, out
    assert all(code == "0" for _, code, _ in rows[:4]), out
    for argv, code, last in rows[4:]:
        assert code == "2" and ("error" in last), (argv, code, last)
    assert "learning rate of G" in rows[4][2] or "lr_g" in rows[4][2], rows[4]
    assert "Unknown preset 'nope'" in rows[6][2] and "20000" in rows[7][2] and "g_units" in rows[8][2], out
    assert "between 1 and 64 images" in rows[12][2] and "seed must be between 0" in rows[13][2], out
    assert "2 frames are too few to visit 3 seeds" in rows[14][2], out
    assert rows[15][2] == "error: Epochs must be a positive number (got 0.0).", out
    assert rows[16][2] == "error: No such file or folder: ./no/such/folder", out
    assert "is not a bundled model" in rows[17][2] and "Hub repo id like 'owner/name'" in rows[17][2], out
    assert rows[18][2] == "error: No such file or folder: no/such/imgs", out
    assert rows[19][2] == "error: The content image no.png does not exist.", out
    assert rows[20][2] == "error: The style image 1 a.png does not exist.", out
    assert "number of steps must be between 1 and" in rows[21][2], out
    assert out.splitlines()[-1] == "torch imported: False", out
