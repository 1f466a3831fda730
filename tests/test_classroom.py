"""What keeps a class of 30 on one link fast (issue 8 §2): identical requests are computed once, a
training job yields the CPU to visitors, and counts are whole numbers. Speed itself is measured in
benchmarks/classroom_load.py, not here."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from gandemo.errors import InvalidInputError
from gandemo.explore import check_seed
from gandemo.jobs import JobManager, lower_priority


@pytest.fixture
def handlers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - the generate_tab module
    from gandemo.ui import common, generate_tab

    monkeypatch.setattr(common, "OUTPUT_ROOT", tmp_path / "outputs")
    monkeypatch.setattr(generate_tab, "RESULTS", generate_tab.ResultCache())
    return generate_tab


def test_the_same_grid_is_computed_once(handlers, tmp_path: Path) -> None:
    first = handlers.generate("fashion-mnist", 0, 16, 0)
    second = handlers.generate("fashion-mnist", 0, 16, 0)
    assert first[0] == second[0] and first[2] == second[2]
    assert len(list((tmp_path / "outputs").iterdir())) == 1, "the second request wrote its picture again"
    files = handlers.grid_files("fashion-mnist", 0, 16, 0)
    assert files == handlers.grid_files("fashion-mnist", 0, 16, 0)
    assert len(list((tmp_path / "outputs").iterdir())) == 2, "the files to keep were written twice"
    other = handlers.generate("fashion-mnist", 1, 16, 0)
    assert other[0] != first[0]


def test_a_cached_result_whose_files_are_gone_is_computed_again(handlers, tmp_path: Path) -> None:
    first = handlers.generate("fashion-mnist", 5, 4, 0)
    files = handlers.grid_files("fashion-mnist", 5, 4, 0)
    for f in [first[0], *files]:
        Path(f).unlink()
    assert Path(handlers.generate("fashion-mnist", 5, 4, 0)[0]).is_file()
    assert all(Path(f).is_file() for f in handlers.grid_files("fashion-mnist", 5, 4, 0))


def test_interpolations_are_cached_too(handlers, tmp_path: Path) -> None:
    a = handlers.interpolate("fashion-mnist", 3, 4, 6, "slerp", handlers.MODES[0], 12, 0)
    b = handlers.interpolate("fashion-mnist", 3, 4, 6, "slerp", handlers.MODES[0], 12, 0)
    assert a == b
    c = handlers.interpolate("fashion-mnist", 3, 4, 6, "lerp", handlers.MODES[0], 12, 0)
    assert c[1] != a[1]


@pytest.mark.parametrize(("seed", "num"), [(1.5, 4), (0, 2.5)])
def test_counts_are_whole_numbers(handlers, seed: float, num: float) -> None:
    import gradio as gr

    with pytest.raises(gr.Error, match="whole number"):
        handlers.generate("fashion-mnist", seed, num, 0)


@pytest.mark.parametrize("fps", [float("nan"), float("inf"), "12"])
def test_fps_must_be_a_number(handlers, fps: object) -> None:
    import gradio as gr

    with pytest.raises(gr.Error, match="Frames per second"):
        handlers.interpolate("fashion-mnist", 3, 4, 6, "slerp", handlers.MODES[0], fps, 0)


@pytest.mark.parametrize("seed", [1.5, float("nan"), float("inf"), True, "x"])
def test_check_seed_refuses_what_is_not_a_whole_number(seed: object) -> None:
    with pytest.raises(InvalidInputError):
        check_seed(seed)  # type: ignore[arg-type]
    assert check_seed(7.0) == 7


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no per-thread priorities on this OS")
def test_a_training_job_runs_at_a_lower_priority() -> None:
    seen: list[int] = []
    manager = JobManager()

    def work(job):  # noqa: ANN001, ANN202
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        yield "done"

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    job = manager.start("training", "cpu", work, nice=5)
    for _ in job.follow():
        pass
    assert seen == [min(19, before + 5)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before, "only the job's thread changes"
    assert lower_priority(0) is False
