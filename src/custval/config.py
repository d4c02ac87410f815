"""Settings: where MLflow tracks, and loading pipeline configs (YAML with ${ENV} expansion).

Pipeline configs are dataclasses (nested dataclasses are sections such as `data:`); `build_config` resolves
defaults <- YAML file <- `key=value` overrides into one, rejecting unknown keys with a ConfigError.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from custval.data.schemas import DUPLICATES_POLICIES
from custval.errors import ConfigError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_ARTIFACT_DIR = "mlartifacts"
T = TypeVar("T")


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the embedded SQLite store in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def artifact_root(uri: str | None = None) -> Path:
    """Artifacts live beside a SQLite store (`<db dir>/mlartifacts`), else in ./mlartifacts."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent / DEFAULT_ARTIFACT_DIR
    return Path.cwd().resolve() / DEFAULT_ARTIFACT_DIR


def optuna_storage(uri: str | None = None) -> str:
    """Optuna study storage next to the MLflow store: `<db dir>/optuna.db` beside a SQLite store, else
    ./optuna.db. Studies there survive the process, so `custval tune` resumes them."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        directory = Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent
    else:
        directory = Path.cwd().resolve()
    return f"sqlite:///{directory / 'optuna.db'}"


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


# ------------------------------------------------------------------------------------- pipeline configs
@dataclass
class DataConfig:
    """The transactions section shared by the pipelines: where the log is and how to read it.

    source: a CSV/Parquet path or a bundled dataset (`cdnow`, `cdnow-sample`); columns: contract name -> source
    column; returns: exclude | net | error; duplicates: error | drop | keep (policies of
    `custval.data.schemas.validate_transactions`, which checks `returns`) or None for the source's own
    default (`custval.data.io.load_transactions`): "error" for files, "keep" for the bundled CDNOW datasets.
    """

    source: str = "cdnow"
    columns: dict[str, str] = field(default_factory=dict)
    returns: str = "exclude"
    # None = the source's default: a file's exact duplicate rows are an error; CDNOW (no order ids, identical
    # rows are separate purchases) keeps them.
    duplicates: str | None = None

    def validate(self) -> None:
        if not isinstance(self.source, str) or not self.source.strip():
            raise ConfigError(f"data.source must be a path or a dataset name, got {self.source!r}")
        if not isinstance(self.columns, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.columns.items()):
            raise ConfigError(f"data.columns must map contract names to column names, got {self.columns!r}")
        if self.duplicates is not None and (not isinstance(self.duplicates, str)
                                            or self.duplicates not in DUPLICATES_POLICIES):
            raise ConfigError(f"data.duplicates must be one of {list(DUPLICATES_POLICIES)} or null (the source's "
                              f"default: error for files, keep for the CDNOW datasets), got {self.duplicates!r}")


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):  # unresolvable annotation: fall back to no coercion
        return {}


def _accepts(hint: Any, kind: type) -> bool:
    """Whether the annotation `hint` is `kind`, a generic of it, or a union containing one."""
    if hint is kind or typing.get_origin(hint) is kind:
        return True
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_accepts(arg, kind) for arg in typing.get_args(hint))
    return False


def _section_class(hint: Any) -> type | None:
    """The dataclass of a nested section (`DataConfig`, or `DataConfig | None`), else None."""
    candidates = [hint, *typing.get_args(hint)] if hint is not None else []
    for candidate in candidates:
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _as_tuple(value: Any) -> Any:
    """YAML lists -> tuples, recursively (tuple-typed settings compare equal to their defaults)."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value


def config_from_dict(cls: type[T], raw: Mapping[str, Any] | None, *, name: str | None = None) -> T:
    """Build the dataclass `cls` from a mapping: nested dataclass fields are sections (mappings, None =
    defaults), unknown keys -> ConfigError listing the allowed ones, YAML lists -> tuples for tuple fields,
    YAML dates -> ISO strings for str fields. Calls `validate()` on every section that has one."""
    name = name or cls.__name__
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name}: must be a mapping of settings, got {raw!r}")
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"{name}: unknown keys {sorted(map(str, unknown))}; allowed: {sorted(known)}")
    hints = _hints(cls)
    values = {}
    for key, value in raw.items():
        hint = hints.get(key)
        section = _section_class(hint)
        if section is not None and (value is None or isinstance(value, Mapping)):
            value = config_from_dict(section, value, name=f"{name}: {key}")
        elif section is not None and not isinstance(value, section):
            raise ConfigError(f"{name}: {key} must be a mapping with keys from "
                              f"{sorted(f.name for f in dataclasses.fields(section))}, got {value!r}")
        elif isinstance(value, datetime.date) and _accepts(hint, str):
            value = value.isoformat()
        elif isinstance(value, list) and _accepts(hint, tuple):
            value = _as_tuple(value)
        values[key] = value
    try:
        config = cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{name}: {exc}") from exc
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    return config


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `update` into a copy of `base`: mappings merge key by key, other values replace."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None, *,
                 name: str | None = None) -> T:
    """Defaults of `cls`, updated by the YAML file at `path` (sections merge key by key), then by
    `key=value` overrides (dotted keys reach into sections), validated into the dataclass `cls`."""
    raw = _to_raw(cls())
    if path is not None:
        raw = _merge(raw, load_yaml(path))
    for key, value in parse_overrides(overrides or []):
        set_dotted(raw, key, value)
    return config_from_dict(cls, raw, name=name)


def _to_raw(config: Any) -> dict[str, Any]:
    """Dataclass -> plain nested dict (sections become dicts; values are not deep-copied beyond that)."""
    return {f.name: (_to_raw(getattr(config, f.name)) if dataclasses.is_dataclass(getattr(config, f.name))
                     else copy.deepcopy(getattr(config, f.name)))
            for f in dataclasses.fields(config) if f.init}
