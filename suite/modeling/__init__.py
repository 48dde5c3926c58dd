"""Modeling: the model resolver (embedded GGUF, tiny test model, local folder, hub id), LoRA, per-sequence
and per-token log-probs (``sequences``), the shared reference log-prob cache, weights as tensors and the
trainable delta."""
