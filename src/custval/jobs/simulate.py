"""`custval simulate`: a BG/NBD + Gamma-Gamma customer base (CDNOW-like, daily) written as a transaction log and,
optionally, its ground truth. Both output paths are checked before anything is simulated or written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from custval.data.simulate import CDNOW_DAILY, simulate_bgnbd
from custval.errors import ConfigError
from custval.jobs.sequence import Output, start_job


@dataclass
class SimulateResult:
    n_customers: int
    n_transactions: int
    outputs: dict[str, Path]


def simulate(*, out: str | Path, customers: int = 10_000, seed: int = 0, truth: str | Path | None = None
             ) -> SimulateResult:
    """Simulate `customers` customers with `seed`; write the log to `out` and the truth to `truth`."""
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 1:
        raise ConfigError(f"--customers must be an integer >= 1, got {customers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed must be an integer >= 0, got {seed!r}")
    with start_job(outputs={"--out": out, "--truth": truth}, tracked=False) as job:
        sim = simulate_bgnbd(customers, **CDNOW_DAILY, seed=seed)
        written = job.write([
            Output("--out", sim.transactions, {"custval.simulation": str(sim.params), "custval.seed": str(seed)}),
            Output("--truth", sim.truth.reset_index()),
        ])
    return SimulateResult(customers, len(sim.transactions), written)
