"""The churn / propensity model chosen by cross-validation on the training rows, then refitted on all of them.

Candidates (`CANDIDATES`): "xgboost" (BoostedClassifier, early stopping), "logistic" (LogisticClassifier) and
"average" (AveragedClassifier of those two, on the log-odds scale). Every candidate is scored on the same folds.

Folds (`cv_folds`): stratified k-fold on the label. With `groups` (the customer ids of snapshots stacked over
several cutoffs) stratified *group* k-fold: all rows of a customer fall in one fold. A customer's rows at
consecutive cutoffs share attributes and history (the features at one cutoff contain the purchases that decide
the label of the cutoff before), so a fold model that saw the customer at another cutoff would be scored on a
customer it partly knows, and its early stopping would run long. Folds by cutoff were the other option: they
give as few folds as there are training cutoffs, of unequal size and label rate, and still put one customer on
both sides; time itself is checked by the test cutoff, which no fold touches.

XGBoost: each fold's model stops early on its own held-out fold, but is *scored* there with the tree count
found on the other folds (the median of their early-stopping points; with a single fold, its own), so no fold's
score comes from a stopping round chosen on its own rows. The refit on all rows uses the median early-stopping
point over the folds, scaled by the refit's rows over a fold's training rows (k / (k - 1) for k even folds): with
the same learning rate, more rows carry more trees before the model starts to fit noise.

The choice (`choose_model`): the highest mean ROC AUC over the folds (of the raw margins; calibration is
monotone). Candidates within `TIE` of it count as level, and among them the lowest cross-validated log loss wins
(the log loss of the out-of-fold scores after calibration, each calibration map fitted and applied out of fold,
custval.models.classifiers.calibration.out_of_fold_log_loss). Then `fit_chosen` refits the chosen candidate on
all rows and calibrates it on the out-of-fold scores of the `calibration_rows` (scikit-learn's
CalibratedClassifierCV(ensemble=False) calibrates a refitted model the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.model_selection import StratifiedKFold

from custval.errors import ConfigError, DataError, shown
from custval.metrics.classification import roc_auc
from custval.models.classifiers._checks import LABELS, check_frame, check_target
from custval.models.classifiers.averaged import AveragedClassifier
from custval.models.classifiers.boosting import BoostedClassifier
from custval.models.classifiers.calibration import CalibratedClassifier, chosen_method, out_of_fold_log_loss
from custval.models.classifiers.logistic import LogisticClassifier
from custval.models.validation import check_int

CANDIDATES = ("xgboost", "logistic", "average")
AVERAGED = ("xgboost", "logistic")  # the members of "average"
TIE = 1e-4  # mean CV ROC AUCs this close count as level: the lower CV log loss decides

Folds = list[tuple[np.ndarray, np.ndarray]]


def check_candidates(candidates: Any, name: str = "candidates") -> tuple[str, ...]:
    """A non-empty list of distinct CANDIDATES; "average" needs both its members (ConfigError naming `name`)."""
    if isinstance(candidates, str) or not isinstance(candidates, Sequence) or not candidates \
            or not all(isinstance(c, str) and c in CANDIDATES for c in candidates):
        raise ConfigError(f"{name} must be a non-empty list of {list(CANDIDATES)}, got "
                          f"{shown(list(candidates) if isinstance(candidates, tuple) else candidates)}")
    if len(set(candidates)) != len(candidates):
        raise ConfigError(f"{name} must be distinct, got {list(candidates)}")
    if "average" in candidates and not set(AVERAGED) <= set(candidates):
        raise ConfigError(f"{name} with average must also list xgboost and logistic (average is their mean), got "
                          f"{list(candidates)}")
    return tuple(candidates)


def cv_folds(y, *, n_splits: int = 5, groups=None, random_state: int = 0) -> Folds:
    """(training rows, held-out rows) position arrays of stratified k-fold, shuffled by `random_state`. With
    `groups`, every group (customer) falls in one fold: the groups are dealt to the folds by scikit-learn's
    StratifiedKFold over the groups, stratified on each group's (rows, positive rows), so the folds get the
    same mix of short and long, churning and staying histories and so nearly the same label rate. (scikit-learn's
    StratifiedGroupKFold balances the rows one group at a time: 2 s for 20,000 customers, against milliseconds
    here.) `n_splits` is lowered to the rows (or groups) of the rarer class when those are fewer; DataError when
    fewer than 2 folds remain or a fold misses a class."""
    check_int(n_splits, "n_splits", minimum=2)
    target = check_target(y, len(y))
    if groups is None:
        minority = int(min(target.sum(), len(target) - target.sum()))
        n = min(n_splits, minority)
        if n < 2:
            raise DataError(LABELS, "y", "cross-validation needs at least 2 rows of each class",
                            f"{minority} rows in the rarer class")
        splits = StratifiedKFold(n, shuffle=True, random_state=random_state).split(np.zeros(len(target)), target)
        folds = [(np.asarray(train), np.asarray(test)) for train, test in splits]
    else:
        folds = _group_folds(target, np.asarray(groups), n_splits, random_state)
    for k, (train, test) in enumerate(folds):
        for part, rows_of in (("training", train), ("held-out", test)):
            if len(np.unique(target[rows_of])) < 2:
                raise DataError(LABELS, "y", f"fold {k + 1} of {len(folds)}: its {part} rows hold one class only; "
                                "use fewer folds", f"{len(rows_of)} rows")
    return folds


def _group_folds(target: np.ndarray, groups: np.ndarray, n_splits: int, random_state: int) -> Folds:
    if len(groups) != len(target):
        raise DataError(LABELS, "groups", f"must have one group per row ({len(target)} rows)", len(groups))
    codes, _ = pd.factorize(groups)
    rows = np.bincount(codes)
    positives = np.bincount(codes, weights=target).astype(np.int64)
    with_positive = int((positives > 0).sum())
    with_negative = int((positives < rows).sum())
    n = min(n_splits, with_positive, with_negative)
    if n < 2:
        raise DataError(LABELS, "y", "cross-validation by group needs at least 2 groups with each class",
                        f"{min(with_positive, with_negative)} groups")
    pattern, _ = pd.factorize(pd.Series(rows).astype(str) + ":" + pd.Series(positives).astype(str))
    counts = np.bincount(pattern)
    rare = counts[pattern] < n  # patterns too rare to spread over the folds share one stratum
    pattern = np.where(rare, -1, pattern)
    if 0 < rare.sum() < n:  # too few even together: they join the commonest pattern
        pattern[rare] = int(np.argmax(counts))
    fold_of_group = np.empty(len(rows), dtype=np.int64)
    splits = StratifiedKFold(n, shuffle=True, random_state=random_state).split(np.zeros(len(rows)), pattern)
    for k, (_, test) in enumerate(splits):
        fold_of_group[test] = k
    fold = fold_of_group[codes]
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n)]


# ------------------------------------------------------------------------------------------ cross-validation
@dataclass
class CandidateScore:
    """One candidate on the folds: out-of-fold margins (log-odds) of every row, the ROC AUC of each fold, the
    cross-validated log loss after calibration, and for XGBoost (and the average) the early-stopping point of
    each fold and the tree count of the refit."""

    name: str
    margins: np.ndarray
    fold_roc_auc: np.ndarray
    log_loss: float = float("nan")
    fold_trees: list[int] | None = None
    n_trees: int | None = None

    @property
    def roc_auc(self) -> float:
        return float(np.mean(self.fold_roc_auc))

    @property
    def roc_auc_std(self) -> float:
        return float(np.std(self.fold_roc_auc))


def per_fold(metric: Callable[[np.ndarray, np.ndarray], float], y: np.ndarray, scores: np.ndarray,
               folds: Folds) -> np.ndarray:
    """`metric(y, scores)` on each fold's held-out rows."""
    return np.array([metric(y[test], scores[test]) for _, test in folds])


def _frame_and_target(X, y) -> tuple[pd.DataFrame, np.ndarray]:
    X = check_frame(X)
    return X, check_target(y, len(X), index=X.index)


def refit_trees(fold_trees: Sequence[int], n_rows: int, folds: Folds) -> int:
    """The refit's tree count: the median early-stopping point of the folds, scaled by n_rows over the mean
    training rows of a fold."""
    scale = n_rows / float(np.mean([len(train) for train, _ in folds]))
    return max(1, int(round(float(np.median(fold_trees)) * scale)))


def boosted_cv(X, y, folds: Folds, params: Mapping[str, Any] | None = None, *,
               after_fold: Callable[[int, BoostedClassifier, np.ndarray], None] | None = None) -> CandidateScore:
    """XGBoost (BoostedClassifier(**params)) on the folds: each fold model stops early on its held-out rows
    (when params keep early stopping on) and is scored there at the median early-stopping point of the other
    folds; the refit's tree count is `refit_trees` (without early stopping: n_estimators, unscaled).
    `after_fold(k, model, held_out_margins_at_its_own_stop)` is called after each fit (the tuner reports to its
    pruner there)."""
    X, target = _frame_and_target(X, y)
    params = dict(params or {})
    stopping = params.get("early_stopping_rounds", BoostedClassifier().early_stopping_rounds) is not None
    models = []
    for k, (train, test) in enumerate(folds):
        eval_set = (X.iloc[test], target[test]) if stopping else None
        model = BoostedClassifier(**params).fit(X.iloc[train], target[train], eval_set=eval_set)
        models.append(model)
        if after_fold is not None:
            after_fold(k, model, model.predict_margin(X.iloc[test]))
    fold_trees = [int(m.n_iterations_) for m in models]
    margins = np.empty(len(target))
    for k, ((_, test), model) in enumerate(zip(folds, models, strict=True)):
        others = fold_trees[:k] + fold_trees[k + 1:] or [fold_trees[k]]
        margins[test] = model.predict_margin(X.iloc[test], n_trees=max(1, int(round(float(np.median(others))))))
    n_trees = refit_trees(fold_trees, len(target), folds) if stopping else fold_trees[0]
    return CandidateScore("xgboost", margins, per_fold(roc_auc, target, margins, folds), fold_trees=fold_trees,
                          n_trees=n_trees)


def logistic_cv(X, y, folds: Folds, params: Mapping[str, Any] | None = None) -> CandidateScore:
    """LogisticClassifier(**params) on the folds."""
    X, target = _frame_and_target(X, y)
    margins = np.empty(len(target))
    for train, test in folds:
        model = LogisticClassifier(**dict(params or {})).fit(X.iloc[train], target[train])
        margins[test] = model.predict_margin(X.iloc[test])
    return CandidateScore("logistic", margins, per_fold(roc_auc, target, margins, folds))


def averaged_cv(members: Sequence[CandidateScore], y, folds: Folds) -> CandidateScore:
    """The mean of the members' out-of-fold margins (what AveragedClassifier predicts from the fold models)."""
    target = check_target(y, len(members[0].margins))
    margins = np.mean([m.margins for m in members], axis=0)
    boosted = next((m for m in members if m.n_trees is not None), None)
    return CandidateScore("average", margins, per_fold(roc_auc, target, margins, folds),
                          fold_trees=None if boosted is None else boosted.fold_trees,
                          n_trees=None if boosted is None else boosted.n_trees)


# ------------------------------------------------------------------------------------------------- choice
@dataclass
class ModelChoice:
    """The candidates' cross-validated scores and the one chosen (`choose_model`)."""

    chosen: str
    scores: dict[str, CandidateScore]
    folds: Folds
    calibration: str

    def table(self) -> pd.DataFrame:
        """One row per candidate: mean and spread of the fold ROC AUCs, CV log loss, trees of the refit, chosen."""
        return pd.DataFrame([{"candidate": s.name, "cv_roc_auc": s.roc_auc, "cv_roc_auc_std": s.roc_auc_std,
                              "cv_log_loss": s.log_loss, "n_trees": s.n_trees, "chosen": s.name == self.chosen}
                             for s in self.scores.values()]).set_index("candidate")

    def metrics(self) -> dict[str, float]:
        """<candidate>_cv_roc_auc, <candidate>_cv_roc_auc_std and <candidate>_cv_log_loss of every candidate."""
        out = {}
        for name, s in self.scores.items():
            out |= {f"{name}_cv_roc_auc": s.roc_auc, f"{name}_cv_roc_auc_std": s.roc_auc_std,
                    f"{name}_cv_log_loss": s.log_loss}
        return out

    @property
    def best(self) -> CandidateScore:
        return self.scores[self.chosen]


def pick_best(scores: Mapping[str, CandidateScore]) -> str:
    """The name of the highest mean CV ROC AUC; among those within TIE of it, the lowest CV log loss (the
    first in order when that ties too)."""
    top = max(s.roc_auc for s in scores.values())
    level = [s for s in scores.values() if s.roc_auc >= top - TIE]
    return min(level, key=lambda s: (s.log_loss if np.isfinite(s.log_loss) else np.inf)).name


def choose_model(X, y, folds: Folds, *, candidates: Sequence[str] = CANDIDATES,
                 xgboost_params: Mapping[str, Any] | None = None, logistic_params: Mapping[str, Any] | None = None,
                 calibration: str = "auto", random_state: int = 0) -> ModelChoice:
    """Score every candidate on `folds` (cv_folds) and choose one (module docstring). `calibration` (auto,
    isotonic or sigmoid) is the method whose out-of-fold log loss each candidate's CV log loss is."""
    candidates = check_candidates(candidates)
    CalibratedClassifier(method=calibration, random_state=random_state).check_params()
    X, target = _frame_and_target(X, y)
    scores: dict[str, CandidateScore] = {}
    if "xgboost" in candidates:
        scores["xgboost"] = boosted_cv(X, target, folds, xgboost_params)
    if "logistic" in candidates:
        scores["logistic"] = logistic_cv(X, target, folds, logistic_params)
    if "average" in candidates:
        scores["average"] = averaged_cv([scores[m] for m in AVERAGED], target, folds)
    scores = {name: scores[name] for name in candidates}
    for score in scores.values():
        losses = out_of_fold_log_loss(expit(score.margins), target, n_splits=len(folds), random_state=random_state)
        score.log_loss = losses[chosen_method(calibration, losses)]
    return ModelChoice(pick_best(scores), scores, folds, calibration)


def refit(name: str, X, y, *, n_trees: int | None = None, xgboost_params: Mapping[str, Any] | None = None,
          logistic_params: Mapping[str, Any] | None = None):
    """Candidate `name` fitted on all of X, y: XGBoost with `n_trees` trees and no early stopping."""
    def boosted() -> BoostedClassifier:
        if n_trees is None:
            raise ConfigError(f"refit of {name} needs n_trees (the tree count found by cross-validation)")
        return BoostedClassifier(**dict(xgboost_params or {}) | {"n_estimators": n_trees,
                                                                  "early_stopping_rounds": None})

    if name == "xgboost":
        return boosted().fit(X, y)
    if name == "logistic":
        return LogisticClassifier(**dict(logistic_params or {})).fit(X, y)
    if name == "average":
        members = [("xgboost", boosted()), ("logistic", LogisticClassifier(**dict(logistic_params or {})))]
        return AveragedClassifier(members).fit(X, y)
    raise ConfigError(f"candidate must be one of {list(CANDIDATES)}, got {shown(name)}")


def fit_chosen(choice: ModelChoice, X, y, *, xgboost_params: Mapping[str, Any] | None = None,
               logistic_params: Mapping[str, Any] | None = None, calibration_rows=None,
               random_state: int = 0) -> CalibratedClassifier:
    """The chosen candidate refitted on all of X, y and calibrated on the out-of-fold scores of
    `calibration_rows` (positions; default every row)."""
    X, target = _frame_and_target(X, y)
    best = choice.best
    model = refit(best.name, X, target, n_trees=best.n_trees, xgboost_params=xgboost_params,
                  logistic_params=logistic_params)
    rows = np.arange(len(target)) if calibration_rows is None else np.asarray(calibration_rows)
    calibrated = CalibratedClassifier(estimator=model, method=choice.calibration, random_state=random_state)
    return calibrated.fit_scores(expit(best.margins[rows]), target[rows])
