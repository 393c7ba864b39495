"""Any CharModel (plugin cells, or built-ins on a GPU) one step at a time, for the loops in rnntui.core.decode.

Two modes, on the same weights:

- ``reference=True``: ``model.forward`` over the prompt, then ``model.step`` (every cell's step path) per symbol,
  exactly as rnntui.core.sampling.generate does. Tests compare the fast paths against it.
- the default, fast mode: under inference_mode; the first layer's input projection is precomputed for every symbol
  (one row per symbol); the built-in cells use torch's fused single-step kernels (torch.gru_cell, ...), plugin
  cells their own project_input + step. ``compile=True`` compiles that whole step (embedding row, every layer,
  head) with torch.compile: worth it for cells with many small operations (see NOTES-generate.md); inductor
  caches the compiled code on disk, so only the first run pays the full compile time.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from rnntui.core.cells import GRU, LSTM, RNN
from rnntui.core.model import CharModel, States
from rnntui.core.numpy_cells import NumpyStepper

TABLE_LIMIT = 1 << 24  # bytes of the first layer's per-symbol projections; above it, project per step


class TorchStepper:
    def __init__(self, model: CharModel, reference: bool = False, compile: bool = False):
        self.model = model.eval()
        self.reference = reference
        self.device = model.head.weight.device
        self.vocab_size = model.vocab_size
        self.fused = [self._fused_step(cell) for cell in model.cells]
        self.table = None
        first = model.cells[0]
        if not reference and self.fused[0] is None:
            with torch.inference_mode():
                probe = first.project_input(model.embed.weight[:1])
                if probe.numel() * probe.element_size() * self.vocab_size <= TABLE_LIMIT:
                    self.table = first.project_input(model.embed.weight)
        self._step = self._fast_step
        if compile and not reference:
            self._step = torch.compile(self._fast_step, dynamic=False)
        self.start(1)

    @staticmethod
    def _fused_step(cell):
        """torch's fused one-step kernel for a built-in cell, taking the raw input: (x, state) -> state."""
        f = getattr(cell, "fused", None)
        if type(cell) not in (RNN, LSTM, GRU) or f is None:
            return None
        weights = (f.weight_ih_l0, f.weight_hh_l0, f.bias_ih_l0, f.bias_hh_l0)
        if isinstance(cell, GRU):
            return lambda x, s: (torch.gru_cell(x, s[0], *weights),)
        if isinstance(cell, LSTM):
            return lambda x, s: torch.lstm_cell(x, s, *weights)
        kernel = torch.rnn_relu_cell if cell.options["nonlinearity"] == "relu" else torch.rnn_tanh_cell
        return lambda x, s: (kernel(x, s[0], *weights),)

    def start(self, batch: int) -> None:
        self.states: States = self.model.initial_state(batch)

    def select(self, rows: np.ndarray) -> None:
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(self.device)
        self.states = [tuple(s.index_select(0, index) for s in state) for state in self.states]

    def prime(self, ids: np.ndarray) -> np.ndarray:
        self.start(1)
        with torch.inference_mode():
            x = torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(self.device)[None, :]
            logits, self.states = self.model.forward(x, self.states)
            return _numpy(logits[:, -1])

    def feed(self, ids: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            idx = torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(self.device)
            if self.reference:
                logits, self.states = self.model.step(idx, self.states)
            else:
                logits, self.states = self._step(idx, self.states)
            return _numpy(logits)

    def _fast_step(self, idx: Tensor, states: States) -> tuple[Tensor, States]:
        model = self.model
        x = self.table[idx] if self.table is not None else model.embed(idx)
        new_states = []
        for i, (cell, fused, state) in enumerate(zip(model.cells, self.fused, states)):
            if fused is not None:
                state = fused(x, state)
                x = state[0]
            else:
                if i > 0 or self.table is None:
                    x = cell.project_input(x)
                x, state = cell.step(x, state)
            new_states.append(state)
        return model.head(x), new_states


def _numpy(logits: Tensor) -> np.ndarray:
    return logits.float().cpu().numpy()


def snapshot_stepper(model: CharModel):
    """The fastest stepper for a live model (the trainer's, the app's): for built-in cells on the CPU, a
    NumpyStepper on a copy of the weights, so generation can run beside training (another thread or process)
    without touching the model; otherwise a TorchStepper on the model itself."""
    first = model.cells[0]
    if model.head.weight.device.type == "cpu" and all(type(c) in (RNN, LSTM, GRU) for c in model.cells):
        weights = {k: v.detach().float().cpu().numpy().copy() for k, v in model.state_dict().items()}
        return NumpyStepper(weights, first.name, first.options)
    return TorchStepper(model)
