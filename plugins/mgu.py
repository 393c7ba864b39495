"""MGU, the minimal gated unit of Zhou, Wu, Zhang and Zhou ("Minimal Gated Unit for Recurrent Neural Networks",
International Journal of Automation and Computing 2016, arXiv 1603.09420): a GRU with one gate, the forget gate
f, doing the work of both the reset and the update gate:

    f = sigmoid(W_f x + U_f h + b_f)
    n = tanh(W_h x + U_h (f * h) + b_h)
    h' = (1 - f) * h + f * n

Two weight blocks instead of the GRU's three. Weights: ``W`` (Linear on x with the biases; blocks f, h),
``U_f`` and ``U_h`` (no bias).
"""

import math

import torch
from torch import nn

from rnntui import hookimpl

__version__ = "1.0"


class MGU(nn.Module):
    """Minimal gated unit (Zhou et al. 2016): a GRU whose single forget gate both resets and updates."""

    name = "mgu"
    memory_gates = {"forget": "left"}  # for the inspector: f near 0 keeps h (f near 1 takes the candidate)

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W = nn.Linear(input_size, 2 * hidden_size)
        self.U_f = nn.Linear(hidden_size, hidden_size, bias=False)
        self.U_h = nn.Linear(hidden_size, hidden_size, bias=False)
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, batch, device=None):
        return (torch.zeros(batch, self.hidden_size, device=device),)

    def recurrent_matrix(self):
        """The weights on h_{t-1}: U_f over U_h (applied to f * h)."""
        return torch.cat([self.U_f.weight, self.U_h.weight])

    def project_input(self, x):
        return self.W(x)

    def gates(self, x_t, state):
        return {"forget": torch.sigmoid(x_t.chunk(2, dim=-1)[0] + self.U_f(state[0]))}

    def step(self, x_t, state):
        h = state[0]
        f = self.gates(x_t, state)["forget"]
        n = torch.tanh(x_t.chunk(2, dim=-1)[1] + self.U_h(f * h))
        h = (1 - f) * h + f * n
        return h, (h,)


@hookimpl
def register_cells(register):
    register(MGU)
