"""Device policy: CUDA > MPS > CPU, unless $GANDEMO_DEVICE says otherwise."""

from __future__ import annotations

import os

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
