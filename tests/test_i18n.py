"""The catalog (gandemo/i18n/*.yaml) is complete and consistent, and core messages come out in Vietnamese.

- completeness: every key has an English and a Vietnamese text with the same ``{placeholders}``, and
  every key the code uses (``t("...")``, ``tr(..., label="...")``, ``choices=[("key", value)]``,
  string constants naming a key, f-string keys) is in the catalog;
- glossary: a Vietnamese text whose English uses a lesson term uses the glossary's Vietnamese term;
- ``translate_message`` on real core errors (intake, model sources, explore, training, style);
- ``pick_language``: forced ``?lang=`` wins, else the browser's first supported language, else English.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from gandemo.errors import GandemoError, InvalidInputError, SourceError
from gandemo.i18n import catalog, glossary, pick_language, t, translate_message

SOURCE = Path(__file__).resolve().parents[1] / "gandemo"
KEY = r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+"

# keys the code builds at run time: (how it builds them, the keys that come out)
DYNAMIC_KEYS = {
    'f"generate.kind.{gen.channels}"': ["generate.kind.1", "generate.kind.3", "generate.kind.4"],
    '"generate.source..." + ".shared"': ["generate.source.shared", "generate.source.placeholder.shared",
                                         "generate.source.info.shared"],
    '_with_size("train.files", ...)': ["train.files"],
}

# (catalog key, English glossary term): why its Vietnamese text doesn't use the glossary's word
GLOSSARY_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("lab.narrate.paused", "step"): "'Step through the two phases' is the verb (go through one by one), not a training step",
}


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


# ------------------------------------------------------------------ (a) completeness
def test_every_key_has_english_and_vietnamese() -> None:
    entries = catalog()
    assert len(entries) > 100
    empty = [(k, lang) for k, v in entries.items() for lang in ("en", "vi")
             if not isinstance(v, dict) or not str(v.get(lang) or "").strip()]
    assert empty == [], f"keys without a text: {empty}"


def test_placeholders_match_between_languages() -> None:
    mismatched = {k: (sorted(placeholders(v["en"])), sorted(placeholders(v["vi"])))
                  for k, v in catalog().items() if placeholders(v["en"]) != placeholders(v["vi"])}
    assert mismatched == {}, f"{{placeholders}} differ between en and vi: {mismatched}"


def test_message_templates_have_distinct_english() -> None:
    seen: dict[str, str] = {}
    for key, entry in catalog().items():
        if key.startswith("message."):
            assert entry["en"] not in seen, f"{key} and {seen[entry['en']]} have the same English template"
            seen[entry["en"]] = key


def _used_keys() -> dict[str, list[str]]:
    """Every catalog key the source names: literals passed to t()/label=/info=/value=/placeholder=,
    keys in choices=[("key", value)], and string constants in the catalog's namespaces."""
    namespaces = {k.split(".")[0] for k in catalog()} - {"message"}
    used: dict[str, list[str]] = {}
    contexts = [
        rf"""\bt\(\s*["']({KEY})["']""",
        rf"""\b(?:label|info|value|placeholder)\s*=\s*["']({KEY})["']""",
        rf"""\(\s*["']({KEY})["']\s*,""",  # ("key", value) in choices
    ]
    for path in sorted(SOURCE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(SOURCE.parent))
        for pattern in contexts:
            for m in re.finditer(pattern, text):
                key = m.group(1)
                if key.split(".")[0] in namespaces:
                    used.setdefault(key, []).append(where)
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(KEY, node.value)
                    and node.value.split(".")[0] in namespaces):
                used.setdefault(node.value, []).append(where)
    return used


def test_every_key_the_code_uses_is_in_the_catalog() -> None:
    used = _used_keys()
    assert {"train.lesson", "style.lesson", "train.status.idle", "style.error.no_content", "train.no_model_yet",
            "train.unit.epochs", "style.init.style_noise"} <= set(used), "the source scan found too little"
    missing = {key: sorted(set(files)) for key, files in used.items() if key not in catalog()}
    assert missing == {}, f"keys used in the code but not in the catalog: {missing}"


@pytest.mark.parametrize("built", sorted(DYNAMIC_KEYS))
def test_keys_built_at_run_time_are_in_the_catalog(built: str) -> None:
    missing = [k for k in DYNAMIC_KEYS[built] if k not in catalog()]
    assert missing == [], f"{built} yields keys missing from the catalog: {missing}"


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_the_lesson_map_points_at_places_that_exist(lang: str) -> None:
    """"Check yourself"'s map of the lesson: every idea names at least one place in bold, each a tab of the app
    (or "tab → one of its views"), and every control it names in italics is a label the app shows, in the same
    language. A row saying something isn't built yet names no place and fails."""
    texts = {key: value[lang] for key, value in catalog().items() if not key.startswith("quiz.")}
    tabs = {texts[key] for key in texts if re.fullmatch(r"tab\.[a-z_]+", key)}
    rows = [row for row in t("quiz.map", lang).splitlines() if row.startswith("|")][2:]
    assert len(rows) >= 10
    for row in rows:
        idea, place = (cell.strip() for cell in row.strip("|").split("|"))
        bold = re.findall(r"\*\*(.+?)\*\*", place)
        assert bold, f"{idea}: names no place in the app: {place}"
        for name in bold:
            tab, *view = (part.strip() for part in name.split("→"))
            assert tab in tabs, f"{idea}: {tab!r} is not a tab ({sorted(tabs)})"
            assert all(v in texts.values() for v in view), f"{idea}: {view} is not a view of {tab}"
        for control in re.findall(r"(?<!\*)\*([^*]+?)\*(?!\*)", place):
            assert any(control in text for text in texts.values()), f"{idea}: the app shows no {control!r}"


def test_t_fills_in_parameters_in_both_languages() -> None:
    assert t("train.status.done", "en", steps=2).startswith("✅ Finished 2 steps.")
    assert t("train.status.done", "vi", steps=2).startswith("✅ Đã chạy xong 2 bước.")
    assert t("train.no_model_yet", "en") == "No trained model yet: start (or finish) a training run first."


# ------------------------------------------------------------------ (b) glossary
def _glossary_pairs() -> list[tuple[str, str]]:
    """(English term, the Vietnamese word a text must contain: the glossary's, without its "(English)")."""
    pairs = []
    for entry in glossary():
        vi = re.sub(r"\s*\([^)]*\)\s*$", "", entry["vi"]).strip()
        pairs.append((entry["en"], vi))
    return pairs


def test_glossary_terms_are_used_consistently() -> None:
    problems = []
    for key, entry in catalog().items():
        # Markdown: a line break is a space; {placeholders} are not words of the text
        en = re.sub(r"\{[^{}]*\}", " ", " ".join(entry["en"].split()))
        vi = " ".join(entry["vi"].split()).lower()
        for term, vi_term in _glossary_pairs():
            if (key, term) in GLOSSARY_EXCEPTIONS:
                continue
            if re.search(rf"\b{re.escape(term)}\b", en, re.IGNORECASE) and vi_term.lower() not in vi:
                problems.append(f"{key}: '{term}' should be '{vi_term}'")
    assert problems == [], "Vietnamese texts that don't use the glossary's terms:\n" + "\n".join(problems)


def test_glossary_exceptions_name_real_keys_and_terms() -> None:
    for key, term in GLOSSARY_EXCEPTIONS:
        assert key in catalog(), f"exception for a key that no longer exists: {key}"
        assert any(term == e["en"] for e in glossary()), f"exception for a term not in the glossary: {term}"


# ------------------------------------------------------------------ (c) core messages in Vietnamese
def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?", text)


def assert_vietnamese(english: str, *words: str) -> str:
    vi = translate_message(english, "vi")
    assert vi != english, f"not translated: {english!r}"
    for word in words:
        assert word in vi, f"{word!r} missing from {vi!r} (for {english!r})"
    assert sorted(_numbers(vi)) == sorted(_numbers(english)), f"numbers changed: {english!r} -> {vi!r}"
    assert translate_message(english, "en") == english
    return vi


@pytest.fixture
def bad_files(tmp_path: Path) -> list[str]:
    notes = tmp_path / "notes.png"
    notes.write_text("These are my notes, not a picture.\n")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    good = tmp_path / "good.png"
    Image.new("RGB", (40, 40), "teal").save(good)
    return [str(notes), str(empty), str(good)]


def test_intake_error_in_vietnamese(bad_files: list[str]) -> None:
    from gandemo.intake import IntakeOptions, load_images

    with pytest.raises(InvalidInputError) as info:
        load_images(bad_files, IntakeOptions(size=32))
    english = str(info.value)
    assert english.startswith("Only 1 of 3 files is a usable image"), english
    vi = assert_vietnamese(english, "tệp", "1 tệp không phải ảnh", "1 tệp rỗng", "Đã bỏ qua")
    assert "training" not in vi and "Skipped" not in vi, vi


def test_intake_summary_in_vietnamese(bad_files: list[str]) -> None:
    from gandemo.intake import IntakeOptions, load_images

    dataset = load_images(bad_files[2:], IntakeOptions(size=32, min_images=1))
    assert_vietnamese(dataset.summary(), "Đã dùng 1 trong 1 tệp")
    with pytest.raises(InvalidInputError) as info:
        load_images([], IntakeOptions(size=32))
    assert_vietnamese(str(info.value), "Không tìm thấy tệp nào")


def test_source_error_in_vietnamese() -> None:
    from gandemo.hub import resolve

    with pytest.raises(SourceError) as info:
        resolve("not a repo id!!")
    vi = assert_vietnamese(str(info.value), "'not a repo id!!' không phải một mô hình có sẵn", "mã kho trên Hub")
    assert "is not a bundled model" not in vi


def _core_errors() -> list[tuple[str, Callable[[], object]]]:
    import torch

    from gandemo import explore
    from gandemo.gan.train import TrainConfig, Trainer
    from gandemo.style import StyleSettings
    from gandemo.training import steps_for_epochs

    return [
        ("seed", lambda: explore.check_seed(-1, "seed B")),
        ("truncation", lambda: explore.check_truncation(20)),
        ("batch size", lambda: TrainConfig(batch_size=1).validate()),
        ("diffaugment", lambda: TrainConfig(diffaugment="zoom").validate()),
        ("pack", lambda: TrainConfig(pack=5).validate()),
        ("pack and batch", lambda: TrainConfig(batch_size=30, pack=4).validate()),
        ("epochs", lambda: steps_for_epochs(-1, 1, 1)),
        ("style steps", lambda: StyleSettings(steps=0).checked()),
        ("optimizer", lambda: StyleSettings(optimizer="sgd").checked()),
        ("blend zero", lambda: StyleSettings(style_blend=(0.0, 0.0)).checked(n_styles=2)),
        ("progressive too short", lambda: Trainer(torch.zeros(8, 1, 32, 32, dtype=torch.uint8), TrainConfig(
            image_size=32, channels=1, arch="progressive", steps=2, width_g=8, width_d=8), "/nonexistent", device="cpu")),
    ]


@pytest.mark.parametrize("make", [m for _, m in _core_errors()], ids=[n for n, _ in _core_errors()])
def test_core_errors_in_vietnamese(make: Callable[[], object]) -> None:
    with pytest.raises(GandemoError) as info:
        make()
    assert_vietnamese(str(info.value))


def test_each_of_several_problems_in_vietnamese() -> None:
    from gandemo.gan.train import TrainConfig

    with pytest.raises(InvalidInputError) as info:
        TrainConfig(batch_size=1, lr_g=0.0, pack=5).validate()
    assert str(info.value).count("; ") == 2
    vi = assert_vietnamese(str(info.value), "kích thước lô", "tốc độ học của G", "số ảnh D phán xét cùng lúc")
    assert "must be" not in vi and vi.count("; ") == 2


def test_training_health_in_vietnamese() -> None:
    import torch

    from gandemo.gan.health import HealthMonitor

    assert_vietnamese(HealthMonitor.non_finite(12, 1e-4, 2e-4).text, "Bước 12", "tốc độ học")
    [winning] = HealthMonitor(real_diversity=1.0, patience=0).observe_step(0, 0.99, 0.01)
    assert_vietnamese(winning.text, "Bộ phân biệt", "bộ tạo", "Hãy thử")
    [fooled] = HealthMonitor(real_diversity=1.0, patience=0).observe_step(0, 0.3, 0.9)
    assert_vietnamese(fooled.text, "Bộ tạo", "ảnh thật")
    monitor = HealthMonitor(real_diversity=1.0)
    monitor.observe_samples(0, torch.randn(8, 3, 8, 8))
    _, [collapse] = monitor.observe_samples(1, torch.zeros(8, 3, 8, 8))
    assert_vietnamese(collapse.text, "Mode collapse", "các mẫu ảnh")


@pytest.mark.parametrize(("english", "words"), [
    ("Training on cpu, float32 from step 0.", ["Huấn luyện trên cpu", "bước 0"]),
    ("Training on cuda:0, float16 mixed precision with loss scaling from step 30.", ["độ chính xác hỗn hợp float16"]),
    ("scale 1/2 (64x48): step 3/120, loss 12.5", ["tỉ lệ 1/2", "bước 3/120"]),
    ("Loading VGG19 weights…", ["Đang tải trọng số VGG19"]),
    ("Used 12 of 14 files; skipped: a.txt (not an image), b.png (empty file); ignored 2 hidden or system files.",
     ["Đã dùng 12 trong 14 tệp", "2 tệp ẩn"]),
    ("Only 2 of 8 files are usable images; training needs at least 8. Skipped: 2 corrupt, 1 corrupt zip entry, "
     "3 too small.", ["Đã bỏ qua: 2 tệp bị hỏng, 1 mục zip bị hỏng, 3 ảnh quá nhỏ."]),
])
def test_progress_and_summaries_in_vietnamese(english: str, words: list[str]) -> None:
    assert_vietnamese(english, *words)


def test_an_unknown_sentence_stays_english() -> None:
    assert translate_message("Something nobody wrote a template for.", "vi") == "Something nobody wrote a template for."


# ------------------------------------------------------------------ (d) which language
@pytest.mark.parametrize(("forced", "accept", "expected"), [
    (None, "vi-VN,vi;q=0.9,en;q=0.8", "vi"),
    (None, "en-US", "en"),
    (None, "fr-FR", "en"),
    (None, "fr-FR,fr;q=0.9,vi;q=0.5", "vi"),
    (None, "", "en"),
    (None, None, "en"),
    ("vi", "en-US,en;q=0.9", "vi"),
    ("en", "vi-VN,vi;q=0.9", "en"),
    ("klingon", "vi-VN,vi;q=0.9", "vi"),
    ("<script>", "en-US", "en"),
    ("", "vi", "vi"),
])
def test_pick_language(forced: str | None, accept: str | None, expected: str) -> None:
    assert pick_language(forced, accept) == expected
