"""The Gradio app: one module per tab, joined here."""

from __future__ import annotations

import gradio as gr

from .. import __version__
from .generate_tab import build_generate_tab, load_model
from .style_tab import build_style_tab
from .train_tab import build_train_tab

CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; image-rendering: crisp-edges; }
#model-info { min-height: 6em; }
"""

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink")


def open_in_generate(run_dir: str) -> tuple[dict, dict, str]:
    if not run_dir:
        raise gr.Error("No trained model yet: start (or finish) a training run first.")
    picker, info = load_model(run_dir)
    return gr.Tabs(selected="generate"), picker, info


def build_app() -> gr.Blocks:
    with gr.Blocks(title="gandemo: GANs you can touch", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(f"# gandemo <small>v{__version__}</small>\nExplore a GAN's latent space, train your own, stylise images.")
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                generate_parts = build_generate_tab()
            with gr.Tab("Train", id="train"):
                train_parts = build_train_tab()
            with gr.Tab("Style transfer", id="style"):
                build_style_tab()
        demo.load(load_model, generate_parts["model"], [generate_parts["model"], generate_parts["info"]],
                  api_visibility="private")
        attach, attach_in, attach_out = train_parts["attach"]
        demo.load(attach, attach_in, attach_out, api_visibility="private", show_progress_on=attach_out[:1])
        train_parts["open_button"].click(
            open_in_generate, train_parts["run_dir"], [tabs, generate_parts["model"], generate_parts["info"]],
            api_visibility="private",
        )
    return demo
