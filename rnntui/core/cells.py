"""Recurrent cells: the contract every cell follows, and the built-in RNN, LSTM and GRU.

A cell is one layer. The model stacks ``n_layer`` of them. Every cell has a step path (one time step, used for
generation and as the reference); a cell may add a whole-sequence path for speed. Third-party cells are registered
through the same plugin hook as the built-ins below; they may subclass ``Cell`` as these do, or be a plain
``torch.nn.Module`` with the same methods (the plugin manager's ``as_cell`` fills in the optional ones).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnntui import hookimpl

State = tuple[Tensor, ...]


class Cell(nn.Module):
    """Base class of a recurrent cell. The subclass docstring is what users see in ``rnntui cells``.

    Subclasses set ``name`` and, if they take options, ``hyperparameters`` (option name -> default value); they
    implement ``initial_state`` and ``step``. Optional:

    - ``project_input(x)``: the part of the step that depends on the input alone. The engine applies it to the
      whole (B, T, input_size) sequence before the time loop, and ``step`` then receives the projected x_t.
      The default is the identity.
    - ``forward_sequence(x, state)``: the whole sequence at once (fused kernel, parallel scan). It receives the
      raw input, not the projection. Cells without one are run by the engine's step loop.

    Optional, for the inspector (rnntui.core.inspection), which shows what happens inside a cell:

    - ``gates(x_t, state)``: the gates the step would use for this projected input and previous state, as
      ``{name: (B, hidden_size) tensor}``, each in [0, 1], named after the paper (``input``, ``forget``,
      ``output``, ``update``, ``reset``, ...). Rows are independent, as in ``step``: the inspector calls it once
      for a whole text, with the time steps as the batch. The surest way to keep it equal to the step is to let
      ``step`` call it.
    - ``memory_gates``: ``{gate name: "right" | "left"}``, the gates that keep the state where it is when they
      saturate, and on which side (an LSTM's forget gate near 1: ``"right"``; minGRU's update gate near 0:
      ``"left"``). The inspector calls out those units as memory.
    - ``state_names``: a name for each tensor of the state, in order. The first is the output ``h``; any other
      of shape (B, hidden_size) (an LSTM's memory cell ``c``) is recorded beside it as units.
    - ``inspect_sequence(x, state)``: everything the inspector records, for the whole (raw) input at once:
      ``(h, states, gates)``, each state tensor (B, T, ...) at every step, each gate (B, T, hidden_size). Only a
      fast path (the LSTM's): cells whose state is just h get their states from ``forward_sequence`` and their
      gates from ``gates``; the others are run step by step.
    """

    name: ClassVar[str] = ""
    hyperparameters: ClassVar[dict[str, Any]] = {}
    state_names: ClassVar[tuple[str, ...]] = ("h",)
    memory_gates: ClassVar[dict[str, str]] = {}

    def __init__(self, input_size: int, hidden_size: int, **options: Any):
        super().__init__()
        unknown = set(options) - set(self.hyperparameters)
        if unknown:
            raise ValueError(f"cell {self.name!r} has no option(s) {', '.join(sorted(unknown))}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.options = {**self.hyperparameters, **options}

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> State:
        """The state at the start of a stream: a tuple of (batch, ...) tensors, zeros by default."""
        return (torch.zeros(batch, self.hidden_size, device=device),)

    def project_input(self, x: Tensor) -> Tensor:
        return x

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step: (B, projected input) and the state -> (output h_t of shape (B, hidden_size), new state)."""
        raise NotImplementedError

    forward_sequence = None  # or a method (x: (B, T, input_size), state) -> (h: (B, T, hidden_size), state)
    gates = None  # or a method (x_t: (B, projected input), state) -> {name: (B, hidden_size) tensor in [0, 1]}
    inspect_sequence = None  # or a method (x: (B, T, input_size), state) -> (h, states, gates) at every step

    # Optional, for the largest singular value shown beside the gradients through time: a method () -> Tensor,
    # the weights that multiply h_{t-1} in ``step`` (all gate blocks stacked, shape (blocks * hidden, hidden)).
    recurrent_matrix = None


def run_steps(cell: Cell, x: Tensor, state: State) -> tuple[Tensor, State]:
    """The generic sequence path: project all inputs at once, then loop the step over time.

    ``unbind`` splits the projected inputs into T views in one operation, whose backward is one ``stack``; indexing
    ``projected[:, t]`` in the loop instead costs a full-size zero tensor per step in the backward pass, which made
    a step-only LSTM about 2x slower (benchmarks/bench_plugin_cell.py)."""
    outputs = []
    for x_t in cell.project_input(x).unbind(1):
        h, state = cell.step(x_t, state)
        outputs.append(h)
    return torch.stack(outputs, dim=1), state


def run_sequence(cell: Cell, x: Tensor, state: State) -> tuple[Tensor, State]:
    """Whole-sequence forward through one cell, by its own fast path where it has one."""
    if cell.forward_sequence is not None:
        return cell.forward_sequence(x, state)
    return run_steps(cell, x, state)


class _TorchRNNCell(Cell):
    """Shared plumbing of the built-ins: one single-layer nn.RNN/LSTM/GRU holds the weights, so the fused
    whole-sequence kernel and the explicit step equations read exactly the same parameters."""

    torch_class: ClassVar[type[nn.RNNBase]]

    def _make(self, **kwargs: Any) -> None:
        self.fused = self.torch_class(self.input_size, self.hidden_size, batch_first=True, **kwargs)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.fused.weight_ih_l0, self.fused.bias_ih_l0)

    def _recurrent(self, h: Tensor) -> Tensor:
        return F.linear(h, self.fused.weight_hh_l0, self.fused.bias_hh_l0)

    def recurrent_matrix(self) -> Tensor:
        """PyTorch's weight_hh_l0, the gate blocks stacked: rnn W_hh (H x H); lstm (4H x H), blocks i, f, g, o;
        gru (3H x H), blocks r, z, n."""
        return self.fused.weight_hh_l0


class RNN(_TorchRNNCell):
    """Vanilla (Elman) RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh). Option nonlinearity=relu."""

    name = "rnn"
    hyperparameters = {"nonlinearity": "tanh"}
    torch_class = nn.RNN

    def __init__(self, input_size: int, hidden_size: int, **options: Any):
        super().__init__(input_size, hidden_size, **options)
        if self.options["nonlinearity"] not in ("tanh", "relu"):
            raise ValueError("rnn nonlinearity must be 'tanh' or 'relu'")
        self._make(nonlinearity=self.options["nonlinearity"])
        self.activation = torch.tanh if self.options["nonlinearity"] == "tanh" else torch.relu

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        h = self.activation(x_t + self._recurrent(state[0]))
        return h, (h,)

    def forward_sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        out, h = self.fused(x, state[0].unsqueeze(0).contiguous())
        return out, (h.squeeze(0),)


class LSTM(_TorchRNNCell):
    """Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), in
    PyTorch's gate order i, f, g, o. The forget-gate bias starts at 1 (Jozefowicz et al. 2015); forget_bias=0
    keeps PyTorch's plain initialisation."""

    name = "lstm"
    hyperparameters = {"forget_bias": 1.0}
    torch_class = nn.LSTM

    def __init__(self, input_size: int, hidden_size: int, **options: Any):
        super().__init__(input_size, hidden_size, **options)
        self._make()
        if self.options["forget_bias"]:
            hs = hidden_size
            with torch.no_grad():  # only the sum of the two biases matters; put the whole offset in one
                self.fused.bias_ih_l0[hs : 2 * hs].fill_(float(self.options["forget_bias"]))
                self.fused.bias_hh_l0[hs : 2 * hs].zero_()

    state_names = ("h", "c")
    memory_gates = {"forget": "right"}

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> State:
        zeros = torch.zeros(batch, self.hidden_size, device=device)
        return (zeros, zeros.clone())

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        h, c = state
        i, f, g, o = (x_t + self._recurrent(h)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)

    def gates(self, x_t: Tensor, state: State) -> dict[str, Tensor]:
        i, f, _, o = (x_t + self._recurrent(state[0])).chunk(4, dim=-1)
        return {"input": torch.sigmoid(i), "forget": torch.sigmoid(f), "output": torch.sigmoid(o)}

    def forward_sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        h0, c0 = (s.unsqueeze(0).contiguous() for s in state)
        out, (h, c) = self.fused(x, (h0, c0))
        return out, (h.squeeze(0), c.squeeze(0))

    def inspect_sequence(self, x: Tensor, state: State) -> tuple[Tensor, State, dict[str, Tensor]]:
        """h at every step from the fused kernel; the gates, which read only x_t and h_{t-1}, for every step in
        one product; the memory cell, which the kernel keeps to itself, from them: c_t = f_t * c_{t-1} + i_t * g_t
        is an elementwise loop. 2-3x faster than the step loop on a 2x256 model."""
        h, _ = self.forward_sequence(x, state)
        h_prev = torch.cat([state[0].unsqueeze(1), h[:, :-1]], dim=1)
        i, f, g, o = (self.project_input(x) + self._recurrent(h_prev)).chunk(4, dim=-1)
        gates = {"input": torch.sigmoid(i), "forget": torch.sigmoid(f), "output": torch.sigmoid(o)}
        c_t, c = state[1], []
        for add_t, keep_t in zip((gates["input"] * torch.tanh(g)).unbind(1), gates["forget"].unbind(1)):
            c_t = torch.addcmul(add_t, keep_t, c_t)
            c.append(c_t)
        c = torch.stack(c, dim=1)
        return h, (h, c), gates


class GRU(_TorchRNNCell):
    """Gated recurrent unit in PyTorch's (cuDNN) convention: the reset gate multiplies the recurrent product
    after the matmul, n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h = (1 - z) * n + z * h_prev."""

    name = "gru"
    torch_class = nn.GRU
    memory_gates = {"update": "right"}

    def __init__(self, input_size: int, hidden_size: int, **options: Any):
        super().__init__(input_size, hidden_size, **options)
        self._make()

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        h = state[0]
        x_r, x_z, x_n = x_t.chunk(3, dim=-1)
        h_r, h_z, h_n = self._recurrent(h).chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        return h, (h,)

    def gates(self, x_t: Tensor, state: State) -> dict[str, Tensor]:
        x_r, x_z, _ = x_t.chunk(3, dim=-1)
        h_r, h_z, _ = self._recurrent(state[0]).chunk(3, dim=-1)
        return {"reset": torch.sigmoid(x_r + h_r), "update": torch.sigmoid(x_z + h_z)}

    def forward_sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        out, h = self.fused(x, state[0].unsqueeze(0).contiguous())
        return out, (h.squeeze(0),)


BUILTIN_CELLS = (RNN, LSTM, GRU)


@hookimpl
def register_cells(register):
    for cell in BUILTIN_CELLS:
        register(cell)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
