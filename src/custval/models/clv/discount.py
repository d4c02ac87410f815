"""Discount-rate helpers for CLV: the weighted cost of capital and risk-adjusted rates.

All rates are annual (a fraction per year: 0.104 = 10.4%), which is what the CLV code takes as
`annual_discount_rate`; `custval.units.annual_to_period_rate` converts to the model period.
"""

from __future__ import annotations

import numpy as np

from custval.errors import ConfigError

RISKS = ("high", "low")


def _rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not np.isfinite(value) \
            or value < 0:
        raise ConfigError(f"{name}: must be an annual rate >= 0 (0.08 = 8%), got {value!r}")
    return float(value)


def _share(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not np.isfinite(value) \
            or not 0 <= value <= 1:
        raise ConfigError(f"{name}: must be a share in [0, 1] (0.4 = 40%), got {value!r}")
    return float(value)


def weighted_cost_of_capital(*, debt_share: float, cost_of_debt: float, cost_of_equity: float,
                             equity_share: float | None = None, tax_rate: float = 0.0) -> float:
    """WACC = D x kd x (1 - tax) + E x ke, with E = 1 - D unless given (then D + E must be 1).

    40% debt at 8% and 60% equity at 12% (no tax shield) -> 0.104.
    """
    d = _share("debt_share", debt_share)
    e = 1.0 - d if equity_share is None else _share("equity_share", equity_share)
    if not np.isclose(d + e, 1.0, rtol=0, atol=1e-9):
        raise ConfigError(f"equity_share: debt_share + equity_share must be 1, got {d!r} + {e!r} = {d + e!r}")
    t = _share("tax_rate", tax_rate)
    return d * _rate("cost_of_debt", cost_of_debt) * (1.0 - t) + e * _rate("cost_of_equity", cost_of_equity)


def risk_adjusted_rate(rate: float, risk_probability, *, risk: str = "high"):
    """Annual rate x (1 + p) for high-risk customers, x (1 - p) for low-risk ones.

    `risk_probability` may be one probability or one per customer (array in, array out). Riskier customers'
    future cash flows are discounted harder; safer ones less.
    """
    base = _rate("rate", rate)
    if risk not in RISKS:
        raise ConfigError(f"risk: must be one of {RISKS}, got {risk!r}")
    p = np.asarray(risk_probability, dtype=float)
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        example = float(p[bad].ravel()[0])
        raise ConfigError(f"risk_probability: must be a probability in [0, 1], got {example!r}")
    adjusted = base * (1.0 + p) if risk == "high" else base * (1.0 - p)
    return float(adjusted) if adjusted.ndim == 0 else adjusted


def risk_adjusted_rates(rate: float, risk_probability: float) -> dict[str, float]:
    """Both risk-adjusted annual rates: {"high": rate x (1 + p), "low": rate x (1 - p)}."""
    return {risk: risk_adjusted_rate(rate, risk_probability, risk=risk) for risk in RISKS}
