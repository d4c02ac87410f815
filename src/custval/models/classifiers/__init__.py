"""Churn and propensity classifiers: a readable decision tree, XGBoost with native categoricals and
per-customer reasons, calibration chosen on validation, and pickle-free persistence; the boosted regressor
that revenue uplift and the uplift learners' effect models use."""

from custval.models.classifiers.boosting import BoostedClassifier
from custval.models.classifiers.calibration import CalibratedClassifier
from custval.models.classifiers.persist import load_classifier, save_classifier
from custval.models.classifiers.preprocess import TabularPreprocessor
from custval.models.classifiers.regressor import BoostedRegressor
from custval.models.classifiers.tree import TreeClassifier

__all__ = ["BoostedClassifier", "BoostedRegressor", "CalibratedClassifier", "TabularPreprocessor", "TreeClassifier",
           "load_classifier", "save_classifier"]
