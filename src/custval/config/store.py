"""Where MLflow tracks and where Optuna keeps its studies, from the environment."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_ARTIFACT_DIR = "mlartifacts"


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the embedded SQLite store in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (resolved), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///")).expanduser().resolve()


def artifact_root(uri: str | None = None) -> Path:
    """Artifacts live beside a SQLite store (`<db dir>/mlartifacts`), else in ./mlartifacts."""
    db = sqlite_path(uri or tracking_uri())
    return (db.parent if db is not None else Path.cwd().resolve()) / DEFAULT_ARTIFACT_DIR


def optuna_storage(uri: str | None = None) -> str:
    """Optuna study storage next to the MLflow store: `<db dir>/optuna.db` beside a SQLite store, else
    ./optuna.db. Studies there survive the process, so `custval tune` resumes them."""
    db = sqlite_path(uri or tracking_uri())
    directory = db.parent if db is not None else Path.cwd().resolve()
    return f"sqlite:///{directory / 'optuna.db'}"
