"""Common behaviour of the binary classifiers: scikit-learn tags and the 0/1 decision rule."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class BinaryClassifier(ClassifierMixin, BaseEstimator):
    """Base of Tree/Boosted/Calibrated classifiers. Subclasses set their fitted attributes (names ending in
    "_", `classes_` = [0, 1] among them) together at the end of fit, so scikit-learn's `check_is_fitted`
    rule tells a fitted estimator; they implement `predict_proba`, and `predict` is class 1 where its
    probability exceeds 0.5.

    Tags: a binary classifier (0/1 labels) of a feature frame with numeric columns holding missing values
    (NaN) and categorical columns (text, category or bool, missing as <NA>)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    def predict(self, X) -> np.ndarray:
        """Class labels 0/1 (probability of class 1 above 0.5)."""
        return (self.predict_proba(X)[:, 1] > 0.5).astype(np.int64)
