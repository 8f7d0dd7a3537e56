"""Judge a trained model against fresh simulator samples, condition by condition.

For every evaluation condition: ``n`` model samples, two independent sets of ``n`` fresh
simulator samples (the second gives the noise floor: what a perfect model would score at this
sample size), every metric of :mod:`scorepde.evaluation.compare`, the mean-and-band figure and,
when the problem has a ``U0`` condition, the U0-invariance check (model samples at U0 and at a
shifted U0 must be as close to each other as two simulator sets).

The simulator's reference draws use their own seed stream (``EVALUATION_STREAM``), separate from
every training and test data set.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scorepde.evaluation.compare import EvaluationTargets, compare_sample_sets, invariance_check
from scorepde.evaluation.report import evaluation_result, plot_result_band
from scorepde.problems.base import Problem

EVALUATION_STREAM = 0x5C0E  # seed-sequence key of the simulator reference draws

SampleFn = Callable[[np.ndarray, int, int], np.ndarray]
"""(condition (k,) physical units, n, seed) -> (n, C, N) model samples in physical units."""


def simulator_reference(
    problem: Problem, condition: Sequence[float], n: int, *, seed: int, index: int, stream: int
) -> np.ndarray:
    """``n`` fresh simulator fields ``(n, C, N)`` at one condition from a dedicated stream.

    ``stream`` 0 and 1 give the two independent reference sets of condition ``index``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, EVALUATION_STREAM, index, stream]))
    row = np.asarray(condition, dtype=float).reshape(1, -1)
    return problem.simulate(row, int(n), [rng])["fields"]


def shifted_condition(
    problem: Problem, condition: np.ndarray, name: str, shift: float
) -> np.ndarray:
    """``condition`` with ``name`` moved by ``shift``, reflected to stay in the design range."""
    names = list(problem.condition_names)
    k = names.index(name)
    spec = problem.conditions[k]
    moved = np.array(condition, dtype=float)
    moved[k] = condition[k] + shift if condition[k] + shift <= spec.high else condition[k] - shift
    return moved


def evaluate_conditions(
    sample: SampleFn,
    problem: Problem,
    conditions: Sequence[Sequence[float]] | np.ndarray,
    *,
    out_dir: str | Path,
    targets: EvaluationTargets,
    n_samples: int = 1000,
    seed: int = 0,
    sample_seed: int = 0,
    invariance_shift: float = 0.0,
    labels: Sequence[str] | None = None,
    log: Callable[[str], None] | None = print,
) -> list[dict[str, Any]]:
    """Evaluate ``sample`` at each condition; returns one ``evaluation_result`` dict each.

    conditions: ``(M, k)`` physical units; labels: e.g. ``"seed"`` / ``"held-out"`` per row.
    Figures go to ``out_dir/figures``. ``invariance_shift`` (0 = skip) moves ``U0``.
    """
    table = problem.validate_conditions(np.atleast_2d(np.asarray(conditions, dtype=float)))
    if n_samples < 2:
        raise ValueError(f"n_samples = {n_samples!r} is not allowed; expected >= 2")
    out_dir = Path(out_dir)
    names = problem.condition_names
    results: list[dict[str, Any]] = []
    for index, row in enumerate(table):
        start = time.perf_counter()
        sim_a = simulator_reference(problem, row, n_samples, seed=seed, index=index, stream=0)
        sim_b = simulator_reference(problem, row, n_samples, seed=seed, index=index, stream=1)
        sim_time = time.perf_counter() - start
        start = time.perf_counter()
        model = sample(row, n_samples, sample_seed)
        model_time = time.perf_counter() - start
        comparison = compare_sample_sets(
            model,
            sim_a,
            sim_b,
            channels=problem.channels,
            grid=problem.grid,
            constraints=problem.boundary_conditions(),
            permutation_seed=seed + index,
        )
        condition = {name: float(value) for name, value in zip(names, row, strict=True)}
        result = evaluation_result(condition, comparison, targets)
        result["label"] = labels[index] if labels is not None else ""
        result["timing"] = {"model_seconds": model_time, "simulator_seconds": sim_time / 2}
        plot_result_band(
            result, model, sim_a, problem.grid, out_dir, channel_units=problem.channel_units
        )
        if invariance_shift and "U0" in names:
            moved = shifted_condition(problem, row, "U0", invariance_shift)
            other = sample(moved, n_samples, sample_seed + 7919)
            check = invariance_check(other, model, sim_a, sim_b)
            check["shifted_condition"] = {n: float(v) for n, v in zip(names, moved, strict=True)}
            result["invariance"] = check
        results.append(result)
        if log is not None:
            verdict = "PASS" if result["passed"] else "FAIL: " + "; ".join(result["failures"])
            log(
                f"[{index + 1}/{len(table)}] {condition} model {model_time:.1f} s, "
                f"simulator {sim_time / 2:.2f} s -> {verdict}"
            )
    return results
