"""X-learner (Kuenzel et al. 2019): the T-learner's outcome models impute each customer's individual effect
(treated: y - mu_control(x); control: mu_arm(x) - y), an effect model per side learns the imputed effects,
and the two are blended by the propensity g(x) = P(arm | x, arm or control):
tau(x) = g(x) tau_control(x) + (1 - g(x)) tau_treated(x). It borrows strength from the larger group, which
helps when an arm is small (e.g. a control hold-out of 10%)."""

from __future__ import annotations

import numpy as np

from custval.models.uplift._base import Campaign, UpliftEstimator, outcome_kind, outcome_prediction


class XLearner(UpliftEstimator):
    """X-learner over scikit-learn learners.

    `outcome_learner`: classifier (binary outcome) or regressor (continuous) of the first stage, cloned per
    arm; `effect_learner`: regressor of the imputed effects, cloned twice per arm; None = XGBoost
    (BoostedClassifier / BoostedRegressor with 300 trees of depth 3). `propensity_learner`: a classifier of
    arm vs control; None = the arm's share of the arm's and the control's rows (exact for a randomised
    campaign). Fitted: `control_effect_models_`, `treated_effect_models_` (one per arm), `propensity_` (the
    constant shares, one per arm) and `propensity_models_` (None without a propensity_learner)."""

    def __init__(self, outcome_learner=None, effect_learner=None, propensity_learner=None, control=None,
                 arms=None, outcome="auto", random_state=0):
        self.outcome_learner = outcome_learner
        self.effect_learner = effect_learner
        self.propensity_learner = propensity_learner
        self.control = control
        self.arms = arms
        self.outcome = outcome
        self.random_state = random_state

    def _learner_kinds(self, outcome):
        return {"outcome_learner": outcome_kind(outcome), "effect_learner": "regressor",
                "propensity_learner": "classifier"}

    def _fit(self, campaign: Campaign) -> dict:
        kind = outcome_kind(campaign.outcome)
        control = campaign.group == 0
        X_control, y_control = campaign.rows(control), campaign.y[control]
        mu_control = self.base_learner("outcome_learner", kind).fit(X_control, y_control)
        control_effects, treated_effects, shares, propensity_models = [], [], [], []
        for code in range(1, len(campaign.arms) + 1):
            treated = campaign.group == code
            X_treated, y_treated = campaign.rows(treated), campaign.y[treated]
            mu_treated = self.base_learner("outcome_learner", kind).fit(X_treated, y_treated)
            imputed_treated = y_treated - outcome_prediction(mu_control, X_treated, campaign.outcome)
            imputed_control = outcome_prediction(mu_treated, X_control, campaign.outcome) - y_control
            treated_effects.append(self.base_learner("effect_learner", "regressor").fit(X_treated, imputed_treated))
            control_effects.append(self.base_learner("effect_learner", "regressor").fit(X_control, imputed_control))
            shares.append(treated.sum() / (treated.sum() + control.sum()))
            if self.propensity_learner is not None:
                both = treated | control
                propensity_models.append(self.base_learner("propensity_learner", "classifier").fit(
                    campaign.rows(both), treated[both].astype(np.int64)))
        return {"control_effect_models_": control_effects, "treated_effect_models_": treated_effects,
                "propensity_": np.asarray(shares, dtype=np.float64),
                "propensity_models_": propensity_models if self.propensity_learner is not None else None}

    def _predict_arms(self, X, arms: list[int]) -> np.ndarray:
        columns = []
        for k in arms:
            tau_control, tau_treated = self.control_effect_models_[k], self.treated_effect_models_[k]
            g = (self.propensity_[k] if self.propensity_models_ is None
                 else np.asarray(self.propensity_models_[k].predict_proba(X), dtype=np.float64)[:, 1])
            columns.append(g * np.asarray(tau_control.predict(X), dtype=np.float64)
                           + (1.0 - g) * np.asarray(tau_treated.predict(X), dtype=np.float64))
        return np.column_stack(columns)
