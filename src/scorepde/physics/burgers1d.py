"""Viscous Burgers' equation in 1-D: the multi-fidelity "Burgers" benchmark.

The benchmark of Li et al., "Infinite-fidelity coregionalization" (NeurIPS 2022), as the
multi-fidelity issue defines it: ``u_t + (u^2 / 2)_x = nu u_xx`` on ``x in [0, 1]``,
``t in [0, 3]``, ``u(0, t) = u(1, t) = 0``, ``u(x, 0) = exp(-x / 2) sin(pi x)``,
``nu = 1 / (500 X + 10)`` with the input ``X in [0.001, 0.999]`` (a Reynolds number from 10.5
to 509.5). Dimensionless throughout.

Discretisation (ours; the reference uses a MATLAB Galerkin finite-element code): cell-centred
finite volumes on ``n`` cells of width ``h = 1 / n`` (the fidelity is the spatial resolution),
centres ``x_i = (i + 1/2) h``. Convection: MUSCL reconstruction with the van Leer limiter and
the exact Godunov flux of Burgers' equation (non-oscillatory even where the front is steeper
than the grid resolves, which happens for small ``nu`` at every benchmark fidelity); zero
convective flux through the walls (``u = 0`` there). Diffusion: central differences, the wall
gradient ``(u_0 - 0) / (h / 2)``. Time: the three-stage strong-stability-preserving Runge-Kutta
scheme (SSP-RK3, third order) with a fixed step ``dt <= courant / (u_max / h + 2 nu / h^2)``,
refined so that every output time is hit exactly. With the default ``courant = 0.5`` the time
error is far below the spatial error (measured in tests/physics/test_multifidelity_solvers.py).
Each sample's step bound comes from its own ``nu`` (rounded down to a power of ``2^(1/4)``;
samples with the same bound are stepped together, so results do not depend on the batch);
``u_max`` is the sample's initial maximum of ``|u|``, a bound for all times (maximum
principle).

Benchmark output at fidelity ``n`` (a ``(n, n)`` array indexed ``[time, space]``): the cell
values at the ``n`` centres and the ``n`` times ``t_k = 3 k / n``, ``k = 1..n`` (the initial
condition, the same for every input, and the zero wall values are not part of the output).
"""

from __future__ import annotations

import numpy as np

from scorepde.physics._checks import check_count, check_initial

__all__ = [
    "BURGERS_FIDELITIES",
    "BURGERS_INPUT_BOUNDS",
    "BURGERS_INPUT_NAMES",
    "BURGERS_T_FINAL",
    "burgers_centres",
    "burgers_extended",
    "burgers_initial_condition",
    "burgers_times",
    "burgers_viscosity",
    "solve_burgers_1d",
    "solve_burgers_benchmark",
]

BURGERS_INPUT_NAMES: tuple[str, ...] = ("X",)
BURGERS_INPUT_BOUNDS: tuple[tuple[float, float], ...] = ((0.001, 0.999),)
BURGERS_FIDELITIES: tuple[int, ...] = (16, 24, 32, 64)
BURGERS_T_FINAL = 3.0


def burgers_centres(fidelity: int) -> np.ndarray:
    """``(n,)`` the cell centres ``(i + 1/2) / n``."""
    n = check_count(fidelity, "fidelity", 4)
    return (np.arange(n) + 0.5) / n


def burgers_times(fidelity: int) -> np.ndarray:
    """``(n,)`` the output times ``3 k / n``, ``k = 1..n``."""
    n = check_count(fidelity, "fidelity", 4)
    return BURGERS_T_FINAL * np.arange(1, n + 1) / n


def burgers_initial_condition(x: np.ndarray) -> np.ndarray:
    """``exp(-x / 2) sin(pi x)`` at the given positions."""
    x = np.asarray(x, dtype=float)
    return np.exp(-0.5 * x) * np.sin(np.pi * x)


def burgers_viscosity(inputs: np.ndarray) -> np.ndarray:
    """``(B,)`` ``nu = 1 / (500 X + 10)`` from the ``(B, 1)`` inputs."""
    array = np.asarray(inputs, dtype=float)
    if array.ndim != 2 or array.shape[1] != 1:
        raise ValueError(f"inputs has shape {np.shape(inputs)}; expected (B, 1) with column X")
    if not np.all(np.isfinite(array)):
        raise ValueError("inputs contains non-finite values; expected finite numbers")
    viscosity = 1.0 / (500.0 * array[:, 0] + 10.0)
    if np.any(viscosity <= 0):
        raise ValueError(f"inputs gives nu <= 0 (X min {array[:, 0].min()}); expected X > -0.02")
    return viscosity


def _van_leer_slopes(u: np.ndarray) -> np.ndarray:
    """Limited cell differences (per cell, in units of u), with odd ghosts at the walls."""
    padded = np.concatenate([-u[:, :1], u, -u[:, -1:]], axis=1)
    backward = padded[:, 1:-1] - padded[:, :-2]
    forward = padded[:, 2:] - padded[:, 1:-1]
    product = backward * forward
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(product > 0, 2.0 * product / (backward + forward), 0.0)
    return slope


def _godunov_flux(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The exact Riemann flux of ``f(u) = u^2 / 2`` (convex, sonic point 0)."""
    return np.maximum(0.5 * np.maximum(left, 0.0) ** 2, 0.5 * np.minimum(right, 0.0) ** 2)


def _rate(u: np.ndarray, viscosity: np.ndarray, h: float) -> np.ndarray:
    """``du/dt`` of the semi-discrete scheme, ``(B, n)``.

    Every face, walls included, takes the Godunov flux of the reconstructed states; a wall face
    sees the odd reflection of its cell (the ghost state is minus the interior one), which
    imposes ``u = 0`` weakly: zero flux where the reconstruction already vanishes at the wall
    (a resolved boundary layer) and the outflow ``u^2 / 2`` of a stationary shock against the
    wall where it does not (an unresolved one).
    """
    slope = _van_leer_slopes(u)
    from_left = u + 0.5 * slope  # state at each cell's right face
    from_right = u - 0.5 * slope  # state at each cell's left face
    batch, n = u.shape
    left_states = np.concatenate([-from_right[:, :1], from_left], axis=1)  # (B, n + 1)
    right_states = np.concatenate([from_right, -from_left[:, -1:]], axis=1)
    flux = _godunov_flux(left_states, right_states)
    gradient = np.empty((batch, n + 1))
    gradient[:, 1:-1] = u[:, 1:] - u[:, :-1]
    gradient[:, 0] = 2.0 * u[:, 0]
    gradient[:, -1] = -2.0 * u[:, -1]
    flux -= viscosity[:, None] * gradient / h
    return -(flux[:, 1:] - flux[:, :-1]) / h


def solve_burgers_1d(
    initial: np.ndarray,
    viscosity: np.ndarray | float,
    output_times: np.ndarray,
    courant: float = 0.5,
) -> np.ndarray:
    """Finite-volume solution of viscous Burgers' equation with ``u = 0`` at both walls.

    Args:
        initial: ``(B, n)`` or ``(n,)`` cell values at ``t = 0`` on ``n >= 4`` cells of width
            ``1 / n``.
        viscosity: ``nu > 0``, scalar or ``(B,)``.
        output_times: ``(T,)`` strictly increasing times ``> 0``.
        courant: safety factor in ``(0, 1]`` of the step ``dt <= courant / (u_max / h +
            2 nu / h^2)`` (smaller: more accurate in time).

    Returns:
        ``(B, T, n)`` (``(T, n)`` for a 1-D ``initial``) the cell values at ``output_times``.
    """
    state, single = check_initial(initial, 4)
    batch, n = state.shape
    nu = np.asarray(viscosity, dtype=float)
    nu = np.full(batch, float(nu)) if nu.ndim == 0 else nu
    if nu.shape != (batch,) or not np.all(np.isfinite(nu)) or np.any(nu <= 0):
        raise ValueError(
            f"viscosity is {viscosity!r}; expected finite values > 0, a scalar or ({batch},)"
        )
    times = np.asarray(output_times, dtype=float)
    if times.ndim != 1 or times.size < 1 or times[0] <= 0 or np.any(np.diff(times) <= 0):
        raise ValueError(
            f"output_times is {output_times!r}; expected a 1-D strictly increasing array > 0"
        )
    if not (0 < courant <= 1):
        raise ValueError(f"courant is {courant!r}; expected a number in (0, 1]")
    h = 1.0 / n
    # Each sample's step bound from its own nu and |u| maximum, rounded down to a power of
    # 2^(1/4): samples with the same rounded bound are stepped together, so a sample's result
    # does not depend on the rest of the batch, and the batch is still vectorised.
    speed = np.maximum(np.abs(state).max(axis=1), 1e-12)
    bound = courant / (speed / h + 2.0 * nu / h**2)
    level = np.floor(4.0 * np.log2(bound))
    out = np.empty((batch, times.size, n))
    for value in np.unique(level):
        members = np.flatnonzero(level == value)
        out[members] = _integrate(state[members], nu[members], h, times, 2.0 ** (value / 4.0))
    return out[0] if single else out


def _integrate(
    state: np.ndarray, nu: np.ndarray, h: float, times: np.ndarray, dt_max: float
) -> np.ndarray:
    """SSP-RK3 with equal steps ``<= dt_max`` between consecutive output times."""
    out = np.empty((state.shape[0], times.size, state.shape[1]))
    now = 0.0
    for k, target in enumerate(times):
        steps = int(np.ceil((target - now) / dt_max - 1e-9))
        dt = (target - now) / steps
        for _ in range(steps):
            stage = state + dt * _rate(state, nu, h)
            stage = 0.75 * state + 0.25 * (stage + dt * _rate(stage, nu, h))
            state = state / 3.0 + 2.0 / 3.0 * (stage + dt * _rate(stage, nu, h))
        now = float(target)
        out[:, k] = state
    return out


def solve_burgers_benchmark(inputs: np.ndarray, fidelity: int, courant: float = 0.5) -> np.ndarray:
    """The benchmark's output at one fidelity.

    Args:
        inputs: ``(B, 1)`` the input ``X`` (``nu = 1 / (500 X + 10)``).
        fidelity: ``n >= 4`` cells; output times ``3 k / n``, ``k = 1..n``.
        courant: see :func:`solve_burgers_1d`.

    Returns:
        ``(B, n, n)`` ``u[b, k, i] = u(x_i, t_k)``, :func:`burgers_times` by
        :func:`burgers_centres`. The initial cell values are the point values of
        ``exp(-x/2) sin(pi x)`` at the centres (a second-order cell average).
    """
    nu = burgers_viscosity(inputs)
    n = check_count(fidelity, "fidelity", 4)
    initial = np.broadcast_to(burgers_initial_condition(burgers_centres(n)), (nu.size, n))
    return solve_burgers_1d(initial, nu, burgers_times(n), courant)


def burgers_extended(
    outputs: np.ndarray, inputs: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The outputs with the known values added for interpolation on physical coordinates: the
    initial condition as the ``t = 0`` row and the zero wall values as the ``x = 0`` and
    ``x = 1`` columns (the finest grid's first centre ``1/128`` lies left of a coarse grid's).

    Args:
        outputs: ``(B, n, n)`` from :func:`solve_burgers_benchmark`.
        inputs: ``(B, 1)`` (checked for the batch size only).

    Returns:
        ``((t, x), values)``: ``t`` ``(n + 1,)`` = ``0, 3/n, .., 3``; ``x`` ``(n + 2,)`` =
        ``0, centres, 1``; ``values`` ``(B, n + 1, n + 2)``.
    """
    fields = np.asarray(outputs, dtype=float)
    if fields.ndim != 3 or fields.shape[1] != fields.shape[2]:
        raise ValueError(f"outputs has shape {np.shape(outputs)}; expected (B, n, n)")
    batch = burgers_viscosity(inputs).size
    if batch != fields.shape[0]:
        raise ValueError(f"inputs has {batch} rows and outputs {fields.shape[0]}; expected equal")
    n = fields.shape[1]
    x = np.concatenate([[0.0], burgers_centres(n), [1.0]])
    values = np.zeros((batch, n + 1, n + 2))
    values[:, 0, 1:-1] = burgers_initial_condition(x[1:-1])
    values[:, 1:, 1:-1] = fields
    return (np.concatenate([[0.0], burgers_times(n)]), x), values
