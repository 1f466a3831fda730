"""The "Check yourself" questions: every option and explanation exists in both languages, the feedback
says right, partly or wrong, and the right answers are not always in the same place."""

from __future__ import annotations

import pytest

from gandemo.i18n import LANGUAGES, t
from gandemo.ui.quiz_tab import QUESTIONS, feedback


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_every_question_option_and_explanation_is_written_in_each_language(lang: str) -> None:
    for question in QUESTIONS:
        assert question.correct <= set(question.options), question.key
        for key in (f"quiz.{question.key}", f"quiz.{question.key}.why",
                    *(f"quiz.{question.key}.{option}" for option in question.options)):
            assert t(key, lang) != key and t(key, lang).strip(), (key, lang)


def test_feedback_says_right_partly_or_wrong_and_always_explains() -> None:
    single = next(q for q in QUESTIONS if not q.multiple)
    several = next(q for q in QUESTIONS if q.multiple)
    right, wrong = next(iter(single.correct)), next(o for o in single.options if o not in single.correct)
    why = t(f"quiz.{single.key}.why", "en")
    assert feedback(single, right, "en") == f"{t('quiz.right', 'en')} {why}"
    assert feedback(single, wrong, "en") == f"{t('quiz.wrong', 'en')} {why}"
    assert feedback(single, None, "en") == ""
    some = sorted(several.correct)[:2]
    assert feedback(several, some, "en").startswith(t("quiz.partly", "en"))
    assert feedback(several, sorted(several.correct), "vi").startswith(t("quiz.right", "vi"))
    wrong_only = [o for o in several.options if o not in several.correct]
    assert feedback(several, wrong_only, "en").startswith(t("quiz.wrong", "en"))


def test_the_right_answer_is_not_always_first() -> None:
    singles = [q for q in QUESTIONS if not q.multiple]
    positions = {q.options.index(next(iter(q.correct))) for q in singles}
    assert len(positions) >= 3, positions  # first, second and last all occur
    several = next(q for q in QUESTIONS if q.multiple)
    wrong = [i for i, o in enumerate(several.options) if o not in several.correct]
    assert wrong and min(wrong) < len(several.correct), "the wrong option of the 'choose all' question sits among the right ones"
