"""Learning dynamics, measured between training steps: how the gradient flows back through time.

Pascanu, Mikolov & Bengio (2013) write the gradient of the loss at step t with respect to the state k steps
earlier as a product of k Jacobians, dh_t/dh_{t-k} = prod_i W_hh^T diag(f'(.)); its norm shrinks like eta^k when
the largest singular value of W_hh is below 1/gamma (gamma bounds f': 1 for tanh) and may grow when it is above.
``grad_through_time`` measures that norm for every k on one batch, layer by layer; ``sigma_max`` gives the largest
singular value of each layer's recurrent matrix where the cell names it (``recurrent_matrix()``).

A measurement leaves the run as it found it: no parameter, gradient (``.grad``), random number generator state or
train/eval mode changes. It runs in eval mode (no dropout), in full precision, on the cells' step path, so every
h_t is a node of the graph, and takes one backward pass (``torch.autograd.grad``, which fills no ``.grad``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rnntui.core.model import CharModel, States

DEFAULT_BATCH = 32  # sequences measured: norms are means over sequences, so a slice of the batch is enough


@dataclass(frozen=True)
class GradTime:
    """One layer's gradient norms through time: ``norms[i]`` is the mean over the batch's sequences of
    ||dL_T / dh_{T-k}|| for k = ``lags[i]``, L_T the loss at the window's last position and h the layer's output
    (its hidden state) k steps before it. ``layer`` counts from 1 (next to the embedding)."""

    layer: int
    lags: list[int]
    norms: list[float]
    sigma_max: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sigma_max(cell) -> float | None:
    """The largest singular value of the cell's recurrent matrix, or None for cells that do not name one."""
    method = getattr(cell, "recurrent_matrix", None)
    if method is None:
        return None
    with torch.no_grad():
        matrix = method()
        if matrix is None:
            return None
        return float(torch.linalg.matrix_norm(matrix.detach().float(), ord=2))


def grad_through_time(model: CharModel, x: Tensor, y: Tensor, states: States | None = None,
                      max_batch: int = DEFAULT_BATCH) -> list[GradTime]:
    """||dL_T / dh_{T-k}|| for k = 0..T-1 and every layer, on the batch ``x``, ``y`` (B, T) of symbol ids,
    starting from ``states`` (the carried states of that batch; zeros if None). Only the first ``max_batch``
    sequences are used."""
    batch = min(x.shape[0], max_batch)
    x, y = x[:batch], y[:batch]
    if states is None:
        states = model.initial_state(batch)
    else:
        states = [tuple(s[:batch].detach().float() for s in state) for state in states]
    was_training = model.training
    cuda = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), torch.enable_grad(), torch.autocast(x.device.type, enabled=False):
        model.eval()
        try:
            layers = _step_outputs(model, x, states)
            loss = F.cross_entropy(model.head(layers[-1][-1]).float(), y[:, -1], reduction="sum")
            flat = [h for outputs in layers for h in outputs]
            grads = torch.autograd.grad(loss, flat, allow_unused=True)
        finally:
            model.train(was_training)
    length = x.shape[1]
    results = []
    for i, cell in enumerate(model.cells):
        layer_grads = grads[i * length:(i + 1) * length]
        # the loss sums the sequences' losses, so row b of each gradient is sequence b's own gradient
        norms = [0.0 if g is None else g.float().norm(dim=-1).mean().item() for g in reversed(layer_grads)]
        results.append(GradTime(i + 1, list(range(length)), norms, sigma_max(cell)))
    return results


def _step_outputs(model: CharModel, x: Tensor, states: States) -> list[list[Tensor]]:
    """Each layer's output at each step, through the cells' step path (the model's dropout is off in eval)."""
    layers = []
    inputs = model.embed(x)
    for cell, state in zip(model.cells, states):
        outputs = []
        for x_t in cell.project_input(inputs).unbind(1):
            h, state = cell.step(x_t, state)
            outputs.append(h)
        layers.append(outputs)
        inputs = torch.stack(outputs, dim=1)
    return layers
