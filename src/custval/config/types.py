"""The setting types every pipeline shares: names, dates, durations, periods, output paths, numbers.

Each type validates one rule, written once; a failure raises `SettingError`, which `custval.config.loading`
renders as a ConfigError naming the dotted key ("snapshots.horizon_days must be an integer >= 1, got 0").
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, StrictBool, StrictInt

from custval import units
from custval.errors import ConfigError

OUTPUT_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")
RETURNS_POLICIES = ("exclude", "net", "error")
DUPLICATES_POLICIES = ("error", "drop", "keep")
MISSING_ID_POLICIES = ("error", "drop")
CANCELLATION_POLICIES = ("match", "returns")
PRICE_POLICIES = ("drop", "keep", "error")
UNMAPPED_POLICIES = ("warn", "error")


class SettingError(ValueError):
    """A setting breaks its rule. `key` is the dotted path below the field that failed ("" = the field itself,
    "start" = its sub-setting start); `message` reads after the key ("must be ...")."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"{key} {message}".strip())


def _name(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise SettingError("", f"must be a non-empty name, got {value!r}")
    return value


def _model_name(value: Any) -> Any:
    _name(value)
    if any(ch in value for ch in "/:%"):
        raise SettingError("", f"must be a registered model name without '/', ':' or '%', got {value!r}")
    return value


def _path(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise SettingError("", f"must be a file path, got {value!r}")
    return value


def _date(value: Any) -> str:
    try:
        return units.iso_date(units.parse_date(value, name=""))
    except ConfigError as exc:
        raise SettingError("", str(exc).strip()) from None


def _duration(value: Any) -> str:
    try:
        units.parse_horizon(value)
    except ConfigError:
        raise SettingError("", f"must be a positive duration with its unit D/W/M/Y, such as '12M', '39W' or "
                               f"'90D'; got {value!r}") from None
    return str(value).strip().upper()


def _period(value: Any) -> str:
    if not isinstance(value, str):
        raise SettingError("", f"must be one of {units.PERIODS}, got {value!r}")
    try:
        return units.check_period(value)
    except ConfigError as exc:
        raise SettingError("", str(exc).removeprefix("period ")) from None


def output_path(value: Any) -> str:
    """A .parquet/.csv file name that is not an existing directory (where it can be written is checked when
    the job starts)."""
    _path(value)
    if Path(value).expanduser().is_dir():
        raise SettingError("", f"must be a file path, but {value!r} is an existing directory; give a file such as "
                               f"'{Path(value) / 'scores.parquet'}'")
    if not value.lower().endswith(OUTPUT_SUFFIXES):
        raise SettingError("", f"must be a file name ending with one of {list(OUTPUT_SUFFIXES)}, got {value!r}")
    return value


def one_of(*choices: str):
    """A text setting with a fixed set of values (checked before any type coercion, so 3 is refused too)."""

    def check(value: Any) -> Any:
        if not isinstance(value, str) or value not in choices:
            raise SettingError("", f"must be one of {list(choices)}, got {value!r}")
        return value

    return BeforeValidator(check)


def _finite(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SettingError("", f"must be a finite number, got {value!r}")
    return float(value)


def _fraction(value: float) -> float:
    if not 0 < value < 1:
        raise SettingError("", f"must be a number in (0, 1), got {value!r}")
    return value


def _share(value: float) -> float:
    if not 0 < value <= 1:
        raise SettingError("", f"must be a share in (0, 1], got {value!r}")
    return value


def _positive(value: float) -> float:
    if not value > 0:
        raise SettingError("", f"must be a number > 0, got {value!r}")
    return value


def _at_least(low: int):
    def check(value: int) -> int:
        if value < low:
            raise SettingError("", f"must be an integer >= {low}, got {value!r}")
        return value

    return AfterValidator(check)


def _integer(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingError("", f"must be an integer, got {value!r}")
    return value


def _flag(value: Any) -> Any:
    if not isinstance(value, bool):
        raise SettingError("", f"must be true or false, got {value!r}")
    return value


Name = Annotated[str, BeforeValidator(_name)]
ModelName = Annotated[str, BeforeValidator(_model_name)]
FilePath = Annotated[str, BeforeValidator(_path)]
Date = Annotated[str, BeforeValidator(_date)]
Duration = Annotated[str, BeforeValidator(_duration)]
Period = Annotated[str, BeforeValidator(_period)]
OutputPath = Annotated[str, BeforeValidator(output_path)]
Real = Annotated[float, BeforeValidator(_finite)]
Fraction = Annotated[float, BeforeValidator(_finite), AfterValidator(_fraction)]
Share = Annotated[float, BeforeValidator(_finite), AfterValidator(_share)]
PositiveReal = Annotated[float, BeforeValidator(_finite), AfterValidator(_positive)]
Integer = Annotated[StrictInt, BeforeValidator(_integer)]
PositiveInt = Annotated[StrictInt, BeforeValidator(_integer), _at_least(1)]
NonNegativeInt = Annotated[StrictInt, BeforeValidator(_integer), _at_least(0)]
Flag = Annotated[StrictBool, BeforeValidator(_flag)]
ColumnMap = dict[Name, Name]
