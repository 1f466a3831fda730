"""How long a Train tab job takes to start: seconds from Start to the child process's first training step.

    python benchmarks/train_start.py [--jobs 3] [--warm-s 15]
    python benchmarks/train_start.py --size 64 --width 64 --batch 32   # the Train tab's default network

On the CPU every job trains in a child process (gandemo.train_process). Each configuration below runs in
a fresh driver process (this file, run as a script like app.py is) that starts ``--jobs`` tiny training
jobs one after the other and times each from the moment Start is pressed (the server builds the Trainer and hands it to
``TrainingProcess``) to the child's first step event:

* spawn, main module importing Gradio: how jobs started before the fork server. A spawned child is a new
  interpreter: it imports torch, runs the main module again (app.py then imported the whole UI, Gradio
  included, at its top) and imports torch._dynamo when it makes its first optimiser.
* spawn, light main module: the same with app.py's UI import moved into main(), as it is now.
* fork server: what the app does now. The first job starts the fork server, which imports torch,
  torch._dynamo and the trainer once; every later job is a fork of it.
* fork server, warmed up: ``train_process.warm_up()`` called ``--warm-s`` seconds before the first job,
  as the Train tab does when images are uploaded (a visitor takes at least that long to pick settings).

The job is the same in every row: by default a tiny run (32 px, width 8, batch 4), so the times are
start-up costs; with the Train tab's default network (64 px, width 64, batch 32) they also hold building
that network (in the server and again in the child) and its first step. Printed: the seconds per job, and
the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if "--heavy-main" in sys.argv:  # as app.py's top was (a spawned child runs this module again, with these argv)
    import gandemo.ui  # noqa: F401 - the import is what is measured

RESULT = "TRAIN_START_RESULT "
CONFIGS = [  # (row label, --method, extra driver flags)
    ("spawn, main module imports Gradio (before)", "spawn", ["--heavy-main"]),
    ("spawn, light main module", "spawn", []),
    ("fork server (now)", "forkserver", []),
    ("fork server, warmed up at upload (now)", "forkserver", ["--warm"]),
]


def driver(args: argparse.Namespace) -> None:
    """One configuration in this process: ``args.jobs`` jobs, each timed to its first step."""
    import multiprocessing
    import tempfile

    import torch

    from gandemo import train_process
    from gandemo.gan.train import TrainConfig, Trainer

    if args.method == "spawn":
        train_process.process_context = lambda: multiprocessing.get_context("spawn")
    if args.warm:
        train_process.warm_up()
        time.sleep(args.warm_s)
    data = torch.randint(0, 256, (max(16, args.batch), 1, args.size, args.size), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    times = []
    with tempfile.TemporaryDirectory() as scratch:
        for job in range(args.jobs):
            config = TrainConfig(image_size=args.size, channels=1, width_g=args.width, width_d=args.width,
                                 batch_size=args.batch, steps=2,
                                 preview_every=0, checkpoint_every=0, checkpoint_minutes=0, seed=job)
            start = time.perf_counter()  # Start pressed: the server prepares the trainer, the child builds it again
            runner = train_process.TrainingProcess(Trainer(data, config, Path(scratch) / f"job{job}"), resumed=False)
            for event in runner.train():
                if event.kind == "step" and len(times) == job:
                    times.append(time.perf_counter() - start)
    print(RESULT + json.dumps(times), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=3, help="jobs per configuration, one after the other")
    p.add_argument("--warm-s", type=float, default=15.0, help="seconds between warm_up() and the first job")
    p.add_argument("--size", type=int, default=32, help="image size of the job (default 32)")
    p.add_argument("--width", type=int, default=8, help="network width of the job (default 8)")
    p.add_argument("--batch", type=int, default=4, help="batch size of the job (default 4)")
    p.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", choices=["spawn", "forkserver"], help=argparse.SUPPRESS)
    p.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--heavy-main", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.driver:
        driver(args)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import machine_facts, markdown_table

    print(machine_facts(), f"\njob: {args.size} px, width {args.width}, batch {args.batch}\n", flush=True)
    rows = []
    for label, method, extra in CONFIGS:
        done = subprocess.run([sys.executable, __file__, "--driver", "--method", method, "--jobs", str(args.jobs),
                               "--warm-s", str(args.warm_s), "--size", str(args.size),
                               "--width", str(args.width), "--batch", str(args.batch), *extra], capture_output=True, text=True, timeout=900)
        lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
        if done.returncode or not lines:
            raise SystemExit(f"{label}: the driver failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        times = json.loads(lines[-1][len(RESULT):])
        rows.append([label, *(f"{t:.2f}" for t in times)])
        print(f"{label}: {', '.join(f'{t:.2f}' for t in times)} s", flush=True)
    print()
    print(markdown_table(["start", *(f"job {i + 1} (s)" for i in range(args.jobs))], rows,
                         right=[False] + [True] * args.jobs))


if __name__ == "__main__":
    main()
