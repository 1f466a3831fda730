"""``load_generator``: one call from any source to a ready-to-sample generator.

    from gandemo import load_generator
    gen = load_generator("fashion-mnist")          # bundled / local path / "owner/name@rev"
    images = gen(torch.randn(16, gen.latent_dim))  # (16, C, H, W) in [-1, 1]
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .access import model_source
from .device import pick_device
from .errors import GandemoError, InvalidInputError, SourceError, UnsupportedCheckpointError
from .gan.latent import latents_for_seeds
from .gan.layouts import (
    LAYOUTS,
    MSG_LAYOUT,
    PROGRESSIVE_LAYOUT,
    build_generator,
    load_strict,
    recognise,
    strip_wrappers,
)
from .gan.models import DCGANGenerator
from .gan.msg import MSGGenerator, build_msg_generator
from .gan.progressive import ProgressiveGenerator
from .gan.runs import RunFolder
from .gan.settings import ARCH_NAMES, ARCHITECTURES
from .hub import ResolvedFiles, read_state_dict, resolve

NATIVE_CONFIG_KEYS = {"image_size", "channels", "latent_dim", "width"}
OPTIONAL_CONFIG_KEYS = {"arch"}  # "dcgan" (also when absent), "msg" or "progressive"
MAX_BATCH = 256


@dataclass
class ModelCard:
    title: str = ""
    summary: str = ""
    metadata: dict[str, object] = field(default_factory=dict)


class Generator:
    """A loaded generator: call it with latents, or ask it for seeded samples.

    Always in eval mode and under ``torch.no_grad``; outputs are float32 on the CPU.
    """

    def __init__(self, module: nn.Module, *, source: str, layout: str, card: ModelCard | None = None,
                 device: torch.device | None = None):
        self.module = module.eval()
        self.source = source
        self.layout = layout
        self.card = card or ModelCard()
        self.latent_dim: int = int(module.latent_dim)
        self.channels: int = int(module.channels)
        self.image_size: int = int(module.image_size)
        self.arch: str = str(getattr(module, "arch", "dcgan"))  # "msg": an MSG-GAN, whose scales() shows every scale
        self.device = device or torch.device("cpu")
        self.module.to(self.device)

    def __repr__(self) -> str:
        return (f"Generator(source={self.source!r}, layout={self.layout!r}, image_size={self.image_size}, "
                f"channels={self.channels}, latent_dim={self.latent_dim})")

    def _latents(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 4 and z.shape[2:] == (1, 1):
            z = z.flatten(1)
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise InvalidInputError(f"z must have shape (N, {self.latent_dim}); got {tuple(z.shape)}.")
        return z

    @torch.no_grad()
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        z = self._latents(z)
        out = []
        for chunk in z.split(MAX_BATCH):
            out.append(self.module(chunk.to(self.device, torch.float32)).float().cpu())
        return torch.cat(out) if out else torch.empty(0, self.channels, self.image_size, self.image_size)

    def sample(self, seeds: list[int], truncation: float | None = None) -> torch.Tensor:
        """Images for the given seeds (seed s always gives the same image)."""
        return self(latents_for_seeds(seeds, self.latent_dim, truncation))

    @property
    def scale_sizes(self) -> list[int]:
        """The sizes ``scales`` returns ([4, 8, ..., image_size] for an MSG-GAN; [image_size] otherwise)."""
        return list(self.module.sizes) if self.arch == "msg" else [self.image_size]

    @torch.no_grad()
    def scales(self, z: torch.Tensor) -> list[torch.Tensor]:
        """An MSG-GAN's images at every scale, 4x4 first and the full size (what ``__call__`` returns) last,
        float32 on the CPU. Other generators draw only the final image: InvalidInputError says so."""
        if self.arch != "msg":
            raise InvalidInputError(
                f"Only MSG-GAN models draw their images at every scale; this {self.layout} generator draws only "
                "its final image.")
        z = self._latents(z)
        per_chunk = [[x.float().cpu() for x in self.module(chunk.to(self.device, torch.float32), all_scales=True)]
                     for chunk in z.split(MAX_BATCH)]
        if not per_chunk:
            return [torch.empty(0, self.channels, s, s) for s in self.scale_sizes]
        return [torch.cat(images) for images in zip(*per_chunk)]

    def sample_scales(self, seeds: list[int], truncation: float | None = None) -> list[torch.Tensor]:
        """``scales`` for the given seeds."""
        return self.scales(latents_for_seeds(seeds, self.latent_dim, truncation))

    def to(self, device: str | torch.device) -> Generator:
        self.device = torch.device(device)
        self.module.to(self.device)
        return self


def read_card(path: Path | None) -> ModelCard:
    """Title, first paragraph and YAML metadata of a model card (README.md)."""
    if path is None or not Path(path).is_file():
        return ModelCard()
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    metadata: dict[str, object] = {}
    m = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.S)
    if m:
        try:
            import yaml  # PyYAML comes with huggingface_hub

            loaded = yaml.safe_load(m.group(1))
            metadata = loaded if isinstance(loaded, dict) else {}
        except Exception:  # a broken header must not stop the model from loading
            metadata = {}
        text = text[m.end():]
    title, paragraphs, current = "", [], []
    for line in text.splitlines():
        if line.startswith("# ") and not title:
            title = line[2:].strip()
        elif line.strip() and not line.startswith(("#", "!", "```", "|", "<")):
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return ModelCard(title, paragraphs[0] if paragraphs else "", metadata)


def build_from_files(files: ResolvedFiles) -> tuple[nn.Module, str]:
    """The module and layout name for resolved files; strict loading everywhere.

    A folder whose config.json describes a gandemo DCGAN, or that is a training run, loads exactly its
    model.safetensors: never another weights file of the folder (a run's live generator, say)."""
    config = None
    if files.config is not None:
        try:
            config = json.loads(Path(files.config).read_text())
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise UnsupportedCheckpointError(f"{files.label}: config.json is damaged (not valid JSON).") from e
    native = isinstance(config, dict) and set(config) >= NATIVE_CONFIG_KEYS
    run = RunFolder(_folder_of(files))
    a_run = files.kind == "local" and run.STATE in files.all_files  # a training run on this machine
    if (native or run.STATE in files.all_files) and files.all_files and files.weights != run.file(run.MODEL):
        if a_run:
            raise run.damaged(run.MODEL, "is missing")
        raise UnsupportedCheckpointError(
            f"{files.label} is a gandemo model whose weights file, {run.MODEL}, is missing; "
            "no other file of it is used in its place.")
    try:
        state = read_state_dict(files.weights)
    except UnsupportedCheckpointError as e:
        if a_run:
            raise run.damaged(run.MODEL, "is not a valid safetensors file") from e
        raise
    if native:
        extra = set(config) - NATIVE_CONFIG_KEYS - OPTIONAL_CONFIG_KEYS
        if extra:
            raise UnsupportedCheckpointError(f"config.json has unknown keys {sorted(extra)} for a gandemo DCGAN.")
        arch = config.get("arch", "dcgan")
        if arch not in ARCHITECTURES:
            raise UnsupportedCheckpointError(
                f"config.json names the architecture {str(arch)[:40]!r}, which gandemo doesn't know "
                "(it knows 'dcgan', 'msg' and 'progressive').")
        if arch in ("msg", "progressive"):  # the same weights, trained two ways (gandemo.gan.progressive)
            cls, layout = (MSGGenerator, MSG_LAYOUT) if arch == "msg" else (ProgressiveGenerator, PROGRESSIVE_LAYOUT)
            module: nn.Module = build_msg_generator(config, "config.json", cls)
            load_strict(module, strip_wrappers(state), f"config.json's gandemo {ARCH_NAMES[arch]}")
            return module, layout.name
        try:
            module = DCGANGenerator(**{k: int(config[k]) for k in NATIVE_CONFIG_KEYS})
        except (TypeError, ValueError) as e:
            raise UnsupportedCheckpointError(f"config.json describes no valid gandemo DCGAN: {e}.") from e
        load_strict(module, strip_wrappers(state), "config.json's gandemo DCGAN")
        return module, "gandemo"
    module, layout = build_generator(state)
    return module, layout.name


def _folder_of(files: ResolvedFiles) -> Path:
    """The model's folder (a local folder, a Hub snapshot): where config.json is, or what ``weights``'
    name inside the folder leads back to."""
    if files.config is not None:
        return Path(files.config).parent
    weights = Path(files.weights)
    for name in files.all_files:
        if weights.as_posix().endswith("/" + name):
            return Path(weights.as_posix()[: -len(name) - 1])
    return weights.parent


def load_generator(source: str, device: str | torch.device | None = None, *, allow_local: bool = True) -> Generator:
    """Load a generator from a bundled name, a local file/folder, or a Hub repo id[@revision].

    ``allow_local=False`` refuses to look at local paths (what a shared server needs)."""
    files = resolve(source, allow_local=allow_local)
    module, layout = build_from_files(files)
    card = read_card(files.card)
    if not card.summary:
        desc = next((lay.description for lay in (*LAYOUTS, MSG_LAYOUT, PROGRESSIVE_LAYOUT) if lay.name == layout), layout)
        card.summary = f"Recognised as the {desc} layout."
    return Generator(module, source=files.label, layout=layout, card=card,
                     device=torch.device(device) if device else pick_device())


class GeneratorCache:
    """A small thread-safe LRU of loaded generators, keyed by the source string.

    Sources go through ``gandemo.access.model_source`` first, so a shared server only opens what a
    visitor may open. A load that takes longer than ``timeout_s`` (a slow Hub, a huge folder) gives
    the caller a clear error instead of holding its worker; the load finishes in the background
    and is cached for the next request."""

    def __init__(self, capacity: int = 4, timeout_s: float = 60.0):
        self.capacity = capacity
        self.timeout_s = timeout_s
        self._items: OrderedDict[str, Generator] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, Future[Generator]] = {}

    def get(self, source: str) -> Generator:
        if not isinstance(source, str) or not source.strip():
            raise SourceError("No model given: pick a bundled model or type a Hub repo id or a local path.")
        key = source.strip()
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        path, allow_local = model_source(key)  # may refuse at once; never waits on a lock
        with self._lock:
            if key in self._items:
                return self._items[key]
            future = self._loading.get(key)
            if future is None:  # two visitors asking for the same model load it once
                future = Future()
                self._loading[key] = future
                threading.Thread(target=self._load, args=(key, path, allow_local, future), daemon=True,
                                 name=f"load {key[:40]}").start()
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            raise SourceError(f"Loading '{key[:80]}' is taking longer than {self.timeout_s:.0f} s (a slow download or a very "
                              "large folder); it goes on in the background: try again in a minute.") from None

    def _load(self, key: str, path: str, allow_local: bool, future: Future[Generator]) -> None:
        try:
            gen = load_generator(path, allow_local=allow_local)
            if path != key:  # a run:/upload: handle: its server path is not for visitors to see
                gen.source = key
        except BaseException as e:  # noqa: BLE001 - handed to the waiting request, whatever it is
            with self._lock:
                self._loading.pop(key, None)  # a failed load leaves nothing behind
            if path != key and isinstance(e, GandemoError):
                e = type(e)(str(e).replace(path, key))
            future.set_exception(e)
            return
        with self._lock:
            self._items[key] = gen
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
            self._loading.pop(key, None)
        future.set_result(gen)

    def pending(self) -> int:
        """Loads in flight (for tests: a failed load must not leave one behind)."""
        with self._lock:
            return len(self._loading)

    def __contains__(self, source: str) -> bool:
        return source.strip() in self._items

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)


__all__ = ["Generator", "GeneratorCache", "ModelCard", "load_generator", "recognise"]
