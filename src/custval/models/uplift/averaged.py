"""Averaged uplift: the weighted mean of several uplift learners' predictions per arm. Learners that err in
different ways (the S-learner shrinks small effects, the T-learner's difference of two models is noisy, the
X- and DR-learners regress imputed effects) rank customers better on average than any one of them, and the
average does not depend on a choice made on one noisy validation split."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.utils import get_tags

from custval.errors import ConfigError, shown
from custval.models.uplift._base import Campaign, UpliftEstimator
from custval.models.uplift.drlearner import DRLearner
from custval.models.uplift.slearner import SLearner
from custval.models.uplift.tlearner import TLearner
from custval.models.uplift.xlearner import XLearner

__all__ = ["AveragedUplift", "average_of"]


def default_members() -> list:
    """The members when none are given: the S-, T-, X- and DR-learners with their default XGBoost models."""
    return [SLearner(), TLearner(), XLearner(), DRLearner()]


class AveragedUplift(UpliftEstimator):
    """Weighted mean of uplift learners.

    `learners`: uplift estimators (SLearner, TLearner, ...), each cloned and fitted on the same rows with this
    model's `control` and `arms` (and `outcome`, for members that have one); None = S-, T-, X- and DR-learner
    with their defaults. `weights`: one non-negative number per learner (normalised to sum 1); None = equal.
    `random_state` is not passed to the members (each keeps its own). Fitted: `models_` (the fitted members),
    `weights_` (the normalised weights); predict = sum over members of weight x the member's uplift per arm."""

    def __init__(self, learners=None, weights=None, control=None, arms=None, outcome="auto", random_state=0):
        self.learners = learners
        self.weights = weights
        self.control = control
        self.arms = arms
        self.outcome = outcome
        self.random_state = random_state

    def _learner_kinds(self, outcome):
        return {}  # the members check their own base learners

    def members(self) -> list:
        """The (unfitted) member learners: `learners`, or the defaults."""
        return default_members() if self.learners is None else list(self.learners)

    def check_params(self) -> AveragedUplift:
        super().check_params()
        if self.learners is not None:
            if not isinstance(self.learners, list | tuple) or not self.learners:
                raise ConfigError(f"learners must be a non-empty list of uplift learners or None, got "
                                  f"{shown(self.learners)}")
            for learner in self.learners:
                if not isinstance(learner, UpliftEstimator):
                    raise ConfigError(f"learners must hold uplift learners (SLearner, TLearner, XLearner, DRLearner, "
                                      f"ClassTransformation, AveragedUplift), got {type(learner).__name__}")
        for learner in self.members():
            learner.check_params()
        self._normalised_weights()
        return self

    def _normalised_weights(self) -> np.ndarray:
        n = len(self.members())
        if self.weights is None:
            return np.full(n, 1.0 / n)
        given = self.weights
        if (not isinstance(given, list | tuple | np.ndarray) or len(given) != n
                or not all(isinstance(w, int | float | np.number) and not isinstance(w, bool) for w in given)):
            raise ConfigError(f"weights must be one number per learner ({n}) or None, got {shown(given)}")
        weights = np.asarray(given, dtype=np.float64)
        if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise ConfigError(f"weights must be non-negative, finite and not all 0, got {shown(list(given))}")
        return weights / weights.sum()

    def _fit(self, campaign: Campaign) -> dict:
        labels = np.asarray([campaign.control, *campaign.arms], dtype=object)[campaign.group]
        models = []
        for learner in self.members():
            member = clone(learner).set_params(control=campaign.control, arms=list(campaign.arms))
            if "outcome" in member.get_params(deep=False):
                member.set_params(outcome=campaign.outcome)
            models.append(member.fit(campaign.X, campaign.y, labels))
        return {"models_": models, "weights_": self._normalised_weights()}

    def _predict_arms(self, X, arms: list[int]) -> np.ndarray:
        names = [self.arms_[k] for k in arms]
        return sum(w * m.predict_arms(X, names) for w, m in zip(self.weights_, self.models_, strict=True))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        members = self.members()
        tags.input_tags.allow_nan = all(get_tags(m).input_tags.allow_nan for m in members)
        tags.input_tags.categorical = all(get_tags(m).input_tags.categorical for m in members)
        tags.input_tags.string = all(get_tags(m).input_tags.string for m in members)
        return tags


def average_of(models, weights=None) -> AveragedUplift:
    """A fitted AveragedUplift of already fitted uplift learners (fitted on the same rows, with the same arms,
    control and outcome): what `AveragedUplift(learners, weights).fit` on those rows would give, without
    refitting them. ConfigError when the members disagree on the campaign."""
    models = list(models)
    if not models:
        raise ConfigError("average_of needs at least one fitted uplift learner")
    first = models[0]
    for model in models:
        if not hasattr(model, "arms_"):
            raise ConfigError(f"average_of: the {type(model).__name__} is not fitted: call fit first")
        if (list(model.arms_), model.control_, model.outcome_) != (list(first.arms_), first.control_, first.outcome_):
            raise ConfigError(f"average_of: the learners must share arms, control and outcome; got "
                              f"{list(first.arms_)} / {first.control_!r} / {first.outcome_} and "
                              f"{list(model.arms_)} / {model.control_!r} / {model.outcome_}")
    average = AveragedUplift(learners=[clone(m) for m in models], weights=weights, control=first.control_,
                             arms=list(first.arms_), outcome=first.outcome_)
    average.check_params()
    fitted = {"models_": models, "weights_": average._normalised_weights(), "arms_": list(first.arms_),
              "control_": first.control_, "outcome_": first.outcome_, "n_features_in_": first.n_features_in_}
    if getattr(first, "feature_names_in_", None) is not None:
        fitted["feature_names_in_"] = first.feature_names_in_
    for name, value in fitted.items():
        setattr(average, name, value)
    return average
