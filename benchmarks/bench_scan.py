"""minGRU and minLSTM (plugins/min_rnns.py): their parallel scans (forward_sequence with scan=log, Heinsen's
log-space scan, and scan=blocked, the two-level linear-space scan) against their own step loop (rnntui's generic
engine path), forward and backward of one layer, at sequence length 256.

    python benchmarks/bench_scan.py [--length 256] [--sizes 8x64,32x256] [--rounds 7] [--threads N]

Input size = hidden size; --sizes lists BATCHxHIDDEN. Each round times one forward + backward of every path, the
paths alternating so they share the machine's load; speed-ups are ratios of median times (loop / scan).
Goal: >= 5x at length 256.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from rnntui.core.cells import run_steps
from rnntui.plugins import load_file, validate_cell

GALLERY = Path(__file__).resolve().parents[1] / "plugins" / "min_rnns.py"


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--sizes", default="8x64,32x256", help="BATCHxHIDDEN, comma-separated")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    module = load_file(GALLERY)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"torch {torch.__version__} on {device}, {torch.get_num_threads()} threads; length {args.length}; "
          f"forward + backward of one layer, median of {args.rounds} rounds")
    for size in args.sizes.split(","):
        batch, hidden = map(int, size.split("x"))
        for cls in (module.MinGRU, module.MinLSTM):
            torch.manual_seed(0)
            cell = validate_cell(cls)(hidden, hidden).to(device)
            x = torch.randn(batch, args.length, hidden, device=device, requires_grad=True)
            state = cell.initial_state(batch, device)

            def scan(kind):
                def run():
                    cell.scan = kind
                    h, _ = cell.forward_sequence(x, state)
                    h.sum().backward()
                    if device == "cuda":
                        torch.cuda.synchronize()
                return run

            def loop():
                h, _ = run_steps(cell, x, state)
                h.sum().backward()
                if device == "cuda":
                    torch.cuda.synchronize()

            paths = {"log scan": scan("log"), "blocked scan": scan("blocked"), "step loop": loop}
            for run in paths.values():  # warm-up
                run()
            times: dict[str, list[float]] = {name: [] for name in paths}
            for _ in range(args.rounds):
                for name, run in paths.items():
                    times[name].append(timed(run))
            median = {name: statistics.median(values) for name, values in times.items()}
            loop_s = median["step loop"]
            print(f"{cls.name:8s} batch {batch:3d} hidden {hidden:4d}: " + "  ".join(
                f"{name} {seconds * 1e3:7.1f} ms" + ("" if name == "step loop" else f" ({loop_s / seconds:4.1f}x)")
                for name, seconds in median.items()))


if __name__ == "__main__":
    main()
