"""Train the CLV pipeline: transactions -> calibration/holdout RFM -> BG/NBD + Gamma-Gamma -> holdout check ->
refit on the whole window -> MLflow run (params, metrics, plots, model with signature) -> registry aliases.

The defaults of `CLVConfig` are the demo: the full CDNOW log shipped with `lifetimes`, calibration weeks 1-39.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from custval import units
from custval.config import DataConfig, build_config, config_from_dict
from custval.data.io import load_transactions, write_table
from custval.data.schemas import check_cutoff
from custval.errors import ConfigError
from custval.features.rfm import calibration_holdout_split, rfm_summary
from custval.metrics.clv import holdout_by_frequency, holdout_metrics
from custval.models.clv.bgnbd import BetaGeo
from custval.models.clv.diagnostics import tracking_curve
from custval.models.clv.gamma_gamma import GammaGamma
from custval.models.clv.value import CustomerValue
from custval.plots.clv import plot_calibration_holdout, plot_clv_distribution, plot_tracking
from custval.tracking import runs
from custval.tracking.pyfunc import log_clv_model
from custval.tracking.registry import register_and_promote

RFM_COLUMNS = ["frequency", "recency", "T", "monetary_value"]
CHAMPION_METRIC = "holdout_mae"  # per-customer MAE of holdout repeat purchases: lower is better


@dataclass
class CLVConfig:
    experiment: str = "custval-clv"
    registered_model: str | None = "custval-clv"
    data: DataConfig = field(default_factory=DataConfig)
    calibration_end: str | None = "1997-09-30"
    observation_end: str | None = "1998-06-30"
    holdout: str | None = None  # e.g. "39W": calibration_end = observation_end - holdout when not given
    period: str = "W"
    horizon: str = "12M"
    annual_discount_rate: float = 0.10
    penalizer: float = 0.0  # BG/NBD L2 penalizer (lifetimes' convention)
    spend_penalizer: float = 0.0  # Gamma-Gamma L2 penalizer
    refit_full: bool = True
    output: str | None = "outputs/clv_scores.parquet"
    top_n: int = 10
    run_name: str | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CLVConfig:
        """Validated config from a mapping (a `data` sub-mapping; unknown keys -> ConfigError)."""
        return config_from_dict(cls, raw, name="clv config")

    def validate(self) -> None:
        units.check_period(self.period)
        units.parse_horizon(self.horizon)
        if self.holdout is not None:
            units.parse_horizon(self.holdout)
        if not _real(self.annual_discount_rate) or not -1 < self.annual_discount_rate < 10:
            raise ConfigError(f"annual_discount_rate must be a number in (-1, 10), got {self.annual_discount_rate!r}")
        for name in ("penalizer", "spend_penalizer"):
            value = getattr(self, name)
            if not _real(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.calibration_end is None and self.holdout is None:
            raise ConfigError("give calibration_end (a date) or holdout (a duration such as '39W')")
        for name in ("calibration_end", "observation_end"):
            value = getattr(self, name)
            if value is not None:
                try:
                    pd.Timestamp(str(value))
                except ValueError as exc:
                    raise ConfigError(f"{name}: not a date: {value!r}") from exc

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _real(value) -> bool:
    """A finite real number (bools are not numbers here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> CLVConfig:
    """Defaults, updated by the YAML file at `path`, then by `key=value` overrides."""
    return build_config(CLVConfig, path, overrides, name="clv config")


@dataclass
class TrainCLVResult:
    run_id: str
    experiment_id: str
    artifact_uri: str
    tracking_uri: str
    model_uri: str
    registered_version: str | None
    promotion: Any
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


def _window(config: CLVConfig, transactions: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    last_day = transactions["timestamp"].max().normalize()
    observation_end = pd.Timestamp(config.observation_end) if config.observation_end else last_day
    if config.calibration_end is not None:
        calibration_end = pd.Timestamp(config.calibration_end)
    else:
        calibration_end = observation_end - pd.Timedelta(days=round(units.horizon_days(config.holdout)))
    check_cutoff(transactions, calibration_end, name="calibration_end")
    if calibration_end >= observation_end:
        raise ConfigError(f"calibration_end {calibration_end.date()} must be before observation_end "
                          f"{observation_end.date()}")
    return calibration_end, observation_end


def train_clv(config: CLVConfig, *, tracking_uri: str | None = None) -> TrainCLVResult:
    """Run the whole CLV pipeline once; every step's result is logged to one MLflow run."""
    config.validate()
    transactions = load_transactions(config.data.source, columns=config.data.columns or None,
                                     returns=config.data.returns, duplicates=config.data.duplicates)
    calibration_end, observation_end = _window(config, transactions)
    period = config.period

    split = calibration_holdout_split(transactions, calibration_end, observation_end, period=period)
    calibration = split[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]].set_axis(RFM_COLUMNS, axis=1)
    model_kwargs = dict(period=period, horizon=config.horizon, annual_discount_rate=config.annual_discount_rate,
                        purchase_model=BetaGeo(penalizer=config.penalizer),
                        spend_model=GammaGamma(penalizer=config.spend_penalizer))
    calibration_model = CustomerValue(**model_kwargs).fit(calibration)
    predicted = calibration_model.purchase_model_.expected_purchases(calibration, split["duration_holdout"].to_numpy())
    actual = split["frequency_holdout"].to_numpy()
    metrics = holdout_metrics(actual, predicted)
    by_frequency = holdout_by_frequency(split["frequency_cal"], actual, predicted)

    if config.refit_full:
        full = rfm_summary(transactions, observation_end, period=period)[RFM_COLUMNS]
        final_model = CustomerValue(**model_kwargs).fit(full)
        as_of = observation_end
    else:  # the calibration fit scores customers as they stood at calibration_end
        full, final_model, as_of = calibration, calibration_model, calibration_end
    scores = final_model.predict(full)
    scores.insert(0, "as_of", as_of)
    scores = full.join(scores)
    curve = tracking_curve(calibration_model.purchase_model_, transactions, observation_end, period=period)

    uri = runs.configure(tracking_uri)
    provenance = {"custval.units": units.CONVENTION, "custval.calibration_end": str(calibration_end.date()),
                  "custval.observation_end": str(observation_end.date())}
    with runs.tracked_run(config.experiment, config=config.as_dict(), run_name=config.run_name,
                          data_fingerprint=runs.frame_fingerprint(transactions), tags=provenance) as run:
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
        version, promotion = None, None
        if config.registered_model:
            promotion = register_and_promote(model_info.model_uri, config.registered_model, run_id=run.info.run_id,
                                             metric=CHAMPION_METRIC, value=metrics[CHAMPION_METRIC],
                                             higher_is_better=False)
            version = promotion.version
        output = None
        if config.output:
            output = write_table(scores.reset_index(), config.output, metadata={
                "custval.model": config.registered_model or model_info.model_uri,
                "custval.model_version": version or "",
                "custval.run_id": run.info.run_id,
                "custval.as_of": str(as_of.date()),
                "custval.units": units.CONVENTION,
                "custval.horizon": config.horizon,
                "custval.period": period,
            })
        return TrainCLVResult(
            run_id=run.info.run_id, experiment_id=run.info.experiment_id, artifact_uri=run.info.artifact_uri,
            tracking_uri=uri, model_uri=model_info.model_uri, registered_version=version, promotion=promotion,
            calibration_end=calibration_end, observation_end=observation_end,
            calibration_params=calibration_params, params=final_params, metrics=metrics,
            by_frequency=by_frequency, top_customers=top, scores=scores, plots=plots,
            output=Path(output) if output else None,
        )


def _model_params(model) -> dict[str, float]:
    """BG/NBD and Gamma-Gamma parameters, standard errors and log-likelihoods as flat metrics."""
    flat: dict[str, float] = {}
    for prefix, sub in (("bgnbd", model.purchase_model_), ("gg", model.spend_model_)):
        flat.update({f"{prefix}_{k}": float(v) for k, v in sub.params_.items()})
        flat.update({f"{prefix}_{k}_se": float(v) for k, v in sub.standard_errors_.items()})
        flat[f"{prefix}_log_likelihood"] = float(sub.log_likelihood_)
    return flat
