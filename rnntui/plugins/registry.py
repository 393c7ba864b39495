"""The registry of cells and corpora that the rest of rnntui uses, built by running each plugin's hooks one plugin
at a time and checking what it registers.

Isolation: a plugin that fails to import or whose hook raises is recorded (``PluginInfo.errors``, logged on the
``rnntui.plugins`` logger, which prints to stderr when nothing else handles it) and skipped. Each cell is checked
when registered (``validate_cell``: a tiny forward and backward pass), each corpus becomes an
``rnntui.corpora.Corpus`` (``as_corpus``); one that fails is reported and not offered. A registered name already
taken is refused with a message naming both plugins.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy

from rnntui import __version__, hookspecs
from rnntui.corpora.corpus import Corpus
from rnntui.plugins.contract import CellValidationError, as_corpus, plugin_traceback
from rnntui.plugins.discovery import (
    BUILT_IN, BUNDLED, ENV_DIR_ARGS, ENV_DISABLED, ENV_LOAD, ENV_PATH, find_plugins, log,
)
from rnntui.util.paths import config_dir

HOOKS = (("register_cells", "cell"), ("register_corpora", "corpus"))


@dataclass
class PluginError:
    """One thing that went wrong with a plugin. ``stage``: import, hook, validation, name clash, or run."""

    stage: str
    message: str
    traceback: str = ""
    item: str = ""  # the cell or corpus concerned, if any

    def __str__(self) -> str:
        return self.message


@dataclass
class PluginInfo:
    name: str
    version: str
    source: str  # "built-in", "bundled", "entry point", "directory"
    location: str = ""  # module, file or distribution
    cells: list[str] = field(default_factory=list)
    corpora: list[str] = field(default_factory=list)
    errors: list[PluginError] = field(default_factory=list)
    loaded: bool = True  # False: found but not loaded (deny-list, allow-list) or failed before its hooks ran
    note: str = ""  # why it was not loaded

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Registry:
    cells: dict[str, type] = field(default_factory=dict)  # name -> cell class, as the engine uses it (as_cell)
    corpora: dict[str, Corpus] = field(default_factory=dict)  # name -> Corpus
    owners: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> plugin key in .plugins
    plugins: dict[str, PluginInfo] = field(default_factory=dict)  # in loading order
    rejected: dict[tuple[str, str], tuple[str, PluginError]] = field(default_factory=dict)  # (kind, name) -> ...
    notes: list[str] = field(default_factory=list)  # e.g. an allow-list name that matches nothing

    def cell(self, name: str) -> type:
        try:
            return self.cells[name]
        except KeyError:
            pass
        if ("cell", name) in self.rejected:
            plugin, error = self.rejected[("cell", name)]
            reason = error.message.splitlines()[0].removeprefix(f"cell {name!r}: ").removesuffix(" (not offered)")
            raise LookupError(f"cell {name!r} of plugin {plugin!r} is not offered: {reason} "
                              "(`rnntui plugins` shows the details)") from None
        raise LookupError(f"no cell named {name!r}; choose one of: {', '.join(sorted(self.cells))} "
                          "(`rnntui cells` describes them)") from None

    def corpus(self, name: str) -> Corpus:
        try:
            return self.corpora[name]
        except KeyError:
            raise LookupError(
                f"no corpus named {name!r} and no such file; choose one of: {', '.join(sorted(self.corpora))}"
            ) from None

    def plugin_of(self, kind: str, name: str) -> PluginInfo | None:
        key = self.owners.get((kind, name))
        return self.plugins.get(key) if key is not None else None

    def label(self, kind: str, name: str) -> str:
        """E.g. "cell 'mgu' of plugin 'mgu' (bundled, /…/plugins/mgu.py)" — for error messages."""
        info = self.plugin_of(kind, name)
        if info is None:
            return f"{kind} {name!r}"
        if info.source == BUILT_IN:
            return f"{kind} {name!r} (built-in)"
        version = f" {info.version}" if info.version else ""
        return f"{kind} {name!r} of plugin {info.name!r}{version} ({info.source}, {info.location})"

    def failures(self) -> list[tuple[PluginInfo, PluginError]]:
        return [(info, error) for info in self.plugins.values() for error in info.errors]

    def to_json(self) -> list[dict[str, Any]]:
        return [info.to_json() for info in self.plugins.values()]


class _Builder:
    """Fills a Registry: imports each plugin, runs its hooks, checks and records what it registers."""

    def __init__(self, registry: Registry, check_cell: Callable[[Any], type]):
        self.registry = registry
        self.check_cell = check_cell
        self.pm = pluggy.PluginManager("rnntui")
        self.pm.add_hookspecs(hookspecs)

    def record(self, info: PluginInfo) -> str:
        key, n = info.name, 1
        while key in self.registry.plugins:
            n += 1
            key = f"{info.name} ({n})"
        self.registry.plugins[key] = info
        return key

    def fail(self, info: PluginInfo, stage: str, message: str, tb: str = "", item: str = "") -> PluginError:
        error = PluginError(stage, message, tb, item)
        info.errors.append(error)
        where = f" ({info.source}, {info.location})" if info.location else f" ({info.source})"
        log.warning("rnntui: plugin %r%s: %s%s", info.name, where, message, f"\n{tb.rstrip()}" if tb else "")
        return error

    def skip(self, info: PluginInfo, note: str) -> None:
        info.loaded, info.note = False, note
        self.record(info)

    def load(self, info: PluginInfo, loader: Callable[[], object]) -> None:
        """Import the plugin (``loader()`` returns the module or object), then run its hooks."""
        key = self.record(info)
        taken = next((other for k, other in self.registry.plugins.items()
                      if k != key and other.name == info.name and other.loaded), None)
        if taken is not None:
            info.loaded = False
            self.fail(info, "name clash", f"plugin name {info.name!r} is already taken by the {taken.source} "
                      f"plugin at {taken.location}; this one is skipped")
            return
        try:
            plugin = loader()
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            info.loaded = False
            self.fail(info, "import", f"failed to import: {type(e).__name__}: {e}", plugin_traceback())
            return
        if not info.version:  # a single-file plugin's own __version__; the gallery's default is rnntui's
            info.version = str(getattr(plugin, "__version__", "") or (__version__ if info.source == BUNDLED else ""))
        self.run_hooks(key, info, plugin)

    def run_hooks(self, key: str, info: PluginInfo, plugin: object) -> None:
        try:
            self.pm.register(plugin, name=key)
            self.pm.check_pending()
        except Exception as e:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            info.loaded = False
            self.fail(info, "hook", f"{type(e).__name__}: {e} (the hooks are: "
                      f"{', '.join(h for h, _ in HOOKS)})", plugin_traceback())
            return
        for hook_name, kind in HOOKS:
            impls = [impl for impl in getattr(self.pm.hook, hook_name).get_hookimpls() if impl.plugin is plugin]
            if not impls and callable(getattr(plugin, hook_name, None)):
                self.fail(info, "hook", f"{hook_name} is not decorated with @hookimpl (from rnntui import "
                          "hookimpl), so it was not called")
            for impl in impls:
                items: list[Any] = []

                def register(obj: Any) -> None:
                    items.append(obj)

                try:
                    impl.function(*[{"register": register}[arg] for arg in impl.argnames])
                except Exception as e:
                    self.fail(info, "hook", f"{hook_name} raised {type(e).__name__}: {e}; nothing it registered "
                              "is offered", plugin_traceback())
                    continue
                for obj in items:
                    self.add(key, info, kind, obj)

    def add(self, key: str, info: PluginInfo, kind: str, obj: Any) -> None:
        registry = self.registry
        table: dict[str, Any] = registry.cells if kind == "cell" else registry.corpora
        name = getattr(obj, "name", None)
        label = name if isinstance(name, str) else repr(obj)
        if isinstance(name, str) and name in table:
            other = registry.plugins[registry.owners[(kind, name)]]
            self.fail(info, "name clash", f"{kind} name {name!r} is already registered by plugin {other.name!r} "
                      f"({other.source}); the one from plugin {info.name!r} is not offered", item=name)
            return
        try:
            obj = self.check_cell(obj) if kind == "cell" else as_corpus(obj)
        except (CellValidationError, ValueError) as e:
            tb = getattr(e, "traceback", "")
            message = str(e) if str(e).startswith(f"{kind} {label!r}") else f"{kind} {label!r}: {e}"
            error = self.fail(info, "validation", f"{message} (not offered)", tb, item=label)
            if isinstance(name, str):
                registry.rejected[(kind, name)] = (info.name, error)
            return
        table[name] = obj
        registry.owners[(kind, name)] = key
        (info.cells if kind == "cell" else info.corpora).append(name)


def build_registry(plugins_dirs: Iterable[str | os.PathLike] = (), *, bundled: bool = True) -> Registry:
    """Find every plugin (``discovery.find_plugins``), load it and run its hooks into a new Registry.
    ``plugins_dirs`` are loaded as ``--plugins-dir`` ones are, after those already given with ``--plugins-dir``."""
    from rnntui.plugins.cell_check import validate_cell_cached  # lazy: it imports torch (parsing options must not)

    found, notes = find_plugins(plugins_dirs, bundled=bundled)
    registry = Registry(notes=notes)
    builder = _Builder(registry, validate_cell_cached)
    for plugin in found:
        info = PluginInfo(plugin.name, plugin.version, plugin.source, plugin.location)
        if plugin.skipped:
            builder.skip(info, plugin.skipped)
        else:
            builder.load(info, plugin.load)
    return registry


_cache: tuple[tuple, Registry] | None = None


def _cache_key(plugins_dirs: tuple) -> tuple:
    env = tuple(os.environ.get(k) for k in (ENV_LOAD, ENV_DISABLED, ENV_PATH, ENV_DIR_ARGS))
    load = os.environ.get(ENV_LOAD)
    home = str(config_dir()) if load is None or load.strip() else None  # the user directory, when it loads
    return plugins_dirs, env, home


def get_registry(plugins_dirs: Iterable[str | os.PathLike] = ()) -> Registry:
    """The registry of this process, built on first use and rebuilt when the plugin settings (the environment
    variables of ``discovery``, ``--plugins-dir``, ``plugins_dirs``) change. ``reset_registry()`` forces a
    rebuild."""
    global _cache
    key = _cache_key(tuple(str(d) for d in plugins_dirs))
    if _cache is None or _cache[0] != key:
        _cache = (key, build_registry(plugins_dirs))
    return _cache[1]


def reset_registry() -> None:
    """Forget this process's registry: the next ``get_registry()`` builds a new one (after plugin files or the
    user's corpora changed)."""
    global _cache
    _cache = None


def cell_label(name: str) -> str:
    """E.g. "cell 'mgu' of plugin 'mgu' 0.1.0 (bundled, …/plugins/mgu.py)", for messages about a run's cell."""
    try:
        return get_registry().label("cell", name)
    except Exception:
        return f"cell {name!r}"
