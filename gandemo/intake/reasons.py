"""Why a file was not used: a short keyword first, then optionally ": " and details.

The keyword (``reason_keyword``) groups skips in messages: "3 truncated, 2 not an image".
"""

from __future__ import annotations

from collections import Counter


class Unusable(Exception):  # a verdict about a file, not a program error
    """This file can't be used; ``str()`` is the reason shown next to its name."""


def reason_keyword(reason: str) -> str:
    return reason.split(": ", 1)[0]


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def list_skipped(skipped: list[tuple[str, str]], limit: int = 10) -> str:
    """``a.txt (not an image), b.jpg (truncated) and 4 more``."""
    shown = ", ".join(f"{name} ({reason})" for name, reason in skipped[:limit])
    more = len(skipped) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def main_reasons(skipped: list[tuple[str, str]], limit: int = 4) -> str:
    """``4 not an image, 3 truncated``: the commonest kinds of skip, most frequent first."""
    counts = Counter(reason_keyword(r) for _, r in skipped)
    return ", ".join(f"{n} {kind}" for kind, n in counts.most_common(limit))
