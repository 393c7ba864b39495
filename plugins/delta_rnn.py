"""The Delta-RNN of Ororbia, Mikolov and Reitter ("Learning Simpler Language Models with the Differential State
Framework", Neural Computation 2017, arXiv 1703.08864), as in the authors' Theano ``DeltaRNNLayer``:

    d1 = alpha * (V h) * (W x)                   multiplicative term
    d2 = beta1 * (V h) + beta2 * (W x)           additive term
    z  = tanh(d1 + d2 + b)                       proposed state
    r  = sigmoid(W x + b_r)                      data-driven gate; it reuses the same W x
    h' = phi((1 - r) * z + r * h)                phi = identity by default

Barely more parameters than a vanilla RNN (one matrix for x, one for h, five vectors), yet a gated cell: the
state moves towards z only as fast as the input allows. alpha, beta1 and beta2 start at 1 (the authors' code
notes alpha = 2 for their PTB runs: ``--cell-option alpha=2``). Weights: ``W``, ``V`` (no bias), ``b``, ``b_r``,
``alpha``, ``beta1``, ``beta2``.
"""

import math

import torch
from torch import nn

from rnntui import hookimpl

__version__ = "1.0"

ACTIVATIONS = {"identity": lambda v: v, "tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


class DeltaRNN(nn.Module):
    """Delta-RNN (Ororbia et al. 2017): a gated cell with a vanilla RNN's parameter count; the input decides how
    fast the state moves towards tanh(alpha*Vh*Wx + beta1*Vh + beta2*Wx + b). Options alpha, activation."""

    name = "delta-rnn"
    memory_gates = {"update": "right"}  # for the inspector: r near 1 keeps h

    def __init__(self, input_size, hidden_size, alpha=1.0, activation="identity"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"delta-rnn activation must be one of {', '.join(ACTIVATIONS)}")
        self.hidden_size = hidden_size
        self.phi = ACTIVATIONS[activation]
        self.W = nn.Linear(input_size, hidden_size, bias=False)
        self.V = nn.Linear(hidden_size, hidden_size, bias=False)
        bound = 1 / math.sqrt(hidden_size)
        nn.init.uniform_(self.W.weight, -bound, bound)
        nn.init.uniform_(self.V.weight, -bound, bound)
        self.b = nn.Parameter(torch.zeros(hidden_size))
        self.b_r = nn.Parameter(torch.zeros(hidden_size))
        self.alpha = nn.Parameter(torch.full((hidden_size,), float(alpha)))
        self.beta1 = nn.Parameter(torch.ones(hidden_size))
        self.beta2 = nn.Parameter(torch.ones(hidden_size))

    def initial_state(self, batch, device=None):
        return (torch.zeros(batch, self.hidden_size, device=device),)

    def recurrent_matrix(self):
        return self.V.weight

    def project_input(self, x):
        wx = self.W(x)
        return torch.cat([wx, torch.sigmoid(wx + self.b_r)], dim=-1)

    def gates(self, x_t, state):
        # the paper's data-driven gate r mixes the old state with the proposal, as a GRU's update gate does
        return {"update": x_t.chunk(2, dim=-1)[1]}

    def step(self, x_t, state):
        h = state[0]
        wx, r = x_t.chunk(2, dim=-1)
        vh = self.V(h)
        z = torch.tanh(self.alpha * vh * wx + self.beta1 * vh + self.beta2 * wx + self.b)
        h = self.phi((1 - r) * z + r * h)
        return h, (h,)


@hookimpl
def register_cells(register):
    register(DeltaRNN)
