"""Small pieces every layer shares: file writes and hashes, the user's directories, units and formatting, and
KEY=VALUE options. Nothing here imports torch, Textual or another part of rnntui but ``rnntui.errors``."""
