"""The policies of transaction exports (an invoice-line file such as the public Online Retail one), applied to
a raw log as its `data` section configures them, between parsing and the returns policy.

The steps, in order (each sees what the one before left; `Preparation` counts what each found):
  1. missing customer ids (`data.missing_ids`): NaN, None or blank ids (guest checkouts) are an error, or the
     rows are dropped with a warning giving the count and the share;
  2. parsing into the contract (`custval.data.schemas.parse_transactions`; amount = quantity x unit_price when
     the log has no amount column);
  3. duplicates (`data.duplicates`): rows identical in every column to an earlier row;
  4. cancellations (`data.cancellations`): a line whose order id starts with the prefix (default "C") and whose
     amount is negative cancels the latest earlier line of the same customer, product and quantity that is not
     cancelled yet (`match_cancellations`); both are removed. A cancellation that matches no line (its sale lies
     before the log starts, or only part of it was cancelled) is a return under `data.returns`;
  5. prices (`data.prices`): lines whose unit_price is zero (free samples) or negative (adjustments) are
     dropped with a warning, kept, or an error;
  6. returns (`data.returns`): the negative amounts left, unmatched cancellations among them;
  7. categories (`data.categories`): a product -> category file joined on the product column; products missing
     from it get the category <NA> with a warning (or an error).

`prepare_log(..., strict=False)` is what `custval inspect` runs: nothing is raised or warned for the policies,
an "error" policy acts as its lenient alternative (drop, exclude, warn) so that the later counts are
meaningful, and the counts are all reported.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from custval.data.schemas import (
    TRANSACTIONS,
    amount_from_lines,
    amount_label,
    apply_duplicates,
    apply_returns,
    as_text,
    duplicate_rows,
    parse_transactions,
    source_columns,
    warn_future,
)
from custval.errors import ConfigError, CustvalWarning, DataError, SchemaError, shown

__all__ = ["COLUMNS_ATTR", "COLUMN_ORDER", "PREPARATION_ATTR", "SOURCE_ATTR", "Preparation", "PreparedLog",
           "cancellation_mask", "map_categories", "match_cancellations", "missing_id_mask", "prepare_log",
           "price_masks", "used_columns"]

# Columns of a prepared log, in this order when present.
COLUMN_ORDER = (*TRANSACTIONS.names, "product", "unit_price")
# Where a prepared log carries its `Preparation` (a dict of plain numbers) and the source columns each of its
# columns came from (`used_columns`): `frame.attrs[PREPARATION_ATTR]`, `frame.attrs[COLUMNS_ATTR]`.
PREPARATION_ATTR = "custval.preparation"
COLUMNS_ATTR = "custval.columns"
SOURCE_ATTR = "custval.source"  # set by custval.data.loaders.load_log: the data.source read
# The lenient alternative of each "error" policy, used by strict=False (custval inspect).
_LENIENT = {"missing_ids": "drop", "duplicates": "drop", "prices": "drop", "returns": "exclude", "unmapped": "warn"}


@dataclass
class Preparation:
    """What preparing a log found, in rows, step by step (module docstring). None: the step did not apply
    (no product file, cancellations not matched)."""

    rows: int  # rows read
    missing_ids: int = 0
    duplicates: int = 0
    cancellations: int = 0  # cancellation lines (prefixed order id, negative amount)
    matched: int | None = None  # cancellations removed with the line each cancels (2 rows each)
    unmatched: int | None = None  # cancellations that matched no earlier line: returns
    zero_prices: int = 0
    negative_prices: int = 0
    returns: int = 0  # negative amounts seen by the returns policy (unmatched cancellations included)
    returns_removed: int = 0  # rows the returns policy removed
    unmapped: int | None = None  # rows whose product is not in the categories file
    unmapped_products: int | None = None
    kept: int = 0  # rows of the prepared log

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, int | None]) -> Preparation:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass
class PreparedLog:
    """A log in the contract after the export policies, and what they found."""

    log: pd.DataFrame
    preparation: Preparation


# ------------------------------------------------------------------------------------------------ steps
def missing_id_mask(ids: pd.Series) -> np.ndarray:
    """True where a customer id is missing: NaN, None or text made only of white space."""
    missing = ids.isna().to_numpy(dtype=bool)
    if pd.api.types.is_string_dtype(ids.dtype) or pd.api.types.is_object_dtype(ids.dtype):
        blank = ids.astype("str").str.strip() == ""
        missing = missing | blank.fillna(False).to_numpy(dtype=bool)
    return missing


def cancellation_mask(log: pd.DataFrame, order_ids: pd.Series, prefix: str) -> np.ndarray:
    """Rows whose order id (aligned with `log`) starts with `prefix` and whose amount is negative."""
    marked = as_text(order_ids).str.startswith(prefix).fillna(False).to_numpy(dtype=bool)
    return marked & (log["amount"].to_numpy() < 0)


def _match_keys(log: pd.DataFrame) -> np.ndarray:
    """One integer per row: customer, product and quantity (amount instead of product when there is none)."""
    parts = {"customer_id": log["customer_id"].to_numpy()}
    if "product" in log.columns:
        parts["product"] = log["product"].to_numpy()
    if "quantity" in log.columns:
        parts["quantity"] = np.abs(log["quantity"].to_numpy(dtype="float64"))
    if "product" not in log.columns:
        parts["amount"] = np.abs(log["amount"].to_numpy())
    frame = pd.DataFrame(parts)
    return frame.groupby(list(parts), dropna=False, sort=False).ngroup().to_numpy()


def match_cancellations(log: pd.DataFrame, cancellation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row positions of the cancellations that match, row positions of the lines they cancel), pairwise.

    A cancellation cancels the latest line at or before its time (a sale: not a cancellation, amount >= 0) with
    the same customer, product and quantity (without a product column: the same amount) that no earlier
    cancellation took. Only rows sharing a key with some cancellation are visited, in (key, time) order with a
    sale before a cancellation of the same instant.
    """
    cancellation = np.asarray(cancellation, dtype=bool)
    if not cancellation.any():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    key = _match_keys(log)
    sale = ~cancellation & (log["amount"].to_numpy() >= 0)
    rows = np.flatnonzero(np.isin(key, key[cancellation]) & (sale | cancellation))
    ts = log["timestamp"].to_numpy().view("int64")[rows]
    rows = rows[np.lexsort((rows, cancellation[rows], ts, key[rows]))]
    cancels, cancelled = [], []
    stack: list[int] = []
    current = None
    for row, k, is_cancel in zip(rows.tolist(), key[rows].tolist(), cancellation[rows].tolist(), strict=True):
        if k != current:
            stack, current = [], k
        if not is_cancel:
            stack.append(row)
        elif stack:
            cancels.append(row)
            cancelled.append(stack.pop())
    return np.asarray(cancels, dtype=np.int64), np.asarray(cancelled, dtype=np.int64)


def price_masks(log: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(zero unit price, negative unit price) per row; both all False without a unit_price column."""
    if "unit_price" not in log.columns:
        none = np.zeros(len(log), dtype=bool)
        return none, none
    price = log["unit_price"].to_numpy()
    return price == 0, price < 0


def map_categories(products: pd.Series, master: pd.DataFrame, *, product: str, category: str,
                   source: str = "data.categories.file") -> tuple[pd.Series, np.ndarray]:
    """(category per row as "string" with <NA> where unmapped, unmapped mask) for the log's `products`, from a
    product master with columns `product` and `category` (`source` names it in errors)."""
    for col in (product, category):
        if col not in master.columns:
            raise SchemaError(source, col, f"column missing; available columns: {[str(c) for c in master.columns]}"
                                           " (set data.categories.product / data.categories.category)")
    table = pd.DataFrame({"product": as_text(master[product]), "category": master[category].astype("string")})
    table = table[table["product"].notna()].drop_duplicates()
    repeated = table["product"].duplicated(keep=False).to_numpy()
    if repeated.any():
        code = table["product"].iloc[int(np.flatnonzero(repeated)[0])]
        both = table.loc[table["product"] == code, "category"].tolist()
        raise DataError(source, product, f"a product must have one category; {int(table['product'].duplicated().sum())} "
                                         f"products have several", f"{code!r}: {both}")
    position = pd.Index(table["product"]).get_indexer(as_text(products))
    values = table["category"].array.take(position, allow_fill=True)
    return pd.Series(values, index=products.index, dtype="string"), position < 0


# ----------------------------------------------------------------------------------------------- driver
def _share(n: int, of: int) -> str:
    return f"{n / of:.1%}" if of else "0%"


def _warn(message: str, strict: bool) -> None:
    if strict:
        warnings.warn(message, CustvalWarning, stacklevel=4)


def prepare_log(raw: pd.DataFrame, data, *, categories: pd.DataFrame | None = None, table: str = "transactions",
                default_duplicates: str = "error", strict: bool = True) -> PreparedLog:
    """Apply the `data` section's policies (module docstring) to a raw log; return the log in the contract
    (columns in `COLUMN_ORDER`, fresh RangeIndex, input row order) and the `Preparation`.

    `data`: a `custval.config.DataConfig` (columns, missing_ids, timestamp_format, duplicates, cancellations,
    prices, returns, categories). `categories`: the product master read from data.categories.file.
    `default_duplicates` applies when data.duplicates is null. strict=False: nothing is raised or warned for a
    policy (see the module docstring); errors of the contract itself (a missing column, an unparseable value)
    are raised either way.
    """
    def policy(name: str, value: str) -> str:
        return value if strict or value != "error" else _LENIENT[name]

    columns = dict(data.columns or {})
    src = source_columns(raw, columns, table=table)
    if len(raw) == 0:
        raise DataError(table, "*", "table is empty (no rows)")
    report = Preparation(rows=len(raw))
    raw = raw.reset_index(drop=True)
    id_label = _label("customer_id", src)

    # 1. missing ids
    missing = missing_id_mask(raw[src["customer_id"]])
    report.missing_ids = int(missing.sum())
    if missing.any():
        if policy("missing_ids", data.missing_ids) == "error":
            i = int(np.flatnonzero(missing)[0])
            raise DataError(table, id_label, f"{report.missing_ids:,} rows ({_share(report.missing_ids, len(raw))}) "
                                             "have no customer id: set data.missing_ids: drop to leave them out",
                            f"row {i}: {shown(raw[src['customer_id']].iloc[i])}")
        _warn(f"{table}: dropped {report.missing_ids:,} rows without a customer id "
              f"({_share(report.missing_ids, len(raw))} of {len(raw):,} rows; data.missing_ids=drop)", strict)
        raw = raw.loc[~missing].reset_index(drop=True)
        if len(raw) == 0:
            raise DataError(table, id_label, "every row lacks a customer id")

    # 2. parse, 3. duplicates
    log = parse_transactions(raw, columns=columns, table=table, timestamp_format=data.timestamp_format)
    dup = duplicate_rows(log, raw, columns)
    report.duplicates = int(dup.sum())
    log = apply_duplicates(log, dup, policy("duplicates", data.duplicates or default_duplicates), table=table,
                           warn=strict)

    # 4. cancellations
    log = _cancellations(log, raw, src, data, report, table, strict)

    # 5. prices
    zero, negative = price_masks(log)
    report.zero_prices, report.negative_prices = int(zero.sum()), int(negative.sum())
    bad = zero | negative
    if bad.any():
        how = policy("prices", data.prices)
        counts = (f"{report.zero_prices:,} lines with a zero unit price and {report.negative_prices:,} with a "
                  f"negative one ({_share(int(bad.sum()), report.rows)} of the rows read")
        if how == "error":
            raise DataError(table, _label("unit_price", src), f"must be positive; found {counts}): set data.prices: "
                            "drop (or keep)", _row(log, bad))
        if how == "drop":
            _warn(f"{table}: dropped {counts}; data.prices=drop)", strict)
            log = log.loc[~bad]

    # 6. returns
    returns = policy("returns", data.returns)
    report.returns = int((log["amount"].to_numpy() < 0).sum())
    before = len(log)
    with warnings.catch_warnings():
        if not strict:
            warnings.simplefilter("ignore", CustvalWarning)
        log = apply_returns(log, returns, table=table, label=amount_label(columns, raw))
    report.returns_removed = before - len(log)

    # 7. categories
    if data.categories.file is not None:
        log = _categories(log, categories, src, data, report, table, policy("unmapped", data.categories.unmapped),
                          strict)

    log = log[[c for c in COLUMN_ORDER if c in log.columns]].reset_index(drop=True)
    report.kept = len(log)
    if strict:
        if len(log) == 0:
            raise DataError(table, "amount", f"no purchases left: the {report.rows} rows read were all removed "
                            f"(returns='{data.returns}' drops negative amounts: are purchases recorded as positive "
                            "amounts, and is data.columns.amount the sale value?)", f"{report.rows} rows")
        warn_future(log, table, _label("timestamp", src))
    log.attrs[PREPARATION_ATTR] = report.as_dict()
    log.attrs[COLUMNS_ATTR] = used_columns(log, raw, src, data)
    return PreparedLog(log, report)


def used_columns(log: pd.DataFrame, raw: pd.DataFrame, src: Mapping[str, str], data) -> dict[str, str]:
    """Where each column of a prepared log came from: {name: source column, "Quantity x UnitPrice" or the
    categories file}."""
    used = {name: src[name] for name in log.columns if name in src and src[name] in raw.columns}
    if amount_from_lines(raw, src):
        used["amount"] = f"{src['quantity']} x {src['unit_price']}"
    if data.categories.file is not None:
        used["category"] = f"{data.categories.file} ({data.categories.category})"
    return used


def _label(name: str, src: Mapping[str, str]) -> str:
    return name if src[name] == name else f"{name} (source column {src[name]!r})"


def _row(log: pd.DataFrame, mask: np.ndarray) -> dict:
    row = log.iloc[int(np.flatnonzero(mask)[0])]
    return {k: str(v) if isinstance(v, pd.Timestamp) else v.item() if hasattr(v, "item") else v
            for k, v in row.items()}


def _cancellations(log, raw, src, data, report: Preparation, table: str, strict: bool) -> pd.DataFrame:
    settings = data.cancellations
    column = settings.column or src["order_id"]
    if column not in raw.columns:
        if settings.column is not None:
            raise SchemaError(table, column, "data.cancellations.column: column missing; available columns: "
                                             f"{[str(c) for c in raw.columns]}")
        return log
    cancellation = cancellation_mask(log, raw[column].iloc[log.index.to_numpy()].reset_index(drop=True),
                                     settings.prefix)
    report.cancellations = int(cancellation.sum())
    if not cancellation.any() or settings.policy == "returns":
        return log
    cancels, cancelled = match_cancellations(log.reset_index(drop=True), cancellation)
    report.matched, report.unmatched = len(cancels), report.cancellations - len(cancels)
    _warn(f"{table}: {report.cancellations:,} cancellation lines (order id starting with {settings.prefix!r}): "
          f"{report.matched:,} removed together with the line each cancels (same customer, product and quantity; "
          f"{_share(2 * report.matched, report.rows)} of the rows read), {report.unmatched:,} matched no earlier "
          f"line and are returns (data.returns={data.returns})", strict)
    keep = np.ones(len(log), dtype=bool)
    keep[cancels] = False
    keep[cancelled] = False
    return log.loc[keep]


def _categories(log, master, src, data, report: Preparation, table: str, unmapped: str, strict: bool):
    settings = data.categories
    if master is None:
        raise ConfigError("data.categories.file is set but its product master was not read (read it with "
                          "custval.data.loaders.read_categories and pass it as `categories`)")
    if "product" not in log.columns:
        raise SchemaError(table, _label("product", src), "data.categories.file needs the log's product column: map "
                                                         "data.columns.product (e.g. product: StockCode)")
    if "category" in log.columns:
        raise SchemaError(table, _label("category", src), "the log has a category column and data.categories.file "
                                                          "is given: keep one of them")
    source = f"data.categories.file {str(settings.file)!r}"
    category, missing = map_categories(log["product"], master, product=settings.product or src["product"],
                                       category=settings.category, source=source)
    report.unmapped = int(missing.sum())
    report.unmapped_products = int(log["product"][missing].nunique(dropna=False))
    if missing.any():
        counts = (f"{report.unmapped_products:,} of {log['product'].nunique(dropna=False):,} products "
                  f"({_share(report.unmapped, len(log))} of the rows) are not in {source}")
        if unmapped == "error":
            raise DataError(table, _label("product", src), f"{counts}: add them, or set data.categories.unmapped: "
                                                           "warn (their category is then <NA>)",
                            log["product"][missing].iloc[0])
        _warn(f"{table}: {counts}; their category is <NA> (data.categories.unmapped=warn)", strict)
    return log.assign(category=category)
