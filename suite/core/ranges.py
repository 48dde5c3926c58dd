"""Declared ranges of values: what a config key or a method hyper-parameter may hold.

Type checks alone let values through that train to "complete" and mean nothing (a negative β inverts the
objective, a negative gradient-clipping norm turns clipping off). Every hyper-parameter declares a
:class:`Range`; :meth:`Range.check` raises a ConfigError naming the key, before anything runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from suite.core.errors import ConfigError

SEED_LIMIT = 2**32  # numpy and torch seeds: [0, 2**32)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """``low``/``high`` bounds (inclusive unless ``*_open``), ``integer`` for whole numbers, ``choices`` for
    a closed set of values (or a callable returning them, for sets known only at run time), ``nullable``
    when null is allowed, ``length`` for lists of numbers, ``kind`` for non-numeric values
    ("bool", "mapping", "text", "list", "count-or-mapping", "text-or-mapping": checked by type only, their content elsewhere)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    choices: tuple | Callable | None = None
    nullable: bool = False
    length: int | None = None
    kind: str | None = None
    validate: Callable | None = None  # (value, key) -> None, raising ConfigError: a check no bound expresses

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self._choices()))
        if self.kind is not None:
            return {"bool": "true or false", "mapping": "a mapping", "text": "a string", "list": "a list",
                    "count-or-mapping": "an integer > 0 or a mapping {name: integer > 0 or null}",
                    "text-or-mapping": "a string or a mapping"}[self.kind]
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {_number(self.high)}")
        what = "an integer" if self.integer else "a number"
        text = f"{what} {' and '.join(parts)}".strip()
        if self.length is not None:
            text = f"a list of {self.length} finite numbers"
        return text + (" or null" if self.nullable else "")

    def _choices(self) -> tuple:
        return tuple(self.choices()) if callable(self.choices) else tuple(self.choices)

    def check(self, value, key: str):
        """``value`` if it is in range; a ConfigError naming ``key`` otherwise."""
        value = self._check(value, key)
        if value is not None and self.validate is not None:
            self.validate(value, key)
        return value

    def _check(self, value, key: str):
        if value is None:
            if self.nullable:
                return value
            raise ConfigError(f"{key}: expected {self.describe()}, got null")
        if self.choices is not None:
            if value not in self._choices():
                raise ConfigError(f"{key}: unknown value {value!r}; use {self.describe()}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{key}: expected true or false, got {value!r}")
            return value
        if self.kind == "mapping":
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a mapping, got {value!r}")
            return value
        if self.kind == "count-or-mapping":  # the content is the key's own validate's to check
            if isinstance(value, bool) or not isinstance(value, (int, dict)):
                raise ConfigError(f"{key}: expected {self.describe()}, got {value!r}")
            return value
        if self.kind == "text-or-mapping":
            if not isinstance(value, (str, dict)):
                raise ConfigError(f"{key}: expected {self.describe()}, got {value!r}")
            return value
        if self.kind == "list":
            if not isinstance(value, list):
                raise ConfigError(f"{key}: expected a list, got {value!r}")
            return value
        if self.kind == "text":
            if not isinstance(value, str):
                raise ConfigError(f"{key}: expected a string, got {value!r}")
            return value
        if self.length is not None:
            if not (isinstance(value, list) and len(value) == self.length):
                raise ConfigError(f"{key}: expected {self.describe()}, got {value!r}")
            for index, item in enumerate(value):
                self._check_number(item, f"{key}[{index}]")
            return value
        return self._check_number(value, key)

    def _check_number(self, value, key: str):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected {self.describe()}, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
        if self.integer and not (isinstance(value, int) or float(value).is_integer()):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise ConfigError(f"{key}: must be {'>' if self.low_open else '>='} {_number(self.low)}, got {value}")
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise ConfigError(f"{key}: must be {'<' if self.high_open else '<='} {_number(self.high)}, got {value}")
        return value


POSITIVE = Range(low=0, low_open=True)
NON_NEGATIVE = Range(low=0)
POSITIVE_INT = Range(low=0, low_open=True, integer=True)
NON_NEGATIVE_INT = Range(low=0, integer=True)
FRACTION = Range(low=0, high=1)  # [0, 1]
SEED = Range(low=0, high=SEED_LIMIT, high_open=True, integer=True)
LEARNING_RATE = Range(low=0, high=1, low_open=True)
BOOL = Range(kind="bool")
MAPPING = Range(kind="mapping")
