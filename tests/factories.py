"""Checkpoints and Hub repos built inside the tests.

Native gandemo folders come from ``DCGANGenerator.save_pretrained``. Foreign layouts are
REPLICAS of the published generator classes, with the same attribute names, layer order and
hyper-parameters, so their state dicts have exactly the keys and shapes of the real files:

- HugGAN DCGAN (huggingface/community-events, huggan/pytorch/dcgan/modeling_dcgan.py):
  ``self.model = nn.Sequential(...)``, saved as ``pytorch_model.bin``.
- pytorch/examples dcgan/main.py ``netG``: ``self.main = nn.Sequential(...)``, saved as
  ``netG_epoch_N.pth`` (optionally from ``nn.DataParallel``: keys start with ``module.main.``).
- nateraw/cryptopunks-gan: ``self.network = nn.Sequential(...)``, kernels 3,3,4,4, 24x24 RGBA,
  saved as ``generator.pth``.

Weights and batch-norm statistics are randomised (``randomize_``) so that a wrong mapping of any
tensor changes the output.
"""

from __future__ import annotations

import builtins
import io
import pickle
import tempfile
import uuid
from pathlib import Path

import torch
from torch import nn

from gandemo.gan.models import DCGANGenerator


def unique_repo_id(prefix: str = "model", owner: str = "tester") -> str:
    """A Hub repo id no other test uses (the HF cache is shared by the whole session)."""
    return f"{owner}/{prefix}-{uuid.uuid4().hex[:10]}"


def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter and batch-norm statistic a distinct random value; return eval() module."""
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=rng) + 0.5)
            elif name.endswith("running_mean") or name.endswith("bias"):
                tensor.copy_(torch.randn(tensor.shape, generator=rng) * 0.1)
            elif tensor.dim() == 1:  # batch-norm scale
                tensor.copy_(torch.rand(tensor.shape, generator=rng) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=rng) * 0.1)
    return module.eval()


def latents(n: int, latent_dim: int, seed: int = 123) -> torch.Tensor:
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def replica_output(replica: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """What the original code computes for latents z (it takes (N, nz, 1, 1))."""
    return replica.eval()(z[:, :, None, None])


# ---------------------------------------------------------------------------- native format
def tiny_native(image_size: int = 32, channels: int = 3, latent_dim: int = 8, width: int = 4,
                seed: int = 0) -> DCGANGenerator:
    """A small native generator with random weights and batch-norm statistics (in eval mode)."""
    gen = DCGANGenerator(image_size=image_size, channels=channels, latent_dim=latent_dim, width=width)
    randomize_(gen, seed)
    return gen


def native_files(generator: DCGANGenerator) -> dict[str, bytes]:
    """The files ``save_pretrained`` writes (config.json, model.safetensors, README.md), as bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        generator.save_pretrained(tmp)
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def torch_save_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------ foreign replicas
class HugGANGenerator(nn.Module):
    """Replica of huggan/pytorch/dcgan/modeling_dcgan.py ``Generator`` (64x64)."""

    def __init__(self, num_channels: int = 3, latent_dim: int = 100, hidden_size: int = 64):
        super().__init__()
        hs = hidden_size
        self.model = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, hs * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(hs * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(hs * 8, hs * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(hs * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(hs * 4, hs * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(hs * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(hs * 2, hs, 4, 2, 1, bias=False),
            nn.BatchNorm2d(hs),
            nn.ReLU(True),
            nn.ConvTranspose2d(hs, num_channels, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.model(noise)


class PyTorchExamplesNetG(nn.Module):
    """Replica of pytorch/examples dcgan/main.py ``Generator`` (netG, 64x64)."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3, ngpu: int = 1):
        super().__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input)


class PyTorchExamplesNetD(nn.Module):
    """Replica of pytorch/examples dcgan/main.py ``Discriminator`` (netD): not a generator."""

    def __init__(self, ndf: int = 64, nc: int = 3):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input).view(-1, 1).squeeze(1)


class CryptoPunksGenerator(nn.Module):
    """Replica of nateraw/cryptopunks-gan ``Generator`` (24x24, RGBA)."""

    def __init__(self, nc: int = 4, nz: int = 100, ngf: int = 64):
        super().__init__()
        self.network = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 3, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 3, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 0, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def huggan(num_channels: int = 3, latent_dim: int = 16, hidden_size: int = 4, seed: int = 1) -> HugGANGenerator:
    return randomize_(HugGANGenerator(num_channels, latent_dim, hidden_size), seed)


def pytorch_examples(nz: int = 12, ngf: int = 4, nc: int = 3, seed: int = 2) -> PyTorchExamplesNetG:
    return randomize_(PyTorchExamplesNetG(nz, ngf, nc), seed)


def cryptopunks(seed: int = 3) -> CryptoPunksGenerator:
    """The published hyper-parameters: nz=100, ngf=64, nc=4 (24x24 RGBA)."""
    return randomize_(CryptoPunksGenerator(nc=4, nz=100, ngf=64), seed)


def state_dict_bytes(module: nn.Module, data_parallel: bool = False) -> bytes:
    """``torch.save(net.state_dict(), f)`` as the original training scripts do."""
    return torch_save_bytes((nn.DataParallel(module) if data_parallel else module).state_dict())


def classifier_state_dict() -> dict[str, torch.Tensor]:
    """An image classifier: a conv feature stack and a linear head (no generator)."""
    net = nn.Module()
    net.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3))
    net.classifier = nn.Linear(16, 10)
    return net.state_dict()


# ---------------------------------------------------------------------------- hostile files
class _RunsCodeWhenUnpickled:
    """Unpickling an instance calls ``builtins.exec(code)``: the classic pickle attack."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return builtins.exec, (self.code,)


def malicious_payload(marker: Path) -> _RunsCodeWhenUnpickled:
    """An object whose unpickling creates ``marker``."""
    return _RunsCodeWhenUnpickled(f"open({str(marker)!r}, 'w').write('code from a pickle ran')")


def malicious_checkpoint_bytes(marker: Path, torch_zip: bool = True) -> bytes:
    """A checkpoint that looks like a state dict but runs code (creating ``marker``) when unpickled:
    a ``torch.save`` zip archive, or a raw protocol-2 pickle when ``torch_zip`` is False."""
    obj = {"model.0.weight": torch.zeros(2, 2, 4, 4), "payload": malicious_payload(marker)}
    if torch_zip:
        return torch_save_bytes(obj)
    return pickle.dumps(obj, protocol=2)
