"""How the batch scorer cuts a log into chunks of customers and which categories each customer bought, against
plain pandas oracles (groupby / crosstab) on small shuffled logs."""

import numpy as np
import pandas as pd
import pytest

from custval.scoring.batch import chunks
from custval.scoring.ranking import purchased_categories

AS_OF = pd.Timestamp("2024-06-01")


def _log(seed: int, ids) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 400
    return pd.DataFrame({"customer_id": rng.choice(ids, n),
                         "timestamp": AS_OF + pd.to_timedelta(rng.integers(-300, 30, n), unit="D"),
                         "amount": rng.integers(1, 100, n).astype(float),
                         "category": pd.array(rng.choice(["a", "b", "c", None], n), dtype="string")})


@pytest.mark.parametrize("ids", [np.arange(100, 160), np.array([f"c{i:03d}" for i in range(60)], dtype=object)],
                         ids=["int", "text"])
@pytest.mark.parametrize("size", [1, 7, 1000])
def test_chunks_hold_whole_customers_in_id_order_with_their_rows_before_as_of_in_log_order(ids, size):
    log = _log(0, ids)
    rng = np.random.default_rng(1)
    customers = pd.DataFrame({"customer_id": rng.permutation(ids), "age": rng.integers(18, 80, len(ids))})
    customers = customers.iloc[5:]  # shuffled, and some customers have no attributes
    parts = list(chunks(log, customers, AS_OF, size))
    before = log.loc[log["timestamp"] < AS_OF]
    expected = [group for _, group in before.groupby("customer_id", sort=True)]  # each customer's rows, log order
    got = [group for part, _ in parts for _, group in part.groupby("customer_id", sort=False)]
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        pd.testing.assert_frame_equal(mine, theirs)
    for part, people in parts:
        assert part["customer_id"].nunique() <= size
        chosen = customers.loc[customers["customer_id"].isin(part["customer_id"].unique())]
        pd.testing.assert_frame_equal(people, chosen)
    assert all(people is None for _, people in chunks(log, None, AS_OF, size))


def test_chunks_of_a_log_already_sorted_and_before_as_of_are_the_log_in_order():
    log = _log(2, np.arange(30))
    log = log.loc[log["timestamp"] < AS_OF].sort_values(["customer_id"], kind="stable")
    parts = [part for part, _ in chunks(log, None, AS_OF, 4)]
    pd.testing.assert_frame_equal(pd.concat(parts), log)


def test_purchased_categories_is_the_crosstab_of_rows_before_as_of():
    log = _log(3, np.arange(50))
    log.loc[log.index[:3], "category"] = "z"  # a category not asked about
    who = np.r_[np.arange(55)[::-1]]  # some customers without rows, another order
    categories = ["c", "a", "b", "y"]  # y: never bought
    got = purchased_categories(log, AS_OF, categories, who)
    before = log.loc[log["timestamp"] < AS_OF]
    expected = (pd.crosstab(before["customer_id"], before["category"]) > 0).reindex(
        index=who, columns=categories, fill_value=False)
    assert list(got.index) == list(who) and list(got.columns) == categories
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy(dtype=bool))
    assert got.dtypes.eq(bool).all()
    # a categorical column, and categories given as numbers' text
    as_cat = log.assign(category=log["category"].astype("category"))
    np.testing.assert_array_equal(purchased_categories(as_cat, AS_OF, categories, who).to_numpy(), got.to_numpy())
    numbers = log.assign(category=np.where(log["category"].isna(), np.nan, (log.index % 3).astype(float)))
    bought = purchased_categories(numbers, AS_OF, ["1.0", "2.0"], who)
    nb = numbers.loc[numbers["timestamp"] < AS_OF].dropna(subset=["category"])
    for cid in who[:20]:
        mine = set(nb.loc[nb["customer_id"] == cid, "category"].astype(str))
        assert {c for c in ("1.0", "2.0") if bought.loc[cid, c]} == mine & {"1.0", "2.0"}


class _ConstantValue:
    """A CLV model stand-in: daily periods, a value from the customer's spend."""

    period = "D"

    def predict(self, rfm):
        return pd.DataFrame({"p_alive": 0.5, "expected_purchases": 1.0, "expected_spend": 10.0,
                             "clv": rfm["monetary_value"].to_numpy() + rfm["frequency"].to_numpy()}, index=rfm.index)


def test_score_base_times_its_stages_without_changing_the_scores():
    from custval.scoring.batch import ScoringModels, ScoringRules, score_base

    log = _log(4, np.arange(40))
    models, rules = ScoringModels(clv=_ConstantValue()), ScoringRules()
    timings: dict[str, float] = {}
    timed = score_base(log, AS_OF, models, rules, chunk_size=7, timings=timings)
    plain = score_base(log, AS_OF, models, rules, chunk_size=7)
    pd.testing.assert_frame_equal(timed.scores, plain.scores)
    whole = score_base(log, AS_OF, models, rules, chunk_size=1000)  # one chunk: nothing to put together
    assert whole.n_chunks == 1
    pd.testing.assert_frame_equal(plain.scores, whole.scores)
    assert {"chunks", "rfm", "clv", "lists", "segments", "reasons"} <= set(timings)
    assert all(isinstance(v, float) and v >= 0 for v in timings.values())
    assert timed.n_chunks == int(np.ceil(log.loc[log["timestamp"] < AS_OF, "customer_id"].nunique() / 7))


class _RecencyChurn:
    """A churn 'model': P(churn) rises with the days since the last purchase; its reasons name that number."""

    features = [{"name": "recency_days"}]

    def __init__(self):
        from custval.features.snapshots import snapshot_recipe

        self.recipe = snapshot_recipe(label="churn", windows=[30], active_days=None, categories=None,
                                      horizon_days=90, customers=False)

    def score(self, X, reasons=0):
        days = X["recency_days"].to_numpy(dtype=float)
        out = pd.DataFrame({"churn_probability": days / (days + 50.0)}, index=X.index)
        for j in range(1, reasons + 1):
            out[f"reason_{j}"] = [f"{j}:{d:g}" for d in days]
        return out


@pytest.mark.parametrize("size", [3, 7, 1000])
def test_reasons_go_to_the_head_of_the_retention_list_from_the_rows_kept_per_chunk(size):
    from custval.scoring.batch import ScoringModels, ScoringRules, finish_base, score_base, score_chunks

    log = _log(5, np.arange(60))  # shuffled: customers' rows interleaved
    churn = _RecencyChurn()
    models = ScoringModels(clv=_ConstantValue(), churn=churn)
    rules = ScoringRules(reasons_top=5, recipes={"churn": churn.recipe})
    chunked = score_chunks(log.copy(), AS_OF, models, rules, chunk_size=size)
    assert chunked.head_log is not None and chunked.head_log["customer_id"].nunique() <= 5 * len(chunked.parts)
    scores = finish_base(chunked, models, rules).scores
    pd.testing.assert_frame_equal(scores, score_base(log, AS_OF, models, rules, chunk_size=size).scores)
    head = scores["retention_rank"].le(5).fillna(False).to_numpy(dtype=bool)
    assert head.sum() == 5 and scores.loc[~head, "reason_1"].isna().all()
    # oracle: each head customer's days from the last purchase to as_of, from the whole log
    last = log.loc[log["timestamp"] < AS_OF].groupby("customer_id")["timestamp"].max()
    days = (AS_OF.normalize() - last.dt.normalize()).dt.days
    expected = [f"1:{days[c]:g}" for c in scores.loc[head, "customer_id"]]
    assert scores.loc[head, "reason_1"].tolist() == expected


class _RecencyPropensity:
    """A propensity 'model' over categories a, b, c trained with cross_sell_new_only (labels only)."""

    features = [{"name": "recency_days"}]
    spec = {"outputs": ["p_a", "p_b", "p_c"]}

    def __init__(self, categories, new_only: bool):
        from custval.features.snapshots import snapshot_recipe

        self.recipe = snapshot_recipe(label="propensity", windows=[30], active_days=None, categories=categories,
                                      horizon_days=90, cross_sell_new_only=new_only, customers=False)

    def score(self, X):
        days = X["recency_days"].to_numpy(dtype=float)
        return pd.DataFrame({c: 1.0 / (days + k) for k, c in enumerate(self.spec["outputs"], 1)}, index=X.index)


@pytest.mark.parametrize("categories", [["a", "b", "c"], ["a", "b"]])
def test_recipes_differing_only_in_their_labels_share_one_feature_build(monkeypatch, categories):
    from custval.features import snapshots
    from custval.scoring.batch import ScoringModels, ScoringRules, score_chunk

    churn = _RecencyChurn()
    churn.recipe = {**churn.recipe, "categories": ["a", "b", "c"]}
    models = ScoringModels(churn=churn, propensity=_RecencyPropensity(categories, new_only=True))
    rules = ScoringRules(recipes={"churn": churn.recipe, "propensity": models.propensity.recipe})
    built = []
    build = snapshots.build_snapshot
    monkeypatch.setattr(snapshots, "build_snapshot", lambda *a, **k: built.append(k) or build(*a, **k))
    log, _ = next(chunks(_log(6, np.arange(30)), None, AS_OF, 1000))
    scores = score_chunk(log, None, AS_OF, models, rules, history_start=log["timestamp"].min())
    assert len(built) == (1 if categories == ["a", "b", "c"] else 2)  # other categories: other features
    assert scores["churn_probability"].notna().all() and scores["p_a"].notna().all()
