"""benchmarks/time_to_quality.py's EMA shadows (one training seen through several EMA decays) and --resume."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from gandemo.datasets import fashion_mnist_dir
from gandemo.gan.models import DCGANGenerator
from gandemo.gan.train import ema_update

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "time_to_quality.py"


def ttq():  # noqa: ANN201 - the benchmark module
    sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "benchmarks")]
    try:
        import time_to_quality
    finally:
        del sys.path[:2]
    return time_to_quality


def test_ema_update_follows_the_warm_up_then_the_decay() -> None:
    live, ema = DCGANGenerator(32, 1, 8, 8), DCGANGenerator(32, 1, 8, 8)
    w_live, w_ema = next(live.parameters()), next(ema.parameters())
    before = w_ema.detach().clone()
    ema_update(ema, live, 0.99, step=1)  # warm-up: decay (1 + 1) / (10 + 1), not 0.99
    assert torch.allclose(w_ema, before + (w_live - before) * (1 - 2 / 11))
    before = w_ema.detach().clone()
    ema_update(ema, live, 0.99, step=10_000)  # past the warm-up: the decay itself
    assert torch.allclose(w_ema, before + (w_live - before) * 0.01)
    live.net[1].running_mean.fill_(3.0)  # buffers (batch-norm statistics) are copied, not averaged
    ema_update(ema, live, 0.99, step=10_001)
    assert torch.equal(ema.net[1].running_mean, live.net[1].running_mean)
    ema_update(ema, live, 0.0, step=5)  # 0 = off: a copy of G
    assert all(torch.equal(a, b) for a, b in zip(ema.state_dict().values(), live.state_dict().values()))


def run_worker(out: Path, steps: list[int], *extra: str) -> subprocess.CompletedProcess[str]:
    """The bn-ema99 runner's worker process, evaluated after each of ``steps`` (``--match-steps``)."""
    match = out / f"match{len(steps)}.jsonl"
    match.write_text("".join(json.dumps({"steps": s}) + "\n" for s in steps))
    return subprocess.run([sys.executable, str(BENCH), "--worker", "bn-ema99", "--match-steps", str(match),
                           "--n-eval", "200", "--bn-batches", "2", "--knn-n", "50", "--reference-n", "500", "--ema-shadows", "0.99", "0.1", *extra, "--out", str(out)],
                          check=True, timeout=600, capture_output=True, text=True)


@pytest.mark.skipif(fashion_mnist_dir() is None, reason="needs Fashion-MNIST (Debian's dataset-fashion-mnist)")
def test_ema_shadows_watch_the_runners_own_training(tmp_path: Path) -> None:
    """A shadow with the recipe's own decay is the runner's EMA bit for bit at every evaluation (so the shadows
    see the very training the runner exports); other decays differ; the report reads each as a runner.
    The run is interrupted after its second point and goes on with --resume: the third point is what an
    uninterrupted run makes, for the runner and for every shadow."""
    run_worker(tmp_path, [2, 4])
    # as if killed after writing the third point's row but before its resume point: that row is dropped
    curve = tmp_path / "bn-ema99" / "curve.jsonl"
    curve.write_text(curve.read_text() + json.dumps({"point": 3, "steps": 5}) + "\n")
    resumed = run_worker(tmp_path, [2, 4, 6], "--resume")
    assert "resumed at step 4 (point 2" in resumed.stdout
    bench = ttq()
    reference = bench.Run("bn-ema99", bench.fashion_mnist_u8(), tmp_path / "reference")  # never interrupted
    shadow_01 = copy.deepcopy(reference.trainer.G).eval().requires_grad_(False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the worker trains
    try:
        for _ in range(6):
            reference.step()
            ema_update(shadow_01, reference.trainer.G, 0.1, reference.trainer.step)
    finally:
        torch.set_num_threads(threads)
    for folder, state in (("", reference.state()), ("ema0.1", bench.cpu_state(shadow_01))):
        saved = load_file(str(tmp_path / "bn-ema99" / folder / "g003.safetensors"))
        assert saved.keys() == state.keys()
        assert all(torch.equal(saved[k], state[k]) for k in saved), folder
    # a finished run resumed again trains nothing; other shadows than the saved ones are refused in one line
    again = run_worker(tmp_path, [2, 4, 6], "--resume")
    assert again.stdout.strip() == "bn-ema99: finished before, at step 6 (point 3)"
    refused = subprocess.run([sys.executable, str(BENCH), "--worker", "bn-ema99", "--match-steps",
                              str(tmp_path / "match3.jsonl"), "--ema-shadows", "0.5", "--resume", "--out", str(tmp_path)],
                             timeout=600, capture_output=True, text=True)
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines()[-1] == (
        "--resume: bn-ema99 was saved with --ema-shadows 0.99 0.1; give the same decays to go on")
    assert bench.RECIPES["bn-ema99"]["ema_decay"] == 0.99
    curves = bench.read_curves(tmp_path, ["bn-ema99"])
    assert list(curves) == ["bn-ema99", "bn-ema99/ema0.1", "bn-ema99/ema0.99"]
    points = len(curves["bn-ema99"])
    assert [r["steps"] for r in curves["bn-ema99"]] == [2, 4, 6]
    for name, rows in curves.items():  # the same evaluation points, each scored
        assert [r["steps"] for r in rows] == [r["steps"] for r in curves["bn-ema99"]], name
        assert all(r["-"]["fd"]["classifier"] > 0 for r in rows), name
    for point in range(1, points + 1):
        own = load_file(str(tmp_path / "bn-ema99" / f"g{point:03d}.safetensors"))
        shadow = {d: load_file(str(tmp_path / "bn-ema99" / f"ema{d}" / f"g{point:03d}.safetensors"))
                  for d in ("0.99", "0.1")}
        assert own.keys() == shadow["0.99"].keys()
        assert all(torch.equal(own[k], shadow["0.99"][k]) for k in own)
        assert not torch.equal(own["net.0.weight"], shadow["0.1"]["net.0.weight"])  # a shorter average differs
    # a shadow is sampled as its recipe exports (batch-norm statistics re-estimated), not as the tutorial is
    assert list(bench.generators("bn-ema99/ema0.1", shadow["0.1"])) == [""]
    table = bench.balance_table(curves, points)
    assert "bn-ema99/ema0.1" in table and "bn-ema99/ema0.99" in table
    # the report's pictures: a grid per shadow, and each beside the tutorial's (here the runner's first point
    # stands in for a tutorial run, which has the same generator)
    (tmp_path / "tutorial").mkdir()
    shutil.copy(tmp_path / "bn-ema99" / "g001.safetensors", tmp_path / "tutorial")
    shutil.copy(tmp_path / "bn-ema99" / "curve.jsonl", tmp_path / "tutorial")
    curves = bench.read_curves(tmp_path, ["tutorial", "bn-ema99"])
    bench.write_grids(tmp_path, curves, 1, bn_batches=2)
    bench.write_comparisons(tmp_path, curves, 1)
    for name in ("bn-ema99", "bn-ema99_ema0.1", "bn-ema99_ema0.99"):
        assert Image.open(tmp_path / f"compare_{name}.png").size[0] > 2 * 8 * 32, name


@pytest.mark.parametrize("decay", ["1", "1.5", "-0.1"])
def test_ema_shadows_refuse_a_decay_outside_0_to_1(decay: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        ttq().main(["--ema-shadows", "0.9", decay, "--report-only"])
    assert exit_.value.code == 2
    assert "each decay must be at least 0 and below 1" in capsys.readouterr().err
