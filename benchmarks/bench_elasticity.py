"""Throughput of the elastography forward model: training pairs (log mu, u) per second.

Prints a Markdown table (record it in docs/elasticity.md and docs/benchmarks.md, section
"Elastography"):

* the solver's one-off set-up (skfem assembly of the per-cell element matrices, the band map,
  the probes at the cell centres) for N x N cells, N = 32 and 64;
* pairs per second on one core for both priors (``ElasticityProblem.simulate``: prior draw,
  ``mu`` map, batched banded Cholesky solves, cell-centre displacement), in batches of
  ``--batch`` pairs, ``--pairs`` pairs per N (default 1000 at N = 32; a quarter of that at 64);
* with ``--campaign-pairs M`` (default 10,000; 0 skips it): the wall time of a chunked,
  resumable campaign of M inclusion-prior pairs at N = 32 (``simulate_campaign``, 100 design
  points, ``--workers`` processes, default 2) to a temporary HDF5 file.

One thread per process: the BLAS/OpenMP thread counts are set to 1 before numpy is imported.
The timings depend on the load of the machine: say what else ran when recording them.

Usage::

    python benchmarks/bench_elasticity.py [--pairs 1000] [--batch 100] [--campaign-pairs 10000]
        [--workers 2] [--sizes 32 64] [--seed 0]
"""

from __future__ import annotations

import os

for _variable in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from scorepde.data.campaign import SimulationConfig, simulate_campaign  # noqa: E402
from scorepde.data.schema import read_attributes  # noqa: E402
from scorepde.problems.elasticity import ElasticityProblem  # noqa: E402


def pairs_per_second(problem: ElasticityProblem, pairs: int, batch: int, seed: int) -> float:
    """Pairs per second of ``problem.simulate`` over ``pairs`` pairs in batches of ``batch``
    (one design point per batch, its centre condition)."""
    condition = problem.default_evaluation_conditions()[:1]
    start = time.perf_counter()
    done = 0
    while done < pairs:
        count = min(batch, pairs - done)
        problem.simulate(condition, count, [np.random.SeedSequence([seed, done])])
        done += count
    return pairs / (time.perf_counter() - start)


def campaign_seconds(pairs: int, workers: int, seed: int) -> tuple[float, int]:
    """Wall time of an inclusion-prior campaign of ``pairs`` pairs at 32 x 32 (100 design
    points, chunks of 5), and the number of pairs in the file."""
    per_condition = max(1, pairs // 100)
    config = SimulationConfig(
        problem="elasticity2d",
        n_conditions=100,
        per_condition=per_condition,
        seed=seed,
        chunk_conditions=5,
        workers=workers,
        problem_options={"n_cells": 32, "prior": "inclusion"},
    )
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "pairs.h5"
        start = time.perf_counter()
        simulate_campaign(config, out, progress=False)
        seconds = time.perf_counter() - start
        count = int(read_attributes(out)["n_conditions"]) * per_condition
    return seconds, count


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000, help="pairs timed at N = 32")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--campaign-pairs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    rows: list[dict[str, object]] = []
    print("\n| N | prior | set-up s | pairs timed | pairs/s (1 core) | 10,000 pairs, s |")
    print("|---|---|---|---|---|---|")
    for n in args.sizes:
        pairs = max(args.batch, args.pairs * (32 * 32) // (n * n) if n > 32 else args.pairs)
        for prior in ("inclusion", "grf"):
            start = time.perf_counter()
            problem = ElasticityProblem(n, prior)
            setup = time.perf_counter() - start
            rate = pairs_per_second(problem, pairs, args.batch, args.seed)
            row = {"N": n, "prior": prior, "setup_s": setup, "pairs": pairs, "pairs_per_s": rate}
            rows.append(row)
            print(f"| {n} | {prior} | {setup:.2f} | {pairs} | {rate:.0f} | {1e4 / rate:.0f} |")
    if args.campaign_pairs > 0:
        seconds, count = campaign_seconds(args.campaign_pairs, args.workers, args.seed)
        rows.append({"campaign_pairs": count, "workers": args.workers, "seconds": seconds})
        print(
            f"\ncampaign: {count} inclusion pairs at 32 x 32 with {args.workers} worker(s) in "
            f"{seconds:.1f} s ({count / seconds:.0f} pairs/s, HDF5 written)"
        )
        print(f"load average after (1, 5, 15 min): {os.getloadavg()}")
    return rows


if __name__ == "__main__":
    main()
