"""Shared UI plumbing: the model cache, ZeroGPU wrapper, turning core errors into gr.Error,
and per-request output folders that are cleaned up after a while."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import os
import secrets
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
from PIL import Image

from ..access import is_shared, outputs_quota, prune_folders, redact_paths
from ..errors import GandemoError, InvalidInputError
from ..generator import GeneratorCache
from ..hub import bundled_models
from ..i18n import t, translate_message, use_language
from .i18n import request_language

log = logging.getLogger("gandemo")
F = TypeVar("F", bound=Callable[..., Any])

MODELS = GeneratorCache(capacity=int(os.environ.get("GANDEMO_MODEL_CACHE", "4")))
OUTPUT_ROOT = Path(os.environ.get("GANDEMO_OUTPUT_DIR") or Path(tempfile.gettempdir()) / "gandemo-outputs")
OUTPUT_MAX_AGE_S = 3600

try:  # ZeroGPU on Hugging Face Spaces: GPU-bound functions ask for a GPU slice while they run
    import spaces  # type: ignore[import-not-found]

    gpu: Callable[..., Any] = spaces.GPU
except ImportError:  # anywhere else the decorator is a no-op

    def gpu(fn: Callable[..., Any] | None = None, **_: Any) -> Any:
        return fn if fn is not None else (lambda f: f)


def default_model() -> str:
    names = bundled_models()
    return "fashion-mnist" if "fashion-mnist" in names else (names[0] if names else "")


def _translate(fn_name: str, e: Exception) -> Exception:
    if isinstance(e, gr.Error):
        e.message = redact_paths(translate_message(str(e.message)), (OUTPUT_ROOT,))
        return e
    if isinstance(e, GandemoError):
        return gr.Error(redact_paths(translate_message(str(e)), (OUTPUT_ROOT,)), print_exception=False)
    log.error("unexpected error in %s:\n%s", fn_name, traceback.format_exc())
    if is_shared():  # an unplanned error's text may hold anything the server read (a path, a file's first line)
        return gr.Error(t("error.unexpected_shared", kind=type(e).__name__))
    return gr.Error(t("error.unexpected", kind=type(e).__name__, detail=str(e)[:200]))


def _with_request(fn: Callable[..., Any]) -> tuple[inspect.Signature, dict[str, Any], bool]:
    """The handler's signature with a ``gr.Request`` parameter added at the end (unless it has one):
    Gradio fills it in, and it never shows in the API."""
    sig = inspect.signature(fn)
    hints = dict(getattr(fn, "__annotations__", {}))
    if any(p.annotation in (gr.Request, "gr.Request") for p in sig.parameters.values()):
        return sig, hints, False
    params = list(sig.parameters.values())
    params.append(inspect.Parameter(REQUEST_PARAM, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                    annotation=gr.Request))
    hints[REQUEST_PARAM] = gr.Request
    return sig.replace(parameters=params), hints, True


def _split_request(args: tuple[Any, ...], kwargs: dict[str, Any], added: bool,
                   arity: int) -> tuple[tuple[Any, ...], gr.Request | None]:
    """The handler's own arguments and the request Gradio added (none when code calls it directly)."""
    if added:
        if REQUEST_PARAM in kwargs:
            return args, kwargs.pop(REQUEST_PARAM)
        if len(args) == arity and (args[-1] is None or isinstance(args[-1], gr.Request)):
            return args[:-1], args[-1]
        return args, None
    request = kwargs.get("request") or next((a for a in args if isinstance(a, gr.Request)), None)
    return args, request


REQUEST_PARAM = "gandemo_request"


@contextlib.contextmanager
def _speaking(fn_name: str, lang: str) -> Iterator[None]:
    """Run a piece of a handler in the page's language; any failure leaves as a human gr.Error."""
    with use_language(lang):
        try:
            yield
        except Exception as e:  # noqa: BLE001 - last line of defence for the server
            error = _translate(fn_name, e)
            if error is e:
                raise
            raise error from e


def human_errors(fn: F) -> F:
    """Core errors become gr.Error with their own message; anything else becomes a short,
    honest gr.Error and a logged traceback. Either way the server keeps serving.
    Every call runs in the language of the page that made it (gandemo.i18n.current_language), and
    messages are shown in that language.
    Generator (streaming) handlers stay generators, so Gradio still streams them."""
    signature, hints, added = _with_request(fn)
    arity = len(signature.parameters)
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Any:
            args, request = _split_request(args, kwargs, added, arity)
            lang = request_language(request)
            with _speaking(fn.__name__, lang):
                iterator = fn(*args, **kwargs)
            while True:  # the language is set around each step: Gradio may run each in another thread
                with _speaking(fn.__name__, lang):
                    try:
                        value = next(iterator)
                    except StopIteration:
                        return
                yield value

        handler = stream
    else:

        @functools.wraps(fn)
        def handler(*args: Any, **kwargs: Any) -> Any:
            args, request = _split_request(args, kwargs, added, arity)
            with _speaking(fn.__name__, request_language(request)):
                return fn(*args, **kwargs)

    handler.__signature__ = signature  # type: ignore[attr-defined]
    handler.__annotations__ = hints
    return handler  # type: ignore[return-value]


def whole_number(value: Any, name: str) -> int:
    """A count from a widget or the API as an int: 3.0 is 3; 2.5, NaN, text or True is refused with a
    sentence naming ``name`` (already in the page's language), not rounded."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value):
        raise InvalidInputError(t("error.whole", name=name, value=value))
    return int(value)


_last_prune = 0.0


def output_dir(prefix: str) -> Path:
    """A fresh folder for one request's downloadable files; folders older than an hour go
    (checked at most once a minute, so the cost doesn't grow with traffic)."""
    global _last_prune
    OUTPUT_ROOT.mkdir(parents=True, exist_ok=True)
    now = time.time()
    if now - _last_prune > 60:
        _last_prune = now
        _prune(now)
    # 128 random bits in the name: anyone who knows a file's path can download it, so nobody may guess one
    folder = OUTPUT_ROOT / f"{prefix}-{secrets.token_hex(16)}"
    folder.mkdir(mode=0o700)
    return folder


def png_file(image: Image.Image, path: Path) -> str:
    """Save ``image`` as PNG at ``path`` (a fresh name in a request's folder) and return the path.

    UI handlers return pictures as files they wrote, not as PIL images: Gradio rewrites its cached
    copy of a PIL output in place whenever the same picture comes out again (same seed, same first
    preview), and a client still downloading that copy then gets a cut-off body. A file path is
    copied into Gradio's cache once, atomically."""
    image.save(path, format="PNG")
    return str(path)


class PreviewFiles:
    """Numbered PNG files for a stream of live previews in one request folder; only the newest
    ``keep`` stay on disk (Gradio has its own copy of each by the time a newer one is written)."""

    def __init__(self, prefix: str, keep: int = 3) -> None:
        self.folder = output_dir(prefix)
        self.keep = keep
        self.paths: list[Path] = []

    def __call__(self, image: Image.Image | None) -> str | None:
        if image is None:
            return None
        path = self.folder / f"preview-{len(self.paths):05d}.png"
        png_file(image, path)
        self.paths.append(path)
        if len(self.paths) > self.keep:
            self.paths[-self.keep - 1].unlink(missing_ok=True)
        return str(path)


def _prune(now: float) -> None:
    """Request folders older than an hour go; on a shared server also the oldest beyond the outputs quota (but
    not one written in the last two minutes: its request may still be sending it)."""
    with contextlib.suppress(OSError, GandemoError):
        prune_folders(OUTPUT_ROOT, OUTPUT_MAX_AGE_S, outputs_quota(), spare_newer_than_s=120, now=now)
