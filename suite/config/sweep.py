"""Hyper-parameter sweeps: ``sweep: {learning_rate: [1.0e-6, 3.0e-6], beta: [0.05, 0.1]}`` trains every method at
every point of the grid, so no method is compared at a learning rate tuned for another.

Each point is an ordinary run (resumable, skipped when complete, parallel with ``--jobs``): the method's row
is expanded into variants labelled ``<label>.<name>-<value>...``, each with the point's values as overrides. A
method takes only the swept names it has (``beta`` is not swept for ``sft``); a method with none of them runs
once. Selection happens on a validation split carved from the training data (``data.validation_fraction``,
0.1 when a sweep is given), never on the held-out test pairs: ``suite.analysis.sweep``.
"""

from __future__ import annotations

import dataclasses
import itertools

from suite.core.errors import ConfigError

DEFAULT_VALIDATION_FRACTION = 0.1


def point_label(base: str, point: dict) -> str:
    """``dpo.learning_rate-1e-06.beta-0.05``: a row name (letters, digits, '.', '+', '-', '_') per point."""
    return ".".join([base] + [f"{name}-{_text(value)}" for name, value in point.items()])


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_sweep(sweep) -> dict:
    """The sweep mapping: every name to a non-empty list of distinct plain values."""
    if sweep is None:
        return {}
    if not isinstance(sweep, dict) or not sweep:
        raise ConfigError(f"sweep: expected a mapping of hyper-parameter names to lists of values, got {sweep!r}")
    for name, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep.{name}: expected a non-empty list of values, got {values!r}")
        if not all(isinstance(v, (int, float, str, bool)) for v in values):
            raise ConfigError(f"sweep.{name}: expected plain values (numbers, strings, booleans), got {values!r}")
        if len({repr(v) for v in values}) != len(values):
            raise ConfigError(f"sweep.{name}: a value is given twice in {values!r}")
    return dict(sweep)


def expand(methods: list, sweep: dict, defaults_of) -> list:
    """Each method choice as one variant per grid point of the swept names it has (``defaults_of(id)``: the
    method's hyper-parameter names). A choice that sets a swept name itself is an error (which would win?)."""
    if not sweep:
        return methods
    used = set()
    expanded = []
    for index, choice in enumerate(methods):
        names = [name for name in sweep if name in defaults_of(choice.id)]
        clash = sorted(set(names) & set(choice.overrides))
        if clash:
            raise ConfigError(f"methods[{index}].{clash[0]}: also swept (sweep.{clash[0]}); give it in one place")
        used.update(names)
        if not names:
            expanded.append(choice)
            continue
        base = choice.label or choice.id
        for values in itertools.product(*(sweep[name] for name in names)):
            point = dict(zip(names, values))
            expanded.append(dataclasses.replace(choice, overrides={**choice.overrides, **point},
                                                label=point_label(base, point), sweep_of=base, sweep_point=point))
    unused = sorted(set(sweep) - used)
    if unused:
        raise ConfigError(f"sweep.{unused[0]}: no configured method has this hyper-parameter")
    return expanded
