"""Registered and logged models by URI: which version a `models:/name@alias` or `models:/name/version` URI
names (MLflow's own URI helpers), and custval's CLV, classifier and uplift models loaded as data (JSON
parameters, XGBoost JSON boosters), without running the Python file logged beside them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from custval.errors import ConfigError, ModelError
from custval.tracking.pyfunc import CLV_ARTIFACT


@dataclass(frozen=True)
class ModelRef:
    """What a model URI points at: the registered name and version (None for runs:/ or plain URIs), the run
    that logged it (None when unknown) and, for a logged model's `models:/<model_id>`, its artifact location."""

    uri: str
    name: str | None
    version: str | None
    run_id: str | None
    location: str | None = None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def resolve_model(uri: str, *, setting: str = "model_uri") -> ModelRef:
    """The registered version behind a `models:/name@alias` or `models:/name/version` URI, the run behind a
    logged model's `models:/<model_id>`; other URIs (runs:/..., paths) as they are."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository
    from mlflow.store.artifact.utils.models import get_model_name_and_version
    from mlflow.utils.uri import is_models_uri

    if not isinstance(uri, str) or not uri.strip():
        raise ConfigError(f"{setting} must be a model URI such as 'models:/custval-clv@champion', got {uri!r}")
    if not is_models_uri(uri):
        run_id = RunsArtifactRepository.parse_runs_uri(uri)[0] if RunsArtifactRepository.is_runs_uri(uri) else None
        return ModelRef(uri, None, None, run_id)
    client = mlflow.MlflowClient()
    try:
        parsed = get_model_name_and_version(client, uri)
        if len(parsed) == 1:  # models:/<model_id>, a logged (not registered) model, as ModelInfo.model_uri
            logged = client.get_logged_model(parsed[0])
            return ModelRef(uri, None, None, logged.source_run_id or None, logged.artifact_location)
        name, version = parsed
        run_id = client.get_model_version(name, version).run_id
    except MlflowException as exc:
        raise ConfigError(f"{setting}: cannot load {uri!r} from {mlflow.get_tracking_uri()}: "
                          f"{_first_line(exc)}") from None
    return ModelRef(uri, name, str(version), run_id or None)


def load_clv_model(uri: str, *, setting: str = "model_uri"):
    """(CustomerValue, ModelRef) of a CLV model logged by custval (`custval train clv`), read from its JSON
    parameters: the model's own period and horizon come with it."""
    from custval.models.clv.value import CustomerValue

    ref = resolve_model(uri, setting=setting)
    local = _download(uri, ref, f"artifacts/{CLV_ARTIFACT}.json", setting=setting, what="CLV model")
    try:
        spec = json.loads(Path(local).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{setting}: {uri!r}: {CLV_ARTIFACT}.json is not valid JSON ({exc})") from None
    return CustomerValue.from_dict(spec), ref


def _download(uri: str, ref: ModelRef, path: str, *, setting: str, what: str) -> str:
    """A path inside a logged model, downloaded from the version `ref` resolved (an alias is read once)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    pinned = (f"models:/{ref.name}/{ref.version}" if ref.version is not None
              else (ref.location or uri).rstrip("/"))
    try:
        return mlflow.artifacts.download_artifacts(artifact_uri=f"{pinned}/{path}")
    except (MlflowException, OSError) as exc:
        raise ConfigError(f"{setting}: {uri!r} is not a custval {what} (no {path}: {_first_line(exc)})") from None


def load_classifier_model(uri: str, *, setting: str = "model_uri"):
    """(ClassifierPyfunc, ModelRef) of a churn or propensity model logged by custval, read as data (its JSON
    spec, skops trees and XGBoost JSON boosters), without running the Python file logged beside it."""
    from custval.tracking.classifier_pyfunc import ClassifierPyfunc

    ref = resolve_model(uri, setting=setting)
    directory = _download(uri, ref, "artifacts", setting=setting, what="classifier model")
    try:
        return ClassifierPyfunc.from_directory(directory), ref
    except (OSError, KeyError, ValueError, ModelError) as exc:
        raise ConfigError(f"{setting}: {uri!r} is not a custval classifier model ({exc})") from None


def load_uplift_model(uri: str, *, setting: str = "model_uri"):
    """(UpliftPyfunc, ModelRef) of an uplift model logged by custval (`uplift_pyfunc.log_uplift_model`), read
    as data: its uplift.json spec and the learner `load_uplift` reads from the `uplift_model` directory (JSON,
    XGBoost JSON), without running the Python file logged beside them.

    The pyfunc's `model` is the uplift learner (`predict_frame`, `arms_`), `features` its feature columns and
    dtypes, `restore(frame)` checks a frame's columns and `score(frame)` gives the `uplift_<arm>` columns."""
    from custval.tracking.uplift_pyfunc import UpliftPyfunc

    ref = resolve_model(uri, setting=setting)
    directory = _download(uri, ref, "artifacts", setting=setting, what="uplift model")
    try:
        return UpliftPyfunc.from_directory(directory), ref
    except (OSError, KeyError, TypeError, ValueError, ModelError) as exc:
        raise ConfigError(f"{setting}: {uri!r} is not a custval uplift model ({exc})") from None


def model_artifacts(uri: str, *, setting: str = "model_uri") -> tuple[str, ModelRef]:
    """(local path of the model's `artifacts/` directory, ModelRef) of a logged model, downloaded from the
    version the URI resolves to (an alias is read once): what a composite model copies its components from."""
    ref = resolve_model(uri, setting=setting)
    return _download(uri, ref, "artifacts", setting=setting, what="model"), ref
