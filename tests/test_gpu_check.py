"""scripts/gpu_check.py, the prepared GPU check, run the way CI can: ``--device cpu --quick``.

The script is meant for a lent GPU (issue 10 §6); on the CPU it runs every row that doesn't need a GPU
(training in the policy's precision, forced float16 + GradScaler + R1, float32, MSG-GAN, style transfer in
three precisions, /generate through gradio_client against app.py in a subprocess) with tiny networks,
and skips the rest with a stated reason. This checks that the table and the JSON hold every row, that no
row failed and that a skipped row says why, so the script can't rot between GPU loans.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.py"
pytestmark = [pytest.mark.app, pytest.mark.slow]

# rows a CPU run may skip, and the words its reason must contain
SKIPPABLE_ON_CPU = {"train 64 px: Trainer vs tutorial": "--sizes", "train 128 px: Trainer vs tutorial": "--sizes",
                    "DDP, NCCL (torchrun)": "--device cpu"}


def gpu_check(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "out" / "gpu_check.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop("GANDEMO_PRECISION", None)
    done = subprocess.run([sys.executable, str(SCRIPT), *args, "--json", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    return done, out


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    done, out = gpu_check(tmp_path_factory.mktemp("gpu-check"), "--device", "cpu", "--quick", "--budget-s", "400")
    assert out.exists(), f"no JSON written (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done, json.loads(out.read_text())


def test_every_row_runs_or_says_why_and_none_fails(quick_run: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    done, report = quick_run
    rows = {row["name"]: row for row in report["rows"]}
    assert done.returncode == 0 and report["ok"], f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    expected = {"train 32 px: Trainer vs tutorial", "train 64 px: Trainer vs tutorial", "train 128 px: Trainer vs tutorial",
                "train 32 px, fp16 + GradScaler + R1 (pre-Ampere path)", "train 32 px, fp32 (amp off)",
                "train 32 px, MSG-GAN", "train 32 px, progressive growing", "style transfer 64 px, float32", "style transfer 64 px, bfloat16",
                "style transfer 64 px, float16", "/generate via gradio_client (app on the device)", "DDP, NCCL (torchrun)"}
    assert set(rows) == expected
    for name, row in rows.items():
        assert row["status"] != "FAIL", f"{name}: {row['reason']}"
        if name in SKIPPABLE_ON_CPU:
            assert row["status"] == "skipped" and SKIPPABLE_ON_CPU[name] in row["reason"], row
        else:
            assert row["status"] == "ok" and row["checks"] and row["result"], f"{name} did not run: {row}"


def test_the_rows_checked_what_they_claim(quick_run: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    rows = {row["name"]: row for row in quick_run[1]["rows"]}
    fp16 = rows["train 32 px, fp16 + GradScaler + R1 (pre-Ampere path)"]
    assert fp16["precision"] == "fp16 + GradScaler (forced)"
    assert any(c.startswith("GradScaler on: scale 65536") for c in fp16["checks"]), fp16["checks"]
    assert fp16["numbers"]["loss_scale_start"] == 65536.0
    assert "convs in fp16" in fp16["checks"] and "convs in fp32" in rows["train 32 px, fp32 (amp off)"]["checks"]
    assert any(c.startswith("D's gradients (loss + R1) scaled x65536") for c in fp16["checks"]), fp16["checks"]
    msg = rows["train 32 px, MSG-GAN"]
    assert "4 scales 4..32 px" in msg["checks"] and msg["numbers"]["images_per_s"] > 0
    grown = rows["train 32 px, progressive growing"]
    assert "grew 4..32 px" in grown["checks"] and grown["numbers"]["images_per_s"] > 0
    policy = rows["train 32 px: Trainer vs tutorial"]
    assert policy["numbers"]["images_per_s"] > 0 and policy["numbers"]["tutorial_images_per_s"] > 0
    for precision in ("float32", "bfloat16", "float16"):
        style = rows[f"style transfer 64 px, {precision}"]
        assert style["numbers"]["final_loss"] < style["numbers"]["first_loss"]
        assert style["numbers"]["seconds_per_step"] > 0
    generate = rows["/generate via gradio_client (app on the device)"]["numbers"]
    assert generate["calls"] == 5 and 0 < generate["p50_ms"] <= generate["p95_ms"]
    assert all(row["peak_mib"] is None for row in rows.values()), "no GPU memory to report on the CPU"


def test_the_table_is_markdown_with_one_line_per_row(quick_run: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    done, report = quick_run
    lines = [line for line in report["markdown"].splitlines() if line.startswith("|")]
    assert lines[0].startswith("| row | precision | result |") and set(lines[1]) <= {"|", "-"}
    assert len(lines) == 2 + len(report["rows"])
    assert all(line.count("|") == lines[0].count("|") for line in lines), "a cell broke the table"
    assert report["markdown"] in done.stdout, "the same table is printed"
    assert "0 row(s) failed" in report["header"] and report["machine"]["device"] == "cpu"


def test_a_missing_gpu_is_one_clear_line(tmp_path: Path) -> None:
    """``--device cuda`` on a machine without one: exit 2 and one sentence, no traceback, no table."""
    done, out = gpu_check(tmp_path, "--device", "cuda", "--quick")
    if done.returncode == 0:
        pytest.skip("this machine has a CUDA GPU")
    assert done.returncode == 2 and not out.exists()
    assert "sees no CUDA GPU" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_missing_package_is_one_line_naming_it(tmp_path: Path) -> None:
    """Without gradio (as on a bare GPU machine) the script stops before importing anything heavy."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('gradio', 'gradio_client'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith("gpu_check: missing Python packages: gradio, gradio_client")
    assert len(done.stderr.strip().splitlines()) == 1 and "scripts/gpu_check.sh" in done.stderr
