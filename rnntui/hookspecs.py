"""The plugin hooks: two register-callback hooks (the style of simonw/llm). A plugin is one module (a file in a
plugin directory, or a distribution with an entry point in the group ``rnntui``) that implements either or both
with ``from rnntui import hookimpl``.

- ``register_cells(register)``: ``register(cls)`` for each cell class: a ``torch.nn.Module`` (or
  ``rnntui.core.cells.Cell``) with ``name``, ``__init__(input_size, hidden_size, **options)`` and
  ``step(x_t, state) -> (h_t, state)``; optionally ``initial_state``, ``project_input``, ``forward_sequence``.
  Each is checked when registered (``rnntui.plugins.validate_cell``); one that fails is reported, not offered.
- ``register_corpora(register)``: ``register(corpus)`` for each ``rnntui.corpora.Corpus`` (or an object with
  ``name``, ``description``, ``source`` and ``read(**options)`` yielding text chunks).

The complete tutorial: README.md, "Write a cell plugin".
"""

import pluggy

hookspec = pluggy.HookspecMarker("rnntui")


@hookspec
def register_cells(register):
    """Call ``register(cell_class)`` for each recurrent cell type this plugin provides."""


@hookspec
def register_corpora(register):
    """Call ``register(corpus)`` for each corpus this plugin provides."""
