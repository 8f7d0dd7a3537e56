"""Acceptance of the published-code formulation against the post's stored simulator fields.

The post's repository stores the 500 simulator fields behind its Fig. 4 (U0 = 0, l = L/10,
F_right = 25 A/m^2) as ``models/pde_realizations.pt`` (a torch file, float32, (500, 2, 100):
c in mol/m^3 and phi in V on the cell centres; saved from an MPS device, so it is loaded with
``map_location="cpu"``). Get it and run::

    git clone https://github.com/OpenNumerics/SGM-for-porous-media /tmp/sgm-pm
    SCOREPDE_PUBLISHED_FIELDS=/tmp/sgm-pm/models/pde_realizations.pt \\
        pytest -m slow -s tests/test_battery_published_data_slow.py

The stored set is split in two halves (a, b); our fields are compared with half a by
``compare_sample_sets``, and half b against half a gives the noise floor of every measure.
The stored fields were computed in float32; in that arithmetic the reaction term of the
potential's matrix (a_s k_rn h^2 ~ 3e-8 S/m) is below the resolution of its diagonal
(~0.4 S/m), so the stored phi carries round-off of the size of its own spread. Our float32
precision reproduces them in both channels; our float64 fields match them in c only
(docs/physics.md, "Two formulations").
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from scorepde.evaluation.compare import compare_sample_sets
from scorepde.problems import get_problem

pytestmark = pytest.mark.slow

FIG4 = [0.0, 0.1, 25.0]


def _stored_fields() -> np.ndarray:
    path = os.environ.get("SCOREPDE_PUBLISHED_FIELDS", "")
    if not path or not Path(path).is_file():
        pytest.skip("set SCOREPDE_PUBLISHED_FIELDS to the post's models/pde_realizations.pt")
    import torch

    stored = torch.load(path, map_location="cpu", weights_only=True).numpy().astype(float)
    assert stored.shape == (500, 2, 100)
    return stored


def _compare(ours: np.ndarray, stored: np.ndarray, problem) -> dict:
    order = np.random.default_rng(0).permutation(len(stored))
    half = len(stored) // 2
    return compare_sample_sets(
        ours[:half],
        stored[order[:half]],
        stored[order[half:]],
        spec=problem.field_spec,
        constraints=[tuple(c) for c in problem.boundary_conditions()],
    )


def _print(label: str, result: dict) -> None:
    for source in ("metrics", "floor"):
        row = result[source]
        name = label if source == "metrics" else "  floor (stored b vs a)"
        values = " | ".join(
            f"{row[key][0]:.3f} / {row[key][1]:.3f}" for key in ("mean_error", "std_error")
        )
        cover = f"{row['coverage'][0]:.3f} / {row['coverage'][1]:.3f}"
        ratio = result["joint"]["energy_ratio"] if source == "metrics" else 1.0
        print(f"| {name} | {values} | {cover} | {ratio:.2f} |")


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_simulator_matches_the_stored_fig4_fields(precision: str) -> None:
    stored = _stored_fields()
    problem = get_problem("battery", formulation="published-code", precision=precision)
    ours = problem.simulate([FIG4], 250, [np.random.SeedSequence(2024)])["fields"]
    np.testing.assert_allclose(problem.grid, (np.arange(100) + 0.5) * 1e-6)
    result = _compare(ours, stored, problem)
    print("\n| ours vs stored a | mean error c / phi | std error c / phi | coverage | joint E |")
    _print(f"ours, {precision}", result)
    metrics, floor = result["metrics"], result["floor"]
    channels = (0, 1) if precision == "float32" else (0,)  # float64 phi: see the docstring
    for k in channels:
        assert metrics["mean_error"][k] <= 2.0 * floor["mean_error"][k] + 0.05
        assert metrics["std_error"][k] <= 2.0 * floor["std_error"][k] + 0.05
        assert 0.90 <= metrics["coverage"][k] <= 0.995
    if precision == "float64":  # the stored phi spread is inflated by float32 round-off
        assert metrics["coverage"][1] < floor["coverage"][1]
