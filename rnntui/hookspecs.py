"""The whole plugin contract: two register-callback hooks (the style of simonw/llm).

A plugin is one module (a single file, or a distribution with an entry point in the group ``rnntui``) that
implements either hook or both; ``from rnntui import hookimpl`` is all it needs from rnntui::

    import torch
    from torch import nn
    from rnntui import hookimpl

    class MyCell(nn.Module):
        '''One line users see in `rnntui cells`; more lines after it if you like.'''

        name = "my-cell"                         # what `rnntui train --cell` takes

        def __init__(self, input_size, hidden_size, scale=1.0):   # keyword options: --cell-option scale=0.5
            super().__init__()
            self.hidden_size = hidden_size
            self.inp = nn.Linear(input_size, hidden_size)
            self.rec = nn.Linear(hidden_size, hidden_size, bias=False)

        def initial_state(self, batch, device=None):        # optional: default zeros (batch, hidden_size)
            return (torch.zeros(batch, self.hidden_size, device=device),)

        def project_input(self, x):                          # optional: run once on the whole (B, T, input)
            return self.inp(x)

        def step(self, x_t, state):                          # required: (B, projected input), state -> h_t, state
            h = torch.tanh(x_t + self.rec(state[0]))
            return h, (h,)

        # optional: forward_sequence(self, x, state) -> (h of (B, T, hidden_size), state), on the raw input,
        # for a faster whole-sequence path (a parallel scan, a fused kernel). It must equal the step loop.

    @hookimpl
    def register_cells(register):
        register(MyCell)

    @hookimpl
    def register_corpora(register):
        register(my_corpus)   # an object with name, description, source and read() yielding text chunks
                              # (rnntui.corpora.Corpus is the ready-made one)

The state is a tuple of tensors, each (batch, ...). A cell may instead subclass rnntui.core.cells.Cell, as the
built-ins do. Every cell is checked when it is registered (rnntui.plugins.validate_cell): a tiny forward and
backward pass that checks shapes, the state, finite values, gradients to every parameter, and that
``forward_sequence`` agrees with the step loop. A cell that fails is reported and not offered.
"""

import pluggy

hookspec = pluggy.HookspecMarker("rnntui")


@hookspec
def register_cells(register):
    """Call ``register(cell_class)`` for each recurrent cell type this plugin provides."""


@hookspec
def register_corpora(register):
    """Call ``register(corpus)`` for each corpus this plugin provides."""
