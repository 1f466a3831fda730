"""What a sample grid and an interpolation accept: seeds, counts, frames, truncation.

No torch here: ``gandemo.explore`` (the Generate tab, the endpoints) checks its arguments with these, and the
command line checks its options with them before it imports torch and loads a model. Each check raises
InvalidInputError with a sentence a person can act on.
"""

from __future__ import annotations

from .errors import InvalidInputError

MAX_SEED = 2**63 - 1  # a seed names a latent vector (gandemo.gan.latent)
MAX_SAMPLES = 64
MAX_FRAMES = 120
MAX_WAYPOINTS = 8
METHODS = ("slerp", "lerp")


def check_seed(seed: int, name: str = "seed") -> int:
    """A seed as an int; 1.5 is refused (not rounded), like text, NaN or infinity."""
    if isinstance(seed, bool) or (isinstance(seed, float) and not seed.is_integer()):
        raise InvalidInputError(f"The {name} must be a whole number, got {seed!r}.")
    try:
        seed = int(seed)
    except (TypeError, ValueError, OverflowError) as e:
        raise InvalidInputError(f"The {name} must be a whole number, got {seed!r}.") from e
    if not 0 <= seed <= MAX_SEED - MAX_SAMPLES:
        raise InvalidInputError(f"The {name} must be between 0 and {MAX_SEED - MAX_SAMPLES}, got {seed}.")
    return seed


def check_truncation(truncation: float | None) -> float | None:
    if truncation is None or truncation == 0:
        return None  # 0 in the UI means "off"
    if not 0.05 <= truncation <= 10:
        raise InvalidInputError(f"Truncation must be between 0.05 and 10 (or 0 for off), got {truncation}.")
    return float(truncation)


def check_count(num: int) -> int:
    """The number of images of a sample grid."""
    return _how_many(num, 1, MAX_SAMPLES, "images")


def _how_many(value: int, lo: int, hi: int, things: str) -> int:
    try:
        value = int(value)
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"The number of {things} must be a whole number, got {value!r}.") from e
    if not lo <= value <= hi:
        raise InvalidInputError(f"Ask for between {lo} and {hi} {things}, not {value}.")
    return value


def check_interpolation(seeds: list[int], frames: int, method: str = "slerp", loop: bool = False) -> tuple[list[int], int]:
    """The seeds and the number of frames of a walk through ``seeds``, checked: (seeds, frames)."""
    if method not in METHODS:
        raise InvalidInputError(f"Interpolation must be one of {', '.join(METHODS)}, not {method!r}.")
    frames = _how_many(frames, 2, MAX_FRAMES, "frames")
    seeds = [check_seed(s, "seed") for s in seeds]
    if not 2 <= len(seeds) <= MAX_WAYPOINTS:
        raise InvalidInputError(f"An interpolation needs between 2 and {MAX_WAYPOINTS} seeds, got {len(seeds)}.")
    segments = len(seeds) - (0 if loop else 1)
    if (frames if loop else frames - 1) < segments:
        raise InvalidInputError(
            f"{frames} frames are too few to visit {len(seeds)} seeds; use at least {segments + (0 if loop else 1)}."
        )
    return seeds, frames
