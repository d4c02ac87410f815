"""The tracking store is checked before a job does any work, and a new SQLite store is created under a lock."""

import os
import socket
import subprocess
import sys
import textwrap
import time

import mlflow
import pytest

from custval.errors import ConfigError
from custval.tracking import runs
from custval.tracking.store import check_tracking_uri, prepare_store


@pytest.fixture(autouse=True)
def _reset_tracking():
    yield
    mlflow.set_tracking_uri(None)


@pytest.mark.parametrize(("uri", "message"), [
    ("foo://bar", r"unknown scheme 'foo'.*e\.g\. sqlite:///mlflow\.db"),
    ("", "must not be empty"),
    ("sqlite:////no/such/dir/mlflow.db", r"directory '/no/such/dir' does not exist \(it is not created"),
])
def test_a_bad_tracking_uri_is_a_config_error_naming_the_setting(uri, message):
    with pytest.raises(ConfigError, match=message) as failure:
        check_tracking_uri(uri)
    assert "--tracking-uri or MLFLOW_TRACKING_URI" in str(failure.value)
    assert not os.path.exists("/no/such/dir")


def test_an_unreachable_tracking_server_fails_within_seconds():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ConfigError, match=rf"http://127\.0\.0\.1:{port}.*does not answer"):
        check_tracking_uri(f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 10


def test_two_processes_creating_one_new_store_both_succeed(tmp_path):
    """MLflow's schema migration races when two processes create a new SQLite store at once; prepare_store
    takes a lock, so both processes get a working store and can each start a run."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = textwrap.dedent(f"""
        import sys, time
        import mlflow
        from custval.tracking.store import prepare_store
        while time.time() < {time.time() + 3.0}:  # start together
            time.sleep(0.005)
        prepare_store({uri!r})
        mlflow.set_experiment("race")
        with mlflow.start_run():
            mlflow.log_metric("x", 1.0)
        print("ok")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
             for _ in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0 and out.strip() == "ok", err[-2000:]
    client = mlflow.MlflowClient(uri)
    assert len(client.search_runs([client.get_experiment_by_name("race").experiment_id])) == 3


def test_a_run_whose_process_was_killed_is_marked_failed_by_the_next_run(tmp_path):
    uri = prepare_store(f"sqlite:///{tmp_path}/mlflow.db")
    code = textwrap.dedent(f"""
        import time
        from custval.tracking import runs
        runs.configure({uri!r})
        with runs.tracked_run("killed", config={{"a": 1}}, data_fingerprint="f"):
            print("running", flush=True)
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "running"
    proc.kill()
    proc.wait(timeout=30)
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("killed").experiment_id
    (orphan,) = client.search_runs([experiment])
    assert orphan.info.status == "RUNNING"  # SIGKILL: the process could not end its run
    with runs.tracked_run("killed", config={"a": 2}, data_fingerprint="g"):
        pass
    orphan = client.get_run(orphan.info.run_id)
    assert orphan.info.status == "FAILED"
    assert f"process {proc.pid}" in orphan.data.tags[runs.ENDED_TAG]
