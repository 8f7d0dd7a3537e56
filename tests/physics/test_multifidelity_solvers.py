"""The three multi-fidelity benchmark solvers (Poisson 2-D, Heat 1-D, Burgers 1-D): exact
solutions, orders of convergence, linearity and affinity in the inputs, boundary conditions,
batch independence and input checks."""

from __future__ import annotations

import numpy as np
import pytest

from scorepde.physics.burgers1d import (
    burgers_centres,
    burgers_extended,
    burgers_initial_condition,
    burgers_viscosity,
    solve_burgers_1d,
    solve_burgers_benchmark,
)
from scorepde.physics.heat1d import (
    heat_extended,
    heat_nodes,
    heat_times,
    solve_heat_1d,
    solve_heat_benchmark,
)
from scorepde.physics.poisson2d import (
    poisson_central_mask,
    poisson_extended,
    poisson_nodes,
    solve_laplace_2d,
    solve_poisson_benchmark,
)


def observed_orders(errors: list[float]) -> np.ndarray:
    """log2 of successive error ratios (the resolution doubles each time)."""
    values = np.asarray(errors)
    return np.log2(values[:-1] / values[1:])


# ----------------------------------------------------------------------------- Poisson
def full_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(0.0, 1.0, n + 2)
    y, x = np.meshgrid(axis, axis, indexing="ij")
    return x, y


def test_laplace_reproduces_cubic_harmonic_polynomials() -> None:
    """The 5-point stencil is exact for harmonic polynomials of degree <= 3 (its truncation
    error is a fourth derivative), with or without held interior nodes."""
    x, y = full_grid(11)
    exact = x**2 - y**2 + 0.5 * x * y + x**3 - 3.0 * x * y**2 + 0.2
    for held in (None, poisson_central_mask(11), poisson_central_mask(11).T[::-1]):
        u = solve_laplace_2d(exact, held)
        np.testing.assert_allclose(u, exact[1:-1, 1:-1], rtol=0, atol=1e-13)


def test_laplace_converges_at_second_order() -> None:
    """u = sinh(pi x) sin(pi y) / sinh(pi): max error falls fourfold per halving of h."""
    errors = []
    for n in (7, 15, 31):  # h = 1/8, 1/16, 1/32
        x, y = full_grid(n)
        exact = np.sinh(np.pi * x) * np.sin(np.pi * y) / np.sinh(np.pi)
        errors.append(np.abs(solve_laplace_2d(exact) - exact[1:-1, 1:-1]).max())
    orders = observed_orders(errors)
    assert np.all((orders > 1.9) & (orders < 2.1)), (errors, orders)


def test_poisson_is_linear_in_its_five_inputs() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 0.9, (2, 3, 5))
    for n in (8, 9):
        combined = solve_poisson_benchmark(0.3 * a - 1.7 * b, n)
        expected = 0.3 * solve_poisson_benchmark(a, n) - 1.7 * solve_poisson_benchmark(b, n)
        np.testing.assert_allclose(combined, expected, rtol=0, atol=1e-13)
        # five unit inputs span it: the solution is inputs @ basis
        basis = solve_poisson_benchmark(np.eye(5), n).reshape(5, -1)
        np.testing.assert_allclose(
            solve_poisson_benchmark(a, n).reshape(3, -1), a @ basis, rtol=0, atol=1e-13
        )


def test_poisson_boundary_centre_and_symmetry() -> None:
    """Equal data everywhere gives a constant; the held nodes carry u_c; swapping left and right
    mirrors the field in x; the values stay within the data (maximum principle)."""
    for n in (8, 9):
        np.testing.assert_allclose(solve_poisson_benchmark(np.full((1, 5), 0.4), n), 0.4)
        inputs = np.array([[0.1, 0.7, 0.3, 0.9, 0.5]])
        u = solve_poisson_benchmark(inputs, n)
        assert poisson_central_mask(n).sum() == (1 if n % 2 else 4)
        np.testing.assert_array_equal(u[0][poisson_central_mask(n)], 0.5)
        mirrored = solve_poisson_benchmark(inputs[:, [1, 0, 2, 3, 4]], n)
        np.testing.assert_allclose(mirrored, u[:, :, ::-1], rtol=0, atol=1e-14)
        assert 0.1 <= u.min() and u.max() <= 0.9
    (_, x), values = poisson_extended(u, inputs)
    np.testing.assert_allclose(x[1:-1], poisson_nodes(9))
    np.testing.assert_array_equal(values[0, 1:-1, 0], 0.1)  # x = 0: g_left
    np.testing.assert_array_equal(values[0, -1, 1:-1], 0.9)  # y = 1: g_top


def test_poisson_batch_matches_single_solves() -> None:
    inputs = np.random.default_rng(1).uniform(0.1, 0.9, (4, 5))
    batch = solve_poisson_benchmark(inputs, 16)
    for k in range(4):
        np.testing.assert_allclose(batch[k], solve_poisson_benchmark(inputs[k : k + 1], 16)[0])


def test_poisson_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="expected \\(B, 5\\)"):
        solve_poisson_benchmark(np.zeros((2, 4)), 8)
    with pytest.raises(ValueError, match="fidelity is 1"):
        solve_poisson_benchmark(np.zeros((2, 5)), 1)
    with pytest.raises(TypeError, match=r"fidelity is 8\.0"):
        solve_poisson_benchmark(np.zeros((2, 5)), 8.0)
    with pytest.raises(ValueError, match="non-finite"):
        solve_poisson_benchmark(np.full((1, 5), np.nan), 8)
    with pytest.raises(ValueError, match="held has shape"):
        solve_laplace_2d(np.zeros((6, 6)), np.zeros((3, 3), dtype=bool))
    with pytest.raises(ValueError, match="at least one must be free"):
        solve_laplace_2d(np.zeros((4, 4)), np.ones((2, 2), dtype=bool))


# ----------------------------------------------------------------------------- Heat
def test_heat_propagates_the_discrete_cosine_mode_exactly() -> None:
    """cos(pi x_i) is an eigenvector of the ghost-node Neumann operator with eigenvalue
    (2 - 2 cos(pi h)) / h^2; implicit Euler multiplies it by 1 / (1 + alpha dt lambda)."""
    n, steps, alpha = 17, 9, 0.07
    x = heat_nodes(n)
    u = solve_heat_1d(np.cos(np.pi * x), 0.0, 0.0, alpha, steps, 1.0)
    h, dt = 1.0 / (n - 1), 1.0 / steps
    factor = 1.0 / (1.0 + alpha * dt * (2.0 - 2.0 * np.cos(np.pi * h)) / h**2)
    expected = factor ** np.arange(1, steps + 1)[:, None] * np.cos(np.pi * x)
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-13)


def test_heat_converges_at_first_order_with_the_benchmark_step() -> None:
    """dt = 1/n (the benchmark's): error O(dt + h^2), so first order overall."""
    alpha = 0.1
    errors = []
    for n in (16, 32, 64, 128):
        x = heat_nodes(n)
        u = solve_heat_1d(np.cos(np.pi * x), 0.0, 0.0, alpha, n, 1.0)
        exact = np.exp(-alpha * np.pi**2 * heat_times(n))[:, None] * np.cos(np.pi * x)
        errors.append(np.abs(u - exact).max())
    orders = observed_orders(errors)
    assert np.all((orders > 0.9) & (orders < 1.1)), (errors, orders)


def test_heat_reproduces_a_quadratic_with_neumann_data() -> None:
    """u = c (x - x0)^2 / 2 + alpha c t: u_x(0) = -c x0, u_x(1) = c (1 - x0); the ghost-node
    scheme and implicit Euler are exact for it."""
    c, x0, alpha = 0.8, 0.3, 0.05
    x = heat_nodes(13)
    u = solve_heat_1d(c * (x - x0) ** 2 / 2, -c * x0, c * (1 - x0), alpha, 6, 1.0)
    t = np.arange(1, 7) / 6
    expected = c * (x - x0) ** 2 / 2 + alpha * c * t[:, None]
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-13)


def test_heat_conserves_energy_up_to_the_boundary_fluxes() -> None:
    """Trapezoid-weighted total changes by exactly dt alpha (u_x(1) - u_x(0)) per step."""
    inputs = np.array([[0.6, -0.3, 0.04], [0.1, -0.9, 0.09]])
    n = 16
    u = solve_heat_benchmark(inputs, n)
    (_, _), extended = heat_extended(u, inputs)
    weights = np.full(n, 1.0 / (n - 1))
    weights[[0, -1]] *= 0.5
    totals = extended @ weights  # (B, n + 1)
    expected = inputs[:, 2] * (inputs[:, 1] - inputs[:, 0]) / n
    changes = np.diff(totals, axis=1)
    np.testing.assert_allclose(
        changes, np.broadcast_to(expected[:, None], changes.shape), atol=1e-14
    )


def test_heat_is_affine_in_the_fluxes_not_in_alpha() -> None:
    n = 16
    corners = np.array([[0.0, 0.0, 0.05], [1.0, 0.0, 0.05], [0.0, 1.0, 0.05]])
    base, left, right = solve_heat_benchmark(corners, n)
    inputs = np.array([[0.37, -0.81, 0.05], [0.9, -0.05, 0.05]])
    predicted = base + inputs[:, :1, None] * (left - base) + inputs[:, 1:2, None] * (right - base)
    np.testing.assert_allclose(solve_heat_benchmark(inputs, n), predicted, rtol=0, atol=1e-13)
    # alpha enters nonlinearly: the midpoint in alpha differs from the mean of the ends
    ends = solve_heat_benchmark(np.array([[0.5, -0.5, 0.01], [0.5, -0.5, 0.1]]), n)
    middle = solve_heat_benchmark(np.array([[0.5, -0.5, 0.055]]), n)[0]
    assert np.abs(middle - ends.mean(axis=0)).max() > 1e-3


def test_heat_benchmark_grid_and_checks() -> None:
    u = solve_heat_benchmark(np.array([[0.5, -0.5, 0.05]]), 8)
    assert u.shape == (1, 8, 8)
    np.testing.assert_allclose(heat_times(8)[[0, -1]], [1 / 8, 1.0])
    np.testing.assert_allclose(heat_nodes(8)[[0, -1]], [0.0, 1.0])
    with pytest.raises(ValueError, match="alpha has values <= 0"):
        solve_heat_1d(np.zeros(5), 0.0, 0.0, -0.1, 3)
    with pytest.raises(ValueError, match="expected \\(B, 3\\)"):
        solve_heat_benchmark(np.zeros((2, 2)), 8)
    with pytest.raises(ValueError, match="flux_left has shape"):
        solve_heat_1d(np.zeros((2, 5)), np.zeros(3), 0.0, 0.1, 3)
    with pytest.raises(ValueError, match="n_steps is 0"):
        solve_heat_1d(np.zeros(5), 0.0, 0.0, 0.1, 0)


# ----------------------------------------------------------------------------- Burgers
def restrict(fine: np.ndarray, n: int) -> np.ndarray:
    """Cell averages of a finer cell-centred grid on ``n`` cells (exact for cell averages)."""
    return fine.reshape(*fine.shape[:-1], n, fine.shape[-1] // n).mean(axis=-1)


def test_burgers_self_converges_at_second_order_for_a_smooth_case() -> None:
    """nu = 1/60 (X = 0.1): the L2 distance to a 256-cell solution falls about fourfold per
    halving of h (the reference's own error biases the last ratio by a few per cent)."""
    nu = burgers_viscosity(np.array([[0.1]]))
    times = np.array([0.25, 0.5])
    reference = solve_burgers_1d(burgers_initial_condition(burgers_centres(256)), nu, times)
    errors = []
    for n in (16, 32, 64):
        u = solve_burgers_1d(burgers_initial_condition(burgers_centres(n)), nu, times)
        errors.append(np.sqrt(np.mean((u - restrict(reference, n)) ** 2)))
    orders = observed_orders(errors)
    assert np.all(orders > 1.8), (errors, orders)


def test_burgers_time_error_is_far_below_the_spatial_error() -> None:
    """At fidelity 32, the benchmark's step against a step ten times smaller (time error) and
    the same solution against a 128-cell one (spatial error), for a smooth and a steep case."""
    for x_input in (0.05, 0.9):
        inputs = np.array([[x_input]])
        u = solve_burgers_benchmark(inputs, 32)
        finer_in_time = solve_burgers_benchmark(inputs, 32, courant=0.05)
        time_error = np.sqrt(np.mean((u - finer_in_time) ** 2))
        fine = solve_burgers_1d(
            burgers_initial_condition(burgers_centres(128)),
            burgers_viscosity(inputs),
            np.array([0.75, 1.5]),
        )
        space_error = np.sqrt(np.mean((u[:, [7, 15]] - restrict(fine, 32)) ** 2))
        assert time_error < 1e-2 * space_error, (x_input, time_error, space_error)


def test_burgers_maximum_principle_walls_and_batch_independence() -> None:
    inputs = np.array([[0.001], [0.3], [0.999]])
    u = solve_burgers_benchmark(inputs, 16)
    peak = burgers_initial_condition(np.linspace(0, 1, 2001)).max()
    assert u.min() >= 0.0 and u.max() <= peak
    assert np.all(np.diff(u.max(axis=2), axis=1) <= 1e-12)  # max |u| never grows
    np.testing.assert_array_equal(solve_burgers_benchmark(inputs[1:2], 16), u[1:2])
    (t, x), values = burgers_extended(u, inputs)
    assert t[0] == 0.0 and t[-1] == 3.0 and x[0] == 0.0 and x[-1] == 1.0
    np.testing.assert_array_equal(values[:, :, [0, -1]], 0.0)
    np.testing.assert_allclose(
        values[:, 0, 1:-1], np.broadcast_to(burgers_initial_condition(burgers_centres(16)), (3, 16))
    )


def test_burgers_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="expected \\(B, 1\\)"):
        solve_burgers_benchmark(np.zeros((2, 2)), 16)
    with pytest.raises(ValueError, match="fidelity is 2"):
        solve_burgers_benchmark(np.zeros((2, 1)), 2)
    with pytest.raises(ValueError, match="output_times"):
        solve_burgers_1d(np.zeros(8), 0.1, np.array([0.5, 0.2]))
    with pytest.raises(ValueError, match="courant"):
        solve_burgers_1d(np.zeros(8), 0.1, np.array([0.5]), courant=2.0)
    with pytest.raises(ValueError, match="viscosity"):
        solve_burgers_1d(np.zeros(8), -0.1, np.array([0.5]))
