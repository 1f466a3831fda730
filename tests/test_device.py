"""The device policy's pure parts: which precision training uses on which hardware.

``mixed_precision`` is a pure function of the device type and the GPU's compute capability, so the
CUDA rows run on any machine; ``mixed_precision_for`` is checked against a mocked T4 and A100.
"""

from __future__ import annotations

import pytest
import torch

from gandemo.device import Precision, cuda_native_bfloat16, mixed_precision, mixed_precision_for, native_bfloat16


@pytest.mark.parametrize("capability", [(6, 1), (7, 0), (7, 5)], ids=["P40", "V100", "T4"])
def test_pre_ampere_gpus_train_in_float16_with_a_loss_scaler(capability: tuple[int, int]) -> None:
    assert not cuda_native_bfloat16(capability), "bfloat16 is only emulated before Ampere"
    assert mixed_precision("cuda", capability) == Precision(torch.float16, True)


@pytest.mark.parametrize("capability", [(8, 0), (8, 6), (8, 9), (9, 0), (12, 0)],
                         ids=["A100", "A10", "L4", "H100", "Blackwell"])
def test_ampere_and_newer_gpus_train_in_bfloat16_without_a_scaler(capability: tuple[int, int]) -> None:
    assert cuda_native_bfloat16(capability)
    assert mixed_precision("cuda", capability) == Precision(torch.bfloat16, False)


def test_cpus_use_bfloat16_only_where_it_is_native_and_never_a_scaler() -> None:
    assert mixed_precision("cpu", cpu_native_bfloat16=True) == Precision(torch.bfloat16, False)
    assert mixed_precision("cpu", cpu_native_bfloat16=False) == Precision(None, False)
    assert mixed_precision("mps") == Precision(None, False)
    cpu = torch.device("cpu")
    expected = Precision(torch.bfloat16, False) if native_bfloat16(cpu) else Precision(None, False)
    assert mixed_precision_for(cpu) == expected


@pytest.mark.parametrize(("capability", "expected"), [
    ((7, 5), Precision(torch.float16, True)),
    ((8, 0), Precision(torch.bfloat16, False)),
], ids=["T4", "A100"])
def test_the_policy_for_this_gpu_asks_for_native_bfloat16_not_emulated(
        capability: tuple[int, int], expected: Precision, monkeypatch: pytest.MonkeyPatch) -> None:
    # torch.cuda.is_bf16_supported() says yes on a T4 (by emulation): the policy must not rely on it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    cuda = torch.device("cuda")
    assert native_bfloat16(cuda) == (expected.dtype == torch.bfloat16)
    assert mixed_precision_for(cuda) == expected
