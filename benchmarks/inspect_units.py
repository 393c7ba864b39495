"""Does the inspector find the interpretable units of Karpathy, Johnson & Fei-Fei (2015), and how fast is it?

    python benchmarks/inspect_units.py [--only speed|brackets|stdlib] [--work DIR] [--reuse]
                                       [--brackets-steps 1500] [--stdlib-time 200] [--rounds 3]

- speed: inspecting 10,000 characters of a 2x256 model (LSTM, GRU; random weights: the cost does not depend on
  them), one thread: recording every layer's states and gates, the 11 built-in features, ranking every unit
  against each, gate saturation, and the surprisal with top-5 guesses from the recording. Beside it, in the
  same process and rounds, a plain forward pass of the same text: the ratio is the reliable number on a shared
  machine.
  Goal: the whole inspection under 2 s.
- brackets: `rnntui train brackets --cell lstm --max-steps N --seed 1 --threads 1` (the default preset: 2x256,
  embedding 64), then the units that track `depth` over the first 10,000 characters of the validation split.
  Goal: |correlation| >= 0.8.
- stdlib: the same on python-stdlib (first 2,000,000 characters) with a time budget, for `indent` and `column`.
  Goal: |correlation| >= 0.6.

Each found unit is shown as a text capture: a stretch of text with the unit's activation under it, as shades.
Results go to stdout and WORK/results.json. Training runs in a child process (`rnntui train`), one thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rnntui.core.cells import GRU, LSTM
from rnntui.core.data import Vocab
from rnntui.core.features import builtin_features
from rnntui.core.inspection import record, score, score_ids, score_recording
from rnntui.core.model import CharModel
from rnntui.core.config import TrainConfig
from rnntui.core.device import autocast_dtype
from rnntui.run import load_dataset, load_model
from rnntui.core.units import gate_saturation, rank_features

ROOT = Path(__file__).resolve().parents[1]
RNNTUI = [sys.executable, "-c", "import sys; from rnntui.cli import main; sys.exit(main())"]
SHAKESPEARE = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"
CHARS = 10_000
SHADES = " .:-=+*#%@"


def speed(rounds: int) -> dict:
    text = SHAKESPEARE.read_text()[:CHARS] if SHAKESPEARE.exists() else (ROOT / "README.md").read_text()[:CHARS]
    vocab = Vocab.from_text(text)
    features = list(builtin_features().values())
    results = {}
    for cell in (LSTM, GRU):
        torch.manual_seed(0)
        model = CharModel(len(vocab), cell, n_layer=2, n_hidden=256, n_embd=64).eval()
        ids = torch.from_numpy(vocab.encode(text).astype(np.int64))[None]
        times: dict[str, list[float]] = {k: [] for k in ("forward", "record", "rank", "saturation", "surprisal",
                                                         "total", "score")}
        for _ in range(rounds):
            t0 = time.perf_counter()
            with torch.no_grad():
                model(ids, model.initial_state(1))
            t1 = time.perf_counter()
            rec = record(model, vocab, text)
            t2 = time.perf_counter()
            rank_features(rec, features)
            t3 = time.perf_counter()
            gate_saturation(rec)
            t4 = time.perf_counter()
            score_recording(model, vocab, rec)
            t5 = time.perf_counter()
            score(model, vocab, text)
            t6 = time.perf_counter()
            for key, seconds in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t1, t6 - t5)):
                times[key].append(seconds)
        results[cell.name] = {k: statistics.median(v) for k, v in times.items()}
    print(f"inspecting {len(text):,} characters of a 2x256 model (embedding 64), 1 thread, median of {rounds}, "
          "seconds:")
    columns = ("forward", "record", "rank", "saturation", "surprisal", "total", "score")
    print("cell  " + " ".join(f"{c:>10}" for c in columns) + "  total/forward")
    for name, r in results.items():
        print(f"{name:<5} " + " ".join(f"{r[k]:10.3f}" for k in columns) + f"  {r['total'] / r['forward']:13.1f}")
    print("forward: a plain forward pass; record: states and gates; rank: 11 features against every unit; "
          "saturation: the gates; surprisal: the score from the recording; total: those four (all an inspection "
          "needs); score: rnntui score's own pass, for comparison")
    return results


def train(args: list[str], run_dir: Path, reuse: bool) -> float:
    if reuse and any((run_dir / "checkpoints").glob("step-*.json")):
        return 0.0
    started = time.perf_counter()
    subprocess.run([*RNNTUI, "train", *args, "--seed", "1", "--threads", "1", "--quiet", "--run-dir", str(run_dir),
                    "--eval-chars", "20000", "--sample-every", "100000"], check=True)
    return time.perf_counter() - started


def capture(text: str, values: np.ndarray, start: int, width: int = 100, lines: int = 3) -> str:
    """Text lines with the unit's activation under each character as a shade (darkest = highest; the scale runs
    from the 2nd to the 98th percentile over the whole text, so a few outliers do not flatten it)."""
    low, high = np.percentile(values, [2, 98])
    span = (high - low) or 1.0
    shades = np.clip(((values - low) / span * (len(SHADES) - 1)).round().astype(int), 0, len(SHADES) - 1)
    out, t = [], start
    for _ in range(lines):
        end = text.find("\n", t)
        end = min(t + width, len(text) if end < 0 else end)
        out.append("  " + text[t:end].replace("\t", " "))
        out.append("  " + "".join(SHADES[s] for s in shades[t:end]))
        t = end + 1
    return "\n".join(out)


def find_units(run_dir: Path, feature_names: list[str]) -> dict:
    torch.set_num_threads(1)
    model, vocab, meta = load_model(run_dir)
    config = TrainConfig.from_json(meta["config"])
    val = load_dataset(config).val
    text = vocab.decode(val[:CHARS])
    started = time.perf_counter()
    rec = record(model, vocab, text)
    features = [builtin_features()[name] for name in feature_names]
    ranking = rank_features(rec, features, top=3)
    seconds = time.perf_counter() - started
    check = score_ids(model, vocab, val[: (config.eval_chars or len(val) - 1) + 1], streams=64,
                      seq_len=max(config.seq_len, 128), amp_dtype=autocast_dtype(config.precision, torch.device("cpu")))
    result = {"run": str(run_dir), "step": meta["step"], "val_bpc_run": meta["val_loss"] / np.log(2),
              "val_bpc_score": check.bits_per_char, "inspect_seconds": seconds, "ranking": ranking, "captures": {}}
    print(f"{run_dir.name}: step {meta['step']}, validation {result['val_bpc_run']:.4f} bits/char "
          f"(rnntui score: {check.bits_per_char:.4f}); inspected {len(text):,} characters in {seconds:.2f} s")
    for feature in features:
        best = ranking[feature.name][0]
        unit = rec.parse_unit(f"{best['layer']}:{best['kind']}:{best['unit']}")
        others = ", ".join(f"{u['layer']}:{u['kind']}:{u['unit']} {u['score']:+.3f}" for u in ranking[feature.name][1:])
        print(f"  {feature.name}: unit {unit} correlation {best['score']:+.3f}   (next: {others})")
        start = text.find("\n", 4000) + 1
        shown = capture(text, rec.activation(unit), start, lines=6)
        print(shown)
        result["captures"][feature.name] = {"unit": str(unit), "text": shown}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("speed", "brackets", "stdlib"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/rnntui-inspect-units"))
    parser.add_argument("--reuse", action="store_true", help="reuse trained runs found in --work")
    parser.add_argument("--brackets-steps", type=int, default=1500)
    parser.add_argument("--stdlib-time", type=float, default=200.0, help="seconds (under 240: the 2x256 preset)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    results_path = args.work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    if args.only in (None, "speed"):
        results["speed"] = speed(args.rounds)
    if args.only in (None, "brackets"):
        run_dir = args.work / "brackets"
        seconds = train(["brackets", "--cell", "lstm", "--max-steps", str(args.brackets_steps)], run_dir, args.reuse)
        results["brackets"] = {**find_units(run_dir, ["depth"]), "train_seconds": seconds,
                               "budget": f"--max-steps {args.brackets_steps}"}
    if args.only in (None, "stdlib"):
        run_dir = args.work / "stdlib"
        seconds = train(["python-stdlib", "--corpus-option", "max_chars=2000000", "--cell", "lstm", "--max-time",
                         str(args.stdlib_time)], run_dir, args.reuse)
        results["stdlib"] = {**find_units(run_dir, ["indent", "column", "newline-soon", "quote", "comment",
                                                    "depth"]),
                             "train_seconds": seconds, "budget": f"--max-time {args.stdlib_time:g}"}
    results_path.write_text(json.dumps(results, indent=1))
    print(f"results: {results_path}")


if __name__ == "__main__":
    main()
