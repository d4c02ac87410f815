"""The learner choice: the one-standard-error rule on a constructed score table, and choose_learner's `average`
(which listed learners it is the mean of) and `rule`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.errors import ConfigError
from custval.metrics.uplift import qini_auc_score
from custval.models.uplift.selection import average_pool, choose_learner, one_standard_error_choice

XGBOOST = {"n_estimators": 20, "learning_rate": 0.2, "n_jobs": 1}


def scores(qini: dict, se: dict) -> tuple[pd.Series, pd.Series]:
    return pd.Series(qini, dtype=float), pd.Series(se, dtype=float)


def test_one_standard_error_rule_by_hand():
    # best s = 0.30 with standard error 0.02: anything >= 0.28 is within one standard error
    qini, se = scores({"s": 0.30, "t": 0.27, "average": 0.285}, {"s": 0.02, "t": 0.01, "average": 0.001})
    assert one_standard_error_choice(qini, se) == "average"
    # the same means, the best's standard error 0.01: 0.285 < 0.29, so the best
    qini, se = scores({"s": 0.30, "t": 0.27, "average": 0.285}, {"s": 0.01, "t": 0.05, "average": 0.05})
    assert one_standard_error_choice(qini, se) == "s"  # the margin is the best learner's error, not average's
    # exactly one standard error below counts as within (0.5 - 0.125 = 0.375, exact in binary)
    qini, se = scores({"s": 0.5, "average": 0.375}, {"s": 0.125, "average": 0.0})
    assert one_standard_error_choice(qini, se) == "average"
    # average the best itself; and no average listed: the best
    qini, se = scores({"s": 0.2, "average": 0.25}, {"s": 0.1, "average": 0.01})
    assert one_standard_error_choice(qini, se) == "average"
    qini, se = scores({"s": 0.2, "t": 0.25}, {"s": 0.1, "t": 0.1})
    assert one_standard_error_choice(qini, se) == "t"
    # no standard error (one validation split): the best; another preferred learner
    qini, se = scores({"s": 0.30, "average": 0.299}, {"s": np.nan, "average": np.nan})
    assert one_standard_error_choice(qini, se) == "s"
    qini, se = scores({"s": 0.30, "t": 0.29, "average": 0.10}, {"s": 0.02, "t": 0.0, "average": 0.0})
    assert one_standard_error_choice(qini, se, prefer="t") == "t"


def test_average_pool_keeps_the_listed_learners_of_average_in_listed_order():
    assert average_pool(["x", "s", "dr", "average"], ["s", "t", "x"]) == ["x", "s"]
    assert average_pool(["x", "s", "dr", "average"]) == ["x", "s", "dr"]


def test_average_is_the_mean_of_the_listed_learners_of_average(campaign):
    train, valid = campaign(1200, 50), campaign(600, 51)
    choice = choose_learner(["s", "t", "dr", "average"], train.X, train.y, train.treatment, valid.X, valid.y,
                            valid.treatment, arms=["email"], control="control", xgboost=XGBOOST,
                            average=["t", "s", "x"])
    assert choice.members == ["s", "t"]  # x is not listed; listed order
    mean = (choice.models["s"].predict(valid.X) + choice.models["t"].predict(valid.X)) / 2
    expected = qini_auc_score(valid.y, mean, (valid.treatment == "email").astype(int))
    assert choice.table.loc["average", "valid_qini"] == pytest.approx(expected, rel=1e-9)
    assert len(choice.models["average"].models_) == 2
    assert "valid_qini_se" not in choice.table  # one split: no standard error
    assert choice.chosen == choice.table["valid_qini"].idxmax()  # rule best (the default)


def test_one_se_rule_on_folds_uses_the_standard_error_over_folds(campaign):
    train, valid = campaign(900, 52), campaign(600, 53)
    common = dict(arms=["email"], control="control", xgboost=XGBOOST, n_folds=3)
    best = choose_learner(["s", "t", "average"], train.X, train.y, train.treatment, valid.X, valid.y,
                          valid.treatment, **common)
    one_se = choose_learner(["s", "t", "average"], train.X, train.y, train.treatment, valid.X, valid.y,
                            valid.treatment, rule="one_se", **common)
    table = one_se.table
    pd.testing.assert_frame_equal(table.drop(columns="chosen"), best.table.drop(columns="chosen"))
    assert (table["valid_qini_se"] > 0).all()
    top = table["valid_qini"].idxmax()
    within = table.loc["average", "valid_qini"] >= table.loc[top, "valid_qini"] - table.loc[top, "valid_qini_se"]
    assert one_se.chosen == ("average" if within else top) and best.chosen == top
    assert one_se.rule == "one_se" and list(table.index[table["chosen"]]) == [one_se.chosen]


def test_unknown_rule_is_a_config_error(campaign):
    data = campaign(300, 54)
    with pytest.raises(ConfigError, match="model.choice must be one of"):
        choose_learner(["s"], data.X, data.y, data.treatment, data.X, data.y, data.treatment, arms=["email"],
                       control="control", rule="first")
