"""Where the project's top-level folders that ship with it (the plugin gallery, the corpus catalogue) are."""

from __future__ import annotations

import importlib.metadata
import sysconfig
from pathlib import Path


def shipped_dir(name: str) -> Path | None:
    """``NAME/`` beside the package in a checkout (or an editable install), else the copy that a normal install
    puts in ``<prefix>/share/rnntui/NAME`` (found through the installed files' record)."""
    root = Path(__file__).resolve().parent.parent
    if (root / name).is_dir() and (root / "pyproject.toml").is_file():
        return root / name
    try:
        files = importlib.metadata.distribution("rnntui").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if tuple(f.parts[-4:-1]) == ("share", "rnntui", name):
            return Path(f.locate()).resolve().parent
    data = Path(sysconfig.get_path("data")) / "share" / "rnntui" / name
    return data if data.is_dir() else None
