"""Every visible string in English and Vietnamese: one catalog (``catalog.yaml``), one glossary
(``glossary.yaml``), and the language of the request being served.

    t("generate.button")                 # in the current language
    t("train.status.step", "vi", step=3) # a given language, with parameters
    translate_message(str(error), "vi")  # a core error (English prose) in Vietnamese

The core raises errors as English sentences; the catalog's ``message.*`` entries are templates
(``"Only {used} of {total} files ..."``) that ``translate_message`` matches against a sentence and
re-renders in the other language, so the core stays free of UI concerns and its messages can still be
shown in the visitor's language. No Gradio here: the UI sets the language per request with
``use_language``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

LANGUAGES: dict[str, str] = {"en": "English", "vi": "Tiếng Việt"}
DEFAULT_LANGUAGE = "en"
HERE = Path(__file__).resolve().parent
_current: contextvars.ContextVar[str] = contextvars.ContextVar("gandemo_language", default=DEFAULT_LANGUAGE)


@functools.cache
def catalog() -> dict[str, dict[str, str]]:
    """key -> {"en": ..., "vi": ...}, from catalog.yaml (and lab.yaml, the Lab's own strings)."""
    entries: dict[str, dict[str, str]] = {}
    for path in sorted(HERE.glob("*.yaml")):
        if path.name == "glossary.yaml":
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key, value in data.items():
            if key in entries:
                raise ValueError(f"i18n key {key!r} is defined twice ({path.name})")
            entries[key] = value
    return entries


@functools.cache
def glossary() -> list[dict[str, str]]:
    return yaml.safe_load((HERE / "glossary.yaml").read_text(encoding="utf-8")) or []


def normalise(lang: str | None) -> str:
    lang = (lang or "").strip().lower().replace("_", "-")
    base = lang.split("-")[0]
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def pick_language(requested: str | None, accept_language: str | None) -> str:
    """A forced language (``?lang=vi``) wins; else the browser's first supported one; else English."""
    if requested and normalise(requested) == requested.strip().lower()[:2]:
        return normalise(requested)
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        base = tag.strip().lower().split("-")[0]
        if base in LANGUAGES:
            ranked.append((-weight, i, base))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def current_language() -> str:
    return _current.get()


@contextlib.contextmanager
def use_language(lang: str | None) -> Iterator[str]:
    token = _current.set(normalise(lang))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def t(key: str, lang: str | None = None, /, **params: Any) -> str:
    """The text for ``key`` in ``lang`` (default: the current request's), with ``{params}`` filled in.

    A missing key is a programming error caught by the tests (tests/test_i18n.py); at run time it
    shows the key itself rather than failing a request."""
    entry = catalog().get(key)
    if entry is None:
        return key
    lang = normalise(lang) if lang else current_language()
    text = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return text.format(**params) if params else text


def missing_translations(lang: str = "vi") -> list[str]:
    """Catalog keys without a text in ``lang`` (the completeness test wants none)."""
    return sorted(k for k, v in catalog().items() if not (v.get(lang) or "").strip())


# ------------------------------------------------------------------- core messages (English prose)
@functools.cache
def _message_patterns() -> list[tuple[re.Pattern[str], str]]:
    """(regex of the English template, key), longest templates first so specific ones win."""
    patterns = []
    for key, entry in catalog().items():
        if not key.startswith("message."):
            continue
        template = entry[DEFAULT_LANGUAGE]
        regex = []
        for literal, field, _, _ in string.Formatter().parse(template):
            regex.append(re.escape(literal))
            if field is not None:
                regex.append(f"(?P<{field}>.+?)")
        patterns.append((re.compile("".join(regex) + r"\Z", re.S), key, len(template)))
    return [(p, k) for p, k, _ in sorted(patterns, key=lambda x: -x[2])]


def translate_message(message: str, lang: str | None = None) -> str:
    """A core message (English) in ``lang``: each sentence that matches a ``message.*`` template is
    re-rendered; a sentence nobody translated stays in English (better than nothing)."""
    lang = normalise(lang) if lang else current_language()
    if lang == DEFAULT_LANGUAGE or not message:
        return message
    whole = _translate_sentence(message, lang)
    if whole is not None:
        return whole
    # several sentences in one message ("Used 3 of 5 files. Only 3 of 5 ..."): translate each
    parts = re.split(r"(?<=[.!?:])\s+(?=[A-Z'\"(])", message)
    return " ".join(_translate_sentence(p, lang) or p for p in parts)


def _translate_sentence(sentence: str, lang: str) -> str | None:
    for pattern, key in _message_patterns():
        m = pattern.match(sentence.strip())
        if m:
            # a nested message may list several problems ("a; b"): each is its own sentence to translate
            params = {k: "; ".join(translate_message(part, lang) for part in v.split("; ")) if k.startswith("msg")
                      else v for k, v in m.groupdict().items()}
            return t(key, lang, **params)
    return None
