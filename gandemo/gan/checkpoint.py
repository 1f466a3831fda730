"""Saving generators in the native format: a Hub-style folder with config.json,
model.safetensors and a model card (README.md with YAML metadata).

Writes are atomic per folder: everything goes to a temporary sibling folder that is
renamed into place, so a crash never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from .models import MODEL_CARD_TAGS, DCGANGenerator
from .msg import MSG_TAGS, BlocksGenerator, scale_sizes
from .progressive import PROGRESSIVE_TAGS
from .settings import ARCH_NAMES


def model_card(
    *,
    title: str,
    summary: str,
    config: dict[str, Any],
    datasets: list[str] | None = None,
    license: str = "mit",
    sections: dict[str, str] | None = None,
    sample_image: str | None = "samples.png",
) -> str:
    """A model card whose YAML header the Hub understands and whose body a person can read."""
    yaml = ["---", f"license: {license}", "library_name: gandemo", "pipeline_tag: unconditional-image-generation", "tags:"]
    arch_id = config.get("arch", "dcgan")  # config.json's "arch" (absent: a DCGAN)
    msg, grown = arch_id == "msg", arch_id == "progressive"
    yaml += [f"- {t}" for t in (MSG_TAGS if msg else PROGRESSIVE_TAGS if grown else MODEL_CARD_TAGS)]
    if datasets:
        yaml.append("datasets:")
        yaml += [f"- {d}" for d in datasets]
    yaml.append("---")
    body = [f"# {title}", "", summary, ""]
    if sample_image:
        body += [f"![Samples]({sample_image})", ""]
    arch = (
        f"{ARCH_NAMES.get(arch_id, 'DCGAN')} generator, {config['image_size']}x{config['image_size']} px, "
        f"{config['channels']} channel(s), latent dimension {config['latent_dim']}, width {config['width']}."
    )
    sizes = ", ".join(f"{s}x{s}" for s in scale_sizes(int(config["image_size"]))) if msg or grown else ""
    if msg:
        arch += (f" Architecture: msg (MSG-GAN, multi-scale gradients): the generator draws the image at every scale "
                 f"({sizes}) and the discriminator judged each at the matching depth while it trained. "
                 "`gen.scales(z)` returns every scale; `gen(z)` the full-size image.")
    if grown:
        arch += (" Architecture: progressive (progressive growing, as in ProGAN): training began at 4x4 and both "
                 f"networks grew one resolution at a time ({sizes}), each new one faded in; `gen(z)` draws the "
                 "full-size image with DCGAN's layers (the weights have an MSG-GAN generator's layout).")
    body += ["## Architecture", "", arch, ""]
    body += [
        "## Use",
        "",
        "```python",
        "from gandemo import load_generator",
        "import torch",
        "gen = load_generator(\"path/or/repo-id\")",
        "images = gen(torch.randn(16, gen.latent_dim))  # (16, C, H, W) in [-1, 1]",
        "```",
        "",
    ]
    for heading, text in (sections or {}).items():
        body += [f"## {heading}", "", text.strip(), ""]
    return "\n".join(yaml + body)


def save_generator(
    generator: DCGANGenerator | BlocksGenerator,
    folder: str | Path,
    *,
    card: str | None = None,
    sample_grid: Image.Image | None = None,
    extra_files: dict[str, Path] | None = None,
    write: Callable[[Path], None] | None = None,
    keep: tuple[str, ...] = (),
) -> Path:
    """Write ``generator`` as config.json + model.safetensors (+ README.md, samples.png).

    ``write(folder)`` adds more files to the new folder before it is swapped in; ``keep`` names files or
    folders of the old folder that carry over into the new one (moved, not copied: a run's previews).
    A failure at any point leaves the old folder as it was, and nothing else behind.
    ``folder`` may be a symbolic link to a folder: the folder it points at is replaced, the link stays."""
    given = Path(folder)
    folder = given.resolve() if given.is_symlink() else given
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    backup = folder.with_name(f".{folder.name}.old")
    carried: list[str] = []
    moved_away = swapped = False
    try:
        tmp.chmod(0o755)
        generator.save_pretrained(tmp)
        if card is not None:
            (tmp / "README.md").write_text(card, encoding="utf-8")
        if sample_grid is not None:
            sample_grid.save(tmp / "samples.png")
        for name, src in (extra_files or {}).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / name)
        if write is not None:
            write(tmp)
        # keep config.json stable and readable (sorted keys, newline at end)
        config = json.loads((tmp / "config.json").read_text())
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        for path in tmp.rglob("*"):  # mkdtemp/save_pretrained leave owner-only modes; checkpoints are shared files
            path.chmod(0o755 if path.is_dir() else 0o644)
        if folder.exists():
            if backup.is_symlink() or backup.is_file():  # a stray link or file: remove it, not what it points at
                backup.unlink()
            elif backup.exists():
                shutil.rmtree(backup)
            for name in keep:
                if (folder / name).exists() and not (tmp / name).exists():
                    os.replace(folder / name, tmp / name)
                    carried.append(name)
            os.replace(folder, backup)
            moved_away = True
        os.replace(tmp, folder)
        swapped = True
    except BaseException:
        if not swapped:
            _put_back(folder, backup if moved_away else None, tmp, carried)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if moved_away:
        shutil.rmtree(backup, ignore_errors=True)
    return given


def _put_back(folder: Path, backup: Path | None, tmp: Path, carried: list[str]) -> None:
    """Undo a save that failed before the new folder was swapped in: the old folder and what was carried
    out of it go back where they were (best effort: the first error is the one worth reporting)."""
    try:
        if backup is not None and not folder.exists():
            os.replace(backup, folder)
        for name in carried:
            if (tmp / name).exists() and not (folder / name).exists():
                os.replace(tmp / name, folder / name)
    except OSError:
        pass
