"""The published-code formulation of the battery model: scheme properties, not stored numbers.

Run with ``-s`` to print the measured time-step errors and the float32 digits.
"""

from __future__ import annotations

import numpy as np
import pytest

from scorepde.physics.battery_published import (
    PUBLISHED_CODE_SETTINGS,
    concentration_steady_published,
    concentration_transient_published,
    reaction_current_published,
    solve_battery_published,
    solve_potential_published,
)
from scorepde.physics.parameters import BatteryParameters, PublishedCodeSettings
from scorepde.physics.random_fields import GaussianProcessSampler, porosity_from_latent

PARAMS = BatteryParameters()


def _porosity(n: int, length: float = 0.1, seed: int = 0) -> np.ndarray:
    sampler = GaussianProcessSampler(PARAMS.cell_centres(), jitter=1e-4)
    gaussian = sampler.sample(length * PARAMS.length, n, np.random.default_rng(seed))
    return porosity_from_latent(gaussian, PARAMS.porosity_min, PARAMS.porosity_max)


def _harmonic(values: np.ndarray) -> np.ndarray:
    return 2.0 * values[..., :-1] * values[..., 1:] / (values[..., :-1] + values[..., 1:])


def _dense_reference(eps: np.ndarray, U0: float, F_right: float, dt: float, steps: int):
    """One field, assembled as dense matrices and stepped with ``np.linalg.solve``."""
    n, h = PARAMS.n_points, PARAMS.cell_width
    x = PARAMS.cell_centres()
    k_faces = _harmonic(PARAMS.effective_conductivity(eps))
    d_faces = _harmonic(PARAMS.effective_diffusivity(eps))
    area = PARAMS.surface_area_density(eps)
    laplace_k = np.zeros((n, n))
    laplace_d = np.zeros((n, n))
    for i in range(n - 1):
        for matrix, face in ((laplace_k, k_faces[i]), (laplace_d, d_faces[i])):
            matrix[i, i] += face
            matrix[i + 1, i + 1] += face
            matrix[i, i + 1] -= face
            matrix[i + 1, i] -= face
    reaction = area * PARAMS.reaction_rate
    load = reaction * (PARAMS.solid_potential(x) - U0) * h * h
    load[-1] += F_right * h
    phi = np.linalg.solve(laplace_k + np.diag(reaction * h * h), load)
    phi -= phi[0]
    j = PARAMS.reaction_rate * (PARAMS.solid_potential(x) - phi - U0)
    source = (1 - PARAMS.transference_number) / PARAMS.faraday * area * j
    step = np.diag(eps / dt) + laplace_d / (h * h)
    step[-1] = 0.0
    step[-1, -1] = 1.0
    c = np.full(n, PARAMS.c_right)
    for _ in range(steps):
        rhs = eps / dt * c + source
        rhs[-1] = PARAMS.c_right
        c = np.linalg.solve(step, rhs)
    return c, phi


def test_matches_a_dense_step_by_step_reference() -> None:
    eps = _porosity(3, seed=1)
    conditions = [(0.0, 25.0), (-0.2, 50.0), (0.15, 3.0)]
    U0 = np.array([c[0] for c in conditions])
    F = np.array([c[1] for c in conditions])
    solution = solve_battery_published(eps, U0, F)
    for b, (u0, f) in enumerate(conditions):
        c_ref, phi_ref = _dense_reference(eps[b], u0, f, 0.1, 1000)
        np.testing.assert_allclose(solution.c[b], c_ref, rtol=0, atol=1e-9)
        np.testing.assert_allclose(solution.phi[b], phi_ref, rtol=0, atol=1e-12)
    assert np.all(solution.phi[:, 0] == 0.0)
    assert np.all(solution.c[:, -1] == PARAMS.c_right)


def test_potential_balance_and_flux_sign() -> None:
    """Telescoping fluxes: sum_i h a_s k_rn (phi_s - phi_unshifted - U0) = -F_right, i.e. the
    boundary condition is +k_eff phi'(L) = F_right."""
    eps = _porosity(4, seed=2)
    F = np.array([0.0, 10.0, 25.0, 50.0])
    U0 = np.array([0.1, -0.2, 0.0, 0.2])
    phi = solve_potential_published(eps, U0, F)
    x = PARAMS.cell_centres()
    j_unshifted = PARAMS.reaction_rate * (PARAMS.solid_potential(x) - phi - U0[:, None])
    total = (PARAMS.surface_area_density(eps) * j_unshifted).sum(axis=1) * PARAMS.cell_width
    np.testing.assert_allclose(total, -F, rtol=0, atol=1e-9 * 50)


def test_u0_changes_c_but_not_the_shifted_potential() -> None:
    eps = _porosity(5, seed=3)
    low = solve_battery_published(eps, -0.2, 25.0)
    high = solve_battery_published(eps, 0.2, 25.0)
    np.testing.assert_allclose(low.phi, high.phi, rtol=0, atol=1e-12)
    # j moves by k_rn * 0.4 V = 0.04 A/m^2 everywhere, which changes c (tenths of mol/m^3)
    np.testing.assert_allclose(low.reaction_current - high.reaction_current, 0.04, atol=1e-12)
    assert np.max(np.abs(low.c - high.c)) > 0.1


def test_transient_converges_to_its_own_steady_state() -> None:
    eps = _porosity(6, seed=4)
    solution = solve_battery_published(eps, 0.1, 40.0)
    steady = concentration_steady_published(eps, solution.reaction_current)
    late = concentration_transient_published(
        eps, solution.reaction_current, time_step=50.0, n_steps=400
    )  # T = 2e4 s, ~90 times the slowest relaxation time 4 eps L^2 / (pi^2 D_eff)
    scale = np.max(np.abs(steady - PARAMS.c_right))
    assert np.max(np.abs(late - steady)) < 1e-9 * scale
    # ... while at the published T = 100 s, c is far from it
    early_gap = np.max(np.abs(solution.c - steady), axis=1)
    assert np.all(early_gap > 0.3 * np.max(np.abs(steady - PARAMS.c_right), axis=1))


def test_scheme_conserves_salt_discretely() -> None:
    """Each implicit-Euler step: storage change of cells 0..N-2 = sources + flux through the
    face between cell N-2 and the Dirichlet cell N-1 (the flux at x = 0 is zero)."""
    eps = _porosity(4, seed=5)
    rng = np.random.default_rng(6)
    j = rng.normal(0.0, 1.0, eps.shape)
    c0 = PARAMS.c_right + rng.normal(0.0, 5.0, eps.shape)
    c0[:, -1] = PARAMS.c_right
    dt, h = 0.3, PARAMS.cell_width
    c1 = concentration_transient_published(eps, j, time_step=dt, n_steps=1, c_initial=c0)
    source = (1 - PARAMS.transference_number) / PARAMS.faraday * PARAMS.surface_area_density(eps)
    source = source * j
    d_last = _harmonic(PARAMS.effective_diffusivity(eps))[:, -1]
    storage = (eps[:, :-1] * (c1[:, :-1] - c0[:, :-1])).sum(axis=1) * h / dt
    inflow = d_last * (c1[:, -1] - c1[:, -2]) / h
    produced = source[:, :-1].sum(axis=1) * h
    scale = np.abs(storage) + np.abs(inflow) + np.abs(produced)
    np.testing.assert_array_less(np.abs(storage - inflow - produced), 1e-11 * scale)


def test_time_step_error_is_first_order() -> None:
    eps = _porosity(4, seed=7)
    j = solve_battery_published(eps, 0.0, 25.0).reaction_current
    final_time = 100.0
    steps = (25, 50, 100, 200, 400)
    results = [
        concentration_transient_published(eps, j, time_step=final_time / n, n_steps=n)
        for n in steps
    ]
    reference = concentration_transient_published(eps, j, time_step=final_time / 6400, n_steps=6400)
    errors = np.array([np.max(np.abs(r - reference)) for r in results])
    # the reference has its own O(dt) error (1/16 of the finest one here): Richardson-correct
    orders = np.log2(
        [
            np.max(np.abs(a - b)) / np.max(np.abs(b - c))
            for a, b, c in zip(results, results[1:], results[2:], strict=False)
        ]
    )
    print("\ndt [s]  max error [mol/m^3]  (vs dt = 1/64 s)")
    for n, error in zip(steps, errors, strict=True):
        print(f"{final_time / n:6.3f}  {error:.3e}")
    print("observed orders (Richardson):", np.round(orders, 3))
    np.testing.assert_allclose(orders, 1.0, atol=0.1)
    assert np.all(np.diff(errors) < 0)


def test_float32_loses_digits_float64_keeps_them() -> None:
    """The public code runs float32: measure what that costs against float64."""
    eps = _porosity(50, seed=8)
    double = solve_battery_published(eps, 0.0, 25.0)
    single = solve_battery_published(eps, 0.0, 25.0, dtype=np.float32)
    c_err = np.max(np.abs(single.c - double.c))
    phi_err = np.max(np.abs(single.phi - double.phi))
    c_spread = np.max(double.c.std(axis=0))
    phi_spread = np.max(double.phi.std(axis=0))
    print(
        f"\nfloat32 - float64: c {c_err:.2e} mol/m^3 (std {c_spread:.2e}), "
        f"phi {phi_err:.2e} V (std {phi_spread:.2e})"
    )
    assert phi_err > 1e-6  # float32 visibly wrong in phi ...
    reference = _dense_reference(eps[0], 0.0, 25.0, 0.1, 1000)
    assert np.max(np.abs(double.c[0] - reference[0])) < 1e-9  # ... float64 is not


def test_settings_and_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="whole number of time steps"):
        PublishedCodeSettings(time_step=0.3, final_time=1.0)
    with pytest.raises(ValueError, match="time_step = -1"):
        PublishedCodeSettings(time_step=-1.0)
    assert PUBLISHED_CODE_SETTINGS.n_steps == 1000
    eps = _porosity(1)
    with pytest.raises(ValueError, match="dtype"):
        solve_battery_published(eps, 0.0, 1.0, dtype=np.float16)
    with pytest.raises(ValueError, match="n_steps = -1"):
        concentration_transient_published(eps, np.zeros_like(eps), n_steps=-1)
    with pytest.raises(ValueError, match=r"phi_shifted has shape \(3,\)"):
        reaction_current_published(np.zeros(3), 0.0)
    np.testing.assert_allclose(PARAMS.cell_centres()[[0, -1]], [0.5e-6, 99.5e-6])


def test_chunking_does_not_change_results() -> None:
    eps = _porosity(7, seed=9)
    j = np.random.default_rng(1).normal(size=eps.shape)
    whole = concentration_transient_published(eps, j, n_steps=50)
    parts = concentration_transient_published(eps, j, n_steps=50, chunk=3)
    np.testing.assert_array_equal(whole, parts)
