"""Shared fixtures (keep minimal). The CDNOW frames are read once per session; tests get a copy."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # headless plots in tests, whatever display the machine has

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def _cdnow_cache() -> dict[str, pd.DataFrame]:
    from custval.data.datasets import cdnow

    return {"master": cdnow("master"), "sample": cdnow("sample")}


@pytest.fixture
def cdnow_master(_cdnow_cache) -> pd.DataFrame:
    """CDNOW master log in the transactions contract (69,659 rows, duplicates kept)."""
    return _cdnow_cache["master"].copy()


@pytest.fixture
def cdnow_sample(_cdnow_cache) -> pd.DataFrame:
    """CDNOW 2,357-customer sample in the transactions contract (6,919 rows, customer_id 1..2357)."""
    return _cdnow_cache["sample"].copy()


@pytest.fixture
def isolated_store(tmp_path, monkeypatch):
    """Run in tmp_path with MLflow tracking to a SQLite store there (never the repository's mlflow.db)."""
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield uri
    mlflow.set_tracking_uri(None)
