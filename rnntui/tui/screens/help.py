"""The help screen (`?`): what each pane shows, and every key."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

PANES = """\
# rnntui

A character-level recurrent language model trains in its own process while you watch. The app never waits for it:
pause, resume, stop and "sample now" act at the run's next step.

## Panes

- **Status** (top): the state (training, paused, finished, error), the run's name, corpus, cell and shape,
  parameter count and device; then step (of the budget), epoch, training speed in characters per second, training
  time and the time left for the budget (ETA), the learning rate, the gradient norm before clipping (‖g‖), and the
  latest smoothed training loss and validation loss (best in brackets).
- **Loss**: training loss per step, raw (dim) and smoothed (bright; TensorBoard's exponential moving average with
  bias correction, `[` and `]` change it), and validation loss (dots). Against step or training time (`t`), in
  nats or bits per character (`b`), linear or log (`l`). The y range leaves out the first steps' outliers (`y`
  includes them). Earlier runs chosen in Runs (`o`, then `c`) are overlaid in dim colours; `c` here clears them.
  Mouse wheel zooms, dragging pans; `f` fits the data again. The curve is drawn at the pane's width whatever the
  run's length.
- **Samples**: the text the model wrote at each stage of training, headed with its step, training time and
  validation loss: first noise, then words, then style. Newest last; scroll up for the whole history. `s` asks
  for one now.
- **Prompt**: type a prompt (`i` goes there; ctrl+j for a new line; pasting keeps lines) and press Enter: the
  model continues it character by character from its weights as they are now, while training goes on. `Esc`
  stops it. Temperature (ctrl+↑/↓), top-k, top-p and length are below the prompt (Tab to them; ↑/↓ change
  them; empty top-k/top-p is off; length 0 runs until Esc). Characters the model never saw are dropped, with a
  notice.

## Screens

- **New run** (`n`): corpus, cell, preset and hyperparameters, each checked before the run starts.
- **Runs** (`o`): past runs with their curves and samples: open, resume exactly, compare, delete.
- **Plugins** (`p`): the plugins loaded, what each registered, and any failure with its traceback.

A crash or divergence shows an error panel with the message; the last good checkpoint is kept. Quitting while a
run trains asks whether to keep a final checkpoint. The command palette (ctrl+p) lists every action and the
themes.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(PANES + "\n" + self._keys())

    def _keys(self) -> str:
        rows = ["## Keys", "", "| key | action |", "|---|---|"]
        seen = set()
        for binding in self.app.BINDINGS:
            if binding.action in seen:
                continue
            seen.add(binding.action)
            key = binding.key_display or binding.key.replace("_", " ")
            key = {"question mark": "?", "left square bracket": "[", "right square bracket": "]"}.get(key, key)
            rows.append(f"| `{key}` | {binding.tooltip or binding.description} |")
        rows.append("| `ctrl+p` | Command palette: every action, and the themes |")
        return "\n".join(rows)

    def action_close(self) -> None:
        self.dismiss(None)
