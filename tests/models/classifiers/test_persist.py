"""save_classifier / load_classifier: exact round trips without pickle, trusted-type check, bad directories."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import xgboost as xgb

from custval.errors import ConfigError, DataError, ModelError, NotFittedError
from custval.models.classifiers import (
    AveragedClassifier,
    BoostedClassifier,
    CalibratedClassifier,
    LogisticClassifier,
    TreeClassifier,
    load_classifier,
    save_classifier,
)


def _files(directory):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def _assert_same(a, b, X):
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert type(a) is type(b)
    assert {k: v for k, v in a.get_params(deep=False).items() if k not in ("estimator", "estimators", "callbacks")} == \
        {k: v for k, v in b.get_params(deep=False).items() if k not in ("estimator", "estimators", "callbacks")}
    pd.testing.assert_series_equal(a.feature_importances_, b.feature_importances_)


def test_tree_round_trip(tree, data, tmp_path):
    X = data["test"][0]
    save_classifier(tree, tmp_path / "tree")
    assert _files(tmp_path / "tree") == ["meta.json", "tree.skops"]
    loaded = load_classifier(tmp_path / "tree")
    _assert_same(tree, loaded, X)
    assert loaded.rules_text() == tree.rules_text()
    np.testing.assert_array_equal(loaded.pipeline_.predict_proba(X), tree.predict_proba(X))


def test_boosted_round_trip_predicts_and_explains_identically(boosted, data, tmp_path):
    X = data["test"][0].iloc[:1500]
    save_classifier(boosted, tmp_path / "xgb")
    assert _files(tmp_path / "xgb") == ["booster.json", "meta.json"]
    json.loads((tmp_path / "xgb" / "booster.json").read_text())  # XGBoost's own JSON
    loaded = load_classifier(tmp_path / "xgb")
    _assert_same(boosted, loaded, X)
    assert loaded.best_iteration_ == boosted.best_iteration_ < loaded.booster_.num_boosted_rounds() - 1
    assert loaded.scale_pos_weight_ == boosted.scale_pos_weight_
    pd.testing.assert_frame_equal(loaded.explain(X.iloc[:300]), boosted.explain(X.iloc[:300]))
    np.testing.assert_array_equal(loaded.pipeline_.predict_proba(X), boosted.pipeline_.predict_proba(X))
    bad = X.iloc[:2].assign(plan=pd.array(["platinum", "basic"], dtype="string"))
    with pytest.raises(DataError, match="plan: category not seen"):
        loaded.predict_proba(bad)


@pytest.mark.parametrize("inner", ["tree", "boosted"])
def test_calibrated_round_trip(inner, tree, boosted, data, tmp_path):
    X_valid, y_valid, _ = data["valid"]
    X = data["test"][0].iloc[:1500]
    for method in ("isotonic", "sigmoid"):
        cal = CalibratedClassifier({"tree": tree, "boosted": boosted}[inner], method=method).fit(X_valid, y_valid)
        save_classifier(cal, tmp_path / method)
        loaded = load_classifier(tmp_path / method)
        _assert_same(cal, loaded, X)
        assert (loaded.method_, loaded.validation_scores_, loaded.calibrator_) == \
            (cal.method_, cal.validation_scores_, cal.calibrator_)
        assert isinstance(loaded.estimator, type(cal.estimator))
        if inner == "boosted":
            pd.testing.assert_frame_equal(loaded.explain(X.iloc[:200]), cal.explain(X.iloc[:200]))


def test_no_pickle_and_json_metadata(tree, tmp_path):
    save_classifier(tree, tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["kind"] == "tree"
    assert meta["preprocessor"]["categories"]["plan"] == ["basic", "plus", "pro"]
    assert meta["preprocessor"]["dtypes"]["is_member"] == "bool"
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in tmp_path.rglob("*"))
    assert sio.get_untrusted_types(file=tmp_path / "tree.skops") == ["sklearn.tree._tree.Tree"]


class Sneaky:
    """Not on the trusted list: loading must refuse it."""


def test_untrusted_skops_content_is_refused(tree, tmp_path):
    save_classifier(tree, tmp_path)
    sio.dump({"tree": Sneaky()}, tmp_path / "tree.skops")
    with pytest.raises(ModelError, match="trusted"):
        load_classifier(tmp_path)


def test_class_weight_dict_and_numpy_params_survive(data, tmp_path):
    X, y, _ = data["train"]
    model = TreeClassifier(max_depth=np.int64(3), class_weight={0: 1.0, 1: 3.0}).fit(X.iloc[:2000], y[:2000])
    save_classifier(model, tmp_path)
    loaded = load_classifier(tmp_path)
    assert loaded.class_weight == {0: 1.0, 1: 3.0} and loaded.max_depth == 3
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_bad_save_and_load(tmp_path):
    with pytest.raises(NotFittedError):
        save_classifier(BoostedClassifier(), tmp_path / "a")
    with pytest.raises(ConfigError):
        save_classifier(object(), tmp_path / "b")
    with pytest.raises(ModelError, match="meta.json"):
        load_classifier(tmp_path / "nothing")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "meta.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ModelError, match="custval-classifier"):
        load_classifier(tmp_path / "c")


def _as_version_1(directory, text_keys: dict[str, list[str]] | None = None) -> None:
    """Rewrite a saved model's meta.json the way version 1 wrote it: no kinds / numeric_missing / key_version
    in the preprocessor state, categories of numeric columns in their text form."""
    path = directory / "meta.json"
    meta = json.loads(path.read_text())
    assert meta["version"] == 2
    state = meta["preprocessor"]
    for key in ("kinds", "numeric_missing", "key_version"):
        del state[key]
    state["categories"] |= text_keys or {}
    path.write_text(json.dumps(meta | {"version": 1}))


def test_version_1_boosted_model_loads_and_scores_int_rows_like_float_rows(tmp_path):
    """A version-1 directory rebuilt as version 1 wrote it: the float column keyed by its text form ("0.0")
    both in meta.json and in the booster (XGBoost stores the category names it was trained on)."""
    rng = np.random.default_rng(3)
    n = 800
    X = pd.DataFrame({"senior": rng.integers(0, 3, n).astype(float), "x": rng.normal(size=n),
                      "plan": pd.array(rng.choice(["a", "b"], n), dtype="string")})
    X.loc[[1, 9], "senior"] = np.nan  # why the 0/1/2 column is float
    y = (X["senior"].fillna(0) + rng.normal(size=n) > 1.2).astype(int).to_numpy()
    model = BoostedClassifier(n_estimators=40, categorical=["senior"]).fit(X, y)
    save_classifier(model, tmp_path)
    legacy_keys = sorted(X["senior"].dropna().astype("string").unique().tolist())
    assert legacy_keys == ["0.0", "1.0", "2.0"]
    _as_version_1(tmp_path, {"senior": legacy_keys})
    # the booster version 1 trained: on the text-keyed categories
    legacy = X.assign(senior=pd.Categorical(X["senior"].astype("string"), categories=legacy_keys),
                      plan=pd.Categorical(X["plan"], categories=["a", "b"]))
    booster = xgb.XGBClassifier(n_estimators=40, tree_method="hist", enable_categorical=True,
                                scale_pos_weight=model.scale_pos_weight_, random_state=0, n_jobs=1)
    booster.fit(legacy, y)
    booster.save_model(tmp_path / "booster.json")
    loaded = load_classifier(tmp_path)
    assert loaded.preprocessor_.key_version_ == 1 and loaded.preprocessor_.categories_["senior"] == legacy_keys
    rows = X.dropna()
    expected = booster.predict_proba(legacy.loc[rows.index])
    np.testing.assert_allclose(loaded.predict_proba(rows), expected, rtol=1e-6)
    np.testing.assert_array_equal(loaded.predict_proba(rows.astype({"senior": "int64"})), loaded.predict_proba(rows))


def test_version_1_tree_loads_with_the_old_missing_wording(tree, data, tmp_path):
    save_classifier(tree, tmp_path)
    assert json.loads((tmp_path / "meta.json").read_text())["preprocessor"]["numeric_missing"] == ["income"]
    _as_version_1(tmp_path)
    loaded = load_classifier(tmp_path)
    X = data["test"][0]
    np.testing.assert_array_equal(loaded.predict_proba(X), tree.predict_proba(X))
    # which columns had missing values is unknown: every numeric split says where missing values go
    assert loaded.preprocessor_.numeric_missing_ is None
    assert re.search(r"recency_days [<>]= ?[\d.]+ or missing", loaded.rules_text())
    assert not re.search(r"recency_days [<>]= ?[\d.]+ or missing", tree.rules_text())


def test_unknown_future_version_is_refused(tree, tmp_path):
    save_classifier(tree, tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    (tmp_path / "meta.json").write_text(json.dumps(meta | {"version": 3}))
    with pytest.raises(ModelError, match="custval-classifier"):
        load_classifier(tmp_path)


def test_logistic_and_averaged_round_trips_are_json_and_exact(boosted, data, tmp_path):
    X, y, _ = data["train"]
    Xv, yv, _ = data["valid"]
    Xt = data["test"][0].iloc[:1500]
    logistic = LogisticClassifier(C=0.5).fit(X, y)
    averaged = AveragedClassifier([("xgboost", BoostedClassifier(n_estimators=60, n_jobs=1)),
                                   ("logistic", LogisticClassifier())], weights=[2, 1]).fit(X, y)
    for name, model in (("logistic", logistic), ("averaged", averaged)):
        calibrated = CalibratedClassifier(model, method="sigmoid").fit(Xv, yv)
        for saved in (model, calibrated):
            directory = tmp_path / f"{name}-{type(saved).__name__}"
            save_classifier(saved, directory)
            assert not any(p.suffix in (".pkl", ".pickle", ".joblib", ".skops") for p in directory.rglob("*"))
            loaded = load_classifier(directory)
            _assert_same(saved, loaded, Xt)
            pd.testing.assert_frame_equal(loaded.explain(Xt.iloc[:200]), saved.explain(Xt.iloc[:200]))
    meta = json.loads((tmp_path / "logistic-LogisticClassifier" / "meta.json").read_text())
    assert meta["kind"] == "logistic" and meta["params"]["C"] == 0.5
    assert meta["fitted"]["coef"] == logistic.coef_.tolist() and meta["fitted"]["indicators"] == ["income"]
    assert _files(tmp_path / "averaged-AveragedClassifier") == [
        "member_0/booster.json", "member_0/meta.json", "member_1/meta.json", "meta.json"]
    loaded = load_classifier(tmp_path / "averaged-AveragedClassifier")
    assert list(loaded.named_estimators_) == ["xgboost", "logistic"] and loaded.weights_.tolist() == [2 / 3, 1 / 3]
    with pytest.raises(ConfigError, match="only of TreeClassifier, BoostedClassifier, LogisticClassifier"):
        fake = AveragedClassifier([("x", boosted)])
        fake._set_fitted([("x", CalibratedClassifier(boosted).fit(Xv, yv))], np.ones(1))
        save_classifier(fake, tmp_path / "bad")
