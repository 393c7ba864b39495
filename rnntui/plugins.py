"""The plugin manager: finds plugins, runs their hooks one plugin at a time, checks what they register, and keeps
the registry of cells and corpora that the rest of rnntui uses.

Sources, in this order (a plugin is a module, or any object, with ``@hookimpl`` functions; see rnntui.hookspecs):

1. built-in: ``rnntui.core.cells`` and ``rnntui.corpora`` register the built-ins through the same hooks;
2. bundled: the gallery, one file per plugin, in ``plugins/`` of a checkout (in an installed copy:
   ``<prefix>/share/rnntui/plugins``);
3. entry point: installed distributions with entry points in the group ``rnntui``;
4. directory: single ``.py`` files in ``--plugins-dir DIR`` (any command; repeatable), in the directories of
   ``RNNTUI_PLUGINS_PATH`` (separated by ``os.pathsep``) and in ``plugins/`` under the user config directory
   (``$RNNTUI_HOME/plugins`` when ``RNNTUI_HOME`` is set). Files named ``_*`` or ``test_*`` are not plugins.

``RNNTUI_LOAD_PLUGINS`` is an allow-list (comma-separated plugin or distribution names) for what is installed on
the machine: entry points, ``RNNTUI_PLUGINS_PATH`` and the user directory; set but empty, none of them load (the
tests do this). ``--plugins-dir`` and the bundled gallery are not affected by it. ``RNNTUI_DISABLED_PLUGINS`` is a
deny-list that applies to every plugin except the built-ins.

Isolation: a plugin that fails to import or whose hook raises is recorded (``PluginInfo.errors``, logged on the
``rnntui.plugins`` logger, which prints to stderr when nothing else handles it) and skipped. Each cell is checked
when registered (``validate_cell``: a tiny forward and backward pass); a cell that fails is reported and not
offered. A registered name already taken is refused with a message naming both plugins.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from rnntui import __version__, hookspecs
from rnntui.shipped import shipped_dir

log = logging.getLogger("rnntui.plugins")

ENTRY_POINT_GROUP = "rnntui"
ENV_LOAD = "RNNTUI_LOAD_PLUGINS"  # allow-list; set and empty = none
ENV_DISABLED = "RNNTUI_DISABLED_PLUGINS"  # deny-list
ENV_PATH = "RNNTUI_PLUGINS_PATH"  # plugin directories, os.pathsep-separated
# Where --plugins-dir puts its directories, so a run's child process (multiprocessing "spawn") loads them too.
ENV_DIR_ARGS = "RNNTUI_PLUGINS_DIR_ARGS"

BUILT_IN, BUNDLED, ENTRY_POINT, DIRECTORY = "built-in", "bundled", "entry point", "directory"
HOOKS = (("register_cells", "cell"), ("register_corpora", "corpus"))
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")

# The tiny check every cell passes when registered: batch 2, 3 time steps, input size != hidden size.
CHECK_BATCH, CHECK_STEPS, CHECK_INPUT, CHECK_HIDDEN = 2, 3, 5, 7


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


class CellValidationError(Exception):
    """A registered cell failed its check; ``traceback`` holds the cell's own traceback when it raised."""

    def __init__(self, message: str, tb: str = ""):
        super().__init__(message)
        self.traceback = tb


@dataclass
class Registry:
    cells: dict[str, Any] = field(default_factory=dict)  # name -> Cell subclass
    corpora: dict[str, Any] = field(default_factory=dict)  # name -> Corpus
    owners: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> plugin key in .plugins
    plugins: dict[str, PluginInfo] = field(default_factory=dict)  # in loading order
    rejected: dict[tuple[str, str], tuple[str, PluginError]] = field(default_factory=dict)  # (kind, name) -> ...
    notes: list[str] = field(default_factory=list)  # e.g. an allow-list name that matches nothing

    def cell(self, name: str):
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

    def corpus(self, name: str):
        try:
            return self.corpora[name]
        except KeyError:
            raise LookupError(
                f"no corpus named {name!r} and no such file; choose one of: {', '.join(sorted(self.corpora))}"
            ) from None

    def plugin_of(self, kind: str, name: str) -> PluginInfo | None:
        key = self.owners.get((kind, name))
        return self.plugins.get(key) if key is not None else None

    def describe(self, kind: str, name: str) -> str:
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


# -- the cell contract: adapting a plain nn.Module and checking it ------------------------------------------------


def hyperparameters_of(cls: type) -> dict[str, Any]:
    """A cell's options and their defaults: its ``hyperparameters``, else the keyword arguments of ``__init__``
    after input_size and hidden_size."""
    declared = getattr(cls, "hyperparameters", None)
    if isinstance(declared, dict) and declared:
        return dict(declared)
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[3:]
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params
            if p.default is not inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def description_of(cls: type) -> str:
    """A cell's docstring, with the lines of each prose paragraph joined (indented blocks, such as equations,
    keep their lines)."""
    if not cls.__doc__:
        return ""
    paragraphs = []
    for block in re.split(r"\n\s*\n", inspect.cleandoc(cls.__doc__)):
        lines = block.splitlines()
        paragraphs.append(block if any(line.startswith((" ", "\t")) for line in lines) else " ".join(lines))
    return "\n\n".join(paragraphs)


def as_cell(cls: type) -> type:
    """A plugin's cell class as the engine uses it. A subclass of rnntui.core.cells.Cell is used as it is; a plain
    ``torch.nn.Module`` with ``name`` and ``step`` (what a plugin that imports only torch writes) gets a subclass
    that fills in what it leaves out: ``project_input`` (identity), ``forward_sequence`` (none: the engine's step
    loop), ``initial_state`` (zeros of (batch, hidden_size)), ``hyperparameters`` (from ``__init__``), and the
    ``input_size``/``hidden_size``/``options`` attributes."""
    from rnntui.core.cells import Cell

    if issubclass(cls, Cell) or getattr(cls, "plugin_class", None) is not None:
        return cls
    namespace: dict[str, Any] = {"__doc__": cls.__doc__, "__module__": cls.__module__,
                                 "__qualname__": cls.__qualname__, "plugin_class": cls,
                                 "hyperparameters": hyperparameters_of(cls)}
    if getattr(cls, "project_input", None) is None:
        namespace["project_input"] = Cell.project_input
    if not hasattr(cls, "forward_sequence"):
        namespace["forward_sequence"] = None
    if getattr(cls, "initial_state", None) is None:
        namespace["initial_state"] = Cell.initial_state
    user_init = cls.__init__

    def __init__(self, input_size: int, hidden_size: int, **options: Any) -> None:
        user_init(self, input_size, hidden_size, **options)
        for attr, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("options", {**type(self).hyperparameters, **options})):
            if not hasattr(self, attr):
                object.__setattr__(self, attr, value)

    namespace["__init__"] = __init__
    return type(cls)(cls.__name__, (cls,), namespace)


def plugin_traceback() -> str:
    """The traceback of the exception being handled, without the plugin manager's own frames in front of the
    plugin's (and importlib's), so it starts where the plugin's code does."""
    etype, value, tb = sys.exc_info()
    if etype is None:
        return ""
    start = tb
    while start is not None and (start.tb_frame.f_code.co_filename == __file__
                                 or start.tb_frame.f_code.co_filename.startswith("<frozen importlib")):
        start = start.tb_next
    if start is None and issubclass(etype, SyntaxError):  # the file and line are in the error itself
        return "".join(traceback.format_exception(etype, value, None))
    return "".join(traceback.format_exception(etype, value, start if start is not None else tb))


def _fail(message: str) -> CellValidationError:
    return CellValidationError(message, plugin_traceback())


def validate_cell(cls: Any) -> type:
    """Check a cell class the way registration does and return the class the engine will use (see ``as_cell``).
    Raises CellValidationError with a message that says what is wrong. Use it in a plugin's own tests."""
    import torch

    from rnntui.core.cells import Cell

    if not isinstance(cls, type):
        raise CellValidationError(f"register() takes a cell class, not {type(cls).__name__!r} object {cls!r}")
    if not issubclass(cls, torch.nn.Module):
        raise CellValidationError(f"{cls.__name__} must subclass torch.nn.Module")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise CellValidationError(f"{cls.__name__} needs a class attribute `name`, a word such as 'my-cell' "
                                  f"(letters, digits, '-', '_', '.'), got {name!r}")
    step = getattr(cls, "step", None)
    if not callable(step) or step is Cell.step:
        raise CellValidationError(f"cell {name!r} ({cls.__name__}) has no step(x_t, state) method")
    cell_cls = as_cell(cls)
    with torch.device("cpu"), torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(0)
        _check_cell(cell_cls, name)
    return cell_cls


def _check_cell(cell_cls: type, name: str) -> None:
    import torch

    B, T, I, H = CHECK_BATCH, CHECK_STEPS, CHECK_INPUT, CHECK_HIDDEN
    what = f"cell {name!r}"
    try:
        cell = cell_cls(I, H)
    except Exception:
        raise _fail(f"{what} cannot be built: {cell_cls.__name__}(input_size={I}, hidden_size={H}) raised "
                    f"{_last_error()}") from None
    params = [(n, p) for n, p in cell.named_parameters() if p.requires_grad]
    if not params:
        raise CellValidationError(f"{what} has no trainable parameters")
    x = torch.randn(B, T, I)

    def initial_state():
        try:
            state = cell.initial_state(B)
        except Exception:
            raise _fail(f"{what}: initial_state({B}) raised {_last_error()}") from None
        _check_state(state, None, f"{what}: initial_state({B})", B)
        return state

    def run(path: str, fn, xs, state):
        try:
            return fn(xs, state)
        except CellValidationError:
            raise
        except Exception:
            raise _fail(f"{what}: the {path} path raised {_last_error()}") from None

    def steps(xs, state):
        projected = cell.project_input(xs)
        outputs = []
        for t in range(xs.shape[1]):
            before = [s.detach().clone() for s in state]
            out = cell.step(projected[:, t], state)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise CellValidationError(f"{what}: step(x_t, state) must return (h_t, new_state), got "
                                          f"{type(out).__name__}")
            h, new_state = out
            if not isinstance(h, torch.Tensor) or tuple(h.shape) != (B, H):
                raise CellValidationError(f"{what}: step returned an output of shape {_shape(h)}; expected "
                                          f"{(B, H)} = (batch, hidden_size)")
            _check_state(new_state, state, f"{what}: the state returned by step", B)
            if any(not torch.equal(s, b) for s, b in zip(state, before)):
                raise CellValidationError(f"{what}: step changed its input state in place; return new tensors")
            outputs.append(h)
            state = new_state
        return torch.stack(outputs, dim=1), state

    paths = [("step", steps)]
    if cell.forward_sequence is not None:
        def sequence(xs, state):
            out = cell.forward_sequence(xs, state)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise CellValidationError(f"{what}: forward_sequence(x, state) must return (h, new_state)")
            h, new_state = out
            if not isinstance(h, torch.Tensor) or tuple(h.shape) != (B, xs.shape[1], H):
                raise CellValidationError(f"{what}: forward_sequence returned an output of shape {_shape(h)}; "
                                          f"expected {(B, xs.shape[1], H)} = (batch, time, hidden_size)")
            _check_state(new_state, state, f"{what}: the state returned by forward_sequence", B)
            return h, new_state

        paths.append(("sequence", sequence))

    results = {}
    for path, fn in paths:
        state0 = initial_state()
        h, state = run(path, fn, x, state0)
        if not torch.isfinite(h).all() or not all(torch.isfinite(s).all() for s in state):
            raise CellValidationError(f"{what}: the {path} path produced NaN or infinite values")
        weights = torch.randn_like(h)
        loss = (h * weights).sum() + sum((s * torch.randn_like(s)).sum() for s in state if s.is_floating_point())
        try:
            grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
        except Exception:
            raise _fail(f"{what}: backward through the {path} path raised {_last_error()}") from None
        missing = [n for (n, _), g in zip(params, grads) if g is None]
        if missing:
            raise CellValidationError(f"{what}: no gradient reaches parameter(s) {', '.join(missing)} through the "
                                      f"{path} path; every parameter must be used")
        bad = [n for (n, _), g in zip(params, grads) if not torch.isfinite(g).all()]
        if bad:
            raise CellValidationError(f"{what}: NaN or infinite gradients for {', '.join(bad)} ({path} path)")
        # state round trip: two chunks with the state carried between them equal one pass
        with torch.no_grad():
            h1, s1 = run(path, fn, x[:, :2], initial_state())
            h2, s2 = run(path, fn, x[:, 2:], s1)
            if not _close(torch.cat([h1, h2], dim=1), h) or not all(_close(a, b) for a, b in zip(s2, state)):
                raise CellValidationError(
                    f"{what}: the state does not round-trip on the {path} path: running 2 steps and then 1 from the "
                    "returned state differs from 3 steps at once (is state kept on the module instead of returned?)")
        results[path] = (h.detach(), [s.detach() for s in state])
    if "sequence" in results:
        (h_step, s_step), (h_seq, s_seq) = results["step"], results["sequence"]
        if not _close(h_seq, h_step) or not all(_close(a, b) for a, b in zip(s_seq, s_step)):
            diff = (h_seq - h_step).abs().max().item()
            raise CellValidationError(f"{what}: forward_sequence and the step loop disagree (max |difference| of "
                                      f"the outputs {diff:.3g}); they must compute the same function")


def _check_state(state: Any, reference: Any, what: str, batch: int) -> None:
    import torch

    if not isinstance(state, tuple) or not state or not all(isinstance(s, torch.Tensor) for s in state):
        raise CellValidationError(f"{what} must be a non-empty tuple of tensors, got {type(state).__name__}")
    if any(s.dim() == 0 or s.shape[0] != batch for s in state):
        raise CellValidationError(f"{what} has shapes {[tuple(s.shape) for s in state]}; each tensor must be "
                                  f"(batch={batch}, ...)")
    if reference is not None and [s.shape for s in state] != [r.shape for r in reference]:
        raise CellValidationError(f"{what} has shapes {[tuple(s.shape) for s in state]}, but the state it was given "
                                  f"has {[tuple(r.shape) for r in reference]}: the state must keep its shape")


def _close(a, b) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-3, atol=1e-4))


def _shape(x: Any) -> Any:
    return tuple(x.shape) if hasattr(x, "shape") else type(x).__name__


def _last_error() -> str:
    e = sys.exc_info()[1]
    return f"{type(e).__name__}: {e}"


_validated: dict[type, tuple[type | None, CellValidationError | None]] = {}  # a class is checked once per process


def _validate_cached(cls: Any) -> type:
    if not isinstance(cls, type):
        return validate_cell(cls)
    if cls not in _validated:
        try:
            _validated[cls] = (validate_cell(cls), None)
        except CellValidationError as e:
            _validated[cls] = (None, e)
    result, error = _validated[cls]
    if error is not None:
        raise error
    return result


def validate_corpus(corpus: Any) -> None:
    name = getattr(corpus, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"a corpus needs a `name`, a word such as 'my-corpus', got {name!r}")
    if not callable(getattr(corpus, "read", None)):
        raise ValueError(f"corpus {name!r} needs a read() that yields its text in chunks")


# -- finding plugins ------------------------------------------------------------------------------------------------


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name_list(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {_normalize(n) for n in value.split(",") if n.strip()}


def bundled_dir() -> Path | None:
    """The gallery: ``plugins/`` in a checkout, ``<prefix>/share/rnntui/plugins`` in a normal install."""
    return shipped_dir("plugins")


def user_plugins_dir() -> Path:
    """``$RNNTUI_HOME/plugins`` if RNNTUI_HOME is set, else ``plugins/`` in the user config directory."""
    if os.environ.get("RNNTUI_HOME"):
        return Path(os.environ["RNNTUI_HOME"]) / "plugins"
    from platformdirs import user_config_dir

    return Path(user_config_dir("rnntui", appauthor=False)) / "plugins"


def add_plugins_dirs(dirs: Iterable[str | os.PathLike]) -> None:
    """What ``--plugins-dir`` does: load the plugin files in these directories too, in this process and in the
    processes it starts (the directories travel in an environment variable)."""
    current = [d for d in os.environ.get(ENV_DIR_ARGS, "").split(os.pathsep) if d]
    for d in dirs:
        d = str(Path(d).expanduser().resolve())
        if d not in current:
            current.append(d)
    os.environ[ENV_DIR_ARGS] = os.pathsep.join(current)
    reset_registry()


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


# -- building the registry ------------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, registry: Registry):
        self.registry = registry
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

    def load(self, info: PluginInfo, loader) -> None:
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
        table = registry.cells if kind == "cell" else registry.corpora
        name = getattr(obj, "name", None)
        label = name if isinstance(name, str) else repr(obj)
        if isinstance(name, str) and name in table:
            other = registry.plugins[registry.owners[(kind, name)]]
            self.fail(info, "name clash", f"{kind} name {name!r} is already registered by plugin {other.name!r} "
                      f"({other.source}); the one from plugin {info.name!r} is not offered", item=name)
            return
        try:
            if kind == "cell":
                obj = _validate_cached(obj)
            else:
                validate_corpus(obj)
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


def plugins_dirs_from_env() -> list[Path]:
    return [Path(d) for d in os.environ.get(ENV_DIR_ARGS, "").split(os.pathsep) if d]


def build_registry(plugins_dirs: Iterable[str | os.PathLike] = (), *, bundled: bool = True) -> Registry:
    """Load every plugin source (see the module docstring) into a new Registry. ``plugins_dirs`` are loaded as
    ``--plugins-dir`` ones are, after those already given with ``--plugins-dir``."""
    registry = Registry()
    builder = _Builder(registry)
    allow = _name_list(os.environ.get(ENV_LOAD))
    deny = _name_list(os.environ.get(ENV_DISABLED)) or set()
    matched: set[str] = set()

    def allowed(info: PluginInfo, names: set[str], gated: bool) -> bool:
        names = {_normalize(n) for n in names if n}
        if names & deny:
            builder.skip(info, f"disabled by {ENV_DISABLED}")
            return False
        if gated and allow is not None:
            if not names & allow:
                builder.skip(info, f"not in {ENV_LOAD}")
                return False
            matched.update(names & allow)
        return True

    from rnntui import corpora
    from rnntui.core import cells

    for name, module in (("rnntui.cells", cells), ("rnntui.corpora", corpora)):
        builder.load(PluginInfo(name, __version__, BUILT_IN, module.__name__), lambda m=module: m)

    gallery = bundled_dir() if bundled else None
    for path in plugin_files(gallery) if gallery else []:
        info = PluginInfo(path.stem, "", BUNDLED, str(path))
        if allowed(info, {path.stem}, gated=False):
            builder.load(info, lambda p=path: load_file(p))

    seen: set[tuple[str, str]] = set()
    try:
        entry_points = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception as e:  # broken metadata of some installed distribution
        entry_points = []
        registry.notes.append(f"could not list the installed plugins: {type(e).__name__}: {e}")
        log.warning("rnntui: could not list the installed plugins: %s: %s", type(e).__name__, e)
    for ep in entry_points:
        if (ep.name, ep.value) in seen:
            continue
        seen.add((ep.name, ep.value))
        dist = getattr(ep, "dist", None)
        dist_name = (dist.metadata["Name"] or "") if dist is not None else ""
        version = dist.version if dist is not None else ""
        info = PluginInfo(ep.name, version, ENTRY_POINT, f"{dist_name or '?'} ({ep.value})")
        if allowed(info, {ep.name, dist_name}, gated=True):
            builder.load(info, ep.load)

    explicit = [*plugins_dirs_from_env(), *(Path(d) for d in plugins_dirs)]
    configured = [Path(d) for d in os.environ.get(ENV_PATH, "").split(os.pathsep) if d]
    done: set[Path] = set()
    for directory, gated in [*((d, False) for d in explicit), *((d, True) for d in configured),
                             (user_plugins_dir(), True)]:
        directory = directory.expanduser().resolve()
        if directory in done or (gated and allow is not None and not allow):
            continue
        done.add(directory)
        if not gated and not directory.is_dir():
            registry.notes.append(f"--plugins-dir {directory}: no such directory")
            log.warning("rnntui: --plugins-dir %s: no such directory", directory)
            continue
        for path in plugin_files(directory):
            info = PluginInfo(path.stem, "", DIRECTORY, str(path))
            if allowed(info, {path.stem}, gated=gated):
                builder.load(info, lambda p=path: load_file(p))

    for name in sorted((allow or set()) - matched):
        registry.notes.append(f"{ENV_LOAD} names {name!r}, but no installed plugin has that name")
    return registry


_cache: tuple[tuple, Registry] | None = None


def _cache_key(plugins_dirs: tuple) -> tuple:
    env = tuple(os.environ.get(k) for k in (ENV_LOAD, ENV_DISABLED, ENV_PATH, ENV_DIR_ARGS))
    load = os.environ.get(ENV_LOAD)
    home = os.environ.get("RNNTUI_HOME") if load is None or load.strip() else None  # only if the user dir loads
    return plugins_dirs, env, home


def get_registry(plugins_dirs: Iterable[str | os.PathLike] = ()) -> Registry:
    """The registry of this process, built on first use and rebuilt when the plugin settings (the environment
    variables above, ``--plugins-dir``, ``plugins_dirs``) change. ``reset_registry()`` forces a rebuild."""
    global _cache
    key = _cache_key(tuple(str(d) for d in plugins_dirs))
    if _cache is None or _cache[0] != key:
        _cache = (key, build_registry(plugins_dirs))
    return _cache[1]


def reset_registry() -> None:
    global _cache
    _cache = None


get_registry.cache_clear = reset_registry  # type: ignore[attr-defined]  # what the first version (functools.cache) had


def describe_cell(name: str) -> str:
    """E.g. "cell 'mgu' of plugin 'mgu' 0.1.0 (bundled, …/plugins/mgu.py)", for messages about a run's cell."""
    try:
        return get_registry().describe("cell", name)
    except Exception:
        return f"cell {name!r}"


# -- the command-line option ----------------------------------------------------------------------------------------


def add_plugins_dir_argument(parser) -> None:
    """Give an argparse parser the ``--plugins-dir DIR`` option (repeatable), applied as soon as it is parsed."""
    import argparse

    class PluginsDir(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            add_plugins_dirs([values])
            setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), values])

    parser.add_argument("--plugins-dir", action=PluginsDir, metavar="DIR", default=None,
                        help="also load the plugin files (*.py) in DIR (repeatable); see `rnntui plugins`")
