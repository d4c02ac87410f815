"""Loading tables in the data contracts: files with column mapping, the policies, and dataset names."""

from __future__ import annotations

import pandas as pd
import pytest

from custval.data.io import write_table
from custval.data.loaders import load_transactions
from custval.errors import ConfigError, DataError


# ------------------------------------------------------------------------------------ load_transactions
def test_load_transactions_from_csv_and_parquet_with_mapping(tmp_path):
    raw = pd.DataFrame({"cust": [1, 2, 2], "date": [19970101, 19970102, 19970105], "dollars": [1.0, 2.0, 3.0]})
    mapping = {"customer_id": "cust", "timestamp": "date", "amount": "dollars"}
    write_table(raw, tmp_path / "tx.csv")
    write_table(raw, tmp_path / "tx.parquet")
    a = load_transactions(tmp_path / "tx.csv", columns=mapping)
    b = load_transactions(str(tmp_path / "tx.parquet"), columns=mapping)
    pd.testing.assert_frame_equal(a, b)
    assert a["timestamp"].tolist() == [pd.Timestamp(d) for d in ["1997-01-01", "1997-01-02", "1997-01-05"]]
    (tmp_path / "semi.csv").write_text("customer_id;timestamp;amount\nx;2020-01-01;1.5\n")
    assert load_transactions(tmp_path / "semi.csv", sep=";")["amount"].tolist() == [1.5]


def test_load_transactions_applies_the_policies(tmp_path):
    (tmp_path / "tx.csv").write_text("customer_id,timestamp,amount\n1,2020-01-01,5\n1,2020-01-01,5\n")
    with pytest.raises(DataError, match="duplicates='keep'"):
        load_transactions(tmp_path / "tx.csv")
    assert len(load_transactions(tmp_path / "tx.csv", duplicates="keep")) == 2
    (tmp_path / "r.csv").write_text("customer_id,timestamp,amount\n1,2020-01-01,5\n1,2020-01-02,-5\n")
    with pytest.raises(DataError, match="returns='error'"):
        load_transactions(tmp_path / "r.csv", returns="error")


def test_load_transactions_dataset_names():
    sample = load_transactions("cdnow-sample")
    assert len(sample) == 6919 and sample["customer_id"].nunique() == 2357
    with pytest.raises(DataError, match="identical"):
        load_transactions("cdnow", duplicates="error")
    with pytest.raises(ConfigError, match=r"unknown transactions source 'cdnow-full'.*cdnow-sample"):
        load_transactions("cdnow-full")
    with pytest.raises(ConfigError):
        load_transactions(42)
