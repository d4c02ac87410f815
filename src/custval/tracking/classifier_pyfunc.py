"""MLflow pyfunc for churn / propensity classifiers: feature rows in, probabilities (and optional reasons) out.

The model is logged *from code* (`classifier_model_code.py`); each classifier is saved by
`custval.models.classifiers.save_classifier` (JSON, skops, XGBoost JSON) into a directory artifact
`classifier_<i>`, and `outputs.json` records the output names, the feature columns and their dtypes. Loading
never unpickles anything.
"""

from __future__ import annotations

import json
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import AnyType

from custval.errors import ConfigError, CustvalError, DataError, SchemaError

CLASSIFIER_MODEL_CODE = Path(__file__).with_name("classifier_model_code.py")
OUTPUTS_ARTIFACT = "outputs"
OUTPUTS_FILE = "outputs.json"
CLASSIFIER_ARTIFACT = "classifier_{}"
REASONS_PARAM = "reasons"
REASON_PREFIX = "reason_"
INPUT_TABLE = "input"
FORMAT_VERSION = 1
EXAMPLE_ROWS = 5
# what a loaded model imports; pinned to the installed versions. Stated rather than inferred: MLflow's
# inference runs the model in a subprocess (~10-30 s per log here) and still misses xgboost for a tree.
MODEL_PACKAGES = ("custval", "mlflow", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "skops",
                  "xgboost-cpu", "xgboost")


class ClassifierPyfunc(mlflow.pyfunc.PythonModel):
    """Feature columns -> one float64 probability column per output (+ reason_1..k when asked)."""

    def load_context(self, context) -> None:
        self.load_artifacts(context.artifacts)

    def load_artifacts(self, artifacts: dict[str, str]) -> ClassifierPyfunc:
        """Read the spec and every classifier from their artifact paths (JSON, skops, XGBoost JSON)."""
        from custval.models.classifiers import load_classifier

        self.spec = json.loads(Path(artifacts[OUTPUTS_ARTIFACT]).read_text())
        self.features = self.spec["features"]
        self.models = {
            output: load_classifier(artifacts[artifact])
            for output, artifact in zip(self.spec["outputs"], self.spec["artifacts"], strict=True)
        }
        return self

    @classmethod
    def from_directory(cls, directory: str | Path) -> ClassifierPyfunc:
        """The model from a downloaded `artifacts/` directory of a logged classifier model: as data, without
        running the Python file MLflow stores beside it."""
        directory = Path(directory)
        spec = json.loads((directory / OUTPUTS_FILE).read_text())
        paths = {OUTPUTS_ARTIFACT: str(directory / OUTPUTS_FILE)}
        paths.update({artifact: str(directory / artifact) for artifact in spec["artifacts"]})
        return cls().load_artifacts(paths)

    def score(self, model_input: pd.DataFrame, reasons: int = 0) -> pd.DataFrame:
        """The outputs (P(y = 1) per output, and reason_1..k when `reasons` > 0) for feature rows; custval
        errors for input that does not fit the model."""
        X = restore_features(pd.DataFrame(model_input), self.features)
        result = pd.DataFrame(index=X.index)
        for output, columns in zip(self.spec["outputs"], self.spec["model_features"], strict=True):
            proba = np.asarray(self.models[output].predict_proba(X[columns]))
            result[output] = proba[:, 1].astype("float64")
        if reasons:
            explainer = self.spec["explain"]
            columns = self.spec["model_features"][self.spec["outputs"].index(explainer)]
            explained = self.models[explainer].explain(X[columns], top=reasons)
            for j in range(1, reasons + 1):
                column = explained[f"{REASON_PREFIX}{j}"]
                # plain str/None: JSON-serialisable when served, whatever dtype explain used
                result[f"{REASON_PREFIX}{j}"] = column.astype(object).where(column.notna(), None).to_numpy()
        return result

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        try:
            return self.score(model_input, _reasons(params, self.spec["explain"]))
        except CustvalError as exc:
            # the scoring server answers MlflowExceptions with this code as HTTP 400, not 500
            raise MlflowException(f"bad input: {exc}", error_code=INVALID_PARAMETER_VALUE) from exc


def _reasons(params: dict[str, Any] | None, explain: str | None) -> int:
    top = (params or {}).get(REASONS_PARAM, 0)
    top = 0 if top is None else top
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 0:
        raise DataError("params", REASONS_PARAM, "must be an integer >= 0", top)
    if top and explain is None:
        raise DataError("params", REASONS_PARAM, "this model was logged without explain=, so it gives no reasons",
                        int(top))
    return int(top)


# -- feature columns: kinds, signature, dtype restoration ------------------------------------------------------

def _feature_kind(name: str, dtype: Any, categorical: bool) -> str:
    """MLflow column type of a feature: double (numeric), long (an integer column the classifier treats as
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
    """The dtype a feature is given back at predict time (what the classifier saw in training)."""
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
    columns the classifiers encode as categories whatever their dtype."""
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
    restored = {}
    for spec in features:
        name = spec["name"]
        if name not in frame.columns:
            raise SchemaError(INPUT_TABLE, name, "feature column is missing")
        values = frame[name]
        if spec["type"] == "double":
            restored[name] = _as_float(name, values)
        elif spec["type"] == "boolean":
            restored[name] = _as_boolean(name, values)
        elif spec["type"] == "long":
            restored[name] = _as_integer(name, values, spec["dtype"])
        else:
            restored[name] = values.astype(spec["dtype"])
    return pd.DataFrame(restored, index=frame.index)


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


def classifier_signature(features: list[dict[str, str]], outputs: list[str]) -> ModelSignature:
    """Inputs: the feature columns (string / boolean / long category labels; values may be missing); outputs:
    one double column per output; params: `reasons` (long, default 0).

    Numeric features are declared `any`, not `double`: MLflow's own schema enforcement refuses an int64 column
    where it expects doubles ("Can not safely convert int64 to float64"), which is what `pd.read_csv` gives for
    a column of whole numbers. The model casts them itself (`restore_features`: numbers to float64, anything
    else a 400 naming the column); their kind stays recorded in the model's outputs.json."""
    return ModelSignature(
        inputs=Schema([ColSpec(AnyType() if spec["type"] == "double" else spec["type"], spec["name"])
                       for spec in features]),
        outputs=Schema([ColSpec("double", name) for name in outputs]),
        params=ParamSchema([ParamSpec(REASONS_PARAM, "long", 0)]),
    )


def _fitted_parts(model: Any) -> tuple[list[str] | None, set[str]]:
    """(columns the classifier was trained on, those it encodes as categories), looking through a
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


def _input_example(frame: pd.DataFrame, features: list[dict[str, str]]) -> pd.DataFrame:
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


def log_classifier_model(models: dict[str, Any], input_example: pd.DataFrame, *, name: str = "model",
                         explain: str | None = None):
    """Log fitted classifiers as one pyfunc model; returns MLflow's ModelInfo.

    `models` maps output column names (e.g. "churn_probability", "p_grocery") to fitted classifiers; the
    loaded model's `predict(df, params={"reasons": k})` returns their P(y=1) as float64 columns, plus
    reason_1..k from `models[explain].explain(X, top=k)` when k > 0. `input_example` is a frame of training
    features (extra columns such as customer_id are ignored); its dtypes define the signature.
    """
    from custval.models.classifiers import save_classifier

    if not isinstance(models, dict) or not models:
        raise ConfigError("log_classifier_model: models must be a non-empty dict {output name: classifier}")
    outputs = list(models)
    for output, model in models.items():
        if not isinstance(output, str) or not output or output.startswith(REASON_PREFIX):
            raise ConfigError(f"log_classifier_model: output name {output!r} must be a non-empty string "
                              f"not starting with {REASON_PREFIX!r}")
        if not hasattr(model, "predict_proba"):
            raise ConfigError(f"log_classifier_model: models[{output!r}] has no predict_proba")
    if explain is not None:
        if explain not in models:
            raise ConfigError(f"log_classifier_model: explain={explain!r} is not one of the outputs {outputs}")
        explainer = models[explain]
        if not (hasattr(explainer, "explain") and hasattr(getattr(explainer, "estimator", explainer), "explain")):
            raise ConfigError(f"log_classifier_model: models[{explain!r}] has no explain() to give reasons")
    if not isinstance(input_example, pd.DataFrame) or input_example.empty:
        raise ConfigError("log_classifier_model: input_example must be a non-empty DataFrame of features")

    parts = [_fitted_parts(model) for model in models.values()]
    model_features = [list(input_example.columns) if names is None else names for names, _ in parts]
    categorical = set().union(*(cats for _, cats in parts))
    names = list(dict.fromkeys(name for columns in model_features for name in columns))
    features = feature_specs(input_example, names, categorical)
    spec = {
        "format": FORMAT_VERSION,
        "outputs": outputs,
        "artifacts": [CLASSIFIER_ARTIFACT.format(i) for i in range(len(outputs))],
        "features": features,
        "model_features": model_features,
        "explain": explain,
    }
    example = _input_example(input_example, features)
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = {}
        for artifact, model in zip(spec["artifacts"], models.values(), strict=True):
            directory = Path(tmp) / artifact
            save_classifier(model, directory)
            artifacts[artifact] = str(directory)
        spec_path = Path(tmp) / OUTPUTS_FILE
        spec_path.write_text(json.dumps(spec, indent=2))
        artifacts[OUTPUTS_ARTIFACT] = str(spec_path)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(CLASSIFIER_MODEL_CODE),
            artifacts=artifacts,
            signature=classifier_signature(features, outputs),
            input_example=example,
            pip_requirements=pip_requirements(),
        )
