"""MLflow pyfunc for uplift models: feature rows in, the uplift of each treatment arm vs control out.

Logged *from code* (`uplift_model_code.py`), like the classifiers (custval.tracking.classifier_pyfunc): the
learner is saved by `custval.models.uplift.save_uplift` (JSON and XGBoost JSON) into the directory artifact
`uplift_model`, and `uplift.json` records the arms, the output columns and the feature columns with their
dtypes, and the recipe of the features (custval.features.snapshots.check_recipe; None in models logged before
recipes); a winback model valued by the second lifetime value keeps its fitted SecondLifetimeValue as
`value_model.json` (its to_dict). Loading never unpickles anything; `custval.tracking.models.load_uplift_model` reads the two artifacts
as data without running the Python file logged beside them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from custval.errors import ConfigError, CustvalError, ModelError
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

UPLIFT_MODEL_CODE = Path(__file__).with_name("uplift_model_code.py")
SPEC_ARTIFACT = "uplift_spec"
SPEC_FILE = "uplift.json"
MODEL_ARTIFACT = "uplift_model"
VALUE_ARTIFACT = "value_model"
VALUE_FILE = "value_model.json"
OUTPUT_PREFIX = "uplift_"
FORMAT = "custval-uplift-pyfunc"
FORMAT_VERSION = 1


def uplift_outputs(arms: list) -> list[str]:
    """The output columns of a logged uplift model: `uplift_<arm>` per treatment arm, in the order of `arms_`."""
    return [f"{OUTPUT_PREFIX}{arm}" for arm in arms]


class UpliftPyfunc(mlflow.pyfunc.PythonModel):
    """Feature columns -> one float64 `uplift_<arm>` column per treatment arm (vs the control arm).

    Loaded: `model` (the uplift learner, as `load_uplift` reads it), `features` (the feature columns: name,
    MLflow type, pandas dtype restored at predict time), `outputs`, `arms`, `control`, `outcome`, `recipe`
    (how the features were built; None for a model logged without one) and `value_model` (the fitted
    SecondLifetimeValue of a winback model valued by it, else None)."""

    def load_context(self, context) -> None:
        self.load_artifacts(context.artifacts)

    def load_artifacts(self, artifacts: dict[str, str]) -> UpliftPyfunc:
        """Read the spec and the learner from their artifact paths (JSON, XGBoost JSON); ModelError when they
        are not a custval uplift model."""
        from custval.models.uplift import load_uplift

        path = Path(artifacts[SPEC_ARTIFACT])
        if not path.is_file():
            raise ModelError(f"no {SPEC_FILE} among the model's artifacts")
        spec = json.loads(path.read_text())
        if not isinstance(spec, dict) or spec.get("format") != FORMAT or spec.get("version") != FORMAT_VERSION:
            found = (spec.get("format"), spec.get("version")) if isinstance(spec, dict) else type(spec).__name__
            raise ModelError(f"{SPEC_FILE} is not a {FORMAT} v{FORMAT_VERSION} spec (found {found})")
        model = load_uplift(artifacts[MODEL_ARTIFACT])
        if list(model.arms_) != spec["arms"] or uplift_outputs(model.arms_) != spec["outputs"]:
            raise ModelError(f"{SPEC_FILE} names arms {spec['arms']} but the saved learner has {list(model.arms_)}")
        if not isinstance(spec.get("recipe"), dict | None):
            raise ModelError(f"{SPEC_FILE}: recipe must be a mapping, got {type(spec['recipe']).__name__}")
        self.spec, self.model, self.value_model = spec, model, _load_value_model(spec, artifacts)
        self.features, self.outputs = spec["features"], spec["outputs"]
        self.arms, self.control, self.outcome = spec["arms"], spec["control"], spec["outcome"]
        return self

    @classmethod
    def from_directory(cls, directory: str | Path) -> UpliftPyfunc:
        """The model from a downloaded `artifacts/` directory of a logged uplift model: as data, without
        running the Python file MLflow stores beside it."""
        directory = Path(directory)
        return cls().load_artifacts({SPEC_ARTIFACT: str(directory / SPEC_FILE),
                                     MODEL_ARTIFACT: str(directory / MODEL_ARTIFACT),
                                     VALUE_ARTIFACT: str(directory / VALUE_FILE)})

    @property
    def recipe(self) -> dict[str, Any] | None:
        """How the training job built the input features (a dict as logged; check it with
        custval.features.snapshots.check_recipe / recipe_options); None for a model logged without one."""
        return self.spec.get("recipe")

    def restore(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's feature columns of `frame` in training order and dtypes (extra columns dropped); a
        SchemaError / DataError naming a missing or non-numeric column."""
        return restore_features(pd.DataFrame(frame), self.features)

    def score(self, model_input: pd.DataFrame, arms: list[str] | None = None) -> pd.DataFrame:
        """`uplift_<arm>` (float64) per treatment arm (or only of `arms`, the other arms' models not
        evaluated) for feature rows, indexed like them; custval errors for input that does not fit the model."""
        X = self.restore(model_input)
        with shared_inputs(X):  # each column prepared once for all the learner's base models
            if arms is None:
                uplift = np.asarray(self.model.predict(X), dtype=np.float64).reshape(len(X), -1)
                return pd.DataFrame(uplift, index=X.index, columns=self.outputs)
            uplift = self.model.predict_arms(X, arms).reshape(len(X), -1)
        return pd.DataFrame(uplift, index=X.index, columns=uplift_outputs(arms))

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        try:
            return self.score(model_input)
        except CustvalError as exc:
            raise bad_input(exc) from exc


def _load_value_model(spec: dict, artifacts: dict[str, str]):
    """The SecondLifetimeValue the spec names, from its JSON (from_dict), or None."""
    from custval.models.second_value import SecondLifetimeValue

    if spec.get("value_model") is None:
        return None
    path = Path(artifacts.get(VALUE_ARTIFACT, ""))
    if not path.is_file():
        raise ModelError(f"{SPEC_FILE} names a value model but there is no {VALUE_FILE} among the artifacts")
    try:
        return SecondLifetimeValue.from_dict(json.loads(path.read_text()))
    except (CustvalError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{VALUE_FILE} is not a saved SecondLifetimeValue ({exc})") from None


def _categorical_columns(model) -> set[str]:
    """The columns any fitted base learner of an uplift learner encodes as categories."""
    categorical: set[str] = set()
    for name, value in vars(model).items():
        if name.endswith("_") and not name.startswith("_"):
            for learner in value if isinstance(value, list) else [value]:
                if hasattr(learner, "arms_"):  # a member of an AveragedUplift: its own base learners
                    categorical |= _categorical_columns(learner)
                elif hasattr(learner, "get_params") and hasattr(learner, "fit"):
                    categorical |= fitted_parts(learner)[1]
    return categorical


def log_uplift_model(model, input_example: pd.DataFrame, *, name: str = "model", recipe: dict | None = None,
                     value_model=None):
    """Log a fitted uplift learner (SLearner, TLearner, XLearner, DRLearner, ClassTransformation,
    AveragedUplift) as a pyfunc model; returns MLflow's ModelInfo.

    The loaded model's `predict(df)` returns `uplift_<arm>` (float64) for each treatment arm, in the order of
    the learner's `arms_`, equal to `model.predict_frame(df)`. The learner must have been fitted on a
    DataFrame (its `feature_names_in_` are the inputs); `input_example` is a frame of training features (extra
    columns such as customer_id are ignored) whose dtypes define the signature. `recipe`: how the features
    were built (custval.features.snapshots.snapshot_recipe / table_recipe), kept in the spec; `value_model`: a
    fitted SecondLifetimeValue the targeting values responses with, saved as JSON beside the learner.
    """
    from custval.models.uplift import (
        AveragedUplift,
        ClassTransformation,
        DRLearner,
        SLearner,
        TLearner,
        XLearner,
        save_uplift,
    )

    learners = (SLearner, TLearner, XLearner, DRLearner, ClassTransformation, AveragedUplift)
    if not isinstance(model, learners):
        raise ConfigError(f"log_uplift_model: model must be one of {', '.join(c.__name__ for c in learners)}, "
                          f"got {type(model).__name__}")
    if not hasattr(model, "arms_"):
        raise ConfigError(f"log_uplift_model: the {type(model).__name__} is not fitted: call fit first")
    if getattr(model, "feature_names_in_", None) is None:
        raise ConfigError(f"log_uplift_model: the {type(model).__name__} was fitted on an array; fit it on a "
                          "DataFrame so the logged model knows its feature columns")
    if not isinstance(input_example, pd.DataFrame) or input_example.empty:
        raise ConfigError("log_uplift_model: input_example must be a non-empty DataFrame of features")
    if not isinstance(recipe, dict | None):
        raise ConfigError(f"log_uplift_model: recipe must be a dict (snapshot_recipe), got "
                          f"{type(recipe).__name__}")
    value_spec = None if value_model is None else _value_spec(value_model)

    names = [str(c) for c in model.feature_names_in_]
    features = feature_specs(input_example, names, _categorical_columns(model) & set(names))
    outputs = uplift_outputs(model.arms_)
    spec = {"format": FORMAT, "version": FORMAT_VERSION, "kind": type(model).__name__, "arms": list(model.arms_),
            "control": model.control_, "outcome": model.outcome_, "outputs": outputs, "features": features,
            "recipe": recipe, "value_model": None if value_spec is None else VALUE_FILE}
    example = example_rows(input_example, features)
    with tempfile.TemporaryDirectory() as tmp:
        directory = save_uplift(model, Path(tmp) / MODEL_ARTIFACT)
        spec_path = Path(tmp) / SPEC_FILE
        spec_path.write_text(json.dumps(spec, indent=2))
        artifacts = {MODEL_ARTIFACT: str(directory), SPEC_ARTIFACT: str(spec_path)}
        if value_spec is not None:
            (Path(tmp) / VALUE_FILE).write_text(json.dumps(value_spec, indent=2))
            artifacts[VALUE_ARTIFACT] = str(Path(tmp) / VALUE_FILE)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(UPLIFT_MODEL_CODE),
            artifacts=artifacts,
            signature=feature_signature(features, outputs),
            input_example=example,
            pip_requirements=pip_requirements(),
        )


def _value_spec(value_model) -> dict:
    """The JSON of a fitted SecondLifetimeValue (its to_dict), checked to load back."""
    from custval.models.second_value import SecondLifetimeValue

    if not isinstance(value_model, SecondLifetimeValue):
        raise ConfigError(f"log_uplift_model: value_model must be a fitted SecondLifetimeValue, got "
                          f"{type(value_model).__name__}")
    return value_model.to_dict()
