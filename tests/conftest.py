"""Shared fixtures (keep minimal). The CDNOW frames are read once per session; tests get a copy."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import subprocess
import warnings
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")  # headless plots in tests, whatever display the machine has

import pandas as pd
import pytest

from custval.data.io import write_text


@pytest.fixture(scope="session")
def _session_store(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('default-store')}/mlflow.db"


@pytest.fixture(autouse=True)
def _default_store_outside_the_tree(_session_store, monkeypatch):
    """MLflow's default store is ./mlflow.db, and `mlflow.set_tracking_uri(None)` unsets MLFLOW_TRACKING_URI
    (`set_tracking_uri(uri)` sets it): after any test that resets MLflow, a job run without a tracking URI would
    create or write ./mlflow.db in the repository (a test did, in CI). So a test that starts without the
    variable gets it pointing at a temporary store of the session (a value left by a module's fixture or by
    set_tracking_uri(uri) is a temporary store too, and kept); tests that check the default itself unset it
    (monkeypatch.delenv)."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", _session_store)


ROOT_STORE = Path(__file__).resolve().parent.parent / "mlflow.db"


@pytest.fixture(autouse=True)
def _no_store_left_in_the_tree(request):
    """Name the test that leaves ./mlflow.db in the repository (a warning in the summary; the file is kept: it
    may be open in the test running beside it under xdist, which the warning may name instead)."""
    existed = ROOT_STORE.exists()
    yield
    if not existed and ROOT_STORE.exists():
        warnings.warn(f"{request.node.nodeid} (or the test running beside it) left {ROOT_STORE}", stacklevel=1)


@pytest.fixture(scope="session")
def scoring_base(tmp_path_factory):
    """A factory of trained customer bases for the scoring and serving tests: `scoring_base(name, n_customers,
    uplift_learners=..., retention=...)` simulates a base (seed 0) as Parquet files and trains, with each job,
    the CLV (weekly), churn, propensity and win-back uplift models (and, with `retention`, the cross-sell uplift
    over the churn horizon of 90 days: the retention offer), each registered as champion in the base's store."""
    import mlflow

    from custval.data.simulate_campaign import simulate_campaigns
    from custval.jobs.train_churn import load_config as churn_config
    from custval.jobs.train_churn import train_churn
    from custval.jobs.train_clv import load_config as clv_config
    from custval.jobs.train_clv import train_clv
    from custval.jobs.train_propensity import load_config as propensity_config
    from custval.jobs.train_propensity import train_propensity
    from custval.jobs.train_uplift import load_config as uplift_config
    from custval.jobs.train_uplift import train_uplift

    def build(name: str, n_customers: int, *, uplift_learners: str, retention: bool) -> dict:
        root = tmp_path_factory.mktemp(name)
        sim = simulate_campaigns(n_customers, seed=0)
        sim.transactions.to_parquet(root / "tx.parquet")
        sim.customers.to_parquet(root / "customers.parquet")
        tx, people, uri = str(root / "tx.parquet"), str(root / "customers.parquet"), f"sqlite:///{root}/mlflow.db"
        try:
            train_clv(clv_config(overrides=[f"data.source={tx}", "calibration_end=2024-06-30",
                                            "observation_end=2024-12-31", "period=W", "output=null"]),
                      tracking_uri=uri)
            log = [f"data.source={tx}", f"data.customers={people}", "output=null"]
            train_churn(churn_config(overrides=[*log, "model.tree.min_samples_leaf=50"]), tracking_uri=uri)
            train_propensity(propensity_config(overrides=log), tracking_uri=uri)
            uplift = [f"simulate.n_customers={n_customers}", "output=null", f"model.learners={uplift_learners}"]
            train_uplift(uplift_config(overrides=uplift), tracking_uri=uri)
            if retention:
                train_uplift(uplift_config(overrides=[*uplift, "campaign.response_days=90"],
                                           pipeline="uplift_campaign"), tracking_uri=uri)
        finally:
            mlflow.set_tracking_uri(None)
        return {"root": root, "tx": tx, "customers": people, "uri": uri, "transactions": sim.transactions,
                "attributes": sim.customers}

    return build


@pytest.fixture(scope="session")
def _cdnow_cache() -> dict[str, pd.DataFrame]:
    from custval.data.datasets import cdnow

    return {"master": cdnow("master"), "sample": cdnow("sample")}


@pytest.fixture
def cdnow_master(_cdnow_cache) -> pd.DataFrame:
    """CDNOW master log in the transactions contract (69,659 rows, duplicates kept)."""
    return _cdnow_cache["master"].copy()


@pytest.fixture
def cdnow_sample(_cdnow_cache) -> pd.DataFrame:
    """CDNOW 2,357-customer sample in the transactions contract (6,919 rows, customer_id 1..2357)."""
    return _cdnow_cache["sample"].copy()


@pytest.fixture
def isolated_store(tmp_path, monkeypatch):
    """Run in tmp_path with MLflow tracking to a SQLite store there (never the repository's mlflow.db)."""
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield uri
    mlflow.set_tracking_uri(None)


# ------------------------------------------------------------------------------------------ headless Chromium
CHROMIUM = Path("/usr/bin/chromium")
PROBE = """
window.addEventListener('load', () => {
  const images = [...document.images].map(i => ({complete: i.complete, width: i.naturalWidth,
                                                  height: i.naturalHeight}));
  const tables = [...document.querySelectorAll('table')].map(t => {
    const heads = [...t.querySelectorAll('thead th')].map(c => c.textContent);
    const first = t.querySelector('tbody tr');
    return {heads: heads, first: first ? [...first.cells].map(c => c.textContent) : []};
  });
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({images: images, tables: tables, scripts: document.scripts.length});
  document.body.appendChild(out);
});
"""


def render(page: str, tmp_path: Path, *, allow_probe: bool = True) -> str:
    """The DOM Chromium renders from the report written to disk with the probe script added before </body>;
    the report's Content-Security-Policy is widened by the probe's hash only (images stay data: only)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does)")
    if allow_probe:
        digest = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
        page = page.replace("default-src 'none'", f"default-src 'none'; script-src 'sha256-{digest}'", 1)
    path = write_text(page.replace("</body>", f"<script>{PROBE}</script>\n</body>"), tmp_path / "report.html")
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000", "--dump-dom",
         path.resolve().as_uri()], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def probe(dom: str) -> dict:
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, flags=re.DOTALL)
    assert found, "the probe did not run: " + dom[-500:]
    return json.loads(html.unescape(found.group(1)))




@pytest.fixture
def chromium():
    """Headless Chromium (Debian's, installed by .ci/run): `render(page, tmp_path)` -> the DOM it rendered with
    the probe script, `probe(dom)` -> the images (decoded sizes), tables (heads, first row) and script count."""
    import types

    return types.SimpleNamespace(render=render, probe=probe)
