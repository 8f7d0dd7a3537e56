"""Model vs simulator next to the simulator floor, target profiles, invariance check.

Synthetic fields as in test_evaluation_metrics: two channels on 30 points, Gaussian process
fluctuations (length 0.15) with known mean and std profiles, exact Dirichlet points.
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

from scorepde.evaluation.compare import (
    QUICK_TARGETS,
    SEED_TARGETS,
    EvaluationTargets,
    check_targets,
    compare_sample_sets,
    invariance_check,
)

GRID = np.linspace(0.0, 1.0, 30)
CHANNELS = ("phi", "c")
CONSTRAINTS = [("phi", "dirichlet", "left", 0.0), ("c", "dirichlet", "right", 1000.0)]


def gaussian_fields(
    n: int, seed: int, *, shift: float = 0.0, std_factor: float = 1.0
) -> np.ndarray:
    """(n, 2, 30): phi = x + 0.5 x g, c = 1000 + 50 (1 - x) g; shift in units of max std."""
    rng = np.random.default_rng(seed)
    distance = GRID[:, None] - GRID[None, :]
    cholesky = np.linalg.cholesky(np.exp(-0.5 * (distance / 0.15) ** 2) + 1e-8 * np.eye(30))
    g = rng.standard_normal((n, 2, 30)) @ cholesky.T
    std = np.stack([0.5 * GRID, 50.0 * (1.0 - GRID)])
    mean = np.stack([GRID, np.full(30, 1000.0)])
    return mean + shift * std.max(axis=1, keepdims=True) + std_factor * std * g


N = 500
SIM_A = gaussian_fields(N, seed=11)
SIM_B = gaussian_fields(N, seed=12)


def compare(model: np.ndarray, **kwargs) -> dict:
    return compare_sample_sets(
        model, SIM_A, SIM_B, channels=CHANNELS, grid=GRID, constraints=CONSTRAINTS, **kwargs
    )


def test_right_model_passes_quick_targets_and_sits_at_the_floor() -> None:
    """A model drawn from the simulator's distribution: every metric within QUICK_TARGETS
    (mean <= 0.15: the floor at n = 500 is 0.07 +- 0.03; std <= 0.15: floor 0.04; coverage
    in [0.90, 0.98]: floor 0.947 +- 0.005; energy ratio <= 3: ratio of two null draws,
    1.0 +- 0.3). Boundary errors are exactly 0 (the constraints hold exactly in both).
    The result is JSON-serialisable as it is."""
    result = compare(gaussian_fields(N, seed=13), permutation_seed=0, classifier_seed=0)
    assert check_targets(result, QUICK_TARGETS) == []
    assert 0.3 < result["joint"]["energy_ratio"] < 3.0
    assert result["joint"]["energy_p_value"] > 0.01
    assert abs(result["classifier"]["accuracy"] - 0.5) < 0.07
    assert all(entry["max"] == 0.0 for entry in result["boundary"].values())
    assert result["n"] == {"model": N, "simulator_a": N, "simulator_b": N}
    json.dumps(result, allow_nan=False)


def test_shifted_model_fails_with_named_metrics() -> None:
    """Every field shifted by 0.3 of its channel's largest std: mean error ~0.3 > 0.15 in
    both channels, energy ratio ~40 > 3; near the ends where the local std is small the shift
    is many local std, so coverage drops to ~0.75 < 0.90; the std is unchanged, so
    std_error does not fail (~0.04 against the bound 0.15)."""
    result = compare(gaussian_fields(N, seed=13, shift=0.3))
    failures = check_targets(result, dataclasses.replace(QUICK_TARGETS, energy_ratio=3.0))
    assert any(f.startswith("mean_error[phi]") for f in failures)
    assert any(f.startswith("mean_error[c]") for f in failures)
    assert any(f.startswith("energy_ratio") for f in failures)
    assert any(f.startswith("coverage[phi]") for f in failures)
    assert not any(f.startswith("std_error") for f in failures)
    assert result["joint"]["energy_ratio"] > 5


def test_check_targets_lists_exactly_the_missed_targets() -> None:
    """A hand-made result: only the values outside the bounds are listed, and a floor that
    misses its own target is flagged as such."""
    result = {
        "channels": ["phi", "c"],
        "metrics": {
            "mean_error": [0.01, 0.2],
            "std_error": [0.04, 0.04],
            "coverage": [0.95, 0.99],
        },
        "floor": {
            "mean_error": [0.02, 0.08],
            "std_error": [0.03, 0.03],
            "coverage": [0.95, 0.95],
        },
        "joint": {"energy_ratio": 1.2, "energy_distance": 0.12, "energy_floor": 0.1},
    }
    failures = check_targets(result, SEED_TARGETS)
    assert len(failures) == 2
    assert failures[0].startswith("mean_error[c] = 0.2 > 0.05")
    assert "target below the noise floor" in failures[0]  # floor 0.08 > 0.05
    assert failures[1].startswith("coverage[c] = 0.99 outside [0.935, 0.965]")
    loose = {"mean_error": 0.5, "std_error": 0.5, "coverage": (0.9, 1.0), "energy_ratio": 1.1}
    assert check_targets(result, loose) == [
        "energy_ratio = 1.2 > 1.1 (energy 0.12, simulator floor 0.1)"
    ]
    result["joint"]["energy_ratio"] = float("nan")  # a nan never passes
    assert len(check_targets(result, loose)) == 1


def test_target_profiles_round_trip() -> None:
    """The presets as specified, and as_dict -> from_dict is the identity."""
    assert (SEED_TARGETS.mean_error, SEED_TARGETS.std_error) == (0.05, 0.05)
    assert SEED_TARGETS.coverage == (0.935, 0.965) and SEED_TARGETS.energy_ratio == 1.5
    assert QUICK_TARGETS.coverage == (0.90, 0.98) and QUICK_TARGETS.energy_ratio is None
    for targets in (SEED_TARGETS, QUICK_TARGETS):
        assert EvaluationTargets.from_dict(json.loads(json.dumps(targets.as_dict()))) == targets


def test_unequal_sample_sizes_rescale_the_energy_floor() -> None:
    """A right model with 250 samples against a 500-sample floor: the V-statistic floor
    scales with (1/n + 1/m), i.e. by (1/250 + 1/500) / (2/500) = 1.5; with the rescaling the
    ratio stays inside the null range (< 3), and a warning says the sizes differ."""
    with pytest.warns(UserWarning, match="250 samples"):
        result = compare(gaussian_fields(250, seed=14))
    assert 0.3 < result["joint"]["energy_ratio"] < 3.0


def test_invariance_check() -> None:
    """Two model sets from one distribution (invariant model): ratios to the simulator floor
    are O(1) (each is a ratio of two noise-floor draws; bound 4). A model whose second set
    is shifted by 0.3 of the largest std (not invariant) gives an energy ratio > 5 (~40)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        invariant = invariance_check(
            gaussian_fields(N, seed=15), gaussian_fields(N, seed=16), SIM_A, SIM_B
        )
    assert invariant["energy_ratio"] < 4
    assert max(invariant["mean_error_ratio"]) < 4 and max(invariant["std_error_ratio"]) < 4
    broken = invariance_check(
        gaussian_fields(N, seed=15), gaussian_fields(N, seed=16, shift=0.3), SIM_A, SIM_B
    )
    assert broken["energy_ratio"] > 5
