"""RFM summaries (frequency, recency, T, monetary value) and calibration/holdout splits.

Definitions (identical to lifetimes' ``summary_data_from_transaction_data(..., freq="D",
freq_multiplier=period_days)`` and ``calibration_and_holdout_data``):
  * a purchase is a customer-day: same-day transactions merge into one purchase, amounts summed;
  * `observation_end` is the LAST day included; later transactions are ignored (no leakage);
  * frequency = number of purchase days - 1 (repeat purchases);
  * recency = last purchase day - first purchase day; T = observation_end - first purchase day; both in days
    divided by the period length (D = 1, W = 7, M = 30.4375 days; see `custval.units`);
  * monetary_value = mean of the repeat purchase days' totals (the first day excluded); 0 when frequency = 0.
Holdout (the days after calibration_end, up to and including observation_end): frequency_holdout = number of
purchase days; monetary_value_holdout = mean amount of the holdout *transaction rows* (lifetimes'
definition, kept for equality: it differs from a per-day mean when a customer buys several times on one
holdout day); duration_holdout = (observation_end - calibration_end) in periods. Customers first seen in the
holdout are not in the frame (they have no calibration history).
`calibration_end` is, like `observation_end`, a whole day: a purchase at 15:00 on that day is calibration.
(lifetimes cuts at calibration_end 00:00 and counts such a purchase in the holdout; on day-level
timestamps, as in CDNOW, both agree.)

Engines. The aggregation is written once in SQL (`rfm_sql`, `calibration_holdout_sql`): ``engine="duckdb"``
executes it with DuckDB on an Arrow view of the frame, and the same text runs on Spark SQL
(``dialect="spark"``). The only engine-specific piece is the timestamp -> day-number expression in
`DAY_NUMBER_SQL` (DuckDB's ``datediff(part, start, end)`` vs Spark's ``datediff(end, start)``, and
identifier quoting); on Spark set ``spark.sql.session.timeZone=UTC`` so that a timestamp cast to a date
keeps its calendar day. The default ``engine="numpy"`` computes the same numbers with one sort of the
(customer, day) keys and bincounts: on 10M transactions / 1M customers it is ~18x faster than lifetimes
while DuckDB's two hash aggregations reach only ~3x on this 2-core machine. Tests hold both engines to
lifetimes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.data.schemas import check_cutoff
from custval.errors import ConfigError, SchemaError
from custval.units import check_period, period_days

__all__ = [
    "CALIBRATION_HOLDOUT_COLUMNS",
    "DAY_NUMBER_SQL",
    "ENGINES",
    "RFM_COLUMNS",
    "calibration_holdout_split",
    "calibration_holdout_sql",
    "customer_codes",
    "day_number",
    "rfm_sql",
    "rfm_summary",
]

RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
CALIBRATION_HOLDOUT_COLUMNS = (
    "frequency_cal",
    "recency_cal",
    "T_cal",
    "monetary_value_cal",
    "frequency_holdout",
    "monetary_value_holdout",
    "duration_holdout",
)

# Engine-specific: the day number (days since 1970-01-01) of the `timestamp` column. Keep it the only one.
DAY_NUMBER_SQL = {
    "duckdb": "datediff('day', DATE '1970-01-01', CAST(\"timestamp\" AS DATE))",
    "spark": "datediff(CAST(`timestamp` AS DATE), DATE '1970-01-01')",
}
_EPOCH = np.datetime64("1970-01-01", "D")


def day_number(ts) -> int:
    """Days since 1970-01-01 of the calendar day of `ts` (the integer the SQL compares against)."""
    return int((np.datetime64(pd.Timestamp(ts).to_datetime64(), "D") - _EPOCH).astype("int64"))


def _dialect_day(dialect: str) -> str:
    try:
        return DAY_NUMBER_SQL[dialect]
    except KeyError:
        raise ConfigError(f"SQL dialect must be one of {sorted(DAY_NUMBER_SQL)}, got {dialect!r}") from None


def _double(x: float) -> str:
    """A float literal that is a DOUBLE in both engines (a bare 7.0 is a DECIMAL in Spark SQL)."""
    return f"CAST({float(x)!r} AS DOUBLE)"


def _summary_ctes(end_day: int, pdays: float) -> str:
    """CTEs over `tx` ending in `summary`: one row per customer with a purchase on or before `end_day`."""
    return f"""
purchase_days AS (
    SELECT customer_id, purchase_day, SUM(amount) AS amount
    FROM tx
    WHERE purchase_day <= {int(end_day)}
    GROUP BY customer_id, purchase_day
),
customers AS (
    SELECT customer_id,
           COUNT(*) AS n_days,
           MIN(purchase_day) AS first_day,
           MAX(purchase_day) AS last_day
    FROM purchase_days
    GROUP BY customer_id
),
repeat_spend AS (
    SELECT d.customer_id, AVG(d.amount) AS monetary_value
    FROM purchase_days d
    JOIN customers c ON d.customer_id = c.customer_id
    WHERE d.purchase_day > c.first_day
    GROUP BY d.customer_id
),
summary AS (
    SELECT c.customer_id,
           CAST(c.n_days - 1 AS DOUBLE) AS frequency,
           CAST(c.last_day - c.first_day AS DOUBLE) / {_double(pdays)} AS recency,
           CAST({int(end_day)} - c.first_day AS DOUBLE) / {_double(pdays)} AS T,
           COALESCE(r.monetary_value, {_double(0.0)}) AS monetary_value
    FROM customers c
    LEFT JOIN repeat_spend r ON c.customer_id = r.customer_id
)"""


def _tx_cte(table: str, dialect: str) -> str:
    return f"""tx AS (
    SELECT customer_id, {_dialect_day(dialect)} AS purchase_day, amount
    FROM {table}
)"""


def rfm_sql(
    table: str = "transactions", *, observation_end_day: int, period: str = "D", dialect: str = "duckdb"
) -> str:
    """SQL computing the RFM summary from `table` (columns customer_id, timestamp, amount).

    `observation_end_day` is the last included day as a day number (`day_number`). Output columns:
    customer_id, frequency, recency, T, monetary_value, ordered by customer_id.
    """
    pdays = period_days(period)
    return (
        "WITH "
        + _tx_cte(table, dialect)
        + ","
        + _summary_ctes(observation_end_day, pdays)
        + "\nSELECT customer_id, frequency, recency, T, monetary_value FROM summary ORDER BY customer_id\n"
    )


def calibration_holdout_sql(
    table: str = "transactions",
    *,
    calibration_end_day: int,
    observation_end_day: int,
    period: str = "D",
    dialect: str = "duckdb",
) -> str:
    """SQL computing the calibration/holdout frame (see the module docstring for the definitions)."""
    pdays = period_days(period)
    cal, obs = int(calibration_end_day), int(observation_end_day)
    return (
        "WITH "
        + _tx_cte(table, dialect)
        + ","
        + _summary_ctes(cal, pdays)
        + f""",
holdout AS (
    SELECT customer_id,
           COUNT(DISTINCT purchase_day) AS n_days,
           AVG(amount) AS mean_amount
    FROM tx
    WHERE purchase_day > {cal} AND purchase_day <= {obs}
    GROUP BY customer_id
)
SELECT s.customer_id,
       s.frequency AS frequency_cal,
       s.recency AS recency_cal,
       s.T AS T_cal,
       s.monetary_value AS monetary_value_cal,
       CAST(COALESCE(h.n_days, 0) AS DOUBLE) AS frequency_holdout,
       COALESCE(h.mean_amount, {_double(0.0)}) AS monetary_value_holdout,
       CAST({obs - cal} AS DOUBLE) / {_double(pdays)} AS duration_holdout
FROM summary s
LEFT JOIN holdout h ON s.customer_id = h.customer_id
ORDER BY s.customer_id
"""
    )


# ------------------------------------------------------------------------------------------- execution
def _check_transactions(transactions: pd.DataFrame) -> pd.DataFrame:
    """The contract columns needed here, with a naive datetime64 timestamp (cheap checks only: the full
    validation is `custval.data.schemas.validate_transactions`)."""
    if not isinstance(transactions, pd.DataFrame):
        raise SchemaError("transactions", "*", "must be a pandas DataFrame", type(transactions).__name__)
    for col in ("customer_id", "timestamp", "amount"):
        if col not in transactions.columns:
            raise SchemaError(
                "transactions", col, "required column missing; run custval.data.schemas.validate_transactions"
            )
    missing_ids = transactions["customer_id"].isna()
    if missing_ids.any():
        raise SchemaError("transactions", "customer_id", "must not be missing (NaN/None)",
                          f"row {transactions.index[missing_ids.to_numpy()][0]!r}")
    ts = transactions["timestamp"]
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(ts.dtype):
        raise SchemaError(
            "transactions", "timestamp", f"must be datetime64 (got {ts.dtype}); run validate_transactions first"
        )
    amount = transactions["amount"]
    if not pd.api.types.is_numeric_dtype(amount.dtype) or pd.api.types.is_bool_dtype(amount.dtype):
        raise SchemaError(
            "transactions", "amount", f"must be numeric (got {amount.dtype}); run validate_transactions first"
        )
    return pd.DataFrame(
        {
            "customer_id": transactions["customer_id"].array,  # no copy; Arrow strings stay Arrow
            "timestamp": ts.to_numpy(),
            "amount": amount.to_numpy(dtype="float64"),
        },
        copy=False,
    )


def _run_duckdb(frame: pd.DataFrame, sql: str, id_dtype) -> pd.DataFrame:
    """Execute `sql` on `frame` registered (through Arrow) as table `transactions`."""
    import duckdb
    import pyarrow as pa

    ids = frame["customer_id"]
    arrow = pa.table(
        {
            "customer_id": pa.array(ids.to_numpy() if not pd.api.types.is_string_dtype(ids.dtype) else ids.astype(str)),
            "timestamp": pa.array(frame["timestamp"].to_numpy()),
            "amount": pa.array(frame["amount"].to_numpy()),
        }
    )
    con = duckdb.connect()
    try:
        con.register("transactions", arrow)
        result = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    out = result.to_pandas()
    out = out.set_index("customer_id")
    try:
        out.index = out.index.astype(id_dtype)
    except (TypeError, ValueError):  # pragma: no cover - exotic id dtypes keep DuckDB's type
        pass
    out.index.name = "customer_id"
    return out.astype("float64")


def _end_day(transactions: pd.DataFrame, cutoff, name: str) -> int:
    return day_number(check_cutoff(transactions, cutoff, name=name))


# ------------------------------------------------------------------------------------------ numpy engine
def customer_codes(ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, keys): integer codes whose order is the order of the customer ids, and the id of each code.

    Integer ids in a moderate range are ranked with a presence array (no hashing); Arrow-backed strings are
    dictionary-encoded by Arrow (about twice as fast as pandas here); the rest is factorized by pandas.
    """
    if pd.api.types.is_integer_dtype(ids.dtype) and not pd.api.types.is_extension_array_dtype(ids.dtype):
        values = ids.to_numpy()
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < max(4 * len(values), 1 << 20):
            offset = (values - lo).astype(np.int64)
            seen = np.zeros(hi - lo + 1, dtype=bool)
            seen[offset] = True
            dense = np.cumsum(seen) - 1  # rank of each id among the ids present
            return dense[offset], (np.flatnonzero(seen) + lo).astype(values.dtype)
    if pd.api.types.is_string_dtype(ids.dtype) and hasattr(ids.array, "__arrow_array__"):
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(ids.array)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if arr.null_count == 0:
            enc = pc.dictionary_encode(arr)
            order = pc.sort_indices(enc.dictionary).to_numpy()
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            keys = enc.dictionary.take(pa.array(order)).to_numpy(zero_copy_only=False)
            return rank[enc.indices.to_numpy()], keys
    codes, uniques = pd.factorize(ids, sort=True)
    return codes.astype(np.int64), np.asarray(uniques)


def _day_runs(codes: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each customer code with a row: (code, number of distinct days, first day, last day).

    One sort of the combined (code, day) key: within a code's run the distinct keys are its purchase days.
    """
    dmin = int(days.min())
    span = int(days.max()) - dmin + 1
    key = np.sort(codes * span + (days - dmin))
    key = key[np.r_[True, key[1:] != key[:-1]]]  # distinct (customer, day) pairs, sorted
    ucode = key // span
    uday = key - ucode * span + dmin
    starts = np.flatnonzero(np.r_[True, ucode[1:] != ucode[:-1]])
    ends = np.r_[starts[1:], len(key)]
    return ucode[starts], ends - starts, uday[starts], uday[ends - 1]


def _summary_numpy(codes, days, amount, end_day: int, pdays: float, n_codes: int):
    """Dense per-code arrays (present mask, frequency, recency, T, monetary_value) for days <= end_day."""
    keep = days <= end_day
    if not keep.all():
        codes, days, amount = codes[keep], days[keep], amount[keep]
    present = np.zeros(n_codes, dtype=bool)
    freq = np.zeros(n_codes)
    rec = np.zeros(n_codes)
    T = np.zeros(n_codes)
    mon = np.zeros(n_codes)
    if len(codes) == 0:
        return present, freq, rec, T, mon
    code, n_days, first, last = _day_runs(codes, days)
    present[code] = True
    freq[code] = n_days - 1
    rec[code] = (last - first).astype(np.float64) / pdays
    T[code] = (end_day - first).astype(np.float64) / pdays
    first_of = np.zeros(n_codes, dtype=np.int64)
    first_of[code] = first
    repeat_spend = np.bincount(codes, weights=np.where(days > first_of[codes], amount, 0.0), minlength=n_codes)
    has_repeat = freq > 0
    mon[has_repeat] = repeat_spend[has_repeat] / freq[has_repeat]
    return present, freq, rec, T, mon


def _prepare_numpy(frame: pd.DataFrame):
    codes, keys = customer_codes(frame["customer_id"])
    days = frame["timestamp"].to_numpy().astype("datetime64[D]").astype(np.int64)
    return codes, keys, days, frame["amount"].to_numpy(dtype=np.float64)


def _index(keys: np.ndarray, present: np.ndarray, id_dtype) -> pd.Index:
    idx = pd.Index(keys[present], name="customer_id")
    try:
        return idx.astype(id_dtype)
    except (TypeError, ValueError):  # pragma: no cover
        return idx


def _rfm_numpy(frame: pd.DataFrame, end_day: int, period: str, id_dtype) -> pd.DataFrame:
    codes, keys, days, amount = _prepare_numpy(frame)
    present, freq, rec, T, mon = _summary_numpy(codes, days, amount, end_day, period_days(period), len(keys))
    return pd.DataFrame(
        {"frequency": freq[present], "recency": rec[present], "T": T[present], "monetary_value": mon[present]},
        index=_index(keys, present, id_dtype),
    )


def _split_numpy(frame: pd.DataFrame, cal_day: int, obs_day: int, period: str, id_dtype) -> pd.DataFrame:
    pdays = period_days(period)
    codes, keys, days, amount = _prepare_numpy(frame)
    n = len(keys)
    present, freq, rec, T, mon = _summary_numpy(codes, days, amount, cal_day, pdays, n)
    hold = (days > cal_day) & (days <= obs_day)
    h_codes, h_days, h_amount = codes[hold], days[hold], amount[hold]
    freq_h = np.zeros(n)
    mon_h = np.zeros(n)
    if len(h_codes):
        code, n_days, _, _ = _day_runs(h_codes, h_days)
        freq_h[code] = n_days
        rows = np.bincount(h_codes, minlength=n)
        total = np.bincount(h_codes, weights=h_amount, minlength=n)
        mon_h[rows > 0] = total[rows > 0] / rows[rows > 0]
    k = int(present.sum())
    return pd.DataFrame(
        {
            "frequency_cal": freq[present],
            "recency_cal": rec[present],
            "T_cal": T[present],
            "monetary_value_cal": mon[present],
            "frequency_holdout": freq_h[present],
            "monetary_value_holdout": mon_h[present],
            "duration_holdout": np.full(k, float(obs_day - cal_day) / pdays),
        },
        index=_index(keys, present, id_dtype),
    )


# ---------------------------------------------------------------------------------------------- public
ENGINES = ("numpy", "duckdb")


def _check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, got {engine!r}")
    return engine


def rfm_summary(
    transactions: pd.DataFrame, observation_end, period: str = "D", *, engine: str = "numpy"
) -> pd.DataFrame:
    """One row per customer (index customer_id, sorted): frequency, recency, T, monetary_value.

    `transactions` are validated transactions; `observation_end` is the last day included (inclusive, as in
    lifetimes); `period` is D, W or M. `engine="duckdb"` runs the portable SQL (`rfm_sql`); the default
    vectorised NumPy engine computes the same numbers faster on one machine.
    """
    check_period(period)
    _check_engine(engine)
    frame = _check_transactions(transactions)
    end = _end_day(frame, observation_end, "observation_end")
    id_dtype = transactions["customer_id"].dtype
    if engine == "numpy":
        return _rfm_numpy(frame, end, period, id_dtype)
    sql = rfm_sql("transactions", observation_end_day=end, period=period)
    return _run_duckdb(frame, sql, id_dtype)[list(RFM_COLUMNS)]


def calibration_holdout_split(
    transactions: pd.DataFrame, calibration_end, observation_end, period: str = "D", *, engine: str = "numpy"
) -> pd.DataFrame:
    """The lifetimes `calibration_and_holdout_data` frame (columns `CALIBRATION_HOLDOUT_COLUMNS`).

    Calibration covers days up to and including `calibration_end`; the holdout the days after it up to and
    including `observation_end`. `calibration_end` must be before `observation_end` (ConfigError).
    """
    check_period(period)
    _check_engine(engine)
    frame = _check_transactions(transactions)
    cal = _end_day(frame, calibration_end, "calibration_end")
    obs = _end_day(frame, observation_end, "observation_end")
    if cal >= obs:
        raise ConfigError(
            f"calibration_end ({calibration_end}) must be before observation_end ({observation_end}): "
            "the holdout period would be empty"
        )
    id_dtype = transactions["customer_id"].dtype
    if engine == "numpy":
        return _split_numpy(frame, cal, obs, period, id_dtype)
    sql = calibration_holdout_sql(
        "transactions", calibration_end_day=cal, observation_end_day=obs, period=period
    )
    return _run_duckdb(frame, sql, id_dtype)[list(CALIBRATION_HOLDOUT_COLUMNS)]
