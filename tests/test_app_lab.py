"""The Lab's ``/lab_run`` endpoint over real HTTP: gradio_client (and raw HTTP where gradio_client
can't send the value) against ``python app.py`` in a subprocess (tests/app_harness.py).

- the same settings give the same run, bit for bit (metrics and PNG bytes); another seed does not;
- the mode-collapse scenario really collapses, and minibatch diversity really cures it;
- hostile inputs get a human sentence, the server keeps answering and logs no unplanned error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_harness import AppProcess, app  # noqa: F401 - `app` is the shared server fixture
from gradio_client import Client
from gradio_client.exceptions import AppError

from gandemo.lab.presets import PRESETS

pytestmark = [pytest.mark.app, pytest.mark.timeout(300)]

COLLAPSE_STEPS = 600  # enough on the ring for the collapse and for its cure (about 10 s in all on 2 busy cores)


@pytest.fixture(scope="module")
def client(app: AppProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:  # noqa: F811
    yield app.client(tmp_path_factory.mktemp("lab-client-downloads"))


@pytest.fixture
def log_mark(app: AppProcess) -> int:  # noqa: F811
    return app.log_mark()


def lab_run(client: Client, **settings: Any) -> tuple[bytes, dict[str, Any]]:
    """One /lab_run call by parameter name; the PNG's bytes and the metrics."""
    path, metrics = client.predict(**settings, api_name="/lab_run")
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"/lab_run's picture is not a PNG: {path}"
    return data, metrics


def assert_serves(client: Client, app: AppProcess, since: int) -> None:  # noqa: F811
    """After a refused request: the process lives, a good request still works, and the log shows no
    unplanned error (gandemo.ui.common.human_errors' "unexpected error in") since ``since``."""
    app.assert_alive()
    _, metrics = lab_run(client, steps=2)
    assert metrics["step"] == 2 and metrics["steps"] == 2, metrics
    assert app.unexpected_errors(since) == [], app.log_tail()


def assert_human(message: str, *expected: str) -> None:
    """A sentence a person can act on: names what is wrong, no traceback, not the catch-all."""
    assert "Traceback" not in message and "Something went wrong" not in message, message
    assert re.search(r"[A-Za-z]+ [a-z]+ [a-z]+", message), f"not a sentence: {message!r}"
    for part in expected:
        assert part in message, f"expected {part!r} in the message {message!r}"


# ------------------------------------------------------------------------------ determinism
def test_lab_run_is_reproducible_and_the_seed_matters(client: Client) -> None:
    settings = {"seed": 3, "steps": 60, "lr_g": 2e-3}
    first_png, first = lab_run(client, **settings)
    again_png, again = lab_run(client, **settings)
    assert first == again, "the same settings gave different metrics"
    assert first_png == again_png, "the same settings gave a different picture"
    assert first["step"] == first["steps"] == 60, first
    assert set(first) >= {"step", "modes_covered", "modes_total", "high_quality", "density_distance", "d_real",
                          "d_fake", "loss_d", "loss_g", "steps"}, sorted(first)
    assert first["modes_total"] == 8, first  # the ring of 8 Gaussians is the default data

    # a learning rate typed into the Lab's dropdown (a custom value) arrives as text: same run
    typed_png, typed = lab_run(client, **{**settings, "lr_g": "0.002"})
    assert (typed, typed_png) == (first, first_png), "lr_g='0.002' did not train like lr_g=0.002"

    other_png, other = lab_run(client, **{**settings, "seed": 4})
    assert other_png != first_png, "seed 4 drew the same picture as seed 3"
    assert (other["d_real"], other["d_fake"], other["loss_d"], other["loss_g"]) != (
        first["d_real"], first["d_fake"], first["loss_d"], first["loss_g"]), "seed 4 trained exactly like seed 3"


# ---------------------------------------------------------------------------- mode collapse
@pytest.mark.parametrize(
    "collapse",
    [
        pytest.param(dict(PRESETS["mode-collapse"].overrides), id="the-mode-collapse-preset"),
        pytest.param({"g_steps": 5}, id="g_steps=5"),
    ],
)
def test_mode_collapse_covers_few_modes_and_minibatch_diversity_covers_more(
    client: Client, collapse: dict[str, Any]
) -> None:
    cure = PRESETS["mode-collapse"].cure
    assert cure == {"minibatch_discrimination": True}, f"the preset's cure changed: {cure}; update this test"
    _, collapsed = lab_run(client, **collapse, steps=COLLAPSE_STEPS)
    _, cured = lab_run(client, **collapse, **cure, steps=COLLAPSE_STEPS)
    summary = f"{collapse}, {COLLAPSE_STEPS} steps: {collapsed['modes_covered']} of 8 modes; with {cure}: {cured['modes_covered']}"
    assert collapsed["modes_covered"] <= 3, f"no collapse: {summary}"
    assert cured["modes_covered"] >= 6, f"the cure did not spread G over the ring: {summary}"
    assert cured["density_distance"] < collapsed["density_distance"], summary


# --------------------------------------------------------------------------- hostile inputs
@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"g_layers": 9}, ["9", "maximum value 4"]),
        ({"lr_g": "NaN"}, ["lr_g", "finite number", "nan"]),
        ({"lr_g": "banana"}, ["lr_g", "finite number", "banana"]),
        ({"lr_g": 5.0}, ["lr_g", "between 1e-06 and 1", "5"]),
        ({"loss": "banana"}, ["banana", "not in the list of choices", "nonsaturating"]),
        ({"dataset": "custom", "points": ""}, ["Draw some points or type them"]),
        ({"dataset": "custom", "points": "1,2\nbanana"}, ["banana", "x,y"]),
        ({"steps": 0}, ["0", "minimum value 1"]),
        ({"steps": 10**9}, ["1000000000", "maximum value 20000"]),
        ({"layers": ["bogus"]}, ["bogus", "not in the list of choices"]),
        ({"seed": None}, ["seed", "whole number"]),
        ({"seed": 1.5}, ["seed", "whole number", "1.5"]),
        ({"steps": 2.5}, ["whole number", "20000"]),
    ],
    ids=["g_layers=9", "lr_g=NaN-text", "lr_g=banana", "lr_g=5", "loss=banana", "custom-no-points",
         "custom-bad-point", "steps=0", "steps=1e9", "layers=bogus", "seed=None", "seed=1.5", "steps=2.5"],
)
def test_hostile_input_gets_a_human_message(client: Client, app: AppProcess, log_mark: int,  # noqa: F811
                                            settings: dict[str, Any], expected: list[str]) -> None:
    with pytest.raises(AppError) as info:
        client.predict(**{"steps": 5, **settings}, api_name="/lab_run")
    assert_human(str(info.value), *expected)
    assert_serves(client, app, log_mark)


def _raw_lab_run(app: AppProcess, settings: dict[str, Any]) -> tuple[str, dict[str, Any]]:  # noqa: F811
    """/lab_run over Gradio's plain HTTP API with a hand-written JSON body (NaN and Infinity are not
    JSON, so gradio_client refuses to send them; Python's json module and the server accept them).
    Returns the SSE event name ('complete' or 'error') and its data."""
    with httpx.Client(base_url=app.url, timeout=60) as http:
        params = http.get("/gradio_api/info").json()["named_endpoints"]["/lab_run"]["parameters"]
        values = {p["parameter_name"]: p["parameter_default"] for p in params}
        values.update(settings)
        body = json.dumps({"data": [values[p["parameter_name"]] for p in params]})  # allow_nan: NaN, Infinity
        posted = http.post("/gradio_api/call/lab_run", content=body, headers={"content-type": "application/json"})
        assert posted.status_code == 200, posted.text
        event, data = "", ""
        with http.stream("GET", f"/gradio_api/call/lab_run/{posted.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data = line.split(":", 1)[1].strip()
                    if event in ("complete", "error"):
                        break
    return event, json.loads(data) if data and data != "null" else {}


@pytest.mark.parametrize(("name", "value"), [("lr_g", float("nan")), ("lr_d", float("inf")), ("label_smoothing", float("nan"))])
def test_nan_and_infinity_over_raw_http_get_a_human_message(client: Client, app: AppProcess,  # noqa: F811
                                                            log_mark: int, name: str, value: float) -> None:
    assert "NaN" in json.dumps(float("nan"))  # the body really carries the non-JSON literal
    event, data = _raw_lab_run(app, {name: value, "steps": 5})
    assert event == "error", f"{name}={value} was accepted: {event} {data}"
    message = (data or {}).get("error") or ""
    assert_human(message, name, "finite number")
    assert_serves(client, app, log_mark)
