"""The plugin manager: loads plugins through pluggy and keeps the registry of cells and corpora they provide.

Built-in cells and corpora are plugins too, registered through the same hooks as any third party's.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

import pluggy

from rnntui import __version__, hookspecs


@dataclass
class PluginInfo:
    name: str
    version: str
    source: str  # "built-in", "bundled", "entry point", "directory"
    cells: list[str] = field(default_factory=list)
    corpora: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Registry:
    cells: dict[str, Any] = field(default_factory=dict)  # name -> Cell subclass
    corpora: dict[str, Any] = field(default_factory=dict)  # name -> Corpus
    owners: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> plugin name
    plugins: dict[str, PluginInfo] = field(default_factory=dict)

    def cell(self, name: str):
        try:
            return self.cells[name]
        except KeyError:
            raise LookupError(f"no cell named {name!r}; choose one of: {', '.join(sorted(self.cells))}") from None

    def corpus(self, name: str):
        try:
            return self.corpora[name]
        except KeyError:
            raise LookupError(
                f"no corpus named {name!r} and no such file; choose one of: {', '.join(sorted(self.corpora))}"
            ) from None


def _builtin_modules() -> list[ModuleType]:
    from rnntui.core import cells, corpora

    return [cells, corpora]


def _collect(registry: Registry, pm: pluggy.PluginManager, plugin: object, info: PluginInfo) -> None:
    """Run one plugin's hooks, recording what it registers; a failure is recorded and the plugin skipped."""

    def add(kind: str, obj: Any, name: str) -> None:
        table = registry.cells if kind == "cell" else registry.corpora
        if not name:
            raise ValueError(f"a {kind} needs a name")
        if name in table:
            other = registry.owners[(kind, name)]
            raise ValueError(f"{kind} name {name!r} is already registered by plugin {other!r}")
        table[name] = obj
        registry.owners[(kind, name)] = info.name
        (info.cells if kind == "cell" else info.corpora).append(name)

    for hook_name, kind in (("register_cells", "cell"), ("register_corpora", "corpus")):
        impl = getattr(plugin, hook_name, None)
        if impl is None:
            continue
        try:
            impl(lambda obj, kind=kind: add(kind, obj, getattr(obj, "name", "")))
        except Exception:
            info.errors.append(traceback.format_exc())
    registry.plugins[info.name] = info


@cache
def get_registry() -> Registry:
    pm = pluggy.PluginManager("rnntui")
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    for module in _builtin_modules():
        name = module.__name__.rsplit(".", 1)[-1]
        pm.register(module, name=name)
        _collect(registry, pm, module, PluginInfo(name, __version__, "built-in"))
    return registry
