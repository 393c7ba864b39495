"""SVG snapshots of the app at fixed sizes, fed recorded events (no live training, so they never change)."""

from __future__ import annotations

import math

from rnntui import events
from rnntui.tui.app import RnnApp
from rnntui.util.units import bits

SAMPLES = {
    10: "a\\L^y^D1FG@T#e—~R)<{X%3Kse3tud°2}],wf6dc#xV&=S’°CL}ißxzodt…z°l@Xc;V",
    30: "th  oe tee  an s thet orre  o tha  e s hes d  ae",
    100: "the cat sleeps in the sun and the dog jumps ovre the warm bird sings",
    200: "the quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun",
    300: "a bird sings softly to the morning light the quick brown fox jumps over the lazy dog",
}


def recorded(steps: int = 300) -> list[events.Event]:
    """A plausible, fixed run: loss falling from ln(vocab) with a little deterministic noise."""
    found: list[events.Event] = [
        events.RunState("starting"),
        events.Started("/runs/20260101-120000-small-lstm", 0, 46_567, "cpu", "small.txt", "lstm", 8_100, 900, 32,
                       500, steps, None),
        events.RunState("running"),
    ]
    for step in range(1, steps + 1):
        loss = 1.3 + 2.2 * math.exp(-step / 60) + 0.08 * math.sin(step * 1.7) * math.exp(-step / 400)
        elapsed = step * 0.05
        eta = (steps - step) * 0.05
        found.append(events.Step(step, step / 500, loss, 3e-3, 0.9 + 0.1 * math.cos(step), 5_120.0, elapsed, eta))
        if step in SAMPLES:
            val = 1.4 + 2.1 * math.exp(-step / 60)
            if step % 100 == 0 or step in (10, 30):
                found.append(events.Eval(step, val, bits(val), val, elapsed))
            found.append(events.Sample(step, SAMPLES[step], elapsed, val, 0.8))
    return found


async def _fed(pilot, extra: list[events.Event] = ()) -> None:
    app = pilot.app
    app.feed(recorded())
    if extra:
        app.feed(extra)
    await pilot.pause()
    app.loss_pane.redraw(force=True)
    app.status.refresh_status(force=True)
    await pilot.pause()


def test_main_view_wide(snap_compare):
    assert snap_compare(RnnApp(), terminal_size=(120, 36), run_before=_fed)


def test_main_view_at_80x24(snap_compare):
    assert snap_compare(RnnApp(), terminal_size=(80, 24), run_before=_fed)


def test_log_scale_bits_and_time_axis(snap_compare):
    async def run_before(pilot):
        await _fed(pilot)
        await pilot.press("l", "b", "t", "right_square_bracket")
        await pilot.pause()
        pilot.app.loss_pane.redraw(force=True)
        pilot.app.status.refresh_status(force=True)
        await pilot.pause()

    assert snap_compare(RnnApp(), terminal_size=(120, 36), run_before=run_before)


def test_error_panel(snap_compare):
    error = events.Error("the loss became nan at step 301: training stopped; the last good checkpoint "
                         "(step-00000300.json) is kept; lower --lr or set --clip (e.g. --clip 1)", 301)

    async def run_before(pilot):
        await _fed(pilot, [error, events.Done(300, "error", 1.45, 15.0)])

    assert snap_compare(RnnApp(), terminal_size=(100, 30), run_before=run_before)


def test_help_screen(snap_compare):
    assert snap_compare(RnnApp(), terminal_size=(100, 30), press=["question_mark"])
