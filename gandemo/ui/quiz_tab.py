"""Check yourself: the lesson's concept map (where each idea lives in the app) and its quiz-style
questions with instant feedback, in the visitor's language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..i18n import t
from .i18n import Localizer, request_language


@dataclass(frozen=True)
class Question:
    key: str
    options: tuple[str, ...]
    correct: frozenset[str]  # several for a "choose all that apply" question

    @property
    def multiple(self) -> bool:
        return len(self.correct) > 1


# The options are in a fixed order (the same page for everyone in a class), with the right answers in
# different places: a learner must not be able to score by always picking the first one.
QUESTIONS = (
    Question("generator", ("image_to_label", "noise_to_image", "image_to_noise"), frozenset({"noise_to_image"})),
    Question("networks", ("one", "two", "three"), frozenset({"two"})),
    Question("discriminator", ("an_image", "the_noise", "real_probability"), frozenset({"real_probability"})),
    Question("problems", ("hyperparameters", "needs_labels", "mode_collapse", "high_resolution", "balance"),
             frozenset({"mode_collapse", "hyperparameters", "balance", "high_resolution"})),
    Question("losses", ("bug", "converged", "opponents"), frozenset({"opponents"})),
    Question("style", ("gram", "pixels", "labels"), frozenset({"gram"})),
)


def feedback(question: Question, answer: Any, lang: str) -> str:
    """One line: right or wrong, and why (the explanation is the same either way: it teaches)."""
    chosen = set(answer if isinstance(answer, list) else [answer] if answer else [])
    if not chosen:
        return ""
    verdict = "quiz.right" if chosen == set(question.correct) else (
        "quiz.partly" if question.multiple and chosen & question.correct else "quiz.wrong")
    return f"{t(verdict, lang)} {t(f'quiz.{question.key}.why', lang)}"


def build_quiz_tab(tr: Localizer) -> None:
    tr(gr.Markdown(), value="quiz.map")
    tr(gr.Markdown(), value="quiz.intro")
    for question in QUESTIONS:
        with gr.Group():
            choices = [(f"quiz.{question.key}.{o}", o) for o in question.options]
            kind = gr.CheckboxGroup if question.multiple else gr.Radio
            widget = tr(kind(choices=list(question.options), elem_id=f"quiz-{question.key}"),
                        label=f"quiz.{question.key}", choices=choices)
            answer = gr.Markdown(elem_id=f"quiz-{question.key}-feedback")

        def check(value: Any, request: gr.Request, question: Question = question) -> str:
            return feedback(question, value, request_language(request))

        widget.input(check, widget, answer, api_visibility="private", queue=False, show_progress="hidden")
