"""Churn and propensity classifiers: a readable decision tree, XGBoost with native categoricals and
per-customer reasons, a regularised logistic regression, their average, calibration on held-out scores, the
choice among them by cross-validation (selection), pickle-free persistence, and the boosted regressor that
revenue uplift and the uplift learners' effect models use."""

from custval.models.classifiers.averaged import AveragedClassifier
from custval.models.classifiers.boosting import BoostedClassifier
from custval.models.classifiers.calibration import CalibratedClassifier
from custval.models.classifiers.logistic import LogisticClassifier
from custval.models.classifiers.persist import load_classifier, save_classifier
from custval.models.classifiers.preprocess import TabularPreprocessor, shared_inputs, shared_value
from custval.models.classifiers.regressor import BoostedRegressor
from custval.models.classifiers.tree import TreeClassifier

__all__ = ["AveragedClassifier", "BoostedClassifier", "BoostedRegressor", "CalibratedClassifier",
           "LogisticClassifier", "TabularPreprocessor", "TreeClassifier", "load_classifier", "save_classifier",
           "shared_inputs", "shared_value"]
