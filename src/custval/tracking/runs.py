"""One MLflow run per job: resolved config, params, data fingerprint, package versions, git commit, and the
process that runs it (host and pid), so that a later job can mark a run whose process was killed as FAILED."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from custval import config as settings
from custval.data.io import process_alive
from custval.errors import ConfigError
from custval.tracking.registry import challenger_version, restore_challenger
from custval.tracking.store import prepare_store

TRACKED_PACKAGES = (
    "custval", "numpy", "scipy", "pandas", "pyarrow", "duckdb", "scikit-learn", "xgboost-cpu", "xgboost",
    "mlflow", "optuna", "lifetimes",
)


HOST_TAG = "custval.host"
PID_TAG = "custval.pid"
ENDED_TAG = "custval.ended"


def configure(uri: str | None = None) -> str:
    """Point MLflow at `uri` (default: MLFLOW_TRACKING_URI or the embedded SQLite store), checked and created
    if new (`custval.tracking.store.prepare_store`); no telemetry."""
    return prepare_store(uri)


def check_experiment(name: str):
    """The experiment `name` (None when it does not exist yet); a deleted one is a ConfigError, found before
    a job does any work rather than when its run starts."""
    import mlflow

    experiment = mlflow.MlflowClient().get_experiment_by_name(name)
    if experiment is not None and experiment.lifecycle_stage == "deleted":
        raise ConfigError(f"experiment {name!r} was deleted in {mlflow.get_tracking_uri()}: restore it (mlflow "
                          f"experiments restore --experiment-id {experiment.experiment_id}) or set another "
                          "experiment=")
    return experiment


def ensure_experiment(name: str) -> str:
    """Experiment id for `name`, created with its artifacts under the configured artifact root."""
    import mlflow

    experiment = check_experiment(name)
    if experiment is not None:
        return experiment.experiment_id
    location = (settings.artifact_root(mlflow.get_tracking_uri()) / name).as_uri()
    return mlflow.MlflowClient().create_experiment(name, artifact_location=location)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(path: str | Path | None = None) -> str:
    """HEAD of the checkout custval runs from ("+dirty" when it has uncommitted changes), or "unknown"."""
    cwd = Path(path) if path else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and other values kept as their string form."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value if isinstance(value, int | float | str | bool) or value is None else str(value)
    return flat


def mark_killed_runs(experiment_id: str) -> list[str]:
    """Mark as FAILED the RUNNING runs of `experiment_id` started on this host by a process that no longer
    exists (killed with SIGKILL, or the machine went down): MLflow would show them running forever. A version
    such a run registered loses the alias challenger (its job never reached the end)."""
    import mlflow

    client = mlflow.MlflowClient()
    host = socket.gethostname()
    found = client.search_runs([experiment_id], filter_string=f"attributes.status = 'RUNNING' and "
                                                           f"tags.`{HOST_TAG}` = '{host}'", max_results=1000)
    marked = []
    for run in found:
        pid = run.data.tags.get(PID_TAG, "")
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            client.set_tag(run.info.run_id, ENDED_TAG, f"process {pid} on {host} ended without finishing the run")
            client.set_terminated(run.info.run_id, status="FAILED")
            for version in client.search_model_versions(f"run_id = '{run.info.run_id}'"):
                # (search results carry no aliases) a killed job never reached its end: no challenger
                if challenger_version(version.name) == str(version.version):
                    restore_challenger(version.name, None, interrupted=str(version.version))
            marked.append(run.info.run_id)
    return marked


@contextmanager
def tracked_run(experiment: str, *, config: Mapping[str, Any], data_fingerprint: str,
                run_name: str | None = None, tags: Mapping[str, str] | None = None) -> Iterator[Any]:
    """Start a run in `experiment` that records the resolved config, its params and the provenance tags. An
    exception (a failure, SIGINT or SIGTERM) ends the run as FAILED."""
    import mlflow

    experiment_id = ensure_experiment(experiment)
    mark_killed_runs(experiment_id)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags({
            "custval.data_fingerprint": data_fingerprint,
            "custval.git_commit": git_commit(),
            HOST_TAG: socket.gethostname(),
            PID_TAG: str(os.getpid()),
            **{f"custval.version.{k}": v for k, v in package_versions().items()},
            **dict(tags or {}),
        })
        mlflow.log_params({k: ("" if v is None else v) for k, v in flatten(config).items()})
        log_text(yaml.safe_dump(dict(config), sort_keys=False), "config.yaml")
        yield run


def log_text(text: str, artifact_file: str) -> None:
    import mlflow

    mlflow.log_text(text, artifact_file)


def log_frame(frame: pd.DataFrame, artifact_file: str) -> None:
    """Log a table as CSV under `artifact_file`."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        frame.to_csv(path, index=True)
        parent = str(Path(artifact_file).parent)
        mlflow.log_artifact(str(path), artifact_path=None if parent == "." else parent)


def log_figure(ax_or_fig: Any, artifact_file: str) -> None:
    """Log a matplotlib figure (given it or one of its Axes) as an image, then close it."""
    import matplotlib.pyplot as plt
    import mlflow

    figure = getattr(ax_or_fig, "figure", ax_or_fig)
    figure.tight_layout()
    mlflow.log_figure(figure, artifact_file)
    plt.close(figure)
