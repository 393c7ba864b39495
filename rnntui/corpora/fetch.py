"""Downloading a catalogue corpus, and registering a file placed by hand.

A download goes to a temporary file beside its destination, hashed as it arrives; it gets its final name only
once its sha256 matches the catalogue's, so an interrupted or wrong transfer never leaves a file that looks good.
Nothing here runs unless the user asks for it (``rnntui corpora fetch`` / ``add``).
"""

from __future__ import annotations

import http.client
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from rnntui import __version__
from rnntui.corpora.catalogue import (
    CatalogueEntry, add_command, catalogue, catalogue_entry, save_user_corpora, user_corpora,
)
from rnntui.corpora.decoding import ProgressFn, report
from rnntui.corpora.sources import DirectorySource, FileSource
from rnntui.errors import DataError
from rnntui.util.files import atomic_write, sha256_file


class FetchError(DataError):
    """A download that failed or was refused; the message says what to do instead."""


def fetch(name: str, url: str | None = None, progress: ProgressFn | None = None, force: bool = False,
          timeout: float = 60.0) -> Path:
    """Download catalogue corpus ``name`` (from ``url`` if given, e.g. a mirror), verify its sha256 and keep it
    in the cache directory. Returns its path; an existing verified copy is kept unless ``force``."""
    entry = catalogue_entry(name)
    if entry.downloaded and not force:
        return entry.path
    url = url or entry.url
    hint = (f"if this machine is offline, download {entry.url} by other means and register the file with: "
            f"{add_command(name)}")

    def download_verified(out) -> None:  # a failure here leaves nothing behind (atomic_write)
        got, expected = _download(url, out, entry, progress, timeout, hint)
        if expected is not None and got < expected:
            raise FetchError(f"the download of {name} from {url} was interrupted after {got:,} of {expected:,} "
                             f"bytes; nothing was kept; run the command again, or {hint}")
        digest = _digest_of(out)
        if digest != entry.sha256:
            raise FetchError(f"{name} from {url} does not match the catalogue: sha256 {digest} ({got:,} bytes), "
                             f"expected {entry.sha256}; nothing was kept; try again later, or {hint}")

    atomic_write(entry.path, download_verified)
    return entry.path


def _download(url: str, out, entry: CatalogueEntry, progress: ProgressFn | None, timeout: float,
              hint: str) -> tuple[int, int | None]:
    request = urllib.request.Request(url, headers={"User-Agent": f"rnntui/{__version__}"})
    got, expected, last = 0, None, 0.0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            total = expected or entry.bytes
            report(progress, "download", 0, total)
            while block := response.read(1 << 16):
                out.write(block)
                got += len(block)
                if progress and time.monotonic() - last > 0.1:
                    last = time.monotonic()
                    report(progress, "download", got, total)
            report(progress, "download", got, total)
    except urllib.error.HTTPError as e:
        raise FetchError(f"could not download {entry.name} from {url}: HTTP {e.code} {e.reason}; {hint}") from None
    except (urllib.error.URLError, http.client.HTTPException, socket.timeout, OSError) as e:
        reason = getattr(e, "reason", None) or e
        if isinstance(e, http.client.IncompleteRead):
            raise FetchError(f"the download of {entry.name} from {url} was interrupted after {got:,} bytes; "
                             f"nothing was kept; run the command again, or {hint}") from None
        raise FetchError(f"could not download {entry.name} from {url} ({reason}); {hint}") from None
    return got, expected


def _digest_of(out) -> str:
    """The sha256 of what was written to the open file ``out``, read back from the disk."""
    out.flush()
    return sha256_file(Path(out.name))


def add(name: str, path: str | Path, encoding: str = "utf-8", *, taken: Mapping[str, str] | None = None) -> str:
    """Register a file placed by hand under ``name``; returns a line saying what was done.

    A catalogue name: the file must match the catalogue's sha256, and is copied into the cache directory as if it
    had been fetched. Any other name: the file or directory is registered where it is (rnntui keeps its path),
    unless ``taken`` (the names already registered, each with the plugin that registered it) has it. The plugin
    registry does not list the new corpus until the caller rebuilds it."""
    taken = taken or {}
    source = Path(path).expanduser()
    if not source.exists():
        raise DataError(f"{path}: no such file or directory")
    entries = catalogue()
    if name in entries:
        entry = entries[name]
        if source.is_dir():
            raise DataError(f"{path} is a directory; {name} is one file ({entry.url})")
        digest = sha256_file(source)
        if digest != entry.sha256:
            raise DataError(f"{path} is not the catalogue's {name}: sha256 {digest}, expected {entry.sha256}; "
                            f"to train on it anyway, add it under another name: rnntui corpora add my-{name} {path}")
        def copy_verified(out) -> None:
            with open(source, "rb") as f:
                shutil.copyfileobj(f, out)
            if _digest_of(out) != entry.sha256:
                raise DataError(f"{path} changed while it was being copied; run the command again")

        atomic_write(entry.path, copy_verified)
        return f"{name}: verified (sha256 {digest[:12]}...) and stored in {entry.path}"
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith((".", "-")):
        raise DataError(f"{name!r} is not a usable corpus name: use letters, digits, '-', '_' and '.'")
    mine = user_corpora()
    if name in taken and name not in mine:
        raise DataError(f"corpus name {name!r} is taken by {taken[name]}; choose another name")
    if source.is_dir():
        DirectorySource(source, encoding=encoding)  # refuses a directory with nothing to read
    else:
        FileSource(source, encoding)
    mine[name] = {"path": str(source.resolve()), "encoding": encoding, "added": time.strftime("%Y-%m-%d %H:%M:%S")}
    save_user_corpora(mine)
    return f"{name}: registered {source.resolve()}; train on it with: rnntui train {name}"


def remove(name: str) -> str:
    """Forget a corpus added by hand, or delete a downloaded catalogue corpus."""
    mine = user_corpora()
    if name in mine:
        path = mine.pop(name)["path"]
        save_user_corpora(mine)
        return f"{name}: forgotten (the file {path} itself is untouched)"
    entries = catalogue()
    if name in entries and entries[name].downloaded:
        entries[name].path.unlink()
        return f"{name}: removed the downloaded copy {entries[name].path}"
    if name in entries:
        raise DataError(f"{name} is not downloaded; nothing to remove")
    raise DataError(f"no corpus {name!r} was added by hand or downloaded; see `rnntui corpora`")
