"""Gradient-boosted regression trees (XGBoost) on the same feature frames as BoostedClassifier: the base
learner of revenue uplift (spend per customer) and of the uplift learners' effect models (X- and DR-learner
pseudo-outcomes are continuous even when the outcome is a conversion).

A Pipeline of the "category"-encoded TabularPreprocessor and an xgboost.XGBRegressor (hist trees, native
categorical splits), saved as data by custval.models.classifiers.persist like the classifiers.
"""

from __future__ import annotations

import numpy as np
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.pipeline import Pipeline

from custval.errors import DataError
from custval.models.classifiers._checks import (
    LABELS,
    booster_params,
    check_booster_params,
    check_eval_set,
    check_frame,
    check_sample_weight,
    check_xgboost_names,
)
from custval.models.classifiers.preprocess import TabularPreprocessor
from custval.models.validation import check_choice, check_fitted, check_numeric_target

OBJECTIVES = ("reg:squarederror", "reg:pseudohubererror", "reg:tweedie")  # all estimate a mean (not a median)


class BoostedRegressor(RegressorMixin, BaseEstimator):
    """XGBoost regressor on a feature frame (numeric with NaN, categorical with <NA>).

    `objective`: "reg:squarederror" (default; the conditional mean), "reg:pseudohubererror" (robust to a few
    huge values) or "reg:tweedie" (non-negative spend with many zeros; needs y >= 0). With
    `eval_set=(X_valid, y_valid)` training stops after `early_stopping_rounds` rounds without improvement on
    it and predictions use trees up to `best_iteration_`; without it all `n_estimators` trees are used (hence
    the smaller default than BoostedClassifier's). `handle_unknown`, `categorical`, `callbacks`: as in
    BoostedClassifier.

    Fitted: `pipeline_` ("preprocess" -> "xgboost"), `preprocessor_`, `model_` (XGBRegressor), `booster_`,
    `best_iteration_`, `n_iterations_`, `evals_result_`, `feature_names_in_`, `n_features_in_`.
    """

    def __init__(self, n_estimators=300, learning_rate=0.05, max_depth=3, min_child_weight=1.0, subsample=0.8,
                 colsample_bytree=0.8, reg_lambda=1.0, reg_alpha=0.0, gamma=0.0, max_cat_to_onehot=None,
                 objective="reg:squarederror", early_stopping_rounds=50, random_state=0, n_jobs=2,
                 handle_unknown="ignore", callbacks=None, categorical=None):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.gamma = gamma
        self.max_cat_to_onehot = max_cat_to_onehot
        self.objective = objective
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.handle_unknown = handle_unknown
        self.callbacks = callbacks
        self.categorical = categorical

    def check_params(self) -> BoostedRegressor:
        """Check every parameter (ConfigError naming it); returns self. fit calls it first."""
        check_booster_params(self)
        check_choice(self.objective, "objective", OBJECTIVES)
        self._preprocessor().check_params()
        return self

    def _preprocessor(self) -> TabularPreprocessor:
        return TabularPreprocessor(categorical=self.categorical, encoding="category",
                                   handle_unknown=self.handle_unknown)

    def _target(self, y, X) -> np.ndarray:
        values = check_numeric_target(y, len(X), index=X.index)
        if self.objective == "reg:tweedie" and (values < 0).any():
            first = int(np.flatnonzero(values < 0)[0])
            raise DataError(LABELS, "y", "must be >= 0 for objective 'reg:tweedie'", f"{values[first]:g} at row {first}")
        return values

    def fit(self, X, y, eval_set=None, sample_weight=None):
        """Fit on X, y (numbers); early-stop on `eval_set=(X_valid, y_valid)` when given."""
        self.check_params()
        X = check_frame(X)
        target = self._target(y, X)
        weights = check_sample_weight(sample_weight, len(X))
        check_xgboost_names(X)
        preprocessor = self._preprocessor().fit(X)
        fit_kwargs: dict = {"verbose": False, "sample_weight": weights}
        if eval_set is not None:
            X_valid, y_valid = check_eval_set(eval_set)
            X_valid = check_frame(X_valid)
            fit_kwargs["eval_set"] = [(preprocessor.transform(X_valid), self._target(y_valid, X_valid))]
        model = xgb.XGBRegressor(**booster_params(self, early_stopping=eval_set is not None),
                                 objective=self.objective)
        model.fit(preprocessor.transform(X), target, **fit_kwargs)
        stopped = getattr(model, "best_iteration", None) if model.early_stopping_rounds else None
        best = int(stopped) if stopped is not None else model.get_booster().num_boosted_rounds() - 1
        self._set_fitted(preprocessor, model, best, model.evals_result() if eval_set is not None else {})
        return self

    @classmethod
    def restore(cls, params: dict, preprocessor: TabularPreprocessor, model: xgb.XGBRegressor,
                best_iteration: int, evals_result: dict) -> BoostedRegressor:
        """A fitted BoostedRegressor from saved parts (custval.models.classifiers.persist)."""
        restored = cls(**params)
        restored._set_fitted(preprocessor, model, best_iteration, evals_result)
        return restored

    def _set_fitted(self, preprocessor: TabularPreprocessor, model: xgb.XGBRegressor, best_iteration: int,
                    evals_result: dict) -> None:
        self.evals_result_ = evals_result
        self.preprocessor_ = preprocessor
        self.model_ = model
        self.booster_ = model.get_booster()
        self.best_iteration_ = int(best_iteration)
        self.n_iterations_ = self.best_iteration_ + 1
        self.feature_names_in_ = preprocessor.feature_names_in_
        self.n_features_in_ = preprocessor.n_features_in_
        self.pipeline_ = Pipeline([("preprocess", preprocessor), ("xgboost", model)])

    def predict(self, X) -> np.ndarray:
        """Predicted mean of y per row (float64), trees up to best_iteration_."""
        check_fitted(self)
        matrix = self.preprocessor_.matrix(X)  # the DMatrix of the frame's numbers, without one (boosting.py)
        return self.booster_.inplace_predict(matrix, iteration_range=(0, self.n_iterations_)).astype(np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags
