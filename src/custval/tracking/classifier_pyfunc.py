"""MLflow pyfunc for churn / propensity classifiers: feature rows in, probabilities (and optional reasons) out.

The model is logged *from code* (`classifier_model_code.py`); each classifier is saved by
`custval.models.classifiers.save_classifier` (JSON, skops, XGBoost JSON) into a directory artifact
`classifier_<i>`, and `outputs.json` records the output names, the feature columns and their dtypes, and the
recipe of the features (how the training job built them: custval.features.snapshots.check_recipe; absent in
models logged before recipes, whose `.recipe` is None). Loading never unpickles anything.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ParamSchema, ParamSpec

from custval.errors import ConfigError, CustvalError, DataError, ModelError
from custval.models.classifiers import shared_inputs
from custval.tracking.model_inputs import (
    bad_input,
    example_rows,
    feature_signature,
    feature_specs,
    fitted_parts,
    pip_requirements,
    restore_features,
)

CLASSIFIER_MODEL_CODE = Path(__file__).with_name("classifier_model_code.py")
OUTPUTS_ARTIFACT = "outputs"
OUTPUTS_FILE = "outputs.json"
CLASSIFIER_ARTIFACT = "classifier_{}"
REASONS_PARAM = "reasons"
REASON_PREFIX = "reason_"
FORMAT_VERSION = 1


class ClassifierPyfunc(mlflow.pyfunc.PythonModel):
    """Feature columns -> one float64 probability column per output (+ reason_1..k when asked)."""

    def load_context(self, context) -> None:
        self.load_artifacts(context.artifacts)

    def load_artifacts(self, artifacts: dict[str, str]) -> ClassifierPyfunc:
        """Read the spec and every classifier from their artifact paths (JSON, skops, XGBoost JSON)."""
        from custval.models.classifiers import load_classifier

        self.spec = json.loads(Path(artifacts[OUTPUTS_ARTIFACT]).read_text())
        self.features = self.spec["features"]
        if not isinstance(self.spec.get("recipe"), dict | None):
            raise ModelError(f"{OUTPUTS_FILE}: recipe must be a mapping, got {type(self.spec['recipe']).__name__}")
        self.models = {
            output: load_classifier(artifacts[artifact])
            for output, artifact in zip(self.spec["outputs"], self.spec["artifacts"], strict=True)
        }
        return self

    @property
    def recipe(self) -> dict[str, Any] | None:
        """How the training job built the input features (a dict as logged; check it with
        custval.features.snapshots.check_recipe / recipe_options); None for a model logged without one."""
        return self.spec.get("recipe")

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
        result = {}
        # every output reads its own columns (`model_features`) of X itself: each column is prepared once for
        # all the outputs and their members
        with shared_inputs(X):
            for output in self.spec["outputs"]:
                proba = np.asarray(self.models[output].predict_proba(X))
                result[output] = proba[:, 1].astype("float64")
            if reasons:
                explained = self.models[self.spec["explain"]].explain(X, top=reasons)
                for j in range(1, reasons + 1):
                    column = explained[f"{REASON_PREFIX}{j}"]
                    # plain str/None: JSON-serialisable when served, whatever dtype explain used
                    result[f"{REASON_PREFIX}{j}"] = column.astype(object).where(column.notna(), None).to_numpy()
        return pd.DataFrame(result, index=X.index)  # one frame built, not a column inserted per output

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        try:
            return self.score(model_input, _reasons(params, self.spec["explain"]))
        except CustvalError as exc:
            raise bad_input(exc) from exc


def _reasons(params: dict[str, Any] | None, explain: str | None) -> int:
    top = (params or {}).get(REASONS_PARAM, 0)
    top = 0 if top is None else top
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 0:
        raise DataError("params", REASONS_PARAM, "must be an integer >= 0", top)
    if top and explain is None:
        raise DataError("params", REASONS_PARAM, "this model was logged without explain=, so it gives no reasons",
                        int(top))
    return int(top)


def classifier_signature(features: list[dict[str, str]], outputs: list[str]) -> ModelSignature:
    """The feature inputs and one double column per output (`model_inputs.feature_signature`: numeric inputs
    are `any`, cast by the model); params: `reasons` (long, default 0)."""
    return feature_signature(features, outputs, ParamSchema([ParamSpec(REASONS_PARAM, "long", 0)]))


def log_classifier_model(models: dict[str, Any], input_example: pd.DataFrame, *, name: str = "model",
                         explain: str | None = None, recipe: dict[str, Any] | None = None):
    """Log fitted classifiers as one pyfunc model; returns MLflow's ModelInfo.

    `models` maps output column names (e.g. "churn_probability", "p_grocery") to fitted classifiers; the
    loaded model's `predict(df, params={"reasons": k})` returns their P(y=1) as float64 columns, plus
    reason_1..k from `models[explain].explain(X, top=k)` when k > 0. `input_example` is a frame of training
    features (extra columns such as customer_id are ignored); its dtypes define the signature. `recipe`: how
    the features were built (custval.features.snapshots.snapshot_recipe / table_recipe), kept in the spec.
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
    if not isinstance(recipe, dict | None):
        raise ConfigError(f"log_classifier_model: recipe must be a dict (snapshot_recipe), got "
                          f"{type(recipe).__name__}")

    parts = [fitted_parts(model) for model in models.values()]
    model_features = [list(input_example.columns) if names is None else names for names, _ in parts]
    categorical = set().union(*(cats for _, cats in parts))
    # every output's columns, in the order of the training frame (as build_snapshot gives them)
    union = list(dict.fromkeys(name for columns in model_features for name in columns))
    wanted = set(union)
    names = [c for c in input_example.columns if c in wanted]
    names += [c for c in union if c not in input_example.columns]  # none when the frame has every column
    features = feature_specs(input_example, names, categorical)
    spec = {
        "format": FORMAT_VERSION,
        "outputs": outputs,
        "artifacts": [CLASSIFIER_ARTIFACT.format(i) for i in range(len(outputs))],
        "features": features,
        "model_features": model_features,
        "explain": explain,
        "recipe": recipe,
    }
    example = example_rows(input_example, features)
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
