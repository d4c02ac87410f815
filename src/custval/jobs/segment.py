"""Segment the customer base: transactions -> RFM summary + classic RFM inputs -> CLV and P(alive) (a fitted
`CustomerValue`, or a registered CLV model) -> RFM cells, tiers, value x loyalty quadrant, purchase-cycle grid,
lifecycle stage -> summaries per segment, Pareto concentration, per-period RFM migration, optionally a
test-mailing rollout -> one MLflow run (tables as CSV, plots) and one row per customer written atomically.

The defaults of `SegmentJobConfig` segment the full CDNOW log as of its last day (1998-06-30), fitting BG/NBD +
Gamma-Gamma in weeks; `pipelines/segment.yaml` spells them out.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from custval import units
from custval.config import DataConfig, build_config, config_from_dict
from custval.data.io import load_transactions, read_table, write_table
from custval.data.schemas import check_cutoff
from custval.errors import ConfigError, CustvalWarning, DataError, ModelError, SchemaError
from custval.features.rfm import rfm_summary
from custval.features.segments import (
    STAGES,
    RolloutPlan,
    SegmentConfig,
    break_even_rate,
    pareto_table,
    period_edges,
    period_rfm,
    rfm_migration,
    rfm_scores,
    rfm_table,
    rollout_plan,
    segment_customers,
    segment_summary,
    top_share,
)
from custval.models.clv.bgnbd import BetaGeo
from custval.models.clv.gamma_gamma import GammaGamma
from custval.models.clv.value import CustomerValue
from custval.plots.segments import plot_pareto_curve, plot_rfm_heatmap, plot_tier_pyramid
from custval.tracking import runs

RFM_INPUTS = ["frequency", "recency", "T", "monetary_value"]
CLV_COLUMNS = ["expected_purchases", "p_alive", "expected_spend", "clv"]
# Segment kinds summarised (and printed by the CLI, except the 125 RFM cells, which are only logged).
SUMMARY_KINDS = ("tier", "value_loyalty", "cycle_class", "lifecycle_stage", "rfm_score", "rfm_cell")
# BG/NBD gives P(alive) = 1 to every one-time buyer (dropout happens only after a repeat purchase), so stages from
# P(alive) call a customer whose single purchase was 18 months ago "active". The job's default stages come from
# the purchase cycle instead (time since the last purchase over the customer's own, or the median, cycle).
DEFAULT_SEGMENTS = SegmentConfig(lifecycle_method="cycle")
PLOTS = ("plots/rfm_heatmap.png", "plots/rfm_heatmap_clv.png", "plots/pareto.png", "plots/tier_pyramid.png")


@dataclass
class CLVSettings:
    """Where clv and p_alive come from. model_uri (e.g. "models:/custval-clv@champion"): a logged CLV model,
    fed frequency, recency, T, monetary_value in the model's own period (read from the model; `period` is the
    fallback for models that do not say); None: fit a CustomerValue on the RFM summary as of `as_of`."""

    model_uri: str | None = None
    period: str = "W"
    horizon: str = "12M"
    annual_discount_rate: float = 0.10
    penalizer: float = 0.0
    spend_penalizer: float = 0.0

    def validate(self) -> None:
        if self.model_uri is not None and (not isinstance(self.model_uri, str) or not self.model_uri.strip()):
            raise ConfigError(f"clv.model_uri must be a model URI such as 'models:/custval-clv@champion' or "
                              f"null, got {self.model_uri!r}")
        units.check_period(self.period)
        units.parse_horizon(self.horizon)
        rate = self.annual_discount_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not -1 < rate < 10:
            raise ConfigError(f"clv.annual_discount_rate must be a number in (-1, 10), got {rate!r}")
        for name in ("penalizer", "spend_penalizer"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise ConfigError(f"clv.{name} must be a finite number >= 0, got {value!r}")


@dataclass
class RolloutSettings:
    """Test-and-rollout. `responses`: a CSV/Parquet file of a test mailing (customer_id and a 0/1
    `response_column`); the cells (`cell`, e.g. rfm_cell or rfm_score) whose response rate reaches the
    break-even rate cost_per_contact / net_profit_per_response are rolled out to the customers not tested."""

    responses: str | None = None
    response_column: str = "responded"
    cell: str = "rfm_cell"
    cost_per_contact: float | None = None
    net_profit_per_response: float | None = None

    def validate(self) -> None:
        given = [v is not None for v in (self.cost_per_contact, self.net_profit_per_response)]
        if any(given) and not all(given):
            raise ConfigError("rollout: give cost_per_contact and net_profit_per_response together")
        if all(given):
            break_even_rate(self.cost_per_contact, self.net_profit_per_response)  # positive finite, else ConfigError
        if self.responses is not None and not all(given):
            raise ConfigError("rollout.responses needs rollout.cost_per_contact and rollout.net_profit_per_response")


@dataclass
class SegmentJobConfig:
    experiment: str = "custval-segments"
    data: DataConfig = field(default_factory=DataConfig)
    as_of: str | None = None  # last day included; None = the day of the last transaction
    clv: CLVSettings = field(default_factory=CLVSettings)
    segments: SegmentConfig = field(default_factory=lambda: DEFAULT_SEGMENTS)
    rfm_period_months: int | None = 6  # per-period RFM (calendar-aligned) and the migration table; None = off
    migration_by: str = "rfm_cell"  # column of the per-period RFM whose movement is tabulated
    pareto_tops: tuple = (0.01, 0.05, 0.1, 0.2, 0.5)
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    output: str | None = "outputs/segments.parquet"
    run_name: str | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SegmentJobConfig:
        """Validated config from a mapping (sections data, clv, segments, rollout; unknown keys -> ConfigError)."""
        return config_from_dict(cls, raw, name="segment config")

    def validate(self) -> None:
        for section in (self.data, self.clv, self.rollout):
            section.validate()
        if not isinstance(self.segments, SegmentConfig):
            raise ConfigError(f"segments must be a mapping of SegmentConfig settings, got {self.segments!r}")
        if not isinstance(self.experiment, str) or not self.experiment.strip():
            raise ConfigError(f"experiment must be a name, got {self.experiment!r}")
        if self.as_of is not None:
            try:
                stamp = pd.Timestamp(str(self.as_of))
            except ValueError as exc:
                raise ConfigError(f"as_of: not a date: {self.as_of!r}") from exc
            if stamp is pd.NaT:
                raise ConfigError(f"as_of: not a date: {self.as_of!r}")
        months = self.rfm_period_months
        if months is not None and (isinstance(months, bool) or not isinstance(months, int) or months <= 0
                                   or 12 % months):
            raise ConfigError(f"rfm_period_months must divide 12 (1, 2, 3, 4, 6 or 12) or be null, got {months!r}")
        if self.migration_by not in ("rfm_cell", "rfm_score", "r_score", "f_score", "m_score"):
            raise ConfigError(f"migration_by must be rfm_cell, rfm_score, r_score, f_score or m_score, got "
                              f"{self.migration_by!r}")
        tops = np.asarray(self.pareto_tops, dtype=float) if _numbers(self.pareto_tops) else None
        if tops is None or tops.ndim != 1 or tops.size == 0 or np.any((tops <= 0) | (tops > 1)):
            raise ConfigError(f"pareto_tops must be shares of customers in (0, 1], got {self.pareto_tops!r}")
        if self.output is not None and not isinstance(self.output, str):
            raise ConfigError(f"output must be a path or null, got {self.output!r}")

    def as_dict(self) -> dict[str, Any]:
        """Plain nested dict, tuples as lists: the logged config.yaml loads back as this config."""
        return _lists(dataclasses.asdict(self))


def _lists(value):
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


def _numbers(values) -> bool:
    return isinstance(values, tuple | list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> SegmentJobConfig:
    """Defaults, updated by the YAML file at `path`, then by `key=value` overrides (e.g. `clv.period=D`)."""
    return build_config(SegmentJobConfig, path, overrides, name="segment config")


@dataclass
class SegmentResult:
    run_id: str
    experiment_id: str
    artifact_uri: str
    tracking_uri: str
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


# ------------------------------------------------------------------------------------------------- CLV
@dataclass
class _CLVModel:
    pyfunc: Any
    period: str
    horizon: str | None
    version: str | None
    run_id: str | None


def _registered_version(uri: str) -> tuple[str | None, str | None]:
    """(version, run id) of a `models:/name@alias` or `models:/name/version` URI; Nones otherwise."""
    match = re.fullmatch(r"models:/([^/@]+)(?:@([^/]+)|/(\d+))/?", uri.strip())
    if match is None:
        return None, None
    client = mlflow.MlflowClient()
    name, alias, number = match.groups()
    try:
        mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, number)
    except MlflowException:
        return None, None
    return str(mv.version), mv.run_id


def _load_clv_model(settings: CLVSettings) -> _CLVModel:
    """Load the logged CLV model; its period comes from the CustomerValue inside (the clv_model.json spec)."""
    uri = settings.model_uri
    try:
        model = mlflow.pyfunc.load_model(uri)
    except (MlflowException, OSError, ValueError) as exc:
        raise ConfigError(f"clv.model_uri: cannot load {uri!r} from {mlflow.get_tracking_uri()}: "
                          f"{str(exc).splitlines()[0]}") from exc
    period = horizon = None
    try:
        inner = getattr(model.unwrap_python_model(), "model", None)
        period, horizon = getattr(inner, "period", None), getattr(inner, "horizon", None)
    except (MlflowException, AttributeError, TypeError):  # not a python_function model of ours
        pass
    if period is None:
        warnings.warn(f"clv.model_uri {uri!r} does not record its model period; using clv.period="
                      f"{settings.period!r}", CustvalWarning, stacklevel=3)
        period = settings.period
    version, run_id = _registered_version(uri)
    return _CLVModel(model, units.check_period(period), horizon, version, run_id)


def _predict(model: _CLVModel, rfm: pd.DataFrame, uri: str) -> pd.DataFrame:
    try:
        out = model.pyfunc.predict(rfm[RFM_INPUTS].astype("float64"))
    except MlflowException as exc:
        raise ModelError(f"clv.model_uri {uri!r}: prediction failed: {str(exc).splitlines()[0]}") from exc
    out = pd.DataFrame(out)
    missing = [c for c in ("clv", "p_alive") if c not in out.columns]
    if missing or len(out) != len(rfm):
        raise ModelError(f"clv.model_uri {uri!r} must return one row per customer with columns clv and p_alive; "
                         f"got {len(out)} rows for {len(rfm)} customers, columns {list(out.columns)}")
    keep = [c for c in CLV_COLUMNS if c in out.columns]
    return pd.DataFrame({c: out[c].to_numpy(dtype=float) for c in keep}, index=rfm.index)


# ------------------------------------------------------------------------------------------ the pieces
def _as_of(config: SegmentJobConfig, transactions: pd.DataFrame) -> pd.Timestamp:
    last_day = transactions["timestamp"].max().normalize()
    as_of = last_day if config.as_of is None else check_cutoff(transactions, config.as_of, name="as_of")
    return pd.Timestamp(as_of).normalize()


def _customer_frame(transactions: pd.DataFrame, as_of: pd.Timestamp, period: str) -> pd.DataFrame:
    """RFM summary (model periods) joined with the classic inputs: purchases (purchase days), revenue (total
    spend) and recency_days (days since the last purchase), all through `as_of`."""
    rfm = rfm_summary(transactions, as_of, period=period)[RFM_INPUTS]
    classic = rfm_table(transactions, as_of=as_of).rename(columns={"frequency": "purchases", "monetary": "revenue"})
    if len(classic) != len(rfm) or not classic.index.isin(rfm.index).all():  # pragma: no cover - same definitions
        raise DataError("customers", "customer_id", "RFM summary and RFM table disagree on the population")
    return rfm.join(classic[["purchases", "revenue", "recency_days"]])


def _check_scores(customers: pd.DataFrame, seg: SegmentConfig) -> None:
    """Score R, F, M once before the CLV fit, so that inputs RFM cannot score (an empty population, a column
    with every customer in one quintile) fail with that message rather than as a BG/NBD convergence error."""
    if seg.monetary in customers.columns:
        frame = customers.assign(time_since_last=customers["T"] - customers["recency"])
        rfm_scores(frame, recency="time_since_last", frequency="frequency", monetary=seg.monetary, bins=seg.bins,
                   ties=seg.ties, weights=seg.rfm_weights)


def _period_grid(transactions: pd.DataFrame, as_of: pd.Timestamp, months: int) -> pd.DatetimeIndex:
    """Per-period RFM edges: calendar period starts every `months` months from the period of the first
    transaction up to `as_of`, then as_of + 1 day (only the last period is cut short, at as_of). The grid does
    not depend on where the transactions stop: a period with no transactions is still a period."""
    start = period_edges(transactions, months)[0]
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    grid = pd.date_range(start, end, freq=f"{months}MS")
    return pd.DatetimeIndex([*(e for e in grid if e < end), end])


def _period_tables(transactions: pd.DataFrame, as_of: pd.Timestamp, config: SegmentJobConfig):
    """Per-period RFM (the last period cut at as_of), cells per period, migration between the last two."""
    seg = config.segments
    edges = _period_grid(transactions, as_of, config.rfm_period_months)
    day = transactions["timestamp"].dt.normalize().to_numpy()
    period = np.searchsorted(edges.to_numpy(), day, side="right") - 1
    period = period[(period >= 0) & (period < len(edges) - 1)]
    empty = edges[:-1][np.bincount(period, minlength=len(edges) - 1) == 0]
    if len(empty):
        raise DataError(
            "transactions", "timestamp",
            f"per-period RFM (rfm_period_months={config.rfm_period_months}) has periods without any transaction, "
            f"starting {[str(e.date()) for e in empty]}, whose customers cannot be scored (as_of "
            f"{as_of.date()}, last transaction {transactions['timestamp'].max().date()}); set "
            f"rfm_period_months=null or an as_of before {empty[0].date()}",
            str(empty[0].date()),
        )
    table = period_rfm(transactions, edges=edges, bins=seg.bins, ties=seg.ties, weights=seg.rfm_weights)
    cells = pd.crosstab(table["rfm_cell"], table["period"].dt.date.astype(str)).sort_index(ascending=False)
    periods = sorted(table["period"].unique())
    if len(periods) < 2:
        return table, cells, None, None, {}
    first, last = pd.Timestamp(periods[-2]), pd.Timestamp(periods[-1])
    migration = rfm_migration(table, first, last, by=config.migration_by)
    scores = table.pivot(index="customer_id", columns="period", values="rfm_score")[[first, last]].dropna()
    change = np.sign(scores[last].to_numpy() - scores[first].to_numpy())
    stats = {"migration_customers": float(len(scores)),
             "migration_up_share": float(np.mean(change > 0)) if len(change) else float("nan"),
             "migration_same_share": float(np.mean(change == 0)) if len(change) else float("nan"),
             "migration_down_share": float(np.mean(change < 0)) if len(change) else float("nan")}
    return table, cells, migration, (first, last), stats


def _rollout(customers: pd.DataFrame, settings: RolloutSettings) -> tuple[RolloutPlan, pd.Series]:
    """Rollout plan from the test-mailing file; returns it and the per-customer `rollout` flag."""
    responses = read_table(settings.responses)
    for column in ("customer_id", settings.response_column):
        if column not in responses.columns:
            raise SchemaError("responses", column, f"required column is missing (columns: {list(responses.columns)})")
    if settings.cell not in customers.columns:
        raise ConfigError(f"rollout.cell must be a segment column such as rfm_cell or rfm_score, got "
                          f"{settings.cell!r}")
    ids = responses["customer_id"]
    if pd.api.types.is_string_dtype(customers.index.dtype):
        ids = ids.astype(str)
    ids = pd.Index(ids)
    if ids.has_duplicates:
        raise DataError("responses", "customer_id", "must be unique (one response per tested customer)",
                        ids[ids.duplicated()][0])
    unknown = ~ids.isin(customers.index)
    if unknown.any():
        raise DataError("responses", "customer_id", "must be customers of the segmented population",
                        ids[unknown][0])
    test = customers.loc[ids].assign(**{settings.response_column: responses[settings.response_column].to_numpy()})
    population = customers.drop(index=ids)
    plan = rollout_plan(test, population, cost_per_contact=settings.cost_per_contact,
                        net_profit_per_response=settings.net_profit_per_response, cell=settings.cell,
                        response=settings.response_column)
    selected = customers[settings.cell].astype("string").isin(plan.selected_cells).to_numpy()
    flag = pd.Series(selected & ~customers.index.isin(ids), index=customers.index, name="rollout")
    return plan, flag


def _metric_name(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", str(text)).strip("_")


def _metrics(customers: pd.DataFrame, transactions: pd.DataFrame, tops) -> dict[str, float]:
    metrics = {
        "n_transactions": float(len(transactions)),
        "n_customers": float(len(customers)),
        "total_revenue": float(customers["revenue"].sum()),
        "total_clv": float(customers["clv"].sum()),
        "mean_clv": float(customers["clv"].mean()),
        "mean_p_alive": float(customers["p_alive"].mean()),
    }
    for top in sorted(set(tops) | {0.2}):
        label = f"top{100 * top:g}"
        metrics[f"{label}_revenue_share"] = top_share(customers["revenue"], top, column="revenue")
        metrics[f"{label}_clv_share"] = top_share(customers["clv"], top, column="clv")
    for kind in ("tier", "value_loyalty", "lifecycle_stage"):
        if kind in customers.columns:
            counts = customers[kind].value_counts()
            clv = customers.groupby(kind, observed=False)["clv"].sum()
            for name in counts.index:
                metrics[_metric_name(f"customers_{kind}_{name}")] = float(counts[name])
                metrics[_metric_name(f"clv_{kind}_{name}")] = float(clv[name])
    return metrics


# ---------------------------------------------------------------------------------------------- the job
def segment(config: SegmentJobConfig, out: str | Path | None = None,
            tracking_uri: str | None = None) -> SegmentResult:
    """Segment every customer as of `config.as_of`; log one MLflow run; write the per-customer table to `out`
    (default `config.output`; None = no file) atomically. See the module docstring for the steps."""
    config.validate()
    output = str(out) if out is not None else config.output
    uri = runs.configure(tracking_uri)
    model = _load_clv_model(config.clv) if config.clv.model_uri else None  # early: a bad URI fails fast
    transactions = load_transactions(config.data.source, columns=config.data.columns or None,
                                     returns=config.data.returns, duplicates=config.data.duplicates)
    as_of = _as_of(config, transactions)
    observed = transactions[transactions["timestamp"] < as_of + pd.Timedelta(days=1)]
    period = model.period if model is not None else units.check_period(config.clv.period)

    customers = _customer_frame(observed, as_of, period)
    _check_scores(customers, config.segments)
    period_table = cells = migration = pair = None
    migration_stats: dict[str, float] = {}
    if config.rfm_period_months is not None:  # before the CLV fit: an unscorable period fails fast
        period_table, cells, migration, pair, migration_stats = _period_tables(observed, as_of, config)
    if model is None:
        clv = config.clv
        value_model = CustomerValue(period=period, horizon=clv.horizon, annual_discount_rate=clv.annual_discount_rate,
                                    purchase_model=BetaGeo(penalizer=clv.penalizer),
                                    spend_model=GammaGamma(penalizer=clv.spend_penalizer))
        scores = value_model.fit(customers[RFM_INPUTS]).predict(customers[RFM_INPUTS])
        clv_source = "fitted"
    else:
        scores = _predict(model, customers, config.clv.model_uri)
        clv_source = config.clv.model_uri
    customers = segment_customers(customers.join(scores), config.segments)
    rollout, rollout_flag = None, None
    if config.rollout.responses is not None:
        rollout, rollout_flag = _rollout(customers, config.rollout)
        customers["rollout"] = rollout_flag
    customers.insert(0, "as_of", as_of)

    summaries = {kind: segment_summary(customers, kind) for kind in SUMMARY_KINDS if kind in customers.columns}
    tops = tuple(float(t) for t in config.pareto_tops)
    pareto = pareto_table(customers, ("revenue", "clv"), tops=tops)
    metrics = _metrics(customers, observed, tops) | migration_stats
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
    if model is not None:
        tags |= {"custval.clv_model_version": model.version or "", "custval.clv_model_run_id": model.run_id or ""}
    with runs.tracked_run(config.experiment, config=config.as_dict(), run_name=config.run_name,
                          data_fingerprint=runs.frame_fingerprint(transactions), tags=tags) as run:
        mlflow.log_metrics(metrics)
        tables = []
        for kind, summary in summaries.items():
            tables.append(f"tables/summary_{kind}.csv")
            runs.log_frame(summary, tables[-1])
        named = {"tables/pareto.csv": pareto, "tables/rfm_cells_by_period.csv": cells,
                 "tables/rfm_migration.csv": migration, "tables/rollout_cells.csv": rollout.cells if rollout else None}
        for name, frame in named.items():
            if frame is not None:
                tables.append(name)
                runs.log_frame(frame, name)
        runs.log_figure(plot_rfm_heatmap(customers, bins=config.segments.bins), PLOTS[0])
        runs.log_figure(plot_rfm_heatmap(customers, value="clv", bins=config.segments.bins), PLOTS[1])
        runs.log_figure(plot_pareto_curve({"revenue": customers["revenue"], "clv": customers["clv"]}), PLOTS[2])
        runs.log_figure(plot_tier_pyramid(customers["tier"]), PLOTS[3])
        written = None
        if output:
            written = write_table(customers.reset_index(), output, metadata={
                "custval.as_of": str(as_of.date()),
                "custval.run_id": run.info.run_id,
                "custval.clv_source": clv_source,
                "custval.clv_model_version": (model.version or "") if model else "",
                "custval.clv_period": period,
                "custval.horizon": config.clv.horizon if model is None else (model.horizon or ""),
                "custval.units": units.CONVENTION,
                "custval.lifecycle_stages": list(STAGES),
            })
        return SegmentResult(
            run_id=run.info.run_id, experiment_id=run.info.experiment_id, artifact_uri=run.info.artifact_uri,
            tracking_uri=uri, as_of=as_of, clv_source=clv_source, clv_period=period, customers=customers,
            summaries=summaries, pareto=pareto, period_rfm=period_table, cells_by_period=cells,
            migration=migration, migration_periods=pair, rollout=rollout, metrics=metrics, tables=tables,
            plots=list(PLOTS), output=Path(written) if written else None,
        )
