"""The Gradio app: one module per tab, joined here, in the visitor's language (see ui/i18n.py)."""

from __future__ import annotations

import gradio as gr

from .. import __version__
from ..i18n import t
from .generate_tab import ENLARGE_CSS, build_generate_tab, load_model
from .i18n import Localizer, connect, language_switch
from .lab_tab import build_lab_tab, close_lab
from .quiz_tab import build_quiz_tab
from .style_tab import build_style_tab
from .train_tab import build_train_tab

CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; image-rendering: crisp-edges; }
#model-info { min-height: 6em; }
#language-switch { margin-left: auto; }
/* Pictures to read or click (the sample grid a seed is picked from, the frames, charts, training samples): their
   label sits above them, where Gradio floats it over the picture's top-left corner */
.label-above .image-container { padding-top: 2.4em; box-sizing: border-box; }
""" + ENLARGE_CSS

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink")


def open_in_generate(run_dir: str) -> tuple[dict, dict, str]:
    if not run_dir:
        raise gr.Error(t("train.no_model_yet"))
    picker, info = load_model(run_dir)
    return gr.Tabs(selected="generate"), picker, info


def build_app() -> gr.Blocks:
    tr = Localizer()
    with gr.Blocks(title=t("app.title", "en"), delete_cache=(1800, 3600)) as demo:
        with gr.Row(equal_height=True):
            with gr.Column(scale=4):
                gr.Markdown(f"# gandemo <small>v{__version__}</small>")
                tr(gr.Markdown(), value="app.subtitle")
            switch = language_switch()
        with gr.Tabs() as tabs:
            with tr(gr.Tab("Generate", id="generate"), label="tab.generate"):
                generate_parts = build_generate_tab(tr)
            with tr(gr.Tab("Lab", id="lab"), label="tab.lab") as lab_tab:
                lab_parts = build_lab_tab(tr)
            with tr(gr.Tab("Train", id="train"), label="tab.train"):
                train_parts = build_train_tab(tr)
            with tr(gr.Tab("Style transfer", id="style"), label="tab.style"):
                build_style_tab(tr)
            with tr(gr.Tab("Check yourself", id="quiz"), label="tab.quiz"):
                build_quiz_tab(tr)
        train_parts["job_info"].render()  # the browser's job and owner key, read at page load (see build_train_tab)
        switched = connect(demo, tr, switch)
        # the upload's summary and the sheet's caption are written from the data: write them again, in the new language
        learn, learn_in, learn_out = train_parts["learn_from"]
        switched.then(learn, learn_in, learn_out, api_visibility="private", show_progress="hidden")
        # the Lab's view is drawn when its tab opens, and again in the new language (its labels are in the picture)
        lab_tab.select(**lab_parts["show"], api_visibility="private", show_progress="hidden")
        switched.then(**lab_parts["redraw"], api_visibility="private", show_progress="hidden")
        demo.unload(close_lab)  # a closed page frees its lab at once
        demo.load(load_model, generate_parts["model"], [generate_parts["model"], generate_parts["info"]],
                  api_visibility="private")
        attach, attach_in, attach_out = train_parts["attach"]
        demo.load(attach, attach_in, attach_out, api_visibility="private", show_progress_on=attach_out[:1])
        train_parts["open_button"].click(
            open_in_generate, train_parts["run_dir"], [tabs, generate_parts["model"], generate_parts["info"]],
            api_visibility="private",
        )
    return demo
