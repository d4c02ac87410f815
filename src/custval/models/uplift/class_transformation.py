"""Class transformation (Jaskowski & Jaroszewicz 2012): one classifier of z = 1 when (treated and bought) or
(control and did not buy); with treated and control weighted to equal totals, P(z = 1 | x) =
(1 + uplift(x)) / 2, so uplift = 2 P(z = 1 | x) - 1. A binary outcome and one treatment arm only."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import has_fit_parameter

from custval.errors import ConfigError
from custval.models.uplift._base import Campaign, UpliftEstimator


class ClassTransformation(UpliftEstimator):
    """Class-transformation uplift over any scikit-learn classifier.

    `learner`: the classifier of z, cloned inside; None = XGBoost (BoostedClassifier with 300 trees of depth
    3). When the arm and the control differ in size, rows are weighted n / (2 n_group) (passed as
    `sample_weight`, which the learner's fit must then accept) so the transformation stays unbiased; with
    equal sizes no weights are passed. Other parameters: see UpliftEstimator (no `outcome`: always binary).
    Fitted: `model_`, `weights_` (weight of control rows, weight of treated rows)."""

    binary_only = True
    single_arm = True

    def __init__(self, learner=None, control=None, arms=None, random_state=0):
        self.learner = learner
        self.control = control
        self.arms = arms
        self.random_state = random_state

    def _learner_kinds(self, outcome):
        return {"learner": "classifier"}

    def _fit(self, campaign: Campaign) -> dict:
        treated = campaign.group == 1
        z = (campaign.y.astype(bool) == treated).astype(np.int64)
        n, n_treated = len(z), int(treated.sum())
        model = self.base_learner("learner", "classifier")
        weights = (n / (2.0 * (n - n_treated)), n / (2.0 * n_treated))
        if n_treated * 2 == n:
            model.fit(campaign.X, z)
        else:
            if not has_fit_parameter(model, "sample_weight"):
                raise ConfigError(f"learner: {type(model).__name__}.fit takes no sample_weight, which "
                                  "ClassTransformation needs when the arm and the control differ in size "
                                  f"({n_treated} vs {n - n_treated} rows)")
            model.fit(campaign.X, z, sample_weight=np.where(treated, weights[1], weights[0]))
        return {"model_": model, "weights_": np.asarray(weights, dtype=np.float64)}

    def _predict_arms(self, X, arms: list[int]) -> np.ndarray:  # one arm: arms == [0]
        return (2.0 * np.asarray(self.model_.predict_proba(X), dtype=np.float64)[:, 1] - 1.0)[:, None]
