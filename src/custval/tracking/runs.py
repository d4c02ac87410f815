"""One MLflow run per training: resolved config, params, data fingerprint, package versions, git commit."""

from __future__ import annotations

import hashlib
import json
import os
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

TRACKED_PACKAGES = (
    "custval", "numpy", "scipy", "pandas", "pyarrow", "duckdb", "scikit-learn", "xgboost-cpu", "xgboost",
    "mlflow", "optuna", "lifetimes",
)


def configure(uri: str | None = None) -> str:
    """Point MLflow at `uri` (default: MLFLOW_TRACKING_URI or the embedded SQLite store); no telemetry."""
    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = uri or settings.tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


def ensure_experiment(name: str) -> str:
    """Experiment id for `name`, created with its artifacts under the configured artifact root."""
    import mlflow

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = (settings.artifact_root(mlflow.get_tracking_uri()) / name).as_uri()
    return client.create_experiment(name, artifact_location=location)


def frame_fingerprint(*frames: pd.DataFrame) -> str:
    """sha256 over the rows, column names and dtypes of the given frames: the data a run was fitted on."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()


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


@contextmanager
def tracked_run(experiment: str, *, config: Mapping[str, Any], data_fingerprint: str,
                run_name: str | None = None, tags: Mapping[str, str] | None = None) -> Iterator[Any]:
    """Start a run in `experiment` that records the resolved config, its params and the provenance tags."""
    import mlflow

    experiment_id = ensure_experiment(experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags({
            "custval.data_fingerprint": data_fingerprint,
            "custval.git_commit": git_commit(),
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
