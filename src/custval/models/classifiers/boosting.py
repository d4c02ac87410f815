"""Gradient-boosted trees (XGBoost) with native categorical splits, class-imbalance weighting, early
stopping on a validation split and per-customer reasons from XGBoost's exact tree contributions (TreeSHAP).

A Pipeline of the "category"-encoded TabularPreprocessor and an xgboost.XGBClassifier (hist trees,
`enable_categorical=True`): each input column is one model feature, so contributions map 1:1 back to
the customer's own columns.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.pipeline import Pipeline

from custval.errors import ConfigError, shown
from custval.models.classifiers._base import BinaryClassifier
from custval.models.classifiers._checks import (
    CLASSES,
    booster_params,
    check_booster_params,
    check_eval_set,
    check_frame,
    check_sample_weight,
    check_target,
    check_xgboost_names,
)
from custval.models.classifiers.preprocess import TabularPreprocessor
from custval.models.classifiers.reasons import BIAS, top_reasons
from custval.models.validation import check_fitted, check_int, check_real

# the evaluation metrics XGBoost offers for binary:logistic
_BINARY_METRIC = re.compile(r"logloss|error(@[0-9]*\.?[0-9]+)?|auc|aucpr|(map|ndcg|pre)(@[0-9]+-?)?")




class BoostedClassifier(BinaryClassifier):
    """XGBoost binary classifier on a feature frame (numeric with NaN, categorical with <NA>).

    `scale_pos_weight="auto"` weights positives by negatives/positives of the training labels (None: no
    weighting); the validation loss used for early stopping is weighted the same way so it measures what
    the model optimises. With `eval_set=(X_valid, y_valid)` training stops after `early_stopping_rounds`
    rounds without improvement of `eval_metric` on it, and predictions use trees up to `best_iteration_`;
    without it, all `n_estimators` trees are used. `callbacks` (xgboost.callback.TrainingCallback, e.g. an
    Optuna pruning callback) are passed to XGBoost. `max_cat_to_onehot=None` keeps XGBoost's default.
    `handle_unknown`: "ignore" (default) scores a category not seen in training as a missing value (XGBoost's
    default direction for missing), with a CustvalWarning; "error" refuses it (DataError).

    Fitted: `pipeline_` ("preprocess" -> "xgboost"), `preprocessor_`, `model_` (XGBClassifier), `booster_`,
    `best_iteration_`, `n_iterations_` (trees used), `scale_pos_weight_`, `evals_result_`, `classes_`,
    `feature_names_in_`, `n_features_in_`, `feature_importances_` (normalised total gain per column).
    """

    def __init__(self, n_estimators=2000, learning_rate=0.05, max_depth=4, min_child_weight=1.0, subsample=0.8,
                 colsample_bytree=0.8, reg_lambda=1.0, reg_alpha=0.0, gamma=0.0, max_cat_to_onehot=None,
                 scale_pos_weight="auto", early_stopping_rounds=50, eval_metric="logloss", random_state=0,
                 n_jobs=2, handle_unknown="ignore", callbacks=None, categorical=None):
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
        self.scale_pos_weight = scale_pos_weight
        self.early_stopping_rounds = early_stopping_rounds
        self.eval_metric = eval_metric
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.handle_unknown = handle_unknown
        self.callbacks = callbacks
        self.categorical = categorical

    # ------------------------------------------------------------------------------------------- fit
    def check_params(self) -> BoostedClassifier:
        """Check every parameter (ConfigError naming it, e.g. "subsample must be in (0, 1], got 1.5"); returns
        self. fit calls it first; jobs call it to check config settings before loading data."""
        check_booster_params(self)
        spw = self.scale_pos_weight
        if not (spw is None or isinstance(spw, str) and spw == "auto"):
            check_real(spw, "scale_pos_weight", minimum=0.0, strict=True)
        if not isinstance(self.eval_metric, str) or not _BINARY_METRIC.fullmatch(self.eval_metric):
            raise ConfigError(f"eval_metric must be one XGBoost metric of a binary classifier (logloss, error, "
                              f"error@<t>, auc, aucpr, map, ndcg, pre, with @<n> for the last three), got "
                              f"{shown(self.eval_metric)}")
        self._preprocessor().check_params()
        return self

    def _preprocessor(self) -> TabularPreprocessor:
        return TabularPreprocessor(categorical=self.categorical, encoding="category",
                                   handle_unknown=self.handle_unknown)

    def _xgb_params(self, scale_pos_weight: float, early_stopping: bool) -> dict:
        return booster_params(self, early_stopping) | dict(
            scale_pos_weight=scale_pos_weight, eval_metric=self.eval_metric, objective="binary:logistic")

    def fit(self, X, y, eval_set=None, sample_weight=None):
        """Fit on X, y (0/1); early-stop on `eval_set=(X_valid, y_valid)` when given. `sample_weight` (one
        weight >= 0 per row) multiplies the class weighting of `scale_pos_weight`."""
        self.check_params()
        X = check_frame(X)
        target = check_target(y, len(X), index=X.index)
        weights = check_sample_weight(sample_weight, len(X))
        check_xgboost_names(X)
        preprocessor = self._preprocessor().fit(X)
        n_pos = int(target.sum())
        spw = (len(target) - n_pos) / n_pos if self.scale_pos_weight == "auto" else (
            1.0 if self.scale_pos_weight is None else float(self.scale_pos_weight))
        fit_kwargs: dict = {"verbose": False, "sample_weight": weights}
        if eval_set is not None:
            X_valid, y_valid = check_eval_set(eval_set)
            X_valid = check_frame(X_valid)
            valid_target = check_target(y_valid, len(X_valid), index=X_valid.index, require_both=False)
            fit_kwargs["eval_set"] = [(preprocessor.transform(X_valid), valid_target)]
            fit_kwargs["sample_weight_eval_set"] = [np.where(valid_target == 1, spw, 1.0)]
        model = xgb.XGBClassifier(**self._xgb_params(spw, early_stopping=eval_set is not None))
        model.fit(preprocessor.transform(X), target, **fit_kwargs)
        stopped = getattr(model, "best_iteration", None) if model.early_stopping_rounds else None
        best = int(stopped) if stopped is not None else model.get_booster().num_boosted_rounds() - 1
        self._set_fitted(preprocessor, model, best, spw, model.evals_result() if eval_set is not None else {})
        return self

    @classmethod
    def restore(cls, params: dict, preprocessor: TabularPreprocessor, model: xgb.XGBClassifier,
                best_iteration: int, scale_pos_weight: float, evals_result: dict) -> BoostedClassifier:
        """A fitted BoostedClassifier from saved parts: constructor params, the fitted preprocessor and
        XGBClassifier, and the fitted numbers (custval.models.classifiers.persist)."""
        restored = cls(**params)
        restored._set_fitted(preprocessor, model, best_iteration, scale_pos_weight, evals_result)
        return restored

    def _set_fitted(self, preprocessor: TabularPreprocessor, model: xgb.XGBClassifier, best_iteration: int,
                    scale_pos_weight: float, evals_result: dict) -> None:
        booster = model.get_booster()
        self.scale_pos_weight_ = float(scale_pos_weight)
        self.evals_result_ = evals_result
        self.preprocessor_ = preprocessor
        self.model_ = model
        self.booster_ = booster
        self.best_iteration_ = int(best_iteration)
        self.n_iterations_ = self.best_iteration_ + 1
        self.classes_ = CLASSES.copy()
        self.feature_names_in_ = preprocessor.feature_names_in_
        self.n_features_in_ = preprocessor.n_features_in_
        self.pipeline_ = Pipeline([("preprocess", preprocessor), ("xgboost", model)])

    # ------------------------------------------------------------------------------------- predict
    def _dmatrix(self, X) -> xgb.DMatrix:
        """The DMatrix XGBoost builds of the "category" encoding's frame, from the preprocessor's float32
        matrix (categorical columns as their codes, typed "c") instead of the frame of Categoricals."""
        preprocessor = self.preprocessor_
        names = [str(c) for c in preprocessor.feature_names_in_]
        types = ["c" if c in preprocessor.categories_ else "float" for c in preprocessor.feature_names_in_]
        return xgb.DMatrix(preprocessor.matrix(X), feature_names=names, feature_types=types, enable_categorical=True,
                           nthread=self.n_jobs)

    def _predict(self, X, n_trees: int, kind: str) -> np.ndarray:
        """XGBoost's prediction (`kind`: "margin" or "value") of the first n_trees trees, from the
        preprocessor's float32 matrix without a DMatrix (the same numbers as the DMatrix of the frame)."""
        matrix = self.preprocessor_.matrix(X)
        return self.booster_.inplace_predict(matrix, iteration_range=(0, n_trees),
                                             predict_type=kind).astype(np.float64)

    def predict_margin(self, X, *, n_trees: int | None = None) -> np.ndarray:
        """Raw log-odds (before the logistic link), trees up to best_iteration_; `n_trees`: the first n_trees
        trees instead (at most those trained), e.g. a tree count found by cross-validation."""
        check_fitted(self)
        if n_trees is None:
            n_trees = self.n_iterations_
        else:
            check_int(n_trees, "n_trees", minimum=1)
            n_trees = min(int(n_trees), self.booster_.num_boosted_rounds())
        return self._predict(X, n_trees, "margin")

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) array of P(class 0), P(class 1), trees up to best_iteration_."""
        check_fitted(self)
        p = self._predict(X, self.n_iterations_, "value")
        return np.column_stack([1.0 - p, p])

    @property
    def feature_importances_(self) -> pd.Series:
        """Total gain of each input column over the trees used, normalised to sum to 1."""
        check_fitted(self)
        scores = self.booster_[: self.n_iterations_].get_score(importance_type="total_gain")
        names = [str(c) for c in self.feature_names_in_]
        gain = pd.Series([float(scores.get(c, 0.0)) for c in names], index=names, name="gain")
        total = gain.sum()
        return gain / total if total > 0 else gain

    # ------------------------------------------------------------------------------------- explain
    def contribution_values(self, X, *, approximate: bool = False) -> np.ndarray:
        """`contributions` as an (n, n_features_in_ + 1) float64 array (the bias last), without the frame."""
        check_fitted(self)
        return self.booster_.predict(self._dmatrix(X), pred_contribs=True, approx_contribs=approximate,
                                     iteration_range=(0, self.n_iterations_)).astype(np.float64)

    def contributions(self, X, *, approximate: bool = False) -> pd.DataFrame:
        """Per-row contributions in log-odds, one column per input column plus `bias`; each row sums to the
        raw margin. Exact TreeSHAP by default (costly on CPU: about 100x a prediction); `approximate=True`
        uses XGBoost's fast path-based (Saabas) attribution instead."""
        names = [str(c) for c in self.feature_names_in_]
        return pd.DataFrame(self.contribution_values(X, approximate=approximate), index=X.index,
                            columns=[*names, BIAS])

    def explain(self, X, top: int = 3, *, approximate: bool = False) -> pd.DataFrame:
        """Per-row top `top` reasons pushing the risk UP: reason_1..k ("recency_days=143", "plan=basic",
        "income=missing") and contribution_1..k (log-odds, largest first). Rows with fewer than k positive
        contributions get "" and NaN in the remaining slots. Index = X.index. `approximate`: see contributions."""
        check_int(top, "top", minimum=1)
        return top_reasons(self.contribution_values(X, approximate=approximate), self.preprocessor_, X, top)
