"""Train the CLV pipeline: transactions -> calibration/holdout RFM -> BG/NBD + Gamma-Gamma -> holdout check ->
refit on the whole window -> MLflow run (params, metrics, plots, model with signature) -> registry aliases.
A new version competes for champion only with a champion evaluated on the same holdout window (its run tag
custval.holdout_window); the limits the fits took, if any (e.g. BG/NBD's "nbd"), are run tags too.

The defaults of `CLVConfig` are the demo: the full CDNOW log shipped with `lifetimes`, calibration weeks 1-39.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd

from custval import units
from custval.config import CLVConfig, build_config, validate_config
from custval.data.fingerprint import frame_fingerprint
from custval.data.loaders import load_log
from custval.features.datasets import calibration_window
from custval.features.rfm import calibration_holdout_split, rfm_summary
from custval.jobs.inspect import log_data_quality
from custval.jobs.sequence import Champion, Output, TrainedRun, check_settings, start_job
from custval.metrics.clv import holdout_by_frequency, holdout_metrics
from custval.models.clv.diagnostics import tracking_curve
from custval.models.clv.value import SETTING_NAMES, customer_value
from custval.plots.clv import plot_calibration_holdout, plot_clv_distribution, plot_tracking
from custval.tracking import runs
from custval.tracking.pyfunc import log_clv_model

RFM_COLUMNS = ["frequency", "recency", "T", "monetary_value"]
CHAMPION_METRIC = "holdout_mae"  # per-customer MAE of holdout repeat purchases: lower is better
# the run tag a champion must share to be compared: the MAE of a 2-day holdout says nothing against a 5-day one's
HOLDOUT_WINDOW_TAG = "custval.holdout_window"


def holdout_window(calibration_end: pd.Timestamp, observation_end: pd.Timestamp) -> str:
    """The holdout (calibration_end, observation_end] as its run tag records it, e.g. '2011-06-30..2011-12-09'."""
    return f"{calibration_end.date()}..{observation_end.date()}"


def check_config(config: CLVConfig) -> CLVConfig:
    """The config re-validated and its model settings checked by CustomerValue's own rules."""
    config = validate_config(type(config), config.model_dump())
    check_settings(lambda: customer_value(**config.clv_settings()), names=SETTING_NAMES)
    return config


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> CLVConfig:
    """Defaults, updated by the YAML file at `path`, then by `key=value` overrides."""
    return check_config(build_config(CLVConfig, path, overrides))


@dataclass
class TrainCLVResult(TrainedRun):
    calibration_end: pd.Timestamp
    observation_end: pd.Timestamp
    calibration_params: dict[str, float]
    params: dict[str, float]
    metrics: dict[str, float]
    by_frequency: pd.DataFrame
    top_customers: pd.DataFrame
    scores: pd.DataFrame
    plots: list[str]
    output: Path | None


def train_clv(config: CLVConfig, *, tracking_uri: str | None = None, promote: bool = False) -> TrainCLVResult:
    """Run the whole CLV pipeline once; every step's result is logged to one MLflow run."""
    config = check_config(config)
    with start_job(outputs={"output": config.output}, tracking_uri=tracking_uri,
                   experiment=config.experiment) as job:
        return _train(config, job, promote)


def _train(config: CLVConfig, job, promote: bool) -> TrainCLVResult:
    data = config.data
    transactions = load_log(data)
    calibration_end, observation_end = calibration_window(
        transactions, calibration_end=config.calibration_end, observation_end=config.observation_end,
        holdout=config.holdout)
    period = config.period

    split = calibration_holdout_split(transactions, calibration_end, observation_end, period=period)
    calibration = split[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]].set_axis(RFM_COLUMNS, axis=1)
    calibration_model = customer_value(**config.clv_settings()).fit(calibration)
    predicted = calibration_model.purchase_model_.expected_purchases(calibration, split["duration_holdout"].to_numpy())
    actual = split["frequency_holdout"].to_numpy()
    metrics = holdout_metrics(actual, predicted)
    by_frequency = holdout_by_frequency(split["frequency_cal"], actual, predicted)

    if config.refit_full:
        full = rfm_summary(transactions, observation_end, period=period)[RFM_COLUMNS]
        final_model = customer_value(**config.clv_settings()).fit(full)
        as_of = observation_end
    else:  # the calibration fit scores customers as they stood at calibration_end
        full, final_model, as_of = calibration, calibration_model, calibration_end
    scores = final_model.predict(full)
    scores.insert(0, "as_of", as_of)
    scores = full.join(scores)
    curve = tracking_curve(calibration_model.purchase_model_, transactions, observation_end, period=period)

    provenance = {"custval.units": units.CONVENTION, "custval.calibration_end": str(calibration_end.date()),
                  "custval.observation_end": str(observation_end.date()),
                  HOLDOUT_WINDOW_TAG: holdout_window(calibration_end, observation_end),
                  **_limit_tags(calibration_model, "calibration_"), **_limit_tags(final_model)}
    with runs.tracked_run(config.experiment, config=config.as_dict(), run_name=config.run_name,
                          data_fingerprint=frame_fingerprint(transactions), tags=provenance) as run:
        calibration_params = _model_params(calibration_model)
        final_params = _model_params(final_model)
        mlflow.log_metrics({f"cal_{k}": v for k, v in calibration_params.items()})
        mlflow.log_metrics(final_params)
        mlflow.log_metrics(metrics)
        mlflow.log_metrics({
            "n_transactions": float(len(transactions)),
            "n_customers": float(len(full)),
            "n_excluded_from_spend": float(final_model.n_excluded_from_spend_),
            "total_clv": float(scores["clv"].sum()),
            "mean_clv": float(scores["clv"].mean()),
        })
        log_data_quality(transactions)
        runs.log_frame(calibration_model.purchase_model_.summary(), "tables/bgnbd_calibration_summary.csv")
        runs.log_frame(final_model.purchase_model_.summary(), "tables/bgnbd_summary.csv")
        runs.log_frame(final_model.spend_model_.summary(), "tables/gamma_gamma_summary.csv")
        runs.log_frame(by_frequency, "tables/holdout_by_frequency.csv")
        runs.log_frame(curve.set_index("date"), "tables/tracking_curve.csv")
        top = scores.sort_values("clv", ascending=False).head(config.top_n)
        runs.log_frame(top, "tables/top_customers.csv")
        plots = ["plots/tracking_cumulative.png", "plots/tracking_weekly.png", "plots/calibration_holdout.png",
                 "plots/clv_distribution.png"]
        runs.log_figure(plot_tracking(curve, calibration_end=calibration_end), plots[0])
        runs.log_figure(plot_tracking(curve, calibration_end=calibration_end, cumulative=False), plots[1])
        runs.log_figure(plot_calibration_holdout(by_frequency), plots[2])
        runs.log_figure(plot_clv_distribution(scores["clv"]), plots[3])

        model_info = log_clv_model(final_model.to_dict(), full.head(5))
        metadata = {"custval.as_of": str(as_of.date()), "custval.units": units.CONVENTION,
                    "custval.horizon": config.horizon, "custval.period": period}
        done = job.finish(run, outputs=[Output("output", scores.reset_index(), metadata)],
                          model=model_info, registered_model=config.registered_model,
                          champion=Champion(CHAMPION_METRIC, metrics[CHAMPION_METRIC], higher_is_better=False,
                                            comparable_tag=HOLDOUT_WINDOW_TAG, force=promote))
        return TrainCLVResult(
            run_id=run.info.run_id, experiment_id=run.info.experiment_id, artifact_uri=run.info.artifact_uri,
            tracking_uri=job.tracking_uri, model_uri=model_info.model_uri,
            registered_version=done.registered_version, promotion=done.promotion,
            calibration_end=calibration_end, observation_end=observation_end,
            calibration_params=calibration_params, params=final_params, metrics=metrics,
            by_frequency=by_frequency, top_customers=top, scores=scores, plots=plots,
            output=done.output,
        )


def _limit_tags(model, prefix: str = "") -> dict[str, str]:
    """Which model each sub-model is: "full", or the limit its fit took (e.g. "nbd": nobody drops out)."""
    return {f"custval.{prefix}{name}_limit": sub.limit_ or "full"
            for name, sub in (("bgnbd", model.purchase_model_), ("gg", model.spend_model_))}


def _model_params(model) -> dict[str, float]:
    """BG/NBD and Gamma-Gamma parameters (the free ones of a limit), standard errors and log-likelihoods as flat
    metrics."""
    flat: dict[str, float] = {}
    for prefix, sub in (("bgnbd", model.purchase_model_), ("gg", model.spend_model_)):
        flat.update({f"{prefix}_{k}": float(v) for k, v in sub.params_.items()})
        flat.update({f"{prefix}_{k}_se": float(v) for k, v in sub.standard_errors_.items()})
        flat[f"{prefix}_log_likelihood"] = float(sub.log_likelihood_)
    return flat
