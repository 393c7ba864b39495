"""Quality per CPU minute: validation loss on tinyshakespeare after a fixed training time.

    python benchmarks/quality.py --budgets 60 300 [--preset default] [--set key=value ...]

Trains with the preset on ../shared/corpora/tinyshakespeare.txt (first 90 % train / last 10 % validation, as
nanoGPT), with the learning-rate schedule fitted to the time budget, and evaluates once at the end over the whole
validation split. The budget counts training time only (the final evaluation is not counted).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rnntui.core.config import apply_preset
from rnntui.run import build_trainer
from rnntui.util.units import bits

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "tinyshakespeare.txt"


def measure(preset: str, budget: float, overrides: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = apply_preset(preset, corpus=str(CORPUS), max_time=budget, eval_every=10**9, sample_every=10**9,
                              **overrides)
        trainer = build_trainer(config, Path(tmp) / "run")
        started = time.perf_counter()
        done = list(trainer.run())[-1]
        return {"preset": preset, "budget_s": budget, "overrides": overrides, "val_loss": done.best_val_loss,
                "val_bpc": bits(done.best_val_loss), "steps": done.step,
                "train_s": round(done.elapsed, 1), "wall_s": round(time.perf_counter() - started, 1),
                "n_params": trainer.n_params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--budgets", type=float, nargs="+", default=[60, 300])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, _, v in (item.partition("=") for item in args.set)}
    for budget in args.budgets:
        print(json.dumps(measure(args.preset, budget, overrides)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
