"""JobManager: one job per device, event replay for late attachers, owner-only stop, crashes contained.

The jobs here are plain generators gated by events, so the tests are about the manager, not torch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gandemo.errors import GandemoError
from gandemo.jobs import BusyError, Job, JobManager

TIMEOUT = 10.0


def gated_work(gate: threading.Event, steps: int = 5, hold_at: int = 2) -> Any:
    """Yields ``steps`` numbered events, waiting for ``gate`` after ``hold_at`` of them; stops early on cancel."""

    def work(job: Job) -> Iterator[dict[str, int]]:
        for i in range(1, steps + 1):
            if i == hold_at + 1:
                gate.wait(TIMEOUT)
            if job.cancel.is_set():
                return
            yield {"step": i, "total": steps}

    return work


def describe(event: dict[str, int]) -> str:
    return f"step {event['step']} of {event['total']}"


def wait_until(condition: Any, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def wait_finished(job: Job) -> list[Any]:
    """Follow the job to its end; returns every event it recorded."""
    events: list[Any] = []
    deadline = time.monotonic() + TIMEOUT
    for batch in job.follow(timeout=0.05):
        events += batch
        assert time.monotonic() < deadline, "the job did not finish"
    assert job.finished
    return events


def test_one_job_per_device_and_busy_says_how_far_it_is() -> None:
    manager = JobManager()
    gate = threading.Event()
    job = manager.start("training", "cpu", gated_work(gate), describe=describe)
    try:
        wait_until(lambda: len(job.events) == 2, "two events")
        assert manager.running("cpu") is job and not job.finished and job.status == "running"
        with pytest.raises(BusyError) as info:
            manager.start("training", "cpu", gated_work(threading.Event()), describe=describe)
        text = str(info.value)
        assert "cpu is busy" in text and "step 2 of 5" in text and "try again" in text, text
        # another device is free
        other = manager.start("style", "cuda:1", gated_work(threading.Event(), steps=1, hold_at=5))
        assert wait_finished(other) == [{"step": 1, "total": 1}]
    finally:
        gate.set()
    assert [e["step"] for e in wait_finished(job)] == [1, 2, 3, 4, 5]
    assert job.status == "done" and job.progress == "step 5 of 5"


def test_a_finished_job_frees_the_device() -> None:
    manager = JobManager()
    gate = threading.Event()
    gate.set()
    first = manager.start("training", "cpu", gated_work(gate))
    wait_finished(first)
    second = manager.start("training", "cpu", gated_work(gate))
    assert second.id != first.id and second.token != first.token
    wait_finished(second)
    assert manager.get(first.id) is first and manager.get(second.id) is second
    assert manager.get(None) is None and manager.get("no-such-job") is None


def test_follow_replays_every_event_to_a_late_attacher() -> None:
    manager = JobManager()
    gate = threading.Event()
    job = manager.start("training", "cpu", gated_work(gate, steps=6, hold_at=3))
    wait_until(lambda: len(job.events) == 3, "three events")

    # a page that attaches while the job runs first gets everything so far, then the rest
    seen: list[Any] = []
    follower = job.follow(timeout=0.05)
    seen += next(follower)
    assert [e["step"] for e in seen] == [1, 2, 3]
    assert next(follower) == [], "while nothing happens, follow() hands out empty batches"
    gate.set()
    for batch in follower:
        seen += batch
    assert [e["step"] for e in seen] == [1, 2, 3, 4, 5, 6]

    # a page that attaches after the end gets the whole run, and the iterator ends
    replay = [e for batch in job.follow() for e in batch]
    assert replay == seen
    assert [e for batch in job.follow(start=4) for e in batch] == seen[4:]


def test_only_the_owner_token_stops_a_job() -> None:
    manager = JobManager()
    gate = threading.Event()
    job = manager.start("training", "cpu", gated_work(gate, steps=50, hold_at=1))
    try:
        wait_until(lambda: len(job.events) == 1, "the first event")
        assert job.stop(None) is False and job.stop("") is False and job.stop(job.token + "x") is False
        assert not job.cancel.is_set()
        assert job.stop(job.token) is True and job.cancel.is_set()
    finally:
        gate.set()
    events = wait_finished(job)
    assert job.status == "stopped" and len(events) < 50


def endless_work(job: Job) -> Iterator[dict[str, int]]:
    """A job that would never end by itself: an event every 10 ms until it is cancelled."""
    step = 0
    while not job.cancel.is_set():
        step += 1
        yield {"step": step, "total": 10**9}
        time.sleep(0.01)


def test_a_time_limit_stops_a_job_the_way_stop_does_and_frees_the_device() -> None:
    manager = JobManager()
    start = time.monotonic()
    job = manager.start("training", "cpu", endless_work, describe=describe, time_limit_s=0.4)
    events = wait_finished(job)
    took = time.monotonic() - start
    assert job.status == "stopped" and job.limit_reached, (job.status, job.limit_reached)
    assert 0.4 <= took < 5, took
    assert len(events) > 5  # it ran until the limit, not less
    assert manager.start("training", "cpu", gated_work(threading.Event(), steps=1), describe=describe) is not None


def test_a_job_that_ends_before_its_limit_or_is_stopped_is_not_marked() -> None:
    manager = JobManager()
    done = manager.start("training", "cpu", gated_work(threading.Event(), steps=3, hold_at=9), time_limit_s=5)
    wait_finished(done)
    assert done.status == "done" and not done.limit_reached
    stopped = manager.start("training", "cpu", endless_work, time_limit_s=5)
    wait_until(lambda: len(stopped.events) > 2, "a few events")
    assert stopped.stop(stopped.token)
    wait_finished(stopped)
    assert stopped.status == "stopped" and not stopped.limit_reached
    unlimited = manager.start("training", "cpu", endless_work)
    time.sleep(0.3)
    assert not unlimited.finished and unlimited.time_limit_s == 0
    unlimited.stop(unlimited.token)
    wait_finished(unlimited)


@pytest.mark.parametrize(("error", "expected"), [
    (RuntimeError("boom"), "RuntimeError: boom"),
    (GandemoError("The images could not be read."), "The images could not be read."),
])
def test_a_crashing_job_ends_in_error_and_the_manager_keeps_working(error: Exception, expected: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    manager = JobManager()

    def crash(job: Job) -> Iterator[dict[str, int]]:
        yield {"step": 1, "total": 3}
        raise error

    job = manager.start("training", "cpu", crash, describe=describe)
    events = wait_finished(job)
    assert events == [{"step": 1, "total": 3}]
    assert job.status == "error" and job.error == expected
    if isinstance(error, GandemoError):
        assert "Traceback" not in capsys.readouterr().err, "a human error needs no traceback"
    # the device is free again and the next job runs normally
    gate = threading.Event()
    gate.set()
    nxt = manager.start("training", "cpu", gated_work(gate, steps=2))
    assert [e["step"] for e in wait_finished(nxt)] == [1, 2] and nxt.status == "done"


def test_a_job_that_fails_before_its_first_event() -> None:
    manager = JobManager()

    def broken(job: Job) -> Iterator[Any]:
        raise ValueError("bad settings")
        yield  # pragma: no cover - makes this a generator

    job = manager.start("training", "cpu", broken)
    assert wait_finished(job) == []
    assert job.status == "error" and "bad settings" in job.error


def test_old_finished_jobs_are_forgotten_but_recent_ones_kept() -> None:
    manager = JobManager()
    gate = threading.Event()
    gate.set()
    jobs = []
    for _ in range(12):
        job = manager.start("training", "cpu", gated_work(gate, steps=1))
        wait_finished(job)
        jobs.append(job)
        time.sleep(0.002)  # distinct start times
    kept = [j for j in jobs if manager.get(j.id) is j]
    assert jobs[-1] in kept and jobs[-8] in kept and jobs[0] not in kept
    assert 8 <= len(kept) <= 9


def test_the_event_log_keeps_the_first_and_the_latest_events() -> None:
    job = Job(kind="training", device="cpu", max_events=5)
    for i in range(12):
        job.record(i)
    assert job.events == [0, 8, 9, 10, 11]


def test_a_follower_behind_the_trimmed_log_skips_to_what_is_kept_and_keeps_following() -> None:
    """Once the log is trimmed, followers count by absolute position: one that fell behind the dropped
    events gets what is still kept (not an empty batch), then every later event."""
    job = Job(kind="training", device="cpu", max_events=10)
    for i in range(5):
        job.record(i)
    follower = job.follow(timeout=0.01)
    assert next(follower) == [0, 1, 2, 3, 4]
    for i in range(5, 50):  # events 5..40 are dropped before the follower looks again
        job.record(i)
    assert job.events == [0, *range(41, 50)]
    assert next(follower) == list(range(41, 50))
    for i in range(50, 53):
        job.record(i)
        assert next(follower) == [i], "a new event must reach a follower after trimming"
    assert next(follower) == []  # nothing new: an empty batch after the timeout
    job.finish("done")
    assert list(follower) == [[]] and job.finished
    # attaching from the start gets the first event and the kept ones; from any position, what is left
    assert [e for b in job.follow() for e in b] == [0, *range(44, 53)]
    assert [e for b in job.follow(start=3) for e in b] == list(range(44, 53))
    assert [e for b in job.follow(start=50) for e in b] == [50, 51, 52]
    assert [e for b in job.follow(start=53) for e in b] == []


def test_followers_of_a_long_job_get_its_last_event_and_end() -> None:
    """A producer records far more events than the log keeps: a follower attached from the start, one
    attached mid-run and one attached after the end all see the first event, the last one, and stop."""
    job = Job(kind="training", device="cpu", max_events=10)
    halfway = threading.Event()
    received: dict[str, list[Any]] = {}

    def produce() -> None:
        job.record("start")
        for i in range(1, 101):
            job.record(i)
            if i == 50:
                halfway.set()
            if i % 10 == 0:
                time.sleep(0.005)
        job.finish("done")

    def follow(name: str, wait_for: threading.Event | None = None) -> None:
        if wait_for is not None:
            wait_for.wait(TIMEOUT)
        events: list[Any] = []
        deadline = time.monotonic() + TIMEOUT
        for batch in job.follow(timeout=0.01):
            events += batch
            if time.monotonic() > deadline:
                break
        received[name] = events

    followers = [threading.Thread(target=follow, args=("from the start",)),
                 threading.Thread(target=follow, args=("mid-run", halfway))]
    for t in followers:
        t.start()
    producer = threading.Thread(target=produce)
    producer.start()
    for t in [producer, *followers]:
        t.join(TIMEOUT)
        assert not t.is_alive(), "a follower did not end"
    follow("after the end")
    for name, events in received.items():
        assert events[0] == "start", name
        steps = events[1:]
        assert steps and steps[-1] == 100, f"{name} missed the last event: {steps[-12:]}"
        assert steps == sorted(set(steps)), f"{name} got events twice or out of order"
    assert received["after the end"] == ["start", *range(92, 101)]
