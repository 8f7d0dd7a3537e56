"""The darcy2d Problem: metadata, shapes, seeding, batching, statistics, derived quantities."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scorepde.problems import DarcyProblem, get_problem


@pytest.fixture(scope="module")
def darcy() -> DarcyProblem:
    return get_problem("darcy2d", n_cells=16)


def test_registry_and_metadata(darcy: DarcyProblem) -> None:
    assert isinstance(darcy, DarcyProblem) and DarcyProblem().n_cells == 32
    assert darcy.condition_names == ("l", "sigma") and darcy.condition_units == ("1", "1")
    assert darcy.channels == ("log_k", "u") and darcy.channel_units == ("1", "1")
    assert darcy.axis_names == ("y", "x") and darcy.latent_name == "unit_log_k"
    assert darcy.grid_shape == (16, 16) and darcy.latent_shape == (16, 16)
    centres = (np.arange(16) + 0.5) / 16
    for axis in darcy.coordinates:
        np.testing.assert_array_equal(axis, centres)
    spec = darcy.field_spec
    assert spec.channels == ("log_k", "u") and spec.axis_names == ("y", "x")
    assert darcy.boundary_conditions() == () and darcy.mean_error_norm == "rms"
    assert darcy.options() == {"n_cells": 16}
    assert get_problem("darcy2d", **darcy.options()).grid_shape == (16, 16)
    attributes = darcy.attributes()
    assert attributes["problem"] == "darcy2d" and attributes["n_cells"] == 16
    assert all(isinstance(value, str | int | float) for value in attributes.values())
    specs = json.loads(attributes["condition_specs"])
    assert [s["name"] for s in specs] == ["l", "sigma"] and specs[0]["log_scale"] is True
    evaluation = darcy.default_evaluation_conditions()
    assert evaluation.shape == (3, 2)
    for column, condition in enumerate(darcy.conditions):
        assert np.all(condition.in_design_range(evaluation[:, column]))


def test_bad_n_cells_and_conditions_are_refused() -> None:
    for bad in (3, 0, 4.0, True, "32"):
        with pytest.raises(ValueError, match=r"n_cells = .* expected an integer >= 4"):
            DarcyProblem(n_cells=bad)
    with pytest.raises(ValueError, match="n_cells = 2"):
        get_problem("darcy2d", n_cells=2)
    with pytest.raises(ValueError, match="bad option"):
        get_problem("darcy2d", n_points=16)
    with pytest.raises(ValueError, match=r"condition sigma = 0\.0"):
        DarcyProblem(8).validate_conditions([[0.1, 0.0]])


def test_simulate_shapes_and_reproducibility(darcy: DarcyProblem) -> None:
    conditions = np.array([[0.1, 0.5], [0.3, 1.5], [0.05, 1.0]])
    result = darcy.simulate(conditions, 4, [0, 1, 2])
    assert result["fields"].shape == (12, 2, 16, 16)
    assert result["latent"].shape == (12, 16, 16)
    np.testing.assert_array_equal(result["conditions"], np.repeat(conditions, 4, axis=0))
    again = darcy.simulate(conditions, 4, [0, 1, 2])
    np.testing.assert_array_equal(result["fields"], again["fields"])
    other = darcy.simulate(conditions, 4, [0, 1, 3])
    np.testing.assert_array_equal(result["fields"][:8], other["fields"][:8])
    assert not np.array_equal(result["fields"][8:], other["fields"][8:])
    # log k = sigma * g exactly; u lies between the boundary values (maximum principle).
    sigma = result["conditions"][:, 1, None, None]
    np.testing.assert_array_equal(result["fields"][:, 0], sigma * result["latent"])
    u = result["fields"][:, 1]
    assert np.all((u > 0.0) & (u < 1.0))


def test_results_do_not_depend_on_batching(darcy: DarcyProblem) -> None:
    """simulate of two rows == the concatenation of one-row simulates with the same seeds."""
    conditions = np.array([[0.2, 1.0], [0.07, 1.4]])
    both = darcy.simulate(conditions, 3, [11, 12])["fields"]
    first = darcy.simulate(conditions[:1], 3, [11])["fields"]
    second = darcy.simulate(conditions[1:], 3, [12])["fields"]
    np.testing.assert_array_equal(both, np.concatenate([first, second]))


def test_log_k_statistics_match_sigma_and_the_kernel(darcy: DarcyProblem) -> None:
    """Per-cell variance of log k over n = 1000 fields, averaged over the cells, is sigma^2
    within 5 standard errors of a variance estimate (5 sqrt(2 / n) relative; averaging over
    correlated cells only shrinks the error). The correlation at a lag of 4 cells (0.25) along
    x matches exp(-0.25^2 / (2 l^2)) within 5 sqrt(2 / n) as well."""
    sigma, length, n = 1.2, 0.2, 1000
    log_k = darcy.simulate(np.array([[length, sigma]]), n, [2025])["fields"][:, 0]
    tolerance = 5.0 * np.sqrt(2.0 / n)
    variance = np.mean(log_k**2, axis=0)  # the mean is known to be zero
    assert abs(np.mean(variance) / sigma**2 - 1.0) < tolerance
    assert abs(np.mean(log_k)) < 5.0 * sigma / np.sqrt(n)
    covariance = np.mean(log_k[:, :, :-4] * log_k[:, :, 4:])
    assert abs(covariance / sigma**2 - np.exp(-(0.25**2) / (2 * length**2))) < tolerance


def test_k_eff_of_a_constant_field_is_exp_of_it(darcy: DarcyProblem) -> None:
    latent = np.ones((3, 16, 16))
    conditions = np.array([[0.1, 0.3], [0.1, 1.0], [0.1, 1.5]])
    fields = darcy.solve(latent, conditions)
    derived = darcy.derived_quantities(fields, conditions)
    np.testing.assert_allclose(derived["log_k_eff"], conditions[:, 1], rtol=1e-12)


def test_derived_quantities_and_residual_on_simulator_output(darcy: DarcyProblem) -> None:
    """Residual is round-off for simulated pairs and large for a perturbed pressure; log k_eff
    lies between the logs of the harmonic and arithmetic means of k (Wiener bounds)."""
    conditions = np.array([[0.1, 1.5], [0.3, 0.5]])
    result = darcy.simulate(conditions, 5, [4, 5])
    fields = result["fields"]
    residual = darcy.residual(fields, result["conditions"])
    assert residual.shape == (10,) and np.all(residual < 1e-13)
    noisy = fields.copy()
    noisy[:, 1] += 1e-3 * np.random.default_rng(0).standard_normal(noisy[:, 1].shape)
    assert np.all(darcy.residual(noisy, result["conditions"]) > 1e-5)
    log_k_eff = darcy.derived_quantities(fields, result["conditions"])["log_k_eff"]
    k = np.exp(fields[:, 0]).reshape(10, -1)
    assert log_k_eff.shape == (10,)
    assert np.all(log_k_eff > np.log(1.0 / np.mean(1.0 / k, axis=1)))
    assert np.all(log_k_eff < np.log(np.mean(k, axis=1)))
    reversed_flow = fields.copy()
    # 5 u overshoots the inflow value: the flux through x = 0 turns back (O(N) per cut) and
    # the flux averaged over the cuts, 5 k_eff - 8 mean(k) + O(h), is negative: no log
    reversed_flow[:, 1] *= 5.0
    assert np.all(np.isnan(darcy.derived_quantities(reversed_flow, conditions)["log_k_eff"]))
    with pytest.raises(ValueError, match=r"fields has shape \(10, 2, 16\)"):
        darcy.residual(fields[:, :, 0], result["conditions"])


def test_field_spec_of_darcy_is_dimensionless_and_y_first() -> None:
    spec = get_problem("darcy2d", n_cells=8).field_spec
    assert spec.axis_names == ("y", "x") and spec.axis_units == ("1", "1")
    assert spec.sample_shape == (2, 8, 8)
