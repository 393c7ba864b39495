"""The built-in cells (rnn, lstm, gru) stepped in numpy: generation from a checkpoint without importing torch.

``import torch`` alone takes 1.6-2.3 s on a small machine, and at batch 1 a step is a handful of matrix-vector
products that numpy does as fast as torch and with less overhead per call (benchmarks/bench_generate.py: about 2x
the characters per second of torch's fused single-step cells). The equations are PyTorch's, on the same weights
(rnntui.core.cells; reference/cells.md §4), computed in float32 on buffers allocated once per batch size:

- the first layer's input projection W_ih x + b_ih is precomputed for every symbol (one row per symbol), so a
  step starts with a row copy instead of a product;
- sigmoid(x) = 0.5 + 0.5 tanh(x / 2), and the rows of the sigmoid gates are halved once at load time (exact in
  floating point), so all gates of a layer go through one tanh and one multiply-add.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnntui.core.runs import CheckpointError

BUILTIN_CELLS = ("rnn", "lstm", "gru")
TABLE_LIMIT = 1 << 24  # bytes: above this (huge vocabularies) the first layer multiplies the embedding per step

# Per cell: the number of gate blocks, and which blocks are sigmoid gates (the others go through tanh).
GATES = {"rnn": (1, ()), "gru": (3, (0, 1)), "lstm": (4, (0, 1, 3))}


class NumpyStepper:
    """A CharModel of built-in cells, one step at a time for a batch of streams. ``weights`` is the model's
    state_dict as float32 arrays (keys ``embed.weight``, ``cells.{i}.fused.weight_ih_l0``, ..., ``head.bias``)."""

    def __init__(self, weights: Mapping[str, np.ndarray], cell: str, cell_options: Mapping[str, Any] | None = None):
        if cell not in GATES:
            raise ValueError(f"numpy generation covers the cells {', '.join(BUILTIN_CELLS)}, not {cell!r}")
        self.cell = cell
        self.relu = cell == "rnn" and (cell_options or {}).get("nonlinearity", "tanh") == "relu"
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        n_gates, sigmoid_blocks = GATES[cell]
        self.n_layer = sum(1 for k in w if k.endswith(".weight_hh_l0"))
        self.hidden = w["cells.0.fused.weight_hh_l0"].shape[1]
        H, self.width = self.hidden, n_gates * self.hidden
        scale = np.ones(self.width, dtype=np.float32)
        for block in sigmoid_blocks:
            scale[block * H:(block + 1) * H] = 0.5
        # after tanh of the (halved) pre-activations: sigmoid blocks x * 0.5 + 0.5, tanh blocks x * 1 + 0
        self.post_mul = scale.copy()
        self.post_add = np.where(scale == 0.5, 0.5, 0.0).astype(np.float32)
        self.layers = []
        for i in range(self.n_layer):
            p = f"cells.{i}.fused."
            self.layers.append((w[p + "weight_ih_l0"] * scale[:, None], w[p + "bias_ih_l0"] * scale,
                                w[p + "weight_hh_l0"] * scale[:, None], w[p + "bias_hh_l0"] * scale))
        self.embed = w["embed.weight"]
        self.head_w, self.head_b = w["head.weight"], w["head.bias"]
        self.vocab_size = self.head_w.shape[0]
        w_ih0, b_ih0 = self.layers[0][:2]
        self.table = None
        if self.vocab_size * self.width * 4 <= TABLE_LIMIT:
            self.table = self.embed @ w_ih0.T + b_ih0
        self.start(1)

    # -- the stepper interface (rnntui.core.decode.Stepper) ----------------------------------------------------------

    def start(self, batch: int) -> None:
        """Fresh zero states for ``batch`` streams."""
        self.h = [np.zeros((batch, self.hidden), np.float32) for _ in self.layers]
        self.c = [np.zeros((batch, self.hidden), np.float32) for _ in self.layers] if self.cell == "lstm" else []
        self._buffers(batch)

    def _buffers(self, batch: int) -> None:
        self.batch = batch
        self.gi = np.empty((batch, self.width), np.float32)
        self.gh = np.empty((batch, self.width), np.float32)
        self.logits = np.empty((batch, self.vocab_size), np.float32)

    def select(self, rows: np.ndarray) -> None:
        """Keep the streams ``rows`` (in that order, repeats allowed): beams that survive, or one primed stream
        copied into many."""
        self.h = [h[rows] for h in self.h]
        self.c = [c[rows] for c in self.c]
        if len(rows) != self.batch:
            self._buffers(len(rows))

    def feed(self, ids: np.ndarray) -> np.ndarray:
        """One symbol per stream, (B,) -> logits (B, V) (a buffer the next call overwrites)."""
        gi = self.gi
        for i, (w_ih, b_ih, _, _) in enumerate(self.layers):
            if i > 0:
                np.matmul(self.h[i - 1], w_ih.T, out=gi)
                gi += b_ih
            elif self.table is not None:
                np.take(self.table, ids, axis=0, out=gi)
            else:
                np.matmul(self.embed[ids], w_ih.T, out=gi)
                gi += b_ih
            self._step(i, gi, self.gh)
        np.matmul(self.h[-1], self.head_w.T, out=self.logits)
        self.logits += self.head_b
        return self.logits

    def prime(self, ids: np.ndarray) -> np.ndarray:
        """Run one stream (batch 1) through a prompt, layer by layer: each layer's input projections for the whole
        prompt in one product, then its recurrence. Returns the logits after the last symbol, (1, V)."""
        if self.batch != 1:
            self.start(1)
        w_ih0, b_ih0 = self.layers[0][:2]
        gi_all = self.table[ids] if self.table is not None else self.embed[ids] @ w_ih0.T + b_ih0
        outputs = np.empty((len(ids), self.hidden), np.float32)
        for i in range(self.n_layer):
            if i > 0:
                w_ih, b_ih = self.layers[i][:2]
                gi_all = outputs @ w_ih.T + b_ih
            for t in range(len(ids)):
                self._step(i, gi_all[t:t + 1], self.gh)
                outputs[t] = self.h[i][0]
        np.matmul(self.h[-1], self.head_w.T, out=self.logits)
        self.logits += self.head_b
        return self.logits

    # -- the cells, in place ------------------------------------------------------------------------------------

    def _step(self, i: int, gi: np.ndarray, gh: np.ndarray) -> None:
        """Layer i from its projected input ``gi`` (overwritten) to its new state, in self.h[i] (and self.c[i])."""
        _, _, w_hh, b_hh = self.layers[i]
        h = self.h[i]
        np.matmul(h, w_hh.T, out=gh)
        gh += b_hh
        H = self.hidden
        if self.cell == "gru":  # r, z = sigmoid(gi + gh); n = tanh(gi_n + r * gh_n); h = n + z * (h - n)
            rz = gi[:, :2 * H]
            rz += gh[:, :2 * H]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            n, gh_n = gi[:, 2 * H:], gh[:, 2 * H:]
            gh_n *= rz[:, :H]
            n += gh_n
            np.tanh(n, out=n)
            h -= n
            h *= rz[:, H:]
            h += n
        elif self.cell == "lstm":  # gates i, f, g, o; c = f * c + i * g; h = o * tanh(c)
            gh += gi
            np.tanh(gh, out=gh)
            gh *= self.post_mul
            gh += self.post_add
            c, g = self.c[i], gh[:, 2 * H:3 * H]
            c *= gh[:, H:2 * H]
            g *= gh[:, :H]
            c += g
            np.tanh(c, out=h)
            h *= gh[:, 3 * H:]
        else:
            gh += gi
            if self.relu:
                np.maximum(gh, 0.0, out=h)
            else:
                np.tanh(gh, out=h)


def load_weights(tensor_path: Path) -> dict[str, np.ndarray]:
    """The model's tensors of a (verified) checkpoint file as numpy arrays, without the optimizer's."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(tensor_path), framework="np") as f:
            return {k.removeprefix("model."): f.get_tensor(k) for k in f.keys() if k.startswith("model.")}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{tensor_path} cannot be read ({e}); use an earlier checkpoint") from None
