"""Uplift pyfunc against a real SQLite MLflow store: logged from code, loaded by runs:/ and models:/ URIs (by MLflow
and, as data, by custval's load_uplift_model), served over HTTP. The oracle is the in-memory learner: every
loaded or served answer must be its own `predict_frame`."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from mlflow.exceptions import MlflowException

from custval.errors import ConfigError, DataError, SchemaError
from custval.models.classifiers import BoostedClassifier, BoostedRegressor
from custval.models.uplift import SLearner, TLearner, XLearner
from custval.tracking.classifier_pyfunc import log_classifier_model
from custval.tracking.models import load_uplift_model
from custval.tracking.uplift_pyfunc import log_uplift_model

INVALID = "INVALID_PARAMETER_VALUE"
FEATURES = ["age", "visits", "region"]
ARMS = {"one": ["offer"], "two": ["discount", "email"]}  # arms_ order: sorted names


def _make(n: int, seed: int, arms: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Features (numeric NaN, an int64 count, a text column with <NA>), a randomised arm and a conversion
    whose uplift depends on the region and the visits (negative for some customers)."""
    rng = np.random.default_rng(seed)
    age = rng.normal(45, 12, n)
    age[rng.random(n) < 0.1] = np.nan
    visits = rng.integers(0, 20, n)
    region = rng.choice(["north", "south", "east"], n).astype(object)
    region[rng.random(n) < 0.1] = None
    X = pd.DataFrame({"age": age, "visits": visits, "region": pd.array(region, dtype="string")},
                     index=pd.RangeIndex(500, 500 + n))
    treatment = rng.choice(["control", *arms], n)
    p = 0.25 + 0.01 * (visits - 10)
    for k, arm in enumerate(arms):
        effect = np.where(region == "north", 0.2, -0.1) + 0.05 * k
        p = p + (treatment == arm) * effect
    y = (rng.random(n) < np.clip(p, 0.02, 0.98)).astype(int)
    return X, y, treatment


def _learner(which: str):
    if which == "one":
        return TLearner(learner=BoostedClassifier(n_estimators=30, n_jobs=1), control="control")
    return XLearner(outcome_learner=BoostedClassifier(n_estimators=30, n_jobs=1),
                    effect_learner=BoostedRegressor(n_estimators=30, n_jobs=1), control="control")


def _log(store, model, example):
    with mlflow.start_run(experiment_id=store["experiment"]) as run:
        info = log_uplift_model(model, example)
    return run.info.run_id, info


@pytest.fixture(scope="module")
def logged(store):
    """{"one": one-arm T-learner, "two": two-arm X-learner}, each fitted and logged, with a test frame."""
    out = {}
    for seed, (which, arms) in enumerate(ARMS.items()):
        X, y, treatment = _make(1200, seed, arms)
        Xt, _, _ = _make(200, seed + 10, arms)
        model = _learner(which).fit(X, y, treatment)
        run_id, info = _log(store, model, X.assign(customer_id=np.arange(len(X))))  # extra column: ignored
        out[which] = {"model": model, "run_id": run_id, "info": info, "X": X, "Xt": Xt}
    return out


@pytest.fixture(scope="module")
def registered(logged):
    """The two-arm model registered as version 1 of custval-uplift-test, alias champion."""
    version = mlflow.register_model(logged["two"]["info"].model_uri, "custval-uplift-test").version
    mlflow.MlflowClient().set_registered_model_alias("custval-uplift-test", "champion", version)
    return {"uri": "models:/custval-uplift-test@champion", "version": str(version), **logged["two"]}


def _close(out: pd.DataFrame, expected: pd.DataFrame) -> None:
    """out has `uplift_<arm>` for each column `<arm>` of predict_frame, in its order, equal to 1e-12."""
    assert list(out.columns) == [f"uplift_{arm}" for arm in expected.columns]
    assert (out.dtypes == np.float64).all()
    assert out.index.equals(expected.index)
    np.testing.assert_allclose(out.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)


def _error(loaded, frame) -> MlflowException:
    with pytest.raises(MlflowException) as caught:
        loaded.predict(frame)
    assert caught.value.error_code == INVALID
    return caught.value


# -- predictions -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["one", "two"])
def test_pyfunc_predictions_equal_predict_frame(which, logged):
    case = logged[which]
    Xt = case["Xt"]
    assert Xt["age"].isna().any() and Xt["region"].isna().any()  # NaN and <NA> both exercised
    expected = case["model"].predict_frame(Xt)
    assert list(expected.columns) == ARMS[which]
    assert expected.abs().to_numpy().max() > 0.01  # an uplift, not zeros
    for uri in (f"runs:/{case['run_id']}/model", case["info"].model_uri):
        _close(mlflow.pyfunc.load_model(uri).predict(Xt), expected)
    # what the scoring server parses: object columns holding None; extra and reordered columns ignored
    as_json = Xt.astype(object).where(Xt.notna(), None)[["region", "visits", "age"]].assign(customer_id=1)
    _close(mlflow.pyfunc.load_model(case["info"].model_uri).predict(as_json), expected)


@pytest.mark.parametrize("which", ["one", "two"])
def test_load_uplift_model_reads_the_learner_as_data_with_identical_predictions(which, logged):
    case = logged[which]
    Xt, expected = case["Xt"], case["model"].predict_frame(case["Xt"])
    for uri in (f"runs:/{case['run_id']}/model", case["info"].model_uri):
        loaded, ref = load_uplift_model(uri)
        assert ref.run_id == case["run_id"] and ref.name is None
        assert type(loaded.model) is type(case["model"])
        assert loaded.model.arms_ == ARMS[which] and loaded.arms == ARMS[which]
        assert loaded.control == "control" and loaded.outcome == "binary"
        pd.testing.assert_frame_equal(loaded.model.predict_frame(Xt), expected, rtol=0, atol=1e-12)
        _close(loaded.score(Xt), expected)
        assert [(f["name"], f["type"]) for f in loaded.features] == [
            ("age", "double"), ("visits", "double"), ("region", "string")]
        assert list(loaded.restore(Xt.assign(customer_id=1)).columns) == FEATURES
        with pytest.raises(SchemaError, match=r"input\.region: feature column is missing"):
            loaded.restore(Xt.drop(columns="region"))


def test_registered_model_is_loaded_by_its_alias(registered):
    Xt, expected = registered["Xt"], registered["model"].predict_frame(registered["Xt"])
    loaded, ref = load_uplift_model(registered["uri"], setting="uplift.model")
    assert (ref.name, ref.version, ref.run_id) == ("custval-uplift-test", registered["version"],
                                                   registered["run_id"])
    _close(loaded.score(Xt), expected)
    _close(mlflow.pyfunc.load_model(registered["uri"]).predict(Xt), expected)


def test_read_csv_int64_columns_score(registered, tmp_path):
    """A CSV's whole-number columns are read as int64 (visits always, age once rounded): the model casts them
    (MLflow's own enforcement would refuse int64 for a double column); the scores are the float frame's."""
    frame = registered["Xt"].copy()
    frame["age"] = frame["age"].round().fillna(40).astype("int64")
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    read = pd.read_csv(path)
    assert read["age"].dtype == "int64" and read["visits"].dtype == "int64"
    expected = registered["model"].predict_frame(frame.astype({"age": "float64", "visits": "float64"}))
    out = mlflow.pyfunc.load_model(registered["uri"]).predict(read)
    np.testing.assert_allclose(out.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)


# -- bad input -------------------------------------------------------------------------------------------------

def test_missing_column_and_non_numeric_text_are_errors_naming_the_column(logged):
    case = logged["two"]
    Xt = case["Xt"]
    loaded = mlflow.pyfunc.load_model(case["info"].model_uri)
    assert "visits" in _error(loaded, Xt.drop(columns="visits")).message  # MLflow's schema check
    with pytest.raises(MlflowException) as caught:  # the model itself, no schema in front of it
        loaded.unwrap_python_model().predict(None, Xt.drop(columns="visits"))
    assert caught.value.error_code == INVALID
    assert "input.visits: feature column is missing" in caught.value.message
    text = Xt.astype({"age": object})
    text.loc[text.index[3], "age"] = "abc"
    assert "input.age: must be numeric (e.g. 'abc')" in _error(loaded, text).message
    as_data, _ = load_uplift_model(case["info"].model_uri)
    with pytest.raises(DataError, match=r"input\.age: must be numeric"):
        as_data.score(text)


# -- loading as data -------------------------------------------------------------------------------------------

def test_a_tampered_model_code_file_is_not_executed_by_load_uplift_model(store):
    X, y, treatment = _make(600, 7, ["offer"])
    model = SLearner(learner=BoostedClassifier(n_estimators=30, n_jobs=1), control="control").fit(X, y, treatment)
    _, info = _log(store, model, X)
    location = Path(mlflow.MlflowClient().get_logged_model(info.model_id).artifact_location.removeprefix("file://"))
    code = location / "uplift_model_code.py"
    assert code.is_file()
    code.write_text("raise RuntimeError('tampered model code was executed')\n")
    with pytest.raises(Exception, match="tampered model code was executed"):  # MLflow runs the file...
        mlflow.pyfunc.load_model(info.model_uri)
    loaded, _ = load_uplift_model(info.model_uri)  # ...custval reads the data beside it
    _close(loaded.score(X), model.predict_frame(X))


def test_load_uplift_model_refuses_what_is_not_a_custval_uplift_model(store, logged, tmp_path):
    with pytest.raises(ConfigError, match=r"^uplift\.model: cannot load 'models:/no-such-model@champion'"):
        load_uplift_model("models:/no-such-model@champion", setting="uplift.model")
    with pytest.raises(ConfigError, match=r"^uplift\.model: 'runs:/0123456789abcdef/model' is not a custval"):
        load_uplift_model("runs:/0123456789abcdef/model", setting="uplift.model")
    with pytest.raises(ConfigError, match="^uplift.model must be a model URI"):
        load_uplift_model(" ", setting="uplift.model")
    case = logged["one"]
    classifier = BoostedClassifier(n_estimators=10, n_jobs=1).fit(case["X"], (case["X"]["visits"] > 9).astype(int))
    with mlflow.start_run(experiment_id=store["experiment"]):
        info = log_classifier_model({"p": classifier}, case["X"])
    with pytest.raises(ConfigError, match=r"^model_uri: .* is not a custval uplift model \(no uplift\.json"):
        load_uplift_model(info.model_uri)
    # a spec of another format is refused, not guessed at
    location = Path(mlflow.MlflowClient().get_logged_model(case["info"].model_id).artifact_location
                    .removeprefix("file://"))
    spec_path = location / "artifacts" / "uplift.json"
    original = spec_path.read_text()
    try:
        spec_path.write_text(json.dumps({**json.loads(original), "version": 99}))
        with pytest.raises(ConfigError, match=r"is not a custval uplift model \(uplift\.json is not a "
                                              r"custval-uplift-pyfunc v1 spec"):
            load_uplift_model(case["info"].model_uri)
    finally:
        spec_path.write_text(original)


def test_log_refuses_bad_arguments(store, logged):
    case = logged["one"]
    X = case["X"]
    with pytest.raises(ConfigError, match="not fitted"):
        log_uplift_model(TLearner(control="control"), X)
    with pytest.raises(ConfigError, match="model must be one of SLearner, TLearner"):
        log_uplift_model(BoostedClassifier(), X)
    y = (X["visits"] > 9).astype(int).to_numpy()
    on_array = TLearner(learner=xgb.XGBClassifier(n_estimators=5, n_jobs=1)).fit(
        X[["age", "visits"]].to_numpy(), y, np.arange(len(y)) % 2)
    with pytest.raises(ConfigError, match="fitted on an array"):
        log_uplift_model(on_array, X)
    with pytest.raises(SchemaError, match=r"input_example\.region"):
        log_uplift_model(case["model"], X.drop(columns="region"))
    with pytest.raises(ConfigError, match="input_example must be a non-empty DataFrame"):
        log_uplift_model(case["model"], X.head(0))


# -- what is stored --------------------------------------------------------------------------------------------

def _kind(spec) -> str:
    """The MLflow type name of a signature column ("any" for AnyType, which has no name)."""
    return getattr(spec.type, "name", None) or spec.type.to_dict()["type"]


def test_signature_input_example_and_artifacts(logged):
    info = logged["two"]["info"]
    assert [(c.name, _kind(c)) for c in info.signature.inputs.inputs] == [
        ("age", "any"), ("visits", "any"), ("region", "string")]
    assert [(c.name, c.type.name) for c in info.signature.outputs.inputs] == [
        ("uplift_discount", "double"), ("uplift_email", "double")]
    path = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    example = mlflow.models.Model.load(path).load_input_example(path)
    assert list(example.columns) == FEATURES and example["region"].isna().any()
    files = [p for p in path.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert not [p for p in files if p.suffix in (".pkl", ".pickle") or p.read_bytes()[:1] == b"\x80"]
    assert {"uplift_model_code.py", "uplift.json", "meta.json", "booster.json"} <= names
    assert "python_model.pkl" not in names
    flavor = mlflow.models.Model.load(path).flavors["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert flavor["model_code_path"].endswith("uplift_model_code.py")
    spec = json.loads(next(path.rglob("uplift.json")).read_text())
    assert (spec["kind"], spec["arms"], spec["control"]) == ("XLearner", ["discount", "email"], "control")
    requirements = (path / "requirements.txt").read_text()
    assert "mlflow==" in requirements and "xgboost" in requirements


# -- served over HTTP ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_served_model_answers_predict_frame_and_400_naming_a_missing_column(registered, store, serve):
    Xt = registered["Xt"].head(30)
    server = serve(registered["uri"], store["uri"], store["root"])
    status, answer = server.post({"dataframe_split": server.split(Xt)})
    assert status == 200, answer
    served = pd.DataFrame(answer["predictions"])
    expected = registered["model"].predict_frame(Xt)
    assert list(served.columns) == ["uplift_discount", "uplift_email"]
    np.testing.assert_allclose(served.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)
    status, answer = server.post({"dataframe_split": server.split(Xt.drop(columns="visits"))})
    assert status == 400 and "visits" in answer["message"]
