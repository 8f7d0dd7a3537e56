"""Model samples against the simulator, next to the simulator's own noise floor.

``compare_sample_sets`` evaluates every metric of ``metrics`` for the model against one set
of fresh simulator samples (``simulator_a``), and the same metric for a second, independent
simulator set (``simulator_b``) against ``simulator_a``: the value a perfect model would get
at these sample sizes. ``check_targets`` turns a comparison into a list of failures against
an ``EvaluationTargets`` profile. Results are plain dicts of lists and floats (JSON-ready).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from scorepde.evaluation import metrics

__all__ = [
    "QUICK_TARGETS",
    "SEED_TARGETS",
    "EvaluationTargets",
    "check_targets",
    "compare_sample_sets",
    "invariance_check",
]


@dataclass(frozen=True)
class EvaluationTargets:
    """Pass/fail thresholds for one comparison (all dimensionless).

    mean_error, std_error: largest allowed value in any channel; coverage: (low, high) bounds
    for every channel; energy_ratio: largest allowed joint energy ratio model/floor, or None to
    report it without judging; energy_p_value: smallest allowed permutation p-value of the
    joint energy distance, or None (only judged when the comparison computed it).
    """

    name: str
    mean_error: float
    std_error: float
    coverage: tuple[float, float]
    energy_ratio: float | None = None
    energy_p_value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (coverage as a list)."""
        data = asdict(self)
        data["coverage"] = list(self.coverage)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationTargets:
        """Inverse of ``as_dict``; a missing name becomes "custom"."""
        low, high = data["coverage"]
        return cls(
            name=str(data.get("name", "custom")),
            mean_error=float(data["mean_error"]),
            std_error=float(data["std_error"]),
            coverage=(float(low), float(high)),
            energy_ratio=None if data.get("energy_ratio") is None else float(data["energy_ratio"]),
            energy_p_value=(
                None if data.get("energy_p_value") is None else float(data["energy_p_value"])
            ),
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


def compare_sample_sets(
    model: np.ndarray,
    simulator_a: np.ndarray,
    simulator_b: np.ndarray,
    *,
    channels: Sequence[str],
    grid: np.ndarray,
    constraints: Sequence[tuple[str, str, str, float]] = (),
    scale: np.ndarray | Sequence[float] | None = None,
    level: float = 0.95,
    permutation_seed: int | None = None,
    n_permutations: int = 200,
    classifier_seed: int | None = None,
) -> dict[str, Any]:
    """Every metric for model vs simulator_a, and the floor simulator_b vs simulator_a.

    model: (n, C, N), simulator_a: (m, C, N), simulator_b: (k, C, N), physical units, all at
    the same conditions; simulator_a and simulator_b must be independent draws. channels:
    the C names; grid: (N,) metres; constraints: (channel, kind, side, target) as in
    ``metrics.boundary_errors``; scale: (C,) energy normalisation, default
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
      constraints); "classifier" and "classifier_floor" when requested.

    The energy floor is the V-statistic, whose expectation for equal distributions is
    ``E|X-X'| (1/n + 1/m)``; when the model and simulator_b sizes differ the floor is
    rescaled by that factor before the ratio, so the ratio stays about 1 for a right model.
    """
    channels = list(channels)
    model = np.asarray(model, dtype=float)
    simulator_a = np.asarray(simulator_a, dtype=float)
    simulator_b = np.asarray(simulator_b, dtype=float)
    for name, values in (
        ("model", model),
        ("simulator_a", simulator_a),
        ("simulator_b", simulator_b),
    ):
        if values.ndim != 3 or values.shape[1] != len(channels):
            raise ValueError(
                f"{name} has shape {values.shape}; expected (n, {len(channels)}, n_points) "
                f"for channels {channels}"
            )
    grid = np.asarray(grid, dtype=float).reshape(-1)
    if model.shape[2] != len(grid):
        raise ValueError(f"fields have {model.shape[2]} points but grid has {len(grid)}")
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
            "mean_error": _list(metrics.mean_error(test, simulator_a)),
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
    if constraints:
        field_scale = simulator_a.std(axis=(0, 2), ddof=1)
        field_scale = np.where(field_scale > 0, field_scale, 1.0)
        result["boundary_scale"] = _list(field_scale)
        result["boundary"] = metrics.boundary_errors(
            model, constraints, grid, field_scale, channels=channels
        )
        result["boundary_floor"] = metrics.boundary_errors(
            simulator_b, constraints, grid, field_scale, channels=channels
        )
    if classifier_seed is not None:
        result["classifier"] = metrics.classifier_two_sample_test(
            model, simulator_a, classifier_seed
        )
        result["classifier_floor"] = metrics.classifier_two_sample_test(
            simulator_b, simulator_a, classifier_seed
        )
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
    0.05, "coverage": (0.935, 0.965), "energy_ratio": 1.5}``. Each failure is one line naming
    the metric, the channel, the value, the bound and the simulator floor; when the floor
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
    return failures


def invariance_check(
    samples_1: np.ndarray,
    samples_2: np.ndarray,
    sim_a: np.ndarray,
    sim_b: np.ndarray,
    *,
    scale: np.ndarray | Sequence[float] | None = None,
) -> dict[str, Any]:
    """Are two model sample sets as close to each other as two simulator sets?

    samples_1, samples_2: (n, C, N) model samples at conditions that should give the same
    distribution (e.g. two values of U0 with everything else equal); sim_a, sim_b: (m, C, N)
    two independent simulator sets at those conditions (the floor). scale: (C,) energy
    normalisation, default ``channel_fluctuation_scale(sim_a)``. samples_2 and sim_a are the
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
        "mean_error": _list(metrics.mean_error(samples_1, samples_2)),
        "std_error": _list(metrics.std_error(samples_1, samples_2)),
        "energy_distance": metrics.energy_distance(samples_1, samples_2, scale),
    }
    floor = {
        "mean_error": _list(metrics.mean_error(sim_b, sim_a)),
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
