"""Judge a trained model against fresh simulator samples, condition by condition.

For every evaluation condition: ``n`` model samples, two independent sets of ``n`` fresh
simulator samples (the second gives the noise floor: what a perfect model would score at this
sample size), every metric of :mod:`scorepde.evaluation.compare` and the figures. What else is
checked is what the problem declares, never inferred from a name: its boundary conditions,
its ``mean_error_norm``, each of its ``invariances()`` (model samples at the condition and at
the condition moved by the declared shift must be as close to each other as two simulator
sets), its ``derived_quantities`` (distributions of scalar quantities, model vs simulator) and
its ``residual`` (the model's PDE residual relative to the simulator's).

The simulator's reference draws use their own seed stream (``EVALUATION_STREAM``), separate from
every training and test data set.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scorepde.evaluation.compare import (
    EvaluationTargets,
    compare_sample_sets,
    derived_quantity_check,
    invariance_check,
    residual_check,
)
from scorepde.evaluation.report import evaluation_result, plot_result_figures
from scorepde.problems.base import Invariance, Problem

EVALUATION_STREAM = 0x5C0E  # seed-sequence key of the simulator reference draws

SampleFn = Callable[[np.ndarray, int, int], np.ndarray]
"""(condition (k,) physical units, n, seed) -> (n, C, *S) model samples in physical units."""

#: Offset of the sample seed of the model's set at a moved condition (invariance i uses
#: ``sample_seed + INVARIANCE_SEED_OFFSET * (i + 1)``).
INVARIANCE_SEED_OFFSET = 7919


def simulator_reference(
    problem: Problem, condition: Sequence[float], n: int, *, seed: int, index: int, stream: int
) -> np.ndarray:
    """``n`` fresh simulator fields ``(n, C, *S)`` at one condition from a dedicated stream.

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


def declared_invariances(
    problem: Problem, invariance_shift: float | None = None
) -> tuple[Invariance, ...]:
    """The invariances to check: ``problem.invariances()`` with their declared shifts
    (``invariance_shift=None``), none (0) or each with the shift ``invariance_shift``."""
    if invariance_shift is not None and invariance_shift == 0:
        return ()
    declared = tuple(problem.invariances())
    names = problem.condition_names
    for invariance in declared:
        if invariance.condition not in names:
            raise ValueError(
                f"problem {problem.name!r} declares an invariance in {invariance.condition!r}, "
                f"which is not one of its conditions {list(names)}"
            )
    if invariance_shift is None:
        return declared
    return tuple(
        Invariance(inv.condition, float(invariance_shift), inv.description) for inv in declared
    )


def _declared_checks(
    problem: Problem, row: np.ndarray, model: np.ndarray, sim_a: np.ndarray, sim_b: np.ndarray
) -> dict[str, Any]:
    """The derived-quantity and residual comparisons of one condition (empty when the problem
    declares neither)."""
    sets = {"model": model, "simulator_a": sim_a, "simulator_b": sim_b}
    repeated = {key: np.repeat(row[None, :], len(values), axis=0) for key, values in sets.items()}
    checks: dict[str, Any] = {}
    derived = {
        key: problem.derived_quantities(values, repeated[key]) for key, values in sets.items()
    }
    if derived["simulator_a"]:
        checks["derived"] = derived_quantity_check(
            derived["model"], derived["simulator_a"], derived["simulator_b"]
        )
    residual_a = problem.residual(sim_a, repeated["simulator_a"])
    if residual_a is not None:
        checks["residual"] = residual_check(
            problem.residual(model, repeated["model"]),
            residual_a,
            problem.residual(sim_b, repeated["simulator_b"]),
        )
    return checks


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
    invariance_shift: float | None = None,
    labels: Sequence[str] | None = None,
    log: Callable[[str], None] | None = print,
    figures: bool = True,
    index_offset: int = 0,
    keep_reference: dict[str, np.ndarray] | None = None,
    permutation: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate ``sample`` at each condition; returns one ``evaluation_result`` dict each.

    conditions: ``(M, k)`` physical units; labels: e.g. ``"seed"`` / ``"held-out"`` per row.
    Figures go to ``out_dir/figures`` (chosen by the grid's rank; ``figures=False``: none).
    The comparison uses ``problem.field_spec``, ``problem.mean_error_norm`` and
    ``problem.boundary_conditions()``; it holds "derived" and "residual" when the problem
    declares derived quantities or a residual (computed for the model's fields and both
    simulator sets, at the condition row repeated ``(n, k)``), judged by the targets'
    optional bounds.

    Invariances: ``problem.invariances()``; ``invariance_shift`` None uses each declared
    shift, 0 skips them, a number replaces every declared shift. Each result then holds
    ``"invariances"`` ``{condition name: invariance_check(...) + "shifted_condition",
    "shift"}`` and, for the first declared one, ``"invariance"`` (the same dict). The model
    set at the moved condition of invariance ``i`` uses the sample seed
    ``sample_seed + INVARIANCE_SEED_OFFSET * (i + 1)``.

    index_offset: the reference sets of row ``i`` are those of index ``index_offset + i``
    (``simulator_reference``). keep_reference: when a dict, the last row's first simulator
    set is stored in it as ``"simulator_a"`` (the grid's pair checks reuse it). permutation:
    False skips the energy permutation test (``energy_p_value``; ~0.4 s per condition).
    """
    table = problem.validate_conditions(np.atleast_2d(np.asarray(conditions, dtype=float)))
    if n_samples < 2:
        raise ValueError(f"n_samples = {n_samples!r} is not allowed; expected >= 2")
    out_dir = Path(out_dir)
    names = problem.condition_names
    spec = problem.field_spec
    invariances = declared_invariances(problem, invariance_shift)
    results: list[dict[str, Any]] = []
    for index, row in enumerate(table):
        start = time.perf_counter()
        reference = index_offset + index
        sim_a = simulator_reference(problem, row, n_samples, seed=seed, index=reference, stream=0)
        sim_b = simulator_reference(problem, row, n_samples, seed=seed, index=reference, stream=1)
        if keep_reference is not None:
            keep_reference["simulator_a"] = sim_a
        sim_time = time.perf_counter() - start
        start = time.perf_counter()
        model = sample(row, n_samples, sample_seed)
        model_time = time.perf_counter() - start
        comparison = compare_sample_sets(
            model,
            sim_a,
            sim_b,
            spec=spec,
            constraints=problem.boundary_conditions(),
            mean_error_norm=problem.mean_error_norm,
            permutation_seed=seed + index if permutation else None,
        )
        comparison.update(_declared_checks(problem, row, model, sim_a, sim_b))
        condition = {name: float(value) for name, value in zip(names, row, strict=True)}
        result = evaluation_result(condition, comparison, targets)
        result["label"] = labels[index] if labels is not None else ""
        result["timing"] = {"model_seconds": model_time, "simulator_seconds": sim_time / 2}
        if figures:
            plot_result_figures(result, model, sim_a, spec, out_dir)
        checks: dict[str, Any] = {}
        for k, invariance in enumerate(invariances):
            moved = shifted_condition(problem, row, invariance.condition, invariance.shift)
            other = sample(moved, n_samples, sample_seed + INVARIANCE_SEED_OFFSET * (k + 1))
            check = invariance_check(
                other, model, sim_a, sim_b, mean_error_norm=problem.mean_error_norm
            )
            check["shifted_condition"] = {n: float(v) for n, v in zip(names, moved, strict=True)}
            check["shift"] = float(invariance.shift)
            checks[invariance.condition] = check
        if checks:
            result["invariance"] = next(iter(checks.values()))
            result["invariances"] = checks
        results.append(result)
        if log is not None:
            verdict = "PASS" if result["passed"] else "FAIL: " + "; ".join(result["failures"])
            log(
                f"[{index + 1}/{len(table)}] {condition} model {model_time:.1f} s, "
                f"simulator {sim_time / 2:.2f} s -> {verdict}"
            )
    return results
