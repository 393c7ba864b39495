"""UGRNN, the update-gate RNN of Collins, Sohl-Dickstein and Sussillo ("Capacity and Trainability in Recurrent
Neural Networks", ICLR 2017, arXiv 1611.09913): a vanilla RNN candidate mixed into the state by one update gate,

    c = tanh(W_ch h + W_cx x + b_c)
    g = sigmoid(W_gh h + W_gx x + b_g)
    h' = g * h + (1 - g) * c

The paper found it nearly as capable per parameter as the GRU and LSTM, and easier to train than the vanilla RNN.
Weights: ``Wx`` (Linear on x with the biases; blocks c, g) and ``Wh`` (Linear on h, no bias; blocks c, g).
"""

import math

import torch
from torch import nn

from rnntui import hookimpl

__version__ = "1.0"


class UGRNN(nn.Module):
    """Update-gate RNN (Collins et al. 2017): h = g * h_prev + (1 - g) * tanh(W h_prev + W x + b), one gate g."""

    name = "ugrnn"
    memory_gates = {"update": "right"}  # for the inspector: g near 1 keeps h

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.Wx = nn.Linear(input_size, 2 * hidden_size)
        self.Wh = nn.Linear(hidden_size, 2 * hidden_size, bias=False)
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, batch, device=None):
        return (torch.zeros(batch, self.hidden_size, device=device),)

    def recurrent_matrix(self):
        return self.Wh.weight

    def project_input(self, x):
        return self.Wx(x)

    def _pre(self, x_t, state):
        return (x_t + self.Wh(state[0])).chunk(2, dim=-1)  # candidate c, gate g, before their activations

    def gates(self, x_t, state):
        return {"update": torch.sigmoid(self._pre(x_t, state)[1])}

    def step(self, x_t, state):
        h = state[0]
        c, g = self._pre(x_t, state)
        g = torch.sigmoid(g)
        h = g * h + (1 - g) * torch.tanh(c)
        return h, (h,)


@hookimpl
def register_cells(register):
    register(UGRNN)
