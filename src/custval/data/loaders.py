"""Tables in the data contracts from where they live: a CSV/Parquet path, a built-in dataset name or a
DataFrame, validated (`custval.data.schemas`) and, for transaction logs, prepared by the export policies of
the `data` section (`custval.data.prepare`) on the way in.

Imports go one way: loaders -> prepare -> datasets -> io -> schemas (io does the file reading, datasets knows
the bundled data sets, loaders picks one by the source given).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from custval.config.sections import DataConfig
from custval.data.datasets import DATASET_NAMES, dataset_source
from custval.data.io import read_table
from custval.data.prepare import SOURCE_ATTR, prepare_log
from custval.data.schemas import (
    coerce_date_text,
    coerce_numeric_text,
    parse_binary_label,
    validate_customers,
)
from custval.errors import ConfigError, SchemaError

__all__ = ["LogSource", "load_customer_table", "load_log", "load_transactions", "read_categories", "read_log"]


# ------------------------------------------------------------------------------------------ transactions
@dataclass
class LogSource:
    """A transaction log as read, before any policy: the raw frame, the column map of a built-in dataset (None
    for files and frames), the table name used in messages and the duplicates policy that null means."""

    raw: pd.DataFrame
    dataset_columns: dict[str, str] | None = None
    table: str = "transactions"
    default_duplicates: str = "error"

    def settings(self, data: DataConfig) -> DataConfig:
        """`data` with a dataset's own column map (a dataset is in the contract already: `columns` must be empty)."""
        if self.dataset_columns is None:
            return data
        if data.columns:
            raise ConfigError(f"dataset {self.table!r} is already in the transactions contract; drop `columns` "
                              "(data.columns)")
        return data.model_copy(update={"columns": self.dataset_columns})


def read_log(source, *, sep: str | None = None) -> LogSource:
    """Read a transactions source once: a CSV/Parquet path, a built-in dataset name or a DataFrame.

    Dataset names: ``"cdnow"`` (= ``"cdnow-master"``, 69,659 rows) and ``"cdnow-sample"`` (6,919 rows),
    shipped with the lifetimes package; their duplicates are kept by default (their log legitimately repeats
    rows). `sep` overrides the CSV separator (default by suffix: ``,``, tab for .tsv, whitespace for .txt).
    """
    if isinstance(source, pd.DataFrame):
        return LogSource(source)
    if isinstance(source, str) and source.strip().lower() in DATASET_NAMES:
        raw, columns, table = dataset_source(source.strip().lower())
        return LogSource(raw, columns, table, default_duplicates="keep")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.suffix and not path.exists():
            raise ConfigError(
                f"unknown transactions source {str(source)!r}: give a .csv/.parquet path or one of the "
                f"dataset names {list(DATASET_NAMES)}"
            )
        return LogSource(read_table(path, **({"sep": sep} if sep is not None else {})))
    raise ConfigError(f"transactions source must be a path, a dataset name or a DataFrame, got {source!r}")


def read_categories(data: DataConfig) -> pd.DataFrame | None:
    """The product master of data.categories.file (None when not set)."""
    return None if data.categories.file is None else read_table(data.categories.file)


def load_log(data: DataConfig, *, source=None, sep: str | None = None) -> pd.DataFrame:
    """The transactions of a `data` section: data.source (or `source`: a path, dataset name or DataFrame) read
    once, mapped by data.columns and prepared by the data.* policies (`custval.data.prepare.prepare_log`; its
    `Preparation` rides along in ``frame.attrs[custval.data.prepare.PREPARATION_ATTR]``)."""
    categories = read_categories(data)  # first: a missing product file fails before the log is read
    source = data.source if source is None else source
    log = read_log(source, sep=sep)
    out = prepare_log(log.raw, log.settings(data), categories=categories, table=log.table,
                      default_duplicates=log.default_duplicates).log
    out.attrs[SOURCE_ATTR] = "a DataFrame" if isinstance(source, pd.DataFrame) else str(source)
    return out


def load_transactions(
    source,
    *,
    columns: Mapping[str, str] | None = None,
    returns: str = "exclude",
    duplicates: str | None = None,
    sep: str | None = None,
    timestamp_format: str | None = None,
    **policies,
) -> pd.DataFrame:
    """Validated transactions from a CSV/Parquet path, a built-in dataset name or a DataFrame, with the settings
    of a `data` section given as keywords (`load_log` for a config's section).

    `duplicates` defaults to ``"error"`` for files and frames and to ``"keep"`` for the CDNOW datasets. `policies`:
    the other data.* settings (missing_ids, cancellations, prices, categories). See `read_log` for the sources and
    `custval.data.schemas.validate_transactions` for `columns`, `returns` and the timestamp rule.
    """
    data = DataConfig(columns=dict(columns or {}), returns=returns, duplicates=duplicates,
                      timestamp_format=timestamp_format, **policies)
    return load_log(data, source=source, sep=sep)


# ------------------------------------------------------------------------------------- customer tables
def load_customer_table(
    source,
    *,
    id_column: str = "customer_id",
    label: str | None = None,
    columns: Mapping[str, str] | None = None,
    table: str = "customers",
) -> tuple[pd.DataFrame, pd.Series | None]:
    """Features and label of a plain customer table (a CSV/Parquet path or a DataFrame), e.g. a telecom or
    bank churn export with no transactions.

    `columns` renames source columns, {new name: source column} as for transactions (e.g.
    ``{"customer_id": "customerID", "churn": "Churn"}``); `id_column` and `label` are names after renaming.
    Returns ``(X, y)``:
      * X: one row per customer, indexed by the id column (int64 or str ids, unique), features only (id and
        label removed). Text columns whose non-blank values are all numbers become float64 (blank " " ->
        NaN); text columns of ISO dates ("2023-04-01") become datetime64 (blank -> NaT; see
        `coerce_date_text`); the other text columns become pandas ``string`` dtype with blanks as <NA>; other numeric
        columns become float64 (so a missing value at scoring time cannot change a column's type); booleans,
        categoricals and datetimes are kept.
      * y: the label as int8 0/1 (see `parse_binary_label`), same index, or None when `label` is None.
    Errors name the table, column, rule and an example: a missing id, label or mapped column is a
    SchemaError; missing/empty/duplicated ids, a blank label, a label that is not two classes (a third
    value, an unknown token such as "Maybe", a single class) are DataErrors.
    """
    if isinstance(source, pd.DataFrame):
        raw = source.copy()
    elif isinstance(source, (str, os.PathLike)):
        raw = read_table(source)
    else:
        raise ConfigError(f"customer table source must be a .csv/.parquet path or a DataFrame, got {source!r}")
    mapping = dict(columns or {})
    for new, src in mapping.items():
        if src not in raw.columns:
            raise SchemaError(table, src if new == src else f"{new} (source column {src!r})",
                              f"mapped source column missing; available columns: {[str(c) for c in raw.columns]}")
    raw = raw.rename(columns={src: new for new, src in mapping.items()})
    if raw.columns.duplicated().any():
        dup = raw.columns[raw.columns.duplicated()][0]
        raise SchemaError(table, str(dup), "column name appears twice after renaming (check `columns`)")
    source_of = {new: src for new, src in mapping.items()}

    def label_of(name: str) -> str:
        src = source_of.get(name, name)
        return name if src == name else f"{name} (source column {src!r})"

    if label is not None:
        if label == id_column:
            raise ConfigError(f"label and id_column are the same column {label!r}")
        if label not in raw.columns:
            raise SchemaError(table, label_of(label),
                              f"label column missing; available columns: {[str(c) for c in raw.columns]}")
    frame = validate_customers(raw, id_column=id_column, table=table, id_label=label_of(id_column))
    index = pd.Index(frame[id_column], name=id_column)
    frame.index = index
    y = None
    if label is not None:
        y = parse_binary_label(frame[label], table=table, column=label_of(label), require_both_classes=True)
        y.name = label
    features = frame.drop(columns=[id_column] + ([label] if label is not None else []))
    if features.shape[1] == 0:
        raise SchemaError(table, "*", "no feature columns besides the id and label columns")
    X = coerce_date_text(coerce_numeric_text(features))
    for col in X.columns:
        s = X[col]
        if pd.api.types.is_bool_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
            continue
        if pd.api.types.is_numeric_dtype(s.dtype):
            X[col] = s.to_numpy(dtype="float64", na_value=np.nan)
        elif pd.api.types.is_string_dtype(s.dtype) or pd.api.types.is_object_dtype(s.dtype):
            text = s.astype("string")
            X[col] = text.mask(text.str.strip() == "")
    return X, y
