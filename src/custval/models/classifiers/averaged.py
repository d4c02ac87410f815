"""The average of classifiers on the log-odds scale: XGBoost's trees and the logistic regression's smooth
effects often err on different customers, and their mean then ranks better than either.

The members' margins (raw log-odds) are averaged, with optional weights; the probability is the logistic link
of that mean. Averaging margins rather than probabilities keeps the reasons exact: a column's contribution to
the average is the weighted mean of its contributions to the members, and a row's contributions still sum to
its margin. The raw probability is not calibrated (XGBoost's class weighting shifts its margins): wrap the
fitted average in a CalibratedClassifier before reading it as a probability.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import clone

from custval.errors import ConfigError, shown
from custval.models.classifiers._base import BinaryClassifier
from custval.models.classifiers._checks import CLASSES, check_frame, check_target
from custval.models.classifiers.reasons import BIAS, top_reasons
from custval.models.validation import check_fitted, check_int


class AveragedClassifier(BinaryClassifier):
    """Weighted mean of the margins of `estimators`, a list of (name, classifier) pairs whose classifiers
    have `predict_margin` and `contributions` (BoostedClassifier, LogisticClassifier). `fit(X, y)` fits a clone
    of each on the same rows; `weights`: None (equal) or one positive number per estimator.

    Fitted: `estimators_` (the fitted clones, in order), `named_estimators_` (name -> fitted clone),
    `weights_` (normalised to sum to 1), `classes_`, `feature_names_in_`, `n_features_in_`.
    """

    def __init__(self, estimators=None, weights=None):
        self.estimators = estimators
        self.weights = weights

    def check_params(self) -> AveragedClassifier:
        """Check the estimators (a non-empty list of (name, classifier) pairs with distinct names, classifiers
        with predict_margin and contributions, each passing its own check_params) and the weights; returns
        self. ConfigErrors name the parameter."""
        members = self.estimators
        if not isinstance(members, list | tuple) or not members or not all(
                isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str) for m in members):
            raise ConfigError(f"estimators must be a non-empty list of (name, classifier) pairs, got {shown(members)}")
        names = [name for name, _ in members]
        if len(set(names)) != len(names):
            raise ConfigError(f"estimators must have distinct names, got {names}")
        for name, estimator in members:
            if not (hasattr(estimator, "predict_margin") and hasattr(estimator, "contributions")):
                raise ConfigError(f"estimators: {name} ({type(estimator).__name__}) has no predict_margin and "
                                  "contributions to average; use BoostedClassifier or LogisticClassifier")
            if hasattr(estimator, "check_params"):
                try:
                    estimator.check_params()
                except ConfigError as exc:
                    raise ConfigError(f"estimators: {name}: {exc}") from None
        weights = self.weights
        if weights is not None:
            if not isinstance(weights, list | tuple) or len(weights) != len(members) or not all(
                    isinstance(w, numbers.Real) and not isinstance(w, bool) and np.isfinite(w) and w > 0
                    for w in weights):
                raise ConfigError(f"weights must be None or {len(members)} positive numbers (one per estimator), "
                                  f"got {shown(weights)}")
        return self

    def fit(self, X, y, eval_set=None):
        """Fit a clone of every estimator on X, y (0/1). `eval_set` is ignored (API parity with boosting)."""
        self.check_params()
        X = check_frame(X)
        target = check_target(y, len(X), index=X.index)
        fitted = [(name, clone(estimator).fit(X, target)) for name, estimator in self.estimators]
        weights = np.ones(len(fitted)) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        self._set_fitted(fitted, weights)
        return self

    @classmethod
    def restore(cls, params: dict, fitted: list[tuple[str, object]], weights) -> AveragedClassifier:
        """A fitted AveragedClassifier from its fitted members (custval.models.classifiers.persist); the
        `estimators` parameter holds the fitted members too."""
        model = cls(**params, estimators=list(fitted))
        model._set_fitted(list(fitted), np.asarray(weights, dtype=np.float64))
        return model

    def _set_fitted(self, fitted: list, weights: np.ndarray) -> None:
        self.named_estimators_ = dict(fitted)
        self.weights_ = weights / weights.sum()
        first = fitted[0][1]
        self.classes_ = CLASSES.copy()
        self.feature_names_in_ = first.feature_names_in_
        self.n_features_in_ = first.n_features_in_
        self.estimators_ = [estimator for _, estimator in fitted]

    # ------------------------------------------------------------------------------------- predict
    def predict_margin(self, X) -> np.ndarray:
        """Weighted mean of the members' margins (log-odds)."""
        check_fitted(self)
        return sum(w * m.predict_margin(X) for w, m in zip(self.weights_, self.estimators_, strict=True))

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) array of P(class 0), P(class 1): the logistic link of the mean margin (not calibrated)."""
        p = expit(self.predict_margin(X))
        return np.column_stack([1.0 - p, p])

    @property
    def feature_importances_(self) -> pd.Series:
        """Weighted mean of the members' importances (each normalised to sum to 1)."""
        check_fitted(self)
        names = [str(c) for c in self.feature_names_in_]
        total = sum(w * m.feature_importances_.reindex(names, fill_value=0.0).to_numpy()
                    for w, m in zip(self.weights_, self.estimators_, strict=True))
        return pd.Series(total, index=names, name="importance")

    # ------------------------------------------------------------------------------------- explain
    def contribution_values(self, X) -> np.ndarray:
        """`contributions` as an (n, n_features_in_ + 1) float64 array (the bias last), without the frames."""
        check_fitted(self)
        names = [*(str(c) for c in self.feature_names_in_), BIAS]
        parts = [w * (m.contribution_values(X) if hasattr(m, "contribution_values")
                      else m.contributions(X)[names].to_numpy(dtype=np.float64))
                 for w, m in zip(self.weights_, self.estimators_, strict=True)]
        return sum(parts[1:], parts[0])

    def contributions(self, X) -> pd.DataFrame:
        """Weighted mean of the members' contributions (log-odds; input columns plus `bias`); each row sums
        to the mean margin."""
        names = [str(c) for c in self.feature_names_in_]
        return pd.DataFrame(self.contribution_values(X), index=X.index, columns=[*names, BIAS])

    def explain(self, X, top: int = 3) -> pd.DataFrame:
        """Per-row top `top` reasons pushing the risk UP, from the averaged contributions; values as the
        first member's preprocessor encodes them."""
        check_int(top, "top", minimum=1)
        return top_reasons(self.contribution_values(X), self.estimators_[0].preprocessor_, X, top)
