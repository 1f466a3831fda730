"""Lesson lab presets: does each scenario really show its problem, and does its cure really cure it?

    python benchmarks/lab_presets.py                  # 5 seeds, 60 s of CPU per run, 2 runs at a time
    python benchmarks/lab_presets.py --quick          # smoke run: 2 seeds, 5 s per run
    python benchmarks/lab_presets.py --seconds 30 --seeds 0 1 2 --presets mode-collapse

Every run is one process with one torch thread, trained for a fixed CPU-time budget on the ring of
8 Gaussians. A cure that works live (``Preset.cure_is_live``) is applied halfway through the budget,
as the lesson does it (e.g. "suddenly lower the learning rate"), and the "before" columns describe
the half before it; other cures start from step 0. Measured at the end, on 2000 fixed-noise samples:
modes covered (a mode counts with >= 20 samples within 3 sigma), the high-quality share, mean
D(G(z)), G's gradient norm (mean over the last 200 steps), the density distance (Jensen-Shannon
between 32x32 histograms) and an oscillation measure: the mean distance the generated points' centre
moves between checks 25 steps apart, over the last 1000 steps of the run (or of the half before a
live cure). Last, the time per ``render_frame`` at 480 px (one thread), with and without PNG encoding.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

WINDOW_CHECKS = 40  # 40 checks x 25 steps = the last 1000 steps
GRAD_WINDOW = 200


def _window_stats(history: list[dict[str, Any]], end: int) -> dict[str, float]:
    from gandemo.lab.metrics import oscillation

    checks = [r for r in history[:end] if "center_x" in r][-WINDOW_CHECKS:]
    grads = [r["grad_g_norm"] for r in history[max(0, end - GRAD_WINDOW):end]]
    return {
        "osc": oscillation([(r["center_x"], r["center_y"]) for r in checks]),
        "grad": statistics.fmean(grads) if grads else 0.0,
        "max_modes_late": max((r["modes_covered"] or 0) for r in checks) if checks else 0,
    }


def one_run(job: tuple[str, bool, int, float]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from gandemo.lab.lab import Lab
    from gandemo.lab.presets import PRESETS, preset_config

    name, cure, seed, seconds = job
    preset = PRESETS[name]
    live = cure and preset.cure_is_live and bool(preset.cure)
    lab = Lab(preset_config(name, cure=cure and not live).replace(seed=seed))
    start = time.process_time()
    first_7 = None
    before: dict[str, Any] | None = None
    while (elapsed := time.process_time() - start) < seconds:
        if live and before is None and elapsed >= seconds / 2:
            before = {**lab.metrics(), **_window_stats(lab.history, len(lab.history))}
            lab.update_config(**preset.cure)
        lab.run(25)
        covered = lab.history[-1].get("modes_covered")
        if first_7 is None and covered is not None and covered >= 7:
            first_7 = time.process_time() - start
    cpu = time.process_time() - start
    return {"preset": name, "cure": cure, "live": live, "seed": seed, "steps": lab.step, "cpu_s": cpu,
            "first_7": first_7, "end": {**lab.metrics(), **_window_stats(lab.history, len(lab.history))},
            "before": before}


def render_timing(frames: int = 30) -> tuple[float, float, float]:
    import torch

    torch.set_num_threads(1)
    from gandemo.images import png_bytes
    from gandemo.lab.lab import Lab, LabConfig
    from gandemo.lab.render import render_frame

    lab = Lab(LabConfig())
    lab.run(1000)
    render_frame(lab)  # warm-up: font loading, first-call allocations
    draw, encode = [], []
    for _ in range(frames):
        t0 = time.perf_counter()
        image = render_frame(lab)
        t1 = time.perf_counter()
        png_bytes(image)
        t2 = time.perf_counter()
        draw.append(t1 - t0)
        encode.append(t2 - t0)
    return statistics.median(draw) * 1000, min(draw) * 1000, statistics.median(encode) * 1000


def _fmt_range(values: list[float], digits: int = 1) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.{digits}f} ({min(values):g}-{max(values):g})" if len(values) > 1 else f"{mean:.{digits}f}"


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| preset | cure | seeds | steps | steps/s | modes covered: mean (min-max) | max modes, last 1000 steps | "
        "high quality | D(G(z)) | grad G | oscillation | density distance | CPU s to >= 7 modes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["preset"], r["cure"]), []).append(r)
    for (name, cure), runs in groups.items():
        rows = [("end", [r["end"] for r in runs])]
        if runs[0]["before"] is not None:
            rows.insert(0, ("before", [r["before"] for r in runs]))
        for phase, stats in rows:
            label = "no" if not cure else ("live, at half time: " + phase if runs[0]["live"] else "from start")
            reached = [r["first_7"] for r in runs if r["first_7"] is not None]
            lines.append(
                f"| {name} | {label} | {len(runs)} | {statistics.fmean(r['steps'] for r in runs):.0f} | "
                f"{statistics.fmean(r['steps'] / r['cpu_s'] for r in runs):.0f} | "
                f"{_fmt_range([s['modes_covered'] for s in stats])} | {_fmt_range([s['max_modes_late'] for s in stats])} | "
                f"{statistics.fmean(s['high_quality'] for s in stats):.2f} | "
                f"{statistics.fmean(s['d_fake'] for s in stats):.3f} | {statistics.fmean(s['grad'] for s in stats):.3g} | "
                f"{statistics.fmean(s['osc'] for s in stats):.3f} | "
                f"{statistics.fmean(s['density_distance'] for s in stats):.2f} | "
                + (f"{len(reached)}/{len(runs)} runs, median {statistics.median(reached):.1f}" if reached and phase == "end"
                   else ("-" if phase == "before" else f"0/{len(runs)}"))
                + " |"
            )
    return "\n".join(lines)


def main() -> None:
    from gandemo.lab.presets import PRESETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="CPU seconds per run (default 60)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--workers", type=int, default=2, help="runs in parallel (default 2, one thread each)")
    parser.add_argument("--quick", action="store_true", help="smoke run: seeds 0 1, 5 s per run")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.seeds = 5.0, [0, 1]
    jobs = [(name, cure, seed, args.seconds) for name in args.presets
            for cure in ((False, True) if PRESETS[name].cure else (False,)) for seed in args.seeds]
    from benchmarks._common import cpu_model

    print(f"# {datetime.date.today()} | {cpu_model()} | float32 | torch threads 1 per run, {args.workers} runs at a time "
          f"| {args.seconds:g} CPU s per run | seeds {args.seeds}", flush=True)
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = []
        for r in pool.imap(one_run, jobs):
            results.append(r)
            e = r["end"]
            print(f"  {r['preset']:20s} cure={r['cure']!s:5s} seed {r['seed']} steps {r['steps']:6d} "
                  f"modes {e['modes_covered']} hq {e['high_quality']:.2f} D(G(z)) {e['d_fake']:.3f} "
                  f"grad {e['grad']:.3g} osc {e['osc']:.3f}", flush=True)
    print()
    print(table(results))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        draw_ms, best_ms, png_ms = pool.apply(render_timing)
    print(f"\nrender_frame 480 px (view + plots, 780x480): median {draw_ms:.1f} ms, fastest {best_ms:.1f} ms; "
          f"median with PNG encoding {png_ms:.1f} ms")


if __name__ == "__main__":
    main()
