"""Train cross-sell propensity: P(the customer buys category c in the next `horizon_days`) for every product
category, from the same point-in-time snapshots, time split and scoring date as the churn job.

One model per category, bundled into one registered model. Each category gets its own XGBoost with its own
early stopping and its own calibration because the categories differ where it matters: base rates range
from common (groceries) to rare (electronics), so the number of useful trees, the class weighting and the
calibration map (isotonic or sigmoid, chosen on valid) differ per category; a single multi-label booster
would share one stopping point and one calibration. They are logged and registered together as ONE
multi-output pyfunc (`custval-propensity`, outputs `p_<category>`) so that every score of a customer comes
from the same version: the cross-sell argmax over categories never mixes versions trained on different data.
The champion metric is the mean test ROC AUC over the categories, so a new version takes `champion` only from
a champion of the same categories (run tag `custval.categories`); over other categories it stays challenger.

With `cross_sell_new_only` (default) a category's model is trained and tested only on customers who never
bought it before the cutoff: cross-sell is about new categories. The output has p_<category> for every
active customer and the best `cross_sell_category` / `cross_sell_score` among the categories the customer
has not bought yet (null when they have bought them all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from custval.config import build_config, config_from_dict
from custval.errors import ConfigError, DataError
from custval.features import snapshots as snap
from custval.jobs._snapshot_job import (
    ChurnDataConfig,
    Dataset,
    SimulateSettings,
    SnapshotJobConfig,
    SnapshotSettings,
    SplitSettings,
    check_calibration,
    check_xgboost,
    finish_run,
    finite,
    fit_boosted,
    load_dataset,
    proba,
    scoring_frame,
    xgboost_kwargs,
)
from custval.metrics.classification import classification_report, roc_auc
from custval.plots.classification import plot_calibration, plot_gains
from custval.tracking import runs

__all__ = ["CHAMPION_METRIC", "MIN_PER_CLASS", "OUTPUT_PREFIX", "ChurnDataConfig", "PropensityConfig",
           "PropensityModelSettings", "SimulateSettings", "SnapshotSettings", "SplitSettings",
           "TrainPropensityResult", "cross_sell", "load_config", "purchased_categories", "train_propensity"]

CHAMPION_METRIC = "mean_test_roc_auc"  # higher is better
OUTPUT_PREFIX = "p_"
# buyers and non-buyers each split needs: both classes to train, 2 of each for calibration's stratified folds
# on valid, both for the test ROC AUC
MIN_PER_CLASS = 2


@dataclass
class PropensityModelSettings:
    """xgboost: BoostedClassifier keyword arguments shared by every category's model (each stops early on
    its own valid labels); calibration per category on valid: auto | isotonic | sigmoid."""

    xgboost: dict[str, Any] = field(default_factory=lambda: {
        "n_estimators": 2000, "learning_rate": 0.05, "max_depth": 4, "early_stopping_rounds": 50})
    calibration: str = "auto"

    def validate(self) -> None:
        check_xgboost("model.xgboost", self.xgboost)
        check_calibration("model.calibration", self.calibration)


@dataclass
class PropensityConfig(SnapshotJobConfig):
    experiment: str = "custval-propensity"
    registered_model: str | None = "custval-propensity"
    output: str | None = "outputs/propensity_scores.parquet"
    model: PropensityModelSettings = field(default_factory=PropensityModelSettings)
    categories: tuple | None = None  # None = every category in the transactions
    cross_sell_new_only: bool = True

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PropensityConfig:
        return config_from_dict(cls, raw, name="propensity config")

    def validate(self) -> None:
        if self.data.table is not None:
            raise ConfigError("propensity needs transactions with a category column, not a customer table "
                              "(data.table); set data.source instead")
        super().validate()
        if self.categories is not None and (not isinstance(self.categories, tuple) or not self.categories or not all(
                isinstance(c, str) and c for c in self.categories) or len(set(self.categories)) != len(self.categories)):
            raise ConfigError(f"categories must be a list of distinct category names or null, got {self.categories!r}")
        if not isinstance(self.cross_sell_new_only, bool):
            raise ConfigError(f"cross_sell_new_only must be true or false, got {self.cross_sell_new_only!r}")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> PropensityConfig:
    """Defaults, updated by the YAML file at `path`, then by `key=value` overrides."""
    return build_config(PropensityConfig, path, overrides, name="propensity config")


@dataclass
class TrainPropensityResult:
    run_id: str
    experiment_id: str
    artifact_uri: str
    tracking_uri: str
    model_uri: str
    registered_version: str | None
    promotion: Any
    as_of: pd.Timestamp
    cutoffs: list[pd.Timestamp]
    categories: list[str]
    features: list[str]
    metrics: dict[str, float]  # <category>_test_* per category, oracle_<category>_test_*, mean_test_roc_auc, ...
    by_category: pd.DataFrame  # one row per category: base rates, sizes, test AUC/PR AUC/Brier, oracle AUC
    models: dict[str, Any]  # p_<category> -> calibrated classifier
    model_features: dict[str, list[str]]  # p_<category> -> the feature columns that model uses
    test_predictions: dict[str, pd.DataFrame]  # category -> customer_id, cutoff, label, p, (oracle)
    scores: pd.DataFrame  # customer_id, as_of, p_<category>..., cross_sell_category, cross_sell_score
    top_customers: pd.DataFrame
    plots: list[str]
    output: Path | None


def _metric_name(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", str(text)).strip("_")


def _categories(config: PropensityConfig, data: Dataset) -> list[str]:
    """The categories modelled: the configured ones (each must occur in the transactions) or every label
    column of the snapshots."""
    labelled = [c[len(snap.LABEL_PREFIX):] for c in snap.label_columns(data.train) if c.startswith(snap.LABEL_PREFIX)]
    if "category" not in data.transactions.columns or not labelled:
        raise DataError("transactions", "category", "propensity needs a category column in the transactions")
    if config.categories is None:
        return labelled
    present = set(data.transactions["category"].dropna().astype(str).unique())
    missing = [c for c in config.categories if c not in present or c not in labelled]
    if missing:
        raise DataError("transactions", "category",
                        f"configured category has no transactions (present: {sorted(present)})", missing[0])
    return list(config.categories)


def check_class_counts(data: Dataset, categories: list[str]) -> None:
    """Every category needs MIN_PER_CLASS buyers and non-buyers in each of train, valid and test (among its
    labelled rows): checked for all categories before any model is fitted, so the error names the category."""
    for category in categories:
        label = f"{snap.LABEL_PREFIX}{category}"
        counts = {}
        for name, part in (("train", data.train), ("valid", data.valid), ("test", data.test)):
            y = part[label].dropna().to_numpy()
            counts[name] = {"buyers": int((y == 1).sum()), "non-buyers": int((y == 0).sum())}
        short = [name for name, c in counts.items() if min(c.values()) < MIN_PER_CLASS]
        if short:
            raise DataError("snapshots", label,
                            f"needs at least {MIN_PER_CLASS} buyers and {MIN_PER_CLASS} non-buyers in each of "
                            f"train/valid/test to fit, calibrate and test its model; too few in {'/'.join(short)} "
                            "(drop the category, add data or change the snapshot settings)", counts)


def _oracle(data: Dataset, frame: pd.DataFrame, category: str, horizon_days: int, cache: dict) -> np.ndarray | None:
    """The simulator's P(buys `category` in the window) for each (customer_id, cutoff) row of `frame`."""
    sim = data.simulation
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


def purchased_categories(transactions: pd.DataFrame, as_of: pd.Timestamp, categories: list[str],
                         customer_ids) -> pd.DataFrame:
    """Boolean frame (index customer_ids, one column per category): bought it before `as_of`."""
    before = transactions.loc[transactions["timestamp"] < as_of, ["customer_id", "category"]]
    bought = pd.crosstab(before["customer_id"], before["category"].astype("string")) > 0
    return bought.reindex(index=pd.Index(customer_ids), columns=categories, fill_value=False).astype(bool)


def cross_sell(probabilities: pd.DataFrame, bought: pd.DataFrame) -> pd.DataFrame:
    """Best category not bought yet: cross_sell_category (string, <NA> when all bought), cross_sell_score.
    `probabilities` (p_<category> columns) and `bought` (category columns) list the categories in the same order."""
    p = probabilities.to_numpy(dtype=float).copy()
    p[bought.to_numpy(dtype=bool)] = -np.inf
    best = np.argmax(p, axis=1)
    score = p[np.arange(len(p)), best]
    none_left = ~np.isfinite(score)
    names = np.asarray(list(bought.columns), dtype=object)[best]
    category = pd.array(np.where(none_left, None, names), dtype="string")
    return pd.DataFrame({"cross_sell_category": category, "cross_sell_score": np.where(none_left, np.nan, score)},
                        index=probabilities.index)


def train_propensity(config: PropensityConfig, *, tracking_uri: str | None = None) -> TrainPropensityResult:
    """Fit, evaluate, log, register and score one calibrated XGBoost per category (module docstring)."""
    config.validate()
    categories = list(config.categories) if config.categories is not None else None
    data = load_dataset(config, categories=categories, cross_sell_new_only=config.cross_sell_new_only)
    categories = _categories(config, data)
    check_class_counts(data, categories)
    horizon = config.snapshots.horizon_days
    features = data.features
    metrics: dict[str, float] = {}
    models: dict[str, Any] = {}
    model_features: dict[str, list[str]] = {}  # p_<category> -> the features its model uses
    raw_models: dict[str, Any] = {}
    rows, test_predictions, oracle_cache = [], {}, {}
    for category in categories:
        label = f"{snap.LABEL_PREFIX}{category}"
        parts = [part[part[label].notna()] for part in (data.train, data.valid, data.test)]
        # Among customers who never bought the category, its own recency features are missing in every row.
        used = [f for f in features if parts[0][f].notna().any()]
        (X_tr, X_va, X_te) = (part[used] for part in parts)
        (y_tr, y_va, y_te) = (part[label].to_numpy().astype("int8") for part in parts)
        raw, cal = fit_boosted(config, X_tr, y_tr, X_va, y_va)
        models[f"{OUTPUT_PREFIX}{category}"], raw_models[category] = cal, raw
        model_features[f"{OUTPUT_PREFIX}{category}"] = used
        p = proba(cal, X_te)
        name = _metric_name(category)
        report = classification_report(y_te, p)
        metrics.update({f"{name}_test_{k}": v for k, v in report.items()})
        metrics[f"{name}_valid_roc_auc"] = roc_auc(y_va, proba(raw, X_va))
        metrics[f"{name}_best_iteration"] = float(raw.best_iteration_)
        for split_name, part, y in zip(("train", "valid", "test"), parts, (y_tr, y_va, y_te), strict=True):
            metrics[f"{name}_n_{split_name}"] = float(len(part))
            metrics[f"{name}_{split_name}_rate"] = float(np.mean(y))
        frame = parts[2][["customer_id", "cutoff"]].assign(label=y_te, p=p).reset_index(drop=True)
        oracle = _oracle(data, parts[2], category, horizon, oracle_cache)
        row = {"category": category, "calibration": str(cal.method_), "best_iteration": int(raw.best_iteration_),
               "n_features": len(used), "n_train": len(parts[0]), "train_rate": float(np.mean(y_tr)), "test_rate": float(np.mean(y_te)),
               "test_roc_auc": report["roc_auc"], "test_pr_auc": report["pr_auc"], "test_brier": report["brier"]}
        if oracle is not None:
            oracle_report = classification_report(y_te, oracle)
            metrics.update({f"oracle_{name}_test_{k}": v for k, v in oracle_report.items()})
            frame["oracle"] = oracle
            row.update(oracle_test_roc_auc=oracle_report["roc_auc"], oracle_test_brier=oracle_report["brier"])
        test_predictions[category] = frame
        rows.append(row)
    by_category = pd.DataFrame(rows).set_index("category")
    metrics[CHAMPION_METRIC] = float(by_category["test_roc_auc"].mean())
    if "oracle_test_roc_auc" in by_category.columns:
        metrics["mean_oracle_test_roc_auc"] = float(by_category["oracle_test_roc_auc"].mean())
    metrics["n_categories"] = float(len(categories))
    metrics["n_features"] = float(len(features))
    metrics = finite(metrics)

    ids, X = scoring_frame(config, data)
    probabilities = pd.DataFrame({out: proba(model, X[model_features[out]]) for out, model in models.items()},
                                 index=ids.index)
    bought = purchased_categories(data.transactions, data.as_of, categories, ids["customer_id"].to_numpy())
    bought.index = ids.index
    best = cross_sell(probabilities, bought)  # same column order: categories
    scores = pd.concat([ids, probabilities, best], axis=1).reset_index(drop=True)
    top = scores.sort_values("cross_sell_score", ascending=False, kind="stable").head(config.top_n)
    top = top.reset_index(drop=True)

    uri = runs.configure(tracking_uri)
    provenance = {"custval.as_of": str(data.as_of.date()), "custval.horizon_days": str(horizon),
                  "custval.cutoffs": ",".join(str(c.date()) for c in data.cutoffs),
                  "custval.categories": ",".join(categories)}
    with runs.tracked_run(config.experiment, config=config.as_dict(), run_name=config.run_name,
                          data_fingerprint=data.fingerprint, tags=provenance) as run:
        mlflow.log_params({f"xgboost_fit.{k}": v for k, v in xgboost_kwargs(config).items()})
        mlflow.log_params({f"calibration_method.{_metric_name(c)}": m
                           for c, m in by_category["calibration"].items()})
        mlflow.log_metrics(metrics)
        runs.log_frame(by_category, "tables/by_category.csv")
        importance = pd.DataFrame({c: m.feature_importances_ for c, m in raw_models.items()}).reindex(features)
        runs.log_frame(importance, "tables/feature_importance.csv")
        runs.log_frame(top, "tables/top_cross_sell.csv")
        plots = []
        for category, frame in test_predictions.items():
            curves = {"xgboost": frame["p"].to_numpy()}
            if "oracle" in frame.columns:
                curves["oracle"] = frame["oracle"].to_numpy()
            y = frame["label"].to_numpy()
            name = _metric_name(category)
            for kind, plot in (("gains", plot_gains), ("calibration", plot_calibration)):
                path = f"plots/{kind}_{name}.png"
                runs.log_figure(plot(y, curves), path)
                plots.append(path)

        # the test split (not its first rows): log_classifier_model picks example rows that show missing values
        done = finish_run(config, run, models=models, input_example=data.test[features], scores=scores,
                          metadata={"custval.as_of": str(data.as_of.date()), "custval.horizon_days": horizon,
                                    "custval.categories": categories,
                                    "custval.cross_sell_new_only": config.cross_sell_new_only},
                          metric=CHAMPION_METRIC, value=metrics[CHAMPION_METRIC],
                          comparable_tag="custval.categories")
        return TrainPropensityResult(
            run_id=run.info.run_id, experiment_id=run.info.experiment_id, artifact_uri=run.info.artifact_uri,
            tracking_uri=uri, model_uri=done.model_uri, registered_version=done.registered_version,
            promotion=done.promotion,
            as_of=data.as_of, cutoffs=list(data.cutoffs), categories=categories, features=list(features),
            metrics=metrics, by_category=by_category, models=models, model_features=model_features, test_predictions=test_predictions,
            scores=scores, top_customers=top, plots=plots, output=done.output,
        )
