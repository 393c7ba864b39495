"""The app's memory over a very long run, and its key latency at the end: a million synthetic training steps fed
through the path the engine's events take (the app's pump timer polls an engine, then ``RnnApp.feed``).

    python benchmarks/bench_app_memory.py                    # the README's numbers: a million steps
    python benchmarks/bench_app_memory.py --steps 50000 --keys 20     # a quick check

The app runs headless under Textual's Pilot at 120x36, as in benchmarks/bench_app.py, with its own timers: the
pump every 50 ms, the plot and status redrawn 4 times a second. In place of a run's process, a synthetic engine
answers each poll with the next ``--per-poll`` events of a made-up run: a Step every step (a loss falling from
4.2 towards 1.4 with noise), a GradFlow every 10 steps and an Eval every 250 (the default preset's rhythm), and a
200-character Sample every ``--sample-every`` steps (default 2,500: 400 samples, twice what the samples pane keeps;
a real run samples every 250 steps, about once a minute, but here a million steps pass in minutes, and a sample
every 250 steps would mount 160 sample widgets a second). Its other methods do nothing, so the app's own code is
all that is measured.

Reported: the process's resident memory (VmRSS) after mounting, after the first 5 % of the steps, and at the end
(goals: under 50 MB of growth after a million steps), the loss history's own arrays, and the key-press latency
after the million steps with the run still stepping at about 20 steps a second (goal: p95 <= 50 ms), timed as
bench_app.py times it: from the key press to the end of the first screen update that shows its effect.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import summary  # noqa: E402

from rnntui import events  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class SyntheticRun:
    """Answers the app's engine calls; ``poll`` hands out the next events of a made-up run."""

    def __init__(self, run_dir: str, steps: int, per_poll: int, sample_every: int = 2500):
        self.run_dir = run_dir
        self.sample_every = sample_every
        self.total = steps
        self.per_poll = per_poll
        self.step = 0
        self.state = "running"
        self.alive = True
        self.training = True
        self.started = False
        self.seconds_per_step = 0.05

    def poll(self, limit: int | None = None) -> list[events.Event]:
        found: list[events.Event] = []
        if not self.started:
            self.started = True
            found += [events.Started(self.run_dir, 0, 1_000_000, "cpu", "synthetic.txt", "gru", 1_000_000,
                                     100_000, 65, 260, None, None), events.RunState("running", 0)]
        count = self.per_poll if self.step < self.total else 1  # past the total: a run's own pace (20 steps/s)
        for _ in range(min(count, limit or count)):
            self.step = s = self.step + 1
            elapsed = s * self.seconds_per_step
            loss = 1.4 + 2.8 * math.exp(-s / 2000) + 0.05 * math.sin(s * 0.7) + 0.03 * math.sin(s * 0.013)
            found.append(events.Step(s, s / 260, loss, 8e-3, 1.0 + 0.1 * math.sin(s), 76_800.0, elapsed, None))
            if s % 10 == 0:
                found.append(events.GradFlow(s, {"embedding": 0.1, "layer 1": 0.5, "layer 2": 0.7, "head": 1.2}))
            if s % 250 == 0:
                found.append(events.Eval(s, loss + 0.05, events.bits(loss + 0.05), loss + 0.05, elapsed))
            if s % self.sample_every == 0:
                found.append(events.Sample(s, f"step {s} " + "the quick brown fox jumps over the lazy dog " * 4,
                                           elapsed, loss + 0.05, 0.8))
        return found

    def close(self, checkpoint: bool = False, timeout: float = 10.0) -> None:
        self.alive = False

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def stop(self, checkpoint: bool = True) -> None: ...

    def sample_now(self) -> None: ...

    def cancel_generate(self, request: int | None = None) -> None: ...


async def measure(args) -> None:
    from rnntui.tui.app import RnnApp

    app = RnnApp()
    run = SyntheticRun(tempfile.mkdtemp(prefix="rnntui-synthetic-run-"), args.steps, args.per_poll,
                       args.sample_every)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.5)
        gc.collect()
        start = rss_mb()
        print(f"RSS after mounting: {start:.1f} MB")
        app.engine = run
        began = time.perf_counter()
        early = None
        while run.step < args.steps:
            await asyncio.sleep(0.05)  # the app's timers run meanwhile (pilot.pause would wait for idle)
            if early is None and run.step >= args.steps // 20:
                gc.collect()
                early = rss_mb()
                print(f"RSS after {run.step:,} steps (5 %): {early:.1f} MB "
                      f"({time.perf_counter() - began:.0f} s in)")
        await pilot.pause(1.0)
        gc.collect()
        end = rss_mb()
        fed = time.perf_counter() - began
        print(f"RSS after {run.step:,} steps: {end:.1f} MB ({fed:.0f} s in, {run.step / fed:,.0f} steps/s fed)")
        print(f"growth: {end - start:+.1f} MB from mounting (goal < 50 MB), {end - early:+.1f} MB from 5 % "
              f"({(end - early) / early * 100:+.1f} %)")
        print(f"loss history: {history_bytes(app.history) / 1e6:.2f} MB of arrays, steps seen {app.steps_seen:,}; "
              f"samples {app.samples_pane.count:,}, {len(app.samples_pane.children) - 1} of them mounted")
        if args.keys:
            typed, toggled = await key_latency(app, pilot, args.keys)
            for what, found in (("typing in the prompt", typed), ("toggling b/l/t", toggled),
                                ("all keys", typed + toggled)):
                print(f"key press -> visible update after {run.step:,} steps, {what} ({len(found)} keys): "
                      f"{summary(found)}  (goal: p95 <= 50 ms)")
        app.engine = None


def history_bytes(history) -> int:
    """The bytes held by the numpy arrays reachable from the history's curves."""
    import numpy as np

    total = 0
    for curve in vars(history).values():
        for value in vars(curve).values() if hasattr(curve, "__dict__") else ():
            if isinstance(value, np.ndarray):
                total += value.nbytes
            elif hasattr(value, "__dict__"):
                total += sum(v.nbytes for v in vars(value).values() if isinstance(v, np.ndarray))
    return total


async def key_latency(app, pilot, keys: int) -> tuple[list[float], list[float]]:
    """bench_app.py's measurement: letters typed into the prompt, then b, l and t in turn."""
    latencies: list[float] = []
    pending: list = []
    display = app._display

    def timed_display(screen, renderable):
        display(screen, renderable)
        if renderable is not None and pending and pending[1]():
            latencies.append(time.perf_counter() - pending[0])
            pending.clear()

    app._display = timed_display

    async def press(key: str, predicate) -> None:
        pending[:] = [time.perf_counter(), predicate]
        await pilot.press(key)
        deadline = time.perf_counter() + 2.0
        while pending and time.perf_counter() < deadline:
            await asyncio.sleep(0.002)
        if pending:  # never shown: count it as 2 s
            latencies.append(time.perf_counter() - pending[0])
            pending.clear()
        await pilot.pause(0.1)

    area = app.query_one("#prompt-input")
    await pilot.press("i")
    letters = "the quick brown fox jumps over the lazy dog "
    for i in range(keys // 2):
        before = len(area.text)
        await press(letters[i % len(letters)].replace(" ", "space"), lambda b=before: len(area.text) > b)
    typed = latencies[:]
    latencies.clear()
    await pilot.press("escape")
    pane = app.loss_pane
    toggles = [("b", lambda: pane.bits), ("l", lambda: pane.log_y), ("t", lambda: pane.x_axis == "time")]
    by_key: dict[str, list[float]] = {}
    for i in range(keys - keys // 2):
        key, state = toggles[i % 3]
        before = state()
        await press(key, lambda s=state, b=before: s() != b)
        by_key.setdefault(key, []).append(latencies[-1])
    app._display = display
    for key, found in by_key.items():
        print(f"  `{key}` ({len(found)} presses): {summary(found)}")
    return typed, latencies


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--per-poll", type=int, default=2000, help="events of the synthetic run per poll (50 ms)")
    p.add_argument("--sample-every", type=int, default=2500, help="steps between synthetic samples")
    p.add_argument("--samples-shown", type=int, default=None,
                   help="samples the samples pane keeps mounted (default: the app's own, MAX_SHOWN), to see its share")
    p.add_argument("--keys", type=int, default=100, help="key presses for the latency measurement (0: skip)")
    args = p.parse_args()
    os.environ.setdefault("RNNTUI_HOME", tempfile.mkdtemp(prefix="rnntui-bench-memory-"))
    os.environ.setdefault("RNNTUI_LOAD_PLUGINS", "")
    if args.samples_shown is not None:
        from rnntui.tui.widgets import samples

        samples.MAX_SHOWN = args.samples_shown
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
