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
from pathlib import Path
from typing import Any

from PIL import Image

from .models import MODEL_CARD_TAGS, DCGANGenerator


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
    yaml += [f"- {t}" for t in MODEL_CARD_TAGS]
    if datasets:
        yaml.append("datasets:")
        yaml += [f"- {d}" for d in datasets]
    yaml.append("---")
    body = [f"# {title}", "", summary, ""]
    if sample_image:
        body += [f"![Samples]({sample_image})", ""]
    arch = (
        f"DCGAN generator, {config['image_size']}x{config['image_size']} px, {config['channels']} channel(s), "
        f"latent dimension {config['latent_dim']}, width {config['width']}."
    )
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
    generator: DCGANGenerator,
    folder: str | Path,
    *,
    card: str | None = None,
    sample_grid: Image.Image | None = None,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Write ``generator`` as config.json + model.safetensors (+ README.md, samples.png).

    ``folder`` may be a symbolic link to a folder: the folder it points at is replaced, the link stays."""
    given = Path(folder)
    folder = given.resolve() if given.is_symlink() else given
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    tmp.chmod(0o755)
    try:
        generator.save_pretrained(tmp)
        if card is not None:
            (tmp / "README.md").write_text(card, encoding="utf-8")
        if sample_grid is not None:
            sample_grid.save(tmp / "samples.png")
        for name, src in (extra_files or {}).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / name)
        # keep config.json stable and readable (sorted keys, newline at end)
        config = json.loads((tmp / "config.json").read_text())
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        for path in tmp.rglob("*"):  # mkdtemp/save_pretrained leave owner-only modes; checkpoints are shared files
            path.chmod(0o755 if path.is_dir() else 0o644)
        backup = None
        if folder.exists():
            backup = folder.with_name(f".{folder.name}.old")
            if backup.is_symlink() or backup.is_file():  # a stray link or file: remove it, not what it points at
                backup.unlink()
            elif backup.exists():
                shutil.rmtree(backup)
            os.replace(folder, backup)
        os.replace(tmp, folder)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return given
