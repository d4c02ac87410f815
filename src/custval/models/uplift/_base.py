"""What every uplift learner shares: the arms of a randomised campaign read from a treatment column, the
outcome (a 0/1 conversion or a continuous amount), the base learners (XGBoost by default, any scikit-learn
classifier or regressor, cloned inside) and the `predict` shape (one column per treatment arm vs control).

Uplift is P(y=1 | arm, x) - P(y=1 | control, x) for a binary outcome and E[y | arm, x] - E[y | control, x]
for a continuous one (revenue uplift).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.utils import get_tags

from custval.errors import ConfigError, DataError, SchemaError, shown
from custval.models.classifiers import BoostedClassifier, BoostedRegressor
from custval.models.validation import (
    check_choice,
    check_fitted,
    check_numeric_target,
    check_random_state,
    check_same_index,
)

CAMPAIGN = "campaign"  # table name in error messages about the treatment and the outcome
OUTCOMES = ("auto", "binary", "continuous")
LEARNER_ROLES = ("learner", "outcome_learner", "effect_learner", "propensity_learner")


def default_classifier(random_state) -> BoostedClassifier:
    """The default binary base learner: XGBoost with unweighted classes (uplift subtracts probabilities, so
    they must not be distorted by class weights) and a fixed number of trees (no validation split inside)."""
    return BoostedClassifier(n_estimators=300, learning_rate=0.05, max_depth=3, scale_pos_weight=None,
                             random_state=random_state)


def default_regressor(random_state) -> BoostedRegressor:
    """The default continuous base learner (revenue, and the effect models of the X- and DR-learners)."""
    return BoostedRegressor(n_estimators=300, learning_rate=0.05, max_depth=3, random_state=random_state)


@dataclass(frozen=True)
class Campaign:
    """A checked training set: `group` is 0 for control rows and k for rows of arms[k - 1]."""

    X: object
    y: np.ndarray
    group: np.ndarray
    arms: list
    control: object
    outcome: str

    def rows(self, mask: np.ndarray):
        return take_rows(self.X, mask)


def take_rows(X, mask: np.ndarray):
    """The rows of a DataFrame or array where `mask` holds (positions, so any index works)."""
    return X.iloc[np.flatnonzero(mask)] if isinstance(X, pd.DataFrame) else np.asarray(X)[mask]


def _plain(value):
    """numpy scalars as Python values; whole floats (0.0, 1.0 from a float column) as int; bools as 0/1."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _check_arm_name(value, name: str) -> None:
    if not (isinstance(value, str) or isinstance(value, numbers.Integral) and not isinstance(value, bool)):
        raise ConfigError(f"{name} must be an arm name (text) or an integer code, got {shown(value)}")


def parse_treatment(treatment, n_rows: int, control, arms, index: pd.Index | None = None
                    ) -> tuple[np.ndarray, list, object]:
    """(group codes, arm names in column order, control name) from a treatment column of arm names or 0/1.

    `control=None` means 0 for 0/1 (or bool) data; `arms=None` means every other arm present, sorted. A
    Series must carry the features' `index` (when given)."""
    given = isinstance(treatment, pd.Series)
    series = treatment if given else pd.Series(
        treatment if isinstance(treatment, list) else np.asarray(treatment, dtype=object))
    name = str(series.name) if series.name is not None else "treatment"
    if series.ndim != 1 or len(series) != n_rows:
        raise DataError(CAMPAIGN, name, f"must have one arm per row of X ({n_rows} rows)", f"{len(series)} values")
    if given:
        check_same_index(series, name, index, table=CAMPAIGN)
    missing = series.isna().to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise DataError(CAMPAIGN, name, "must not be missing: every customer is in the control or a treatment arm",
                        f"missing at row {first}")
    values = np.array([_plain(v) for v in series.to_numpy(dtype=object)], dtype=object)
    bad = [v for v in values if not (isinstance(v, str | int))]
    if bad:
        raise DataError(CAMPAIGN, name, "must hold arm names (text) or integer codes such as 0/1", shown(bad[0]))
    if len({type(v) for v in values}) > 1:
        raise DataError(CAMPAIGN, name, "must hold either arm names or integer codes, not both",
                        f"{shown(next(v for v in values if isinstance(v, str)))} and "
                        f"{shown(next(v for v in values if isinstance(v, int)))}")
    present = sorted(set(values.tolist()))
    if control is None:
        if not set(present) <= {0, 1}:
            raise ConfigError(f"control must name the control arm: the treatment column {name!r} holds arms "
                              f"{present[:5]}, not 0/1")
        control = 0
    if control not in present:
        raise DataError(CAMPAIGN, name, f"has no row of the control arm {control!r}", f"arms present: {present[:5]}")
    if arms is None:
        arms = [v for v in present if v != control]
        if not arms:
            raise DataError(CAMPAIGN, name, "has no treated rows: every row is in the control arm", control)
    else:
        arms = list(arms)
        for arm in arms:
            if arm not in present:
                raise DataError(CAMPAIGN, name, f"arm {arm!r} has no rows", f"arms present: {present[:5]}")
        unknown = [v for v in present if v != control and v not in arms]
        if unknown:
            raise DataError(CAMPAIGN, name, "holds an arm that is neither the control nor one of `arms`",
                            unknown[0])
    codes = {control: 0} | {arm: k + 1 for k, arm in enumerate(arms)}
    return np.array([codes[v] for v in values], dtype=np.int64), arms, control


def parse_outcome(y, group: np.ndarray, arms: list, control, outcome: str, index: pd.Index | None = None
                  ) -> tuple[np.ndarray, str]:
    """The outcome as float64 and its kind ("binary" | "continuous"). A binary outcome needs responders and
    non-responders in the control and in every arm (the uplift of an arm with no responder cannot be learnt)."""
    values = check_numeric_target(y, len(group), index=index, table=CAMPAIGN,
                                  what="numbers (0/1 for a conversion, an amount for revenue)")
    name = str(y.name) if isinstance(y, pd.Series) and y.name is not None else "y"
    is_binary = bool(np.isin(values, (0.0, 1.0)).all())
    kind = ("binary" if is_binary else "continuous") if outcome == "auto" else outcome
    if kind == "binary":
        if not is_binary:
            first = int(np.flatnonzero(~np.isin(values, (0.0, 1.0)))[0])
            raise DataError(CAMPAIGN, name, "must be 0/1 for a binary outcome (outcome='continuous' for an amount)",
                            f"{values[first]:g} at row {first}")
        for code, arm in enumerate([control, *arms]):
            rate = values[group == code]
            if rate.min() == rate.max():
                raise DataError(CAMPAIGN, name, f"needs responders and non-responders in arm {arm!r}",
                                f"all {len(rate)} rows are {rate[0]:g}")
    return values, kind


def check_learner(learner, name: str, kind: str | None) -> None:
    """A base learner given as a parameter: a scikit-learn estimator that predicts probabilities (kind
    "classifier") or numbers (kind "regressor"); None (the default XGBoost) passes. Its own check_params runs."""
    if learner is None:
        return
    if not (hasattr(learner, "fit") and hasattr(learner, "get_params")):
        raise ConfigError(f"{name} must be a scikit-learn estimator (with fit and get_params), got "
                          f"{type(learner).__name__}")
    if kind == "classifier" and not hasattr(learner, "predict_proba"):
        raise ConfigError(f"{name} must be a classifier with predict_proba (a binary outcome), got "
                          f"{type(learner).__name__}")
    if kind == "regressor" and (is_classifier(learner) or not hasattr(learner, "predict")):
        raise ConfigError(f"{name} must be a regressor (it learns a continuous quantity), got "
                          f"{type(learner).__name__}")
    if callable(getattr(learner, "check_params", None)):
        learner.check_params()


class UpliftEstimator(BaseEstimator):
    """Base of the uplift learners. `fit(X, y, treatment)` -> self; `predict(X)` -> uplift per row, shape (n,)
    with one treatment arm, (n, n_arms) with several (columns in the order of `arms_`).

    Common parameters: `control` (the control arm's name; None = 0 for 0/1 treatment data), `arms` (the
    treatment arms in column order; None = every other arm present, sorted; an arm listed with no rows is an
    error), `outcome` ("auto": binary when y is 0/1, else continuous), `random_state` (default learners,
    folds). Fitted: `arms_`, `control_`, `outcome_`, `n_features_in_` (and `feature_names_in_` for a frame).

    In a Pipeline, pass the treatment as `fit(X, y, <step>__treatment=t)`, or with scikit-learn's metadata
    routing enabled as `fit(X, y, treatment=t)` (requested by default for fit and for a scorer's score)."""

    __metadata_request__fit = {"treatment": True}  # metadata routing: fit always wants the treatment

    binary_only = False  # ClassTransformation: a binary outcome only
    single_arm = False  # ClassTransformation: one treatment arm only

    def _learner_kinds(self, outcome: str | None) -> dict[str, str | None]:
        """Role parameter -> "classifier" | "regressor" (None while the outcome is unknown)."""
        raise NotImplementedError

    def check_params(self):
        """Check every parameter, the base learners' own included (ConfigError naming it); returns self. fit
        calls it first; jobs call it to check config settings before loading data."""
        if self.control is not None:
            _check_arm_name(self.control, "control")
        if self.arms is not None:
            if not isinstance(self.arms, list | tuple) or not self.arms:
                raise ConfigError(f"arms must be a non-empty list of arm names or None, got {shown(self.arms)}")
            for arm in self.arms:
                _check_arm_name(arm, "arms")
            if len(set(self.arms)) != len(self.arms) or self.control in self.arms:
                raise ConfigError(f"arms must be distinct and not include the control arm, got {shown(self.arms)}")
            if self.single_arm and len(self.arms) > 1:
                raise ConfigError(f"arms: {type(self).__name__} models one treatment arm, got {shown(self.arms)}")
        if not self.binary_only:
            check_choice(self.outcome, "outcome", OUTCOMES)
        check_random_state(self.random_state)
        known = None if self._outcome_param() == "auto" else self._outcome_param()
        for role, kind in self._learner_kinds(known).items():
            check_learner(getattr(self, role), role, kind)
        return self

    def _outcome_param(self) -> str:
        return "binary" if self.binary_only else self.outcome

    def _campaign(self, X, y, treatment) -> Campaign:
        if isinstance(X, pd.DataFrame):
            if len(X) == 0:
                raise DataError("features", "<X>", "needs at least one row", "0 rows")
            n_rows = len(X)
        else:
            X = np.asarray(X)
            if X.ndim != 2 or len(X) == 0:
                raise SchemaError("features", "<X>", "must be a 2-D table with at least one row",
                                  f"shape {X.shape}")
            n_rows = X.shape[0]
        index = X.index if isinstance(X, pd.DataFrame) else None
        group, arms, control = parse_treatment(treatment, n_rows, self.control,
                                               None if self.arms is None else list(self.arms), index)
        if self.single_arm and len(arms) > 1:
            raise DataError(CAMPAIGN, "treatment", f"{type(self).__name__} models one treatment arm vs control",
                            f"arms {arms[:5]}")
        values, outcome = parse_outcome(y, group, arms, control, self._outcome_param(), index)
        for role, kind in self._learner_kinds(outcome).items():
            check_learner(getattr(self, role), role, kind)
        return Campaign(X, values, group, arms, control, outcome)

    def base_learner(self, role: str, kind: str):
        """A fresh (unfitted) base learner for `role`: a clone of the parameter, or the default XGBoost."""
        given = getattr(self, role)
        if given is not None:
            return clone(given)
        return default_classifier(self.random_state) if kind == "classifier" else default_regressor(self.random_state)

    def fit(self, X, y, treatment):
        """Fit on features X, outcome y and treatment (arm names or 0/1, one per row); returns self."""
        self.check_params()
        campaign = self._campaign(X, y, treatment)
        fitted = self._fit(campaign)
        fitted |= {"arms_": list(campaign.arms), "control_": campaign.control, "outcome_": campaign.outcome,
                   "n_features_in_": int(np.shape(campaign.X)[1])}
        if isinstance(campaign.X, pd.DataFrame):
            fitted["feature_names_in_"] = np.asarray(campaign.X.columns, dtype=object)
        for name, value in fitted.items():  # all fitted state set together, after everything succeeded
            setattr(self, name, value)
        return self

    def _fit(self, campaign: Campaign) -> dict:
        """The fitted attributes (name -> value) of this learner."""
        raise NotImplementedError

    def _predict_arms(self, X, arms: list[int]) -> np.ndarray:
        """Uplift of the treatment arms at positions `arms` of `arms_`, shape (n, len(arms)); the models of the
        other arms are not evaluated."""
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:
        """Uplift per row: shape (n,) with one treatment arm, (n, n_arms) in the order of `arms_` with several."""
        check_fitted(self)
        uplift = np.asarray(self._predict_arms(X, list(range(len(self.arms_)))), dtype=np.float64)
        return uplift[:, 0] if uplift.shape[1] == 1 else uplift

    def predict_arms(self, X, arms) -> np.ndarray:
        """Uplift of the named treatment arms only, shape (n, len(arms)) in the order given: the same numbers
        as those columns of `predict`, without evaluating the models of the other arms (scoring one offer)."""
        check_fitted(self)
        names = [str(a) for a in self.arms_]
        unknown = [a for a in arms if str(a) not in names]
        if unknown:
            raise ConfigError(f"arm {unknown[0]!r} is not a treatment arm of the model (arms: {names})")
        return np.asarray(self._predict_arms(X, [names.index(str(a)) for a in arms]), dtype=np.float64)

    def predict_frame(self, X) -> pd.DataFrame:
        """Uplift per row as a DataFrame: one column per treatment arm (named by the arm, as text, in the
        order of `arms_`), indexed like X (a DataFrame) or 0..n-1."""
        uplift = self.predict(X)
        index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(uplift))
        return pd.DataFrame(uplift.reshape(len(uplift), -1), index=index, columns=[str(arm) for arm in self.arms_])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        learners = [getattr(self, role) for role in LEARNER_ROLES if hasattr(self, role)]
        given = [learner for learner in learners if learner is not None]
        # default learners (XGBoost on TabularPreprocessor) take NaN, text and categories
        tags.input_tags.allow_nan = all(get_tags(learner).input_tags.allow_nan for learner in given)
        tags.input_tags.categorical = all(get_tags(learner).input_tags.categorical for learner in given)
        tags.input_tags.string = all(get_tags(learner).input_tags.string for learner in given)
        return tags


def outcome_kind(outcome: str | None) -> str | None:
    """The kind of base learner that models an outcome: a classifier for 0/1, a regressor for an amount."""
    return None if outcome is None else "classifier" if outcome == "binary" else "regressor"


def outcome_prediction(model, X, outcome: str) -> np.ndarray:
    """P(y = 1) of a fitted classifier for a binary outcome, the predicted mean of a regressor otherwise."""
    if outcome == "binary":
        return np.asarray(model.predict_proba(X), dtype=np.float64)[:, 1]
    return np.asarray(model.predict(X), dtype=np.float64)
