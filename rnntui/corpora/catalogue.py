"""The corpus catalogue (``corpora/catalogue.toml``: texts to download, with URL, sha256 and licence), where the
downloaded copies live, and the corpora a user registered by hand (``rnntui corpora add NAME PATH``)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from rnntui.errors import DataError
from rnntui.shipped import shipped_dir
from rnntui.util.files import write_json
from rnntui.util.paths import cache_dir, data_dir

CATALOGUE = (shipped_dir("corpora") or Path("corpora")) / "catalogue.toml"


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    url: str
    sha256: str
    licence: str
    description: str
    bytes: int | None = None
    chars: int | None = None
    encoding: str = "utf-8"
    homepage: str = ""

    @property
    def path(self) -> Path:
        """Where the verified download lives (it may not exist yet)."""
        return downloads_dir() / f"{self.name}.txt"

    @property
    def downloaded(self) -> bool:
        return self.path.is_file()


def catalogue(path: Path | None = None) -> dict[str, CatalogueEntry]:
    path = path or CATALOGUE
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return {name: CatalogueEntry(name=name, **fields) for name, fields in data.items()}
    except (tomllib.TOMLDecodeError, TypeError) as e:
        raise DataError(f"{path}: the corpus catalogue is malformed ({e})") from None


def catalogue_entry(name: str) -> CatalogueEntry:
    entries = catalogue()
    if name not in entries:
        raise DataError(f"no corpus named {name!r} in the catalogue; it has: {', '.join(sorted(entries)) or 'none'}")
    return entries[name]


def downloads_dir() -> Path:
    return cache_dir() / "corpora"


def add_command(name: str) -> str:
    return f"rnntui corpora add {name} PATH"


# -- corpora registered by hand ----------------------------------------------------------------------------------


def user_corpora_file() -> Path:
    return data_dir() / "corpora.json"


def user_corpora() -> dict[str, dict]:
    """name -> {"path": absolute path, "encoding": ..., "added": date}: files and directories added by hand."""
    path = user_corpora_file()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is unreadable ({e}); fix or remove it") from None
    return {name: entry for name, entry in data.items() if isinstance(entry, dict) and "path" in entry}


def save_user_corpora(entries: dict[str, dict]) -> None:
    write_json(user_corpora_file(), entries)
