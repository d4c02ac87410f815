"""MLflow pyfunc wrappers. Models are logged *from code* with their parameters as a JSON artifact, so loading
a model never unpickles anything."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, Schema

from custval.errors import CustvalError

CLV_INPUTS = ("frequency", "recency", "T", "monetary_value")
CLV_OUTPUTS = ("expected_purchases", "p_alive", "expected_spend", "clv")
CLV_ARTIFACT = "clv_model"
CLV_MODEL_CODE = Path(__file__).with_name("clv_model_code.py")


class CLVPyfunc(mlflow.pyfunc.PythonModel):
    """frequency, recency, T, monetary_value (model periods) -> expected_purchases, p_alive, expected_spend, clv."""

    def load_context(self, context) -> None:
        from custval.models.clv.value import CustomerValue

        spec = json.loads(Path(context.artifacts[CLV_ARTIFACT]).read_text())
        self.model = CustomerValue.from_dict(spec)

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        try:
            return self.model.predict(frame[list(CLV_INPUTS)].astype("float64"))
        except (CustvalError, KeyError, ValueError) as exc:
            # the scoring server answers MlflowExceptions with this code as HTTP 400, not 500
            raise MlflowException(f"bad input: {exc}", error_code=INVALID_PARAMETER_VALUE) from exc


def clv_signature() -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec("double", name) for name in CLV_INPUTS]),
        outputs=Schema([ColSpec("double", name) for name in CLV_OUTPUTS]),
    )


def log_clv_model(model_spec: dict, input_example: pd.DataFrame, name: str = "model"):
    """Log a fitted CustomerValue (given as its `to_dict()`) as a pyfunc model; returns MLflow's ModelInfo."""
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / f"{CLV_ARTIFACT}.json"
        spec_path.write_text(json.dumps(model_spec, indent=2, default=_json_default))
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(CLV_MODEL_CODE),
            artifacts={CLV_ARTIFACT: str(spec_path)},
            signature=clv_signature(),
            input_example=input_example[list(CLV_INPUTS)].astype("float64"),
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
