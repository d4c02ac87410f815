"""Tuning an uplift learner's XGBoost base settings on validation Qini: the first trial is the untuned learner
(the validation Qini choose_learner gives it), the best is at least as good, a trial's value is the Qini of the
learner built by hand from its settings (scored by scikit-uplift), every trial reaches the callbacks, and a bad
budget is a ConfigError."""

from __future__ import annotations

import numpy as np
import pytest
from optuna.trial import TrialState
from sklift.metrics import qini_auc_score

from custval.errors import ConfigError
from custval.models.classifiers import BoostedClassifier
from custval.models.tuning import FIXED_PARAMS_ATTR, searched_params
from custval.models.uplift.selection import choose_learner
from custval.models.uplift.tuning import tune_learner

pytestmark = [pytest.mark.filterwarnings("ignore:Function stable_cumsum is deprecated:FutureWarning"),
              pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.set_index is deprecated")]

BASE = {"n_estimators": 40, "learning_rate": 0.1, "max_depth": 3, "n_jobs": 1}


def _split(campaign, arms=("email",)):
    train, valid = campaign(2000, 21, arms), campaign(1500, 22, arms)
    return (train.X, train.y, train.treatment, valid.X, valid.y, valid.treatment)


@pytest.fixture(scope="module")
def one_arm_t(campaign):
    data = _split(campaign)
    calls = []
    tuning = tune_learner("t", *data, arms=["email"], control="control", base_params=BASE, n_trials=4, seed=3,
                          callbacks=[lambda study, trial: calls.append(trial.number)])
    return data, tuning, calls


def test_the_first_trial_is_the_untuned_learner_and_the_best_is_no_worse(one_arm_t):
    data, tuning, calls = one_arm_t
    choice = choose_learner(["t"], *data, arms=["email"], control="control", xgboost=BASE, random_state=3)
    first = tuning.study.trials[0]
    assert first.params == {} and first.state == TrialState.COMPLETE
    assert first.value == pytest.approx(choice.table.loc["t", "valid_qini"], abs=1e-12)
    assert tuning.base_value == first.value
    assert tuning.best_value >= tuning.base_value
    assert tuning.best_value == max(t.value for t in tuning.study.trials)
    assert calls == [0, 1, 2, 3] and tuning.n_complete == 4
    # the others search the churn tuning's XGBoost space over the fixed base settings
    assert all(set(t.params) == set(searched_params()) for t in tuning.study.trials[1:])
    best = tuning.study.best_trial
    assert tuning.best_params == BASE | best.params


def test_a_trials_value_is_the_qini_of_the_t_learner_built_by_hand(one_arm_t):
    """T-learner by definition: one classifier on the control rows, one on the email rows, uplift = the
    difference of their probabilities; Qini coefficient by scikit-uplift."""
    (X_tr, y_tr, t_tr, X_va, y_va, t_va), tuning, _ = one_arm_t
    trial = tuning.study.trials[2]
    params = BASE | trial.params
    assert trial.user_attrs[FIXED_PARAMS_ATTR] == {k: v for k, v in BASE.items() if k not in trial.params}

    def fitted(arm):
        rows = t_tr == arm
        return BoostedClassifier(**params, scale_pos_weight=None, random_state=3).fit(X_tr[rows], y_tr[rows])

    uplift = fitted("email").predict_proba(X_va)[:, 1] - fitted("control").predict_proba(X_va)[:, 1]
    expected = qini_auc_score(y_va, uplift, (t_va == "email").astype(int))
    assert trial.value == pytest.approx(expected, rel=1e-9)


def test_several_arms_and_an_amount_score_the_mean_qini_over_arms(campaign):
    data = _split(campaign, ("email", "discount"))
    X_tr, _, t_tr, X_va, _, t_va = data
    # spend, clipped at 0 (the Qini coefficient of an amount needs amounts >= 0)
    spend_tr, spend_va = (np.clip(campaign(n, seed, ("email", "discount")).spend, 0.0, None)
                          for n, seed in ((2000, 21), (1500, 22)))
    arms = ["email", "discount"]
    tuning = tune_learner("x", X_tr, spend_tr, t_tr, X_va, spend_va, t_va, arms=arms, control="control",
                          continuous=True, base_params=BASE, n_trials=2)
    choice = choose_learner(["x"], X_tr, spend_tr, t_tr, X_va, spend_va, t_va, arms=arms, control="control",
                            xgboost=BASE, continuous=True)
    row = choice.table.loc["x"]
    assert tuning.base_value == pytest.approx(np.mean([row["valid_qini_email"], row["valid_qini_discount"]]),
                                              abs=1e-12)
    assert tuning.best_value >= tuning.base_value and len(tuning.study.trials) == 2


@pytest.mark.parametrize("n_trials", [0, -1, 2.5, True, None])
def test_a_bad_budget_is_a_config_error(n_trials, campaign):
    data = _split(campaign)
    with pytest.raises(ConfigError, match="n_trials must be an integer >= 1"):
        tune_learner("t", *data, arms=["email"], control="control", base_params=BASE, n_trials=n_trials)


@pytest.mark.parametrize(("options", "message"), [
    ({"timeout": 0}, "timeout"), ({"seed": -1}, "seed"), ({"base_params": [1]}, "base_params"),
    ({"callbacks": [3]}, "callbacks"),
])
def test_bad_options_are_config_errors(options, message, campaign):
    data = _split(campaign)
    with pytest.raises(ConfigError, match=message):
        tune_learner("t", *data, arms=["email"], control="control", **{"base_params": BASE, "n_trials": 1,
                                                                        **options})


def test_an_unknown_learner_is_refused_before_any_trial(campaign):
    with pytest.raises(ConfigError, match="unknown learner 'nope'"):
        tune_learner("nope", *_split(campaign), arms=["email"], control="control", n_trials=1)


def test_with_folds_a_trial_is_its_mean_qini_over_the_choices_folds(campaign):
    """n_folds: the untuned first trial scores what choose_learner's table gives the learner on the same folds,
    and a trial's value is the mean of its Qini on each fold, refitted here by hand."""
    from custval.models.uplift.selection import make_learner, pooled_folds

    data = _split(campaign)
    tuning = tune_learner("s", *data, arms=["email"], control="control", base_params=BASE, n_trials=2, seed=4,
                          n_folds=3)
    choice = choose_learner(["s"], *data, arms=["email"], control="control", xgboost=BASE, random_state=4,
                            n_folds=3)
    assert tuning.base_value == pytest.approx(choice.table.loc["s", "valid_qini"], abs=1e-12)
    second = tuning.study.trials[1]
    params = BASE | second.params
    by_hand = []
    for X_fit, y_fit, t_fit, X_score, y_score, t_score in pooled_folds(*data, n_folds=3, seed=4):
        model = make_learner("s", xgboost=params, control="control", arms=["email"], random_state=4)
        u = model.fit(X_fit, y_fit, t_fit).predict(X_score)
        by_hand.append(qini_auc_score(y_score, u, (t_score == "email").astype(int)))
    assert second.value == pytest.approx(np.mean(by_hand), abs=1e-9)
