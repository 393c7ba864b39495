"""Experiment: teacher forcing against scheduled sampling (rnntui.core.scheduled) on a probe.

    python benchmarks/scheduled_sampling.py                               # arithmetic, 2-digit operands
    python benchmarks/scheduled_sampling.py --schedule inverse-sigmoid:100 --steps 900

Two 1-layer GRUs from the same seed on the same batches: one teacher-forced, one with the schedule (the model's
own samples fed back with probability 1 - eps). Reported for each: the teacher-forced validation loss, the
free-running evaluation (conditioned on its own samples for 100 characters, then scored on the next 100 true
ones) and its gap, the probe's metrics, and the seconds spent training (the sampled pass runs the step path). A
plain training loop, not the Trainer, so the experiment keeps working while the Trainer changes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from rnntui.core.cells import GRU
from rnntui.core.data import Streams, eval_chunks, make_dataset
from rnntui.core.evaluation import free_running, log_probs
from rnntui.core.model import CharModel, detach
from rnntui.core.scheduled import parse_schedule, sampled_forward, step_generator
from rnntui.corpora import probe_metrics, synthetic


@torch.no_grad()
def val_loss(model, data) -> float:
    model.eval()
    total, count, states = 0.0, 0, None
    for x, y, reset in eval_chunks(data):
        if reset or states is None:
            states = model.initial_state(x.shape[0])
        logits, states = model(x, states)
        total += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count


def train(dataset, schedule, steps: int, seed: int) -> tuple[CharModel, float]:
    torch.manual_seed(seed)
    model = CharModel(len(dataset.vocab), GRU, n_layer=1, n_hidden=128, n_embd=32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    streams = Streams(dataset.train, 32, 64)
    states = model.initial_state(32)
    started = time.perf_counter()
    for step in range(steps):
        x, y, reset = streams.batch(step)
        if reset:
            states = model.initial_state(32)
        p = schedule(step) if schedule else 1.0
        logits, new_states, _ = sampled_forward(model, x, states, p, step_generator(seed, step))
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        states = detach(new_states)
    return model, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", default="arithmetic", choices=list(probe_metrics.METRICS))
    parser.add_argument("--schedule", default="linear:1.0,0.5,600")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = {"chars": 300_000, **({"digits": 2} if args.probe == "arithmetic" else {})}
    dataset = make_dataset("".join(synthetic.PROBES[args.probe][0](**options)))
    ids = np.asarray(dataset.val[:4000])
    text = dataset.vocab.decode(ids)
    for label, schedule in (("teacher forcing", None), (args.schedule, parse_schedule(args.schedule))):
        model, seconds = train(dataset, schedule, args.steps, args.seed)
        free = free_running(model, np.asarray(dataset.val), 100, 100, streams=64, seed=args.seed)
        metrics = probe_metrics.METRICS[args.probe](text, dataset.vocab.chars, log_probs(model, ids))
        headline = {k: round(v, 3) for k, v in metrics.items() if isinstance(v, float)}
        print(f"{label}: val loss {val_loss(model, np.asarray(dataset.val)):.4f}, free-running "
              f"{free['free_running_loss']:.4f} vs teacher-forced {free['teacher_forced_loss']:.4f} "
              f"(gap {free['gap']:+.4f}); {headline}; trained in {seconds:.1f} s")


if __name__ == "__main__":
    main()
