"""`custval scorer register` / `custval scorer refresh`: the composite scorer (custval.serving.scorer) built from
the models a ScoreConfig names (`models`), logged in an MLflow run of its experiment (custval-scoring) and
registered as `custval-scorer`.

Promotion rule: a new version is the challenger; it becomes champion when every component is the current
champion of its registered model (the default `models:/...@champion` URIs), since then the scorer answers what
`custval score` with the same config answers; a version built from another version (`models:/custval-churn/3`,
a challenger) stays challenger unless `promote` (--promote). Each component is recorded as the version tag
`custval.component.<role>` = name/version. `refresh` registers only when a component's version differs from
the current scorer champion's (or there is no champion) and says what moved.

Wiring only: the config and every component are checked before the base is loaded; the base gives the default
history start (its first day, as `custval score` uses) and a few customers' rows as the input example.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from custval.config import ScoreConfig
from custval.errors import ConfigError, ModelError
from custval.features.datasets import load_base
from custval.features.snapshots import history_start
from custval.jobs.score import check_config, check_role
from custval.jobs.sequence import start_job
from custval.scoring.batch import ROLES, ScoringModels, scoring_rules
from custval.serving.scorer import ScorerPyfunc, log_scorer_model
from custval.tracking import runs
from custval.tracking.models import model_artifacts
from custval.tracking.registry import champion_version, make_champion

SCORER_NAME = "custval-scorer"
COMPONENT_TAG = "custval.component.{}"
EXAMPLE_CUSTOMERS = 3


@dataclass
class ScorerResult:
    """What a register / refresh did: the components (role -> name/version), what moved since the champion
    scorer (role -> (before, now)), and the version registered (None: nothing moved)."""

    components: dict[str, str]
    moved: dict[str, tuple[str, str]]
    version: str | None = None
    promoted: bool = False
    reason: str = ""
    run_id: str | None = None
    history_start: pd.Timestamp | None = None
    tracking_uri: str = ""
    champion: str | None = None
    previous: dict[str, str] = field(default_factory=dict)


def _label(ref) -> str:
    return f"{ref.name}/{ref.version}" if ref.name else ref.uri


def _components(config: ScoreConfig):
    """role -> (artifacts directory, ModelRef), every alias resolved once; and the models loaded from them."""
    found, loaded = {}, {}
    for role in ROLES:
        uri = getattr(config.models, role)
        if uri is None:
            continue
        directory, ref = model_artifacts(uri, setting=f"models.{role}")
        found[role] = (directory, ref)
    # the scorer's own loader reads the components, so what is registered is what will be served
    probe = ScorerPyfunc()
    for role, (directory, _) in found.items():
        try:
            loaded[role] = check_role(role, probe.load_component(role, directory), found[role][1].uri)
        except (OSError, KeyError, TypeError, ValueError, ModelError) as exc:
            raise ConfigError(f"models.{role}: {found[role][1].uri!r} is not a custval {role} model "
                              f"({exc})") from None
    return found, ScoringModels(**loaded)


def _champion_components(tracking_uri: str) -> tuple[str | None, dict[str, str]]:
    import mlflow

    version = champion_version(SCORER_NAME)
    if version is None:
        return None, {}
    tags = mlflow.MlflowClient().get_model_version(SCORER_NAME, version).tags
    prefix = COMPONENT_TAG.format("")
    return version, {k.removeprefix(prefix): v for k, v in tags.items() if k.startswith(prefix)}


def register_scorer(config: ScoreConfig, *, tracking_uri: str | None = None, promote: bool = False,
                    only_if_moved: bool = False) -> ScorerResult:
    """Build, log and register the scorer of `config` (module docstring); `only_if_moved`: `refresh`."""
    import mlflow

    config = check_config(config)
    with start_job(outputs={}, tracking_uri=tracking_uri, experiment=config.experiment) as job:
        found, models = _components(config)
        has_customers = config.data.simulated or config.data.customers is not None
        rules = scoring_rules(config, models, has_customers=has_customers)
        components = {role: _label(ref) for role, (_, ref) in found.items()}
        champion, previous = _champion_components(job.tracking_uri)
        moved = {role: (previous.get(role, "-"), components.get(role, "-"))
                 for role in ROLES if previous.get(role) != components.get(role)}
        result = ScorerResult(components, moved, tracking_uri=job.tracking_uri, champion=champion,
                              previous=previous)
        if only_if_moved and champion is not None and not moved:
            result.reason = f"no component moved since champion v{champion}: nothing registered"
            return result
        transactions, customers, fingerprint = load_base(config)
        start = history_start(transactions)
        example = _example(transactions, customers)
        tags = {COMPONENT_TAG.format(role): label for role, label in components.items()}
        with runs.tracked_run(config.experiment, config=config.as_dict(), run_name=config.run_name,
                              data_fingerprint=fingerprint, tags={**tags, "custval.scorer": "true"}) as run:
            info = log_scorer_model(found, rules, history_start=start, returns=config.data.returns,
                                    input_example=example)
            done = job.finish(run, outputs=[], model=info, registered_model=SCORER_NAME)
        client = mlflow.MlflowClient()
        for key, value in tags.items():
            client.set_model_version_tag(SCORER_NAME, done.registered_version, key, value)
        behind = {role: label for role, label in components.items()
                  if found[role][1].name and champion_version(found[role][1].name) != found[role][1].version}
        if not behind:
            reason = "every component is the champion of its registered model"
        else:
            reason = "not champions: " + ", ".join(f"models.{r} {label}" for r, label in behind.items())
            reason += "; promoted anyway (--promote)" if promote else "; kept challenger"
        promoted = not behind or promote
        if promoted:
            make_champion(SCORER_NAME, done.registered_version, run_id=run.info.run_id, reason=reason)
        else:
            client.set_model_version_tag(SCORER_NAME, done.registered_version, "custval.registry.reason", reason)
        result.version, result.promoted, result.reason = done.registered_version, promoted, reason
        result.run_id, result.history_start = run.info.run_id, start
        return result


def _example(transactions: pd.DataFrame, customers: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of the first few customers, with their attributes on each row, timestamps as ISO text."""
    ids = transactions["customer_id"].drop_duplicates().head(EXAMPLE_CUSTOMERS)
    rows = transactions.loc[transactions["customer_id"].isin(ids), ["customer_id", "timestamp", "amount"] + (
        ["category"] if "category" in transactions.columns else [])]
    if customers is not None:
        rows = rows.merge(customers, on="customer_id", how="left")
    for column in rows.columns:
        if pd.api.types.is_datetime64_any_dtype(rows[column].dtype):
            rows[column] = rows[column].dt.strftime("%Y-%m-%dT%H:%M:%S")
        elif isinstance(rows[column].dtype, pd.StringDtype):
            rows[column] = rows[column].astype(object).where(rows[column].notna(), None)
    return rows.reset_index(drop=True)
