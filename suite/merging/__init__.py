"""Merging: deltas of fine-tuned models from their base (sparsity), merge methods behind one interface,
and merge recipes."""
