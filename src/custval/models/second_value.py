"""The second lifetime value of a lapsed customer: the spend to expect over a horizon if the customer comes
back, learnt from the customers who lapsed and came back in the past (custval.features.winback.reactivations).

A Poisson regression with a log link (scikit-learn's PoissonRegressor: spend is a non-negative total whose
spread grows with its mean) on the log of the LAPSE_FEATURES (orders and mean order before the lapse, tenure,
length of the lapse), standardised on the training rows. Net spends below zero (returns exceeding purchases)
count as 0. The fitted state is plain numbers, saved as JSON (`to_dict` / `from_dict`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import PoissonRegressor

from custval.errors import ConfigError, DataError
from custval.features.winback import LAPSE_FEATURES
from custval.models.validation import check_fitted

__all__ = ["SecondLifetimeValue"]

MIN_RETURNS = 20  # past returns needed to learn from


class SecondLifetimeValue(RegressorMixin, BaseEstimator):
    """Expected spend after a return, from what is known at the lapse (module docstring).

    alpha: L2 strength of the Poisson regression on the standardised log features; max_iter: its iterations."""

    def __init__(self, *, alpha: float = 1e-3, max_iter: int = 300):
        self.alpha = alpha
        self.max_iter = max_iter

    def check_params(self) -> None:
        """The constructor arguments, by the rules fit applies (ConfigError naming the parameter)."""
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float) or not np.isfinite(self.alpha) \
                or self.alpha < 0:
            raise ConfigError(f"alpha: must be a finite number >= 0, got {self.alpha!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ConfigError(f"max_iter: must be an integer >= 1, got {self.max_iter!r}")

    @staticmethod
    def _design(X) -> np.ndarray:
        frame = pd.DataFrame(X)
        missing = [c for c in LAPSE_FEATURES if c not in frame.columns]
        if missing:
            raise DataError("lapses", missing[0], f"required column is missing (columns: {list(frame.columns)})")
        values = frame[list(LAPSE_FEATURES)].to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DataError("lapses", LAPSE_FEATURES[col], "must be finite", f"row {row}: {values[row, col]}")
        return np.log1p(np.clip(values, 0.0, None))

    def fit(self, X, y) -> SecondLifetimeValue:
        """X: LAPSE_FEATURES of past returns; y: their value (spend over the horizon after the return)."""
        self.check_params()
        design = self._design(X)
        target = np.asarray(y, dtype=float)
        if target.shape != (len(design),) or not np.isfinite(target).all():
            raise DataError("lapses", "value", "must be one finite spend per return", None)
        if len(design) < MIN_RETURNS:
            raise DataError("lapses", "value", f"needs at least {MIN_RETURNS} past returns after a lapse to learn "
                            f"the value of a return; lower winback.lapse_days or give a longer log", len(design))
        self.means_ = design.mean(axis=0)
        scales = design.std(axis=0)
        self.scales_ = np.where(scales > 0, scales, 1.0)
        model = PoissonRegressor(alpha=self.alpha, max_iter=self.max_iter)
        model.fit((design - self.means_) / self.scales_, np.clip(target, 0.0, None))
        self.coef_ = model.coef_.astype(float)
        self.intercept_ = float(model.intercept_)
        self.n_returns_ = int(len(design))
        self.mean_value_ = float(np.mean(np.clip(target, 0.0, None)))
        self.feature_names_in_ = np.asarray(LAPSE_FEATURES, dtype=object)
        return self

    def predict(self, X) -> np.ndarray:
        check_fitted(self, "coef_")
        design = (self._design(X) - self.means_) / self.scales_
        return np.exp(design @ self.coef_ + self.intercept_)

    def to_dict(self) -> dict[str, Any]:
        check_fitted(self, "coef_")
        return {"kind": "second_lifetime_value", "params": self.get_params(),
                "fitted": {"means": self.means_.tolist(), "scales": self.scales_.tolist(),
                           "coef": self.coef_.tolist(), "intercept": self.intercept_,
                           "n_returns": self.n_returns_, "mean_value": self.mean_value_}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SecondLifetimeValue:
        if not isinstance(data, dict) or data.get("kind") != "second_lifetime_value":
            raise DataError("model", "kind", "must be a saved SecondLifetimeValue", None)
        model = cls(**data["params"])
        fitted = data["fitted"]
        model.means_ = np.asarray(fitted["means"], dtype=float)
        model.scales_ = np.asarray(fitted["scales"], dtype=float)
        model.coef_ = np.asarray(fitted["coef"], dtype=float)
        model.intercept_ = float(fitted["intercept"])
        model.n_returns_ = int(fitted["n_returns"])
        model.mean_value_ = float(fitted["mean_value"])
        model.feature_names_in_ = np.asarray(LAPSE_FEATURES, dtype=object)
        return model
