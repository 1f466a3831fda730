"""Foreign checkpoint layouts: recognised by their state-dict signature, loaded strictly, and
computing exactly what the original code computes. Everything else is refused with a message
that says what was found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from factories import (
    PyTorchExamplesNetD,
    classifier_state_dict,
    cryptopunks,
    huggan,
    latents,
    malicious_checkpoint_bytes,
    malicious_payload,
    native_files,
    pytorch_examples,
    randomize_,
    replica_output,
    state_dict_bytes,
    tiny_native,
    torch_save_bytes,
    write_files,
)
from safetensors.torch import save_file
from torch import nn

from gandemo import load_generator
from gandemo.errors import UnsafeCheckpointError, UnsupportedCheckpointError
from gandemo.gan.layouts import recognise
from gandemo.gan.models import DCGANDiscriminator


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def assert_same_function(replica: nn.Module, source: str, latent_dim: int) -> None:
    gen = load_generator(source)
    z = latents(4, latent_dim)
    assert torch.equal(gen(z), replica_output(replica, z))


@pytest.mark.parametrize("channels", [3, 4])
def test_huggan_pytorch_model_bin(tmp_path: Path, channels: int) -> None:
    replica = huggan(num_channels=channels, latent_dim=16, hidden_size=4)
    path = write(tmp_path / "pytorch_model.bin", state_dict_bytes(replica))
    gen = load_generator(str(path))
    assert gen.layout == "huggan-dcgan"
    assert (gen.image_size, gen.channels, gen.latent_dim) == (64, channels, 16)
    assert "HugGAN" in gen.card.summary
    assert_same_function(replica, str(path), 16)


def test_huggan_folder_with_its_own_config_json(tmp_path: Path) -> None:
    """A HugGAN repo saved by PyTorchModelHubMixin has a config.json with *its* hyper-parameters
    (and newer ones a model.safetensors); that config is not ours and must not get in the way."""
    replica = huggan(num_channels=3, latent_dim=16, hidden_size=4)
    folder = write_files(tmp_path / "huggan", {
        "config.json": json.dumps({"num_channels": 3, "latent_dim": 16, "hidden_size": 4}).encode(),
    })
    save_file(replica.state_dict(), str(folder / "model.safetensors"))
    assert load_generator(str(folder)).layout == "huggan-dcgan"
    assert_same_function(replica, str(folder), 16)


@pytest.mark.parametrize("data_parallel", [False, True], ids=["plain", "DataParallel"])
def test_pytorch_examples_netg(tmp_path: Path, data_parallel: bool) -> None:
    replica = pytorch_examples(nz=12, ngf=4, nc=3)
    path = write(tmp_path / "netG_epoch_24.pth", state_dict_bytes(replica, data_parallel=data_parallel))
    gen = load_generator(str(path))
    assert gen.layout == "pytorch-examples-dcgan"
    assert (gen.image_size, gen.channels, gen.latent_dim) == (64, 3, 12)
    assert_same_function(replica, str(path), 12)


def test_pytorch_examples_grayscale_wide_latent(tmp_path: Path) -> None:
    replica = pytorch_examples(nz=200, ngf=2, nc=1, seed=9)
    path = write(tmp_path / "netG_epoch_0.pth", state_dict_bytes(replica))
    gen = load_generator(str(path))
    assert (gen.image_size, gen.channels, gen.latent_dim) == (64, 1, 200)
    assert_same_function(replica, str(path), 200)


def test_cryptopunks_generator_pth(tmp_path: Path) -> None:
    replica = cryptopunks()
    path = write(tmp_path / "generator.pth", state_dict_bytes(replica))
    gen = load_generator(str(path))
    assert gen.layout == "cryptopunks-gan"
    assert (gen.image_size, gen.channels, gen.latent_dim) == (24, 4, 100)
    assert_same_function(replica, str(path), 100)


def test_checkpoint_dict_with_state_dict_under_netG(tmp_path: Path) -> None:
    """Training scripts often save {'epoch': n, 'netG': ..., 'netD': ...}; the generator is found."""
    replica = pytorch_examples(nz=12, ngf=4, nc=3)
    netd = randomize_(PyTorchExamplesNetD(ndf=4, nc=3))
    path = write(tmp_path / "checkpoint.pt", torch_save_bytes(
        {"epoch": 3, "netG": replica.state_dict(), "netD": netd.state_dict()}))
    assert_same_function(replica, str(path), 12)


def test_native_folder_with_mismatched_config_fails_loudly(tmp_path: Path) -> None:
    files = native_files(tiny_native(image_size=32, channels=3, latent_dim=8, width=4))
    for change, words in [
        ({"width": 8}, ["wrong shapes"]),
        ({"latent_dim": 9}, ["wrong shapes", "net.0.weight"]),
        ({"image_size": 64}, ["missing"]),
        ({"channels": 1}, ["wrong shapes"]),
    ]:
        config = {**json.loads(files["config.json"]), **change}
        folder = write_files(tmp_path / f"bad-{next(iter(change))}", {**files, "config.json": json.dumps(config).encode()})
        with pytest.raises(UnsupportedCheckpointError) as info:
            load_generator(str(folder))
        message = str(info.value)
        assert "gandemo DCGAN" in message
        for word in words:
            assert word in message


def test_native_config_with_unknown_keys_is_refused(tmp_path: Path) -> None:
    files = native_files(tiny_native())
    config = {**json.loads(files["config.json"]), "dropout": 0.5}
    folder = write_files(tmp_path / "extra", {**files, "config.json": json.dumps(config).encode()})
    with pytest.raises(UnsupportedCheckpointError, match="dropout"):
        load_generator(str(folder))


def test_native_config_with_weights_of_another_layout_is_refused(tmp_path: Path) -> None:
    files = native_files(tiny_native(latent_dim=16))
    folder = write_files(tmp_path / "mixed", {"config.json": files["config.json"]})
    save_file(huggan(latent_dim=16).state_dict(), str(folder / "model.safetensors"))
    with pytest.raises(UnsupportedCheckpointError, match="unexpected"):
        load_generator(str(folder))


def _bad_state_dicts() -> dict[str, tuple[dict[str, torch.Tensor], list[str]]]:
    hug = huggan(latent_dim=16).state_dict()
    no_running_var = {k: v for k, v in hug.items() if k != "model.4.running_var"}
    no_bn_scale = {k: v for k, v in hug.items() if k != "model.4.weight"}
    three_by_three = dict(hug)
    three_by_three["model.0.weight"] = torch.zeros(16, 32, 3, 3)
    punk = cryptopunks().state_dict()
    punk_4x4 = {k: (torch.zeros(*v.shape[:2], 4, 4) if v.dim() == 4 else v) for k, v in punk.items()}
    two_channels = dict(hug)
    two_channels["model.12.weight"] = torch.zeros(4, 2, 4, 4)
    return {
        "classifier": (classifier_state_dict(), ["features", "classifier"]),
        "gandemo discriminator": (DCGANDiscriminator(32, 3, width=4).state_dict(), ["indices", "net"]),
        "pytorch-examples netD": (PyTorchExamplesNetD(ndf=4).state_dict(), ["indices", "main"]),
        "missing running_var": (no_running_var, ["missing", "4.running_var"]),
        "missing batch-norm scale": (no_bn_scale, ["batch norm", "layer 3"]),
        "3x3 kernel in a DCGAN": (three_by_three, ["4x4", "[3, 4, 4, 4, 4]"]),
        "cryptopunks with 4x4 kernels": (punk_4x4, ["expected kernels [3, 3, 4, 4]", "[4, 4, 4, 4]"]),
        "two output channels": (two_channels, ["2 channels"]),
        "unknown attribute": ({"decoder.0.weight": torch.zeros(4, 4, 4, 4)}, ["decoder"]),
        "empty": ({}, ["no state dict", "keys []"]),
    }


@pytest.mark.parametrize("case", list(_bad_state_dicts()))
def test_wrong_layouts_are_refused_with_what_was_found(tmp_path: Path, case: str) -> None:
    state, words = _bad_state_dicts()[case]
    path = write(tmp_path / "weights.pth", torch_save_bytes(state))
    with pytest.raises(UnsupportedCheckpointError) as info:
        load_generator(str(path))
    for word in words:
        assert word in str(info.value), f"{case}: {word!r} not in {info.value}"


def test_recognise_names_supported_layouts_for_unknown_keys() -> None:
    with pytest.raises(UnsupportedCheckpointError) as info:
        recognise(classifier_state_dict())
    message = str(info.value)
    for supported in ("config.json", "model.N", "main.N", "network.N"):
        assert supported in message
    assert "features.0.weight (8, 3, 3, 3)" in message  # names and shapes of what was found


LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")


@pytest.mark.parametrize(
    "content, words",
    [
        (torch_save_bytes([torch.zeros(2)]), ["no state dict", "list"]),
        (torch_save_bytes({"epoch": 3, "notes": "hi"}), ["no state dict", "epoch"]),
        (b"", ["generator.pth"]),
        (b"definitely not a checkpoint", ["generator.pth"]),
        (b"<!DOCTYPE html><html><body>Rate limited</body></html>", ["generator.pth"]),
        (LFS_POINTER, ["generator.pth"]),
    ],
    ids=["list", "dict-without-tensors", "empty-file", "text", "html-page", "git-lfs-pointer"],
)
def test_unreadable_files_are_unsupported_not_unsafe(tmp_path: Path, content: bytes, words: list[str]) -> None:
    """Files that are no pickle at all (an empty or truncated download, an HTML error page, a Git
    LFS pointer from a clone without git-lfs) are unreadable checkpoints, not code to refuse."""
    path = write(tmp_path / "generator.pth", content)
    with pytest.raises(UnsupportedCheckpointError) as info:
        load_generator(str(path))
    for word in words:
        assert word in str(info.value)


def test_corrupt_safetensors_is_refused(tmp_path: Path) -> None:
    files = native_files(tiny_native())
    folder = write_files(tmp_path / "corrupt", {**files, "model.safetensors": files["model.safetensors"][:100]})
    with pytest.raises(UnsupportedCheckpointError, match="safetensors"):
        load_generator(str(folder))


def test_malicious_payload_is_live(tmp_path: Path) -> None:
    """Control for the tests below: unpickling the payload really runs its code."""
    import pickle

    marker = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(malicious_payload(marker)))
    assert marker.read_text() == "code from a pickle ran"


@pytest.mark.parametrize("torch_zip", [True, False], ids=["torch.save", "raw-pickle"])
def test_malicious_pickle_is_refused_without_running_it(tmp_path: Path, torch_zip: bool) -> None:
    marker = tmp_path / "pwned"
    path = write(tmp_path / "pytorch_model.bin", malicious_checkpoint_bytes(marker, torch_zip=torch_zip))
    with pytest.raises(UnsafeCheckpointError) as info:
        load_generator(str(path))
    assert "nothing was executed" in str(info.value)
    assert not marker.exists()
