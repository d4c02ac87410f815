"""Train the churn pipeline: transactions (or a plain customer table) -> point-in-time snapshots at several
cutoffs -> train/valid/test split by time -> a depth-limited decision tree and XGBoost (early stopping on
valid), each calibrated on valid -> test metrics against each other and, on simulated data, against the
simulator's Bayes probabilities -> one MLflow run (metrics, plots, tree rules, reasons of the top-risk test
customers, the calibrated XGBoost as a pyfunc returning `churn_probability`) -> registry (`custval-churn`,
champion by test ROC AUC) -> every active customer scored as of the observation end, with its top-3 reasons,
written atomically.

Churn = no purchase in the `horizon_days` after a cutoff, among customers with a purchase in the
`active_days` before it. A plain customer table (`data.table`: one row per customer with a label column,
e.g. a telecom churn export) has no time: it is split at random, stratified on the label, and the whole
table is scored.

The defaults of `ChurnConfig` are the demo: 20,000 simulated customers over 2023-2024 (`pipelines/churn.yaml`
spells them out). The data/snapshot/split sections are shared with `custval.jobs.train_propensity`.
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

import mlflow
import numpy as np
import pandas as pd

from custval.config import DataConfig, build_config, config_from_dict
from custval.data.io import load_customer_table, load_transactions, write_table
from custval.errors import ConfigError, DataError, SchemaError
from custval.features import snapshots as snap
from custval.metrics.classification import classification_report, roc_auc
from custval.models.classifiers import BoostedClassifier, CalibratedClassifier, TreeClassifier
from custval.models.clv.features import CLVFeatures
from custval.plots.classification import plot_calibration, plot_feature_importance, plot_gains, plot_roc
from custval.tracking import runs
from custval.tracking.classifier_pyfunc import log_classifier_model
from custval.tracking.registry import register_and_promote

CHAMPION_METRIC = "test_roc_auc"  # higher is better
OUTPUT_COLUMN = "churn_probability"
LABEL = "churn"
N_REASONS = 3
N_EXPLAINED = 100  # test customers with the highest churn probability whose reasons are logged
CALIBRATION_METHODS = ("auto", "isotonic", "sigmoid")
SIMULATE = "simulate"
PLOTS = ("plots/gains.png", "plots/calibration.png", "plots/roc.png", "plots/feature_importance.png")


# ------------------------------------------------------------------------------------------ config sections
def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _positive_int(name: str, value) -> None:
    if not _is_int(value) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


def _date(name: str, value) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(str(value))
    except ValueError as exc:
        raise ConfigError(f"{name}: not a date: {value!r}") from exc
    if stamp is pd.NaT:
        raise ConfigError(f"{name}: not a date: {value!r}")
    return stamp


def _optional_path(name: str, value) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{name} must be a path or null, got {value!r}")


def _str_map(name: str, value) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"{name} must map names to column names, got {value!r}")


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
        _optional_path("data.customers", self.customers)
        _optional_path("data.table", self.table)
        _str_map("data.customer_columns", self.customer_columns)
        for name in ("label", "id_column"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"data.{name} must be a column name, got {value!r}")
        if self.table is not None and self.customers is not None:
            raise ConfigError("data.table already holds the customers: drop data.customers")


@dataclass
class SimulateSettings:
    """The simulated business used when data.source is "simulate" (custval.data.simulate_churn)."""

    n_customers: int = 20_000
    seed: int = 0
    start: str = "2023-01-01"
    end: str = "2025-01-01"

    def validate(self) -> None:
        _positive_int("simulate.n_customers", self.n_customers)
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"simulate.seed must be an integer >= 0, got {self.seed!r}")
        if _date("simulate.start", self.start) >= _date("simulate.end", self.end):
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
            _positive_int(f"snapshots.{name}", getattr(self, name))
        if not isinstance(self.windows, tuple) or not self.windows:
            raise ConfigError(f"snapshots.windows must be a list of day counts, got {self.windows!r}")
        for window in self.windows:
            _positive_int("snapshots.windows[]", window)
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
        _positive_int("split.n_valid", self.n_valid)
        _positive_int("split.n_test", self.n_test)
        for name in ("valid_fraction", "test_fraction"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 < value < 1:
                raise ConfigError(f"split.{name} must be a number in (0, 1), got {value!r}")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ConfigError("split.valid_fraction + split.test_fraction must leave rows to train on (< 1)")


@dataclass
class TreeSettings:
    max_depth: int = 5
    min_samples_leaf: int = 100

    def validate(self) -> None:
        _positive_int("model.tree.max_depth", self.max_depth)
        _positive_int("model.tree.min_samples_leaf", self.min_samples_leaf)


def _check_calibration(name: str, value) -> None:
    if value not in CALIBRATION_METHODS:
        raise ConfigError(f"{name} must be one of {list(CALIBRATION_METHODS)}, got {value!r}")


def _check_xgboost(name: str, value) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{name} must be a mapping of BoostedClassifier settings, got {value!r}")
    for key in ("random_state", "callbacks"):
        if key in value:
            raise ConfigError(f"{name}.{key} is set by the job (the seed is `seed`)")


@dataclass
class ModelSettings:
    """tree: the readable depth-limited tree; xgboost: BoostedClassifier keyword arguments (early stopping on
    the valid split); calibration of both on valid: auto (chosen on valid) | isotonic | sigmoid."""

    tree: TreeSettings = field(default_factory=TreeSettings)
    xgboost: dict[str, Any] = field(default_factory=lambda: {
        "n_estimators": 2000, "learning_rate": 0.05, "max_depth": 4, "early_stopping_rounds": 50})
    calibration: str = "auto"

    def validate(self) -> None:
        self.tree.validate()
        _check_xgboost("model.xgboost", self.xgboost)
        _check_calibration("model.calibration", self.calibration)


def _check_common(config) -> None:
    """Checks shared by the churn and propensity configs."""
    for name in ("experiment",):
        value = getattr(config, name)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{name} must be a name, got {value!r}")
    if config.registered_model is not None and (not isinstance(config.registered_model, str)
                                                or not config.registered_model.strip()):
        raise ConfigError(f"registered_model must be a name or null, got {config.registered_model!r}")
    for section in (config.data, config.simulate, config.snapshots, config.split, config.model):
        section.validate()
    if not _is_int(config.seed) or config.seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {config.seed!r}")
    _optional_path("output", config.output)
    _positive_int("top_n", config.top_n)


def _lists(value):
    """Tuples -> lists, recursively: the logged config.yaml (yaml.safe_dump) loads back as the config."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


@dataclass
class ChurnConfig:
    experiment: str = "custval-churn"
    registered_model: str | None = "custval-churn"
    data: ChurnDataConfig = field(default_factory=ChurnDataConfig)
    simulate: SimulateSettings = field(default_factory=SimulateSettings)
    snapshots: SnapshotSettings = field(default_factory=SnapshotSettings)
    split: SplitSettings = field(default_factory=SplitSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    seed: int = 0
    output: str | None = "outputs/churn_scores.parquet"
    top_n: int = 10
    run_name: str | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ChurnConfig:
        """Validated config from a mapping (unknown keys -> ConfigError)."""
        return config_from_dict(cls, raw, name="churn config")

    def validate(self) -> None:
        _check_common(self)

    def as_dict(self) -> dict[str, Any]:
        return _lists(dataclasses.asdict(self))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ChurnConfig:
    """Defaults, updated by the YAML file at `path`, then by `key=value` overrides (e.g. `snapshots.n_cutoffs=8`)."""
    return build_config(ChurnConfig, path, overrides, name="churn config")


def study_key(config) -> str:
    """A short digest of everything that decides the training data and the model family (not where results
    go): equal configs give equal keys, so a tuning study of the same problem is resumed."""
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


def _snapshot_kwargs(config, transactions: pd.DataFrame, as_of: pd.Timestamp, **extra) -> dict[str, Any]:
    s = config.snapshots
    return dict(horizon_days=s.horizon_days, windows=tuple(s.windows), active_days=s.active_days,
                extra_features=CLVFeatures(s.horizon_days) if s.clv_features else None, observation_end=as_of,
                **extra)


def load_dataset(config, *, label: str = LABEL, **snapshot_extra) -> Dataset:
    """Load the configured data and build the training splits (see the module docstring).

    `snapshot_extra` goes to build_snapshots (categories, cross_sell_new_only for propensity).
    """
    data = config.data
    if data.table is not None:
        return _table_dataset(config)
    simulation = None
    customers = None
    if data.source.strip().lower() == SIMULATE:
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
                                  **_snapshot_kwargs(config, transactions, as_of, **snapshot_extra))
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


# ----------------------------------------------------------------------------------------------- models
def xgboost_kwargs(config, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """BoostedClassifier arguments: the job's seed and threads, the config's settings, then `extra` (tuned)."""
    return {"random_state": config.seed, "n_jobs": 2, **dict(config.model.xgboost), **dict(extra or {})}


def fit_boosted(config, X_train, y_train, X_valid, y_valid, extra=None):
    """XGBoost with early stopping on valid, then calibrated on valid: (raw, calibrated)."""
    raw = BoostedClassifier(**xgboost_kwargs(config, extra)).fit(X_train, y_train, eval_set=(X_valid, y_valid))
    return raw, CalibratedClassifier(estimator=raw, method=config.model.calibration).fit(X_valid, y_valid)


def _proba(model, X) -> np.ndarray:
    return np.asarray(model.predict_proba(X))[:, 1].astype("float64")


def _finite(mapping: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in mapping.items() if v is not None and math.isfinite(float(v))}


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


# ------------------------------------------------------------------------------------------------- job
@dataclass
class TrainChurnResult:
    run_id: str
    experiment_id: str
    artifact_uri: str
    tracking_uri: str
    model_uri: str
    registered_version: str | None
    promotion: Any
    kind: str  # "snapshots" or "table"
    as_of: pd.Timestamp | None
    cutoffs: list[pd.Timestamp]
    features: list[str]
    metrics: dict[str, float]  # everything logged: test_* (XGBoost), tree_test_*, oracle_test_*, sizes, ...
    xgboost_params: dict[str, Any]
    calibration: dict[str, str]  # model -> chosen calibration method
    best_iteration: int
    tree_rules: str
    models: dict[str, Any]  # "xgboost" / "tree": the calibrated classifiers
    test_predictions: pd.DataFrame  # customer_id, (cutoff), churn, xgboost, tree, (oracle)
    scores: pd.DataFrame  # customer_id, (as_of), churn_probability, reason_1..3 (most at risk first)
    top_customers: pd.DataFrame
    plots: list[str]
    output: Path | None


def train_churn(config: ChurnConfig, *, tracking_uri: str | None = None,
                xgboost_params: dict[str, Any] | None = None, dataset: Dataset | None = None,
                tags: dict[str, str] | None = None) -> TrainChurnResult:
    """Run the whole churn pipeline once (module docstring); every step's result goes to one MLflow run.

    xgboost_params: BoostedClassifier settings overriding `config.model.xgboost` (e.g. tuned ones).
    dataset: a `load_dataset(config)` result to reuse (the tuner passes the one it tuned on).
    """
    config.validate()
    data = dataset if dataset is not None else load_dataset(config)
    horizon = config.snapshots.horizon_days
    features = data.features
    X_train, X_valid, X_test = (part[features] for part in (data.train, data.valid, data.test))
    y_train, y_valid, y_test = (part[LABEL].to_numpy().astype("int8") for part in (data.train, data.valid, data.test))

    tree = TreeClassifier(max_depth=config.model.tree.max_depth, min_samples_leaf=config.model.tree.min_samples_leaf,
                          class_weight="balanced", random_state=config.seed).fit(X_train, y_train)
    tree_cal = CalibratedClassifier(estimator=tree, method=config.model.calibration).fit(X_valid, y_valid)
    xgb, xgb_cal = fit_boosted(config, X_train, y_train, X_valid, y_valid, xgboost_params)

    p_xgb, p_tree = _proba(xgb_cal, X_test), _proba(tree_cal, X_test)
    metrics: dict[str, float] = {}
    metrics.update({f"test_{k}": v for k, v in classification_report(y_test, p_xgb).items()})
    metrics.update({f"tree_test_{k}": v for k, v in classification_report(y_test, p_tree).items()})
    metrics["valid_roc_auc"] = roc_auc(y_valid, _proba(xgb, X_valid))
    metrics["tree_valid_roc_auc"] = roc_auc(y_valid, _proba(tree, X_valid))
    predictions = {"xgboost": p_xgb, "tree": p_tree}
    oracle = oracle_churn(data, data.test, horizon) if data.kind == "snapshots" else None
    if oracle is not None:
        metrics.update({f"oracle_test_{k}": v for k, v in classification_report(y_test, oracle).items()})
        predictions["oracle"] = oracle
    best_iteration = int(xgb.best_iteration_)
    metrics["best_iteration"] = float(best_iteration)
    for name, part, y in (("train", data.train, y_train), ("valid", data.valid, y_valid), ("test", data.test, y_test)):
        metrics[f"n_{name}"] = float(len(part))
        metrics[f"{name}_churn_rate"] = float(np.mean(y))
    metrics["n_features"] = float(len(features))
    metrics = _finite(metrics)

    id_columns = ["customer_id", "cutoff"] if data.kind == "snapshots" else ["customer_id"]
    test_predictions = data.test[id_columns].assign(**{LABEL: y_test}, **predictions)
    scores = _score(config, data, xgb_cal)
    top = scores.head(config.top_n).reset_index(drop=True)
    xgb_params = xgboost_kwargs(config, xgboost_params)
    calibration = {"xgboost": str(xgb_cal.method_), "tree": str(tree_cal.method_)}
    rules = tree.rules_text()

    uri = runs.configure(tracking_uri)
    provenance = {"custval.data_kind": data.kind, "custval.horizon_days": str(horizon), **dict(tags or {})}
    if data.as_of is not None:
        provenance["custval.as_of"] = str(data.as_of.date())
        provenance["custval.cutoffs"] = ",".join(str(c.date()) for c in data.cutoffs)
    with runs.tracked_run(config.experiment, config=config.as_dict(), run_name=config.run_name,
                          data_fingerprint=data.fingerprint, tags=provenance) as run:
        mlflow.log_params({f"xgboost_fit.{k}": v for k, v in xgb_params.items()})
        mlflow.log_params({f"calibration_method.{k}": v for k, v in calibration.items()})
        mlflow.log_metrics(metrics)
        plots = _log_plots(y_test, predictions, xgb.feature_importances_)
        runs.log_text(rules, "tree_rules.txt")
        runs.log_frame(pd.Series(xgb.feature_importances_, name="importance").to_frame(),
                       "tables/feature_importance.csv")
        order = np.argsort(-p_xgb, kind="stable")[:N_EXPLAINED]
        explained = X_test.iloc[order]
        reasons = xgb_cal.explain(explained, top=N_REASONS)
        runs.log_frame(test_predictions.iloc[order].join(pd.DataFrame(reasons).set_axis(explained.index)),
                       "tables/top_risk_test_explanations.csv")
        runs.log_frame(top, "tables/top_customers.csv")

        model_info = log_classifier_model({OUTPUT_COLUMN: xgb_cal}, X_test.head(5), explain=OUTPUT_COLUMN)
        version, promotion = None, None
        if config.registered_model:
            promotion = register_and_promote(model_info.model_uri, config.registered_model, run_id=run.info.run_id,
                                             metric=CHAMPION_METRIC, value=metrics[CHAMPION_METRIC],
                                             higher_is_better=True)
            version = promotion.version
        output = None
        if config.output:
            output = write_table(scores, config.output, metadata={
                "custval.model": config.registered_model or model_info.model_uri,
                "custval.model_version": version or "",
                "custval.run_id": run.info.run_id,
                "custval.as_of": str(data.as_of.date()) if data.as_of is not None else "",
                "custval.horizon_days": horizon,
                "custval.score": OUTPUT_COLUMN,
            })
        return TrainChurnResult(
            run_id=run.info.run_id, experiment_id=run.info.experiment_id, artifact_uri=run.info.artifact_uri,
            tracking_uri=uri, model_uri=model_info.model_uri, registered_version=version, promotion=promotion,
            kind=data.kind, as_of=data.as_of, cutoffs=list(data.cutoffs), features=list(features), metrics=metrics,
            xgboost_params=xgb_params, calibration=calibration, best_iteration=best_iteration, tree_rules=rules,
            models={"xgboost": xgb_cal, "tree": tree_cal}, test_predictions=test_predictions, scores=scores,
            top_customers=top, plots=list(plots), output=Path(output) if output else None,
        )


def scoring_frame(config, data: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ids, features) of the population to score: every customer active at the observation end (features
    from transactions strictly before it), or every row of a plain table."""
    if data.kind == "table":
        return data.table_ids.to_frame("customer_id"), data.table_features
    population = snap.build_snapshot(data.transactions, data.as_of, customers=data.customers, labels=False,
                                     **_snapshot_kwargs(config, data.transactions, data.as_of,
                                                        categories=data.categories))
    ids = population[["customer_id"]].assign(as_of=data.as_of)
    return ids, population[data.features]


def _score(config, data: Dataset, model) -> pd.DataFrame:
    """churn_probability and the top reasons for the scored population, most at risk first."""
    ids, X = scoring_frame(config, data)
    reasons = pd.DataFrame(model.explain(X, top=N_REASONS))
    keep = [f"reason_{i}" for i in range(1, N_REASONS + 1) if f"reason_{i}" in reasons.columns]
    scores = ids.reset_index(drop=True).assign(**{OUTPUT_COLUMN: _proba(model, X)})
    scores = scores.join(reasons[keep].reset_index(drop=True))
    order = np.argsort(-scores[OUTPUT_COLUMN].to_numpy(), kind="stable")
    return scores.iloc[order].reset_index(drop=True)


def _log_plots(y: np.ndarray, predictions: dict[str, np.ndarray], importances: pd.Series) -> list[str]:
    runs.log_figure(plot_gains(y, predictions), PLOTS[0])
    runs.log_figure(plot_calibration(y, predictions), PLOTS[1])
    runs.log_figure(plot_roc(y, predictions), PLOTS[2])
    runs.log_figure(plot_feature_importance(importances), PLOTS[3])
    return list(PLOTS)
