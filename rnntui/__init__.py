"""rnntui: a terminal playground for character-level recurrent language models.

Importing this package is cheap (no torch): plugins need only ``from rnntui import hookimpl``.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("rnntui")

__all__ = ["__version__", "hookimpl"]
