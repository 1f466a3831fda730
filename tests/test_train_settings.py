"""One source of truth for training settings (issue 10 §2): TrainConfig's fields carry their type,
default, help and allowed values; the CLI's ``train`` options, ``validate()`` and the Train tab's
widgets are built from them. The Train tab differs only where ``UI_DEFAULTS`` says so."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from typing import Any

import gradio as gr
import pytest

from gandemo import cli
from gandemo.errors import InvalidInputError
from gandemo.gan.models import SUPPORTED_SIZES
from gandemo.gan.settings import TrainConfig, setting, settings_table
from gandemo.i18n import catalog
from gandemo.ui import train_tab
from gandemo.ui.i18n import Localizer

DEFAULTS = TrainConfig()


def train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def parse_train(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["train", "images/", *argv])


def other_value(name: str) -> Any:
    """A valid value of field ``name`` that is not its default."""
    kind, rule = settings_table(TrainConfig)[name]
    default = getattr(DEFAULTS, name)
    if rule.choices:
        return next(c for c in rule.choices if c != default)
    if kind is bool:
        return not default
    if kind is int:
        return default + 1 if rule.hi is None or default + 1 <= rule.hi else default - 1
    if kind is float:
        return (default + (rule.hi if rule.hi is not None else default + 1)) / 2 if default != 0 else 0.25
    if name == "diffaugment":
        return "color"
    if name == "lr_drops":
        return ((5, 0.5),)
    raise AssertionError(f"no test value for {name} ({kind})")


def cli_text(value: Any) -> str:
    if isinstance(value, tuple):  # lr_drops: STEP:FACTOR
        return ",".join(f"{step}:{factor}" for step, factor in value)
    return str(value)


@pytest.fixture(scope="module")
def widgets() -> dict[str, Any]:
    with gr.Blocks():
        return train_tab.build_train_tab(Localizer())["settings"]


# ------------------------------------------------------------------ the CLI
def test_cli_defaults_are_train_configs() -> None:
    assert cli.config_from_args(parse_train()) == TrainConfig()


def test_every_field_is_reachable_from_the_cli() -> None:
    options = {a.dest: a for a in train_parser()._actions}
    missing = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in options]
    assert missing == [], f"TrainConfig fields without a CLI option: {missing}"
    for name, (_, rule) in settings_table(TrainConfig).items():
        assert options[name].help.startswith(rule.help), name


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(TrainConfig)])
def test_each_cli_option_sets_its_field(name: str) -> None:
    kind, _ = settings_table(TrainConfig)[name]
    value = other_value(name)
    flag = "--" + name.replace("_", "-")
    argv = ([flag if value else "--no-" + flag[2:]] if kind is bool else [flag, cli_text(value)])
    config = cli.config_from_args(parse_train(*argv)).validate()
    assert getattr(config, name) == value
    assert dataclasses.replace(config, **{name: getattr(DEFAULTS, name)}) == DEFAULTS, "another field changed"


def test_lr_drop_is_repeatable_and_says_what_it_wants() -> None:
    config = cli.config_from_args(parse_train("--lr-drop", "100:0.1", "--lr-drop", "300:0.5")).validate()
    assert config.lr_drops == ((100, 0.1), (300, 0.5))
    with pytest.raises(SystemExit):
        parse_train("--lr-drop", "100")
    with pytest.raises(InvalidInputError, match="a step from 1 and a factor between 0 and 1"):
        cli.config_from_args(parse_train("--lr-drop", "100:2")).validate()


def test_older_cli_spellings_still_work() -> None:
    config = cli.config_from_args(parse_train("--size", "32", "--width", "16", "--ema", "0", "--r1", "1",
                                              "--no-spectral-norm", "--diffaugment", ""))
    assert (config.image_size, config.width_g, config.width_d, config.ema_decay, config.r1_gamma) == (32, 16, 16, 0, 1)
    assert config.spectral_norm is False and config.diffaugment == ""


def test_cli_choices_come_from_the_rules() -> None:
    options = {a.dest: a for a in train_parser()._actions}
    assert tuple(options["image_size"].choices) == SUPPORTED_SIZES
    assert tuple(options["loss"].choices) == ("bce", "hinge")


# ------------------------------------------------------------------ validate()
def test_resolutions_come_from_the_model_module() -> None:
    assert settings_table(TrainConfig)["image_size"][1].choices == SUPPORTED_SIZES
    for size in SUPPORTED_SIZES:
        TrainConfig(image_size=size).validate()


@pytest.mark.parametrize(("name", "value"), [("steps", 2.5), ("seed", -1), ("latent_dim", 0), ("amp", "yes"),
                                             ("lr_d", float("nan")), ("beta2", True)])
def test_validate_checks_every_field_by_its_rule(name: str, value: Any) -> None:
    with pytest.raises(InvalidInputError, match=f"got {value!r}"):
        TrainConfig(**{name: value}).validate()


# ------------------------------------------------------------------ the Train tab
def test_widget_defaults_are_train_configs_except_the_documented_overrides(widgets: dict[str, Any]) -> None:
    assert set(train_tab.UI_DEFAULTS) <= set(widgets), "an override for a setting the tab doesn't show"
    for name, widget in widgets.items():
        default = getattr(DEFAULTS, name)
        expected = train_tab.UI_DEFAULTS.get(name, default)
        if name == "diffaugment":
            shown: Any = ",".join(widget.value)
        elif isinstance(widget, gr.Radio):
            shown, expected = widget.value, str(expected)
        else:
            shown = widget.value
        assert shown == expected, f"{name}: the tab starts at {shown!r}, expected {expected!r}"
        if name in train_tab.UI_DEFAULTS:
            assert train_tab.UI_DEFAULTS[name] != default, f"{name}: an override equal to the default"
            TrainConfig(**{name: train_tab.UI_DEFAULTS[name]}).validate()


def test_the_documented_overrides_are_few_and_explained() -> None:
    assert set(train_tab.UI_DEFAULTS) == {"steps", "preview_every"}
    source = inspect.getsource(train_tab)
    for name in train_tab.UI_DEFAULTS:
        line = next(x for x in source.splitlines() if x.strip().startswith(f'"{name}":'))
        assert "#" in line, f"the override of {name} doesn't say why"


def test_widget_ranges_and_choices_come_from_the_rules(widgets: dict[str, Any]) -> None:
    table = settings_table(TrainConfig)
    assert [v for _, v in widgets["image_size"].choices] == [str(s) for s in SUPPORTED_SIZES]
    for name, widget in widgets.items():
        kind, rule = table[name]
        if isinstance(widget, gr.Slider):
            assert (widget.minimum, widget.maximum, widget.step) == rule.slider, name
        elif isinstance(widget, gr.Number):
            assert (widget.minimum, widget.maximum) == (rule.lo, rule.hi), name
        elif isinstance(widget, gr.Radio):
            assert [v for _, v in widget.choices] == [str(c) for c in rule.choices], name
        elif isinstance(widget, gr.Checkbox):
            assert kind is bool, name


def test_every_setting_without_a_widget_says_why(widgets: dict[str, Any]) -> None:
    for name, (_, rule) in settings_table(TrainConfig).items():
        assert (name in widgets) == (not rule.ui), name


def test_every_widget_has_a_label_in_both_languages(widgets: dict[str, Any]) -> None:
    entries = catalog()
    for name in widgets:
        assert f"train.field.{name}" in entries, f"train.field.{name} missing from gandemo/i18n/train_settings.yaml"
        assert entries[f"train.field.{name}"]["vi"].strip()


def test_the_handler_maps_widget_values_by_name() -> None:
    assert list(inspect.signature(train_tab.train).parameters)[:-1] == list(train_tab.TRAIN_PARAMS)
    values = {"resolution": "32", "steps": 7, "batch_size": 8.0, "lr_g": 1e-3, "lr_d": 3e-4, "width": 16,
              "augment": ["cutout"], "mirror": True, "loss": "hinge", "preview_every": 5}
    config = train_tab.config_from_widgets(values).validate()
    assert (config.image_size, config.steps, config.batch_size, config.lr_g, config.lr_d) == (32, 7, 8, 1e-3, 3e-4)
    assert (config.width_g, config.width_d, config.diffaugment, config.mirror, config.loss) == (16, 16, "cutout", True,
                                                                                                  "hinge")
    assert config.seed == DEFAULTS.seed and config.beta2 == DEFAULTS.beta2  # not given: the tab's default
    with pytest.raises(InvalidInputError, match="whole number"):
        train_tab.config_from_widgets({"steps": 2.5})


# ------------------------------------------------------------------ a new setting is one line
@dataclasses.dataclass
class Patched(TrainConfig):
    warmup_steps: int = setting(0, "steps of linear learning-rate warm-up", lo=0, hi=100)


def test_a_new_field_appears_in_the_cli_validate_and_the_tab() -> None:
    parser = argparse.ArgumentParser()
    cli.add_config_options(parser, Patched)
    args = parser.parse_args(["--warmup-steps", "5"])
    assert cli.config_from_args(args, Patched).validate().warmup_steps == 5
    assert cli.config_from_args(parser.parse_args([]), Patched).warmup_steps == 0
    assert "linear learning-rate warm-up" in parser.format_help()
    with pytest.raises(InvalidInputError, match="warmup_steps must be between 0 and 100"):
        Patched(warmup_steps=500).validate()

    assert train_tab.train_params(Patched)[-1] == "warmup_steps"
    # the settings added later join after job_info in the order they came: auto_lr_drop (issue 10 §4), arch (§3),
    # minibatch_std (§7), pack (§7, the eleventh session)
    assert train_tab.TRAIN_PARAMS[-4:] == ("auto_lr_drop", "arch", "minibatch_std", "pack")
    assert train_tab.train_params(Patched)[:-1] == train_tab.TRAIN_PARAMS
    with gr.Blocks():
        widget = train_tab.setting_widget(Localizer(), "warmup_steps", Patched)
    assert isinstance(widget, gr.Number) and (widget.minimum, widget.maximum, widget.value) == (0, 100, 0)
    assert train_tab.config_from_widgets({"warmup_steps": 7}, Patched).warmup_steps == 7


def test_an_upload_list_that_names_a_folder_is_refused(tmp_path) -> None:
    """Gradio uploads are files; a folder path sent over the API (the upload folder itself) would make the
    intake walk every visitor's uploads."""
    from gandemo.errors import InvalidInputError

    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG")
    assert train_tab._upload_paths([str(image)]) == [str(image)]
    with pytest.raises(InvalidInputError, match="a folder can't be uploaded"):
        train_tab._upload_paths([str(image), str(tmp_path)])


@pytest.mark.parametrize(("text", "rate"), [("", None), ("  ", None), (None, None), ("2e-5", 2e-5),
                                            ("0.00002", 2e-5), ("0,00002", 2e-5)])
def test_the_pages_rate_boxes_read_empty_as_keep_and_a_decimal_comma(text, rate) -> None:
    assert train_tab._rate_from_text(text) == (pytest.approx(rate) if rate else None)


def test_a_rate_box_with_words_is_a_sentence() -> None:
    from gandemo.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="'fast' is not a learning rate"):
        train_tab._rate_from_text("fast")
