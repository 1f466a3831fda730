"""Training throughput on one process vs several under torchrun (gandemo.gan.distributed).

    python benchmarks/ddp_scaling.py                 # CPU: 1 process x T threads vs T processes x 1 thread
    python benchmarks/ddp_scaling.py --device cuda   # GPUs: 1, 2, 4, ... processes, one GPU each (NCCL)

Each configuration is a fresh run of the real Trainer (``Trainer.train_step``: DistributedDataParallel,
the all-reduced losses, the buffer sync, every rank's slice of the data) on the same synthetic images.
The CPU comparison is the honest one for a machine with T cores: one process may use all T cores
through torch's threads, so the multi-process rows get one thread each and the same total cores; the
global batch (images per step, over all processes) is the same in every CPU row. On GPUs each process
gets one GPU and the same per-process batch (a step of N processes is N times the images), the usual
way data parallelism is scaled.

Printed: images/s (wall clock), the speed-up over the first row, and CPU seconds per 1,000 images summed
over the processes (time.process_time; on a shared machine the wall clock also counts waiting for
other work, the CPU time less so). Rounds alternate the configurations and the median round is shown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RESULT = "DDP_SCALING_RESULT "


def worker(args: argparse.Namespace) -> None:
    """One configuration, in this process (and its torchrun siblings): time ``args.steps`` training steps."""
    import tempfile

    import torch

    from gandemo.gan import distributed
    from gandemo.gan.train import TrainConfig, Trainer

    torch.set_num_threads(args.threads)
    ranks = distributed.init(args.device)
    device = ranks.device or torch.device(args.device)
    torch.manual_seed(0)
    data = (torch.rand(512, 3, args.size, args.size) * 255).to(torch.uint8)
    config = TrainConfig(image_size=args.size, channels=3, width_g=args.width, width_d=args.width,
                         batch_size=args.batch, steps=args.warmup + args.steps, seed=0)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(data, config, out, device=device)
        for _ in range(args.warmup):
            trainer.train_step()

        def sync() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if ranks.active:
                torch.distributed.barrier()

        sync()
        cpu0, t0 = time.process_time(), time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step()
        sync()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    cpu_all = sum(ranks.mean([cpu])) * ranks.world_size  # summed over the processes
    wall = max(ranks.mean([wall]))  # the same on every rank after the barrier, up to noise
    if ranks.is_main:
        images = args.steps * args.batch * ranks.world_size
        print(RESULT + json.dumps({"images_per_s": images / wall, "cpu_s_per_1000": 1000 * cpu_all / images,
                                   "precision": str(trainer.amp_dtype).removeprefix("torch."),
                                   "backend": ranks.backend or "-"}), flush=True)
    distributed.teardown(finished=True)


def run(processes: int, threads: int, batch: int, args: argparse.Namespace) -> dict:
    worker_args = ["--worker", "--device", args.device, "--size", str(args.size), "--width", str(args.width),
                   "--batch", str(batch), "--threads", str(threads), "--steps", str(args.steps),
                   "--warmup", str(args.warmup)]
    script = str(Path(__file__).resolve())
    if processes == 1:
        cmd = [sys.executable, script, *worker_args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               script, *worker_args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "GANDEMO_DDP_CHECK"):
        env.pop(name, None)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    raise SystemExit(f"no result from {' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch", type=int, default=64,
                   help="CPU: images per step over all processes; CUDA: per process (default 64)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--processes", type=int, default=0, help="most processes (default: the cores, or the GPUs)")
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)  # the worker's
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    import torch
    from _common import machine_facts, markdown_table, other_busy_processes

    if args.device == "cuda":
        most = args.processes or torch.cuda.device_count()
        counts = [n for n in (1, 2, 4, 8, 16) if n <= most]
        configs = [(f"{n} process(es) x 1 GPU, batch {args.batch} each", n, 1, args.batch) for n in counts]
    else:
        cores = args.processes or os.cpu_count() or 1
        if args.batch % cores:
            raise SystemExit(f"--batch {args.batch} does not split over {cores} processes")
        configs = [(f"1 process x {cores} threads, batch {args.batch}", 1, cores, args.batch),
                   (f"1 process x 1 thread, batch {args.batch}", 1, 1, args.batch),
                   (f"{cores} processes x 1 thread, batch {args.batch // cores} each", cores, 1, args.batch // cores)]
    print(f"# DDP scaling, {args.device}, {args.size} px, width {args.width}, {args.steps} timed steps after "
          f"{args.warmup}, {args.rounds} round(s)")
    print(machine_facts())
    busy = other_busy_processes()
    print("other busy processes at the start: " + ("; ".join(busy) if busy else "none"))
    results: dict[str, list[dict]] = {name: [] for name, *_ in configs}
    for _ in range(args.rounds):
        for name, processes, threads, batch in configs:
            results[name].append(run(processes, threads, batch, args))
    rows = []
    base = None
    for name, *_ in configs:
        rounds = sorted(results[name], key=lambda r: r["images_per_s"])
        median = rounds[len(rounds) // 2]
        base = base or median["images_per_s"]
        spread = f"{rounds[0]['images_per_s']:.0f}-{rounds[-1]['images_per_s']:.0f}"
        cpu = statistics.median(r["cpu_s_per_1000"] for r in rounds)
        rows.append([name, median["backend"], median["precision"], f"{median['images_per_s']:.0f}", spread,
                     f"{median['images_per_s'] / base:.2f}x", f"{cpu:.1f}"])
    print(markdown_table(["configuration", "backend", "precision", "images/s", "range over rounds",
                          "vs first row", "CPU s / 1000 images"], rows, [False, False, False, True, True, True, True]))
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
