"""minGRU and minLSTM from Feng, Tung, Ahmed, Bengio and Hajimirsadeghi, "Were RNNs All We Needed?" (2024,
arXiv 2410.01201): the GRU and LSTM with every dependence of the gates on the previous state removed, which makes
the recurrence linear in h, so the whole sequence can be computed by a parallel scan instead of a loop.

    minGRU:   z = sigmoid(Linear_z(x)),  n = g(Linear_h(x)),  h' = (1 - z) * h + z * n
    minLSTM:  f = sigmoid(Linear_f(x)),  i = sigmoid(Linear_i(x)),  n = g(Linear_h(x))
              f', i' = f / (f + i), i / (f + i)      (normalised so the scale of h does not depend on time)
              h' = f' * h + i' * n
    g(v) = v + 0.5 if v >= 0 else sigmoid(v)        (keeps n > 0, so the scan can work in log space)

Both are h_t = a_t * h_{t-1} + b_t with a_t, b_t > 0 computed from x alone; ``step`` is that recurrence (used for
generation and as the reference). ``forward_sequence`` computes the whole sequence by the path the option ``scan``
names:

- ``log``: Heinsen's log-space parallel scan, as in the paper's code: a* = cumsum(log a), h = exp(a* +
  logcumsumexp(log b - a*)) + exp(a*) * h_0 (the h_0 term kept apart, so h_0 may be any sign and never goes
  through a log). O(log T) deep, a few whole-sequence operations: the fast path on a GPU.
- ``blocked``: a two-level scan in linear space: the recurrence runs inside blocks of ~sqrt(T) steps, all blocks
  at once, then across the block ends, and every step gets its block's incoming state: 2 sqrt(T) sequential steps
  instead of T, and no exp or log (products of a in (0, 1) only underflow where they are negligible). Its backward
  pass is the same scan run backwards in time (``LinearScan``), not T steps of autograd bookkeeping.
- ``loop``: the step loop itself.
- ``auto`` (default): ``log`` on a GPU, ``blocked`` on the CPU, where logcumsumexp costs ~50 ns per element and
  the log-space scan is slower than the step loop (benchmarks/bench_scan.py; the README has the numbers).

This is the bare recurrence of the paper's code (one linear layer for the gates and candidate, no expansion factor
or output projection): rnntui stacks the layers and adds the embedding and the head.
Weights: ``linear`` (Linear on x with bias; blocks z, h for minGRU and f, i, h for minLSTM).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from rnntui import hookimpl

__version__ = "1.0"
SCANS = ("auto", "log", "blocked", "loop")


def g(v):
    # = v + 0.5 where v >= 0, else sigmoid(v); written without torch.where, whose backward costs 2x as much
    return F.relu(v) + torch.sigmoid(v.clamp(max=0))


def log_g(v):
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -F.softplus(-v))


def log_space_scan(log_a, log_b, h0):
    """h_t = a_t * h_{t-1} + b_t for every t at once, from log a, log b (B, T, H) and h_0 (B, H)."""
    a_star = torch.cumsum(log_a, dim=1)
    return torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1)) + torch.exp(a_star) * h0.unsqueeze(1)


def _blocked(a, b, h0, reverse=False):
    """h_t = a_t * h_{t-1} + b_t for every t (h_t = a_t * h_{t+1} + b_t, from the end, if reverse), from a, b
    (B, T, H) and the incoming state h0 (B, H), in blocks of ~sqrt(T) steps: the recurrence inside every block at
    once (from a zero state, with the running products of a), then across the block ends, then each block's
    incoming state added to its steps. No autograd (see LinearScan)."""
    batch, length, hidden = a.shape
    size = max(1, math.isqrt(length))
    blocks = -(-length // size)
    pad = blocks * size - length
    if pad:  # a = 1, b = 0 past the end (before the start, if reverse): the padding changes no real step
        sides = (0, 0, pad, 0) if reverse else (0, 0, 0, pad)
        a, b = F.pad(a, sides, value=1.0), F.pad(b, sides)
    a, b = a.reshape(batch, blocks, size, hidden), b.reshape(batch, blocks, size, hidden)
    steps = range(size - 1, -1, -1) if reverse else range(size)
    local = torch.empty_like(b)
    local[:, :, steps[0]] = b[:, :, steps[0]]
    for before, j in zip(steps, steps[1:]):
        torch.addcmul(b[:, :, j], a[:, :, j], local[:, :, before], out=local[:, :, j])
    decay = a.flip(2).cumprod(2).flip(2) if reverse else a.cumprod(2)  # running products of a in each block
    carry = torch.empty(batch, blocks, hidden, dtype=a.dtype, device=a.device)
    order = range(blocks - 1, -1, -1) if reverse else range(blocks)
    carry[:, order[0]] = h0
    for before, k in zip(order, order[1:]):
        torch.addcmul(local[:, before, steps[-1]], decay[:, before, steps[-1]], carry[:, before], out=carry[:, k])
    local.addcmul_(decay, carry.unsqueeze(2))
    local = local.view(batch, blocks * size, hidden)
    return local[:, pad:] if reverse else local[:, :length]


class LinearScan(torch.autograd.Function):
    """The blocked scan with its own backward pass, which is the same recurrence run backwards in time:
    g_t = dL/dh_t + a_{t+1} g_{t+1}; then dL/db_t = g_t, dL/da_t = g_t h_{t-1}, dL/dh_0 = a_1 g_1."""

    @staticmethod
    def forward(ctx, a, b, h0):
        h = _blocked(a, b, h0)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx, grad):
        a, h, h0 = ctx.saved_tensors
        a_next = torch.roll(a, -1, dims=1)  # a_{t+1}; the wrapped-around last one meets the zero state
        g = _blocked(a_next, grad, torch.zeros_like(h0), reverse=True)
        grad_a = None
        if ctx.needs_input_grad[0]:
            grad_a = torch.empty_like(g)
            torch.mul(g[:, 1:], h[:, :-1], out=grad_a[:, 1:])
            torch.mul(g[:, 0], h0, out=grad_a[:, 0])
        return grad_a, g, a[:, 0] * g[:, 0]


def blocked_scan(a, b, h0):
    """h_t = a_t * h_{t-1} + b_t for every t at once, from a, b (B, T, H) and h_0 (B, H)."""
    return LinearScan.apply(a, b, h0)


class _MinRNN(nn.Module):
    blocks = 2

    def __init__(self, input_size, hidden_size, scan="auto"):
        super().__init__()
        if scan not in SCANS:
            raise ValueError(f"{self.name} scan must be one of {', '.join(SCANS)}")
        self.hidden_size = hidden_size
        self.scan = scan
        self.linear = nn.Linear(input_size, self.blocks * hidden_size)

    def initial_state(self, batch, device=None):
        return (torch.zeros(batch, self.hidden_size, device=device),)

    def project_input(self, x):
        return self.linear(x)

    def forward_sequence(self, x, state):
        scan = self.scan if self.scan != "auto" else ("blocked" if x.device.type == "cpu" else "log")
        if scan == "loop":
            outputs = []
            for x_t in self.project_input(x).unbind(1):
                h, state = self.step(x_t, state)
                outputs.append(h)
            return torch.stack(outputs, dim=1), state
        pre = self.linear(x).chunk(self.blocks, dim=-1)
        if scan == "log":
            h = log_space_scan(*self.log_coefficients(*pre), state[0])
        else:
            h = blocked_scan(*self.coefficients(*pre), state[0])
        return h, (h[:, -1],)

    def step(self, x_t, state):
        a, b = self.coefficients(*x_t.chunk(self.blocks, dim=-1))
        h = a * state[0] + b
        return h, (h,)

    def gates(self, x_t, state):
        return self.gate_values(*x_t.chunk(self.blocks, dim=-1))


class MinGRU(_MinRNN):
    """minGRU (Feng et al. 2024): a GRU whose gate reads only the input, trained by a parallel scan over time;
    h = (1 - z) * h_prev + z * g(W_h x), z = sigmoid(W_z x). Option scan=auto|log|blocked|loop."""

    name = "mingru"
    blocks = 2
    memory_gates = {"update": "left"}  # for the inspector: z near 0 keeps h

    @staticmethod
    def coefficients(k, v):
        z = torch.sigmoid(k)
        return 1 - z, z * g(v)

    @staticmethod
    def gate_values(k, v):
        return {"update": torch.sigmoid(k)}

    @staticmethod
    def log_coefficients(k, v):
        return -F.softplus(k), -F.softplus(-k) + log_g(v)  # log(1 - z), log z + log g(v)


class MinLSTM(_MinRNN):
    """minLSTM (Feng et al. 2024): an LSTM whose forget and input gates read only the input (normalised to sum to
    1), with no output gate or cell/state split, trained by a parallel scan over time. Option scan."""

    name = "minlstm"
    blocks = 3
    memory_gates = {"forget": "right"}  # for the inspector: f' near 1 keeps h

    @staticmethod
    def coefficients(kf, ki, v):
        f, i = torch.sigmoid(kf), torch.sigmoid(ki)
        return f / (f + i), i / (f + i) * g(v)

    @staticmethod
    def gate_values(kf, ki, v):  # the normalised gates f', i' the recurrence uses
        f, i = torch.sigmoid(kf), torch.sigmoid(ki)
        return {"forget": f / (f + i), "input": i / (f + i)}

    @staticmethod
    def log_coefficients(kf, ki, v):
        diff = F.softplus(-kf) - F.softplus(-ki)  # log(i / f)
        return -F.softplus(diff), -F.softplus(-diff) + log_g(v)  # log f', log i' + log g(v)


@hookimpl
def register_cells(register):
    register(MinGRU)
    register(MinLSTM)
