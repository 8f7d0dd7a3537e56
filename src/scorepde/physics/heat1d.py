"""The 1-D heat equation with Neumann data, implicit Euler: the multi-fidelity "Heat" benchmark.

The benchmark of Li et al., "Infinite-fidelity coregionalization" (NeurIPS 2022), as the
multi-fidelity issue defines it: ``u_t = alpha u_xx`` on ``x in [0, 1]``, ``t in [0, 1]``,
``u_x(0, t) = flux_left``, ``u_x(1, t) = flux_right`` (the "fluxes" of the benchmark are the
boundary derivatives, as in the reference code), ``u(x, 0) = 1`` on ``[0.25, 0.75]`` and ``0``
elsewhere. Inputs ``(flux_left, flux_right, alpha)`` in ``[0, 1] x [-1, 0] x [0.01, 0.1]``.
Dimensionless throughout.

Discretisation (vertex-centred finite differences, as the reference): ``n`` nodes
``x_i = i / (n - 1)`` including both ends; the Neumann data enter through a ghost node,
``u_{-1} = u_1 - 2 dx flux_left`` and ``u_n = u_{n-2} + 2 dx flux_right``; implicit Euler in
time. Each step solves one tridiagonal system per sample (batched Thomas algorithm). The
scheme is first order in time and second order in space; it reproduces
``u = c x^2 / 2 + alpha c t`` (quadratic in x, linear in t) to round-off and propagates the
discrete cosine modes exactly (tests/physics/test_multifidelity_solvers.py).

Benchmark output at fidelity ``n`` (a ``(n, n)`` array indexed ``[time, space]``): the solution
at the ``n`` nodes above and the ``n`` time levels ``t_k = k / n``, ``k = 1..n`` (step
``dt = 1 / n``, final time exactly 1; the initial condition, the same for every input, is not
part of the output). The reference code takes ``dt = 1 / (n - 1)`` and ``n`` steps, so its last
level is ``t = n / (n - 1)``, past the stated interval; that is the only difference.
"""

from __future__ import annotations

import numpy as np

from scorepde.physics._checks import check_count, check_initial
from scorepde.physics.finite_volume import solve_tridiagonal

__all__ = [
    "HEAT_FIDELITIES",
    "HEAT_INPUT_BOUNDS",
    "HEAT_INPUT_NAMES",
    "heat_extended",
    "heat_initial_condition",
    "heat_nodes",
    "heat_times",
    "solve_heat_1d",
    "solve_heat_benchmark",
]

HEAT_INPUT_NAMES: tuple[str, ...] = ("flux_left", "flux_right", "alpha")
HEAT_INPUT_BOUNDS: tuple[tuple[float, float], ...] = ((0.0, 1.0), (-1.0, 0.0), (0.01, 0.1))
HEAT_FIDELITIES: tuple[int, ...] = (8, 16, 32, 64)


def heat_nodes(fidelity: int) -> np.ndarray:
    """``(n,)`` the node coordinates ``i / (n - 1)``, both ends included."""
    n = check_count(fidelity, "fidelity", 3)
    return np.linspace(0.0, 1.0, n)


def heat_times(fidelity: int) -> np.ndarray:
    """``(n,)`` the output time levels ``k / n``, ``k = 1..n``."""
    n = check_count(fidelity, "fidelity", 3)
    return np.arange(1, n + 1) / n


def heat_initial_condition(nodes: np.ndarray) -> np.ndarray:
    """The indicator of ``[0.25, 0.75]`` at the given positions (ends included)."""
    x = np.asarray(nodes, dtype=float)
    return ((x >= 0.25) & (x <= 0.75)).astype(float)


def _per_sample(value: np.ndarray | float, batch: int, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        array = np.full(batch, float(array))
    if array.shape != (batch,):
        raise ValueError(f"{name} has shape {np.shape(value)}; expected a scalar or ({batch},)")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values; expected finite numbers")
    return array


def solve_heat_1d(
    initial: np.ndarray,
    flux_left: np.ndarray | float,
    flux_right: np.ndarray | float,
    alpha: np.ndarray | float,
    n_steps: int,
    t_final: float = 1.0,
) -> np.ndarray:
    """Implicit-Euler solution of ``u_t = alpha u_xx`` with Neumann data, batched.

    Args:
        initial: ``(B, n)`` or ``(n,)`` ``u(x_i, 0)`` at the nodes ``x_i = i / (n - 1)``,
            ``n >= 3``.
        flux_left: ``u_x(0, t)``, scalar or ``(B,)``.
        flux_right: ``u_x(1, t)``, scalar or ``(B,)``.
        alpha: diffusivity ``> 0``, scalar or ``(B,)``.
        n_steps: number of equal steps ``dt = t_final / n_steps``.
        t_final: ``> 0``.

    Returns:
        ``(B, n_steps, n)`` the solution at ``t_k = k dt``, ``k = 1..n_steps`` (``(n_steps,
        n)`` for a 1-D ``initial``).
    """
    state, single = check_initial(initial, 3)
    batch, n = state.shape
    steps = check_count(n_steps, "n_steps", 1)
    if not (np.isfinite(t_final) and t_final > 0):
        raise ValueError(f"t_final is {t_final!r}; expected a finite number > 0")
    g_left = _per_sample(flux_left, batch, "flux_left")
    g_right = _per_sample(flux_right, batch, "flux_right")
    diffusivity = _per_sample(alpha, batch, "alpha")
    if np.any(diffusivity <= 0):
        raise ValueError(f"alpha has values <= 0 (min {diffusivity.min()}); expected > 0")
    dx = 1.0 / (n - 1)
    dt = t_final / steps
    ratio = (diffusivity * dt / dx**2)[:, None] * np.ones((1, n))  # (B, n)
    lower = -ratio.copy()
    upper = -ratio.copy()
    diag = 1.0 + 2.0 * ratio
    # Ghost nodes: the end rows couple to their neighbour with twice the weight.
    upper[:, 0] *= 2.0
    lower[:, -1] *= 2.0
    boundary = np.zeros((batch, n))
    boundary[:, 0] = -2.0 * ratio[:, 0] * dx * g_left
    boundary[:, -1] = 2.0 * ratio[:, -1] * dx * g_right
    out = np.empty((batch, steps, n))
    for k in range(steps):
        state = solve_tridiagonal(lower, diag, upper, state + boundary)
        out[:, k] = state
    return out[0] if single else out


def _check_inputs(inputs: np.ndarray) -> np.ndarray:
    array = np.asarray(inputs, dtype=float)
    if array.ndim != 2 or array.shape[1] != len(HEAT_INPUT_NAMES):
        raise ValueError(
            f"inputs has shape {np.shape(inputs)}; expected (B, 3) with columns {HEAT_INPUT_NAMES}"
        )
    return array


def solve_heat_benchmark(inputs: np.ndarray, fidelity: int) -> np.ndarray:
    """The benchmark's output at one fidelity.

    Args:
        inputs: ``(B, 3)`` ``(flux_left, flux_right, alpha)``.
        fidelity: ``n >= 3``: ``n`` nodes and ``n`` implicit-Euler steps to ``t = 1``.

    Returns:
        ``(B, n, n)`` ``u[b, k, i] = u(x_i, t_k)``, :func:`heat_times` by :func:`heat_nodes`.
    """
    values = _check_inputs(inputs)
    n = check_count(fidelity, "fidelity", 3)
    initial = np.broadcast_to(heat_initial_condition(heat_nodes(n)), (values.shape[0], n))
    return solve_heat_1d(initial, values[:, 0], values[:, 1], values[:, 2], n, 1.0)


def heat_extended(
    outputs: np.ndarray, inputs: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The outputs with the initial condition prepended as the ``t = 0`` row, so that the
    finest grid's early levels (``t = 1/64 < 1/8``) are interpolated, not extrapolated.

    Args:
        outputs: ``(B, n, n)`` from :func:`solve_heat_benchmark`.
        inputs: ``(B, 3)`` the inputs that produced them (checked for the batch size only: the
            initial condition does not depend on them).

    Returns:
        ``((t, x), values)``: ``t`` ``(n + 1,)`` = ``0, 1/n, .., 1``, ``x`` ``(n,)`` the nodes,
        ``values`` ``(B, n + 1, n)``.
    """
    fields = np.asarray(outputs, dtype=float)
    if fields.ndim != 3 or fields.shape[1] != fields.shape[2]:
        raise ValueError(f"outputs has shape {np.shape(outputs)}; expected (B, n, n)")
    values = _check_inputs(inputs)
    if values.shape[0] != fields.shape[0]:
        raise ValueError(
            f"inputs has {values.shape[0]} rows and outputs {fields.shape[0]}; expected equal"
        )
    n = fields.shape[1]
    x = heat_nodes(n)
    initial = np.broadcast_to(heat_initial_condition(x), (fields.shape[0], 1, n))
    return (np.concatenate([[0.0], heat_times(n)]), x), np.concatenate([initial, fields], axis=1)
