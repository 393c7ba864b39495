"""Writing files so that a crash or a full disk never leaves half of one, and hashing them."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

CHUNK_BYTES = 1 << 22  # files are read 4 MiB at a time


def atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write ``path`` through ``write(file)`` into a temporary file beside it, fsync it, then rename it into place
    and fsync the directory: readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:  # by name, so ``write`` may read back what it wrote (f.name)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_json(path: Path, data: Any, indent: int | None = 1) -> None:
    """``data`` as JSON, written atomically (see ``atomic_write``)."""
    blob = json.dumps(data, indent=indent, ensure_ascii=False).encode("utf-8")
    atomic_write(path, lambda f: f.write(blob))


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def sha256_file(path: Path, on_block: Callable[[int], None] | None = None) -> str:
    """The hex sha256 of a file, read in blocks; ``on_block(bytes_done)`` is called after each (for progress)."""
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK_BYTES):
            h.update(block)
            done += len(block)
            if on_block is not None:
                on_block(done)
    return h.hexdigest()
