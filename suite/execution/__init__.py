"""Execution: plan runs from a config, the run store (read and write, claims), the runner, the context
composite methods get, executors (local, processes, Ray) and the accelerate launcher."""
