"""n-gram baselines (rnntui.analysis.ngram): time on tinyshakespeare, time and peak memory on a large text.

    python benchmarks/bench_ngram.py                 # tinyshakespeare orders 1..8, then a 100 MB text
    python benchmarks/bench_ngram.py --size 20M      # a quicker large-text check

Each measurement runs in a child process (``python -c``), timed from its start (imports, reading and encoding the
text included) and with its peak resident memory from wait4's ru_maxrss; a fresh RNNTUI_HOME, so nothing is
cached. Goals (issue 12): tinyshakespeare 1..8 under 20 s on a 2-core CPU; 100 MB within 1.5 GB.

The large text is written under /tmp, never in the repository: the Python standard library's source,
tinyshakespeare and nietzsche, one after the other, over and over, each round with its letters permuted at
random (a different permutation each round). A plain repetition would add no new n-grams after the first round;
with the permutations every round brings as many new ones as the first, more than a natural text of the same
size would (whose count of distinct n-grams grows slower than its length), so the memory measured is a
pessimistic one. Its losses mean little: part of its validation split is in a permutation no training round
used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_large_corpus import parse_size  # noqa: E402

CHILD = """
import json, sys, time
t = time.perf_counter()
from pathlib import Path
from rnntui.analysis import ngram
from rnntui.corpora.textcache import load_dataset
dataset = load_dataset(sys.argv[1], 0.1)
loaded = time.perf_counter() - t
result = ngram.baseline(dataset, int(sys.argv[2]), cache_dir=Path(sys.argv[3]))
print(json.dumps({"load_s": loaded, "baseline_s": result["seconds"], "orders": result["orders"],
                  "train_chars": result["train_chars"]}))
"""


def make_file(path: Path, size: int) -> None:
    import random

    from rnntui.corpora import STDLIB_EXCLUDE, stdlib_dir

    parts = [p.read_bytes() for p in sorted(stdlib_dir().rglob("*.py"))
             if not set(p.relative_to(stdlib_dir()).parts) & set(STDLIB_EXCLUDE)]
    parts += [p.read_bytes() for p in (SHARED / "tinyshakespeare.txt", SHARED / "nietzsche.txt") if p.exists()]
    block = b"".join(parts).decode("utf-8", "replace").encode("utf-8")
    letters = bytes(range(ord("a"), ord("z") + 1)) + bytes(range(ord("A"), ord("Z") + 1))
    rng = random.Random(0)
    with open(path, "wb") as f:
        written, first = 0, True
        while written < size:
            shuffled = bytes(rng.sample(letters, len(letters)))
            chunk = block if first else block.translate(bytes.maketrans(letters, shuffled))
            chunk = chunk[: size - written]
            f.write(chunk)
            written += len(chunk)
            first = False


def measure(text: Path, order: int, work: Path) -> dict:
    env = {**os.environ, "RNNTUI_HOME": str(work / "home"), "RNNTUI_LOAD_PLUGINS": ""}
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(text), str(order), str(work / "cache")],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(child.stderr.read().decode())
    result = json.loads(out)
    return {**result, "wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def report(label: str, r: dict) -> None:
    print(f"{label}: whole command {r['wall_s']:.1f} s (load {r['load_s']:.1f} s, n-grams {r['baseline_s']:.1f} s), "
          f"peak RSS {r['peak_rss_mb']:,.0f} MB, {r['train_chars']:,} training characters")
    for o in r["orders"]:
        print(f"  order {o['order']:2d}: {o['loss']:.4f} nats/char, {o['bpc']:.3f} bpc, {o['size']:>11,} n-grams")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("100M"), help="large text size (100M)")
    parser.add_argument("--order", type=int, default=8)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rnntui-bench-ngram-"))
    results = {}
    try:
        results["tinyshakespeare"] = measure(SHARED / "tinyshakespeare.txt", args.order, work / "small")
        if not args.skip_large:
            text = work / "large.txt"
            make_file(text, args.size)
            results["large"] = {**measure(text, args.order, work / "large"), "bytes": text.stat().st_size}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    report("tinyshakespeare", results["tinyshakespeare"])
    if "large" in results:
        report(f"large text ({results['large']['bytes'] / 2**20:,.0f} MiB)", results["large"])


if __name__ == "__main__":
    main()
