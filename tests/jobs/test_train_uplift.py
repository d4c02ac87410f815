"""Uplift end to end (real SQLite MLflow store) on the simulated campaigns, whose true uplift per customer and
arm is known: the learner choice, the quality bars of the issue against the truth, the off-policy and realised
profit of the target list against contacting everyone and contacting by churn probability, registration and the
champion earned on the same test customers, and a campaign table read with only a column map."""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from custval.config import UpliftCampaignConfig, UpliftConfig
from custval.data.io import read_table
from custval.data.simulate_campaign import campaign_table, simulate_campaigns
from custval.errors import ConfigError, CustvalError
from custval.features.campaigns import load_campaign
from custval.jobs.train_uplift import load_config, train_uplift
from custval.models.classifiers import BoostedClassifier
from custval.models.uplift.selection import split_campaign

REPO = Path(__file__).resolve().parents[2]
SMALL = ["simulate.seed=3"]  # the default 20,000 customers: about 6,800 in the winback campaign


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("uplift_job")
    yield root, f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def winback(store):
    root, uri = store
    # model.choice=best: the registered learner is the best of the learner table (stack is checked on the
    # crosssell run)
    return train_uplift(load_config(overrides=[*SMALL, "model.choice=best", f"output={root}/winback.parquet"]),
                        tracking_uri=uri)


@pytest.fixture(scope="module")
def crosssell(store):
    root, uri = store
    return train_uplift(load_config(overrides=[*SMALL, "model.learners=[t, x, dr, class_transformation]",
                                               "model.choice=stack", f"output={root}/crosssell.csv"],
                                    pipeline="uplift_campaign"),
                        tracking_uri=uri)


def test_repository_configs_are_the_builtin_defaults():
    assert load_config(REPO / "pipelines" / "uplift_winback.yaml") == UpliftConfig()
    assert load_config(REPO / "pipelines" / "uplift_campaign.yaml", pipeline="uplift_campaign") == \
        UpliftCampaignConfig()
    # the campaign file alone, read as the winback pipeline, gives the campaign's settings
    assert load_config(REPO / "pipelines" / "uplift_campaign.yaml").model_dump() == UpliftCampaignConfig().model_dump()
    assert UpliftConfig().model_name == "custval-uplift-winback"
    assert UpliftCampaignConfig().model_name == "custval-uplift-crosssell"
    assert (UpliftConfig().population, UpliftConfig().response_value) == ("lapsed", "second_lifetime_value")
    table = load_config(overrides=["data.table=t.csv", "data.outcome=Converted"])
    assert (table.population, table.response_value) == ("campaign", "margin")


@pytest.mark.parametrize(("override", "message"), [
    ("model.learners=[t, nope]", "model.learners"),
    ("model.learners=[t, t]", "distinct"),
    ("model.xgboost.random_state=1", "set by the job"),
    ("model.xgboost.max_depth=-2", "model.xgboost.max_depth"),
    ("split.test_fraction=0.85", "split.test_fraction"),
    ("targeting.cost=-1", "targeting.cost"),
    ("campaign.id=spring", "campaign.id"),
    ("data.spend=Revenue", "data.spend"),
    ("targeting.population=active", "targeting.value"),  # second_lifetime_value is for lapsed customers
])
def test_bad_config_is_a_config_error_before_any_data(override, message):
    overrides = [override]
    if override == "targeting.population=active":
        overrides.append("targeting.value=second_lifetime_value")
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(overrides=overrides)


def test_every_learner_is_compared_on_validation_and_the_best_is_registered(winback, store):
    table = winback.learners
    assert list(table.index) == ["s", "t", "x", "dr", "class_transformation", "average"]
    assert winback.chosen == table["valid_qini"].idxmax() and table.loc[winback.chosen, "chosen"]
    client = mlflow.MlflowClient(tracking_uri=store[1])
    run = client.get_run(winback.run_id)
    assert run.data.params["chosen_learner"] == winback.chosen
    assert run.data.tags["custval.campaign"] == "winback"
    version = client.get_model_version_by_alias("custval-uplift-winback", "champion")
    assert version.run_id == winback.run_id
    plots = {a.path for a in client.list_artifacts(winback.run_id, "plots")}
    assert {"plots/qini_offer.png", "plots/uplift_by_decile_offer.png", "plots/profit_curve.png"} <= plots


def test_quality_bars_against_the_simulators_true_uplift(winback):
    """Test Qini >= 0.8 x the Qini of ranking by the true uplift; the top decile by predicted uplift has a true
    mean uplift >= 2x the population's; sleeping dogs (true uplift < 0) sit in the bottom deciles."""
    m, test = winback.metrics, winback.test
    assert m["test_qini"] >= 0.8 * m["oracle_test_qini"], (m["test_qini"], m["oracle_test_qini"])
    decile = pd.qcut(test["uplift_offer"].rank(method="first", ascending=False), 10, labels=False)
    true = test["true_uplift_offer"]
    assert true[decile == 0].mean() >= 2 * true.mean()
    dogs = true < 0
    assert dogs.sum() > 20
    assert (decile[dogs] >= 7).mean() > 2 * (decile[dogs] <= 2).mean()


def test_profit_based_selection_beats_everyone_and_churn_probability_on_held_out_customers(winback):
    """Realised incremental profit on the test customers, from the simulator's true uplift and the value the job
    gives a response (margin_rate x the estimated second lifetime value): the job's rule (contact when uplift x
    value > cost) beats contacting everyone and contacting as many customers by a churn probability model
    (XGBoost on the control customers of train + valid: P(no purchase in the response window))."""
    config = load_config(overrides=SMALL)
    source = load_campaign(config)
    data = source.data
    y, t = data.y.to_numpy(dtype=float), data.treatment.astype(str).to_numpy(dtype=object)
    train, valid, test = split_campaign(t, y, valid_fraction=0.2, test_fraction=0.3, seed=0)
    frame = winback.test
    np.testing.assert_array_equal(data.customer_id.iloc[test].to_numpy(), frame["customer_id"].to_numpy())
    fit = np.concatenate([train, valid])
    control = fit[t[fit] == "control"]
    churn = BoostedClassifier(n_estimators=200, max_depth=3, random_state=0).fit(data.X.iloc[control],
                                                                                 1 - y[control].astype(int))
    p_churn = churn.predict_proba(data.X.iloc[test])[:, 1]
    true_profit = source.truth.iloc[test]["uplift_offer"].to_numpy() * frame["value"].to_numpy() - 10.0
    contacted = frame["target_arm"].notna().to_numpy()
    chosen, everyone = true_profit[contacted].sum(), true_profit.sum()
    by_churn = true_profit[np.argsort(-p_churn, kind="stable")[:contacted.sum()]].sum()
    assert 0 < contacted.sum() < len(frame)
    assert chosen > 1.1 * everyone and chosen > 1.1 * by_churn, (chosen, everyone, by_churn)
    m = winback.metrics
    assert m["true_policy_profit_incremental_profit"] == pytest.approx(chosen, rel=1e-9)
    assert m["true_policy_everyone_incremental_profit"] == pytest.approx(everyone, rel=1e-9)
    # the off-policy estimate (from the observed outcomes only) lands near the realised value
    assert m["policy_profit_ci_low"] < chosen < m["policy_profit_ci_high"]


def test_the_off_policy_value_of_the_top_share_has_an_interval_around_its_realised_value(winback):
    m = winback.metrics
    assert m["policy_top_share_ci_low"] < m["policy_top_share_incremental_profit"] < m["policy_top_share_ci_high"]
    assert m["policy_top_share_contacts"] == np.floor(0.3 * m["n_test"])
    p = winback.policy["profit"]
    assert p.ci_low < p.incremental_profit < p.ci_high


def test_the_target_list_is_the_lapsed_customers_ranked_by_expected_profit(winback, store):
    config = load_config(overrides=SMALL)
    source = load_campaign(config)
    targets = read_table(store[0] / "winback.parquet")
    pd.testing.assert_frame_equal(targets, winback.targets, check_dtype=False)
    last = source.transactions.groupby("customer_id")["timestamp"].max()
    days = (source.as_of - last.loc[targets["customer_id"]].dt.normalize()).dt.days
    assert (days.to_numpy() >= 120).all()  # every ranked customer is lapsed as of the day after the log
    contacted = targets[targets["arm"].notna()]
    assert (contacted["expected_profit"] > 0).all() and contacted["expected_profit"].is_monotonic_decreasing
    np.testing.assert_allclose(contacted["expected_profit"],
                               contacted["uplift_offer"] * contacted["value"] - 10.0, rtol=1e-12)
    assert contacted["rank"].tolist() == list(range(1, len(contacted) + 1))
    # the value of a response: margin_rate x the second lifetime value learnt from past returns
    assert winback.metrics["n_past_returns"] >= 20 and (targets["value"] > 0).all()


def test_two_arms_one_column_each_and_at_most_one_arm_per_customer(crosssell):
    assert crosssell.arms == ["discount", "email"] or crosssell.arms == ["email", "discount"]
    assert "class_transformation" not in crosssell.learners.index  # one arm, 0/1 only
    m = crosssell.metrics
    for arm in crosssell.arms:
        assert m[f"test_qini_{arm}"] > 0.5 * m[f"oracle_test_qini_{arm}"] > 0
    targets = crosssell.targets
    assert targets["customer_id"].is_unique
    assert set(targets["arm"].dropna()) <= set(crosssell.arms)
    cost = {"email": 0.5, "discount": 4.0}
    contacted = targets[targets["arm"].notna()]
    expected = [row[f"uplift_{row['arm']}"] * 30.0 - cost[row["arm"]] for _, row in contacted.iterrows()]
    np.testing.assert_allclose(contacted["expected_profit"], expected, rtol=1e-12)
    best = contacted[[f"uplift_{a}" for a in crosssell.arms]].to_numpy() * 30.0 - \
        np.array([cost[a] for a in crosssell.arms])
    np.testing.assert_allclose(contacted["expected_profit"], best.max(axis=1), rtol=1e-12)  # its best arm


def test_the_stack_choice_weights_the_average_and_bags_its_fold_models(crosssell, store):
    """model.choice=stack: `average` of the listed learners of model.average (here t and x; s is not
    listed), its stacking weights logged, each positive-weight member's refit and its 3 fold models in the
    registered AveragedUplift at weight / 4 each."""
    assert crosssell.chosen == "average" and "average" not in crosssell.learners.index
    params = mlflow.MlflowClient(tracking_uri=store[1]).get_run(crosssell.run_id).data.params
    weights = {name: float(params[f"stack_weight_{name}"]) for name in ("t", "x")}
    assert sum(weights.values()) == pytest.approx(1, abs=1e-5) and min(weights.values()) >= 0
    model = crosssell.model
    positive = [name for name, w in weights.items() if w > 0]
    assert len(model.models_) == 4 * len(positive)
    expected = np.repeat([weights[name] / 4 for name in positive], 4)
    np.testing.assert_allclose(model.weights_, expected, atol=1e-5)


def test_a_second_run_meets_the_champion_on_the_same_test_customers(winback, store):
    """Same data, config and seed: the champion scores the new run's test customers exactly as the new model
    does, so the champion's Qini there equals the new test Qini (and the new version is promoted: ties win)."""
    root, uri = store
    again = train_uplift(load_config(overrides=[*SMALL, "model.choice=best", "output=null"]), tracking_uri=uri)
    assert again.promotion is not None and "champion_test_qini" in again.metrics, again.promotion
    assert again.metrics["champion_test_qini"] == pytest.approx(winback.metrics["test_qini"], abs=1e-12)
    assert again.metrics["test_qini"] == winback.metrics["test_qini"]
    assert again.promotion.promoted and again.registered_version == "2"


def test_a_cost_per_arm_must_name_the_campaigns_arms(store):
    _, uri = store
    with pytest.raises(ConfigError, match=r"targeting\.cost.*\['offer'\]"):
        train_uplift(load_config(overrides=[*SMALL, "targeting.cost={email: 1.0}", "output=null"]),
                     tracking_uri=uri)


def test_a_campaign_table_with_only_a_column_map(tmp_path, isolated_store):
    sim = simulate_campaigns(6000, seed=4)
    table = campaign_table(sim, "crosssell", seed=4)
    path = tmp_path / "campaign.csv"
    table.table.to_csv(path, index=False)
    config = load_config(overrides=[f"data.table={path}", "data.id_column=CustomerRef", "data.treatment=Group",
                                    "data.outcome=Converted", "data.spend=Revenue", "data.outcomes=[Visited]",
                                    "data.sent_at=SendDate", "data.drop=[CampaignCode]", "campaign.id=spring",
                                    "model.learners=[t, x]", "output=targets.csv"])
    result = train_uplift(config)
    assert result.kind == "table" and sorted(result.arms) == ["discount", "email"]
    assert result.registered_version == "1"
    assert mlflow.MlflowClient().get_registered_model("custval-uplift-spring") is not None
    targets = read_table(tmp_path / "targets.csv")
    assert len(targets) == len(table.table) and targets["customer_id"].astype(str).str.startswith("CU-").all()
    # no outcome column is a feature
    features = set(load_campaign(config).data.X.columns)
    assert not features & {"Converted", "Revenue", "Visited", "Group", "CampaignCode", "SendDate"}


def test_revenue_uplift_targets_spend(store):
    _, uri = store
    result = train_uplift(load_config(overrides=[*SMALL, "model.target=spend", "model.learners=[t, dr]",
                                                 "targeting.value=margin", "registered_model=null",
                                                 "output=null"]), tracking_uri=uri)
    m = result.metrics
    assert m["test_qini"] > 0.6 * m["oracle_test_qini"] > 0, (m["test_qini"], m["oracle_test_qini"])
    contacted = result.targets[result.targets["arm"].notna()]
    np.testing.assert_allclose(contacted["expected_profit"], contacted["uplift_offer"] * 0.3 - 10.0, rtol=1e-12)


def test_errors_are_custval_errors():
    with pytest.raises(CustvalError, match="data.campaigns"):
        load_config(overrides=["data.source=transactions.csv"])


def test_tuning_the_chosen_learner_logs_every_trial_as_a_nested_run_and_refits_the_best(store):
    """model.n_trials=3 with the T-learner alone: three trials nested under the job's run, the first the untuned
    model.xgboost (its validation Qini is the learner table's), the refit made with the best trial's settings."""
    _, uri = store
    result = train_uplift(load_config(overrides=[*SMALL, "model.learners=[t]", "model.choice=best", "model.n_trials=3",
                                                 "registered_model=null", "output=null"]), tracking_uri=uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    trials = {r.info.run_name: r for r in client.search_runs(
        [result.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")}
    assert sorted(trials) == ["trial-0", "trial-1", "trial-2"]
    assert {r.info.status for r in trials.values()} == {"FINISHED"}
    m = result.metrics
    assert m["n_trials"] == 3 and m["valid_qini_tuned"] >= m["t_valid_qini"]
    assert trials["trial-0"].data.metrics["valid_qini"] == pytest.approx(m["t_valid_qini"], abs=1e-12)
    assert trials["trial-0"].data.params == {k: str(v) for k, v in UpliftConfig().model.xgboost.items()}
    best = max(trials.values(), key=lambda r: r.data.metrics["valid_qini"])
    assert best.data.metrics["valid_qini"] == pytest.approx(m["valid_qini_tuned"], abs=1e-12)
    run = client.get_run(result.run_id)
    tuned = {k.removeprefix("tuned."): v for k, v in run.data.params.items() if k.startswith("tuned.")}
    assert tuned == best.data.params == {k: str(v) for k, v in result.tuned_params.items()}
    assert run.data.params["model.n_trials"] == "3" and run.data.metrics["valid_qini_tuned"] == m["valid_qini_tuned"]
    refit = result.model.learner.get_params()
    assert {k: refit[k] for k in result.tuned_params} == result.tuned_params
