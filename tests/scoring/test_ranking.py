"""The ranked lists on hand-worked examples: priorities, ranks with ties broken by customer id, cross-sell by
propensity x margin among the categories not bought."""

import numpy as np
import pandas as pd
import pytest

from custval.errors import DataError
from custval.scoring.ranking import cross_sell, rank_list, retention_priority, winback_priority


def test_retention_priority_is_value_saved_minus_cost():
    # 0.5 x 200 x 0.2 - 5 = 15; 0.1 x 100 x 0.2 - 5 = -3; NaN churn probability stays NaN
    got = retention_priority([0.5, 0.1, np.nan], [200.0, 100.0, 50.0], [0.2, 0.2, 0.2], 5.0)
    np.testing.assert_allclose(got[:2], [15.0, -3.0])
    assert np.isnan(got[2])
    # a per-customer uplift
    np.testing.assert_allclose(retention_priority([0.5], [200.0], [0.05], 1.0), [4.0])


def test_winback_priority_is_incremental_profit():
    np.testing.assert_allclose(winback_priority([0.1, 0.02], [300.0, 300.0], 10.0), [20.0, -4.0])


def test_ranks_descend_by_priority_with_ties_by_customer_id_and_skip_non_positive():
    priority = [1.0, np.nan, 3.0, 1.0, -2.0, 3.0, 0.0]
    ids = ["b", "x", "d", "a", "c", "c2", "z"]
    ranks = rank_list(priority, ids)
    # 3.0: c2 < d  -> 1, 2; 1.0: a < b -> 3, 4; NaN, -2 and 0 are not listed
    assert list(ranks.astype(object)) == [4, pd.NA, 2, 3, pd.NA, 1, pd.NA]
    assert str(ranks.dtype) == "Int64"
    # integer ids sort as numbers, not as text
    assert list(rank_list([5.0, 5.0, 5.0], [10, 9, 100]).astype(object)) == [2, 1, 3]


def test_rank_is_the_same_whatever_the_row_order():
    rng = np.random.default_rng(0)
    priority = rng.integers(0, 5, 200).astype(float)  # many ties
    ids = rng.permutation(10_000)[:200]
    ranks = np.asarray(rank_list(priority, ids).astype("float"))
    order = rng.permutation(200)
    shuffled = np.asarray(rank_list(priority[order], ids[order]).astype("float"))
    np.testing.assert_array_equal(shuffled, ranks[order])


def test_cross_sell_weighs_propensity_by_margin_and_skips_bought_categories():
    p = pd.DataFrame({"p_books": [0.5, 0.5, 0.3, 0.2], "p_tv": [0.1, 0.1, 0.2, np.nan]}, index=[1, 2, 3, 4])
    bought = pd.DataFrame({"books": [False, True, True, True], "tv": [False, False, True, False]}, index=p.index)
    best = cross_sell(p, bought, margins=[2.0, 30.0])
    # 1: books 1.0 vs tv 3.0 -> tv; 2: books bought -> tv 3.0; 3: both bought -> none; 4: tv is NaN -> none
    assert list(best["cross_sell_category"].astype(object)) == ["tv", "tv", pd.NA, pd.NA]
    np.testing.assert_allclose(best["cross_sell_score"].to_numpy()[:2], [3.0, 3.0])
    assert best["cross_sell_score"].iloc[2:].isna().all()
    # without margins: by propensity
    plain = cross_sell(p, bought.assign(books=False, tv=False))
    assert list(plain["cross_sell_category"].astype(object)) == ["books", "books", "books", "books"]
    with pytest.raises(DataError, match="margins"):
        cross_sell(p, bought, margins=[1.0])

