"""Choosing an uplift learner for a campaign: the customers split at random, stratified on arm x outcome; every
learner fitted on train and scored by its validation Qini coefficient (the mean over treatment arms of the Qini
of that arm's rows against the control's), or with `n_folds` by its mean over folds of train + valid (one
split's Qini is noisy enough to pick a weaker learner); the chosen one refitted on train + valid. Test rows take
no part.
`average` (AveragedUplift) is the equally weighted mean of the other listed learners that apply (or of those of
them in `average`); it is scored from their fitted predictions, so listing it costs no fit in the choice.

The choice (`rule`): "best", the highest mean Qini; "one_se", the one-standard-error rule: `average` when its
mean is within one standard error (over folds) of the best mean, else the best; or "stack": `average` always, its
members weighted by stacking (`stacking_weights`: a non-negative least-squares fit of the transformed outcome on
their out-of-fold uplift, so a learner that ranks better on the held-out folds weighs more and one that adds
nothing weighs 0) and bagged (`refit_choice`: each member's refit on train + valid averaged with its fold models,
fitted on (n_folds - 1) / n_folds of those rows, which lowers the variance of the ranking). Why: the learners' fold means
differ by less than their noise, and the folds favour the learners that need the least data (each fold's model
sees (n_folds - 1) / n_folds of the rows the refit sees; on the simulated campaigns the S-learner leads the
folds and the T-learner gains the most from the refit's extra rows), so a lead within the noise is no reason to
drop the average, whose ranking is the steadiest on new rows.

The learners are built by name (`make_learner`) with the same XGBoost base settings, so the comparison is
between the methods, not between their base models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from sklearn.model_selection import StratifiedKFold, train_test_split

from custval.errors import ConfigError, DataError, shown
from custval.metrics.uplift import qini_auc_score, uplift_at_k, uplift_auc_score
from custval.models.classifiers import BoostedClassifier, BoostedRegressor
from custval.models.uplift._base import default_classifier, default_regressor, take_rows
from custval.models.uplift.averaged import AveragedUplift, average_of
from custval.models.uplift.class_transformation import ClassTransformation
from custval.models.uplift.drlearner import DRLearner
from custval.models.uplift.slearner import SLearner
from custval.models.uplift.tlearner import TLearner
from custval.models.uplift.xlearner import XLearner

__all__ = ["AVERAGE", "LEARNERS", "RULES", "STACK", "LearnerChoice", "applies", "arm_scores", "average_members",
           "average_pool", "campaign_folds", "choose_learner", "make_learner", "one_standard_error_choice", "pooled_folds",
           "refit_choice", "split_campaign", "stacking_weights"]

LEARNERS = {"s": SLearner, "t": TLearner, "x": XLearner, "dr": DRLearner, "class_transformation": ClassTransformation,
            "average": AveragedUplift}
AVERAGE = "average"
STACK = "stack"
RULES = ("best", "one_se", STACK)
TWO_MODELS = ("x", "dr")  # learners with an outcome and an effect model


def applies(name: str, *, continuous: bool, n_arms: int | None) -> bool:
    """Whether the learner `name` can model the campaign: class_transformation needs a 0/1 outcome and one
    treatment arm (n_arms None: not known yet, assumed one)."""
    return name != "class_transformation" or not continuous and (n_arms is None or n_arms == 1)


def average_members(names: Sequence[str] | None, *, continuous: bool, n_arms: int | None) -> list[str]:
    """The learners `average` takes the mean of: those of `names` (None: every learner) but `average` that apply."""
    names = [n for n in LEARNERS if n != AVERAGE] if names is None else list(names)
    members = [n for n in names if n != AVERAGE and applies(n, continuous=continuous, n_arms=n_arms)]
    if not members:
        raise ConfigError(f"model.learners {names}: average needs another learner that applies (s, t, x or dr)")
    return members


def average_pool(names: Sequence[str], average: Sequence[str] | None = None) -> list[str]:
    """The learners of `names` that `average` may take the mean of: those also in `average` (None: all)."""
    return [n for n in names if n != AVERAGE and (average is None or n in average)]


def make_learner(name: str, *, xgboost: Mapping[str, Any] | None = None, continuous: bool = False,
                 control=None, arms: Sequence | None = None, random_state: int = 0,
                 members: Sequence[str] | None = None):
    """The learner `name` (LEARNERS) with XGBoost base learners of the settings `xgboost` (BoostedClassifier for a
    0/1 outcome, BoostedRegressor for an amount and for effect models; class weighting off). `average`: the
    AveragedUplift of `average_members(members)`, each made alike."""
    if name not in LEARNERS:
        raise ConfigError(f"model.learners: unknown learner {name!r}; allowed: {list(LEARNERS)}")
    if name == AVERAGE:
        n_arms = None if arms is None else len(arms)
        learners = [make_learner(member, xgboost=xgboost, continuous=continuous, control=control, arms=arms,
                                 random_state=random_state)
                    for member in average_members(members, continuous=continuous, n_arms=n_arms)]
        return AveragedUplift(learners=learners, control=control, arms=list(arms) if arms is not None else None,
                              outcome="continuous" if continuous else "binary", random_state=random_state)
    if xgboost is None:  # the learners' own default base models (300 trees of depth 3)
        regressor = default_regressor(random_state)
        outcome_model = regressor if continuous else default_classifier(random_state)
    else:
        regressor = BoostedRegressor(**{**dict(xgboost), "random_state": random_state})
        outcome_model = regressor if continuous else BoostedClassifier(**{**dict(xgboost), "scale_pos_weight": None,
                                                                          "random_state": random_state})
    common = {"control": control, "arms": list(arms) if arms is not None else None, "random_state": random_state}
    if name == "class_transformation":
        if continuous:
            raise ConfigError("model.learners: class_transformation models a 0/1 outcome, not an amount "
                              "(model.target=spend)")
        return ClassTransformation(learner=outcome_model, **common)
    outcome = "continuous" if continuous else "binary"
    if name in TWO_MODELS:
        return LEARNERS[name](outcome_learner=outcome_model, effect_learner=regressor, outcome=outcome, **common)
    return LEARNERS[name](learner=outcome_model, outcome=outcome, **common)


def split_campaign(treatment, y, *, valid_fraction: float, test_fraction: float, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions (train, valid, test), at random, stratified on arm x outcome (x "converted" for an
    amount: spend > 0) so every part has the campaign's arm shares and response rates."""
    t = pd.Series(np.asarray(treatment, dtype=object)).astype(str).to_numpy()
    outcome = np.asarray(y, dtype=float)
    strata = pd.Series(t + "|" + (outcome > 0).astype(int).astype(str))
    counts = strata.value_counts()
    rare = counts[counts < 3]
    if len(rare):
        raise DataError("campaigns", "treatment", f"arm x outcome {rare.index[0]!r} has {int(rare.iloc[0])} "
                        "customers: too few to split into train, valid and test", rare.index[0])
    rows = np.arange(len(t))
    rest, test = train_test_split(rows, test_size=test_fraction, stratify=strata, random_state=seed)
    train, valid = train_test_split(rest, test_size=valid_fraction / (1 - test_fraction),
                                    stratify=strata.iloc[rest], random_state=seed)
    return np.sort(train), np.sort(valid), np.sort(test)


def arm_scores(y, uplift: np.ndarray, treatment, arms: Sequence, control, *, k: float = 0.3) -> pd.DataFrame:
    """Per treatment arm (index), on the rows of that arm and the control: qini (the Qini coefficient; an amount
    is allowed), auuc (0/1 outcomes only, else NaN) and uplift_at_k (the observed uplift in the top k)."""
    y = np.asarray(y, dtype=float)
    u = np.asarray(uplift, dtype=float).reshape(len(y), -1)
    t = np.asarray(treatment, dtype=object)
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    rows = []
    for j, arm in enumerate(arms):
        mask = (t == arm) | (t == control)
        indicator = (t[mask] == arm).astype(int)
        rows.append({"arm": str(arm), "qini": qini_auc_score(y[mask], u[mask, j], indicator),
                     "auuc": uplift_auc_score(y[mask], u[mask, j], indicator) if binary else np.nan,
                     "uplift_at_k": uplift_at_k(y[mask], u[mask, j], indicator, k=k)})
    return pd.DataFrame(rows).set_index("arm")


@dataclass
class LearnerChoice:
    """Every learner's validation scores (`table`: one row per learner, mean over arms and per arm; with folds,
    the mean over folds and `valid_qini_se`, its standard error over folds) and the chosen one (by `rule`;
    ties: the first in order). `members`: the learners `average` is the mean of (make_learner's `members`);
    with rule stack, `weights` (their stacking weights) and `fold_models` (each one's models fitted on the folds,
    in fold order), which refit_choice uses."""

    table: pd.DataFrame
    chosen: str
    models: dict[str, Any] = field(default_factory=dict)  # name -> the learner fitted on train (one split only)
    members: list[str] = field(default_factory=list)
    rule: str = "best"
    weights: dict[str, float] = field(default_factory=dict)  # rule stack: member -> stacking weight (sum 1)
    fold_models: dict[str, list] = field(default_factory=dict)  # rule stack: member -> its fitted fold models


def one_standard_error_choice(qini: pd.Series, se: pd.Series, *, prefer: str = AVERAGE) -> str:
    """The one-standard-error rule on mean scores `qini` and their standard errors `se` (both indexed by
    learner): `prefer` when it is in `qini` and its mean is at least the best mean minus the best learner's
    standard error, else the best (ties: the first in order). A missing (NaN) standard error counts as 0."""
    best = str(qini.idxmax())
    margin = float(se.get(best, np.nan))
    margin = 0.0 if np.isnan(margin) else margin
    if prefer in qini.index and qini[prefer] >= qini[best] - margin:
        return prefer
    return best


def stacking_weights(uplift: Sequence[np.ndarray], y, treatment, arms: Sequence, control) -> np.ndarray:
    """Non-negative weights (sum 1) of the learners whose out-of-fold uplift predictions are `uplift` (one array
    per learner, shape (n,) or (n, n_arms), on the rows of y and treatment): the non-negative least-squares fit
    of the transformed outcome Z = y (T / p - (1 - T) / (1 - p)) on them, both centred, over the rows of every
    arm and the control stacked (T: in the arm; p: the arm's share of those rows). E[Z | x] is the uplift in a
    randomised campaign, so this is the least-squares stack of the uplift. All weights 0 (no learner's uplift
    goes with Z): equal weights."""
    y = np.asarray(y, dtype=float)
    t = np.asarray(treatment, dtype=object)
    u = [np.asarray(v, dtype=float).reshape(len(y), -1) for v in uplift]
    design, target = [], []
    for j, arm in enumerate(arms):
        rows = (t == arm) | (t == control)
        treated = (t[rows] == arm).astype(float)
        p = treated.mean()
        z = y[rows] * (treated / p - (1 - treated) / (1 - p))
        block = np.column_stack([v[rows, j] for v in u])
        design.append(block - block.mean(axis=0))
        target.append(z - z.mean())
    weights, _ = nnls(np.vstack(design), np.concatenate(target))
    total = weights.sum()
    return weights / total if total > 0 else np.full(len(u), 1.0 / len(u))


def _fit_and_predict(names, X_train, y_train, t_train, X_valid, *, arms, control, xgboost, continuous,
                     random_state, members) -> tuple[dict, dict]:
    """(name -> learner fitted on train, name -> its uplift on X_valid) for the learners of `names` that
    apply; `average` from the fits of `members`."""
    models, predictions = {}, {}
    for name in [n for n in names if n != AVERAGE] + [n for n in names if n == AVERAGE]:
        if not applies(name, continuous=continuous, n_arms=len(arms)):
            continue  # class_transformation models one 0/1 outcome of one treatment arm
        if name == AVERAGE:
            fitted = average_members(members, continuous=continuous, n_arms=len(arms))
            models[name] = average_of([models[m] for m in fitted])
            predictions[name] = np.mean([predictions[m] for m in fitted], axis=0)
        else:
            models[name] = make_learner(name, xgboost=xgboost, continuous=continuous, control=control, arms=arms,
                                        random_state=random_state).fit(X_train, y_train, t_train)
            predictions[name] = np.asarray(models[name].predict(X_valid), dtype=float)
    return models, predictions


def _score_row(scores: pd.DataFrame, arms) -> dict:
    row = {"valid_qini": float(scores["qini"].mean()), "valid_auuc": float(scores["auuc"].mean()),
           "valid_uplift_at_k": float(scores["uplift_at_k"].mean())}
    return row | {f"valid_qini_{arm}": float(scores.loc[str(arm), "qini"]) for arm in arms}


def campaign_folds(treatment, y, *, n_folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, score) row positions of `n_folds` folds, at random, stratified on arm x outcome as split_campaign."""
    t = pd.Series(np.asarray(treatment, dtype=object)).astype(str).to_numpy()
    strata = t + "|" + (np.asarray(y, dtype=float) > 0).astype(int).astype(str)
    counts = pd.Series(strata).value_counts()
    if counts.min() < n_folds:
        raise DataError("campaigns", "treatment", f"arm x outcome {counts.idxmin()!r} has {int(counts.min())} "
                        f"customers: too few for model.n_folds={n_folds} folds", counts.idxmin())
    splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(t)), strata))


def pooled_folds(X_train, y_train, t_train, X_valid, y_valid, t_valid, *, n_folds: int, seed: int = 0):
    """Train and valid pooled (train's rows first) and cut by campaign_folds: one (X_fit, y_fit, t_fit, X_score,
    y_score, t_score) per fold, the rows in the pooled order. The choice and the tuning score on these folds."""
    X = pd.concat([X_train, X_valid]) if isinstance(X_train, pd.DataFrame) else np.vstack([X_train, X_valid])
    y = np.concatenate([np.asarray(y_train, dtype=float), np.asarray(y_valid, dtype=float)])
    t = np.concatenate([np.asarray(t_train, dtype=object), np.asarray(t_valid, dtype=object)])
    positions = np.arange(len(y))
    for fit, score in campaign_folds(t, y, n_folds=n_folds, seed=seed):
        yield (take_rows(X, np.isin(positions, fit)), y[fit], t[fit],
               take_rows(X, np.isin(positions, score)), y[score], t[score])


def choose_learner(names: Sequence[str], X_train, y_train, t_train, X_valid, y_valid, t_valid, *,
                   arms: Sequence, control, xgboost: Mapping[str, Any] | None = None, continuous: bool = False,
                   random_state: int = 0, k: float = 0.3, n_folds: int = 0, average: Sequence[str] | None = None,
                   rule: str = "best") -> LearnerChoice:
    """Fit every learner of `names` on train and score it on valid, and choose one by `rule` (RULES; module
    docstring; one_se needs folds, without them it is best; stack needs folds). `average`: which of `names` the
    learner `average` is the mean of (None: all; average_pool). `n_folds` >= 2: train and valid pooled and cut
    into that many folds (campaign_folds); each learner fitted on all folds but one and scored on that one, its
    scores the mean over folds (less noise than one split; `models` is then empty). Rule stack: `average` is
    chosen, with the stacking weights of its members on their out-of-fold uplift and their fold models."""
    if not names:
        raise ConfigError("model.learners must name at least one learner")
    if rule not in RULES:
        raise ConfigError(f"model.choice must be one of {list(RULES)}, got {shown(rule)}")
    if rule == STACK and n_folds < 2:
        raise ConfigError(f"model.choice=stack weights the learners on out-of-fold predictions: it needs "
                          f"model.n_folds >= 2, got {shown(n_folds)}")
    members = average_pool(names, average)
    common = {"arms": arms, "control": control, "xgboost": xgboost, "continuous": continuous,
              "random_state": random_state, "members": members}
    fold_models: dict[str, list] = {}
    out_of_fold: dict[str, list] = {}
    scored: list[tuple[np.ndarray, np.ndarray]] = []
    if n_folds:
        stacked = (average_members(members, continuous=continuous, n_arms=len(arms)) if rule == STACK else [])
        per_fold: dict[str, list[dict]] = {}
        for X_fit, y_fit, t_fit, X_score, y_score, t_score in pooled_folds(
                X_train, y_train, t_train, X_valid, y_valid, t_valid, n_folds=n_folds, seed=random_state):
            fitted, predictions = _fit_and_predict(names, X_fit, y_fit, t_fit, X_score, **common)
            for name in stacked:
                fold_models.setdefault(name, []).append(fitted[name])
                out_of_fold.setdefault(name, []).append(predictions[name].reshape(len(y_score), -1))
            scored.append((y_score, t_score))
            for name, u in predictions.items():
                per_fold.setdefault(name, []).append(_score_row(arm_scores(y_score, u, t_score, arms, control,
                                                                           k=k), arms))
        rows = {name: pd.DataFrame(scores).mean().to_dict()
                | {"valid_qini_se": float(pd.DataFrame(scores)["valid_qini"].sem())}
                for name, scores in per_fold.items()}
        models = {}
    else:
        models, predictions = _fit_and_predict(names, X_train, y_train, t_train, X_valid, **common)
        rows = {name: _score_row(arm_scores(y_valid, u, t_valid, arms, control, k=k), arms)
                for name, u in predictions.items()}
    if not rows:
        raise ConfigError(f"model.learners {list(names)}: none applies (class_transformation needs a 0/1 target "
                          "and one treatment arm); add s, t, x or dr")
    table = pd.DataFrame.from_dict(rows, orient="index").loc[[n for n in names if n in rows]]
    table.index.name = "learner"
    se = table["valid_qini_se"] if "valid_qini_se" in table else pd.Series(np.nan, index=table.index)
    weights = {}
    if rule == STACK:
        chosen = AVERAGE
        y_all = np.concatenate([y for y, _ in scored])
        t_all = np.concatenate([t for _, t in scored])
        fitted = stacking_weights([np.vstack(out_of_fold[m]) for m in stacked], y_all, t_all, arms, control)
        weights = {m: float(w) for m, w in zip(stacked, fitted, strict=True)}
    elif rule == "one_se":
        chosen = one_standard_error_choice(table["valid_qini"], se)
    else:
        chosen = str(table["valid_qini"].idxmax())
    table["chosen"] = table.index == chosen
    return LearnerChoice(table=table, chosen=chosen, models=models, members=members, rule=rule, weights=weights,
                         fold_models=fold_models)


def refit_choice(choice: LearnerChoice, X, y, treatment, *, arms: Sequence, control,
                 xgboost: Mapping[str, Any] | None = None, continuous: bool = False, random_state: int = 0,
                 bag: bool = True):
    """The chosen learner fitted on X, y, treatment (train + valid): make_learner(choice.chosen) fitted there;
    with rule stack, the AveragedUplift of each member's refit and (`bag`) its fold models, a member's stacking
    weight split equally over its fits. `bag` False (the base settings were tuned after the folds, so the fold
    models are not of those settings): the refits only, weighted alike."""
    if choice.rule != STACK:
        return make_learner(choice.chosen, xgboost=xgboost, continuous=continuous, control=control, arms=arms,
                            random_state=random_state, members=choice.members).fit(X, y, treatment)
    models, weights = [], []
    for name, weight in choice.weights.items():
        if weight == 0:
            continue  # adds nothing: not refitted
        refit = make_learner(name, xgboost=xgboost, continuous=continuous, control=control, arms=arms,
                             random_state=random_state).fit(X, y, treatment)
        fits = [refit, *choice.fold_models[name]] if bag else [refit]
        models += fits
        weights += [weight / len(fits)] * len(fits)
    return average_of(models, weights)
