"""Table contracts and their validation at the data boundary.

Everything downstream (features, models, scoring) trusts a frame that went through
`validate_transactions`: contract column names, parsed types, no missing keys. A bad input fails here
with a `SchemaError`/`DataError` naming the table, the column, the rule and an example offending value.

Timestamp rule (column `timestamp`):
  * datetime64 columns are used as they are (a time zone is dropped, keeping the local wall-clock time,
    so that "the same day" means the customer's calendar day);
  * integers (and integral floats) are read as ``yyyymmdd`` (19970101 -> 1997-01-01), as in CDNOW;
  * strings of exactly 8 digits are read as ``yyyymmdd``; any other string must be ISO 8601
    (``1997-01-01``, ``1997-01-01 13:45:00``, ``1997-01-01T13:45:00``), unless `timestamp_format`
    (a ``strptime`` format) is given. Ambiguous layouts such as ``01/02/1997`` are rejected rather than guessed.
    A UTC offset in a string (``Z``, ``+05:00``) is dropped the same way, keeping each value's own wall-clock
    time even when rows carry different offsets (never converted to UTC).
Parsed timestamps are ``datetime64[ns]``.

Returns policy (negative `amount` = a return), argument `returns`:
  * ``"exclude"`` (default): return rows are dropped, so they never count as purchases; a
    `CustvalWarning` reports how many rows and their total value;
  * ``"net"``: a return is netted into the customer's total of the same calendar day; a customer-day that
    contains a return and whose net total is <= 0 (up to rounding) is not a purchase and all its rows are
    dropped; the other rows, including the return rows of a positive day, are kept, so that the day's sum
    (what RFM uses) is the net value;
  * ``"error"``: any negative amount raises a `DataError` with an example.
Zero amounts are valid purchases under every policy.

Duplicates policy (rows identical in every column of the input), argument `duplicates`:
  ``"error"`` (default) raises with an example row, ``"drop"`` keeps the first of each group,
  ``"keep"`` leaves them (CDNOW-like logs without order ids legitimately repeat rows).

Invoice-line exports: without an amount column, `amount` is `quantity` x `unit_price` (both mapped in
`columns`); `product` and `unit_price` are kept beside the contract columns (`LINE_COLUMNS`). The steps
(`parse_transactions`, `duplicate_rows` + `apply_duplicates`, `apply_returns`) are public so that
`custval.data.prepare` can apply the export policies between them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.util import hash_array

from custval import units
from custval.config.types import DUPLICATES_POLICIES, RETURNS_POLICIES
from custval.errors import ConfigError, CustvalWarning, DataError, SchemaError, shown

__all__ = [
    "CAMPAIGNS",
    "CUSTOMERS",
    "DUPLICATES_POLICIES",
    "LINE_COLUMNS",
    "LINE_NAMES",
    "MAPPABLE",
    "RETURNS_POLICIES",
    "SCHEMAS",
    "TRANSACTIONS",
    "ColumnSpec",
    "TableSchema",
    "amount_from_lines",
    "amount_label",
    "apply_duplicates",
    "apply_returns",
    "as_text",
    "check_cutoff",
    "coerce_date_text",
    "coerce_numeric_text",
    "duplicate_rows",
    "parse_binary_label",
    "parse_customer_ids",
    "parse_date",
    "parse_timestamps",
    "parse_transactions",
    "source_columns",
    "validate_customers",
    "validate_transactions",
    "warn_future",
]



@dataclass(frozen=True)
class ColumnSpec:
    """One column of a table contract."""

    name: str
    dtype: str
    required: bool
    description: str


@dataclass(frozen=True)
class TableSchema:
    """A table contract: its name and columns, for documentation and error messages."""

    name: str
    columns: tuple[ColumnSpec, ...]
    description: str = ""

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.required)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def describe(self) -> str:
        """Plain-text description, one line per column."""
        lines = [f"{self.name}: {self.description}".rstrip(": ")]
        for c in self.columns:
            need = "required" if c.required else "optional"
            lines.append(f"  {c.name:<12} {c.dtype:<18} {need:<8} {c.description}")
        return "\n".join(lines)


TRANSACTIONS = TableSchema(
    "transactions",
    (
        ColumnSpec("customer_id", "int or str", True, "customer key; never missing or empty"),
        ColumnSpec("timestamp", "datetime64[ns]", True, "time of the sale (datetime, yyyymmdd int, ISO 8601 str)"),
        ColumnSpec("amount", "float64", True, "sale value; negative = return (see `returns` policy)"),
        ColumnSpec("order_id", "int or str", False, "order key"),
        ColumnSpec("category", "str", False, "product category"),
        ColumnSpec("quantity", "numeric", False, "number of items"),
    ),
    "one row per sale line",
)

CUSTOMERS = TableSchema(
    "customers",
    (
        ColumnSpec("customer_id", "int or str", True, "customer key, unique"),
        ColumnSpec("signup_date", "datetime64[ns]", False, "date the customer joined"),
    ),
    "one row per customer; any further numeric or categorical attributes are allowed",
)

CAMPAIGNS = TableSchema(
    "campaigns",
    (
        ColumnSpec("customer_id", "int or str", True, "customer key"),
        ColumnSpec("campaign_id", "int or str", True, "campaign key"),
        ColumnSpec("treatment", "0/1 or str", True, "1 = treated, 0 = control, or an arm name"),
        ColumnSpec("sent_at", "datetime64[ns]", True, "time the campaign was sent"),
        ColumnSpec("outcome", "numeric", False, "observed outcome; else taken from transactions in "
                   "[sent_at, sent_at + response_days)"),
    ),
    "one row per customer and campaign",
)

SCHEMAS = {s.name: s for s in (TRANSACTIONS, CUSTOMERS, CAMPAIGNS)}

# Columns of an invoice-line export beside the contract: mappable in data.columns, kept in the log when present.
LINE_COLUMNS = (
    ColumnSpec("product", "str", False, "product code (e.g. a stock code): cancellations match on it and "
               "data.categories maps it to a category"),
    ColumnSpec("unit_price", "float64", False, "price of one item: amount = quantity x unit_price when the log "
               "has no amount column"),
)
LINE_NAMES = tuple(c.name for c in LINE_COLUMNS)
MAPPABLE = TRANSACTIONS.names + LINE_NAMES  # the keys data.columns accepts

_YYYYMMDD = re.compile(r"^\d{8}$")
_TIMESTAMP_RULE = (
    "must be a datetime, an integer yyyymmdd, or an ISO 8601 string (YYYY-MM-DD[ HH:MM[:SS]]); "
    "for other layouts set data.timestamp_format (timestamp_format=), a strptime format such as '%m/%d/%Y %H:%M'"
)


# ----------------------------------------------------------------------------------------------- helpers
def _label(name: str, src: str) -> str:
    """Column label for messages: the contract name, plus the user's source column when it differs."""
    return name if src == name else f"{name} (source column {src!r})"


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _example(s: pd.Series, mask: np.ndarray) -> str:
    """'row <label>: <value>' for the first True of mask."""
    i = _first(mask)
    return f"row {shown(s.index[i])}: {shown(s.iloc[i])}"


def _is_string_like(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s.dtype) or pd.api.types.is_object_dtype(s.dtype)


def _parse_customer_id(s: pd.Series, table: str, label: str) -> pd.Series:
    """int64 or str ids; NaN/None/empty ids are errors."""
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise DataError(table, label, "must be an integer or a string, not boolean", s.iloc[0])
    if pd.api.types.is_integer_dtype(dtype):
        if s.hasnans:
            raise DataError(table, label, "missing customer id (NaN)", _example(s, s.isna().to_numpy()))
        return s.astype("int64")
    if pd.api.types.is_float_dtype(dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        bad = np.isnan(v)
        if bad.any():
            raise DataError(table, label, "missing customer id (NaN)", _example(s, bad))
        frac = v != np.floor(v)
        if frac.any():
            raise DataError(table, label, "must be an integer or a string; got a non-integral number",
                            _example(s, frac))
        return pd.Series(v.astype("int64"), index=s.index)
    if _is_string_like(s):
        if pd.api.types.is_object_dtype(dtype):
            kind = pd.api.types.infer_dtype(s, skipna=True)
            if kind == "integer" and not s.hasnans:
                return s.astype("int64")
        missing = s.isna().to_numpy()
        if missing.any():
            raise DataError(table, label, "missing customer id (NaN/None)", _example(s, missing))
        s = s.astype("str")
        empty = (s.str.strip() == "").to_numpy(dtype=bool)
        if empty.any():
            raise DataError(table, label, "empty customer id", _example(s, empty))
        return s
    raise DataError(table, label, f"must be an integer or a string, got dtype {dtype}", s.iloc[0])


def _parse_amount(s: pd.Series, table: str, label: str, column: str = "amount") -> pd.Series:
    """float64 amounts; non-numeric, NaN and infinite values are errors."""
    if pd.api.types.is_bool_dtype(s.dtype):
        raise DataError(table, label, f"{column} must be numeric, not boolean", s.iloc[0])
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
    else:
        num = pd.to_numeric(s, errors="coerce")
        bad = (num.isna() & s.notna()).to_numpy(dtype=bool)
        if bad.any():
            i = _first(bad)
            raise DataError(table, label, "must be numeric", s.iloc[i])
        v = num.to_numpy(dtype="float64", na_value=np.nan)
    nan = np.isnan(v)
    if nan.any():
        raise DataError(table, label, "missing value (NaN)", f"row {s.index[_first(nan)]!r}")
    inf = np.isinf(v)
    if inf.any():
        raise DataError(table, label, "must be finite", _example(s, inf))
    return pd.Series(v, index=s.index)


def _to_ns_naive(values) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    return idx.as_unit("ns")


# a trailing UTC offset ("Z", "+05:00", "-0500", "+05") after an ISO time of day; group "wall" is the rest
_ISO_OFFSET = re.compile(
    r"^(?P<wall>.*[T ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?)\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
)


def _parse_keeping_wall_clock(text: pd.Series, fmt: str) -> pd.Series:
    """Parse strings whose time-zone offsets differ (or are present on some values only).

    Each value keeps its own local wall-clock time (the offset is dropped, never converted to UTC),
    so a row's calendar day does not depend on the other rows. ISO strings lose their offset before a
    vectorised parse; with an explicit format each value is parsed on its own and made naive.
    """
    if fmt == "ISO8601":
        return pd.to_datetime(text.str.replace(_ISO_OFFSET, r"\g<wall>", regex=True), format=fmt,
                              errors="coerce")
    out = []
    for value in text:
        ts = pd.to_datetime(value, format=fmt, errors="coerce")
        out.append(ts.tz_localize(None) if not pd.isna(ts) and ts.tzinfo is not None else ts)
    return pd.Series(pd.DatetimeIndex(out), index=text.index)


def _parse_timestamp(s: pd.Series, table: str, label: str, fmt: str | None) -> pd.Series:
    """datetime64[ns] following the module's timestamp rule; parses each distinct value once (fast)."""
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(s.dtype):
        try:
            out = _to_ns_naive(s)
        except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as exc:
            raise DataError(table, label, f"timestamp out of range ({exc})", None) from exc
        nat = out.isna()
        if nat.any():
            raise DataError(table, label, "missing timestamp (NaT)", f"row {s.index[_first(nat)]!r}")
        return pd.Series(out, index=s.index)
    if pd.api.types.is_bool_dtype(s.dtype) or not (
        pd.api.types.is_numeric_dtype(s.dtype) or _is_string_like(s)
    ):
        raise DataError(table, label, _TIMESTAMP_RULE + f"; got dtype {s.dtype}", s.iloc[0])

    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    if (codes < 0).any():
        raise DataError(table, label, "missing timestamp (NaN/None)", f"row {s.index[_first(codes < 0)]!r}")
    uniq = pd.Series(uniques)
    if pd.api.types.is_numeric_dtype(uniq.dtype):
        v = uniq.to_numpy(dtype="float64")
        bad = (v != np.floor(v)) | (v < 10_000_101) | (v > 99_991_231)
        if bad.any():
            raise DataError(table, label, "integer timestamps must be yyyymmdd", uniq.iloc[_first(bad)])
        text = pd.Series(v.astype("int64")).astype("str")
        parsed = pd.to_datetime(text, format=fmt or "%Y%m%d", errors="coerce")
    else:
        text = uniq.astype("str").str.strip()
        if fmt is None:
            fmt = "%Y%m%d" if text.str.fullmatch(_YYYYMMDD.pattern).all() else "ISO8601"
        try:
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        except (ValueError, TypeError) as exc:  # e.g. mixed time-zone offsets
            try:
                parsed = _parse_keeping_wall_clock(text, fmt)
            except (ValueError, TypeError):
                raise DataError(table, label, _TIMESTAMP_RULE + f" ({exc})", uniq.iloc[0]) from exc
    try:
        parsed_idx = _to_ns_naive(parsed)
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as exc:
        raise DataError(table, label, f"timestamp out of range ({exc})", None) from exc
    bad = parsed_idx.isna()
    if bad.any():
        rule = _TIMESTAMP_RULE if fmt in (None, "ISO8601") else f"does not match timestamp format {fmt!r}"
        raise DataError(table, label, "unparseable timestamp: " + rule, uniq.iloc[_first(bad)])
    return pd.Series(parsed_idx.take(codes), index=s.index)


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _column_hash(s: pd.Series) -> np.ndarray:
    """uint64 hash per row of one column (equal values -> equal hashes)."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return hash_array(s.to_numpy().view("int64"))
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_extension_array_dtype(s.dtype):
        return hash_array(s.to_numpy())
    codes, _ = pd.factorize(s, use_na_sentinel=True)  # strings and the rest: hash their codes
    return hash_array(codes.astype("int64"))


def _duplicate_mask(out: pd.DataFrame, df: pd.DataFrame, used: set[str]) -> np.ndarray:
    """Rows identical in every input column to an earlier row (the first of each group is not marked).

    A combined 64-bit row hash finds candidate rows with a sort (fast for 10M rows); only those few are
    compared exactly, contract columns parsed and the other input columns as given.
    """
    h = np.zeros(len(out), dtype=np.uint64)
    for col in out.columns:
        h = (h * _MIX) ^ _column_hash(out[col])
    srt = np.sort(h)
    same = srt[1:] == srt[:-1]
    if not same.any():
        return np.zeros(len(out), dtype=bool)
    cand = np.flatnonzero(np.isin(h, srt[1:][same]))
    extras = [c for c in df.columns if c not in used]
    sub = pd.concat(
        [out.iloc[cand].reset_index(drop=True), df[extras].iloc[cand].reset_index(drop=True)], axis=1
    )
    sub.columns = range(sub.shape[1])
    try:
        d = sub.duplicated(keep="first").to_numpy()
    except TypeError:  # unhashable extras (lists, dicts): compare contract columns only
        d = sub.iloc[:, : out.shape[1]].duplicated(keep="first").to_numpy()
    full = np.zeros(len(out), dtype=bool)
    full[cand[d]] = True
    return full


def _row_example(out: pd.DataFrame, i: int) -> dict:
    row = out.iloc[i]
    return {k: (str(v) if isinstance(v, pd.Timestamp) else v.item() if hasattr(v, "item") else v)
            for k, v in row.items()}


# ----------------------------------------------------------------------------------------------- public
def source_columns(df: pd.DataFrame, columns: Mapping[str, str] | None = None, *,
                   table: str = "transactions") -> dict[str, str]:
    """{contract or line-column name: source column} for a raw log, checked: the keys of `columns` are names of
    `TRANSACTIONS` or `LINE_COLUMNS` (unmapped names default to themselves), and the required columns are in
    `df` (`amount` may instead come from `quantity` x `unit_price`)."""
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(table, "*", "must be a pandas DataFrame", type(df).__name__)
    mapping = dict(columns or {})
    unknown = sorted(set(mapping) - set(MAPPABLE))
    if unknown:
        raise ConfigError(
            f"data.columns (the columns mapping of {table!r}) has unknown contract names {unknown}: its keys are "
            f"contract names, one of {list(MAPPABLE)}, and its values your columns"
        )
    src = {name: mapping.get(name, name) for name in MAPPABLE}
    for name in TRANSACTIONS.required:
        if src[name] in df.columns:
            continue
        if name == "amount" and src["quantity"] in df.columns and src["unit_price"] in df.columns:
            continue  # amount = quantity x unit_price
        rule = "required column missing"
        if name == "amount":
            rule += " (or map data.columns.quantity and data.columns.unit_price to derive it)"
        raise SchemaError(table, _label(name, src[name]),
                          f"{rule}; available columns: {[str(c) for c in df.columns]}")
    return src


def amount_from_lines(df: pd.DataFrame, src: Mapping[str, str]) -> bool:
    """Whether the amount of `df` is derived as quantity x unit_price (no amount column, both line columns)."""
    return src["amount"] not in df.columns and src["quantity"] in df.columns and src["unit_price"] in df.columns


def _parse_quantity(col: pd.Series, table: str, label: str) -> pd.Series:
    if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        num = pd.to_numeric(col, errors="coerce")
        bad = (num.isna() & col.notna()).to_numpy(dtype=bool)
        if bad.any() or pd.api.types.is_bool_dtype(col.dtype):
            raise DataError(table, label, "must be numeric", col.iloc[_first(bad) if bad.any() else 0])
        col = num
    return col.copy()


def as_text(col: pd.Series) -> pd.Series:
    """Keys such as product codes as text ("str" dtype, missing kept): 21730 and 21730.0 both become "21730",
    so a code read as a number in one file and as text in another still joins."""
    if pd.api.types.is_float_dtype(col.dtype):
        v = col.to_numpy(dtype="float64", na_value=np.nan)
        if np.all(np.isnan(v) | (v == np.floor(v))):
            col = col.astype("Int64")
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.astype("str").where(col.notna())
    return col.astype("str")


def parse_transactions(
    df: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    table: str = "transactions",
    timestamp_format: str | None = None,
) -> pd.DataFrame:
    """A raw log parsed into the contract, no policy applied (every row kept, index = row positions in `df`).

    Output columns: customer_id (int64 or str), timestamp (datetime64[ns]), amount (float64; quantity x
    unit_price when `amount_from_lines`), then order_id, category, quantity, product (text), unit_price (float64)
    when present. See the module docstring for the timestamp rule.
    """
    src = source_columns(df, columns, table=table)
    if len(df) == 0:
        raise DataError(table, "*", "table is empty (no rows)")
    df = df.reset_index(drop=True)
    labels = {n: _label(n, src[n]) for n in MAPPABLE}
    data = {
        "customer_id": _parse_customer_id(df[src["customer_id"]], table, labels["customer_id"]),
        "timestamp": _parse_timestamp(df[src["timestamp"]], table, labels["timestamp"], timestamp_format),
    }
    optional = {}
    for name in (*TRANSACTIONS.optional, *LINE_NAMES):
        if src[name] not in df.columns:
            continue
        col = df[src[name]]
        if name == "quantity":
            col = _parse_quantity(col, table, labels[name])
        elif name == "unit_price":
            col = _parse_amount(col, table, labels[name], column="unit_price")
        elif name == "product":
            col = as_text(col)
        elif pd.api.types.is_object_dtype(col.dtype) and pd.api.types.infer_dtype(col, skipna=True) == "string":
            col = col.astype("str")
        optional[name] = col.copy()
    if amount_from_lines(df, src):
        data["amount"] = pd.Series(optional["quantity"].to_numpy(dtype="float64") * optional["unit_price"].to_numpy(),
                                   index=df.index)
    else:
        data["amount"] = _parse_amount(df[src["amount"]], table, labels["amount"])
    out = pd.DataFrame({**data, **optional})
    out.index = pd.RangeIndex(len(out))
    return out


def duplicate_rows(out: pd.DataFrame, df: pd.DataFrame, columns: Mapping[str, str] | None = None) -> np.ndarray:
    """Rows of the parsed log `out` identical in every input column of `df` to an earlier row (the first of each
    group is not marked): the contract columns compared as parsed, the other columns of `df` as given.
    `out.index` holds the row positions in `df` (as `parse_transactions` returns them)."""
    src = {name: dict(columns or {}).get(name, name) for name in MAPPABLE}
    used = {src[name] for name in out.columns if name in src} | ({src["quantity"], src["unit_price"]}
                                                                 if amount_from_lines(df, src) else set())
    return _duplicate_mask(out.reset_index(drop=True), df.iloc[out.index.to_numpy()].reset_index(drop=True), used)


def apply_duplicates(out: pd.DataFrame, dup: np.ndarray, policy: str, *, table: str = "transactions",
                     warn: bool = False) -> pd.DataFrame:
    """The duplicates policy on a parsed log given its `duplicate_rows`: error | drop (with a warning when
    `warn`) | keep."""
    if policy == "keep" or not dup.any():
        return out
    if policy == "error":
        raise DataError(
            table, "*",
            f"{int(dup.sum())} rows are identical in every column to an earlier row. "
            "CDNOW-like logs without order ids may legitimately repeat rows: set data.duplicates: keep "
            "(duplicates='keep'), or drop to remove the repeats",
            _row_example(out, _first(dup)),
        )
    if warn:
        warnings.warn(f"{table}: dropped {int(dup.sum()):,} rows identical in every column to an earlier row "
                      f"({dup.mean():.1%} of {len(dup):,}; data.duplicates=drop)", CustvalWarning, stacklevel=3)
    return out.loc[~dup]


def apply_returns(out: pd.DataFrame, returns: str, *, table: str = "transactions",
                  label: str = "amount") -> pd.DataFrame:
    """The returns policy (module docstring) on a parsed log: exclude (with a warning) | net | error.
    `label` names the amount column in messages."""
    amount = out["amount"].to_numpy()
    neg = amount < 0
    if not neg.any():
        return out
    if returns == "error":
        i = _first(neg)
        raise DataError(
            table, label,
            f"negative amounts (returns) are not allowed with returns='error' ({int(neg.sum())} rows); "
            "set data.returns (returns=) to exclude or net",
            _row_example(out, i)["amount"],
        )
    if returns == "exclude":
        warnings.warn(
            f"{table}: excluded {int(neg.sum())} return rows (negative amount, total "
            f"{float(amount[neg].sum()):.2f}) from purchase counting (returns='exclude')",
            CustvalWarning,
            stacklevel=3,
        )
        return out.loc[~neg]
    return out.loc[~_non_positive_net_days(out)]


def amount_label(columns: Mapping[str, str] | None, df: pd.DataFrame) -> str:
    """How messages name the amount column of a raw log: its source column, or quantity x unit_price."""
    src = {name: dict(columns or {}).get(name, name) for name in MAPPABLE}
    if amount_from_lines(df, src):
        return f"amount ({src['quantity']!r} x {src['unit_price']!r})"
    return _label("amount", src["amount"])


def validate_transactions(
    df: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    returns: str = "exclude",
    duplicates: str = "error",
    table: str = "transactions",
    timestamp_format: str | None = None,
) -> pd.DataFrame:
    """Check a raw transaction log against the contract and return a NEW frame in it.

    `columns` maps contract names to source columns ({"customer_id": "cust", "amount": "dollar_value"});
    unmapped names default to themselves. Output columns: customer_id (int64 or str), timestamp
    (datetime64[ns]), amount (float64), then order_id, category, quantity, product, unit_price when present;
    fresh RangeIndex, input row order. See the module docstring for the timestamp rule and the
    `returns`/`duplicates` policies. Vectorised throughout (10M rows validate in a few seconds). The policies
    of exports (missing ids, cancellations, prices, categories) are `custval.data.prepare`'s.
    """
    if returns not in RETURNS_POLICIES:
        raise ConfigError(f"returns must be one of {RETURNS_POLICIES}, got {returns!r}")
    if duplicates not in DUPLICATES_POLICIES:
        raise ConfigError(f"duplicates must be one of {DUPLICATES_POLICIES}, got {duplicates!r}")
    out = parse_transactions(df, columns=columns, table=table, timestamp_format=timestamp_format)
    if duplicates != "keep":
        out = apply_duplicates(out, duplicate_rows(out, df, columns), duplicates, table=table)
    out = apply_returns(out, returns, table=table, label=amount_label(columns, df))
    out = out.reset_index(drop=True)
    warn_future(out, table, _label("timestamp", dict(columns or {}).get("timestamp", "timestamp")))
    return out


def warn_future(out: pd.DataFrame, table: str, label: str) -> None:
    """A warning when transactions lie after today: a wrong date layout or a test file, rarely intended."""
    if len(out) == 0:
        return
    tomorrow = pd.Timestamp.now().normalize() + pd.Timedelta(days=1)
    late = out["timestamp"].to_numpy() >= tomorrow.to_datetime64()
    if late.any():
        warnings.warn(f"{table}.{label}: {int(late.sum())} rows lie after today (latest "
                      f"{out['timestamp'].max()}); check the dates (data.timestamp_format) or the source",
                      CustvalWarning, stacklevel=3)


def parse_customer_ids(values: pd.Series, *, table: str = "transactions", label: str = "customer_id") -> pd.Series:
    """One id column parsed as for transactions (int64 or str; DataError on a missing, empty or fractional id)."""
    return _parse_customer_id(values, table, label)


def parse_timestamps(values: pd.Series, timestamp_format: str | None = None, *, table: str = "transactions",
                     label: str = "timestamp") -> pd.Series:
    """One column parsed by the timestamp rule of the module docstring (datetime64[ns]; DataError if it fails)."""
    return _parse_timestamp(values, table, label, timestamp_format)


def _non_positive_net_days(out: pd.DataFrame) -> np.ndarray:
    """Rows of customer-days that contain a return and whose net total is <= 0 (up to rounding).
    Only customers with a return are grouped (bincount over dense customer-day codes)."""
    amount = out["amount"].to_numpy()
    neg = amount < 0
    cust, _ = pd.factorize(out["customer_id"])
    has_return = np.zeros(int(cust.max()) + 1, dtype=bool)
    has_return[cust[neg]] = True
    rows = np.flatnonzero(has_return[cust])
    day = out["timestamp"].to_numpy()[rows].astype("datetime64[D]").astype("int64")
    key = cust[rows].astype("int64") * (int(day.max() - day.min()) + 1) + (day - day.min())
    grp, uniq = pd.factorize(key)
    n = len(uniq)
    a = amount[rows]
    net = np.bincount(grp, weights=a, minlength=n)
    scale = np.bincount(grp, weights=np.abs(a), minlength=n)
    group_has_return = np.bincount(grp, weights=neg[rows], minlength=n) > 0
    drop_group = group_has_return & (net <= 1e-9 * scale)
    mask = np.zeros(len(out), dtype=bool)
    mask[rows] = drop_group[grp]
    return mask


def check_cutoff(transactions: pd.DataFrame, cutoff, *, name: str = "observation_end") -> pd.Timestamp:
    """Parse a cutoff date and check it is not before the day of the first transaction.

    Accepts a Timestamp/datetime/date, an ISO 8601 string or an int/str yyyymmdd. The time of day is kept
    in the result; the comparison is by calendar day (a cutoff is the last day included). A time zone is
    dropped (wall-clock time kept), as in `validate_transactions`.
    """
    ts = parse_date(cutoff, name)
    if "timestamp" not in transactions.columns:
        raise SchemaError("transactions", "timestamp", "required column missing; validate_transactions first")
    if len(transactions) == 0:
        raise DataError("transactions", "*", "table is empty (no rows)")
    first = pd.Timestamp(transactions["timestamp"].min())
    if first.tzinfo is not None:
        first = first.tz_localize(None)
    if ts.normalize() < first.normalize():
        raise DataError(
            "transactions", name,
            f"cutoff is before the first transaction ({first.date()}); nothing would be observed",
            str(cutoff),
        )
    return ts


def parse_date(cutoff, name: str) -> pd.Timestamp:
    """`custval.units.parse_date` (ISO 8601 or yyyymmdd, never a guessed day/month order) for dates compared
    with a table: an unparseable value is a `DataError` naming `name`."""
    try:
        return units.parse_date(cutoff, name)
    except ConfigError:
        raise DataError("transactions", name, f"unparseable date: must be {units.DATE_RULE}", cutoff) from None


# ------------------------------------------------------------------------------------- customer tables
# Plain customer tables (a telecom/bank churn export): one row per customer, an id column, any features and
# optionally a 0/1 label column written as 0/1, True/False, Yes/No, Y/N (any case, surrounding spaces).
_POSITIVE_TOKENS = frozenset({"1", "1.0", "yes", "y", "true"})
_NEGATIVE_TOKENS = frozenset({"0", "0.0", "no", "n", "false"})
_LABEL_RULE = "a binary label must be one of 1/0, yes/no, y/n, true/false (any case)"


def _blank_mask(s: pd.Series) -> np.ndarray:
    """True where a value is missing (NaN/None/<NA>) or text made only of white space."""
    missing = s.isna().to_numpy(dtype=bool)
    if _is_string_like(s):
        text = s.astype("string").str.strip()
        missing = missing | (text == "").fillna(True).to_numpy(dtype=bool)
    return missing


def parse_binary_label(
    values: pd.Series, *, table: str = "customers", column: str | None = None,
    require_both_classes: bool = False,
) -> pd.Series:
    """A label column as an int8 0/1 Series (same index and name).

    Accepts booleans, the numbers 0/1 and the tokens yes/no, y/n, true/false, 1/0 (case and surrounding
    spaces ignored). Errors (`DataError` naming the rule and an example row): a missing or blank value,
    more than two distinct values (e.g. Yes/No/Maybe), a value outside the accepted tokens, and, with
    `require_both_classes`, a label that has only one class.
    Work is done on the distinct values only, so millions of rows cost one factorize.
    """
    if not isinstance(values, pd.Series):
        values = pd.Series(values)
    label = column if column is not None else (str(values.name) if values.name is not None else "label")
    if len(values) == 0:
        raise DataError(table, label, "label column is empty (no rows)")
    blank = _blank_mask(values)
    if blank.any():
        raise DataError(table, label, "missing label (blank/NaN): every row needs a class",
                        _example(values, blank))
    if pd.api.types.is_bool_dtype(values.dtype):
        out = values.astype("int8")
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        norm = np.array([_label_token(u) for u in uniques], dtype=object)
        distinct = pd.unique(norm)
        unknown = np.array([t not in _POSITIVE_TOKENS and t not in _NEGATIVE_TOKENS for t in norm], dtype=bool)
        if len(distinct) > 2:
            shown = [uniques[int(np.flatnonzero(norm == t)[0])] for t in distinct[:5]]
            bad_code = int(np.flatnonzero(unknown)[0]) if unknown.any() else int(np.flatnonzero(norm == distinct[2])[0])
            raise DataError(
                table, label,
                f"a binary label has two classes; found {len(distinct)} distinct values "
                f"({', '.join(repr(_plain(v)) for v in shown)}{', ...' if len(distinct) > 5 else ''})",
                _example(values, codes == bad_code),
            )
        if unknown.any():
            raise DataError(table, label, f"unknown label value: {_LABEL_RULE}",
                            _example(values, codes == int(np.flatnonzero(unknown)[0])))
        positive = np.array([t in _POSITIVE_TOKENS for t in norm], dtype=bool)
        out = pd.Series(positive[codes].astype("int8"), index=values.index)
    out.name = values.name
    if require_both_classes:
        n_pos = int(out.sum())
        if n_pos == 0 or n_pos == len(out):
            raise DataError(table, label, f"label needs both classes; all {len(out)} rows are class {int(out.iloc[0])}",
                            _example(values, np.ones(len(out), dtype=bool)))
    return out


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _label_token(value) -> str:
    """Normalised text of one label value: 1, 1.0, True, ' Yes ' -> '1', '1.0', 'true', 'yes'."""
    value = _plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower()


def coerce_numeric_text(frame: pd.DataFrame, *, exclude=()) -> pd.DataFrame:
    """A copy of `frame` where each text column whose non-blank values all parse as numbers is float64.

    Blank (white-space only) and missing values become NaN, e.g. a telecom export's TotalCharges with " "
    for new customers; a numeric column with an infinite value ("inf", "1e400") is a DataError. Columns with any non-numeric text, all-blank columns, non-text columns and the
    names in `exclude` (id and label columns: "00123" is an id, not 123.0) are left as they are.
    """
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError("customers", "*", "must be a pandas DataFrame", type(frame).__name__)
    out = frame.copy()
    skip = set(exclude)
    for col in out.columns:
        s = out[col]
        if col in skip or not _is_string_like(s):
            continue
        if pd.api.types.is_object_dtype(s.dtype) and pd.api.types.infer_dtype(s, skipna=True) not in (
            "string", "empty", "mixed-integer", "mixed-integer-float", "integer", "floating", "mixed"
        ):
            continue  # objects that are not text or numbers (dates, bytes, ...)
        text = s.astype("string").str.strip()
        blank = (text.isna() | (text == "")).to_numpy(dtype=bool)
        if blank.all():
            continue
        codes, uniques = pd.factorize(text.mask(blank))  # each distinct text parsed once (a large table)
        parsed = pd.to_numeric(pd.Series(uniques, dtype="string"), errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan)
        if np.isnan(parsed).any():
            continue
        num = np.where(codes >= 0, parsed[np.maximum(codes, 0)], np.nan)
        infinite = np.flatnonzero(np.isinf(num))
        if infinite.size:  # "inf" or "1e400" parse, but no model can use them
            raise DataError("customers", str(col), "numbers must be finite", text.iloc[infinite[0]])
        out[col] = pd.Series(num, index=s.index, dtype="float64")
    return out


def coerce_date_text(frame: pd.DataFrame, *, exclude=()) -> pd.DataFrame:
    """A copy of `frame` where each text column whose non-blank values all parse as ISO-8601 dates or
    datetimes ("2023-04-01", "2023-04-01 12:30") is datetime64 (blank -> NaT), e.g. a customer export's
    signup_date read from CSV; snapshots turn such columns into days since the date. Other columns are
    left as they are."""
    out = frame.copy()
    skip = set(exclude)
    for col in out.columns:
        s = out[col]
        if col in skip or not _is_string_like(s):
            continue
        text = s.astype("string").str.strip()
        blank = (text.isna() | (text == "")).to_numpy(dtype=bool)
        if blank.all() or not text[~blank].str.match(r"^\d{4}-\d{2}-\d{2}").all():
            continue
        parsed = pd.to_datetime(text.mask(blank), errors="coerce", format="ISO8601")
        if parsed.isna().to_numpy()[~blank].any():
            continue
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        out[col] = parsed.astype("datetime64[ns]")
    return out


def validate_customers(frame: pd.DataFrame, *, id_column: str = "customer_id", table: str = "customers",
                       id_label: str | None = None) -> pd.DataFrame:
    """Check a customer table: a DataFrame with rows, an id column with no missing/empty and no repeated ids.

    Returns a copy with the id column parsed (int64 or str, as for transactions) and a fresh RangeIndex;
    the other columns are untouched. Missing id column -> SchemaError; bad ids -> DataError with an example.
    `id_label` names the id column in error messages (e.g. "customer_id (source column 'custID')"; default
    `id_column`).
    """
    label = id_label or id_column
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(table, "*", "must be a pandas DataFrame", type(frame).__name__)
    if id_column not in frame.columns:
        raise SchemaError(table, label, f"id column missing; available columns: {[str(c) for c in frame.columns]}")
    if len(frame) == 0:
        raise DataError(table, "*", "table is empty (no rows)")
    out = frame.reset_index(drop=True)
    ids = _parse_customer_id(out[id_column], table, label)
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        first = _first(dup)
        rows = np.flatnonzero(dup & (ids == ids.iloc[first]).to_numpy())
        raise DataError(table, label, f"customer ids must be unique; {int(ids.duplicated().sum())} rows repeat "
                        "an earlier id", f"{_plain(ids.iloc[first])!r} in rows {rows[:5].tolist()}")
    out[id_column] = ids
    return out
