"""Regularised logistic regression on the customer's own columns, with per-customer reasons from its
coefficients.

The design matrix: categorical columns one-hot (the "onehot" TabularPreprocessor, so a category not seen in
training is a missing value with a warning, as for the tree and XGBoost); numeric columns, with
`transform="log"`, as sign(x) * log(1 + |x|) (counts, amounts and day counts whose effect flattens: the same
transform as the RFM baseline), missing values imputed by the training median plus an indicator column
`<column>=<missing>` for each numeric column that had missing values in training; then every design column
standardised (mean 0, standard deviation 1 on the training rows) so the L2 penalty (`C`, scikit-learn's
inverse strength) treats them alike. The coefficients come from scikit-learn's LogisticRegression
(Newton-Cholesky up to NEWTON_MAX_COLUMNS design columns, lbfgs beyond).

The fitted state is plain numbers (medians, means, scales, coefficients, intercept) next to the preprocessor
state, so it is saved as JSON (custval.models.classifiers.persist) and the same numpy code predicts whether
the model was just fitted or loaded. (scikit-learn's SimpleImputer and StandardScaler compute the same
numbers; rebuilding them on load would mean setting their fitted attributes by hand.)

Reasons: a column's contribution is coefficient x standardised value, summed over the column's design
columns (its one-hot levels; or its value and missing indicator): the log-odds it adds relative to a customer
at the training means. A row's contributions plus the intercept (`bias`) equal its margin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from custval.errors import ConfigError, SchemaError, shown
from custval.models.classifiers._base import BinaryClassifier
from custval.models.classifiers._checks import (
    CLASSES,
    FEATURES,
    check_frame,
    check_target,
)
from custval.models.classifiers.preprocess import MISSING, TabularPreprocessor
from custval.models.classifiers.reasons import BIAS, top_reasons
from custval.models.validation import check_choice, check_fitted, check_int, check_real

TRANSFORMS = ("log", "none")
NEWTON_MAX_COLUMNS = 500  # design columns up to which the Newton-Cholesky solver is used (else lbfgs)


def signed_log(values: np.ndarray) -> np.ndarray:
    """sign(x) * log(1 + |x|): monotone, 0 at 0, compresses long right tails (spend, counts, days)."""
    out = np.log1p(np.abs(values))
    out *= np.sign(values)  # in place: no third temporary of a large design
    return out


class LogisticClassifier(BinaryClassifier):
    """L2-regularised logistic regression on a feature frame (numeric with NaN, categorical with <NA>).

    `C`: inverse penalty strength (scikit-learn's; on standardised columns). `transform`: "log" (default)
    or "none" for the numeric columns. `class_weight`: None (default: the calibrated probabilities need no
    weighting) or "balanced". `handle_unknown`: "ignore" (default) scores an unseen category as missing with
    a CustvalWarning; "error" refuses it.

    Fitted: `preprocessor_`, `design_names_` (one-hot levels, numeric columns, missing indicators),
    `design_columns_` (the input column of each design column), `medians_` (of each numeric column, after
    the transform), `indicators_` (numeric columns with a missing indicator), `means_`, `scales_`, `coef_`,
    `intercept_`, `n_iter_`, `classes_`, `feature_names_in_`, `n_features_in_`, `feature_importances_`.
    """

    def __init__(self, C=1.0, transform="log", class_weight=None, max_iter=1000, handle_unknown="ignore",
                 categorical=None):
        self.C = C
        self.transform = transform
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.handle_unknown = handle_unknown
        self.categorical = categorical

    def check_params(self) -> LogisticClassifier:
        """Check every parameter (ConfigError naming it, e.g. "C must be a finite number > 0"); returns self.
        fit calls it first; jobs call it to check config settings before loading data."""
        check_real(self.C, "C", minimum=0.0, strict=True)
        check_choice(self.transform, "transform", TRANSFORMS)
        if self.class_weight is not None and self.class_weight != "balanced":
            raise ConfigError(f"class_weight must be 'balanced' or None, got {shown(self.class_weight)}")
        check_int(self.max_iter, "max_iter", minimum=1)
        self._preprocessor().check_params()
        return self

    def _preprocessor(self) -> TabularPreprocessor:
        return TabularPreprocessor(categorical=self.categorical, encoding="onehot", handle_unknown=self.handle_unknown)

    # ------------------------------------------------------------------------------------------- fit
    def _transformed(self, X: pd.DataFrame, preprocessor: TabularPreprocessor) -> np.ndarray:
        """The numeric columns after `transform` (inside custval's `shared_inputs`, the transform runs once per
        column for all the models reading the frame)."""
        return preprocessor.numeric_values(X, signed_log if self.transform == "log" else None)

    def _raw_design(self, X: pd.DataFrame, preprocessor: TabularPreprocessor, medians: np.ndarray,
                    indicators: list[str], order: str = "C", scaling: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> np.ndarray:
        """The design matrix: one-hot columns (the "onehot" preprocessor's indicators, in its output order, set
        from the category codes without its frame), imputed numeric columns, missing indicators; in memory
        `order` (C: as fit has always seen it; F: as a frame's to_numpy gives it, see _design). With `scaling`
        (means, scales) each column is standardised as it is written, (value - mean) / scale: the numbers of
        standardising the whole raw design afterwards, in one pass over it instead of three."""
        numeric = preprocessor.numeric_columns_
        codes = preprocessor.category_codes(X)
        values = self._transformed(X, preprocessor)
        missing = np.isnan(values)
        n_onehot = len(preprocessor.feature_names_out_) - len(numeric)
        positions = [numeric.index(c) for c in indicators]
        n_columns = n_onehot + len(numeric) + len(positions)
        design = np.empty((len(X), n_columns), order=order)
        means, scales = (np.zeros(n_columns), np.ones(n_columns)) if scaling is None else scaling
        ones, zeros = (1.0 - means) / scales, (0.0 - means) / scales  # an indicator's two standardised values
        k = 0
        for column in preprocessor.feature_names_in_:
            if column not in preprocessor.categories_:
                continue
            row = codes[column] + 1  # 0: missing (or unseen), 1 + level otherwise
            n_levels = len(preprocessor.categories_[column])
            width = n_levels + int(preprocessor.has_missing_[column])
            # (row r, design column j): level j is code r - 1; the missing column (last, when kept) is row 0
            hit = np.roll(np.eye(n_levels + 1, dtype=bool), -1, axis=1)[:, :width]
            table = np.where(hit, ones[k:k + width], zeros[k:k + width])  # each code's standardised values
            for j in range(width):
                design[:, k + j] = table[:, j][row]
            k += width
        block = design[:, n_onehot:n_onehot + len(numeric)]
        shift = means[n_onehot:n_onehot + len(numeric)]
        np.subtract(values, shift, out=block)
        np.copyto(block, (medians - shift)[None, :], where=missing)  # the median, standardised
        block /= scales[n_onehot:n_onehot + len(numeric)]
        tail = slice(n_onehot + len(numeric), n_columns)
        design[:, tail] = np.where(missing[:, positions], ones[tail], zeros[tail])
        return design

    def _design(self, X) -> np.ndarray:
        """The standardised design of X as an (n, p) Fortran-ordered array: the values and memory layout of
        `standardised(X).to_numpy()`, without the frame's copies."""
        check_fitted(self)
        return self._raw_design(X, self.preprocessor_, self.medians_, self.indicators_, order="F",
                                scaling=(self.means_, self.scales_))

    def fit(self, X, y, eval_set=None):
        """Fit on a feature frame X and 0/1 labels y. `eval_set` is ignored (API parity with boosting)."""
        self.check_params()
        X = check_frame(X)
        target = check_target(y, len(X), index=X.index)
        preprocessor = self._preprocessor().fit(X)
        numeric = list(preprocessor.numeric_columns_)
        raw = self._transformed(X, preprocessor)
        medians = np.nanmedian(raw, axis=0) if numeric else np.empty(0)
        indicators = [c for c, has in zip(numeric, np.isnan(raw).any(axis=0), strict=True) if has]
        onehot = [c for c in preprocessor.feature_names_out_ if c not in set(numeric)]
        owner = {f"{c}={level}": c for c, levels in preprocessor.categories_.items() for level in levels}
        owner |= {f"{c}={MISSING}": c for c in preprocessor.categorical_columns_}
        names = [*onehot, *numeric, *(f"{c}={MISSING}" for c in indicators)]
        if len(set(names)) != len(names):
            clash = pd.Index(names)[pd.Index(names).duplicated()][0]
            raise SchemaError(FEATURES, clash, "a missing-value indicator clashes with another column's name", clash)
        design = self._raw_design(X, preprocessor, medians, indicators)
        means = design.mean(axis=0)
        scales = design.std(axis=0)
        scales = np.where(scales > 0, scales, 1.0)
        # Newton-Cholesky (scikit-learn's choice for many more rows than columns, one-hot ones included) converges
        # in a few steps; with thousands of design columns its p x p systems cost more than lbfgs
        solver = "newton-cholesky" if design.shape[1] <= NEWTON_MAX_COLUMNS else "lbfgs"
        model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, solver=solver)
        model.fit((design - means) / scales, target)
        self._set_fitted(preprocessor, names, [owner.get(c, c) for c in onehot] + numeric + indicators, medians,
                         indicators, means, scales, model.coef_[0], float(model.intercept_[0]), int(model.n_iter_[0]))
        return self

    @classmethod
    def restore(cls, params: dict, preprocessor: TabularPreprocessor, state: dict) -> LogisticClassifier:
        """A fitted LogisticClassifier from saved parts: constructor params, the fitted preprocessor and the
        numbers of `fitted_state()` (custval.models.classifiers.persist)."""
        model = cls(**params)
        model._set_fitted(preprocessor, state["design_names"], state["design_columns"], state["medians"],
                          state["indicators"], state["means"], state["scales"], state["coef"], state["intercept"],
                          state["n_iter"])
        return model

    def fitted_state(self) -> dict:
        """The fitted numbers as JSON-able data (without the preprocessor, saved on its own)."""
        check_fitted(self)
        return {"design_names": list(self.design_names_), "design_columns": list(self.design_columns_),
                "medians": self.medians_.tolist(), "indicators": list(self.indicators_),
                "means": self.means_.tolist(), "scales": self.scales_.tolist(), "coef": self.coef_.tolist(),
                "intercept": self.intercept_, "n_iter": self.n_iter_}

    def _set_fitted(self, preprocessor, names, columns, medians, indicators, means, scales, coef, intercept,
                    n_iter) -> None:
        self.__dict__.pop("_to_column_matrix", None)  # of a previous fit
        self.preprocessor_ = preprocessor
        self.design_names_ = list(names)
        self.design_columns_ = list(columns)
        self.medians_ = np.asarray(medians, dtype=np.float64)
        self.indicators_ = list(indicators)
        self.means_ = np.asarray(means, dtype=np.float64)
        self.scales_ = np.asarray(scales, dtype=np.float64)
        self.coef_ = np.asarray(coef, dtype=np.float64)
        self.intercept_ = float(intercept)
        self.n_iter_ = int(n_iter)
        self.classes_ = CLASSES.copy()
        self.feature_names_in_ = preprocessor.feature_names_in_
        self.n_features_in_ = preprocessor.n_features_in_

    # ------------------------------------------------------------------------------------- predict
    def standardised(self, X) -> pd.DataFrame:
        """The standardised design matrix of X (columns `design_names_`): what the coefficients multiply."""
        return pd.DataFrame(self._design(X), index=X.index, columns=self.design_names_)

    def predict_margin(self, X) -> np.ndarray:
        """Log-odds: intercept + standardised design x coefficients."""
        return self._design(X) @ self.coef_ + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) array of P(class 0), P(class 1)."""
        p = expit(self.predict_margin(X))
        return np.column_stack([1.0 - p, p])

    def _owners(self) -> pd.Series:
        return pd.Series(self.design_columns_, index=self.design_names_)

    @property
    def feature_importances_(self) -> pd.Series:
        """|coefficient| of each standardised design column, summed by input column and normalised to sum to 1
        (the log-odds a one-standard-deviation change moves)."""
        check_fitted(self)
        names = [str(c) for c in self.feature_names_in_]
        weight = pd.Series(np.abs(self.coef_), index=self.design_names_).groupby(self._owners()).sum()
        weight = weight.reindex(names, fill_value=0.0).rename("importance")
        total = weight.sum()
        return weight / total if total > 0 else weight

    # ------------------------------------------------------------------------------------- explain
    def contribution_values(self, X) -> np.ndarray:
        """`contributions` as an (n, n_features_in_ + 1) float64 array (the intercept last), without the frames:
        the design's terms (coefficient x standardised value) summed into their input column."""
        terms = self._design(X) * self.coef_  # the values and memory order of standardised(X).to_numpy()
        to_column = self._to_column()
        out = np.empty((len(terms), to_column.shape[1] + 1))
        out[:, :-1] = terms @ to_column
        out[:, -1] = self.intercept_
        return out

    def _to_column(self) -> np.ndarray:
        """(design column, input column) 0/1 matrix of which input column owns each design column, built once
        per fit (a served customer's reasons would otherwise compare every pair again)."""
        if "_to_column_matrix" not in self.__dict__:
            names = np.asarray([str(c) for c in self.feature_names_in_], dtype=object)
            owner = np.asarray(self.design_columns_, dtype=object)
            self._to_column_matrix = (owner[:, None] == names[None, :]).astype(np.float64)
        return self._to_column_matrix

    def contributions(self, X) -> pd.DataFrame:
        """Per-row contributions in log-odds, one column per input column plus `bias` (the intercept); each
        row sums to the margin."""
        names = [str(c) for c in self.feature_names_in_]
        return pd.DataFrame(self.contribution_values(X), index=X.index, columns=[*names, BIAS])

    def explain(self, X, top: int = 3) -> pd.DataFrame:
        """Per-row top `top` reasons pushing the risk UP (custval.models.classifiers.reasons.top_reasons)."""
        check_int(top, "top", minimum=1)
        return top_reasons(self.contribution_values(X), self.preprocessor_, X, top)

