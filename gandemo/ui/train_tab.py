"""Train tab: upload images, train a small GAN on this machine, watch it learn, keep the result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from PIL import Image

from ..access import (
    claim_run,
    format_size,
    is_shared,
    max_upload_bytes,
    new_owner_key,
    run_handle,
    visible_runs,
    visitor_run,
)
from ..device import pick_device
from ..errors import InvalidInputError
from ..gan.train import TrainConfig, TrainEvent
from ..hub import push_folder
from ..intake import IntakeOptions
from ..jobs import JOBS, Job
from ..training import list_runs, prepare_trainer, zip_run
from .common import PreviewFiles, gpu, human_errors, output_dir
from .i18n import Localizer

LESSON = """
**Two phases, every step.** First the *discriminator* D looks at a batch of your real images
(target: "real") and a batch the generator just made (target: "fake") and improves at telling them
apart. Then the *generator* G makes a batch, D scores it, and G changes so that D would say "real";
D is not updated in this phase. **Why the losses don't just fall:** the two networks are
opponents, so each one's progress makes the other's loss go up. Healthy training looks like two
lines wobbling around a level, with D(x) a bit above D(G(z)). Watch the samples, not the loss.
"""

FIXES = """
**Built-in fixes** (all on by default, tuned for 20–2000 images): *DiffAugment* shows D randomly
shifted, recoloured and cut-out versions of real and fake images so it can't memorise a small set;
*label smoothing* asks D for 0.9 instead of 1 on real images so it stays less sure of itself;
*spectral norm* limits how sharply D can react, which steadies training; *skip-D* pauses D's
updates while it is winning by a wide margin (the lesson's remedy for an overpowering
discriminator); the *EMA* generator averages G's recent weights for smoother samples.
"""

STATUS_IDLE = "Upload at least 8 images (or a .zip), then press **Start training**."


def _progress_html(step: int, total: int) -> str:
    return f'<progress value="{step}" max="{max(total, 1)}" style="width:100%"></progress>'


def _fmt_eta(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


class _View:
    """Turns a job's events into widget values."""

    def __init__(self, job: Job):
        self.job = job
        self.rows: list[dict[str, float]] = []
        self.preview: str | None = None  # the newest sample grid as a PNG file, written when shown
        self._unsaved: Image.Image | None = None
        self._previews: PreviewFiles | None = None
        self.health: list[str] = []
        self.last: TrainEvent | None = None
        self.files: list[str] | None = None
        self.run_dir: str = str(getattr(job, "run_dir", ""))

    def add(self, event: TrainEvent) -> None:
        self.last = event
        if event.losses:
            self.rows.append({"step": event.step, **event.losses})
        if event.preview is not None:  # saved lazily: re-attaching replays every event of the job
            self._unsaved = event.preview
        for h in event.health:
            icon = "⚠️" if h.level == "warning" else ("🛑" if h.level == "error" else "ℹ️")
            self.health.append(f"{icon} **step {event.step}:** {h.text}")
        if event.kind == "start" and event.message:
            self.health.append(f"ℹ️ {event.message}")
        if event.checkpoint is not None and event.kind in ("done", "stopped"):
            out = output_dir("run")
            self.files = [str(zip_run(event.checkpoint, out / f"{Path(event.checkpoint).name}.zip"))]

    def outputs(self) -> tuple[Any, ...]:
        ev, job = self.last, self.job
        if self._unsaved is not None:
            self._previews = self._previews or PreviewFiles("train-preview")
            self.preview, self._unsaved = self._previews(self._unsaved), None
        if ev is None:
            status = "Starting…"
        else:
            status = (f"**Step {ev.step} / {ev.total_steps}** · {ev.images_per_s:.0f} images/s · "
                      f"ETA {_fmt_eta(ev.eta_s)} · {job.device}")
        if job.status == "done":
            status = f"✅ Finished {ev.step if ev else 0} steps. Download the checkpoint or open it in Generate."
        elif job.status == "stopped":
            status = f"⏹️ Stopped at step {ev.step if ev else 0}; the checkpoint was saved."
        elif job.status == "error":
            status = f"🛑 Training failed: {job.error}"
        total = ev.total_steps if ev else 1
        progress = _progress_html(ev.step if ev else 0, total)
        df = pd.DataFrame(self.rows[-2000:]) if self.rows else pd.DataFrame({"step": [], "loss_d": [], "loss_g": [], "d_real": [], "d_fake": []})
        losses = df.melt(id_vars="step", value_vars=["loss_d", "loss_g"], var_name="curve", value_name="value")
        probs = df.melt(id_vars="step", value_vars=["d_real", "d_fake"], var_name="curve", value_name="value")
        health = "\n\n".join(self.health[-12:]) or "No problems detected so far."
        return (status + "\n\n" + progress, self.preview, losses, probs, health, self.files, self.run_dir)


def _follow(job: Job) -> Any:
    view = _View(job)
    last_yield = 0.0
    for batch in job.follow():
        for event in batch:
            view.add(event)
        important = any(e.kind != "step" for e in batch)
        if important or time.monotonic() - last_yield > 0.5:
            last_yield = time.monotonic()
            yield view.outputs()
    yield view.outputs()


def _describe(event: TrainEvent) -> str:
    return f"step {event.step} of {event.total_steps}, about {_fmt_eta(event.eta_s)} left"


@gpu(duration=600)
@human_errors
def train(
    files: list[str] | None, resolution: str, steps: float, unit: str, batch_size: float, lr_g: float, lr_d: float,
    beta1: float, beta2: float, width: float, seed: float, loss: str, augment: list[str], mirror: bool,
    label_smoothing: float, spectral_norm: bool, d_skip_threshold: float, ema_decay: float, r1_gamma: float,
    preview_every: float, fit: str, alpha: str, resume: str | None, job_info: dict[str, Any] | None,
) -> Any:
    """Start a training job and stream its progress (losses, D outputs, samples, health).

    ``steps`` is the training length, counted in ``unit``: "steps" or "epochs" (passes over the images)."""
    paths = [f if isinstance(f, str) else f.name for f in (files or [])]
    if not paths:
        raise InvalidInputError("Upload some images (or one .zip of images) first: at least 8 usable ones.")
    if unit not in ("steps", "epochs"):
        raise InvalidInputError(f"Count the training length in steps or epochs (got {unit!r}).")
    epochs = float(steps) if unit == "epochs" else None  # prepare_trainer checks and converts it
    config = TrainConfig(
        image_size=int(resolution), steps=1 if epochs else int(steps), batch_size=int(batch_size), lr_g=float(lr_g), lr_d=float(lr_d),
        beta1=float(beta1), beta2=float(beta2), width_g=int(width), width_d=int(width), seed=int(seed), loss=loss,
        diffaugment=",".join(augment or []), mirror=bool(mirror),
        label_smoothing=float(label_smoothing), spectral_norm=bool(spectral_norm),
        d_skip_threshold=float(d_skip_threshold), ema_decay=float(ema_decay), r1_gamma=float(r1_gamma),
        preview_every=int(preview_every),
    ).validate()
    busy = JOBS.running(str(pick_device()))
    if busy is not None and not busy.finished:
        raise gr.Error(f"The trainer is busy with another run ({busy.progress}). Only one training job runs at a "
                       "time on this machine; please try again when it ends.", title="Trainer busy")
    owner = _owner_key(job_info)
    resume_dir = visitor_run(resume, owner, need_owner=True) if resume else None
    intake = IntakeOptions(size=config.image_size, fit=fit, alpha=alpha)
    trainer, summary = prepare_trainer(paths, config, intake=intake, resume=resume_dir, epochs=epochs)
    if not resume:  # a resumed run keeps its saved settings; a new one checkpoints 4 times (every 100+ steps)
        trainer.config.checkpoint_every = max(100, trainer.config.steps // 4)
    claim_run(trainer.out_dir, owner)
    gr.Info(summary)
    job = JOBS.start("training", str(trainer.device), lambda j: trainer.train(j.cancel), describe=_describe)
    job.run_dir = run_handle(trainer.out_dir)  # type: ignore[attr-defined]
    info = {"job_id": job.id, "token": job.token, "owner": owner}
    for outputs in _follow(job):
        yield (*outputs, info)
    if job.status == "error":
        raise gr.Error(f"Training failed: {job.error}")


def attach(job_info: dict[str, Any] | None) -> Any:
    """Re-attach a reloaded page to its job (running or just finished)."""
    job = JOBS.get((job_info or {}).get("job_id"))
    if job is None:
        yield (STATUS_IDLE, None, None, None, "", None, "", job_info)
        return
    for outputs in _follow(job):
        yield (*outputs, job_info)


@human_errors
def stop_training(job_info: dict[str, Any] | None) -> str:
    """Ask the running job to stop after its current step; it saves a checkpoint on the way out."""
    job = JOBS.get((job_info or {}).get("job_id"))
    if job is None or job.finished:
        return "No training job of yours is running."
    if not job.stop((job_info or {}).get("token")):
        return "This job was started by someone else; only they can stop it."
    return "Stopping after the current step; the checkpoint will be saved."


def _owner_key(job_info: Any) -> str:
    """This browser's owner key (kept in its BrowserState with the job), or a new one."""
    owner = job_info.get("owner") if isinstance(job_info, dict) else None
    return owner if isinstance(owner, str) and 16 <= len(owner) <= 64 else new_owner_key()


@human_errors
def push(run_dir: str, repo_id: str, token: str, private: bool, job_info: dict[str, Any] | None = None) -> str:
    """Upload a finished run to the Hugging Face Hub with the user's token (never stored).

    On a shared server only the browser that trained the run (its owner key in ``job_info``) may push it."""
    if not isinstance(run_dir, str) or not run_dir.strip():
        raise InvalidInputError("Train (or resume) a model first: there is no checkpoint to push yet.")
    owner = job_info.get("owner") if isinstance(job_info, dict) else None
    folder = visitor_run(run_dir, owner, need_owner=True)
    if not folder.is_dir():
        raise InvalidInputError("Train (or resume) a model first: there is no checkpoint to push yet.")
    url = push_folder(folder, repo_id, token, private=private)
    return f"✅ Pushed to [{url}]({url})."


def refresh_runs(job_info: dict[str, Any] | None) -> dict[str, Any]:
    """The runs this browser may resume: all of them on a local launch, its own on a shared server."""
    owner = job_info.get("owner") if isinstance(job_info, dict) else None
    runs = [run_handle(p) for p in visible_runs(owner, list_runs())]
    return gr.update(choices=[""] + runs)


def build_train_tab(tr: Localizer) -> dict[str, Any]:
    gr.Markdown(LESSON)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            files = gr.File(label=f"Your images (PNG, JPEG, WebP, BMP, GIF, TIFF) or a .zip, up to {format_size(max_upload_bytes())} per file",
                            file_count="multiple",
                            file_types=["image", ".zip", ".tif", ".tiff", ".webp"], elem_id="train-files")
            with gr.Row():
                resolution = gr.Radio(["32", "64", "128"], value="64", label="Resolution (px)")
                steps = gr.Number(value=1000, precision=0, minimum=1, maximum=1_000_000, label="Steps")
                unit = gr.Radio(["steps", "epochs"], value="steps", label="Count length in",
                                info="An epoch is one pass over your images.")
                batch_size = gr.Slider(4, 256, value=32, step=4, label="Batch size")
            with gr.Accordion("Advanced settings", open=False):
                with gr.Row():
                    lr_g = gr.Number(value=2e-4, label="Learning rate G", minimum=1e-6, maximum=0.1)
                    lr_d = gr.Number(value=2e-4, label="Learning rate D", minimum=1e-6, maximum=0.1)
                    beta1 = gr.Number(value=0.5, label="Adam β1", minimum=0, maximum=0.999)
                    beta2 = gr.Number(value=0.999, label="Adam β2", minimum=0, maximum=0.9999)
                with gr.Row():
                    width = gr.Slider(16, 128, value=64, step=8, label="Network width")
                    seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
                    loss = gr.Radio(["bce", "hinge"], value="bce", label="Loss")
                augment = gr.CheckboxGroup(["color", "translation", "cutout"], value=["color", "translation", "cutout"],
                                           label="DiffAugment (on real and fake images for D)")
                with gr.Row():
                    mirror = gr.Checkbox(value=False, label="Random horizontal flips of real images",
                                         info="Only for subjects without a left and right: it makes shoes face both ways.")
                    spectral_norm = gr.Checkbox(value=True, label="Spectral norm in D")
                with gr.Row():
                    label_smoothing = gr.Slider(0.7, 1.0, value=0.9, step=0.05, label="Real label (1 = no smoothing)")
                    d_skip = gr.Slider(0, 0.5, value=0.05, step=0.01, label="Skip D update while its loss is below (0 = off)")
                with gr.Row():
                    ema = gr.Slider(0, 0.9999, value=0.999, step=0.0001, label="EMA decay of G (0 = off)")
                    r1 = gr.Slider(0, 10, value=0, step=0.1, label="R1 penalty γ (0 = off)")
                    preview_every = gr.Slider(10, 1000, value=50, step=10, label="Preview every N steps")
                with gr.Row():
                    fit = gr.Radio(["crop", "pad"], value="crop", label="Non-square images")
                    alpha = gr.Radio(["keep", "flatten"], value="keep", label="Transparency")
                with gr.Row():
                    resume = gr.Dropdown([""], value="", label="Resume one of your runs" if is_shared() else "Resume from a run on this server",
                                         scale=3, allow_custom_value=True)
                    refresh = gr.Button("↻", scale=0, min_width=40)
            gr.Markdown(FIXES)
            with gr.Row():
                start = gr.Button("Start training", variant="primary", elem_id="train-start")
                stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
            stop_note = gr.Markdown(elem_id="train-stop-note")
        with gr.Column(scale=2):
            status = gr.Markdown(STATUS_IDLE, elem_id="train-status")
            preview = gr.Image(label="Samples from fixed noise (EMA generator)", format="png", image_mode=None, type="pil",
                               interactive=False, elem_id="train-preview", elem_classes=["pixelated"])
            with gr.Row():
                loss_plot = gr.LinePlot(x="step", y="value", color="curve", label="Losses", height=220)
                prob_plot = gr.LinePlot(x="step", y="value", color="curve", label="D(x) and D(G(z))", y_lim=[0, 1], height=220)
            health = gr.Markdown(elem_id="train-health")
            result = gr.File(label="Checkpoint (.zip: generator, model card, resumable state)", interactive=False)
            run_dir = gr.Textbox(label="Run folder", interactive=False)
            open_btn = gr.Button("Open in Generate")
            with gr.Accordion("Push to the Hugging Face Hub", open=False):
                repo_id = gr.Textbox(label="Repo id", placeholder="your-name/my-gan")
                token = gr.Textbox(label="Access token (write)", type="password",
                                   info="Used for this upload only; never stored or logged.")
                private = gr.Checkbox(value=True, label="Private repo")
                push_btn = gr.Button("Push to Hub")
                push_result = gr.Markdown()
    job_info = gr.BrowserState(None, storage_key="gandemo-train-job")

    settings = [files, resolution, steps, unit, batch_size, lr_g, lr_d, beta1, beta2, width, seed, loss, augment, mirror,
                label_smoothing, spectral_norm, d_skip, ema, r1, preview_every, fit, alpha, resume, job_info]
    outputs = [status, preview, loss_plot, prob_plot, health, result, run_dir, job_info]
    unit.change(lambda u: gr.update(label="Epochs" if u == "epochs" else "Steps"), unit, steps,
                api_visibility="private", queue=False)
    # Progress (and, for bad input, the error badge) shows on the status line only: the toast says what
    # went wrong, and the plots, preview and download panels don't each get a red "Error" of their own.
    start.click(train, settings, outputs, api_name="train", concurrency_limit=4, show_progress_on=[status])
    stop.click(stop_training, job_info, stop_note, api_name="stop_training", queue=False)
    refresh.click(refresh_runs, job_info, resume, api_visibility="private", queue=False)
    push_btn.click(push, [run_dir, repo_id, token, private, job_info], push_result, api_name="push_to_hub")
    return {"attach": (attach, job_info, outputs), "open_button": open_btn, "run_dir": run_dir}
