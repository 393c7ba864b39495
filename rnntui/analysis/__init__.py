"""Looking at text and models from outside the training loop: n-gram baselines, and (after #11) the inspector.
Built on the core; the core never imports it."""
