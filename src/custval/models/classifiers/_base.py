"""Common behaviour of the binary classifiers: fitted-state checks and the 0/1 decision rule."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from custval.models.classifiers._checks import check_fitted


class BinaryClassifier(ClassifierMixin, BaseEstimator):
    """Base of Tree/Boosted/Calibrated classifiers. Subclasses set `classes_` (= [0, 1]) in fit and
    implement `predict_proba`; `predict` is class 1 where its probability exceeds 0.5."""

    _fitted_attribute = "classes_"

    def _check_is_fitted(self) -> None:
        check_fitted(self, self._fitted_attribute)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, self._fitted_attribute)

    def predict(self, X) -> np.ndarray:
        """Class labels 0/1 (probability of class 1 above 0.5)."""
        return (self.predict_proba(X)[:, 1] > 0.5).astype(np.int64)
