"""TreeClassifier: signal recovery, readable rules with correct leaf statistics and missing-value routing,
importances, class weighting, eval_set parity."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from custval.models.classifiers import TreeClassifier


def test_recovers_most_of_the_signal(tree, boosted, data):
    X, y, p_true = data["test"]
    auc = roc_auc_score(y, tree.predict_proba(X)[:, 1])
    assert auc >= roc_auc_score(y, p_true) - 0.05
    assert auc >= roc_auc_score(y, boosted.predict_proba(X)[:, 1]) - 0.05  # the bar: within 0.05
    np.testing.assert_array_equal(tree.pipeline_.predict_proba(X), tree.predict_proba(X))


def test_rules_text_names_the_splits_and_reports_true_leaf_statistics(tree, data):
    X, y, _ = data["train"]
    text = tree.rules_text(label="churn")
    t = tree.tree_model_.tree_
    names = tree.preprocessor_.feature_names_out_
    split_columns = {names[f].split("=")[0] for f in t.feature[t.children_left >= 0]}
    assert "recency_days" in split_columns
    for column in split_columns:
        assert f"|--- {column} " in text
    assert "calibrated separately" in text
    # leaves: rows and churn rates recomputed independently from the training data
    leaves = tree.tree_model_.apply(tree.preprocessor_.transform(X))
    observed = pd.Series(y).groupby(leaves).agg(["size", "mean"])
    listed = re.findall(r"leaf: ([\d,]+) rows, ([\d.]+)% churn", text)
    assert len(listed) == len(observed) == (t.children_left < 0).sum()
    got = sorted((int(n.replace(",", "")), round(float(r), 1)) for n, r in listed)
    want = sorted((int(n), round(100 * m, 1)) for n, m in observed.itertuples(index=False))
    assert got == want
    assert f"trained on {len(y):,} rows ({y.mean():.1%} churn)" in text


def test_rules_text_says_where_missing_values_go():
    rng = np.random.default_rng(5)
    n = 3000
    x = rng.normal(size=n)
    x[rng.random(n) < 0.2] = np.nan
    y = np.where(np.isnan(x), rng.random(n) < 0.9, x > 0.3).astype(int)  # missing behaves like high x
    X = pd.DataFrame({"x": x})
    model = TreeClassifier(max_depth=1, min_samples_leaf=50).fit(X, y)
    text = model.rules_text()
    assert re.search(r"x > [\d.-]+ or missing", text), text
    missing_row = pd.DataFrame({"x": [np.nan]})
    high_row = pd.DataFrame({"x": [model.tree_model_.tree_.threshold[0] + 1.0]})
    np.testing.assert_array_equal(model.predict_proba(missing_row), model.predict_proba(high_row))


def test_categorical_rules_are_readable(data):
    X, y, _ = data["train"]
    model = TreeClassifier(max_depth=4, min_samples_leaf=50).fit(X[["plan", "is_member"]], y)
    text = model.rules_text()
    assert re.search(r"plan is (not )?(basic|plus|pro)", text) or "plan is missing" in text, text
    assert "=" not in text.split("\n\n", 1)[1]  # no raw one-hot names such as "plan=basic <= 0.50"


def test_feature_importances_by_output_feature(tree):
    importance = tree.feature_importances_
    assert list(importance.index) == list(tree.preprocessor_.feature_names_out_)
    assert "plan=<missing>" in importance.index and "income" in importance.index
    assert importance.sum() == pytest.approx(1.0)
    assert importance.idxmax() == "recency_days"


def test_class_weight_balanced_inflates_scores_and_eval_set_is_ignored(data):
    X, y, _ = data["train"]
    plain = TreeClassifier(class_weight=None).fit(X, y)
    balanced = TreeClassifier().fit(X, y, eval_set=(X.iloc[:10], y[:10]))
    assert plain.predict_proba(X)[:, 1].mean() == pytest.approx(y.mean(), abs=1e-9)  # leaf frequencies
    # balanced weights (n / (2 n_class)): the weighted mean of the leaf scores is exactly one half
    weights = np.where(y == 1, len(y) / (2 * y.sum()), len(y) / (2 * (len(y) - y.sum())))
    assert np.average(balanced.predict_proba(X)[:, 1], weights=weights) == pytest.approx(0.5, abs=1e-9)
    assert balanced.predict_proba(X)[:, 1].mean() > y.mean() + 0.1
    np.testing.assert_array_equal(balanced.predict_proba(X), TreeClassifier().fit(X, y).predict_proba(X))


def test_rules_mention_missing_only_for_columns_with_missing_training_values():
    """x has NaN in training, z none: z's splits must not say "or missing" (true for sklearn, but noise)."""
    rng = np.random.default_rng(11)
    n = 4000
    x, z = rng.normal(size=n), rng.normal(size=n)
    x[rng.random(n) < 0.2] = np.nan
    y = (rng.random(n) < np.where(np.isnan(x), 0.8, 0.1 + 0.35 * (x > 0.0) + 0.35 * (z > 0.5))).astype(int)
    model = TreeClassifier(max_depth=3, min_samples_leaf=50).fit(pd.DataFrame({"x": x, "z": z}), y)
    assert model.preprocessor_.numeric_missing_ == ["x"]
    lines = model.rules_text().splitlines()
    z_lines = [line for line in lines if re.search(r"\bz [<>]", line)]
    x_lines = [line for line in lines if re.search(r"\bx [<>]", line)]
    assert z_lines and x_lines, lines
    assert not any("missing" in line for line in z_lines), z_lines
    # every x split says where missing goes, on exactly one side
    assert sum("or missing" in line for line in x_lines) == len(x_lines) // 2


def test_session_tree_rules_missing_wording(tree):
    """income has NaN in the synthetic data, recency_days and frequency do not."""
    assert sorted(tree.preprocessor_.numeric_missing_) == ["income"]
    lines = tree.rules_text().splitlines()
    assert any(re.search(r"recency_days [<>]", line) for line in lines)
    assert not any(re.search(r"(recency_days|frequency) [<>].*missing", line) for line in lines)
