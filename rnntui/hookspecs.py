"""The whole plugin contract: two register-callback hooks (the style of simonw/llm).

A plugin module implements either or both::

    from rnntui import hookimpl

    @hookimpl
    def register_cells(register):
        register(MyCell)           # a subclass of rnntui.core.cells.Cell

    @hookimpl
    def register_corpora(register):
        register(my_corpus)        # an rnntui.core.corpora.Corpus
"""

import pluggy

hookspec = pluggy.HookspecMarker("rnntui")


@hookspec
def register_cells(register):
    """Call ``register(cell_class)`` for each recurrent cell type this plugin provides."""


@hookspec
def register_corpora(register):
    """Call ``register(corpus)`` for each corpus this plugin provides."""
