"""CDNOW as shipped by lifetimes, checked against the raw files read independently with plain pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.data.datasets import DATASET_NAMES, cdnow, cdnow_summary, lifetimes_data_path, load_dataset
from custval.errors import ConfigError, DataError


def raw_master() -> pd.DataFrame:
    return pd.read_csv(lifetimes_data_path("CDNOW_master.txt"), sep=r"\s+")


def raw_sample() -> pd.DataFrame:
    return pd.read_csv(lifetimes_data_path("CDNOW_sample.txt"), sep=r"\s+", header=None,
                       names=["orig", "idx", "date", "cds", "dollars"])


def test_master_in_the_contract_and_equal_to_the_raw_file(cdnow_master):
    tx, raw = cdnow_master, raw_master()
    assert list(tx.columns) == ["customer_id", "timestamp", "amount", "quantity"]
    assert tx["customer_id"].dtype == np.int64 and tx["timestamp"].dtype == "datetime64[ns]"
    assert tx["amount"].dtype == np.float64
    assert len(tx) == 69_659 and tx["customer_id"].nunique() == 23_570
    assert tx["timestamp"].min() == pd.Timestamp("1997-01-01")
    assert tx["timestamp"].max() == pd.Timestamp("1998-06-30")
    assert (tx["amount"] == 0).sum() == 80 and (tx["amount"] < 0).sum() == 0
    assert tx.duplicated().sum() == 255  # kept: the log has no order ids
    np.testing.assert_array_equal(tx["customer_id"], raw["customer_id"])
    np.testing.assert_array_equal(tx["amount"], raw["dollar_value"])
    np.testing.assert_array_equal(tx["quantity"], raw["number_of_cds"])
    np.testing.assert_array_equal(tx["timestamp"].dt.strftime("%Y%m%d").astype(int), raw["date"])


def test_sample_uses_the_customer_index(cdnow_sample):
    tx, raw = cdnow_sample, raw_sample()
    assert len(tx) == 6_919
    assert sorted(tx["customer_id"].unique()) == list(range(1, 2358))
    np.testing.assert_array_equal(tx["customer_id"], raw["idx"])
    np.testing.assert_array_equal(tx["amount"], raw["dollars"])
    np.testing.assert_array_equal(tx["quantity"], raw["cds"])
    # the sample's customers are master customers: the same purchases under the original id
    master = raw_master()
    first = raw[raw["idx"] == 1]
    mine = master[master["customer_id"] == first["orig"].iloc[0]]
    assert mine["dollar_value"].tolist() == first["dollars"].tolist()


def test_policies_pass_through():
    with pytest.raises(DataError, match=r"cdnow_master\.\*: 255 rows are identical"):
        cdnow(duplicates="error")
    assert len(cdnow(duplicates="drop")) == 69_659 - 255
    with pytest.raises(ConfigError, match="kind"):
        cdnow("full")


def test_published_summary():
    s = cdnow_summary()
    assert s.index.name == "customer_id" and list(s.index) == list(range(1, 2358))
    assert list(s.columns) == ["frequency", "recency", "T", "monetary_value"]
    plain = pd.read_csv(lifetimes_data_path("cdnow_customers_summary.csv"), index_col="ID")
    np.testing.assert_array_equal(s[["frequency", "recency", "T"]].to_numpy(), plain.to_numpy())
    assert (s.loc[s["frequency"] == 0, "monetary_value"] == 0).all()
    assert (s["frequency"] > 0).sum() == 946  # the Gamma-Gamma repeat buyers of the published fit


def test_dataset_names_select_the_cdnow_kinds():
    assert DATASET_NAMES == ("cdnow", "cdnow-master", "cdnow-sample")
    sample = load_dataset("cdnow-sample")
    assert len(sample) == 6_919 and sample["customer_id"].max() == 2_357  # the sample's 1..2357 index
    pd.testing.assert_frame_equal(load_dataset("cdnow", returns="net"), cdnow("master", returns="net"))
    with pytest.raises(ConfigError, match=r"unknown dataset 'cdnow-full'.*cdnow-sample"):
        load_dataset("cdnow-full")
