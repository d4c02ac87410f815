"""Train cross-sell propensity: P(the customer buys category c in the next `horizon_days`) for every product
category, from the same point-in-time snapshots, time split and scoring date as the churn job.

One model per category, bundled into one registered model. Each category gets its own model choice, tree
count and calibration (custval.jobs.snapshot_jobs: the candidates of `model.candidates` cross-validated on its
train + valid rows by customer, the best refitted on all of them and calibrated on the out-of-fold scores of
valid) because the categories differ where it matters: base rates range from common (groceries) to rare
(electronics), so the better model, the number of useful trees, the class weighting and the calibration map
differ per category; a single multi-label booster would share one stopping point and one calibration. They are logged and registered together as ONE
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from custval.config import PropensityConfig, build_config, validate_config
from custval.features import snapshots as snap
from custval.features.datasets import (
    check_class_counts,
    load_dataset,
    modelled_categories,
    oracle_category,
    population,
)
from custval.jobs.inspect import log_data_quality
from custval.jobs.sequence import Champion, Output, TrainedRun, start_job
from custval.jobs.snapshot_jobs import champion_on_holdout, check_models, finite, fit_choice, xgboost_kwargs
from custval.metrics.classification import classification_report, roc_auc
from custval.models.classifiers.baselines import baseline_scores, warn_label_shift, warn_unless_better
from custval.models.clv.features import CLVFeatures
from custval.plots.classification import plot_calibration, plot_gains
from custval.scoring.batch import positive_probability as proba
from custval.scoring.ranking import cross_sell, purchased_categories
from custval.tracking import runs
from custval.tracking.classifier_pyfunc import log_classifier_model

CHAMPION_METRIC = "mean_test_roc_auc"  # higher is better
OUTPUT_PREFIX = "p_"


def check_config(config: PropensityConfig) -> PropensityConfig:
    """The config re-validated and its model settings checked by the estimators' own rules."""
    config = validate_config(type(config), config.model_dump())
    check_models(config)
    return config


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> PropensityConfig:
    """Defaults, updated by the YAML file at `path`, then by `key=value` overrides."""
    return check_config(build_config(PropensityConfig, path, overrides))


@dataclass
class TrainPropensityResult(TrainedRun):
    as_of: pd.Timestamp
    cutoffs: list[pd.Timestamp]
    categories: list[str]
    features: list[str]
    metrics: dict[str, float]  # <category>_test_*, <category>_<candidate>_cv_*, oracle_<category>_test_*, ...
    by_category: pd.DataFrame  # one row per category: chosen model, base rates, sizes, test AUC/PR AUC/Brier, oracle
    models: dict[str, Any]  # p_<category> -> calibrated classifier
    model_features: dict[str, list[str]]  # p_<category> -> the feature columns that model uses
    test_predictions: dict[str, pd.DataFrame]  # category -> customer_id, cutoff, label, p, (oracle)
    scores: pd.DataFrame  # customer_id, as_of, p_<category>..., cross_sell_category, cross_sell_score
    top_customers: pd.DataFrame
    plots: list[str]
    output: Path | None


def _metric_name(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", str(text)).strip("_")


def train_propensity(config: PropensityConfig, *, tracking_uri: str | None = None,
                     promote: bool = False) -> TrainPropensityResult:
    """Fit, evaluate, log, register and score one calibrated model per category (module docstring).
    promote: make the new version champion even when the current champion is better on this run's test rows
    or cannot score them."""
    config = check_config(config)
    with start_job(outputs={"output": config.output}, tracking_uri=tracking_uri,
                   experiment=config.experiment) as job:
        return _train(config, job, promote)


def _train(config: PropensityConfig, job, promote: bool) -> TrainPropensityResult:
    categories = list(config.categories) if config.categories is not None else None
    clv = CLVFeatures(config.snapshots.horizon_days) if config.snapshots.clv_features else None
    data = load_dataset(config, extra_features=clv, categories=categories,
                        cross_sell_new_only=config.cross_sell_new_only)
    categories = modelled_categories(data, config.categories)
    check_class_counts(data, categories)
    horizon = config.snapshots.horizon_days
    features = data.features
    metrics: dict[str, float] = {}
    models: dict[str, Any] = {}
    model_features: dict[str, list[str]] = {}  # p_<category> -> the features its model uses
    rows, test_predictions, oracle_cache, test_rows = [], {}, {}, {}
    for category in categories:
        label = f"{snap.LABEL_PREFIX}{category}"
        parts = [part[part[label].notna()] for part in (data.train, data.valid, data.test)]
        # Among customers who never bought the category, its own recency features are missing in every row.
        used = [f for f in features if parts[0][f].notna().any() or parts[1][f].notna().any()]
        (X_tr, X_va, X_te) = (part[used] for part in parts)
        (y_tr, y_va, y_te) = (part[label].to_numpy().astype("int8") for part in parts)
        chosen = fit_choice(config, parts[0], parts[1], used, label, "snapshots")
        cal = chosen.model
        models[f"{OUTPUT_PREFIX}{category}"] = cal
        model_features[f"{OUTPUT_PREFIX}{category}"] = used
        p = proba(cal, X_te)
        name = _metric_name(category)
        report = classification_report(y_te, p)
        metrics.update({f"{name}_test_{k}": v for k, v in report.items()})
        metrics[f"{name}_valid_roc_auc"] = chosen.choice.best.roc_auc
        metrics.update({f"{name}_{k}": v for k, v in chosen.choice.metrics().items()})
        baselines = {b: roc_auc(y_te, score) for b, score in baseline_scores(X_tr, y_tr, X_te, churn=False).items()}
        metrics.update({f"{name}_baseline_{b}_test_roc_auc": value for b, value in baselines.items()})
        warn_unless_better(f"propensity {category} ({chosen.name})", report["roc_auc"], baselines)
        warn_label_shift(f"propensity {category}", float(np.mean(y_tr)), float(np.mean(y_te)))
        best_iteration = None if chosen.xgboost_trees is None else chosen.xgboost_trees - 1
        if best_iteration is not None:
            metrics[f"{name}_best_iteration"] = float(best_iteration)
        for split_name, part, y in zip(("train", "valid", "test"), parts, (y_tr, y_va, y_te), strict=True):
            metrics[f"{name}_n_{split_name}"] = float(len(part))
            metrics[f"{name}_{split_name}_rate"] = float(np.mean(y))
        frame = parts[2][["customer_id", "cutoff"]].assign(label=y_te, p=p).reset_index(drop=True)
        oracle = oracle_category(data, parts[2], category, horizon, oracle_cache)
        row = {"category": category, "model": chosen.name, "calibration": str(cal.method_),
               "best_iteration": best_iteration,
               "n_features": len(used), "n_train": len(parts[0]), "train_rate": float(np.mean(y_tr)), "test_rate": float(np.mean(y_te)),
               "test_roc_auc": report["roc_auc"], "test_pr_auc": report["pr_auc"], "test_brier": report["brier"]}
        if oracle is not None:
            oracle_report = classification_report(y_te, oracle)
            metrics.update({f"oracle_{name}_test_{k}": v for k, v in oracle_report.items()})
            frame["oracle"] = oracle
            row.update(oracle_test_roc_auc=oracle_report["roc_auc"], oracle_test_brier=oracle_report["brier"])
        test_predictions[category] = frame
        test_rows[category] = (parts[2], y_te)
        rows.append(row)
    by_category = pd.DataFrame(rows).set_index("category")
    metrics[CHAMPION_METRIC] = float(by_category["test_roc_auc"].mean())
    if "oracle_test_roc_auc" in by_category.columns:
        metrics["mean_oracle_test_roc_auc"] = float(by_category["oracle_test_roc_auc"].mean())
    metrics["n_categories"] = float(len(categories))
    metrics["n_features"] = float(len(features))
    metrics = finite(metrics)

    ids, X = population(data)
    probabilities = pd.DataFrame({out: proba(model, X[model_features[out]]) for out, model in models.items()},
                                 index=ids.index)
    bought = purchased_categories(data.transactions, data.as_of, categories, ids["customer_id"].to_numpy())
    bought.index = ids.index
    best = cross_sell(probabilities, bought)  # same column order: categories
    scores = pd.concat([ids, probabilities, best], axis=1).reset_index(drop=True)
    top = scores.sort_values("cross_sell_score", ascending=False, kind="stable").head(config.top_n)
    top = top.reset_index(drop=True)

    provenance = {"custval.as_of": str(data.as_of.date()), "custval.horizon_days": str(horizon),
                  "custval.cutoffs": ",".join(str(c.date()) for c in data.cutoffs),
                  "custval.categories": ",".join(categories)}
    with runs.tracked_run(config.experiment, config=config.as_dict(), run_name=config.run_name,
                          data_fingerprint=data.fingerprint, tags=provenance) as run:
        mlflow.log_params({f"xgboost_fit.{k}": v for k, v in xgboost_kwargs(config).items()})
        mlflow.log_params({f"calibration_method.{_metric_name(c)}": m
                           for c, m in by_category["calibration"].items()})
        mlflow.log_params({f"chosen_model.{_metric_name(c)}": m for c, m in by_category["model"].items()})
        mlflow.log_metrics(metrics)
        log_data_quality(data.transactions)
        runs.log_frame(by_category, "tables/by_category.csv")
        importance = pd.DataFrame({c: models[f"{OUTPUT_PREFIX}{c}"].feature_importances_ for c in categories})
        importance = importance.reindex(features)
        runs.log_frame(importance, "tables/feature_importance.csv")
        runs.log_frame(top, "tables/top_cross_sell.csv")
        plots = []
        for category, frame in test_predictions.items():
            curves = {str(by_category.loc[category, "model"]): frame["p"].to_numpy()}
            if "oracle" in frame.columns:
                curves["oracle"] = frame["oracle"].to_numpy()
            y = frame["label"].to_numpy()
            name = _metric_name(category)
            for kind, plot in (("gains", plot_gains), ("calibration", plot_calibration)):
                path = f"plots/{kind}_{name}.png"
                runs.log_figure(plot(y, curves), path)
                plots.append(path)

        # the champion is earned on this run's test rows: the current champion is scored on the same rows
        on_holdout = champion_on_holdout(config.registered_model, lambda champion: float(np.mean([
            roc_auc(y, champion.score(rows_of)[f"{OUTPUT_PREFIX}{category}"])
            for category, (rows_of, y) in test_rows.items()])))
        if on_holdout is not None and on_holdout.value is not None:
            mlflow.log_metric(f"champion_{CHAMPION_METRIC}", on_holdout.value)
        # the test split (not its first rows): log_classifier_model picks example rows that show missing values
        model_info = log_classifier_model(models, data.test[features], recipe=data.recipe(
            "propensity", clv_features=config.snapshots.clv_features))
        metadata = {"custval.as_of": str(data.as_of.date()), "custval.horizon_days": horizon,
                    "custval.categories": categories, "custval.cross_sell_new_only": config.cross_sell_new_only}
        done = job.finish(run, outputs=[Output("output", scores, metadata)], model=model_info,
                          registered_model=config.registered_model,
                          champion=Champion(CHAMPION_METRIC, metrics[CHAMPION_METRIC], higher_is_better=True,
                                            comparable_tag="custval.categories", champion_score=on_holdout,
                                            force=promote))
        return TrainPropensityResult(
            run_id=run.info.run_id, experiment_id=run.info.experiment_id, artifact_uri=run.info.artifact_uri,
            tracking_uri=job.tracking_uri, model_uri=done.model_uri, registered_version=done.registered_version,
            promotion=done.promotion,
            as_of=data.as_of, cutoffs=list(data.cutoffs), categories=categories, features=list(features),
            metrics=metrics, by_category=by_category, models=models, model_features=model_features, test_predictions=test_predictions,
            scores=scores, top_customers=top, plots=plots, output=done.output,
        )
