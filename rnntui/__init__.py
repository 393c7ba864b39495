"""rnntui: a terminal playground for character-level recurrent language models.

Importing this package is cheap (no torch): plugins need only ``from rnntui import hookimpl``.
"""

import os

import pluggy

# OpenMP threads that spin while they wait collapse when another process wants the same cores (the app's UI, a
# second run, a test runner): a 2x256 GRU trained at 1,900 chars/s instead of 22,000 on 2 busy cores. Sleeping
# waiters avoid that. It must be set before torch starts its thread pool; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("rnntui")

__all__ = ["__version__", "hookimpl"]
