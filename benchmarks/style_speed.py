"""Style transfer speed: gandemo.style against the PyTorch neural-style tutorial's way, same run, same objective.

    python benchmarks/style_speed.py                       # 256 and 512 px, 20 L-BFGS steps, CPU
    python benchmarks/style_speed.py --sizes 256 --steps 50 --threads 1

The baseline is written the way https://pytorch.org/tutorials/advanced/neural_style_tutorial.html does
it: ``copy.deepcopy`` of ``torchvision.models.vgg19().features``, out-of-place ReLUs, a Normalization
module and per-layer ContentLoss/StyleLoss modules inserted after the loss layers, the copy cut after
the last of them, ``optim.LBFGS`` stepped in chunks of 20 with ``input_img.data.clamp_(0, 1)`` inside
the closure, and ``model.requires_grad_(False)`` as in the current tutorial. Two changes make the
comparison fair: its loss modules compute *our* normalised terms (relative MSE, Gram / (H·W), plus the
same total variation), so both minimise the same objective; and its loop stops after exactly N
evaluations (the tutorial's ``<=`` overshoots by up to 20).

Both start from the content image with the same layers (content relu4_2, style relu1_1 ... relu5_1),
weights and steps. Without ImageNet weights available (no Hub here), both use the same randomly
initialised VGG19 (seed 0) unless GANDEMO_VGG_WEIGHTS points at a real file; the table says which.
Final losses are measured the same way for both: float32, on the clamped result.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gandemo.style import StyleObjective, StyleSettings, VGGFeatures, load_image, stylize  # noqa: E402
from gandemo.style.inputs import fit_long_side, pil_to_tensor, resize  # noqa: E402
from gandemo.style.optimize import choose_precision  # noqa: E402
from gandemo.style.vgg import load_conv_weights, random_vgg19_state_dict, vgg_weights_path  # noqa: E402

CONTENT_LAYERS = ["relu4_2"]
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


# ----------------------------------------------------------------------------- the tutorial's way


class Normalization(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return (img - self.mean) / self.std


def tutorial_gram(x: torch.Tensor) -> torch.Tensor:
    a, b, c, d = x.size()
    features = x.view(a * b, c * d)
    return torch.mm(features, features.t()).div(c * d)  # our normalisation (the tutorial divides by a*b*c*d)


class ContentLoss(nn.Module):
    def __init__(self, target: torch.Tensor):
        super().__init__()
        self.target = target.detach()
        self.energy = self.target.pow(2).mean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(x, self.target) / self.energy
        return x


class StyleLoss(nn.Module):
    def __init__(self, target_feature: torch.Tensor):
        super().__init__()
        self.target = tutorial_gram(target_feature).detach()
        self.energy = self.target.pow(2).mean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(tutorial_gram(x), self.target) / self.energy
        return x


def get_style_model_and_losses(cnn: nn.Sequential, style_img: torch.Tensor, content_img: torch.Tensor):  # noqa: ANN201
    cnn = copy.deepcopy(cnn)
    content_losses, style_losses = [], []
    model = nn.Sequential(Normalization())
    block, conv = 1, 0
    for layer in cnn.children():
        if isinstance(layer, nn.Conv2d):
            conv += 1
            name = f"conv{block}_{conv}"
        elif isinstance(layer, nn.ReLU):
            name = f"relu{block}_{conv}"
            layer = nn.ReLU(inplace=False)
        elif isinstance(layer, nn.MaxPool2d):
            name = f"pool{block}"
            block, conv = block + 1, 0
        else:
            raise RuntimeError(f"Unrecognized layer: {layer.__class__.__name__}")
        model.add_module(name, layer)
        if name in CONTENT_LAYERS:
            target = model(content_img).detach()
            content_loss = ContentLoss(target)
            model.add_module(f"content_loss_{name}", content_loss)
            content_losses.append(content_loss)
        if name in STYLE_LAYERS:
            target_feature = model(style_img).detach()
            style_loss = StyleLoss(target_feature)
            model.add_module(f"style_loss_{name}", style_loss)
            style_losses.append(style_loss)
    for i in range(len(model) - 1, -1, -1):
        if isinstance(model[i], ContentLoss | StyleLoss):
            break
    return model[: i + 1], style_losses, content_losses


def run_tutorial(cnn: nn.Sequential, content_img: torch.Tensor, style_img: torch.Tensor, num_steps: int,
                 settings: StyleSettings, stamps: list[float]) -> torch.Tensor:
    model, style_losses, content_losses = get_style_model_and_losses(cnn, style_img, content_img)
    input_img = content_img.clone()
    input_img.requires_grad_(True)
    model.eval()
    model.requires_grad_(False)
    optimizer = torch.optim.LBFGS([input_img])
    run = [0]
    while run[0] < num_steps:

        def closure() -> torch.Tensor:
            input_img.data.clamp_(0, 1)
            optimizer.zero_grad()
            model(input_img)
            style_score = sum(sl.loss for sl in style_losses) / len(style_losses)
            content_score = sum(cl.loss for cl in content_losses) / len(content_losses)
            dx = input_img[..., :, 1:] - input_img[..., :, :-1]
            dy = input_img[..., 1:, :] - input_img[..., :-1, :]
            tv_score = dx.pow(2).mean() + dy.pow(2).mean()
            loss = (settings.style_weight * style_score + settings.content_weight * content_score
                    + settings.tv_weight * tv_score)
            loss.backward()
            run[0] += 1
            stamps.append(time.perf_counter())  # not in the tutorial: per-step timing
            return loss

        # the tutorial runs whole chunks of max_iter=20; stop at exactly num_steps evaluations
        optimizer.param_groups[0]["max_iter"] = min(20, num_steps - run[0])
        optimizer.step(closure)
    input_img.data.clamp_(0, 1)
    return input_img.detach()


# ----------------------------------------------------------------------------- measuring


def build_networks(seed: int) -> tuple[VGGFeatures, nn.Sequential, str]:
    """Our truncated VGG and torchvision's full vgg19().features, with the same weights."""
    import torchvision

    if os.environ.get("GANDEMO_VGG_WEIGHTS"):
        path = vgg_weights_path()
        convs = load_conv_weights(path, 16)
        label = f"ImageNet weights from {path.name}"
    else:
        state = random_vgg19_state_dict(seed, with_classifier=False)
        convs = [(state[f"features.{i}.weight"], state[f"features.{i}.bias"])
                 for i in sorted({int(k.split(".")[1]) for k in state})]
        label = f"random VGG19 weights (kaiming, seed {seed}); no ImageNet weights here"
    ours = VGGFeatures(convs[:13], "relu5_1")
    tutorial_cnn = torchvision.models.vgg19(weights=None).features.eval()
    with torch.no_grad():
        for conv, (w, b) in zip((m for m in tutorial_cnn if isinstance(m, nn.Conv2d)), convs, strict=True):
            conv.weight.copy_(w)
            conv.bias.copy_(b)
    return ours, tutorial_cnn, label


def final_loss(evaluator: StyleObjective, image: torch.Tensor) -> float:
    with torch.no_grad():
        return evaluator(image.clamp(0, 1)).total.item()


def bench_size(size: int, args: argparse.Namespace, ours_vgg: VGGFeatures, tutorial_cnn: nn.Sequential) -> list[dict]:
    """Each method ``args.repeats`` times, interleaved; the fastest run of each is reported."""
    content = load_image(args.content, "content image")
    style = load_image(args.style, "style image")
    w, h = fit_long_side(content.size, size)
    # the tutorial needs the style at the content's size (its loss modules see both); ours gets the same
    content, style = resize(content, (w, h)), resize(style, (w, h))
    content_t, style_t = pil_to_tensor(content), pil_to_tensor(style)
    base = StyleSettings(size=size, steps=args.steps, preview_every=0, init="content",
                         content_layers=tuple(CONTENT_LAYERS), style_layers=tuple(STYLE_LAYERS), max_size=size)
    evaluator = StyleObjective(ours_vgg, CONTENT_LAYERS, STYLE_LAYERS, [1.0] * 5, base.content_weight,
                               base.style_weight, base.tv_weight)
    evaluator.set_targets(content_t, [style_t], [1.0])
    extra = [args.precision] if choose_precision(torch.device("cpu"), args.precision) else []
    methods = ["tutorial"] + [f"gandemo-{p}" for p in ["float32", *extra]]
    best: dict[str, dict] = {}
    for _ in range(args.repeats):
        for method in methods:
            row = run_method(method, content, style, content_t, style_t, base, ours_vgg, tutorial_cnn, evaluator)
            if method not in best or row["time"] < best[method]["time"]:
                best[method] = row
    ref = best["tutorial"]
    for row in best.values():  # when did each method first have an image as good as the tutorial's result?
        row["reach"] = next((k for k, v in row["checkpoints"] if v <= ref["loss"]), None)
    return list(best.values())


def run_method(method: str, content: Image.Image, style: Image.Image, content_t: torch.Tensor, style_t: torch.Tensor,
               base: StyleSettings, ours_vgg: VGGFeatures, tutorial_cnn: nn.Sequential,
               evaluator: StyleObjective) -> dict:
    """One timed run: wall time, median time per step, final loss and, for ours, (steps, loss) checkpoints."""
    start = time.perf_counter()
    stamps: list[float] = []
    checkpoints: list[tuple[int, float]] = []  # (steps taken, loss of the image after them)
    if method == "tutorial":
        result = run_tutorial(tutorial_cnn, content_t, style_t, base.steps, base, stamps)
        label = "tutorial (float32)"
    else:
        precision = method.split("-", 1)[1]
        settings = StyleSettings(**{**base.__dict__, "precision": precision})
        for event in stylize(content, [style], settings, device="cpu", vgg=ours_vgg):
            if event.step and not event.done:
                stamps.append(start + event.elapsed)
                if event.step > 1:  # step k reports the image after k-1 steps; skip the untouched content
                    checkpoints.append((event.step - 1, event.total_loss))
        result = pil_to_tensor(event.image)  # 8-bit, like any result a person gets
        label = "gandemo (float32)" if precision == "float32" else "gandemo (bfloat16 autocast)"
    elapsed = time.perf_counter() - start
    loss = final_loss(evaluator, result)
    checkpoints.append((base.steps, loss))
    # the median step: robust to other processes' bursts on a shared machine
    per_step = statistics.median(b - a for a, b in zip(stamps, stamps[1:], strict=False)) if len(stamps) > 1 \
        else elapsed / base.steps
    return {"method": label, "size": f"{content.width}x{content.height}", "time": elapsed, "loss": loss,
            "per_step": per_step, "checkpoints": checkpoints}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="long sides, px (default 256 512)")
    parser.add_argument("--steps", type=int, default=20, help="L-BFGS evaluations per run (default 20)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--precision", default="auto", choices=("auto", "bfloat16"),
                        help="the second gandemo row (auto: bfloat16 only where the CPU has it natively)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per method, interleaved; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--content", default=str(REPO / "examples/style/content_house.jpg"))
    parser.add_argument("--style", default=str(REPO / "examples/style/style_stained_glass.jpg"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ours_vgg, tutorial_cnn, weights_label = build_networks(args.seed)
    print(f"# Style transfer speed, CPU ({platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__})", flush=True)
    print(f"{args.steps} L-BFGS steps from the content image; content relu4_2, style relu1_1..relu5_1; {weights_label}.\n")
    print("| size | method | median s / step | speed-up / step | wall s | final loss | vs tutorial | "
          "steps to tutorial's final loss | speed-up at equal loss |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        rows = bench_size(size, args, ours_vgg, tutorial_cnn)
        ref = rows[0]
        for r in rows:
            delta = (r["loss"] / ref["loss"] - 1) * 100
            k = r["reach"]
            equal = f"{ref['per_step'] * args.steps / (r['per_step'] * k):.2f}x" if k else "-"
            print(f"| {r['size']} | {r['method']} | {r['per_step']:.3f} | {ref['per_step'] / r['per_step']:.2f}x | "
                  f"{r['time']:.1f} | {r['loss']:.4f} | {delta:+.1f}% | {k if k is not None else 'not reached'} | "
                  f"{equal} |", flush=True)
    print("\nmedian s / step: the median of the step-to-step times (robust to other processes' bursts); wall s: "
          "setup, targets, all steps and the result, once. Speed-up at equal loss: the tutorial's N steps against "
          "the steps gandemo needed to hold an image at least as good as the tutorial's final one (it returns the "
          "best image seen, so it could stop there), both at their median step time.")


if __name__ == "__main__":
    main()
