#!/usr/bin/env python
"""Latency, throughput and memory of the served composite scorer (`custval serve`, custval-scorer).

    python benchmarks/bench_serving.py [--requests 10000] [--customers 3000] [--quick]

Setup (not timed): one simulated customer base (`simulate_campaigns(N, seed=0)`), its CLV, churn, propensity and
win-back models trained by their jobs in a temporary SQLite store, the scorer registered by `custval scorer
register`, and MLflow's scoring server started as `custval serve` starts it (127.0.0.1, env-manager local, one
worker). Each request is one customer: their last 20 transactions (customers with at least 10; about 20 rows
per request) with their attributes on each row, as_of 2025-01-01.

Two runs from a second process on loopback, requests one after another on one keep-alive connection: clean
(every request valid), then mixed (10% malformed: a text amount, a missing column, an unknown category, a date
in the future, broken JSON, in turn). Reported per run: p50 / p90 / p99 / max latency of the valid requests,
throughput, the count of each status class, and the server's resident memory (its process tree) after a warm-up
and at the end. Targets: p50 <= 30 ms and p99 <= 100 ms for one customer, zero 5xx in both runs, every
malformed request a 4xx, and the server's memory growing by less than 5% (+16 MB) over each run. Results are
printed and written as JSON to benchmarks/results/bench_serving-<timestamp>[-quick].json; exit status 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS = 20
AS_OF = "2025-01-01"
TARGETS = {"p50_ms": 30.0, "p99_ms": 100.0}
WARMUP = 200


def _client(port: int, payloads: Path, out: Path) -> None:
    """The load generator (a second process): every payload in turn; status and seconds per request."""
    bodies = json.loads(payloads.read_text())
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    results = []
    for kind, body in bodies:
        start = time.perf_counter()
        connection.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        results.append((kind, answer.status, time.perf_counter() - start))
    out.write_text(json.dumps(results))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def _setup(root: Path, n_customers: int):
    import mlflow

    from custval.data.simulate_campaign import simulate_campaigns
    from custval.jobs import score as score_job
    from custval.jobs.register_scorer import register_scorer
    from custval.jobs.train_churn import load_config as churn_config
    from custval.jobs.train_churn import train_churn
    from custval.jobs.train_clv import load_config as clv_config
    from custval.jobs.train_clv import train_clv
    from custval.jobs.train_propensity import load_config as propensity_config
    from custval.jobs.train_propensity import train_propensity
    from custval.jobs.train_uplift import load_config as uplift_config
    from custval.jobs.train_uplift import train_uplift

    sim = simulate_campaigns(n_customers, seed=0)
    tx, people = root / "tx.parquet", root / "customers.parquet"
    sim.transactions.to_parquet(tx)
    sim.customers.to_parquet(people)
    uri = f"sqlite:///{root}/mlflow.db"
    log = [f"data.source={tx}", f"data.customers={people}", "output=null"]
    train_clv(clv_config(overrides=[f"data.source={tx}", "calibration_end=2024-06-30", "observation_end=2024-12-31",
                                    "period=W", "output=null"]), tracking_uri=uri)
    train_churn(churn_config(overrides=[*log, "model.tree.min_samples_leaf=50"]), tracking_uri=uri)
    train_propensity(propensity_config(overrides=log), tracking_uri=uri)
    train_uplift(uplift_config(overrides=[f"simulate.n_customers={n_customers}", "output=null",
                                          "model.learners=[t]"]), tracking_uri=uri)
    done = register_scorer(score_job.load_config(overrides=[f"data.source={tx}", f"data.customers={people}"]),
                           tracking_uri=uri)
    mlflow.set_tracking_uri(None)
    return sim, uri, done.version


def _payloads(sim, n: int, malformed_share: float, seed: int) -> list[tuple[str, str]]:
    rows = sim.transactions[["customer_id", "timestamp", "amount", "category"]]
    rows = rows.loc[rows["timestamp"] < AS_OF]
    counts = rows.groupby("customer_id").size()
    chosen = counts.index[(counts >= 10).to_numpy()]
    rows = rows.loc[rows["customer_id"].isin(chosen)].groupby("customer_id").tail(ROWS)
    rows = rows.merge(sim.customers, on="customer_id")
    for column in ("timestamp", "signup_date"):
        rows[column] = rows[column].dt.strftime("%Y-%m-%dT%H:%M:%S")
    records = {cid: json.loads(part.to_json(orient="records")) for cid, part in rows.groupby("customer_id")}
    ids = list(records)
    rng = np.random.default_rng(seed)
    bad_kinds = ("text_amount", "missing_column", "unknown_category", "future_as_of", "broken_json")
    bodies, n_bad = [], 0
    for _ in range(n):
        rec = [dict(r) for r in records[ids[int(rng.integers(len(ids)))]]]
        params = {"as_of": AS_OF}
        if rng.random() >= malformed_share:
            bodies.append(("valid", json.dumps({"dataframe_records": rec, "params": params})))
            continue
        kind = bad_kinds[n_bad % len(bad_kinds)]
        n_bad += 1
        if kind == "text_amount":
            rec[0]["amount"] = "abc"
        elif kind == "missing_column":
            rec = [{k: v for k, v in r.items() if k != "amount"} for r in rec]
        elif kind == "unknown_category":
            rec[0]["category"] = "spaceships"
        elif kind == "future_as_of":
            params = {"as_of": "2999-01-01"}
        body = json.dumps({"dataframe_records": rec, "params": params})
        bodies.append((kind, body[: len(body) // 2] if kind == "broken_json" else body))
    return bodies


def _run(port: int, server_pid: int, bodies, root: Path, name: str) -> dict:
    payloads, out = root / f"{name}.json", root / f"{name}-results.json"
    payloads.write_text(json.dumps(bodies[:WARMUP]))
    subprocess.run([sys.executable, __file__, "--client", str(port), str(payloads), str(out)], check=True)
    before = _rss_mb(server_pid)
    payloads.write_text(json.dumps(bodies))
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--client", str(port), str(payloads), str(out)], check=True)
    seconds = time.perf_counter() - started
    after = _rss_mb(server_pid)
    results = json.loads(out.read_text())
    valid = np.array([s for kind, status, s in results if kind == "valid"]) * 1000
    statuses = [status for _, status, _ in results]
    bad_ok = all(400 <= status < 500 for kind, status, _ in results if kind != "valid")
    return {"requests": len(results), "seconds": seconds, "throughput_per_s": len(results) / seconds,
            "p50_ms": float(np.percentile(valid, 50)), "p90_ms": float(np.percentile(valid, 90)),
            "p99_ms": float(np.percentile(valid, 99)), "max_ms": float(valid.max()),
            "status_2xx": sum(200 <= s < 300 for s in statuses), "status_4xx": sum(400 <= s < 500 for s in statuses),
            "status_5xx": sum(s >= 500 for s in statuses), "malformed_all_4xx": bad_ok,
            "valid_all_2xx": all(200 <= status < 300 for kind, status, _ in results if kind == "valid"),
            "rss_mb_after_warmup": before, "rss_mb_end": after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="1,000 requests per run")
    parser.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        _client(int(args.client[0]), Path(args.client[1]), Path(args.client[2]))
        return 0
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from custval.serving.server import server_command

    n = 1000 if args.quick else args.requests
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"setup: {args.customers:,} simulated customers, models trained, scorer registered ...", flush=True)
        sim, uri, version = _setup(root, args.customers)
        port = _free_port()
        argv, env = server_command(f"models:/custval-scorer/{version}", port, tracking_uri=uri)
        with open(root / "server.log", "w") as log:
            server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                deadline = time.time() + 180
                while True:
                    try:
                        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                        connection.request("GET", "/ping")
                        if connection.getresponse().status == 200:
                            break
                    except OSError:
                        if time.time() > deadline or server.poll() is not None:
                            print((root / "server.log").read_text())
                            return 1
                        time.sleep(0.5)
                runs = {"clean": _run(port, server.pid, _payloads(sim, n, 0.0, 1), root, "clean"),
                        "mixed": _run(port, server.pid, _payloads(sim, n, 0.1, 2), root, "mixed")}
            finally:
                server.terminate()
                server.wait(timeout=30)
    failures = []
    for name, r in runs.items():
        print(f"{name}: {r['requests']:,} requests in {r['seconds']:.1f} s ({r['throughput_per_s']:.0f}/s); valid "
              f"p50 {r['p50_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.0f} "
              f"ms; 2xx {r['status_2xx']}, 4xx {r['status_4xx']}, 5xx {r['status_5xx']}; server RSS "
              f"{r['rss_mb_after_warmup']:.0f} -> {r['rss_mb_end']:.0f} MB")
        for key, limit in TARGETS.items():
            if r[key] > limit:
                failures.append(f"{name}: {key} {r[key]:.1f} > {limit:g}")
        if r["status_5xx"] or not r["malformed_all_4xx"] or not r["valid_all_2xx"]:
            failures.append(f"{name}: 5xx {r['status_5xx']}, malformed all 4xx {r['malformed_all_4xx']}, "
                            f"valid all 2xx {r['valid_all_2xx']}")
        if r["rss_mb_end"] > r["rss_mb_after_warmup"] * 1.05 + 16:
            failures.append(f"{name}: server memory grew {r['rss_mb_after_warmup']:.0f} -> {r['rss_mb_end']:.0f} MB")
    results = Path(__file__).with_name("results")
    results.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = results / f"bench_serving-{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps({"runs": runs, "targets": TARGETS, "failures": failures, "rows_per_request": ROWS},
                               indent=2))
    print("targets met" if not failures else "targets missed: " + "; ".join(failures))
    print(f"wrote {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
