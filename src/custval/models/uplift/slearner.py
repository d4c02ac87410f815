"""S-learner ("single model"): one model of the outcome on the features plus a 0/1 indicator column per
treatment arm; the uplift of an arm is the model's prediction with that arm's indicator set minus with none
set. Cheap and stable, but a model that rarely splits on the indicators shrinks the uplift towards zero."""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.errors import SchemaError
from custval.models.uplift._base import Campaign, UpliftEstimator, outcome_kind, outcome_prediction


def arm_columns(arms: list) -> list[str]:
    """Names of the S-learner's indicator columns: "treatment=<arm>"."""
    return [f"treatment={arm}" for arm in arms]


def with_arms(X, arms: list, indicators: np.ndarray):
    """X with one 0/1 float column per arm appended (named by arm_columns for a DataFrame)."""
    if not isinstance(X, pd.DataFrame):
        return np.column_stack([np.asarray(X), indicators])
    names = arm_columns(arms)
    clash = [name for name in names if name in X.columns]
    if clash:
        raise SchemaError("features", clash[0], "is the name of the S-learner's arm indicator: rename the column",
                          clash[0])
    return X.assign(**{name: indicators[:, k] for k, name in enumerate(names)})


class SLearner(UpliftEstimator):
    """S-learner over any scikit-learn classifier (binary outcome) or regressor (continuous outcome).

    `learner`: the base learner, cloned inside; None = XGBoost (BoostedClassifier / BoostedRegressor with 300
    trees of depth 3). Other parameters: see UpliftEstimator. Fitted: `model_` (fitted on X plus the
    indicator columns "treatment=<arm>")."""

    def __init__(self, learner=None, control=None, arms=None, outcome="auto", random_state=0):
        self.learner = learner
        self.control = control
        self.arms = arms
        self.outcome = outcome
        self.random_state = random_state

    def _learner_kinds(self, outcome):
        return {"learner": outcome_kind(outcome)}

    def _fit(self, campaign: Campaign) -> dict:
        arms = campaign.arms
        indicators = (campaign.group[:, None] == np.arange(1, len(arms) + 1)[None, :]).astype(np.float64)
        model = self.base_learner("learner", outcome_kind(campaign.outcome))
        model.fit(with_arms(campaign.X, arms, indicators), campaign.y)
        return {"model_": model}

    def _predict_arms(self, X, arms: list[int]) -> np.ndarray:
        n_arms, n_rows = len(self.arms_), len(X)
        none = outcome_prediction(self.model_, with_arms(X, self.arms_, np.zeros((n_rows, n_arms))), self.outcome_)
        uplift = np.empty((n_rows, len(arms)))
        for j, k in enumerate(arms):
            indicators = np.zeros((n_rows, n_arms))
            indicators[:, k] = 1.0
            uplift[:, j] = outcome_prediction(self.model_, with_arms(X, self.arms_, indicators), self.outcome_) - none
        return uplift
