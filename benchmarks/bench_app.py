"""The app under load: training speed under the app against the same run headless, and key-press latency while a
run trains at full speed.

    python benchmarks/bench_app.py                    # the README's numbers (default preset, python-docs)
    python benchmarks/bench_app.py --steps 60 --repeats 1 --keys 60     # a quick check

Throughput. The same configuration (``--preset``, default: the one `rnntui` runs) trains ``--warmup`` +
``--steps`` steps, alternately headless (``Trainer.run()`` in this process, as `rnntui train` does) and under the
app (``RnnApp`` driven headless by Textual's Pilot at 120x36: the run in its own process, the app pulling its
events every 50 ms and redrawing the plot and status 4 times a second, as when a user watches). Two figures per
mode, over the steps after the warm-up:
- training chars/s: characters per second of training step (the trainer's own per-step timing, summed), which
  shows what the app's process costs the run's steps (CPU shared with the UI);
- wall chars/s: characters over the wall time between the first and last measured step as they arrive, which adds
  what the engine itself costs (commands polled between steps, events batched over a pipe).
The app's extra early stages (samples with a validation at steps 10, 30, 100) are turned off, because they are
evaluation and sampling, not training; the trainer's own schedule is kept in both modes.

Screens. With the run training at full speed, New run, Runs and Plugins are opened ``--screens`` times each; the
time from the key to the screen shown with its content (the app's process never imports torch: what these
screens show of plugins, cells and corpora comes from rnntui.engine.inventory).

Latency. Under the app, with the run training at full speed (no budget), keys are pressed at about 10 a second:
characters typed into the prompt, then `b` (nats/bits: status, samples and plot change), `l` (log y: the plot is
redrawn) and `t` (step/time axis) in turn. A key's latency is the time from the key press to the end of the first
screen update that shows its effect (Textual's compositor update, measured where the app hands it to the
terminal driver). Reported: median, p95 and max.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnntui import events  # noqa: E402


def train_chars(found: list[tuple[float, events.Step]], chars_per_step: int, warmup: int) -> tuple[float, float]:
    """(training chars/s, wall chars/s) over the steps after the warm-up."""
    window = [(t, e) for t, e in found if e.step > warmup]
    busy = sum(chars_per_step / e.chars_per_sec for _, e in window)
    training = chars_per_step * len(window) / busy
    first = [(t, e) for t, e in found if e.step == warmup][0]
    wall = chars_per_step * (window[-1][1].step - warmup) / (window[-1][0] - first[0])
    return training, wall


def summary(latencies: list[float]) -> str:
    found = sorted(latencies)
    p95 = found[min(len(found) - 1, int(round(0.95 * (len(found) - 1))))]
    return (f"median {statistics.median(found) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
            f"max {found[-1] * 1000:.1f} ms")


def config(args):
    from rnntui.core.config import apply_preset

    threads = {"threads": args.threads} if args.threads else {}
    return apply_preset(args.preset, corpus=args.corpus, max_steps=args.warmup + args.steps, **threads)


def run_headless(args) -> list[tuple[float, events.Step]]:
    from rnntui.run import build_trainer

    found = []
    for event in build_trainer(config(args)).run():
        if isinstance(event, events.Step):
            found.append((time.perf_counter(), event))
    return found


async def run_app(args) -> list[tuple[float, events.Step]]:
    from rnntui.engine import RunSpec
    from rnntui.tui.app import RnnApp

    app = RnnApp(RunSpec(config=config(args).to_json(), early_samples=(), nice=args.nice))
    found: list[tuple[float, events.Step]] = []
    feed = app.feed

    def recording_feed(batch):
        batch = list(batch)
        now = time.perf_counter()
        found.extend((now, e) for e in batch if isinstance(e, events.Step))
        feed(batch)

    app.feed = recording_feed
    async with app.run_test(size=(120, 36)) as pilot:
        deadline = time.monotonic() + 1800
        while app.status.state not in ("finished", "error", "crashed") and time.monotonic() < deadline:
            await pilot.pause(0.2)
    return found


async def key_latency(args) -> tuple[list[float], list[float]]:
    from rnntui.engine import RunSpec
    from rnntui.tui.app import RnnApp

    unbounded = config(args)
    unbounded.max_steps = None
    app = RnnApp(RunSpec(config=unbounded.to_json(), nice=args.nice))
    latencies: list[float] = []
    pending: list = []  # [t0, predicate] of the key being measured
    async with app.run_test(size=(120, 36)) as pilot:
        while app.steps_seen < 20:
            await pilot.pause(0.1)
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
        for i in range(args.keys // 2):
            before = len(area.text)
            await press(letters[i % len(letters)].replace(" ", "space"), lambda b=before: len(area.text) > b)
        typed = latencies[:]
        latencies.clear()
        await pilot.press("escape")
        pane = app.loss_pane
        toggles = [("b", lambda: pane.bits), ("l", lambda: pane.log_y), ("t", lambda: pane.x_axis == "time")]
        for i in range(args.keys - args.keys // 2):
            key, state = toggles[i % 3]
            before = state()
            await press(key, lambda s=state, b=before: s() != b)
        steps = app.steps_seen
        app.shutdown_engines()
    print(f"  (the run took {steps} steps meanwhile)")
    return typed, latencies


async def screen_open_times(args) -> dict[str, list[float]]:
    """Seconds from the key to the screen shown with its content (New run's form filled, Runs' table, Plugins'
    rows), while the run trains at full speed; the app lists plugins in a helper process at start, as it does for a
    user, and the measurement starts once that is done."""
    from rnntui.engine import RunSpec, inventory
    from rnntui.tui.app import RnnApp
    from rnntui.tui.screens.new_run import NewRunScreen
    from rnntui.tui.screens.plugins import PluginsScreen
    from rnntui.tui.screens.runs import RunsScreen

    unbounded = config(args)
    unbounded.max_steps = None
    app = RnnApp(RunSpec(config=unbounded.to_json(), nice=args.nice))
    screens = {"New run": ("n", NewRunScreen, lambda s: s.inventory is not None and s.query_one("#form").display),
               "Runs": ("o", RunsScreen, lambda s: s.query_one("DataTable").row_count > 0),
               "Plugins": ("p", PluginsScreen, lambda s: bool(s.rows))}
    times: dict[str, list[float]] = {name: [] for name in screens}
    async with app.run_test(size=(120, 36)) as pilot:
        while app.steps_seen < 20 or inventory.cached() is None:
            await pilot.pause(0.1)
        for _ in range(args.screens):
            for name, (key, screen, ready) in screens.items():
                started = time.perf_counter()
                await pilot.press(key)
                while not (isinstance(app.screen, screen) and ready(app.screen)):
                    await asyncio.sleep(0.002)
                times[name].append(time.perf_counter() - started)
                await pilot.press("escape")
                await pilot.pause(0.2)
        app.shutdown_engines()
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--corpus", default="python-docs")
    p.add_argument("--steps", type=int, default=200, help="measured steps per run")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--keys", type=int, default=200, help="key presses for the latency measurement (0: skip)")
    p.add_argument("--screens", type=int, default=10, help="times each screen is opened (0: skip)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads in both modes (the preset's `threads`; default: the preset's own)")
    p.add_argument("--nice", type=int, default=None, help="niceness added to the run's process (default: the app's)")
    args = p.parse_args()
    if args.nice is None:
        from rnntui.engine.protocol import RUN_NICENESS

        args.nice = RUN_NICENESS
    os.environ.setdefault("RNNTUI_HOME", tempfile.mkdtemp(prefix="rnntui-bench-app-"))
    os.environ.setdefault("RNNTUI_LOAD_PLUGINS", "")

    import torch

    c = config(args)
    chars = c.batch_size * c.seq_len
    threads = getattr(c, "threads", None) or torch.get_num_threads()
    print(f"preset {args.preset} on {args.corpus}: {c.cell} {c.n_layer}x{c.n_hidden}, batch {c.batch_size} x "
          f"seq {c.seq_len}; torch {torch.__version__}, {threads} thread(s), {os.cpu_count()} CPUs")
    results = {"headless": [], "app": []}
    for r in range(args.repeats if args.steps else 0):
        for mode in ("headless", "app"):
            found = run_headless(args) if mode == "headless" else asyncio.run(run_app(args))
            training, wall = train_chars(found, chars, args.warmup)
            results[mode].append((training, wall))
            print(f"  run {r + 1} {mode:8s}: training {training:9.0f} chars/s   wall {wall:9.0f} chars/s")
    med = {} if not args.steps else {mode: (statistics.median(t for t, _ in v), statistics.median(w for _, w in v)) for mode, v in results.items()}
    if med:
        print(f"median headless: training {med['headless'][0]:.0f} chars/s, wall {med['headless'][1]:.0f} chars/s")
        print(f"median app:      training {med['app'][0]:.0f} chars/s, wall {med['app'][1]:.0f} chars/s")
        print(f"ratio app/headless: training {med['app'][0] / med['headless'][0]:.3f}, "
              f"wall {med['app'][1] / med['headless'][1]:.3f}  (target >= 0.9)")
    if args.screens:
        for name, found in asyncio.run(screen_open_times(args)).items():
            print(f"opening {name} while training ({len(found)} times): median {statistics.median(found) * 1000:.0f} ms, "
                  f"max {max(found) * 1000:.0f} ms  (target < 500 ms)")
    if args.keys:
        typed, toggled = asyncio.run(key_latency(args))
        for what, found in (("typing in the prompt", typed), ("toggling b/l/t", toggled),
                            ("all keys", typed + toggled)):
            print(f"key press -> visible update, {what} ({len(found)} keys, run niceness +{args.nice}): "
                  f"{summary(found)}")


if __name__ == "__main__":
    main()
