"""A bound for a two-stage Darcy model: how well does a learned map ``u = f(log_k)`` keep the
effective permeability of the *true* media?

``u`` is a deterministic function of ``log_k``, so a model that generates ``log_k`` first and
then ``u`` from it is limited by how well ``u | log_k`` can be learned. This script fits that map
on a run's training file (``RUN_DIR/data/train.h5``, the recipe's problem from
``RUN_DIR/recipe.yaml``), with no generative model:

* ``linear``: ridge regression of the standardised ``u`` values on the standardised ``log_k``
  values (``scorepde.training.transforms.linear_gain`` with ridge 1e-3: ``1e-3 x n`` on the
  normal equations);
* ``linear+MLP``: the same plus an MLP (``--hidden`` wide, two hidden layers, SiLU) trained on
  the linear fit's residual for ``--steps`` Adam steps of ``--batch`` fields (learning rate 1e-3,
  cosine schedule, ``torch.manual_seed(--seed)``);
* ``conv`` (with ``--conv-steps`` > 0): the package's solution map, the second stage of
  darcy-quick (``scorepde.training.solution_map``: a small grid U-Net, widths
  ``--conv-width`` x 1, 2, 3, 4, trained on the squared error of ``u`` plus
  ``--energy-weight`` times the error's energy under the medium's own two-point operator,
  with the problem's reflections as augmentation; :func:`fit_conv_map`).

At each ``--at`` condition, ``--n`` fresh simulator pairs (``simulator_reference``, seed
``--seed``) keep their ``log_k`` and get ``u`` from each map; printed per map: the r.m.s. error
of ``u`` over the mean per-cell spread of ``u``, and the problem's derived quantity (``log_k_eff``)
of the new pairs against that of the true pairs (standardised mean difference, std ratio, share
undefined), the measures and targets of ``darcy-quick``'s evaluation.

``python benchmarks/bench_darcy_surrogate.py RUN_DIR [--steps 6000] [--batch 256]
[--hidden 1024] [--n 1000] [--at 0.1,0.5 0.2,1.0 0.06,1.4 0.4791,0.6978] [--seed 2024]
[--conv-steps 0] [--conv-batch 64] [--conv-width 32] [--energy-weight 100]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from scorepde.data.campaign import problem_from_config
from scorepde.data.schema import read_dataset
from scorepde.evaluation.evaluate import simulator_reference
from scorepde.problems.base import Problem
from scorepde.recipes import load_recipe
from scorepde.training.solution_map import SolutionMapConfig, fit_solution_map
from scorepde.training.transforms import linear_gain

Map = Callable[[np.ndarray], np.ndarray]


def fit_maps(
    log_k: np.ndarray, u: np.ndarray, *, steps: int, batch: int, hidden: int, seed: int
) -> dict[str, Map]:
    """The ``linear`` and ``linear+MLP`` maps ``(n, *S) -> (n, *S)`` fitted on the pairs."""
    shape = u.shape[1:]
    a, b = log_k.reshape(len(log_k), -1), u.reshape(len(u), -1)
    mean_a, scale_a = a.mean(axis=0), a.std(axis=0)
    mean_b, scale_b = b.mean(axis=0), b.std(axis=0)
    za, zb = (a - mean_a) / scale_a, (b - mean_b) / scale_b
    # za's columns have unit spread, so the ridge is 1e-3 x n on the normal equations
    gain = linear_gain(zb, za, ridge=1e-3).T

    def standardise(x: np.ndarray) -> np.ndarray:
        return (x.reshape(len(x), -1) - mean_a) / scale_a

    def linear(x: np.ndarray) -> np.ndarray:
        return ((standardise(x) @ gain) * scale_b + mean_b).reshape(len(x), *shape)

    torch.manual_seed(seed)
    width = za.shape[1]
    net = torch.nn.Sequential(
        torch.nn.Linear(width, hidden),
        torch.nn.SiLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.SiLU(),
        torch.nn.Linear(hidden, width),
    )
    inputs = torch.tensor(za, dtype=torch.float32)
    targets = torch.tensor(zb - za @ gain, dtype=torch.float32)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(steps, 1))
    start = time.perf_counter()
    for _ in range(steps):
        rows = torch.randint(0, len(inputs), (batch,))
        loss = (net(inputs[rows]) - targets[rows]).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    print(f"MLP: {steps} steps in {time.perf_counter() - start:.0f} s", flush=True)

    def with_mlp(x: np.ndarray) -> np.ndarray:
        z = standardise(x)
        with torch.no_grad():
            residual = net(torch.tensor(z, dtype=torch.float32)).numpy()
        return ((z @ gain + residual) * scale_b + mean_b).reshape(len(x), *shape)

    return {"linear": linear, "linear+MLP": with_mlp}


def fit_conv_map(
    problem: Problem,
    log_k: np.ndarray,
    u: np.ndarray,
    *,
    steps: int,
    batch: int,
    width: int,
    energy_weight: float,
    seed: int,
) -> Map:
    """The ``conv`` map: the package's solution map (``scorepde.training.solution_map``, the
    second stage of darcy-quick) fitted on the pairs for ``steps`` Adam steps of ``batch``
    (learning rate 2e-3, cosine decay), finest width ``width``, energy weight
    ``energy_weight``, seed ``seed``; ``(n, *S) -> (n, *S)``."""
    config = SolutionMapConfig(
        width=width, steps=steps, batch_size=batch, energy_weight=energy_weight, seed=seed
    )
    start = time.perf_counter()
    fitted = fit_solution_map(problem, np.stack([log_k, u], axis=1), config, log=None)
    print(f"conv: {steps} steps in {time.perf_counter() - start:.0f} s", flush=True)

    def mapped(x: np.ndarray) -> np.ndarray:
        return fitted(x[:, None])[:, 0]

    return mapped


def main(argv: Sequence[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder (recipe.yaml and data/train.h5)")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument(
        "--at", nargs="+", default=["0.1,0.5", "0.2,1.0", "0.06,1.4", "0.4791,0.6978"]
    )
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--conv-steps", type=int, default=0, help="conv map steps (0: no conv map)")
    parser.add_argument("--conv-batch", type=int, default=64)
    parser.add_argument("--conv-width", type=int, default=32)
    parser.add_argument("--energy-weight", type=float, default=100.0)
    args = parser.parse_args(argv)
    recipe = load_recipe(args.run / "recipe.yaml")
    problem = problem_from_config(recipe.data.train)
    data = read_dataset(args.run / "data" / "train.h5")
    log_k, u = data.fields[:, 0], data.fields[:, 1]
    maps = fit_maps(
        log_k,
        u,
        steps=args.steps,
        batch=args.batch,
        hidden=args.hidden,
        seed=args.seed,
    )
    if args.conv_steps:
        maps["conv"] = fit_conv_map(
            problem,
            log_k,
            u,
            steps=args.conv_steps,
            batch=args.conv_batch,
            width=args.conv_width,
            energy_weight=args.energy_weight,
            seed=args.seed,
        )
    print("| condition | map | u r.m.s. error / spread | mean difference | std ratio | undefined |")
    print("|---|---|---:|---:|---:|---:|")
    rows: list[dict[str, object]] = []
    for index, text in enumerate(args.at):
        condition = np.array([float(v) for v in text.split(",")])
        pairs = simulator_reference(
            problem, condition, args.n, seed=args.seed, index=index, stream=0
        )
        rows_of = np.tile(condition, (len(pairs), 1))
        ((name, truth),) = problem.derived_quantities(pairs, rows_of).items()
        for label, fitted in maps.items():
            mapped = pairs.copy()
            mapped[:, 1] = fitted(pairs[:, 0])
            value = problem.derived_quantities(mapped, rows_of)[name]
            error = np.sqrt(np.mean((mapped[:, 1] - pairs[:, 1]) ** 2)) / pairs[:, 1].std(0).mean()
            row = {
                "condition": text,
                "map": label,
                "u_error": float(error),
                "mean_difference": float(abs(np.nanmean(value) - truth.mean()) / truth.std()),
                "std_ratio": float(np.nanstd(value) / truth.std()),
                "undefined": float(np.isnan(value).mean()),
            }
            rows.append(row)
            print(
                f"| {text} | {label} | {row['u_error']:.3f} | {row['mean_difference']:.2f} "
                f"| {row['std_ratio']:.2f} | {row['undefined']:.3f} |"
            )
    return rows


if __name__ == "__main__":
    main()
