"""IndRNN, the independently recurrent neural network of Li, Li, Cook, Zhu and Gao (CVPR 2018, arXiv 1803.04831):

    h' = relu(W x + u * h + b)

The recurrent weight is a vector u (each unit sees only its own past), so a step costs O(H), not O(H^2), and
with relu the network can be made very deep and trained over thousands of steps. It is nn.RNN(nonlinearity="relu")
with a diagonal recurrent matrix, diag(u), and no second bias. ``recurrent_max_abs`` clips |u| in the forward
pass (the paper bounds |u| by 2^(1/T) for T steps to keep gradients from exploding; None: no bound). u starts
uniform in [0, 1] as in the authors' code, W and b as PyTorch initialises nn.RNN.

Weights: ``W`` (Linear on x with the bias b), ``u``.
"""

import math

import torch
from torch import nn

from rnntui import hookimpl

__version__ = "1.0"


class IndRNN(nn.Module):
    """IndRNN (Li et al. 2018): h = relu(W x + u * h_prev + b), a vector recurrent weight, one per unit;
    options nonlinearity=relu|tanh, recurrent_max_abs=None (e.g. 2 ** (1 / T))."""

    name = "indrnn"

    def __init__(self, input_size, hidden_size, nonlinearity="relu", recurrent_max_abs=None):
        super().__init__()
        if nonlinearity not in ("relu", "tanh"):
            raise ValueError("indrnn nonlinearity must be 'relu' or 'tanh'")
        self.hidden_size = hidden_size
        self.activation = torch.relu if nonlinearity == "relu" else torch.tanh
        self.recurrent_max_abs = recurrent_max_abs
        self.W = nn.Linear(input_size, hidden_size)
        bound = 1 / math.sqrt(hidden_size)
        nn.init.uniform_(self.W.weight, -bound, bound)
        nn.init.uniform_(self.W.bias, -bound, bound)
        self.u = nn.Parameter(torch.rand(hidden_size))

    def initial_state(self, batch, device=None):
        return (torch.zeros(batch, self.hidden_size, device=device),)

    def recurrent_matrix(self):
        """diag(u), clipped as in the step: its largest singular value is max |u|."""
        u = self.u
        if self.recurrent_max_abs is not None:
            u = u.clamp(-self.recurrent_max_abs, self.recurrent_max_abs)
        return torch.diag(u)

    def project_input(self, x):
        return self.W(x)

    def step(self, x_t, state):
        u = self.u
        if self.recurrent_max_abs is not None:
            u = u.clamp(-self.recurrent_max_abs, self.recurrent_max_abs)
        h = self.activation(x_t + u * state[0])
        return h, (h,)


@hookimpl
def register_cells(register):
    register(IndRNN)
