"""Config: the experiment schema (``schema``: sections, types, ranges, defaults), loading with ``--set``
overrides, and validation before anything runs."""
