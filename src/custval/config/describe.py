"""`custval config show <pipeline>`: every key of a pipeline config with its default and description."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from custval.config.loading import Section


def _shown(value: Any) -> str:
    if isinstance(value, BaseModel):
        return ""
    return json.dumps(value, default=str) if not isinstance(value, str) else value


def _description(cls: type[BaseModel], name: str) -> str:
    """A field's description; a pipeline that only changes a field's default keeps its base class's text."""
    for klass in cls.__mro__:
        field = getattr(klass, "model_fields", {}).get(name)
        if field is not None and field.description:
            return " ".join(field.description.split())
    return ""


def describe(config: Section, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, description) for every setting of `config`, sections first-level expanded:
    a section's own row has no default, and its settings follow it."""
    rows = []
    for name in type(config).model_fields:
        key = f"{prefix}{name}"
        value = getattr(config, name)
        rows.append((key, _shown(value) if value is not None else "null", _description(type(config), name)))
        if isinstance(value, Section):
            rows.extend(describe(value, key + "."))
    return rows
