"""Battery porosity from the full c/phi fields: the field-condition score posterior against pCN
MCMC, with its calibration, beside the flat-vector condition.

``--condition fields`` runs the recipe ``inverse-battery-fullfield`` (the 200 measurements
enter a 1-D U-Net as two channels on the porosity's 100-node grid, ``x`` = porosity
``(1, 100)``); ``--condition vector`` runs ``inverse-battery-fields`` (the 200 standardised
measurements as the MLP's condition vector, ``x`` = the 10 whitened GP modes). Both simulate
their pairs with the same seed and count, so they train on the same pairs (same porosities,
same noisy observations; only ``x``'s representation differs).

Each run: :func:`~scorepde.inverse.recipes.train_from_recipe` (simulate, train, SBC over
``--calibration-observations`` fresh pairs), then for each sampler setting
:func:`~scorepde.inverse.battery.compare_with_mcmc` on ``--n-observations`` synthetic
observations (mean error, std error, coverage in MCMC-posterior-std units beside the MCMC
floor from two independent halves of its chains, and the wall time of ``--n-samples``
posterior samples against that of the MCMC run). Prints the training summary, the SBC verdict
and one Markdown table per sampler setting. One CPU thread (BLAS and torch).

Usage::

    python benchmarks/bench_inverse_battery_fields.py [--condition fields|vector]
        [--n-train N] [--epochs E] [--n-observations 3] [--n-samples 1000]
        [--samplers ode_dpm2m:39,euler_maruyama:500] [--n-chains 8] [--n-draws 1000]
        [--n-burn 2000] [--calibration-observations 200] [--calibration-samples 50]
        [--seed 0] [--out DIR] [--json FILE]

Defaults (the recipe's own settings, 3 observations) take ~15-20 minutes for ``fields`` on
one loaded core (training ~12-13 min); see docs/inverse.md (battery section) for results.
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
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from scorepde.inverse.battery import BatteryPorosityProblem, compare_with_mcmc  # noqa: E402
from scorepde.inverse.recipes import (  # noqa: E402
    InverseRecipe,
    load_inverse_recipe,
    train_from_recipe,
)

#: Condition -> shipped recipe.
RECIPES = {"fields": "inverse-battery-fullfield", "vector": "inverse-battery-fields"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--condition", choices=sorted(RECIPES), default="fields")
    parser.add_argument("--n-train", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--n-observations", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=1000, help="score posterior samples")
    parser.add_argument(
        "--samplers",
        default=None,
        help="comma-separated sampler:steps settings compared with MCMC (default: the recipe's)",
    )
    parser.add_argument("--n-chains", type=int, default=8)
    parser.add_argument("--n-draws", type=int, default=1000, help="kept MCMC draws per chain")
    parser.add_argument("--n-burn", type=int, default=2000, help="MCMC burn-in steps")
    parser.add_argument("--calibration-observations", type=int, default=None)
    parser.add_argument("--calibration-samples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    return parser.parse_args(argv)


def build_recipe(args: argparse.Namespace) -> InverseRecipe:
    """The condition's shipped recipe with the command line's overrides."""
    recipe = load_inverse_recipe(RECIPES[args.condition])
    recipe.seed = args.seed
    if args.n_train is not None:
        recipe.data.n_train = args.n_train
    if args.epochs is not None:
        recipe.training["epochs"] = args.epochs
        recipe.training["checkpoint_every"] = args.epochs
        recipe.training["val_every"] = max(1, args.epochs // 5)
    if args.calibration_observations is not None:
        recipe.calibration.n_observations = args.calibration_observations
    if args.calibration_samples is not None:
        recipe.calibration.n_samples = args.calibration_samples
    return recipe


def sampler_settings(text: str | None, recipe: InverseRecipe) -> list[tuple[str, int | None]]:
    """``"name:steps,name"`` -> ``[(name, steps or None)]``; None: the recipe's sampler."""
    if not text:
        return [(recipe.sampling.sampler or "ode_dpm2m", recipe.sampling.steps)]
    settings = []
    for item in text.split(","):
        name, _, steps = item.strip().partition(":")
        settings.append((name, int(steps) if steps else None))
    return settings


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    torch.set_num_threads(1)
    recipe = build_recipe(args)
    options = {k: v for k, v in recipe.problem.options.items() if k != "space"}
    problem = BatteryPorosityProblem(**options)
    record: dict[str, Any] = {"condition": args.condition, "recipe": recipe.to_dict()}
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "run"
        start = time.perf_counter()
        run = train_from_recipe(recipe, out)
        record["seconds"] = {**run.seconds, "total": time.perf_counter() - start}
        posterior = run.posterior
        weights = sum(p.numel() for p in posterior.score_model.parameters())
        record["training"] = {**posterior.metadata, "weights": int(weights)}
        print(
            f"{args.condition}: {recipe.name}, {recipe.data.n_train} pairs, x {posterior.x_shape}, "
            f"y {posterior.y_shape} as {posterior.y_as}, {weights} weights; "
            f"{posterior.metadata.get('steps')} steps, final loss "
            f"{posterior.metadata.get('final_train_loss', float('nan')):.4f}, best val "
            f"{posterior.metadata.get('best_val_loss', float('nan')):.4f}; seconds "
            + ", ".join(f"{k} {v:.0f}" for k, v in record["seconds"].items()),
            flush=True,
        )
        if run.calibration is not None:
            print(run.calibration.to_markdown(), flush=True)
            record["calibration"] = run.calibration.to_dict()
        record["comparisons"] = []
        for sampler, steps in sampler_settings(args.samplers, recipe):
            report = compare_with_mcmc(
                problem,
                posterior,
                n_observations=args.n_observations,
                seed=args.seed,
                n_posterior_samples=args.n_samples,
                sampler=sampler,
                steps=steps,
                n_chains=args.n_chains,
                n_draws=args.n_draws,
                n_burn=args.n_burn,
                progress=lambda line: print(line, flush=True),
            )
            mcmc = np.mean([row.mcmc_seconds for row in report.rows])
            score = np.mean([row.score_seconds for row in report.rows])
            print(
                f"\n{args.condition}, {sampler} ({steps} steps), {args.n_samples} samples: "
                f"score {score:.1f} s vs MCMC {mcmc:.1f} s per observation"
                + ("" if report.all_converged else " (!) an MCMC run missed R-hat < 1.05")
            )
            print(report.to_markdown(), flush=True)
            record["comparisons"].append(report.to_dict())
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=2, default=str))
    return record


if __name__ == "__main__":
    main()
