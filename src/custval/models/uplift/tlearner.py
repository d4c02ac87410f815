"""T-learner ("two models"): one outcome model per arm, the control's included; the uplift of an arm is its
model's prediction minus the control model's. Unbiased per arm, but the difference of two separately fitted
models is noisy where an arm has few rows."""

from __future__ import annotations

import numpy as np

from custval.models.uplift._base import Campaign, UpliftEstimator, outcome_kind, outcome_prediction


class TLearner(UpliftEstimator):
    """T-learner over any scikit-learn classifier (binary outcome) or regressor (continuous outcome).

    `learner`: the base learner, cloned once per arm; None = XGBoost (BoostedClassifier / BoostedRegressor
    with 300 trees of depth 3). Other parameters: see UpliftEstimator. Fitted: `models_` (the control's
    model first, then one per arm in the order of `arms_`)."""

    def __init__(self, learner=None, control=None, arms=None, outcome="auto", random_state=0):
        self.learner = learner
        self.control = control
        self.arms = arms
        self.outcome = outcome
        self.random_state = random_state

    def _learner_kinds(self, outcome):
        return {"learner": outcome_kind(outcome)}

    def _fit(self, campaign: Campaign) -> dict:
        kind = outcome_kind(campaign.outcome)
        models = []
        for code in range(len(campaign.arms) + 1):
            rows = campaign.group == code
            models.append(self.base_learner("learner", kind).fit(campaign.rows(rows), campaign.y[rows]))
        return {"models_": models}

    def _predict_arms(self, X, arms: list[int]) -> np.ndarray:
        control = outcome_prediction(self.models_[0], X, self.outcome_)
        return np.column_stack([outcome_prediction(self.models_[k + 1], X, self.outcome_) - control for k in arms])
