"""Data intake for "train a GAN on your own images": files, folders or zips -> one uint8 tensor.

    from gandemo.intake import IntakeOptions, load_images
    data = load_images(["a.png", "b.jpg", "photos.zip"], IntakeOptions(size=64, fit="pad"))
    print(data.summary())  # Used 187 of 200 files; skipped: notes.txt (not an image), ...
    data.images            # uint8 (N, C, 64, 64), C = 1, 3 or 4

Nothing here stops on a bad file: each is skipped with a reason and the rest go on. Only too
few usable images (``options.min_images``) is an error (:class:`~gandemo.errors.InvalidInputError`).
Decoding happens once, here; training batches index the tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import torch

from gandemo.errors import InvalidInputError
from gandemo.intake.dataset import Dataset, assemble, choose_channels, place
from gandemo.intake.decode import ACCEPTED_FORMATS, Prepared, prepare
from gandemo.intake.options import IntakeOptions, parse_color
from gandemo.intake.reasons import Unusable, human_bytes, main_reasons, reason_keyword
from gandemo.intake.sources import Source, Sources, collect

__all__ = [
    "ACCEPTED_FORMATS", "Dataset", "IntakeOptions", "Source", "Sources", "load_images", "parse_color",
    "reason_keyword",
]

Progress = Callable[[int, int], None]


def load_images(sources: Sources, options: IntakeOptions | None = None, progress: Progress | None = None) -> Dataset:
    """Read, check and preprocess user images into a :class:`Dataset`.

    ``sources``: a folder, a ``.zip``, a single file, or a list of paths and ``(name, bytes)``
    pairs (zips in the list are opened too; a zip inside a zip is not). ``progress(done, total)``
    is called after each file.
    """
    options = options or IntakeOptions()
    prepared: list[Prepared] = []
    names: list[str] = []
    failed: list[tuple[int, str, str]] = []
    spent = 0  # pixels decoded so far, against options.max_total_pixels
    with ExitStack() as stack:
        found = collect(sources, options, stack)
        total = len(found.candidates)
        for done, candidate in enumerate(found.candidates, 1):
            try:
                if candidate.nbytes > options.max_file_bytes:
                    raise Unusable(f"too large: {human_bytes(candidate.nbytes)}, the limit is {human_bytes(options.max_file_bytes)}")
                with candidate.open() as fp:
                    image = prepare(fp, options, options.max_total_pixels - spent if options.max_total_pixels else None)
                prepared.append(image)
                spent += image.decoded_pixels
                names.append(candidate.name)
            except Unusable as why:
                failed.append((candidate.seq, candidate.name, str(why)))
            except OSError as e:
                failed.append((candidate.seq, candidate.name, f"unreadable: {e.strerror or e}"))
            except Exception as e:  # one odd file must not sink the upload; the reason names the error
                failed.append((candidate.seq, candidate.name, f"could not be read: {type(e).__name__}: {e}"))
            if progress is not None:
                progress(done, total)
    skipped = [(name, reason) for _, name, reason in sorted(found.skipped + failed)]

    if len(prepared) < options.min_images:
        raise InvalidInputError(_too_few_message(len(prepared), len(names) + len(skipped), skipped, options))

    channels = choose_channels(prepared, options)
    pixels = assemble(prepared, channels, options)
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    warnings = _warnings(prepared, names, channels, options)
    device = torch.device(options.device) if options.device else _default_device()
    images, placement_warning = place(images, device)
    if placement_warning:
        warnings.append(placement_warning)
    return Dataset(images, names, skipped, warnings, found.ignored)


def _default_device() -> torch.device:
    from gandemo.device import pick_device

    return pick_device()


def _too_few_message(usable: int, total: int, skipped: list[tuple[str, str]], options: IntakeOptions) -> str:
    if total == 0:
        return f"No files were found; training needs at least {options.min_images} images."
    text = (f"Only {usable} of {total} files {'is a usable image' if usable == 1 else 'are usable images'}; "
            f"training needs at least {options.min_images}.")
    if skipped:
        text += f" Skipped: {main_reasons(skipped)}."
    return text


def _warnings(prepared: list[Prepared], names: list[str], channels: int, options: IntakeOptions) -> list[str]:
    out: list[str] = []
    limit = options.small_threshold
    small = [(n, p.source_size) for n, p in zip(names, prepared, strict=True) if min(p.source_size) < limit]
    if small:
        listed = ", ".join(f"{n} ({w}x{h})" for n, (w, h) in small[:5]) + (f" and {len(small) - 5} more" if len(small) > 5 else "")
        out.append(f"{len(small)} image{'s are' if len(small) > 1 else ' is'} smaller than {limit} px and "
                   f"will look blurry when enlarged to {options.size}x{options.size}: {listed}.")
    animated = [n for n, p in zip(names, prepared, strict=True) if p.animated]
    if animated:
        out.append(f"Only the first frame of {len(animated)} animated or multi-page "
                   f"image{'s' if len(animated) > 1 else ''} was used ({', '.join(animated[:5])}{', ...' if len(animated) > 5 else ''}).")
    if channels < 4 and options.alpha == "keep":
        flattened = sum(p.transparent for p in prepared)
        if flattened:
            out.append(f"Transparency in {flattened} image{'s' if flattened > 1 else ''} was flattened onto the "
                       f"background colour because the output has {channels} channel{'s' if channels > 1 else ''}.")
    return out
