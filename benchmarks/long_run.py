"""Runs without a budget: the default preset's learning rate (which, with no budget, holds the peak after warm-up)
against horizon-free schedules (rnntui.core.schedules), as the app's default run trains when left open.

    python benchmarks/long_run.py                              # the README's comparison: 25 minutes per arm
    python benchmarks/long_run.py --minutes 5 --eval-every 100  # a first look (~10 minutes of one core)

Every arm is the default preset (`rnntui train <corpus> --threads 1`, no budget) with only the learning rate
swapped. The arms train in one process, one step of each in turn (``--interleave``, the default), so whatever else
runs on the machine slows them alike; each arm's clock counts only the time spent in its own steps, evaluations and
samples, so "minute 25" of an arm is what 25 minutes of the app's run would have done. Printed at each evaluation:
the arm, its step, its clock, its learning rate, the smoothed training loss, the validation loss and its best;
then per arm the best and final validation loss (goal: final within 2 % of best) and when the overfitting warning
and ``--patience 5`` would have acted. ``--json`` writes every evaluation for plotting.

Arms: ``constant`` (today's default without a budget), ``plateau`` (PlateauSchedule: halve the rate when the best
validation loss is ``--patience-steps`` old, floor 1 % of the peak), ``inverse-sqrt`` (``--timescale``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnntui import events  # noqa: E402
from rnntui.core.schedules import OverfitWatch, Patience, PlateauSchedule, inverse_sqrt  # noqa: E402

SHARED_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "tinyshakespeare.txt"
TRAIN_SMOOTHING = 0.98  # the smoothed training loss the overfitting watch compares (about the last 50 steps)


@dataclass
class Arm:
    name: str
    trainer: object
    rate: object  # (step) -> learning rate
    schedule: PlateauSchedule | None = None
    clock: float = 0.0  # seconds spent in this arm's own steps, evaluations and samples
    ema: float = 0.0
    ema_n: int = 0
    evals: list[dict] = field(default_factory=list)
    watch: OverfitWatch = field(default_factory=OverfitWatch)
    patience: Patience = field(default_factory=lambda: Patience(5))
    warned_at: int | None = None
    patience_at: int | None = None
    events: object = None

    def smoothed(self) -> float:
        return self.ema / (1 - TRAIN_SMOOTHING**self.ema_n) if self.ema_n else math.nan


def make_arm(name: str, args) -> Arm:
    from rnntui.core.config import apply_preset, learning_rate
    from rnntui.run import build_trainer

    config = apply_preset("default", corpus=str(args.corpus), threads=args.threads,
                          **({"eval_every": args.eval_every} if args.eval_every else {}))
    trainer = build_trainer(config)
    c = trainer.config
    if name == "constant":
        return Arm(name, trainer, lambda step: learning_rate(c, step, 0.0, None))
    if name == "plateau":
        schedule = PlateauSchedule(lr=c.lr, warmup_steps=c.warmup_steps, patience_steps=args.patience_steps,
                                   factor=args.factor, min_ratio=args.min_ratio)
        return Arm(name, trainer, schedule.rate, schedule)
    if name == "inverse-sqrt":
        return Arm(name, trainer, lambda step: inverse_sqrt(c.lr, step, c.warmup_steps, args.timescale))
    raise SystemExit(f"unknown arm {name!r}: choose constant, plateau, inverse-sqrt")


def advance(arm: Arm, args) -> bool:
    """One step of the arm (with its evaluation and sample, when due); False once its clock is spent. The Trainer
    builds a step's events (evaluation and sample included) before yielding its Step, and takes the next step only
    when asked for the event after the last of them: the evaluation is seen here before the next step's rate."""
    import rnntui.core.trainer as trainer_module

    trainer_module.learning_rate = lambda c, step, epoch, progress: arm.rate(step)  # what train_step asks for
    started = time.perf_counter()
    try:
        while True:
            event = next(arm.events)
            if isinstance(event, events.Eval):
                record(arm, event)
            elif isinstance(event, events.Step):
                arm.ema = TRAIN_SMOOTHING * arm.ema + (1 - TRAIN_SMOOTHING) * event.loss
                arm.ema_n += 1
                break
    finally:
        arm.clock += time.perf_counter() - started
    return arm.clock < args.minutes * 60


def record(arm: Arm, event: events.Eval) -> None:
    if arm.schedule is not None and arm.schedule.observe(event.step, event.val_loss):
        print(f"  {arm.name}: learning rate cut to {arm.schedule.rate(event.step):.2e} at step {event.step}")
    train_loss = arm.smoothed()
    message = arm.watch.observe(event.step, train_loss, event.val_loss)
    if message and arm.warned_at is None:
        arm.warned_at = event.step
        print(f"  {arm.name}: {message}")
    if arm.patience.observe(event.val_loss) and arm.patience_at is None:
        arm.patience_at = event.step
    arm.evals.append({"step": event.step, "clock": arm.clock, "train_time": event.elapsed,
                      "lr": arm.rate(event.step), "train_loss": train_loss, "val_loss": event.val_loss,
                      "best_val_loss": event.best_val_loss})
    print(f"{arm.name:>12s} step {event.step:6,d}  {arm.clock / 60:5.1f} min  lr {arm.rate(event.step):.2e}  "
          f"train {train_loss:.4f}  val {event.val_loss:.4f}  best {event.best_val_loss:.4f}", flush=True)


def summary(arm: Arm) -> str:
    if not arm.evals:
        return f"{arm.name}: no evaluation"
    best = min(arm.evals, key=lambda e: e["val_loss"])
    final = arm.evals[-1]
    gap = (final["val_loss"] / best["val_loss"] - 1) * 100
    return (f"{arm.name:>12s}: best val {best['val_loss']:.4f} (step {best['step']:,}, {best['clock'] / 60:.1f} min)"
            f", final {final['val_loss']:.4f} (step {final['step']:,}, {final['clock'] / 60:.1f} min): "
            f"{gap:+.1f} % of best (goal within 2 %); overfitting warning "
            f"{'at step ' + format(arm.warned_at, ',') if arm.warned_at else 'never'}; --patience 5 would stop "
            f"{'at step ' + format(arm.patience_at, ',') if arm.patience_at else 'never'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=SHARED_CORPUS)
    p.add_argument("--minutes", type=float, default=25.0, help="each arm's own clock")
    p.add_argument("--arms", default="constant,plateau", help="comma-separated: constant, plateau, inverse-sqrt")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (default: the preset's)")
    p.add_argument("--patience-steps", type=int, default=500, help="plateau: how old the best may get")
    p.add_argument("--factor", type=float, default=0.5, help="plateau: the cut")
    p.add_argument("--min-ratio", type=float, default=0.01, help="plateau: the floor, relative to the peak")
    p.add_argument("--timescale", type=int, default=1000, help="inverse-sqrt: steps to the first 1/sqrt(2)")
    p.add_argument("--no-interleave", dest="interleave", action="store_false",
                   help="run the arms one after the other instead")
    p.add_argument("--json", type=Path, help="write every evaluation of every arm here")
    args = p.parse_args()
    os.environ.setdefault("RNNTUI_HOME", tempfile.mkdtemp(prefix="rnntui-long-run-"))
    os.environ.setdefault("RNNTUI_LOAD_PLUGINS", "")

    import torch

    arms = [make_arm(name, args) for name in args.arms.split(",")]
    c = arms[0].trainer.config
    print(f"default preset on {args.corpus.name}: {c.cell} {c.n_layer}x{c.n_hidden}, lr {c.lr}, eval every "
          f"{c.eval_every}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs; "
          f"{args.minutes:g} min per arm, {'interleaved' if args.interleave else 'one after the other'}")
    for arm in arms:
        arm.events = arm.trainer.run()
    running = list(arms)
    while running:
        for arm in list(running) if args.interleave else running[:1]:
            if not advance(arm, args):
                arm.events.close()
                running.remove(arm)
    print()
    for arm in arms:
        print(summary(arm))
    if args.json:
        args.json.write_text(json.dumps({arm.name: arm.evals for arm in arms}, indent=1))


if __name__ == "__main__":
    main()
