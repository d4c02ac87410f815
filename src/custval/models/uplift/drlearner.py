"""DR-learner (doubly robust; Kennedy 2023): out-of-fold outcome models mu_a(x) per arm and propensities
e(x) give each customer the pseudo-outcome

    phi = mu_arm(x) - mu_control(x) + T (y - mu_arm(x)) / e(x) - (1 - T) (y - mu_control(x)) / (1 - e(x))

(T = 1 in the arm, 0 in the control), whose mean given x is the uplift when either the outcome models or the
propensities are right; an effect model regresses phi on x. Cross-fitting (each row's nuisance predictions
come from models fitted on the other folds) keeps the outcome models' overfit out of phi."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold

from custval.errors import ConfigError, DataError, shown
from custval.models.uplift._base import CAMPAIGN, Campaign, UpliftEstimator, outcome_kind, outcome_prediction
from custval.models.validation import check_int


class DRLearner(UpliftEstimator):
    """Doubly robust learner over scikit-learn learners.

    `outcome_learner`: classifier (binary outcome) or regressor (continuous), cloned per arm and fold;
    `effect_learner`: regressor of the pseudo-outcomes, one per arm; None = XGBoost (BoostedClassifier /
    BoostedRegressor with 300 trees of depth 3). `propensity_learner`: classifier of arm vs control, fitted
    out of fold; None = the arm's share of the arm's and the control's rows (exact for a randomised campaign).
    `n_folds` (>= 2): cross-fitting folds, stratified by arm (and outcome when binary). `propensity_clip`:
    propensities are kept in [clip, 1 - clip]. Fitted: `effect_models_` (one per arm), `propensity_` (the
    arms' shares)."""

    def __init__(self, outcome_learner=None, effect_learner=None, propensity_learner=None, n_folds=3,
                 propensity_clip=0.01, control=None, arms=None, outcome="auto", random_state=0):
        self.outcome_learner = outcome_learner
        self.effect_learner = effect_learner
        self.propensity_learner = propensity_learner
        self.n_folds = n_folds
        self.propensity_clip = propensity_clip
        self.control = control
        self.arms = arms
        self.outcome = outcome
        self.random_state = random_state

    def _learner_kinds(self, outcome):
        return {"outcome_learner": outcome_kind(outcome), "effect_learner": "regressor",
                "propensity_learner": "classifier"}

    def check_params(self) -> DRLearner:
        super().check_params()
        check_int(self.n_folds, "n_folds", minimum=2)
        clip = self.propensity_clip
        if isinstance(clip, bool) or not isinstance(clip, int | float) or not 0 < clip < 0.5:
            raise ConfigError(f"propensity_clip must be a number in (0, 0.5), got {shown(clip)}")
        return self

    def _folds(self, campaign: Campaign) -> list[tuple[np.ndarray, np.ndarray]]:
        strata = campaign.group * 2 + campaign.y.astype(np.int64) if campaign.outcome == "binary" else campaign.group
        arms = [campaign.control, *campaign.arms]
        for stratum in np.unique(strata):
            size = int((strata == stratum).sum())
            if size < self.n_folds:
                what = f"arm {arms[stratum // 2 if campaign.outcome == 'binary' else stratum]!r}"
                if campaign.outcome == "binary":
                    what = ("responders in " if stratum % 2 else "non-responders in ") + what
                raise DataError(CAMPAIGN, "y", f"needs at least n_folds={self.n_folds} {what} for cross-fitting",
                                f"{size} rows")
        splitter = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.random_state)
        return list(splitter.split(np.zeros(len(strata)), strata))

    def _fit(self, campaign: Campaign) -> dict:
        kind, n_arms, group = outcome_kind(campaign.outcome), len(campaign.arms), campaign.group
        mu = np.empty((len(group), n_arms + 1))
        shares = np.array([(group == k).sum() / ((group == k) | (group == 0)).sum() for k in range(1, n_arms + 1)])
        propensity = np.broadcast_to(shares, (len(group), n_arms)).copy()
        for train, test in self._folds(campaign):
            X_test = campaign.rows(np.isin(np.arange(len(group)), test))
            for code in range(n_arms + 1):
                rows = np.zeros(len(group), dtype=bool)
                rows[train[group[train] == code]] = True
                model = self.base_learner("outcome_learner", kind).fit(campaign.rows(rows), campaign.y[rows])
                mu[np.sort(test), code] = outcome_prediction(model, X_test, campaign.outcome)
            if self.propensity_learner is not None:
                for code in range(1, n_arms + 1):
                    rows = np.zeros(len(group), dtype=bool)
                    rows[train[np.isin(group[train], (0, code))]] = True
                    model = self.base_learner("propensity_learner", "classifier").fit(
                        campaign.rows(rows), (group[rows] == code).astype(np.int64))
                    propensity[np.sort(test), code - 1] = np.asarray(model.predict_proba(X_test))[:, 1]
        propensity = np.clip(propensity, self.propensity_clip, 1.0 - self.propensity_clip)
        effect_models = []
        for code in range(1, n_arms + 1):
            rows = (group == 0) | (group == code)
            treated, y, e = (group[rows] == code), campaign.y[rows], propensity[rows, code - 1]
            mu_arm, mu_control = mu[rows, code], mu[rows, 0]
            pseudo = (mu_arm - mu_control + treated * (y - mu_arm) / e
                      - (1 - treated) * (y - mu_control) / (1.0 - e))
            effect_models.append(self.base_learner("effect_learner", "regressor").fit(campaign.rows(rows), pseudo))
        return {"effect_models_": effect_models, "propensity_": shares.astype(np.float64)}

    def _predict_arms(self, X, arms: list[int]) -> np.ndarray:
        return np.column_stack([np.asarray(self.effect_models_[k].predict(X), dtype=np.float64) for k in arms])
