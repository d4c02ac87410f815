"""Building a pipeline config: built-in defaults <- YAML file (sections merge key by key) <- `--set key=value`
overrides, validated by the pipeline's pydantic model. A validation failure becomes one ConfigError naming the
dotted key, the rule and the value given ("snapshots.windows[1] must be an integer >= 1, got -1")."""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from custval.config.types import SettingError
from custval.errors import ConfigError

T = TypeVar("T", bound=BaseModel)


class Section(BaseModel):
    """A group of settings: unknown keys are errors; each field's docstring is its description.

    `key` is where the section sits in a pipeline config (e.g. "data"), so that a section built on its own
    (`DataConfig(duplicates="x")`) names its settings as they are written in a config file."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_default=False)
    key: ClassVar[str] = ""

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(exc, type(self), prefix=self.key) from None

    def as_dict(self) -> dict[str, Any]:
        """Plain nested values (lists, strings, numbers): the logged config.yaml loads back as this config."""
        return self.model_dump(mode="json")


# --------------------------------------------------------------------------------------------- YAML, --set
class _Loader(yaml.SafeLoader):
    """YAML's safe loader, but dates stay text: the config's Date type parses them (and names the key when a
    date such as 1997-02-30 does not exist), and 1e6 is a number (YAML 1.1 reads it as text)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, expanding ${VAR} from the environment; ConfigError on a missing or bad file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = _yaml(os.path.expandvars(path.read_text()))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
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


def parse_value(raw: str) -> Any:
    """A `--set` value read as a YAML scalar or flow collection ("0.5", "[30, 90]", "null"); text that is not
    valid YAML (a strftime format such as "%d/%m/%Y %H:%M") is taken as it is."""
    try:
        return _yaml(raw)
    except yaml.YAMLError:
        return raw


def parse_overrides(pairs: list[str]) -> list[tuple[str, Any]]:
    """["a.b=1", "c=x"] -> [("a.b", 1), ("c", "x")], values parsed by `parse_value`."""
    parsed = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override must look like key=value, got {pair!r}")
        parsed.append((key.strip(), parse_value(raw)))
    return parsed


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `update` into a copy of `base`: mappings merge key by key, other values replace."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """The defaults of `cls`, updated by the YAML file at `path`, then by `key=value` overrides (dotted keys
    reach into sections), validated into `cls`. Any failure is a ConfigError naming the key."""
    raw = cls().model_dump()
    if path is not None:
        raw = merge(raw, load_yaml(path))
    for key, value in parse_overrides(overrides or []):
        set_dotted(raw, key, value)
    return validate_config(cls, raw)


def validate_config(cls: type[T], raw: Any) -> T:
    """`cls.model_validate(raw)` with failures as a ConfigError naming the dotted key."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a {cls.__name__} must be built from a mapping of settings, got {raw!r}")
    try:
        return cls.model_validate(dict(raw))
    except ValidationError as exc:
        raise config_error(exc, cls) from None


# ------------------------------------------------------------------------------------------------ errors
def _dotted(loc: tuple, prefix: str = "") -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _section_class(annotation: Any) -> type[BaseModel] | None:
    """The model class of a field annotation (`DataConfig`, `DataConfig | None`), else None."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _model_at(cls: type[BaseModel] | None, loc: tuple) -> type[BaseModel] | None:
    for part in loc:
        if cls is None or not isinstance(part, str) or part not in cls.model_fields:
            return None
        cls = _section_class(cls.model_fields[part].annotation)
    return cls


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_TYPE_RULES = {
    "int_type": "must be an integer", "int_parsing": "must be an integer", "int_from_float": "must be an integer",
    "float_type": "must be a number", "float_parsing": "must be a number", "finite_number": "must be a finite number",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "string_type": "must be text", "list_type": "must be a list", "tuple_type": "must be a list",
    "dict_type": "must be a mapping", "missing": "is required",
}


def _message(error: dict, root: type[BaseModel], prefix: str) -> str:
    loc, kind, given = tuple(error["loc"]), error["type"], error.get("input")
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, SettingError):
        key = _dotted(tuple(part for part in cause.key.split(".") if part), _dotted(loc, prefix))
        return f"{key}{'' if cause.message.startswith('=') else ' '}{cause.message}"
    where = _dotted(loc, prefix) or root.__name__
    if kind in ("model_type", "model_attributes_type") or (kind == "dict_type" and _model_at(root, loc)):
        section = _model_at(root, loc)
        keys = sorted(section.model_fields) if section is not None else []
        return f"{where} must be a mapping of settings with keys from {keys}, got {_shown(given)}"
    if kind in _TYPE_RULES:
        return f"{where} {_TYPE_RULES[kind]}, got {_shown(given)}" if kind != "missing" else f"{where} is required"
    ctx = error.get("ctx") or {}
    for bound, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if bound in ctx:
            return f"{where} must be {sign} {ctx[bound]}, got {_shown(given)}"
    text = str(error.get("msg", "")).removeprefix("Value error, ")
    return f"{where}: {text}, got {_shown(given)}"


def config_error(exc: ValidationError, cls: type[BaseModel], *, prefix: str = "") -> ConfigError:
    """One ConfigError for a pydantic failure: the first problem (unknown keys grouped per section), with a
    count of the others."""
    errors = exc.errors(include_url=False)
    unknown: dict[tuple, list[str]] = {}
    for error in errors:
        if error["type"] == "extra_forbidden":
            unknown.setdefault(tuple(error["loc"][:-1]), []).append(str(error["loc"][-1]))
    if unknown:
        parent, keys = next(iter(unknown.items()))
        section = _model_at(cls, parent)
        allowed = sorted(section.model_fields) if section is not None else []
        where = _dotted(parent, prefix) or "config"
        message = f"{where}: unknown keys {sorted(keys)}; allowed: {allowed}"
        others = len(errors) - len(keys)
    else:
        message = _message(errors[0], cls, prefix)
        others = len(errors) - 1
    if others:
        message += f" (and {others} more problem{'s' if others > 1 else ''})"
    return ConfigError(message)
