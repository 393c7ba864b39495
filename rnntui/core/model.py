"""The character model: embedding -> n_layer stacked cells (dropout between them) -> linear head."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from rnntui.core.cells import Cell, State, run_sequence

States = list[State]


class CharModel(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        cell_class: type[Cell],
        n_layer: int = 2,
        n_hidden: int = 256,
        n_embd: int | None = None,
        dropout: float = 0.0,
        cell_options: dict[str, Any] | None = None,
    ):
        super().__init__()
        n_embd = n_embd or n_hidden
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, n_embd)
        sizes = [n_embd] + [n_hidden] * (n_layer - 1)
        self.cells = nn.ModuleList(cell_class(size, n_hidden, **(cell_options or {})) for size in sizes)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(n_hidden, vocab_size)

    def initial_state(self, batch: int) -> States:
        device = self.head.weight.device
        return [cell.initial_state(batch, device) for cell in self.cells]

    def forward(self, idx: Tensor, states: States) -> tuple[Tensor, States]:
        """idx (B, T) of symbol ids -> logits (B, T, V) and the states after the last step."""
        x = self.embed(idx)
        new_states = []
        for i, (cell, state) in enumerate(zip(self.cells, states)):
            if i > 0:
                x = self.drop(x)
            x, state = run_sequence(cell, x, state)
            new_states.append(state)
        return self.head(self.drop(x)), new_states

    def grad_norms(self) -> dict[str, float]:
        """The gradient's L2 norm for each part, input to output: the embedding, each layer, the head. Down a deep
        stack these show the gradient vanishing (or exploding) on its way to the first layers."""
        parts = {"embedding": self.embed, **{f"layer {i}": cell for i, cell in enumerate(self.cells, 1)},
                 "head": self.head}
        norms = {}
        for name, part in parts.items():
            grads = [p.grad for p in part.parameters() if p.grad is not None]
            if grads:
                norms[name] = torch.nn.utils.get_total_norm(grads).item()
        return norms

    def step(self, idx_t: Tensor, states: States) -> tuple[Tensor, States]:
        """One symbol per stream, (B,) -> logits (B, V), through every cell's step path (used for generation)."""
        x = self.embed(idx_t)
        new_states = []
        for i, (cell, state) in enumerate(zip(self.cells, states)):
            if i > 0:
                x = self.drop(x)
            x, state = cell.step(cell.project_input(x), state)
            new_states.append(state)
        return self.head(self.drop(x)), new_states


def detach(states: States) -> States:
    """Cut the graph at a batch boundary (truncated BPTT) while keeping the values."""
    return [tuple(s.detach().float() for s in state) for state in states]  # carried in full precision
