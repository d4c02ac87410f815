"""Simple baselines every churn or propensity run is measured against: a model that does not beat them is not
worth its complexity. `recency`: the days since the last purchase as the score (churn: the longer, the likelier;
buying again: the shorter, the likelier). `rfm_logistic`: a logistic regression on log recency, frequency and
spend (median-imputed, standardised). For a customer table without those columns, `logistic`: the same
regression on every numeric column."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from custval.errors import CustvalWarning

RFM_FEATURES = ("recency_days", "frequency", "monetary_total")


def _logistic():
    return make_pipeline(FunctionTransformer(lambda X: np.sign(X) * np.log1p(np.abs(X))),
                         SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=1000))


def baseline_scores(X_train: pd.DataFrame, y_train, X_test: pd.DataFrame, *, churn: bool = True
                    ) -> dict[str, np.ndarray]:
    """Scores of the baselines on `X_test` (higher = the label more likely), fitted on the training rows.
    `churn`: the label is leaving (recency raises it) rather than buying (recency lowers it)."""
    scores: dict[str, np.ndarray] = {}
    if all(column in X_train.columns for column in RFM_FEATURES):
        recency = X_test["recency_days"].to_numpy(dtype=float)
        scores["recency"] = np.nan_to_num(recency if churn else -recency, nan=0.0)
        columns = list(RFM_FEATURES)
        name = "rfm_logistic"
    else:
        columns = [c for c in X_train.columns if pd.api.types.is_numeric_dtype(X_train[c].dtype)
                   and not pd.api.types.is_bool_dtype(X_train[c].dtype) and X_train[c].notna().any()]
        name = "logistic"
    if columns and len(np.unique(y_train)) == 2:
        model = _logistic().fit(X_train[columns].to_numpy(dtype=float), np.asarray(y_train))
        scores[name] = model.predict_proba(X_test[columns].to_numpy(dtype=float))[:, 1]
    return scores


def warn_unless_better(what: str, auc: float, baselines: dict[str, float]) -> None:
    """A CustvalWarning when `what`'s test ROC AUC does not beat the best baseline's."""
    finite = {name: value for name, value in baselines.items() if np.isfinite(value)}
    if finite:
        best = max(finite, key=finite.get)
        if not auc > finite[best]:
            warnings.warn(f"{what}: test ROC AUC {auc:.4f} does not beat the {best} baseline ({finite[best]:.4f}): "
                          "the model adds nothing over it on this data", CustvalWarning, stacklevel=2)


def warn_label_shift(what: str, train_rate: float, test_rate: float, factor: float = 2.0) -> None:
    """A CustvalWarning when the label rate of the test split differs from training's by more than `factor`
    (a seasonal category, a changed definition): test metrics then say little about the next period."""
    if train_rate > 0 and test_rate > 0 and max(test_rate / train_rate, train_rate / test_rate) > factor:
        warnings.warn(f"{what}: the label rate is {train_rate:.1%} in training and {test_rate:.1%} at test (more "
                      f"than {factor:g}x apart): the test metrics may not hold for the next period", CustvalWarning,
                      stacklevel=2)
