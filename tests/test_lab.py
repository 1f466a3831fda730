"""The lesson lab's core: data, config validation, steps and phases, metrics, rendering, presets.

Real torch on CPU with the lab's own small networks; every test is a few hundred steps at most,
except the one preset test marked slow.
"""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image, ImageDraw

from gandemo.errors import InvalidInputError
from gandemo.lab.data import DATASETS, VIEW, make_dataset, points_from_sketch, points_from_text, ring_modes
from gandemo.lab.lab import Lab, LabConfig
from gandemo.lab.metrics import density_distance, mode_coverage
from gandemo.lab.presets import PRESETS, preset_config
from gandemo.lab.render import font, frame_size, render_frame
from gandemo.lab.runner import run_lab


@pytest.fixture(autouse=True)
def one_thread():
    """The lab's networks are tiny: one thread is fastest, and with other processes on the same
    2 cores a second thread mostly waits (runs got 20x slower that way)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small(**changes) -> LabConfig:
    """A quick config: small batch and nets, so a step costs well under a millisecond."""
    base = {"batch_size": 64, "g_units": 32, "d_units": 32, "n_points": 256}
    return LabConfig(**{**base, **changes})


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


# --- data ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [d for d in DATASETS if d != "custom"])
def test_each_dataset_is_seeded_and_inside_the_view(name):
    a, b, c = make_dataset(name, 300, seed=1), make_dataset(name, 300, seed=1), make_dataset(name, 300, seed=2)
    assert a.points.shape == (300, 2)
    assert torch.equal(a.points, b.points)
    assert not torch.equal(a.points, c.points)
    assert a.points.abs().max() <= VIEW
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(a.sample(64, g1), b.sample(64, g2))
    assert (a.modes is not None) == (name in ("ring", "grid", "clusters"))


def test_ring_is_eight_gaussians_on_the_unit_circle_sampled_fresh_each_batch():
    ring = make_dataset("ring", 512)
    assert ring.modes.shape == (8, 2) and ring.sigma == 0.05
    assert torch.allclose(ring.modes.norm(dim=1), torch.ones(8))
    g = torch.Generator().manual_seed(0)
    batch1, batch2 = ring.sample(2000, g), ring.sample(2000, g)
    assert not torch.equal(batch1, batch2)
    covered, total, quality = mode_coverage(batch1, ring.modes, ring.sigma)
    assert (covered, total) == (8, 8) and quality > 0.98


def test_points_from_text_parses_lines_and_semicolons():
    pts = points_from_text("0,0\n1, 2\n-3.5,4e-1; .5,-.5\n\n1,1;2,2;3,3;4,4")
    assert pts.shape == (8, 2)
    assert pts[2].tolist() == pytest.approx([-3.5, 0.4])


@pytest.mark.parametrize("text, words", [
    ("1,2\n" * 7, "at least 8"),
    ("1,2\n" * 5001, "at most 5000"),
    ("1,2\n" * 8 + "1;2", "not of the form"),
    ("1,2\n" * 8 + "a,b", "not of the form"),
    ("1,2,3\n" * 8, "not of the form"),
])
def test_points_from_text_rejects_bad_text_with_a_sentence(text, words):
    with pytest.raises(InvalidInputError, match=words):
        points_from_text(text)


def test_custom_dataset_fits_the_points_into_the_view_and_rejects_a_single_spot():
    pts = points_from_text(";".join(f"{10 + i},{100 + 2 * i}" for i in range(20)))
    data = make_dataset("custom", 512, points=pts)
    assert data.points.shape == (20, 2)
    assert data.points.abs().max() <= VIEW
    assert data.points[:, 1].max() > 1.0  # the long side fills the view
    with pytest.raises(InvalidInputError, match="all the same"):
        make_dataset("custom", points=torch.ones(10, 2))


def test_points_from_sketch_takes_dark_strokes_with_y_up():
    canvas = Image.new("RGB", (100, 100), "white")
    ImageDraw.Draw(canvas).rectangle((10, 5, 30, 15), fill="black")  # near the top-left
    pts = points_from_sketch(canvas, n=50)
    assert pts.shape == (50, 2)
    assert (pts[:, 0] < 0).all() and (pts[:, 1] > 0).all()  # top-left of the canvas = x<0, y>0


def test_points_from_sketch_takes_opaque_strokes_on_a_transparent_canvas():
    canvas = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).line((0, 63, 63, 0), fill=(255, 255, 255, 255), width=3)  # white ink, still a stroke
    pts = points_from_sketch(canvas, n=100)
    assert len(pts) == 100
    assert torch.corrcoef(pts.T)[0, 1] > 0.9  # the diagonal, rising to the right


@pytest.mark.parametrize("image", [Image.new("RGB", (50, 50), "white"), Image.new("RGBA", (50, 50), (0, 0, 0, 0))])
def test_points_from_sketch_rejects_an_empty_sketch(image):
    with pytest.raises(InvalidInputError, match="empty"):
        points_from_sketch(image)


# --- config --------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, words", [
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"g_layers": True}, "g_layers must be a whole number"),
    ({"lr_g": float("nan")}, "lr_g must be a finite number"),
    ({"lr_d": 0.0}, "lr_d must be between"),
    ({"d_steps": 11}, "d_steps must be between 0 and 10"),
    ({"g_units": 3}, "g_units must be between 4 and 128"),
    ({"noise_dim": 3}, "noise_dim"),
    ({"loss": "wasserstein"}, "loss must be one of minimax, nonsaturating"),
    ({"activation": "gelu"}, "activation must be one of"),
    ({"minibatch_discrimination": 1}, "true or false"),
    ({"dataset": "custom"}, "custom_points"),
    ({"dataset": "custom", "custom_points": [[0, 0]] * 7}, "between 8 and 5000"),
])
def test_config_validation_names_the_field_and_the_range(changes, words):
    with pytest.raises(InvalidInputError, match=words):
        LabConfig(**changes).validate()
    with pytest.raises(InvalidInputError):
        Lab(LabConfig(**changes))


def test_config_accepts_its_defaults_and_integral_floats_are_not_rounded():
    LabConfig().validate()
    with pytest.raises(InvalidInputError):
        LabConfig(batch_size=64.0).validate()


# --- training ------------------------------------------------------------------------------------

def test_same_seed_gives_bit_identical_runs_and_another_seed_differs():
    a, b, c = Lab(small(seed=3)), Lab(small(seed=3)), Lab(small(seed=4))
    for lab in (a, b, c):
        lab.run(60)
    assert torch.equal(flat(a.G), flat(b.G)) and torch.equal(flat(a.D), flat(b.D))
    assert a.metrics() == b.metrics()
    assert a.history == b.history
    assert not torch.equal(flat(a.G), flat(c.G))


def test_training_does_not_touch_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    Lab(small()).run(5)
    assert torch.equal(torch.rand(3), expected)


def test_state_dict_resumes_bit_exactly():
    a = Lab(small())
    a.run(20)
    b = Lab(small(seed=9))
    b.load_state_dict(a.state_dict())
    a.run(20)
    b.run(20)
    assert torch.equal(flat(a.G), flat(b.G)) and a.history == b.history


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating", "least_squares", "hinge"])
def test_each_loss_trains_and_moves_g(loss):
    lab = Lab(small(loss=loss))
    before = flat(lab.G).clone()
    lab.run(10)
    assert not torch.equal(before, flat(lab.G))
    last = lab.history[-1]
    assert math.isfinite(last["loss_d"]) and math.isfinite(last["loss_g"]) and 0 <= last["d_fake"] <= 1


def test_phase_d_moves_only_d_and_phase_g_moves_only_g_and_completes_the_step():
    lab = Lab(small())
    g0, d0 = flat(lab.G).clone(), flat(lab.D).clone()
    lab.phase_d()
    assert lab.phase == "d" and lab.step == 0 and not lab.history
    assert torch.equal(flat(lab.G), g0) and not torch.equal(flat(lab.D), d0)
    d1 = flat(lab.D).clone()
    lab.phase_d()  # a second D phase in the same step runs D again
    assert not torch.equal(flat(lab.D), d1)
    d2 = flat(lab.D).clone()
    lab.phase_g()
    assert lab.phase == "" and lab.step == 1 and len(lab.history) == 1
    assert torch.equal(flat(lab.D), d2) and not torch.equal(flat(lab.G), g0)
    lab.phase_d()
    lab.train_step()  # completes the pending step with G's phase only
    assert lab.step == 2 and torch.equal(flat(lab.D), flat(lab.D))


def test_train_step_runs_d_steps_then_g_steps():
    lab = Lab(small(d_steps=0, g_steps=2))
    d0 = flat(lab.D).clone()
    lab.train_step()
    assert torch.equal(flat(lab.D), d0)
    assert lab.history[-1]["loss_d"] is None and lab.history[-1]["loss_g"] is not None


def test_lowering_the_learning_rate_mid_run_changes_the_optimiser_and_the_update_size():
    def g_update_size(lab: Lab) -> float:
        before = flat(lab.G).clone()
        lab.train_step()
        return float((flat(lab.G) - before).norm())

    lab = Lab(small(opt_g="sgd", lr_g=0.1))
    lab.run(5)
    twin = Lab(small(opt_g="sgd", lr_g=0.1))
    twin.run(5)
    lab.set_learning_rates(lr_g=0.001)
    assert [g["lr"] for g in lab.opt_g.param_groups] == [0.001] and lab.config.lr_g == 0.001
    assert g_update_size(lab) < 0.05 * g_update_size(twin)
    assert lab.history[-1]["lr_changed"] is True and lab.history[-1]["lr_g"] == 0.001
    assert lab.events[-1]["kind"] == "lr"
    with pytest.raises(InvalidInputError, match="lr_d"):
        lab.set_learning_rates(lr_d=-1.0)


def test_update_config_applies_live_settings_and_refuses_architecture_changes():
    lab = Lab(small())
    lab.update_config(loss="hinge", d_steps=2, lr_d=5e-4, gp_weight=1.0, d_skip_threshold=0.1)
    assert lab.config.loss == "hinge" and lab.opt_d.param_groups[0]["lr"] == 5e-4
    lab.run(3)
    with pytest.raises(InvalidInputError, match="g_units"):
        lab.update_config(g_units=16)
    with pytest.raises(InvalidInputError, match="d_steps"):
        lab.update_config(d_steps=-1)
    lab.reset(lab.config.replace(g_units=16))
    assert lab.step == 0 and lab.G.net[0].out_features == 16


def test_d_skip_threshold_skips_d_while_its_loss_is_low():
    lab = Lab(small(d_skip_threshold=10.0))  # every D loss is below 10: D never updates
    d0 = flat(lab.D).clone()
    lab.run(3)
    assert torch.equal(flat(lab.D), d0) and lab.history[-1]["d_skipped"] == 1


def test_gradient_penalty_and_minibatch_discrimination_run():
    lab = Lab(small(gp_weight=10.0, minibatch_discrimination=True, noise_dim=1, noise="uniform"))
    lab.run(5)
    assert lab.D.net[0].in_features == 3 and math.isfinite(lab.history[-1]["loss_d"])


def test_history_has_coverage_every_few_steps():
    lab = Lab(small())
    lab.run(25)
    measured = [r["step"] for r in lab.history if "modes_covered" in r]
    assert measured == [1, 25]
    assert set(lab.history[0]) >= {"step", "loss_d", "loss_g", "d_real", "d_fake", "grad_g_norm", "lr_g", "lr_d"}


def test_run_stops_when_asked():
    lab = Lab(small())
    assert lab.run(100, should_stop=lambda: lab.step >= 7) == 7


# --- metrics -------------------------------------------------------------------------------------

def blobs(centres: torch.Tensor, per: int = 100, sigma: float = 0.02) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (centres.repeat_interleave(per, 0) + sigma * torch.randn(len(centres) * per, 2, generator=g))


def test_mode_coverage_counts_hand_made_point_sets():
    modes = ring_modes()
    assert mode_coverage(blobs(modes[[0, 3, 5]]), modes, 0.05) == (3, 8, 1.0)
    assert mode_coverage(blobs(modes), modes, 0.05)[:2] == (8, 8)
    far = blobs(torch.tensor([[5.0, 5.0]]))
    assert mode_coverage(far, modes, 0.05) == (0, 8, 0.0)
    # A handful of stray points passing through a mode doesn't cover it (the 1% rule).
    mixed = torch.cat([blobs(modes[[0]], per=995), modes[[4]].repeat(5, 1)])
    assert mode_coverage(mixed, modes, 0.05)[0] == 1


def test_density_distance_is_zero_for_the_same_points_and_one_for_disjoint_ones():
    ring = make_dataset("ring", 2000).points
    assert density_distance(ring, ring) == pytest.approx(0.0, abs=1e-6)
    assert density_distance(ring, blobs(torch.tensor([[0.0, 0.0]]))) > 0.99
    assert density_distance(ring, make_dataset("ring", 2000, seed=1).points) < 0.15


# --- rendering -----------------------------------------------------------------------------------

def test_render_frame_has_the_expected_size_and_layers_change_it():
    lab = Lab(small())
    lab.run(30)
    full = render_frame(lab, size=200)
    assert full.size == frame_size(200) == (325, 200) and full.mode == "RGB"
    view = render_frame(lab, size=200, plots=False)
    assert view.size == (200, 200)
    only_real = render_frame(lab, size=200, plots=False, show={"real"})
    assert only_real.tobytes() != view.tobytes()
    assert render_frame(lab, size=200, plots=False, show={"real", "fake"}).tobytes() != only_real.tobytes()
    with pytest.raises(ValueError, match="unknown layer"):
        render_frame(lab, show={"contours"})


def test_render_frame_uses_translated_labels_with_vietnamese_diacritics():
    lab = Lab(small())
    lab.run(3)
    english = render_frame(lab, size=200)
    vietnamese = render_frame(lab, size=200, labels={"d_says_real": "Bộ phân biệt: thật", "losses": "hàm mất mát"})
    assert english.tobytes() != vietnamese.tobytes()

    def ink(text: str) -> bytes:
        image = Image.new("L", (120, 30), 255)
        ImageDraw.Draw(image).text((2, 2), text, fill=0, font=font(16))
        return image.tobytes()

    # Real glyphs: the marks change the drawing, and two different marked letters differ.
    assert ink("Bộ") != ink("Bo") and ink("ộ") != ink("ằ")


def test_render_frame_draws_a_dataset_without_modes_and_a_1d_noise():
    lab = Lab(small(dataset="spiral", noise_dim=1))
    lab.run(25)
    assert render_frame(lab, size=160).size == frame_size(160)


def test_what_leaves_the_plane_is_cut_off_at_its_edge_not_drawn_over_the_charts():
    import numpy as np

    from gandemo.lab.data import VIEW

    lab = Lab(small())
    lab.run(20)
    last = [m for m in lab.G.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # every generated point (and its grid and arrows) far to the right of the view
        last.bias.copy_(torch.tensor([1.6 * VIEW, 0.0]))
    size = 200
    with_fakes = np.asarray(render_frame(lab, size=size, show={"fake", "manifold", "arrows"}))
    without = np.asarray(render_frame(lab, size=size, show=set()))
    assert np.array_equal(with_fakes[:, size:], without[:, size:]), "the charts beside the plane were drawn on"


def test_the_charts_top_right_corner_is_free_for_the_pages_buttons():
    """The page puts fullscreen and download buttons over the picture's top-right corner: the loss chart's
    legend (which line is D, which is G) must not sit there, but after the title."""
    import numpy as np

    lab = Lab(small())
    lab.run(20)
    frame = np.asarray(render_frame(lab, size=440)).astype(int)
    corner = frame[:14, -70:]  # the top chart's title band, under the buttons
    assert (corner.max(axis=2) - corner.min(axis=2)).max() < 40, "coloured legend text in the corner"
    title_band = frame[:14, 440:]
    assert ((title_band.max(axis=2) - title_band.min(axis=2)) > 60).any(), "no legend at all"


# --- one-call runs and presets --------------------------------------------------------------------

def test_run_lab_returns_image_metrics_and_frames_and_caps_its_length():
    result = run_lab(small(), steps=30, frames=3, size=128)
    assert len(result.frames) == 3 and result.image.size == frame_size(128)
    assert result.metrics["steps"] == 30 and result.metrics["modes_total"] == 8
    with pytest.raises(InvalidInputError, match="steps"):
        run_lab(small(), steps=20001)
    with pytest.raises(InvalidInputError, match="frames"):
        run_lab(small(), steps=10, frames=121)


HEAVY = {"g_layers": 4, "g_units": 128, "d_layers": 4, "d_units": 128, "d_steps": 10, "g_steps": 10,
         "batch_size": 1024, "gp_weight": 10.0, "minibatch_discrimination": True}


def test_a_run_over_its_time_budget_is_refused_after_a_few_steps_and_says_what_fits():
    import time

    from gandemo.lab.runner import PROBE_STEPS, LabRunTooLongError

    start = time.perf_counter()
    with pytest.raises(LabRunTooLongError) as err:
        run_lab(LabConfig(**HEAVY), steps=20_000, size=128, time_budget_s=0.5)
    took = time.perf_counter() - start
    message = str(err.value)
    fit = int(message.split("at most ")[1].split(" steps")[0])
    assert 1 <= fit < 20_000 and "asked for 20000" in message and "0.5 s" in message, message
    per_step = float(message.split("about ")[1].split(" s per step")[0])
    assert took < PROBE_STEPS * per_step * 3 + 2, (took, per_step)  # judged after the probe, not at the end
    # the same run within its budget, and any run without one, go to the end
    assert run_lab(small(), steps=30, size=128, time_budget_s=30).metrics["steps"] == 30
    assert run_lab(small(), steps=30, size=128).metrics["steps"] == 30


def test_presets_are_the_named_five_with_valid_configs_and_cures():
    assert list(PRESETS) == ["default", "mode-collapse", "d-overpowers", "lr-too-high", "vanishing-gradient"]
    for name, preset in PRESETS.items():
        assert preset.name == name and preset.problem and preset.cure_text
        preset_config(name).validate()
        cured = preset_config(name, cure=True).validate()
        for key, value in preset.cure.items():
            assert getattr(cured, key) == value
    with pytest.raises(InvalidInputError, match="Unknown preset"):
        preset_config("everything-fine")


@pytest.mark.slow
def test_mode_collapse_preset_collapses_and_its_cure_covers_the_ring():
    """The preset's effect is measured, not scripted: 1000 real steps each (seed 0, ~6 s)."""
    collapsed = Lab(preset_config("mode-collapse"))
    collapsed.run(1000)
    cured = Lab(preset_config("mode-collapse", cure=True))
    cured.run(1000)
    assert collapsed.metrics()["modes_covered"] <= 3
    assert cured.metrics()["modes_covered"] >= 6


def test_the_torch_free_settings_name_the_networks_activations_and_losses():
    from gandemo.lab import config, nets

    assert tuple(nets.ACTIVATIONS) == config.ACTIVATION_NAMES and nets.LOSSES is config.LOSSES
