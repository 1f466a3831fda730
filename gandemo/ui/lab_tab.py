"""Lab tab: a live 2D GAN (gandemo.lab) you can play, pause, step in halves, break and cure.

Each browser session has its own lab (gandemo.lab.sessions); the play loop streams frames at about
7 per second and checks the pause flag between chunks of steps, so Pause acts at once. All lab
events share one concurrency id with its own limit: they never queue behind Generate or training.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from pathlib import Path
from typing import Any

import gradio as gr

from ..access import lab_run_limit_s
from ..errors import InvalidInputError
from ..i18n import t
from ..lab.config import DATASETS, FIELD_RULES, MAX_STEPS, LabConfig, check_value
from ..lab.data import points_from_sketch, points_from_text
from ..lab.lab import Lab
from ..lab.presets import PRESETS, preset_config
from ..lab.render import LAYERS, render_frame
from ..lab.runner import run_lab
from ..lab.sessions import LabRegistry, LabSession
from .common import human_errors, output_dir, png_file
from .i18n import Localizer

LABS = LabRegistry()
FRAME_INTERVAL_S = 0.12  # ~8 frames a second at most: above the 5 the lesson view needs, light on 2 cores
STATS_INTERVAL_S = 0.5
FRAME_COST_S = 0.04  # steps + drawing + encoding of one frame at the default speed, on one core
CORES = max(1, os.cpu_count() or 1)
CONCURRENCY = {"concurrency_id": "lab", "concurrency_limit": LABS.max_labs}
# /lab_run computes a whole run in one call (up to its time budget on a shared server): one at a time per core,
# in a queue of its own, so such calls never take the slots of the class's playing labs
RUN_CONCURRENCY = {"concurrency_id": "lab-run", "concurrency_limit": CORES}
VIEW_SIZE = 440
LR_CHOICES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 2e-2, 3e-2, 1e-1]
# the settings every lab handler (and the /lab_run endpoint) takes, in this order
SETTINGS = ["dataset", "points", "noise_dim", "noise", "g_layers", "g_units", "d_layers", "d_units", "activation",
            "loss", "d_steps", "g_steps", "opt_g", "opt_d", "lr_g", "lr_d", "batch_size", "label_smoothing",
            "gp_weight", "d_skip_threshold", "minibatch_discrimination", "seed"]
INT_FIELDS = {name for name, rule in FIELD_RULES.items() if rule.kind is int}
FLOAT_FIELDS = {name for name, rule in FIELD_RULES.items() if rule.kind is float}


def frame_interval(playing: int) -> float:
    """Seconds between frames: ~8 a second for a few labs; a whole class playing at once on a small
    server shares the CPU by drawing less often (each frame costs about FRAME_COST_S of one core) rather than
    letting every view fall behind."""
    return max(FRAME_INTERVAL_S, FRAME_COST_S * playing / CORES)


def _session_key(request: gr.Request | None) -> str:
    return (getattr(request, "session_hash", None) or "api") if request is not None else "api"


def config_from(values: dict[str, Any]) -> LabConfig:
    """A validated LabConfig from the widgets' values (a human message for anything wrong)."""
    changes: dict[str, Any] = {}
    for name in SETTINGS:
        value = values[name]
        if name == "points":
            continue
        if name in INT_FIELDS and isinstance(value, float) and value.is_integer():
            value = int(value)  # number boxes send 3.0 for 3; 3.5 stays and is refused by validate()
        if name in ("noise_dim",) and isinstance(value, str) and value.isdigit():
            value = int(value)
        if name in FLOAT_FIELDS:
            value = _typed_number(value)
        changes[name] = value
    if changes.get("dataset") == "custom":
        text = values.get("points") or ""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(t("lab.error.no_points"))
        changes["custom_points"] = points_from_text(text).tolist()
    return LabConfig().replace(**changes).validate()


def _typed_number(value: Any) -> Any:
    """A number typed into a dropdown that takes custom values (the learning rates) arrives as text:
    "0.005" becomes 0.005; anything else stays as it is, for validate() to name in its message."""
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value
    return value


def _labels() -> dict[str, str]:
    keys = ("real", "fake", "arrows", "manifold", "d_says_real", "d_says_fake", "losses", "loss_d", "loss_g",
            "d_outputs", "d_real", "d_fake", "coverage", "density", "step", "lr_change")
    return {k: t(f"lab.render.{k}") for k in keys}


def _stats(session: LabSession, fps: float | None = None, steps_per_s: float | None = None) -> str:
    lab = session.lab
    m = lab.metrics()
    parts = [t("lab.stats.step", step=m["step"])]
    if m.get("loss_d") is not None:
        parts.append(t("lab.stats.losses", loss_d=f"{m['loss_d']:.3f}", loss_g=f"{(m['loss_g'] or 0):.3f}"))
    parts.append(t("lab.stats.d", d_real=f"{m['d_real']:.2f}", d_fake=f"{m['d_fake']:.2f}"))
    if m.get("modes_total"):
        parts.append(t("lab.stats.modes", covered=m["modes_covered"], total=m["modes_total"],
                       quality=f"{100 * m['high_quality']:.0f}"))
    parts.append(t("lab.stats.density", value=f"{m['density_distance']:.2f}"))
    parts.append(t("lab.stats.lr", lr_g=f"{lab.config.lr_g:g}", lr_d=f"{lab.config.lr_d:g}"))
    if fps is not None and steps_per_s is not None:
        parts.append(t("lab.stats.speed", fps=f"{fps:.1f}", steps=f"{steps_per_s:.0f}"))
    return " · ".join(parts)


def _needs_reset(config: LabConfig, current: LabConfig) -> bool:
    """Does going from ``current`` to ``config`` change the networks or the data (not only live settings)?"""
    structural = any(not rule.live and getattr(config, n) != getattr(current, n) for n, rule in FIELD_RULES.items())
    return structural or config.custom_points != current.custom_points


def _points_text(points: list[list[float]]) -> str:
    """Points as the points box shows them: one "x,y" per line."""
    return "\n".join(f"{x:.3f},{y:.3f}" for x, y in points)


def _apply(session: LabSession, config: LabConfig) -> bool:
    """Bring the session's lab to ``config``: live fields change in place, anything else resets the
    lab (new networks or data). Returns True when it reset."""
    lab = session.lab
    current = lab.config
    if _needs_reset(config, current):
        lab.reset(config)
        return True
    live = {n: getattr(config, n) for n in FIELD_RULES if FIELD_RULES[n].live and getattr(config, n) != getattr(current, n)}
    if live:
        lab.update_config(**live)
    return False


class _Frames:
    """JPEG files of the live view (the newest few kept on disk), drawn in the session's language.
    JPEG, not PNG: 1 ms to encode instead of 20, which is most of a frame's budget on 2 cores."""

    def __init__(self, keep: int = 4) -> None:
        self.folder = output_dir("lab")
        self.keep = keep
        self.paths: list[Path] = []

    def __call__(self, session: LabSession, layers: list[str] | None) -> str:
        show = set(layers or []) & LAYERS
        path = self.folder / f"frame-{len(self.paths):06d}.jpg"
        render_frame(session.lab, VIEW_SIZE, show=show, labels=_labels()).save(path, "JPEG", quality=88)
        self.paths.append(path)
        if len(self.paths) > self.keep:  # Gradio has its own copy of each by the time a newer one is written
            self.paths[-self.keep - 1].unlink(missing_ok=True)
        return str(path)


def _settings(args: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(SETTINGS, args))


def takes(*names: str, request: bool = True) -> Any:
    """Give a ``*args`` handler an explicit signature (the settings by name, then ``request``), so
    Gradio passes the request and names the API parameters after the settings."""

    def decorate(fn: Any) -> Any:
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        params = [inspect.Parameter(n, kind) for n in names]
        annotations: dict[str, Any] = {}
        if request:
            params.append(inspect.Parameter("request", kind, annotation=gr.Request))
            annotations["request"] = gr.Request
        fn.__signature__ = inspect.Signature(params)
        fn.__annotations__ = annotations
        return fn

    return decorate


@human_errors
@takes(*SETTINGS, "speed", "layers")
def lab_play(*args: Any) -> Any:
    """Play: stream frames until Pause (or the page closes). args = SETTINGS..., speed, layers, request."""
    *values, speed, layers, request = args
    session = LABS.get(_session_key(request))
    with session.lock:
        _apply(session, config_from(_settings(tuple(values))))
        session.playing = True
    frames = _Frames()
    shown, started, start_step = 0, time.monotonic(), session.lab.step
    steps_per_frame = max(1, min(200, int(speed or 10)))
    stats, stats_at = "", 0.0
    while session.playing:
        tick = time.monotonic()
        with session.lock:
            session.lab.run(steps_per_frame, should_stop=lambda: not session.playing)
            session.touch()
            path = frames(session, layers)
            if tick - stats_at > STATS_INTERVAL_S:  # the numbers are measured on 2000 points: twice a second is plenty
                elapsed = max(time.monotonic() - started, 1e-6)
                stats, stats_at = _stats(session, shown / elapsed, (session.lab.step - start_step) / elapsed), tick
        shown += 1
        yield path, stats, t("lab.narrate.playing")
        time.sleep(max(0.0, frame_interval(LABS.playing()) - (time.monotonic() - tick)))
    with session.lock:
        path = frames(session, layers)
    yield path, _stats(session), t("lab.narrate.paused")


@human_errors
@takes(*SETTINGS, "layers")
def lab_show(*args: Any) -> tuple[Any, Any]:
    """The Lab tab opened: draw the visitor's lab as it stands, without training, so the view is never empty.
    On a first visit that is step 0 (the data, G's first guesses and D's first opinion), from the settings on
    the page. A playing lab draws itself; nothing to do then."""
    *values, layers, request = args
    key = _session_key(request)
    return _draw(LABS.peek(key) or LABS.get(key, config_from(_settings(tuple(values)))), layers)


@human_errors
def lab_redraw(layers: list[str] | None, request: gr.Request) -> tuple[Any, Any]:
    """The page's language changed: draw the visitor's lab again, its labels in the new language (a page that
    never opened the Lab has none, and gets none)."""
    session = LABS.peek(_session_key(request))
    return (gr.skip(), gr.skip()) if session is None else _draw(session, layers)


def _draw(session: LabSession, layers: list[str] | None) -> tuple[Any, Any]:
    if session.playing:
        return gr.skip(), gr.skip()
    with session.lock:
        return _Frames()(session, layers), _stats(session)


def lab_pause(request: gr.Request) -> None:
    session = LABS.peek(_session_key(request))
    if session is not None:
        session.playing = False


def lab_action(action: str, *args: Any) -> tuple[str | None, str, str]:
    """One step, one D phase, one G phase, or a reset; returns the view, stats and narration."""
    *values, layers, request = args
    session = LABS.get(_session_key(request))
    session.playing = False
    with session.lock:
        reset = _apply(session, config_from(_settings(tuple(values))))
        lab = session.lab
        if action == "reset":
            if not reset:
                lab.reset()
            key = "lab.narrate.reset"
        elif action == "d":
            lab.phase_d()
            key = "lab.narrate.d_phase"
        elif action == "g":
            key = "lab.narrate.g_phase" if lab.phase == "d" else "lab.narrate.g_phase_alone"
            lab.phase_g()
        else:
            lab.train_step()
            key = "lab.narrate.step"
        frame = _Frames()(session, layers)
        return frame, _stats(session), t(key, d_steps=lab.config.d_steps, g_steps=lab.config.g_steps, step=lab.step)


def _make_action(action: str) -> Any:
    def handler(*args: Any) -> tuple[str | None, str, str]:
        return lab_action(action, *args)

    handler.__name__ = f"lab_{action}"
    return human_errors(takes(*SETTINGS, "layers")(handler))


@human_errors
@takes(*SETTINGS)
def lab_live_change(*args: Any) -> str:
    """A setting changed: live ones (learning rates, loss, D/G steps...) apply to the running lab at
    its next update; others wait for Reset (and say so)."""
    *values, request = args
    session = LABS.peek(_session_key(request))
    if session is None:
        return ""
    config = config_from(_settings(tuple(values)))
    with session.lock:
        if _needs_reset(config, session.lab.config):
            return t("lab.narrate.needs_reset")
        _apply(session, config)
    return t("lab.narrate.live_change")


@human_errors
def lower_lr(lr_g: float, lr_d: float, request: gr.Request) -> tuple[float, float, str, Any]:
    """The lesson's remedy for oscillation: suddenly lower both learning rates (x0.1), now."""
    lr_g, lr_d = _typed_number(lr_g), _typed_number(lr_d)
    check_value("lr_g", lr_g)
    check_value("lr_d", lr_d)
    new_g, new_d = max(lr_g / 10, 1e-6), max(lr_d / 10, 1e-6)
    session = LABS.peek(_session_key(request))
    stats: Any = gr.update()
    if session is not None:
        with session.lock:
            session.lab.set_learning_rates(lr_g=new_g, lr_d=new_d)
            stats = _stats(session)
    note = t("lab.narrate.lr_lowered", lr_g=f"{new_g:g}", lr_d=f"{new_d:g}", step=session.lab.step if session else 0)
    return new_g, new_d, note, stats


def _widget_values(config: LabConfig) -> list[Any]:
    values = {**{n: getattr(config, n) for n in SETTINGS if n != "points"}, "points": _points_text(config.custom_points or [])}
    return [values[n] for n in SETTINGS]


@human_errors
def choose_preset(name: str, request: gr.Request) -> list[Any]:
    """Load a preset's settings into the controls and start its lab afresh."""
    if name not in PRESETS:
        raise InvalidInputError(t("lab.error.preset", names=", ".join(PRESETS)))
    config = preset_config(name)
    session = LABS.get(_session_key(request))
    session.playing = False
    with session.lock:
        session.lab.reset(config)
        frame = _Frames()(session, sorted(LAYERS))
    return [*_widget_values(config), frame, _stats(session), _preset_text(name)]


@human_errors
def apply_cure(name: str, request: gr.Request) -> list[Any]:
    """The preset's cure: applied to the running lab when it can be (e.g. a lower learning rate),
    otherwise the lab restarts with the cure in place."""
    if name not in PRESETS:
        raise InvalidInputError(t("lab.error.preset", names=", ".join(PRESETS)))
    preset = PRESETS[name]
    session = LABS.get(_session_key(request))
    with session.lock:
        if preset.cure_is_live:
            config = session.lab.config.replace(**preset.cure)
            _apply(session, config)
            note = t("lab.cure.applied_live", step=session.lab.step)
        else:
            session.playing = False
            config = preset_config(name, cure=True)
            session.lab.reset(config)
            note = t("lab.cure.restarted")
        frame = _Frames()(session, sorted(LAYERS))
    return [*_widget_values(session.lab.config), frame, _stats(session), f"{_preset_text(name)}\n\n{note}"]


def _preset_text(name: str) -> str:
    return f"**{t(f'lab.preset.{name}')}.** {t(f'lab.preset.{name}.problem')}\n\n🩹 {t(f'lab.preset.{name}.cure')}"


@human_errors
def sketch_to_points(sketch: Any) -> tuple[str, str]:
    """Turn a drawing into data points (dark strokes become points)."""
    image = sketch.get("composite") if isinstance(sketch, dict) else sketch
    if image is None:
        raise InvalidInputError(t("lab.error.empty_sketch"))
    points = points_from_sketch(image)
    return _points_text(points.tolist()), "custom"


@human_errors
@takes(*SETTINGS, "steps", "layers", request=False)
def lab_run(*args: Any) -> tuple[str, dict[str, Any]]:
    """A fresh lab from these settings, trained ``steps`` steps: the final picture and its metrics
    (the same for the same settings: reproduce a figure from a script)."""
    path, metrics, _ = _run(*args)
    return path, metrics


@human_errors
@takes(*SETTINGS, "steps", "layers", request=False)
def lab_run_in_page(*args: Any) -> tuple[str, str]:
    """The page's "run from scratch" button: ``lab_run``'s picture, and its measurements as a sentence in the
    page's language (the API keeps the metrics as a dict)."""
    path, metrics, lab = _run(*args)
    summary = _stats(LabSession(lab))
    return path, t("lab.run.summary", steps=metrics["steps"], stats=summary)


def _run(*args: Any) -> tuple[str, dict[str, Any], Lab]:
    *values, steps, layers = args
    if isinstance(steps, float) and steps.is_integer():
        steps = int(steps)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise InvalidInputError(t("lab.error.steps", max=MAX_STEPS))
    config = config_from(_settings(tuple(values)))
    show = set(layers or LAYERS) & LAYERS
    result = run_lab(config, steps, size=VIEW_SIZE, show=show, labels=_labels(), time_budget_s=lab_run_limit_s())
    metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.metrics.items()}
    path = png_file(result.image, output_dir("lab-run") / f"lab-{steps}.png")
    assert result.lab is not None
    return path, metrics, result.lab


def close_lab(request: gr.Request) -> None:
    LABS.drop(_session_key(request))


def build_lab_tab(tr: Localizer) -> dict[str, dict[str, Any]]:
    """The tab's components and events. Returns the events the app wires to the tab and the language switch, as
    keyword arguments of a Gradio event (in the labs' worker pool, like every lab event): "show" draws the lab as
    it stands when the tab opens, "redraw" again in a new language."""
    tr(gr.Markdown(), value="lab.intro")
    with gr.Row():
        with gr.Column(scale=3, min_width=420):
            view = tr(gr.Image(type="filepath", interactive=False, elem_id="lab-view", show_label=False,
                               buttons=["download", "fullscreen"]), label="lab.view")
            stats = gr.Markdown(elem_id="lab-stats")
            narration = tr(gr.Markdown(elem_id="lab-narration"), value="lab.narrate.start")
            with gr.Row():
                play = tr(gr.Button(variant="primary", elem_id="lab-play", min_width=80), value="lab.play")
                pause = tr(gr.Button(elem_id="lab-pause", min_width=80), value="lab.pause")
                step = tr(gr.Button(elem_id="lab-step", min_width=80), value="lab.step")
                phase_d = tr(gr.Button(elem_id="lab-phase-d", min_width=80), value="lab.phase_d")
                phase_g = tr(gr.Button(elem_id="lab-phase-g", min_width=80), value="lab.phase_g")
                reset = tr(gr.Button(elem_id="lab-reset", min_width=80), value="lab.reset")
            with gr.Row():
                speed = tr(gr.Slider(1, 100, value=10, step=1, elem_id="lab-speed"), label="lab.speed", info="lab.speed.info")
                layers = tr(gr.CheckboxGroup(value=sorted(LAYERS), elem_id="lab-layers"), label="lab.layers",
                            choices=[(f"lab.layer.{name}", name) for name in sorted(LAYERS)])
            tr(gr.Markdown(), value="lab.legend")
        with gr.Column(scale=2, min_width=320):
            with gr.Group():
                preset = tr(gr.Dropdown(list(PRESETS), value="default", elem_id="lab-preset"), label="lab.preset",
                            info="lab.preset.info", choices=[(f"lab.preset.{n}", n) for n in PRESETS])
                preset_text = gr.Markdown(elem_id="lab-preset-text")
                cure = tr(gr.Button(elem_id="lab-cure"), value="lab.cure")
            lower = tr(gr.Button(variant="stop", elem_id="lab-lower-lr"), value="lab.lower_lr")
            with tr(gr.Accordion(open=True), label="lab.section.data"):
                dataset = tr(gr.Radio(value="ring", elem_id="lab-dataset"), label="lab.dataset",
                             choices=[(f"lab.dataset.{n}", n) for n in DATASETS])
                with tr(gr.Accordion(open=False), label="lab.section.draw"):
                    sketch = tr(gr.Sketchpad(type="pil", image_mode="RGBA", canvas_size=(320, 320), elem_id="lab-sketch"),
                                label="lab.sketch")
                    use_sketch = tr(gr.Button(size="sm"), value="lab.use_sketch")
                    points = tr(gr.Textbox("", lines=3, max_lines=8, elem_id="lab-points"), label="lab.points",
                                placeholder="lab.points.placeholder")
            with tr(gr.Accordion(open=False), label="lab.section.networks"):
                tr(gr.Markdown(), value="lab.concept.networks")
                with gr.Row():
                    g_layers = tr(gr.Slider(0, 4, value=2, step=1), label="lab.g_layers")
                    g_units = tr(gr.Slider(4, 128, value=64, step=4), label="lab.g_units")
                with gr.Row():
                    d_layers = tr(gr.Slider(0, 4, value=2, step=1), label="lab.d_layers")
                    d_units = tr(gr.Slider(4, 128, value=64, step=4), label="lab.d_units")
                activation = tr(gr.Radio(value="relu"), label="lab.activation",
                                choices=[(f"lab.activation.{a}", a) for a in FIELD_RULES["activation"].choices])
                with gr.Row():
                    noise_dim = tr(gr.Radio(value=2), label="lab.noise_dim", info="lab.noise_dim.info",
                                   choices=[("lab.noise_dim.1", 1), ("lab.noise_dim.2", 2)])
                    noise = tr(gr.Radio(value="gaussian"), label="lab.noise",
                               choices=[("lab.noise.gaussian", "gaussian"), ("lab.noise.uniform", "uniform")])
                seed = tr(gr.Number(value=0, precision=None, step=1, minimum=0), label="lab.seed")
            with tr(gr.Accordion(open=True), label="lab.section.training"):
                loss = tr(gr.Radio(value="nonsaturating", elem_id="lab-loss"), label="lab.loss", info="lab.loss.info",
                          choices=[(f"lab.loss.{n}", n) for n in FIELD_RULES["loss"].choices])
                with gr.Row():
                    d_steps = tr(gr.Slider(0, 10, value=1, step=1, elem_id="lab-d-steps"), label="lab.d_steps", info="lab.d_steps.info")
                    g_steps = tr(gr.Slider(0, 10, value=1, step=1, elem_id="lab-g-steps"), label="lab.g_steps")
                with gr.Row():
                    lr_g = tr(gr.Dropdown(LR_CHOICES, value=1e-3, allow_custom_value=True, elem_id="lab-lr-g"), label="lab.lr_g")
                    lr_d = tr(gr.Dropdown(LR_CHOICES, value=1e-3, allow_custom_value=True, elem_id="lab-lr-d"), label="lab.lr_d")
                tr(gr.Markdown(), value="lab.concept.lr")
                with gr.Row():
                    opt_g = tr(gr.Radio(value="adam"), label="lab.opt_g", choices=[("lab.opt.adam", "adam"), ("lab.opt.sgd", "sgd")])
                    opt_d = tr(gr.Radio(value="adam"), label="lab.opt_d", choices=[("lab.opt.adam", "adam"), ("lab.opt.sgd", "sgd")])
                batch_size = tr(gr.Slider(8, 1024, value=128, step=8), label="lab.batch_size")
            with tr(gr.Accordion(open=False), label="lab.section.remedies"):
                tr(gr.Markdown(), value="lab.concept.remedies")
                label_smoothing = tr(gr.Slider(0.5, 1.0, value=1.0, step=0.05), label="lab.label_smoothing",
                                     info="lab.label_smoothing.info")
                d_skip = tr(gr.Slider(0, 2, value=0, step=0.05), label="lab.d_skip", info="lab.d_skip.info")
                gp_weight = tr(gr.Slider(0, 10, value=0, step=0.1), label="lab.gp", info="lab.gp.info")
                minibatch = tr(gr.Checkbox(value=False), label="lab.minibatch", info="lab.minibatch.info")
            with tr(gr.Accordion(open=False), label="lab.section.figure"):
                run_steps = tr(gr.Number(value=2000, precision=None, step=1, minimum=1, maximum=MAX_STEPS, elem_id="lab-run-steps"),
                               label="lab.run_steps")
                run_btn = tr(gr.Button(elem_id="lab-run"), value="lab.run")
                run_summary = gr.Markdown(elem_id="lab-run-summary")
                # /lab_run's metrics as a dict, for scripts; the page shows them as a sentence instead
                run_metrics = gr.JSON(visible=False, elem_id="lab-run-metrics")
                api_run = gr.Button(visible=False)

    settings = [dataset, points, noise_dim, noise, g_layers, g_units, d_layers, d_units, activation, loss, d_steps,
                g_steps, opt_g, opt_d, lr_g, lr_d, batch_size, label_smoothing, gp_weight, d_skip, minibatch, seed]
    assert len(settings) == len(SETTINGS)
    frame_out = [view, stats, narration]
    playing = play.click(lab_play, [*settings, speed, layers], frame_out, api_visibility="private",
                         show_progress="hidden", **CONCURRENCY)
    pause.click(lab_pause, None, None, api_visibility="private", queue=False)
    for button, action in ((step, "step"), (phase_d, "d"), (phase_g, "g"), (reset, "reset")):
        button.click(_make_action(action), [*settings, layers], frame_out, api_visibility="private",
                     show_progress="hidden", **CONCURRENCY)
    for control in settings:
        control.input(lab_live_change, settings, narration, api_visibility="private", show_progress="hidden",
                      **CONCURRENCY)
    lower.click(lower_lr, [lr_g, lr_d], [lr_g, lr_d, narration, stats], api_visibility="private", **CONCURRENCY)
    preset.input(choose_preset, preset, [*settings, view, stats, preset_text], api_visibility="private",
                 cancels=[playing], **CONCURRENCY)
    cure.click(apply_cure, preset, [*settings, view, stats, preset_text], api_visibility="private", **CONCURRENCY)
    use_sketch.click(sketch_to_points, sketch, [points, dataset], api_visibility="private", **CONCURRENCY)
    run_btn.click(lab_run_in_page, [*settings, run_steps, layers], [view, run_summary], api_visibility="private",
                  **RUN_CONCURRENCY)
    api_run.click(lab_run, [*settings, run_steps, layers], [view, run_metrics], api_name="lab_run", **RUN_CONCURRENCY)
    return {"show": {"fn": lab_show, "inputs": [*settings, layers], "outputs": [view, stats], **CONCURRENCY},
            "redraw": {"fn": lab_redraw, "inputs": [layers], "outputs": [view, stats], **CONCURRENCY}}
