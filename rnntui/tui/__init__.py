"""The Textual app (`rnntui`): the only part of rnntui that imports Textual."""
