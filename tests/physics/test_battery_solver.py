"""Battery solver: boundary conditions, integral balances, U0 invariance, scipy cross-check."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from scorepde.physics import (
    BatteryParameters,
    GaussianProcessSampler,
    boundary_fluxes,
    control_volumes,
    face_fluxes,
    porosity_from_latent,
    reference_solve_battery_scipy,
    solve_battery,
    solve_concentration,
    solve_concentration_transient,
    solve_potential,
)

PARAMS = BatteryParameters()
GRID = PARAMS.grid()
VOLUMES = control_volumes(GRID)
BATCH = 8


@pytest.fixture(scope="module")
def porosity() -> np.ndarray:
    """(BATCH, N) porosity fields over the range of correlation lengths, fixed seed."""
    rng = np.random.default_rng(2026)
    sampler = GaussianProcessSampler(GRID)
    lengths = np.geomspace(0.05, 0.5, BATCH) * PARAMS.length
    latent = np.concatenate([sampler.sample(length, 1, rng) for length in lengths])
    return porosity_from_latent(latent, PARAMS.porosity_min, PARAMS.porosity_max)


@pytest.fixture(scope="module")
def conditions() -> tuple[np.ndarray, np.ndarray]:
    """(U0 in V, F_right in A/m^2), each (BATCH,), over the documented ranges."""
    rng = np.random.default_rng(11)
    return rng.uniform(-0.5, 0.5, BATCH), rng.uniform(0.0, 50.0, BATCH)


def potential_coefficients(porosity: np.ndarray, U0: np.ndarray):
    reaction = PARAMS.surface_area_density(porosity) * PARAMS.reaction_rate
    source = reaction * (PARAMS.solid_potential(GRID) - U0[:, None])
    return PARAMS.effective_conductivity(porosity), reaction, source


def concentration_source(porosity: np.ndarray, current: np.ndarray) -> np.ndarray:
    factor = (1 - PARAMS.transference_number) / PARAMS.faraday
    return factor * PARAMS.surface_area_density(porosity) * current


def test_shapes_and_single_field(porosity, conditions) -> None:
    U0, F_right = conditions
    solution = solve_battery(porosity, U0, F_right, PARAMS)
    for field in (solution.c, solution.phi, solution.phi_unshifted, solution.reaction_current):
        assert field.shape == (BATCH, 100)
        assert np.all(np.isfinite(field))
    assert solution.as_channels().shape == (BATCH, 2, 100)
    single = solve_battery(porosity[3], U0[3], F_right[3], PARAMS)
    assert single.c.shape == (1, 100)
    np.testing.assert_allclose(single.c[0], solution.c[3], rtol=1e-14)
    coarse = replace(PARAMS, n_points=50)
    assert solve_battery(np.full((2, 50), 0.3), 0.0, 25.0, coarse).phi.shape == (2, 50)
    with pytest.raises(ValueError, match=r"expected \(100,\)"):
        reference_solve_battery_scipy(porosity, 0.0, 25.0, PARAMS)


def test_boundary_conditions_hold(porosity, conditions) -> None:
    U0, F_right = conditions
    solution = solve_battery(porosity, U0, F_right, PARAMS)
    # phi(0) = 0 after the shift, c(L) = c_right: exactly.
    np.testing.assert_array_equal(solution.phi[:, 0], 0.0)
    np.testing.assert_array_equal(solution.c[:, -1], PARAMS.c_right)
    # Potential: zero flux through x = 0, -k_eff phi'(L) = F_right (discrete fluxes).
    k_eff, reaction, source = potential_coefficients(porosity, U0)
    q_left, q_right = boundary_fluxes(GRID, k_eff, reaction, source, solution.phi_unshifted)
    np.testing.assert_allclose(q_left, 0.0, rtol=0, atol=1e-9 * 50.0)
    np.testing.assert_allclose(q_right, F_right, rtol=1e-9, atol=1e-9)
    # Concentration: zero flux through x = 0 (mol/(m^2 s)).
    d_eff = PARAMS.effective_diffusivity(porosity)
    c_source = concentration_source(porosity, solution.reaction_current)
    q_left, _ = boundary_fluxes(GRID, d_eff, 0.0, c_source, solution.c)
    flux_scale = np.abs(c_source * VOLUMES).sum(axis=1)
    np.testing.assert_allclose(q_left / flux_scale, 0.0, rtol=0, atol=1e-10)


def test_integral_balance_of_current_and_salt(porosity, conditions) -> None:
    U0, F_right = conditions
    solution = solve_battery(porosity, U0, F_right, PARAMS)
    # Total reaction current (trapezoidal = half-cell quadrature) equals the current at x = L.
    a_s = PARAMS.surface_area_density(porosity)
    total_current = (a_s * solution.reaction_current * VOLUMES).sum(axis=1)
    np.testing.assert_allclose(total_current, F_right, rtol=1e-10, atol=1e-12)
    # Salt: the total source equals the diffusive flux out at x = L, from the interior face.
    d_eff = PARAMS.effective_diffusivity(porosity)
    c_source = concentration_source(porosity, solution.reaction_current)
    total_source = (c_source * VOLUMES).sum(axis=1)
    last_face = face_fluxes(GRID, d_eff, solution.c)[:, -1]
    flux_out = last_face + VOLUMES[-1] * c_source[:, -1]
    np.testing.assert_allclose(flux_out, total_source, rtol=1e-10)
    _, q_right = boundary_fluxes(GRID, d_eff, 0.0, c_source, solution.c)
    np.testing.assert_allclose(q_right, total_source, rtol=1e-10)


def test_shifted_fields_do_not_depend_on_U0(porosity) -> None:
    """phi -> phi - dU solves the potential problem for U0 + dU: j, c and shifted phi unchanged."""
    reference = solve_battery(porosity, 0.0, 25.0, PARAMS)
    for shift in (-0.5, 0.2, 0.5):
        shifted = solve_battery(porosity, shift, 25.0, PARAMS)
        np.testing.assert_allclose(
            shifted.phi_unshifted, reference.phi_unshifted - shift, rtol=0, atol=1e-13
        )
        np.testing.assert_allclose(shifted.c, reference.c, rtol=1e-13)
        phi_scale = np.max(np.abs(reference.phi))
        np.testing.assert_allclose(shifted.phi, reference.phi, rtol=0, atol=1e-10 * phi_scale)
        np.testing.assert_allclose(shifted.reaction_current, reference.reaction_current, rtol=1e-13)


def test_agrees_with_scipy_reference(porosity, conditions) -> None:
    """Same discretisation, independent assembly and sparse LU.

    Tolerance 1e-9: the potential matrix has condition number ~ k_eff / (a_s k_rn h^2) ~ 1e7,
    and spsolve (which works from the rounded diagonal) loses about that factor; measured
    differences are <= ~2e-10. The batched solver's elimination is cancellation-free.
    """
    U0, F_right = conditions
    solution = solve_battery(porosity, U0, F_right, PARAMS)
    for b in range(BATCH):
        reference = reference_solve_battery_scipy(porosity[b], U0[b], F_right[b], PARAMS)
        for name in ("c", "phi", "phi_unshifted", "reaction_current"):
            ours = getattr(solution, name)[b]
            theirs = getattr(reference, name)[0]
            relative = np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs))
            assert relative < 1e-9, (name, b, relative)


def test_two_steps_compose_to_solve_battery(porosity, conditions) -> None:
    U0, F_right = conditions
    phi = solve_potential(porosity, U0, F_right, PARAMS)
    solution = solve_battery(porosity, U0, F_right, PARAMS)
    np.testing.assert_array_equal(phi, solution.phi_unshifted)
    c = solve_concentration(porosity, solution.reaction_current, PARAMS)
    np.testing.assert_array_equal(c, solution.c)


def test_physical_scales(porosity) -> None:
    """Weak reaction: phi nearly uniform before the shift; the salt accumulates at x = 0."""
    solution = solve_battery(porosity, 0.0, 25.0, PARAMS)
    spread = np.ptp(solution.phi_unshifted, axis=1)
    level = np.abs(solution.phi_unshifted.mean(axis=1))
    assert np.all(spread < 1e-2 * level)
    assert np.all(solution.c[:, 0] > PARAMS.c_right)
    assert np.all(np.diff(solution.c, axis=1) < 0)
    # No net current: the reaction still redistributes salt (phi_s varies along x), but the
    # total source vanishes, so no salt leaves through x = L.
    no_current = solve_battery(porosity, 0.3, 0.0, PARAMS)
    source = concentration_source(porosity, no_current.reaction_current)
    scale = np.abs(source * VOLUMES).sum(axis=1)
    np.testing.assert_allclose((source * VOLUMES).sum(axis=1) / scale, 0.0, atol=1e-10)


def test_transient_converges_to_steady(porosity) -> None:
    """Integrate to 4e4 s, about 20 diffusion times L^2 / D_eff ~ 2000 s."""
    solution = solve_battery(porosity[:3], 0.0, 25.0, PARAMS)
    times = np.concatenate([[0.0], np.geomspace(1e-2, 4e4, 150)])
    c = solve_concentration_transient(porosity[:3], solution.reaction_current, times, None, PARAMS)
    assert c.shape == (3, 151, 100)
    np.testing.assert_array_equal(c[:, 0], PARAMS.c_right)
    np.testing.assert_array_equal(c[:, 1:, -1], PARAMS.c_right)
    change = np.max(np.abs(solution.c - PARAMS.c_right))
    assert np.max(np.abs(c[:, -1] - solution.c)) < 1e-9 * change

    # The slowest mode decays on tau = 4 L^2 eps / (pi^2 D_eff) ~ 300 s: at ~100 s about a
    # third of the change at x = 0 has happened, at ~1000 s nearly all of it.
    def progress(time: float) -> np.ndarray:
        index = np.searchsorted(times, time)
        return (c[:, index, 0] - PARAMS.c_right) / (solution.c[:, 0] - PARAMS.c_right)

    assert np.all((progress(100.0) > 0.2) & (progress(100.0) < 0.5))
    assert np.all(progress(1000.0) > 0.95)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda p: p.at_least_one(1.0), "strictly inside"),
        (lambda p: p.at_least_one(0.0), "strictly inside"),
        (lambda p: p.at_least_one(np.nan), "strictly inside"),
        (lambda p: p.values[:, :50], r"expected \(B, 100\)"),
        (lambda p: p.values[None], r"expected \(B, 100\)"),
    ],
)
def test_bad_porosity_raises(porosity, bad, message) -> None:
    class Holder:
        values = porosity

        @staticmethod
        def at_least_one(value: float) -> np.ndarray:
            copy = porosity.copy()
            copy[1, 7] = value
            return copy

    with pytest.raises(ValueError, match=message):
        solve_battery(bad(Holder), 0.0, 25.0, PARAMS)


def test_bad_conditions_raise(porosity) -> None:
    with pytest.raises(ValueError, match="U0 has shape"):
        solve_battery(porosity, np.zeros(3), 25.0, PARAMS)
    with pytest.raises(ValueError, match="F_right"):
        solve_battery(porosity, 0.0, np.inf, PARAMS)
    with pytest.raises(ValueError, match="F_right has shape"):
        solve_battery(porosity, 0.0, np.zeros((BATCH, 1)), PARAMS)
    with pytest.raises(TypeError, match="BatteryParameters"):
        solve_battery(porosity, 0.0, 25.0, {"n_points": 100})  # type: ignore[arg-type]
