"""`custval simulate`: a BG/NBD + Gamma-Gamma customer base (CDNOW-like, daily) written as a transaction log and,
optionally, its ground truth; or (`kind="retail-export"`) an Online-Retail-like invoice export with its product
master (custval.data.simulate_export). Every output path is checked before anything is simulated or written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from custval.data.simulate import CDNOW_DAILY, simulate_bgnbd
from custval.data.simulate_export import simulate_retail_export
from custval.errors import ConfigError
from custval.jobs.sequence import Output, start_job


@dataclass
class SimulateResult:
    n_customers: int
    n_transactions: int
    outputs: dict[str, Path]


KINDS = ("bgnbd", "retail-export")


def simulate(*, out: str | Path, customers: int = 10_000, seed: int = 0, truth: str | Path | None = None,
             kind: str = "bgnbd", products: str | Path | None = None) -> SimulateResult:
    """Simulate `customers` customers with `seed`; write the log (or export) to `out`, the truth to `truth`
    (bgnbd) or the product master to `products` (retail-export)."""
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 1:
        raise ConfigError(f"--customers must be an integer >= 1, got {customers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed must be an integer >= 0, got {seed!r}")
    if kind not in KINDS:
        raise ConfigError(f"--kind must be one of {list(KINDS)}, got {kind!r}")
    if kind == "bgnbd" and products is not None:
        raise ConfigError("--products is the product master of --kind retail-export; a bgnbd log has no products")
    if kind == "retail-export" and truth is not None:
        raise ConfigError("--truth is the ground truth of --kind bgnbd; a retail export comes with --products")
    with start_job(outputs={"--out": out, "--truth": truth, "--products": products}, tracked=False) as job:
        if kind == "retail-export":
            export = simulate_retail_export(customers, seed=seed)
            items = [Output("--out", export.export, {"custval.simulation": "retail-export", "custval.seed": seed,
                                                     "custval.columns": export.columns,
                                                     "custval.timestamp_format": export.timestamp_format}),
                     Output("--products", export.products)]
            n_rows = len(export.export)
        else:
            sim = simulate_bgnbd(customers, **CDNOW_DAILY, seed=seed)
            items = [Output("--out", sim.transactions, {"custval.simulation": str(sim.params),
                                                        "custval.seed": str(seed)}),
                     Output("--truth", sim.truth.reset_index())]
            n_rows = len(sim.transactions)
        written = job.write(items)
    return SimulateResult(customers, n_rows, written)
