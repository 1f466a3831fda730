"""Train tab: upload images, train a small GAN on this machine, watch it learn, keep the result."""

from __future__ import annotations

import inspect
import os
import re
import secrets
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
from ..gan.augment import POLICIES, parse_policy
from ..gan.train import TrainConfig, TrainEvent, settings_table
from ..hub import push_folder
from ..i18n import catalog, current_language, t, translate_message
from ..intake import IntakeOptions
from ..jobs import JOBS, Job
from ..training import list_runs, prepare_trainer, zip_run
from .common import PreviewFiles, gpu, human_errors, output_dir, whole_number
from .i18n import Localizer, request_language

# On a shared CPU the training job yields to visitors' quick requests (Generate, the Lab); see
# benchmarks/classroom_load.py. GANDEMO_TRAIN_NICE=0 gives it equal priority.
TRAIN_NICE = int(os.environ.get("GANDEMO_TRAIN_NICE", "5"))
STATUS_IDLE = "train.status.idle"  # "Upload at least 8 images (or a .zip), then press **Start training**."

# Where the Train tab deliberately differs from TrainConfig (whose defaults the CLI uses): the one place.
UI_DEFAULTS: dict[str, Any] = {
    "steps": 1000,  # a first run in the browser should end while the person watches (minutes on a CPU)
    "preview_every": 50,  # the page is for watching it learn: samples twice as often as the CLI writes them
}
# /train's parameter names where they differ from TrainConfig's field names (the API keeps its names)
API_NAMES = {"image_size": "resolution", "width_g": "width", "diffaugment": "augment"}
# /train's parameters in the API's order (positional callers rely on it). The settings among them are
# TrainConfig fields, mapped by name; a field added to TrainConfig with a widget joins at the end.
API_ORDER = ("files", "resolution", "steps", "unit", "batch_size", "lr_g", "lr_d", "beta1", "beta2", "width", "seed",
             "loss", "augment", "mirror", "label_smoothing", "spectral_norm", "d_skip_threshold", "ema_decay",
             "r1_gamma", "preview_every", "fit", "alpha", "resume", "job_info")
# the tab's layout of the settings (by field name); a setting with a widget not placed here gets a row of its own
MAIN_ROW = ("image_size", "steps", "batch_size")
ADVANCED_ROWS = (("lr_g", "lr_d", "beta1", "beta2"), ("width_g", "seed", "loss"), ("diffaugment",),
                 ("mirror", "spectral_norm"), ("label_smoothing", "d_skip_threshold"),
                 ("ema_decay", "r1_gamma", "preview_every"), ("auto_lr_drop",))


def ui_settings(config_class: type = TrainConfig) -> dict[str, str]:
    """/train parameter name -> TrainConfig field, for every field the Train tab has a widget for."""
    return {API_NAMES.get(name, name): name for name, (_, rule) in settings_table(config_class).items() if not rule.ui}


def train_params(config_class: type = TrainConfig) -> tuple[str, ...]:
    return (*API_ORDER, *[p for p in ui_settings(config_class) if p not in API_ORDER])


def ui_default(name: str, config_class: type = TrainConfig) -> Any:
    """The widget's starting value: TrainConfig's default unless UI_DEFAULTS says otherwise."""
    return UI_DEFAULTS.get(name, getattr(config_class(), name))


def setting_widget(tr: Localizer, name: str, config_class: type = TrainConfig) -> Any:
    """The widget for TrainConfig field ``name``, built from its Rule: choices -> radio, a switch ->
    checkbox, a Rule with a slider range -> slider, else a number box with the allowed range. Its label
    is the catalog's ``train.field.<name>`` (and ``.info`` when the catalog has one)."""
    kind, rule = settings_table(config_class)[name]
    default = ui_default(name, config_class)
    keys: dict[str, Any] = {"label": f"train.field.{name}"}
    if f"train.field.{name}.info" in catalog():
        keys["info"] = f"train.field.{name}.info"
    if name == "diffaugment":  # a comma list of policies: one checkbox each
        component = gr.CheckboxGroup(list(POLICIES), value=list(parse_policy(default)))
        keys["choices"] = [(f"train.field.diffaugment.{p}", p) for p in POLICIES]
    elif rule.choices:  # values as text ("32"), as /train has always taken them
        values = [str(c) for c in rule.choices]
        component = gr.Radio(values, value=str(default))
        labelled = [f"train.field.{name}.{v}" for v in values]
        if all(k in catalog() for k in labelled):
            keys["choices"] = list(zip(labelled, values))
    elif kind is bool:
        component = gr.Checkbox(value=default)
    elif rule.slider is not None:
        low, high, step = rule.slider
        component = gr.Slider(low, high, value=default, step=step)
    elif kind is int:
        component = gr.Number(value=default, precision=None, step=1, minimum=rule.lo, maximum=rule.hi)
    else:
        component = gr.Number(value=default, minimum=rule.lo, maximum=rule.hi)
    return tr(component, **keys)


def config_from_widgets(values: dict[str, Any], config_class: type = TrainConfig) -> Any:
    """The TrainConfig that /train's settings (by parameter name) describe; ``validate()`` says what is wrong.
    2.5 steps is a typo to point out, not to round; the one width sets both networks."""
    table = settings_table(config_class)
    settings: dict[str, Any] = {}
    for param, name in ui_settings(config_class).items():
        kind, _rule = table[name]
        value = values.get(param, ui_default(name, config_class))
        if name == "diffaugment":
            value = ",".join(value) if isinstance(value, (list, tuple)) else value
        elif kind is int and isinstance(value, str) and value.strip().isdigit():  # a radio's "32"
            value = int(value)
        elif kind is int and value is not None:
            value = whole_number(value, t(f"train.field.{name}"))
        elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
        elif kind is bool:
            value = bool(value)
        settings[name] = value
    if "width_g" in settings and "width_d" not in settings:
        settings["width_d"] = settings["width_g"]
    return config_class(**settings)


def _named_parameters(names: tuple[str, ...]) -> Any:
    """Give a ``*args`` handler an explicit signature (``names``), so Gradio names the API's parameters."""

    def decorate(fn: Any) -> Any:
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        fn.__signature__ = inspect.Signature([inspect.Parameter(n, kind) for n in names])
        fn.__annotations__ = {}
        return fn

    return decorate


def _progress_html(step: int, total: int) -> str:
    return f'<progress value="{step}" max="{max(total, 1)}" style="width:100%"></progress>'


def _fmt_eta(seconds: float, lang: str | None = None) -> str:
    if seconds < 90:
        return t("train.eta.seconds", lang, n=f"{seconds:.0f}")
    if seconds < 5400:
        return t("train.eta.minutes", lang, n=f"{seconds / 60:.0f}")
    return t("train.eta.hours", lang, n=f"{seconds / 3600:.1f}")


class _View:
    """Turns a job's events into widget values, in ``lang`` (the page's language)."""

    def __init__(self, job: Job, lang: str | None = None):
        self.job = job
        self.lang = lang or current_language()
        self.rows: list[dict[str, float]] = []
        self.preview: str | None = None  # the newest sample grid as a PNG file, written when shown
        self._unsaved: Image.Image | None = None
        self._previews: PreviewFiles | None = None
        self.health: list[str] = []
        self.last: TrainEvent | None = None
        self.files: list[str] | None = None
        self.run_dir: str = str(getattr(job, "run_dir", ""))
        self.lr_changed = False  # once the learning rates change, the loss plot shows them too

    def add(self, event: TrainEvent) -> None:
        self.last = event
        self.lr_changed |= event.kind == "lr"
        if event.losses:
            self.rows.append({"step": event.step, **event.losses})
        if event.preview is not None:  # saved lazily: re-attaching replays every event of the job
            self._unsaved = event.preview
        for h in event.health:
            icon = "⚠️" if h.level == "warning" else ("🛑" if h.level == "error" else "ℹ️")
            text = translate_message(h.text, self.lang)
            self.health.append(f"{icon} {t('train.health.at_step', self.lang, step=event.step)} {text}")
        if event.kind == "start" and event.message:
            self.health.append(f"ℹ️ {translate_message(event.message, self.lang)}")
        if event.checkpoint is not None and event.kind in ("done", "stopped"):
            out = output_dir("run")
            self.files = [str(zip_run(event.checkpoint, out / f"{Path(event.checkpoint).name}.zip"))]

    def outputs(self) -> tuple[Any, ...]:
        ev, job, lang = self.last, self.job, self.lang
        if self._unsaved is not None:
            self._previews = self._previews or PreviewFiles("train-preview")
            self.preview, self._unsaved = self._previews(self._unsaved), None
        if ev is None:
            status = t("train.status.starting", lang)
        else:
            status = t("train.status.step", lang, step=ev.step, total=ev.total_steps, rate=f"{ev.images_per_s:.0f}",
                       eta=_fmt_eta(ev.eta_s, lang), device=job.device)
        if job.status == "done":
            status = t("train.status.done", lang, steps=ev.step if ev else 0)
        elif job.status == "stopped":
            status = t("train.status.stopped", lang, step=ev.step if ev else 0)
        elif job.status == "error":
            status = t("train.status.failed", lang, error=translate_message(job.error, lang))
        total = ev.total_steps if ev else 1
        progress = _progress_html(ev.step if ev else 0, total)
        df = pd.DataFrame(self.rows[-2000:]) if self.rows else pd.DataFrame({"step": [], "loss_d": [], "loss_g": [], "d_real": [], "d_fake": []})
        curves = ["loss_d", "loss_g"]
        if self.lr_changed and "lr_g" in df:  # the change is marked: each rate as a share of its first value
            for column, key in (("lr_g", "train.plot.lr_g"), ("lr_d", "train.plot.lr_d")):
                rates = df[column].astype(float)
                df[t(key, lang)] = rates / rates.iloc[0]
                curves.append(t(key, lang))
        losses = df.melt(id_vars="step", value_vars=curves, var_name="curve", value_name="value")
        probs = df.melt(id_vars="step", value_vars=["d_real", "d_fake"], var_name="curve", value_name="value")
        health = "\n\n".join(self.health[-12:]) or t("train.health.none", lang)
        return (status + "\n\n" + progress, self.preview, losses, probs, health, self.files, self.run_dir)


def _follow(job: Job, lang: str | None = None) -> Any:
    view = _View(job, lang)
    last_yield = 0.0
    for batch in job.follow():
        for event in batch:
            view.add(event)
        important = any(e.kind != "step" for e in batch)
        if important or time.monotonic() - last_yield > 0.5:
            last_yield = time.monotonic()
            yield view.outputs()
    yield view.outputs()


def _describe(event: TrainEvent, lang: str | None = "en") -> str:
    """A job's progress in words ("step 40 of 1000, about 3 min left"): kept in English on the job (it
    is shared by every visitor), said in each visitor's language by ``_progress_of``."""
    return t("train.progress", lang, step=event.step, total=event.total_steps, eta=_fmt_eta(event.eta_s, lang))


def _progress_of(job: Job) -> str:
    """How far ``job`` has got, in the current language."""
    last = job.events[-1] if job.events else None
    return _describe(last, None) if isinstance(last, TrainEvent) else t("train.progress.starting")


TRAIN_PARAMS = train_params()


@gpu(duration=600)
@human_errors
@_named_parameters(TRAIN_PARAMS)
def train(*args: Any) -> Any:
    """Start a training job and stream its progress (losses, D outputs, samples, health).

    The parameters are TRAIN_PARAMS: the files, the settings (TrainConfig's fields, see API_NAMES), and
    ``unit``: "steps" or "epochs" (passes over the images), what ``steps`` counts; ``fit``, ``alpha``
    (how images are read), ``resume`` (a run to continue), ``job_info`` (this browser's job and owner key)."""
    values = dict(zip(TRAIN_PARAMS, args))
    files, unit, steps = values["files"], values["unit"], values["steps"]
    paths = [f if isinstance(f, str) else f.name for f in (files or [])]
    if not paths:
        raise InvalidInputError(t("train.error.no_images"))
    if unit not in ("steps", "epochs"):
        raise InvalidInputError(t("train.error.unit", unit=repr(unit)))
    epochs = float(steps) if unit == "epochs" else None  # prepare_trainer checks and converts it
    config = config_from_widgets({**values, "steps": 1} if epochs else values).validate()
    fit, alpha, resume, job_info = values["fit"], values["alpha"], values["resume"], values["job_info"]
    busy = JOBS.running(str(pick_device()))
    if busy is not None and not busy.finished:
        raise gr.Error(t("train.error.busy", progress=_progress_of(busy)), title=t("train.error.busy.title"))
    owner = _owner_key(job_info)
    resume_dir = visitor_run(resume, owner, need_owner=True) if resume else None
    intake = IntakeOptions(size=config.image_size, fit=fit, alpha=alpha)
    trainer, summary = prepare_trainer(paths, config, intake=intake, resume=resume_dir, epochs=epochs)
    if not resume:  # a resumed run keeps its saved settings; a new one checkpoints 4 times (every 100+ steps)
        trainer.config.checkpoint_every = max(100, trainer.config.steps // 4)
    claim_run(trainer.out_dir, owner)
    gr.Info(_summary_text(summary))
    job = JOBS.start("training", str(trainer.device), lambda j: trainer.train(j.cancel), describe=_describe,
                     nice=TRAIN_NICE)
    job.run_dir = run_handle(trainer.out_dir)  # type: ignore[attr-defined]
    job.trainer = trainer  # type: ignore[attr-defined]  # for /set_learning_rate (its owner only)
    info = {"job_id": job.id, "token": job.token, "owner": owner}
    for outputs in _follow(job):
        yield (*outputs, info)
    if job.status == "error":
        raise gr.Error(t("train.error.failed", error=translate_message(job.error)))


def attach(job_info: dict[str, Any] | None, request: gr.Request) -> Any:
    """Re-attach a reloaded page to its job (running or just finished)."""
    lang = request_language(request)
    job = JOBS.get((job_info or {}).get("job_id"))
    if job is None:
        yield (t(STATUS_IDLE, lang), None, None, None, "", None, "", job_info)
        return
    for outputs in _follow(job, lang):
        yield (*outputs, job_info)


@human_errors
def stop_training(job_info: dict[str, Any] | None) -> str:
    """Ask the running job to stop after its current step; it saves a checkpoint on the way out."""
    info = job_info if isinstance(job_info, dict) else {}  # a string, a number, a list: nobody's job
    job_id, token = info.get("job_id"), info.get("token")
    job = JOBS.get(job_id) if isinstance(job_id, str) else None
    if job is None or job.finished:
        return t("train.stop.none")
    if not isinstance(token, str) or not job.stop(token):
        return t("train.stop.not_yours")
    return t("train.stop.stopping")


def _own_trainer(job_info: Any) -> tuple[Any, str | None]:
    """(the running job's Trainer, None) for its owner; (None, why not) for anyone else, or when none runs."""
    info = job_info if isinstance(job_info, dict) else {}
    job_id, token = info.get("job_id"), info.get("token")
    job = JOBS.get(job_id) if isinstance(job_id, str) else None
    trainer = getattr(job, "trainer", None)
    if job is None or job.finished or trainer is None:
        return None, t("train.lr.none")
    if not isinstance(token, str) or not secrets.compare_digest(token, job.token):
        return None, t("train.lr.not_yours")
    return trainer, None


def _rate_or_none(value: Any) -> Any:
    """An empty box (None, "") keeps that rate; anything else goes to the trainer, which checks it."""
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _rates_text(rates: tuple[float, float]) -> str:
    return t("train.lr.requested", g=f"{rates[0]:.2e}", d=f"{rates[1]:.2e}")


@human_errors
def set_learning_rate(job_info: dict[str, Any] | None, lr_g: float | None, lr_d: float | None) -> str:
    """Change the running job's learning rates (G's, D's; empty keeps one) from its next step on. Only the
    browser that started the job (its token in ``job_info``) may."""
    trainer, refusal = _own_trainer(job_info)
    if refusal:
        return refusal
    lr_g, lr_d = _rate_or_none(lr_g), _rate_or_none(lr_d)
    if lr_g is None and lr_d is None:
        raise InvalidInputError(t("train.lr.nothing"))
    return _rates_text(trainer.set_learning_rates(lr_g, lr_d))


@human_errors
def lower_learning_rate(job_info: dict[str, Any] | None, factor: float | None) -> tuple[str, Any, Any]:
    """The "lower the learning rate now" button: both rates times ``factor`` (0.1) from the next step on."""
    trainer, refusal = _own_trainer(job_info)
    if refusal:
        return refusal, gr.update(), gr.update()
    rates = trainer.lower_learning_rates(0.1 if factor is None else factor)
    return _rates_text(rates), rates[0], rates[1]


def _summary_text(summary: str) -> str:
    """The intake summary in the current language: "Used 12 of 12 files." and, for a length in epochs,
    "1 epochs of 12 images at batch 8: 2 steps in total." are translated one by one."""
    return " ".join(translate_message(part) for part in re.split(r"(?<=\.) (?=\d)", summary))


def _owner_key(job_info: Any) -> str:
    """This browser's owner key (kept in its BrowserState with the job), or a new one."""
    owner = job_info.get("owner") if isinstance(job_info, dict) else None
    return owner if isinstance(owner, str) and 16 <= len(owner) <= 64 else new_owner_key()


@human_errors
def push(run_dir: str, repo_id: str, token: str, private: bool, job_info: dict[str, Any] | None = None) -> str:
    """Upload a finished run to the Hugging Face Hub with the user's token (never stored).

    On a shared server only the browser that trained the run (its owner key in ``job_info``) may push it."""
    if not isinstance(run_dir, str) or not run_dir.strip():
        raise InvalidInputError(t("train.push.nothing"))
    owner = job_info.get("owner") if isinstance(job_info, dict) else None
    folder = visitor_run(run_dir, owner, need_owner=True)
    if not folder.is_dir():
        raise InvalidInputError(t("train.push.nothing"))
    url = push_folder(folder, repo_id, token, private=private)
    return t("train.push.done", url=url)


def refresh_runs(job_info: dict[str, Any] | None) -> dict[str, Any]:
    """The runs this browser may resume: all of them on a local launch, its own on a shared server."""
    owner = job_info.get("owner") if isinstance(job_info, dict) else None
    runs = [run_handle(p) for p in visible_runs(owner, list_runs())]
    return gr.update(choices=[""] + runs)


def relabel_length(unit: str, request: gr.Request) -> dict[str, Any]:
    """The length box says what it counts (steps or epochs), in the page's language."""
    return gr.update(label=t("train.epochs" if unit == "epochs" else "train.field.steps", request_language(request)))


def build_train_tab(tr: Localizer) -> dict[str, Any]:
    tr(gr.Markdown(), value="train.lesson")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            files = tr(gr.File(file_count="multiple", file_types=["image", ".zip", ".tif", ".tiff", ".webp"],
                               elem_id="train-files"),
                       label=("train.files", {"size": format_size(max_upload_bytes())}))
            widgets: dict[str, Any] = {}  # field name -> widget

            def place(*names: str) -> None:
                for name in names:
                    widgets[name] = setting_widget(tr, name)

            with gr.Row():
                place("image_size", "steps")
                unit = tr(gr.Radio(["steps", "epochs"], value="steps"), label="train.unit", info="train.unit.info",
                          choices=[("train.unit.steps", "steps"), ("train.unit.epochs", "epochs")])
                place("batch_size")
            with tr(gr.Accordion("Advanced settings", open=False), label="train.advanced"):
                for row in ADVANCED_ROWS:
                    with gr.Row():
                        place(*row)
                placed = set(MAIN_ROW).union(*ADVANCED_ROWS)
                others = [name for name in ui_settings().values() if name not in placed]
                if others:
                    with gr.Row():
                        place(*others)
                with gr.Row():
                    fit = tr(gr.Radio(["crop", "pad"], value="crop"), label="train.fit",
                             choices=[("train.fit.crop", "crop"), ("train.fit.pad", "pad")])
                    alpha = tr(gr.Radio(["keep", "flatten"], value="keep"), label="train.alpha",
                               choices=[("train.alpha.keep", "keep"), ("train.alpha.flatten", "flatten")])
                with gr.Row():
                    resume = tr(gr.Dropdown([""], value="", scale=3, allow_custom_value=True),
                                label="train.resume.shared" if is_shared() else "train.resume")
                    refresh = gr.Button("↻", scale=0, min_width=40)
            tr(gr.Markdown(), value="train.fixes")
            with gr.Row():
                start = tr(gr.Button(variant="primary", elem_id="train-start"), value="train.start")
                stop = tr(gr.Button(variant="stop", elem_id="train-stop"), value="train.stop")
            stop_note = gr.Markdown(elem_id="train-stop-note")
            with tr(gr.Accordion("Learning rate while it trains", open=True, elem_id="train-lr"), label="train.lr.title"):
                tr(gr.Markdown(), value="train.lr.lesson")
                with gr.Row():
                    lr_factor = tr(gr.Number(value=0.1, minimum=0.001, maximum=0.999, elem_id="train-lr-factor",
                                             min_width=80), label="train.lr.factor")
                    lower_btn = tr(gr.Button(elem_id="train-lr-lower"), value="train.lr.lower")
                with gr.Row():
                    new_lr_g = tr(gr.Number(value=None, minimum=0, maximum=0.1, elem_id="train-lr-g"),
                                  label="train.lr.new_g", placeholder="train.lr.keep")
                    new_lr_d = tr(gr.Number(value=None, minimum=0, maximum=0.1, elem_id="train-lr-d"),
                                  label="train.lr.new_d", placeholder="train.lr.keep")
                    apply_btn = tr(gr.Button(elem_id="train-lr-apply", min_width=80), value="train.lr.apply")
                lr_note = gr.Markdown(elem_id="train-lr-note")
        with gr.Column(scale=2):
            # not registered with the Localizer: on a page load ``attach`` writes it (in the page's language),
            # and a second writer could overwrite a finished job's status with the idle line
            status = gr.Markdown(t(STATUS_IDLE, "en"), elem_id="train-status")
            preview = tr(gr.Image(format="png", image_mode=None, type="pil", interactive=False, elem_id="train-preview",
                                  elem_classes=["pixelated"]), label="train.preview")
            with gr.Row():
                loss_plot = tr(gr.LinePlot(x="step", y="value", color="curve", height=220), label="train.plot.losses")
                prob_plot = tr(gr.LinePlot(x="step", y="value", color="curve", y_lim=[0, 1], height=220),
                               label="train.plot.d_outputs")
            health = gr.Markdown(elem_id="train-health")
            result = tr(gr.File(interactive=False), label="train.checkpoint")
            run_dir = tr(gr.Textbox(interactive=False), label="train.run_dir")
            open_btn = tr(gr.Button(), value="train.open")
            with tr(gr.Accordion("Push to the Hugging Face Hub", open=False), label="train.push"):
                repo_id = tr(gr.Textbox(), label="train.push.repo_id", placeholder="train.push.repo_id.placeholder")
                token = tr(gr.Textbox(type="password"), label="train.push.token", info="train.push.token.info")
                private = tr(gr.Checkbox(value=True), label="train.push.private")
                push_btn = tr(gr.Button(), value="train.push.button")
                push_result = gr.Markdown()
    job_info = gr.BrowserState(None, storage_key="gandemo-train-job")

    by_param = {**{API_NAMES.get(name, name): w for name, w in widgets.items()}, "files": files, "unit": unit,
                "fit": fit, "alpha": alpha, "resume": resume, "job_info": job_info}
    settings = [by_param[name] for name in TRAIN_PARAMS]
    outputs = [status, preview, loss_plot, prob_plot, health, result, run_dir, job_info]
    unit.change(relabel_length, unit, widgets["steps"], api_visibility="private", queue=False)
    # Progress (and, for bad input, the error badge) shows on the status line only: the toast says what
    # went wrong, and the plots, preview and download panels don't each get a red "Error" of their own.
    start.click(train, settings, outputs, api_name="train", concurrency_limit=4, show_progress_on=[status])
    stop.click(stop_training, job_info, stop_note, api_name="stop_training", queue=False)
    apply_btn.click(set_learning_rate, [job_info, new_lr_g, new_lr_d], lr_note, api_name="set_learning_rate", queue=False)
    lower_btn.click(lower_learning_rate, [job_info, lr_factor], [lr_note, new_lr_g, new_lr_d],
                    api_visibility="private", queue=False)
    refresh.click(refresh_runs, job_info, resume, api_visibility="private", queue=False)
    push_btn.click(push, [run_dir, repo_id, token, private, job_info], push_result, api_name="push_to_hub")
    return {"attach": (attach, job_info, outputs), "open_button": open_btn, "run_dir": run_dir, "settings": widgets}
