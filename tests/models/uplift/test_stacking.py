"""model.choice=stack: the stacking weights (a non-negative least-squares fit of the transformed outcome on the
members' out-of-fold uplift) recovered on constructed campaigns, choose_learner's out-of-fold plumbing checked
against the fold models it returns, and refit_choice's bagged, weighted average checked member by member."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.errors import ConfigError
from custval.models.uplift import load_uplift, save_uplift
from custval.models.uplift.selection import (
    campaign_folds,
    choose_learner,
    make_learner,
    refit_choice,
    stacking_weights,
)

XGBOOST = {"n_estimators": 20, "learning_rate": 0.2, "n_jobs": 1}


def constructed(n: int, seed: int, share: float = 0.3):
    """Predictions u1, u2 (independent normal) and an amount whose true uplift is 3 u1 + 1 u2; a control base
    that depends on u1 too (so a learner must not confuse the base with the effect); treated share `share`."""
    rng = np.random.default_rng(seed)
    u1, u2, u3 = rng.normal(size=(3, n))
    t = np.where(rng.random(n) < share, "offer", "control").astype(object)
    y = 10 + 2 * u1 + (t == "offer") * (3 * u1 + 1 * u2) + rng.normal(0, 0.5, n)
    return u1, u2, u3, y, t


def test_stacking_weights_recover_the_mix_of_the_true_uplift():
    """E[Z | u] = 3 u1 + u2 for the transformed outcome Z, so the fit is (3, 1) and the weights (0.75, 0.25); a
    learner that ranks backwards (-u1) or is pure noise (u3) gets 0 (the non-negativity)."""
    u1, u2, u3, y, t = constructed(200_000, 0)
    np.testing.assert_allclose(stacking_weights([u1, u2], y, t, ["offer"], "control"), [0.75, 0.25], atol=0.01)
    weights = stacking_weights([u1, -u1, u2, u3], y, t, ["offer"], "control")
    assert weights[1] == 0 and weights[3] == pytest.approx(0, abs=0.01)
    np.testing.assert_allclose(weights[[0, 2]], [0.75, 0.25], atol=0.01)
    # an interior solution is the ordinary least-squares one (an independent computation of the same fit)
    p = (t == "offer").mean()
    z = y * ((t == "offer") / p - (t == "control") / (1 - p))
    A = np.column_stack([u1, u2])
    ols = np.linalg.lstsq(A - A.mean(0), z - z.mean(), rcond=None)[0]
    np.testing.assert_allclose(stacking_weights([u1, u2], y, t, ["offer"], "control"), ols / ols.sum(),
                               rtol=1e-9)


def test_stacking_weights_pool_the_arms_and_fall_back_to_equal():
    """Two arms, each with its own column: the arms' rows are stacked into one fit. Arm a's uplift is u1, arm
    b's is u2 (each learner's column j predicts arm j): learner 1 = (u1, u2) is right on both, learner 2 =
    (u2, u1) on neither, so it weighs 0. No learner going with Z: equal weights."""
    rng = np.random.default_rng(1)
    n = 60_000
    u1, u2 = rng.normal(size=(2, n))
    t = rng.choice(np.array(["control", "a", "b"], dtype=object), n)
    y = 5 + (t == "a") * 2 * u1 + (t == "b") * 2 * u2 + rng.normal(0, 0.5, n)
    weights = stacking_weights([np.column_stack([u1, u2]), np.column_stack([u2, u1])], y, t, ["a", "b"], "control")
    np.testing.assert_allclose(weights, [1.0, 0.0], atol=0.01)
    backwards = stacking_weights([-u1, -2 * u1], y, t, ["a"], "control")
    np.testing.assert_array_equal(backwards, [0.5, 0.5])


def test_stack_weights_are_those_of_the_fold_models_out_of_fold_uplift(campaign):
    """choose_learner(rule=stack): `average` chosen; its weights are stacking_weights of the out-of-fold uplift,
    recomputed here from the fold models it returns on the pooled folds (train's rows, then valid's)."""
    train, valid = campaign(900, 60), campaign(600, 61)
    choice = choose_learner(["s", "t", "x", "average"], train.X, train.y, train.treatment, valid.X, valid.y,
                            valid.treatment, arms=["email"], control="control", xgboost=XGBOOST, n_folds=3,
                            average=["s", "t"], rule="stack")
    assert choice.chosen == "average" and choice.rule == "stack" and choice.members == ["s", "t"]
    assert list(choice.weights) == ["s", "t"] and sum(choice.weights.values()) == pytest.approx(1, abs=1e-12)
    assert {name: len(models) for name, models in choice.fold_models.items()} == {"s": 3, "t": 3}
    pooled = pd.concat([train.X, valid.X])  # train's rows, then valid's
    y, t = np.concatenate([train.y, valid.y]), np.concatenate([train.treatment, valid.treatment])
    oof = {name: np.zeros(len(y)) for name in ("s", "t")}
    for k, (_, score) in enumerate(campaign_folds(t, y, n_folds=3, seed=0)):
        for name in oof:
            oof[name][score] = choice.fold_models[name][k].predict(pooled.iloc[score])
    expected = stacking_weights([oof["s"], oof["t"]], y, t, ["email"], "control")
    np.testing.assert_allclose(list(choice.weights.values()), expected, rtol=1e-9)
    # the table is the fold scores as with the other rules
    best = choose_learner(["s", "t", "x", "average"], train.X, train.y, train.treatment, valid.X, valid.y,
                          valid.treatment, arms=["email"], control="control", xgboost=XGBOOST, n_folds=3,
                          average=["s", "t"], rule="best")
    np.testing.assert_allclose(choice.table["valid_qini"], best.table["valid_qini"], rtol=1e-12)
    assert list(choice.table.index[choice.table["chosen"]]) == ["average"]


def test_stack_needs_folds(campaign):
    data = campaign(300, 62)
    with pytest.raises(ConfigError, match="model.choice=stack .* needs model.n_folds >= 2, got 0"):
        choose_learner(["s", "average"], data.X, data.y, data.treatment, data.X, data.y, data.treatment,
                       arms=["email"], control="control", xgboost=XGBOOST, rule="stack")


def test_refit_choice_bags_each_member_with_its_fold_models_at_its_weight(campaign, tmp_path):
    """The stacked model predicts sum over members of weight x the mean of (its refit on all rows, its fold
    models); bag=False: the refits only; a saved and loaded stack predicts the same."""
    train, valid, test = campaign(900, 63), campaign(600, 64), campaign(400, 65)
    choice = choose_learner(["s", "t", "average"], train.X, train.y, train.treatment, valid.X, valid.y,
                            valid.treatment, arms=["email"], control="control", xgboost=XGBOOST, n_folds=3,
                            rule="stack")
    X, y = pd.concat([train.X, valid.X]), np.concatenate([train.y, valid.y])
    t = np.concatenate([train.treatment, valid.treatment])
    common = dict(arms=["email"], control="control", xgboost=XGBOOST)
    model = refit_choice(choice, X, y, t, **common)
    refits = {name: make_learner(name, **common).fit(X, y, t).predict(test.X) for name in ("s", "t")}
    expected = sum(w * (refits[name] + sum(m.predict(test.X) for m in choice.fold_models[name])) / 4
                   for name, w in choice.weights.items())
    np.testing.assert_allclose(model.predict(test.X), expected, rtol=1e-9)
    assert len(model.models_) == 4 * sum(w > 0 for w in choice.weights.values())
    plain = refit_choice(choice, X, y, t, bag=False, **common)
    np.testing.assert_allclose(plain.predict(test.X), sum(w * refits[n] for n, w in choice.weights.items()),
                               rtol=1e-9)
    save_uplift(model, tmp_path / "stack")
    np.testing.assert_allclose(load_uplift(tmp_path / "stack").predict(test.X), model.predict(test.X), rtol=1e-12)
    # another rule: the chosen learner refitted, as make_learner would
    best = choose_learner(["s", "t"], train.X, train.y, train.treatment, valid.X, valid.y, valid.treatment,
                          n_folds=3, **common)
    np.testing.assert_allclose(refit_choice(best, X, y, t, **common).predict(test.X), refits[best.chosen],
                               rtol=1e-12)
