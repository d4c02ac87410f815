"""Settings: where MLflow tracks, and loading pipeline configs (YAML with ${ENV} expansion)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from custval.errors import ConfigError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_ARTIFACT_DIR = "mlartifacts"


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the embedded SQLite store in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def artifact_root(uri: str | None = None) -> Path:
    """Artifacts live beside a SQLite store (`<db dir>/mlartifacts`), else in ./mlartifacts."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent / DEFAULT_ARTIFACT_DIR
    return Path.cwd().resolve() / DEFAULT_ARTIFACT_DIR


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, expanding ${VAR} from the environment; ConfigError on a missing or bad file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(os.path.expandvars(path.read_text()))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def set_dotted(config: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Apply an override like `value.horizon=24M` to a nested mapping."""
    keys = dotted_key.split(".")
    node = config
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted_key!r}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def parse_overrides(pairs: list[str]) -> list[tuple[str, Any]]:
    """["a.b=1", "c=x"] -> [("a.b", 1), ("c", "x")], values parsed as YAML scalars."""
    parsed = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override must look like key=value, got {pair!r}")
        parsed.append((key.strip(), yaml.safe_load(raw)))
    return parsed
