"""Second-order vertex-centred finite volumes for 1-D diffusion-reaction, batched in numpy.

The model problem, for every batch member ``b`` independently, is::

    capacity(x) du/dt - (k(x) u')' + r(x) u = f(x)      on (0, L)
    -k u'(0) = left_flux                                 (flux condition at x = 0)
    -k u'(L) = right    or    u(L) = right               (right_kind "flux" / "dirichlet")

``q = -k u'`` is the flux in the +x direction, so ``left_flux > 0`` flows *into* the domain
through ``x = 0`` and a right flux ``> 0`` flows *out* through ``x = L``. Units are generic:
if ``u`` is in [U] and ``x`` in m, ``k`` is in [K], ``q`` in [K][U]/m, ``r`` in [K]/m^2 and
``f`` in [K][U]/m^2.

Discretisation. Nodes ``x_0 < ... < x_{N-1}`` (any spacing ``h_i = x_{i+1} - x_i``); node ``i``
owns the control volume between the face midpoints, ``V_i = (h_{i-1} + h_i) / 2``, with half
cells ``V_0 = h_0 / 2`` and ``V_{N-1} = h_{N-2} / 2`` at the ends. Coefficients are nodal;
the face coefficient is the harmonic mean ``k_{i+1/2} = 2 k_i k_{i+1} / (k_i + k_{i+1})`` and
the face flux is ``q_{i+1/2} = -k_{i+1/2} (u_{i+1} - u_i) / h_i``. Integrating over each
control volume (reaction and source lumped at the node):

    interior  i:   q_{i+1/2} - q_{i-1/2}   + r_i u_i V_i = f_i V_i
    left half 0:   q_{1/2}   - left_flux   + r_0 u_0 V_0 = f_0 V_0
    right half:    right     - q_{N-3/2}   + r u V       = f V          (right_kind "flux")
                   u_{N-1} = right                                      (right_kind "dirichlet")

The scheme is conservative (the fluxes telescope: ``q(L) - q(0) = sum_i V_i (f_i - r_i u_i)``
exactly) and second-order accurate in the maximum norm for smooth coefficients.

The matrices are tridiagonal with non-positive off-diagonals and a diagonal at least the sum
of their magnitudes (strictly larger where ``r > 0``, in a Dirichlet row, or with a capacity
term), i.e. irreducibly diagonally dominant M-matrices: the Thomas algorithm needs no pivoting
and all pivots stay positive.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "assemble_diffusion_reaction",
    "boundary_fluxes",
    "control_volumes",
    "face_fluxes",
    "harmonic_face_mean",
    "solve_diffusion_reaction",
    "solve_diffusion_reaction_transient",
    "solve_tridiagonal",
]

RIGHT_KINDS = ("flux", "dirichlet")


# ----------------------------------------------------------------------------- validation
def _check_grid(grid: np.ndarray) -> np.ndarray:
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1 or grid.shape[0] < 3:
        raise ValueError(f"grid has shape {grid.shape}; expected a 1-D array with N >= 3 nodes")
    if not np.all(np.isfinite(grid)) or not np.all(np.diff(grid) > 0):
        raise ValueError("grid must be finite and strictly increasing")
    return grid


def _nodal(name: str, values: np.ndarray | float, n_points: int) -> np.ndarray:
    """Nodal field as a float array of shape (B or 1, N)."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        array = np.full((1, n_points), float(array))
    elif array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != n_points:
        raise ValueError(
            f"{name} has shape {np.shape(values)}; "
            f"expected (B, {n_points}), ({n_points},) or a scalar"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values; expected finite numbers")
    return array


def _per_sample(name: str, values: np.ndarray | float, batch: int) -> np.ndarray:
    """Per-sample scalar as shape (B,)."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        array = np.full(batch, float(array))
    elif array.shape == (1,):
        array = np.full(batch, array[0])
    if array.shape != (batch,):
        raise ValueError(f"{name} has shape {np.shape(values)}; expected a scalar or ({batch},)")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values; expected finite numbers")
    return array


def _check_right_kind(right_kind: str) -> None:
    if right_kind not in RIGHT_KINDS:
        raise ValueError(
            f"right_kind = {right_kind!r} is not allowed; expected one of {RIGHT_KINDS}"
        )


# ----------------------------------------------------------------------------- geometry
def control_volumes(grid: np.ndarray) -> np.ndarray:
    """Control-volume lengths ``V_i`` (N,) in the grid's unit, half cells at both ends.

    ``V.sum()`` equals ``grid[-1] - grid[0]``; ``sum_i V_i g_i`` is the trapezoidal rule.
    """
    spacing = np.diff(_check_grid(grid))
    volumes = np.empty(spacing.shape[0] + 1)
    volumes[0] = 0.5 * spacing[0]
    volumes[-1] = 0.5 * spacing[-1]
    volumes[1:-1] = 0.5 * (spacing[:-1] + spacing[1:])
    return volumes


def harmonic_face_mean(coefficient_nodes: np.ndarray) -> np.ndarray:
    """Harmonic mean of neighbouring nodal values: ``(..., N)`` -> ``(..., N - 1)``.

    ``2 a b / (a + b)`` along the last axis; the values must be positive (same unit out).
    """
    values = np.asarray(coefficient_nodes, dtype=float)
    if values.ndim < 1 or values.shape[-1] < 2:
        raise ValueError(
            f"coefficient_nodes has shape {values.shape}; expected (..., N) with N >= 2"
        )
    if not np.all(values > 0) or not np.all(np.isfinite(values)):
        raise ValueError("coefficient_nodes must be finite and > 0 for a harmonic mean")
    left = values[..., :-1]
    right = values[..., 1:]
    return 2.0 * left * right / (left + right)


def face_fluxes(grid: np.ndarray, conductivity: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Discrete fluxes ``q_{i+1/2} = -k_{i+1/2} (u_{i+1} - u_i) / h_i`` at interior faces.

    Args:
        grid: (N,) node positions.
        conductivity: (B, N) or (N,) nodal ``k`` (> 0).
        u: (B, N) or (N,) nodal solution.

    Returns:
        (B, N - 1) fluxes in the +x direction.
    """
    grid = _check_grid(grid)
    n_points = grid.shape[0]
    k_nodes = _nodal("conductivity", conductivity, n_points)
    values = _nodal("u", u, n_points)
    transmissibility = harmonic_face_mean(k_nodes) / np.diff(grid)
    return -transmissibility * np.diff(values, axis=-1)


def boundary_fluxes(
    grid: np.ndarray,
    conductivity: np.ndarray,
    reaction: np.ndarray,
    source: np.ndarray,
    u: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Fluxes ``q = -k u'`` at ``x = 0`` and ``x = L`` recovered from the half-cell balances.

    ``q(0) = q_{1/2} + V_0 (r_0 u_0 - f_0)`` and ``q(L) = q_{N-3/2} + V_{N-1} (f - r u)_{N-1}``:
    the conservative boundary fluxes of the scheme. For a flux condition they reproduce the
    imposed value up to the solver's round-off; at a Dirichlet end they give the flux through
    that boundary. Shapes as in :func:`solve_diffusion_reaction`; returns two (B,) arrays.
    """
    grid = _check_grid(grid)
    n_points = grid.shape[0]
    volumes = control_volumes(grid)
    k_nodes, r_nodes, f_nodes, values = np.broadcast_arrays(
        _nodal("conductivity", conductivity, n_points),
        _nodal("reaction", reaction, n_points),
        _nodal("source", source, n_points),
        _nodal("u", u, n_points),
    )
    fluxes = face_fluxes(grid, k_nodes, values)
    left = fluxes[:, 0] + volumes[0] * (r_nodes[:, 0] * values[:, 0] - f_nodes[:, 0])
    right = fluxes[:, -1] + volumes[-1] * (f_nodes[:, -1] - r_nodes[:, -1] * values[:, -1])
    return left, right


# ----------------------------------------------------------------------------- assembly
def _assemble(
    grid: np.ndarray,
    conductivity: np.ndarray,
    reaction: np.ndarray,
    source: np.ndarray,
    left_flux: np.ndarray | float,
    right: np.ndarray | float,
    right_kind: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lower, diag, upper, rhs, row_excess), each (B, N); see assemble_diffusion_reaction."""
    _check_right_kind(right_kind)
    grid = _check_grid(grid)
    n_points = grid.shape[0]
    k_nodes, r_nodes, f_nodes = np.broadcast_arrays(
        _nodal("conductivity", conductivity, n_points),
        _nodal("reaction", reaction, n_points),
        _nodal("source", source, n_points),
    )
    if not np.all(k_nodes > 0):
        raise ValueError("conductivity must be > 0 at every node")
    if not np.all(r_nodes >= 0):
        raise ValueError("reaction must be >= 0 at every node (the matrix must be an M-matrix)")
    batch = k_nodes.shape[0]
    left_values = _per_sample("left_flux", left_flux, batch)
    right_values = _per_sample("right", right, batch)

    volumes = control_volumes(grid)
    transmissibility = harmonic_face_mean(k_nodes) / np.diff(grid)  # (B, N - 1)
    lower = np.zeros((batch, n_points))
    upper = np.zeros((batch, n_points))
    lower[:, 1:] = -transmissibility
    upper[:, :-1] = -transmissibility
    excess = r_nodes * volumes  # diag + lower + upper, known exactly
    diag = excess.copy()
    diag[:, :-1] += transmissibility
    diag[:, 1:] += transmissibility
    rhs = f_nodes * volumes
    rhs[:, 0] += left_values
    if right_kind == "flux":
        rhs[:, -1] -= right_values
    else:
        lower[:, -1] = 0.0
        diag[:, -1] = 1.0
        excess[:, -1] = 1.0
        rhs[:, -1] = right_values
    return lower, diag, upper, rhs, excess


def assemble_diffusion_reaction(
    grid: np.ndarray,
    conductivity: np.ndarray,
    reaction: np.ndarray,
    source: np.ndarray,
    left_flux: np.ndarray | float,
    right: np.ndarray | float,
    right_kind: str = "flux",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tridiagonal system ``(lower, diag, upper, rhs)``, each (B, N), of the steady scheme.

    Row ``i`` reads ``lower_i u_{i-1} + diag_i u_i + upper_i u_{i+1} = rhs_i`` (rows are the
    control-volume balances, i.e. multiplied by ``V_i``); ``lower[:, 0]`` and ``upper[:, -1]``
    are zero. Arguments as in :func:`solve_diffusion_reaction`.
    """
    lower, diag, upper, rhs, _ = _assemble(
        grid, conductivity, reaction, source, left_flux, right, right_kind
    )
    return lower, diag, upper, rhs


# ----------------------------------------------------------------------------- Thomas algorithm
def _thomas_factor(
    lower: np.ndarray,
    diag: np.ndarray,
    upper: np.ndarray,
    row_excess: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LU sweep on (N, B) arrays; returns (lower, upper / pivot, 1 / pivot).

    No pivoting is needed: every matrix built here is a diagonally dominant M-matrix
    (off-diagonals <= 0, diag >= |lower| + |upper|), whose pivots stay >= |upper_i| > 0.

    With ``row_excess = diag + lower + upper >= 0`` (known exactly from the assembly: the
    reaction, capacity or Dirichlet part of the row) the pivots are computed without
    cancellation: the excess of the eliminated row is ``e_i = s_i + |l_i| e_{i-1} / m_{i-1}``
    and the pivot ``m_i = e_i + |u_i|``, sums of non-negative terms only. The plain form
    ``m_i = d_i - l_i u_{i-1} / m_{i-1}`` loses the small reaction term against the large
    conduction terms (the potential problem has ``a_s k_rn h^2 / k_eff ~ 1e-7``), which costs
    about seven digits of the solution's level.
    """
    n_points = diag.shape[0]
    upper_scaled = np.empty_like(diag)
    inverse_pivot = np.empty_like(diag)
    if row_excess is None:
        inverse_pivot[0] = 1.0 / diag[0]
        upper_scaled[0] = upper[0] * inverse_pivot[0]
        for i in range(1, n_points):
            inverse_pivot[i] = 1.0 / (diag[i] - lower[i] * upper_scaled[i - 1])
            upper_scaled[i] = upper[i] * inverse_pivot[i]
    else:
        excess = row_excess[0].copy()
        inverse_pivot[0] = 1.0 / (excess - upper[0])
        upper_scaled[0] = upper[0] * inverse_pivot[0]
        for i in range(1, n_points - 1):
            excess = row_excess[i] - lower[i] * excess * inverse_pivot[i - 1]
            inverse_pivot[i] = 1.0 / (excess - upper[i])
            upper_scaled[i] = upper[i] * inverse_pivot[i]
        last = n_points - 1
        inverse_pivot[last] = 1.0 / (
            row_excess[last] - lower[last] * excess * inverse_pivot[last - 1]
        )
    upper_scaled[-1] = 0.0
    return lower, upper_scaled, inverse_pivot


def _thomas_substitute(
    factors: tuple[np.ndarray, np.ndarray, np.ndarray], rhs: np.ndarray
) -> np.ndarray:
    """Forward and back substitution on (N, B) arrays with factors from ``_thomas_factor``."""
    lower, upper_scaled, inverse_pivot = factors
    n_points = rhs.shape[0]
    solution = np.empty_like(rhs)
    solution[0] = rhs[0] * inverse_pivot[0]
    for i in range(1, n_points):
        solution[i] = (rhs[i] - lower[i] * solution[i - 1]) * inverse_pivot[i]
    for i in range(n_points - 2, -1, -1):
        solution[i] -= upper_scaled[i] * solution[i + 1]
    return solution


def solve_tridiagonal(
    lower: np.ndarray,
    diag: np.ndarray,
    upper: np.ndarray,
    rhs: np.ndarray,
    row_excess: np.ndarray | None = None,
) -> np.ndarray:
    """Solve a batch of tridiagonal systems by the Thomas algorithm (no pivoting).

    Args:
        lower: (B, N) sub-diagonal; ``lower[:, i]`` multiplies ``u[:, i - 1]``;
            ``lower[:, 0]`` is ignored.
        diag: (B, N) diagonal.
        upper: (B, N) super-diagonal; ``upper[:, i]`` multiplies ``u[:, i + 1]``;
            ``upper[:, -1]`` is ignored.
        rhs: (B, N) right-hand sides. 1-D inputs (N,) are treated as B = 1 and give (N,).
        row_excess: optional (B, N) ``diag + lower + upper`` (with the ignored entries taken
            as zero) of an M-matrix (``lower, upper <= 0``, ``row_excess >= 0``), known more
            accurately than ``diag``; the elimination then runs in a cancellation-free form
            and ``diag`` is not used. Use it for nearly singular (weak reaction) problems.

    Returns:
        (B, N) solutions. Stable for diagonally dominant (e.g. M-) matrices; others may fail.
        The loop runs over the N rows with vector operations over the batch.
    """
    names = ("lower", "diag", "upper", "rhs", "row_excess")
    given = (lower, diag, upper, rhs, row_excess)
    arrays = [None if a is None else np.asarray(a, dtype=float) for a in given]
    shape = arrays[3].shape
    if len(shape) not in (1, 2) or shape[-1] < 1:
        raise ValueError(f"rhs has shape {shape}; expected (B, N) or (N,)")
    for name, array in zip(names, arrays, strict=True):
        if array is not None and array.shape != shape:
            raise ValueError(f"{name} has shape {array.shape}; expected rhs's shape {shape}")
    one_dimensional = len(shape) == 1
    columns = [
        None if a is None else np.array(np.atleast_2d(a).T, order="C") for a in arrays
    ]  # (N, B) layout, private copies
    columns[0][0] = 0.0
    columns[2][-1] = 0.0
    if columns[4] is not None:
        if np.any(columns[0] > 0) or np.any(columns[2] > 0) or np.any(columns[4] < 0):
            raise ValueError(
                "row_excess needs an M-matrix: lower <= 0, upper <= 0 and row_excess >= 0"
            )
    factors = _thomas_factor(columns[0], columns[1], columns[2], columns[4])
    solution = _thomas_substitute(factors, columns[3]).T
    return solution[0] if one_dimensional else np.ascontiguousarray(solution)


# ----------------------------------------------------------------------------- solvers
def solve_diffusion_reaction(
    grid: np.ndarray,
    conductivity: np.ndarray,
    reaction: np.ndarray,
    source: np.ndarray,
    left_flux: np.ndarray | float,
    right: np.ndarray | float,
    right_kind: str = "flux",
) -> np.ndarray:
    """Solve ``-(k u')' + r u = f`` on the vertex-centred grid for a batch of coefficients.

    Args:
        grid: (N,) strictly increasing node positions, N >= 3.
        conductivity: ``k`` (B, N), (N,) or scalar; > 0 at every node.
        reaction: ``r`` (B, N), (N,) or scalar; >= 0. With ``right_kind="flux"`` every
            sample needs some ``r > 0`` (else the problem is singular).
        source: ``f`` (B, N), (N,) or scalar.
        left_flux: ``q(0) = -k u'(0)``, (B,) or scalar: the flux *into* the domain at x = 0.
        right: ``q(L) = -k u'(L)`` (flux *out of* the domain at x = L) if ``right_kind`` is
            ``"flux"``; the value ``u(L)`` if ``"dirichlet"``. (B,) or scalar.
        right_kind: ``"flux"`` or ``"dirichlet"``.

    Returns:
        u: (B, N); a Dirichlet value is reproduced exactly.
    """
    lower, diag, upper, rhs, excess = _assemble(
        grid, conductivity, reaction, source, left_flux, right, right_kind
    )
    if right_kind == "flux":
        reaction_nodes = _nodal("reaction", reaction, diag.shape[1])
        has_reaction = np.broadcast_to(np.any(reaction_nodes > 0, axis=1), diag.shape[:1])
        if not np.all(has_reaction):
            first = int(np.flatnonzero(~has_reaction)[0])
            raise ValueError(
                f"reaction is zero everywhere in sample {first} with flux conditions at both "
                "ends: the solution is defined only up to a constant; use right_kind='dirichlet' "
                "or a positive reaction"
            )
    return solve_tridiagonal(lower, diag, upper, rhs, row_excess=excess)


def solve_diffusion_reaction_transient(
    grid: np.ndarray,
    capacity: np.ndarray,
    conductivity: np.ndarray,
    reaction: np.ndarray,
    source: np.ndarray,
    left_flux: np.ndarray | float,
    right: np.ndarray | float,
    right_kind: str,
    times: np.ndarray,
    u_initial: np.ndarray | float,
    substeps: int = 1,
) -> np.ndarray:
    """Integrate ``capacity u_t - (k u')' + r u = f`` in time from ``u(t=0) = u_initial``.

    Same spatial operator and boundary conditions as :func:`solve_diffusion_reaction`, with the
    capacity lumped at the nodes (``capacity_i V_i``, half cells at the ends); a Dirichlet node
    is algebraic (``u(L, t) = right`` for ``t > 0``). Time stepping is variable-step BDF2
    (second order, L-stable); the first step, and any step more than twice as long as the one
    before, is backward Euler. Each interval between output times is cut into ``substeps``
    equal steps. The steady state of the discrete scheme equals the steady solver's answer.

    Args:
        grid: (N,) node positions.
        capacity: (B, N), (N,) or scalar; > 0 (e.g. porosity).
        conductivity, reaction, source, left_flux, right, right_kind: as in
            :func:`solve_diffusion_reaction` (time independent).
        times: (T,) strictly increasing output times >= 0, in the time unit of ``k`` / ``f``
            (seconds for SI coefficients); ``times[0] == 0`` returns ``u_initial`` first.
        u_initial: (B, N), (N,) or scalar initial condition.
        substeps: number of equal time steps per output interval, >= 1.

    Returns:
        (B, T, N) solution at the requested times.
    """
    grid = _check_grid(grid)
    n_points = grid.shape[0]
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.shape[0] < 1 or not np.all(np.isfinite(times)):
        raise ValueError(f"times has shape {times.shape}; expected a finite 1-D array (T,), T >= 1")
    if times[0] < 0 or not np.all(np.diff(times) > 0):
        raise ValueError("times must be >= 0 and strictly increasing")
    if not (isinstance(substeps, int | np.integer) and substeps >= 1):
        raise ValueError(f"substeps = {substeps!r} is not allowed; expected an integer >= 1")
    lower, diag, upper, rhs, excess = _assemble(
        grid, conductivity, reaction, source, left_flux, right, right_kind
    )
    batch = diag.shape[0]
    capacity_nodes = _nodal("capacity", capacity, n_points)
    if not np.all(capacity_nodes > 0):
        raise ValueError("capacity must be > 0 at every node")
    state = _nodal("u_initial", u_initial, n_points)
    try:
        capacity_nodes, state = (
            np.broadcast_to(a, (batch, n_points)) for a in (capacity_nodes, state)
        )
    except ValueError:
        raise ValueError(
            f"capacity and u_initial must broadcast to the batch shape {(batch, n_points)}"
        ) from None

    # (N, B) layout throughout.
    mass = np.ascontiguousarray((capacity_nodes * control_volumes(grid)).T)
    if right_kind == "dirichlet":
        mass[-1] = 0.0
    lower_t, diag_t, upper_t, rhs_t, excess_t = (
        np.ascontiguousarray(a.T) for a in (lower, diag, upper, rhs, excess)
    )
    current = np.array(state.T, dtype=float)
    previous: np.ndarray | None = None
    previous_step: float | None = None
    factors_key: tuple[float, float] | None = None
    factors = None

    output = np.empty((times.shape[0], n_points, batch))
    clock = 0.0
    for index, target in enumerate(times):
        if target == 0.0:
            output[index] = current
            continue
        step = (target - clock) / substeps
        for _ in range(int(substeps)):
            if previous is None or previous_step is None or step > 2.0 * previous_step:
                alpha = 1.0
                history = current
            else:
                ratio = step / previous_step
                alpha = (1.0 + 2.0 * ratio) / (1.0 + ratio)
                history = (1.0 + ratio) * current - ratio**2 / (1.0 + ratio) * previous
            key = (step, alpha)
            if key != factors_key:
                factors = _thomas_factor(
                    lower_t,
                    diag_t + (alpha / step) * mass,
                    upper_t,
                    row_excess=excess_t + (alpha / step) * mass,
                )
                factors_key = key
            assert factors is not None
            new = _thomas_substitute(factors, rhs_t + mass * history / step)
            previous, current, previous_step = current, new, step
        clock = target
        output[index] = current
    return np.ascontiguousarray(output.transpose(2, 0, 1))
