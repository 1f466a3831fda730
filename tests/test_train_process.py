"""A training job in its own process (gandemo.train_process): the same run as in a thread, bit for bit;
stop, learning-rate requests and a dying child handled like the Train tab needs them."""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing import forkserver
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gandemo.errors import GandemoError, InvalidInputError
from gandemo.gan.train import TrainConfig, Trainer
from gandemo.train_process import TrainingProcess, use_process

pytestmark = pytest.mark.timeout(300)


def images(n: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 32, 32), generator=g, dtype=torch.uint8)


def config(steps: int = 6, **changes: object) -> TrainConfig:
    base = {"image_size": 32, "channels": 1, "width_g": 8, "width_d": 8, "batch_size": 4, "steps": steps,
            "preview_every": 3, "checkpoint_every": 0, "checkpoint_minutes": 0, "seed": 3}
    return TrainConfig(**{**base, **changes})  # type: ignore[arg-type]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def proc_stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name: [state, parent pid, ...]."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def running(pid: int) -> bool:
    """Whether the process runs; a zombie (ended, not yet reaped by init) counts as ended."""
    try:
        return proc_stat(pid)[0] != "Z"
    except FileNotFoundError:
        return False


needs_forkserver = pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(),
                                      reason="no fork server on this platform: children are spawned")


def test_a_run_in_a_process_is_the_run_in_a_thread(tmp_path: Path) -> None:
    data = images()
    in_thread = Trainer(data, config(), tmp_path / "thread")
    kinds_thread = [e.kind for e in in_thread.train()]
    runner = TrainingProcess(Trainer(data, config(), tmp_path / "process"), resumed=False)
    events = list(runner.train())
    assert runner.process.pid != os.getpid() and runner.process.exitcode == 0
    assert [e.kind for e in events] == kinds_thread and events[-1].kind == "done"
    assert any(e.preview is not None for e in events), "no preview came back from the child"
    a, b = weights(tmp_path / "thread"), weights(tmp_path / "process")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "the child trained a different model"


def test_stop_saves_a_checkpoint_and_resuming_in_a_process_continues_exactly(tmp_path: Path) -> None:
    data = images()
    whole = Trainer(data, config(steps=10), tmp_path / "whole")
    list(whole.train())

    runner = TrainingProcess(Trainer(data, config(steps=10), tmp_path / "parts"), resumed=False)
    cancel = threading.Event()
    seen = []
    for event in runner.train(cancel):
        seen.append(event)
        if event.kind == "step" and event.step >= 4:
            cancel.set()
    assert seen[-1].kind == "stopped" and seen[-1].step < 10, [e.kind for e in seen]

    resumed = Trainer.resume(tmp_path / "parts", data, out_dir=tmp_path / "parts", steps=10)
    events = list(TrainingProcess(resumed, resumed=True).train())
    assert events[0].step == seen[-1].step and events[-1].kind == "done" and events[-1].step == 10
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "parts")
    assert all(torch.equal(a[k], b[k]) for k in a), "a stop and a resume in a process changed the result"


def test_learning_rate_requests_reach_the_child_and_bad_ones_are_refused(tmp_path: Path) -> None:
    runner = TrainingProcess(Trainer(images(), config(steps=400, preview_every=0), tmp_path / "run"), resumed=False)
    cancel = threading.Event()
    answers: list[tuple[float, float]] = []
    applied = []
    for event in runner.train(cancel):
        if event.kind == "step" and not answers:
            with pytest.raises(InvalidInputError, match="lr_g must be"):
                runner.set_learning_rates(lr_g=5.0)
            answers.append(runner.lower_learning_rates(0.5))
        if event.kind == "lr":
            applied.append(event)
            cancel.set()
    assert answers == [(1e-4, 1e-4)], answers
    assert applied, "the child never applied the change"
    state = (tmp_path / "run" / "training" / "state.json").read_text()
    assert "0.0001" in state or "1e-04" in state, "the change is not in the run's state"
    with pytest.raises(InvalidInputError, match="ended"):
        runner.lower_learning_rates(0.5)


def test_a_child_that_dies_is_reported_not_hung(tmp_path: Path) -> None:
    runner = TrainingProcess(Trainer(images(), config(steps=100_000, preview_every=0), tmp_path / "run"),
                             resumed=False)
    with pytest.raises(GandemoError, match="ended unexpectedly.*resume"):
        for event in runner.train():
            if event.kind == "step":
                runner.process.kill()


def test_where_jobs_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GANDEMO_TRAIN_PROCESS", raising=False)
    assert use_process(torch.device("cpu")) and not use_process(torch.device("cuda"))
    monkeypatch.setenv("GANDEMO_TRAIN_PROCESS", "0")
    assert not use_process(torch.device("cpu"))
    monkeypatch.setenv("GANDEMO_TRAIN_PROCESS", "1")
    assert use_process(torch.device("cuda"))


SERVER = """
import sys, torch
sys.path.insert(0, sys.argv[2])
from test_train_process import config, images
from gandemo.gan.train import Trainer
from gandemo.train_process import TrainingProcess
runner = TrainingProcess(Trainer(images(), config(steps=1_000_000, preview_every=0), sys.argv[1]), resumed=False)
events = runner.train()  # held: closing it would stop the child
for event in events:
    if event.kind == "step" and event.step >= 3:
        print(runner.process.pid, flush=True)
        break  # stop reading: the child fills the pipe while this process is killed
import time
time.sleep(600)
"""


def test_a_child_whose_server_is_killed_saves_and_ends(tmp_path: Path) -> None:
    """kill -9 of the server while the child's events fill the pipe: the child stops with a checkpoint, like
    Stop, and then ends. It used to wait forever for the events it had queued to drain: the child holds the
    queue's read end too, so its writes never fail, they block."""
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(run), str(Path(__file__).parent)],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    try:
        child = int(server.stdout.readline())  # type: ignore[union-attr]
        time.sleep(3)  # the child keeps training (and queueing events nobody reads)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and running(child):
        time.sleep(0.5)
    assert not running(child), "the child outlived its server"
    state = run / "training" / "state.json"
    assert state.is_file() and weights(run), "the child did not save a checkpoint when its server died"


@needs_forkserver
def test_jobs_are_forks_of_one_warmed_up_server(tmp_path: Path) -> None:
    """Children come from the fork server that warm_up() starts (it imports torch and the trainer once),
    not from this process and not each from a fresh interpreter."""
    from gandemo.train_process import process_context, warm_up

    assert process_context().get_start_method() == "forkserver"
    warm_up()
    server = forkserver._forkserver._forkserver_pid
    assert server and server != os.getpid()
    warm_up()  # again: the same server
    assert forkserver._forkserver._forkserver_pid == server
    parents = []
    for job in range(2):
        runner = TrainingProcess(Trainer(images(), config(steps=2), tmp_path / f"job{job}"), resumed=False)
        for event in runner.train():
            if event.kind == "step" and len(parents) == job:
                parents.append(int(proc_stat(runner.process.pid)[1]))
        assert runner.process.exitcode == 0
    assert parents == [server, server]


def test_app_py_imports_no_user_interface_at_its_top() -> None:
    """Every training child runs app.py again as its main module: its top must not import Gradio."""
    import subprocess
    import sys

    code = ("import runpy, sys; runpy.run_path('app.py', run_name='__mp_main__'); "
            "print(sorted(m for m in ('gradio', 'gandemo.ui') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout


@needs_forkserver
def test_an_upload_to_the_train_tab_starts_the_fork_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Train tab's upload handler gets the training process ready while the visitor chooses settings;
    an upload with no usable image, or a job that would not run in a process, starts nothing."""
    from test_train import write_pngs

    from gandemo.ui.train_tab import learn_from

    monkeypatch.setattr("gandemo.ui.common.OUTPUT_ROOT", tmp_path / "outputs")  # the contact sheet goes there

    def server_after(files: list[str], where: str = "auto") -> int | None:
        forkserver._forkserver._stop()  # none runs before the upload
        monkeypatch.setenv("GANDEMO_TRAIN_PROCESS", where)
        summary = learn_from(files, "32", "crop", "flatten")[0]
        assert summary, "the upload was not summed up"
        return forkserver._forkserver._forkserver_pid

    (tmp_path / "notes.png").write_text("not a picture")
    assert server_after([str(tmp_path / "notes.png")]) is None
    pictures = [str(p) for p in write_pngs(tmp_path / "shapes", 12)]
    assert server_after(pictures, where="0") is None  # jobs kept in a thread of the server
    assert server_after(pictures) is not None
    assert list((tmp_path / "outputs").rglob("sheet-32.png"))


WARM_UP = """
import sys, threading, time
from multiprocessing import forkserver
from gandemo.train_process import warm_up
assert "torch._dynamo" not in sys.modules
warm_up()
warm_up()  # again: no second import thread
warmers = [t for t in threading.enumerate() if t.name == "gandemo-warm-up"]
deadline = time.monotonic() + 120
while "torch._dynamo" not in sys.modules and time.monotonic() < deadline:
    time.sleep(0.1)
for t in warmers:
    t.join(120)
print(len(warmers), "torch._dynamo" in sys.modules, forkserver._forkserver._forkserver_pid is not None)
"""


def test_warm_up_imports_dynamo_in_the_background_once() -> None:
    """The server itself imports torch._dynamo when it builds a job's trainer (at the first optimiser):
    warm_up() does that early, in one background thread, beside starting the fork server."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", WARM_UP], cwd=Path(__file__).parents[1], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "True", "True"], done.stdout


@needs_forkserver
def test_a_job_outlives_its_fork_server_and_the_next_job_gets_a_new_one(tmp_path: Path) -> None:
    """kill -9 of the fork server while a job runs (an out-of-memory killer, an administrator). The job is not
    the fork server's: it goes on, a pause in its events is not taken for its end, and Stop still ends it with
    a checkpoint before train() returns. The next job starts from a new fork server. It used to be told "ended
    unexpectedly (exit code 255)" at its first pause of 1.2 s: its exit status came through the fork server."""
    import signal
    import time

    from gandemo.train_process import warm_up

    warm_up()
    server = forkserver._forkserver._forkserver_pid
    runner = TrainingProcess(Trainer(images(), config(steps=1_000_000, preview_every=0), tmp_path / "run"),
                             resumed=False)

    def kill_the_server_then_stall_the_job() -> None:
        os.kill(server, signal.SIGKILL)
        os.kill(runner.process.pid, signal.SIGSTOP)  # a slow step: a checkpoint on a slow disk, a big network
        time.sleep(2.5)
        os.kill(runner.process.pid, signal.SIGCONT)

    cancel = threading.Event()
    stall = threading.Thread(target=kill_the_server_then_stall_the_job)
    steps: list[int] = []
    kinds: list[str] = []
    for event in runner.train(cancel):
        kinds.append(event.kind)
        if event.kind != "step":
            continue
        steps.append(event.step)
        if len(steps) == 3:
            stall.start()
        if stall.ident is not None and not stall.is_alive() and len(steps) >= 40:
            cancel.set()
    stall.join()
    assert kinds[-1] == "stopped", "the job did not end by its Stop"
    assert not running(runner.process.pid), "train() returned while the child was still running"
    assert (tmp_path / "run" / "training" / "state.json").is_file() and weights(tmp_path / "run")

    again = TrainingProcess(Trainer(images(), config(steps=2), tmp_path / "next"), resumed=False)
    assert [e.kind for e in again.train()][-1] == "done"
    assert forkserver._forkserver._forkserver_pid not in (None, server)
