"""What the pyfunc tests share: a module's SQLite MLflow store in a temporary directory, and a real
`mlflow models serve` started on 127.0.0.1 with `--env-manager local` and the venv's bin on PATH, stopped (its
whole process group) when the test ends."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from custval.tracking import runs


@pytest.fixture(scope="module")
def store(tmp_path_factory, request):
    """A SQLite store in a temporary directory (the working directory too, so nothing lands in the repo), with
    an experiment named after the test module: {"uri", "experiment" (id), "root"}."""
    root = tmp_path_factory.mktemp("mlflow")
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        uri = runs.configure(f"sqlite:///{root}/mlflow.db")
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield {"uri": uri, "experiment": runs.ensure_experiment(f"custval-{name}-test"), "root": root}
    mlflow.set_tracking_uri(None)


@dataclass
class Server:
    port: int
    process: subprocess.Popen

    def post(self, body: dict) -> tuple[int, dict]:
        """(HTTP status, parsed JSON answer) of POST /invocations."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/invocations",
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    @staticmethod
    def split(frame: pd.DataFrame) -> dict:
        """A frame as the `dataframe_split` body (missing values as null)."""
        rows = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
        return {"columns": list(frame.columns), "data": rows}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def serve():
    """serve(model_uri, tracking_uri, cwd) -> Server answering on /invocations (waits up to 60 s for /ping)."""
    started: list[subprocess.Popen] = []

    def start(model_uri: str, tracking_uri: str, cwd) -> Server:
        port = _free_port()
        bin_dir = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "MLFLOW_TRACKING_URI": tracking_uri,
               "MLFLOW_DISABLE_TELEMETRY": "true"}
        server = subprocess.Popen([str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", model_uri,
                                   "-p", str(port), "-h", "127.0.0.1", "--env-manager", "local"],
                                  env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  start_new_session=True)
        started.append(server)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                    if response.status == 200:
                        return Server(port, server)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "server did not start within 60 s"
            time.sleep(0.5)

    yield start
    for server in started:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
