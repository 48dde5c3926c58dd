"""alignsuite: a benchmark and reproduction suite for LLM alignment methods."""

__version__ = "0.1.0"
