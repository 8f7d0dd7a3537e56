"""Generic vertex-centred finite volumes: order of convergence, conservation, Thomas solver."""

from __future__ import annotations

import numpy as np
import pytest

from scorepde.physics import (
    boundary_fluxes,
    control_volumes,
    face_fluxes,
    harmonic_face_mean,
    solve_diffusion_reaction,
    solve_diffusion_reaction_transient,
    solve_tridiagonal,
)

REFINEMENTS = (21, 41, 81, 161, 321)


# Manufactured solution on [0, 1] with variable coefficients:
#   u = cos(3x) + x^3 / 2 + x,  k = 2 + sin(3x),  r = 1 + x^2,  f = -(k u')' + r u.
def exact_u(x: np.ndarray) -> np.ndarray:
    return np.cos(3 * x) + 0.5 * x**3 + x


def exact_du(x: np.ndarray) -> np.ndarray:
    return -3 * np.sin(3 * x) + 1.5 * x**2 + 1


def exact_d2u(x: np.ndarray) -> np.ndarray:
    return -9 * np.cos(3 * x) + 3 * x


def conductivity(x: np.ndarray) -> np.ndarray:
    return 2 + np.sin(3 * x)


def conductivity_derivative(x: np.ndarray) -> np.ndarray:
    return 3 * np.cos(3 * x)


def manufactured_source(x: np.ndarray, reaction: np.ndarray) -> np.ndarray:
    diffusion = conductivity_derivative(x) * exact_du(x) + conductivity(x) * exact_d2u(x)
    return -diffusion + reaction * exact_u(x)


def observed_orders(right_kind: str) -> np.ndarray:
    errors = []
    for n_points in REFINEMENTS:
        x = np.linspace(0.0, 1.0, n_points)
        reaction = 1 + x**2 if right_kind == "flux" else np.zeros_like(x)
        left_flux = -conductivity(x[0]) * exact_du(x[0])  # = -2, flux into the domain
        right = -conductivity(x[-1]) * exact_du(x[-1]) if right_kind == "flux" else exact_u(1.0)
        u = solve_diffusion_reaction(
            x,
            conductivity(x),
            reaction,
            manufactured_source(x, reaction),
            left_flux,
            right,
            right_kind,
        )
        errors.append(np.max(np.abs(u[0] - exact_u(x))))
    errors = np.array(errors)
    return np.log2(errors[:-1] / errors[1:])


@pytest.mark.parametrize("right_kind", ["flux", "dirichlet"])
def test_order_of_convergence_is_two(right_kind: str) -> None:
    """Potential-like (flux/flux, r > 0) and concentration-like (flux/Dirichlet, r = 0)."""
    orders = observed_orders(right_kind)
    print(f"\nobserved orders ({right_kind} at x = L), N = {REFINEMENTS}: {np.round(orders, 4)}")
    assert np.all((orders >= 1.8) & (orders <= 2.2)), orders


def test_discrete_conservation_and_boundary_fluxes() -> None:
    """The flux differences telescope: fluxes at the ends balance the sources exactly."""
    rng = np.random.default_rng(5)
    x = np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0, 1, 30)]))  # non-uniform grid
    k = rng.uniform(0.5, 2.0, (4, 32))
    r = rng.uniform(0.0, 1.0, (4, 32))
    f = rng.normal(size=(4, 32))
    left = rng.normal(size=4)
    right = rng.normal(size=4)
    u = solve_diffusion_reaction(x, k, r, f, left, right, "flux")
    q_left, q_right = boundary_fluxes(x, k, r, f, u)
    np.testing.assert_allclose(q_left, left, rtol=0, atol=1e-12)
    np.testing.assert_allclose(q_right, right, rtol=0, atol=1e-12)
    volumes = control_volumes(x)
    assert volumes.sum() == pytest.approx(1.0, rel=1e-15)
    net_source = ((f - r * u) * volumes).sum(axis=1)
    np.testing.assert_allclose(right - left, net_source, rtol=0, atol=1e-12)
    # Dirichlet: the value is exact and the flux through x = L closes the balance.
    u = solve_diffusion_reaction(x, k, r, f, left, right, "dirichlet")
    np.testing.assert_array_equal(u[:, -1], right)
    q_left, q_right = boundary_fluxes(x, k, r, f, u)
    np.testing.assert_allclose(q_left, left, rtol=0, atol=1e-12)
    interior = face_fluxes(x, k, u)[:, -1]
    partial = ((f - r * u) * volumes)[:, :-1].sum(axis=1) + left
    np.testing.assert_allclose(interior, partial, rtol=0, atol=1e-12)


def test_solve_tridiagonal_matches_dense_solver() -> None:
    rng = np.random.default_rng(0)
    batch, n_points = 3, 12
    lower = -rng.uniform(0.1, 1.0, (batch, n_points))
    upper = -rng.uniform(0.1, 1.0, (batch, n_points))
    excess = rng.uniform(0.0, 0.5, (batch, n_points))
    lower[:, 0] = 0.0
    upper[:, -1] = 0.0
    diag = excess - lower - upper
    rhs = rng.normal(size=(batch, n_points))
    plain = solve_tridiagonal(lower, diag, upper, rhs)
    accurate = solve_tridiagonal(lower, diag, upper, rhs, row_excess=excess)
    for b in range(batch):
        dense = np.diag(diag[b]) + np.diag(lower[b, 1:], -1) + np.diag(upper[b, :-1], 1)
        expected = np.linalg.solve(dense, rhs[b])
        np.testing.assert_allclose(plain[b], expected, rtol=1e-12)
        np.testing.assert_allclose(accurate[b], expected, rtol=1e-12)
    single = solve_tridiagonal(lower[0], diag[0], upper[0], rhs[0])
    assert single.shape == (n_points,)
    np.testing.assert_allclose(single, plain[0], rtol=1e-15)
    with pytest.raises(ValueError, match="upper has shape"):
        solve_tridiagonal(lower, diag, upper[:, :-1], rhs)
    with pytest.raises(ValueError, match="M-matrix"):
        solve_tridiagonal(-lower, diag, upper, rhs, row_excess=excess)


def test_harmonic_face_mean() -> None:
    values = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 8.0]])
    np.testing.assert_allclose(harmonic_face_mean(values), [[1.5, 3.0], [2.0, 3.2]])
    with pytest.raises(ValueError, match="> 0"):
        harmonic_face_mean(np.array([1.0, 0.0]))


def test_argument_errors() -> None:
    x = np.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="right_kind = 'neumann'"):
        solve_diffusion_reaction(x, 1.0, 1.0, 0.0, 0.0, 0.0, "neumann")
    with pytest.raises(ValueError, match="defined only up to a constant"):
        solve_diffusion_reaction(x, 1.0, 0.0, 0.0, 0.0, 0.0, "flux")
    with pytest.raises(ValueError, match="conductivity has shape"):
        solve_diffusion_reaction(x, np.ones(4), 1.0, 0.0, 0.0, 0.0, "flux")
    with pytest.raises(ValueError, match="reaction must be >= 0"):
        solve_diffusion_reaction(x, 1.0, -1.0, 0.0, 0.0, 0.0, "flux")
    with pytest.raises(ValueError, match="right has shape"):
        solve_diffusion_reaction(x, np.ones((2, 5)), 1.0, 0.0, 0.0, np.zeros(3), "flux")
    with pytest.raises(ValueError, match="increasing"):
        solve_diffusion_reaction(x[::-1], 1.0, 1.0, 0.0, 0.0, 0.0, "flux")


def test_transient_reaches_steady_state() -> None:
    x = np.linspace(0.0, 1.0, 21)
    k = conductivity(x)
    f = manufactured_source(x, np.zeros_like(x))
    times = np.concatenate([[0.0], np.geomspace(1e-4, 40.0, 80)])
    u = solve_diffusion_reaction_transient(
        x, 1.0 + x, k, 0.0, f, 1.0, 0.5, "dirichlet", times, u_initial=0.0
    )
    assert u.shape == (1, 81, 21)
    np.testing.assert_array_equal(u[0, 0], 0.0)
    steady = solve_diffusion_reaction(x, k, 0.0, f, 1.0, 0.5, "dirichlet")
    np.testing.assert_allclose(u[0, -1], steady[0], rtol=1e-10, atol=1e-10)


def test_transient_is_second_order_in_time() -> None:
    """BDF2: halving the step divides the error at t = 0.2 by about four."""
    x = np.linspace(0.0, 1.0, 21)
    k = conductivity(x)
    f = manufactured_source(x, 1 + x**2)
    times = np.array([0.05, 0.1, 0.2])
    args = (x, 1.0, k, 1 + x**2, f, 0.3, -0.2, "flux", times)
    reference = solve_diffusion_reaction_transient(*args, u_initial=np.cos(x), substeps=512)
    errors = [
        np.max(
            np.abs(
                solve_diffusion_reaction_transient(*args, u_initial=np.cos(x), substeps=m)[0, -1]
                - reference[0, -1]
            )
        )
        for m in (8, 16, 32)
    ]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 3.4) & (ratios < 4.6)), ratios
