"""What the churn and propensity jobs share: the config sections (data, simulate, snapshots, split) and their
checks, a base config, loading the data into time-split snapshots (or a plain customer table), the scoring
population, fitting a calibrated XGBoost, and `finish_run`: log the model, write the output, then register.

The order in `finish_run` matters: a version is registered (and possibly promoted to champion) only after the
scores it stands for are on disk, so a failed write never leaves a champion without its output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from custval.config import DataConfig
from custval.data.io import load_customer_table, load_transactions, write_table
from custval.errors import ConfigError, DataError, SchemaError
from custval.features import snapshots as snap
from custval.models.classifiers import BoostedClassifier, CalibratedClassifier
from custval.models.clv.features import CLVFeatures
from custval.tracking import runs
from custval.tracking.classifier_pyfunc import log_classifier_model
from custval.tracking.registry import Promotion, promote, register_challenger

LABEL = "churn"
SIMULATE = "simulate"
CALIBRATION_METHODS = ("auto", "isotonic", "sigmoid")
OUTPUT_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")
JOB_XGBOOST_KEYS = ("random_state", "callbacks")  # set by the job, not the config


# ------------------------------------------------------------------------------------------------ checks
def is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(name: str, value) -> None:
    if not is_int(value) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


def as_date(name: str, value) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(str(value))
    except ValueError as exc:
        raise ConfigError(f"{name}: not a date: {value!r}") from exc
    if stamp is pd.NaT:
        raise ConfigError(f"{name}: not a date: {value!r}")
    return stamp


def optional_path(name: str, value) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{name} must be a path or null, got {value!r}")


def str_map(name: str, value) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"{name} must map names to column names, got {value!r}")


def check_calibration(name: str, value) -> None:
    if value not in CALIBRATION_METHODS:
        raise ConfigError(f"{name} must be one of {list(CALIBRATION_METHODS)}, got {value!r}")


def check_xgboost(name: str, value) -> None:
    """`value` must be BoostedClassifier keyword arguments that its own parameter checks accept: unknown
    keys and bad values are ConfigErrors named `<name>.<key>`, raised before any data is loaded."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{name} must be a mapping of BoostedClassifier settings, got {value!r}")
    for key in JOB_XGBOOST_KEYS:
        if key in value:
            raise ConfigError(f"{name}.{key} is set by the job (the seed is `seed`)")
    allowed = sorted(set(BoostedClassifier().get_params()) - set(JOB_XGBOOST_KEYS))
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}: unknown BoostedClassifier setting; allowed: {allowed}")
    try:
        BoostedClassifier(**value).check_params()
    except ConfigError as exc:
        message = str(exc)
        key = message.split(" ", 1)[0]
        raise ConfigError(f"{name}.{message}" if key in value else f"{name}: {message}") from None


def check_output(name: str, value) -> None:
    """null, or a .parquet/.csv file path that is not an existing directory."""
    optional_path(name, value)
    if value is None:
        return
    if not value.lower().endswith(OUTPUT_SUFFIXES):
        raise ConfigError(f"{name} must be a file name ending with one of {list(OUTPUT_SUFFIXES)}, got {value!r}")
    if Path(value).is_dir():
        raise ConfigError(f"{name} {value!r} is an existing directory: give a file path")


def non_defaults(section) -> list[str]:
    """The fields of a config section that differ from the section's defaults."""
    default = type(section)()
    return [f.name for f in dataclasses.fields(section) if getattr(section, f.name) != getattr(default, f.name)]


def lists(value):
    """Tuples -> lists, recursively: the logged config.yaml (yaml.safe_dump) loads back as the config."""
    if isinstance(value, dict):
        return {k: lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [lists(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------ config sections
@dataclass
class ChurnDataConfig(DataConfig):
    """Where the data comes from.

    source: "simulate" (the `simulate` section), a transactions CSV/Parquet path or a bundled dataset name;
    customers: an optional customer attribute table (CSV/Parquet, one row per customer, `id_column` + any
    columns; `customer_columns` renames source columns to ours); table: a plain customer table with a label
    column (`label`) instead of transactions: no snapshots, no cutoffs, a stratified random split.
    """

    source: str = SIMULATE
    customers: str | None = None
    customer_columns: dict[str, str] = field(default_factory=dict)
    table: str | None = None
    label: str = "churn"
    id_column: str = "customer_id"

    def validate(self) -> None:
        super().validate()
        optional_path("data.customers", self.customers)
        optional_path("data.table", self.table)
        str_map("data.customer_columns", self.customer_columns)
        for name in ("label", "id_column"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"data.{name} must be a column name, got {value!r}")
        if self.table is not None and self.customers is not None:
            raise ConfigError("data.table already holds the customers: drop data.customers")

    @property
    def simulated(self) -> bool:
        return self.table is None and self.source.strip().lower() == SIMULATE

    def check_applies(self) -> None:
        """Reject settings the chosen kind of data would silently ignore (non-default values only)."""
        default = type(self)()
        changed = set(non_defaults(self))
        if self.table is not None:
            ignored = {"source", "columns", "returns", "duplicates"} & changed
            why = "data.table (a customer table) is used instead of transactions"
        elif self.simulated:
            ignored = {"columns", "returns", "duplicates", "customers", "customer_columns", "label",
                       "id_column"} & changed
            why = "data.source=simulate brings its own transactions and customers"
        else:
            ignored = {"label"} & changed
            if self.customers is None:
                ignored |= {"customer_columns", "id_column"} & changed
            why = ("data.label belongs to a customer table (data.table); data.customer_columns and "
                   "data.id_column to data.customers")
        if ignored:
            key = sorted(ignored)[0]
            raise ConfigError(f"data.{key}={getattr(self, key)!r} would be ignored: {why} "
                              f"(leave it at its default {getattr(default, key)!r})")


@dataclass
class SimulateSettings:
    """The simulated business used when data.source is "simulate" (custval.data.simulate_churn)."""

    n_customers: int = 20_000
    seed: int = 0
    start: str = "2023-01-01"
    end: str = "2025-01-01"

    def validate(self) -> None:
        positive_int("simulate.n_customers", self.n_customers)
        if not is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"simulate.seed must be an integer >= 0, got {self.seed!r}")
        if as_date("simulate.start", self.start) >= as_date("simulate.end", self.end):
            raise ConfigError(f"simulate.start {self.start} must be before simulate.end {self.end}")


@dataclass
class SnapshotSettings:
    """Cutoffs and features: labels look `horizon_days` ahead of each cutoff; `n_cutoffs` cutoffs every
    `every_days`, the latest one `horizon_days` before the observation end; customers count when they bought
    in the `active_days` before a cutoff."""

    horizon_days: int = 90
    windows: tuple = (30, 90, 180, 365)
    active_days: int = 365
    n_cutoffs: int = 6
    # = horizon_days: time_split needs valid's label window to end by the test cutoff and train's by the valid
    # one, so with one valid and one test cutoff, cutoffs closer than the horizon leave no training cutoff.
    every_days: int = 90
    clv_features: bool = False

    def validate(self) -> None:
        for name in ("horizon_days", "active_days", "n_cutoffs", "every_days"):
            positive_int(f"snapshots.{name}", getattr(self, name))
        if not isinstance(self.windows, tuple) or not self.windows:
            raise ConfigError(f"snapshots.windows must be a list of day counts, got {self.windows!r}")
        for window in self.windows:
            positive_int("snapshots.windows[]", window)
        if not isinstance(self.clv_features, bool):
            raise ConfigError(f"snapshots.clv_features must be true or false, got {self.clv_features!r}")


@dataclass
class SplitSettings:
    """Time split of the snapshots: the last `n_test` cutoffs are test, the `n_valid` before them valid (see
    custval.features.snapshots.time_split). A plain customer table is split at random instead, stratified
    on the label, with these fractions."""

    n_valid: int = 1
    n_test: int = 1
    valid_fraction: float = 0.2
    test_fraction: float = 0.2

    def validate(self) -> None:
        positive_int("split.n_valid", self.n_valid)
        positive_int("split.n_test", self.n_test)
        for name in ("valid_fraction", "test_fraction"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 < value < 1:
                raise ConfigError(f"split.{name} must be a number in (0, 1), got {value!r}")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ConfigError("split.valid_fraction + split.test_fraction must leave rows to train on (< 1)")


@dataclass
class SnapshotJobConfig:
    """The fields every snapshot job has; subclasses add `model` and their own settings and set the
    defaults of experiment, registered_model and output."""

    experiment: str = "custval"
    registered_model: str | None = None
    data: ChurnDataConfig = field(default_factory=ChurnDataConfig)
    simulate: SimulateSettings = field(default_factory=SimulateSettings)
    snapshots: SnapshotSettings = field(default_factory=SnapshotSettings)
    split: SplitSettings = field(default_factory=SplitSettings)
    seed: int = 0
    output: str | None = None
    top_n: int = 10
    run_name: str | None = None

    def validate(self) -> None:
        """The shared checks (each section, names, seed, output), then that nothing set is ignored."""
        if not isinstance(self.experiment, str) or not self.experiment.strip():
            raise ConfigError(f"experiment must be a name, got {self.experiment!r}")
        if self.registered_model is not None and (not isinstance(self.registered_model, str)
                                                  or not self.registered_model.strip()):
            raise ConfigError(f"registered_model must be a name or null, got {self.registered_model!r}")
        for section in (self.data, self.simulate, self.snapshots, self.split):
            section.validate()
        model = getattr(self, "model", None)
        if model is not None:
            model.validate()
        if not is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        check_output("output", self.output)
        positive_int("top_n", self.top_n)
        self._check_applies()

    def _check_applies(self) -> None:
        self.data.check_applies()
        table = self.data.table is not None
        for section, name, used in ((self.simulate, "simulate", self.data.simulated),
                                    (self.snapshots, "snapshots", not table)):
            changed = non_defaults(section)
            if changed and not used:
                raise ConfigError(f"{name}.{changed[0]} would be ignored: it applies only to "
                                  f"{'data.source=simulate' if name == 'simulate' else 'transactions'}, "
                                  f"not to {'data.table' if table else f'data.source={self.data.source}'}")
        changed = non_defaults(self.split)
        ignored = [k for k in changed if k.endswith("_fraction")] if not table else [
            k for k in changed if k.startswith("n_")]
        if ignored:
            raise ConfigError(f"split.{ignored[0]} would be ignored: "
                              + ("the fractions split a customer table (data.table); transactions are split "
                                 "by cutoff (split.n_valid, split.n_test)" if not table else
                                 "a customer table is split at random by split.valid_fraction and "
                                 "split.test_fraction, not by cutoff"))

    def as_dict(self) -> dict[str, Any]:
        return lists(dataclasses.asdict(self))


def study_key(config) -> str:
    """A short digest of everything that decides the training data and the model family (not where results
    go): equal configs give equal keys."""
    raw = config.as_dict()
    keep = {k: raw[k] for k in ("data", "simulate", "snapshots", "split", "model", "seed") if k in raw}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------- data
@dataclass
class Dataset:
    """What the models are trained on: one split of features and labels, and how to score the population.

    For transactions: snapshot rows (customer_id, cutoff, features, labels) per split, the transactions and
    customers to build the scoring snapshot from, and `as_of` (the observation end). For a plain table:
    `table_features`/`table_ids` (every row) and as_of None.
    """

    kind: str  # "snapshots" | "table"
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
    categories: tuple | None = None  # the categories the snapshots were built with (None = all)


def _customer_frame(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
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


def _snapshot_kwargs(config, as_of: pd.Timestamp, **extra) -> dict[str, Any]:
    s = config.snapshots
    return dict(horizon_days=s.horizon_days, windows=tuple(s.windows), active_days=s.active_days,
                extra_features=CLVFeatures(s.horizon_days) if s.clv_features else None, observation_end=as_of,
                **extra)


def load_dataset(config, **snapshot_extra) -> Dataset:
    """Load the configured data and build the training splits: snapshots at the configured cutoffs split by
    time, or a plain customer table split at random (stratified on its label).

    `snapshot_extra` goes to build_snapshots (categories, cross_sell_new_only for propensity).
    """
    data = config.data
    if data.table is not None:
        return _table_dataset(config)
    simulation = None
    customers = None
    if data.simulated:
        from custval.data.simulate_churn import simulate_churn

        sim_cfg = config.simulate
        simulation = simulate_churn(sim_cfg.n_customers, seed=sim_cfg.seed, start=sim_cfg.start, end=sim_cfg.end)
        transactions, customers = simulation.transactions, simulation.customers
        as_of = pd.Timestamp(simulation.observation_end)
    else:
        transactions = load_transactions(data.source, columns=data.columns or None, returns=data.returns,
                                         duplicates=data.duplicates)
        if len(transactions) == 0:
            raise DataError("transactions", "*", "table is empty (no rows)")
        as_of = transactions["timestamp"].max().normalize() + pd.Timedelta(days=1)
        if data.customers is not None:
            frame, _ = load_customer_table(data.customers, id_column=data.id_column,
                                           columns=data.customer_columns or None)
            customers = _customer_frame(frame, data.id_column)
    s = config.snapshots
    cutoffs = list(snap.cutoff_schedule(as_of, n_cutoffs=s.n_cutoffs, every_days=s.every_days,
                                        horizon_days=s.horizon_days))
    frames = snap.build_snapshots(transactions, cutoffs, customers=customers, labels=True,
                                  **_snapshot_kwargs(config, as_of, **snapshot_extra))
    split = snap.time_split(frames, horizon_days=s.horizon_days, n_valid=config.split.n_valid,
                            n_test=config.split.n_test)
    features = list(snap.feature_columns(frames))
    fingerprint = runs.frame_fingerprint(*(f for f in (transactions, customers) if f is not None))
    parts = [part.reset_index(drop=True) for part in (split.train, split.valid, split.test)]
    return Dataset("snapshots", *parts, features=features, fingerprint=fingerprint, as_of=as_of,
                   cutoffs=cutoffs, transactions=transactions, customers=customers, simulation=simulation,
                   categories=snapshot_extra.get("categories"))


def _table_dataset(config) -> Dataset:
    """A plain customer table: features = every column but the id and the label; stratified random split."""
    from sklearn.model_selection import train_test_split

    data = config.data
    frame, y = load_customer_table(data.table, id_column=data.id_column, label=data.label,
                                   columns=data.customer_columns or None)
    frame = _customer_frame(frame, data.id_column)
    if y is None:  # pragma: no cover - load_customer_table raises when the label is missing
        raise SchemaError("customers", data.label, "label column is missing")
    y = pd.Series(np.asarray(y), index=frame.index, name=LABEL).astype("int8")
    features = [c for c in frame.columns if c not in ("customer_id", data.label)]
    if not features:
        raise SchemaError("customers", "*", f"no feature columns besides {data.id_column!r} and {data.label!r}")
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
                        f"too few rows to split into train/valid/test with both classes in each "
                        f"({n} rows, class counts {counts.to_dict()})", n)
    rest, test = train_test_split(whole, test_size=n_test, stratify=whole[LABEL], random_state=config.seed)
    train, valid = train_test_split(rest, test_size=n_valid, stratify=rest[LABEL], random_state=config.seed)
    parts = [part.reset_index(drop=True) for part in (train, valid, test)]
    return Dataset("table", *parts, features=features, fingerprint=runs.frame_fingerprint(whole),
                   table_features=whole[features], table_ids=whole["customer_id"], id_column=data.id_column)


def scoring_frame(config, data: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ids, features) of the population to score: every customer active at the observation end (features
    from transactions strictly before it), or every row of a plain table."""
    if data.kind == "table":
        return data.table_ids.to_frame("customer_id"), data.table_features
    population = snap.build_snapshot(data.transactions, data.as_of, customers=data.customers, labels=False,
                                     **_snapshot_kwargs(config, data.as_of, categories=data.categories))
    ids = population[["customer_id"]].assign(as_of=data.as_of)
    return ids, population[data.features]


# ----------------------------------------------------------------------------------------------- models
def xgboost_kwargs(config, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """BoostedClassifier arguments: the job's seed and threads, the config's settings, then `extra` (tuned)."""
    return {"random_state": config.seed, "n_jobs": 2, **dict(config.model.xgboost), **dict(extra or {})}


def fit_boosted(config, X_train, y_train, X_valid, y_valid, extra=None):
    """XGBoost with early stopping on valid, then calibrated on valid: (raw, calibrated)."""
    raw = BoostedClassifier(**xgboost_kwargs(config, extra)).fit(X_train, y_train, eval_set=(X_valid, y_valid))
    return raw, CalibratedClassifier(estimator=raw, method=config.model.calibration).fit(X_valid, y_valid)


def proba(model, X) -> np.ndarray:
    return np.asarray(model.predict_proba(X))[:, 1].astype("float64")


def finite(mapping: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in mapping.items() if v is not None and math.isfinite(float(v))}


# ---------------------------------------------------------------------------------------- finishing a run
@dataclass
class Finished:
    model_uri: str
    registered_version: str | None
    promotion: Promotion | None
    output: Path | None


def write_output(scores: pd.DataFrame, path: str, metadata: dict[str, Any]) -> Path:
    """write_table (atomic: a failed write keeps the earlier file), with OS failures as a ConfigError."""
    try:
        return write_table(scores, path, metadata=metadata)
    except OSError as exc:
        raise ConfigError(f"output {path!r}: cannot write the scores: {exc.strerror or exc}") from exc


def finish_run(config, run, *, models: dict[str, Any], input_example: pd.DataFrame, scores: pd.DataFrame,
               metadata: dict[str, Any], metric: str, value: float, explain: str | None = None,
               comparable_tag: str | None = None) -> Finished:
    """Inside the active run: log `models` as one pyfunc, register it as `challenger`, write `scores` to
    `config.output` (atomically, naming the model, version and run), and only then promote it (champion by
    `metric`, higher is better; `comparable_tag`: see `custval.tracking.registry.promote`). A failed write
    leaves the earlier output and the champion as they were: the new version stays a challenger."""
    model_info = log_classifier_model(models, input_example, explain=explain)
    version = register_challenger(model_info.model_uri, config.registered_model) if config.registered_model else None
    output = None
    if config.output:
        output = write_output(scores, config.output, {
            "custval.model": config.registered_model or model_info.model_uri,
            "custval.model_version": version or "",
            "custval.model_uri": model_info.model_uri,
            "custval.run_id": run.info.run_id,
            **metadata,
        })
    promotion = None
    if version is not None:
        promotion = promote(config.registered_model, version, run_id=run.info.run_id, metric=metric, value=value,
                            higher_is_better=True, comparable_tag=comparable_tag)
    return Finished(model_info.model_uri, version, promotion, Path(output) if output else None)
