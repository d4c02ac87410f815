"""Segment the customer base: transactions -> RFM summary + classic RFM inputs -> CLV and P(alive) (a fitted
`CustomerValue`, or a registered CLV model loaded as data) -> RFM cells, tiers, value x loyalty quadrant,
purchase-cycle grid, lifecycle stage -> summaries per segment, Pareto concentration, per-period RFM migration,
optionally a test-mailing rollout -> one MLflow run (tables as CSV, plots) and one row per customer written
atomically, in the order of `custval.jobs.sequence`.

The defaults of `SegmentJobConfig` segment the full CDNOW log as of its last day (1998-06-30), fitting BG/NBD +
Gamma-Gamma in weeks; `pipelines/segment.yaml` spells them out.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd

from custval import units
from custval.config import SegmentJobConfig, build_config, validate_config
from custval.data.fingerprint import frame_fingerprint
from custval.data.io import read_table
from custval.data.loaders import load_log
from custval.data.schemas import check_cutoff
from custval.errors import CustvalWarning
from custval.features.rfm_scores import PeriodRFM, rfm_by_period
from custval.features.value_segments import (
    STAGES,
    check_scorable,
    check_segment_config,
    customer_summary,
    pareto_table,
    segment_customers,
    segment_metrics,
    segment_summary,
)
from custval.jobs.sequence import JobRun, Output, check_settings, start_job
from custval.models.clv.value import SETTING_NAMES, customer_value
from custval.plots.segments import plot_pareto_curve, plot_rfm_heatmap, plot_tier_pyramid
from custval.scoring.targeting import RolloutPlan, break_even_rate, rollout_from_responses
from custval.tracking import runs
from custval.tracking.models import load_clv_model

RFM_INPUTS = ["frequency", "recency", "T", "monetary_value"]
# Segment kinds summarised (and printed by the CLI, except the 125 RFM cells, which are only logged).
SUMMARY_KINDS = ("tier", "value_loyalty", "cycle_class", "lifecycle_stage", "rfm_score", "rfm_cell")
PLOTS = ("plots/rfm_heatmap.png", "plots/rfm_heatmap_clv.png", "plots/pareto.png", "plots/tier_pyramid.png")


def check_config(config: SegmentJobConfig) -> SegmentJobConfig:
    """The config re-validated and its CLV settings checked by CustomerValue's own rules."""
    config = validate_config(type(config), config.model_dump())
    check_settings(lambda: customer_value(**config.clv.clv_settings()), prefix="clv.", names=SETTING_NAMES)
    check_settings(lambda: check_segment_config(config.segments), prefix="segments.")
    return config


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> SegmentJobConfig:
    """Defaults, updated by the YAML file at `path`, then by `key=value` overrides (e.g. `clv.period=D`)."""
    return check_config(build_config(SegmentJobConfig, path, overrides))


@dataclass
class SegmentResult(JobRun):
    as_of: pd.Timestamp
    clv_source: str  # "fitted" or the model URI
    clv_period: str
    customers: pd.DataFrame  # one row per customer (index customer_id): inputs, CLV and every segment column
    summaries: dict[str, pd.DataFrame]  # segment kind -> segment_summary
    pareto: pd.DataFrame
    period_rfm: pd.DataFrame | None
    cells_by_period: pd.DataFrame | None
    migration: pd.DataFrame | None
    migration_periods: tuple[pd.Timestamp, pd.Timestamp] | None
    rollout: RolloutPlan | None
    metrics: dict[str, float]
    tables: list[str]
    plots: list[str]
    output: Path | None


def segment(config: SegmentJobConfig, out: str | Path | None = None,
            tracking_uri: str | None = None) -> SegmentResult:
    """Segment every customer as of `config.as_of`; log one MLflow run; write the per-customer table to `out`
    (default `config.output`; None = no file) atomically. See the module docstring for the steps."""
    config = check_config(config)
    setting = "--out" if out is not None else "output"
    with start_job(outputs={setting: out if out is not None else config.output}, tracking_uri=tracking_uri,
                   experiment=config.experiment) as job:
        return _segment(config, job, setting)


def _segment(config: SegmentJobConfig, job, setting: str) -> SegmentResult:
    loaded, ref = (load_clv_model(config.clv.model_uri, setting="clv.model_uri")  # early: a bad URI fails fast
                   if config.clv.model_uri else (None, None))
    transactions = load_log(config.data)
    responses = read_table(config.rollout.responses) if config.rollout.responses is not None else None
    last_day = transactions["timestamp"].max().normalize()
    as_of = last_day if config.as_of is None else check_cutoff(transactions, config.as_of, name="as_of").normalize()
    if as_of > last_day:
        warnings.warn(f"as_of {as_of.date()} is {(as_of - last_day).days} days after the last transaction "
                      f"({last_day.date()}): every customer's recency grows by that much", CustvalWarning,
                      stacklevel=2)
    observed = transactions[transactions["timestamp"] < as_of + pd.Timedelta(days=1)]
    period = loaded.period if loaded is not None else config.clv.period

    customers = customer_summary(observed, as_of, period)
    check_scorable(customers, config.segments)
    by_period = PeriodRFM(None, None)
    if config.rfm_period_months is not None:  # before the CLV fit: an unscorable period fails fast
        seg = config.segments
        by_period = rfm_by_period(observed, as_of, months=config.rfm_period_months, by=config.migration_by,
                                  bins=seg.bins, ties=seg.ties, weights=seg.rfm_weights)
    model = loaded if loaded is not None else customer_value(**config.clv.clv_settings()).fit(customers[RFM_INPUTS])
    scores = model.predict(customers[RFM_INPUTS])
    clv_source = config.clv.model_uri or "fitted"
    customers = segment_customers(customers.join(scores), config.segments)
    rollout = None
    if responses is not None:
        r = config.rollout
        rollout, customers["rollout"] = rollout_from_responses(
            customers, responses, cost_per_contact=r.cost_per_contact,
            net_profit_per_response=r.net_profit_per_response, cell=r.cell, response=r.response_column)
    customers.insert(0, "as_of", as_of)

    summaries = {kind: segment_summary(customers, kind) for kind in SUMMARY_KINDS if kind in customers.columns}
    tops = tuple(float(t) for t in config.pareto_tops)
    pareto = pareto_table(customers, ("revenue", "clv"), tops=tops)
    metrics = segment_metrics(customers, n_transactions=len(observed), tops=tops) | by_period.stats
    if config.rollout.cost_per_contact is not None:
        metrics["break_even_rate"] = break_even_rate(config.rollout.cost_per_contact,
                                                     config.rollout.net_profit_per_response)
    if rollout is not None:
        metrics |= {"rollout_pooled_response_rate": rollout.pooled_response_rate,
                    "rollout_contacts": float(rollout.contacts_rollout),
                    "rollout_contacts_all": float(rollout.contacts_all),
                    "rollout_expected_profit": rollout.expected_profit_rollout,
                    "rollout_expected_profit_all": rollout.expected_profit_all}

    tags = {"custval.units": units.CONVENTION, "custval.as_of": str(as_of.date()),
            "custval.clv_source": clv_source, "custval.clv_period": period}
    if ref is not None:
        tags |= {"custval.clv_model_version": ref.version or "", "custval.clv_model_run_id": ref.run_id or ""}
    with runs.tracked_run(config.experiment, config=config.as_dict(), run_name=config.run_name,
                          data_fingerprint=frame_fingerprint(transactions), tags=tags) as run:
        mlflow.log_metrics(metrics)
        tables = []
        for kind, summary in summaries.items():
            tables.append(f"tables/summary_{kind}.csv")
            runs.log_frame(summary, tables[-1])
        named = {"tables/pareto.csv": pareto, "tables/rfm_cells_by_period.csv": by_period.cells,
                 "tables/rfm_migration.csv": by_period.migration,
                 "tables/rollout_cells.csv": rollout.cells if rollout else None}
        for name, frame in named.items():
            if frame is not None:
                tables.append(name)
                runs.log_frame(frame, name)
        runs.log_figure(plot_rfm_heatmap(customers, bins=config.segments.bins), PLOTS[0])
        runs.log_figure(plot_rfm_heatmap(customers, value="clv", bins=config.segments.bins), PLOTS[1])
        runs.log_figure(plot_pareto_curve({"revenue": customers["revenue"], "clv": customers["clv"]}), PLOTS[2])
        runs.log_figure(plot_tier_pyramid(customers["tier"]), PLOTS[3])
        metadata = {"custval.as_of": str(as_of.date()), "custval.clv_source": clv_source,
                    "custval.clv_model_version": (ref.version or "") if ref else "", "custval.clv_period": period,
                    "custval.horizon": loaded.horizon if loaded is not None else config.clv.horizon,
                    "custval.units": units.CONVENTION, "custval.lifecycle_stages": list(STAGES)}
        written = job.write([Output(setting, customers.reset_index(), metadata)], run_id=run.info.run_id)
        return SegmentResult(
            run_id=run.info.run_id, experiment_id=run.info.experiment_id, artifact_uri=run.info.artifact_uri,
            tracking_uri=job.tracking_uri, as_of=as_of, clv_source=clv_source, clv_period=period,
            customers=customers, summaries=summaries, pareto=pareto, period_rfm=by_period.table,
            cells_by_period=by_period.cells, migration=by_period.migration, migration_periods=by_period.periods,
            rollout=rollout, metrics=metrics, tables=tables, plots=list(PLOTS), output=written.get(setting),
        )
