"""Errors raised by custval. Every message names what was wrong and where, so a user can fix the input."""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError


class CustvalError(Exception):
    """Base class: the CLI turns any CustvalError into its message and exit status 2."""


class ConfigError(CustvalError):
    """A configuration value is missing, of the wrong kind or out of range."""


class SchemaError(CustvalError):
    """A table does not have the shape of its contract: a missing column or a column of the wrong type."""

    def __init__(self, table: str, column: str, rule: str, example: object = None):
        self.table, self.column, self.rule, self.example = table, column, rule, example
        msg = f"{table}.{column}: {rule}"
        if example is not None:
            msg += f" (e.g. {example!r})"
        super().__init__(msg)


class DataError(SchemaError):
    """Values break a rule of the contract (NaN ids, unparseable dates, duplicates, an empty table, ...)."""


class NotFittedError(CustvalError, _SklearnNotFittedError):
    """An estimator was used before `fit`. Also scikit-learn's NotFittedError (so an AttributeError and a
    ValueError), so code written for scikit-learn estimators catches it."""


class ConvergenceError(CustvalError):
    """A maximum-likelihood fit did not converge to a usable optimum."""


class ModelError(CustvalError):
    """A fitted model cannot give the requested quantity (e.g. Gamma-Gamma CLV with q <= 1)."""


class CustvalWarning(UserWarning):
    """Something the user should know that does not stop the run (e.g. correlated frequency and spend)."""


def shown(value: object) -> str:
    """`repr(value)` for an error message, with numpy scalars (also inside lists, tuples and dicts) shown as
    the Python numbers they hold: `1.5`, not `np.float64(1.5)`."""
    return repr(_plain(value))


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value
