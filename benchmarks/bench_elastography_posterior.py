"""Evaluation of a trained elastography posterior (issue 12, section 2; docs/elasticity.md).

Loads ``RUN/model`` of ``scorepde invert train elasticity-inclusion`` (or ``elasticity-grf``)
and prints Markdown tables (record them in docs/elasticity.md and docs/benchmarks.md):

a. ``reference``: the score posterior of ``log mu`` against the MCMC reference on the disc
   parameters (:func:`~scorepde.inverse.elasticity_reference.compare_with_reference`) for
   ``--observations`` synthetic observations; inclusion prior only.
b. ``rmse``: r.m.s. error of the posterior mean at 2.5 / 5 / 10 % noise beside the prior
   mean's (:func:`~scorepde.inverse.elasticity_reference.rmse_by_noise_level`; one model for
   every level, so the rows at 2.5 % and 10 % are misspecified too).
c. ``calibration``: SBC and coverage over many observations
   (:func:`~scorepde.inverse.elasticity_reference.calibration_table`).
d. ``misspecification``: trained at the recipe's level, observed at ``--factors`` times it
   (:func:`~scorepde.inverse.misspecification.noise_misspecification`, the call of
   :func:`~scorepde.inverse.elasticity_reference.misspecification_rows`, plus the rows of
   ``--noise student_t`` / ``multiplicative``: the Gaussian-trained model on observations
   with that noise at the trained level; with ``--misspec-reference K`` MCMC columns over
   the first K observations in table a's units, inclusion prior only).
e. ``timing``: ``--timing-samples`` posterior samples of one observation per sampler
   (``ode_dpm2m``, ``euler_maruyama``, ``annealed_langevin``: the seed paper's sampler; steps
   as arguments), each sampler's accuracy on that observation (r.m.s. error of its mean to the
   truth; against the MCMC reference where there is one), one MCMC reference run, and the
   amortisation pay-off: training seconds / (MCMC seconds - seconds of 1000 score samples),
   the number of observations after which the trained model has paid for itself (the slow
   samplers may be timed on ``--slow-timing-samples`` and scaled to 1000: the cost is
   linear in the number of samples).

Beside the score model, parts b and c evaluate the **linear-Gaussian baseline**
(:class:`~scorepde.inverse.gaussian_baseline.GaussianPosterior`: ``(x, y)`` fitted jointly
Gaussian on the recipe's own training pairs, same count and seed; the best linear estimator
with its residual covariance), unless ``--baseline-pairs 0``.

One thread (``--threads``). Timings depend on the machine's load: the script records the load
average at the start and the end. Usage::

    python benchmarks/bench_elastography_posterior.py --model RUN/model [--recipe NAME]
        [--parts reference rmse calibration misspecification timing] [--noise student_t]
        [--training-seconds S] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scorepde.evaluation.metrics import coverage, mean_error, std_error
from scorepde.fileio import atomic_write_text
from scorepde.inverse.elasticity import Elastography
from scorepde.inverse.elasticity_reference import (
    PosteriorSampler,
    calibration_table,
    compare_with_reference,
    inclusion_reference,
    rmse_by_noise_level,
)
from scorepde.inverse.ensemble import EnsemblePosterior, load_posterior
from scorepde.inverse.gaussian_baseline import GaussianPosterior
from scorepde.inverse.misspecification import (
    misspecification_markdown,
    noise_misspecification,
    scale_noise,
)
from scorepde.inverse.noise_models import NoiseModel
from scorepde.inverse.posterior import AmortisedPosterior, from_simulator
from scorepde.inverse.recipes import RECIPE_FILE, InverseRecipe, load_inverse_recipe

PARTS = ("reference", "rmse", "calibration", "misspecification", "timing")
NOISE_LEVELS = (0.025, 0.05, 0.1)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (module docstring); defaults fit a few minutes per part on one core
    at 32 x 32 (the MCMC reference ~1-3 min per observation)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="RUN/model folder")
    parser.add_argument(
        "--recipe", default=None, help="recipe name or .yaml (default: the model's recipe.yaml)"
    )
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--sampler", default="ode_dpm2m", help="sampler of parts a-d")
    parser.add_argument("--steps", type=int, default=20, help="its steps")
    parser.add_argument("--seed", type=int, default=0, help="base seed of every part")
    # a. reference
    parser.add_argument("--observations", type=int, default=3, help="a: observations")
    parser.add_argument("--posterior-samples", type=int, default=500, help="a: score samples")
    parser.add_argument("--chains", type=int, default=8, help="MCMC chains")
    parser.add_argument("--draws", type=int, default=1500, help="MCMC draws per chain")
    parser.add_argument("--burn", type=int, default=1500, help="MCMC burn-in per chain")
    parser.add_argument("--starts", type=int, default=256, help="MCMC starting prior draws")
    # b-d
    parser.add_argument("--rmse-observations", type=int, default=20, help="b: observations")
    parser.add_argument("--rmse-samples", type=int, default=32, help="b: samples each")
    parser.add_argument("--calibration-observations", type=int, default=100, help="c")
    parser.add_argument("--calibration-samples", type=int, default=20, help="c: samples each")
    parser.add_argument("--misspec-observations", type=int, default=20, help="d: observations")
    parser.add_argument("--misspec-samples", type=int, default=32, help="d: samples each")
    parser.add_argument(
        "--factors", type=float, nargs="+", default=[0.5, 1.0, 2.0], help="d: observed/trained"
    )
    parser.add_argument(
        "--noise",
        action="append",
        choices=["student_t", "multiplicative"],
        default=[],
        help="d: add a row with this noise at the trained level (repeatable)",
    )
    parser.add_argument("--df", type=float, default=3.0, help="d: Student-t degrees of freedom")
    parser.add_argument(
        "--misspec-reference",
        type=int,
        default=0,
        help="d: MCMC columns over the first K observations (0: none; inclusion prior)",
    )
    # e. timing
    parser.add_argument("--timing-samples", type=int, default=1000, help="e: samples per sampler")
    parser.add_argument(
        "--slow-timing-samples",
        type=int,
        default=200,
        help="e: samples of euler_maruyama and annealed_langevin (0: --timing-samples); "
        "the table scales every row to 1000 samples (the cost is linear in the number)",
    )
    parser.add_argument(
        "--save-observation",
        type=Path,
        default=None,
        help="e: write its observation and truth here (y.npy, truth.npy) for 'invert sample'",
    )
    parser.add_argument("--ode-steps", type=int, default=20, help="e: ode_dpm2m steps")
    parser.add_argument("--em-steps", type=int, default=100, help="e: euler_maruyama steps")
    parser.add_argument("--langevin-levels", type=int, default=10, help="e: Langevin levels")
    parser.add_argument(
        "--langevin-steps", type=int, default=10, help="e: Langevin steps per level"
    )
    parser.add_argument(
        "--langevin-step-size",
        type=float,
        default=None,
        help="e: Langevin step size at the smallest level (default: the library's)",
    )
    parser.add_argument(
        "--training-seconds",
        type=float,
        default=None,
        help="e: the model's training (+ pairs) seconds for the pay-off (default: none)",
    )
    parser.add_argument(
        "--baseline-pairs",
        type=int,
        default=None,
        help="b, c: pairs of the linear-Gaussian baseline (default: the recipe's n_train, "
        "from its seed: the model's own training pairs; 0: no baseline)",
    )
    parser.add_argument("--batch-size", type=int, default=500, help="sampler batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", type=Path, default=None, help="write every result here")
    args = parser.parse_args(argv)
    for name in (
        "observations",
        "posterior_samples",
        "rmse_samples",
        "calibration_samples",
        "misspec_samples",
        "timing_samples",
        "steps",
    ):
        if getattr(args, name) < 2:
            raise SystemExit(f"--{name.replace('_', '-')} = {getattr(args, name)}; expected >= 2")
    if args.slow_timing_samples == 1 or args.slow_timing_samples < 0:
        raise SystemExit(f"--slow-timing-samples = {args.slow_timing_samples}; expected 0 or >= 2")
    return args


def load_recipe(model: Path, recipe: str | None) -> InverseRecipe:
    """The recipe named by ``recipe``, else the one saved in the model folder."""
    if recipe is not None:
        return load_inverse_recipe(recipe)
    saved = model / RECIPE_FILE
    if not saved.is_file():
        raise SystemExit(f"--model {model} has no {RECIPE_FILE}; give --recipe")
    return load_inverse_recipe(saved)


def make_sampler(
    posterior: AmortisedPosterior | EnsemblePosterior,
    sampler: str,
    steps: int,
    batch_size: int,
    **options: Any,
) -> PosteriorSampler:
    """``(y, n, seed) -> (n, 1, N, N)`` samples of ``log mu`` by ``posterior.sample`` on CPU."""

    def sample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
        return posterior.sample(
            n,
            y,
            sampler=sampler,
            steps=steps,
            seed=seed,
            batch_size=batch_size,
            device="cpu",
            **options,
        )

    return sample


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def misspecification_reference(
    problem: Elastography,
    noise: NoiseModel,
    observations: np.ndarray,
    samples: np.ndarray,
    count: int,
    *,
    seed: int,
    **mcmc: Any,
) -> dict[str, Any]:
    """Part d's MCMC columns for one row: the score samples ``(M, S, 1, N, N)`` of the first
    ``count`` observations ``(M, 2, N, N)`` against :func:`inclusion_reference` under the
    *observed* noise, in table a's units (mean error over the r.m.s. reference std, std error,
    coverage of the reference draws by the 95 % band; averaged over the observations). The
    library's per-cell ``mean_bias`` divides by the reference std of every cell, which is 0
    where no disc ever reaches (``log mu = 0`` in every draw), hence these r.m.s. units."""
    values: dict[str, list[float]] = {"ref_mean_error": [], "ref_std_error": [], "ref_cov95": []}
    for j in range(min(count, observations.shape[0])):
        reference = inclusion_reference(
            problem, observations[j], noise=noise, seed=seed + j, **mcmc
        )
        values["ref_mean_error"].append(float(mean_error(samples[j], reference.log_mu, "rms")[0]))
        values["ref_std_error"].append(float(std_error(samples[j], reference.log_mu)[0]))
        values["ref_cov95"].append(float(coverage(samples[j], reference.log_mu)[0]))
    out: dict[str, Any] = {key: float(np.mean(v)) for key, v in values.items()}
    out["n_reference"] = len(values["ref_cov95"])
    return out


def fit_baseline(recipe: InverseRecipe, problem: Elastography, n_pairs: int) -> GaussianPosterior:
    """The linear-Gaussian baseline on ``n_pairs`` pairs drawn as ``invert train`` draws
    them (:func:`from_simulator` with the recipe's seed: the model's own training pairs when
    ``n_pairs`` is the recipe's ``n_train``)."""
    x, y = from_simulator(
        problem.sample_prior, problem.forward, problem.noise, n_pairs, recipe.seed
    )
    return GaussianPosterior.fit(x, y)


def rmse_markdown(
    rows: Sequence[dict[str, Any]], baseline: Sequence[dict[str, Any]] | None = None
) -> str:
    """Part b's table (with the baseline's columns when given)."""
    head = "| noise | RMSE of mean | RMSE prior mean | mean std | coverage 90 % |"
    if baseline:
        head += " Gaussian: RMSE of mean | mean std | coverage 90 % |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for k, r in enumerate(rows):
        line = (
            f"| {r['noise_level']:g} | {r['rmse']:.3f} | {r['rmse_prior_mean']:.3f} | "
            f"{r['mean_std']:.3f} | {r['coverage_90']:.3f} |"
        )
        if baseline:
            b = baseline[k]
            line += f" {b['rmse']:.3f} | {b['mean_std']:.3f} | {b['coverage_90']:.3f} |"
        lines.append(line)
    return "\n".join(lines)


def calibration_record(result: Any, size: str) -> dict[str, Any]:
    """What part c keeps of a :class:`~scorepde.evaluation.calibration.CalibrationResult`."""
    levels = [float(level) for level in result.levels]
    return {
        "size": size,
        "ks_max": float(np.max(result.ks)),
        "ks_critical": float(result.ks_critical),
        "ks_passed": bool(result.ks_passed),
        "coverage_at": {f"{lv:g}": float(c) for lv, c in zip(levels, result.coverage, strict=True)},
    }


def calibration_markdown(record: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    """Part c's table from the records :func:`calibration_record` makes (max KS, critical,
    coverages): the score model's row, and the baseline's when given."""
    lines = [
        "| posterior | observations x samples | SBC max KS | KS critical | SBC | coverage 0.5 | "
        "coverage 0.9 | coverage 0.95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rec in (("score model", record), ("linear-Gaussian", baseline)):
        if rec is None:
            continue
        cover = rec["coverage_at"]
        lines.append(
            f"| {name} | {rec['size']} | {rec['ks_max']:.3f} | {rec['ks_critical']:.3f} | "
            f"{'passed' if rec['ks_passed'] else 'FAILED'} | {cover.get('0.5', np.nan):.3f} | "
            f"{cover.get('0.9', np.nan):.3f} | {cover.get('0.95', np.nan):.3f} |"
        )
    return "\n".join(lines)


def timing_rows(
    posterior: AmortisedPosterior | EnsemblePosterior,
    problem: Elastography,
    args: argparse.Namespace,
    mcmc: dict[str, Any],
) -> dict[str, Any]:
    """Part e: one observation (``default_rng([seed, 99])``), ``--timing-samples`` samples per
    sampler, one MCMC reference (inclusion prior) and the pay-off of each sampler."""
    rng = np.random.default_rng([args.seed, 99])
    truth = problem.sample_prior(1, rng)
    y = problem.noise.sample(problem.forward(truth), rng)[0]
    if args.save_observation is not None:
        args.save_observation.mkdir(parents=True, exist_ok=True)
        np.save(args.save_observation / "y.npy", y)
        np.save(args.save_observation / "truth.npy", truth[0])
    reference = None
    mcmc_seconds = None
    if problem.problem.prior == "inclusion":
        start = time.perf_counter()
        reference = inclusion_reference(problem, y, seed=args.seed + 99, **mcmc)
        mcmc_seconds = time.perf_counter() - start
    langevin: dict[str, Any] = {"levels": args.langevin_levels}
    if args.langevin_step_size is not None:
        langevin["step_size"] = args.langevin_step_size
    specs = [
        ("ode_dpm2m", args.ode_steps, args.ode_steps + 1, {}),
        ("euler_maruyama", args.em_steps, args.em_steps + 1, {"slow": True}),
        (
            "annealed_langevin",
            args.langevin_levels * args.langevin_steps,
            args.langevin_levels * args.langevin_steps + 1,
            {**langevin, "slow": True},
        ),
    ]
    rows = []
    for name, steps, evaluations, options in specs:
        count = args.timing_samples
        if options.pop("slow", False) and args.slow_timing_samples > 0:
            count = args.slow_timing_samples
        sampler = make_sampler(posterior, name, steps, args.batch_size, **options)
        start = time.perf_counter()
        samples = sampler(y, count, args.seed)
        seconds = time.perf_counter() - start
        row: dict[str, Any] = {
            "sampler": name,
            "steps": steps,
            "network_evaluations": evaluations,
            "options": options,
            "samples": count,
            "seconds": seconds,
            "samples_per_second": count / seconds,
            "rmse_truth": _rms(samples.mean(axis=0) - truth[0]),
            "finite": bool(np.all(np.isfinite(samples))),
        }
        if reference is not None:
            row["mean_error_ref_std"] = float(mean_error(samples, reference.log_mu, "rms")[0])
            row["std_error"] = float(std_error(samples, reference.log_mu)[0])
            row["coverage_95"] = float(coverage(samples, reference.log_mu)[0])
        if mcmc_seconds is not None and args.training_seconds is not None:
            saved = mcmc_seconds - seconds * 1000 / count  # per observation, 1000 samples
            row["payoff_observations"] = (
                float(np.ceil(args.training_seconds / saved)) if saved > 0 else None
            )
        rows.append(row)
        print(f"  timed {name}: {seconds:.1f} s", flush=True)
    result: dict[str, Any] = {"rows": rows, "mcmc_seconds": mcmc_seconds}
    if reference is not None:
        result["mcmc"] = {
            **mcmc,
            "max_rhat": reference.max_rhat,
            "rmse_truth": _rms(reference.mean - truth[0]),
        }
    result["training_seconds"] = args.training_seconds
    return result


def timing_markdown(result: dict[str, Any]) -> str:
    """Part e's table (and the MCMC line)."""
    has_ref = result["mcmc_seconds"] is not None
    head = "| sampler | steps | network evals | s per 1000 samples | samples/s | RMSE of mean"
    head += (
        " | mean err (ref std) | std err | coverage 95 % | pay-off (observations) |"
        if has_ref
        else " |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in result["rows"]:
        per_1000 = row["seconds"] * 1000 / row["samples"]
        line = (
            f"| {row['sampler']} | {row['steps']} | {row['network_evaluations']} | "
            f"{per_1000:.1f} | {row['samples_per_second']:.1f} | {row['rmse_truth']:.3f}"
        )
        if has_ref:
            payoff = row.get("payoff_observations", "-")
            payoff = "never" if payoff is None else (f"{payoff:.0f}" if payoff != "-" else "-")
            line += (
                f" | {row['mean_error_ref_std']:.3f} | {row['std_error']:.3f} | "
                f"{row['coverage_95']:.3f} | {payoff}"
            )
        lines.append(line + " |")
    if has_ref:
        m = result["mcmc"]
        lines.append(
            f"\nMCMC reference (one observation, {m['n_chains']} chains x "
            f"({m['n_burn']} + {m['n_draws']}) steps): {result['mcmc_seconds']:.1f} s, R-hat "
            f"{m['max_rhat']:.3f}, RMSE of its mean {m['rmse_truth']:.3f}; training "
            f"{result['training_seconds'] if result['training_seconds'] is not None else '?'} s."
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every requested part; returns what ``--json`` writes."""
    torch.set_num_threads(args.threads)
    recipe = load_recipe(args.model, args.recipe)
    options = dict(recipe.problem.options)
    problem = Elastography(**options)
    posterior = load_posterior(args.model)
    sampler = make_sampler(posterior, args.sampler, args.steps, args.batch_size)
    inclusion = problem.problem.prior == "inclusion"
    mcmc = {
        "n_chains": args.chains,
        "n_draws": args.draws,
        "n_burn": args.burn,
        "n_start": args.starts,
    }
    out: dict[str, Any] = {
        "model": str(args.model),
        "recipe": recipe.name,
        "problem": options,
        "sampler": {"name": args.sampler, "steps": args.steps},
        "machine": platform.platform(),
        "load_start": list(os.getloadavg()),
        "threads": args.threads,
        "seconds": {},
    }
    print(
        f"# {recipe.name}: {problem.problem.n_cells} x {problem.problem.n_cells}, "
        f"{args.sampler} {args.steps} steps; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )

    baseline = None
    n_baseline = recipe.data.n_train if args.baseline_pairs is None else args.baseline_pairs
    if n_baseline > 0 and {"rmse", "calibration"} & set(args.parts):
        started = time.perf_counter()
        baseline = fit_baseline(recipe, problem, n_baseline)
        out["baseline"] = {
            "name": "linear-Gaussian",
            "pairs": n_baseline,
            "seed": recipe.seed,
            "fit_seconds": time.perf_counter() - started,
        }
        print(
            f"linear-Gaussian baseline: {n_baseline} pairs, {time.perf_counter() - started:.0f} s"
        )

    def timed(part: str) -> float:
        out["seconds"][part] = time.perf_counter() - started
        return out["seconds"][part]

    if "reference" in args.parts and inclusion:
        started = time.perf_counter()
        comparison = compare_with_reference(
            problem,
            sampler,
            n_observations=args.observations,
            n_posterior_samples=args.posterior_samples,
            seed=args.seed + 11,
            **mcmc,
        )
        out["reference"] = [vars(row) for row in comparison.rows]
        print(
            f"\n## a. score posterior against the MCMC reference ({timed('reference'):.0f} s)"
            f"\n\n{comparison.to_markdown()}",
            flush=True,
        )
    if "rmse" in args.parts:
        started = time.perf_counter()

        def rmse_rows(posterior_sampler: PosteriorSampler) -> list[dict[str, Any]]:
            return rmse_by_noise_level(
                {level: posterior_sampler for level in NOISE_LEVELS},
                options,
                n_observations=args.rmse_observations,
                n_samples=args.rmse_samples,
                seed=args.seed + 5,
            )

        rows = rmse_rows(sampler)
        out["rmse"] = rows
        baseline_rows = None
        if baseline is not None:
            baseline_rows = rmse_rows(baseline)
            out["rmse_baseline"] = baseline_rows
        print(
            f"\n## b. RMSE of the posterior mean per noise level ({timed('rmse'):.0f} s)\n\n"
            f"{rmse_markdown(rows, baseline_rows)}",
            flush=True,
        )
    if "calibration" in args.parts:
        started = time.perf_counter()
        size = f"{args.calibration_observations} x {args.calibration_samples}"
        calibration = {
            "n_observations": args.calibration_observations,
            "n_samples": args.calibration_samples,
            "seed": args.seed + 7,
        }
        record = calibration_record(calibration_table(problem, sampler, **calibration), size)
        out["calibration"] = record
        baseline_record = None
        if baseline is not None:
            baseline_record = calibration_record(
                calibration_table(problem, baseline, **calibration), size
            )
            out["calibration_baseline"] = baseline_record
        print(
            f"\n## c. calibration ({timed('calibration'):.0f} s)\n\n"
            f"{calibration_markdown(record, baseline_record)}",
            flush=True,
        )
    if "misspecification" in args.parts:
        started = time.perf_counter()
        observed = [scale_noise(problem.noise, factor) for factor in args.factors]
        observed += [
            Elastography(**{**options, "noise": name, "df": args.df}).noise for name in args.noise
        ]

        drawn: list[tuple[np.ndarray, np.ndarray]] = []

        def batch(observations: np.ndarray, n: int, sample_seed: int) -> np.ndarray:
            samples = np.stack(
                [sampler(y, n, sample_seed + 1000 * j) for j, y in enumerate(observations)]
            )
            drawn.append((observations, samples))
            return samples

        rows = noise_misspecification(
            batch,
            problem.sample_prior,
            problem.forward,
            problem.noise,
            observed,
            n_observations=args.misspec_observations,
            n_samples=args.misspec_samples,
            seed=args.seed + 9,
        )
        if args.misspec_reference > 0 and inclusion:
            for k, (row, noise, (observations, samples)) in enumerate(
                zip(rows, observed, drawn, strict=True)
            ):
                row.update(
                    misspecification_reference(
                        problem,
                        noise,
                        observations,
                        samples,
                        args.misspec_reference,
                        seed=args.seed + 9 + 100 * (k + 1),
                        **mcmc,
                    )
                )
        out["misspecification"] = rows
        print(
            f"\n## d. misspecification ({timed('misspecification'):.0f} s)\n\n"
            f"{misspecification_markdown(rows)}",
            flush=True,
        )
    if "timing" in args.parts:
        started = time.perf_counter()
        result = timing_rows(posterior, problem, args, mcmc)
        out["timing"] = result
        print(f"\n## e. timing ({timed('timing'):.0f} s)\n\n{timing_markdown(result)}", flush=True)
    out["load_end"] = list(os.getloadavg())
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(out, indent=2, default=float) + "\n")
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` and run (module docstring)."""
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
