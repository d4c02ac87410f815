"""The MLflow tracking store, checked before a job does any work: the URI's scheme is one MLflow serves, a
SQLite store's directory exists (never created silently), a tracking server answers within seconds (MLflow
would retry for minutes), and a new SQLite store gets its schema under a file lock, so two jobs started together
on a fresh store both succeed (MLflow's own migration races: `table _alembic_tmp_experiments already exists`).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from custval.config import sqlite_path, tracking_uri
from custval.errors import ConfigError

SETTING = "tracking URI (--tracking-uri or MLFLOW_TRACKING_URI)"
EXAMPLE = "sqlite:///mlflow.db"
SERVER_TIMEOUT_S = 5
LOCK_TIMEOUT_S = 300
# MLflow's own HTTP defaults retry an unreachable server for minutes; a job that found it answering keeps these
HTTP_ENVIRONMENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}


def check_tracking_uri(uri: str | None = None) -> str:
    """The tracking URI to use (`uri`, else the environment's, else the embedded SQLite store), checked;
    ConfigError naming the setting, the rule and an example otherwise."""
    from mlflow.store.db.db_types import DATABASE_ENGINES
    from mlflow.utils.uri import get_uri_scheme

    uri = uri if uri is not None else tracking_uri()
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigError(f"{SETTING} must not be empty; e.g. {EXAMPLE}")
    try:
        scheme = get_uri_scheme(uri)
    except Exception as exc:  # MLflow raises plain exceptions for unparseable URIs
        raise ConfigError(f"{SETTING} {uri!r} is not a URI ({exc}); e.g. {EXAMPLE}") from None
    known = ("", "file", "http", "https", "databricks", *DATABASE_ENGINES)
    if scheme not in known and scheme.split("+")[0] not in DATABASE_ENGINES:
        raise ConfigError(f"{SETTING} {uri!r}: unknown scheme {scheme!r}; use one of "
                          f"{[s + '://' for s in known if s]}; e.g. {EXAMPLE}")
    if scheme == "sqlite":
        db = sqlite_path(uri)
        if db is None:
            raise ConfigError(f"{SETTING} {uri!r}: a SQLite store is written sqlite:///<path>, e.g. {EXAMPLE}")
        if not db.parent.is_dir():
            raise ConfigError(f"{SETTING} {uri!r}: directory {str(db.parent)!r} does not exist (it is not created "
                              f"for you: create it, or use {EXAMPLE} in the working directory)")
        if db.is_dir():
            raise ConfigError(f"{SETTING} {uri!r}: {str(db)!r} is a directory, not a database file")
    elif scheme in ("", "file"):
        path = Path(uri.removeprefix("file://") if scheme == "file" else uri).expanduser()
        if not path.parent.resolve().is_dir():
            raise ConfigError(f"{SETTING} {uri!r}: directory {str(path.parent)!r} does not exist")
    elif scheme in ("http", "https"):
        _check_server(uri)
    return uri


def _check_server(uri: str) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=SERVER_TIMEOUT_S) as answer:  # noqa: S310 - http(s) only
            answer.read(64)
    except urllib.error.HTTPError:
        return  # it answers: a server without /health is still a server
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"{SETTING} {uri!r}: the tracking server does not answer within {SERVER_TIMEOUT_S} s "
                          f"({reason}); start it (mlflow server --host 127.0.0.1 --port ...) or use "
                          f"{EXAMPLE}") from None
    for key, value in HTTP_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def prepare_store(uri: str | None = None) -> str:
    """Check the tracking URI, point MLflow at it and make sure its store exists: a new SQLite store is created
    (schema and migrations) under a file lock beside it. Returns the URI."""
    import mlflow
    from filelock import FileLock, Timeout
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    uri = check_tracking_uri(uri)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(uri)
    db = sqlite_path(uri)
    try:
        if db is None:
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
            return uri
        try:
            with FileLock(f"{db}.lock", timeout=LOCK_TIMEOUT_S):
                client = mlflow.MlflowClient(uri, registry_uri=uri)
                client.search_experiments(max_results=1)
                client.search_registered_models(max_results=1)
        except Timeout:
            raise ConfigError(f"{SETTING} {uri!r}: another process has held {db}.lock for {LOCK_TIMEOUT_S} s; "
                              "remove the file if no custval job is running") from None
    except ImportError as exc:
        raise ConfigError(f"{SETTING} {uri!r} needs the database driver {exc.name!r}, which is not installed "
                          f"(pip install it, or use {EXAMPLE})") from None
    except (MlflowException, SQLAlchemyError, OSError) as exc:
        raise ConfigError(f"{SETTING} {uri!r}: the store cannot be opened: {str(exc).splitlines()[0]}") from None
    return uri
