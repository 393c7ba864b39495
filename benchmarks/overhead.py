"""Training overhead: rnntui's training loop against a bare PyTorch nn.LSTM loop of the same shapes.

    python benchmarks/overhead.py [--rounds 5] [--steps 10] [--precision fp32|bf16]

Both train a 2x256 LSTM language model (embedding 256), batch 64, sequence length 100, AdamW, global-norm
clipping, hidden state carried between batches, on tinyshakespeare. They run in one process, alternating in
blocks of --steps steps so that both see the same machine load; chars/s is wall-clock time over whole blocks
(rnntui's includes its event stream and run log). Reports the median of each and their ratio (goal >= 0.95).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnntui.core.data import make_dataset
from rnntui.core.config import TrainConfig
from rnntui.run import build_trainer

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "tinyshakespeare.txt"
H, LAYERS, B, T, E = 256, 2, 64, 100, 256


class BareLoop:
    """The loop a PyTorch user would write by hand: no events, no logging, no checkpoints."""

    def __init__(self, data: np.ndarray, vocab_size: int, amp: torch.dtype | None):
        self.data = torch.from_numpy(data.astype(np.int64))
        self.embed = nn.Embedding(vocab_size, E)
        self.lstm = nn.LSTM(E, H, num_layers=LAYERS, batch_first=True)
        self.head = nn.Linear(H, vocab_size)
        self.params = [*self.embed.parameters(), *self.lstm.parameters(), *self.head.parameters()]
        self.opt = torch.optim.AdamW(self.params, lr=2e-3)
        self.stream_len = (len(self.data) - 1) // B // T * T
        self.state = None
        self.pos = 0
        self.amp = amp

    def step(self) -> None:
        if self.pos + T > self.stream_len:
            self.pos, self.state = 0, None
        idx = torch.arange(B)[:, None] * self.stream_len + self.pos + torch.arange(T + 1)[None, :]
        window = self.data[idx]
        x, y = window[:, :-1], window[:, 1:]
        with torch.autocast("cpu", dtype=self.amp or torch.float32, enabled=self.amp is not None):
            out, state = self.lstm(self.embed(x), self.state)
            logits = self.head(out)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 5.0)
        self.opt.step()
        loss.item()
        self.state = tuple(s.detach() for s in state)
        self.pos += T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(corpus=str(CORPUS), cell="lstm", n_layer=LAYERS, n_hidden=H, n_embd=E, batch_size=B,
                             seq_len=T, lr=2e-3, clip=5.0, eval_every=10**9, sample_every=10**9,
                             precision=args.precision)
        trainer = build_trainer(config, Path(tmp) / "run")
        trainer.start()
        bare = BareLoop(make_dataset(CORPUS.read_text()).train, len(trainer.vocab),
                        torch.bfloat16 if args.precision == "bf16" else None)
        for _ in range(3):  # warm-up
            trainer.step()
            bare.step()
        ours, theirs = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for _ in range(args.steps):
                trainer.step()  # the whole step: its events, the run's log
            ours.append(args.steps * B * T / (time.perf_counter() - start))
            start = time.perf_counter()
            for _ in range(args.steps):
                bare.step()
            theirs.append(args.steps * B * T / (time.perf_counter() - start))
        trainer.close()
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"precision {args.precision}: rnntui {a:,.0f} chars/s, bare nn.LSTM {b:,.0f} chars/s, ratio {a / b:.3f}")


if __name__ == "__main__":
    main()
