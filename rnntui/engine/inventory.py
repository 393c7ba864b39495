"""What the app (and the command line's argument check) knows about plugins, cells and corpora, without torch.

Building the plugin registry imports torch and checks every cell with a forward and backward pass, which would
cost the app's process seconds and hundreds of megabytes. So a helper process builds it (``python -m
rnntui.engine.inventory``) and prints the rows of rnntui.plugins.listing as JSON; the result is cached under the
cache directory per plugin-set fingerprint (rnntui's and torch's versions, the plugins found and their files'
sizes and times, the plugin settings, the corpora added by hand and downloaded), so it is built once per change.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnntui import __version__
from rnntui.corpora.catalogue import downloads_dir, user_corpora_file
from rnntui.errors import UserError
from rnntui.plugins.discovery import ENV_DIR_ARGS, ENV_DISABLED, ENV_LOAD, ENV_PATH, find_plugins
from rnntui.util.files import read_json, write_json
from rnntui.util.paths import cache_dir

FORMAT = 1  # bump when the rows change shape


@dataclass
class Inventory:
    cells: list[dict[str, Any]] = field(default_factory=list)  # rnntui.plugins.listing.cell_rows
    corpora: list[dict[str, Any]] = field(default_factory=list)  # ... corpus_rows
    plugins: list[dict[str, Any]] = field(default_factory=list)  # ... plugin_rows
    notes: list[str] = field(default_factory=list)  # e.g. an allow-list name that matches nothing

    def cell(self, name: str) -> dict[str, Any] | None:
        return next((row for row in self.cells if row["name"] == name), None)

    def corpus(self, name: str) -> dict[str, Any] | None:
        return next((row for row in self.corpora if row["name"] == name), None)


def _stamp(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def fingerprint() -> str:
    """Changes whenever what the registry would hold may have changed."""
    found, notes = find_plugins()
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    downloads = downloads_dir()
    parts = {
        "format": FORMAT, "rnntui": __version__, "python": sys.version, "torch": torch_version,
        "settings": [os.environ.get(k) for k in (ENV_LOAD, ENV_DISABLED, ENV_PATH, ENV_DIR_ARGS)],
        "plugins": [[p.name, p.version, p.source, p.location, p.skipped, _stamp(Path(p.location))] for p in found],
        "notes": notes, "user_corpora": _stamp(user_corpora_file()),
        "downloads": sorted(p.name for p in downloads.iterdir()) if downloads.is_dir() else [],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _cache_file(key: str) -> Path:
    return cache_dir() / "inventory" / f"{key}.json"


def cached() -> Inventory | None:
    """The inventory for the plugins as they are now, if it was built before."""
    data = read_json(_cache_file(fingerprint()))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return Inventory(data["cells"], data["corpora"], data["plugins"], data["notes"])


def load(timeout: float = 300.0) -> Inventory:
    """The inventory, from the cache or built by the helper process (a few seconds, once per plugin set)."""
    key = fingerprint()
    found = cached()
    if found is not None:
        return found
    try:
        done = subprocess.run([sys.executable, "-m", "rnntui.engine.inventory"], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UserError(f"listing the plugins took more than {timeout:.0f} s; see `rnntui plugins`") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"listing the plugins failed ({last}); `rnntui plugins` shows the details")
    data = json.loads(done.stdout)
    write_json(_cache_file(key), data, indent=None)
    return Inventory(data["cells"], data["corpora"], data["plugins"], data["notes"])


def collect() -> dict[str, Any]:
    """The helper process's work: build the registry and list it."""
    # lazy: torch and every plugin load in the helper process only, never in the app's
    from rnntui.plugins import get_registry
    from rnntui.plugins.listing import cell_rows, corpus_rows, plugin_rows  # lazy: likewise

    registry = get_registry()
    return {"format": FORMAT, "cells": cell_rows(registry), "corpora": corpus_rows(registry),
            "plugins": plugin_rows(registry), "notes": list(registry.notes)}


if __name__ == "__main__":
    import logging

    logging.getLogger("rnntui.plugins").disabled = True  # failures are in the rows; stderr stays for real errors
    json.dump(collect(), sys.stdout)
