"""Train the bundled Noto Emoji generator (weights/noto-emoji) with gandemo's own training pipeline.

    python scripts/train_emoji.py --threads 2          # render, train, export (about 3 h on 2 CPU cores)
    python scripts/train_emoji.py --resume             # continue an interrupted run in --work
    python scripts/train_emoji.py --export-only        # re-export the run in --work

1. Render every picture emoji of Debian's ``fonts-noto-color-emoji`` (NotoColorEmoji.ttf) to a
   64x64 RGBA PNG with ``scripts/render_emoji.py`` (1381 images with font version 2.042).
2. Train with ``python -m gandemo train`` (the same code path as the CLI and the Train tab):
   64 px, 4 channels (alpha kept), width 48, batch 64, the Trainer's default fixes (DiffAugment
   colour/translation/cutout, label smoothing 0.9, spectral norm, skip-D, EMA 0.999), no flips,
   seed 0. On CPUs with native bfloat16 (AVX512-BF16/AMX) the convolutions run in bf16.
3. Export the EMA generator to ``--out`` with float16 weights (4.3 MB instead of 8.7 MB; samples
   differ from the float32 ones by at most 0.3 of a grey level), an 8x8 sample grid of seeds 0-63
   and a model card that states the font's licence.

The run is seeded: a rerun on the same machine, thread count, torch version and code revision gives
the same model, and nothing in the Trainer depends on the total step count, so ``--resume --steps M``
extends a run exactly as if it had been asked for M steps. GAN training is not bit-identical across
those, so another machine gets a model of the same kind, not the same weights. How the bundled model
was actually trained (steps, threads, revisions) is written in its card.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import render_emoji  # noqa: E402

FONT_LICENCE = (
    "The training images were rendered from **Noto Color Emoji** (Debian package `fonts-noto-color-emoji`, "
    "font version {version}): Copyright 2013-2017 Google Inc., Arjen Nienhuis, licensed under the "
    "[SIL Open Font License 1.1](https://openfontlicense.org) (see "
    "`/usr/share/doc/fonts-noto-color-emoji/copyright`). The OFL covers the font software; the "
    "generator's weights and its samples are not font software, but keep this notice with them."
)


def font_version() -> str:
    try:
        from fontTools.ttLib import TTFont  # optional

        return str(TTFont(render_emoji.FONT_PATH)["head"].fontRevision.__round__(3))
    except Exception:  # noqa: BLE001 - the Debian package version is a good enough stand-in
        status = Path("/var/lib/dpkg/status")
        if status.is_file():
            block = status.read_text(errors="replace").split("Package: fonts-noto-color-emoji\n", 1)
            if len(block) == 2:
                for line in block[1].splitlines():
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
                    if not line:
                        break
        return "unknown"


def train_args(emoji_dir: Path, run_dir: Path, args: argparse.Namespace) -> list[str]:
    common = ["--steps", str(args.steps), "--preview-every", "500", "--checkpoint-every", "500", "--device", "cpu"]
    if args.resume:
        return ["train", str(emoji_dir), "--resume", str(run_dir), *common]
    return ["train", str(emoji_dir), "--out", str(run_dir), "--size", "64", "--channels", "4", "--alpha", "keep",
            "--width", "48", "--batch-size", "64", "--seed", str(args.seed), *common]


def evaluate(gen, emoji_dir: Path, n: int = 1000) -> str:  # noqa: ANN001 - a gandemo Generator
    """A paragraph for the card: Fréchet distance in ``cell_features`` space (8x8 cells of premultiplied
    RGBA) to the real renders, against an untrained generator and a floor (one half of the real set
    against the other), and how often samples are transparent at the corners and opaque at the centre."""
    import numpy as np
    from PIL import Image

    from gandemo.evaluation import compare_to_real_rgba

    files = sorted(emoji_dir.glob("*.png"))
    if not files:
        return "Not evaluated (the rendered emoji were not available at export)."
    real = np.stack([np.asarray(Image.open(f).convert("RGBA"), np.float32) / 255 for f in files])
    report = compare_to_real_rgba(gen, real, n)

    def shares(layout: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
        corners, centre = layout
        return float(np.mean(corners < 0.1)), float(np.mean(centre > 0.9))

    (rc, ro), (sc, so) = shares(report["alpha_real"]), shares(report["alpha_samples"])
    return (
        f"{n} samples (seeds 0-{n - 1}) against the {len(files)} real renders. Fréchet distance on 8x8-cell "
        f"averages of premultiplied RGBA (`gandemo.evaluation.cell_features`; coarse colour and layout, no "
        f"fine detail): **{report['fd']:.2f}**; an untrained generator of the same shape {report['fd_untrained']:.1f}; "
        f"one half of the real set against the other {report['fd_floor']:.2f}. Transparent corners: {sc:.0%} of samples "
        f"({rc:.0%} of real emoji); opaque centre: {so:.0%} ({ro:.0%})."
    )


def export(run_dir: Path, out: Path, wall_s: float | None, emoji_dir: Path | None = None, provenance: str = "") -> None:
    import torch

    from gandemo import load_generator
    from gandemo.gan.checkpoint import model_card, save_generator
    from gandemo.images import make_grid

    gen = load_generator(str(run_dir), device="cpu")
    state = json.loads((run_dir / "training" / "state.json").read_text())
    config = state["config"]
    grid = make_grid(gen.sample(list(range(64))), columns=8)
    settings = {k: config[k] for k in ("image_size", "channels", "width_g", "width_d", "batch_size", "lr_g", "lr_d",
                                       "beta1", "beta2", "loss", "diffaugment", "mirror", "label_smoothing",
                                       "spectral_norm", "d_skip_threshold", "ema_decay", "r1_gamma", "seed", "amp")}
    last = state["history"][-200:]
    mean = {k: sum(h[k] for h in last) / len(last) for k in ("loss_d", "loss_g", "d_real", "d_fake")}
    timing = f"Wall time of this script's training call: {wall_s / 60:.0f} min on CPU. " if wall_s else ""
    card = model_card(
        title="Noto Emoji DCGAN (gandemo bundled model)",
        summary=(
            "A small DCGAN trained to draw 64x64 emoji with transparency (RGBA) in the style of Google's Noto "
            "Color Emoji (faces, hands, animals, food, objects, symbols); see Limitations for how close it gets. "
            "Trained from scratch with gandemo's own training pipeline (the Train tab / `python -m gandemo "
            "train`). Grid: seeds 0-63."
        ),
        config={"image_size": gen.image_size, "channels": gen.channels, "latent_dim": gen.latent_dim,
                "width": config["width_g"]},
        license="ofl-1.1",
        sections={
            "Training": (
                f"{state['step']} steps at batch {config['batch_size']} on the emoji rendered by "
                f"`scripts/render_emoji.py` (intake: {state['data']})\n\n"
                "Reproduce with `python scripts/train_emoji.py` (renders the emoji, trains, exports; seeded).\n\n"
                "```json\n" + json.dumps(settings, indent=2) + "\n```\n\n"
                + (f"{provenance}\n\n" if provenance else "") +
                f"{timing}Averages over the last {len(last)} steps: D loss {mean['loss_d']:.2f}, G loss "
                f"{mean['loss_g']:.2f}, D(x) {mean['d_real']:.2f}, D(G(z)) {mean['d_fake']:.2f}. "
                f"Discriminator updates skipped: {state['skipped_d']}; NaN recoveries: {state['recoveries']}. "
                "Weights are stored as float16 and load as float32."
            ),
            "Evaluation": evaluate(gen, emoji_dir) if emoji_dir else "Not evaluated.",
            "Data and licence": FONT_LICENCE.format(version=font_version()),
            "Limitations": (
                "1381 training images, nearly all different from each other, is a small and very varied set "
                "for a small GAN. In the grid above about a quarter of the samples are clearly emoji (yellow "
                "faces with eyes and mouths, keycap-style buttons, round symbols, hearts); most others are "
                "emoji-coloured shapes with smeared outlines, and fine detail (text, thin lines, small faces) is "
                "lost at this size and width. A longer run or a wider network on a GPU would do better."
            ),
        },
    )
    half = copy.deepcopy(gen.module).to(torch.float16)
    save_generator(half, out, card=card, sample_grid=grid)
    print(f"exported {run_dir} (step {state['step']}) to {out}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "noto-emoji-build", help="rendered emoji and the run")
    p.add_argument("--out", type=Path, default=ROOT / "weights" / "noto-emoji")
    p.add_argument("--steps", type=int, default=30000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: the other core stays free)")
    p.add_argument("--resume", action="store_true", help="continue the run in --work")
    p.add_argument("--export-only", action="store_true")
    p.add_argument("--provenance", default="", help="how this copy was actually trained, for the card")
    args = p.parse_args(argv)
    os.environ.setdefault("GANDEMO_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    emoji_dir, run_dir = args.work / "emoji", args.work / "run"
    wall = None
    if not args.export_only:
        if not any(emoji_dir.glob("*.png")) and render_emoji.main([str(emoji_dir), "--size", "64"]) != 0:
            return 1
        from gandemo.cli import main as gandemo_main

        t0 = time.time()
        code = gandemo_main(train_args(emoji_dir, run_dir, args))
        if code != 0:
            return code
        wall = time.time() - t0
    export(run_dir, args.out, wall, emoji_dir, args.provenance)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
