"""The contact sheet of "what your GAN will learn from" (gandemo.intake.sheet): its tiles are the training
tensor's pixels (the same intake as the trainer, crop or pad, at the chosen size), a big set is sampled
evenly and says so, and skipped files are counted, not shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from intake_corpus import BLUE, GREEN, RED, good_images, image_bytes, noise_image, split_image
from PIL import Image

from gandemo.intake import IntakeOptions, load_images
from gandemo.intake.sheet import contact_sheet, sample_indices, sheet_columns, tile


def tiles_of(sheet_image: Image.Image, sheet, count: int) -> list[np.ndarray]:
    """The first ``count`` tiles, with the set's own channels (the sheet adds an alpha channel to opaque sets)."""
    arr = np.asarray(sheet_image)[..., :sheet.channels]
    return [arr[t:b, le:r] for le, t, r, b in (sheet.tile_box(i) for i in range(count))]


@pytest.mark.parametrize(("size", "fit"), [(32, "crop"), (64, "pad")])
def test_tiles_are_exactly_what_the_trainer_gets(tmp_path: Path, size: int, fit: str) -> None:
    paths = good_images(tmp_path, 9, size=(90, 50))  # not square: crop and pad differ
    options = IntakeOptions(size=size, fit=fit, device="cpu")
    sheet = contact_sheet(paths, options)
    trained_on = load_images(paths, options)  # what prepare_trainer hands the Trainer
    assert sheet.image is not None and sheet.size == size and sheet.usable == 9 and sheet.files == 9
    assert sheet.shown == trained_on.names
    assert sheet.columns == sheet_columns(9) and sheet.rows * sheet.columns >= 9
    expected_w = sheet.columns * size + (sheet.columns - 1) * sheet.gap
    expected_h = sheet.rows * size + (sheet.rows - 1) * sheet.gap
    assert sheet.image.size == (expected_w, expected_h)
    for i, cell in enumerate(tiles_of(sheet.image, sheet, 9)):
        assert np.array_equal(cell, trained_on.images[i].permute(1, 2, 0).numpy()), f"tile {i} differs"


def test_fit_and_resolution_change_the_sheet(tmp_path: Path) -> None:
    wide = tmp_path / "wide.png"
    wide.write_bytes(image_bytes(split_image((240, 60), [RED, GREEN, BLUE]), "PNG"))
    paths = [wide, *good_images(tmp_path / "more", 7)]
    cropped = contact_sheet(paths, IntakeOptions(size=32, fit="crop"))
    padded = contact_sheet(paths, IntakeOptions(size=32, fit="pad", pad_color="black"))
    bigger = contact_sheet(paths, IntakeOptions(size=64, fit="crop"))
    crop_tile, pad_tile = tiles_of(cropped.image, cropped, 1)[0], tiles_of(padded.image, padded, 1)[0]
    # crop keeps the green middle third; pad keeps all three colours with black bars above and below
    assert np.abs(crop_tile.astype(int) - GREEN).max() <= 4
    assert (pad_tile[:10] == 0).all() and (pad_tile[-10:] == 0).all()
    assert np.abs(pad_tile[16, 2:8].astype(int) - RED).max() <= 6
    assert np.abs(pad_tile[16, -8:-2].astype(int) - BLUE).max() <= 6
    assert bigger.size == 64 and bigger.image.width > 1.9 * cropped.image.width


def test_a_big_set_is_sampled_evenly_and_counted_in_full(tmp_path: Path) -> None:
    paths = good_images(tmp_path, 70, size=(24, 24))
    sheet = contact_sheet(paths, IntakeOptions(size=32), limit=64)
    assert sheet.usable == 70 and sheet.files == 70 and len(sheet.shown) == 64
    assert sheet.shown[0] == "good_0000.png" and sheet.shown[-1] == "good_0069.png"
    assert len(set(sheet.shown)) == 64
    assert sheet.columns * sheet.rows >= 64 and sheet.image.width > sheet.image.height  # wider than tall


def test_unusable_files_are_counted_not_shown(tmp_path: Path) -> None:
    good = good_images(tmp_path, 5)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not a picture")
    sheet = contact_sheet([*good, tmp_path / "empty.jpg", tmp_path / "notes.png"], IntakeOptions(size=32))
    # 5 usable is under the trainer's minimum of 8: the sheet still shows them (the trainer will refuse)
    assert sheet.usable == 5 and sheet.files == 7 and len(sheet.shown) == 5
    assert sheet.skipped == [("empty.jpg", "empty file"), ("notes.png", "not an image")]
    nothing = contact_sheet([tmp_path / "empty.jpg"], IntakeOptions(size=32))
    assert nothing.image is None and nothing.usable == 0 and nothing.files == 1 and nothing.shown == []


def test_gaps_are_transparent_and_tiles_opaque(tmp_path: Path) -> None:
    rgb = contact_sheet(good_images(tmp_path, 4, size=(32, 32)), IntakeOptions(size=32))
    assert rgb.channels == 3 and rgb.image.mode == "RGBA" and rgb.gap == 2
    alpha = np.asarray(rgb.image)[..., 3]
    assert np.all(alpha[:, 32:34] == 0) and np.all(alpha[:32, :32] == 255)
    rgba = [(f"a{i}.png", image_bytes(noise_image((32, 32), i, "RGBA"), "PNG")) for i in range(4)]
    sheet = contact_sheet(rgba, IntakeOptions(size=32))
    assert sheet.channels == 4  # noise alpha has values below 255: the set keeps its alpha channel
    assert sheet.image.mode == "RGBA" and np.all(np.asarray(sheet.image)[:, 32:34, 3] == 0)


def test_sample_indices_and_tile_checks() -> None:
    assert sample_indices(5, 64) == [0, 1, 2, 3, 4]
    picked = sample_indices(500, 64)
    assert len(picked) == 64 and picked[0] == 0 and picked[-1] == 499 and picked == sorted(set(picked))
    assert sample_indices(0, 64) == [] and sample_indices(10, 1) == [0]
    gray = torch.full((3, 1, 8, 8), 7, dtype=torch.uint8)
    image = tile(gray, columns=2, gap=1)
    assert image.mode == "LA" and image.size == (17, 17) and image.getpixel((0, 0)) == (7, 255)
    assert image.getpixel((16, 16)) == (0, 0)  # the empty fourth cell: transparent
    shaped = tile(gray, columns=4, gap=0, rows=4)  # the shape of a 4 x 4 sample grid, 3 cells used
    assert shaped.size == (32, 32) and shaped.getpixel((8, 0)) == (7, 255) and shaped.getpixel((0, 8)) == (0, 0)
    with pytest.raises(ValueError, match="uint8"):
        tile(torch.zeros(2, 3, 8, 8))
