"""The UI in the visitor's language.

Gradio 6.31's ``gr.I18n`` only picks locales its own frontend ships, and Vietnamese is not one of
them (in Chromium with vi-VN it falls back to English). So the language is chosen on the server:

- every translatable property of a component is registered with ``Localizer`` under a catalog key;
- when a page loads, ``on_load`` picks the language (``?lang=vi|en`` forces it, else the browser's
  Accept-Language) and returns one update per registered component; the switch on the page does the
  same; the choice is remembered for the browser session (``session_hash``);
- handlers see the session's language through ``gandemo.i18n.current_language()``: ``human_errors``
  (gandemo.ui.common) sets it for each call, so status lines and errors come out in that language.
API endpoint names and parameters never change with the language.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import gradio as gr

from ..i18n import LANGUAGES, catalog, normalise, pick_language, t

MAX_SESSIONS = 10_000
_lock = threading.Lock()
_session_language: OrderedDict[str, str] = OrderedDict()

PROPS = ("label", "info", "value", "placeholder")


def remember(session: str | None, lang: str) -> None:
    if not session:
        return
    with _lock:
        _session_language[session] = lang
        _session_language.move_to_end(session)
        while len(_session_language) > MAX_SESSIONS:
            _session_language.popitem(last=False)


def request_language(request: gr.Request | None) -> str:
    """The language of the page that sent ``request``: its session's choice, else its browser's."""
    if request is None:
        return "en"
    session = getattr(request, "session_hash", None)
    with _lock:
        chosen = _session_language.get(session) if session else None
    if chosen:
        return chosen
    headers = getattr(request, "headers", None) or {}
    # the page's own address (?lang=vi) travels as the Referer of every queue request
    forced = parse_qs(urlsplit(headers.get("referer") or "").query).get("lang", [None])[0]
    return pick_language(forced, headers.get("accept-language"))


def keep_page_language(examples: gr.Examples) -> None:
    """A click on an example row must set the inputs' values only. Gradio's example loader sends each input
    all of its build-time properties with the value, so the English labels came back on a Vietnamese page;
    without the translatable ones there, the page keeps the labels its language gave it."""
    for props in getattr(examples, "input_component_props", None) or []:
        for name in PROPS:
            if name != "value":
                props.pop(name, None)


class Localizer:
    """Collects (component, {property: catalog key}) while the UI is built; sets the English texts
    at once, and gives the updates that switch every registered text to another language."""

    def __init__(self) -> None:
        self.entries: list[tuple[gr.components.Component | gr.blocks.BlockContext, dict[str, Any]]] = []

    def __call__(self, component: Any, **keys: Any) -> Any:
        """``tr(gr.Button(), value="generate.button")``; ``choices=[(key, value), ...]`` for radios and
        dropdowns (the values stay the same in every language: the API doesn't change); ``headers=[key, ...]``
        for an examples table's columns; a text with parameters is ``(key, {"name": value})``."""
        for prop, key in keys.items():
            if prop == "choices":
                component.choices = [(t(k, "en"), v) for k, v in key]
            elif prop == "headers":  # a Dataset's (gr.Examples') column headers: one key per column
                component.headers = [t(k, "en") for k in key]
            elif prop in PROPS:
                setattr(component, prop, _text(key, "en"))
            else:
                raise ValueError(f"Localizer can't translate {prop!r}")
        self.entries.append((component, keys))
        return component

    @property
    def outputs(self) -> list[Any]:
        return [c for c, _ in self.entries]

    def updates(self, lang: str) -> list[dict[str, Any]]:
        out = []
        for _component, keys in self.entries:
            props: dict[str, Any] = {}
            for prop, key in keys.items():
                props[prop] = ([(t(k, lang), v) for k, v in key] if prop == "choices" else
                               [t(k, lang) for k in key] if prop == "headers" else _text(key, lang))
            out.append(gr.update(**props))
        return out


def _text(key: str | tuple[str, dict[str, Any]], lang: str) -> str:
    """A catalog text; ``(key, {"size": "200 MB"})`` fills in parameters fixed when the UI is built."""
    if isinstance(key, tuple):
        name, params = key
        return t(name, lang, **params)
    return t(key, lang)


def gradio_words_js() -> str:
    """JavaScript for ``launch(js=...)``: while the page shows Vietnamese, Gradio's own interface words
    (upload boxes, toast titles, footer: see gradio.yaml) are swapped in the page as they appear, and
    swapped back for English. The language is read from the switch, which every path sets."""
    words = {entry["en"]: entry["vi"] for key, entry in catalog().items() if key.startswith("gradio.")}
    script = (Path(__file__).with_name("gradio_words.js")).read_text(encoding="utf-8")
    return script.replace("__WORDS__", json.dumps(words, ensure_ascii=False))


def language_switch() -> gr.Radio:
    return gr.Radio([(name, code) for code, name in LANGUAGES.items()], value="en", show_label=False, label="Language / Ngôn ngữ",
                    container=False, elem_id="language-switch", scale=0, min_width=220)


def connect(demo: gr.Blocks, tr: Localizer, switch: gr.Radio) -> Any:
    """Wire the page load and the switch to the localizer (private events: not part of the API); returns the
    switch's event, for texts a tab writes from data (``.then``: they follow in the new language)."""

    def on_load(request: gr.Request) -> list[Any]:
        params = getattr(request, "query_params", None) or {}
        forced = params.get("lang") if hasattr(params, "get") else None
        lang = pick_language(forced, (getattr(request, "headers", None) or {}).get("accept-language"))
        remember(getattr(request, "session_hash", None), lang)
        return [gr.update(value=lang), *tr.updates(lang)]

    def on_switch(lang: str, request: gr.Request) -> list[Any]:
        lang = normalise(lang)
        remember(getattr(request, "session_hash", None), lang)
        return tr.updates(lang)

    demo.load(on_load, None, [switch, *tr.outputs], api_visibility="private", queue=False, show_progress="hidden")
    return switch.input(on_switch, switch, tr.outputs, api_visibility="private", queue=False, show_progress="hidden")
