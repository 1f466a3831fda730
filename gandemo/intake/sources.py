"""Where the files come from: a list of paths or (name, bytes) pairs, a folder, or a zip.

Everything is turned into a flat list of :class:`Candidate` files. Zips are never extracted to
disk; their entries are read into memory one at a time, under a byte budget, when the image
is decoded. Entries with unsafe paths (``../``, absolute), encrypted entries, links and zips
inside the zip are skipped with a reason; ``__MACOSX``, ``.DS_Store`` and other hidden or
system files are ignored without one.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from gandemo.intake.options import IntakeOptions
from gandemo.intake.reasons import Unusable, human_bytes

Source = str | os.PathLike[str] | tuple[str, bytes]
Sources = Source | Iterable[Source]

SYSTEM_NAMES = {"__macosx", "thumbs.db", "desktop.ini", "$recycle.bin", "ehthumbs.db"}


def is_ignored(path: str) -> bool:
    """Hidden or operating-system bookkeeping files nobody means as training images."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return any(p.startswith(".") or p.lower() in SYSTEM_NAMES for p in parts)


def unsafe_zip_path(name: str) -> str | None:
    """Why an entry name could escape the folder it is unpacked into, or None if it cannot."""
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        return "unsafe path: absolute"
    if ".." in normalised.split("/"):
        return "unsafe path: goes up with '..'"
    return None


@dataclass
class Candidate:
    """One file that may hold an image; ``open()`` gives a binary file object."""

    name: str
    opener: Callable[[], BinaryIO]
    nbytes: int
    seq: int = 0  # position among everything found, so skips can be reported in upload order

    def open(self) -> BinaryIO:
        return self.opener()


@dataclass
class Collected:
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, name, reason)
    ignored: list[str] = field(default_factory=list)
    max_files: int = 0

    def _next(self) -> int:
        return len(self.candidates) + len(self.skipped)

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append((self._next(), name, reason))

    def add(self, candidate: Candidate) -> None:
        if len(self.candidates) >= self.max_files:
            self.skip(candidate.name, f"over the file limit: {self.max_files} files")
        else:
            candidate.seq = self._next()
            self.candidates.append(candidate)


class _ZipBudget:
    """Bytes still allowed out of one zip; enforced while reading, not trusted from the header."""

    def __init__(self, limit: int) -> None:
        self.left = limit


def collect(sources: Sources, options: IntakeOptions, stack: ExitStack) -> Collected:
    """Flatten ``sources`` into candidates. Zips opened here stay open until ``stack`` closes."""
    out = Collected(max_files=options.max_files)
    if isinstance(sources, (str, os.PathLike, tuple)):
        sources = [sources]
    for source in sources:
        if isinstance(source, tuple):
            name, data = source
            name = PurePosixPath(str(name).replace("\\", "/")).name or "upload"
            if name.lower().endswith(".zip"):
                _add_zip(name, io.BytesIO(data), options, stack, out)
            else:
                out.add(Candidate(name, _bytes_opener(data), len(data)))
            continue
        path = Path(source)
        if path.is_dir():
            _add_folder(path, options, stack, out)
        elif not path.exists():
            out.skip(path.name, "file not found")
        elif path.suffix.lower() == ".zip":
            _add_zip(path.name, path, options, stack, out)
        else:
            out.add(_file_candidate(path.name, path))
    return out


def _bytes_opener(data: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(data)


def _file_candidate(name: str, path: Path) -> Candidate:
    return Candidate(name, lambda: open(path, "rb"), path.stat().st_size)  # the caller closes it


def _add_folder(root: Path, options: IntakeOptions, stack: ExitStack, out: Collected) -> None:
    for folder, dirnames, filenames in os.walk(root):
        here = Path(folder)
        for d in sorted(dirnames):
            if is_ignored(d):
                out.ignored.append((here / d).relative_to(root).as_posix() + "/")
        dirnames[:] = sorted(d for d in dirnames if not is_ignored(d))
        for filename in sorted(filenames):
            path = here / filename
            rel = path.relative_to(root).as_posix()
            if is_ignored(filename):
                out.ignored.append(rel)
            elif not path.is_file():
                out.skip(rel, "not a regular file")
            elif filename.lower().endswith(".zip"):
                _add_zip(rel, path, options, stack, out)
            else:
                out.add(_file_candidate(rel, path))


def _add_zip(name: str, file: Path | BinaryIO, options: IntakeOptions, stack: ExitStack, out: Collected) -> None:
    try:
        archive = stack.enter_context(zipfile.ZipFile(file))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        out.skip(name, "not a valid zip file")
        return
    if len(infos) > options.max_zip_entries:
        out.skip(name, f"too many entries in zip: {len(infos)}, the limit is {options.max_zip_entries}")
        return
    declared = sum(i.file_size for i in infos if not i.is_dir())
    if declared > options.max_uncompressed_bytes:
        out.skip(name, f"zip too large when unpacked: {human_bytes(declared)}, "
                       f"the limit is {human_bytes(options.max_uncompressed_bytes)}")
        return
    budget = _ZipBudget(options.max_uncompressed_bytes)
    for info in infos:
        entry = info.filename
        if info.is_dir():
            if is_ignored(entry):
                out.ignored.append(entry)
            continue
        reason = unsafe_zip_path(entry)
        if reason:
            out.skip(entry, reason)
        elif is_ignored(entry):
            out.ignored.append(entry)
        elif info.flag_bits & 0x1:
            out.skip(entry, "encrypted zip entry")
        elif stat.S_ISLNK(info.external_attr >> 16):
            out.skip(entry, "symbolic link in zip")
        elif entry.lower().endswith(".zip"):
            out.skip(entry, "zip inside a zip: not opened")
        else:
            out.add(Candidate(entry, _zip_opener(archive, info, budget, options), info.file_size))


def _zip_opener(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _ZipBudget,
                options: IntakeOptions) -> Callable[[], BinaryIO]:
    def open_entry() -> BinaryIO:
        if info.file_size > options.max_file_bytes:
            raise Unusable(f"too large: {human_bytes(info.file_size)}, the limit is {human_bytes(options.max_file_bytes)}")
        limit = min(info.file_size, budget.left)
        try:
            with archive.open(info) as f:
                data = f.read(limit + 1)
        except zipfile.BadZipFile as e:
            raise Unusable(f"corrupt zip entry: {e}") from None
        except (OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
            raise Unusable(f"corrupt zip entry: {type(e).__name__}: {e}") from None
        if len(data) > limit:
            # More bytes than the header declared (or than the zip may unpack to): a zip bomb.
            raise Unusable("zip bomb guard: unpacks to more than its header says or the zip may hold")
        budget.left -= len(data)
        if data.startswith(b"PK\x03\x04"):
            raise Unusable("zip inside a zip: not opened")
        return io.BytesIO(data)

    return open_entry
