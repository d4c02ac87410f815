"""Depth-limited decision tree: a model the business can read as rules.

A scikit-learn Pipeline of the one-hot TabularPreprocessor and a DecisionTreeClassifier (which routes
missing numeric values itself, scikit-learn >= 1.3). Class imbalance is handled with class weights
("balanced" by default), so the raw leaf probabilities are weighted: calibrate them with
CalibratedClassifier on a validation split before reading them as probabilities.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from custval.errors import ConfigError, shown
from custval.models.classifiers._base import BinaryClassifier
from custval.models.classifiers._checks import CLASSES, check_frame, check_target
from custval.models.classifiers.preprocess import MISSING, TabularPreprocessor
from custval.models.validation import check_fitted, check_int, check_random_state, check_real


def _check_class_weight(value) -> None:
    if value is None or value == "balanced":
        return
    if isinstance(value, dict) and set(value) <= {0, 1} and all(
            isinstance(w, numbers.Real) and not isinstance(w, bool) and np.isfinite(w) and w > 0
            for w in value.values()):
        return
    raise ConfigError(f"class_weight must be 'balanced', None or a dict {{0: w0, 1: w1}} of positive weights, "
                      f"got {shown(value)}")


def _check_min_samples_leaf(value) -> None:
    """scikit-learn's rule: a number of rows >= 1, or a fraction of the rows in (0, 1)."""
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    fraction = (isinstance(value, numbers.Real) and not isinstance(value, bool) and not integral
                and bool(np.isfinite(value)) and 0 < value < 1)
    if not (fraction or integral and value >= 1):
        raise ConfigError(f"min_samples_leaf must be an integer >= 1 or a fraction in (0, 1), got {shown(value)}")


class TreeClassifier(BinaryClassifier):
    """Decision tree on one-hot encoded categories and raw numeric features (NaN allowed).

    `fit(X, y, eval_set=None)`: `eval_set` is accepted and ignored so the call matches BoostedClassifier.
    `handle_unknown`: "ignore" (default) scores a category not seen in training as a missing value, with a
    CustvalWarning; "error" refuses it (DataError).
    Fitted: `pipeline_` (Pipeline: "preprocess" -> "tree"), `preprocessor_`, `tree_model_`, `classes_`,
    `feature_names_in_`, `n_features_in_`, `leaf_counts_` / `leaf_positives_` (training rows and positives
    per tree node, zero for inner nodes), `feature_importances_` (Series by one-hot output feature).
    """

    def __init__(self, max_depth=5, min_samples_leaf=100, class_weight="balanced", ccp_alpha=0.0,
                 random_state=0, handle_unknown="ignore", categorical=None):
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.class_weight = class_weight
        self.ccp_alpha = ccp_alpha
        self.random_state = random_state
        self.handle_unknown = handle_unknown
        self.categorical = categorical

    def check_params(self) -> TreeClassifier:
        """Check every parameter (ConfigError naming it, e.g. "max_depth must be ..."); returns self. fit calls
        it first; jobs call it to check config settings before loading data."""
        check_int(self.max_depth, "max_depth", minimum=1, allow_none=True)
        _check_min_samples_leaf(self.min_samples_leaf)
        _check_class_weight(self.class_weight)
        check_real(self.ccp_alpha, "ccp_alpha", minimum=0.0)
        check_random_state(self.random_state)
        self._preprocessor().check_params()
        return self

    def _preprocessor(self) -> TabularPreprocessor:
        return TabularPreprocessor(categorical=self.categorical, encoding="onehot", handle_unknown=self.handle_unknown)

    def fit(self, X, y, eval_set=None):
        """Fit on a feature frame X and 0/1 labels y. `eval_set` is ignored (API parity with boosting)."""
        self.check_params()
        X = check_frame(X)
        target = check_target(y, len(X), index=X.index)
        preprocessor = self._preprocessor()
        tree = DecisionTreeClassifier(max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
                                      class_weight=self.class_weight, ccp_alpha=self.ccp_alpha,
                                      random_state=self.random_state)
        pipeline = Pipeline([("preprocess", preprocessor), ("tree", tree)])
        pipeline.fit(X, target)
        leaves = tree.apply(preprocessor.transform(X))
        n_nodes = tree.tree_.node_count
        self._set_fitted(pipeline, np.bincount(leaves, minlength=n_nodes),
                         np.bincount(leaves, weights=target, minlength=n_nodes))
        return self

    @classmethod
    def restore(cls, params: dict, pipeline: Pipeline, leaf_counts, leaf_positives) -> TreeClassifier:
        """A fitted TreeClassifier from saved parts: constructor params, the fitted Pipeline ("preprocess" ->
        "tree") and the training rows and positives per node (custval.models.classifiers.persist)."""
        model = cls(**params)
        model._set_fitted(pipeline, leaf_counts, leaf_positives)
        return model

    def _set_fitted(self, pipeline: Pipeline, counts, positives) -> None:
        self.preprocessor_ = pipeline.named_steps["preprocess"]
        self.tree_model_ = pipeline.named_steps["tree"]
        self.classes_ = CLASSES.copy()
        self.feature_names_in_ = self.preprocessor_.feature_names_in_
        self.n_features_in_ = self.preprocessor_.n_features_in_
        self.leaf_counts_ = np.asarray(counts, dtype=np.int64)
        self.leaf_positives_ = np.asarray(positives, dtype=np.int64)
        self.pipeline_ = pipeline

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) array: P(class 0), P(class 1) as the (class-weighted) leaf frequencies."""
        check_fitted(self)
        features = self.preprocessor_.transform(X)
        return np.asarray(self.tree_model_.predict_proba(features), dtype=np.float64)

    @property
    def feature_importances_(self) -> pd.Series:
        """Impurity-decrease importance of each one-hot output feature (sums to 1)."""
        check_fitted(self)
        return pd.Series(self.tree_model_.feature_importances_, index=self.preprocessor_.feature_names_out_,
                         name="importance")

    # ----------------------------------------------------------------------------------------- rules
    def rules_text(self, *, label: str = "positive", decimals: int = 2) -> str:
        """The tree as indented if/else rules with, at each leaf, its training rows and their observed
        `label` rate. Numeric splits say which side missing values go to, for columns that had missing
        values in training (other columns' missing values also follow the tree's default, the child with more
        training rows, but saying so on every split confuses readers)."""
        check_fitted(self)
        t = self.tree_model_.tree_
        names = self.preprocessor_.feature_names_out_
        onehot = {f"{c}={v}": (c, v) for c, levels in self.preprocessor_.categories_.items() for v in levels}
        onehot.update({f"{c}={MISSING}": (c, None) for c in self.preprocessor_.categorical_columns_})
        missing_left = getattr(t, "missing_go_to_left", np.ones(t.node_count, dtype=np.uint8))
        with_missing = self.preprocessor_.numeric_missing_  # None: unknown (older saved model), say it always
        total, positives = int(self.leaf_counts_.sum()), int(self.leaf_positives_.sum())
        n_leaves = int((t.children_left < 0).sum())
        lines = [f"Decision tree: depth {self.tree_model_.get_depth()}, {n_leaves} leaves, "
                 f"trained on {total:,} rows ({positives / total:.1%} {label}).",
                 f"Each leaf shows its training rows and their observed {label} rate. The model's scores "
                 "use class weights: they are calibrated separately (CalibratedClassifier) before being "
                 "read as probabilities.", ""]

        def conditions(node: int) -> tuple[str, str]:
            name = names[t.feature[node]]
            if name in onehot:
                column, level = onehot[name]
                if level is None:
                    return f"{column} is not missing", f"{column} is missing"
                return f"{column} is not {level}", f"{column} is {level}"
            threshold = f"{t.threshold[node]:.{decimals}f}"
            left, right = f"{name} <= {threshold}", f"{name} > {threshold}"
            if with_missing is not None and name not in with_missing:
                return left, right
            if missing_left[node]:
                return left + " or missing", right
            return left, right + " or missing"

        def walk(node: int, depth: int) -> None:
            indent = "|   " * depth + "|--- "
            if t.children_left[node] < 0:
                n, k = int(self.leaf_counts_[node]), int(self.leaf_positives_[node])
                rate = f"{k / n:.1%}" if n else "n/a"
                lines.append(f"{indent}leaf: {n:,} rows, {rate} {label}")
                return
            left, right = conditions(node)
            lines.append(indent + left)
            walk(int(t.children_left[node]), depth + 1)
            lines.append(indent + right)
            walk(int(t.children_right[node]), depth + 1)

        walk(0, 0)
        return "\n".join(lines)
