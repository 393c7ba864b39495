"""The engine: one training run in its own process, driven by commands and reporting events.

``parent`` is the app's side (Engine), ``child`` the run's process, ``protocol`` what crosses between them.
Importing this package never imports torch: only the run's process does.
"""

from rnntui.engine.parent import Engine
from rnntui.engine.protocol import EARLY_SAMPLES, RunSpec, State

__all__ = ["EARLY_SAMPLES", "Engine", "RunSpec", "State"]
