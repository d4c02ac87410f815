"""The feature columns of a logged pyfunc model, shared by the classifier and uplift pyfuncs: their kinds and
dtypes (recorded in the model's spec JSON), the signature's inputs, the dtypes restored at predict time, the
input example, the fitted base learners' feature names and categorical columns, and the pip requirements."""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, ParamSchema, Schema
from mlflow.types.schema import AnyType

from custval.errors import CustvalError, DataError, SchemaError

INPUT_TABLE = "input"
EXAMPLE_ROWS = 5
# what a loaded model imports; pinned to the installed versions. Stated rather than inferred: MLflow's
# inference runs the model in a subprocess (~10-30 s per log here) and still misses xgboost for a tree.
MODEL_PACKAGES = ("custval", "mlflow", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "skops",
                  "xgboost-cpu", "xgboost")


def _feature_kind(name: str, dtype: Any, categorical: bool) -> str:
    """MLflow column type of a feature: double (numeric), long (an integer column the model treats as
    categorical: its values are labels, "3" must not come back as "3.0"), boolean, or string (categorical)."""
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "long" if categorical and pd.api.types.is_integer_dtype(dtype) else "double"
    if (isinstance(dtype, pd.StringDtype | pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)):
        return "string"
    raise SchemaError("input_example", name, "feature dtype must be numeric, bool, string or category", str(dtype))


def _restored_dtype(kind: str, dtype: Any) -> str:
    """The dtype a feature is given back at predict time (what the model saw in training)."""
    if kind == "double":
        return "float64"
    if kind == "long":
        return str(dtype)  # int64 / Int64 as in training
    if kind == "boolean":
        return "boolean"
    if isinstance(dtype, pd.StringDtype):
        return str(dtype)  # "string" (<NA>) or "str" (NaN), as in training
    return "string"  # object / category -> pandas string: an unseen level stays visible, not NaN


def feature_specs(frame: pd.DataFrame, columns: list[str], categorical: set[str] = frozenset()
                  ) -> list[dict[str, str]]:
    """[{name, type (MLflow), dtype (pandas, restored at predict)}] for `columns` of `frame`; `categorical`:
    columns the models encode as categories whatever their dtype."""
    specs = []
    for name in columns:
        if name not in frame.columns:
            raise SchemaError("input_example", name, "feature column missing from the input example")
        kind = _feature_kind(name, frame[name].dtype, name in categorical)
        specs.append({"name": name, "type": kind, "dtype": _restored_dtype(kind, frame[name].dtype)})
    return specs


def restore_features(frame: pd.DataFrame, features: list[dict[str, str]]) -> pd.DataFrame:
    """The feature columns of `frame` in training order and dtypes; extra columns are dropped.

    Serving hands over JSON-parsed columns (object with None, float64, ...): numeric features become float64,
    categorical ones pandas string (missing -> <NA>). A missing column or non-numeric text -> custval error.
    """
    dtypes = dict(zip(frame.columns, frame.dtypes, strict=True))
    names = [spec["name"] for spec in features]
    missing = [name for name in names if name not in dtypes]
    if missing:
        raise SchemaError(INPUT_TABLE, missing[0], "feature column is missing")
    kept = [dtypes[spec["name"]] == _dtype(spec["dtype"]) for spec in features]
    if all(kept):
        return frame[names]  # a feature frame built here: already what the model saw
    columns = dict(frame.items())  # one Series per column, without a lookup by name each
    restored = {}
    for spec, keep in zip(features, kept, strict=True):
        name = spec["name"]
        values = columns[name]
        if keep:
            restored[name] = values
        elif spec["type"] == "double":
            restored[name] = _as_float(name, values)
        elif spec["type"] == "boolean":
            restored[name] = _as_boolean(name, values)
        elif spec["type"] == "long":
            restored[name] = _as_integer(name, values, spec["dtype"])
        else:
            restored[name] = values.astype(spec["dtype"])
    return pd.DataFrame(restored, index=frame.index)


@functools.lru_cache(maxsize=256)
def _dtype(name: str):
    """The pandas dtype a feature is restored to (the bare name "category" as a CategoricalDtype); parsed
    once per dtype name."""
    try:
        return pd.api.types.pandas_dtype(name)
    except (TypeError, ValueError):
        return None


def _as_float(name: str, values: pd.Series) -> pd.Series:
    """float64; text numbers are parsed and blank text is missing, as when the training table was loaded
    (`custval.data.schemas.coerce_numeric_text`: a telecom export's " " charges)."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64")
    as_objects = values.astype(object)
    blank = as_objects.map(lambda v: isinstance(v, str) and not v.strip(), na_action="ignore").fillna(False)
    as_objects = as_objects.mask(blank.astype(bool))
    converted = pd.to_numeric(as_objects, errors="coerce")
    bad = converted.isna() & as_objects.notna()
    if bool(bad.any()) or pd.api.types.is_bool_dtype(values.dtype):
        example = values[bad].iloc[0] if bad.any() else values.iloc[0]
        raise DataError(INPUT_TABLE, name, "must be numeric", example)
    return converted.astype("float64")


def _as_integer(name: str, values: pd.Series, dtype: str) -> pd.Series:
    try:
        return values.astype(dtype)
    except (TypeError, ValueError):
        numeric = pd.to_numeric(values.astype(object), errors="coerce")
        bad = numeric.isna() | (numeric != numeric.round())
        raise DataError(INPUT_TABLE, name, f"must be an integer category label ({dtype})",
                        values[bad].iloc[0] if bad.any() else None) from None


def _as_boolean(name: str, values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean")
    known = values.isna() | values.map(lambda v: isinstance(v, bool | np.bool_), na_action="ignore").fillna(False)
    if not bool(known.all()):
        raise DataError(INPUT_TABLE, name, "must be true/false", values[~known].iloc[0])
    return values.astype("boolean")


def feature_signature(features: list[dict[str, str]], outputs: list[str], params: ParamSchema | None = None
                      ) -> ModelSignature:
    """Inputs: the feature columns (string / boolean / long category labels; values may be missing); outputs:
    one double column per output; `params` as given.

    Numeric features are declared `any`, not `double`: MLflow's own schema enforcement refuses an int64 column
    where it expects doubles ("Can not safely convert int64 to float64"), which is what `pd.read_csv` gives for
    a column of whole numbers. The model casts them itself (`restore_features`: numbers to float64, anything
    else a 400 naming the column); their kind stays recorded in the model's spec JSON."""
    return ModelSignature(
        inputs=Schema([ColSpec(AnyType() if spec["type"] == "double" else spec["type"], spec["name"])
                       for spec in features]),
        outputs=Schema([ColSpec("double", name) for name in outputs]),
        params=params,
    )


def fitted_parts(model: Any) -> tuple[list[str] | None, set[str]]:
    """(columns the model was trained on, those it encodes as categories), looking through a
    CalibratedClassifier to its estimator and through an averaged model to its members; (None, {}) for a model
    that does not say."""
    names, categorical = None, set()
    inner = getattr(model, "estimator", None)
    for holder in (model, inner, *getattr(inner if inner is not None else model, "estimators_", ())):
        if holder is None:
            continue
        if names is None and getattr(holder, "feature_names_in_", None) is not None:
            names = [str(c) for c in holder.feature_names_in_]
        preprocessor = getattr(holder, "preprocessor_", None)
        categorical |= {str(c) for c in getattr(preprocessor, "categorical_columns_", ())}
    return names, categorical


def example_rows(frame: pd.DataFrame, features: list[dict[str, str]]) -> pd.DataFrame:
    """The first rows, plus the first row with a missing value in each column that has some (so the
    example shows missing values are accepted), restored to the served dtypes."""
    names = [spec["name"] for spec in features]
    head = list(range(min(EXAMPLE_ROWS, len(frame))))
    missing = frame[names].isna().to_numpy()
    chosen = set(head)
    for j in range(len(names)):
        rows = np.flatnonzero(missing[:, j])
        if rows.size and not missing[head, j].any() and len(chosen) < 2 * EXAMPLE_ROWS:
            chosen.add(int(rows[0]))
    example = frame.iloc[sorted(chosen)]
    return restore_features(example, features).reset_index(drop=True)


def pip_requirements() -> list[str]:
    """`package==version` for the installed packages of MODEL_PACKAGES. custval itself is not on a public
    index: serve with `--env-manager local` from an environment where it is installed (as `make` does), or
    install it from a local wheel into the environment MLflow builds."""
    pins = []
    for name in MODEL_PACKAGES:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def bad_input(exc: CustvalError) -> MlflowException:
    """A custval error about the input rows as the MlflowException the scoring server answers with HTTP 400
    (not 500)."""
    return MlflowException(f"bad input: {exc}", error_code=INVALID_PARAMETER_VALUE)
