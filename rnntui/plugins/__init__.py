"""The plugin manager: finds plugins (``discovery``), runs their hooks one plugin at a time into the registry of
cells and corpora that the rest of rnntui uses (``registry``), and checks what they register (``contract``;
``cell_check`` for cells). How to write a plugin: README.md, "Write a cell plugin"; the hooks: rnntui.hookspecs.

Importing this package does not import torch: ``validate_cell`` and ``as_cell`` load ``cell_check`` (and torch)
when first used, and building a registry imports torch for the built-in cells.
"""

from __future__ import annotations

from typing import Any

from rnntui.plugins.contract import (
    NAME_PATTERN, CellValidationError, CorpusValidationError, as_corpus, description_of, hyperparameters_of,
    plugin_traceback,
)
from rnntui.plugins.discovery import (
    BUILT_IN, BUNDLED, DIRECTORY, ENTRY_POINT, ENTRY_POINT_GROUP, ENV_DIR_ARGS, ENV_DISABLED, ENV_LOAD, ENV_PATH,
    FoundPlugin, add_plugins_dirs, bundled_dir, find_plugins, load_file, plugin_files, plugins_dirs_from_env,
    user_plugins_dir,
)
from rnntui.plugins.registry import (
    HOOKS, PluginError, PluginInfo, Registry, build_registry, cell_label, get_registry, reset_registry,
)

_CELL_CHECK = ("as_cell", "validate_cell", "CHECK_BATCH", "CHECK_STEPS", "CHECK_INPUT", "CHECK_HIDDEN")


def __getattr__(name: str) -> Any:
    """``from rnntui.plugins import validate_cell`` (or as_cell) loads the cell check, and torch, only then."""
    if name in _CELL_CHECK:
        from rnntui.plugins import cell_check  # lazy: it imports torch, which listing plugins must not

        return getattr(cell_check, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUILT_IN", "BUNDLED", "DIRECTORY", "ENTRY_POINT", "ENTRY_POINT_GROUP", "ENV_DIR_ARGS", "ENV_DISABLED",
    "ENV_LOAD", "ENV_PATH", "HOOKS", "NAME_PATTERN", "CellValidationError", "CorpusValidationError", "FoundPlugin",
    "PluginError", "PluginInfo", "Registry", "add_plugins_dirs", "as_corpus", "build_registry", "bundled_dir",
    "cell_label", "description_of", "find_plugins", "get_registry", "hyperparameters_of", "load_file",
    "plugin_files", "plugin_traceback", "plugins_dirs_from_env", "reset_registry", "user_plugins_dir",
    *_CELL_CHECK,
]
