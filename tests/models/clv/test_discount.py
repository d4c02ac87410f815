"""Discount-rate helpers against the worked textbook numbers."""

from __future__ import annotations

import numpy as np
import pytest

from custval.errors import ConfigError
from custval.models.clv.discount import risk_adjusted_rate, risk_adjusted_rates, weighted_cost_of_capital
from custval.units import annual_to_period_rate


def test_wacc_textbook_example():
    # 40% debt at 8% + 60% equity at 12% = 0.032 + 0.072 = 10.4%
    assert weighted_cost_of_capital(debt_share=0.4, cost_of_debt=0.08, cost_of_equity=0.12) == pytest.approx(0.104)
    assert weighted_cost_of_capital(debt_share=0.4, equity_share=0.6, cost_of_debt=0.08,
                                    cost_of_equity=0.12) == pytest.approx(0.104)


def test_wacc_with_tax_shield_and_corner_shares():
    # 0.4 x 0.08 x (1 - 0.25) + 0.6 x 0.12 = 0.024 + 0.072
    assert weighted_cost_of_capital(debt_share=0.4, cost_of_debt=0.08, cost_of_equity=0.12,
                                    tax_rate=0.25) == pytest.approx(0.096)
    assert weighted_cost_of_capital(debt_share=0.0, cost_of_debt=0.08, cost_of_equity=0.12) == pytest.approx(0.12)
    assert weighted_cost_of_capital(debt_share=1.0, cost_of_debt=0.08, cost_of_equity=0.12) == pytest.approx(0.08)


def test_risk_adjusted_rates_by_hand():
    # 10.4% with a 20% risk probability: high 0.104 x 1.2 = 0.1248, low 0.104 x 0.8 = 0.0832
    assert risk_adjusted_rate(0.104, 0.2, risk="high") == pytest.approx(0.1248)
    assert risk_adjusted_rate(0.104, 0.2, risk="low") == pytest.approx(0.0832)
    assert risk_adjusted_rates(0.104, 0.2) == pytest.approx({"high": 0.1248, "low": 0.0832})
    assert risk_adjusted_rate(0.104, 0.0) == pytest.approx(0.104)
    per_customer = risk_adjusted_rate(0.10, np.array([0.0, 0.5, 1.0]), risk="high")
    assert isinstance(per_customer, np.ndarray)
    assert per_customer.tolist() == pytest.approx([0.10, 0.15, 0.20])
    assert isinstance(risk_adjusted_rate(0.1, 0.5), float)


def test_rates_are_annual_and_discount_in_the_expected_order():
    # one year of monthly compounding at the converted rate gives back the annual rate
    high, low = risk_adjusted_rates(0.104, 0.2).values()
    for annual in (0.104, high, low):
        assert (1 + annual_to_period_rate(annual, "M")) ** 12 - 1 == pytest.approx(annual, rel=1e-12)
    # 100 received in 3 years is worth less for a high-risk customer than for a low-risk one
    pv = {name: 100 / (1 + rate) ** 3 for name, rate in {"high": high, "base": 0.104, "low": low}.items()}
    assert pv["high"] < pv["base"] < pv["low"]
    assert pv["base"] == pytest.approx(100 / 1.104**3)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"debt_share": 1.2, "cost_of_debt": 0.08, "cost_of_equity": 0.12}, ["debt_share", "[0, 1]", "1.2"]),
        ({"debt_share": 0.4, "equity_share": 0.5, "cost_of_debt": 0.08, "cost_of_equity": 0.12},
         ["equity_share", "must be 1"]),
        ({"debt_share": 0.4, "cost_of_debt": -0.08, "cost_of_equity": 0.12}, ["cost_of_debt", ">= 0", "-0.08"]),
        ({"debt_share": 0.4, "cost_of_debt": 0.08, "cost_of_equity": float("nan")}, ["cost_of_equity", "nan"]),
        ({"debt_share": 0.4, "cost_of_debt": 0.08, "cost_of_equity": 0.12, "tax_rate": 1.5}, ["tax_rate", "1.5"]),
    ],
)
def test_wacc_bad_input(kwargs, words):
    with pytest.raises(ConfigError) as info:
        weighted_cost_of_capital(**kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_risk_adjusted_bad_input():
    with pytest.raises(ConfigError, match=r"risk_probability: must be a probability in \[0, 1\], got 1\.5"):
        risk_adjusted_rate(0.1, 1.5)
    with pytest.raises(ConfigError, match="risk_probability.*-0.1"):
        risk_adjusted_rate(0.1, np.array([0.2, -0.1]))
    with pytest.raises(ConfigError, match="risk: must be one of"):
        risk_adjusted_rate(0.1, 0.2, risk="medium")
    with pytest.raises(ConfigError, match="rate: must be an annual rate"):
        risk_adjusted_rate(-0.1, 0.2)
