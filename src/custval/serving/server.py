"""MLflow's scoring server for a registered custval model (`custval serve`): bound to 127.0.0.1, with the
local environment (`--env-manager local`: custval and its pins are already installed here) and this Python's
`bin` first on PATH, since MLflow launches uvicorn through a shell and fails with "uvicorn: not found"
otherwise. Any registered custval model (the scorer, churn, CLV, ...) is served the same way.

Each worker computes on one thread (OMP_NUM_THREADS=1 unless set): a request's few rows gain nothing from threads, and
threads waiting on a core busy with other work made the predictions of one customer 3x slower (measured on
a loaded 2-core box); scale with `--workers` instead. The workers also get CUSTVAL_GC_FREEZE=1: the scorer,
once loaded, moves every object then alive out of the cyclic garbage collector's reach (`gc.freeze`), so a
full collection does not walk the loaded models and libraries in the middle of a request (it made one
request in a hundred take 150-250 ms instead of 60).

The alias of the URI is resolved once, when the server starts: to roll a new version, re-register (e.g.
`custval scorer refresh`) and restart the server."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from custval.errors import ConfigError
from custval.tracking.models import ModelRef, resolve_model

HOST = "127.0.0.1"
GC_FREEZE = "CUSTVAL_GC_FREEZE"  # set for the workers: the loaded scorer calls gc.freeze()


def check_port(port: int, *, setting: str = "--port") -> int:
    """A TCP port 1..65535; ConfigError naming the option otherwise."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"{setting} must be a TCP port 1..65535, got {port!r}")
    return port


def server_command(model_uri: str, port: int, *, tracking_uri: str | None = None, workers: int = 1
                   ) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) that run `mlflow models serve` for `model_uri` on 127.0.0.1:`port`."""
    check_port(port)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
           "MLFLOW_DISABLE_TELEMETRY": "true", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           GC_FREEZE: "1"}
    if tracking_uri is not None:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    argv = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--host", HOST, "--port",
            str(port), "--env-manager", "local", "--workers", str(workers)]
    return argv, env


def resolve_served(model_uri: str) -> ModelRef:
    """The registered version a served URI names now (ConfigError naming --model when it names none)."""
    ref = resolve_model(model_uri, setting="--model")
    if ref.version is None:
        raise ConfigError(f"--model must name a registered model version, e.g. models:/custval-scorer@champion "
                          f"or models:/custval-scorer/3, got {model_uri!r}")
    return ref
