"""A class on one link: many students clicking Generate at once while a training job runs (issue 8 §2).

    python benchmarks/classroom_load.py [--repo PATH] [--clients 30] [--generate-calls 5] [--train-size 32]
                                        [--no-train] [--quick] [--json]

Runs the real app (``python app.py --host 127.0.0.1 --port N`` from ``--repo``, default this checkout,
in a subprocess with its own temporary output, runs and Gradio cache folders, on the CPU) and talks to
it only over HTTP, with real gradio_client clients:

1. start the app and wait until it answers;
2. start a training job through ``/train`` (``--train-size`` px, width 32, batch 32, on 64 Fashion-MNIST
   images, or coloured shapes when the data set is not installed; steps enough to outlast the run) and
   read its speed from the streamed status line ("**Step N / M** · X images/s ..."): first unloaded for
   ``--unloaded-s`` seconds, then during the load phase;
3. one client calls ``/generate`` a few times alone (the single-visitor latency with training running);
4. page loads: ``--clients`` threads at once each ``GET /``, create their own gradio_client Client
   (which fetches the app's config and API info) and send the page's load events in that client's
   session, as a browser does once the page is up (``--no-page-events``: without them); all timed;
5. load phase: after a barrier, every client calls ``/generate`` ``--generate-calls`` times (model
   fashion-mnist, 16 images, truncation 0; the first with seed 0, the default a class clicks, then random
   seeds) and ``/interpolate`` once (seed 0 to a random seed, 24 frames, slerp, "A → B", 12 fps);
6. stop the training job with ``/stop_training`` and the app.

The clients run in this process at nice 19 (``--clients-nice``): in a class they are the students'
computers, and here gradio_client's threads (two per call, each polling every 50 ms) would otherwise take
about three times the server's CPU per call from the 2 cores the app and its training job share. The
clients also share their TLS contexts (``--no-client-tls-cache``: not): gradio_client builds a new one,
parsing the CA bundle, for each of its three requests per call, which was 76% of its CPU. The CPU rows
count each process's total (threads that ended included) and the machine's.

Every call's latency and exception is recorded (a failed call is counted, never fatal) and a markdown
table is printed, with the goal from the issue: 0 errors, ``/generate`` p95 < 1.5 s, and the training
job keeping at least half its unloaded speed. The CPU time the app's threads and this process (the
clients) spent during the load phase is shown too: on a small machine the clients compete with the app.

To measure an older commit: ``git worktree add /tmp/before <commit>`` and ``--repo /tmp/before``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _proc import cpu_model, stop_process

THIS_REPO = Path(__file__).resolve().parents[1]
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
MODEL = "fashion-mnist"
GOAL_GENERATE_P95_S = 1.5
GOAL_TRAIN_KEEP = 0.5
STARTUP_TIMEOUT_S = 120.0
STATUS_RE = re.compile(r"\*\*Step (\d+) / (\d+)\*\*(?:\s*·\s*([\d.]+) images/s)?")
LOOSE_STEP_RE = re.compile(r"Step\D{0,8}(\d+)\s*/\s*(\d+)", re.IGNORECASE)


# ------------------------------------------------------------------------------------------ the app
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_env(repo: Path, workdir: Path, mode: str | None) -> dict[str, str]:
    """The app's environment: this one plus CPU only, no analytics or telemetry, no Hub (everything used
    is bundled), its folders in ``workdir``, and ``repo`` first on the import path."""
    env = dict(os.environ)
    env.update({
        "GANDEMO_DEVICE": "cpu",
        "GANDEMO_OUTPUT_DIR": str(workdir / "outputs"),
        "GANDEMO_RUNS_DIR": str(workdir / "runs"),
        "GRADIO_TEMP_DIR": str(workdir / "gradio-cache"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH", "")) if p),
    })
    for name in ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "SPACE_ID"):
        env.pop(name, None)
    if mode:
        env["GANDEMO_MODE"] = mode
    return env


@dataclass
class App:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def running_app(repo: Path, workdir: Path, env: dict[str, str]) -> Iterator[App]:
    """``python app.py`` from ``repo`` on a free port; yields once it answers; always stops it."""
    port = free_port()
    log_path = workdir / "app.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
    app = App(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the app exited with status {proc.returncode} during startup:\n{app.log_tail()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the app did not answer within {STARTUP_TIMEOUT_S:.0f} s:\n{app.log_tail()}")
            try:
                with urllib.request.urlopen(f"{app.url}/gradio_api/info", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        yield app
    finally:
        stop_process(proc)


def app_facts(repo: Path, env: dict[str, str]) -> dict[str, Any]:
    """Where the app's code comes from and the torch thread count it will use (asked in a subprocess with
    the app's environment, since app.py sets it at start; older commits may not)."""
    code = ("import json, torch, gandemo\n"
            "try:\n    from gandemo.device import configure_cpu_threads; n = configure_cpu_threads()\n"
            "except Exception:\n    n = torch.get_num_threads()\n"
            "print(json.dumps({'gandemo': gandemo.__file__, 'torch_threads': n, 'torch': torch.__version__}))")
    try:
        out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True,
                             timeout=120, check=True).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        return {"error": f"{type(e).__name__}: {e}"}


# ------------------------------------------------------------------------------------------ facts
def git_label(repo: Path) -> str:
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        return sha + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return str(repo)


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...; utime is [11], stime [12])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    """``pid`` and every process started from it (the app's training job runs in a child process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with suppress(OSError, ValueError, IndexError):
                children.setdefault(int(proc_stat(int(entry))[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def thread_sched(pid: int, children: bool = False) -> dict[int, tuple[float, float]]:
    """(seconds on a CPU, seconds runnable but waiting for a CPU) of each thread of process ``pid`` (and
    with ``children`` of the processes it started), from /proc/<pid>/task/<tid>/schedstat. The second is what other processes on a
    busy machine cost us."""
    out: dict[int, tuple[float, float]] = {}
    for proc in descendants(pid) if children else [pid]:
        with suppress(OSError):
            for task in os.listdir(f"/proc/{proc}/task"):
                with suppress(OSError, ValueError, IndexError):
                    ran, waited = Path(f"/proc/{proc}/task/{task}/schedstat").read_text().split()[:2]
                    out[int(task)] = (int(ran) / 1e9, int(waited) / 1e9)
    return out


CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process so far, its exited threads included (unlike schedstat)."""
    with suppress(OSError, ValueError, IndexError):
        fields = proc_stat(pid)
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICK
    return 0.0


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat (steal counts as busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    return (total - idle) / CLOCK_TICK, total / CLOCK_TICK


def cpu_snapshot(app_pid: int, train_pids: list[int]) -> dict[str, float]:
    """Process-level CPU seconds: the server, the training job's process(es), this process (the clients),
    and the machine (busy, total)."""
    busy, total = machine_cpu()
    train = sum(process_cpu(p) for p in train_pids)
    return {"server": process_cpu(app_pid), "training": train, "clients": sum(os.times()[:2]),
            "machine_busy": busy, "machine_total": total}


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    d = {k: after[k] - before[k] for k in before}
    d["other"] = d["machine_busy"] - d["server"] - d["training"] - d["clients"]
    return d


def sched_delta(before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]]) -> dict[int, tuple[float, float]]:
    return {tid: (r - before.get(tid, (0.0, 0.0))[0], w - before.get(tid, (0.0, 0.0))[1]) for tid, (r, w) in after.items()}


def sched_summary(delta: dict[int, tuple[float, float]], wall: float, train_tid: int | None) -> dict[str, Any]:
    """CPU seconds and run-queue waits of a process over ``wall`` seconds, the training thread apart."""
    train = delta.get(train_tid) if train_tid is not None else None
    out: dict[str, Any] = {
        "wall_s": wall,
        "ran_s": sum(r for r, _ in delta.values()),
        "runqueue_wait_s": sum(w for _, w in delta.values()),
        "threads": len(delta),
    }
    if train is not None:
        out["training_thread"] = {"ran_s": train[0], "runqueue_wait_s": train[1],
                                  "blocked_s": max(0.0, wall - train[0] - train[1])}
        out["other_threads_ran_s"] = out["ran_s"] - train[0]
    return out


# ------------------------------------------------------------------------------------------ training data
def training_images(folder: Path, count: int = 64) -> list[Path]:
    """``count`` small PNGs: Fashion-MNIST's first training images, or coloured shapes without it."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    if FASHION_MNIST.is_file():
        with gzip.open(FASHION_MNIST, "rb") as f:
            header = f.read(16)
            rows, cols = int.from_bytes(header[8:12], "big"), int.from_bytes(header[12:16], "big")
            data = np.frombuffer(f.read(count * rows * cols), dtype=np.uint8).reshape(count, rows, cols)
        for i, pixels in enumerate(data):
            paths.append(folder / f"fashion-{i:03d}.png")
            Image.fromarray(pixels, "L").save(paths[-1])
        return paths
    rng = random.Random(0)
    for i in range(count):
        img = Image.new("RGB", (32, 32), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(img)
        x0, y0 = rng.randrange(4, 14), rng.randrange(4, 14)
        box = (x0, y0, x0 + rng.randrange(10, 18), y0 + rng.randrange(10, 18))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if i % 2 else draw.rectangle)(box, fill=colour)
        paths.append(folder / f"shape-{i:03d}.png")
        img.save(paths[-1])
    return paths


# ------------------------------------------------------------------------------------------ API helpers
def endpoint_params(client: Any, api_name: str) -> list[dict[str, Any]]:
    api = client.view_api(return_format="dict", print_info=False)
    endpoint = api["named_endpoints"].get(api_name)
    if endpoint is None:
        raise RuntimeError(f"the app has no {api_name} endpoint")
    return list(endpoint["parameters"])


def call_kwargs(params: list[dict[str, Any]], wanted: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for an endpoint: ``wanted`` values for the parameters it has, its own defaults
    for the others (None where it has none): older commits may have other parameters."""
    kwargs = {}
    for p in params:
        name = p["parameter_name"]
        if name in wanted:
            kwargs[name] = wanted[name]
        elif p.get("parameter_has_default"):
            kwargs[name] = p.get("parameter_default")
        else:
            kwargs[name] = None
    return kwargs


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


# ------------------------------------------------------------------------------------------ training monitor
@dataclass
class TrainMonitor:
    """Follows a /train job's streamed outputs (polling, so it costs this process almost no CPU) and
    keeps (time, step) samples and the job info the stream returns."""

    job: Any
    samples: list[tuple[float, int, float | None]] = field(default_factory=list)  # (monotonic, step, images/s)
    job_info: Any = None
    last_status: str = ""
    error: str | None = None
    total_steps: int | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="train-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seen = 0
        while not self._stop.is_set():
            try:
                outputs = self.job.outputs()
                now = time.monotonic()
                if len(outputs) > seen:
                    seen = len(outputs)
                    self._take(outputs[-1], now)
                if self.job.done():
                    with suppress(Exception):
                        self.job.result(timeout=1)
                    break
            except Exception as e:  # noqa: BLE001 - the benchmark reports it instead
                self.error = f"{type(e).__name__}: {e}"
                break
            self._stop.wait(0.2)

    def _take(self, output: Any, now: float) -> None:
        values = list(output) if isinstance(output, (list, tuple)) else [output]
        for v in values:
            if isinstance(v, dict) and "job_id" in v:
                self.job_info = v
        status = next((v for v in values if isinstance(v, str) and "Step" in v), None)
        if status is None:
            return
        self.last_status = status
        m = STATUS_RE.search(status) or LOOSE_STEP_RE.search(status)
        if m:
            rate = float(m.group(3)) if m.re is STATUS_RE and m.group(3) else None
            self.total_steps = int(m.group(2))
            self.samples.append((now, int(m.group(1)), rate))

    def step_now(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def wait_for_step(self, step: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.step_now() >= step:
                return True
            if self.error is not None or self.job.done():
                return False
            time.sleep(0.2)
        return False

    def step_at(self, t: float) -> float | None:
        """The step count at time ``t``, interpolated between the samples around it (None outside them)."""
        for (ta, sa, _), (tb, sb, _) in zip(self.samples, self.samples[1:]):
            if ta <= t <= tb:
                return sa + (sb - sa) * (t - ta) / (tb - ta) if tb > ta else float(sb)
        return None

    def rate(self, t0: float, t1: float) -> dict[str, Any]:
        """Steps/s between ``t0`` and ``t1`` (clipped to the samples seen; a status line arrives at most every
        0.5 s and is polled every 0.2 s), with the trainer's own images/s at the end."""
        if len(self.samples) < 2:
            return {"steps_per_s": None, "steps": 0.0, "seconds": 0.0, "images_per_s_reported": None}
        t0, t1 = max(t0, self.samples[0][0]), min(t1, self.samples[-1][0])
        s0, s1 = self.step_at(t0), self.step_at(t1)
        if s0 is None or s1 is None or t1 - t0 < 1.0:
            return {"steps_per_s": None, "steps": 0.0, "seconds": 0.0, "images_per_s_reported": None}
        rate = next((r for t, _, r in reversed(self.samples) if t <= t1 + 0.3), None)
        return {"steps_per_s": (s1 - s0) / (t1 - t0), "steps": s1 - s0, "seconds": t1 - t0,
                "images_per_s_reported": rate}

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


# ------------------------------------------------------------------------------------------ the load
@dataclass
class Call:
    client: int
    endpoint: str
    seconds: float
    error: str | None = None


def timed_call(client: Any, index: int, api_name: str, kwargs: dict[str, Any], timeout: float) -> Call:
    start = time.perf_counter()
    try:
        job = client.submit(api_name=api_name, **kwargs)
        try:
            job.result(timeout=timeout)
        except TimeoutError:
            with suppress(Exception):
                job.cancel()
            raise
        return Call(index, api_name, time.perf_counter() - start)
    except Exception as e:  # noqa: BLE001 - a failed call is a result, not the end of the benchmark
        return Call(index, api_name, time.perf_counter() - start, f"{type(e).__name__}: {str(e)[:200]}")


def cache_client_tls_contexts() -> None:
    """Make gradio_client's many HTTP clients share TLS contexts (``--no-client-tls-cache`` to not).

    gradio_client opens a new httpx client for each request (the queue join, the event stream, each file
    download), and each new httpx client parses certifi's CA bundle into a new TLS context: measured here,
    76% of the clients' CPU and ~100 ms per call, to talk plain HTTP to 127.0.0.1. A browser does nothing
    of the kind. Sharing the contexts (same settings, same context) changes nothing that is sent."""
    import httpx._transports.default as transports

    plain = transports.create_ssl_context
    if getattr(plain, "cached", False):
        return
    made: dict[tuple[Any, ...], Any] = {}
    lock = threading.Lock()

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if not isinstance(verify, bool) or cert is not None:
            return plain(verify=verify, cert=cert, trust_env=trust_env)
        key = (verify, trust_env)
        with lock:
            if key not in made:
                made[key] = plain(verify=verify, cert=cert, trust_env=trust_env)
            return made[key]

    shared.cached = True  # type: ignore[attr-defined]
    transports.create_ssl_context = shared


def new_client(url: str, download: Path | bool, http_timeout: float) -> Any:
    """A gradio_client Client; ``http_timeout`` replaces its 20 s default for each HTTP request (a browser
    waits longer than that, and a slow answer is already counted in the latencies)."""
    from gradio_client import Client

    if isinstance(download, Path):
        download.mkdir(parents=True, exist_ok=True)
    return Client(url, download_files=str(download) if isinstance(download, Path) else False, verbose=False,
                  httpx_kwargs={"timeout": http_timeout}, analytics_enabled=False)


def page_load(url: str, index: int, download_dir: Path | bool, http_timeout: float,
              results: dict[str, list[Any]]) -> Any:
    """``GET /`` and a new gradio_client Client, both timed; returns the client (None if it failed)."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url}/", timeout=http_timeout) as resp:
            resp.read()
        results["get"].append(Call(index, "GET /", time.perf_counter() - start))
    except Exception as e:  # noqa: BLE001
        results["get"].append(Call(index, "GET /", time.perf_counter() - start, f"{type(e).__name__}: {e}"))
    start = time.perf_counter()
    try:
        client = new_client(url, download_dir, http_timeout)
        results["client"].append(Call(index, "Client()", time.perf_counter() - start))
    except Exception as e:  # noqa: BLE001
        results["client"].append(Call(index, "Client()", time.perf_counter() - start, f"{type(e).__name__}: {e}"))
        return None
    if results.get("events") is not None:
        start = time.perf_counter()
        try:
            page_events(url, client.session_hash, client.config, http_timeout)
            results["events"].append(Call(index, "load events", time.perf_counter() - start))
        except Exception as e:  # noqa: BLE001
            results["events"].append(Call(index, "load events", time.perf_counter() - start,
                                          f"{type(e).__name__}: {e}"))
    return client


def page_events(url: str, session_hash: str, config: dict[str, Any], http_timeout: float) -> None:
    """What a browser sends once the page is up: the app's page-load events (e.g. the Generate tab's model
    description, the Train tab's re-attach), in the client's session, so its later calls share it as a
    page's clicks do. Gradio sets up a visitor's session state on their first event; a gradio_client
    Client sends none until its first call."""
    import httpx

    values = {c["id"]: c.get("props", {}).get("value") for c in config.get("components", [])}
    loads = [d for d in config.get("dependencies", []) if any(t[1] == "load" for t in d.get("targets", []))]
    with httpx.Client(timeout=http_timeout) as http:
        queued = []
        for dep in loads:
            body = {"data": [values.get(i) for i in dep.get("inputs", [])], "fn_index": dep["id"],
                    "session_hash": session_hash, "event_data": None, "trigger_id": None}
            if dep.get("queue") is False:
                http.post(f"{url}/gradio_api/run/predict", json=body).raise_for_status()
            else:
                resp = http.post(f"{url}/gradio_api/queue/join", json=body)
                resp.raise_for_status()
                queued.append(resp.json()["event_id"])
        if not queued:
            return
        waiting = set(queued)
        with http.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session_hash}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    waiting.discard(message.get("event_id"))
                    if not message.get("success", True):
                        raise RuntimeError(f"a page-load event failed: {str(message.get('output'))[:200]}")
                if not waiting or message.get("msg") == "close_stream":
                    return


def student(index: int, url: str, args: argparse.Namespace, workdir: Path, barrier: threading.Barrier,
            gen_params: list[dict[str, Any]], interp_params: list[dict[str, Any]],
            results: dict[str, list[Any]], lock: threading.Lock) -> None:
    download: Path | bool = False if args.no_download else workdir / "downloads" / f"client-{index:02d}"
    client = page_load(url, index, download, args.http_timeout, results)
    rng = random.Random(1000 + index)
    calls: list[Call] = []
    with suppress(threading.BrokenBarrierError):  # another student could not start: go anyway, calls still count
        barrier.wait(timeout=args.call_timeout * 2)
    try:
        if client is None:
            calls += [Call(index, "/generate", 0.0, "no client")] * args.generate_calls
            calls.append(Call(index, "/interpolate", 0.0, "no client"))
            return
        for i in range(args.generate_calls):
            seed = 0 if i == 0 else rng.randrange(0, 2**31)
            kwargs = call_kwargs(gen_params, {"model": MODEL, "seed": seed, "num": 16, "truncation": 0})
            calls.append(timed_call(client, index, "/generate", kwargs, args.call_timeout))
        wanted = {"model": MODEL, "seed_a": 0, "seed_b": rng.randrange(1, 2**31), "frames": 24, "method": "slerp",
                  "mode": "A → B", "fps": 12, "truncation": 0}
        calls.append(timed_call(client, index, "/interpolate", call_kwargs(interp_params, wanted), args.call_timeout))
    finally:
        with lock:
            results["calls"].extend(calls)
        if client is not None:
            with suppress(Exception):
                client.close()


def start_profiler(path: str, pid: int) -> subprocess.Popen[bytes]:
    """``py-spy record`` of the app's process (not its children) for the load phase, raw collapsed stacks."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy on the PATH (pip install py-spy)")
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--nonblocking",
                             "--threads", "-o", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(proc: subprocess.Popen[bytes], path: Path, top: int = 25) -> list[str]:
    """Stop py-spy (it writes its file on SIGINT); the functions with the most samples, on or under them."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return ["py-spy did not stop"]
    if not path.is_file():
        return ["py-spy wrote nothing"]
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        for frame in {re.sub(r":\d+\)$", ")", f) for f in stack.split(";")[1:]}:
            inclusive[frame] = inclusive.get(frame, 0) + n
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])
    return [f"{n / total:.1%} {frame}" for frame, n in ranked[:top]] if total else ["no samples"]


def summarise_latency(calls: list[Call]) -> dict[str, Any]:
    ok = [c.seconds for c in calls if c.error is None]
    return {"n": len(calls), "errors": sum(c.error is not None for c in calls),
            "p50_s": percentile(ok, 50), "p95_s": percentile(ok, 95), "max_s": max(ok) if ok else None}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from gradio_client import handle_file

    repo = Path(args.repo).resolve()
    if not (repo / "app.py").is_file():
        raise SystemExit(f"no app.py in {repo}")
    workdir = Path(tempfile.mkdtemp(prefix="gandemo-classroom-"))
    env = app_env(repo, workdir, args.mode)
    load_before = os.getloadavg()
    result: dict[str, Any] = {
        "label": args.label or git_label(repo), "repo": str(repo), "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{cpu_model()} ({os.cpu_count()} cores)", "load_average_before": list(load_before),
        "clients": args.clients, "generate_calls_per_client": args.generate_calls, "train": not args.no_train,
        "train_size": args.train_size, "downloads": not args.no_download,
        "http_timeout_s": args.http_timeout, "call_timeout_s": args.call_timeout, "mode": args.mode or "app default",
        "clients_nice": args.clients_nice, "client_tls_cache": not args.no_client_tls_cache,
    }
    result.update({f"app_{k}": v for k, v in app_facts(repo, env).items()})
    train_client = None
    train_tid: int | None = None  # the app's training thread: the busiest one while only training ran
    monitor: TrainMonitor | None = None
    notes: list[str] = []
    try:
        t_start = time.monotonic()
        with running_app(repo, workdir, env) as app:
            result["startup_s"] = time.monotonic() - t_start
            if not args.no_client_tls_cache:
                cache_client_tls_contexts()
            if args.clients_nice:
                # the clients stand in for the class's own computers: from here on this thread, and every
                # thread it starts (the clients and gradio_client's), yields the CPU to the app and its job
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), args.clients_nice)
            main_client = new_client(app.url, False, args.http_timeout)
            gen_params = endpoint_params(main_client, "/generate")
            interp_params = endpoint_params(main_client, "/interpolate")
            result["app_log"] = str(app.log_path)

            # -- 2. a training job, and its unloaded speed
            if not args.no_train:
                images = training_images(workdir / "train-images")
                train_client = new_client(app.url, False, args.http_timeout)
                params = endpoint_params(train_client, "/train")
                wanted = {"files": [handle_file(str(p)) for p in images], "resolution": str(args.train_size),
                          "steps": 100_000, "unit": "steps", "batch_size": 32, "width": 32, "seed": 0,
                          "resume": "", "job_info": None}
                monitor = TrainMonitor(train_client.submit(api_name="/train", **call_kwargs(params, wanted)))
                monitor.start()
                if not monitor.wait_for_step(1, timeout=180):
                    notes.append(f"training did not start: {monitor.error or monitor.last_status or 'no status'}")
                    print(f"training did not start: {monitor.error}\n{app.log_tail()}", file=sys.stderr)
                else:
                    time.sleep(args.warmup_s)  # first steps (allocations, compilation of kernels) are slower
                    t0, sched_0, self_0 = time.monotonic(), thread_sched(app.proc.pid, children=True), thread_sched(os.getpid())
                    time.sleep(args.unloaded_s)
                    t1 = time.monotonic()
                    result["train_unloaded"] = monitor.rate(t0, t1)
                    unloaded = sched_delta(sched_0, thread_sched(app.proc.pid, children=True))
                    train_tid = max(unloaded, key=lambda tid: unloaded[tid][0], default=None)
                    result["sched_unloaded"] = {"app": sched_summary(unloaded, t1 - t0, train_tid),
                                                "clients": sched_summary(sched_delta(self_0, thread_sched(os.getpid())),
                                                                         t1 - t0, None)}

            # -- 3. one visitor alone (training running): warm-up, then timed calls
            alone: list[Call] = []
            for i in range(1 + args.generate_calls):
                kwargs = call_kwargs(gen_params, {"model": MODEL, "seed": i, "num": 16, "truncation": 0})
                call = timed_call(main_client, -1, "/generate", kwargs, args.call_timeout)
                if i > 0:
                    alone.append(call)
            result["generate_alone"] = summarise_latency(alone)

            # -- 4 + 5. page loads, then everyone clicks at once
            results: dict[str, Any] = {"get": [], "client": [], "calls": [],
                                       "events": None if args.no_page_events else []}
            lock = threading.Lock()
            barrier = threading.Barrier(args.clients + 1)
            threads = [threading.Thread(target=student, name=f"student-{i}", daemon=True,
                                        args=(i, app.url, args, workdir, barrier, gen_params, interp_params, results, lock))
                       for i in range(args.clients)]
            t_pages = time.monotonic()
            sched_app_0, sched_self_0 = thread_sched(app.proc.pid, children=True), thread_sched(os.getpid())
            train_pids = [p for p in descendants(app.proc.pid) if p != app.proc.pid]
            cpu_0 = cpu_snapshot(app.proc.pid, train_pids)
            for t in threads:
                t.start()
            try:
                barrier.wait(timeout=args.call_timeout * 2)
            except threading.BrokenBarrierError:
                notes.append("not every client was ready at the barrier")
            t_calls = time.monotonic()
            sched_app_1, sched_self_1 = thread_sched(app.proc.pid, children=True), thread_sched(os.getpid())
            cpu_1 = cpu_snapshot(app.proc.pid, train_pids)
            profiler = start_profiler(args.profile, app.proc.pid) if args.profile else None
            deadline = t_calls + args.call_timeout * (args.generate_calls + 1) + 60
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            t_end = time.monotonic()
            sched_app_2, sched_self_2 = thread_sched(app.proc.pid, children=True), thread_sched(os.getpid())
            cpu_2 = cpu_snapshot(app.proc.pid, train_pids)
            result["cpu_page_loads"] = cpu_delta(cpu_0, cpu_1) | {"wall_s": t_calls - t_pages}
            result["cpu_load"] = cpu_delta(cpu_1, cpu_2) | {"wall_s": t_end - t_calls}
            if profiler is not None:
                result["profile"] = stop_profiler(profiler, Path(args.profile))
            stuck = sum(t.is_alive() for t in threads)
            if stuck:
                notes.append(f"{stuck} client thread(s) still running at the deadline")
            with lock:
                calls = list(results["calls"])
            result["page_load_s"] = t_calls - t_pages
            result["load_phase_s"] = t_end - t_calls
            result["get_root"] = summarise_latency(results["get"])
            result["client_creation"] = summarise_latency(results["client"])
            result["page_events"] = summarise_latency(results["events"] or [])
            result["generate"] = summarise_latency([c for c in calls if c.endpoint == "/generate"])
            result["interpolate"] = summarise_latency([c for c in calls if c.endpoint == "/interpolate"])
            everything = calls + results["get"] + results["client"] + (results["events"] or [])
            result["calls"] = len(everything)
            result["errors"] = sum(c.error is not None for c in everything)
            result["error_samples"] = sorted({f"{c.endpoint}: {c.error}" for c in everything if c.error})[:10]
            if monitor is not None:
                result["train_during_page_loads"] = monitor.rate(t_pages, t_calls)
                result["train_during_load"] = monitor.rate(t_calls, t_end)

            # where the time went: CPU time and run-queue waits of the app's threads and of the clients
            result["sched_page_loads"] = {
                "app": sched_summary(sched_delta(sched_app_0, sched_app_1), t_calls - t_pages, train_tid),
                "clients": sched_summary(sched_delta(sched_self_0, sched_self_1), t_calls - t_pages, None)}
            result["sched_load"] = {
                "app": sched_summary(sched_delta(sched_app_1, sched_app_2), t_end - t_calls, train_tid),
                "clients": sched_summary(sched_delta(sched_self_1, sched_self_2), t_end - t_calls, None)}
            result["load_average_after_load"] = list(os.getloadavg())

            # -- 6. stop training, then the app
            if monitor is not None:
                stop_reply: Any = None
                if monitor.job_info is None:
                    notes.append("the /train stream returned no job info: training not stopped through /stop_training")
                else:
                    try:
                        stop_params = endpoint_params(train_client, "/stop_training")
                        kwargs = {stop_params[0]["parameter_name"]: monitor.job_info} if stop_params else {}
                        stop_reply = train_client.predict(api_name="/stop_training", **kwargs)
                    except Exception as e:  # noqa: BLE001
                        stop_reply = f"{type(e).__name__}: {e}"
                        notes.append(f"/stop_training failed: {stop_reply}")
                    with suppress(Exception):
                        monitor.job.result(timeout=60)
                result["stop_training_reply"] = stop_reply
                result["train_last_status"] = monitor.last_status.split("\n")[0]
                result["train_total_steps"] = monitor.total_steps
                if monitor.error:
                    notes.append(f"training stream: {monitor.error}")
            log = app.log_path.read_text(encoding="utf-8", errors="replace")
            result["app_log_unexpected_errors"] = log.count("unexpected error in")
            result["app_log_tracebacks"] = log.count("Traceback (most recent call last)")
            alive = app.proc.poll() is None
            if not alive:
                notes.append(f"the app died (exit status {app.proc.returncode}):\n{app.log_tail()}")
            for c in (train_client, main_client):
                if c is not None:
                    with suppress(Exception):
                        c.close()
    finally:
        if monitor is not None:
            monitor.stop()
        result["notes"] = notes
        if args.keep:
            result["workdir"] = str(workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            result.pop("app_log", None)
    return result


# ------------------------------------------------------------------------------------------ report
def fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} s"


def verdict(r: dict[str, Any]) -> tuple[bool, str]:
    gen_p95 = (r.get("generate") or {}).get("p95_s")
    unloaded = (r.get("train_unloaded") or {}).get("steps_per_s")
    loaded = (r.get("train_during_load") or {}).get("steps_per_s")
    ratio = loaded / unloaded if unloaded and loaded is not None else None
    checks = [("0 errors", r.get("errors") == 0),
              (f"/generate p95 < {GOAL_GENERATE_P95_S} s", gen_p95 is not None and gen_p95 < GOAL_GENERATE_P95_S)]
    if r.get("train"):
        checks.append((f"training keeps >= {GOAL_TRAIN_KEEP:.0%} of its speed",
                       ratio is not None and ratio >= GOAL_TRAIN_KEEP))
    met = all(ok for _, ok in checks)
    return met, "; ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks)


def table_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    def lat(key: str) -> str:
        s = r.get(key) or {}
        return f"{fmt_s(s.get('p50_s'))} / {fmt_s(s.get('p95_s'))} / {fmt_s(s.get('max_s'))}"

    unloaded = (r.get("train_unloaded") or {}).get("steps_per_s")
    loaded = (r.get("train_during_load") or {}).get("steps_per_s")
    pages = (r.get("train_during_page_loads") or {}).get("steps_per_s")
    ratio = f"{loaded / unloaded:.2f}x" if unloaded and loaded is not None else "-"
    def where(key: str) -> str:
        app, clients = (r.get(key) or {}).get("app") or {}, (r.get(key) or {}).get("clients") or {}
        wall = app.get("wall_s")
        if not wall:
            return "-"
        text = (f"app ran {app['ran_s'] / wall:.2f} cores, waited for a CPU {app['runqueue_wait_s'] / wall:.2f}; "
                f"clients ran {clients.get('ran_s', 0.0) / wall:.2f}")
        train = app.get("training_thread")
        if train:
            text += (f"; training thread: ran {train['ran_s'] / wall:.0%}, waited for a CPU "
                     f"{train['runqueue_wait_s'] / wall:.0%}, blocked (GIL, locks) {train['blocked_s'] / wall:.0%} "
                     "of the time")
        return text

    def cpu(key: str) -> str:
        c = r.get(key)
        if not c or not c.get("wall_s"):
            return "-"
        wall = c["wall_s"]
        return (f"machine busy {c['machine_busy'] / wall:.2f} of {c['machine_total'] / wall:.2f} cores: server "
                f"{c['server'] / wall:.2f}, training job {c['training'] / wall:.2f}, clients {c['clients'] / wall:.2f}, "
                f"other processes {max(0.0, c['other']) / wall:.2f}")

    def work() -> str:
        n = (r.get("generate") or {}).get("n", 0) + (r.get("interpolate") or {}).get("n", 0)
        c = r.get("cpu_load")
        if not c or not n:
            return "-"
        # process totals: threads that ended during the phase count too
        text = f"server {c['server']:.1f} CPU s for {n} calls ({c['server'] / n * 1000:.0f} ms per call)"
        if r.get("train"):
            steps = (r.get("train_during_load") or {}).get("steps") or 0
            text += f"; training job {c['training']:.1f} CPU s for {steps:.0f} steps"
        return text + f"; clients {c['clients']:.1f} CPU s ({c['clients'] / n * 1000:.0f} ms per call)"

    met, checks = verdict(r)
    gen = r.get("generate") or {}
    interp = r.get("interpolate") or {}
    return [
        ("app", f"{r['label']}"),
        ("clients", f"{r['clients']} × ({r['generate_calls_per_client']} /generate + 1 /interpolate + GET / + Client()); "
                    f"HTTP timeout {r['http_timeout_s']:.0f} s, downloads {'on' if r['downloads'] else 'off'}, "
                    f"clients at nice {r.get('clients_nice', 0)}"
                    f"{', sharing TLS contexts' if r.get('client_tls_cache') else ''}"),
        ("calls (all kinds)", str(r.get("calls", "-"))),
        ("errors (GET / / Client() / load events / /generate / /interpolate)",
         f"{r.get('errors', '-')} ({' / '.join(str((r.get(k) or {}).get('errors', '-')) for k in ('get_root', 'client_creation', 'page_events', 'generate', 'interpolate'))})"),
        ("/generate, one client alone" + (" (training running)" if r.get("train") else "") + " p50 / p95 / max",
         lat("generate_alone")),
        (f"/generate under load ({gen.get('n', 0)} calls) p50 / p95 / max", lat("generate")),
        (f"/interpolate under load ({interp.get('n', 0)} calls) p50 / p95 / max", lat("interpolate")),
        ("page load: GET / p50 / p95 / max", lat("get_root")),
        ("page load: gradio_client Client() p50 / p95 / max", lat("client_creation")),
        ("page load: the page's load events p50 / p95 / max", lat("page_events") if r.get("page_events", {}).get("n")
         else "not sent (--no-page-events)"),
        ("page-load phase / load phase wall time", f"{fmt_s(r.get('page_load_s'))} / {fmt_s(r.get('load_phase_s'))}"),
        ("training steps/s: unloaded / during page loads / during load",
         "-" if not r.get("train") else
         f"{fmt(unloaded)} / {fmt(pages)} / {fmt(loaded)}"),
        ("training speed kept under load", ratio),
        ("CPU work in the load phase (depends little on other load)", work()),
        ("CPU, page loads (process totals)", cpu("cpu_page_loads")),
        ("CPU, load phase (process totals)", cpu("cpu_load")),
        ("run-queue view, unloaded training (threads alive at both ends)", where("sched_unloaded")),
        ("run-queue view, page loads (threads alive at both ends)", where("sched_page_loads")),
        ("run-queue view, load phase (threads alive at both ends)", where("sched_load")),
        ("app log: unexpected errors / tracebacks",
         f"{r.get('app_log_unexpected_errors', '-')} / {r.get('app_log_tracebacks', '-')}"),
        ("machine", f"{r['machine']}, torch threads in the app: {r.get('app_torch_threads', '?')}"),
        ("load average before start / after the load phase (1/5/15 min)",
         " / ".join(", ".join(f"{x:.2f}" for x in r[k]) for k in ("load_average_before", "load_average_after_load")
                    if r.get(k))),
        ("date", r["date"]),
        ("goal (0 errors, /generate p95 < 1.5 s, training keeps >= 50%)", ("MET: " if met else "MISSED: ") + checks),
    ]


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown(r: dict[str, Any]) -> str:
    rows = table_rows(r)
    lines = ["| measure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    if r.get("error_samples"):
        lines.append("\nerrors seen: " + "; ".join(r["error_samples"]))
    if r.get("notes"):
        lines.append("\nnotes: " + "; ".join(r["notes"]))
    if r.get("profile"):
        lines.append("\nthe app's busiest functions in the load phase (py-spy, share of samples on or under each):")
        lines += [f"    {row}" for row in r["profile"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", default=str(THIS_REPO), help="the checkout whose app.py to run (default: this one)")
    p.add_argument("--clients", type=int, default=30)
    p.add_argument("--generate-calls", type=int, default=5, help="/generate calls per client")
    p.add_argument("--train-size", type=int, default=32, choices=[32, 64, 128], help="training resolution (px)")
    p.add_argument("--no-train", action="store_true", help="no training job during the load")
    p.add_argument("--quick", action="store_true", help="5 clients, 10 s unloaded training: a smoke run")
    p.add_argument("--json", action="store_true", help="also print the results as one JSON object")
    p.add_argument("--unloaded-s", type=float, default=20.0, help="seconds of unloaded training speed to measure")
    p.add_argument("--warmup-s", type=float, default=5.0, help="training seconds before the unloaded measurement")
    p.add_argument("--call-timeout", type=float, default=180.0, help="seconds before a call counts as failed")
    p.add_argument("--http-timeout", type=float, default=60.0,
                   help="seconds a client waits for one HTTP request (GET /, config, join the queue, a download) "
                        "before it fails; gradio_client's own default is 20")
    p.add_argument("--no-page-events", action="store_true",
                   help="page loads are GET / and Client() only, without the load events a browser sends (earlier runs)")
    p.add_argument("--no-download", action="store_true",
                   help="clients don't download result files (gradio_client downloads them by default)")
    p.add_argument("--mode", choices=["local", "shared"], default=None,
                   help="GANDEMO_MODE for the app (default: the app's own choice, local on 127.0.0.1)")
    p.add_argument("--label", default=None, help="name of this run in the table (default: the repo's commit)")
    p.add_argument("--clients-nice", type=int, default=19, choices=range(0, 20), metavar="0-19",
                   help="nice value of the clients (this process, once the app is up); default 19: a class's "
                        "browsers run on their own computers, and gradio_client's polling threads cost about "
                        "3x the server's CPU per call; 0 lets them compete with the app as equals")
    p.add_argument("--no-client-tls-cache", action="store_true",
                   help="let every gradio_client request parse the CA bundle again, as gradio_client does (by default "
                        "the clients share TLS contexts: that parsing was 76%% of their CPU)")
    p.add_argument("--profile", default=None, metavar="FILE",
                   help="record the app with py-spy during the load phase into FILE (raw stacks) and list the "
                        "busiest functions")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (app log, outputs)")
    args = p.parse_args(argv)
    if args.quick:
        args.clients = 5
        args.unloaded_s = min(args.unloaded_s, 10.0)
    if args.clients < 1 or args.generate_calls < 1:
        p.error("--clients and --generate-calls must be at least 1")
    result = run(args)
    print(markdown(result))
    if args.json:
        print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
