"""Experiment: each probe's own metric rises while a small model trains on it (rnntui.corpora.probe_metrics).

    python benchmarks/probe_metrics_rise.py                 # all four probes, ~2 minutes on one CPU thread
    python benchmarks/probe_metrics_rise.py --probe copy --steps 900

For each probe: a 1-layer GRU trained with AdamW on the probe's training split (the corpus's default options,
except arithmetic, which uses 2-digit operands so that a short run learns to add), its metric computed on the first
``--chars`` characters of the validation split before training and at three points during it. The training loop
is a plain one (not the Trainer), so the experiment keeps working while the Trainer changes.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from rnntui.core.cells import GRU
from rnntui.core.data import Streams, make_dataset
from rnntui.core.evaluation import log_probs
from rnntui.core.model import CharModel, detach
from rnntui.corpora import probe_metrics, synthetic

# probe -> (corpus options, hidden size, training steps, the metric's headline numbers)
SETUPS = {
    "hello": ({"chars": 20_000}, 32, 120, ("accuracy", "loss")),
    "brackets": ({"chars": 300_000}, 64, 450, ("closing_accuracy", "closing_loss")),
    "copy": ({"chars": 300_000}, 128, 600, ("copy_accuracy", "copy_loss")),
    "arithmetic": ({"chars": 300_000, "digits": 2}, 128, 600, ("exact_match", "sum_accuracy", "sum_loss")),
}


def run(probe: str, steps: int | None, chars: int, seed: int) -> list[dict]:
    options, hidden, default_steps, headline = SETUPS[probe]
    steps = steps or default_steps
    generate = synthetic.PROBES[probe][0]
    dataset = make_dataset("".join(generate(**options)))
    text_ids = np.asarray(dataset.val[:chars])
    text = dataset.vocab.decode(text_ids)
    metric = probe_metrics.METRICS[probe]
    torch.manual_seed(seed)
    model = CharModel(len(dataset.vocab), GRU, n_layer=1, n_hidden=hidden, n_embd=32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    streams = Streams(dataset.train, 32, 64)
    states = model.initial_state(32)
    checkpoints = sorted({0, steps // 3, 2 * steps // 3, steps})
    rows = []
    started = time.perf_counter()
    for step in range(steps + 1):
        if step in checkpoints:
            values = metric(text, dataset.vocab.chars, log_probs(model, text_ids))
            rows.append({"step": step, **{k: values[k] for k in headline}})
        if step == steps:
            break
        x, y, reset = streams.batch(step)
        if reset:
            states = model.initial_state(32)
        logits, new_states = model(x, states)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        states = detach(new_states)
    rows[-1]["seconds"] = round(time.perf_counter() - started, 1)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", choices=list(SETUPS), action="append")
    parser.add_argument("--steps", type=int, help="training steps (default: per probe)")
    parser.add_argument("--chars", type=int, default=4000, help="validation characters scored")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {probe: run(probe, args.steps, args.chars, args.seed) for probe in args.probe or SETUPS}
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for probe, rows in results.items():
        print(probe)
        for row in rows:
            print("  " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
