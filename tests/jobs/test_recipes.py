"""Every training job records its features' recipe in the model it registers: loaded as data (load_*_model),
the recipe rebuilds exactly the model's feature columns with build_snapshot on the training log, and the
model scores them as the job's own output did; the winback model carries its fitted second lifetime value.
Models logged before recipes (a spec without one) still load."""

from __future__ import annotations

import json
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest

from custval.data.io import read_table
from custval.data.simulate_campaign import campaign_table, simulate_campaigns
from custval.data.simulate_churn import simulate_churn
from custval.errors import ConfigError, ModelError
from custval.features.campaigns import load_campaign
from custval.features.snapshots import build_snapshot, feature_columns, recipe_options
from custval.features.winback import lapse_features, lapsed_customers, reactivations
from custval.jobs.train_churn import load_config as churn_config
from custval.jobs.train_churn import train_churn
from custval.jobs.train_propensity import load_config as propensity_config
from custval.jobs.train_propensity import train_propensity
from custval.jobs.train_uplift import load_config as uplift_config
from custval.jobs.train_uplift import train_uplift
from custval.models.clv.features import CLVFeatures
from custval.models.second_value import SecondLifetimeValue
from custval.tracking.classifier_pyfunc import ClassifierPyfunc
from custval.tracking.models import load_classifier_model, load_uplift_model
from custval.tracking.uplift_pyfunc import UpliftPyfunc

WINDOWS = [30, 90, 180, 365]
FAST = ["model.candidates=[xgboost]", "model.cv_folds=2", "model.xgboost.n_estimators=40"]  # any model will do
CHURN = ["simulate.n_customers=3000", "simulate.seed=3", "model.tree.min_samples_leaf=50", *FAST]
PROPENSITY = ["simulate.n_customers=3000", "simulate.seed=5", "categories=[home, grocery, beauty]", *FAST]
WINBACK = ["simulate.n_customers=8000", "simulate.seed=3", "model.learners=[t]"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    uri = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    yield root, uri
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def churn_sim():
    return simulate_churn(3000, seed=3, start="2023-01-01", end="2025-01-01")


@pytest.fixture(scope="module")
def churn(store):
    root, uri = store
    result = train_churn(churn_config(overrides=[*CHURN, f"output={root}/churn.parquet"]), tracking_uri=uri)
    return result, load_classifier_model(result.model_uri)[0]


@pytest.fixture(scope="module")
def winback(store):
    root, uri = store
    config = uplift_config(overrides=[*WINBACK, f"output={root}/winback.parquet"])
    result = train_uplift(config, tracking_uri=uri)
    return result, load_uplift_model(result.model_uri)[0], load_campaign(config)


def _names(model) -> list[str]:
    return [f["name"] for f in model.features]


def test_churn_recipe_rebuilds_the_features_and_the_jobs_own_scores(churn, churn_sim, store):
    result, model = churn
    sim = churn_sim
    categories = sorted(sim.transactions["category"].unique())  # the log's categories, as build_snapshot takes them
    assert model.recipe == {"kind": "snapshot", "time_unit": "D", "windows": WINDOWS, "active_days": 365,
                            "categories": categories, "cross_sell_new_only": False, "horizon_days": 90,
                            "label": "churn", "customers": True, "clv_features": False,
                            "id_column": "customer_id", "value": None}
    with pytest.raises(ConfigError, match=r"recipe\.customers"):  # the simulated customers' attributes are features
        recipe_options(model.recipe)
    frame = build_snapshot(sim.transactions, result.as_of, **recipe_options(model.recipe, customers=sim.customers))
    assert feature_columns(frame) == _names(model) == result.features
    # the loaded model on the rebuilt features gives the job's own output, customer by customer
    written = read_table(store[0] / "churn.parquet").set_index("customer_id")
    scored = model.score(frame).set_axis(frame["customer_id"])
    assert sorted(scored.index) == sorted(written.index)
    np.testing.assert_allclose(scored["churn_probability"].to_numpy(),
                               written.loc[scored.index, "churn_probability"].to_numpy(), rtol=1e-12, atol=0)


def test_clv_features_are_recorded_and_must_be_passed_back(store, churn_sim):
    _, uri = store
    result = train_churn(churn_config(overrides=[*CHURN, "snapshots.clv_features=true", "registered_model=null",
                                                 "output=null"]), tracking_uri=uri)
    model, _ = load_classifier_model(result.model_uri)
    assert model.recipe["clv_features"] is True and model.recipe["horizon_days"] == 90
    sim = churn_sim
    with pytest.raises(ConfigError, match=r"recipe\.clv_features: .*CLVFeatures\(90\)"):
        recipe_options(model.recipe, customers=sim.customers)
    frame = build_snapshot(sim.transactions, result.as_of, **recipe_options(
        model.recipe, customers=sim.customers, extra_features=CLVFeatures(90)))
    assert feature_columns(frame) == _names(model)
    assert {"p_alive", "expected_purchases_90d"} <= set(_names(model))


def test_propensity_recipe_records_the_configured_categories_in_their_order(store):
    root, uri = store
    result = train_propensity(propensity_config(overrides=[*PROPENSITY, f"output={root}/propensity.csv"]),
                              tracking_uri=uri)
    model, _ = load_classifier_model(result.model_uri)
    assert model.recipe == {"kind": "snapshot", "time_unit": "D", "windows": WINDOWS, "active_days": 365,
                            "categories": ["home", "grocery", "beauty"], "cross_sell_new_only": True,
                            "horizon_days": 90, "label": "propensity", "customers": True, "clv_features": False,
                            "id_column": "customer_id", "value": None}
    sim = simulate_churn(3000, seed=5, start="2023-01-01", end="2025-01-01")
    frame = build_snapshot(sim.transactions, result.as_of, **recipe_options(model.recipe, customers=sim.customers))
    # each category's model drops its own never-bought columns; the logged inputs are their union, in order
    assert feature_columns(frame) == _names(model) == result.features
    assert [c for c in frame.columns if c.startswith("share_")] == ["share_home", "share_grocery", "share_beauty"]
    written = read_table(root / "propensity.csv").set_index("customer_id")
    scored = model.score(frame).set_axis(frame["customer_id"])
    np.testing.assert_allclose(scored["p_home"].to_numpy(), written.loc[scored.index, "p_home"].to_numpy(),
                               rtol=1e-9)


def test_winback_recipe_records_the_send_day_features_and_the_value_of_a_response(winback):
    result, model, source = winback
    categories = sorted(source.transactions["category"].unique())
    assert model.recipe == {
        "kind": "snapshot", "time_unit": "D", "windows": WINDOWS, "active_days": None, "categories": categories,
        "cross_sell_new_only": False, "horizon_days": 30, "label": "conversion", "customers": True,
        "clv_features": False, "id_column": "customer_id",
        "value": {"response_value": "second_lifetime_value", "margin": None, "margin_rate": 0.3, "lapse_days": 120,
                  "population": "lapsed", "costs": {"offer": 10.0}, "horizon_days": 365}}
    options = recipe_options(model.recipe, customers=source.customers)
    # at a send day: exactly the training features of the customers contacted that day
    sent = source.data.sent_at.dt.normalize()
    day = sent.min()
    frame = build_snapshot(source.transactions, day, **options).set_index("customer_id")
    assert list(frame.columns.drop("cutoff")) == _names(model) == source.data.features
    rows = (sent == day).to_numpy()
    expected = source.data.X[rows].set_axis(source.data.customer_id[rows].to_numpy())
    pd.testing.assert_frame_equal(frame.loc[expected.index, _names(model)], expected, check_names=False)
    # at the scoring date: the job's own uplift of the lapsed customers it ranked
    frame = build_snapshot(source.transactions, source.as_of, **options)
    assert feature_columns(frame) == _names(model)
    targets = result.targets.set_index("customer_id")
    scored = model.score(frame).set_axis(frame["customer_id"]).loc[targets.index]
    np.testing.assert_allclose(scored["uplift_offer"].to_numpy(), targets["uplift_offer"].to_numpy(), rtol=1e-12)


def test_winback_model_carries_its_fitted_second_lifetime_value(winback):
    result, model, source = winback
    assert isinstance(model.value_model, SecondLifetimeValue)
    # an independent fit on the same past returns (the job's rule: winback.lapse_days, winback.horizon_days)
    returns = reactivations(source.transactions, source.as_of, lapse_days=120, horizon_days=365)
    fitted = SecondLifetimeValue().fit(lapse_features(returns), returns["value"].to_numpy())
    assert model.value_model.to_dict() == fitted.to_dict()
    lapsed = lapsed_customers(source.transactions, source.as_of, lapse_days=120).set_index("customer_id")
    lapsed = lapsed.loc[result.targets["customer_id"].to_numpy()].reset_index()
    np.testing.assert_array_equal(model.value_model.predict(lapse_features(lapsed)),
                                  fitted.predict(lapse_features(lapsed)))
    # the targeting valued each response at margin_rate x that model's prediction
    np.testing.assert_allclose(result.targets["value"].to_numpy(),
                               0.3 * model.value_model.predict(lapse_features(lapsed)), rtol=1e-12)


def test_a_campaign_table_model_records_a_table_recipe_and_no_value_model(tmp_path, isolated_store):
    table = campaign_table(simulate_campaigns(4000, seed=4), "crosssell", seed=4).table
    path = tmp_path / "campaign.csv"
    table.to_csv(path, index=False)
    config = uplift_config(overrides=[
        f"data.table={path}", "data.id_column=CustomerRef", "data.treatment=Group", "data.outcome=Converted",
        "data.spend=Revenue", "data.outcomes=[Visited]", "data.sent_at=SendDate", "data.drop=[CampaignCode]",
        "campaign.id=spring", "model.learners=[t]", "output=targets.csv"])
    model, _ = load_uplift_model(train_uplift(config).model_uri)
    assert model.recipe == {
        "kind": "table", "time_unit": "D", "windows": None, "active_days": None, "categories": None,
        "cross_sell_new_only": False, "horizon_days": 30, "label": "conversion", "customers": False,
        "clv_features": False, "id_column": "CustomerRef",
        "value": {"response_value": "margin", "margin": 30.0, "margin_rate": None, "lapse_days": 120,
                  "population": "campaign", "costs": {"discount": 10.0, "email": 10.0}, "horizon_days": 365}}
    assert model.value_model is None
    with pytest.raises(ConfigError, match=r"recipe\.kind: a 'table' model"):
        recipe_options(model.recipe)


def _artifacts(name: str, version: str, tmp_path) -> object:
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}/artifacts")
    return shutil.copytree(local, tmp_path / "artifacts")


def _edit(path, **changes) -> None:
    spec = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            spec.pop(key)
        else:
            spec[key] = value
    path.write_text(json.dumps(spec))


def test_a_classifier_logged_before_recipes_still_loads_and_scores(churn, churn_sim, tmp_path):
    result, model = churn
    directory = _artifacts("custval-churn", result.registered_version, tmp_path)
    _edit(directory / "outputs.json", recipe=None)  # the spec as custval wrote it before recipes
    old = ClassifierPyfunc.from_directory(directory)
    assert old.recipe is None
    rows = build_snapshot(churn_sim.transactions, result.as_of, customers=churn_sim.customers, labels=False).head(50)
    pd.testing.assert_frame_equal(old.score(rows), model.score(rows))
    # a recipe that is not a mapping is refused when loading; a tampered mapping when it is used
    _edit(directory / "outputs.json", recipe=[1, 2])
    with pytest.raises(ModelError, match="recipe must be a mapping, got list"):
        ClassifierPyfunc.from_directory(directory)
    _edit(directory / "outputs.json", recipe={**model.recipe, "windows": [30, "x"]})
    with pytest.raises(ConfigError, match=r"recipe\.windows\[1\] must be an integer, got 'x'"):
        recipe_options(ClassifierPyfunc.from_directory(directory).recipe)


def test_an_uplift_model_logged_before_recipes_still_loads(winback, tmp_path):
    result, model, source = winback
    directory = _artifacts("custval-uplift-winback", result.registered_version, tmp_path)
    _edit(directory / "uplift.json", recipe=None, value_model=None)
    (directory / "value_model.json").unlink()
    old = UpliftPyfunc.from_directory(directory)
    assert old.recipe is None and old.value_model is None
    X = source.data.X.head(20)
    pd.testing.assert_frame_equal(old.score(X), model.score(X))
    # a spec naming a value model whose file is missing or not a SecondLifetimeValue is refused
    _edit(directory / "uplift.json", value_model="value_model.json")
    with pytest.raises(ModelError, match="no value_model.json among the artifacts"):
        UpliftPyfunc.from_directory(directory)
    (directory / "value_model.json").write_text(json.dumps({"kind": "pickle"}))
    with pytest.raises(ModelError, match="value_model.json is not a saved SecondLifetimeValue"):
        UpliftPyfunc.from_directory(directory)
