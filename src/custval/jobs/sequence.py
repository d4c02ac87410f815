"""The sequence every job follows (docs/architecture.md):

    validate everything -> load and prepare data -> fit -> log to MLflow -> register the new version as
    `challenger` -> write outputs atomically -> promote to `champion` last.

`start_job` does the first step before any data is loaded: the tracking store is checked (and a new SQLite
store created under a lock), the experiment is not deleted, every output path is checked (suffix, not a
directory, its directory writable), and SIGTERM is turned into an interruption like SIGINT's, so that the MLflow
run ends FAILED and outputs and aliases stay as they were. `Job.finish` does the last steps in that order and
ends the run FINISHED before promoting: a failed write leaves the earlier output and the champion as they were
(the new, complete version stays a challenger); an interruption also gives `challenger` back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from custval.config.types import SettingError, output_path
from custval.data.io import write_tables
from custval.errors import ConfigError
from custval.tracking.registry import (
    HoldoutScore,
    Promotion,
    challenger_version,
    promote,
    register_challenger,
    restore_challenger,
)
from custval.tracking.runs import check_experiment
from custval.tracking.store import prepare_store


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: the job stops where it is; `signum` gives the exit status 128 + signum."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@dataclass(frozen=True)
class Champion:
    """How a new version competes for `champion`: its holdout metric, the run tag that must match, the current
    champion scored on the same holdout (see custval.tracking.registry.promote), and --promote."""

    metric: str
    value: float
    higher_is_better: bool
    comparable_tag: str | None = None
    champion_score: HoldoutScore | None = None
    force: bool = False


@dataclass
class Output:
    """A frame to write to the output setting `setting`, with its file metadata."""

    setting: str
    frame: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobRun:
    """Where a job's MLflow run is."""

    run_id: str
    experiment_id: str
    artifact_uri: str
    tracking_uri: str


@dataclass
class TrainedRun(JobRun):
    """A training job's run and the model it logged, registered and perhaps promoted."""

    model_uri: str
    registered_version: str | None
    promotion: Promotion | None


@dataclass
class Finished:
    model_uri: str | None
    registered_version: str | None
    promotion: Promotion | None
    outputs: dict[str, Path]

    @property
    def output(self) -> Path | None:
        return self.outputs.get("output")


def check_output(setting: str, value: str | os.PathLike | None) -> Path | None:
    """None, or a .parquet/.csv path that is not a directory and whose directory can be written (the nearest
    existing ancestor takes a probe file, removed at once; nothing else is created)."""
    if value is None:
        return None
    try:
        output_path(str(value))
    except SettingError as exc:
        raise ConfigError(f"{setting} {exc.message}") from None
    path = Path(value).expanduser()
    ancestor = path.parent.resolve()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{setting} {str(value)!r} cannot be written: {str(ancestor)!r} is a file, not a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=ancestor, prefix=".custval-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{setting} {str(value)!r} cannot be written: {exc.strerror or exc} in "
                          f"{str(ancestor)!r}; choose another path") from None
    return path


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM raises Interrupted (SIGINT already raises KeyboardInterrupt) while the job runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Job:
    """A job that has passed its checks: the tracking URI in use (None: untracked) and the checked outputs."""

    def __init__(self, tracking_uri: str | None, outputs: dict[str, Path | None]):
        self.tracking_uri = tracking_uri
        self.outputs = outputs

    def write(self, items: list[Output], *, run_id: str | None = None, model: Mapping[str, Any] | None = None
              ) -> dict[str, Path]:
        """Write the frames to their checked outputs (skipped when the setting is None) all or nothing, their
        metadata naming the run and the model; an OS failure is a ConfigError naming the setting."""
        chosen = [item for item in items if self.outputs.get(item.setting) is not None]
        tables = [(item.frame, self.outputs[item.setting], {**dict(model or {}), **(
            {"custval.run_id": run_id} if run_id else {}), **item.metadata}) for item in chosen]
        try:
            paths = write_tables(tables)
        except OSError as exc:
            where = next((i.setting for i in chosen if exc.filename and Path(exc.filename).name.endswith(
                self.outputs[i.setting].name)), chosen[0].setting if chosen else "output")
            raise ConfigError(f"{where} {str(self.outputs[where])!r}: cannot write the table: "
                              f"{exc.strerror or exc}") from exc
        return {item.setting: path for item, path in zip(chosen, paths, strict=True)}

    def finish(self, run, *, outputs: list[Output], model=None, registered_model: str | None = None,
               champion: Champion | None = None) -> Finished:
        """The end of a job, inside its MLflow run once everything else is logged: register `model` (the
        ModelInfo of the logged model) as a new version of `registered_model` with alias challenger, write the
        outputs naming that version, end the run FINISHED, and only then promote the version by `champion`'s
        rule. A failed write keeps the champion (the version stays a challenger); an interruption (SIGINT,
        SIGTERM) before the promotion gives challenger back to the version that had it."""
        model_uri = model.model_uri if model is not None else None
        registering = model is not None and registered_model is not None
        previous = challenger_version(registered_model) if registering else None
        version = None
        try:
            if registering:
                version = register_challenger(model_uri, registered_model, run_id=run.info.run_id,
                                              model_id=getattr(model, "model_id", None))
            names = {}
            if model is not None:
                names = {"custval.model": registered_model or model_uri, "custval.model_version": version or "",
                         "custval.model_uri": model_uri}
            written = self.write(outputs, run_id=run.info.run_id, model=names)
        except KeyboardInterrupt:
            if registering:
                restore_challenger(registered_model, previous, interrupted=version)
            raise
        mlflow.end_run("FINISHED")  # the run is complete before its version can become champion
        promotion = None
        if version is not None and champion is not None:
            promotion = promote(registered_model, version, run_id=run.info.run_id, metric=champion.metric,
                                value=champion.value, higher_is_better=champion.higher_is_better,
                                comparable_tag=champion.comparable_tag, champion_score=champion.champion_score,
                                force=champion.force)
        return Finished(model_uri, version, promotion, written)


@contextlib.contextmanager
def start_job(*, outputs: Mapping[str, str | os.PathLike | None], tracking_uri: str | None = None,
              experiment: str | None = None, tracked: bool = True) -> Iterator[Job]:
    """Check everything a job needs before its first expensive step (outputs, then the tracking store and the
    experiment) and run the job's body interruptibly. Two settings naming the same file are an error."""
    with _interruptible():
        checked = {setting: check_output(setting, value) for setting, value in outputs.items()}
        paths = [p.resolve() for p in checked.values() if p is not None]
        if len(set(paths)) != len(paths):
            same = sorted(s for s, p in checked.items() if p is not None and paths.count(p.resolve()) > 1)
            raise ConfigError(f"{' and '.join(same)} name the same file {str(checked[same[0]])!r}: give each its own")
        uri = prepare_store(tracking_uri) if tracked else None
        if tracked and experiment is not None:
            check_experiment(experiment)
        yield Job(uri, checked)


def check_settings(check, *, prefix: str = "", names: Mapping[str, str] | None = None) -> None:
    """Validate configured settings with the library's own rules before any data is loaded: `check()` either
    raises itself or returns an estimator whose `check_params()` does. Their ConfigErrors start with the
    parameter's name; they are re-raised naming the config key (`prefix` + `names`' key, default the same)."""
    try:
        checked = check()
        if hasattr(checked, "check_params"):
            checked.check_params()
    except ConfigError as exc:
        parameter, _, rule = str(exc).partition(" ")
        key = (names or {}).get(parameter.rstrip(":"), parameter.rstrip(":"))
        raise ConfigError(f"{prefix}{key} {rule}") from None
