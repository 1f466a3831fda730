"""VGG19 features for style transfer: torchvision's architecture, ImageNet weights from the Hub.

Where the weights come from, first match wins:

1. an explicit path (``--vgg-weights PATH``, ``StyleSettings.vgg_weights``);
2. ``$GANDEMO_VGG_WEIGHTS`` (a path);
3. ``model.safetensors`` of the Hub repo ``$GANDEMO_VGG_REPO`` (default ``timm/vgg19.tv_in1k``, optionally
   ``owner/name@revision``), fetched with ``hf_hub_download`` into the standard HF cache.

Accepted layouts, recognised by key names and checked shape by shape:

- timm's ``vgg19.tv_in1k`` safetensors: ``features.N.weight/bias`` with torchvision's indices
  (timm keeps ``features`` as the same ``nn.Sequential``); its classifier (``pre_logits.*``, ``head.*``)
  is ignored and, for safetensors, never even read from disk;
- torchvision's ``vgg19-*.pth`` (``features.N.*`` plus ``classifier.*``), read with
  ``torch.load(weights_only=True)`` so no pickled code runs;
- a bare ``vgg19().features`` state dict (keys ``N.weight``), or one under ``module.``/``model.``.

Only the convolutions up to the deepest layer in use are loaded and built: ``relu5_1`` needs 13 of the
16 convolutions, and nothing after it is computed.
"""

from __future__ import annotations

import functools
import math
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..errors import SourceError, UnsafeCheckpointError, UnsupportedCheckpointError
from .layers import CONV_CHANNELS, VGG19_LAYERS, layer_index

DEFAULT_VGG_REPO = "timm/vgg19.tv_in1k"
VGG_FILENAME = "model.safetensors"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ----------------------------------------------------------------------------- where the weights are


def vgg_weights_path(weights: str | Path | None = None) -> Path:
    """The local file holding VGG19 weights: ``weights``, ``$GANDEMO_VGG_WEIGHTS``, or the Hub (cached)."""
    source = str(weights) if weights else os.environ.get("GANDEMO_VGG_WEIGHTS", "")
    if source.strip():
        path = Path(source.strip()).expanduser()
        if not path.is_file():
            origin = "" if weights else " (from GANDEMO_VGG_WEIGHTS)"
            raise SourceError(f"The VGG19 weights file {path}{origin} does not exist.")
        return path
    return download_vgg_weights(os.environ.get("GANDEMO_VGG_REPO") or DEFAULT_VGG_REPO)


def download_vgg_weights(repo: str = DEFAULT_VGG_REPO) -> Path:
    """``model.safetensors`` of ``repo`` ('owner/name[@revision]') via ``hf_hub_download`` (HF cache)."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from ..hub import parse_repo_id

    repo_id, revision = parse_repo_id(repo)
    where = f"{repo_id}" + (f"@{revision}" if revision else "") + f"/{VGG_FILENAME}"  # no English 'of' in a translated sentence
    alternatives = (
        "Or use a local copy: --vgg-weights PATH or GANDEMO_VGG_WEIGHTS=PATH (timm's vgg19 model.safetensors "
        "or torchvision's vgg19-*.pth)."
    )
    try:
        return Path(hf_hub_download(repo_id, VGG_FILENAME, revision=revision))
    except GatedRepoError as e:
        raise SourceError(f"{repo_id} is gated: accept its terms on the Hub and log in. {alternatives}") from e
    except RevisionNotFoundError as e:
        raise SourceError(f"{repo_id} has no revision '{revision}'. {alternatives}") from e
    except RepositoryNotFoundError as e:
        raise SourceError(f"There is no Hub repo {repo_id} to take VGG19 weights from. {alternatives}") from e
    except EntryNotFoundError as e:
        if not isinstance(e, LocalEntryNotFoundError):  # (LocalEntryNotFoundError is an EntryNotFoundError)
            raise SourceError(f"The Hub repo {repo_id} has no {VGG_FILENAME}. {alternatives}") from e
        error: Exception = e
    except (HfHubHTTPError, OSError) as e:
        error = e
    reason = ("offline mode is on (HF_HUB_OFFLINE=1)" if constants.HF_HUB_OFFLINE
              else f"the Hugging Face Hub could not be reached ({type(error).__name__})")
    raise SourceError(
        f"Style transfer needs the VGG19 weights ({where}, about 550 MB); they are not in the local "
        f"Hugging Face cache ({constants.HF_HUB_CACHE}) and {reason}. Connect once to download them. "
        f"{alternatives}"
    ) from error


# ----------------------------------------------------------------------------- reading them


def conv_count_for(last_layer: str) -> int:
    """How many convolutions ``vgg19().features`` runs up to and including ``last_layer``."""
    last = layer_index(last_layer)
    return sum(1 for i in CONV_CHANNELS if i <= last)


def load_conv_weights(path: str | Path, n_convs: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``n_convs`` (weight, bias) pairs of VGG19's features, checked against the architecture.

    Read once per (file, modification time, n_convs) and kept in memory: repeated style runs in the app
    don't touch the disk again.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as e:
        raise SourceError(f"Cannot read the VGG19 weights {path}: {e.strerror or e}.") from e
    # absolute, not resolved: the HF cache's snapshot entries are symlinks to suffix-less blobs
    return list(_load_conv_weights_cached(str(path.absolute()), stat.st_mtime_ns, stat.st_size, n_convs))


@functools.lru_cache(maxsize=2)
def _load_conv_weights_cached(path: str, _mtime: int, _size: int, n_convs: int) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    conv_indices = sorted(CONV_CHANNELS)[:n_convs]
    name = Path(path).name
    if _is_safetensors(path):
        keys, get = _open_safetensors(path)
    else:
        state = _read_pickle_state_dict(path)
        keys, get = list(state), state.__getitem__
    prefix = _find_prefix(keys, name)
    out = []
    for idx in conv_indices:
        n_in, n_out = CONV_CHANNELS[idx]
        pair = []
        for part, shape in (("weight", (n_out, n_in, 3, 3)), ("bias", (n_out,))):
            key = f"{prefix}{idx}.{part}"
            if key not in keys:
                raise UnsupportedCheckpointError(
                    f"{name} has no '{key}': it does not hold VGG19 features up to the layers in use "
                    f"(expected torchvision's layout, features.0 ... features.34 conv weights)."
                )
            tensor = get(key)
            if tuple(tensor.shape) != shape:
                raise UnsupportedCheckpointError(
                    f"{name}: '{key}' has shape {tuple(tensor.shape)}, VGG19 needs {shape}. This is not "
                    "torchvision's VGG19 layout (a VGG16, or a batch-norm VGG19_bn?)."
                )
            pair.append(tensor.detach().to(torch.float32, copy=True).contiguous())  # no views into mmaps
        out.append((pair[0], pair[1]))
    return tuple(out)


def _is_safetensors(path: str) -> bool:
    """safetensors starts with an 8-byte header length, then the JSON header; torch files are zip or pickle."""
    with open(path, "rb") as f:
        head = f.read(9)
    return path.endswith(".safetensors") or (len(head) == 9 and head[8:9] == b"{")


def _open_safetensors(path: str):  # noqa: ANN202 - (keys, getter)
    from safetensors import SafetensorError, safe_open

    try:
        handle = safe_open(path, framework="pt", device="cpu")
        keys = set(handle.keys())
    except (SafetensorError, OSError, ValueError) as e:
        raise UnsupportedCheckpointError(f"{Path(path).name} is not a valid safetensors file ({e}).") from e
    return keys, handle.get_tensor


def _read_pickle_state_dict(path: str) -> dict[str, torch.Tensor]:
    from ..hub import unwrap_state_dict

    name = Path(path).name
    try:
        try:  # memory-map when the file allows it: the classifier's 470 MB are then never read
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e).lower() and "zipfile" not in str(e).lower():
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f"Refused to load {name}: it holds pickled Python objects beyond plain tensors, and loading it "
            "would run code from the file (nothing was run). Use a safetensors file or a plain state dict."
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise UnsupportedCheckpointError(f"{name} is not a readable PyTorch checkpoint ({str(e).splitlines()[0][:200]}).") from e
    return unwrap_state_dict(obj, name)


def _find_prefix(keys: Sequence[str] | set[str], name: str) -> str:
    for prefix in ("features.", "", "module.features.", "model.features.", "vgg.features.", "module.", "model."):
        if f"{prefix}0.weight" in keys:
            return prefix
    sample = sorted(keys)[:6]
    raise UnsupportedCheckpointError(
        f"{name} does not look like VGG19 weights: expected keys like 'features.0.weight' "
        f"(timm vgg19.tv_in1k or torchvision vgg19), found {sample or 'no tensors'}."
    )


# ----------------------------------------------------------------------------- the module


class VGGFeatures(nn.Module):
    """VGG19's ``features``, cut after the deepest requested layer, ImageNet normalisation inside.

    ``forward(image, layers)`` takes RGB in [0, 1] shaped (N, 3, H, W) and returns ``{layer: activation}``.
    ``self.features`` keeps torchvision's indices, so its ``state_dict`` has the same
    ``features.N.*`` keys as the files it was loaded from.
    """

    def __init__(self, convs: Sequence[tuple[torch.Tensor, torch.Tensor]], last_layer: str = "relu5_1",
                 pooling: str = "max"):
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        last = layer_index(last_layer)
        layers: list[nn.Module] = []
        weights = iter(convs)
        for i, name in enumerate(VGG19_LAYERS[: last + 1]):
            if name.startswith("conv"):
                n_in, n_out = CONV_CHANNELS[i]
                conv = nn.Conv2d(n_in, n_out, 3, padding=1)
                try:
                    weight, bias = next(weights)
                except StopIteration:
                    raise ValueError(f"{len(convs)} conv weights given, {last_layer} needs more") from None
                conv.weight.data.copy_(weight)
                conv.bias.data.copy_(bias)
                layers.append(conv)
            elif name.startswith("relu"):
                layers.append(nn.ReLU(inplace=True))
            else:
                layers.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.last_layer = last_layer
        self.pooling = pooling
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        wanted = {layer_index(name): name for name in layers}
        if max(wanted) >= len(self.features):
            raise ValueError(f"layer {wanted[max(wanted)]} is beyond {self.last_layer}, where this network ends")
        x = (image - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for i, module in enumerate(self.features):
            x = module(x)
            if i in wanted:
                # a conv output would be overwritten by the in-place ReLU that follows it
                out[wanted[i]] = x.clone() if isinstance(module, nn.Conv2d) else x
                if len(out) == len(wanted):
                    break
        return out


def load_vgg19(weights: str | Path | None = None, last_layer: str = "relu5_1", pooling: str = "max",
               device: torch.device | str | None = None) -> VGGFeatures:
    """VGG19 features up to ``last_layer`` with ImageNet weights (see the module docstring for sources)."""
    path = vgg_weights_path(weights)
    convs = load_conv_weights(path, conv_count_for(last_layer))
    model = VGGFeatures(convs, last_layer, pooling)
    return model.to(device) if device is not None else model


def random_vgg19_state_dict(seed: int = 0, with_classifier: bool = True) -> dict[str, torch.Tensor]:
    """Randomly initialised VGG19 features in timm's key layout, for tests and benchmarks without the Hub.

    Kaiming-normal (fan-in) weights keep activations at a steady scale through all 16 layers, so the
    losses behave like a trained network's in kind, not in what the result looks like. With
    ``with_classifier``, two small stand-ins for timm's ``pre_logits``/``head`` tensors are added (the
    loader must ignore them).
    """
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for idx, (n_in, n_out) in CONV_CHANNELS.items():
        std = math.sqrt(2.0 / (n_in * 9))
        state[f"features.{idx}.weight"] = torch.randn((n_out, n_in, 3, 3), generator=g) * std
        state[f"features.{idx}.bias"] = torch.zeros(n_out)
    if with_classifier:
        state["pre_logits.fc1.weight"] = torch.randn((8, 512, 1, 1), generator=g) * 0.01
        state["pre_logits.fc1.bias"] = torch.zeros(8)
        state["head.fc.weight"] = torch.randn((10, 8), generator=g) * 0.01
        state["head.fc.bias"] = torch.zeros(10)
    return state
