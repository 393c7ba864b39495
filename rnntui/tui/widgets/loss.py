"""The loss pane: train loss (raw and smoothed) and validation loss on a textual-plot PlotWidget."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack

import numpy as np
from textual import on
from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Vertical
from textual.reactive import reactive
from textual_hires_canvas import Canvas
from textual_plot import AxisFormatter, DurationFormatter, HiResMode, NumericAxisFormatter, PlotWidget

from rnntui.tui.history import LossHistory, robust_limits
from rnntui.util.units import bits


class LogAxisFormatter(AxisFormatter):
    """Ticks for an axis that holds log10 of the values, labelled with the values themselves."""

    def get_ticks(self, min_: float, max_: float, max_ticks: int = 8) -> list[float]:
        lo, hi = 10**min_, 10**max_
        for steps in ((1, 2, 5), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9), tuple(np.arange(1, 10, 0.5)),
                      tuple(np.arange(1, 10, 0.2)), tuple(np.arange(1, 10, 0.1))):
            ticks = [math.log10(m * 10**p) for p in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
                     for m in steps if lo <= m * 10**p <= hi]
            if len(ticks) >= 3:
                break
        if len(ticks) > max_ticks:
            ticks = ticks[:: math.ceil(len(ticks) / max_ticks)]
        return ticks

    def get_labels_for_ticks(self, ticks: Sequence[float]) -> list[str]:
        return [f"{10**t:.3g}" for t in ticks]


class FittedAxisFormatter(AxisFormatter):
    """Another formatter's ticks, thinned until their labels fit the axis's width (textual-plot asks for up to 8
    ticks whatever the width, so long labels run together in a narrow pane); 1000 and up read 1k, 1.5M..."""

    def __init__(self, base: AxisFormatter, width: Callable[[], int], compact: bool = True):
        self.base = base
        self.width = width
        self.compact = compact

    def get_ticks(self, min_: float, max_: float, max_ticks: int = 8) -> list[float]:
        ticks = self.base.get_ticks(min_, max_, max_ticks)
        room = max(self.width(), 8)
        while len(ticks) > 2 and sum(len(label) + 2 for label in self.get_labels_for_ticks(ticks)) > room:
            fewer = self.base.get_ticks(min_, max_, max(2, len(ticks) // 2))
            ticks = fewer if len(fewer) < len(ticks) else ticks[::2]
        return ticks

    def get_labels_for_ticks(self, ticks: Sequence[float]) -> list[str]:
        if self.compact and ticks and all(abs(t) >= 1000 or t == 0 for t in ticks):
            return [_compact(t) for t in ticks]
        return self.base.get_labels_for_ticks(ticks)


def _compact(value: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:g}"


class LossPlot(PlotWidget):
    """The PlotWidget, told apart from the runs screen's preview; zooming or panning it stops the auto range."""

    ALLOW_MAXIMIZE = True
    margin_top = reactive(1)
    margin_bottom = reactive(1)
    margin_left = reactive(7)


class PreviewPlot(PlotWidget):
    """A small plot of a past run's curves (the runs screen)."""

    margin_top = reactive(1)
    margin_bottom = reactive(1)
    margin_left = reactive(6)


class LossPane(Vertical):
    """Train loss raw (dim) and smoothed (bright), validation loss, and chosen earlier runs, against step or time."""

    smoothing = reactive(0.6)
    log_y = reactive(False)
    bits = reactive(False)
    x_axis = reactive("step")  # or "time"
    skip_outliers = reactive(True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.history = LossHistory()
        self.overlays: dict[str, LossHistory] = {}
        self.follow = True
        self._drawn: tuple | None = None
        self._limits: tuple[float, float] | None = None
        self._palette: tuple[str, dict] | None = None

    def compose(self) -> ComposeResult:
        yield LossPlot(id="loss-plot")

    def on_mount(self) -> None:
        self.border_title = "Loss"
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._theme_changed())
        self._update_titles()
        self.redraw(force=True)

    def _theme_changed(self) -> None:
        self._palette = None
        self._update_titles()
        self.redraw(force=True)

    def on_resize(self) -> None:
        self.redraw()

    # -- data ----------------------------------------------------------------------------------------------------

    def set_history(self, history: LossHistory) -> None:
        history.set_smoothing(self.smoothing)
        self.history = history
        self.follow = True
        self.redraw(force=True)

    def set_overlays(self, overlays: dict[str, LossHistory]) -> None:
        for history in overlays.values():
            history.set_smoothing(self.smoothing)
        self.overlays = overlays
        self._update_titles()
        self.redraw(force=True)

    # -- settings ------------------------------------------------------------------------------------------------

    def watch_smoothing(self, value: float) -> None:
        for history in (self.history, *self.overlays.values()):
            history.set_smoothing(value)
        self._settings_changed()

    def watch_log_y(self) -> None:
        self._settings_changed()

    def watch_bits(self) -> None:
        self._settings_changed()

    def watch_x_axis(self) -> None:
        self._settings_changed()

    def watch_skip_outliers(self) -> None:
        self._settings_changed()

    def _settings_changed(self) -> None:
        if self.is_mounted:
            self.follow = True
            self._update_titles()
            self.redraw(force=True)

    def _update_titles(self) -> None:
        units = "bits/char" if self.bits else "nats/char"
        scale = "log" if self.log_y else "linear"
        smoothing = f"smoothing {self.smoothing:.2f}" if self.smoothing else "no smoothing"
        y_range = "" if self.skip_outliers else " · full range"
        self.border_title = f"Loss · {units} · {scale} · {smoothing} · x: {self.x_axis}{y_range}"
        colors = self._colors()
        legend = (f"[{colors['raw']}]━[/] raw  [{colors['smooth']}]━[/] train  [{colors['val']}]━[/] val")
        if self.overlays:
            legend += "  " + "  ".join(f"[{colors['overlays'][i % len(colors['overlays'])]}]━[/] {name[:18]}"
                                        for i, name in enumerate(self.overlays))
        self.border_subtitle = legend

    def _colors(self) -> dict:
        """The plot's colours, from the theme (cached per theme)."""
        theme = self.app.theme
        if self._palette is not None and self._palette[0] == theme:
            return self._palette[1]
        variables = self.app.get_css_variables()
        background = Color.parse(variables.get("background", "#000000"))

        def color(name: str, fade: float = 0.0) -> str:
            try:
                c = Color.parse(variables.get(name, "white"))
            except Exception:
                c = Color.parse("white")
            return c.blend(background, fade).hex if fade else c.hex

        colors = {"raw": color("primary", 0.55), "smooth": color("primary"), "val": color("accent"),
                  "overlays": [color(n, 0.35) for n in ("success", "secondary", "error", "warning", "foreground")]}
        self._palette = (theme, colors)
        return colors

    # -- drawing -------------------------------------------------------------------------------------------------

    def _transform(self, y: np.ndarray) -> np.ndarray:
        if self.bits:
            y = bits(y)
        if self.log_y:
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.log10(y)
        return y

    def redraw(self, force: bool = False) -> None:
        """Draw again if the data or the pane changed since the last time (the app calls this on a timer)."""
        if not self.is_mounted:
            return
        plot = self.query_one(LossPlot)
        width = max(plot.size.width - plot.margin_left - 2, 8)
        key = (self.history.version, tuple(h.version for h in self.overlays.values()), width, plot.size.height)
        if not force and key == self._drawn:
            return
        self._drawn = key
        colors = self._colors()
        axis = self.x_axis
        plot.clear()
        shown: list[np.ndarray] = []

        def draw(curve, channel: str, style: str, label: str, in_range: bool = True) -> None:
            """Plot a curve's channel at the pane's resolution (and count it in the y range)."""
            x, y = curve.points_for(axis, channel, width)
            if len(x):
                plot.plot(x, self._transform(y), line_style=style, hires_mode=HiResMode.BRAILLE, label=label)
            if in_range:
                shown.append(self._transform(curve.extremes(channel)))

        for i, (name, history) in enumerate(self.overlays.items()):
            style = colors["overlays"][i % len(colors["overlays"])]
            if len(history.val) > 1:
                draw(history.val, "value", style, name)
            elif len(history.train):
                draw(history.train, "smooth", style, name)
        h = self.history
        if len(h.train):
            if h.smoothing > 0:
                draw(h.train, "raw", colors["raw"], "raw", in_range=False)
            draw(h.train, "smooth", colors["smooth"], "train")
        if len(h.val):
            if len(h.val) > 1:
                draw(h.val, "value", colors["val"], "val")
            # a dot per evaluation, or per column's lowest and highest once there are more than the pane shows
            vx, vy = h.val.points_for(axis, "value", width)
            plot.scatter(vx, self._transform(vy), marker="●", marker_style=colors["val"])
            if len(h.val) == 1:
                shown.append(self._transform(vy))
        x_room = lambda: plot.size.width - plot.margin_left  # noqa: E731
        plot.set_x_formatter(FittedAxisFormatter(DurationFormatter(), x_room, compact=False) if axis == "time"
                             else FittedAxisFormatter(NumericAxisFormatter(), x_room))
        plot.set_y_formatter(LogAxisFormatter() if self.log_y else NumericAxisFormatter())
        if self.follow:
            limits = robust_limits(shown, self.skip_outliers)
            self._limits = limits
            plot.set_xlimits(*self._x_limits())
            plot.set_ylimits(*(limits or (None, None)))
        if plot.size.area:
            # draw on the canvases now, each canvas refreshed once rather than once per character, so the change
            # shows on the next frame
            with ExitStack() as batch:
                for canvas in plot.query(Canvas):
                    batch.enter_context(canvas.batch_refresh())
                plot.render()

    def _x_limits(self) -> tuple[float | None, float | None]:
        """From the first point to the last, and never narrower than 10 steps (or 10 seconds), so the first few
        points of a run get a readable axis."""
        spans = [c.span(self.x_axis) for h in (self.history, *self.overlays.values()) for c in (h.train, h.val)
                 if len(c)]
        if not spans:
            return 0.0, 10.0
        lo = min(first for first, _ in spans)
        hi = max(last for _, last in spans)
        if hi - lo < 10:
            lo = max(0.0, lo - 1) if self.x_axis == "step" else 0.0
            hi = lo + 10
        return lo, hi

    @on(PlotWidget.ScaleChanged)
    def _user_zoomed(self, message: PlotWidget.ScaleChanged) -> None:
        """Zooming or panning with the mouse or keys stops following the data; `f` follows again."""
        if self._limits is None or (message.y_min, message.y_max) != self._limits:
            self.follow = False

    def follow_data(self) -> None:
        self.follow = True
        self.redraw(force=True)
