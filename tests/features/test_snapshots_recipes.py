"""Model recipes (custval.features.snapshots): what a logged model records about how its features were built,
the build_snapshot arguments a scorer rebuilds them with, and which models may be combined."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from custval.errors import ConfigError
from custval.features.snapshots import (
    build_snapshot,
    check_recipe,
    compatible_recipes,
    feature_columns,
    recipe_options,
    snapshot_categories,
    snapshot_recipe,
    table_recipe,
)

CHURN = {"kind": "snapshot", "time_unit": "D", "windows": [30, 90], "active_days": 365, "categories": ["home", "garden"],
         "cross_sell_new_only": False, "horizon_days": 90, "label": "churn", "customers": False,
         "clv_features": False, "id_column": "customer_id", "value": None}
WINBACK_VALUE = {"response_value": "second_lifetime_value", "margin": None, "margin_rate": 0.3, "lapse_days": 120,
                 "population": "lapsed", "costs": {"offer": 10.0}, "horizon_days": 365}
WINBACK = {**CHURN, "active_days": None, "horizon_days": 30, "label": "conversion", "value": WINBACK_VALUE}


def _log() -> pd.DataFrame:
    rows = [("A", "2024-01-01", 10.0, "home"), ("A", "2024-03-20", 30.0, "garden"), ("B", "2023-03-01", 40.0, "home"),
            ("B", "2024-03-31", 8.0, None)]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "category"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame["category"] = frame["category"].astype("string")
    return frame


def test_the_builders_write_every_key_and_windows_in_build_snapshots_order():
    built = snapshot_recipe(label="churn", windows=(90, 30), active_days=365, categories=("home", "garden"),
                            horizon_days=90, customers=False)
    assert built == CHURN
    assert check_recipe(json.loads(json.dumps(built))) == built  # JSON as logged, unchanged
    assert table_recipe(label="conversion", id_column="CustomerRef", horizon_days=30) == {
        "kind": "table", "time_unit": "D", "windows": None, "active_days": None, "categories": None,
        "cross_sell_new_only": False, "horizon_days": 30, "label": "conversion", "customers": False,
        "clv_features": False, "id_column": "CustomerRef", "value": None}
    assert check_recipe(WINBACK)["value"] == WINBACK_VALUE
    # the uplift of spend is already money: a response is worth the margin rate alone
    spend = {**WINBACK_VALUE, "response_value": "spend", "population": "active"}
    assert check_recipe({**WINBACK, "label": "spend", "value": spend})["value"]["margin_rate"] == 0.3


def test_recipe_options_are_the_build_snapshot_arguments_without_the_data_specific_ones():
    assert recipe_options(CHURN) == {"horizon_days": 90, "windows": (30, 90), "active_days": 365,
                                     "categories": ["home", "garden"], "cross_sell_new_only": False,
                                     "labels": False, "customers": None, "extra_features": None}
    # customers / extra_features are passed on only when the model used them, and then required
    customers = pd.DataFrame({"customer_id": ["A", "B"], "region": ["n", "s"]})
    assert recipe_options(CHURN, customers=customers)["customers"] is None
    assert recipe_options({**CHURN, "customers": True}, customers=customers)["customers"] is customers
    with pytest.raises(ConfigError, match=r"recipe\.customers: .*pass customers="):
        recipe_options({**CHURN, "customers": True})
    with pytest.raises(ConfigError, match=r"recipe\.clv_features: .*CLVFeatures\(90\)"):
        recipe_options({**CHURN, "clv_features": True})
    with pytest.raises(ConfigError, match=r"recipe\.kind: a 'table' model.*'CustomerRef'"):
        recipe_options(table_recipe(label="churn", id_column="CustomerRef"))
    with pytest.raises(ConfigError, match=r"recipe\.time_unit: .*days \('D'\), got 'W'"):
        recipe_options({**CHURN, "time_unit": "W"})


def test_the_options_rebuild_the_columns_of_the_recorded_categories_in_their_order():
    log = _log()
    assert snapshot_categories(log) == ["garden", "home"]  # every category of the log, sorted
    assert snapshot_categories(log, ["home"]) == ["home"]
    assert snapshot_categories(log.drop(columns="category")) is None
    frame = build_snapshot(log, "2024-04-01", **recipe_options({**CHURN, "windows": [30]}))
    assert feature_columns(frame) == [
        "recency_days", "tenure_days", "frequency", "monetary_total", "monetary_mean", "n_purchases_30d",
        "spend_30d", "ipt_mean_days", "ipt_std_days", "ipt_last_days", "recency_ratio", "share_home",
        "share_garden", "days_since_home", "days_since_garden", "n_categories"]
    assert list(frame["customer_id"]) == ["A", "B"] and "churn" not in frame.columns


@pytest.mark.parametrize(("change", "message"), [
    ({"windos": [30]}, r"recipe: unknown keys \['windos'\]; allowed: \['active_days'"),
    ({"windows": [30, "90"]}, r"recipe\.windows\[1\] must be an integer, got '90'"),
    ({"windows": [30, True]}, r"recipe\.windows\[1\] must be an integer, got True"),
    ({"windows": [30, 30]}, r"recipe\.windows must be distinct"),
    ({"windows": None}, r"recipe\.windows must be given for a snapshot recipe"),
    ({"active_days": 0}, r"recipe\.active_days must be an integer >= 1, got 0"),
    ({"customers": "yes"}, r"recipe\.customers must be true or false, got 'yes'"),
    ({"categories": ["home", ""]}, r"recipe\.categories\[1\] must be a non-empty name"),
    ({"kind": "parquet"}, r"recipe\.kind must be one of \['snapshot', 'table'\], got 'parquet'"),
    ({"time_unit": "fortnight"}, r"recipe\.time_unit"),
    ({"label": None}, r"recipe\.label must be a non-empty name, got None"),
    ({"value": {**WINBACK_VALUE, "margin": 30.0}}, r"recipe\.value\.margin must be null with response_value="
                                                   r"second_lifetime_value, got 30\.0"),
    ({"value": {**WINBACK_VALUE, "costs": {"offer": -1}}}, r"recipe\.value\.costs\.offer must be a number >= 0"),
    ({"value": {**WINBACK_VALUE, "rate": 1}}, r"recipe\.value: unknown keys \['rate'\]"),
    ({"value": "margin"}, r"recipe\.value must be a mapping"),
])
def test_a_tampered_recipe_is_a_config_error_naming_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        check_recipe({**WINBACK, **change})
    with pytest.raises(ConfigError, match=message):  # the scorer's entry point checks the same way
        recipe_options({**WINBACK, **change})


def test_a_missing_key_or_recipe_is_named():
    with pytest.raises(ConfigError, match=r"recipe\.horizon_days is required"):
        check_recipe({k: v for k, v in CHURN.items() if k != "horizon_days"})
    with pytest.raises(ConfigError, match="logged without a recipe"):
        recipe_options(None)
    with pytest.raises(ConfigError, match="recipe must be a mapping of recipe keys"):
        check_recipe([("kind", "snapshot")])
    with pytest.raises(ConfigError, match=r"recipe\.windows must be null for a table recipe"):
        check_recipe({**table_recipe(label="churn", id_column="id"), "windows": [30]})


def test_models_that_answer_separate_questions_may_differ_in_windows_and_horizons():
    propensity = {**CHURN, "windows": [30, 365], "horizon_days": 30, "label": "propensity", "categories": None,
                  "cross_sell_new_only": True}
    retention = {**WINBACK, "horizon_days": 90, "value": {**WINBACK_VALUE, "population": "active"}}
    checked = compatible_recipes({"churn": CHURN, "propensity": propensity, "retention": retention,
                                  "winback": WINBACK})
    assert checked["propensity"]["windows"] == [30, 365] and checked["winback"]["horizon_days"] == 30


def test_models_that_disagree_on_what_must_match_are_refused_naming_both_roles():
    with pytest.raises(ConfigError, match=r"churn\.recipe\.horizon_days=90 differs from retention\.recipe\."
                                          r"horizon_days=30"):
        compatible_recipes({"churn": CHURN, "retention": WINBACK})
    with pytest.raises(ConfigError, match=r"churn\.recipe\.time_unit='D' differs from winback\.recipe\.time_unit="
                                          r"'W'"):
        compatible_recipes({"churn": CHURN, "winback": {**WINBACK, "time_unit": "W"}})
    with pytest.raises(ConfigError, match=r"churn\.recipe\.label: a churn model must be trained on churn, got "
                                          r"'propensity'"):
        compatible_recipes({"churn": {**CHURN, "label": "propensity"}})
    with pytest.raises(ConfigError, match=r"winback\.recipe: the model was logged without a recipe"):
        compatible_recipes({"churn": CHURN, "winback": None})
    with pytest.raises(ConfigError, match=r"propensity\.recipe\.windows\[0\] must be an integer"):
        compatible_recipes({"propensity": {**CHURN, "label": "propensity", "windows": ["30"]}})
