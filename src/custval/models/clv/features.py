"""CLV model outputs as point-in-time features for the churn and propensity snapshots.

`CLVFeatures(horizon_days)` is a callable for `custval.features.snapshots.build_snapshot(extra_features=...)`:
given the transactions before a cutoff it fits BG/NBD on their RFM summary (last day = cutoff - 1 day) and
returns each customer's P(alive) and expected purchases over the label horizon. It lives here, not in
`features`, because features must not depend on models (data -> features -> models).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from custval.errors import DataError
from custval.features.rfm import rfm_summary
from custval.models.clv.bgnbd import BetaGeo
from custval.units import check_period, period_days


@dataclass(frozen=True)
class CLVFeatures:
    """BG/NBD p_alive and expected_purchases_<H>d as of a cutoff, fitted on the log before it alone.

    BG/NBD needs repeat buyers before the cutoff: at a cutoff too early to have any (or any other data
    problem in the fit) the call raises a `DataError` that names the cutoff, chained to the fit's error."""

    horizon_days: int = 90
    period: str = "W"

    def __call__(self, transactions: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
        period = check_period(self.period)
        cutoff = pd.Timestamp(cutoff)
        summary = rfm_summary(transactions, cutoff - pd.Timedelta(days=1), period)
        try:
            model = BetaGeo().fit(summary)
        except DataError as exc:
            raise DataError(
                "transactions", "timestamp",
                f"CLV features (BG/NBD) at cutoff {cutoff.date()} need repeat buyers (customers with >= 2 "
                f"purchase days) before the cutoff; use a later cutoff or drop CLVFeatures there ({exc})",
                str(cutoff.date())) from exc
        horizon = self.horizon_days / period_days(period)
        return pd.DataFrame({
            "p_alive": model.p_alive(summary),
            f"expected_purchases_{self.horizon_days}d": model.expected_purchases(summary, horizon),
        }, index=summary.index)
