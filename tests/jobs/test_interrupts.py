"""Every job, interrupted or killed while it writes its output (the last step before promotion), leaves the
earlier output, the champion and the store as they were: SIGTERM ends the run FAILED and gives exit 143 with
one line; SIGKILL leaves a temp file and a RUNNING run, which the next run of the job removes and marks FAILED.
Each job runs as a real `custval` process; the test stops it inside its write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest

pytestmark = pytest.mark.slow

# Runs the custval CLI; with CUSTVAL_TEST_BLOCK_WRITE set, the Parquet write of the output blocks half-way
# (a partial file on disk, a marker file saying so), so the test can stop the process inside its write.
LAUNCHER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    marker = os.environ.get("CUSTVAL_TEST_BLOCK_WRITE")
    if marker:
        import pyarrow.parquet as pq
        def blocked(table, where, **kwargs):
            Path(where).write_bytes(b"PAR1 half a file")
            Path(marker).write_text(str(where))
            time.sleep(600)
        pq.write_table = blocked
    from custval.cli import app
    app(sys.argv[1:], prog_name="custval")
""")

CLV = ["train", "clv", "--set", "data.source=cdnow-sample"]
CHURN = ["train", "churn", "--set", "simulate.n_customers=1500", "--set", "model.tree.min_samples_leaf=50"]
PROPENSITY = ["train", "propensity", "--set", "simulate.n_customers=1500", "--set", "categories=[grocery, home]"]
SEGMENT = ["segment", "--set", "data.source=cdnow-sample"]
JOBS = {  # command, output setting, registered model (None: the job registers none)
    "clv": (CLV, "output", "custval-clv"),
    "churn": (CHURN, "output", "custval-churn"),
    "propensity": (PROPENSITY, "output", "custval-propensity"),
    "segment": (SEGMENT, "output", None),
}


def _run(args, cwd: Path, *, block: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("CUSTVAL_TEST_BLOCK_WRITE", None)
    if block is not None:
        env["CUSTVAL_TEST_BLOCK_WRITE"] = str(block)
    return subprocess.Popen([sys.executable, "-c", LAUNCHER, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _stop_in_write(args, cwd: Path, signum: int) -> tuple[int, str, str]:
    marker = cwd / "blocked-in-write"
    marker.unlink(missing_ok=True)
    proc = _run(args, cwd, block=marker)
    deadline = time.monotonic() + 600
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            _, out, err = _finish(proc)
            raise AssertionError(f"the job never reached its write:\n{out}\n{err}")
        time.sleep(0.2)
    proc.send_signal(signum)
    return _finish(proc, timeout=120)


def _state(cwd: Path, model: str | None) -> dict:
    client = mlflow.MlflowClient(f"sqlite:///{cwd}/mlflow.db")
    state = {}
    if model is not None:
        state["versions"] = sorted(int(v.version) for v in client.search_model_versions(f"name='{model}'"))
        for alias in ("champion", "challenger"):
            try:
                state[alias] = str(client.get_model_version_by_alias(model, alias).version)
            except mlflow.exceptions.MlflowException:
                state[alias] = None
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    state["runs"] = sorted(r.info.status for r in runs if r.data.tags.get("mlflow.runName") != "tune-xgboost")
    return state


@pytest.mark.parametrize("job", list(JOBS))
def test_sigterm_in_the_write_keeps_output_champion_and_aliases(job, tmp_path):
    args, setting, model = JOBS[job]
    code, out, err = _finish(_run(args, tmp_path))
    assert code == 0, out + err
    output = tmp_path / "outputs" / {"clv": "clv_scores.parquet", "churn": "churn_scores.parquet",
                                     "propensity": "propensity_scores.parquet", "segment": "segments.parquet"}[job]
    before, state = output.read_bytes(), _state(tmp_path, model)

    code, out, err = _stop_in_write(args, tmp_path, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, out + err
    assert "Traceback" not in err and "Traceback" not in out
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("interrupted by SIGTERM"), err
    assert output.read_bytes() == before
    assert sorted(p.name for p in output.parent.iterdir()) == [output.name]  # no temp file left
    after = _state(tmp_path, model)
    assert after["runs"] == sorted([*state["runs"], "FAILED"])
    if model is not None:  # the interrupted version exists but holds no alias: the aliases are as they were
        assert after["versions"] == [*state["versions"], max(state["versions"]) + 1]
        assert (after["champion"], after["challenger"]) == (state["champion"], state["challenger"])


def test_sigkill_in_the_write_is_cleaned_up_by_the_next_run(tmp_path):
    args, _, model = JOBS["clv"]
    code, out, err = _finish(_run(args, tmp_path))
    assert code == 0, out + err
    output = tmp_path / "outputs" / "clv_scores.parquet"
    before = output.read_bytes()
    champion = _state(tmp_path, model)["champion"]

    code, _, _ = _stop_in_write(args, tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    litter = [p for p in output.parent.iterdir() if p.name != output.name]
    assert len(litter) == 1 and litter[0].name.startswith(".tmp-")  # a killed writer cannot clean up
    assert output.read_bytes() == before
    state = _state(tmp_path, model)
    assert state["champion"] == champion and "RUNNING" in state["runs"]

    code, out, err = _finish(_run([*args, "--set", "penalizer=0.001"], tmp_path))
    assert code == 0, out + err
    assert sorted(p.name for p in output.parent.iterdir()) == [output.name]
    state = _state(tmp_path, model)
    assert "RUNNING" not in state["runs"] and state["runs"].count("FAILED") == 1
    killed = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_model_version(model, "2")
    assert killed.tags.get("custval.interrupted") == "true" and "challenger" not in killed.aliases


def test_simulate_stopped_in_its_write_leaves_no_file(tmp_path):
    out, truth = tmp_path / "sim.parquet", tmp_path / "truth.parquet"
    code, _, err = _stop_in_write(["simulate", "--customers", "500", "--out", str(out), "--truth", str(truth)],
                                  tmp_path, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked-in-write"]
