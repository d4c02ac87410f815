"""Built-in data sets: CDNOW, read from the files that the lifetimes package ships (no download).

CDNOW master: 69,659 transactions of 23,570 customers who first bought in Q1 1997, followed to 1998-06-30.
CDNOW sample: the 2,357-customer (1/10) sample used by Fader, Hardie & Lee (2005); the published
calibration summary covers 1997-01-01..1997-09-30 in weeks (`cdnow_summary`).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import pandas as pd

from custval.data.io import read_table
from custval.data.schemas import validate_transactions
from custval.errors import ConfigError

__all__ = ["CDNOW_CALIBRATION_END", "CDNOW_OBSERVATION_END", "DATASET_NAMES", "cdnow", "cdnow_source",
           "cdnow_summary", "dataset_source", "lifetimes_data_path", "load_dataset"]

CDNOW_CALIBRATION_END = pd.Timestamp("1997-09-30")
CDNOW_OBSERVATION_END = pd.Timestamp("1998-06-30")
_KINDS = ("master", "sample")
# Names accepted as a transactions source (`custval.data.loaders.load_transactions`): name -> cdnow kind.
_DATASET_KINDS = {"cdnow": "master", "cdnow-master": "master", "cdnow-sample": "sample"}
DATASET_NAMES = tuple(_DATASET_KINDS)


def lifetimes_data_path(filename: str) -> Path:
    """Path of a data file shipped in `lifetimes/datasets/` (ConfigError if lifetimes is missing)."""
    try:
        root = importlib.resources.files("lifetimes.datasets")
    except ModuleNotFoundError as exc:
        raise ConfigError("the CDNOW data sets come with the `lifetimes` package: pip install lifetimes") from exc
    path = Path(str(root.joinpath(filename)))
    if not path.is_file():
        raise ConfigError(f"{filename!r} not found in the installed lifetimes package ({path.parent})")
    return path


def cdnow(kind: str = "master", *, returns: str = "exclude", duplicates: str = "keep") -> pd.DataFrame:
    """CDNOW transactions in the transactions contract.

    Columns: customer_id (int), timestamp (the purchase day), amount (= dollar_value),
    quantity (= number_of_cds). ``kind="sample"`` uses the sample's 1..2357 customer index as customer_id.
    The log has 255 exact duplicate rows (no order ids) and 80 zero-amount rows: duplicates are kept by default.
    """
    raw, columns, table = cdnow_source(kind)
    return validate_transactions(raw, columns=columns, returns=returns, duplicates=duplicates, table=table)


def cdnow_source(kind: str = "master") -> tuple[pd.DataFrame, dict[str, str], str]:
    """The CDNOW file as shipped (before validation), its column map into the contract and its table name."""
    if kind not in _KINDS:
        raise ConfigError(f"cdnow kind must be one of {_KINDS}, got {kind!r}")
    if kind == "master":
        raw = read_table(lifetimes_data_path("CDNOW_master.txt"), sep=r"\s+")
        columns = {"customer_id": "customer_id", "timestamp": "date", "amount": "dollar_value",
                   "quantity": "number_of_cds"}
    else:
        raw = read_table(
            lifetimes_data_path("CDNOW_sample.txt"), sep=r"\s+", header=None,
            names=["original_id", "customer_index", "date", "number_of_cds", "dollar_value"],
        )
        raw = raw.drop(columns="original_id")
        columns = {"customer_id": "customer_index", "timestamp": "date", "amount": "dollar_value",
                   "quantity": "number_of_cds"}
    return raw, columns, f"cdnow_{kind}"


def dataset_source(name: str) -> tuple[pd.DataFrame, dict[str, str], str]:
    """A built-in data set by name (one of `DATASET_NAMES`) as shipped: (raw frame, column map, table name)."""
    if name not in _DATASET_KINDS:
        raise ConfigError(f"unknown dataset {name!r}; known: {list(DATASET_NAMES)}")
    return cdnow_source(_DATASET_KINDS[name])


def load_dataset(name: str, *, returns: str = "exclude", duplicates: str = "keep") -> pd.DataFrame:
    """The transactions of a built-in data set by name (one of `DATASET_NAMES`)."""
    raw, columns, table = dataset_source(name)
    return validate_transactions(raw, columns=columns, returns=returns, duplicates=duplicates, table=table)


def cdnow_summary() -> pd.DataFrame:
    """The published 2,357-customer CDNOW calibration summary (weeks, calibration through 1997-09-30).

    Index customer_id (1..2357); columns frequency (x), recency (t_x), T, monetary_value (zbar: mean spend of
    the repeat purchases, 0 for customers with none), rounded to 2 decimals as published.
    """
    raw = read_table(lifetimes_data_path("cdnow_customers_summary_with_transactions.csv"))
    out = raw.rename(columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"})
    out = out.set_index("customer_id")[["frequency", "recency", "T", "monetary_value"]].astype(float)
    return out.sort_index()
