"""The LSTM with peepholes of Greff et al., "LSTM: A Search Space Odyssey" (IEEE TNNLS 2017, arXiv 1503.04069),
and the eight variants the paper compares, each a one-line change to the vanilla equations.

Vanilla (V), in the paper's notation (y = block output, c = cell, p = peephole vectors, elementwise):

    z = g(W_z x + R_z y_prev + b_z)                         block input, g = tanh
    i = sigmoid(W_i x + R_i y_prev + p_i * c_prev + b_i)    input gate
    f = sigmoid(W_f x + R_f y_prev + p_f * c_prev + b_f)    forget gate
    c = z * i + c_prev * f
    o = sigmoid(W_o x + R_o y_prev + p_o * c + b_o)         output gate, peeps at the new cell
    y = h(c) * o                                            h = tanh

Variants: NIG i = 1; NFG f = 1; NOG o = 1; NIAF g(x) = x; NOAF h(x) = x; NP no peepholes; CIFG f = 1 - i;
FGR the gates also see all three gate activations of the previous step (i, f, o += R_g [i, f, o]_prev).
A gate a variant removes has no weights at all. Weights: ``W`` (Linear, input -> the blocks present, in the order
z, i, f, o; its bias is b), ``R`` (hidden -> the same blocks, no bias), ``p_i``/``p_f``/``p_o``, and for FGR
``R_gates`` (3H -> 3H, no bias; rows and columns in the order i, f, o). The forget-gate bias starts at
``forget_bias`` (1, as rnntui's lstm; Jozefowicz et al. 2015). Without peepholes (NP) the cell is PyTorch's LSTM.
"""

import math

import torch
from torch import nn

from rnntui import hookimpl

__version__ = "1.0"


class PeepholeLSTM(nn.Module):
    """LSTM with peephole connections, the vanilla LSTM of Greff et al. 2017 ("LSTM: A Search Space Odyssey")."""

    name = "lstm-peephole"
    # the variant switches; each subclass below flips one
    input_gate = forget_gate = output_gate = True
    input_activation = output_activation = True
    peepholes = True
    coupled = False  # CIFG: f = 1 - i
    full_gate_recurrence = False  # FGR
    # for the inspector: the state is the output and the memory cell c; a forget gate near 1 keeps the cell
    state_names = ("h", "c")
    memory_gates = {"forget": "right"}

    def __init__(self, input_size, hidden_size, forget_bias=1.0):
        super().__init__()
        self.hidden_size = hidden_size
        self.has_f = self.forget_gate and not self.coupled
        self.blocks = ["z"] + [g for g, on in (("i", self.input_gate), ("f", self.has_f), ("o", self.output_gate))
                               if on]
        n = len(self.blocks)
        self.W = nn.Linear(input_size, n * hidden_size)
        self.R = nn.Linear(hidden_size, n * hidden_size, bias=False)
        if self.peepholes:
            for gate, on in (("i", self.input_gate), ("f", self.has_f), ("o", self.output_gate)):
                if on:
                    self.register_parameter(f"p_{gate}", nn.Parameter(torch.empty(hidden_size)))
        if self.full_gate_recurrence:
            self.R_gates = nn.Linear(3 * hidden_size, 3 * hidden_size, bias=False)
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        if self.has_f:
            k = self.blocks.index("f")
            with torch.no_grad():
                self.W.bias[k * hidden_size:(k + 1) * hidden_size].fill_(float(forget_bias))

    def initial_state(self, batch, device=None):
        zeros = torch.zeros(batch, self.hidden_size, device=device)
        state = (zeros, zeros.clone())
        if self.full_gate_recurrence:  # the previous step's gate activations i, f, o
            state += (torch.zeros(batch, 3 * self.hidden_size, device=device),)
        return state

    def recurrent_matrix(self):
        """R, the weights on y_{t-1}, blocks in the order of ``blocks`` (peepholes and FGR's R_gates aside)."""
        return self.R.weight

    def project_input(self, x):
        return self.W(x)

    def _forward(self, x_t, state):
        """One step -> (output y, new cell c, the gates i, f, o; 1 where the variant has no such gate)."""
        y, c_prev = state[0], state[1]
        pre = dict(zip(self.blocks, (x_t + self.R(y)).chunk(len(self.blocks), dim=-1)))
        if self.full_gate_recurrence:
            r_i, r_f, r_o = self.R_gates(state[2]).chunk(3, dim=-1)
            pre["i"], pre["f"], pre["o"] = pre["i"] + r_i, pre["f"] + r_f, pre["o"] + r_o
        z = torch.tanh(pre["z"]) if self.input_activation else pre["z"]
        one = torch.ones_like(c_prev)
        i = torch.sigmoid(pre["i"] + self.p_i * c_prev if self.peepholes else pre["i"]) if self.input_gate else one
        if self.coupled:
            f = 1 - i
        elif self.has_f:
            f = torch.sigmoid(pre["f"] + self.p_f * c_prev if self.peepholes else pre["f"])
        else:
            f = one
        c = z * i + c_prev * f
        o = torch.sigmoid(pre["o"] + self.p_o * c if self.peepholes else pre["o"]) if self.output_gate else one
        y = (torch.tanh(c) if self.output_activation else c) * o
        return y, c, (i, f, o)

    def step(self, x_t, state):
        y, c, (i, f, o) = self._forward(x_t, state)
        if self.full_gate_recurrence:
            return y, (y, c, torch.cat([i, f, o], dim=-1))
        return y, (y, c)

    def gates(self, x_t, state):
        """The gates the variant has (CIFG's forget gate is 1 - input, so it is shown too)."""
        _, _, (i, f, o) = self._forward(x_t, state)
        present = (("input", i, self.input_gate), ("forget", f, self.forget_gate), ("output", o, self.output_gate))
        return {name: value for name, value, on in present if on}


class NIG(PeepholeLSTM):
    """Greff et al.'s NIG variant: LSTM with peepholes and no input gate (i = 1)."""

    name = "lstm-nig"
    input_gate = False


class NFG(PeepholeLSTM):
    """Greff et al.'s NFG variant: LSTM with peepholes and no forget gate (f = 1); hurts, as the paper found."""

    name = "lstm-nfg"
    forget_gate = False


class NOG(PeepholeLSTM):
    """Greff et al.'s NOG variant: LSTM with peepholes and no output gate (o = 1)."""

    name = "lstm-nog"
    output_gate = False


class NIAF(PeepholeLSTM):
    """Greff et al.'s NIAF variant: LSTM with peepholes and no input activation function (z = W x + R y + b)."""

    name = "lstm-niaf"
    input_activation = False


class NOAF(PeepholeLSTM):
    """Greff et al.'s NOAF variant: LSTM with peepholes and no output activation (y = c * o); hurts, as found."""

    name = "lstm-noaf"
    output_activation = False


class NP(PeepholeLSTM):
    """Greff et al.'s NP variant: LSTM without peepholes, i.e. the standard LSTM, run by the step loop."""

    name = "lstm-np"
    peepholes = False


class CIFG(PeepholeLSTM):
    """Greff et al.'s CIFG variant: LSTM with peepholes and coupled input and forget gates (f = 1 - i)."""

    name = "lstm-cifg"
    coupled = True


class FGR(PeepholeLSTM):
    """Greff et al.'s FGR variant: LSTM with peepholes whose gates also see all gate activations of step t-1."""

    name = "lstm-fgr"
    full_gate_recurrence = True
    state_names = ("h", "c", "gates")


CELLS = (PeepholeLSTM, NIG, NFG, NOG, NIAF, NOAF, NP, CIFG, FGR)


@hookimpl
def register_cells(register):
    for cell in CELLS:
        register(cell)
