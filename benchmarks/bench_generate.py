"""Headless generation speed: rnntui's paths against a bare PyTorch loop, same weights, one process.

    python benchmarks/bench_generate.py [--chars 1000] [--rounds 3] [--ttfc-runs 5] [--compile]

Models: 2 x 256 GRU and LSTM (embedding 256, tinyshakespeare's 65 symbols), random weights saved as rnntui
checkpoints, and the gallery's MGU (a plugin cell) for contrast. Per cell, characters per second at batch 1
(temperature 0.8, one stream) for:

- ``rnntui numpy``: what `rnntui sample` runs for the built-in cells (rnntui.core.numpy_cells; no torch);
- ``rnntui torch``: rnntui.core.torch_stepper's fast mode (torch's fused single-step cells; for plugin cells their
  project_input + step), the path for plugin cells and GPUs;
- ``step path``: model.step per character, what rnntui.core.sampling.generate runs today;
- ``bare nn.GRU``: a straightforward PyTorch loop, nn.GRU/nn.LSTM (2 layers) on a sequence of one, the head,
  softmax, torch.multinomial: the goal's yardstick.

Each on one thread and on torch's default threads (numpy's BLAS stays at one thread, as in `rnntui sample`). The
variants alternate round by round so they share the machine's load; the median is shown. Then the time to the
first generated character of the real `rnntui sample` command (a subprocess per run, median of --ttfc-runs),
whose goal is under 1 s for the built-in cells. --compile adds the plugin cell's step under torch.compile.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `rnntui sample` does, before numpy loads

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

from rnntui.core import checkpoint  # noqa: E402
from rnntui.core.data import Vocab  # noqa: E402
from rnntui.core.decode import Sampling  # noqa: E402
from rnntui.core.model import CharModel  # noqa: E402
from rnntui.core.numpy_cells import NumpyStepper  # noqa: E402
from rnntui.core.torch_stepper import TorchStepper  # noqa: E402
from rnntui.core.config import TrainConfig  # noqa: E402
from rnntui.plugins import get_registry  # noqa: E402

VOCAB = Vocab(tuple(sorted("\n !$&',-.3:;?" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz")))
LAYERS, HIDDEN, PRIME, TEMPERATURE = 2, 256, "ROMEO:\n", 0.8


def make_run(directory: Path, cell: str) -> tuple[CharModel, Path]:
    """A model with random weights, saved as an rnntui checkpoint that `rnntui sample` reads."""
    torch.manual_seed(0)
    model = CharModel(len(VOCAB), get_registry().cell(cell), LAYERS, HIDDEN).eval()
    config = TrainConfig(corpus="tinyshakespeare", cell=cell, n_layer=LAYERS, n_hidden=HIDDEN)
    run = directory / cell
    checkpoint.save(run / "checkpoints", 1, {f"model.{k}": v for k, v in model.state_dict().items()},
                    {"config": config.to_json(), "vocab": list(VOCAB.chars)})
    return model, run


def rnntui_loop(stepper, n: int) -> float:
    """Characters per second of `rnntui sample`'s loop (a Sampling of one stream) on this stepper."""
    sampling = Sampling(stepper, VOCAB, PRIME, [TEMPERATURE], [1])
    t0 = time.perf_counter()
    count = sum(len(piece) for _, piece in sampling.run(n))
    return count / (time.perf_counter() - t0)


def bare_loop(model: CharModel, cell: str, n: int):
    """The yardstick: nn.GRU / nn.LSTM with the model's weights, stepped on sequences of one."""
    kind = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
    rnn = kind(HIDDEN, HIDDEN, LAYERS, batch_first=True)
    with torch.no_grad():
        for i, c in enumerate(model.cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(rnn, f"{name}_l{i}").copy_(getattr(c.fused, f"{name}_l0"))
    rnn.eval()
    generator = torch.Generator().manual_seed(1)

    def run() -> float:
        with torch.no_grad():
            x = torch.tensor([[VOCAB.chars.index(c) for c in PRIME]])
            out, state = rnn(model.embed(x), None)
            logits = model.head(out[:, -1])
            t0 = time.perf_counter()
            for _ in range(n):
                idx = torch.multinomial((logits / TEMPERATURE).softmax(-1), 1, generator=generator)
                out, state = rnn(model.embed(idx), state)
                logits = model.head(out[:, -1])
            return n / (time.perf_counter() - t0)
    return run


def variants(cell: str, model: CharModel, n: int, compile: bool) -> dict:
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    v = {}
    if cell in ("gru", "lstm", "rnn"):
        v["rnntui numpy"] = lambda: rnntui_loop(NumpyStepper(weights, cell), n)
    v["rnntui torch"] = lambda: rnntui_loop(TorchStepper(model), n)
    if compile and cell not in ("gru", "lstm", "rnn"):
        compiled = TorchStepper(model, compile=True)
        t0 = time.perf_counter()
        rnntui_loop(compiled, 20)
        print(f"  ({cell}: torch.compile warm-up {time.perf_counter() - t0:.1f} s)", flush=True)
        v["rnntui torch, compiled"] = lambda: rnntui_loop(compiled, n)
    v["step path"] = lambda: rnntui_loop(TorchStepper(model, reference=True), n)
    if cell in ("gru", "lstm"):
        v[f"bare nn.{cell.upper()}"] = bare_loop(model, cell, n)
    return v


def measure(named: dict, rounds: int) -> dict[str, float]:
    results = {name: [] for name in named}
    for _ in range(rounds):
        for name, fn in named.items():
            results[name].append(fn())
    return {name: statistics.median(r) for name, r in results.items()}


def first_character(run: Path, runs: int) -> tuple[float, float]:
    """Seconds from starting `rnntui sample` to its first generated character on a pipe: (median, min)."""
    times = []
    for seed in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "rnntui.cli", "sample", str(run), "--prime", PRIME,
                                 "--length", "200", "--seed", str(seed)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        got = b""
        while len(got) <= len(PRIME):
            chunk = proc.stdout.read1(4096)
            if not chunk:
                raise RuntimeError(f"rnntui sample {run} wrote nothing")
            got += chunk
        times.append(time.perf_counter() - t0)
        proc.wait()
    return statistics.median(times), min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=1000, help="characters per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ttfc-runs", type=int, default=5)
    ap.add_argument("--cells", default="gru,lstm,mgu")
    ap.add_argument("--compile", action="store_true", help="also the plugin cell's step under torch.compile")
    args = ap.parse_args()
    default_threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, default threads {default_threads}; "
          f"{LAYERS} x {HIDDEN}, vocabulary {len(VOCAB)}, batch 1, {args.chars} chars x {args.rounds} rounds\n")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for cell in args.cells.split(","):
            model, runs[cell] = make_run(Path(tmp), cell)
            print(f"{cell}:")
            speeds = {}
            for threads in sorted({1, default_threads}):
                torch.set_num_threads(threads)
                speeds[threads] = measure(variants(cell, model, args.chars, args.compile), args.rounds)
            torch.set_num_threads(default_threads)
            bare = next((name for name in speeds[1] if name.startswith("bare")), None)
            print(f"  {'':24s}" + "".join(f"{f'{t} thread' + 's' * (t > 1):>16s}" for t in speeds))
            for name in speeds[1]:
                row = "".join(f"{speeds[t][name]:10,.0f} c/s" + (f" {speeds[t][name] / speeds[t][bare]:4.1f}x"
                              if bare else "") for t in speeds)
                print(f"  {name:24s}{row}")
        print("\nfirst generated character of `rnntui sample` (subprocess, from launch; median / best):")
        for cell, run in runs.items():
            median, best = first_character(run, args.ttfc_runs)
            print(f"  {cell:6s} {median:5.2f} s / {best:5.2f} s")


if __name__ == "__main__":
    main()
