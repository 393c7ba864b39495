"""minGRU and minLSTM from Feng, Tung, Ahmed, Bengio and Hajimirsadeghi, "Were RNNs All We Needed?" (2024,
arXiv 2410.01201): the GRU and LSTM with every dependence of the gates on the previous state removed, which makes
the recurrence linear in h and lets the whole sequence be computed by a parallel scan instead of a loop.

    minGRU:   z = sigmoid(Linear_z(x)),  n = g(Linear_h(x)),  h' = (1 - z) * h + z * n
    minLSTM:  f = sigmoid(Linear_f(x)),  i = sigmoid(Linear_i(x)),  n = g(Linear_h(x))
              f', i' = f / (f + i), i / (f + i)      (normalised so the scale of h does not depend on time)
              h' = f' * h + i' * n
    g(v) = v + 0.5 if v >= 0 else sigmoid(v)        (keeps n > 0, so the scan can work in log space)

Both are h_t = a_t * h_{t-1} + b_t with a_t, b_t > 0 computed from x alone. ``forward_sequence`` evaluates it for
all t at once with Heinsen's log-space scan, a* = cumsum(log a), h = exp(a* + logcumsumexp(log b - a*)) +
exp(a*) * h_0 (the h_0 term kept apart, so h_0 may be any sign and never goes through a log), O(log T) deep
instead of T sequential steps; ``step`` is the plain recurrence, used for generation and as the reference. This
is the bare recurrence of the paper's code (one linear layer for the gates and candidate, no expansion factor or
output projection): rnntui stacks the layers and adds the embedding and the head.

Weights: ``linear`` (Linear on x with bias; blocks z, h for minGRU and f, i, h for minLSTM).
"""

import torch
import torch.nn.functional as F
from torch import nn

from rnntui import hookimpl

__version__ = "1.0"


def g(v):
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_g(v):
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -F.softplus(-v))


def scan(log_a, log_b, h0):
    """h_t = a_t * h_{t-1} + b_t for every t at once, from log a, log b (B, T, H) and h_0 (B, H)."""
    a_star = torch.cumsum(log_a, dim=1)
    return torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1)) + torch.exp(a_star) * h0.unsqueeze(1)


class MinGRU(nn.Module):
    """minGRU (Feng et al. 2024): a GRU whose gate reads only the input, trained by a parallel scan over time;
    h = (1 - z) * h_prev + z * g(W_h x), z = sigmoid(W_z x)."""

    name = "mingru"

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(input_size, 2 * hidden_size)

    def initial_state(self, batch, device=None):
        return (torch.zeros(batch, self.hidden_size, device=device),)

    def project_input(self, x):
        return self.linear(x)

    def step(self, x_t, state):
        k, v = x_t.chunk(2, dim=-1)
        z = torch.sigmoid(k)
        h = (1 - z) * state[0] + z * g(v)
        return h, (h,)

    def forward_sequence(self, x, state):
        k, v = self.linear(x).chunk(2, dim=-1)
        # log(1 - z) = -softplus(k), log z = -softplus(-k)
        h = scan(-F.softplus(k), -F.softplus(-k) + log_g(v), state[0])
        return h, (h[:, -1],)


class MinLSTM(nn.Module):
    """minLSTM (Feng et al. 2024): an LSTM whose forget and input gates read only the input (normalised to sum to
    1), with no output gate or cell/state split, trained by a parallel scan over time."""

    name = "minlstm"

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(input_size, 3 * hidden_size)

    def initial_state(self, batch, device=None):
        return (torch.zeros(batch, self.hidden_size, device=device),)

    def project_input(self, x):
        return self.linear(x)

    def step(self, x_t, state):
        kf, ki, v = x_t.chunk(3, dim=-1)
        f, i = torch.sigmoid(kf), torch.sigmoid(ki)
        h = f / (f + i) * state[0] + i / (f + i) * g(v)
        return h, (h,)

    def forward_sequence(self, x, state):
        kf, ki, v = self.linear(x).chunk(3, dim=-1)
        diff = F.softplus(-kf) - F.softplus(-ki)  # log(i / f)
        # log f' = -softplus(log(i / f)), log i' = -softplus(log(f / i))
        h = scan(-F.softplus(diff), -F.softplus(-diff) + log_g(v), state[0])
        return h, (h[:, -1],)


@hookimpl
def register_cells(register):
    register(MinGRU)
    register(MinLSTM)
