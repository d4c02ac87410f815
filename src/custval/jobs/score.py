"""`custval score`: every customer of a transaction log scored as of a date with the registered models, ranked for
retention, win-back and cross-sell, and segmented (custval.scoring.batch); one row per customer written
atomically with the model versions, as_of and the run id in its metadata, and one MLflow run in custval-scoring
with the counts, the value at risk, the expected profit of each list, their heads and the report.

Wiring only: the config and every model are checked (aliases resolved once, so the whole run uses the same
versions) before the base is loaded; then the library scores, the run logs, and the output is written last.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from custval.config import ScoreConfig, build_config, validate_config
from custval.data.io import write_text
from custval.data.schemas import check_cutoff
from custval.errors import ConfigError
from custval.features.datasets import load_base
from custval.jobs.sequence import JobRun, Output, start_job
from custval.plots.report import RANKED_LISTS, scoring_report_html
from custval.plots.scoring import (
    plot_list_composition,
    plot_list_profit_curve,
    plot_segment_pyramid,
    plot_value_at_risk_by_decile,
)
from custval.scoring.batch import ROLES, ScoringModels, finish_base, score_chunks, scoring_rules
from custval.tracking import runs
from custval.tracking.models import load_classifier_model, load_clv_model, load_uplift_model

# list -> (rank column, the columns shown of its head): the report's lists, named by their rank column's prefix
LISTS = {rank.removesuffix("_rank"): (rank, list(columns)) for rank, columns in RANKED_LISTS.values()}


def check_config(config: ScoreConfig) -> ScoreConfig:
    """The config re-validated (a hand-built or edited one too)."""
    return validate_config(ScoreConfig, config.model_dump())


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ScoreConfig:
    """Defaults, updated by the YAML file at `path`, then by `key=value` overrides (e.g. `as_of=2024-12-01`)."""
    return check_config(build_config(ScoreConfig, path, overrides))


@dataclass
class ScoreResult(JobRun):
    as_of: pd.Timestamp
    scores: pd.DataFrame
    lists: dict[str, pd.DataFrame]  # list -> its head (top_n rows, in rank order)
    summary: dict[str, float]
    models: dict[str, dict[str, str]]  # role -> name, version, uri, run_id
    metadata: dict[str, Any]
    output: Path | None
    report: Path | None


def report_path(output: str | None) -> str | None:
    """Where the HTML report of an output goes: beside it, <stem>.html."""
    if output is None:
        return None
    path = Path(output)
    name = path.name
    for suffix in (".csv.gz", ".csv", ".parquet", ".pq"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return str(path.with_name(f"{name}.html"))


def check_role(role: str, model, uri: str):
    """`model`, a ConfigError naming models.<role> when it is a classifier of the other role (a propensity
    model given as churn, or the other way round)."""
    outputs = getattr(model, "spec", {}).get("outputs", []) if role in ("churn", "propensity") else None
    if role == "churn" and "churn_probability" not in outputs:
        raise ConfigError(f"models.{role}: {uri!r} is not a churn model (its outputs are {outputs})")
    if role == "propensity" and not outputs or role == "propensity" and "churn_probability" in outputs:
        raise ConfigError(f"models.{role}: {uri!r} is not a propensity model (its outputs are {outputs})")
    return model


def _load_models(config: ScoreConfig) -> tuple[ScoringModels, dict[str, dict[str, str]]]:
    loaders = {"clv": load_clv_model, "churn": load_classifier_model, "propensity": load_classifier_model,
               "retention": load_uplift_model, "winback": load_uplift_model}
    loaded, refs = {}, {}
    for role in ROLES:
        uri = getattr(config.models, role)
        if uri is None:
            continue
        model, ref = loaders[role](uri, setting=f"models.{role}")
        loaded[role] = check_role(role, model, uri)
        refs[role] = {"name": ref.name or "", "version": ref.version or "", "uri": uri, "run_id": ref.run_id or ""}
    return ScoringModels(**loaded), refs


def _heads(scores: pd.DataFrame, top: int) -> dict[str, pd.DataFrame]:
    heads = {}
    for name, (rank, columns) in LISTS.items():
        if rank in scores.columns:
            listed = scores.loc[scores[rank].notna()].sort_values(rank).head(top)
            heads[name] = listed[[c for c in [rank, *columns] if c in scores.columns]].reset_index(drop=True)
    return heads


def score(config: ScoreConfig, *, tracking_uri: str | None = None) -> ScoreResult:
    """Score the base of `config` (module docstring)."""
    config = check_config(config)
    report = report_path(config.output) if config.scoring.report else None
    with start_job(outputs={"output": config.output}, tracking_uri=tracking_uri,  # the report goes beside it
                   experiment=config.experiment) as job:
        models, refs = _load_models(config)
        has_customers = config.data.simulated or config.data.customers is not None
        rules = scoring_rules(config, models, has_customers=has_customers)
        transactions, customers, fingerprint = load_base(config)
        last = transactions["timestamp"].max().normalize() + pd.Timedelta(days=1)
        as_of = last if config.as_of is None else check_cutoff(transactions, config.as_of, name="as_of").normalize()
        chunked = _score_chunks(config, transactions, customers, as_of, models, rules)
        del transactions, customers  # released before the lists: the reasons' rows are kept in `chunked`
        scored = finish_base(chunked, models, rules)
        del chunked
        scores = scored.scores
        uplift = (f"model {refs['retention']['uri']} arm {rules.retention_arm}" if models.retention is not None
                  else f"save rate {rules.save_rate:g} (no retention uplift model)")
        metadata = {"custval.as_of": str(as_of.date()), "custval.models": refs,
                    "custval.reasons": f"top {rules.reasons_top} of the retention list",
                    "custval.retention_uplift": uplift, "custval.lapse_days": rules.lapse_days}
        heads = _heads(scores, config.top_n)
        tags = {"custval.as_of": str(as_of.date()), "custval.retention_uplift": uplift,
                **{f"custval.model.{role}": f"{r['name']}/{r['version']}" if r["name"] else r["uri"]
                   for role, r in refs.items()}}
        with runs.tracked_run(config.experiment, config=config.as_dict(), run_name=config.run_name,
                              data_fingerprint=fingerprint, tags=tags) as run:
            mlflow.log_metrics({**scored.summary, "n_chunks": float(scored.n_chunks)})
            for name, head in heads.items():
                runs.log_frame(head, f"tables/{name}_head.csv")
            _log_plots(scores)
            run_metadata = {**metadata, "custval.run_id": run.info.run_id}
            html = scoring_report_html(scores, metadata=run_metadata, top=config.top_n) if report else None
            if html is not None:
                runs.log_text(html, "report.html")
            done = job.finish(run, outputs=[Output("output", scores, metadata)])
            written = write_text(html, report) if html is not None and done.output is not None else None
            return ScoreResult(run_id=run.info.run_id, experiment_id=run.info.experiment_id,
                               artifact_uri=run.info.artifact_uri, tracking_uri=job.tracking_uri, as_of=as_of,
                               scores=scores, lists=heads, summary=scored.summary, models=refs,
                               metadata=run_metadata, output=done.output, report=written)


def _log_plots(scores: pd.DataFrame) -> list[str]:
    """Value at risk by decile, each list's profit curve and composition by tier, the segment pyramid."""
    logged = []
    plots = {"plots/value_at_risk_by_decile.png": (plot_value_at_risk_by_decile, {}, ("churn_probability", "clv")),
             "plots/segment_pyramid.png": (plot_segment_pyramid, {}, ("tier", "clv"))}
    for name, (rank, _) in LISTS.items():
        priority = "cross_sell_score" if name == "cross_sell" else f"{name}_priority"
        plots[f"plots/{name}_profit_curve.png"] = (plot_list_profit_curve, {"priority": priority}, (priority,))
        plots[f"plots/{name}_composition.png"] = (plot_list_composition, {"rank": rank}, (rank, "tier"))
    for path, (plot, kwargs, needs) in plots.items():
        if all(c in scores.columns for c in needs) and \
                scores[list(needs)].notna().all(axis=1).any():
            runs.log_figure(plot(scores, **kwargs), path)
            logged.append(path)
    return logged


def _score_chunks(config, transactions, customers, as_of, models, rules):
    from tqdm import tqdm

    total = int(transactions.loc[transactions["timestamp"] < as_of, "customer_id"].nunique())
    with tqdm(total=total, unit=" customers", desc="scoring", disable=not config.scoring.progress,
              file=sys.stderr, leave=False) as bar:
        return score_chunks(transactions, as_of, models, rules, customers=customers,
                            chunk_size=config.scoring.chunk_size, progress=bar.update)
