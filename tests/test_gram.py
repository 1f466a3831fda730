"""The Style tab's Gram matrix view: the core heatmap on random VGG19 weights (the real ones are not
available offline) and the /gram_matrix endpoint of the real app."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image
from safetensors.torch import save_file
from test_app_style import STYLE, client, gallery, style_app  # noqa: F401 - fixtures

from gandemo.errors import InvalidInputError
from gandemo.style import load_vgg19
from gandemo.style.gram_view import gram_heatmap
from gandemo.style.vgg import random_vgg19_state_dict


@pytest.fixture(scope="module")
def vgg(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    path = tmp_path_factory.mktemp("vgg") / "vgg19.safetensors"
    save_file(random_vgg19_state_dict(seed=0, with_classifier=False), str(path))
    return load_vgg19(path, "relu3_1")


def stripes(vertical: bool) -> Image.Image:
    a = np.zeros((96, 96, 3), np.uint8)
    if vertical:
        a[:, ::8] = (220, 40, 40)
    else:
        a[::8, :] = (40, 40, 220)
    return Image.fromarray(a)


def test_gram_heatmap_shape_and_channels(vgg) -> None:  # noqa: ANN001
    view = gram_heatmap(stripes(True), "relu2_1", vgg, long_side=96, size=256)
    assert view.image.size == (256, 256) and view.image.mode == "RGB"
    assert (view.channels_total, view.channels_shown) == (128, 64)
    assert view.positions == 48 * 48  # relu2_1 is after one pooling: half the 96 px side
    first = gram_heatmap(stripes(True), "relu1_1", vgg, long_side=96)
    assert (first.channels_total, first.channels_shown) == (64, 64)


def test_different_styles_give_different_matrices_but_position_does_not_matter(vgg) -> None:  # noqa: ANN001
    red = np.asarray(gram_heatmap(stripes(True), "relu1_1", vgg, long_side=96).image, dtype=float)
    blue = np.asarray(gram_heatmap(stripes(False), "relu1_1", vgg, long_side=96).image, dtype=float)
    assert np.abs(red - blue).mean() > 5
    # the same texture shifted by a few pixels: a Gram matrix averages over positions
    shifted = Image.fromarray(np.roll(np.asarray(stripes(True)), 3, axis=1))
    moved = np.asarray(gram_heatmap(shifted, "relu1_1", vgg, long_side=96).image, dtype=float)
    assert np.abs(red - moved).mean() < np.abs(red - blue).mean() / 3


def test_unknown_layer(vgg) -> None:  # noqa: ANN001
    with pytest.raises(InvalidInputError, match="not a VGG19 layer"):
        gram_heatmap(stripes(True), "relu9_9", vgg)


@pytest.mark.app
@pytest.mark.timeout(300)
def test_gram_matrix_endpoint(client: Client) -> None:  # noqa: F811
    image, note = client.predict(gallery(STYLE), "relu2_1", "max", api_name="/gram_matrix")
    with Image.open(image) as heat:
        assert heat.size == (384, 384) and len(heat.getcolors(maxcolors=100000) or []) > 10
    assert "relu2_1" in note and "128" in note, note
    with pytest.raises(AppError, match="style"):
        client.predict([], "relu2_1", "max", api_name="/gram_matrix")
    with pytest.raises(AppError):
        client.predict(gallery(STYLE), "conv9", "max", api_name="/gram_matrix")
