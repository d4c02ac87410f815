"""`custval inspect`: a data-quality summary of the transaction log a pipeline config maps (rows, customers, date
span, missing ids, duplicates, cancellations, prices, categories, purchase days per customer) and the settings it
suggests. The config is validated first, the log is read once and nothing is written or logged.

`log_data_quality` logs the same summary as ``tables/data_quality.csv`` from inside a job's MLflow run, for the
log the job loaded (its `custval.data.prepare.Preparation` rides in the frame's attrs).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd

from custval.config import CLVConfig
from custval.data.loaders import read_categories, read_log
from custval.data.quality import DataQuality, Suggestion, inspect_log, summarize
from custval.errors import ConfigError
from custval.tracking import runs

__all__ = ["ARTIFACT", "PIPELINE_JOBS", "inspect_data", "load_config", "log_data_quality"]

PIPELINE_JOBS = {"clv": "train_clv", "churn": "train_churn", "propensity": "train_propensity", "segment": "segment",
                 "score": "score",
                 "uplift_winback": "train_uplift", "uplift_campaign": "train_uplift"}
ARTIFACT = "tables/data_quality.csv"


def load_config(pipeline: str = "clv", path: str | Path | None = None, overrides: list[str] | None = None):
    """The pipeline's config, validated by its own job (`custval.jobs.<job>.load_config`), before any data."""
    if pipeline not in PIPELINE_JOBS:
        raise ConfigError(f"--pipeline must be one of {sorted(PIPELINE_JOBS)}, got {pipeline!r}")
    job = importlib.import_module(f"custval.jobs.{PIPELINE_JOBS[pipeline]}")
    if PIPELINE_JOBS[pipeline] == "train_uplift":  # one job, two pipelines with their own defaults
        return job.load_config(path, overrides, pipeline=pipeline)
    return job.load_config(path, overrides)


def inspect_data(config) -> DataQuality:
    """The summary of `config.data`'s log (read once; nothing written) with its suggested settings; for a CLV
    config also a calibration_end at half the span (and observation_end at its last day)."""
    data = config.data
    if getattr(data, "table", None) is not None:
        raise ConfigError("data.table is a customer table: custval inspect reads a transaction log (data.source)")
    if getattr(data, "simulated", False):
        raise ConfigError("data.source=simulate brings its own clean log: nothing to inspect; set data.source to a "
                          "transactions CSV/Parquet file")
    categories = read_categories(data)
    log = read_log(data.source)
    quality = inspect_log(log.raw, log.settings(data), categories=categories, table=log.table,
                          default_duplicates=log.default_duplicates, source=data.source)
    if isinstance(config, CLVConfig):
        quality.suggestions.extend(_clv_window(config, quality))
    return quality


def _clv_window(config: CLVConfig, quality: DataQuality) -> list[Suggestion]:
    if quality.first is None or config.holdout is not None:
        return []
    first, last, middle = quality.first.date(), quality.last.date(), quality.midpoint.date()
    out = []
    if config.calibration_end != middle.isoformat():
        out.append(Suggestion("calibration_end", middle.isoformat(), f"half of the span {first}..{last}: the later "
                              "half is the holdout"))
    if config.observation_end is not None and config.observation_end != last.isoformat():
        out.append(Suggestion("observation_end", last.isoformat(), "the last day of the log"))
    return out


def log_data_quality(transactions: pd.DataFrame | None) -> None:
    """Log the summary of the log a job loaded as `ARTIFACT` in the active MLflow run (nothing without a log)."""
    if transactions is None:
        return
    runs.log_frame(summarize(transactions).table().set_index("section"), ARTIFACT)
