"""Train the churn pipeline: transactions (or a plain customer table) -> point-in-time snapshots at several
cutoffs -> train/valid/test split by time -> a depth-limited decision tree and XGBoost (early stopping on
valid), each calibrated on valid -> test metrics against each other and, on simulated data, against the
simulator's Bayes probabilities -> one MLflow run (metrics, plots, tree rules, reasons of the top-risk test
customers, the calibrated XGBoost as a pyfunc returning `churn_probability`) -> every active customer scored
as of the observation end, with its top-3 reasons, written atomically -> only then the registry
(`custval-churn`, champion by test ROC AUC), so a failed write never leaves a new champion behind.

Churn = no purchase in the `horizon_days` after a cutoff, among customers with a purchase in the
`active_days` before it. A plain customer table (`data.table`: one row per customer with a label column,
e.g. a telecom churn export) has no time: it is split at random, stratified on the label, and the whole
table is scored.

The defaults of `ChurnConfig` are the demo: 20,000 simulated customers over 2023-2024 (`pipelines/churn.yaml`
spells them out). The config sections and the data loading are shared with `custval.jobs.train_propensity`
(`custval.config.SnapshotJobConfig`, `custval.features.datasets`); the run follows `custval.jobs.sequence`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from custval.config import ChurnConfig, build_config, validate_config
from custval.features.datasets import LABEL, Dataset, load_dataset, oracle_churn, population
from custval.jobs.inspect import log_data_quality
from custval.jobs.sequence import Champion, Output, TrainedRun, start_job
from custval.jobs.snapshot_jobs import champion_on_holdout, check_models, finite, fit_choice
from custval.metrics.classification import classification_report, roc_auc
from custval.models.classifiers import CalibratedClassifier, TreeClassifier
from custval.models.classifiers.baselines import baseline_scores, warn_label_shift, warn_unless_better
from custval.models.clv.features import CLVFeatures
from custval.plots.classification import plot_calibration, plot_feature_importance, plot_gains, plot_roc
from custval.scoring.batch import positive_probability as proba
from custval.scoring.batch import score_with_reasons
from custval.tracking import runs
from custval.tracking.classifier_pyfunc import log_classifier_model

CHAMPION_METRIC = "test_roc_auc"  # higher is better
OUTPUT_COLUMN = "churn_probability"
N_REASONS = 3
N_EXPLAINED = 100  # test customers with the highest churn probability whose reasons are logged
PLOTS = ("plots/gains.png", "plots/calibration.png", "plots/roc.png", "plots/feature_importance.png")


def check_config(config: ChurnConfig) -> ChurnConfig:
    """The config re-validated (a hand-built or edited one too) and its model settings checked by the
    estimators' own rules, before any data is loaded."""
    config = validate_config(type(config), config.model_dump())
    check_models(config)
    return config


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ChurnConfig:
    """Defaults, updated by the YAML file at `path`, then by `key=value` overrides (e.g. `snapshots.n_cutoffs=8`)."""
    return check_config(build_config(ChurnConfig, path, overrides))


def churn_dataset(config: ChurnConfig) -> Dataset:
    """The labelled snapshots (or customer table) the churn models are trained on."""
    clv = CLVFeatures(config.snapshots.horizon_days) if config.snapshots.clv_features else None
    return load_dataset(config, extra_features=clv)


# ------------------------------------------------------------------------------------------------- job
@dataclass
class TrainChurnResult(TrainedRun):
    kind: str  # "snapshots" or "table"
    as_of: pd.Timestamp | None
    cutoffs: list[pd.Timestamp]
    features: list[str]
    metrics: dict[str, float]  # everything logged: test_* (the chosen model), <candidate>_cv_*, tree_test_*, ...
    xgboost_params: dict[str, Any]
    calibration: dict[str, str]  # model -> chosen calibration method
    best_iteration: int | None  # XGBoost's tree count from the cross-validation - 1 (None: not a candidate)
    tree_rules: str
    chosen: str  # the candidate chosen and registered: xgboost, logistic or average
    model_choice: pd.DataFrame  # one row per candidate: cv_roc_auc, cv_roc_auc_std, cv_log_loss, n_trees, chosen
    models: dict[str, Any]  # <chosen> / "tree": the calibrated classifiers
    test_predictions: pd.DataFrame  # customer_id, (cutoff), churn, <chosen>, tree, (oracle)
    scores: pd.DataFrame  # customer_id, (as_of), churn_probability, reason_1..3 (most at risk first)
    top_customers: pd.DataFrame
    plots: list[str]
    output: Path | None


def train_churn(config: ChurnConfig, *, tracking_uri: str | None = None,
                xgboost_params: dict[str, Any] | None = None, dataset: Dataset | None = None,
                tags: dict[str, str] | None = None, promote: bool = False) -> TrainChurnResult:
    """Run the whole churn pipeline once (module docstring); every step's result goes to one MLflow run.

    xgboost_params: BoostedClassifier settings overriding `config.model.xgboost` (e.g. tuned ones); the tree
    count of the refit is still the cross-validation's.
    dataset: a `load_dataset(config)` result to reuse (the tuner passes the one it tuned on).
    promote: make the new version champion even when the current champion is better on this run's test
    split or cannot score it (another schema).
    """
    config = check_config(config)
    with start_job(outputs={"output": config.output}, tracking_uri=tracking_uri,
                   experiment=config.experiment) as job:
        return _train(config, job, xgboost_params, dataset, tags, promote)


def _train(config: ChurnConfig, job, xgboost_params, dataset, tags, promote: bool) -> TrainChurnResult:
    data = dataset if dataset is not None else churn_dataset(config)
    horizon = config.snapshots.horizon_days
    features = data.features
    X_train, X_valid, X_test = (part[features] for part in (data.train, data.valid, data.test))
    y_train, y_valid, y_test = (part[LABEL].to_numpy().astype("int8") for part in (data.train, data.valid, data.test))

    tree = TreeClassifier(max_depth=config.model.tree.max_depth, min_samples_leaf=config.model.tree.min_samples_leaf,
                          class_weight="balanced", random_state=config.seed).fit(X_train, y_train)
    tree_cal = CalibratedClassifier(estimator=tree, method=config.model.calibration).fit(X_valid, y_valid)
    chosen = fit_choice(config, data.train, data.valid, features, LABEL, data.kind, xgboost_params)
    name, model = chosen.name, chosen.model

    p_model, p_tree = proba(model, X_test), proba(tree_cal, X_test)
    metrics: dict[str, float] = {}
    metrics.update({f"test_{k}": v for k, v in classification_report(y_test, p_model).items()})
    metrics.update({f"tree_test_{k}": v for k, v in classification_report(y_test, p_tree).items()})
    metrics["valid_roc_auc"] = chosen.choice.best.roc_auc
    metrics.update(chosen.choice.metrics())
    metrics["tree_valid_roc_auc"] = roc_auc(y_valid, proba(tree, X_valid))
    predictions = {name: p_model, "tree": p_tree}
    oracle = oracle_churn(data, data.test, horizon) if data.kind == "snapshots" else None
    if oracle is not None:
        metrics.update({f"oracle_test_{k}": v for k, v in classification_report(y_test, oracle).items()})
        predictions["oracle"] = oracle
    baselines = {b: roc_auc(y_test, score) for b, score in
                 baseline_scores(X_train, y_train, X_test, churn=True).items()}
    metrics.update({f"baseline_{b}_test_roc_auc": value for b, value in baselines.items()})
    warn_unless_better(f"churn {name}", metrics["test_roc_auc"], baselines)
    warn_label_shift("churn", float(np.mean(y_train)), float(np.mean(y_test)))
    best_iteration = None if chosen.xgboost_trees is None else chosen.xgboost_trees - 1
    if best_iteration is not None:
        metrics["best_iteration"] = float(best_iteration)
    for part_name, part, y in (("train", data.train, y_train), ("valid", data.valid, y_valid),
                               ("test", data.test, y_test)):
        metrics[f"n_{part_name}"] = float(len(part))
        metrics[f"{part_name}_churn_rate"] = float(np.mean(y))
    metrics["n_cv_folds"] = float(len(chosen.choice.folds))
    metrics["n_features"] = float(len(features))
    metrics = finite(metrics)

    id_columns = ["customer_id", "cutoff"] if data.kind == "snapshots" else ["customer_id"]
    test_predictions = data.test[id_columns].assign(**{LABEL: y_test}, **predictions)
    ids, X = population(data)
    scores = score_with_reasons(model, ids, X, column=OUTPUT_COLUMN, reasons=N_REASONS)
    top = scores.head(config.top_n).reset_index(drop=True)
    xgb_params = chosen.xgboost_params
    calibration = {name: str(model.method_), "tree": str(tree_cal.method_)}
    rules = tree.rules_text()
    model_choice = chosen.choice.table()

    provenance = {"custval.data_kind": data.kind, "custval.chosen_model": name, **dict(tags or {})}
    if data.kind == "snapshots":
        provenance["custval.horizon_days"] = str(horizon)
        provenance["custval.as_of"] = str(data.as_of.date())
        provenance["custval.cutoffs"] = ",".join(str(c.date()) for c in data.cutoffs)
    with runs.tracked_run(config.experiment, config=config.as_dict(), run_name=config.run_name,
                          data_fingerprint=data.fingerprint, tags=provenance) as run:
        mlflow.log_params({f"xgboost_fit.{k}": v for k, v in xgb_params.items()})
        mlflow.log_params({f"calibration_method.{k}": v for k, v in calibration.items()})
        mlflow.log_param("chosen_model", name)
        mlflow.log_metrics(metrics)
        importances = model.feature_importances_
        plots = _log_plots(y_test, predictions, importances)
        runs.log_text(rules, "tree_rules.txt")
        log_data_quality(data.transactions)
        runs.log_frame(pd.Series(importances, name="importance").to_frame(), "tables/feature_importance.csv")
        runs.log_frame(model_choice, "tables/model_choice.csv")
        order = np.argsort(-p_model, kind="stable")[:N_EXPLAINED]
        explained = X_test.iloc[order]
        reasons = model.explain(explained, top=N_REASONS)
        runs.log_frame(test_predictions.iloc[order].join(pd.DataFrame(reasons).set_axis(explained.index)),
                       "tables/top_risk_test_explanations.csv")
        runs.log_frame(top, "tables/top_customers.csv")

        metadata = {"custval.as_of": str(data.as_of.date()) if data.as_of is not None else "",
                    "custval.score": OUTPUT_COLUMN}
        if data.kind == "snapshots":
            metadata["custval.horizon_days"] = horizon
        # the champion is earned on this run's test split: the current champion is scored on the same rows
        on_holdout = champion_on_holdout(
            config.registered_model, lambda champion: roc_auc(y_test, champion.score(X_test)[OUTPUT_COLUMN]))
        if on_holdout is not None and on_holdout.value is not None:
            mlflow.log_metric(f"champion_{CHAMPION_METRIC}", on_holdout.value)
        # the test split (not its first rows): log_classifier_model picks example rows that show missing values
        model_info = log_classifier_model({OUTPUT_COLUMN: model}, X_test, explain=OUTPUT_COLUMN,
                                          recipe=data.recipe(LABEL, clv_features=config.snapshots.clv_features))
        done = job.finish(run, outputs=[Output("output", scores, metadata)], model=model_info,
                          registered_model=config.registered_model,
                          champion=Champion(CHAMPION_METRIC, metrics[CHAMPION_METRIC], higher_is_better=True,
                                            champion_score=on_holdout, force=promote))
        return TrainChurnResult(
            run_id=run.info.run_id, experiment_id=run.info.experiment_id, artifact_uri=run.info.artifact_uri,
            tracking_uri=job.tracking_uri, model_uri=done.model_uri, registered_version=done.registered_version,
            promotion=done.promotion,
            kind=data.kind, as_of=data.as_of, cutoffs=list(data.cutoffs), features=list(features), metrics=metrics,
            xgboost_params=xgb_params, calibration=calibration, best_iteration=best_iteration, tree_rules=rules,
            chosen=name, model_choice=model_choice, models={name: model, "tree": tree_cal},
            test_predictions=test_predictions, scores=scores,
            top_customers=top, plots=list(plots), output=done.output,
        )


def _log_plots(y: np.ndarray, predictions: dict[str, np.ndarray], importances: pd.Series) -> list[str]:
    runs.log_figure(plot_gains(y, predictions), PLOTS[0])
    runs.log_figure(plot_calibration(y, predictions), PLOTS[1])
    runs.log_figure(plot_roc(y, predictions), PLOTS[2])
    runs.log_figure(plot_feature_importance(importances), PLOTS[3])
    return list(PLOTS)
