"""How well a subspace model's coefficients are whitened, and how wide its samples are in them.

For a run folder of a recipe with ``data.subspace_whiten: conditional`` (``darcy-quick``):

1. **Whitening.** The run's ``SubspaceNormaliser`` basis is kept; its coefficient normaliser is
   refitted on the run's training file with each ``--fits`` entry (``FIT:DEGREE``, e.g.
   ``spread:3`` or ``log_variance:5``). At ``--conditions`` random design conditions
   (``design_draw``, seed ``--seed``) ``--n`` fresh simulator fields are standardised, and
   each coefficient's spread over them is taken. Printed: the mean spread over conditions and
   coefficients (1 when the whitening is right), the worst condition's mean spread, and the
   r.m.s. of ``log(spread)``. The simulator's own noise is ``1 / sqrt(2 (n - 1))`` per spread.
2. **The model's spread and the degeneracy** at each ``--at`` condition: ``--n-model`` model
   samples per sampler in ``--samplers`` (``NAME:STEPS``) against ``--n-model`` simulator
   fields, both mapped through the run's own normaliser; printed: the median and the 5 / 95 %
   quantiles over the coefficients of model spread / simulator spread. Beside it, from
   ``4 x --n-model`` simulator fields, the share of eigenvalues of the whitened covariance
   ``C`` below 1e-3, and the mean diagonal of the ideal denoiser ``C (C + s^2 I)^-1`` at
   ``s = 1`` next to that of a denoiser that ignores the correlations,
   ``diag C / (diag C + s^2)`` (a network that resolves the correlations only partly lies in
   between and generates too narrow a law; docs/darcy.md, "Why the samples are too narrow").

``python benchmarks/bench_whitening.py RUN_DIR [--fits spread:3 log_variance:3
log_variance:5] [--conditions 24] [--n 400] [--at 0.2,1.0 0.4791,0.6978]
[--samplers ode_dpm2m:19 euler_maruyama:500] [--n-model 2000] [--seed 123]``
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scorepde.data.normalisation import ConditionalNormaliser, SubspaceNormaliser
from scorepde.data.schema import read_dataset
from scorepde.evaluation.evaluate import simulator_reference
from scorepde.pipeline import design_draw, load_model, model_problem


def whitening_table(run: Path, fits: Sequence[str], conditions: int, n: int, seed: int) -> None:
    model = load_model(run / "model")
    problem = model_problem(model)
    normaliser = model.normaliser
    if not isinstance(normaliser, SubspaceNormaliser) or normaliser.whiten != "conditional":
        raise SystemExit(f"{run}: the model is not a conditionally whitened subspace model")
    data = read_dataset(run / "data" / "train.h5")
    encoded = model.condition_encoder.encode(data.conditions)
    train = np.asarray(normaliser.projections(data.fields, encoded))[:, :, None]
    draws = design_draw(problem, conditions, np.random.default_rng(seed))
    fresh = []
    for index, condition in enumerate(draws):
        fields = simulator_reference(problem, condition, n, seed=seed, index=index, stream=0)
        at = model.condition_encoder.encode(np.tile(condition, (n, 1)))
        fresh.append((np.asarray(normaliser.projections(fields, at))[:, :, None], at))
    print("| scale fit | degree | mean spread | worst condition | r.m.s. log spread |")
    print("|---|---:|---:|---:|---:|")
    for entry in fits:
        fit, degree = entry.split(":")
        refit = ConditionalNormaliser(degree=int(degree), scale_fit=fit)
        refit.fit(train, encoded, data.condition_index)
        spreads = np.array([refit.transform(w, at)[:, :, 0].std(axis=0, ddof=1) for w, at in fresh])
        print(
            f"| {fit} | {degree} | {spreads.mean():.3f} | {spreads.mean(axis=1).max():.3f} "
            f"| {np.sqrt(np.mean(np.log(spreads) ** 2)):.3f} |"
        )


def spread_table(
    run: Path, at: Sequence[str], samplers: Sequence[str], n_model: int, seed: int
) -> None:
    model = load_model(run / "model")
    problem = model_problem(model)
    print("\n| condition | sampler | median model / simulator spread | 5 % | 95 % |")
    print("|---|---|---:|---:|---:|")
    degeneracy = []
    for index, text in enumerate(at):
        condition = np.array([float(v) for v in text.split(",")])
        reference = simulator_reference(
            problem, condition, 4 * n_model, seed=seed, index=index, stream=1
        )
        encoded = model.condition_encoder.encode(np.tile(condition, (len(reference), 1)))
        z_sim = np.asarray(model.normaliser.transform(reference, encoded)).reshape(
            len(reference), -1
        )
        for entry in samplers:
            name, steps = entry.split(":")
            x = model.sample(condition, n_model, sampler=name, steps=int(steps), seed=seed)
            z = np.asarray(model.normaliser.transform(x, encoded[:n_model])).reshape(n_model, -1)
            ratio = z.std(axis=0) / z_sim[:n_model].std(axis=0)
            low, mid, high = np.quantile(ratio, [0.05, 0.5, 0.95])
            print(f"| {text} | {name} {steps} | {mid:.3f} | {low:.3f} | {high:.3f} |")
        covariance = np.cov(z_sim.T)
        eigenvalues = np.linalg.eigvalsh(covariance)
        ideal = covariance @ np.linalg.inv(covariance + np.eye(len(covariance)))
        diagonal = np.diag(covariance) / (np.diag(covariance) + 1.0)
        degeneracy.append(
            f"| {text} | {(eigenvalues < 1e-3).mean():.2f} | {eigenvalues.max():.1f} "
            f"| {np.diag(ideal).mean():.3f} | {diagonal.mean():.3f} |"
        )
    print("\n| condition | eigenvalues < 1e-3 | largest | ideal shrinkage (s = 1) | diagonal |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(degeneracy))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder (model/ and data/train.h5)")
    parser.add_argument(
        "--fits", nargs="+", default=["spread:3", "log_variance:3", "log_variance:5"]
    )
    parser.add_argument("--conditions", type=int, default=24)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--at", nargs="*", default=["0.2,1.0", "0.4791,0.6978"])
    parser.add_argument("--samplers", nargs="+", default=["ode_dpm2m:19", "euler_maruyama:500"])
    parser.add_argument("--n-model", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args(argv)
    whitening_table(args.run, args.fits, args.conditions, args.n, args.seed)
    if args.at:
        spread_table(args.run, args.at, args.samplers, args.n_model, args.seed)


if __name__ == "__main__":
    main()
