"""How much faster bfloat16 autocast makes each convolution of the DCGAN networks, layer by layer.

    python benchmarks/conv_precision.py                  # 32 and 64 px, 1 thread
    python benchmarks/conv_precision.py --threads 2 --sizes 64

Why it exists: the Trainer's speed-up over the tutorial loop (``train_throughput.py``) comes mostly
from running the convolutions in bfloat16 on CPUs with native bf16. Convolutions are over 90% of
both loops and the networks are identical, so the convolutions' own bf16/float32 ratio bounds what
any loop around them can gain. This script measures that ratio per layer: forward + backward
(weight and input gradients) of each convolution of the generator (batch 32) and the spectral-norm
discriminator (batch 64: real and fake together, as in the Trainer's D phase), float32 (baseline)
against ``torch.autocast(dtype=torch.bfloat16)``, same run, same inputs. Width 64, latent 100, RGB.

On an AVX512-BF16 CPU without AMX (e.g. AMD Zen 4) one bf16 dot-product instruction does twice the
multiply-adds of a float32 FMA, so 2x is the hardware's ceiling for these layers.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from _common import machine_facts, markdown_table, set_threads
from torch import nn

from gandemo.device import native_bfloat16
from gandemo.gan.models import DCGANDiscriminator, DCGANGenerator


def time_ms(fn: Callable[[], None], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(3):  # best of three chunks: the least disturbed by anything else on the machine
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeats * 1000)
    return best


def conv_layers(net: nn.Sequential, x: torch.Tensor) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """(name, convolution, its input) for every convolution of ``net``, with inputs from a real forward."""
    out = []
    with torch.no_grad():
        for i, layer in enumerate(net):
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):  # spectral norm's ParametrizedConv2d too
                out.append((f"{type(layer).__name__}[{i}]", layer, x.clone()))
            x = layer(x)
    return out


def fwd_bwd(layer: nn.Module, x: torch.Tensor, bf16: bool) -> Callable[[], None]:
    x = x.detach().requires_grad_(True)

    def run() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = layer(x)
        y.float().sum().backward()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    set_threads(args.threads)
    torch.manual_seed(0)
    print(machine_facts())
    print(f"threads: {torch.get_num_threads()}; native bfloat16: {native_bfloat16(torch.device('cpu'))}\n")
    rows, totals = [], []
    for size in args.sizes:
        G = DCGANGenerator(size, 3, 100, 64)
        D = DCGANDiscriminator(size, 3, 64, spectral_norm=True)
        sums = [0.0, 0.0]
        for net_name, net, x in (("G", G.net, torch.randn(32, 100, 1, 1)), ("D", D.net, torch.randn(64, 3, size, size))):
            for name, layer, inp in conv_layers(net, x):
                f32 = time_ms(fwd_bwd(layer, inp, False), args.repeats)
                b16 = time_ms(fwd_bwd(layer, inp, True), args.repeats)
                sums[0] += f32
                sums[1] += b16
                rows.append([size, f"{net_name} {name}", "x".join(map(str, inp.shape)), f"{f32:.2f}", f"{b16:.2f}",
                             f"{f32 / b16:.2f}x"])
        totals.append([size, "all convolutions (G + D)", "", f"{sums[0]:.1f}", f"{sums[1]:.1f}", f"**{sums[0] / sums[1]:.2f}x**"])
    headers = ["size", "layer", "input", "float32 ms (baseline)", "bf16 autocast ms", "bf16 speed-up"]
    print(markdown_table(headers, rows + totals, right=[True, False, False, True, True, True]))


if __name__ == "__main__":
    main()
