"""Time units. Everything is counted in days internally; a model period is D (1 day), W (7 days) or
M (365.25/12 = 30.4375 days, the mean Gregorian month: never a silent 30-day month); a year is 365.25 days.
Horizons are written with their unit: "90D", "26W", "12M", "1Y". User-given dates go through `parse_date`, the
one date parser: ISO 8601 or yyyymmdd, never a guessed day/month order.
"""

from __future__ import annotations

import datetime
import re

import numpy as np
import pandas as pd

from custval.errors import ConfigError

DAYS_PER_YEAR = 365.25
DAYS_PER_UNIT = {"D": 1.0, "W": 7.0, "M": DAYS_PER_YEAR / 12.0, "Y": DAYS_PER_YEAR}
PERIODS = ("D", "W", "M")
CONVENTION = "1W = 7 days, 1M = 30.4375 days (365.25/12), 1Y = 365.25 days"

_YYYYMMDD = re.compile(r"^\d{8}$")
# ISO 8601 calendar dates, optionally with a time of day and a UTC offset; "12/04/2011" is not one of them
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$")
DATE_RULE = "a date in ISO 8601 form (YYYY-MM-DD, optionally with a time) or yyyymmdd"

_HORIZON = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([DWMY])\s*$", re.IGNORECASE)


def check_period(period: str) -> str:
    """Return the model period code, or raise ConfigError naming the allowed ones."""
    code = str(period).upper()
    if code not in PERIODS:
        raise ConfigError(f"period must be one of {PERIODS}, got {period!r}")
    return code


def period_days(period: str) -> float:
    """Length of one model period in days."""
    return DAYS_PER_UNIT[check_period(period)]


def parse_horizon(horizon: str | int | float) -> tuple[float, str]:
    """"12M" -> (12.0, "M"). A bare number is rejected: a horizon must carry its unit."""
    match = _HORIZON.match(str(horizon))
    if match is None:
        raise ConfigError(f"horizon must be a number with a unit D/W/M/Y, like '12M' or '90D'; got {horizon!r}")
    value = float(match.group(1))
    if value <= 0:
        raise ConfigError(f"horizon must be positive, got {horizon!r}")
    return value, match.group(2).upper()


def horizon_days(horizon: str | int | float) -> float:
    value, unit = parse_horizon(horizon)
    return value * DAYS_PER_UNIT[unit]


def to_periods(horizon: str | int | float, period: str) -> float:
    """A horizon such as "12M" expressed in model periods of `period`."""
    return horizon_days(horizon) / period_days(period)


def annual_to_period_rate(annual_rate: float, period: str) -> float:
    """Compound conversion: (1 + annual)^(days per period / 365.25) - 1."""
    if not annual_rate > -1:
        raise ConfigError(f"annual discount rate must be > -1, got {annual_rate!r}")
    return (1.0 + annual_rate) ** (period_days(period) / DAYS_PER_YEAR) - 1.0


def parse_date(value, name: str = "date") -> pd.Timestamp:
    """A naive Timestamp from a Timestamp/datetime/date, an ISO 8601 string or an int/str yyyymmdd.

    The one date parser for user-given dates (config dates, cutoffs, windows): 19980630 and "19980630" are
    1998-06-30, never nanoseconds since 1970; layouts such as "12/04/2011" are refused rather than guessed
    month-first. A time zone is dropped (wall-clock time kept). Anything else is a ConfigError naming `name`.
    """
    stamp = None
    if isinstance(value, bool):
        stamp = None
    elif isinstance(value, (pd.Timestamp, datetime.date, np.datetime64)):
        stamp = pd.Timestamp(value)
    elif isinstance(value, (int, np.integer)) and _YYYYMMDD.match(str(int(value))):
        stamp = pd.to_datetime(str(int(value)), format="%Y%m%d", errors="coerce")
    elif isinstance(value, str):
        text = value.strip()
        if _YYYYMMDD.match(text):
            stamp = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
        elif _ISO_DATE.match(text):
            stamp = pd.to_datetime(text, format="ISO8601", errors="coerce")
    if stamp is None or pd.isna(stamp):
        if isinstance(value, str) and _ISO_DATE.match(value.strip()) or _YYYYMMDD.match(str(value).strip()):
            raise ConfigError(f"{name} must be a date that exists in the calendar, got {value!r}")
        raise ConfigError(f"{name} must be {DATE_RULE}, got {value!r}")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    return stamp


def iso_date(stamp: pd.Timestamp) -> str:
    """"1998-06-30" at midnight, else the ISO date and time: how dates are written back into configs."""
    return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()
