"""Model samples against the simulator, next to the simulator's own noise floor.

``compare_sample_sets`` evaluates every metric of ``metrics`` for the model against one set
of fresh simulator samples (``simulator_a``), and the same metric for a second, independent
simulator set (``simulator_b``) against ``simulator_a``: the value a perfect model would get
at these sample sizes. ``check_targets`` turns a comparison into a list of failures against
an ``EvaluationTargets`` profile (named profiles in ``TARGET_PROFILES``; ``targets_from_config``
reads a name or a mapping). ``invariance_check``, ``derived_quantity_check`` and
``residual_check`` compare what a problem declares (invariances, derived scalar quantities, a
PDE residual) between model and simulator, next to the same simulator floor. Fields are
``(n, C, *S)`` with a grid ``S`` of any rank, described by a ``FieldSpec``. Results are plain
dicts of lists and floats (JSON-ready).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

import numpy as np

from scorepde.evaluation import metrics
from scorepde.fields import FieldSpec

__all__ = [
    "QUICK_2D_TARGETS",
    "QUICK_DESIGN_TARGETS",
    "QUICK_TARGETS",
    "SEED_TARGETS",
    "TARGET_PROFILES",
    "EvaluationTargets",
    "check_targets",
    "compare_sample_sets",
    "derived_quantity_check",
    "invariance_check",
    "residual_check",
    "targets_from_config",
]


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class EvaluationTargets:
    """Pass/fail thresholds for one comparison (all dimensionless).

    mean_error, std_error: largest allowed value in any channel; coverage: (low, high) bounds
    for every channel; energy_ratio: largest allowed joint energy ratio model/floor, or None to
    report it without judging; energy_p_value: smallest allowed permutation p-value of the
    joint energy distance, or None (only judged when the comparison computed it).

    The declared checks of a problem, judged only when the comparison holds them:
    derived_mean_difference: largest allowed standardised mean difference
    ``|mean_model - mean_sim| / std_sim`` of every derived quantity; derived_std_ratio: allowed
    relative deviation of the std ratio ``std_model / std_sim`` from 1 (0.15: within
    [0.85, 1.15]); residual_ratio: largest allowed ratio of the model's mean PDE residual to
    the simulator's. None: reported only.
    """

    name: str
    mean_error: float
    std_error: float
    coverage: tuple[float, float]
    energy_ratio: float | None = None
    energy_p_value: float | None = None
    derived_mean_difference: float | None = None
    derived_std_ratio: float | None = None
    residual_ratio: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (coverage as a list)."""
        data = asdict(self)
        data["coverage"] = list(self.coverage)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationTargets:
        """Inverse of ``as_dict``; a missing name becomes "custom", missing optional bounds
        None. Unknown keys are an error naming them."""
        allowed = {field.name for field in dataclass_fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(
                f"EvaluationTargets: unknown key(s) {unknown}; allowed {sorted(allowed)}"
            )
        missing = sorted({"mean_error", "std_error", "coverage"} - set(data))
        if missing:
            raise ValueError(f"EvaluationTargets: missing key(s) {missing}")
        low, high = data["coverage"]
        return cls(
            name=str(data.get("name", "custom")),
            mean_error=float(data["mean_error"]),
            std_error=float(data["std_error"]),
            coverage=(float(low), float(high)),
            energy_ratio=_optional_float(data.get("energy_ratio")),
            energy_p_value=_optional_float(data.get("energy_p_value")),
            derived_mean_difference=_optional_float(data.get("derived_mean_difference")),
            derived_std_ratio=_optional_float(data.get("derived_std_ratio")),
            residual_ratio=_optional_float(data.get("residual_ratio")),
        )


#: The seed study's acceptance (full-scale runs, n >= 1000 samples per condition).
SEED_TARGETS = EvaluationTargets(
    name="seed", mean_error=0.05, std_error=0.05, coverage=(0.935, 0.965), energy_ratio=1.5
)
#: The CPU quick recipe (issue 3's looser CPU tolerances): mean and std error <= 0.15 and
#: coverage in [0.90, 0.98]; the energy ratio is reported, not judged (the issue sets no CPU
#: bound for it, and for a small CPU model it mostly measures residual roughness).
QUICK_TARGETS = EvaluationTargets(
    name="quick", mean_error=0.15, std_error=0.15, coverage=(0.90, 0.98), energy_ratio=None
)
#: 2-D problems on the CPU (issue 10): mean error <= 0.10 (a 2-D problem declares the r.m.s.
#: norm), std error <= 0.15, coverage in [0.90, 0.98], joint energy ratio <= 2, and every
#: derived quantity within 0.15 std of the simulator's mean with a std ratio in [0.85, 1.15].
QUICK_2D_TARGETS = EvaluationTargets(
    name="quick-2d",
    mean_error=0.10,
    std_error=0.15,
    coverage=(0.90, 0.98),
    energy_ratio=2.0,
    derived_mean_difference=0.15,
    derived_std_ratio=0.15,
)
#: The CPU quick recipe over the whole design grid (issue 14): mean and std error <= 0.10 and
#: coverage in [0.92, 0.975] at every grid point; the energy ratio is reported, not judged.
QUICK_DESIGN_TARGETS = EvaluationTargets(
    name="quick-design", mean_error=0.10, std_error=0.10, coverage=(0.92, 0.975)
)
#: The named profiles a recipe may give as ``evaluation.targets``.
TARGET_PROFILES: dict[str, EvaluationTargets] = {
    "seed": SEED_TARGETS,
    "quick": QUICK_TARGETS,
    "quick-2d": QUICK_2D_TARGETS,
    "quick-design": QUICK_DESIGN_TARGETS,
}


def targets_from_config(
    value: str | Mapping[str, Any] | EvaluationTargets,
) -> EvaluationTargets:
    """The targets a configuration names: a profile of ``TARGET_PROFILES`` by name, or an
    explicit mapping as written by ``EvaluationTargets.as_dict`` (name optional), or an
    ``EvaluationTargets`` (returned as is)."""
    if isinstance(value, EvaluationTargets):
        return value
    if isinstance(value, str):
        if value not in TARGET_PROFILES:
            raise ValueError(
                f"targets = {value!r} is not allowed; expected one of {sorted(TARGET_PROFILES)} "
                "or a mapping with mean_error, std_error and coverage"
            )
        return TARGET_PROFILES[value]
    if isinstance(value, Mapping):
        return EvaluationTargets.from_dict(value)
    raise ValueError(
        f"targets = {value!r} is not allowed; expected a profile name "
        f"({sorted(TARGET_PROFILES)}) or a mapping"
    )


def _ratio(top: float, bottom: float) -> float:
    """top / bottom, with 0/0 -> 0 and x/0 -> inf."""
    top, bottom = float(top), float(bottom)
    if bottom > 0:
        return top / bottom
    return 0.0 if top == 0 else float("inf")


def _list(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float).reshape(-1)]


def _per_channel_energy(
    a: np.ndarray, b: np.ndarray, scale: np.ndarray, *, unbiased: bool = False
) -> list[float]:
    return [
        metrics.energy_distance(
            a[:, ch : ch + 1], b[:, ch : ch + 1], scale[ch : ch + 1], unbiased=unbiased
        )
        for ch in range(a.shape[1])
    ]


def _size_factor(n_test: int, n_floor: int, n_reference: int) -> float:
    """Expected V-statistic floor at (n_test, n_reference) over the one at (n_floor, n_reference).

    For equal distributions E[energy] = E|X-X'| (1/n + 1/m), so the floor measured with
    n_floor samples is rescaled by this factor to stand for n_test samples.
    """
    return (1 / n_test + 1 / n_reference) / (1 / n_floor + 1 / n_reference)


def _resolve_spec(
    spec: FieldSpec | None, channels: Sequence[str] | None, grid: np.ndarray | None
) -> FieldSpec:
    """The field specification from ``spec=`` or the older ``channels=`` + ``grid=`` (1-D)."""
    if spec is not None:
        if not isinstance(spec, FieldSpec):
            raise ValueError(f"spec = {spec!r} is not allowed; expected a FieldSpec")
        if channels is not None and tuple(channels) != spec.channels:
            raise ValueError(
                f"channels = {list(channels)} disagree with spec.channels {list(spec.channels)}"
            )
        if grid is not None:
            raise ValueError("give either spec= or grid=, not both (the spec holds the grid)")
        return spec
    if channels is None or grid is None:
        raise ValueError(
            "compare_sample_sets needs spec= (a FieldSpec) or both channels= and grid= (1-D)"
        )
    channels = tuple(str(c) for c in channels)
    return FieldSpec(channels, ("",) * len(channels), (np.asarray(grid, dtype=float),))


def compare_sample_sets(
    model: np.ndarray,
    simulator_a: np.ndarray,
    simulator_b: np.ndarray,
    *,
    spec: FieldSpec | None = None,
    channels: Sequence[str] | None = None,
    grid: np.ndarray | None = None,
    constraints: Sequence[tuple[str, str, str, float]] = (),
    mean_error_norm: str = "max",
    scale: np.ndarray | Sequence[float] | None = None,
    level: float = 0.95,
    permutation_seed: int | None = None,
    n_permutations: int = 200,
    classifier_seed: int | None = None,
) -> dict[str, Any]:
    """Every metric for model vs simulator_a, and the floor simulator_b vs simulator_a.

    model: (n, C, *S), simulator_a: (m, C, *S), simulator_b: (k, C, *S), physical units, all
    at the same conditions; simulator_a and simulator_b must be independent draws. spec: the
    ``FieldSpec`` of the fields (channels, grid of any rank); or, for 1-D fields, the older
    channels= (the C names) and grid= ((N,) metres). constraints: (channel, kind, side,
    target) as in ``metrics.boundary_errors``; mean_error_norm: "max" or "rms" (see
    ``metrics.mean_error``; a problem declares it); scale: (C,) energy normalisation, default
    ``metrics.channel_fluctuation_scale(simulator_a)``; level: the band's probability.
    permutation_seed / classifier_seed: when given, also run the energy permutation test
    and the classifier two-sample test for model and floor.

    Returns a JSON-ready dict:
      "channels", "n" {"model", "simulator_a", "simulator_b"}, "level", "scale" (C,),
      "metrics" and "floor": {"mean_error", "std_error", "coverage", "energy_distance"} as
      per-channel lists; "energy_ratio": per-channel list (metrics / floor energy);
      "joint": {"energy_distance", "energy_floor", "energy_ratio", the unbiased (U-statistic)
      values "energy_distance_unbiased", "energy_floor_unbiased", and when requested
      "energy_p_value", "energy_floor_p_value"}; "boundary" and "boundary_floor" (from
      ``boundary_errors`` with the reference's overall per-channel std as scale; empty without
      constraints); "classifier" and "classifier_floor" when requested; "mean_error_norm"
      when it is not "max".

    The energy floor is the V-statistic, whose expectation for equal distributions is
    ``E|X-X'| (1/n + 1/m)``; when the model and simulator_b sizes differ the floor is
    rescaled by that factor before the ratio, so the ratio stays about 1 for a right model.
    """
    spec = _resolve_spec(spec, channels, grid)
    if mean_error_norm not in metrics.MEAN_ERROR_NORMS:
        raise ValueError(
            f"mean_error_norm = {mean_error_norm!r} is not allowed; expected one of "
            f"{metrics.MEAN_ERROR_NORMS}"
        )
    channels = list(spec.channels)
    model = spec.check(model, "model")
    simulator_a = spec.check(simulator_a, "simulator_a")
    simulator_b = spec.check(simulator_b, "simulator_b")
    if scale is None:
        scale = metrics.channel_fluctuation_scale(simulator_a)
    scale = np.asarray(scale, dtype=float).reshape(-1)
    n_model, n_a, n_b = len(model), len(simulator_a), len(simulator_b)
    if n_model != n_b:
        warnings.warn(
            f"model has {n_model} samples and simulator_b {n_b}; the energy floor is rescaled "
            "by the expected V-statistic bias, but equal sizes give the cleanest ratio",
            stacklevel=2,
        )
    factor = _size_factor(n_model, n_b, n_a)

    def all_metrics(test: np.ndarray) -> dict[str, list[float]]:
        return {
            "mean_error": _list(metrics.mean_error(test, simulator_a, norm=mean_error_norm)),
            "std_error": _list(metrics.std_error(test, simulator_a)),
            "coverage": _list(metrics.coverage(test, simulator_a, level)),
            "energy_distance": _per_channel_energy(test, simulator_a, scale),
        }

    result_metrics = all_metrics(model)
    floor = all_metrics(simulator_b)
    energy_ratio = [
        m / (f * factor) if f > 0 else float("inf")
        for m, f in zip(result_metrics["energy_distance"], floor["energy_distance"], strict=True)
    ]
    joint_model = metrics.energy_distance(model, simulator_a, scale)
    joint_floor = metrics.energy_distance(simulator_b, simulator_a, scale)
    joint: dict[str, Any] = {
        "energy_distance": joint_model,
        "energy_floor": joint_floor,
        "energy_ratio": joint_model / (joint_floor * factor) if joint_floor > 0 else float("inf"),
        "energy_distance_unbiased": metrics.energy_distance(
            model, simulator_a, scale, unbiased=True
        ),
        "energy_floor_unbiased": metrics.energy_distance(
            simulator_b, simulator_a, scale, unbiased=True
        ),
    }
    if permutation_seed is not None:
        for key, test in (("energy_p_value", model), ("energy_floor_p_value", simulator_b)):
            joint[key] = metrics.energy_permutation_test(
                test, simulator_a, scale, seed=permutation_seed, n_permutations=n_permutations
            )["p_value"]

    result: dict[str, Any] = {
        "channels": channels,
        "n": {"model": n_model, "simulator_a": n_a, "simulator_b": n_b},
        "level": float(level),
        "scale": _list(scale),
        "metrics": result_metrics,
        "floor": floor,
        "energy_ratio": energy_ratio,
        "joint": joint,
        "boundary": {},
        "boundary_floor": {},
    }
    if mean_error_norm != "max":
        result["mean_error_norm"] = mean_error_norm
    if constraints:
        flat_a = simulator_a.reshape(n_a, len(channels), -1)
        field_scale = flat_a.std(axis=(0, 2), ddof=1)
        field_scale = np.where(field_scale > 0, field_scale, 1.0)
        result["boundary_scale"] = _list(field_scale)
        result["boundary"] = metrics.boundary_errors(model, constraints, spec, field_scale)
        result["boundary_floor"] = metrics.boundary_errors(
            simulator_b, constraints, spec, field_scale
        )
    if classifier_seed is not None:
        result["classifier"] = metrics.classifier_two_sample_test(
            model, simulator_a, classifier_seed
        )
        result["classifier_floor"] = metrics.classifier_two_sample_test(
            simulator_b, simulator_a, classifier_seed
        )
    return result


#: Largest share of a model's samples whose derived quantity may be undefined (not finite:
#: e.g. a generated Darcy pair whose outflow is not positive, so log k_eff does not exist)
#: before the derived-quantity targets fail.
DERIVED_NONFINITE_ALLOWED = 0.01


def _scalar_samples(values: Any, name: str, *, drop_nonfinite: bool = False) -> np.ndarray:
    array = np.asarray(values, dtype=float).reshape(-1)
    if drop_nonfinite:
        array = array[np.isfinite(array)]
    if array.size < 2 or not np.all(np.isfinite(array)):
        raise ValueError(
            f"{name} has {array.size} values ({np.count_nonzero(~np.isfinite(array))} not "
            "finite); expected at least 2 finite values, one per sample"
        )
    return array


def _mean_and_std_comparison(test: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    spread = reference.std(ddof=1)
    return {
        "mean_difference": _ratio(abs(test.mean() - reference.mean()), spread),
        "std_ratio": _ratio(test.std(ddof=1), spread),
    }


def derived_quantity_check(
    model: Mapping[str, np.ndarray],
    simulator_a: Mapping[str, np.ndarray],
    simulator_b: Mapping[str, np.ndarray],
) -> dict[str, dict[str, Any]]:
    """Distributions of derived scalar quantities, model vs simulator, next to the floor.

    Each argument maps a quantity's name to its values ``(n,)``, one per field (as returned
    by ``Problem.derived_quantities``), in the quantity's unit. For every name in
    ``simulator_a``: the standardised mean difference ``|mean_test - mean_a| / std_a`` and the
    standard-deviation ratio ``std_test / std_a`` (ddof = 1) with test = model, and the same
    with test = simulator_b (the floor: about ``sqrt(1/n + 1/m)`` and ``1 +- sqrt(1/(2n))``).

    The model's fields need not be physical: a value that is not finite (a quantity that does
    not exist for that sample) is left out of its statistics and counted in
    ``"model_nonfinite_fraction"``; the simulator's values must all be finite.

    Returns ``name -> {"model": {"mean_difference", "std_ratio"}, "floor": {...},
    "model_nonfinite_fraction", "simulator_mean", "simulator_std"}`` (JSON-ready;
    dimensionless except the last two).
    """
    result: dict[str, dict[str, Any]] = {}
    for name, reference_values in simulator_a.items():
        for label, values in (("model", model), ("simulator_b", simulator_b)):
            if name not in values:
                raise ValueError(
                    f"derived quantity {name!r} is missing from the {label} set; it has "
                    f"{sorted(values)}"
                )
        reference = _scalar_samples(reference_values, f"derived quantity {name!r} (simulator_a)")
        raw = np.asarray(model[name], dtype=float).reshape(-1)
        test = _scalar_samples(raw, f"derived quantity {name!r} (model)", drop_nonfinite=True)
        other = _scalar_samples(simulator_b[name], f"derived quantity {name!r} (simulator_b)")
        result[str(name)] = {
            "model": _mean_and_std_comparison(test, reference),
            "floor": _mean_and_std_comparison(other, reference),
            "model_nonfinite_fraction": float(1.0 - test.size / max(raw.size, 1)),
            "simulator_mean": float(reference.mean()),
            "simulator_std": float(reference.std(ddof=1)),
        }
    return result


def residual_check(
    model: np.ndarray, simulator_a: np.ndarray, simulator_b: np.ndarray
) -> dict[str, float]:
    """The PDE residual of the model's fields relative to the simulator's.

    Each argument: ``(n,)`` residual norms, one per field (``Problem.residual``; the unit the
    problem documents). Returns {"model_mean", "model_median", "simulator_mean",
    "simulator_median", "ratio_mean", "ratio_median" (model / simulator_a), "floor_mean",
    "floor_median" (simulator_b / simulator_a, about 1)}; ratios x/0 are inf (0/0 -> 0).
    A simulator's residual is not 0 (discretisation, solver tolerance), so the ratio says
    how much worse than the simulator the model satisfies the discrete equations.
    """
    test = _scalar_samples(model, "model residual")
    reference = _scalar_samples(simulator_a, "simulator_a residual")
    other = _scalar_samples(simulator_b, "simulator_b residual")
    result = {
        "model_mean": float(test.mean()),
        "model_median": float(np.median(test)),
        "simulator_mean": float(reference.mean()),
        "simulator_median": float(np.median(reference)),
    }
    for stat in ("mean", "median"):
        reduce = np.mean if stat == "mean" else np.median
        result[f"ratio_{stat}"] = _ratio(reduce(test), reduce(reference))
        result[f"floor_{stat}"] = _ratio(reduce(other), reduce(reference))
    return result


def _as_targets(targets: EvaluationTargets | Mapping[str, Any]) -> EvaluationTargets:
    if isinstance(targets, EvaluationTargets):
        return targets
    return EvaluationTargets.from_dict(targets)


def check_targets(
    result: Mapping[str, Any], targets: EvaluationTargets | Mapping[str, Any]
) -> list[str]:
    """The targets a ``compare_sample_sets`` result misses; an empty list means PASS.

    targets: an ``EvaluationTargets`` or a dict such as ``{"mean_error": 0.05, "std_error":
    0.05, "coverage": (0.935, 0.965), "energy_ratio": 1.5}``. The derived-quantity and
    residual bounds are judged when the result holds "derived" (``derived_quantity_check``)
    or "residual" (``residual_check``). Each failure is one line naming the metric, the
    channel or quantity, the value, the bound and the simulator floor; when the floor
    itself misses the bound the line says so ("target below the noise floor"): then more
    samples are needed, not a better model.
    """
    targets = _as_targets(targets)
    channels = list(result["channels"])
    values, floor = result["metrics"], result["floor"]
    failures: list[str] = []

    def note(floor_value: float, passes: bool) -> str:
        text = f"(simulator floor {floor_value:.4g}"
        return text + (")" if passes else "; target below the noise floor at this n)")

    for key, bound in (("mean_error", targets.mean_error), ("std_error", targets.std_error)):
        for ch, name in enumerate(channels):
            value, floor_value = values[key][ch], floor[key][ch]
            if not value <= bound:  # also catches nan
                failures.append(
                    f"{key}[{name}] = {value:.4g} > {bound:.4g} "
                    + note(floor_value, floor_value <= bound)
                )
    low, high = targets.coverage
    for ch, name in enumerate(channels):
        value, floor_value = values["coverage"][ch], floor["coverage"][ch]
        if not low <= value <= high:
            failures.append(
                f"coverage[{name}] = {value:.4g} outside [{low:.4g}, {high:.4g}] "
                + note(floor_value, low <= floor_value <= high)
            )
    joint = result["joint"]
    if targets.energy_ratio is not None and not joint["energy_ratio"] <= targets.energy_ratio:
        failures.append(
            f"energy_ratio = {joint['energy_ratio']:.4g} > {targets.energy_ratio:.4g} "
            f"(energy {joint['energy_distance']:.4g}, simulator floor {joint['energy_floor']:.4g})"
        )
    if targets.energy_p_value is not None and "energy_p_value" in joint:
        if not joint["energy_p_value"] >= targets.energy_p_value:
            failures.append(
                f"energy_p_value = {joint['energy_p_value']:.4g} < {targets.energy_p_value:.4g}"
            )
    for name, entry in result.get("derived", {}).items():
        model, floor_entry = entry["model"], entry["floor"]
        undefined = entry.get("model_nonfinite_fraction", 0.0)
        judged = (targets.derived_mean_difference, targets.derived_std_ratio) != (None, None)
        if judged and undefined > DERIVED_NONFINITE_ALLOWED:
            failures.append(
                f"derived[{name}] is not finite for {undefined:.3g} of the model's samples "
                f"(> {DERIVED_NONFINITE_ALLOWED:g}; unphysical samples)"
            )
        bound = targets.derived_mean_difference
        if bound is not None:
            value, floor_value = model["mean_difference"], floor_entry["mean_difference"]
            if not value <= bound:
                failures.append(
                    f"derived_mean_difference[{name}] = {value:.4g} > {bound:.4g} "
                    + note(floor_value, floor_value <= bound)
                )
        deviation = targets.derived_std_ratio
        if deviation is not None:
            low, high = 1.0 - deviation, 1.0 + deviation
            value, floor_value = model["std_ratio"], floor_entry["std_ratio"]
            if not low <= value <= high:
                failures.append(
                    f"derived_std_ratio[{name}] = {value:.4g} outside [{low:.4g}, {high:.4g}] "
                    + note(floor_value, low <= floor_value <= high)
                )
    residual = result.get("residual")
    if targets.residual_ratio is not None and residual is not None:
        value, floor_value = residual["ratio_mean"], residual["floor_mean"]
        if not value <= targets.residual_ratio:
            failures.append(
                f"residual_ratio = {value:.4g} > {targets.residual_ratio:.4g} "
                f"(model mean residual {residual['model_mean']:.4g}, simulator "
                f"{residual['simulator_mean']:.4g}; "
                + note(floor_value, floor_value <= targets.residual_ratio)[1:]
            )
    return failures


def invariance_check(
    samples_1: np.ndarray,
    samples_2: np.ndarray,
    sim_a: np.ndarray,
    sim_b: np.ndarray,
    *,
    scale: np.ndarray | Sequence[float] | None = None,
    mean_error_norm: str = "max",
) -> dict[str, Any]:
    """Are two model sample sets as close to each other as two simulator sets?

    samples_1, samples_2: (n, C, *S) model samples at conditions that should give the same
    distribution (a condition the problem declares an invariance of, moved, everything else
    equal); sim_a, sim_b: (m, C, *S) two independent simulator sets at those conditions (the
    floor). scale: (C,) energy normalisation, default ``channel_fluctuation_scale(sim_a)``;
    mean_error_norm: "max" or "rms" (``metrics.mean_error``). samples_2 and sim_a are the
    references of the asymmetric metrics.

    Returns {"model": {"mean_error", "std_error", "energy_distance"}, "floor": the same for
    sim_b vs sim_a, "mean_error_ratio", "std_error_ratio" (per channel), "energy_ratio"
    (joint, sample-size corrected)}; ratios near 1 mean the model is as invariant as the
    simulator.
    """
    samples_1 = np.asarray(samples_1, dtype=float)
    samples_2 = np.asarray(samples_2, dtype=float)
    sim_a = np.asarray(sim_a, dtype=float)
    sim_b = np.asarray(sim_b, dtype=float)
    if scale is None:
        scale = metrics.channel_fluctuation_scale(sim_a)
    scale = np.asarray(scale, dtype=float).reshape(-1)
    model = {
        "mean_error": _list(metrics.mean_error(samples_1, samples_2, norm=mean_error_norm)),
        "std_error": _list(metrics.std_error(samples_1, samples_2)),
        "energy_distance": metrics.energy_distance(samples_1, samples_2, scale),
    }
    floor = {
        "mean_error": _list(metrics.mean_error(sim_b, sim_a, norm=mean_error_norm)),
        "std_error": _list(metrics.std_error(sim_b, sim_a)),
        "energy_distance": metrics.energy_distance(sim_b, sim_a, scale),
    }
    # expected V-statistic floor at the model's sizes over the one at the simulator's sizes
    factor = (1 / len(samples_1) + 1 / len(samples_2)) / (1 / len(sim_b) + 1 / len(sim_a))

    def ratio(top: float, bottom: float) -> float:
        return top / bottom if bottom > 0 else float("inf")

    return {
        "model": model,
        "floor": floor,
        "mean_error_ratio": [
            ratio(t, b) for t, b in zip(model["mean_error"], floor["mean_error"], strict=True)
        ],
        "std_error_ratio": [
            ratio(t, b) for t, b in zip(model["std_error"], floor["std_error"], strict=True)
        ],
        "energy_ratio": ratio(model["energy_distance"], floor["energy_distance"] * factor),
    }
