"""Latency of the Generate tab's /generate endpoint, beside what it is made of.

    python benchmarks/generate_latency.py [--nums 16 64] [--warmup 5] [--runs 30] [--threads N] [--model fashion-mnist]

Starts ``python app.py`` on a free port in a subprocess (CPU, bundled model, no network) and times,
for each grid size, interleaved round-robin so background load hits every case alike:

0. floor         ``/load_model`` for the cached model: one round trip through the queue, both clients
1. bare forward  ``gen(z)`` in this process, latents made beforehand (also with 1 torch thread)
2. core          ``sample_grid`` + upscaling + PNG encoding of the native and shown grids, in-process
3. handler       ``gandemo.ui.generate_tab.generate`` called directly (adds the file writes)
4. raw HTTP      ``/generate`` as the browser's JS client does it: POST /gradio_api/call/generate, read
                 the event stream, GET the shown grid
5. gradio_client ``/generate`` through gradio_client, with ``download_files=False`` and with the three
                 files downloaded (its default)

and prints a markdown table (p50, p95 and the p50 overhead over the bare forward). The goal from the
issue: p95 under 150 ms for 64 images and app overhead over the bare forward under 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from _proc import stop_process

REPO_ROOT = Path(__file__).resolve().parents[1]
GOAL_P95_MS = 150.0
GOAL_OVERHEAD_MS = 100.0
BARE = "bare forward (in-process)"


@dataclass
class Case:
    name: str
    num: int  # images per call (0: not a generate call)
    call: Callable[[], object]
    times_ms: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return float(np.percentile(self.times_ms, 50))

    @property
    def p95(self) -> float:
        return float(np.percentile(self.times_ms, 95))


def measure(cases: list[Case], warmup: int, runs: int, seed: int = 0) -> None:
    """Warm every case up, then time them round-robin in a shuffled order per round, so a change in
    background load (2 shared cores) hits all cases alike instead of whichever ran at the time."""
    for case in cases:
        for _ in range(warmup):
            case.call()
    rng = random.Random(seed)
    for _ in range(runs):
        for case in rng.sample(cases, len(cases)):
            start = time.perf_counter()
            case.call()
            case.times_ms.append((time.perf_counter() - start) * 1000)


# ---------------------------------------------------------------------------------- the app
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_app(workdir: Path, timeout: float = 90.0, threads: int | None = None) -> Iterator[str]:
    """``python app.py`` in a subprocess (``threads``: its torch intra-op threads, via OMP_NUM_THREADS);
    yields its URL, stops it afterwards."""
    port = free_port()
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    env.update({
        "GANDEMO_DEVICE": "cpu", "GANDEMO_OUTPUT_DIR": str(workdir / "outputs"),
        "GRADIO_TEMP_DIR": str(workdir / "gradio-cache"), "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p),
    })
    log_path = workdir / "app.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
                raise SystemExit(f"the app did not start (exit status {proc.poll()}):\n{tail}")
            try:
                with urllib.request.urlopen(f"{url}/gradio_api/info", timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        yield url
        if proc.poll() is not None:
            raise SystemExit(f"the app crashed during the benchmark; see {log_path}")
    finally:
        stop_process(proc)


# ------------------------------------------------------------------------------------ cases
def in_process_cases(model: str, nums: list[int], workdir: Path) -> list[Case]:
    os.environ.setdefault("GANDEMO_DEVICE", "cpu")
    os.environ["GANDEMO_OUTPUT_DIR"] = str(workdir / "handler-outputs")
    import torch

    from gandemo.explore import sample_grid
    from gandemo.gan.latent import latents_for_seeds
    from gandemo.generator import load_generator
    from gandemo.images import display_scale, png_bytes, upscale
    from gandemo.ui import generate_tab

    gen = load_generator(model, device="cpu")
    threads = torch.get_num_threads()

    def one_thread(z: torch.Tensor) -> object:
        # on a busy machine spare intra-op threads can cost more than they give
        torch.set_num_threads(1)
        try:
            return gen(z)
        finally:
            torch.set_num_threads(threads)

    def core(num: int) -> None:
        result = sample_grid(gen, 0, num)
        shown = upscale(result.grid, display_scale(result.grid.width, target=768))
        png_bytes(result.grid), png_bytes(shown)

    cases = []
    for num in nums:
        z = latents_for_seeds(list(range(num)), gen.latent_dim)
        cases.append(Case(BARE, num, partial(gen, z)))
        if threads > 1:
            cases.append(Case("bare forward, 1 torch thread (in-process)", num, partial(one_thread, z)))
        cases.append(Case("core: sample_grid + upscale + 2 PNGs (in-process)", num, partial(core, num)))
        cases.append(Case("UI handler generate_tab.generate (in-process)", num,
                          partial(generate_tab.generate, model, 0, num, 0)))
    return cases


class RawHttp:
    """The app's HTTP API without gradio_client, as the browser's JS client uses it: POST
    /gradio_api/call/<api>, read the result from the event stream, fetch what is shown."""

    def __init__(self, url: str) -> None:
        import httpx

        self.http = httpx.Client(base_url=url, timeout=60)

    def call(self, api: str, *data: object) -> list[Any]:
        event = self.http.post(f"/gradio_api/call/{api}", json={"data": list(data)})
        event.raise_for_status()
        with self.http.stream("GET", f"/gradio_api/call/{api}/{event.json()['event_id']}") as stream:
            lines = list(stream.iter_lines())
        if "event: complete" not in lines:
            raise RuntimeError(f"/{api} did not complete: {lines[-3:]}")
        return list(json.loads(lines[lines.index("event: complete") + 1].removeprefix("data:")))

    def generate_and_show(self, model: str, num: int) -> bytes:
        shown = self.call("generate", model, 0, num, 0)[0]
        return bytes(self.http.get(shown["url"]).content)


def http_cases(url: str, model: str, nums: list[int], workdir: Path) -> list[Case]:
    from gradio_client import Client

    with_files = Client(url, download_files=str(workdir / "downloads"), verbose=False)
    no_files = Client(url, download_files=False, verbose=False)
    raw = RawHttp(url)
    # the cheapest call the app has (a cache hit and a bit of Markdown): what any request costs
    cases = [Case("/load_model, model cached (round-trip floor), gradio_client", 0,
                  partial(no_files.predict, source=model, api_name="/load_model")),
             Case("/load_model, model cached (round-trip floor), raw HTTP", 0, partial(raw.call, "load_model", model))]
    for num in nums:
        cases.append(Case("/generate via raw HTTP + fetch of the shown grid (like a browser)", num,
                          partial(raw.generate_and_show, model, num)))
        for client, name in ((no_files, "/generate via gradio_client, no download"),
                             (with_files, "/generate via gradio_client, with downloads")):
            cases.append(Case(name, num, partial(client.predict, model=model, seed=0, num=num, truncation=0,
                                                 api_name="/generate")))
    return cases


def table(rows: list[Case]) -> str:
    bare = {r.num: r.p50 for r in rows if r.name == BARE}
    lines = ["| case | images | p50 ms | p95 ms | overhead over bare forward (p50) |", "|---|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: r.num):
        over = "-" if r.num not in bare or r.name == BARE else f"{r.p50 - bare[r.num]:+.1f} ms"
        lines.append(f"| {r.name} | {r.num or '-'} | {r.p50:.1f} | {r.p95:.1f} | {over} |")
    return "\n".join(lines)


def verdict(rows: list[Case]) -> str:
    bare = [r for r in rows if r.name == BARE and r.num == 64]
    http = [r for r in rows if r.name.startswith("/generate") and r.num == 64]
    if not http or not bare:
        return "(the goal is stated for 64 images)"
    lines = []
    for r in http:
        p95, over = r.p95, r.p50 - bare[0].p50
        ok = p95 < GOAL_P95_MS and over < GOAL_OVERHEAD_MS
        lines.append(f"Goal, 64 images, {r.name}: p95 {p95:.0f} ms (goal < {GOAL_P95_MS:.0f}), overhead {over:.0f} ms "
                     f"(goal < {GOAL_OVERHEAD_MS:.0f}): {'MET' if ok else 'MISSED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="fashion-mnist")
    p.add_argument("--nums", type=int, nargs="+", default=[16, 64])
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads in the app (OMP_NUM_THREADS) and here (default: torch's choice)")
    args = p.parse_args(argv)
    if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
        sys.path.insert(0, str(REPO_ROOT))

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    workdir = Path(tempfile.mkdtemp(prefix="gandemo-bench-"))
    load_before = os.getloadavg()[0]
    try:
        with running_app(workdir, threads=args.threads) as url:
            rows = http_cases(url, args.model, args.nums, workdir) + in_process_cases(args.model, args.nums, workdir)
            measure(rows, args.warmup, args.runs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"gandemo /generate latency: model {args.model}, CPU, {args.warmup} warm-up + {args.runs} timed calls "
          f"per case, interleaved; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads (also in the app), "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print(table(rows))
    print()
    print(verdict(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
