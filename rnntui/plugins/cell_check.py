"""The check every cell passes when it is registered, and the class rnntui uses for a plugin's cell.

``validate_cell`` builds the cell at batch 2, 3 time steps, input size 5, hidden size 7 and runs each of its paths
(rnntui's loop over ``step``; ``forward_sequence`` if it has one) forward and backward: output and state shapes, a
state that is returned rather than changed in place, finite values and gradients, a gradient for every
parameter, a state that round-trips, and the two paths agreeing. Each failure says what is wrong with the cell.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from rnntui.core.cells import Cell
from rnntui.plugins.contract import NAME_PATTERN, CellValidationError, hyperparameters_of, plugin_traceback

# The tiny check every cell passes when registered: batch 2, 3 time steps, input size != hidden size.
CHECK_BATCH, CHECK_STEPS, CHECK_INPUT, CHECK_HIDDEN = 2, 3, 5, 7


def as_cell(cls: type) -> type:
    """A plugin's cell class as the engine uses it. A subclass of rnntui.core.cells.Cell is used as it is; a plain
    ``torch.nn.Module`` with ``name`` and ``step`` (what a plugin that imports only torch writes) gets a subclass
    that fills in what it leaves out: ``project_input`` (identity), ``forward_sequence`` (none: the engine's step
    loop), ``initial_state`` (zeros of (batch, hidden_size)), ``hyperparameters`` (from ``__init__``), and the
    ``input_size``/``hidden_size``/``options`` attributes."""
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


def validate_cell(cls: Any) -> type:
    """Check a cell class the way registration does and return the class the engine will use (see ``as_cell``).
    Raises CellValidationError with a message that says what is wrong. Use it in a plugin's own tests."""
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
        _check_cell(cell_cls, f"cell {name!r}")
    return cell_cls


_validated: dict[type, tuple[type | None, CellValidationError | None]] = {}  # a class is checked once per process


def validate_cell_cached(cls: Any) -> type:
    """``validate_cell``, remembering the outcome for each class (registries are rebuilt when settings change)."""
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


# -- the check, one part at a time; ``what`` is "cell 'name'" ----------------------------------------------------


def _check_cell(cell_cls: type, what: str) -> None:
    cell = _build(cell_cls, what)
    params = [(n, p) for n, p in cell.named_parameters() if p.requires_grad]
    if not params:
        raise CellValidationError(f"{what} has no trainable parameters")
    x = torch.randn(CHECK_BATCH, CHECK_STEPS, CHECK_INPUT)
    paths = ["step"] + (["sequence"] if cell.forward_sequence is not None else [])
    results = {path: _check_path(cell, what, path, x, params) for path in paths}
    if "sequence" in results:
        _check_agreement(what, results["step"], results["sequence"])


def _build(cell_cls: type, what: str) -> Any:
    try:
        return cell_cls(CHECK_INPUT, CHECK_HIDDEN)
    except Exception:
        raise _fail(f"{what} cannot be built: {cell_cls.__name__}(input_size={CHECK_INPUT}, "
                    f"hidden_size={CHECK_HIDDEN}) raised {_last_error()}") from None


def _initial_state(cell: Any, what: str) -> tuple:
    try:
        state = cell.initial_state(CHECK_BATCH)
    except Exception:
        raise _fail(f"{what}: initial_state({CHECK_BATCH}) raised {_last_error()}") from None
    _check_state(state, None, f"{what}: initial_state({CHECK_BATCH})")
    return state


def _check_path(cell: Any, what: str, path: str, x: torch.Tensor, params: list) -> tuple[torch.Tensor, list]:
    """Forward and backward through one path, then the state's round trip; returns its output and final state."""
    h, state = _forward(cell, what, path, x, _initial_state(cell, what))
    if not torch.isfinite(h).all() or not all(torch.isfinite(s).all() for s in state):
        raise CellValidationError(f"{what}: the {path} path produced NaN or infinite values")
    _check_gradients(what, path, h, state, params)
    # two chunks with the state carried between them equal one pass
    with torch.no_grad():
        h1, s1 = _forward(cell, what, path, x[:, :2], _initial_state(cell, what))
        h2, s2 = _forward(cell, what, path, x[:, 2:], s1)
        if not _close(torch.cat([h1, h2], dim=1), h) or not all(_close(a, b) for a, b in zip(s2, state)):
            raise CellValidationError(
                f"{what}: the state does not round-trip on the {path} path: running 2 steps and then 1 from the "
                "returned state differs from 3 steps at once (is state kept on the module instead of returned?)")
    return h.detach(), [s.detach() for s in state]


def _forward(cell: Any, what: str, path: str, xs: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
    run = _step_loop if path == "step" else _sequence
    try:
        return run(cell, what, xs, state)
    except CellValidationError:
        raise
    except Exception:
        raise _fail(f"{what}: the {path} path raised {_last_error()}") from None


def _step_loop(cell: Any, what: str, xs: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
    """rnntui's step loop, checking each step's output and state."""
    B, H = CHECK_BATCH, CHECK_HIDDEN
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
        _check_state(new_state, state, f"{what}: the state returned by step")
        if any(not torch.equal(s, b) for s, b in zip(state, before)):
            raise CellValidationError(f"{what}: step changed its input state in place; return new tensors")
        outputs.append(h)
        state = new_state
    return torch.stack(outputs, dim=1), state


def _sequence(cell: Any, what: str, xs: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
    """The cell's own whole-sequence path, checking its output and state."""
    out = cell.forward_sequence(xs, state)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise CellValidationError(f"{what}: forward_sequence(x, state) must return (h, new_state)")
    h, new_state = out
    expected = (CHECK_BATCH, xs.shape[1], CHECK_HIDDEN)
    if not isinstance(h, torch.Tensor) or tuple(h.shape) != expected:
        raise CellValidationError(f"{what}: forward_sequence returned an output of shape {_shape(h)}; "
                                  f"expected {expected} = (batch, time, hidden_size)")
    _check_state(new_state, state, f"{what}: the state returned by forward_sequence")
    return h, new_state


def _check_gradients(what: str, path: str, h: torch.Tensor, state: tuple, params: list) -> None:
    """A random projection of the outputs and state, backward: every parameter gets a finite gradient."""
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


def _check_agreement(what: str, step: tuple[torch.Tensor, list], sequence: tuple[torch.Tensor, list]) -> None:
    (h_step, s_step), (h_seq, s_seq) = step, sequence
    if not _close(h_seq, h_step) or not all(_close(a, b) for a, b in zip(s_seq, s_step)):
        diff = (h_seq - h_step).abs().max().item()
        raise CellValidationError(f"{what}: forward_sequence and the step loop disagree (max |difference| of "
                                  f"the outputs {diff:.3g}); they must compute the same function")


def _check_state(state: Any, reference: Any, what: str) -> None:
    batch = CHECK_BATCH
    if not isinstance(state, tuple) or not state or not all(isinstance(s, torch.Tensor) for s in state):
        raise CellValidationError(f"{what} must be a non-empty tuple of tensors, got {type(state).__name__}")
    if any(s.dim() == 0 or s.shape[0] != batch for s in state):
        raise CellValidationError(f"{what} has shapes {[tuple(s.shape) for s in state]}; each tensor must be "
                                  f"(batch={batch}, ...)")
    if reference is not None and [s.shape for s in state] != [r.shape for r in reference]:
        raise CellValidationError(f"{what} has shapes {[tuple(s.shape) for s in state]}, but the state it was given "
                                  f"has {[tuple(r.shape) for r in reference]}: the state must keep its shape")


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-3, atol=1e-4))


def _shape(x: Any) -> Any:
    return tuple(x.shape) if hasattr(x, "shape") else type(x).__name__


def _last_error() -> str:
    e = sys.exc_info()[1]
    return f"{type(e).__name__}: {e}"


def _fail(message: str) -> CellValidationError:
    return CellValidationError(message, plugin_traceback())
