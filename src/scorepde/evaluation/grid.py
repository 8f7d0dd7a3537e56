"""Evaluation over the whole design: a grid of conditions, heat maps and the worst case.

A few hand-picked conditions say little about the corners of a design, where a model trained
on a space-filling design sees the fewest neighbours. :func:`design_grid` lays a grid over
every condition's design range (both ends included, evenly in the condition's transformed
space, i.e. in ``log`` for a log-scale condition); a condition the problem declares an
invariance in (``Problem.invariances()``) gets a few values inside its range instead, so that
every point of the remaining grid is evaluated at two or more of them and the pairs give the
invariance check at every point. :func:`evaluate_grid` judges the model at every point next
to the simulator's floor (``evaluate.evaluate_conditions``'s measures) and adds, per point,
the pair check (model at the first invariant value vs the model at each other one, next to
the simulator at the same two values). :func:`grid_worst_cases` picks the worst value of each
measure over the grid (the report's headline) and :func:`plot_grid_heatmaps` draws each
measure over the two heat-map axes, one panel per channel and per value of the other axes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scorepde.evaluation.compare import EvaluationTargets, invariance_check
from scorepde.fileio import atomic_path
from scorepde.problems.base import Problem

__all__ = [
    "GRID_INDEX_OFFSET",
    "DesignGrid",
    "design_grid",
    "evaluate_grid",
    "grid_summary",
    "grid_worst_cases",
    "plot_grid_heatmaps",
]

#: Offset of the reference-set index of grid point ``i`` (``simulator_reference(index=...)``),
#: so that the grid's simulator draws never coincide with those of the explicit conditions.
GRID_INDEX_OFFSET = 1_000_000

#: Where the values of a declared-invariant condition sit in its range (fractions), by count.
_INVARIANT_FRACTIONS = {1: (0.5,), 2: (0.2, 0.8)}


@dataclass(frozen=True)
class DesignGrid:
    """A product grid of conditions.

    names: every condition of the problem, in its column order; axes: ``name -> (m_name,)``
    values in physical units; invariant: the conditions declared invariant (their values are
    paired at every point of the others); map_axes: the two conditions drawn as the heat
    map's ``(y, x)`` (None when fewer than two other conditions vary).
    """

    names: tuple[str, ...]
    axes: dict[str, np.ndarray] = field(default_factory=dict)
    invariant: tuple[str, ...] = ()
    map_axes: tuple[str, str] | None = None

    def conditions(self) -> np.ndarray:
        """Every grid point ``(M, k)`` physical units, the last name varying fastest."""
        return np.array(list(itertools.product(*(self.axes[n] for n in self.names))), float)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "names": list(self.names),
            "axes": {n: [float(v) for v in self.axes[n]] for n in self.names},
            "invariant": list(self.invariant),
            "map_axes": None if self.map_axes is None else list(self.map_axes),
        }


def _even(spec: Any, points: int) -> np.ndarray:
    """``points`` values evenly spaced in the transformed space, both ends exactly."""
    fractions = np.array([0.5]) if points == 1 else np.linspace(0.0, 1.0, points)
    if spec.log_scale:
        low, high = np.log(spec.low), np.log(spec.high)
        values = np.exp(low + fractions * (high - low))
    else:
        values = spec.low + fractions * (spec.high - spec.low)
    values = np.clip(values, spec.low, spec.high)
    if points > 1:
        values[0], values[-1] = spec.low, spec.high  # the ends exactly, not exp(log(x))
    return values


def design_grid(
    problem: Problem,
    points: int | Mapping[str, int] = 5,
    *,
    values: Mapping[str, Sequence[float]] | None = None,
    invariant_points: int = 2,
) -> DesignGrid:
    """The evaluation grid of ``problem``.

    points: values per condition (an int for all, or ``name -> int``), evenly spaced in the
    condition's transformed space with both ends of its design range included (at least 2;
    1 gives the middle). values: explicit values for some conditions (physical units; they
    must be physical, see ``ConditionSpec.is_physical``). invariant_points: values of each
    condition the problem declares an invariance in (not named in ``values``): 2 (at 20 % and
    80 % of its range) or 1 (the middle; no pair check). The heat-map axes are the two
    non-invariant conditions with the most values (ties: column order, the earlier as y).
    """
    specs = {spec.name: spec for spec in problem.conditions}
    names = tuple(problem.condition_names)
    values = dict(values or {})
    unknown = sorted(set(values) - set(names)) + (
        sorted(set(points) - set(names)) if isinstance(points, Mapping) else []
    )
    if unknown:
        raise ValueError(f"grid names unknown condition(s) {unknown}; conditions: {list(names)}")
    if invariant_points not in _INVARIANT_FRACTIONS:
        raise ValueError(f"invariant_points = {invariant_points!r} is not allowed; expected 1 or 2")
    invariant = tuple(inv.condition for inv in problem.invariances() if inv.condition in names)
    axes: dict[str, np.ndarray] = {}
    for name in names:
        spec = specs[name]
        if name in values:
            column = np.asarray(values[name], dtype=float).reshape(-1)
            if column.size == 0 or not np.all(spec.is_physical(column)):
                raise ValueError(
                    f"grid values for {name} = {column.tolist()} are not allowed; expected one "
                    f"or more values in {spec.domain_text()}"
                )
            axes[name] = column
        elif name in invariant:
            fractions = np.asarray(_INVARIANT_FRACTIONS[invariant_points])
            axes[name] = spec.low + fractions * (spec.high - spec.low)
        else:
            count = points.get(name, 5) if isinstance(points, Mapping) else points
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(
                    f"grid points for {name} = {count!r} is not allowed; expected an int >= 1"
                )
            axes[name] = _even(spec, count)
    varying = [n for n in names if n not in invariant and len(axes[n]) > 1]
    varying.sort(key=lambda n: (-len(axes[n]), names.index(n)))
    map_axes = None
    if len(varying) >= 2:
        first, second = sorted(varying[:2], key=names.index)
        map_axes = (first, second)
    return DesignGrid(names, axes, invariant, map_axes)


SampleFn = Callable[[np.ndarray, int, int], np.ndarray]


def evaluate_grid(
    sample: SampleFn,
    problem: Problem,
    grid: DesignGrid,
    *,
    targets: EvaluationTargets,
    n_samples: int = 1000,
    seed: int = 0,
    sample_seed: int = 0,
    log: Callable[[str], None] | None = print,
) -> list[dict[str, Any]]:
    """Evaluate ``sample`` at every grid point; returns one result per point (label "grid").

    Each result is ``evaluate.evaluate_conditions``'s (no figures, no shifted-condition
    invariance sampling) plus ``"grid_index"`` (the index of each condition's value on its
    axis). The model set at the ``j``-th value of the invariant conditions uses the sample
    seed ``sample_seed + INVARIANCE_SEED_OFFSET * j`` (independent sets, so the pair check's
    model pair and simulator pair carry the same sampling noise). For every point whose
    invariant conditions are not all at their first value, ``"invariances"`` holds
    ``{name: invariance_check(model here, model at the first value, simulator at the first
    value, simulator here)}`` with ``"shifted_condition"`` (the first value's point) and
    ``"shift"``: the declared invariance checked at every point of the other conditions.
    """
    from scorepde.evaluation.evaluate import INVARIANCE_SEED_OFFSET, evaluate_conditions

    names = list(grid.names)
    table = grid.conditions()
    sizes = [len(grid.axes[n]) for n in names]
    index_of = list(itertools.product(*(range(size) for size in sizes)))
    invariant_k = [names.index(n) for n in grid.invariant]
    kept: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
    results: list[dict[str, Any]] = []
    for i, row in enumerate(table):
        key = index_of[i]
        # the j-th combination of the invariant conditions' values samples with its own seed
        j = 0
        for k in invariant_k:
            j = j * sizes[k] + key[k]
        captured: dict[str, np.ndarray] = {}

        def capture(
            condition: np.ndarray, n: int, seed_: int, store: dict[str, np.ndarray] = captured
        ) -> np.ndarray:
            store["model"] = sample(condition, n, seed_)
            return store["model"]

        (result,) = evaluate_conditions(
            capture,
            problem,
            row[None, :],
            out_dir=".",
            targets=targets,
            n_samples=n_samples,
            seed=seed,
            sample_seed=sample_seed + INVARIANCE_SEED_OFFSET * j,
            invariance_shift=0,
            labels=["grid"],
            log=None,
            figures=False,
            index_offset=GRID_INDEX_OFFSET + i,
            keep_reference=captured,
            permutation=False,
        )
        result["grid_index"] = list(key)
        base_key = tuple(0 if k in invariant_k else key[k] for k in range(len(names)))
        if invariant_k and base_key == key:
            kept[key] = (captured["model"], captured["simulator_a"])
        elif invariant_k and base_key in kept:
            base_model, base_sim = kept[base_key]
            check = invariance_check(
                captured["model"],
                base_model,
                base_sim,
                captured["simulator_a"],
                mean_error_norm=problem.mean_error_norm,
            )
            base_row = table[index_of.index(base_key)]
            check["shifted_condition"] = {n: float(v) for n, v in zip(names, base_row, strict=True)}
            moved = [names[k] for k in invariant_k if key[k] != 0]
            for name in moved:
                k = names.index(name)
                check_copy = dict(check)
                check_copy["shift"] = float(base_row[k] - row[k])
                result.setdefault("invariances", {})[name] = check_copy
            result["invariance"] = next(iter(result["invariances"].values()))
        results.append(result)
        if log is not None:
            verdict = "PASS" if result["passed"] else "FAIL: " + "; ".join(result["failures"])
            log(f"[grid {i + 1}/{len(table)}] {result['condition']} -> {verdict}")
    return results


def grid_worst_cases(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The worst value of each measure over grid results (``evaluate_grid``'s).

    Rows (JSON-ready): ``{"measure", "channel", "value", "floor", "condition", "bound",
    "passed"}`` for mean_error and std_error (largest over points and channels), coverage
    (lowest and highest), energy_ratio (joint, largest; per-channel largest as
    ``energy_ratio_channel``), and, when the results hold pair checks, the invariance's joint
    energy ratio and mean-error ratio (largest; floor: 1). bound: the targets' (None: not
    judged). Empty for no results.
    """
    if not results:
        return []
    rows: list[dict[str, Any]] = []
    targets = results[0]["targets"]

    def pick(measure: str, key: Callable[[Mapping[str, Any], int], float], lowest: bool = False):
        best = None
        for result in results:
            channels = result["comparison"]["channels"]
            for ch, name in enumerate(channels):
                value = key(result, ch)
                if best is None or (value < best[0] if lowest else value > best[0]):
                    best = (value, result, ch, name)
        return best

    for measure in ("mean_error", "std_error"):
        value, result, ch, name = pick(
            measure, lambda r, c, m=measure: r["comparison"]["metrics"][m][c]
        )
        bound = targets.get(measure)
        rows.append(
            {
                "measure": measure,
                "channel": name,
                "value": value,
                "floor": result["comparison"]["floor"][measure][ch],
                "condition": result["condition"],
                "bound": bound,
                "passed": bound is None or value <= bound,
            }
        )
    low, high = targets["coverage"]
    for lowest, label in ((True, "coverage (lowest)"), (False, "coverage (highest)")):
        value, result, ch, name = pick(
            "coverage", lambda r, c: r["comparison"]["metrics"]["coverage"][c], lowest=lowest
        )
        rows.append(
            {
                "measure": label,
                "channel": name,
                "value": value,
                "floor": result["comparison"]["floor"]["coverage"][ch],
                "condition": result["condition"],
                "bound": [low, high],
                "passed": low <= value <= high,
            }
        )
    value, result, ch, name = pick("energy", lambda r, c: r["comparison"]["energy_ratio"][c])
    rows.append(
        {
            "measure": "energy_ratio_channel",
            "channel": name,
            "value": value,
            "floor": 1.0,
            "condition": result["condition"],
            "bound": None,
            "passed": True,
        }
    )
    joint = max(results, key=lambda r: r["comparison"]["joint"]["energy_ratio"])
    bound = targets.get("energy_ratio")
    value = joint["comparison"]["joint"]["energy_ratio"]
    rows.append(
        {
            "measure": "energy_ratio",
            "channel": "joint",
            "value": value,
            "floor": 1.0,
            "condition": joint["condition"],
            "bound": bound,
            "passed": bound is None or value <= bound,
        }
    )
    checks = [
        (result, name, check)
        for result in results
        for name, check in (result.get("invariances") or {}).items()
    ]
    if checks:
        result, name, check = max(checks, key=lambda item: item[2]["energy_ratio"])
        rows.append(
            {
                "measure": f"invariance in {name}: energy_ratio",
                "channel": "joint",
                "value": check["energy_ratio"],
                "floor": 1.0,
                "condition": result["condition"],
                "bound": None,
                "passed": True,
            }
        )
        best = max(
            ((r, n, c, ch) for r, n, c in checks for ch in range(len(c["mean_error_ratio"]))),
            key=lambda item: item[2]["mean_error_ratio"][item[3]],
        )
        result, name, check, ch = best
        rows.append(
            {
                "measure": f"invariance in {name}: mean_error",
                "channel": result["comparison"]["channels"][ch],
                "value": check["model"]["mean_error"][ch],
                "floor": check["floor"]["mean_error"][ch],
                "condition": result["condition"],
                "bound": None,
                "passed": True,
            }
        )
    return rows


#: The measures drawn as heat maps: (file stem, title, value of (result, channel)).
_HEATMAP_MEASURES: tuple[tuple[str, str, Callable[[Mapping[str, Any], int], float]], ...] = (
    ("mean_error", "mean error", lambda r, c: r["comparison"]["metrics"]["mean_error"][c]),
    ("std_error", "std error", lambda r, c: r["comparison"]["metrics"]["std_error"][c]),
    ("coverage", "coverage", lambda r, c: r["comparison"]["metrics"]["coverage"][c]),
    (
        "energy_ratio",
        "energy ratio (model / floor)",
        lambda r, c: r["comparison"]["energy_ratio"][c],
    ),
)


def _failing(result: Mapping[str, Any], stem: str, channel: str) -> bool:
    prefix = {"mean_error": "mean_error[", "std_error": "std_error[", "coverage": "coverage["}
    if stem not in prefix:
        return False
    return any(f.startswith(f"{prefix[stem]}{channel}]") for f in result.get("failures", []))


def _colour_norm(stem: str, image: np.ndarray) -> Any:
    """Coverage: linear on [0.85, 1] (values below show as the lowest colour); the positive
    measures (errors, energy ratios), which span orders of magnitude where a model fails: a
    log scale."""
    from matplotlib.colors import LogNorm, Normalize

    finite = image[np.isfinite(image)]
    if stem == "coverage":
        return Normalize(vmin=0.85, vmax=1.0, clip=True)
    positive = finite[finite > 0]
    if positive.size == 0:
        return None
    low, high = float(positive.min()), float(positive.max())
    return LogNorm(vmin=low, vmax=high if high > low else low * 10)


def plot_grid_heatmaps(
    grid: DesignGrid, results: Sequence[Mapping[str, Any]], out_dir: str | Path
) -> list[str]:
    """One PNG per measure, ``figures/grid_<measure>.png`` under ``out_dir``: the measure over
    the heat-map axes (``grid.map_axes``: y, x; log axes for log-scale... drawn as evenly
    spaced cells labelled with their values), one panel per channel (columns) and per
    combination of the other conditions' values (rows); each cell shows its value, failing
    cells are outlined in red; colours on a log scale for errors and energy ratios, on [0.85, 1]
    for coverage. Also ``figures/grid_invariance.png`` (the pair check's joint
    energy ratio) when the results hold pair checks. Returns the paths relative to
    ``out_dir``; none when the grid has no heat-map axes."""
    if grid.map_axes is None or not results:
        return []
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    names = list(grid.names)
    y_name, x_name = grid.map_axes
    others = [n for n in names if n not in grid.map_axes]
    other_values = list(itertools.product(*(range(len(grid.axes[n])) for n in others)))
    channels = list(results[0]["comparison"]["channels"])
    by_key = {tuple(r["grid_index"]): r for r in results}
    ny, nx = len(grid.axes[y_name]), len(grid.axes[x_name])
    out_dir = Path(out_dir)
    written: list[str] = []

    def key_of(iy: int, ix: int, rest: tuple[int, ...]) -> tuple[int, ...]:
        parts = dict(zip(others, rest, strict=True))
        parts[y_name], parts[x_name] = iy, ix
        return tuple(parts[n] for n in names)

    measures = list(_HEATMAP_MEASURES)
    has_pairs = any("invariances" in r for r in results)
    if has_pairs:
        measures.append(
            (
                "invariance",
                "invariance: energy ratio of the model pair (floor ~1)",
                lambda r, c: (
                    max(ch["energy_ratio"] for ch in r["invariances"].values())
                    if "invariances" in r
                    else float("nan")
                ),
            )
        )
    for stem, title, value_of in measures:
        panel_channels = ["joint"] if stem == "invariance" else channels
        fig, axes = plt.subplots(
            len(other_values),
            len(panel_channels),
            figsize=(3.8 * len(panel_channels) + 0.8, 3.2 * len(other_values)),
            squeeze=False,
            layout="constrained",
        )
        for row, rest in enumerate(other_values):
            for col, channel in enumerate(panel_channels):
                ax = axes[row][col]
                image = np.full((ny, nx), np.nan)
                for iy in range(ny):
                    for ix in range(nx):
                        result = by_key.get(key_of(iy, ix, rest))
                        if result is not None:
                            value = value_of(result, col)
                            image[iy, ix] = np.nan if value is None else value
                shown = ax.imshow(
                    image,
                    origin="lower",
                    aspect="auto",
                    cmap="viridis",
                    norm=_colour_norm(stem, image),
                )
                fig.colorbar(shown, ax=ax, fraction=0.046)
                for iy in range(ny):
                    for ix in range(nx):
                        result = by_key.get(key_of(iy, ix, rest))
                        if result is None or not np.isfinite(image[iy, ix]):
                            continue
                        ax.text(
                            ix,
                            iy,
                            f"{image[iy, ix]:.3g}",
                            ha="center",
                            va="center",
                            fontsize=7,
                            color="white",
                        )
                        if _failing(result, stem, channel):
                            ax.add_patch(
                                plt.Rectangle(
                                    (ix - 0.5, iy - 0.5),
                                    1,
                                    1,
                                    fill=False,
                                    edgecolor="red",
                                    linewidth=2,
                                )
                            )
                ax.set_xticks(range(nx), [f"{v:.3g}" for v in grid.axes[x_name]])
                ax.set_yticks(range(ny), [f"{v:.3g}" for v in grid.axes[y_name]])
                ax.set_xlabel(x_name)
                ax.set_ylabel(y_name)
                fixed = ", ".join(
                    f"{n}={grid.axes[n][i]:.3g}" for n, i in zip(others, rest, strict=True)
                )
                ax.set_title(f"{channel}" + (f" ({fixed})" if fixed else ""), fontsize=9)
        fig.suptitle(title)
        relative = Path("figures") / f"grid_{stem}.png"
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(relative.as_posix())
    return written


def grid_summary(
    grid: DesignGrid, results: Sequence[Mapping[str, Any]], figures: Sequence[str] = ()
) -> dict[str, Any]:
    """What the report shows of a grid: ``{"grid": grid.as_dict(), "points", "passed",
    "worst": grid_worst_cases(results), "heatmaps": figures}``."""
    return {
        "grid": grid.as_dict(),
        "points": len(results),
        "passed": sum(1 for r in results if r.get("passed")),
        "worst": grid_worst_cases(results),
        "heatmaps": list(figures),
    }
