"""The app as strangers meet it (GANDEMO_MODE=shared: a Space, a --share link, a public host), driven
over real HTTP by gradio_client the way a curious visitor would: server paths, other visitors' runs
and outputs, oversized uploads. Every refusal is a human message, nothing lists a folder, and the
server keeps answering."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from app_harness import AppProcess, SharedApp, shared_app_fixture, single_thread_env
from factories import native_files, tiny_native, write_files
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from test_app_train import named, train_args
from test_train import write_pngs

pytestmark = [pytest.mark.app, pytest.mark.timeout(300)]

UPLOAD_LIMIT = 300_000
TRAIN_LIMIT_MINUTES = 0.75  # a training job's limit on this server (45 s)


def _shared_env(workdir: Path) -> dict[str, str]:
    return {**single_thread_env(workdir), "GANDEMO_MODE": "shared", "GANDEMO_MAX_FILE_SIZE": str(UPLOAD_LIMIT),
            "GANDEMO_TRAIN_MAX_MINUTES": str(TRAIN_LIMIT_MINUTES), "GANDEMO_LAB_RUN_MAX_SECONDS": "3",
            "GANDEMO_INTAKE_MAX_MEGAPIXELS": "20"}


shared_app = shared_app_fixture(SharedApp("gandemo-shared-app-", _shared_env), "The app in shared mode, 300 kB uploads.")


@pytest.fixture(scope="module")
def alice(shared_app: AppProcess, tmp_path_factory: pytest.TempPathFactory) -> Client:
    return shared_app.client(tmp_path_factory.mktemp("alice"))


@pytest.fixture(scope="module")
def mallory(shared_app: AppProcess, tmp_path_factory: pytest.TempPathFactory) -> Client:
    return shared_app.client(tmp_path_factory.mktemp("mallory"))


@pytest.fixture(scope="module")
def alices_run(alice: Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Alice trains 2 steps; returns her last outputs (run handle, job info with her owner key)."""
    images = write_pngs(tmp_path_factory.mktemp("alice-images"), 12)
    out = named(alice.predict(**train_args(images, steps=2, preview_every=10), api_name="/train"))
    assert out["status"].startswith("✅ Finished 2 steps."), out["status"]
    return out


def test_the_log_says_the_mode(shared_app: AppProcess) -> None:
    assert "access mode: shared" in shared_app.log_text(), shared_app.log_tail()


@pytest.mark.parametrize("source", ["/etc", "~", "/root", "/", ".", "runs", "../../etc/passwd", "x" * 5000,
                                    "timm/vgg19.tv_in1k@" + "../" * 12 + "etc/passwd"])
def test_server_paths_are_refused_without_listing(source: str, mallory: Client, shared_app: AppProcess) -> None:
    start = time.monotonic()
    with pytest.raises(AppError) as err:
        mallory.predict(source, api_name="/load_model")
    message = str(err.value)
    assert time.monotonic() - start < 5, "refusing a path must not walk it"
    assert "more" not in message and "passwd" not in message.replace(source, "") and "root:" not in message, message
    with pytest.raises(AppError):
        mallory.predict(source, 0, 4, 0, api_name="/generate")
    with pytest.raises(AppError):
        mallory.predict(source, 0, 4, 0, api_name="/grid_files")
    with pytest.raises(AppError):
        mallory.predict(source, 0, 1, 2, "slerp", "A → B", 12, 0, api_name="/interpolation_files")
    shared_app.assert_alive()
    assert shared_app.unexpected_errors() == [], shared_app.log_tail()


def test_runs_are_named_without_server_paths(alices_run: dict[str, Any], shared_app: AppProcess) -> None:
    handle = alices_run["run_dir"]
    assert handle.startswith("run:") and "/" not in handle and str(shared_app.workdir) not in handle, handle
    assert len(handle.split("-")[-1]) == 32, "a run's name must carry 128 random bits"
    info = alices_run["job_info"]
    assert set(info) == {"job_id", "token", "owner"}
    real = shared_app.workdir / "runs" / handle.removeprefix("run:")
    assert (real / "config.json").is_file()
    # the owner record lives outside the run folder: never zipped, never pushed
    assert (shared_app.workdir / "runs" / ".owners" / real.name).is_file()
    assert not any(".owner" in p.name for p in real.rglob("*"))


def test_the_owner_samples_resumes_and_a_stranger_cannot_take_over(
        alices_run: dict[str, Any], alice: Client, mallory: Client, shared_app: AppProcess,
        tmp_path: Path) -> None:
    handle, info = alices_run["run_dir"], alices_run["job_info"]
    _, description = alice.predict(handle, api_name="/load_model")
    assert "32" in description and str(shared_app.workdir) not in description, description
    shown, _ = alice.predict(handle, 0, 4, 0, api_name="/generate")
    assert len(alice.predict(handle, 0, 4, 0, api_name="/grid_files")) == 2
    real = shared_app.workdir / "runs" / handle.removeprefix("run:")
    with pytest.raises(AppError, match="not available on a shared server"):
        mallory.predict(str(real), 0, 4, 0, api_name="/generate")

    images = write_pngs(tmp_path / "mallory-images", 12)
    strangers = {"job_id": "x", "token": "y", "owner": uuid.uuid4().hex}
    with pytest.raises(AppError, match="not made in this browser"):
        mallory.predict(**train_args(images, steps=3, resume=handle, job_info=strangers), api_name="/train")
    with pytest.raises(AppError, match="not made in this browser"):
        mallory.predict(handle, "someone/stolen", "hf_fake", True, strangers, api_name="/push_to_hub")
    with pytest.raises(AppError, match="server paths are not available"):
        mallory.predict(str(real), "someone/stolen", "hf_fake", True, strangers, api_name="/push_to_hub")
    bundled = Path(__file__).resolve().parents[1] / "weights" / "fashion-mnist"
    with pytest.raises(AppError, match="server paths are not available"):
        mallory.predict(str(bundled), "someone/stolen", "hf_fake", True, strangers, api_name="/push_to_hub")

    # the owner resumes her own run (her browser's owner key came back with the job info)
    out = named(alice.predict(**train_args(images, steps=3, resume=handle, job_info=info), api_name="/train"))
    assert out["status"].startswith("✅ Finished 3 steps."), out["status"]
    assert out["run_dir"] == handle and out["job_info"]["owner"] == info["owner"]
    state = json.loads((real / "training" / "state.json").read_text())
    assert state["step"] == 3
    shared_app.assert_alive()
    assert shared_app.unexpected_errors() == [], shared_app.log_tail()


def test_a_stranger_cannot_hold_the_trainer_or_keep_runs_forever(
        mallory: Client, alice: Client, alices_run: dict[str, Any], shared_app: AppProcess, tmp_path: Path) -> None:
    """A million steps asked for: the job is stopped and saved at the server's limit, the trainer is free
    again, and runs nobody touched for two days are deleted when the next job starts."""
    import os

    runs = shared_app.workdir / "runs"
    stale = write_files(runs / ("run-stale-" + "7" * 32), native_files(tiny_native()))
    (runs / ".owners" / stale.name).write_text("someone")
    when = time.time() - 3 * 24 * 3600
    for path in [*stale.rglob("*"), stale]:
        os.utime(path, (when, when))
    images = write_pngs(tmp_path / "images", 12)
    start = time.monotonic()
    out = named(mallory.predict(**train_args(images, steps=1_000_000, preview_every=1000), api_name="/train"))
    took = time.monotonic() - start
    assert out["status"].startswith("⏹️") and f"at most {TRAIN_LIMIT_MINUTES:g} minutes" in out["status"], out["status"]
    assert TRAIN_LIMIT_MINUTES * 60 <= took < TRAIN_LIMIT_MINUTES * 60 + 60, took
    state = json.loads((runs / out["run_dir"].removeprefix("run:") / "training" / "state.json").read_text())
    assert 0 < state["step"] < 1_000_000, state["step"]  # saved where it stopped: resumable
    assert not stale.exists() and not (runs / ".owners" / stale.name).exists()
    assert (runs / alices_run["run_dir"].removeprefix("run:")).is_dir(), "a recent run stays"
    again = named(alice.predict(**train_args(images, steps=2, preview_every=10), api_name="/train"))
    assert again["status"].startswith("✅ Finished 2 steps."), again["status"]
    shared_app.assert_alive()
    assert shared_app.unexpected_errors() == [], shared_app.log_tail()


def test_a_lab_run_fits_the_servers_time_budget(mallory: Client, shared_app: AppProcess) -> None:
    """Hours of Lab training asked for in one call (the biggest networks, batch and D/G steps): refused
    after a few steps, with the number of steps that would fit; an ordinary run still goes through."""
    heavy = {"g_layers": 4, "g_units": 128, "d_layers": 4, "d_units": 128, "d_steps": 10, "g_steps": 10,
             "batch_size": 1024, "gp_weight": 10, "minibatch_discrimination": True}
    start = time.monotonic()
    with pytest.raises(AppError, match=r"at most \d+ steps fit in the 3 s a run may take on this server"):
        mallory.predict(**heavy, steps=20_000, api_name="/lab_run")
    assert time.monotonic() - start < 30
    _, metrics = mallory.predict(steps=50, api_name="/lab_run")
    assert metrics["steps"] == 50
    shared_app.assert_alive()
    assert shared_app.unexpected_errors() == [], shared_app.log_tail()


def test_small_files_that_decode_huge_stop_at_the_uploads_pixel_budget(mallory: Client, shared_app: AppProcess,
                                                                       tmp_path: Path) -> None:
    from PIL import Image

    bombs = []
    for i in range(8):  # 9 megapixels each in a few kB; the server decodes 20 megapixels per upload here
        bombs.append(tmp_path / f"bomb{i}.png")
        Image.new("1", (3000, 3000)).save(bombs[-1])
    start = time.monotonic()
    with pytest.raises(AppError, match="Only 2 of 8 files are usable images.*6 over the decoding budget"):
        mallory.predict(**train_args(bombs, steps=2), api_name="/train")
    assert time.monotonic() - start < 30
    shared_app.assert_alive()
    assert shared_app.unexpected_errors() == [], shared_app.log_tail()


def test_output_files_have_unguessable_names(alice: Client, shared_app: AppProcess) -> None:
    alice.predict("fashion-mnist", 3, 4, 0, api_name="/generate")
    alice.predict("fashion-mnist", 3, 4, 0, api_name="/grid_files")
    folders = [p for p in (shared_app.workdir / "outputs").iterdir() if p.name.startswith("samples-")]
    assert folders and all(len(p.name.split("-")[-1]) == 32 for p in folders), [p.name for p in folders]


def test_uploads_over_the_limit_are_refused(shared_app: AppProcess, tmp_path: Path) -> None:
    big = tmp_path / "big.zip"
    big.write_bytes(b"\0" * (UPLOAD_LIMIT + 10_000))
    boundary = "gandemo" + uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.zip\"\r\n"
            "Content-Type: application/zip\r\n\r\n").encode() + big.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{shared_app.url}/gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=30)
    assert err.value.code == 413, err.value.code
    # small files still go through
    small = tmp_path / "small.png"
    write_pngs(tmp_path / "small", 1)[0].rename(small)
    client = Client(shared_app.url, verbose=False, download_files=str(tmp_path / "dl"))
    try:
        with pytest.raises(AppError, match="Only 0 of 1|at least 8"):
            client.predict(**train_args([small], steps=2), api_name="/train")
    finally:
        client.close()
    shared_app.assert_alive()


def test_the_train_tab_says_the_upload_limit(alice: Client) -> None:
    config = alice.config
    labels = [c.get("props", {}).get("label") or "" for c in config["components"]]
    assert any("300 kB per file" in label for label in labels), [x for x in labels if "images" in x.lower()]


def test_uploaded_weights_load_by_their_key(alice: Client, mallory: Client, tmp_path: Path,
                                            shared_app: AppProcess) -> None:
    weights = write_files(tmp_path / "mine", native_files(tiny_native(image_size=32))) / "model.safetensors"
    picker, description = alice.predict(handle_file(str(weights)), api_name="/load_upload")
    assert "32" in description, description
    key = picker if isinstance(picker, str) else picker.get("value")
    assert isinstance(key, str) and key.startswith("upload:"), picker
    shown, _ = alice.predict(key, 0, 4, 0, api_name="/generate")
    assert Path(shown).is_file() and len(alice.predict(key, 0, 4, 0, api_name="/grid_files")) == 2
    with pytest.raises(AppError, match="upload it again"):
        mallory.predict("upload:" + "0" * 32 + "/model.safetensors", api_name="/load_model")
    shared_app.assert_alive()


def test_an_uploaded_file_that_is_not_weights_is_explained(mallory: Client, tmp_path: Path,
                                                           shared_app: AppProcess) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not weights")
    with pytest.raises(AppError, match=r"\.safetensors") as err:  # Gradio checks file_types first
        mallory.predict(handle_file(str(notes)), api_name="/load_upload")
    assert "upload:" not in str(err.value) and str(tmp_path) not in str(err.value), str(err.value)
    shared_app.assert_alive()
    assert shared_app.unexpected_errors() == [], shared_app.log_tail()
