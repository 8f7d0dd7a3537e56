"""Throughput of the batched battery solver against a per-sample scipy.sparse loop, one core.

Prints a Markdown table (record it in docs/benchmarks.md, section "Solver"):

* fields per second of ``solve_battery`` (batched Thomas) and of a Python loop over
  ``reference_solve_battery_scipy`` (COO assembly + ``spsolve`` per field) on the same porosity
  fields. The scipy loop runs on the first ``--n-scipy`` fields only and its per-field time is
  extrapolated to ``--n`` fields;
* the time of a seed-scale data set (default 25,000 fields = 250 conditions x 100 fields, each
  condition with its own correlation length): GP sampling and the batched solve, separately;
* the ``published-code`` formulation (``solve_battery_published``: potential once, then 1000
  implicit-Euler steps of the concentration, vectorised over the batch): the time for
  ``--published-n`` fields (default 25,000 = the post's 1,000 conditions x 25), and the same
  solver one field at a time (a per-field loop, as the public code runs) on a few fields;
* 2-D Darcy flow (``solve_darcy``, banded Cholesky per field) on N x N cells, N = 32 and 64:
  ``--darcy-n`` fields each (100 per condition, log-uniform l in [0.05, 0.5], sigma uniform in
  [0.25, 1.5]): Kronecker GP sampling and the solve, fields per second, and the time for the
  planned 10,000-field training set extrapolated from it.

One CPU core: the BLAS/OpenMP thread counts are set to 1 *before* numpy is imported, and the
process is pinned to one core where the OS allows it (``os.sched_setaffinity``).

Usage::

    python benchmarks/bench_solver.py [--n 25000] [--n-scipy 500] [--repeats 3] [--seed 0]
        [--darcy-n 1000] [--published-n 25000]
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
import time  # noqa: E402

import numpy as np  # noqa: E402

from scorepde.physics import (  # noqa: E402
    BatteryParameters,
    GaussianProcessSampler,
    KroneckerGaussianProcessSampler,
    darcy_residual,
    porosity_from_latent,
    reference_solve_battery_scipy,
    solve_battery,
    solve_darcy,
)
from scorepde.physics.battery_published import solve_battery_published  # noqa: E402

FIELDS_PER_CONDITION = 100  # as in the seed data set: 250 conditions x 100 fields
DARCY_SIZES = (32, 64)  # cells per side
DARCY_DATA_SET = 10_000  # fields of 32 x 32 planned for training


def pin_to_one_core() -> str:
    """Pin this process to one CPU core if possible; describe what was done."""
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity); BLAS threads = 1"


def sample_porosity(
    params: BatteryParameters, n_fields: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seed-like design: conditions (U0, l, F_right), FIELDS_PER_CONDITION fields each.

    Returns porosity (n, N), U0 (n,) V, F_right (n,) A/m^2, length scales (n,) m.
    """
    n_conditions = -(-n_fields // FIELDS_PER_CONDITION)
    open_circuit = rng.uniform(-0.5, 0.5, n_conditions)
    current = rng.uniform(0.0, 50.0, n_conditions)
    lengths = params.length * np.exp(rng.uniform(np.log(0.05), np.log(0.5), n_conditions))
    sampler = GaussianProcessSampler(params.grid())
    latent = np.concatenate(
        [sampler.sample(length, FIELDS_PER_CONDITION, rng) for length in lengths]
    )[:n_fields]
    porosity = porosity_from_latent(latent, params.porosity_min, params.porosity_max)
    repeat = np.repeat(np.arange(n_conditions), FIELDS_PER_CONDITION)[:n_fields]
    return porosity, open_circuit[repeat], current[repeat], lengths[repeat]


def sample_log_k(n_cells: int, n_fields: int, rng: np.random.Generator) -> np.ndarray:
    """Darcy-like design: log k ``(n, N, N)``, FIELDS_PER_CONDITION fields per (l, sigma)."""
    n_conditions = -(-n_fields // FIELDS_PER_CONDITION)
    lengths = np.exp(rng.uniform(np.log(0.05), np.log(0.5), n_conditions))
    sigmas = rng.uniform(0.25, 1.5, n_conditions)
    centres = (np.arange(n_cells) + 0.5) / n_cells
    sampler = KroneckerGaussianProcessSampler((centres, centres))
    return np.concatenate(
        [
            sigma * sampler.sample(length, FIELDS_PER_CONDITION, rng)
            for length, sigma in zip(lengths, sigmas, strict=True)
        ]
    )[:n_fields]


def darcy_table(n_fields: int, repeats: int, seed: int) -> None:
    """Print the Darcy throughput table for each size in DARCY_SIZES."""
    print()
    print(f"2-D Darcy flow, {n_fields} fields per size (one core):")
    print()
    print(
        "| N x N | GP sampling (s) | solve (s) | fields/s (solve) | fields/s (total) | "
        f"{DARCY_DATA_SET:,} fields (s, extrapolated) | max abs residual |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n_cells in DARCY_SIZES:
        sampling_time = best_time(
            lambda n_cells=n_cells: sample_log_k(n_cells, n_fields, np.random.default_rng(seed)),
            repeats,
        )
        log_k = sample_log_k(n_cells, n_fields, np.random.default_rng(seed))
        solve_time = best_time(lambda log_k=log_k: solve_darcy(log_k), repeats)
        residual = float(np.max(np.abs(darcy_residual(log_k, solve_darcy(log_k)))))
        total = sampling_time + solve_time
        print(
            f"| {n_cells} x {n_cells} | {sampling_time:.3f} | {solve_time:.3f} | "
            f"{n_fields / solve_time:,.0f} | {n_fields / total:,.0f} | "
            f"{total * DARCY_DATA_SET / n_fields:.1f} | {residual:.1e} |"
        )


def published_table(n_fields: int, repeats: int, seed: int, n_loop: int = 5) -> None:
    """Print the throughput of the published-code formulation (25 fields per condition,
    the public code's ranges: U0 in [-0.2, 0.2] V, l log-uniform in [0.02, 0.2] L, F_right in
    [0, 50] A/m^2), batched and one field at a time."""
    params = BatteryParameters()
    per_condition = 25
    rng = np.random.default_rng(seed)
    n_conditions = -(-n_fields // per_condition)
    open_circuit = rng.uniform(-0.2, 0.2, n_conditions)
    current = rng.uniform(0.0, 50.0, n_conditions)
    lengths = params.length * np.exp(rng.uniform(np.log(0.02), np.log(0.2), n_conditions))
    sampler = GaussianProcessSampler(params.cell_centres(), jitter=1e-4)
    start = time.perf_counter()
    latent = np.concatenate([sampler.sample(length, per_condition, rng) for length in lengths])
    sampling_time = time.perf_counter() - start
    porosity = porosity_from_latent(latent[:n_fields])
    repeat = np.repeat(np.arange(n_conditions), per_condition)[:n_fields]
    solve_time = best_time(
        lambda: solve_battery_published(porosity, open_circuit[repeat], current[repeat]),
        repeats,
    )
    n_loop = min(n_loop, n_fields)
    start = time.perf_counter()
    for index in range(n_loop):
        solve_battery_published(
            porosity[index], open_circuit[repeat[index]], current[repeat[index]]
        )
    per_field = (time.perf_counter() - start) / n_loop
    print()
    print(f"published-code formulation (1000 implicit-Euler steps), {n_fields} fields, one core:")
    print()
    print("| run | fields/s | time (s) |")
    print("|---|---:|---:|")
    print(
        f"| GP sampling ({n_conditions} length scales, nugget 1e-4) | "
        f"{n_fields / sampling_time:,.0f} | {sampling_time:.2f} |"
    )
    print(f"| batched solve | {n_fields / solve_time:,.0f} | {solve_time:.2f} |")
    print(
        f"| one field at a time ({n_loop} fields, extrapolated) | {1.0 / per_field:,.1f} | "
        f"{per_field * n_fields:.0f} |"
    )


def best_time(function, repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls, s."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=25_000, help="fields in the batched run")
    parser.add_argument("--n-scipy", type=int, default=500, help="fields in the scipy loop")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--darcy-n", type=int, default=1000, help="Darcy fields per grid size (0: skip)"
    )
    parser.add_argument(
        "--published-n", type=int, default=25_000, help="published-code fields (0: skip)"
    )
    args = parser.parse_args()
    if args.n < 1 or not 1 <= args.n_scipy <= args.n or args.repeats < 1 or args.darcy_n < 0:
        raise ValueError(
            f"need n >= 1, 1 <= n_scipy <= n, repeats >= 1 and darcy_n >= 0; got n={args.n}, "
            f"n_scipy={args.n_scipy}, repeats={args.repeats}, darcy_n={args.darcy_n}"
        )
    pinning = pin_to_one_core()
    params = BatteryParameters()

    sampling_time = best_time(
        lambda: sample_porosity(params, args.n, np.random.default_rng(args.seed)), args.repeats
    )
    porosity, open_circuit, current, _ = sample_porosity(
        params, args.n, np.random.default_rng(args.seed)
    )
    solve_time = best_time(
        lambda: solve_battery(porosity, open_circuit, current, params), args.repeats
    )
    solution = solve_battery(porosity, open_circuit, current, params)

    start = time.perf_counter()
    worst = 0.0
    for index in range(args.n_scipy):
        reference = reference_solve_battery_scipy(
            porosity[index], open_circuit[index], current[index], params
        )
        for name in ("c", "phi"):
            theirs = getattr(reference, name)[0]
            ours = getattr(solution, name)[index]
            worst = max(worst, float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs))))
    scipy_time = time.perf_counter() - start  # includes the (cheap) comparison
    scipy_per_field = scipy_time / args.n_scipy

    batched_rate = args.n / solve_time
    scipy_rate = 1.0 / scipy_per_field
    print(f"python {platform.python_version()}, numpy {np.__version__}, {pinning}")
    print(f"fields: {args.n} batched; scipy loop on the first {args.n_scipy}, extrapolated")
    print()
    print("| solver | fields/s | time for n fields (s) | speed-up |")
    print("|---|---:|---:|---:|")
    print(
        f"| scipy.sparse loop (`reference_solve_battery_scipy`) | {scipy_rate:,.0f} | "
        f"{scipy_per_field * args.n:.2f} (extrapolated) | 1.0x |"
    )
    print(
        f"| batched Thomas (`solve_battery`) | {batched_rate:,.0f} | {solve_time:.3f} | "
        f"{batched_rate / scipy_rate:.1f}x |"
    )
    print()
    print(f"| seed-scale data set, {args.n} fields | time (s) |")
    print("|---|---:|")
    n_conditions = -(-args.n // FIELDS_PER_CONDITION)
    print(f"| GP sampling + porosity map ({n_conditions} length scales) | {sampling_time:.3f} |")
    print(f"| batched solve (c, phi) | {solve_time:.3f} |")
    print(f"| total | {sampling_time + solve_time:.3f} |")
    print()
    print(
        f"max relative difference batched vs scipy (c, phi) on {args.n_scipy} fields: {worst:.1e}"
    )
    if args.darcy_n > 0:
        darcy_table(args.darcy_n, args.repeats, args.seed)
    if args.published_n > 0:
        published_table(args.published_n, 1, args.seed)


if __name__ == "__main__":
    main()
