"""2-D Darcy flow (cell-centred finite volumes): exact solutions, order of convergence,
conservation, residual, symmetry, batching and input checks."""

from __future__ import annotations

import numpy as np
import pytest

import scorepde.physics.darcy as darcy_module
from scorepde.physics import (
    KroneckerGaussianProcessSampler,
    darcy_face_fluxes,
    darcy_residual,
    effective_permeability,
    inflow,
    outflow,
    solve_darcy,
)


def cell_centres(n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) / n


def random_log_k(batch: int, ny: int, nx: int, sigma: float, length: float, seed: int):
    sampler = KroneckerGaussianProcessSampler((cell_centres(ny), cell_centres(nx)))
    return sigma * sampler.sample(length, batch, np.random.default_rng(seed))


def test_unit_permeability_gives_linear_pressure_and_unit_k_eff() -> None:
    """k = 1: u = 1 - x at the centres and k_eff = 1, both to round-off."""
    for ny, nx in [(32, 32), (8, 20), (20, 8)]:
        log_k = np.zeros((2, ny, nx))
        u = solve_darcy(log_k)
        expected = np.broadcast_to(1.0 - cell_centres(nx), (2, ny, nx))
        np.testing.assert_allclose(u, expected, rtol=0, atol=1e-13)
        np.testing.assert_allclose(effective_permeability(log_k, u), 1.0, rtol=1e-13)


def test_layered_media_give_arithmetic_and_harmonic_means() -> None:
    """Layers along the flow (k = k(y)): k_eff = mean(k) exactly; layers across the flow
    (k = k(x)): k_eff = 1 / mean(1 / k) exactly (series of half-cell resistances)."""
    rng = np.random.default_rng(7)
    profile = rng.normal(0.0, 1.5, 24)
    along = np.broadcast_to(profile[None, :, None], (1, 24, 16)).copy()
    across = np.broadcast_to(profile[None, None, :], (1, 16, 24)).copy()
    k_along = effective_permeability(along, solve_darcy(along))
    k_across = effective_permeability(across, solve_darcy(across))
    np.testing.assert_allclose(k_along, np.mean(np.exp(profile)), rtol=1e-12)
    np.testing.assert_allclose(k_across, 1.0 / np.mean(np.exp(-profile)), rtol=1e-12)
    constant = np.full((1, 10, 10), 0.7)
    np.testing.assert_allclose(
        effective_permeability(constant, solve_darcy(constant)), np.exp(0.7), rtol=1e-13
    )


def manufactured(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """u = e^x cos(pi y) + x^2 (du/dy = 0 on y = 0, 1), a = log k = 0.5 sin(2 pi x) +
    0.3 x cos(pi y); f = -div(k grad u) = -k (a_x u_x + a_y u_y + u_xx + u_yy)."""
    u = np.exp(x) * np.cos(np.pi * y) + x**2
    u_x = np.exp(x) * np.cos(np.pi * y) + 2.0 * x
    u_xx = np.exp(x) * np.cos(np.pi * y) + 2.0
    u_y = -np.pi * np.exp(x) * np.sin(np.pi * y)
    u_yy = -(np.pi**2) * np.exp(x) * np.cos(np.pi * y)
    log_k = 0.5 * np.sin(2.0 * np.pi * x) + 0.3 * x * np.cos(np.pi * y)
    a_x = np.pi * np.cos(2.0 * np.pi * x) + 0.3 * np.cos(np.pi * y)
    a_y = -0.3 * np.pi * x * np.sin(np.pi * y)
    source = -np.exp(log_k) * (a_x * u_x + a_y * u_y + u_xx + u_yy)
    return u, log_k, source


def manufactured_errors(n: int) -> tuple[float, float]:
    """Discrete L2 and max-norm errors of the solver on the manufactured solution, N x N."""
    y, x = np.meshgrid(cell_centres(n), cell_centres(n), indexing="ij")
    exact, log_k, source = manufactured(x, y)
    left = manufactured(np.zeros(n), cell_centres(n))[0]
    right = manufactured(np.ones(n), cell_centres(n))[0]
    u = solve_darcy(log_k[None], left=left, right=right, source=source)[0]
    error = u - exact
    return float(np.sqrt(np.mean(error**2))), float(np.max(np.abs(error)))


def test_second_order_convergence_on_a_manufactured_solution() -> None:
    """Observed order log2(e_N / e_2N) >= 1.9 in the discrete L2 norm for every refinement
    N = 8 -> 16 -> 32 -> 64 -> 128 (variable k, y-dependent boundary values). The max norm
    is pre-asymptotic on the coarsest pair (measured 1.84) and tends to 2: >= 1.8 everywhere,
    >= 1.9 from N = 16 on."""
    sizes = [8, 16, 32, 64, 128]
    errors = np.array([manufactured_errors(n) for n in sizes])
    orders = np.log2(errors[:-1] / errors[1:])
    print("\n| N | L2 error | order | max error | order |")
    print("|---:|---:|---:|---:|---:|")
    for index, n in enumerate(sizes):
        order = orders[index - 1] if index else (np.nan, np.nan)
        print(
            f"| {n} | {errors[index, 0]:.3e} | {order[0]:.3f} | {errors[index, 1]:.3e} | "
            f"{order[1]:.3f} |"
        )
    assert np.all(orders[:, 0] >= 1.9), orders
    assert np.all(orders[:, 1] >= 1.8) and np.all(orders[1:, 1] >= 1.9), orders


def test_discrete_conservation_for_rough_log_k() -> None:
    """Inflow through x = 0 equals outflow through x = 1 to round-off (sigma = 1.5, l = 0.1:
    k varies over ~4 decades)."""
    log_k = random_log_k(8, 32, 32, 1.5, 0.1, seed=11)
    u = solve_darcy(log_k)
    into, out = inflow(log_k, u), outflow(log_k, u)
    assert np.all(out > 0)
    np.testing.assert_allclose(into, out, rtol=1e-11)
    # The flux through every vertical cut is the same (no flux through y = 0, 1).
    qx, qy = darcy_face_fluxes(log_k, u)
    np.testing.assert_allclose(qx.sum(axis=1), out[:, None] * np.ones(33), rtol=1e-11)
    assert np.all(qy[:, 0] == 0) and np.all(qy[:, -1] == 0)


def test_residual_vanishes_for_the_solution_and_not_for_a_perturbation() -> None:
    """Residual of the solver's output is round-off (relative to the total flux k_eff);
    perturbing u by 1e-3 in one cell gives a residual of ~1e-3 * (sum of its transmissibilities)."""
    log_k = random_log_k(4, 32, 32, 1.5, 0.2, seed=3)
    u = solve_darcy(log_k)
    scale = effective_permeability(log_k, u)
    residual = darcy_residual(log_k, u)
    assert residual.shape == (4, 32, 32)
    assert np.max(np.abs(residual) / scale[:, None, None]) < 1e-11
    perturbed = u.copy()
    perturbed[:, 16, 16] += 1e-3
    bad = np.abs(darcy_residual(log_k, perturbed))
    assert np.all(bad[:, 16, 16] > 1e-3 * np.exp(log_k[:, 16, 16]) * 1e-2)
    assert np.all(bad.reshape(4, -1).max(axis=1) > 1e6 * np.abs(residual).reshape(4, -1).max(1))
    # With a source, the residual is net outflow minus the source integral.
    source = np.ones((32, 32))
    u_source = solve_darcy(log_k, source=source)
    assert np.max(np.abs(darcy_residual(log_k, u_source, source=source))) < 1e-11
    assert np.max(np.abs(darcy_residual(log_k, u_source))) == pytest.approx(1.0 / 32**2)


def test_mirror_symmetries() -> None:
    """Mirroring log k in y mirrors u; mirroring in x and swapping the boundary values gives
    1 - mirrored u."""
    log_k = random_log_k(3, 16, 24, 1.0, 0.15, seed=5)
    u = solve_darcy(log_k)
    np.testing.assert_allclose(solve_darcy(log_k[:, ::-1, :]), u[:, ::-1, :], atol=1e-12)
    swapped = solve_darcy(log_k[:, :, ::-1], left=0.0, right=1.0)
    np.testing.assert_allclose(swapped, u[:, :, ::-1], atol=1e-12)


def test_transposed_numbering_and_batching_do_not_change_the_result(monkeypatch) -> None:
    """Wide grids (Ny < Nx) are numbered along y first; chunks of the batch are independent."""
    log_k = random_log_k(5, 6, 40, 1.5, 0.1, seed=9)
    u = solve_darcy(log_k)
    assert np.max(np.abs(darcy_residual(log_k, u))) < 1e-12
    monkeypatch.setattr(darcy_module, "_CHUNK_BYTES", 1)  # one field per chunk
    one_by_one = np.concatenate([solve_darcy(log_k[i : i + 1]) for i in range(5)])
    np.testing.assert_array_equal(solve_darcy(log_k), one_by_one)
    np.testing.assert_array_equal(u, one_by_one)


def test_boundary_values_per_row_and_per_field() -> None:
    log_k = random_log_k(2, 8, 8, 1.0, 0.2, seed=1)
    left = np.array([[1.0] * 8, [2.0] * 8])
    u = solve_darcy(log_k, left=left, right=0.5)
    np.testing.assert_allclose(u[1], solve_darcy(log_k[1:], left=2.0, right=0.5)[0], atol=1e-13)
    assert np.max(np.abs(darcy_residual(log_k, u, left=left, right=0.5))) < 1e-12


def test_bad_inputs_are_refused_with_their_names() -> None:
    with pytest.raises(ValueError, match=r"log_k has shape \(4, 4\)"):
        solve_darcy(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="log_k contains non-finite"):
        solve_darcy(np.full((1, 4, 4), np.inf))
    with pytest.raises(ValueError, match=r"left has shape \(3,\)"):
        solve_darcy(np.zeros((1, 4, 4)), left=np.ones(3))
    with pytest.raises(ValueError, match=r"source has shape \(3, 3\)"):
        solve_darcy(np.zeros((1, 4, 4)), source=np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"u has shape \(1, 4, 5\)"):
        darcy_residual(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)))
    with pytest.raises(ValueError, match="left != right"):
        effective_permeability(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), left=1.0, right=1.0)


def test_mean_flux_and_outflow_estimators_of_k_eff_agree_for_solver_pairs() -> None:
    """Conservation makes the flux equal through every cut, so the volume-averaged flux equals
    the outflow for the solver's pairs; for a perturbed (non-conservative) pair they differ."""
    from scorepde.physics.darcy import effective_permeability, solve_darcy

    rng = np.random.default_rng(7)
    log_k = 1.2 * rng.normal(size=(5, 12, 12))
    u = solve_darcy(log_k)
    outflow_k = effective_permeability(log_k, u)
    mean_k = effective_permeability(log_k, u, estimator="mean_flux")
    np.testing.assert_allclose(mean_k, outflow_k, rtol=1e-10)
    perturbed = u + 0.01 * rng.normal(size=u.shape)
    assert not np.allclose(
        effective_permeability(log_k, perturbed, estimator="mean_flux"),
        effective_permeability(log_k, perturbed),
        rtol=1e-3,
    )
    with pytest.raises(ValueError, match="estimator = 'median'"):
        effective_permeability(log_k, u, estimator="median")
