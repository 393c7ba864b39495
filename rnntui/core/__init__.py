"""The core: cells, model, data, training, sampling and checkpoints. It never imports Textual or rich."""
