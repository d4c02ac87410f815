"""The composite scorer end to end against a real SQLite MLflow store: CLV, churn, propensity and win-back uplift
models trained by their own jobs on one simulated customer base, the scorer registered from them by `custval
scorer register`, then (1) its in-process predict, loaded by MLflow itself, equals `custval score` on the same
data, as_of and history start for every shared column; (2) the real MLflow scoring server, started as `custval
serve` starts it, answers single customers and batches and refuses malformed requests with a 4xx naming the
field while it keeps answering; (3) refresh registers only when a component's champion moved."""

from __future__ import annotations

import gc
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from custval.cli import app
from custval.data.io import read_table
from custval.jobs import score as score_job
from custval.jobs.register_scorer import SCORER_NAME, register_scorer
from custval.serving.scorer import BASE_RELATIVE, load_scorer_model
from custval.serving.server import GC_FREEZE, server_command

N_CUSTOMERS = 3000
AS_OF = "2025-01-01"
TODAY = pd.Timestamp.now().normalize()


@pytest.fixture(scope="module")
def trained(scoring_base):
    """One simulated base as files, its models trained and registered as champions by their jobs."""
    return scoring_base("serving", N_CUSTOMERS, uplift_learners="[t]", retention=False)


def _overrides(trained, *extra):
    return [f"data.source={trained['tx']}", f"data.customers={trained['customers']}", "scoring.progress=false",
            *extra]


@pytest.fixture(scope="module")
def registered(trained):
    try:
        return register_scorer(score_job.load_config(overrides=_overrides(trained)), tracking_uri=trained["uri"])
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def batch(trained):
    try:
        done = score_job.score(score_job.load_config(overrides=_overrides(
            trained, f"as_of={AS_OF}", f"output={trained['root']}/scores.parquet", "scoring.report=false",
            "scoring.chunk_size=1000")), tracking_uri=trained["uri"])
    finally:
        mlflow.set_tracking_uri(None)
    return read_table(done.output).set_index("customer_id")


def _rows(trained, ids=None) -> pd.DataFrame:
    """What a calling system sends: transactions with the customer's attributes on each row, dates as text."""
    log = trained["transactions"]
    if ids is not None:
        log = log.loc[log["customer_id"].isin(ids)]
    rows = log[["customer_id", "timestamp", "amount", "category"]].merge(trained["attributes"], on="customer_id")
    for column in ("timestamp", "signup_date"):
        rows[column] = rows[column].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return rows


def test_registered_from_the_champions_and_promoted(registered, trained):
    assert registered.promoted and registered.version == "1"
    assert registered.components == {"clv": "custval-clv/1", "churn": "custval-churn/1",
                                      "propensity": "custval-propensity/1", "winback": "custval-uplift-winback/1"}
    client = mlflow.MlflowClient(trained["uri"])
    version = client.get_model_version_by_alias(SCORER_NAME, "champion")
    assert str(version.version) == "1" and version.tags["custval.component.churn"] == "custval-churn/1"
    run = client.get_run(registered.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "custval-scoring"
    assert registered.history_start == trained["transactions"]["timestamp"].min().normalize()


def test_served_scores_equal_the_batch_job_for_every_customer(registered, batch, trained):
    mlflow.set_tracking_uri(trained["uri"])
    try:
        model = mlflow.pyfunc.load_model(f"models:/{SCORER_NAME}@champion")  # MLflow's own loader
    finally:
        mlflow.set_tracking_uri(None)
    served = model.predict(_rows(trained), params={"as_of": AS_OF}).set_index("customer_id")
    assert sorted(served.index) == sorted(batch.index) and len(batch) > 2000
    assert not set(BASE_RELATIVE) & set(served.columns)
    shared = [c for c in batch.columns if c in served.columns]
    assert {"clv", "churn_probability", "value_at_risk", "retention_priority", "winback_priority",
            "cross_sell_category", "cross_sell_score", "lapsed", "frequency", "recency_days"} <= set(shared)
    assert [c for c in batch.columns if c not in shared] == [c for c in batch.columns if c in BASE_RELATIVE]
    served = served.loc[batch.index]
    assert (served["as_of"] == AS_OF).all()
    for column in shared:
        if column in ("as_of", *(f"reason_{j}" for j in (1, 2, 3))):
            continue
        left, right = served[column], batch[column]
        if pd.api.types.is_numeric_dtype(right.dtype) and not pd.api.types.is_bool_dtype(right.dtype):
            np.testing.assert_allclose(left.to_numpy(dtype=float), right.to_numpy(dtype=float), rtol=1e-9,
                                       atol=1e-12, equal_nan=True, err_msg=column)
        else:
            assert left.astype(object).where(left.notna(), None).tolist() == right.astype(object).where(
                right.notna(), None).tolist(), column
    head = batch.index[batch["reason_1"].notna().to_numpy()]
    assert len(head) == 100  # batch: reasons for the head of the retention list; served: for everyone scored
    for j in (1, 2, 3):
        assert served.loc[head, f"reason_{j}"].tolist() == batch.loc[head, f"reason_{j}"].tolist()
    assert served["reason_1"].notna().sum() == served["churn_probability"].notna().sum()


@pytest.fixture(scope="module")
def scorer(registered, trained, tmp_path_factory):
    """The registered scorer loaded as data, while its logged model-code file would, if run, leave a mark."""
    client = mlflow.MlflowClient(trained["uri"])
    version = client.get_model_version(SCORER_NAME, registered.version)
    mlflow.set_tracking_uri(trained["uri"])
    try:
        model_id = version.model_id or version.source.removeprefix("models:/")
        location = Path(client.get_logged_model(model_id).artifact_location.removeprefix("file://"))
        code = next(location.glob("*model_code.py"))
        original = code.read_text()
        marker = tmp_path_factory.mktemp("tampered") / "executed"
        code.write_text(f"open({str(marker)!r}, 'w').write('ran')\n" + original)
        try:
            loaded, ref = load_scorer_model(f"models:/{SCORER_NAME}@champion")
        finally:
            code.write_text(original)
    finally:
        mlflow.set_tracking_uri(None)
    assert not marker.exists() and ref.version == registered.version
    return loaded


def test_loaded_as_data_it_names_its_components(scorer, registered):
    assert {role: f"{c['name']}/{c['version']}" for role, c in scorer.components.items()} == registered.components
    assert scorer.rules.winback_value == "second_lifetime_value" and scorer.rules.lapse_days == 120


def test_history_start_is_a_param_and_the_default_is_the_bases_first_day(scorer, registered, trained):
    rows = _rows(trained, ids=[5, 6, 7])
    default = scorer.score(rows, as_of=AS_OF)
    explicit = scorer.score(rows, as_of=AS_OF, history_start=str(registered.history_start.date()))
    pd.testing.assert_frame_equal(default, explicit)
    later = scorer.score(rows, as_of=AS_OF, history_start="2024-10-01")  # the 365-day window is not covered
    assert not np.allclose(later["churn_probability"], default["churn_probability"], equal_nan=True)


def test_a_served_worker_freezes_the_loaded_scorer_out_of_the_cyclic_collector(registered, trained, monkeypatch):
    """custval serve's workers (CUSTVAL_GC_FREEZE=1) freeze what is alive after loading; others do not."""
    assert server_command("models:/m/1", 5000)[1][GC_FREEZE] == "1"
    uri = f"models:/{SCORER_NAME}/{registered.version}"
    mlflow.set_tracking_uri(trained["uri"])
    try:
        gc.unfreeze()
        monkeypatch.delenv(GC_FREEZE, raising=False)
        mlflow.pyfunc.load_model(uri)
        assert gc.get_freeze_count() == 0
        monkeypatch.setenv(GC_FREEZE, "1")
        model = mlflow.pyfunc.load_model(uri)
        assert gc.get_freeze_count() > 10_000  # the models, mlflow, pandas, ...
        assert len(model.predict(_rows(trained, ids=[5]), params={"as_of": AS_OF})) == 1
    finally:
        gc.unfreeze()
        mlflow.set_tracking_uri(None)


# ------------------------------------------------------------------------------------------ the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes | str) -> tuple[int, dict]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(f"{url}/invocations", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def server(registered, trained):
    port = _free_port()
    argv, env = server_command(f"models:/{SCORER_NAME}/{registered.version}", port, tracking_uri=trained["uri"])
    log = open(trained["root"] / "server.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        assert process.poll() is None, (trained["root"] / "server.log").read_text()
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        pytest.fail("the scoring server did not answer /ping within 180 s")
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()


def _records(rows: pd.DataFrame, **params) -> str:
    return json.dumps({"dataframe_records": json.loads(rows.to_json(orient="records")), "params": params})


def test_the_server_scores_one_customer_and_a_batch_as_in_process(server, trained, batch):
    one = _rows(trained, ids=[12])
    status, body = _post(server, _records(one, as_of=AS_OF))
    assert status == 200, body
    answer = pd.DataFrame(body["predictions"])
    assert answer["customer_id"].tolist() == [12]
    np.testing.assert_allclose(answer["clv"], batch.loc[[12], "clv"], rtol=1e-9)
    ids = list(range(30, 80))
    status, body = _post(server, _records(_rows(trained, ids=ids), as_of=AS_OF))
    assert status == 200, body
    answer = pd.DataFrame(body["predictions"]).set_index("customer_id")
    scored = [i for i in ids if i in batch.index]
    np.testing.assert_allclose(answer.loc[scored, "churn_probability"].astype(float),
                               batch.loc[scored, "churn_probability"], rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(answer.loc[scored, "winback_priority"].astype(float),
                               batch.loc[scored, "winback_priority"], rtol=1e-9, equal_nan=True)


def _bad(rows: pd.DataFrame, **changes) -> pd.DataFrame:
    rows = rows.copy()
    for column, value in changes.items():
        rows[column] = rows[column].astype(object)
        rows.loc[rows.index[0], column] = value
    return rows


@pytest.mark.parametrize(("case", "field"), [
    ("malformed_json", None),
    ("missing_amount", "amount"),
    ("missing_timestamp", "timestamp"),
    ("text_amount", "amount"),
    ("bad_timestamp", "timestamp"),
    ("unknown_category", "category"),
    ("empty", "transactions"),
    ("future_as_of", "as_of"),
    ("as_of_before_first_purchase", "as_of"),
    ("bad_as_of", "as_of"),
    ("attribute_varies", "region"),
    ("text_age", "age"),
    ("only_returns", "amount"),
])
def test_bad_requests_are_4xx_naming_the_field_and_the_server_keeps_answering(server, trained, case, field):
    rows = _rows(trained, ids=[12, 13])
    body = {
        "malformed_json": '{"dataframe_records": [{"customer_id": 1,',
        "missing_amount": _records(rows.drop(columns="amount"), as_of=AS_OF),
        "missing_timestamp": _records(rows.drop(columns="timestamp"), as_of=AS_OF),
        "text_amount": _records(_bad(rows, amount="abc"), as_of=AS_OF),
        "bad_timestamp": _records(_bad(rows, timestamp="yesterday"), as_of=AS_OF),
        "unknown_category": _records(_bad(rows, category="spaceships"), as_of=AS_OF),
        "empty": json.dumps({"dataframe_records": [], "params": {"as_of": AS_OF}}),
        "future_as_of": _records(rows, as_of=str((TODAY + pd.Timedelta(days=30)).date())),
        "as_of_before_first_purchase": _records(rows, as_of="2022-01-01"),
        "bad_as_of": _records(rows, as_of="01/02/2025"),
        "attribute_varies": _records(_bad(rows, region="elsewhere"), as_of=AS_OF),
        "text_age": _records(_bad(rows, age="old").assign(age=lambda f: f["age"].where(
            f["customer_id"] != 12, "old")), as_of=AS_OF),
        "only_returns": _records(rows.assign(amount=lambda f: f["amount"].where(f["customer_id"] != 13, -5.0)),
                                 as_of=AS_OF),
    }[case]
    status, answer = _post(server, body)
    assert 400 <= status < 500, answer
    if field is not None:
        assert field in answer.get("message", ""), answer
        assert answer.get("error_code") == "INVALID_PARAMETER_VALUE", answer
    status, answer = _post(server, _records(_rows(trained, ids=[12]), as_of=AS_OF))
    assert status == 200, answer


def test_unknown_categories_can_be_scored_as_the_batch_job_does(scorer, trained):
    rows = _bad(_rows(trained, ids=[12]), category="spaceships")
    scored = scorer.score(rows, as_of=AS_OF, unknown_categories="ignore")
    assert scored["customer_id"].tolist() == [12] and np.isfinite(scored["clv"]).all()


# ------------------------------------------------------------------------------------------- refresh
def test_refresh_registers_only_when_a_component_champion_moved(registered, trained, server):
    runner = CliRunner()
    args = ["scorer", "refresh", "--tracking-uri", trained["uri"]]
    for override in _overrides(trained):
        args += ["--set", override]
    try:
        unchanged = runner.invoke(app, args)
        assert unchanged.exit_code == 0, unchanged.output
        assert "no component moved since champion v1" in unchanged.output
        client = mlflow.MlflowClient(trained["uri"])
        churn = client.get_model_version("custval-churn", "1")  # a new churn champion: the same model, v2
        new = client.create_model_version("custval-churn", churn.source, run_id=churn.run_id,
                                          model_id=churn.model_id)
        client.set_registered_model_alias("custval-churn", "champion", new.version)
        moved = runner.invoke(app, args)
        assert moved.exit_code == 0, moved.output
    finally:
        mlflow.set_tracking_uri(None)
    assert "moved: models.churn custval-churn/1 -> custval-churn/2" in moved.output
    champion = client.get_model_version_by_alias(SCORER_NAME, "champion")
    assert str(champion.version) == "2" and champion.tags["custval.component.churn"] == "custval-churn/2"
