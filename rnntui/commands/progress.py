"""Printing a run's events in the terminal: a rich progress line, one line per evaluation, and the samples."""

from __future__ import annotations

import json
import math

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from rnntui import events
from rnntui.util.units import bits, duration


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def print_events(trainer, log_json: str | None = None, quiet: bool = False) -> int:
    """Drive ``trainer.run()`` to the end, showing progress; Ctrl-C stops after a final checkpoint."""
    console = Console(stderr=False, highlight=False)
    err = Console(stderr=True, highlight=False)
    log = open(log_json, "a", encoding="utf-8") if log_json else None
    total = trainer.config.max_steps
    progress = Progress(
        TextColumn("step {task.completed:>6.0f}"), BarColumn(bar_width=20), TextColumn("{task.fields[stats]}"),
        console=console, transient=True, disable=quiet or not console.is_terminal,
    )
    task = progress.add_task("train", total=total, stats="")
    last_val = None
    status = 0
    stream = trainer.run()
    try:
        with progress:
            for event in stream:
                if log:
                    log.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
                match event:
                    case events.Started():
                        console.print(
                            f"[bold]{'resuming' if event.resumed else 'training'}[/] {event.cell} "
                            f"({event.n_params:,} parameters) on {event.corpus} "
                            f"({event.train_chars:,} train / {event.val_chars:,} val chars, vocab {event.vocab_size}) "
                            f"on {event.device}\nrun: {event.run_dir}"
                        )
                    case events.Step():
                        bpc = f" val {_fmt(last_val)} ({_fmt(last_val and bits(last_val), '.3f')} bpc)"
                        eta = "" if event.eta is None else f"  ETA {duration(event.eta)}"
                        progress.update(task, completed=event.step, stats=(
                            f"loss {event.loss:.4f}{bpc}  {event.chars_per_sec:,.0f} chars/s  lr {event.lr:.2e}"
                            f"  |g| {event.grad_norm:.2f}{eta}"))
                    case events.Eval():
                        last_val = event.val_loss
                        progress.console.print(
                            f"step {event.step:>6}  val loss {event.val_loss:.4f} nats/char  "
                            f"{event.val_bpc:.3f} bits/char  (best {event.best_val_loss:.4f})  "
                            f"{event.elapsed:.0f}s")
                    case events.Sample() if not quiet:
                        progress.console.print(f"[dim]--- sample at step {event.step} ---[/]")
                        progress.console.print(event.text, markup=False)
                    case events.RunWarning():
                        err.print(f"warning: {event.message}", markup=False)
                    case events.Error():
                        if event.traceback:
                            err.print(event.traceback, markup=False)
                        err.print(f"rnntui: error: {event.message}", markup=False)
                        status = 1
                    case events.Done():
                        console.print(f"done at step {event.step} ({event.reason}); best val loss "
                                      f"{_fmt(event.best_val_loss)}; run: {trainer.run_dir}")
    except KeyboardInterrupt:
        stream.close()
        stopped = trainer.stop(checkpoint=True)
        saved = next((e.path for e in stopped if isinstance(e, events.Checkpoint)), None)
        console.print(f"stopped at step {trainer.steps_done}" + (f"; checkpoint {saved}" if saved else ""))
        status = 130
    finally:
        if log:
            log.close()
    return status
