"""The Train tab over real HTTP: gradio_client drives ``/train`` (streamed), ``/stop_training``,
then ``/load_model`` + ``/generate`` on the run folder it wrote.

The app here is its own subprocess (tests/app_harness.py ``running_app``) with GANDEMO_RUNS_DIR in
a temporary folder, so runs never land in the repository. ``train_app`` is shared with
tests/test_browser_train.py (reference-counted like the harness's shared app).
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from app_harness import AppProcess, SharedApp, shared_app_fixture, single_thread_env
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from test_train import write_pngs

pytestmark = [pytest.mark.app, pytest.mark.timeout(300)]

STREAM_TIMEOUT_S = 120.0


def _train_env(workdir: Path) -> dict[str, str]:
    return {**single_thread_env(workdir), "GANDEMO_RUNS_DIR": str(workdir / "runs")}


train_app = shared_app_fixture(SharedApp("gandemo-train-app-", _train_env),
                               "``python app.py`` with GANDEMO_RUNS_DIR=<its workdir>/runs, shared by the training app tests.")


@pytest.fixture(scope="module")
def client(train_app: AppProcess, tmp_path_factory: pytest.TempPathFactory) -> Client:
    return train_app.client(tmp_path_factory.mktemp("train-client"))


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_pngs(tmp_path_factory.mktemp("train-images"), 12)


def train_args(files: list[Path], steps: int = 2000, **overrides: Any) -> dict[str, Any]:
    """Every /train input by name, tiny settings; job_info (a BrowserState) has no default over the API."""
    args: dict[str, Any] = dict(
        files=[handle_file(str(p)) for p in files], resolution="32", steps=steps, batch_size=8, lr_g=2e-4, lr_d=2e-4,
        beta1=0.5, beta2=0.999, width=16, seed=0, loss="bce", augment=["color", "translation", "cutout"],
        mirror=True, label_smoothing=0.9, spectral_norm=True, d_skip_threshold=0.05, ema_decay=0.999, r1_gamma=0,
        preview_every=10, fit="crop", alpha="keep", resume="", job_info=None,
    )
    args.update(overrides)
    return args


OUTPUT_NAMES = ("status", "preview", "losses", "probs", "health", "files", "run_dir", "job_info")


def named(outputs: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    assert len(outputs) == len(OUTPUT_NAMES), f"/train should stream {len(OUTPUT_NAMES)} outputs, got {outputs!r}"
    return dict(zip(OUTPUT_NAMES, outputs))


def test_train_stream_stop_and_sample_the_result(train_app: AppProcess, client: Client, images: list[Path]) -> None:
    job = client.submit(**train_args(images), api_name="/train")
    deadline = time.monotonic() + STREAM_TIMEOUT_S
    seen: list[dict[str, Any]] = []
    info: Any = None
    for outputs in job:
        out = named(outputs)
        seen.append(out)
        info = out["job_info"]
        if "**Step" in out["status"] and not out["status"].startswith("**Step 0 /") and out["preview"]:
            break  # progress and a first preview (every 10 steps here) streamed
        assert time.monotonic() < deadline, f"no progress within {STREAM_TIMEOUT_S} s: {seen[-1]['status']}"
    else:
        pytest.fail(f"/train ended before showing progress: {seen[-1] if seen else job.status()}\n{train_app.log_tail()}")

    # what the client sees of the BrowserState: the job's id and its owner's stop token
    assert isinstance(info, dict) and set(info) == {"job_id", "token", "owner"}, (
        f"/train's last output (the BrowserState job info) is {info!r}; stopping needs it")
    assert "/ 2000**" in seen[-1]["status"] and "<progress" in seen[-1]["status"]
    run_dir = Path(seen[-1]["run_dir"])
    assert run_dir.parent.name == "runs" and str(run_dir).startswith(str(train_app.workdir)), run_dir

    # a second run while this one trains is refused with a message that says why
    with pytest.raises(AppError, match="(?i)busy"):
        client.predict(**train_args(images), api_name="/train")

    # only the owner's token stops it
    refused = client.predict({"job_id": info["job_id"], "token": "not-the-token"}, api_name="/stop_training")
    assert "someone else" in refused, refused
    assert "Stopping" in client.predict(info, api_name="/stop_training")

    for outputs in job:
        seen.append(named(outputs))
        assert time.monotonic() < deadline, "the stream did not end after Stop"
    final = named(job.outputs()[-1])
    assert "Stopped at step" in final["status"], final["status"]
    stopped_at = int(final["status"].split("Stopped at step ")[1].split(";")[0])
    assert 0 < stopped_at < 2000
    assert final["job_info"] == info

    # the run folder is a resumable checkpoint at that step, offered as a .zip too
    state = json.loads((run_dir / "training" / "state.json").read_text())
    assert state["step"] == stopped_at and state["config"]["width_g"] == 16 and state["config"]["image_size"] == 32
    (zip_path,) = final["files"]
    assert Path(zip_path).suffix == ".zip"
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
    assert {f"{run_dir.name}/model.safetensors", f"{run_dir.name}/config.json",
            f"{run_dir.name}/training/state.json"} <= names, names
    previews = [o["preview"] for o in seen if o["preview"]]
    assert previews, "no preview image was streamed"
    with Image.open(previews[-1]) as preview:
        assert preview.width == preview.height >= 4 * 32
    assert any(o["losses"] and o["losses"].get("data") for o in seen), "no loss curve was streamed"

    assert "No training job" in client.predict(info, api_name="/stop_training")

    # the checkpoint samples through the Generate endpoints
    _, description = client.predict(str(run_dir), api_name="/load_model")
    assert "32" in description, description
    shown, _ = client.predict(model=str(run_dir), seed=0, num=4, truncation=0, api_name="/generate")
    downloads = client.predict(model=str(run_dir), seed=0, num=4, truncation=0, api_name="/grid_files")
    assert len(downloads) == 2 and Path(shown).is_file()
    with Image.open(downloads[0]) as native:
        assert native.width % 32 == 0 and native.height % 32 == 0 and native.width >= 64, native.size
        assert any(lo != hi for lo, hi in native.convert("RGB").getextrema()), "the generated grid is blank"
    train_app.assert_alive()
    assert train_app.unexpected_errors() == [], train_app.log_tail()


def test_train_for_epochs_through_the_api(client: Client, images: list[Path], train_app: AppProcess) -> None:
    # one pass over the 12 images at batch 8: 2 steps; "unit" is optional over the API (default "steps")
    outputs = client.predict(**train_args(images, steps=1, unit="epochs"), api_name="/train")
    out = named(outputs)
    assert out["status"].startswith("✅ Finished 2 steps."), out["status"]
    assert (Path(out["run_dir"]) / "training" / "state.json").is_file()
    assert json.loads((Path(out["run_dir"]) / "training" / "state.json").read_text())["step"] == 2
    with pytest.raises(AppError, match="less than minimum value 1"):  # the length box's own bound
        client.predict(**train_args(images, steps=0, unit="epochs"), api_name="/train")
    train_app.assert_alive()
    assert train_app.unexpected_errors() == [], train_app.log_tail()


def test_train_with_packing_through_the_api(client: Client, images: list[Path], train_app: AppProcess) -> None:
    """PacGAN's packing (the "pack" radio, /train's last parameter): saved with the run; a batch it doesn't divide
    is a clear message, not a crash."""
    out = named(client.predict(**train_args(images, steps=2, pack="2"), api_name="/train"))
    assert out["status"].startswith("✅ Finished 2 steps."), out["status"]
    assert json.loads((Path(out["run_dir"]) / "training" / "state.json").read_text())["config"]["pack"] == 2
    with pytest.raises(AppError, match=r"the batch size must divide by pack, the images D judges at once "
                                       r"\(8 doesn't divide by 3\)"):
        client.predict(**train_args(images, steps=2, pack="3"), api_name="/train")
    train_app.assert_alive()
    assert train_app.unexpected_errors() == [], train_app.log_tail()


@pytest.mark.parametrize(("files", "expected"), [(0, "Upload some images"), (3, "Only 3 of 3 files")])
def test_train_explains_bad_uploads(files: int, expected: str, client: Client, images: list[Path],
                                    train_app: AppProcess) -> None:
    with pytest.raises(AppError, match=expected):
        client.predict(**train_args(images[:files], steps=5), api_name="/train")
    train_app.assert_alive()
    assert train_app.unexpected_errors() == [], train_app.log_tail()


def test_set_learning_rate_only_for_the_jobs_owner(train_app: AppProcess, client: Client, images: list[Path]) -> None:
    job = client.submit(**train_args(images), api_name="/train")
    deadline = time.monotonic() + STREAM_TIMEOUT_S
    info: Any = None
    for outputs in job:
        out = named(outputs)
        info = out["job_info"]
        if "**Step" in out["status"] and not out["status"].startswith("**Step 0 /"):
            break
        assert time.monotonic() < deadline, f"no progress within {STREAM_TIMEOUT_S} s: {out['status']}"
    run_dir = Path(out["run_dir"])
    try:
        # a stranger (another browser: no token, a wrong one, someone else's job id) changes nothing
        for stranger in ({"job_id": info["job_id"], "token": "not-the-token"}, {"job_id": info["job_id"]}, None,
                         "not a dict"):
            refused = client.predict(stranger, 1e-6, 1e-6, api_name="/set_learning_rate")
            assert "someone else" in refused or "No training job" in refused, refused
        # nonsense values get a sentence, not a traceback
        with pytest.raises(AppError, match=r"lr_g must be in \(0, 0.1\] \(got 0(\.0)?\)"):
            client.predict(info, 0, None, api_name="/set_learning_rate")
        with pytest.raises(AppError, match="less than minimum value 0"):  # the number box's own bound
            client.predict(info, -1, None, api_name="/set_learning_rate")
        with pytest.raises(AppError, match="Enter a new learning rate"):
            client.predict(info, None, None, api_name="/set_learning_rate")

        said = client.predict(info, 1e-5, None, api_name="/set_learning_rate")
        assert said == "From the next step: learning rate G 1.00e-05, D 2.00e-04.", said
        for outputs in job:  # the change is marked in the health panel and on the loss plot
            out = named(outputs)
            if "Learning rates changed by hand" in out["health"]:
                break
            assert time.monotonic() < deadline, "the change never showed"
        assert "G 2.00e-04 → 1.00e-05, D 2.00e-04 → 2.00e-04" in out["health"], out["health"]
        assert "learning rate G (× start)" in json.dumps(out["losses"], ensure_ascii=False), str(out["losses"])[:300]
    finally:
        client.predict(info, api_name="/stop_training")
        for _ in job:
            assert time.monotonic() < deadline + 60, "the stream did not end after Stop"
    state = json.loads((run_dir / "training" / "state.json").read_text())
    assert [(c["reason"], c["lr_g"], c["lr_d"]) for c in state["lr_changes"]] == [("manual", [2e-4, 1e-5],
                                                                                   [2e-4, 2e-4])]
    assert state["history"][-1]["lr_g"] == 1e-5
    train_app.assert_alive()
    assert train_app.unexpected_errors() == [], train_app.log_tail()
