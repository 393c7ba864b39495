"""The panes of the main view: loss, samples, prompt, status."""
