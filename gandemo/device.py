"""Device policy: CUDA > MPS > CPU, unless $GANDEMO_DEVICE says otherwise."""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

import torch


def pick_device() -> torch.device:
    wanted = os.environ.get("GANDEMO_DEVICE")
    if wanted:
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"


def configure_cpu_threads() -> int:
    """Pick torch's CPU thread count for a server process and return it.

    ``$GANDEMO_THREADS`` wins. Otherwise machines with 2 or fewer cores (free Spaces, CI, small VMs)
    get 1 thread: with two, torch's OpenMP workers spin-wait for each other whenever a second
    request or a training job holds the other core, which made small models 2-10x slower here.
    """
    wanted = os.environ.get("GANDEMO_THREADS")
    if wanted:
        torch.set_num_threads(max(1, int(wanted)))
    elif (os.cpu_count() or 1) <= 2:
        torch.set_num_threads(1)
    return torch.get_num_threads()


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 convolutions natively (CUDA Ampere+, CPUs with AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and cuda_native_bfloat16(torch.cuda.get_device_capability(device))
    if device.type == "cpu":
        return _cpu_has_native_bfloat16()
    return False


def cuda_native_bfloat16(capability: tuple[int, int]) -> bool:
    """Whether a GPU of this compute capability computes bfloat16 natively: Ampere (8.0) and newer.

    Older GPUs (T4 7.5, V100 7.0) only emulate it, slower than float16, although
    ``torch.cuda.is_bf16_supported()`` (``including_emulation=True`` by default) says yes there."""
    return tuple(capability) >= (8, 0)


class Precision(NamedTuple):
    """A mixed-precision policy: the autocast dtype (None: float32 throughout) and whether gradients
    need a loss scaler (float16's range is too small for them without one)."""

    dtype: torch.dtype | None
    scaler: bool


def mixed_precision(device_type: str, capability: tuple[int, int] | None = None, *,
                    cpu_native_bfloat16: bool = False) -> Precision:
    """Training's precision policy, a pure function of the hardware so it can be tested anywhere.

    CUDA: bfloat16 where the GPU computes it natively (``capability`` >= 8.0), else float16 with a loss
    scaler. CPU: bfloat16 where it is native (AVX512-BF16/AMX), about 1.7x faster there, else float32.
    Anything else (MPS): float32."""
    if device_type == "cuda":
        if capability is not None and cuda_native_bfloat16(capability):
            return Precision(torch.bfloat16, False)
        return Precision(torch.float16, True)
    if device_type == "cpu" and cpu_native_bfloat16:
        return Precision(torch.bfloat16, False)
    return Precision(None, False)


# $GANDEMO_PRECISION forces a precision on any device (tests run the float16 loss-scaler branch on the CPU
# with it, scripts/gpu_check.py compares them on a GPU); unset or "auto": the hardware policy above.
FORCED_PRECISIONS = {
    "fp16": Precision(torch.float16, True),
    "bf16": Precision(torch.bfloat16, False),
    "fp32": Precision(None, False),
}


def forced_precision() -> Precision | None:
    """The precision ``$GANDEMO_PRECISION`` (fp16, bf16, fp32) forces, or None (unset or "auto")."""
    wanted = os.environ.get("GANDEMO_PRECISION", "").strip().lower()
    if wanted in ("", "auto"):
        return None
    if wanted not in FORCED_PRECISIONS:
        raise ValueError(f"GANDEMO_PRECISION must be auto, fp16, bf16 or fp32 (got {wanted!r})")
    return FORCED_PRECISIONS[wanted]


def mixed_precision_for(device: torch.device) -> Precision:
    """``mixed_precision`` for this machine's ``device``, unless ``$GANDEMO_PRECISION`` forces one."""
    forced = forced_precision()
    if forced is not None:
        return forced
    on_cuda = device.type == "cuda" and torch.cuda.is_available()
    return mixed_precision(device.type, torch.cuda.get_device_capability(device) if on_cuda else None,
                           cpu_native_bfloat16=device.type == "cpu" and native_bfloat16(device))


@functools.lru_cache(maxsize=1)
def _cpu_has_native_bfloat16() -> bool:
    # oneDNN also *emulates* bfloat16 on plain AVX-512, which is slower than float32: ask for the real thing
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
