"""Benchmarks: ``python -m suite.bench.perf`` measures the trainer and evaluation against TRL and lm-eval."""
