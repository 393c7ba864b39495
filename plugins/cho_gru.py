"""The GRU as Cho et al. wrote it ("Learning Phrase Representations using RNN Encoder-Decoder for Statistical
Machine Translation", EMNLP 2014, arXiv 1406.1078v3), beside rnntui's built-in ``gru`` (PyTorch's, cuDNN's), so
the two conventions can be trained side by side:

    r = sigmoid(W_r x + U_r h + b_r)
    z = sigmoid(W_z x + U_z h + b_z)
    n = tanh(W x + U (r * h) + b)        reset applied to h BEFORE the recurrent product
    h' = z * h + (1 - z) * n

PyTorch instead computes n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), the reset after the product (cuDNN's
choice, faster: all three recurrent products are one matmul). No copying of weights makes the two equal in
general; they agree exactly when the reset gate is fully open (r = 1). Keras's default (before reset_after) is
this convention; char-rnn's GRU also resets before the product but swaps z and 1 - z.

Weights: ``W`` (Linear on x with the biases; blocks r, z, n), ``U_rz`` (h -> r, z; no bias), ``U`` (no bias).
"""

import math

import torch
from torch import nn

from rnntui import hookimpl

__version__ = "1.0"


class ChoGRU(nn.Module):
    """GRU in Cho et al.'s 2014 convention: the reset gate multiplies h before the recurrent matmul
    (n = tanh(W x + U (r * h) + b)); compare with the built-in gru, PyTorch's reset-after convention."""

    name = "gru-cho"
    memory_gates = {"update": "right"}  # for the inspector: z near 1 keeps h

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W = nn.Linear(input_size, 3 * hidden_size)
        self.U_rz = nn.Linear(hidden_size, 2 * hidden_size, bias=False)
        self.U = nn.Linear(hidden_size, hidden_size, bias=False)
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, batch, device=None):
        return (torch.zeros(batch, self.hidden_size, device=device),)

    def recurrent_matrix(self):
        """The weights on h_{t-1}: U_rz (blocks r, z) over U (n, applied to r * h)."""
        return torch.cat([self.U_rz.weight, self.U.weight])

    def project_input(self, x):
        return self.W(x)

    def gates(self, x_t, state):
        x_r, x_z, _ = x_t.chunk(3, dim=-1)
        h_r, h_z = self.U_rz(state[0]).chunk(2, dim=-1)
        return {"reset": torch.sigmoid(x_r + h_r), "update": torch.sigmoid(x_z + h_z)}

    def step(self, x_t, state):
        h = state[0]
        gates = self.gates(x_t, state)
        r, z = gates["reset"], gates["update"]
        n = torch.tanh(x_t.chunk(3, dim=-1)[2] + self.U(r * h))
        h = z * h + (1 - z) * n
        return h, (h,)


@hookimpl
def register_cells(register):
    register(ChoGRU)
