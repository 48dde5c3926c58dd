"""Training: collators (padded, shared-prompt packed), the offline trainer, the online loop, reward-model
training, and the pieces every loop shares (``loop``)."""
