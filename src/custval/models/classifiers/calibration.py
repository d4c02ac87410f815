"""Probability calibration of an already-fitted classifier on a validation split.

Class weighting (and boosting itself) distort probabilities; the ranking is fine but the numbers are not.
CalibratedClassifier maps the raw score monotonically to a calibrated probability, either isotonic
regression or Platt scaling (a logistic regression on the logit of the raw score). With method="auto" the
two are compared by out-of-fold log loss over the validation rows (stratified K-fold) and the lower wins;
the chosen map is then fitted on all validation rows. The map is monotone, so rankings, AUC and the
per-customer reasons of the underlying model are unchanged.

The calibrator state is plain numbers (isotonic: the step thresholds; sigmoid: slope and intercept) so it
is stored as JSON; predictions use the same function whether freshly fitted or loaded.

Why not `CalibratedClassifierCV(FrozenEstimator(estimator))` (scikit-learn 1.9, checked): (1) its sigmoid is
Platt scaling of the raw probability (or of `decision_function`) with Platt's smoothed targets, not a
logistic regression on logit(score): on scores whose true map is logistic in the log-odds it was 4.5x
further from the truth (max error 0.032 vs 0.007 on 20,000 rows); giving the estimator a logit
`decision_function` fixes that but then isotonic is fitted and interpolated in logit space too, changing
its map; (2) it has no "auto": the out-of-fold comparison stays custval code either way; (3) its fitted
state is private: `calibrated_classifiers_[0]` is a `sklearn.calibration._CalibratedClassifier` holding a
`_SigmoidCalibration` (a_, b_) or an IsotonicRegression whose `f_` is a scipy `interp1d`, so JSON
persistence would read private attributes on save and rebuild private objects on load (or need pickle).
Its isotonic map equals this one (to the 1e-6 clip), and this one is built from the same public
IsotonicRegression and LogisticRegression.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.special import expit, logit
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import InputTags, get_tags

from custval.errors import ConfigError, DataError, ModelError, shown
from custval.models.classifiers._base import BinaryClassifier
from custval.models.classifiers._checks import CLASSES, LABELS, check_frame, check_target
from custval.models.validation import check_choice, check_fitted, check_int, check_random_state

METHODS = ("auto", "isotonic", "sigmoid")
PROBABILITY_EPS = 1e-6  # calibrated probabilities are kept in [eps, 1 - eps]: isotonic steps can reach 0 or 1
_LOGIT_EPS = 1e-7  # raw scores are clipped before the logit (float32 model outputs can be exactly 0 or 1)


def _raw_logit(p: np.ndarray) -> np.ndarray:
    return logit(np.clip(p, _LOGIT_EPS, 1.0 - _LOGIT_EPS))


def fit_calibrator(method: str, scores: np.ndarray, y: np.ndarray) -> dict:
    """Fit one calibration map of raw scores to P(y = 1); returns its JSON-able state."""
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True).fit(scores, y)
        return {"method": "isotonic", "x": iso.X_thresholds_.astype(float).tolist(),
                "y": iso.y_thresholds_.astype(float).tolist()}
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(_raw_logit(scores)[:, None], y)
    return {"method": "sigmoid", "coef": float(lr.coef_[0, 0]), "intercept": float(lr.intercept_[0])}


def apply_calibrator(state: dict, scores: np.ndarray) -> np.ndarray:
    """Calibrated P(y = 1) for raw scores: isotonic = linear interpolation between the fitted thresholds
    (clipped outside them, as IsotonicRegression(out_of_bounds="clip")); sigmoid = expit(a * logit(s) + b)."""
    scores = np.asarray(scores, dtype=np.float64)
    if state["method"] == "isotonic":
        p = np.interp(scores, np.asarray(state["x"]), np.asarray(state["y"]))
    else:
        p = expit(state["coef"] * _raw_logit(scores) + state["intercept"])
    return np.clip(p, PROBABILITY_EPS, 1.0 - PROBABILITY_EPS)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """scikit-learn's log loss (classes 0 and 1 stated) of probabilities kept in [eps, 1 - eps], as the
    calibrated ones are, so the raw scores are compared with them on the same footing."""
    return float(log_loss(y, np.clip(p, PROBABILITY_EPS, 1.0 - PROBABILITY_EPS), labels=[0, 1]))


def out_of_fold_log_loss(scores: np.ndarray, y: np.ndarray, *, n_splits: int = 5, random_state=0) -> dict[str, float]:
    """Log loss of each calibration method fitted and applied out of fold (stratified `n_splits`-fold over the
    rows of `scores`, raw P(y = 1), and their 0/1 labels `y`), and of the uncalibrated scores:
    {"isotonic", "sigmoid", "uncalibrated"} -> log loss."""
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    out_of_fold = {m: np.empty(len(y)) for m in ("isotonic", "sigmoid")}
    for train, test in folds.split(scores, y):
        for method, predictions in out_of_fold.items():
            state = fit_calibrator(method, scores[train], y[train])
            predictions[test] = apply_calibrator(state, scores[test])
    validation_scores = {m: _log_loss(y, p) for m, p in out_of_fold.items()}
    validation_scores["uncalibrated"] = _log_loss(y, scores)
    return validation_scores


def chosen_method(method: str, validation_scores: dict[str, float]) -> str:
    """`method`, or with "auto" the method of lower out-of-fold log loss (ties go to the smoother sigmoid)."""
    if method != "auto":
        return method
    return "isotonic" if validation_scores["isotonic"] < validation_scores["sigmoid"] else "sigmoid"


class CalibratedClassifier(BinaryClassifier):
    """Calibrates an ALREADY FITTED classifier (TreeClassifier, BoostedClassifier or anything with
    predict_proba); `fit(X_valid, y_valid)` never refits the estimator.

    Fitted: `method_` ("isotonic" | "sigmoid"), `validation_scores_` (out-of-fold log loss of each method and
    the log loss of the uncalibrated scores, all on the validation rows), `calibrator_` (JSON-able state),
    `n_splits_`, `classes_`.

    `sklearn.base.clone` returns an unfitted calibrator wrapping the SAME (fitted) estimator object, not a
    clone of it: cloning the estimator would drop the fit this wrapper exists to calibrate.
    """

    def __init__(self, estimator=None, method="auto", cv=5, random_state=0):
        self.estimator = estimator
        self.method = method
        self.cv = cv
        self.random_state = random_state

    def __sklearn_clone__(self):
        return type(self)(**self.get_params(deep=False))

    def __sklearn_tags__(self):
        """The estimator's input tags (what it accepts, this accepts), for a scikit-learn estimator."""
        tags = super().__sklearn_tags__()
        tags.input_tags = replace(get_tags(self.estimator).input_tags) if isinstance(self.estimator, BaseEstimator) \
            else InputTags()
        return tags

    def check_params(self) -> CalibratedClassifier:
        """Check the settings method, cv and random_state (ConfigError naming the parameter, e.g. "method must
        be one of ..."); returns self. fit calls it first; a job calls it on its config before it has a model
        to calibrate, so `estimator` is checked by fit."""
        check_choice(self.method, "method", METHODS)
        check_int(self.cv, "cv", minimum=2)
        check_random_state(self.random_state)
        return self

    def _raw_scores(self, X) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(X), dtype=np.float64)[:, 1]

    def fit(self, X, y):
        """Choose (method="auto") and fit the calibration map on validation rows X, y (0/1)."""
        self._check_estimator()
        self.check_params()
        X = check_frame(X)
        target = check_target(y, len(X), index=X.index)
        return self._fit_map(self._raw_scores(X), target, y)

    def fit_scores(self, scores, y):
        """Choose (method="auto") and fit the calibration map on given raw scores of the estimator (its
        P(y = 1)) with their labels y: the out-of-fold scores of a cross-validation, for an estimator that was
        then refitted on all the rows (scikit-learn's CalibratedClassifierCV(ensemble=False) calibrates the same
        way). The estimator is not called here; it must still be the fitted classifier the scores stand for."""
        self._check_estimator()
        self.check_params()
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 1 or not np.isfinite(scores).all() or ((scores < 0) | (scores > 1)).any():
            raise DataError(LABELS, "scores", "must be one finite probability in [0, 1] per row",
                            f"shape {scores.shape}" if scores.ndim != 1 else
                            f"{float(scores[~(np.isfinite(scores) & (scores >= 0) & (scores <= 1))][0]):.6g}")
        return self._fit_map(scores, check_target(y, len(scores)), y)

    def _check_estimator(self) -> None:
        if self.estimator is None or not hasattr(self.estimator, "predict_proba"):
            raise ConfigError(f"estimator must be a fitted classifier with predict_proba, got {shown(self.estimator)}")

    def _fit_map(self, scores: np.ndarray, target: np.ndarray, y) -> CalibratedClassifier:
        minority = int(min(target.sum(), len(target) - target.sum()))
        n_splits = min(self.cv, minority)
        if n_splits < 2:
            raise DataError(LABELS, str(getattr(y, "name", None) or "y"),
                            "calibration needs at least 2 validation rows of each class", f"{minority} in one class")
        validation_scores = out_of_fold_log_loss(scores, target, n_splits=n_splits, random_state=self.random_state)
        method = chosen_method(self.method, validation_scores)
        calibrator = fit_calibrator(method, scores, target)
        # fitted state set together, last: a failure above leaves the estimator unfitted
        self.validation_scores_ = validation_scores
        self.method_ = method
        self.n_splits_ = n_splits
        self.classes_ = CLASSES.copy()
        if hasattr(self.estimator, "feature_names_in_"):
            self.feature_names_in_ = self.estimator.feature_names_in_
            self.n_features_in_ = len(self.feature_names_in_)
        self.calibrator_ = calibrator
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) calibrated probabilities of class 0 and 1."""
        check_fitted(self)
        p = apply_calibrator(self.calibrator_, self._raw_scores(X))
        return np.column_stack([1.0 - p, p])

    def explain(self, X, top: int = 3, **kwargs):
        """The estimator's reasons: calibration is monotone, so what pushes the raw score up pushes the
        calibrated probability up too."""
        check_fitted(self)
        if not hasattr(self.estimator, "explain"):
            raise ModelError(f"{type(self.estimator).__name__} gives no per-customer reasons; use "
                             "BoostedClassifier, LogisticClassifier or AveragedClassifier (TreeClassifier offers "
                             "rules_text())")
        return self.estimator.explain(X, top=top, **kwargs)

    @property
    def feature_importances_(self):
        """The estimator's importances (calibration does not change them)."""
        check_fitted(self)
        return self.estimator.feature_importances_
