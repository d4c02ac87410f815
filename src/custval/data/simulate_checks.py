"""Argument checks shared by the simulators (`simulate`, `simulate_churn`, `simulate_table`).

Each returns the value in its canonical type or raises a ConfigError naming the argument, the rule and the value
given. Booleans are refused where a number is expected.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

from custval.errors import ConfigError

__all__ = ["check_categories", "check_category_weights", "check_count", "check_day_window", "check_nonnegative",
           "check_positive", "check_real", "check_seed", "check_unit", "check_window"]


def check_count(name: str, value: object) -> int:
    """An integer >= 1 (customers, chunk size, days, draws)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_seed(seed: object) -> int:
    """A non-negative integer seed."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_real(name: str, value: object) -> float:
    """A finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_positive(name: str, value: object) -> float:
    """A finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)) \
            or value <= 0:
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_nonnegative(name: str, value: object) -> float:
    """A finite number >= 0."""
    number = check_real(name, value)
    if number < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def check_unit(name: str, value: object, *, low_open: bool, high_closed: bool) -> float:
    """A number in the unit interval, each end open or closed as asked (e.g. (0, 1] for a share of days)."""
    number = check_real(name, value)
    ok_low = number > 0 if low_open else number >= 0
    ok_high = number <= 1 if high_closed else number < 1
    if not (ok_low and ok_high):
        lo, hi = "(0" if low_open else "[0", "1]" if high_closed else "1)"
        raise ConfigError(f"{name} must lie in {lo}, {hi}, got {value!r}")
    return number


def check_window(start: object, end: object) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The observation window [start, end): timezone-naive dates or datetimes (ns range), end after start."""
    stamps = []
    for name, value in (("start", start), ("end", end)):
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a date or datetime, got {value!r}") from None
        if stamp is pd.NaT or pd.isna(stamp):
            raise ConfigError(f"{name} must be a date or datetime, got {value!r}")
        if stamp.tzinfo is not None:
            raise ConfigError(f"{name} must be a timezone-naive datetime, got {value!r}")
        try:
            stamps.append(stamp.as_unit("ns"))
        except (OverflowError, ValueError):
            raise ConfigError(f"{name} must lie within 1677-09-22..2262-04-11, got {value!r}") from None
    if stamps[1] <= stamps[0]:
        raise ConfigError(f"end must be after start, got start={stamps[0]} end={stamps[1]}")
    return stamps[0], stamps[1]


def check_day_window(start: object, end: object) -> tuple[pd.Timestamp, pd.Timestamp]:
    """`check_window` for a daily process: both ends midnights (dates) and at least 2 days apart."""
    start_ts, end_ts = check_window(start, end)
    for name, stamp in (("start", start_ts), ("end", end_ts)):
        if stamp != stamp.normalize():
            raise ConfigError(f"{name} must be a midnight (a date), got {stamp}")
    if end_ts - start_ts < pd.Timedelta(days=2):
        raise ConfigError(f"end must be at least 2 days after start, got start={start_ts} end={end_ts}")
    return start_ts, end_ts


def check_categories(categories, *, at_least: int = 1) -> tuple[str, ...]:
    """At least `at_least` distinct non-empty category names (a sequence, not one string)."""
    if isinstance(categories, str):
        raise ConfigError(f"categories must be a sequence of names, got the string {categories!r}")
    try:
        names = tuple(categories)
    except TypeError:
        raise ConfigError(f"categories must be a sequence of names, got {categories!r}") from None
    if len(names) < at_least or not all(isinstance(n, str) and n.strip() for n in names) \
            or len(set(names)) != len(names):
        rule = "distinct non-empty names" if at_least == 1 else f"at least {at_least} distinct non-empty names"
        raise ConfigError(f"categories must be {rule}, got {categories!r}")
    return names


def check_category_weights(weights, k: int) -> np.ndarray:
    """`k` positive finite popularity weights (one per category), normalised to sum to 1."""
    values = np.asarray(weights, dtype=float)
    if values.shape != (k,) or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ConfigError(f"category_weights must be {k} positive numbers (one per category), got {weights!r}")
    return values / values.sum()
