"""gandemo.intake: user uploads -> one uint8 training tensor, skipping what can't be used.

The bad and odd files come from tests/intake_corpus.py; every case there states its outcome.
"""

from __future__ import annotations

import importlib.util
import io
import os
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from intake_corpus import (
    BLUE,
    GREEN,
    RED,
    Case,
    build_corpus,
    corpus_options,
    good_images,
    gray_set,
    huge_header_jpeg,
    huge_header_png,
    image_bytes,
    noise_image,
    split_image,
    zip_bytes,
)
from PIL import Image

from gandemo.errors import InvalidInputError
from gandemo.intake import Dataset, IntakeOptions, load_images, reason_keyword
from gandemo.intake.options import parse_color
from gandemo.intake.sources import Candidate, _zip_opener, _ZipBudget

REPO_ROOT = Path(__file__).resolve().parents[1]


def opts(**kwargs: object) -> IntakeOptions:
    return IntakeOptions(**{"device": "cpu", **kwargs})  # type: ignore[arg-type]


def pixels(data: Dataset, name: str) -> np.ndarray:
    """(H, W, C) uint8 of the image that came from ``name``."""
    return data.images[data.names.index(name)].permute(1, 2, 0).cpu().numpy()


def close(actual: np.ndarray, expected: tuple[int, ...], tol: int = 12) -> bool:
    return bool(np.all(np.abs(actual.astype(int) - np.asarray(expected)) <= tol))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def loaded(corpus: list[Case]) -> tuple[Dataset, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_images([case.path for case in corpus], opts(**corpus_options()))
    return data, caught


@pytest.fixture
def fillers(tmp_path: Path) -> list[Path]:
    return good_images(tmp_path / "fillers", 8)


# ---------------------------------------------------------------- the corpus, case by case


def test_corpus_is_big_and_varied(corpus: list[Case]) -> None:
    assert len({c.id for c in corpus}) == len(corpus) >= 20
    outcomes = {o.status for c in corpus for o in c.outcomes.values()}
    assert outcomes == {"used", "skipped", "ignored"}


def test_every_corpus_case_has_its_expected_outcome(corpus: list[Case], loaded: tuple[Dataset, list]) -> None:
    data, _ = loaded
    skipped = dict(data.skipped)
    problems = []
    for case in corpus:
        for name, want in case.outcomes.items():
            if name in data.names:
                got = "used"
            elif name in data.ignored:
                got = "ignored"
            elif name in skipped:
                got = "skipped"
            else:
                got = "missing"
            if got != want.status or (got == "skipped" and reason_keyword(skipped[name]) != want.reason):
                problems.append(f"{case.id}: {name} expected {want.status} {want.reason!r}, got {got} "
                                f"{skipped.get(name, '')!r} ({case.note})")
    assert not problems, "\n".join(problems)
    expected_names = {n for c in corpus for n, o in c.outcomes.items() if o.status != "ignored"}
    assert len(data.names) + len(data.skipped) == len(expected_names)  # nothing extra, nothing twice


def test_corpus_tensor_and_warnings(loaded: tuple[Dataset, list]) -> None:
    data, caught = loaded
    assert data.images.dtype == torch.uint8 and data.images.device.type == "cpu"
    assert data.channels == 4  # some images have real transparency, alpha is kept
    assert data.images.shape == (len(data.names), 4, 64, 64)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    text = " ".join(data.warnings)
    assert "tiny.png (12x12)" in text and "smaller than 32 px" in text
    assert "first frame" in text and "animated.gif" in text
    summary = data.summary()
    assert summary.startswith(f"Used {len(data.names)} of {len(data.names) + len(data.skipped)} files; skipped: ")
    assert "truncated.jpg (truncated)" in summary and "notes.txt (not an image)" in summary
    assert summary.endswith("ignored 5 hidden or system files.")


def test_corpus_content_cmyk_16bit_palette_gif(loaded: tuple[Dataset, list]) -> None:
    data, _ = loaded
    assert close(pixels(data, "cmyk.jpg"), (0, 255, 255, 255))  # CMYK cyan -> RGB cyan
    ramp = pixels(data, "gray16.png")[32, :, 0].astype(int)
    assert ramp[0] < 10 and ramp[-1] > 245 and np.all(np.diff(ramp) >= -2)  # scaled, not clipped at 255
    rgb16 = pixels(data, "rgb16.png")
    assert rgb16[32, 0, 0] < 15 and rgb16[32, -1, 0] > 240 and close(rgb16[..., 1:], (255, 0, 255))
    pal = pixels(data, "palette_alpha.png")
    assert np.all(pal[:, :28, 3] == 0) and close(pal[:, 36:], (*RED, 255), 2)
    la = pixels(data, "gray_alpha.png")
    assert np.all(la[:, :28, 3] == 0) and close(la[:, 36:], (200, 200, 200, 255), 2)
    key = pixels(data, "colour_key.png")
    assert np.all(key[:12, :, 3] == 0) and close(key[20:], (*BLUE, 255), 2)
    assert close(pixels(data, "animated.gif"), (*RED, 255), 4)  # the first frame, not the blue one
    assert close(pixels(data, "bilevel.png"), (255, 255, 255, 255), 0)


def test_corpus_content_orientation_crop_and_downscale(loaded: tuple[Dataset, list]) -> None:
    data, _ = loaded
    # Stored 80x40, red over blue, EXIF orientation 6: shown 40x80, blue left, red right.
    rotated = pixels(data, "exif_rotated.jpg")
    assert close(rotated[:, :26], (*BLUE, 255), 25) and close(rotated[:, 38:], (*RED, 255), 25)
    # Centre crops of 4:1 and 1:4 red|green|blue pictures see only green.
    assert close(pixels(data, "wide.png"), (*GREEN, 255), 2)
    assert close(pixels(data, "tall.png"), (*GREEN, 255), 2)
    # 3000x2000 bands at 0-1000 red, 1000-2000 green, 2000-3000 blue; crop keeps x 500-2500.
    big = pixels(data, "large_photo.jpg")
    assert close(big[:, 2:12], (*RED, 255), 25) and close(big[:, 20:44], (*GREEN, 255), 25)
    assert close(big[:, 52:62], (*BLUE, 255), 25)


# ---------------------------------------------------------------- focused behaviours


def test_huge_headers_are_refused_without_decoding(tmp_path: Path) -> None:
    sources = [("png.png", huge_header_png()), ("jpeg.jpg", huge_header_jpeg()), ("ten.png", huge_header_png(10000))]
    tracemalloc.start()
    start = time.perf_counter()
    data = load_images(sources, opts(min_images=0))
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [reason_keyword(r) for _, r in data.skipped] == ["too large"] * 3
    assert "400 megapixels" in data.skipped[0][1]
    assert elapsed < 2 and peak < 20 * 2**20  # a decoded 20000x20000 RGB image would be 1.2 GB


def test_max_pixels_option_refuses_from_the_header(tmp_path: Path) -> None:
    big = image_bytes(noise_image((300, 200), 1), "PNG")
    data = load_images([("big.png", big), ("ok.png", image_bytes(noise_image((100, 100), 2), "PNG"))],
                       opts(min_images=0, max_pixels=50_000))
    assert data.names == ["ok.png"]
    assert [name for name, _ in data.skipped] == ["big.png"]
    assert data.skipped[0][1].startswith("too large: 300x200")


def test_an_upload_decodes_at_most_its_pixel_budget() -> None:
    """Small files that decode huge (a 1-bit PNG of 3000x3000 is a few kB): once the upload's images have
    decoded the budget, the rest are skipped before decoding, with a reason; small images still fit."""
    bomb = io.BytesIO()
    Image.new("1", (3000, 3000)).save(bomb, "PNG")
    assert len(bomb.getvalue()) < 20_000
    small = [(f"ok{i}.png", image_bytes(noise_image((64, 64), i), "PNG")) for i in range(8)]
    sources = [(f"bomb{i}.png", bomb.getvalue()) for i in range(5)] + small
    data = load_images(sources, opts(min_images=0, max_total_pixels=20_000_000))  # two bombs fit, not three
    assert data.names == ["bomb0.png", "bomb1.png", *[name for name, _ in small]], data.names
    assert [name for name, _ in data.skipped] == ["bomb2.png", "bomb3.png", "bomb4.png"]
    assert {reason_keyword(r) for _, r in data.skipped} == {"over the decoding budget"}
    assert "decoded 18 megapixels, this one needs 9 more, the limit is 20" in data.skipped[0][1], data.skipped[0][1]
    assert len(load_images(sources, opts(min_images=0)).names) == 13  # no budget, nothing skipped


def test_a_jpeg_counts_against_the_budget_at_its_reduced_decode_size() -> None:
    from gandemo.intake.decode import prepare

    photo = image_bytes(noise_image((2000, 1600), 3), "JPEG")
    prepared = prepare(io.BytesIO(photo), opts(size=32, max_total_pixels=10**6), allowance=10**6)
    assert prepared.decoded_pixels == 250 * 200  # 1/8 scale: still at least twice the 32 px target
    assert prepared.source_size == (2000, 1600)


def test_exif_orientation_with_padding(corpus: list[Case], fillers: list[Path]) -> None:
    rotated = next(c.path for c in corpus if c.id == "exif-rotated-jpeg")
    data = load_images([rotated, *fillers], opts(fit="pad", pad_color="black", channels=3))
    img = pixels(data, "exif_rotated.jpg")  # shown 40x80 -> 32x64 centred: columns 16..47
    assert close(img[:, :15], (0, 0, 0), 0) and close(img[:, 49:], (0, 0, 0), 0)
    assert close(img[:, 18:30], BLUE, 25) and close(img[:, 34:46], RED, 25)


def test_crop_versus_pad_geometry(tmp_path: Path, fillers: list[Path]) -> None:
    wide = tmp_path / "wide.png"
    wide.write_bytes(image_bytes(split_image((240, 60), [RED, GREEN, BLUE]), "PNG"))
    cropped = pixels(load_images([wide, *fillers], opts(fit="crop", channels=3)), "wide.png")
    assert close(cropped, GREEN, 2)
    # Pad with transparency: a 64x16 strip in rows 24..39, transparent above and below. ("auto"
    # would give 3 channels: padding is not transparency in the pictures themselves.)
    padded = pixels(load_images([wide, *fillers], opts(fit="pad", channels=4)), "wide.png")
    assert padded.shape == (64, 64, 4)
    assert np.all(padded[:24, :, 3] == 0) and np.all(padded[40:, :, 3] == 0) and np.all(padded[24:40, :, 3] == 255)
    assert close(padded[26:38, 2:18], (*RED, 255), 4) and close(padded[26:38, 26:38], (*GREEN, 255), 4)
    assert close(padded[26:38, 46:62], (*BLUE, 255), 4)
    # Pad with a colour: opaque magenta bars, 3 channels because nothing is transparent.
    data = load_images([wide, *fillers], opts(fit="pad", pad_color="#ff00ff"))
    assert data.channels == 3
    bars = pixels(data, "wide.png")
    assert close(bars[:24], (255, 0, 255), 0) and close(bars[40:], (255, 0, 255), 0)
    # Transparent bars flatten onto the background when the output has no alpha.
    flat = pixels(load_images([wide, *fillers], opts(fit="pad", channels=3, background="navy")), "wide.png")
    assert close(flat[:24], (0, 0, 128), 0)


def test_alpha_keep_and_flatten(corpus: list[Case], fillers: list[Path]) -> None:
    alpha_files = [c.path for c in corpus if "alpha" in c.tags]
    kept = load_images([*alpha_files, *fillers], opts())
    assert kept.channels == 4 and not kept.warnings
    flat = load_images([*alpha_files, *fillers], opts(alpha="flatten", background=(0, 0, 255)))
    assert flat.channels == 3
    assert close(pixels(flat, "palette_alpha.png")[:, :28], (0, 0, 255), 0)
    assert close(pixels(flat, "palette_alpha.png")[:, 36:], RED, 2)
    assert close(pixels(flat, "gray_alpha.png")[:, :28], (0, 0, 255), 0)
    # alpha="keep" but 3 channels asked for: flattened, and the user is told.
    forced = load_images([*alpha_files, *fillers], opts(channels=3))
    assert forced.channels == 3 and any("Transparency in" in w for w in forced.warnings)


def test_opaque_alpha_channel_is_not_transparency(fillers: list[Path]) -> None:
    opaque = image_bytes(noise_image((40, 40), 3).convert("RGBA"), "PNG")
    data = load_images([("opaque_rgba.png", opaque), *fillers], opts())
    assert data.channels == 3


def test_grayscale_only_set_becomes_one_channel(tmp_path: Path) -> None:
    paths = gray_set(tmp_path / "gray")
    data = load_images(paths, opts(size=32))
    assert data.channels == 1 and data.images.shape == (len(paths), 1, 32, 32) and not data.skipped
    assert int(data.images[data.names.index("i16.png")].max()) > 200  # 16-bit range scaled down, not clipped
    colour = load_images([*paths, ("red.png", image_bytes(Image.new("RGB", (40, 40), RED), "PNG"))], opts(size=32))
    assert colour.channels == 3


def test_explicit_channels(fillers: list[Path]) -> None:
    red = ("red.png", image_bytes(Image.new("RGB", (40, 40), RED), "PNG"))
    gray = load_images([red, *fillers], opts(channels=1))
    luma = (RED[0] * 299 + RED[1] * 587 + RED[2] * 114 + 500) // 1000
    assert gray.channels == 1 and close(pixels(gray, "red.png"), (luma,), 1)
    four = load_images([red, *fillers], opts(channels=4))
    assert four.channels == 4 and close(pixels(four, "red.png"), (*RED, 255), 1)


def test_summary_sentence(tmp_path: Path, fillers: list[Path]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    truncated = tmp_path / "b.jpg"
    truncated.write_bytes(image_bytes(noise_image((100, 100), 9), "JPEG")[:1500])
    data = load_images([*fillers[:4], notes, *fillers[4:], truncated], opts())
    assert data.summary() == "Used 8 of 10 files; skipped: notes.txt (not an image), b.jpg (truncated)."
    assert load_images(fillers, opts()).summary() == "Used 8 of 8 files."


def test_too_few_usable_images_is_a_clear_error(tmp_path: Path) -> None:
    good = good_images(tmp_path, 5)
    bad = [("a.txt", b"hello"), ("b.txt", b"world"), ("c.png", b""), ("d.jpg", image_bytes(noise_image((80, 80), 1), "JPEG")[:900])]
    with pytest.raises(InvalidInputError) as info:
        load_images([*good, *bad], opts())
    message = str(info.value)
    assert message.startswith("Only 5 of 9 files are usable images; training needs at least 8.")
    assert "2 not an image" in message and "1 empty file" in message and "1 truncated" in message
    with pytest.raises(InvalidInputError, match="No files were found"):
        load_images([], opts())


def test_folder_source_walks_subfolders_and_opens_zips(tmp_path: Path) -> None:
    root = tmp_path / "upload"
    good_images(root, 3)
    good_images(root / "sub" / "deeper", 2, prefix="deep")
    good_images(root / ".git", 2)  # hidden folder: ignored
    good_images(root / "__MACOSX", 1)
    (root / ".DS_Store").write_bytes(bytes(32))
    (root / "readme.md").write_text("# my cats")
    (root / "more.zip").write_bytes(zip_bytes([("z/one.png", image_bytes(noise_image((40, 40), 5), "PNG"))]))
    data = load_images(root, opts(min_images=6))
    assert sorted(data.names) == ["good_0000.png", "good_0001.png", "good_0002.png",
                                  "sub/deeper/deep_0000.png", "sub/deeper/deep_0001.png", "z/one.png"]
    assert data.skipped == [("readme.md", "not an image")]
    assert set(data.ignored) == {".DS_Store", ".git/", "__MACOSX/"}


def test_bytes_sources_and_zip_bytes(fillers: list[Path]) -> None:
    inner = [(f"in/{i}.png", image_bytes(noise_image((30, 30), 40 + i), "PNG")) for i in range(3)]
    data = load_images([("C:\\Users\\me\\photo.png", image_bytes(noise_image((30, 30), 1), "PNG")),
                        ("pack.zip", zip_bytes(inner)), *fillers], opts())
    assert data.names[:4] == ["photo.png", "in/0.png", "in/1.png", "in/2.png"]
    assert load_images(next(iter(fillers)), opts(min_images=1)).names == ["good_0000.png"]


def test_max_files_and_missing_files(fillers: list[Path], tmp_path: Path) -> None:
    data = load_images([*fillers, tmp_path / "gone.png"], opts(max_files=6, min_images=1))
    assert len(data) == 6
    assert [reason_keyword(r) for _, r in data.skipped] == ["over the file limit"] * 2 + ["file not found"]


def test_zip_entry_reading_is_capped_whatever_the_header_says() -> None:
    payload = bytes(200_000)
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes([("zeros.png", payload)])))
    info = archive.infolist()[0]
    options = opts()
    budget = _ZipBudget(50_000)  # less left than the entry holds: reading must stop, not trust the header
    with pytest.raises(Exception, match="zip bomb guard"):
        Candidate("zeros.png", _zip_opener(archive, info, budget, options), info.file_size).open()
    small = opts(max_file_bytes=1000)
    with pytest.raises(Exception, match="too large"):
        _zip_opener(archive, info, _ZipBudget(10**9), small)()


def test_progress_and_float_view(fillers: list[Path]) -> None:
    seen: list[tuple[int, int]] = []
    data = load_images(fillers, opts(size=32), progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (8, 8) and len(seen) == 8
    x = data.as_float()
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1 and x.shape == (8, 3, 32, 32)
    assert torch.equal(data.as_float(slice(0, 2)), x[:2])


@pytest.mark.parametrize(
    "kwargs",
    [{"size": 50}, {"channels": 2}, {"alpha": "drop"}, {"channels": 4, "alpha": "flatten"}, {"fit": "stretch"},
     {"background": "not-a-colour"}, {"pad_color": (1, 2)}, {"max_files": 0}, {"min_images": -1}],
)
def test_options_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        IntakeOptions(**kwargs)  # type: ignore[arg-type]


def test_parse_color() -> None:
    assert parse_color("white") == (255, 255, 255) and parse_color("#102030") == (16, 32, 48)
    assert parse_color((1, 2, 3)) == (1, 2, 3)


def test_many_small_images_are_fast() -> None:
    rng = np.random.default_rng(0)
    sources = []
    for i in range(1000):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(buf, "PNG", compress_level=1)
        sources.append((f"{i}.png", buf.getvalue()))
    start = time.perf_counter()
    data = load_images(sources, opts(size=64))
    elapsed = time.perf_counter() - start
    assert data.images.shape == (1000, 3, 64, 64)
    assert elapsed < 10, f"1000 small images took {elapsed:.1f} s"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tensor_lands_on_the_gpu(fillers: list[Path]) -> None:
    data = load_images(fillers, opts(device="cuda"))
    assert data.images.device.type == "cuda" and data.images.dtype == torch.uint8


# ---------------------------------------------------------------- emoji from the system font


def _render_emoji_module() -> ModuleType:  # scripts/ is not a package
    spec = importlib.util.spec_from_file_location("render_emoji", REPO_ROOT / "scripts" / "render_emoji.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rendered_emoji_become_a_four_channel_set(tmp_path: Path) -> None:
    render_emoji = _render_emoji_module()
    if not render_emoji.FONT_PATH.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{render_emoji.FONT_PATH} is missing on CI (apt install fonts-noto-color-emoji)")
        pytest.skip("Noto Color Emoji font not installed")
    renderer = render_emoji.EmojiRenderer(size=64)
    texts = [chr(cp) for cp in (0x1F600, 0x1F431, 0x1F34E, 0x1F680, 0x2764, 0x1F308, 0x1F98A, 0x1F355, 0x1F3B8)]
    assert renderer.render(chr(0x10FFFD)) is None  # not in the font: nothing written
    count = render_emoji.render_all(tmp_path, texts, renderer)
    assert count == len(texts)
    files = sorted(tmp_path.glob("emoji_u*.png"))
    first = Image.open(files[0])
    assert first.mode == "RGBA" and first.size == (64, 64)
    data = load_images(files, opts(size=32))
    assert data.channels == 4 and data.images.shape == (len(texts), 4, 32, 32)
    alpha = data.images[:, 3]
    assert (alpha == 0).any() and (alpha == 255).any()
