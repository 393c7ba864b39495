"""Finding plugins: where each comes from, and which of them the allow- and deny-lists let load.

The sources, in loading order (README.md, "Write a cell plugin", is the guide for plugin authors):

1. built-in: ``rnntui.core.cells`` and ``rnntui.corpora.builtin`` register the built-ins through the same hooks;
2. bundled: the gallery, one file per plugin, in ``plugins/`` of a checkout (``<prefix>/share/rnntui/plugins`` in
   an installed copy);
3. entry point: installed distributions with entry points in the group ``rnntui``;
4. directory: single ``.py`` files in ``--plugins-dir DIR``, in the directories of ``RNNTUI_PLUGINS_PATH``
   (``os.pathsep``-separated) and in the user directory. Files named ``_*`` or ``test_*`` are not plugins.

``RNNTUI_LOAD_PLUGINS`` is an allow-list (comma-separated plugin or distribution names) for what is installed on
the machine: entry points, ``RNNTUI_PLUGINS_PATH`` and the user directory; set but empty, none of them load (the
tests do this). ``--plugins-dir`` and the gallery are not affected by it. ``RNNTUI_DISABLED_PLUGINS`` is a
deny-list for every plugin except the built-ins. Names compare with ``-``, ``_`` and ``.`` equivalent.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from rnntui import __version__
from rnntui.shipped import shipped_dir
from rnntui.util.paths import config_dir

log = logging.getLogger("rnntui.plugins")  # one logger for the package: `rnntui plugins` silences it by this name

ENTRY_POINT_GROUP = "rnntui"
ENV_LOAD = "RNNTUI_LOAD_PLUGINS"  # allow-list; set and empty = none
ENV_DISABLED = "RNNTUI_DISABLED_PLUGINS"  # deny-list
ENV_PATH = "RNNTUI_PLUGINS_PATH"  # plugin directories, os.pathsep-separated
# Where --plugins-dir puts its directories, so a run's child process (multiprocessing "spawn") loads them too.
ENV_DIR_ARGS = "RNNTUI_PLUGINS_DIR_ARGS"

BUILT_IN, BUNDLED, ENTRY_POINT, DIRECTORY = "built-in", "bundled", "entry point", "directory"


@dataclass
class FoundPlugin:
    """A plugin found and not imported yet."""

    name: str
    version: str  # "" when only the plugin itself can tell (its __version__, read once it is imported)
    source: str  # BUILT_IN, BUNDLED, ENTRY_POINT or DIRECTORY
    location: str  # module, file or distribution
    load: Callable[[], object]  # imports it; returns the module (or object) with the @hookimpl functions
    skipped: str = ""  # why it is not to be loaded (deny-list, allow-list); "" = load it


def bundled_dir() -> Path | None:
    """The gallery: ``plugins/`` in a checkout, ``<prefix>/share/rnntui/plugins`` in a normal install."""
    return shipped_dir("plugins")


def user_plugins_dir() -> Path:
    """``plugins/`` in the user config directory (``$RNNTUI_HOME/plugins`` when RNNTUI_HOME is set)."""
    return config_dir() / "plugins"


def add_plugins_dirs(dirs: Iterable[str | os.PathLike]) -> None:
    """What ``--plugins-dir`` does: load the plugin files in these directories too, in this process and in the
    processes it starts (the directories travel in an environment variable, which ``get_registry`` watches)."""
    current = plugins_dirs_from_env()
    for d in dirs:
        d = Path(d).expanduser().resolve()
        if d not in current:
            current.append(d)
    os.environ[ENV_DIR_ARGS] = os.pathsep.join(map(str, current))


def plugins_dirs_from_env() -> list[Path]:
    """The directories given with ``--plugins-dir`` in this process or the one that started it."""
    return [Path(d) for d in os.environ.get(ENV_DIR_ARGS, "").split(os.pathsep) if d]


def plugin_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.py")
                  if p.is_file() and not p.name.startswith(("_", ".", "test_")) and not p.stem.endswith("_test"))


_modules: dict[tuple[str, int, int], ModuleType] = {}  # a file loaded once per process while it is unchanged


def load_file(path: Path) -> ModuleType:
    """Import one plugin file as a module (named ``rnntui_plugin_<stem>``, so it shadows nothing)."""
    path = path.resolve()
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key in _modules:
        return _modules[key]
    module_name = "rnntui_plugin_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(module_name)
    sys.modules[module_name] = module  # dataclasses and typing look the module up while it executes
    try:
        spec.loader.exec_module(module)
    except BaseException:
        if previous is not None:
            sys.modules[module_name] = previous
        else:
            sys.modules.pop(module_name, None)
        raise
    _modules[key] = module
    return module


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name_list(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {_normalize(n) for n in value.split(",") if n.strip()}


class _Choice:
    """The allow-list and the deny-list, as set when the search starts."""

    def __init__(self) -> None:
        self.allow = _name_list(os.environ.get(ENV_LOAD))
        self.deny = _name_list(os.environ.get(ENV_DISABLED)) or set()
        self.matched: set[str] = set()

    def apply(self, plugin: FoundPlugin, names: set[str], gated: bool) -> FoundPlugin:
        """Mark ``plugin`` skipped if the lists say so. ``gated``: installed on the machine (the allow-list
        applies); ``names``: the names the lists may use for it."""
        names = {_normalize(n) for n in names if n}
        if names & self.deny:
            plugin.skipped = f"disabled by {ENV_DISABLED}"
        elif gated and self.allow is not None:
            if names & self.allow:
                self.matched.update(names & self.allow)
            else:
                plugin.skipped = f"not in {ENV_LOAD}"
        return plugin

    def loads_installed(self) -> bool:
        return self.allow is None or bool(self.allow)

    def unmatched(self) -> list[str]:
        return [f"{ENV_LOAD} names {name!r}, but no installed plugin has that name"
                for name in sorted((self.allow or set()) - self.matched)]


def _core_cells() -> ModuleType:
    from rnntui.core import cells  # lazy: it imports torch, which listing plugins or parsing options must not

    return cells


def _builtin_corpora() -> ModuleType:
    from rnntui.corpora import builtin  # lazy: reading text needs numpy and torch, which listing plugins must not

    return builtin


def find_plugins(plugins_dirs: Iterable[str | os.PathLike] = (), *,
                 bundled: bool = True) -> tuple[list[FoundPlugin], list[str]]:
    """Every plugin, in loading order, with the allow- and deny-lists applied; and notes for the user (a
    ``--plugins-dir`` that does not exist, an allow-list name that matches nothing). ``plugins_dirs`` are searched
    as ``--plugins-dir`` ones are, after those already given with ``--plugins-dir``."""
    choice, notes = _Choice(), []
    found = [FoundPlugin("rnntui.cells", __version__, BUILT_IN, "rnntui.core.cells", _core_cells),
             FoundPlugin("rnntui.corpora", __version__, BUILT_IN, "rnntui.corpora.builtin", _builtin_corpora)]
    gallery = bundled_dir() if bundled else None
    for path in plugin_files(gallery) if gallery else []:
        found.append(choice.apply(FoundPlugin(path.stem, "", BUNDLED, str(path), functools.partial(load_file, path)),
                                  {path.stem}, gated=False))
    found += _entry_points(choice, notes)
    found += _directories([*plugins_dirs_from_env(), *map(Path, plugins_dirs)], choice, notes)
    return found, [*notes, *choice.unmatched()]


def _entry_points(choice: _Choice, notes: list[str]) -> Iterator[FoundPlugin]:
    try:
        entry_points = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception as e:  # broken metadata of some installed distribution
        notes.append(f"could not list the installed plugins: {type(e).__name__}: {e}")
        log.warning("rnntui: could not list the installed plugins: %s: %s", type(e).__name__, e)
        return
    seen: set[tuple[str, str]] = set()
    for ep in entry_points:
        if (ep.name, ep.value) in seen:
            continue
        seen.add((ep.name, ep.value))
        dist = getattr(ep, "dist", None)
        dist_name = (dist.metadata["Name"] or "") if dist is not None else ""
        version = dist.version if dist is not None else ""
        plugin = FoundPlugin(ep.name, version, ENTRY_POINT, f"{dist_name or '?'} ({ep.value})", ep.load)
        yield choice.apply(plugin, {ep.name, dist_name}, gated=True)


def _directories(explicit: list[Path], choice: _Choice, notes: list[str]) -> Iterator[FoundPlugin]:
    """The files of ``--plugins-dir`` directories (``explicit``), then of RNNTUI_PLUGINS_PATH and the user's."""
    configured = [Path(d) for d in os.environ.get(ENV_PATH, "").split(os.pathsep) if d]
    done: set[Path] = set()
    for directory, gated in [*((d, False) for d in explicit), *((d, True) for d in configured),
                             (user_plugins_dir(), True)]:
        directory = directory.expanduser().resolve()
        if directory in done or (gated and not choice.loads_installed()):
            continue
        done.add(directory)
        if not gated and not directory.is_dir():
            notes.append(f"--plugins-dir {directory}: no such directory")
            log.warning("rnntui: --plugins-dir %s: no such directory", directory)
            continue
        for path in plugin_files(directory):
            plugin = FoundPlugin(path.stem, "", DIRECTORY, str(path), functools.partial(load_file, path))
            yield choice.apply(plugin, {path.stem}, gated=gated)
