"""Battery porosity inversion: amortised score posterior against a pCN MCMC reference.

Trains the default amortised posterior (``scorepde.inverse.battery.train_battery_posterior``)
on simulated pairs, then for ``--n-observations`` synthetic observations (true porosity drawn
from the prior) runs generalised-pCN MCMC and the score sampler and prints one Markdown row per
observation: mean error, std error, coverage (``scorepde.evaluation.metrics``, porosity as one
channel, MCMC draws as the reference), the MCMC's own noise floor (the same metrics between two
halves of its chains), the share of nodes where the true porosity is in each 95 % band, R-hat,
ESS, and the wall time of the MCMC run against that of ``--n-samples`` posterior samples.

One CPU thread (BLAS and torch). The defaults (sensors case, 20 000 pairs, 2000 optimiser
steps, 2 observations, 8 chains x 1000 draws after 2000 burn-in steps) take ~6-8 minutes on
one core; ``--full`` trains for 20 000 steps on 50 000 pairs and runs 5 observations with
8 x 4000 draws (hours on a CPU).

Usage::

    python benchmarks/bench_inverse_battery.py [--observation sensors|full]
        [--space whitened|porosity] [--n-train 20000] [--steps 2000] [--n-observations 2]
        [--n-samples 1000] [--sampler euler_maruyama] [--sampler-steps N] [--n-chains 8]
        [--n-draws 1000] [--n-burn 2000] [--seed 0] [--run-dir DIR] [--json FILE] [--full]
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from scorepde.inverse.battery import (  # noqa: E402
    OBSERVATIONS,
    SPACES,
    BatteryComparison,
    BatteryPorosityProblem,
    compare_with_mcmc,
    train_battery_posterior,
)

FULL = {"n_train": 50_000, "steps": 20_000, "n_observations": 5, "n_draws": 4000, "n_burn": 4000}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observation", choices=OBSERVATIONS, default="sensors")
    parser.add_argument("--space", choices=SPACES, default="whitened")
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps")
    parser.add_argument("--n-observations", type=int, default=2)
    parser.add_argument("--n-samples", type=int, default=1000, help="score posterior samples")
    parser.add_argument("--sampler", default="euler_maruyama")
    parser.add_argument("--sampler-steps", type=int, default=None, help="default: the API's")
    parser.add_argument("--n-chains", type=int, default=8)
    parser.add_argument("--n-draws", type=int, default=1000, help="kept MCMC draws per chain")
    parser.add_argument("--n-burn", type=int, default=2000, help="MCMC burn-in steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=None, help="training folder (temp)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--full", action="store_true", help="the large settings: " + str(FULL))
    args = parser.parse_args(argv)
    if args.full:
        for key, value in FULL.items():
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> BatteryComparison:
    args = parse(argv)
    torch.set_num_threads(1)
    problem = BatteryPorosityProblem(args.observation)
    print(f"problem: {problem.describe() | {'sensor_indices': '...'}}")
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = args.run_dir or Path(scratch) / "run"
        start = time.perf_counter()
        posterior = train_battery_posterior(
            problem,
            n_train=args.n_train,
            steps=args.steps,
            space=args.space,
            run_dir=run_dir,
            seed=args.seed,
        )
        train_seconds = time.perf_counter() - start
        print(
            f"trained on {args.n_train} pairs ({args.space}), {args.steps} steps: "
            f"{train_seconds:.0f} s (simulation included); {posterior.metadata}"
        )
        report = compare_with_mcmc(
            problem,
            posterior,
            n_observations=args.n_observations,
            seed=args.seed,
            n_posterior_samples=args.n_samples,
            sampler=args.sampler,
            steps=args.sampler_steps,
            n_chains=args.n_chains,
            n_draws=args.n_draws,
            n_burn=args.n_burn,
            progress=print,
        )
    report.settings["train_seconds"] = train_seconds
    print()
    print(report.to_markdown())
    if not report.all_converged:
        print("\n(!) an MCMC reference missed R-hat < 1.05: raise --n-draws / --n-burn")
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_dict(), indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
