"""The uplift training set of a campaign: point-in-time features (nothing from the send day on), window
outcomes, the table mode, and the quality bar of the simulator's truth (a plain T-learner on these features
reaches 0.8 x the Qini of the true uplift ranking).

Oracles: hand-worked logs, the simulator's observables and realised outcomes, the features of a log whose rows
from the send day on are removed or changed, and scikit-uplift's Qini coefficient.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from custval.data.simulate_campaign import CROSSSELL, WINBACK, campaign_table, simulate_campaigns
from custval.errors import ConfigError, CustvalWarning, DataError, SchemaError
from custval.features.campaigns import UpliftData, campaign_dataset, campaign_table_dataset


@pytest.fixture(scope="module")
def sim():
    return simulate_campaigns(20_000, seed=11)


@pytest.fixture(scope="module")
def sets(sim) -> dict[str, UpliftData]:
    return {cid: campaign_dataset(sim.transactions, sim.campaigns, campaign_id=cid, control="control",
                                  arms=sim.designs[cid].treatments, customers=sim.customers,
                                  design=sim.designs[cid].design)
            for cid in sim.designs}


def small_log() -> tuple[pd.DataFrame, pd.DataFrame]:
    def ts(values):
        return pd.to_datetime(values, format="ISO8601")

    tx = pd.DataFrame({
        "customer_id": [1, 1, 1, 1, 2, 2, 2, 3, 3],
        "timestamp": ts(["2024-01-10", "2024-02-01 12:00", "2024-03-01 08:00", "2024-03-05", "2024-01-20",
                         "2024-03-20", "2024-04-05", "2024-02-10", "2024-04-10"]),
        "amount": [10.0, 20.0, 99.0, 7.0, 30.0, 15.0, 1.0, 5.0, 50.0],
    })
    campaigns = pd.DataFrame({"customer_id": [1, 2, 3], "campaign_id": ["c1"] * 3,
                              "treatment": ["control", "mail", "mail"],
                              "sent_at": ts(["2024-03-01 10:00", "2024-03-01 10:00", "2024-03-01 10:00"])})
    return tx, campaigns


def test_hand_worked_features_and_outcomes():
    tx, campaigns = small_log()
    data = campaign_dataset(tx, campaigns, control="control", response_days=30, windows=(30, 60),
                            min_responders=1)
    assert data.arms == ("mail",) and data.control == "control" and data.campaign_id == "c1"
    assert data.customer_id.tolist() == [1, 2, 3]
    # features as of 2024-03-01 (midnight): customer 1 bought 01-10 and 02-01; its 08:00 purchase on the send
    # day is before sent_at but on the send day: neither a feature nor an outcome
    np.testing.assert_array_equal(data.X["recency_days"], [29.0, 41.0, 20.0])
    np.testing.assert_array_equal(data.X["frequency"], [2.0, 1.0, 1.0])
    np.testing.assert_array_equal(data.X["monetary_total"], [30.0, 30.0, 5.0])
    # window [03-01 10:00, 03-31 10:00): 1 buys 7 on 03-05, 2 buys 15 on 03-20, 3 nothing (04-10 is later)
    assert data.y.tolist() == [1, 1, 0] and data.y.dtype == np.int8
    np.testing.assert_allclose(data.spend, [7.0, 15.0, 0.0])
    rows, t = data.arm_rows("mail")
    assert rows.tolist() == [True, True, True] and t.tolist() == [0, 1, 1]


def test_nothing_from_the_send_day_on_reaches_the_features(sim, sets):
    """Removing every row from the earliest send day on, or changing the later rows' amounts and categories,
    leaves the features bit-identical."""
    first_day = sim.campaigns["sent_at"].min().normalize()
    for cid in sim.designs:
        day = sim.designs[cid].send_day
        early = sim.transactions[sim.transactions["timestamp"] < day]
        cut = sim.transactions["timestamp"].max() + pd.Timedelta(seconds=1)
        changed = sim.transactions.copy()
        late = (changed["timestamp"] >= day).to_numpy()
        changed.loc[late, "amount"] = changed.loc[late, "amount"] * 7.0 + 1.0
        changed.loc[late, "category"] = "grocery"
        for variant in (early, changed):
            got = campaign_dataset(variant, sim.campaigns, campaign_id=cid, control="control",
                                   customers=sim.customers, observation_end=cut.normalize() + pd.Timedelta(days=1),
                                   history_start=sim.transactions["timestamp"].min().normalize(),
                                   categories=sorted(sim.transactions.loc[sim.transactions["timestamp"] < first_day,
                                                                          "category"].unique()),
                                   min_responders=0)
            pd.testing.assert_frame_equal(got.X, sets[cid].X, check_exact=True)


def test_features_and_outcomes_match_the_simulator(sim, sets):
    for cid, data in sets.items():
        truth = sim.campaign_truth(cid)
        assert data.customer_id.tolist() == truth.index.tolist()
        assert data.treatment.tolist() == truth["treatment"].tolist()
        np.testing.assert_array_equal(data.y.to_numpy(), truth["converted"].to_numpy())
        np.testing.assert_allclose(data.spend.to_numpy(), truth["spend"].to_numpy(), atol=1e-6)
        for column in ("recency_days", "frequency", "monetary_mean", "tenure_days"):
            np.testing.assert_allclose(data.X[column].to_numpy(), truth[column].to_numpy(), err_msg=column)
        assert {"age", "income", "region", "channel", "plan", "days_since_signup_date"} <= set(data.features)
        assert not {"churn", "cutoff", "customer_id"} & set(data.features)
    assert sets[CROSSSELL].arms == ("email", "discount") and sets[WINBACK].arms == ("offer",)


def _design(X: pd.DataFrame) -> pd.DataFrame:
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c].dtype)]
    dummies = pd.get_dummies(X[text].astype(object).fillna("<NA>"), dtype=float)
    return pd.concat([X.drop(columns=text), dummies], axis=1)


def assert_qini_bar(data: UpliftData, truth: pd.DataFrame) -> None:
    """On a stratified 70/30 split, a T-learner of two histogram boosting models on `data`'s features has a
    Qini coefficient >= 0.8 x the Qini of ranking by the true uplift (scikit-uplift's qini_auc_score), per arm."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split
    from sklift.metrics import qini_auc_score
    from threadpoolctl import threadpool_limits

    X = _design(data.X)
    for arm in data.arms:
        rows, t = data.arm_rows(arm)
        y, u = data.y.to_numpy()[rows], truth[f"uplift_{arm}"].to_numpy()[rows]
        parts = train_test_split(X[rows], y, t, u, test_size=0.3, random_state=0, stratify=2 * t + y)
        X_tr, X_te, y_tr, y_te, t_tr, t_te, _, u_te = parts
        with threadpool_limits(1):  # OpenMP threads on a shared 2-core box slow the fit thirtyfold
            models = [HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_depth=3,
                                                     min_samples_leaf=40, random_state=0)
                      .fit(X_tr[t_tr == k], y_tr[t_tr == k]) for k in (0, 1)]
        pred = models[1].predict_proba(X_te)[:, 1] - models[0].predict_proba(X_te)[:, 1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, best = qini_auc_score(y_te, pred, t_te), qini_auc_score(y_te, u_te, t_te)
        assert best > 0 and model >= 0.8 * best, (arm, model, best)


def test_a_plain_t_learner_reaches_the_quality_bar(sim, sets):
    for cid, data in sets.items():
        assert_qini_bar(data, sim.campaign_truth(cid))


def test_outcome_from_the_campaign_log():
    tx, campaigns = small_log()
    recorded = campaigns.assign(result=["no", "yes", "yes"])
    data = campaign_dataset(tx, recorded, control="control", columns={"outcome": "result"}, outcome="column",
                            response_days=90, min_responders=0)
    assert data.y.tolist() == [0, 1, 1] and data.spend is None  # no window needed: 90 days run past the log
    with pytest.raises(SchemaError, match="campaigns.outcome: the campaign log has no outcome column"):
        campaign_dataset(tx, campaigns, control="control", outcome="column", min_responders=0)
    with pytest.raises(DataError, match="campaigns.outcome: a binary label has two classes"):
        campaign_dataset(tx, campaigns.assign(outcome=[0, 1, 2]), control="control", outcome="column",
                         min_responders=0)
    with pytest.raises(ConfigError, match="outcome must be one of"):
        campaign_dataset(tx, campaigns, control="control", outcome="log")


def test_window_past_the_observation_end_is_an_error():
    tx, campaigns = small_log()
    with pytest.raises(DataError, match="campaigns.sent_at: the response window of response_days=60 days runs "
                                        "past the observation end 2024-04-11"):
        campaign_dataset(tx, campaigns, control="control", response_days=60, min_responders=0)


def test_several_campaigns_need_a_campaign_id():
    tx, campaigns = small_log()
    both = pd.concat([campaigns, campaigns.assign(campaign_id="c2")], ignore_index=True)
    with pytest.raises(ConfigError, match="campaign_id must name one campaign of the log: \\['c1', 'c2'\\]"):
        campaign_dataset(tx, both, control="control", min_responders=0)
    with pytest.raises(DataError, match="no row of campaign 'c3'"):
        campaign_dataset(tx, both, campaign_id="c3", control="control", min_responders=0)
    assert campaign_dataset(tx, both, campaign_id="c2", control="control", min_responders=0).campaign_id == "c2"


def test_guard_rails_apply_to_the_log():
    tx, campaigns = small_log()
    with pytest.raises(DataError, match="too few control responders to evaluate: arm 'control' has 1"):
        campaign_dataset(tx, campaigns, control="control", min_responders=2)
    with pytest.raises(DataError, match="arm 'sms' has no customers"):
        campaign_dataset(tx, campaigns, control="control", arms=["mail", "sms"], min_responders=0)
    with pytest.raises(DataError, match="control arm 'holdout' has no customers"):
        campaign_dataset(tx, campaigns, control="holdout", min_responders=0)
    with pytest.raises(DataError, match="ids are text but the transactions' ids are numbers"):
        campaign_dataset(tx, campaigns.assign(customer_id=["a", "b", "c"]), control="control", min_responders=0)
    with pytest.raises(ConfigError, match="response_days"):
        campaign_dataset(tx, campaigns, control="control", response_days=0)


def test_a_contacted_customer_without_history_keeps_missing_features():
    tx, campaigns = small_log()
    extra = pd.concat([campaigns, pd.DataFrame({"customer_id": [9], "campaign_id": ["c1"], "treatment": ["mail"],
                                                "sent_at": [pd.Timestamp("2024-03-01 10:00")]})],
                      ignore_index=True)
    with pytest.warns(CustvalWarning, match="1 contacted customers have no purchase before their send day.*all their features are missing"):
        data = campaign_dataset(tx, extra, control="control", min_responders=0, windows=(30,))
    assert data.X.iloc[3].isna().all() and data.y.iloc[3] == 0


# ------------------------------------------------------------------------------------------ table mode
@pytest.fixture(scope="module")
def table(sim):
    return campaign_table(sim, CROSSSELL, seed=3)


def test_campaign_table_read_with_a_column_map(sim, table, tmp_path):
    path = tmp_path / "campaign.csv"
    table.table.to_csv(path, index=False)
    data = campaign_table_dataset(path, **table.reader, arms=table.arms, design=sim.designs[CROSSSELL].design)
    assert data.arms == ("email", "discount") and data.control == "control"
    assert data.customer_id.tolist() == table.table["CustomerRef"].tolist()
    np.testing.assert_array_equal(data.y.to_numpy(), table.table["Converted"].to_numpy())
    np.testing.assert_allclose(data.spend.to_numpy(), table.table["Revenue"].to_numpy())
    assert not {"Group", "Converted", "Revenue", "Visited", "SendDate", "CustomerRef"} & set(data.features)
    np.testing.assert_array_equal(data.X["days_since_LastOrderDate"].to_numpy(),
                                  table.table["DaysSinceLastOrder"].to_numpy(dtype=float))
    assert data.X["Income"].dtype == np.float64 and data.X["Income"].isna().any()
    assert list(data.outcomes.columns) == ["Converted", "Revenue", "Visited"]


def test_the_quality_bar_holds_on_the_campaign_table(table):
    assert_qini_bar(campaign_table_dataset(table.table, **table.reader, arms=table.arms), table.truth)


def test_campaign_table_guard_rails(table):
    frame = table.table
    reader = table.reader
    with pytest.raises(DataError, match="campaigns.Revenue: a binary label has two classes"):
        campaign_table_dataset(frame, **{**reader, "outcome": "Revenue", "spend": None})
    with pytest.raises(DataError, match="campaigns.Group: missing treatment value"):
        campaign_table_dataset(frame.assign(Group=frame["Group"].mask(frame.index == 5, "")), **reader)
    with pytest.raises(SchemaError, match="campaigns.Arm: the treatment column is missing"):
        campaign_table_dataset(frame, **{**reader, "treatment": "Arm"})
    with pytest.raises(DataError, match="control arm 'holdout' has no customers"):
        campaign_table_dataset(frame, **{**reader, "control": "holdout"})
    few = frame[(frame["Group"] != "email") | (frame["Converted"] == 0) | (frame.index < 30)]
    with pytest.raises(DataError, match="too few treated responders to evaluate: arm 'email'"):
        campaign_table_dataset(few, **reader, min_responders=50)
    skewed = frame[(frame["Group"] != "email") | (frame.index % 2 == 0)]
    with pytest.warns(CustvalWarning, match="sample-ratio test"):
        campaign_table_dataset(skewed, **reader, design={"control": 0.34, "email": 0.33, "discount": 0.33})
    revenue = campaign_table_dataset(frame, **{**reader, "outcome": "Revenue", "spend": None}, binary=False)
    assert revenue.y.dtype == np.float64 and revenue.spend is None
