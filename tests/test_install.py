"""gandemo installs like a normal Python tool: ``pip install .`` gives a ``gandemo`` command that works
from any folder, with the bundled models and both languages inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)


def test_the_package_list_names_every_package() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "gandemo").rglob("__init__.py")}
    assert set(config["packages"]) == found | {"gandemo.bundled"}, "pyproject.toml's package list is out of date"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gandemo built as a wheel and installed into a folder of its own (its dependencies come from
    this environment; no network: the build uses the setuptools already installed)."""
    root = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(root / "wheel"), str(REPO)], check=True, cwd=root, capture_output=True)
    (wheel,) = (root / "wheel").glob("gandemo-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert "gandemo/bundled/fashion-mnist/model.safetensors" in names
    assert "gandemo/i18n/catalog.yaml" in names and "gandemo/i18n/glossary.yaml" in names
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(root / "site"),
                    str(wheel)], check=True, cwd=root, capture_output=True)
    return root


def _run(installed: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GANDEMO_WEIGHTS_DIR")}
    env["PYTHONPATH"] = str(installed / "site")  # the installed copy, not the checkout
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_the_gandemo_command_works_from_another_folder(installed: Path, tmp_path: Path) -> None:
    script = installed / "site" / "bin" / "gandemo"
    assert script.is_file(), "pip did not install the gandemo console command"
    done = _run(installed, [sys.executable, str(script), "sample", "--num", "4", "--out", "grid.png"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "grid.png").is_file() and "wrote grid.png" in done.stdout
    where = _run(installed, [sys.executable, "-c", "import gandemo, gandemo.hub as h; print(gandemo.__file__);"
                             "print(h.bundled_dir()); print(h.bundled_models())"], tmp_path)
    assert str(installed / "site") in where.stdout and "fashion-mnist" in where.stdout, where.stdout + where.stderr
    assert str(REPO) not in where.stdout.splitlines()[0]


def test_installed_cli_errors_are_one_line(installed: Path, tmp_path: Path) -> None:
    done = _run(installed, [sys.executable, "-m", "gandemo", "sample", "--model", "/no/such", "--out", "x.png"], tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith("error:"), done.stderr
