"""The user's rnntui directories. ``RNNTUI_HOME``, when set, holds them all (the tests set it); otherwise the
platform's user data, config and cache directories (platformdirs: ~/.local/share/rnntui, ~/.config/rnntui and
~/.cache/rnntui on Linux)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "rnntui"


def _home() -> Path | None:
    home = os.environ.get("RNNTUI_HOME")
    return Path(home) if home else None


def data_dir() -> Path:
    """Runs and the corpora added by hand."""
    home = _home()
    return home if home else Path(platformdirs.user_data_dir(APP, appauthor=False))


def config_dir() -> Path:
    """The user plugin directory lives here."""
    home = _home()
    return home if home else Path(platformdirs.user_config_dir(APP, appauthor=False))


def cache_dir() -> Path:
    """Encoded texts, downloads, calibration and other results that can be made again."""
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP, appauthor=False))


def runs_dir() -> Path:
    return data_dir() / "runs"
