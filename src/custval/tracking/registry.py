"""Model registry: every new version is the `challenger`; it takes `champion` when its holdout metric is at
least as good as the current champion's. The comparison is logged as tags on the run and the version."""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    metric: str
    value: float
    champion_version: str | None
    champion_value: float | None
    promoted: bool
    reason: str
    same_data: bool | None = None  # None when there is no champion to compare with
    same_holdout: bool | None = None  # the champion was scored on this version's own holdout
    forced: bool = False  # promoted by --promote although the rule would have kept the champion

    def as_tags(self) -> dict[str, str]:
        return {f"custval.registry.{k}": "" if v is None else str(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class HoldoutScore:
    """The current champion (`version`) scored on a challenger's holdout: its `value` of the metric, or why it
    could not be scored there (`why_not`: another schema, unknown categories, ...)."""

    version: str
    value: float | None
    why_not: str | None = None


def register_challenger(model_uri: str, name: str, *, run_id: str | None = None, model_id: str | None = None) -> str:
    """Register `model_uri` as a new version of `name` with alias `challenger`; returns the version.

    Jobs register first, write their outputs naming that version, and call `promote` last, so a failed
    write leaves the champion as it was. (MlflowClient rather than `mlflow.register_model`, which prints
    progress lines to stderr.)"""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    client = mlflow.MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    if run_id is None and model_id is not None:
        run_id = client.get_logged_model(model_id).source_run_id
    version = str(client.create_model_version(name, model_uri, run_id=run_id, model_id=model_id).version)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return version


def champion_version(name: str) -> str | None:
    """The version that has the alias `champion` now (None when there is none or no such model)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def challenger_version(name: str) -> str | None:
    """The version that has the alias `challenger` now (None when there is none or no such model)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, CHALLENGER).version)
    except MlflowException:
        return None


def restore_challenger(name: str, previous: str | None, *, interrupted: str | None) -> None:
    """Give `challenger` back to `previous` (or remove it) after the job that registered `interrupted` (None:
    the job stopped before its version existed) was interrupted or killed; that version is tagged so."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    if previous is not None:
        client.set_registered_model_alias(name, CHALLENGER, previous)
    elif challenger_version(name) == interrupted and interrupted is not None:
        client.delete_registered_model_alias(name, CHALLENGER)
    if interrupted is not None:
        with contextlib.suppress(MlflowException):
            client.set_model_version_tag(name, interrupted, "custval.interrupted", "true")


def promote(name: str, version: str, *, run_id: str, metric: str, value: float, higher_is_better: bool,
            comparable_tag: str | None = None, champion_score: HoldoutScore | None = None,
            force: bool = False) -> Promotion:
    """Give `version` the alias `champion` when its `metric` is at least as good as the champion's.

    Champions are earned on the same holdout: with `champion_score` (the current champion scored on this
    version's own holdout, see HoldoutScore) the two values on those same rows are compared, and a champion
    that cannot score them is not comparable. Without it the champion's own logged metric is used, and
    `same_data` (from the runs' data fingerprints) and the reason say when that is not like-for-like. With
    `comparable_tag` (a run tag such as the propensity categories or the CLV holdout window), a champion whose
    run has another value is not comparable either. A version that is not comparable, or worse, stays
    challenger unless `force` (the CLI's --promote), and the reason says why.
    """
    import mlflow

    client = mlflow.MlflowClient()
    champion_version, champion_value, champion_tags = _current_champion(client, name, metric)
    tags = client.get_run(run_id).data.tags
    fingerprint = tags.get("custval.data_fingerprint")
    same_data = None if champion_version is None else (
        fingerprint is not None and fingerprint == champion_tags.get("custval.data_fingerprint"))
    ours = tags.get(comparable_tag) if comparable_tag else None
    theirs = champion_tags.get(comparable_tag) if comparable_tag else None
    scored = champion_score is not None and champion_score.version == champion_version
    same_holdout = None if champion_version is None else scored
    direction = "higher" if higher_is_better else "lower"
    if champion_version is None:
        promoted, reason = True, "no champion yet"
    elif comparable_tag and (theirs is None or set(theirs.split(",")) != set((ours or "").split(","))):
        promoted = False
        reason = (f"{comparable_tag} {ours!r} differs from champion v{champion_version}'s {theirs!r}: {metric} "
                  "not comparable, kept champion")
    elif scored and champion_score.value is None:
        promoted = False
        reason = (f"champion v{champion_version} cannot score this version's holdout ({champion_score.why_not}): "
                  f"{metric} not comparable, kept champion")
    elif scored:
        champion_value = champion_score.value
        promoted = bool(value >= champion_value if higher_is_better else value <= champion_value)
        reason = (f"{metric} {value:.6g} vs champion v{champion_version} {champion_value:.6g} on the same holdout "
                  f"({direction} is better): {'promoted' if promoted else 'kept champion'}")
    elif champion_value is None or not math.isfinite(champion_value):
        promoted, reason = True, f"champion v{champion_version} has no finite {metric}"
    else:
        better_or_equal = value >= champion_value if higher_is_better else value <= champion_value
        promoted = bool(better_or_equal)
        reason = (f"{metric} {value:.6g} vs champion v{champion_version} {champion_value:.6g} "
                  f"({direction} is better): {'promoted' if promoted else 'kept champion'}")
        if not same_data:
            reason += " (the champion was trained on different data: not a like-for-like comparison)"
    forced = bool(force and not promoted)
    if forced:
        promoted, reason = True, reason + "; promoted anyway (--promote)"
    result = Promotion(name, str(version), metric, float(value), champion_version, champion_value, promoted, reason,
                       same_data, same_holdout, forced)
    for key, tag_value in result.as_tags().items():  # the record of the comparison first, the alias last
        client.set_tag(run_id, key, tag_value)
        client.set_model_version_tag(name, version, key, tag_value)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    return result


def make_champion(name: str, version: str, *, run_id: str | None, reason: str) -> None:
    """Give `version` the alias `champion` by a rule of the caller's (e.g. the scorer's: its components are the
    champions); `reason` is tagged on the version (and the run) first, the alias set last."""
    import mlflow

    client = mlflow.MlflowClient()
    tags = {"custval.registry.promoted": "True", "custval.registry.reason": reason}
    for key, value in tags.items():
        if run_id is not None:
            client.set_tag(run_id, key, value)
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, CHAMPION, version)


def _current_champion(client, name: str, metric: str) -> tuple[str | None, float | None, dict[str, str]]:
    """Version, holdout metric and run tags of the current champion (None, None, {} when there is none)."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None, {}
    if not champion.run_id:
        return str(champion.version), None, {}
    data = client.get_run(champion.run_id).data
    return str(champion.version), data.metrics.get(metric), dict(data.tags)
