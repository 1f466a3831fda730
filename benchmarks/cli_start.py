"""How long the command line takes to answer --help or refuse a bad option or a missing file: now, and at an earlier revision.

    python benchmarks/cli_start.py [--baseline-rev 19502c1] [--repeat 5]

Each command runs ``--repeat`` times in a fresh interpreter (``python -m gandemo ...``) from this checkout and
from ``git archive BASELINE`` unpacked into a temporary folder (the same interpreter and packages), and the
table shows the median wall seconds of each. The default baseline is the last revision before the parser,
the settings and the input checks stopped importing torch. Printed with the machine.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from _common import machine_facts

REPO = Path(__file__).resolve().parent.parent

COMMANDS = [
    ["--help"],
    ["train", "--help"],
    ["train", "images", "--lr-g", "0"],
    ["lab", "--preset", "nope"],
    ["sample", "--num", "0", "--out", "x.png"],
    ["interpolate", "--seeds", "1", "2", "--frames", "1", "--out", "x.gif"],
    ["style", "a.png", "b.png", "--out", "x.txt"],
    ["sample", "--model", "./no/such/folder", "--out", "x.png"],
    ["train", "no/such/images", "--out", "run"],
    ["style", "no.png", "b.png", "--out", "x.png"],
]


def seconds(root: Path, args: list[str], repeat: int, cwd: Path) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gandemo", *args], cwd=cwd, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                       capture_output=True, check=False, timeout=300)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", default="19502c1", help="the revision to compare with (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command; the median is shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gandemo-cli-start-") as tmp:
        base = Path(tmp) / "baseline"
        archive = subprocess.run(["git", "archive", args.baseline_rev, "gandemo"], cwd=REPO, capture_output=True, check=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(base, filter="data")
        work = Path(tmp) / "cwd"
        work.mkdir()
        print(machine_facts())
        print(f"median of {args.repeat} runs, seconds, python -m gandemo ... in a fresh interpreter\n")
        print(f"| command | {args.baseline_rev} | now | x faster |")
        print("|---|---:|---:|---:|")
        for command in COMMANDS:
            before = seconds(base, command, args.repeat, work)
            now = seconds(REPO, command, args.repeat, work)
            print(f"| `{' '.join(command)}` | {before:.2f} | {now:.2f} | {before / now:.0f} |", flush=True)


if __name__ == "__main__":
    main()
