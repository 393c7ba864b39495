"""Training on a large text file: time to the first step and peak memory, with a cold and a warm encoding cache.

    python benchmarks/bench_large_corpus.py 1G          # the README's numbers (needs ~3 GB free under /tmp)
    python benchmarks/bench_large_corpus.py 64M         # a quick check

It writes a text file of the given size under /tmp (tinyshakespeare and nietzsche from ../shared/corpora, one
after the other, over and over; a generated English-like text when they are missing), never in the repository,
then runs ``rnntui train FILE --max-steps 3`` twice in a fresh RNNTUI_HOME: first with an empty cache (the text
is hashed, counted and encoded into the memory-mapped cache), then again (the cache is reused). For each run it
reports the wall time until the first training step finished (the run's "started" event, seen in its
events.jsonl as it happens, plus the first step's own duration from the same log), the whole command's wall
time, and the child's peak resident memory (getrusage / wait4 ru_maxrss).

The validation split is kept small (--val-fraction, default 0.001) because the trainer validates on the whole
split at the end of a run: that measures the model's speed, not the data path's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgG]?)[bB]?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"a size such as 1G, 200M or 5000000, not {text!r}")
    return int(float(m.group(1)) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[m.group(2).lower()])


def make_file(path: Path, size: int) -> None:
    parts = [p.read_bytes() for p in (SHARED / "tinyshakespeare.txt", SHARED / "nietzsche.txt") if p.exists()]
    if not parts:
        words = b"the of and to in that it is was he for on are with as his they be at one have this from".split()
        parts = [b" ".join(words[(i * 7 + j) % len(words)] for j in range(12)) + b".\n" for i in range(50_000)]
        parts = [b"".join(parts)]
    block = b"".join(parts)
    with open(path, "wb") as f:
        written = 0
        while written + len(block) <= size:
            f.write(block)
            written += len(block)
        rest = block[: size - written]
        f.write(rest[: rest.rfind(b"\n") + 1])  # whole lines only, so no character is cut in half


def run_train(file: Path, home: Path, run_dir: Path, steps: int, val_fraction: float) -> dict:
    cmd = [sys.executable, "-m", "rnntui.cli", "train", str(file), "--max-steps", str(steps), "--quiet",
           "--run-dir", str(run_dir), "--val-fraction", str(val_fraction), "--sample-length", "50",
           "--device", "cpu"]
    env = {**os.environ, "RNNTUI_HOME": str(home), "RNNTUI_LOAD_PLUGINS": ""}
    log = run_dir / "events.jsonl"
    started = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t_started = None
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if t_started is None and log.exists() and '"type": "started"' in log.read_text():
            t_started = time.perf_counter() - started
        time.sleep(0.01)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    err = child.stderr.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"rnntui train failed ({child.returncode}):\n{err}")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    first_step = next(e for e in events if e["type"] == "step")
    return {
        "time_to_first_step_s": round((t_started or wall) + first_step["elapsed"], 2),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "train_chars": next(e for e in events if e["type"] == "started")["train_chars"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("size", type=parse_size, nargs="?", default=parse_size("64M"),
                        help="size of the generated text file: 1G, 200M, ... (64M)")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to write the file and cache (/tmp)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--val-fraction", type=float, default=0.001)
    parser.add_argument("--keep", action="store_true", help="keep the generated file and cache")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rnntui-bench-large-", dir=args.dir))
    try:
        file = work / "large.txt"
        t = time.perf_counter()
        make_file(file, args.size)
        generated = time.perf_counter() - t
        home = work / "home"
        results = {"file_bytes": file.stat().st_size, "generate_s": round(generated, 1)}
        for label in ("cold cache", "warm cache"):
            results[label] = run_train(file, home, work / label.replace(" ", "-"), args.steps, args.val_fraction)
        entries = list((home / "cache" / "text").glob("[0-9a-f]*"))
        results["cache_entry_bytes"] = sum(p.stat().st_size for e in entries for p in e.iterdir())
        if args.json:
            print(json.dumps(results, indent=1))
            return
        print(f"text file: {results['file_bytes'] / 2**20:,.0f} MiB (generated in {generated:.1f}s); "
              f"cache entry {results['cache_entry_bytes'] / 2**20:,.0f} MiB")
        for label in ("cold cache", "warm cache"):
            r = results[label]
            print(f"{label}: time to first step {r['time_to_first_step_s']:.1f}s, whole command "
                  f"{r['wall_s']:.1f}s, peak RSS {r['peak_rss_mb']:,.0f} MB ({r['train_chars']:,} train chars)")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
