"""What measuring gradients through time costs, next to training (rnntui.core.dynamics.grad_through_time).

    python benchmarks/bench_grad_time.py                  # default preset (2x256 GRU) on tinyshakespeare
    python benchmarks/bench_grad_time.py --cell lstm --rounds 3

The Trainer's own training step and the measurement run side by side in one process, alternating (``--rounds``
rounds of ``--steps`` steps, then one measurement on the next batch with the carried states), so machine load
hits both alike. Reported: the median time of a step and of a measurement, and the overhead of measuring every
``--every`` steps, measurement / (every x step). Goal (issue 12): under 5 % at every 100 steps.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(SHAKESPEARE))
    parser.add_argument("--preset", default="default")
    parser.add_argument("--cell", help="override the preset's cell")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="rnntui-bench-gt-")  # the run's files go here, removed at the end
    os.environ["RNNTUI_HOME"] = home
    try:
        measure(args)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def measure(args: argparse.Namespace) -> None:

    import torch

    from rnntui.core.dynamics import grad_through_time
    from rnntui.core.config import apply_preset
    from rnntui.run import build_trainer

    overrides = {"cell": args.cell} if args.cell else {}
    config = apply_preset(args.preset, corpus=args.corpus, threads=args.threads, max_steps=10**6, **overrides)
    trainer = build_trainer(config, Path(os.environ["RNNTUI_HOME"]) / "run")
    trainer.train_step()  # warm-up: first-call allocations
    step_times, measure_times = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step()
        step_times.append((time.perf_counter() - started) / args.steps)
        x, y, _ = trainer.streams.batch(trainer.step)
        started = time.perf_counter()
        results = grad_through_time(trainer.model, x.to(trainer.device), y.to(trainer.device), trainer.states)
        measure_times.append(time.perf_counter() - started)
    step, measure = statistics.median(step_times), statistics.median(measure_times)
    c = trainer.config
    print(f"{c.cell} {c.n_layer}x{c.n_hidden}, batch {c.batch_size} x {c.seq_len}, precision "
          f"{trainer.amp_dtype or 'fp32'}, {torch.get_num_threads()} thread(s)")
    print(f"training step {step * 1000:.1f} ms; measurement {measure * 1000:.1f} ms "
          f"({len(results)} layers x {len(results[0].norms)} lags, sigma_max {[r.sigma_max for r in results]})")
    print(f"overhead at every {args.every} steps: {measure / (args.every * step) * 100:.2f} % of training time")


if __name__ == "__main__":
    main()
