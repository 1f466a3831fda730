"""Training on several processes with torchrun (gandemo.gan.distributed): real torchrun, two Gloo
processes on the CPU, real ``python -m gandemo train``.

Every run sets GANDEMO_DDP_CHECK, so after each step each rank hashes its own G, D and EMA of G, names
its real batch and counts the files it wrote (Python audit events); rank 0 writes the gathered rows.
The tests read those rows: the weights are the same on both ranks after every step (measured on each
rank, not assumed), the batches are disjoint shards of every epoch, and rank 1 wrote nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from test_train import write_pngs

from gandemo import load_generator
from gandemo.gan import distributed
from gandemo.gan.distributed import Dist, backend_for, launched_by_torchrun

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES, BATCH = 16, 4  # 2 ranks x 4 images: an epoch is 2 steps
TINY = ["--size", "32", "--width", "8", "--batch-size", str(BATCH), "--device", "cpu"]


def torchrun(args: list[str]) -> list[str]:
    # --standalone: a rendezvous on a free local port, so parallel runs don't collide
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "gandemo", "train", *args]


def shown(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"


def check_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_one_model(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        first, *others = row["ranks"]
        for other in others:
            for key in ("step", "g", "d", "g_ema", "skipped_d"):
                assert other[key] == first[key], (key, row)


def cli_env(hf_env: dict[str, str], check: Path) -> dict[str, str]:
    env = {**hf_env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", distributed.CHECK_ENV: str(check)}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def train_two_ranks(tmp_path: Path, hf_env: dict[str, str], settings: list[str]) -> tuple[Path, list[int]]:
    """torchrun with 2 Gloo processes trains 12 small images with the given CLI settings (tiny networks, no
    previews, R1 on); checks that it ends well and that the ranks' G, D and EMA are identical after every step.
    Returns the run folder and the steps the ranks checked."""
    data, out, check = tmp_path / "shapes", tmp_path / "run", tmp_path / "check.jsonl"
    write_pngs(data, 12)
    args = [str(data), "--out", str(out), *settings, "--width", "8", "--batch-size", "4", "--preview-every", "0",
            "--r1", "1", "--device", "cpu"]
    proc = subprocess.run(torchrun(args), cwd=REPO_ROOT, env=cli_env(hf_env, check), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, shown(proc)
    rows = check_rows(check)
    assert len(rows[0]["ranks"]) == 2
    assert_one_model(rows)
    return out, [row["ranks"][0]["step"] for row in rows if not row["final"]]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One 2-rank run: spectral norm (its power-iteration buffers), lazy R1 through DDP, a planned
    learning-rate drop, previews and checkpoints on the way, a length in epochs."""
    from conftest import HF_SETTINGS, HF_UNSET

    env = {**os.environ, **HF_SETTINGS}
    for name in HF_UNSET:
        env.pop(name, None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    root = tmp_path_factory.mktemp("ddp")
    data, out, check = root / "shapes", root / "run", root / "check.jsonl"
    write_pngs(data, IMAGES)
    args = [str(data), "--out", str(out), "--epochs", "3", "--r1", "1", "--lr-drop", "3:0.5",
            "--preview-every", "3", "--checkpoint-every", "2", *TINY]
    proc = subprocess.run(torchrun(args), cwd=REPO_ROOT, env=cli_env(env, check), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, shown(proc)
    return {"root": root, "data": data, "out": out, "rows": check_rows(check), "proc": proc, "env": env}


def test_weights_are_identical_on_both_ranks_after_every_step(two_ranks: dict[str, Any]) -> None:
    rows = two_ranks["rows"]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6, 6] and rows[-1]["final"], rows
    assert all(len(r["ranks"]) == 2 for r in rows)
    assert_one_model(rows)
    # the hashes really follow the weights: every step changed G, D and the EMA of G
    for key in ("g", "d", "g_ema"):
        assert len({r["ranks"][0][key] for r in rows[:-1]}) == 6, key


def test_ranks_see_disjoint_shards_of_every_epoch(two_ranks: dict[str, Any]) -> None:
    rows = [r for r in two_ranks["rows"] if not r["final"]]
    for row in rows:
        a, b = (rank["batch"] for rank in row["ranks"])
        assert len(a) == len(b) == BATCH and not set(a) & set(b), row
    for epoch in range(3):  # 2 steps an epoch: the 4 batches together are every image once
        seen = [i for row in rows[2 * epoch:2 * epoch + 2] for rank in row["ranks"] for i in rank["batch"]]
        assert sorted(seen) == list(range(IMAGES)), (epoch, seen)


def test_only_rank_zero_writes_and_speaks(two_ranks: dict[str, Any]) -> None:
    rows, out, proc = two_ranks["rows"], two_ranks["out"], two_ranks["proc"]
    assert all(r["ranks"][1]["writes"] == 0 for r in rows), [r["ranks"][1]["writes"] for r in rows]
    # rank 0's count grows with its previews and checkpoints: the audit sees writes when there are some
    counts = [r["ranks"][0]["writes"] for r in rows]
    assert counts[0] == 0 and counts[2] > counts[1] and counts[-1] > counts[-2], counts
    assert sorted(p.name for p in (out / "previews").iterdir()) == ["step0000003.png", "step0000006.png"]
    assert sorted(p.name for p in two_ranks["root"].iterdir()) == ["check.jsonl", "run", "shapes"]
    assert proc.stdout.count("Used 16 of 16 files.") == 1, shown(proc)  # one summary: rank 0's
    assert "at batch 4 x 2 processes: 6 steps in total." in proc.stdout, shown(proc)
    assert "and 1 more processes (gloo)" in proc.stdout, shown(proc)


def test_checkpoint_is_a_plain_run_folder(two_ranks: dict[str, Any]) -> None:
    out = two_ranks["out"]
    state = json.loads((out / "training" / "state.json").read_text())
    assert state["step"] == 6 and state["processes"] == 2
    assert [(c["step"], c["reason"]) for c in state["lr_changes"]] == [(3, "schedule")]
    for name in ("model.safetensors", "training/generator_live.safetensors", "training/discriminator.safetensors"):
        with safe_open(out / name, "pt") as f:
            keys = list(f.keys())
        assert keys and not any(k.startswith("module.") for k in keys), (name, keys[:3])
    gen = load_generator(str(out), device="cpu")
    assert (gen.image_size, gen.channels) == (32, 3)
    assert bool(torch.isfinite(gen.sample([0, 1, 2])).all())


def test_two_rank_run_resumes_on_one_process_and_back_on_two(two_ranks: dict[str, Any], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(two_ranks["out"], run)
    before = json.loads((run / "training" / "state.json").read_text())
    env = {**two_ranks["env"], "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "gandemo", "train", str(two_ranks["data"]), "--resume", str(run),
                           "--steps", "9", *TINY], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, shown(proc)
    assert "Finished 9 steps." in proc.stdout + proc.stderr, shown(proc)
    state = json.loads((run / "training" / "state.json").read_text())
    assert state["step"] == 9 and state["processes"] == 1
    assert [h["step"] for h in state["history"]] == list(range(1, 10))
    assert state["history"][:6] == before["history"]  # the 2-rank history carries on
    assert state["history"][-1]["lr_g"] == pytest.approx(1e-4)  # the drop at step 3 survived the move
    assert bool(torch.isfinite(load_generator(str(run), device="cpu").sample([0])).all())

    # and back onto two ranks: a checkpoint written by one process resumes under torchrun
    check = tmp_path / "check.jsonl"
    proc = subprocess.run(torchrun([str(two_ranks["data"]), "--resume", str(run), "--steps", "11", *TINY]),
                          cwd=REPO_ROOT, env=cli_env(two_ranks["env"], check), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, shown(proc)
    rows = check_rows(check)
    assert [r["step"] for r in rows] == [10, 11, 11]
    assert_one_model(rows)
    state = json.loads((run / "training" / "state.json").read_text())
    assert state["step"] == 11 and state["processes"] == 2 and len(state["history"]) == 11


def test_ctrl_c_stops_every_rank_at_the_same_step(tmp_path: Path, two_ranks: dict[str, Any]) -> None:
    """Ctrl-C reaches torchrun and both workers (one process group): they agree on a step, rank 0 saves.
    Batch norm in D (no spectral norm, two D passes per step through DDP) and the skip-D rule from the
    all-reduced loss (a threshold of 100: D learns at step 1, then skips, on both ranks alike)."""
    out, check = tmp_path / "run", tmp_path / "check.jsonl"
    args = [str(two_ranks["data"]), "--out", str(out), "--steps", "100000", "--no-spectral-norm",
            "--d-skip-threshold", "100", "--preview-every", "0", *TINY]
    proc = subprocess.Popen(torchrun(args), cwd=REPO_ROOT, env=cli_env(two_ranks["env"], check),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (check.exists() and len(check.read_text().splitlines()) >= 3):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-4000:]
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    rows = check_rows(check)
    assert_one_model(rows)
    final = rows[-1]
    assert final["final"] and "Stopped at step" in output, output[-4000:]
    assert 3 <= final["step"] < 100000
    assert all(rank["skipped_d"] == final["step"] - 1 for rank in final["ranks"]), final
    assert all(r["ranks"][1]["writes"] == 0 for r in rows)
    state = json.loads((out / "training" / "state.json").read_text())
    assert state["step"] == final["step"]


def test_a_two_rank_run_resumes_the_way_the_train_tab_does(two_ranks: dict[str, Any], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The Train tab lists resumable runs (list_runs) and resumes one through prepare_trainer, in-process."""
    from gandemo.gan.train import TrainConfig
    from gandemo.training import list_runs, prepare_trainer

    monkeypatch.setenv("GANDEMO_RUNS_DIR", str(tmp_path))
    run = tmp_path / "from-torchrun"
    shutil.copytree(two_ranks["out"], run)
    assert list_runs() == [run]
    trainer, _ = prepare_trainer([two_ranks["data"]], TrainConfig(steps=8), resume=run, device="cpu")
    assert trainer.step == 6 and trainer.config.batch_size == BATCH
    events = list(trainer.train())
    assert events[-1].kind == "done" and trainer.step == 8
    assert json.loads((run / "training" / "state.json").read_text())["step"] == 8


HELPERS = """
import json, sys, torch
from torch import nn
from gandemo.gan import distributed
from gandemo.gan.models import DCGANDiscriminator
from gandemo.gan.train import TrainConfig, Trainer

d = distributed.init("cpu")
assert d.active and d.world_size == 2 and d.backend == "gloo" and d.device == torch.device("cpu")
rank = d.rank
out = {"rank": rank}
out["main_json"] = d.main_json({"from": rank, "text": "Việt"} if d.is_main else None)
out["main_json_empty"] = d.main_json([] if d.is_main else [{"factor": 0.5}])
out["any"] = [d.any(rank == 1), d.any(False)]
out["main_decides"] = [d.main_decides(rank == 1), d.main_decides(rank == 0)]
out["mean"] = d.mean([torch.tensor(float(rank)), 4.0 * rank])
bn, disc = nn.BatchNorm2d(2), DCGANDiscriminator(32, 3, 4, spectral_norm=True)
bn.running_mean.fill_(rank + 1.0)
bn.num_batches_tracked.fill_(10 + rank)
for name, buf in disc.named_buffers():
    buf.fill_(rank + 2.0)
d.sync_buffers(bn, disc)
out["bn_mean"] = bn.running_mean.tolist()
out["bn_count"] = int(bn.num_batches_tracked)
out["sn_buffers"] = sorted({float(v) for b in disc.buffers() for v in b.flatten().tolist()})
data = (torch.rand(16, 3, 32, 32) * 255).to(torch.uint8)
trainer = Trainer(data, TrainConfig(image_size=32, width_g=4, width_d=4, batch_size=2, steps=3, preview_every=0,
                                    checkpoint_every=0, checkpoint_minutes=0), sys.argv[1], device="cpu")
out["noise"] = torch.randn(3).tolist()  # each rank its own z stream
if d.is_main:  # the Train tab's button lives in rank 0's process only
    trainer.lower_learning_rates(0.5)
else:  # a request on another rank is not a decision: rank 0's are
    trainer.lower_learning_rates(0.1)
out["kinds"] = [e.kind for e in trainer.train()]
out["lr"] = list(trainer.learning_rates)
out["lr_changes"] = trainer.lr_changes
print("HELPERS " + json.dumps(out), flush=True)
distributed.teardown(finished=True)
"""


def test_distributed_helpers_on_two_gloo_ranks(tmp_path: Path, two_ranks: dict[str, Any]) -> None:
    """The collective helpers, and a learning-rate request made on rank 0 only, applied on both ranks."""
    script = tmp_path / "helpers.py"
    script.write_text(HELPERS)
    env = {**two_ranks["env"], "OMP_NUM_THREADS": "1"}
    env.pop(distributed.CHECK_ENV, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(tmp_path / "run")], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, shown(proc)
    outs = sorted((json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
                   if line.startswith("HELPERS ")), key=lambda o: o["rank"])
    assert [o["rank"] for o in outs] == [0, 1], shown(proc)
    for o in outs:
        assert o["main_json"] == {"from": 0, "text": "Việt"} and o["main_json_empty"] == []
        assert o["any"] == [True, False] and o["main_decides"] == [False, True]
        assert o["mean"] == [0.5, 2.0]
        assert o["bn_mean"] == [1.5, 1.5] and o["bn_count"] == 10  # statistics averaged, the counter rank 0's
        assert o["sn_buffers"] == [2.0]  # spectral norm's vectors: rank 0's
        assert o["kinds"][:2] == ["start", "lr"] and o["kinds"][-1] == "done"
        assert o["lr"] == pytest.approx([1e-4, 1e-4])  # rank 0's x0.5, on both; rank 1's own x0.1 ignored
        assert [c["factor"] for c in o["lr_changes"]] == [0.5]
    assert outs[0]["noise"] != outs[1]["noise"]
    assert (tmp_path / "run" / "model.safetensors").is_file()  # rank 0 saved at the end


# ------------------------------------------------------------------------------ without torchrun


def test_backend_is_nccl_on_cuda_and_gloo_on_cpu() -> None:
    assert backend_for(torch.device("cuda", 1)) == "nccl"
    assert backend_for(torch.device("cuda")) == "nccl"
    assert backend_for(torch.device("cpu")) == "gloo"


def test_torchrun_is_detected_from_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not launched_by_torchrun()
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert not launched_by_torchrun()  # torchrun with one process: nothing to coordinate
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert launched_by_torchrun()


def test_a_single_process_is_left_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    alone = distributed.init("cpu")
    assert alone is distributed.current() and not alone.active and alone.is_main
    assert not torch.distributed.is_initialized()
    module = torch.nn.Linear(2, 2)
    assert alone.wrap(module) is module
    assert alone.mean([torch.tensor(0.25), 2]) == [0.25, 2.0]
    assert alone.any(True) and not alone.any(False) and alone.main_decides(True)
    assert alone.main_json([{"factor": 0.1}]) == [{"factor": 0.1}]
    assert alone.stop_on_signals() is None  # the CLI keeps its KeyboardInterrupt path
    before = torch.get_rng_state()
    Dist().decorrelate_rng(0)
    assert torch.equal(before, torch.get_rng_state())  # rank 0 / one process: its random stream is untouched


def test_the_write_count_sees_the_run_folder_and_its_save_folders_only(tmp_path: Path) -> None:
    """GANDEMO_DDP_CHECK's count of a rank's writes (Python audit events), on real file operations."""
    check = distributed.ReplicaCheck(tmp_path / "check.jsonl")
    run = tmp_path / "run"
    check.watch = (str(run), str(tmp_path / ".run."))
    try:
        run.mkdir()  # 1
        (run / "a.txt").write_text("x")  # 2
        (run / "a.txt").read_text()  # reading is not writing
        (tmp_path / "run_check.jsonl").write_text("x")  # a name that merely starts like the run's
        (tmp_path / ".run.tmp123").mkdir()  # 3: where a save writes the new folder
        os.replace(tmp_path / ".run.tmp123", run / "sub")  # 4
        assert check.writes == 4
    finally:
        check.watch = None  # the hook stays installed (audit hooks can't be removed); it is idle now
