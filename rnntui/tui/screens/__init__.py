"""The app's screens besides the main view: New run, Runs, Plugins, Help, and small dialogs."""
