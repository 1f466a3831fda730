"""Train tab: upload images, train a small GAN on this machine, watch it learn, keep the result."""

from __future__ import annotations

import inspect
import os
import re
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from PIL import Image

from ..access import (
    claim_run,
    format_size,
    intake_pixel_budget,
    is_shared,
    max_upload_bytes,
    new_owner_key,
    prune_runs,
    run_handle,
    train_time_limit_s,
    visible_runs,
    visitor_run,
)
from ..device import pick_device
from ..errors import InvalidInputError
from ..gan.runs import RunFolder
from ..gan.settings import POLICIES, parse_policy
from ..gan.train import TrainConfig, Trainer, TrainEvent, settings_table
from ..hub import push_folder
from ..i18n import catalog, current_language, t, translate_message
from ..images import save_animation, upscale
from ..intake import IntakeOptions, reason_keyword
from ..intake.sheet import ContactSheet, contact_sheet, sample_indices, tile
from ..jobs import JOBS, Job
from ..train_process import TrainingProcess, use_process, warm_up
from ..training import list_runs, prepare_trainer, zip_run
from .common import PreviewFiles, gpu, human_errors, output_dir, png_file, whole_number
from .i18n import Localizer, request_language

# GANDEMO_TRAIN_NICE: the nice value of a training job (its process on the CPU, its thread on a GPU). A job
# is long batch work and a visitor's click is interactive: at 10 the job yields the CPU to a class's clicks
# and still runs at full speed whenever nobody clicks. Measured with 30 clients on 2 cores
# (benchmarks/RESULTS.md): /generate p95 1.19-1.47 s at 10 with the job keeping 0.55-0.56x of its speed
# during the burst; 1.75 s and 0.81x at 0.
TRAIN_NICE = int(os.environ.get("GANDEMO_TRAIN_NICE", "10"))
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
             "r1_gamma", "preview_every", "fit", "alpha", "resume", "job_info", "auto_lr_drop")
# the tab's layout of the settings (by field name); a setting with a widget not placed here gets a row of its own
MAIN_ROW = ("image_size", "arch", "steps", "batch_size")  # arch: MSG-GAN and progressive growing, the remedies for 64 and 128 px
ADVANCED_ROWS = (("lr_g", "lr_d", "beta1", "beta2"), ("width_g", "seed", "loss"), ("diffaugment",),
                 ("mirror", "spectral_norm"), ("minibatch_std", "pack"), ("label_smoothing", "d_skip_threshold"),
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


# The curves of the live plots: (column of the training history, catalog key of its name, colour).
# D is blue and G orange everywhere: D's loss and D(x) (D on real images) blue, G's loss and D(G(z))
# (D on what G made) orange, as are the real and the generated grids' labels (🔵 / 🟠).
D_COLOUR, G_COLOUR = "#2563eb", "#ea580c"
LOSS_CURVES = (("loss_d", "train.curve.loss_d", D_COLOUR), ("loss_g", "train.curve.loss_g", G_COLOUR),
               ("lr_d", "train.plot.lr_d", "#93c5fd"), ("lr_g", "train.plot.lr_g", "#fdba74"))
PROB_CURVES = (("d_real", "train.curve.d_real", D_COLOUR), ("d_fake", "train.curve.d_fake", G_COLOUR))
PLOT_ROWS = 2000  # the newest steps the plots show
PAGE_POINTS = 240  # at most this many of them are sent (evenly spaced, the newest included)
UPDATE_EVERY_S = 1.0  # between two updates of a training's outputs (sooner for a start, an end, a warning)
PREVIEW_WIDTH = 384  # Trainer.preview's scale_to: the real grid is scaled like the samples
STRIP_LIMIT = 8  # earlier sample grids in the strip (spread evenly over the run)
STRIP_WIDTH = 128
GIF_FRAMES = 60  # at most, spread evenly over the run
GIF_MAX_WIDTH = 384
UPLOAD_HEIGHT = 150  # px: the file list scrolls inside this
SHEET_HEIGHT = 300
GRID_HEIGHT = 300
STRIP_HEIGHT = 130
FILE_HEIGHT = 90
GIF_NAME = "progression.gif"  # in the run's previews/ folder: kept out of the checkpoint zip and the Hub push


def _curve_frame(rows: list[dict[str, float]], curves: tuple[tuple[str, str, str], ...], lang: str,
                 drawn: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The plot's long table (step, value, curve) of the history columns in ``drawn`` (default: all of
    ``curves``), each curve named in ``lang``. Every curve's name comes first in a row without a value, so
    the plot's colours and legend know every curve from the first frame on (Gradio's plot fixes its colour
    domain when it first draws, and redraws -- blank for a moment -- only when its settings change)."""
    names = {column: t(key, lang) for column, key, _ in curves}
    head = pd.DataFrame({"step": [float("nan")] * len(names), "value": [float("nan")] * len(names),
                         "curve": list(names.values())})
    wanted = drawn if drawn is not None else tuple(names)
    columns = [c for c in wanted if rows and c in rows[0]]
    if not columns:
        return head
    wide = pd.DataFrame(rows[-PLOT_ROWS:])
    long = wide.melt(id_vars="step", value_vars=columns, var_name="curve", value_name="value")
    long["curve"] = long["curve"].map(names)
    return pd.concat([head, long[["step", "value", "curve"]]], ignore_index=True)


def _plot_settings(curves: tuple[tuple[str, str, str], ...], lang: str, y_key: str,
                   legend: list[str] | None = None) -> dict[str, Any]:
    """The plot's words and colours in ``lang``: named curves, axis titles, no "curve" legend title."""
    return {"color_map": {t(key, lang): colour for _, key, colour in curves}, "x_title": t("train.axis.step", lang),
            "y_title": t(y_key, lang), "color_title": "", "colors_in_legend": legend}


def _loss_legend(lang: str, lr_changed: bool) -> list[str]:
    return [t(key, lang) for column, key, _ in LOSS_CURVES if lr_changed or not column.startswith("lr_")]


def _empty_plots(lang: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both plots before training: no lines yet, but the legend already names the curves."""
    return (gr.update(value=_curve_frame([], LOSS_CURVES, lang),
                      **_plot_settings(LOSS_CURVES, lang, "train.axis.loss", _loss_legend(lang, False))),
            gr.update(value=_curve_frame([], PROB_CURVES, lang), **_plot_settings(PROB_CURVES, lang, "train.axis.d_output")))


class _View:
    """Turns a job's events into widget values, in ``lang`` (the page's language).

    ``outputs()`` are /train's outputs (the API's: plain tables with the history's column names);
    ``page_outputs()`` are what the page shows: the same, with named curves, plus the real images next to
    the samples, the strip of earlier samples and, at the end, the samples as a GIF."""

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
        self.frames: list[tuple[int, Image.Image]] = []  # (step, sample grid) of every preview
        self.gif: str | None = None
        self._finished: tuple[Path, Path] | None = None  # (run folder, download folder) once it ended
        self._real: str | None = None
        self._thumbs: dict[int, str] = {}
        self._thumb_dir: Path | None = None
        self._sent: dict[str, Any] = {}  # what the page was last sent, to skip what hasn't changed

    def add(self, event: TrainEvent) -> None:
        self.last = event
        self.lr_changed |= event.kind == "lr"
        if event.losses:
            self.rows.append({"step": event.step, **event.losses})
        if event.preview is not None:  # saved lazily: re-attaching replays every event of the job
            self._unsaved = event.preview
            self.frames.append((event.step, event.preview))
        for h in event.health:
            icon = "⚠️" if h.level == "warning" else ("🛑" if h.level == "error" else "ℹ️")
            text = translate_message(h.text, self.lang)
            self.health.append(f"{icon} {t('train.health.at_step', self.lang, step=event.step)} {text}")
        if event.kind == "start" and event.message:
            self.health.append(f"ℹ️ {translate_message(event.message, self.lang)}")
        if event.checkpoint is not None and event.kind in ("done", "stopped"):
            out = output_dir("run")
            self.files = [str(zip_run(event.checkpoint, out / f"{Path(event.checkpoint).name}.zip"))]
            self._finished = (Path(event.checkpoint), out)

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
            if ev.growing:  # progressive growing, below the output size: the samples are enlarged
                status += " · " + t("train.status.growing", lang, size=f"{ev.growing}×{ev.growing}")
        if job.status == "done":
            status = t("train.status.done", lang, steps=ev.step if ev else 0)
        elif job.status == "stopped" and job.limit_reached:
            status = t("train.status.time_limit", lang, step=ev.step if ev else 0,
                       minutes=f"{job.time_limit_s / 60:g}")
        elif job.status == "stopped":
            status = t("train.status.stopped", lang, step=ev.step if ev else 0)
        elif job.status == "error":
            status = t("train.status.failed", lang, error=translate_message(job.error, lang))
        total = ev.total_steps if ev else 1
        progress = _progress_html(ev.step if ev else 0, total)
        rows = self._plot_rows()
        df = pd.DataFrame(rows) if rows else pd.DataFrame({"step": [], "loss_d": [], "loss_g": [], "d_real": [], "d_fake": []})
        curves = ["loss_d", "loss_g"]
        if self.lr_changed and "lr_g" in df:  # the change is marked: each rate as a share of its first value
            shares = [self._lr_shares(r) for r in rows]
            for column, key in (("lr_g", "train.plot.lr_g"), ("lr_d", "train.plot.lr_d")):
                df[t(key, lang)] = [share.get(column, float("nan")) for share in shares]
                curves.append(t(key, lang))
        losses = df.melt(id_vars="step", value_vars=curves, var_name="curve", value_name="value")
        probs = df.melt(id_vars="step", value_vars=["d_real", "d_fake"], var_name="curve", value_name="value")
        health = "\n\n".join(self.health[-12:]) or t("train.health.none", lang)
        return (status + "\n\n" + progress, self.preview, losses, probs, health, self.files, self.run_dir)

    # ----------------------------------------------------------------- what the page shows besides
    def page_outputs(self) -> tuple[Any, ...]:
        """The page's outputs (see ``page_outputs`` in build_train_tab): /train's, with the curves named in
        the page's language, then the real grid, the strip and the GIF; what hasn't changed is skipped."""
        status, preview, _, _, health, files, run_dir = self.outputs()
        lang = self.lang
        rows = self._plot_rows()
        if self.lr_changed:
            rows = [self._lr_shares(r) for r in rows]
        # the learning rates are drawn once they change; their names are in the colours from the start
        losses = _curve_frame(rows, LOSS_CURVES, lang, None if self.lr_changed else ("loss_d", "loss_g"))
        probs = _curve_frame(rows, PROB_CURVES, lang)
        loss_settings = _plot_settings(LOSS_CURVES, lang, "train.axis.loss", _loss_legend(lang, self.lr_changed))
        prob_settings = _plot_settings(PROB_CURVES, lang, "train.axis.d_output")
        if self._sent.get("loss_settings") == loss_settings:
            loss_settings = {}  # a setting sent again (a new list) would make the plot redraw from blank
        else:
            self._sent["loss_settings"] = loss_settings
        if self._sent.get("prob_settings") == prob_settings:
            prob_settings = {}
        else:
            self._sent["prob_settings"] = prob_settings
        self._write_gif()
        return (status, preview, gr.update(value=losses, **loss_settings), gr.update(value=probs, **prob_settings),
                health, files, run_dir, self._changed("real", self._real_grid()),
                self._changed("strip", self._strip()), self._changed("gif", self.gif),
                self._changed("watch", gr.update(visible=True)), self._changed("after", gr.update(visible=True)))

    def _plot_rows(self) -> list[dict[str, float]]:
        """The history rows the plots get: the newest PLOT_ROWS steps, at most PAGE_POINTS of them, evenly
        spaced with the newest kept. A point per pixel or so is all a plot can show, and each update's table
        is encoded, compared with the last one and sent whole: 2,000 rows twice a second cost the server
        more than a class's Generate clicks (benchmarks/classroom_load.py). The whole history stays in the
        run folder."""
        rows = self.rows[-PLOT_ROWS:]
        if len(rows) > PAGE_POINTS:
            every = -(-len(rows) // PAGE_POINTS)
            rows = rows[-1 - (len(rows) - 1) // every * every::every]
        return rows

    def _changed(self, name: str, value: Any) -> Any:
        if name in self._sent and self._sent[name] == value:
            return gr.skip()
        self._sent[name] = value
        return value

    def _lr_shares(self, row: dict[str, float]) -> dict[str, float]:
        """A history row with each learning rate as a share of its first value (the change is what shows)."""
        first = self.rows[0]
        return {**row, **{c: row[c] / first[c] for c in ("lr_g", "lr_d") if c in row and first.get(c)}}

    def _real_grid(self) -> str | None:
        """16 real training images (spread over the set) tiled and scaled like the samples next to them."""
        if self._real is None:
            data = getattr(getattr(self.job, "trainer", None), "data", None)
            if data is None or len(data) == 0:
                return None
            # the samples' grid: 4 x 4 (a set under 16 images leaves the last cells empty)
            native = tile(data[sample_indices(len(data), 16)].cpu(), columns=4, gap=0, rows=4)
            grid = upscale(native, max(1, PREVIEW_WIDTH // (4 * data.shape[-1])))
            self._real = png_file(grid, output_dir("train-real") / "real.png")
        return self._real

    def _strip(self) -> list[tuple[str, str]]:
        """Up to STRIP_LIMIT earlier sample grids from the first on, every ``stride``-th preview; the stride
        doubles when they would be more, so a shown grid stays in place until it makes room."""
        stride = 1
        while -(-len(self.frames) // stride) > STRIP_LIMIT:
            stride *= 2
        picked = self.frames[::stride]
        for step, frame in picked:
            if step not in self._thumbs:
                self._thumb_dir = self._thumb_dir or output_dir("train-strip")
                small = frame.resize((STRIP_WIDTH, max(1, round(frame.height * STRIP_WIDTH / frame.width))),
                                     Image.Resampling.BOX)
                self._thumbs[step] = png_file(small, self._thumb_dir / f"step{step:07d}.png")
        return [(self._thumbs[step], t("train.strip.step", self.lang, step=step)) for step, _ in picked]

    def _write_gif(self) -> None:
        """Once the run has ended: its samples at every preview step (at most GIF_FRAMES, evenly spread) as
        previews/progression.gif in the run folder, and a copy to download."""
        if self._finished is None or self.gif is not None or not self.frames:
            return
        run, out = self._finished
        frames = [self.frames[i][1] for i in sample_indices(len(self.frames), GIF_FRAMES)]
        if frames[0].width > GIF_MAX_WIDTH:
            factor = -(-frames[0].width // GIF_MAX_WIDTH)
            frames = [f.reduce(factor) for f in frames]
        folder = RunFolder(run).file(RunFolder.PREVIEWS)
        folder.mkdir(parents=True, exist_ok=True)
        gif = save_animation(frames + [frames[-1]] * 3, folder / GIF_NAME, fps=4)  # the last frame lingers
        self.gif = str(shutil.copy2(gif, out / GIF_NAME))


def _follow(job: Job, lang: str | None = None, page: bool = False) -> Any:
    view = _View(job, lang)
    show = view.page_outputs if page else view.outputs
    every = UPDATE_EVERY_S  # each update redraws pictures and plots, and costs the server the plots' encoding
    last_yield = 0.0
    for batch in job.follow():
        for event in batch:
            view.add(event)
        # a new preview waits for the next update (at 10 steps per preview a fast run makes
        # dozens a second); the strip and the GIF keep every one
        important = any(e.kind not in ("step", "preview") for e in batch)
        if important or time.monotonic() - last_yield > every:
            last_yield = time.monotonic()
            yield show()
    yield show()


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
    job, info = _start_job(dict(zip(TRAIN_PARAMS, args)))
    for outputs in _follow(job):
        yield (*outputs, info)
    if job.status == "error":
        raise gr.Error(t("train.error.failed", error=translate_message(job.error)))


@gpu(duration=600)
@human_errors
@_named_parameters(TRAIN_PARAMS)
def train_in_page(*args: Any) -> Any:
    """The Start button: ``train`` with what the page shows besides (named curves, real images next to
    the samples, the strip of earlier samples, the GIF at the end); /train keeps its outputs."""
    job, info = _start_job(dict(zip(TRAIN_PARAMS, args)))
    for outputs in _follow(job, page=True):
        yield (*outputs, info)
    if job.status == "error":
        raise gr.Error(t("train.error.failed", error=translate_message(job.error)))


def _start_job(values: dict[str, Any]) -> tuple[Job, dict[str, str]]:
    """Check /train's values, read the images, start the job; (the job, this browser's job info)."""
    files, unit, steps = values["files"], values["unit"], values["steps"]
    paths = _upload_paths(files)
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
    prune_runs(keep=(resume_dir,) if resume_dir else ())  # a shared server's runs stay within their budget
    intake = IntakeOptions(size=config.image_size, fit=fit, alpha=alpha, max_total_pixels=intake_pixel_budget())
    trainer, summary = prepare_trainer(paths, config, intake=intake, resume=resume_dir, epochs=epochs)
    if not resume:  # a resumed run keeps its saved settings; a new one checkpoints 4 times (every 100+ steps)
        trainer.config.checkpoint_every = max(100, trainer.config.steps // 4)
    claim_run(trainer.out_dir, owner)
    limit_s = train_time_limit_s()
    info_text = _summary_text(summary)
    if limit_s:
        info_text += " " + t("train.info.time_limit", minutes=f"{limit_s / 60:g}")
    gr.Info(info_text)
    # on the CPU the job trains in a process of its own (gandemo.train_process): no GIL shared with visitors
    runner: Trainer | TrainingProcess = trainer
    if use_process(trainer.device):
        runner = TrainingProcess(trainer, resumed=resume_dir is not None, nice=TRAIN_NICE)
    job = JOBS.start("training", str(trainer.device), lambda j: runner.train(j.cancel), describe=_describe,
                     nice=TRAIN_NICE if runner is trainer else 0, time_limit_s=limit_s)
    job.run_dir = run_handle(trainer.out_dir)  # type: ignore[attr-defined]
    job.trainer = runner  # type: ignore[attr-defined]  # for /set_learning_rate (its owner only)
    return job, {"job_id": job.id, "token": job.token, "owner": owner}


def attach(job_info: dict[str, Any] | None, request: gr.Request) -> Any:
    """Re-attach a reloaded page to its job (running or just finished)."""
    lang = request_language(request)
    job = JOBS.get((job_info or {}).get("job_id"))
    if job is None:
        hidden = gr.update(visible=False)
        yield (t(STATUS_IDLE, lang), None, *_empty_plots(lang), "", None, "", None, [], None, hidden, hidden, job_info)
        return
    for outputs in _follow(job, lang, page=True):
        yield (*outputs, job_info)


# ------------------------------------------------------------------ what your GAN will learn from
SHEETS_KEPT = 8  # recent contact sheets kept, so switching the resolution back and forth is instant
_sheets: OrderedDict[tuple[Any, ...], ContactSheet] = OrderedDict()
_sheets_lock = threading.Lock()
SKIPS_LISTED = 4  # skipped files named in the summary line; the rest are counted


def _upload_paths(files: Any) -> list[str]:
    """The uploaded files' paths. Uploads are files: a folder (the upload folder itself, sent over the API)
    would make the intake walk everything in it, other visitors' uploads included."""
    paths = [f if isinstance(f, str) else f.name for f in (files or [])]
    if any(Path(p).is_dir() for p in paths):
        raise InvalidInputError(t("train.error.folder"))
    return paths


def _sheet_for(paths: list[str], options: IntakeOptions) -> ContactSheet:
    """``contact_sheet`` of the upload, remembered for the last few (files, options) asked for."""
    stamp = []
    for path in paths:
        try:
            info = os.stat(path)
            stamp.append((path, info.st_size, info.st_mtime_ns))
        except OSError:
            stamp.append((path, -1, -1))
    key = (tuple(stamp), options)
    with _sheets_lock:
        if key in _sheets:
            _sheets.move_to_end(key)
            return _sheets[key]
    sheet = contact_sheet(paths, options)
    with _sheets_lock:
        _sheets[key] = sheet
        while len(_sheets) > SHEETS_KEPT:
            _sheets.popitem(last=False)
    return sheet


def _reason_words(reason: str, lang: str) -> str:
    """A skip reason's keyword ("empty file") in ``lang``, from the catalog's counted form of it."""
    keyword = reason_keyword(reason)
    for key, entry in catalog().items():
        if key.startswith("message.reason.") and not key.endswith(".more") and entry["en"] == "{msg_n} " + keyword:
            return entry.get(lang, entry["en"]).replace("{msg_n} ", "", 1)
    return keyword


def intake_summary(sheet: ContactSheet, lang: str, min_images: int = IntakeOptions.min_images) -> str:
    """"**40 files:** 37 usable, 3 skipped (empty.jpg: empty file, ...)" in ``lang``."""
    parts = [t("train.intake.summary", lang, files=sheet.files, usable=sheet.usable)]
    if sheet.skipped:
        listed = [f"{name}: {_reason_words(reason, lang)}" for name, reason in sheet.skipped[:SKIPS_LISTED]]
        if len(sheet.skipped) > SKIPS_LISTED:
            listed.append(t("train.intake.more", lang, n=len(sheet.skipped) - SKIPS_LISTED))
        parts.append(t("train.intake.skipped", lang, n=len(sheet.skipped), list=", ".join(listed)))
    if sheet.ignored:
        parts.append(t("train.intake.ignored", lang, n=len(sheet.ignored)))
    text = ", ".join(parts)
    if sheet.usable < min_images:
        text += " " + t("train.intake.too_few", lang, min=min_images)
    warnings = [translate_message(w, lang) for w in sheet.warnings if not w.startswith("The images (")]
    return "\n\n".join([text, *warnings])


def sheet_scale(image: Image.Image) -> int:
    """The whole-number factor that brings the contact sheet closest to its box (about 720 x 600 px)."""
    return max(1, min(720 // image.width, 600 // image.height))


def sheet_caption(sheet: ContactSheet, fit: str, lang: str) -> str:
    fitted = t(f"train.learn_from.{'pad' if fit == 'pad' else 'crop'}", lang)
    if len(sheet.shown) < sheet.usable:
        return t("train.learn_from.sample", lang, shown=len(sheet.shown), usable=sheet.usable, size=sheet.size,
                 fit=fitted)
    return t("train.learn_from.all", lang, usable=sheet.usable, size=sheet.size, fit=fitted)


@human_errors
def learn_from(files: Any, resolution: Any, fit: str, alpha: str) -> tuple[str, str | None, str, Any]:
    """The upload summed up, and the contact sheet of what training will use: every usable image (up to
    64, spread evenly) read exactly as the trainer reads it at ``resolution`` with ``fit`` and ``alpha``."""
    lang = current_language()
    paths = _upload_paths(files)
    if not paths:
        return "", None, "", gr.update(visible=True)
    size = int(resolution) if str(resolution).strip().isdigit() else TrainConfig().image_size
    sheet = _sheet_for(paths, IntakeOptions(size=size, fit=fit, alpha=alpha, max_total_pixels=intake_pixel_budget()))
    picture = None
    if sheet.image is not None:  # whole-number enlargement (crisp pixels) to about the box's size
        shown = upscale(sheet.image, sheet_scale(sheet.image))
        picture = png_file(shown, output_dir("train-sheet") / f"sheet-{sheet.size}.png")
    caption = sheet_caption(sheet, fit, lang) if sheet.image else ""
    if sheet.usable and use_process(pick_device()):
        warm_up()  # training's own process gets ready (imports torch) while the visitor chooses settings
    return intake_summary(sheet, lang), picture, caption, gr.update(visible=sheet.image is None)


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
    return _set_rates(job_info, lr_g, lr_d)


@human_errors
def set_learning_rate_in_page(job_info: dict[str, Any] | None, lr_g: str | None, lr_d: str | None) -> str:
    """The page's Apply button: its boxes are text, so that an empty box reads as empty ("keep") rather than
    as the 0 a number box shows; "2e-5", "0.00002" and "0,00002" are all read."""
    return _set_rates(job_info, _rate_from_text(lr_g), _rate_from_text(lr_d))


def _rate_from_text(text: str | None) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text.replace(",", "."))
    except ValueError:
        raise InvalidInputError(t("train.lr.not_a_number", text=text[:40])) from None


def _set_rates(job_info: dict[str, Any] | None, lr_g: Any, lr_d: Any) -> str:
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
    return _rates_text(rates), f"{rates[0]:g}", f"{rates[1]:g}"


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
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            # a scrolling list of a few rows: the summary below says what the upload holds
            files = tr(gr.File(file_count="multiple", file_types=["image", ".zip", ".tif", ".tiff", ".webp"],
                               elem_id="train-files", height=UPLOAD_HEIGHT),
                       label=("train.files", {"size": format_size(max_upload_bytes())}))
            intake = gr.Markdown(elem_id="train-intake")
            widgets: dict[str, Any] = {}  # field name -> widget

            def place(*names: str) -> None:
                for name in names:
                    widgets[name] = setting_widget(tr, name)

            with gr.Row():  # what the contact sheet shows: the resolution and how images are made square
                place("image_size")
                fit = tr(gr.Radio(["crop", "pad"], value="crop"), label="train.fit",
                         choices=[("train.fit.crop", "crop"), ("train.fit.pad", "pad")])
            place("arch")
            with gr.Row():
                place("steps")
                unit = tr(gr.Radio(["steps", "epochs"], value="steps"), label="train.unit", info="train.unit.info",
                          choices=[("train.unit.steps", "steps"), ("train.unit.epochs", "epochs")])
                place("batch_size")
            with gr.Row():
                start = tr(gr.Button(variant="primary", elem_id="train-start"), value="train.start")
                stop = tr(gr.Button(variant="stop", elem_id="train-stop"), value="train.stop")
            stop_note = gr.Markdown(elem_id="train-stop-note")
            with tr(gr.Accordion("Advanced settings", open=False), label="train.advanced"):
                tr(gr.Markdown(), value="train.fixes")
                for row in ADVANCED_ROWS:
                    with gr.Row():
                        place(*row)
                placed = set(MAIN_ROW).union(*ADVANCED_ROWS)
                others = [name for name in ui_settings().values() if name not in placed]
                if others:
                    with gr.Row():
                        place(*others)
                alpha = tr(gr.Radio(["keep", "flatten"], value="keep"), label="train.alpha",
                           choices=[("train.alpha.keep", "keep"), ("train.alpha.flatten", "flatten")])
                with gr.Row():
                    resume = tr(gr.Dropdown([""], value="", scale=3, allow_custom_value=True),
                                label="train.resume.shared" if is_shared() else "train.resume")
                    refresh = gr.Button("↻", scale=0, min_width=40)
            with tr(gr.Accordion("Learning rate while it trains", open=True, elem_id="train-lr"), label="train.lr.title"):
                tr(gr.Markdown(), value="train.lr.lesson")
                with gr.Row():
                    lr_factor = tr(gr.Number(value=0.1, minimum=0.001, maximum=0.999, elem_id="train-lr-factor",
                                             min_width=80), label="train.lr.factor")
                    lower_btn = tr(gr.Button(elem_id="train-lr-lower"), value="train.lr.lower")
                with gr.Row():
                    # text boxes: a number box can't be empty, and its 0 read as "set the rate to 0" beside Apply
                    new_lr_g = tr(gr.Textbox(max_lines=1, elem_id="train-lr-g"), label="train.lr.new_g", placeholder="train.lr.keep")
                    new_lr_d = tr(gr.Textbox(max_lines=1, elem_id="train-lr-d"), label="train.lr.new_d", placeholder="train.lr.keep")
                    apply_btn = tr(gr.Button(elem_id="train-lr-apply", min_width=80), value="train.lr.apply")
                lr_note = gr.Markdown(elem_id="train-lr-note")
        with gr.Column(scale=3):
            tr(gr.Markdown(), value="train.lesson")  # beside the upload: read while the images go up
            # not registered with the Localizer: on a page load ``attach`` writes it (in the page's language),
            # and a second writer could overwrite a finished job's status with the idle line
            status = gr.Markdown(t(STATUS_IDLE, "en"), elem_id="train-status")
            sheet = tr(gr.Image(type="filepath", interactive=False, elem_id="train-learn-from", height=SHEET_HEIGHT,
                                elem_classes=["pixelated"]), label="train.learn_from")
            hint = tr(gr.Markdown(elem_id="train-learn-from-hint"), value="train.learn_from.empty")
            caption = gr.Markdown(elem_id="train-learn-from-caption")  # written by learn_from, in the page's language
            # while it trains (hidden before): real images next to the newest samples, and the way there
            with gr.Column(visible=False, elem_id="train-watch") as watch:
                with gr.Row(equal_height=True):
                    real = tr(gr.Image(type="filepath", interactive=False, elem_id="train-real", height=GRID_HEIGHT,
                                       elem_classes=["pixelated", "label-above"]), label="train.real")
                    preview = tr(gr.Image(format="png", image_mode=None, type="pil", interactive=False,
                                          height=GRID_HEIGHT, elem_id="train-preview", elem_classes=["pixelated", "label-above"]),
                                 label="train.generated")
                strip = tr(gr.Gallery(elem_id="train-strip", columns=STRIP_LIMIT, rows=1, height=STRIP_HEIGHT,
                                      object_fit="contain", interactive=False, elem_classes=["pixelated"]),
                           label="train.strip")
            loss_empty, prob_empty = _empty_plots("en")
            with gr.Row():
                loss_plot = tr(gr.LinePlot(loss_empty["value"], x="step", y="value", color="curve", height=220,
                                           elem_id="train-loss-plot",
                                           **{k: v for k, v in loss_empty.items() if k not in ("value", "__type__")}),
                               label="train.plot.losses")
                prob_plot = tr(gr.LinePlot(prob_empty["value"], x="step", y="value", color="curve", y_lim=[0, 1],
                                           height=220, elem_id="train-prob-plot",
                                           **{k: v for k, v in prob_empty.items() if k not in ("value", "__type__")}),
                               label="train.plot.d_outputs")
            health = gr.Markdown(elem_id="train-health")
            with gr.Column(visible=False) as after:  # downloads and the run: shown once a run starts
                with gr.Row():
                    result = tr(gr.File(interactive=False, height=FILE_HEIGHT), label="train.checkpoint")
                    gif = tr(gr.File(interactive=False, height=FILE_HEIGHT, elem_id="train-gif"), label="train.gif")
                with gr.Row(equal_height=True):
                    run_dir = tr(gr.Textbox(interactive=False, scale=3), label="train.run_dir")
                    open_btn = tr(gr.Button(scale=1), value="train.open")
                with tr(gr.Accordion("Push to the Hugging Face Hub", open=False), label="train.push"):
                    repo_id = tr(gr.Textbox(), label="train.push.repo_id", placeholder="train.push.repo_id.placeholder")
                    token = tr(gr.Textbox(type="password"), label="train.push.token", info="train.push.token.info")
                    private = tr(gr.Checkbox(value=True), label="train.push.private")
                    push_btn = tr(gr.Button(), value="train.push.button")
                    push_result = gr.Markdown()
    # rendered by the app outside the tabs (ui/__init__.py): inside the Train tab it would only be read from the
    # browser's storage once that tab is opened, after the page-load event that re-attaches a reloaded page
    job_info = gr.BrowserState(None, storage_key="gandemo-train-job", render=False)
    api_start = gr.Button(visible=False)  # /train: the API's endpoint, with the API's outputs
    # /set_learning_rate: the API's endpoint takes numbers (None keeps a rate); the page's boxes are text
    api_lr = gr.Button(visible=False)
    api_lr_g, api_lr_d = (gr.Number(None, minimum=0, maximum=0.1, visible=False) for _ in range(2))

    by_param = {**{API_NAMES.get(name, name): w for name, w in widgets.items()}, "files": files, "unit": unit,
                "fit": fit, "alpha": alpha, "resume": resume, "job_info": job_info}
    settings = [by_param[name] for name in TRAIN_PARAMS]
    outputs = [status, preview, loss_plot, prob_plot, health, result, run_dir, job_info]
    page_outputs = [*outputs[:-1], real, strip, gif, watch, after, job_info]
    unit.change(relabel_length, unit, widgets["steps"], api_visibility="private", queue=False)
    for changed in (files, widgets["image_size"], fit, alpha):
        changed.change(learn_from, [files, widgets["image_size"], fit, alpha], [intake, sheet, caption, hint],
                       api_visibility="private", trigger_mode="always_last", concurrency_limit=2,
                       concurrency_id="train-intake", show_progress_on=[sheet])
    # Progress (and, for bad input, the error badge) shows on the status line only: the toast says what
    # went wrong, and the plots, preview and download panels don't each get a red "Error" of their own.
    start.click(train_in_page, settings, page_outputs, api_visibility="private", concurrency_limit=4,
                concurrency_id="train", show_progress_on=[status]).then(
        lambda: "", None, stop_note, api_visibility="private", queue=False)  # "will stop after this step" is past
    api_start.click(train, settings, outputs, api_name="train", concurrency_limit=4, concurrency_id="train",
                    show_progress_on=[status])
    stop.click(stop_training, job_info, stop_note, api_name="stop_training", queue=False)
    apply_btn.click(set_learning_rate_in_page, [job_info, new_lr_g, new_lr_d], lr_note, api_visibility="private",
                    queue=False)
    api_lr.click(set_learning_rate, [job_info, api_lr_g, api_lr_d], lr_note, api_name="set_learning_rate", queue=False)
    lower_btn.click(lower_learning_rate, [job_info, lr_factor], [lr_note, new_lr_g, new_lr_d],
                    api_visibility="private", queue=False)
    refresh.click(refresh_runs, job_info, resume, api_visibility="private", queue=False)
    push_btn.click(push, [run_dir, repo_id, token, private, job_info], push_result, api_name="push_to_hub")
    learn = (learn_from, [files, widgets["image_size"], fit, alpha], [intake, sheet, caption, hint])
    return {"attach": (attach, job_info, page_outputs), "job_info": job_info, "learn_from": learn, "open_button": open_btn, "run_dir": run_dir,
            "settings": widgets}
