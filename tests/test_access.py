"""Who may load what (gandemo.access) in the core: local vs shared mode, run ownership, uploads,
and a model cache that neither lists folders, blocks on slow loads, nor leaks a lock per failure."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest
from factories import native_files, tiny_native, write_files

from gandemo import access
from gandemo import generator as generator_module
from gandemo.access import AccessError
from gandemo.errors import GandemoError, SourceError, UnsupportedCheckpointError
from gandemo.generator import GeneratorCache
from gandemo.hub import MAX_FOLDER_ENTRIES, resolve


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Shared mode with an empty runs folder of its own."""
    monkeypatch.setattr(access, "_mode", "shared")
    monkeypatch.setenv("GANDEMO_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(access, "_mode", "local")
    monkeypatch.setenv("GANDEMO_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def make_run(runs: Path, name: str) -> Path:
    folder = write_files(runs / name, native_files(tiny_native()))
    (folder / "training").mkdir()
    (folder / "training" / "state.json").write_text("{}")
    return folder


@pytest.mark.parametrize(("requested", "host", "share", "space", "expected"), [
    ("auto", "127.0.0.1", False, False, "local"),
    ("auto", "localhost", False, False, "local"),
    ("auto", "::1", False, False, "local"),
    ("auto", "0.0.0.0", False, False, "shared"),
    ("auto", "192.168.1.5", False, False, "shared"),
    ("auto", "127.0.0.1", True, False, "shared"),
    ("auto", "127.0.0.1", False, True, "shared"),
    ("local", "0.0.0.0", False, False, "local"),
    ("shared", "127.0.0.1", False, False, "shared"),
])
def test_mode_follows_how_the_app_is_launched(requested: str, host: str, share: bool, space: bool, expected: str) -> None:
    assert access.mode_for_launch(requested, host, share, space) == expected


def test_unknown_mode_in_the_environment_means_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access, "_mode", None)
    monkeypatch.setenv("GANDEMO_MODE", "loca")  # a typo must not open the server up
    assert access.current_mode() == "shared"
    monkeypatch.setenv("GANDEMO_MODE", "local")
    assert access.current_mode() == "local"


@pytest.mark.parametrize("source", ["/etc", "~", "/root", "../weights", "./x.pth", "a" * 5000, "C:\\x"])
def test_shared_mode_refuses_server_paths_without_touching_them(shared: Path, source: str) -> None:
    with pytest.raises(AccessError, match="not available on a shared server") as err:
        access.model_source(source)
    assert "passwd" not in str(err.value) and "and 1" not in str(err.value)


def test_shared_mode_treats_repo_like_paths_as_repo_ids(shared: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # "runs/<name>" is a valid repo id shape: it must go to the Hub, never to the local folder
    make_run(shared, "victim")
    monkeypatch.chdir(tmp_path)
    source, allow_local = access.model_source("runs/victim")
    assert (source, allow_local) == ("runs/victim", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(GandemoError) as err:
        resolve(source, allow_local=False)
    assert "local:" not in str(err.value)


def test_local_mode_keeps_paths(local: Path, tmp_path: Path) -> None:
    folder = write_files(tmp_path / "m", native_files(tiny_native()))
    assert access.model_source(str(folder)) == (str(folder), True)


def test_runs_belong_to_the_browser_that_made_them(shared: Path) -> None:
    mine, theirs = make_run(shared, "run-a-" + "1" * 32), make_run(shared, "run-b-" + "2" * 32)
    me, them = access.new_owner_key(), access.new_owner_key()
    access.claim_run(mine, me)
    access.claim_run(theirs, them)
    assert access.visible_runs(me, [mine, theirs]) == [mine]
    assert access.visible_runs(None, [mine, theirs]) == []
    handle = access.run_handle(mine)
    assert handle == f"run:{mine.name}" and str(shared) not in handle
    assert access.visitor_run(handle, me, need_owner=True) == mine
    with pytest.raises(AccessError, match="not made in this browser"):
        access.visitor_run(access.run_handle(theirs), me, need_owner=True)
    with pytest.raises(AccessError, match="server paths are not available"):
        access.visitor_run(str(mine), me, need_owner=True)
    for bad in ("run:../x", "run:", f"run:{shared}", "run:.owners", 5, ["run:x"]):
        with pytest.raises(AccessError):
            access.visitor_run(bad, me, need_owner=True)  # type: ignore[arg-type]
    # sampling needs the run's unguessable name, not the owner (a student may share it on purpose)
    assert access.model_source(access.run_handle(theirs)) == (str(theirs), True)
    with pytest.raises(AccessError, match="no finished run"):
        access.model_source("run:run-c-" + "3" * 32)


def test_local_mode_lists_every_run(local: Path) -> None:
    runs = [make_run(local, "a"), make_run(local, "b")]
    assert access.visible_runs(None, runs) == runs
    assert access.run_handle(runs[0]) == str(runs[0])


def test_uploads_are_named_by_an_unguessable_key(shared: Path, tmp_path: Path) -> None:
    weights = tmp_path / "upload" / "g.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"x")
    handle = access.register_upload(weights)
    assert handle.startswith("upload:") and handle.endswith("/g.safetensors") and len(handle) > 40
    assert access.model_source(handle) == (str(weights), True)
    with pytest.raises(AccessError, match="upload it again"):
        access.model_source("upload:" + "0" * 32 + "/g.safetensors")
    with pytest.raises(AccessError):
        access.model_source("upload:../../etc/passwd")


@pytest.mark.parametrize(("text", "expected"), [("200MB", 200 * 10**6), ("1.5 GB", 1_500_000_000), ("500kB", 500_000),
                                                 ("4096", 4096), (10**6, 10**6)])
def test_upload_limit_parses(text: str | int, expected: int) -> None:
    assert access.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-5MB", "10", "1 TB"])
def test_upload_limit_rejects_nonsense(text: str) -> None:
    with pytest.raises(GandemoError):
        access.parse_size(text)


def test_a_folder_error_never_lists_its_files(local: Path, tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    for name in ("passwords.txt", "diary.md", "id_rsa"):
        (folder / name).write_text("x")
    with pytest.raises(UnsupportedCheckpointError) as err:
        resolve(str(folder))
    assert "passwords" not in str(err.value) and "id_rsa" not in str(err.value)
    assert "3 file(s)" in str(err.value)


def test_a_huge_folder_is_refused_quickly(local: Path, tmp_path: Path) -> None:
    folder = tmp_path / "home"
    for i in range(MAX_FOLDER_ENTRIES + 10):
        (folder / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (folder / f"d{i % 7}" / f"f{i}").write_text("")
    with pytest.raises(UnsupportedCheckpointError, match="too many files"):
        resolve(str(folder))


def test_a_very_long_path_is_a_clear_error(local: Path) -> None:
    with pytest.raises(SourceError, match="characters long"):
        resolve("a/" * 2500)
    with pytest.raises(SourceError):
        resolve(None)  # type: ignore[arg-type]


def test_failed_loads_leave_nothing_behind(local: Path) -> None:
    cache = GeneratorCache(capacity=2)
    for i in range(50):
        with pytest.raises(GandemoError):
            cache.get(f"/no/such/folder/{i}")
    assert cache.pending() == 0 and cache.keys() == []


def test_a_slow_load_times_out_for_the_caller_and_is_cached_later(local: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_files(tmp_path / "model", native_files(tiny_native()))
    release = threading.Event()
    real_load = generator_module.load_generator

    def slow_load(source: str, **kwargs: object):
        release.wait(10)
        return real_load(source, **kwargs)

    monkeypatch.setattr(generator_module, "load_generator", slow_load)
    cache = GeneratorCache(capacity=2, timeout_s=0.3)
    start = time.monotonic()
    with pytest.raises(SourceError, match="taking longer than"):
        cache.get(str(folder))
    assert time.monotonic() - start < 3
    release.set()
    deadline = time.monotonic() + 10
    while cache.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert str(folder) in cache  # finished in the background, ready for the next request
    assert cache.get(str(folder)).image_size == 32


def test_shared_cache_refuses_paths(shared: Path, tmp_path: Path) -> None:
    folder = write_files(tmp_path / "model", native_files(tiny_native()))
    cache = GeneratorCache()
    with pytest.raises(AccessError):
        cache.get(str(folder))
    assert cache.pending() == 0


def test_shared_messages_hide_server_paths(shared: Path, tmp_path: Path) -> None:
    run = make_run(shared, "run-x-" + "4" * 32)
    message = f"The run {run} is damaged: model.safetensors (the generator) is missing."
    hidden = access.redact_paths(message)
    assert str(shared) not in hidden and f"<runs>/{run.name}" in hidden
    outputs = tmp_path / "outputs"
    assert access.redact_paths(f"see {outputs}/x.png", (outputs,)) == "see <files>/x.png"


def test_an_unplanned_error_shows_no_detail_on_a_shared_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error's text can hold anything the server read (a cache path, a file's first line):
    a stranger sees its kind only; the server's log keeps the rest. Locally the detail helps."""
    from gandemo.ui.common import _translate

    error = OSError("[Errno 36] File name too long: '/srv/cache/snapshots/---\ntitle: secret'")
    monkeypatch.setattr(access, "_mode", "shared")
    shown = _translate("load_model", error).message
    assert "OSError" in shown and "/srv" not in shown and "secret" not in shown, shown
    monkeypatch.setattr(access, "_mode", "local")
    assert "/srv/cache" in _translate("load_model", error).message


def _age(folder: Path, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (when, when))


def _padded_run(runs: Path, name: str, mb: int, seconds_ago: float) -> Path:
    folder = make_run(runs, name)
    (folder / "training" / "optimizers.bin").write_bytes(b"\0" * (mb * 10**6))
    access.claim_run(folder, "owner-key-" + name)
    _age(folder, seconds_ago)
    return folder


def test_a_shared_server_deletes_untouched_runs_then_the_oldest_beyond_its_quota(
        shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANDEMO_RUNS_QUOTA", "10MB")
    hour = 3600
    stale = _padded_run(shared, "run-stale-" + "1" * 32, 1, 49 * hour)  # past the 48 h default
    oldest = _padded_run(shared, "run-oldest-" + "2" * 32, 4, 5 * hour)
    resumed = _padded_run(shared, "run-resumed-" + "3" * 32, 4, 4 * hour)  # older than the next, but kept
    middle = _padded_run(shared, "run-middle-" + "4" * 32, 4, 3 * hour)
    newest = _padded_run(shared, "run-newest-" + "5" * 32, 4, 1 * hour)
    assert access.runs_budget() == (48 * hour, 10 * 10**6)
    removed = access.prune_runs(keep=(resumed,))
    # the stale run goes for its age; then, oldest first, until the 16 MB of the rest fit in 10 MB
    assert removed == [stale.name, oldest.name, middle.name], removed
    assert resumed.is_dir() and newest.is_dir()
    assert not (shared / access.OWNERS_DIR / stale.name).exists(), "a deleted run's owner record goes too"
    assert (shared / access.OWNERS_DIR / newest.name).is_file()
    assert access.prune_runs(keep=(resumed,)) == []


def test_a_run_being_written_counts_as_touched(shared: Path) -> None:
    run = _padded_run(shared, "run-busy-" + "6" * 32, 1, 72 * 3600)
    (run / "training" / "state.json").write_text("{}")  # a checkpoint a minute ago: the run is in use
    assert access.prune_runs() == [] and run.is_dir()


def test_local_runs_are_kept_unless_a_budget_is_set(local: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = _padded_run(local, "my-run", 1, 365 * 24 * 3600)
    assert access.runs_budget() == (0, 0) and access.train_time_limit_s() == 0
    assert access.prune_runs() == [] and old.is_dir()
    monkeypatch.setenv("GANDEMO_RUNS_MAX_AGE_HOURS", "24")
    monkeypatch.setenv("GANDEMO_TRAIN_MAX_MINUTES", "90")
    assert access.train_time_limit_s() == 5400
    assert access.prune_runs() == ["my-run"]


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("GANDEMO_TRAIN_MAX_MINUTES", "half an hour", "must be a number"),
    ("GANDEMO_TRAIN_MAX_MINUTES", "-5", "0 (no limit) or a positive number"),
    ("GANDEMO_RUNS_MAX_AGE_HOURS", "nan", "0 (no limit) or a positive number"),
    ("GANDEMO_RUNS_QUOTA", "lots", "GANDEMO_RUNS_QUOTA looks like 200MB"),
    ("GANDEMO_OUTPUTS_QUOTA", "5 gigs", "GANDEMO_OUTPUTS_QUOTA looks like 200MB"),
    ("GANDEMO_LAB_RUN_MAX_SECONDS", "one minute", "must be a number"),
    ("GANDEMO_INTAKE_MAX_MEGAPIXELS", "-1", "0 (no limit) or a positive number"),
])
def test_a_mistyped_budget_is_one_sentence(shared: Path, monkeypatch: pytest.MonkeyPatch,
                                           name: str, value: str, expected: str) -> None:
    monkeypatch.setenv(name, value)
    reader = {"GANDEMO_TRAIN_MAX_MINUTES": access.train_time_limit_s, "GANDEMO_OUTPUTS_QUOTA": access.outputs_quota,
              "GANDEMO_LAB_RUN_MAX_SECONDS": access.lab_run_limit_s,
              "GANDEMO_INTAKE_MAX_MEGAPIXELS": access.intake_pixel_budget}.get(name, access.runs_budget)
    with pytest.raises(GandemoError, match=re.escape(expected)):
        reader()


def test_downloads_beyond_the_quota_go_oldest_first_but_not_one_being_sent(shared: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("GANDEMO_OUTPUTS_QUOTA", "3MB")
    folders = []
    for i, minutes_ago in enumerate((50, 40, 30, 1)):  # the last was written a minute ago
        folder = outputs / f"train-{i}"
        folder.mkdir(parents=True)
        (folder / "run.zip").write_bytes(b"\0" * 10**6)
        _age(folder, minutes_ago * 60)
        folders.append(folder)
    removed = access.prune_folders(outputs, 3600, access.outputs_quota(), spare_newer_than_s=120)
    assert removed == folders[:1] and all(f.is_dir() for f in folders[1:])
    _age(folders[1], 2 * 3600)  # past the hour
    assert access.prune_folders(outputs, 3600, access.outputs_quota(), spare_newer_than_s=120) == [folders[1]]
    monkeypatch.setenv("GANDEMO_OUTPUTS_QUOTA", "1MB")  # over quota, but the newest is still being sent
    assert access.prune_folders(outputs, 3600, access.outputs_quota(), spare_newer_than_s=120) == [folders[2]]
    assert folders[3].is_dir()


def test_an_upload_in_use_outlives_a_flood_and_a_forgotten_one_is_gone(tmp_path: Path) -> None:
    mine = write_files(tmp_path / "mine", native_files(tiny_native())) / "model.safetensors"
    handle = access.register_upload(mine)
    for i in range(access.MAX_UPLOADS * 2):  # another visitor's uploads, while mine is in use
        access.register_upload(tmp_path / f"junk{i}.safetensors")
        if i % 100 == 0:
            assert access.upload_path(handle) == mine
    assert access.upload_path(handle) == mine
    junk = access.register_upload(mine)
    access.forget_upload(junk)
    with pytest.raises(AccessError, match="upload it again"):
        access.upload_path(junk)


def test_local_messages_keep_paths(local: Path) -> None:
    assert access.redact_paths(f"{local}/run is damaged") == f"{local}/run is damaged"
