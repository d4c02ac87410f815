import pytest

from custval import units
from custval.errors import ConfigError


@pytest.mark.parametrize(("horizon", "days"), [("90D", 90.0), ("26W", 182.0), ("12M", 365.25), ("1Y", 365.25),
                                               ("1.5m", 1.5 * 365.25 / 12)])
def test_horizon_days(horizon, days):
    assert units.horizon_days(horizon) == pytest.approx(days, rel=1e-15)


def test_to_periods_converts_between_units():
    assert units.to_periods("12M", "W") == pytest.approx(365.25 / 7)
    assert units.to_periods("4W", "D") == 28.0


@pytest.mark.parametrize("bad", ["12", 12, "12 months", "-3M", "0D", "M"])
def test_horizon_without_unit_or_non_positive_is_rejected(bad):
    with pytest.raises(ConfigError, match="horizon"):
        units.parse_horizon(bad)


def test_period_must_be_known():
    with pytest.raises(ConfigError, match="period must be one of"):
        units.check_period("Q")


def test_annual_rate_compounds_to_the_period():
    monthly = units.annual_to_period_rate(0.10, "M")
    assert (1 + monthly) ** 12 == pytest.approx(1.10, rel=1e-12)
    weekly = units.annual_to_period_rate(0.10, "W")
    assert (1 + weekly) ** (365.25 / 7) == pytest.approx(1.10, rel=1e-12)
    with pytest.raises(ConfigError):
        units.annual_to_period_rate(-1.5, "W")
