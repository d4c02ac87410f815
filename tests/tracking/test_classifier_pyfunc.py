"""Classifier pyfunc against a real SQLite MLflow store: logged from code, loaded by runs:/ and models:/ URIs,
served over HTTP. The oracle is the in-memory classifier: the served probabilities must be its own."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from custval.errors import ConfigError, SchemaError
from custval.models.classifiers import (
    AveragedClassifier,
    BoostedClassifier,
    CalibratedClassifier,
    LogisticClassifier,
    TreeClassifier,
)
from custval.tracking.classifier_pyfunc import log_classifier_model

INVALID = "INVALID_PARAMETER_VALUE"
FEATURES = ["age", "income", "region", "plan"]


def _make(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Features with numeric NaN and categorical <NA>, a churn label and a second (propensity) label."""
    rng = np.random.default_rng(seed)
    age = rng.normal(45, 12, n)
    age[rng.random(n) < 0.1] = np.nan
    income = rng.lognormal(10, 0.5, n)
    income[rng.random(n) < 0.15] = np.nan
    region = rng.choice(["north", "south", "east", "west"], n).astype(object)
    region[rng.random(n) < 0.1] = None
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])
    store = rng.integers(1, 4, n)
    paperless = rng.random(n) < 0.4
    X = pd.DataFrame({"age": age, "income": income, "region": pd.array(region, dtype="string"),
                      "plan": pd.array(plan, dtype="string")}, index=pd.RangeIndex(1000, 1000 + n))
    z = -0.5 + 0.04 * (np.nan_to_num(age, nan=60) - 45) + np.where(plan == "basic", 1.0, -0.5) \
        + np.where(region == "north", 0.8, 0.0)
    churn = pd.Series((rng.random(n) < 1 / (1 + np.exp(-z))).astype(int), index=X.index)
    z2 = -1.0 + np.where(store == 2, 1.5, 0.0) + np.where(plan == "pro", 1.0, 0.0) + np.where(paperless, 0.7, 0.0)
    other = pd.Series((rng.random(n) < 1 / (1 + np.exp(-z2))).astype(int), index=X.index)
    return X.assign(store=store, paperless=paperless), churn, other


@pytest.fixture(scope="module")
def data():
    X, y, y2 = _make(1500, 0)
    Xv, yv, y2v = _make(600, 1)
    Xt, _, _ = _make(300, 2)
    return {"X": X, "y": y, "y2": y2, "Xv": Xv, "yv": yv, "y2v": y2v, "Xt": Xt}


@pytest.fixture(scope="module")
def fitted(data):
    X, Xv = data["X"][FEATURES], data["Xv"][FEATURES]
    # the strict check of unseen categories (the default scores them as missing, with a warning)
    tree = TreeClassifier(max_depth=4, min_samples_leaf=30, random_state=0, handle_unknown="error").fit(X, data["y"])
    xgb = BoostedClassifier(n_estimators=300, learning_rate=0.1, max_depth=3, early_stopping_rounds=20,
                            random_state=0, n_jobs=1, handle_unknown="error").fit(X, data["y"], eval_set=(Xv, data["yv"]))
    calibrated = CalibratedClassifier(estimator=xgb, method="auto").fit(Xv, data["yv"])
    # propensity: a second output on other columns; `store` (int codes) is a category for the tree
    cols2 = ["plan", "store", "paperless", "age"]
    tree2 = TreeClassifier(max_depth=3, min_samples_leaf=30, random_state=0, categorical=["store"],
                           handle_unknown="error").fit(
        data["X"][cols2], data["y2"])
    return {"tree": tree, "calibrated": calibrated, "tree2": tree2}


def _log(store, models, example, **kwargs):
    with mlflow.start_run(experiment_id=store["experiment"]) as run:
        info = log_classifier_model(models, example, **kwargs)
    return run.info.run_id, info


@pytest.fixture(scope="module")
def churn(store, fitted, data):
    """Calibrated XGBoost churn model with reasons, registered as version 1 of custval-churn-test."""
    example = data["X"].assign(customer_id=np.arange(len(data["X"])))  # extra column: ignored
    run_id, info = _log(store, {"churn_probability": fitted["calibrated"]}, example,
                        explain="churn_probability")
    version = mlflow.register_model(info.model_uri, "custval-churn-test").version
    return {"run_id": run_id, "info": info, "registered": f"models:/custval-churn-test/{version}",
            "model": fitted["calibrated"]}


@pytest.fixture(scope="module")
def tree_model(store, fitted, data):
    run_id, info = _log(store, {"churn_probability": fitted["tree"]}, data["X"][FEATURES])
    return {"run_id": run_id, "info": info, "model": fitted["tree"]}


@pytest.fixture(scope="module")
def propensity(store, fitted, data):
    models = {"p_grocery": fitted["calibrated"], "p_home": fitted["tree2"]}
    run_id, info = _log(store, models, data["X"], explain="p_grocery")
    return {"run_id": run_id, "info": info, "models": models}


def _expected(model, X) -> np.ndarray:
    return np.asarray(model.predict_proba(X), dtype=np.float64)[:, 1]


def _error(loaded, frame, params=None) -> MlflowException:
    with pytest.raises(MlflowException) as caught:
        loaded.predict(frame, params=params)
    assert caught.value.error_code == INVALID
    return caught.value


# -- probabilities ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["churn", "tree_model"])
def test_loaded_probabilities_equal_the_in_memory_model(which, request, data):
    logged = request.getfixturevalue(which)
    Xt = data["Xt"][FEATURES]
    assert Xt["age"].isna().any() and Xt["region"].isna().any()  # NaN and <NA> both exercised
    expected = _expected(logged["model"], Xt)
    uris = [f"runs:/{logged['run_id']}/model", logged["info"].model_uri]
    if "registered" in logged:
        uris.append(logged["registered"])
    for uri in uris:
        out = mlflow.pyfunc.load_model(uri).predict(Xt)
        assert list(out.columns) == ["churn_probability"]
        assert out["churn_probability"].dtype == np.float64
        assert out.index.equals(Xt.index)
        np.testing.assert_array_equal(out["churn_probability"].to_numpy(), expected)
    # probabilities, not labels
    assert np.unique(expected).size > 2 and 0 < expected.min() and expected.max() < 1


def test_json_like_input_object_columns_with_none_give_the_same_probabilities(churn, data):
    """What the scoring server parses: object columns holding None for missing values."""
    Xt = data["Xt"][FEATURES]
    as_json = Xt.astype(object).where(Xt.notna(), None)
    assert as_json["region"].dtype == object and as_json["region"].isna().any()
    out = mlflow.pyfunc.load_model(churn["info"].model_uri).predict(as_json)
    np.testing.assert_array_equal(out["churn_probability"].to_numpy(), _expected(churn["model"], Xt))


def test_extra_and_reordered_columns_are_ignored(churn, data):
    Xt = data["Xt"]  # has `store` too
    shuffled = Xt[["plan", "store", "paperless", "income", "region", "age"]].assign(customer_id=np.arange(len(Xt)))
    out = mlflow.pyfunc.load_model(churn["info"].model_uri).predict(shuffled)
    assert list(out.columns) == ["churn_probability"]
    np.testing.assert_array_equal(out["churn_probability"].to_numpy(), _expected(churn["model"], Xt[FEATURES]))


def test_multi_output_propensity_each_column_is_its_own_classifier(propensity, data):
    Xt = data["Xt"]
    loaded = mlflow.pyfunc.load_model(f"runs:/{propensity['run_id']}/model")
    out = loaded.predict(Xt)
    assert list(out.columns) == ["p_grocery", "p_home"]
    for name, model in propensity["models"].items():
        columns = list(model.feature_names_in_)
        np.testing.assert_array_equal(out[name].to_numpy(), _expected(model, Xt[columns]))
    assert not np.allclose(out["p_grocery"], out["p_home"])
    # `store` is an integer category label for the tree: int64 in, a "long" column in the signature
    inputs = {spec.name: _kind(spec) for spec in loaded.metadata.get_input_schema().inputs}
    assert inputs == {"age": "any", "income": "any", "region": "string", "plan": "string",
                      "store": "long", "paperless": "boolean"}
    # JSON-like object columns (None = missing) for the bool and string features give the same answer
    as_objects = Xt.astype({"paperless": object, "plan": object})
    np.testing.assert_array_equal(loaded.predict(as_objects)["p_home"].to_numpy(), out["p_home"].to_numpy())
    unseen = Xt.assign(store=np.where(np.arange(len(Xt)) == 3, 9, Xt["store"]))
    assert "store" in _error(loaded, unseen).message


# -- reasons ---------------------------------------------------------------------------------------------------

def test_reasons_param_adds_the_explaining_models_top_k(churn, propensity, data):
    Xt = data["Xt"][FEATURES]
    loaded = mlflow.pyfunc.load_model(churn["registered"])
    out = loaded.predict(Xt, params={"reasons": 2})
    assert list(out.columns) == ["churn_probability", "reason_1", "reason_2"]
    reasons = churn["model"].explain(Xt, top=2)
    for j in (1, 2):
        assert out[f"reason_{j}"].tolist() == reasons[f"reason_{j}"].astype(object).tolist()
    assert out["reason_1"].str.contains("=").any()
    np.testing.assert_array_equal(out["churn_probability"].to_numpy(), _expected(churn["model"], Xt))
    # default: no reasons
    assert list(loaded.predict(Xt, params={"reasons": 0}).columns) == ["churn_probability"]
    # propensity: reasons come from the `explain` output's classifier
    prop = mlflow.pyfunc.load_model(propensity["info"].model_uri).predict(data["Xt"], params={"reasons": 1})
    assert list(prop.columns) == ["p_grocery", "p_home", "reason_1"]
    assert prop["reason_1"].tolist() == reasons["reason_1"].astype(object).tolist()


def test_reasons_refused_without_explain_or_when_negative(churn, tree_model, data):
    Xt = data["Xt"][FEATURES]
    no_explain = _error(mlflow.pyfunc.load_model(tree_model["info"].model_uri), Xt, {"reasons": 3})
    assert "without explain" in no_explain.message
    loaded = mlflow.pyfunc.load_model(churn["info"].model_uri)
    assert "reasons" in _error(loaded, Xt, {"reasons": -1}).message
    assert "reasons" in _error(loaded, Xt, {"reasons": "two"}).message


# -- bad input -------------------------------------------------------------------------------------------------

def test_missing_feature_column_is_invalid_parameter_value(churn, data):
    Xt = data["Xt"][FEATURES]
    loaded = mlflow.pyfunc.load_model(churn["info"].model_uri)
    assert "plan" in _error(loaded, Xt.drop(columns="plan")).message  # MLflow's schema check
    # the model itself (no schema in front of it) answers with the custval message
    with pytest.raises(MlflowException) as caught:
        loaded.unwrap_python_model().predict(None, Xt.drop(columns="plan"))
    assert caught.value.error_code == INVALID
    assert "input.plan: feature column is missing" in caught.value.message


def test_unseen_category_is_invalid_parameter_value_with_the_custval_message(churn, tree_model, data):
    Xt = data["Xt"][FEATURES].copy()
    Xt.loc[Xt.index[5], "region"] = "mars"
    for logged in (churn, tree_model):
        message = _error(mlflow.pyfunc.load_model(logged["info"].model_uri), Xt).message
        assert "features.region: category not seen in training" in message and "'mars'" in message


def test_non_numeric_text_in_a_numeric_column_is_invalid_parameter_value(churn, data):
    Xt = data["Xt"][FEATURES].astype({"age": object})
    Xt.loc[Xt.index[2], "age"] = "abc"
    loaded = mlflow.pyfunc.load_model(churn["info"].model_uri)
    assert "age" in _error(loaded, Xt).message
    with pytest.raises(MlflowException) as caught:
        loaded.unwrap_python_model().predict(None, Xt)
    assert caught.value.error_code == INVALID
    assert "input.age: must be numeric (e.g. 'abc')" in caught.value.message


def test_log_refuses_bad_arguments(store, fitted, data):
    X = data["X"][FEATURES]
    with pytest.raises(ConfigError, match="explain='nope'"):
        log_classifier_model({"churn_probability": fitted["tree"]}, X, explain="nope")
    with pytest.raises(ConfigError, match="no explain"):
        log_classifier_model({"churn_probability": fitted["tree"]}, X, explain="churn_probability")
    with pytest.raises(ConfigError, match="non-empty dict"):
        log_classifier_model({}, X)
    with pytest.raises(SchemaError, match="input_example.plan"):
        log_classifier_model({"churn_probability": fitted["tree"]}, X.drop(columns="plan"))


def _kind(spec) -> str:
    """The MLflow type name of a signature column ("any" for AnyType, which has no name)."""
    return getattr(spec.type, "name", None) or spec.type.to_dict()["type"]


# -- what is stored --------------------------------------------------------------------------------------------

def test_signature_and_input_example(churn):
    info = churn["info"]
    signature = info.signature
    # numeric features are `any` in the signature (the model casts them: pd.read_csv gives int64 for whole
    # numbers, which MLflow's own enforcement would refuse for a double column)
    assert [(c.name, _kind(c)) for c in signature.inputs.inputs] == [
        ("age", "any"), ("income", "any"), ("region", "string"), ("plan", "string")]
    assert [(c.name, c.type.name) for c in signature.outputs.inputs] == [("churn_probability", "double")]
    [param] = signature.params.params
    assert (param.name, param.dtype.name, param.default, param.shape) == ("reasons", "long", 0, None)
    path = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    example = mlflow.models.Model.load(path).load_input_example(path)
    assert list(example.columns) == FEATURES
    assert example["age"].isna().any() or example["income"].isna().any()
    assert example["region"].isna().any()


def test_artifacts_hold_no_pickle_and_the_python_model_is_code(churn, propensity):
    for logged in (churn, propensity):
        path = Path(mlflow.artifacts.download_artifacts(logged["info"].model_uri))
        files = [p for p in path.rglob("*") if p.is_file()]
        names = {p.name for p in files}
        assert not [p for p in files if p.suffix in (".pkl", ".pickle")], names
        # no file is a raw pickle stream either (protocol 2+ starts with 0x80)
        assert not [p for p in files if p.read_bytes()[:1] == b"\x80"]
        assert "classifier_model_code.py" in names and "python_model.pkl" not in names
        flavor = mlflow.models.Model.load(path).flavors["python_function"]
        assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
        assert flavor["model_code_path"].endswith("classifier_model_code.py")
        assert {"meta.json", "booster.json", "outputs.json"} <= names
    spec = json.loads(next(path.rglob("outputs.json")).read_text())
    assert spec["outputs"] == ["p_grocery", "p_home"] and spec["explain"] == "p_grocery"
    assert spec["artifacts"] == ["classifier_0", "classifier_1"]


# -- served over HTTP ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_served_model_answers_probabilities_and_400_for_bad_input(churn, store, data, serve):
    Xt = data["Xt"][FEATURES].head(40)
    server = serve(churn["registered"], store["uri"], store["root"])
    status, answer = server.post({"dataframe_split": server.split(Xt), "params": {"reasons": 1}})
    assert status == 200, answer
    served = pd.DataFrame(answer["predictions"])
    np.testing.assert_array_equal(served["churn_probability"].to_numpy(), _expected(churn["model"], Xt))
    assert served["reason_1"].tolist() == churn["model"].explain(Xt, top=1)["reason_1"].tolist()
    status, answer = server.post({"dataframe_split": server.split(Xt.drop(columns="income"))})
    assert status == 400 and "income" in answer["message"]
    unseen = Xt.copy()
    unseen.loc[unseen.index[0], "plan"] = "platinum"
    status, answer = server.post({"dataframe_split": server.split(unseen)})
    assert status == 400 and "category not seen in training" in answer["message"]


def test_the_registered_model_scores_what_read_csv_gives(churn, data, tmp_path):
    """A CSV's whole-number column is read as int64: the model casts it (MLflow's own enforcement would refuse
    int64 for a double column); the scores equal those of the float frame."""
    frame = data["Xt"][FEATURES].copy()
    frame["age"] = frame["age"].round().fillna(40).astype("int64")  # whole years, no missing value
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    read = pd.read_csv(path)
    assert read["age"].dtype == "int64"
    loaded = mlflow.pyfunc.load_model(churn["registered"])
    scored = loaded.predict(read)
    expected = loaded.predict(read.astype({"age": "float64"}))
    np.testing.assert_array_equal(scored["churn_probability"].to_numpy(), expected["churn_probability"].to_numpy())
    with pytest.raises(mlflow.exceptions.MlflowException, match=r"input\.age: must be numeric"):
        loaded.predict(read.astype({"age": "object"}).assign(age="forty"))


def test_an_averaged_model_with_a_categorical_code_column_is_logged_and_served_with_reasons(store, data):
    """The chosen model may be the average of XGBoost and the logistic regression: the logged model finds the
    members' categorical columns (`store` codes are labels: a long column) and serves their reasons."""
    columns = ["plan", "store", "paperless", "age"]
    X, Xv = data["X"][columns], data["Xv"][columns]
    members = [("xgboost", BoostedClassifier(n_estimators=80, n_jobs=1, categorical=["store"])),
               ("logistic", LogisticClassifier(categorical=["store"]))]
    model = CalibratedClassifier(AveragedClassifier(members).fit(X, data["y2"])).fit(Xv, data["y2v"])
    _, info = _log(store, {"p_home": model}, X, explain="p_home")
    assert [(c.name, _kind(c)) for c in info.signature.inputs.inputs] == [
        ("plan", "string"), ("store", "long"), ("paperless", "boolean"), ("age", "any")]
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    Xt = data["Xt"][columns]
    served = loaded.predict(Xt, params={"reasons": 2})
    np.testing.assert_allclose(served["p_home"].to_numpy(), _expected(model, Xt), rtol=1e-12)
    reasons = model.explain(Xt, top=2)
    assert (served["reason_1"].fillna("").to_numpy() == reasons["reason_1"].to_numpy()).all()
    assert served["reason_1"].str.startswith(("plan=", "store=", "paperless=", "age=")).any()
