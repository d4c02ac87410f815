"""Labelled training sets: point-in-time snapshots at a schedule of cutoffs, split by time (from a transaction
log, optionally with customer attributes, or from the churn simulator), or a plain customer table with a label
column split at random, stratified on the label.

`load_dataset(config)` reads the `data`, `simulate`, `snapshots` and `split` sections of a churn or propensity
config; `population(dataset)` gives the customers to score with the same features. Columns of a customer table
named in `data.drop`, and identifier-like ones (`custval.features.identifiers`), are not features.

Cutoffs: `snapshots.n_cutoffs: auto` takes as many as the log allows (`custval.features.snapshots.cutoff_schedule`),
counting history from the first transaction; the run warns when even the latest training cutoff sees less
history than the scoring date within the longest look-back (a window or the active rule), since the model then
never saw features over the span they cover at scoring.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from custval.data.fingerprint import frame_fingerprint
from custval.data.loaders import load_customer_table, load_log
from custval.data.schemas import check_cutoff
from custval.errors import ConfigError, CustvalWarning, DataError, SchemaError
from custval.features import snapshots as snap
from custval.features.identifiers import drop_columns
from custval.units import horizon_days, parse_date

LABEL = "churn"
# buyers and non-buyers of a category in each split: both classes to train, 2 of each for calibration's
# stratified folds on valid, both for the test ROC AUC
MIN_PER_CLASS = 2


@dataclass
class Dataset:
    """What the models are trained on: one split of features and labels, and how to score the population.

    For transactions (kind "snapshots"): snapshot rows (customer_id, cutoff, features, labels) per split, the
    transactions and customers to build the scoring snapshot from, `as_of` (the observation end) and the
    snapshot options. For a plain table (kind "table"): `table_features`/`table_ids` (every row), as_of None.
    """

    kind: str
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    features: list[str]
    fingerprint: str
    as_of: pd.Timestamp | None = None
    cutoffs: list[pd.Timestamp] = field(default_factory=list)
    transactions: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    simulation: Any = None
    table_features: pd.DataFrame | None = None
    table_ids: pd.Series | None = None
    id_column: str = "customer_id"
    snapshot_options: dict[str, Any] = field(default_factory=dict)


def customer_frame(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """A customer table from load_customer_table as a frame with a `customer_id` column (RangeIndex)."""
    if id_column in frame.columns:
        frame = frame.reset_index(drop=True)
    else:
        frame = frame.rename_axis(id_column).reset_index()
    if id_column != "customer_id":
        if "customer_id" in frame.columns:
            raise SchemaError("customers", "customer_id", f"clashes with the id column {id_column!r}")
        frame = frame.rename(columns={id_column: "customer_id"})
    return frame


def load_customers(data) -> pd.DataFrame | None:
    """The customer attributes of a transactions file (`data.customers`, renamed, identifier-like and
    `data.drop` columns removed) as a frame with a customer_id column; None when not given."""
    if data.customers is None:
        return None
    frame, _ = load_customer_table(data.customers, id_column=data.id_column, columns=data.customer_columns or None)
    return drop_columns(customer_frame(frame, data.id_column), drop=data.drop, keep=data.keep,
                        protected=("customer_id",))


def load_dataset(config, *, extra_features: Callable | None = None, **snapshot_extra) -> Dataset:
    """Load the configured data and build the training splits: snapshots at the configured cutoffs split by
    time, or a plain customer table split at random (stratified on its label).

    `extra_features`: a callable adding point-in-time features (e.g. custval.models.clv.features.CLVFeatures);
    `snapshot_extra` goes to build_snapshots (categories, cross_sell_new_only for propensity).
    """
    data = config.data
    if data.table is not None:
        return _table_dataset(config)
    simulation = customers = None
    if data.simulated:
        from custval.data.simulate_churn import simulate_churn

        sim = config.simulate
        simulation = simulate_churn(sim.n_customers, seed=sim.seed, start=sim.start, end=sim.end)
        transactions, customers = simulation.transactions, simulation.customers
        as_of = pd.Timestamp(simulation.observation_end)
    else:
        transactions = load_log(data)
        as_of = transactions["timestamp"].max().normalize() + pd.Timedelta(days=1)
        customers = load_customers(data)
    s = config.snapshots
    start = snap.history_start(transactions)
    options = dict(horizon_days=s.horizon_days, windows=tuple(s.windows), active_days=s.active_days,
                   extra_features=extra_features, observation_end=as_of, history_start=start, **snapshot_extra)
    cutoffs = schedule(config, start, as_of)
    frames = snap.build_snapshots(transactions, cutoffs, customers=customers, labels=True, **options)
    split = snap.time_split(frames, horizon_days=s.horizon_days, n_valid=config.split.n_valid,
                            n_test=config.split.n_test)
    unused = warn_short_history(config, start, as_of, split.train["cutoff"])
    parts = [part.reset_index(drop=True) for part in (split.train, split.valid, split.test)]
    features = [c for c in snap.feature_columns(frames) if c not in unused]
    return Dataset("snapshots", *parts, features=features,
                   fingerprint=frame_fingerprint(*(f for f in (transactions, customers) if f is not None)), as_of=as_of,
                   cutoffs=cutoffs, transactions=transactions, customers=customers, simulation=simulation,
                   snapshot_options={k: v for k, v in options.items() if k != "cross_sell_new_only"})


def schedule(config, start: pd.Timestamp, as_of: pd.Timestamp) -> list[pd.Timestamp]:
    """The snapshot cutoffs of `config.snapshots` for a log whose history runs from `start` to `as_of`
    (exclusive), checked against the split before any snapshot is built: a schedule the log cannot hold is a
    DataError that names the settings to change."""
    s, split = config.snapshots, config.split
    auto = s.n_cutoffs == "auto"
    span = f"the transactions run from {start.date()} to {(as_of - pd.Timedelta(days=1)).date()}"
    try:
        cutoffs = snap.cutoff_schedule(as_of, n_cutoffs=s.n_cutoffs, every_days=s.every_days,
                                       horizon_days=s.horizon_days, history_start=start,
                                       min_history_days=s.min_history_days, max_cutoffs=s.max_cutoffs)
    except DataError:
        raise DataError("transactions", "timestamp",
                        f"{span}: no cutoff has snapshots.min_history_days={s.min_history_days} days of history "
                        f"before it and snapshots.horizon_days={s.horizon_days} days of labels after it; lower "
                        "them or use a longer log", f"{(as_of - start).days} days") from None
    if not auto and cutoffs[0] <= start:
        raise DataError("transactions", "timestamp",
                        f"{span}: snapshots.n_cutoffs={s.n_cutoffs} cutoffs every {s.every_days} days reach back "
                        f"to {cutoffs[0].date()}, before any history; set snapshots.n_cutoffs=auto (as many as the "
                        "log allows) or fewer cutoffs", str(cutoffs[0].date()))
    try:
        snap.split_cutoffs(cutoffs, horizon_days=s.horizon_days, n_valid=split.n_valid, n_test=split.n_test)
    except DataError as exc:
        if not auto:
            raise
        fix = (f"raise snapshots.max_cutoffs (the split drops the cutoffs less than snapshots.horizon_days="
               f"{s.horizon_days} days before the next part)" if len(cutoffs) == s.max_cutoffs else
               "lower snapshots.min_history_days or snapshots.every_days, or use a longer log")
        raise DataError("transactions", "timestamp",
                        f"{span}: snapshots.n_cutoffs=auto finds {len(cutoffs)} cutoffs every "
                        f"snapshots.every_days={s.every_days} days with snapshots.min_history_days="
                        f"{s.min_history_days} days of history, too few for split.n_valid={split.n_valid}, "
                        f"split.n_test={split.n_test} and a training cutoff ({exc.rule}); {fix}",
                        f"{len(cutoffs)} cutoffs") from None
    return cutoffs


def warn_short_history(config, start: pd.Timestamp, as_of: pd.Timestamp, train_cutoffs: pd.Series) -> list[str]:
    """CustvalWarning when the latest training cutoff sees less history than the scoring date, counted up to
    the longest look-back of the features (the longest window or the active rule). Returns the features
    missing in every training row (windows longer than any training cutoff's history): no model can learn
    from them, so they are left out."""
    s = config.snapshots
    lookback = max(max(s.windows), s.active_days)
    latest = pd.Timestamp(train_cutoffs.max())
    seen, scoring = (latest - start).days, (as_of - start).days
    if seen >= min(scoring, lookback):
        return []
    missing = [w for w in sorted(s.windows) if w > seen]
    effect = (f"their {', '.join(map(str, missing))}-day windows are missing (NaN) and left out of the features, "
              "and " if missing else "")
    warnings.warn(CustvalWarning(
        f"snapshots: the training cutoffs see at most {seen} days of transactions (latest {latest.date()}), the "
        f"scoring date {as_of.date()} sees {scoring}: {effect}their recency, tenure and totals span less time than "
        f"at scoring (the features look back up to {lookback} days), so the model meets values at scoring it never "
        "saw in training; a longer log closes the gap"), stacklevel=3)
    return snap.uncovered_columns(s.windows, seen)


def _table_dataset(config) -> Dataset:
    """A plain customer table: features = every column but the id and the label; stratified random split."""
    from sklearn.model_selection import train_test_split

    data = config.data
    frame, y = load_customer_table(data.table, id_column=data.id_column, label=data.label,
                                   columns=data.customer_columns or None)
    frame = drop_columns(customer_frame(frame, data.id_column), drop=data.drop, keep=data.keep,
                         protected=("customer_id", data.label))
    if y is None:  # pragma: no cover - load_customer_table raises when the label is missing
        raise SchemaError("customers", data.label, "label column is missing")
    y = pd.Series(np.asarray(y), index=frame.index, name=LABEL).astype("int8")
    features = [c for c in frame.columns if c not in ("customer_id", data.label)]
    if not features:
        raise SchemaError("customers", "*", f"no feature columns besides {data.id_column!r} and {data.label!r} "
                          "(after data.drop and the identifier-like columns)")
    counts = y.value_counts()
    if len(counts) < 2:
        raise DataError("customers", data.label, "needs both classes 0 and 1 to train on", int(y.iloc[0]))
    whole = frame[["customer_id", *features]].assign(**{LABEL: y})
    split = config.split
    n = len(whole)
    n_test = int(round(split.test_fraction * n))
    n_valid = int(round(split.valid_fraction * n))
    if min(n_test, n_valid, n - n_test - n_valid) < 2 * len(counts) or counts.min() < 6:
        raise DataError("customers", data.label,
                        f"too few rows to split into train/valid/test with both classes in each ({n} rows, class "
                        f"counts {counts.to_dict()}; split.valid_fraction={split.valid_fraction}, "
                        f"split.test_fraction={split.test_fraction})", n)
    rest, test = train_test_split(whole, test_size=n_test, stratify=whole[LABEL], random_state=config.seed)
    train, valid = train_test_split(rest, test_size=n_valid, stratify=rest[LABEL], random_state=config.seed)
    parts = [part.reset_index(drop=True) for part in (train, valid, test)]
    return Dataset("table", *parts, features=features, fingerprint=frame_fingerprint(whole),
                   table_features=whole[features], table_ids=whole["customer_id"], id_column=data.id_column)


def population(dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ids, features) of the customers to score: every customer active at the observation end (features
    from transactions strictly before it, with the training snapshots' options), or every row of a table."""
    if dataset.kind == "table":
        return dataset.table_ids.to_frame("customer_id"), dataset.table_features
    frame = snap.build_snapshot(dataset.transactions, dataset.as_of, customers=dataset.customers, labels=False,
                                **dataset.snapshot_options)
    return frame[["customer_id"]].assign(as_of=dataset.as_of), frame[dataset.features]


# ------------------------------------------------------------------------------------------- categories
def modelled_categories(dataset: Dataset, categories=None) -> list[str]:
    """The categories to model: `categories` (each must occur in the transactions) or every category label
    of the snapshots."""
    labelled = [c[len(snap.LABEL_PREFIX):] for c in snap.label_columns(dataset.train)
                if c.startswith(snap.LABEL_PREFIX)]
    if "category" not in dataset.transactions.columns or not labelled:
        raise DataError("transactions", "category", "propensity needs a category column in the transactions")
    if categories is None:
        return labelled
    present = set(dataset.transactions["category"].dropna().astype(str).unique())
    missing = [c for c in categories if c not in present or c not in labelled]
    if missing:
        raise DataError("transactions", "category",
                        f"configured category has no transactions (present: {sorted(present)})", missing[0])
    return list(categories)


def check_class_counts(dataset: Dataset, categories: list[str]) -> None:
    """Every category needs MIN_PER_CLASS buyers and non-buyers in each of train, valid and test (among its
    labelled rows): checked for all categories before any model is fitted, so the error names the category."""
    for category in categories:
        label = f"{snap.LABEL_PREFIX}{category}"
        counts = {}
        for name, part in (("train", dataset.train), ("valid", dataset.valid), ("test", dataset.test)):
            y = part[label].dropna().to_numpy()
            counts[name] = {"buyers": int((y == 1).sum()), "non-buyers": int((y == 0).sum())}
        short = [name for name, c in counts.items() if min(c.values()) < MIN_PER_CLASS]
        if short:
            raise DataError("snapshots", label,
                            f"needs at least {MIN_PER_CLASS} buyers and {MIN_PER_CLASS} non-buyers in each of "
                            f"train/valid/test to fit, calibrate and test its model; too few in {'/'.join(short)} "
                            "(drop the category, add data or change the snapshot settings)", counts)


# ------------------------------------------------------------------------------------ simulator's truth
def oracle_churn(dataset: Dataset, frame: pd.DataFrame, horizon_days: int) -> np.ndarray | None:
    """The simulator's Bayes P(churn) for each (customer_id, cutoff) row of `frame` (None without a simulator)."""
    sim = dataset.simulation
    if sim is None:
        return None
    out = np.full(len(frame), np.nan)
    for cutoff in pd.unique(frame["cutoff"]):
        rows = (frame["cutoff"] == cutoff).to_numpy()
        truth = sim.churn_probability(pd.Timestamp(cutoff), horizon_days=horizon_days)
        out[rows] = truth.reindex(frame.loc[rows, "customer_id"].to_numpy()).to_numpy(dtype=float)
    if np.isnan(out).any():  # pragma: no cover - the simulator covers every customer active before a cutoff
        raise DataError("snapshots", "customer_id", "customer without a simulated churn probability",
                        frame.loc[np.isnan(out), "customer_id"].iloc[0])
    return out


def oracle_category(dataset: Dataset, frame: pd.DataFrame, category: str, horizon_days: int,
                    cache: dict) -> np.ndarray | None:
    """The simulator's P(buys `category` in the window) for each (customer_id, cutoff) row of `frame`;
    `cache` keeps each cutoff's probabilities across categories."""
    sim = dataset.simulation
    if sim is None:
        return None
    out = np.full(len(frame), np.nan)
    for cutoff in pd.unique(frame["cutoff"]):
        key = pd.Timestamp(cutoff)
        if key not in cache:
            cache[key] = sim.category_probability(key, horizon_days=horizon_days)
        rows = (frame["cutoff"] == cutoff).to_numpy()
        out[rows] = cache[key][category].reindex(frame.loc[rows, "customer_id"].to_numpy()).to_numpy(dtype=float)
    return out


# ------------------------------------------------------------------------------------------ CLV window
def calibration_window(transactions: pd.DataFrame, *, calibration_end=None, observation_end=None,
                       holdout: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(calibration_end, observation_end) of a CLV calibration/holdout split: observation_end defaults to the
    day of the last transaction and may not lie after it (the holdout would count days without data as days
    without purchases); calibration_end, when not given, is observation_end - holdout (rounded to whole days).
    Both are last days included."""
    last_day = transactions["timestamp"].max().normalize()
    end = parse_date(observation_end, "observation_end").normalize() if observation_end is not None else last_day
    if end > last_day:
        raise DataError("transactions", "observation_end",
                        f"is after the last transaction ({last_day.date()}): the holdout would count the days "
                        "without data as days without purchases; set observation_end=null (the last day) or "
                        "an earlier date", str(end.date()))
    if calibration_end is not None:
        start, name = parse_date(calibration_end, "calibration_end"), "calibration_end"
    elif holdout is not None:
        start, name = end - pd.Timedelta(days=round(horizon_days(holdout))), "holdout"
    else:
        raise ConfigError("give calibration_end (a date) or holdout (a duration such as '39W')")
    check_cutoff(transactions, start, name=name)
    if start >= end:
        raise ConfigError(f"calibration_end {start.date()} must be before observation_end {end.date()}")
    return start, end
