"""The Textual app (`rnntui`): the only part of rnntui that imports Textual."""

import os

# Textual draws at most 60 frames a second by default, so a key press waits up to 17 ms for its frame; 120 halves
# that (frames are only drawn when something changed, so an idle app costs no more). Set before Textual loads;
# a TEXTUAL_FPS of the user's own wins.
os.environ.setdefault("TEXTUAL_FPS", "120")
