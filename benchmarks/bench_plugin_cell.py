"""A step-only LSTM written as a plugin against the built-in LSTM (fused nn.LSTM), same shapes, one process.

    python benchmarks/bench_plugin_cell.py [--rounds 7] [--steps 3] [--threads N] [--compile]

The plugin cell is what a third party writes (below: torch and rnntui.hookimpl only, no forward_sequence), so
rnntui trains it with its generic engine: input projections hoisted out of the time loop, then its step in a
Python loop. The model is the default preset's: embedding 64 -> 2 x 256 cells -> head, batch 32, sequence 64,
AdamW. Each variant trains --steps optimizer steps per round (forward, backward, update), variants alternating
round by round so they share the machine's load; chars/s is the median over rounds. Also shown: the step loop as
first written (indexing ``projected[:, t]`` each step instead of ``unbind``), and with --compile the plugin
cell's step under torch.compile. Goal for the plugin cell in eager mode: >= 0.5 of the fused LSTM's chars/s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from rnntui import hookimpl
from rnntui.core import cells
from rnntui.core.model import CharModel
from rnntui.plugins import validate_cell

VOCAB, LAYERS, HIDDEN, EMBED, BATCH, SEQ = 96, 2, 256, 64, 32, 64


class StepLSTM(nn.Module):
    """An LSTM as a plugin author would write it: step only."""

    name = "step-lstm"

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.ih = nn.Linear(input_size, 4 * hidden_size)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size)

    def initial_state(self, batch, device=None):
        zeros = torch.zeros(batch, self.hidden_size, device=device)
        return (zeros, zeros.clone())

    def project_input(self, x):
        return self.ih(x)

    def step(self, x_t, state):
        h, c = state
        i, f, g, o = (x_t + self.hh(h)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


@hookimpl
def register_cells(register):
    register(StepLSTM)


def indexed_run_steps(cell, x, state):
    """The generic loop as first written: one ``projected[:, t]`` per step."""
    projected = cell.project_input(x)
    outputs = []
    for t in range(projected.shape[1]):
        h, state = cell.step(projected[:, t], state)
        outputs.append(h)
    return torch.stack(outputs, dim=1), state


def trainer(cell_class, run_steps=None):
    torch.manual_seed(0)
    model = CharModel(VOCAB, cell_class, LAYERS, HIDDEN, EMBED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    x, y = torch.randint(0, VOCAB, (BATCH, SEQ)), torch.randint(0, VOCAB, (BATCH, SEQ))
    original = cells.run_steps

    def step():
        if run_steps is not None:
            cells.run_steps = run_steps
        try:
            logits, _ = model(x, model.initial_state(BATCH))
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        finally:
            cells.run_steps = original

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per variant per round")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--compile", action="store_true", help="also time the plugin step under torch.compile")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    plugin_cell = validate_cell(StepLSTM)  # the class the registry would hand the engine
    variants = {
        "built-in lstm (fused nn.LSTM)": trainer(cells.LSTM),
        "plugin step-only LSTM (generic loop)": trainer(plugin_cell),
        "plugin step-only LSTM, indexed loop (before)": trainer(plugin_cell, indexed_run_steps),
    }
    if args.compile:
        compiled = type("CompiledStepLSTM", (plugin_cell,), {})
        compiled.step = torch.compile(plugin_cell.step, dynamic=False)
        variants["plugin step-only LSTM, torch.compile'd step"] = trainer(compiled)
    for step in variants.values():  # warm-up (and compilation)
        step()
        step()
    speeds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            started = time.perf_counter()
            for _ in range(args.steps):
                step()
            speeds[name].append(args.steps * BATCH * SEQ / (time.perf_counter() - started))
    fused = statistics.median(speeds["built-in lstm (fused nn.LSTM)"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {LAYERS}x{HIDDEN} cells, embedding {EMBED}, "
          f"batch {BATCH}, sequence {SEQ}; median of {args.rounds} rounds of {args.steps} steps")
    for name, values in speeds.items():
        median = statistics.median(values)
        print(f"{name:48s} {median:>9,.0f} chars/s  ratio {median / fused:.2f}  "
              f"(rounds {min(values):,.0f}-{max(values):,.0f})")


if __name__ == "__main__":
    main()
