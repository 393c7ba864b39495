"""MUT1, MUT2 and MUT3, the three architectures found by the evolutionary search of Jozefowicz, Zaremba and
Sutskever, "An Empirical Exploration of Recurrent Network Architectures" (ICML 2015), as written in the paper
(with h for the previous state h_t and h' for h_{t+1}):

    MUT1:  z = sigmoid(W_xz x + b_z)
           r = sigmoid(W_xr x + W_hr h + b_r)
           h' = tanh(W_hh (r * h) + tanh(x) + b_h) * z + h * (1 - z)
    MUT2:  z = sigmoid(W_xz x + W_hz h + b_z)
           r = sigmoid(x + W_hr h + b_r)
           h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)
    MUT3:  z = sigmoid(W_xz x + W_hz tanh(h) + b_z)
           r = sigmoid(W_xr x + W_hr h + b_r)
           h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)

The input projection. MUT1's bare tanh(x) and MUT2's bare x are added to vectors of the hidden size, so as written
they need dim(x) = dim(h). Where the input size equals the hidden size (rnntui's default: the embedding is as wide
as the hidden state, and every layer above the first reads the one below) these cells are exactly the equations
above. Where it differs (e.g. ``--embed 64 --hidden 256``), that one bare x is replaced by P x, a learned linear
projection (no bias) to the hidden size: MUT1 uses tanh(P x), MUT2 uses sigmoid(P x + W_hr h + b_r). Every
other x term already has its own weight matrix and is unchanged. MUT3 has no bare x and never needs P.

Weights: ``Wx`` (Linear on x, its bias holds the b terms; blocks in the order of the equations' x terms), ``P``
(only when needed), ``Wh`` (Linear on h without bias: the W_h? blocks that multiply h or tanh(h)), ``Whh``.
"""

import math

import torch
from torch import nn

from rnntui import hookimpl

__version__ = "1.0"


class _MUT(nn.Module):
    x_blocks = 0  # blocks of Wx x
    bare_x = False  # the equations have a bare x that must have the hidden size
    memory_gates = {"update": "left"}  # for the inspector: z near 0 keeps h

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.Wx = nn.Linear(input_size, self.x_blocks * hidden_size)
        if self.bare_x and input_size != hidden_size:
            self.P = nn.Linear(input_size, hidden_size, bias=False)
        else:
            self.P = None
        self.Wh = nn.Linear(hidden_size, self.h_blocks * hidden_size, bias=False)
        self.Whh = nn.Linear(hidden_size, hidden_size, bias=False)
        self.extra_bias = nn.Parameter(torch.empty(hidden_size)) if self.bare_x else None
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, batch, device=None):
        return (torch.zeros(batch, self.hidden_size, device=device),)

    def step(self, x_t, state):
        h = state[0]
        gates = self.gates(x_t, state)
        r, z = gates["reset"], gates["update"]
        h = self.update(self.Whh(r * h) + self.candidate_input(x_t), z, h)
        return h, (h,)

    def recurrent_matrix(self):
        """The weights on h_{t-1} (or tanh h_{t-1}, MUT3's z): Wh's blocks over Whh (applied to r * h)."""
        return torch.cat([self.Wh.weight, self.Whh.weight])

    def bare(self, x):
        return self.P(x) if self.P is not None else x

    @staticmethod
    def update(candidate, z, h):
        return torch.tanh(candidate) * z + h * (1 - z)


class MUT1(_MUT):
    """MUT1 of Jozefowicz et al. 2015: a GRU-like cell whose update gate reads only the input; tanh(x) enters the
    candidate directly (through a learned projection when the input size differs from the hidden size)."""

    name = "mut1"
    x_blocks, h_blocks, bare_x = 2, 1, True  # Wx: z, r; Wh: r; extra_bias: b_h

    def project_input(self, x):
        return torch.cat([self.Wx(x), torch.tanh(self.bare(x)) + self.extra_bias], dim=-1)

    def gates(self, x_t, state):
        xz, xr, _ = x_t.chunk(3, dim=-1)
        return {"update": torch.sigmoid(xz), "reset": torch.sigmoid(xr + self.Wh(state[0]))}

    @staticmethod
    def candidate_input(x_t):
        return x_t.chunk(3, dim=-1)[2]


class MUT2(_MUT):
    """MUT2 of Jozefowicz et al. 2015: a GRU-like cell whose reset gate adds the input itself (through a learned
    projection when the input size differs from the hidden size)."""

    name = "mut2"
    x_blocks, h_blocks, bare_x = 2, 2, True  # Wx: z, h; Wh: z, r; extra_bias: b_r

    def project_input(self, x):
        return torch.cat([self.Wx(x), self.bare(x) + self.extra_bias], dim=-1)

    def gates(self, x_t, state):
        xz, _, xr = x_t.chunk(3, dim=-1)
        hz, hr = self.Wh(state[0]).chunk(2, dim=-1)
        return {"update": torch.sigmoid(xz + hz), "reset": torch.sigmoid(xr + hr)}

    @staticmethod
    def candidate_input(x_t):
        return x_t.chunk(3, dim=-1)[1]


class MUT3(_MUT):
    """MUT3 of Jozefowicz et al. 2015: a GRU-like cell whose update gate reads tanh of the previous state."""

    name = "mut3"
    x_blocks, h_blocks, bare_x = 3, 2, False  # Wx: z, r, h; Wh: z (on tanh h), r

    def project_input(self, x):
        return self.Wx(x)

    def gates(self, x_t, state):
        h = state[0]
        xz, xr, _ = x_t.chunk(3, dim=-1)
        w_z, w_r = self.Wh.weight.chunk(2, dim=0)
        return {"update": torch.sigmoid(xz + torch.tanh(h) @ w_z.T), "reset": torch.sigmoid(xr + h @ w_r.T)}

    @staticmethod
    def candidate_input(x_t):
        return x_t.chunk(3, dim=-1)[2]


@hookimpl
def register_cells(register):
    for cell in (MUT1, MUT2, MUT3):
        register(cell)
