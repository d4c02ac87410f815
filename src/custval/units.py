"""Time units. Everything is counted in days internally; a model period is D (1 day), W (7 days) or
M (365.25/12 = 30.4375 days, the mean Gregorian month: never a silent 30-day month); a year is 365.25 days.
Horizons are written with their unit: "90D", "26W", "12M", "1Y".
"""

from __future__ import annotations

import re

from custval.errors import ConfigError

DAYS_PER_YEAR = 365.25
DAYS_PER_UNIT = {"D": 1.0, "W": 7.0, "M": DAYS_PER_YEAR / 12.0, "Y": DAYS_PER_YEAR}
PERIODS = ("D", "W", "M")
CONVENTION = "1W = 7 days, 1M = 30.4375 days (365.25/12), 1Y = 365.25 days"

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
