"""The sha256 of a text file, remembered by its size, times and inode, so an unchanged file is read only once."""

from __future__ import annotations

import contextlib
import hashlib
import time
from pathlib import Path

from rnntui.corpora.decoding import ProgressFn, report
from rnntui.util.files import read_json, sha256_file, write_json
from rnntui.util.paths import cache_dir

PROGRESS_EVERY = 0.1  # seconds between progress reports


def file_sha256(path: Path, progress: ProgressFn | None = None) -> str:
    path = Path(path)
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    resolved = str(path.resolve())
    memo = cache_dir() / "hashes" / (hashlib.sha1(resolved.encode("utf-8", "surrogateescape")).hexdigest() + ".json")
    saved = read_json(memo)
    if isinstance(saved, dict) and saved.get("path") == resolved and saved.get("stamp") == stamp:
        return saved["sha256"]
    last = [0.0]

    def on_block(done: int) -> None:
        if progress and time.monotonic() - last[0] > PROGRESS_EVERY:
            last[0] = time.monotonic()
            report(progress, "hash", done, st.st_size)

    digest = sha256_file(path, on_block)
    report(progress, "hash", st.st_size, st.st_size)
    with contextlib.suppress(OSError):
        write_json(memo, {"path": resolved, "stamp": stamp, "sha256": digest}, indent=None)
    return digest
