"""The battery model as the post's public code computes it: the ``published-code`` formulation.

The post's repository (OpenNumerics/SGM-for-porous-media, Apache-2.0; read, not copied) makes
its figures with a model that differs from the post's text (``scorepde.physics.battery``) in
four ways (``docs/physics.md``, "Two formulations"):

* cell-centred finite volumes: ``N`` equal cells, unknowns at ``x_i = (i + 1/2) L / N``,
  harmonic face means, the boundary fluxes on the faces ``x = 0`` and ``x = L``, but the
  concentration's Dirichlet value imposed on the **last cell centre** ``x_{N-1} = L - L/(2N)``;
* the potential's flux condition is ``+k_eff phi'(L) = F_right``;
* the reaction current is evaluated with the **shifted** potential,
  ``j = k_rn (phi_s - (phi - phi(x_0)) - U0)``, so ``U0`` changes ``j`` and ``c``;
* the concentration is **not steady**: implicit Euler from ``c = c_right`` with ``dt = 0.1 s``
  to ``T = 100 s``, far from the steady state (time scale ``eps L^2 / D_eff`` ~ 560 s).

Equations (per unit volume, cell ``i``, width ``h = L / N``, face means ``k_{i+1/2}``)::

    potential:      -(k_{i+1/2}(phi_{i+1}-phi_i) - k_{i-1/2}(phi_i-phi_{i-1})) / h^2
                    + r_i phi_i = r_i (phi_s(x_i) - U0) + [i = N-1] F_right / h,
                    r = a_s k_rn,  k_{-1/2} = k_{N-1/2} = 0
    concentration:  eps_i (c_i^{n+1} - c_i^n) / dt
                    = (D_{i+1/2}(c_{i+1}-c_i) - D_{i-1/2}(c_i-c_{i-1}))^{n+1} / h^2 + S_i,
                    i < N-1,  D_{-1/2} = 0,  c_{N-1} = c_right,
                    S = (1 - t_plus) / F a_s j   (constant in time: j does not depend on c)

The potential does not depend on ``c``, so it and ``j`` are computed once (the public code
recomputes them every step, which gives the same numbers). The tridiagonal matrix of the
concentration is the same at every step: it is factorised once and each step is one forward
and back substitution, vectorised over the batch.

Batched like ``scorepde.physics.battery``: porosity ``(B, N)`` (or ``(N,)`` as ``B = 1``),
conditions scalars or ``(B,)``; outputs ``(B, N)`` float64. ``dtype=np.float32`` runs the same
algorithm in single precision (as the public code does) for the precision study; results are
returned as float64 arrays holding the float32 values.
"""

from __future__ import annotations

import numpy as np

from scorepde.physics.battery import (
    BatterySolution,
    _check_condition,
    _check_nodal,
    _check_parameters,
    _check_porosity,
    _reaction_current_at,
)
from scorepde.physics.finite_volume import _thomas_factor, _thomas_substitute
from scorepde.physics.parameters import BatteryParameters, PublishedCodeSettings

__all__ = [
    "PUBLISHED_CODE_SETTINGS",
    "concentration_steady_published",
    "concentration_transient_published",
    "reaction_current_published",
    "solve_battery_published",
    "solve_potential_published",
]

_DEFAULT_PARAMETERS = BatteryParameters()
#: The public code's time stepping and GP nugget.
PUBLISHED_CODE_SETTINGS = PublishedCodeSettings()

_DTYPES = (np.float64, np.float32)


def _check_dtype(dtype: type | np.dtype) -> np.dtype:
    resolved = np.dtype(dtype)
    if resolved not in [np.dtype(d) for d in _DTYPES]:
        raise ValueError(f"dtype = {dtype!r} is not allowed; expected numpy.float64 or float32")
    return resolved


def _face_means(coefficient: np.ndarray) -> np.ndarray:
    """Harmonic means on the N-1 interior faces: (B, N) -> (B, N-1)."""
    left, right = coefficient[:, :-1], coefficient[:, 1:]
    return 2.0 * left * right / (left + right)


def _solve_columns(
    lower: np.ndarray,
    diag: np.ndarray,
    upper: np.ndarray,
    rhs: np.ndarray,
    excess: np.ndarray,
    dtype: np.dtype,
) -> np.ndarray:
    """Thomas solve of (N, B) systems; float64 uses the cancellation-free pivots from
    ``excess = diag + lower + upper``, float32 the plain elimination (as the public code)."""
    factors = _thomas_factor(lower, diag, upper, excess if dtype == np.float64 else None)
    return _thomas_substitute(factors, rhs)


def solve_potential_published(
    porosity: np.ndarray,
    U0: float | np.ndarray,
    F_right: float | np.ndarray,
    params: BatteryParameters = _DEFAULT_PARAMETERS,
    dtype: type | np.dtype = np.float64,
) -> np.ndarray:
    """Potential before the shift on the cell centres ``params.cell_centres()``: (B, N), V.

    Solves ``-(k_eff phi')' + a_s k_rn phi = a_s k_rn (phi_s - U0)``, ``k_eff phi'(0) = 0``,
    ``+k_eff phi'(L) = F_right`` (cell-centred, harmonic face means).

    Args:
        porosity: (B, N) or (N,) porosity on the cell centres, strictly inside (0, 1).
        U0: V, scalar or (B,). F_right: A/m^2, scalar or (B,).
        params: model constants (``n_points`` = number of cells).
        dtype: arithmetic precision, float64 (default) or float32.
    """
    params = _check_parameters(params)
    dtype = _check_dtype(dtype)
    porosity = _check_porosity(porosity, params)
    batch = porosity.shape[0]
    open_circuit = _check_condition("U0", U0, batch).astype(dtype)
    current = _check_condition("F_right", F_right, batch).astype(dtype)
    eps = np.ascontiguousarray(porosity.T, dtype=dtype)  # (N, B)
    h = dtype.type(params.cell_width)
    # rows multiplied by h^2 (face conductances k_{i+1/2}, reaction r h^2), summed in the
    # public code's order, so that dtype=float32 rounds as it does: r h^2 ~ 3e-8 S/m is
    # below the float32 resolution of the diagonal ~ 0.4 S/m (docs/physics.md)
    conductivity = params.effective_conductivity(eps).astype(dtype)
    faces = _face_means(conductivity.T).T  # (N-1, B), S/m
    area = params.surface_area_density(eps).astype(dtype)
    reaction = area * dtype.type(params.reaction_rate) * (h * h)  # S/m
    solid = params.solid_potential(params.cell_centres()).astype(dtype)[:, None]
    lower = np.zeros_like(eps)
    upper = np.zeros_like(eps)
    lower[1:] = -faces
    upper[:-1] = -faces
    diag = (-lower - upper) + reaction
    rhs = reaction * (solid - open_circuit[None, :])
    rhs[-1] += h * current
    phi = _solve_columns(lower, diag, upper, rhs, reaction, dtype)
    return np.asarray(phi.T, dtype=float)


def reaction_current_published(
    phi_shifted: np.ndarray,
    U0: float | np.ndarray,
    params: BatteryParameters = _DEFAULT_PARAMETERS,
) -> np.ndarray:
    """``j = k_rn (phi_s(x_i) - phi_shifted - U0)`` on the cell centres: (B, N), A/m^2.

    ``phi_shifted`` (B, N) or (N,) in V is the potential *after* the shift ``phi(x_0) = 0``
    (the public code's choice, which makes ``j`` depend on ``U0``)."""
    params = _check_parameters(params)
    return _reaction_current_at(params.cell_centres(), phi_shifted, "phi_shifted", U0, params)


def _concentration_system(
    porosity: np.ndarray,
    current: np.ndarray,
    params: BatteryParameters,
    capacity_scale: float,
    dtype: np.dtype,
) -> tuple[np.ndarray, ...]:
    """(N, B) arrays lower, diag, upper, excess, source, capacity of the concentration rows
    ``capacity_i c_i - diffusion = ...`` with ``capacity = eps * capacity_scale`` (1/dt, or 0
    for the steady state); the last row is the Dirichlet row ``c_{N-1} = c_right``."""
    porosity = _check_porosity(porosity, params)
    current = _check_nodal("reaction_current", current, porosity.shape)
    eps = np.ascontiguousarray(porosity.T, dtype=dtype)
    j = np.ascontiguousarray(current.T, dtype=dtype)
    h = dtype.type(params.cell_width)
    diffusivity = params.effective_diffusivity(eps).astype(dtype)
    faces = _face_means(diffusivity.T).T / (h * h)  # (N-1, B), 1/s
    capacity = (eps * dtype.type(capacity_scale)).astype(dtype)
    lower = np.zeros_like(eps)
    upper = np.zeros_like(eps)
    lower[1:] = -faces
    upper[:-1] = -faces
    lower[-1] = 0.0  # the Dirichlet row couples to nothing
    diag = capacity - lower - upper
    excess = capacity.copy()
    diag[-1] = 1.0
    excess[-1] = 1.0
    capacity[-1] = 0.0
    factor = dtype.type((1.0 - params.transference_number) / params.faraday)
    source = factor * params.surface_area_density(eps).astype(dtype) * j  # mol/(m^3 s)
    source[-1] = params.c_right
    return lower, diag, upper, excess, source, capacity


def concentration_steady_published(
    porosity: np.ndarray,
    reaction_current: np.ndarray,
    params: BatteryParameters = _DEFAULT_PARAMETERS,
) -> np.ndarray:
    """The steady state of the published scheme (its ``t -> inf`` limit): (B, N), mol/m^3.

    ``0 = (D_eff c')' + (1 - t_plus)/F a_s j`` on the cell centres, no flux at ``x = 0``,
    ``c = c_right`` on the last cell centre.

    Args:
        porosity: (B, N) or (N,), strictly inside (0, 1).
        reaction_current: ``j`` (B, N) or (N,), A/m^2.
        params: model constants.
    """
    params = _check_parameters(params)
    dtype = np.dtype(np.float64)
    lower, diag, upper, excess, source, _ = _concentration_system(
        porosity, reaction_current, params, 0.0, dtype
    )
    return np.ascontiguousarray(_solve_columns(lower, diag, upper, source, excess, dtype).T)


def concentration_transient_published(
    porosity: np.ndarray,
    reaction_current: np.ndarray,
    params: BatteryParameters = _DEFAULT_PARAMETERS,
    time_step: float = PUBLISHED_CODE_SETTINGS.time_step,
    n_steps: int = PUBLISHED_CODE_SETTINGS.n_steps,
    c_initial: np.ndarray | float | None = None,
    dtype: type | np.dtype = np.float64,
    chunk: int = 2048,
) -> np.ndarray:
    """Concentration after ``n_steps`` implicit-Euler steps of ``time_step``: (B, N), mol/m^3.

    ``eps c_t = (D_eff c')' + (1 - t_plus)/F a_s j`` with ``j`` fixed in time, no flux at
    ``x = 0``, ``c = c_right`` on the last cell centre (imposed at every step).

    Args:
        porosity: (B, N) or (N,), strictly inside (0, 1).
        reaction_current: ``j`` (B, N) or (N,), A/m^2.
        params: model constants.
        time_step: ``dt`` > 0, s.
        n_steps: number of steps >= 0 (``T = n_steps * dt``).
        c_initial: (B, N), (N,), scalar mol/m^3, or None for the uniform ``c_right``.
        dtype: arithmetic precision, float64 (default) or float32.
        chunk: batch members integrated together (memory/cache; results do not depend on it).
    """
    params = _check_parameters(params)
    dtype = _check_dtype(dtype)
    if not (np.isfinite(time_step) and time_step > 0):
        raise ValueError(f"time_step = {time_step!r} is not allowed; expected a number > 0 (s)")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 0:
        raise ValueError(f"n_steps = {n_steps!r} is not allowed; expected an integer >= 0")
    if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
        raise ValueError(f"chunk = {chunk!r} is not allowed; expected an integer >= 1")
    porosity = _check_porosity(porosity, params)
    shape = porosity.shape
    current = _check_nodal("reaction_current", reaction_current, shape)
    initial = _check_nodal("c_initial", params.c_right if c_initial is None else c_initial, shape)
    out = np.empty(shape)
    for start in range(0, shape[0], int(chunk)):
        part = slice(start, start + int(chunk))
        lower, diag, upper, excess, source, capacity = _concentration_system(
            porosity[part], current[part], params, 1.0 / time_step, dtype
        )
        out[part] = _implicit_euler(
            lower, diag, upper, excess, source, capacity, initial[part].T, int(n_steps), dtype
        ).T
    return out


def _implicit_euler(
    lower: np.ndarray,
    diag: np.ndarray,
    upper: np.ndarray,
    excess: np.ndarray,
    source: np.ndarray,
    capacity: np.ndarray,
    initial: np.ndarray,
    n_steps: int,
    dtype: np.dtype,
) -> np.ndarray:
    """``n_steps`` solves of ``A c^{n+1} = capacity c^n + source`` on (N, B) columns.

    ``A`` is factorised once (``A = L U``); each step is ``y = L^{-1}(capacity c + source)``
    and ``c = U^{-1} y`` with the pivots folded into the coefficients beforehand, so a step is
    two whole-array operations and four vector operations per row, without temporaries."""
    _, upper_scaled, inverse_pivot = _thomas_factor(
        lower, diag, upper, excess if dtype == np.float64 else None
    )
    lower_scaled = lower * inverse_pivot  # y_i = rhs_i / m_i - (l_i / m_i) y_{i-1}
    capacity_scaled = capacity * inverse_pivot
    source_scaled = source * inverse_pivot
    n_points = diag.shape[0]
    c = np.array(initial, dtype=dtype, order="C")
    y = np.empty_like(c)
    scratch = np.empty_like(c[0])
    for _ in range(n_steps):
        np.multiply(capacity_scaled, c, out=y)
        y += source_scaled
        for i in range(1, n_points):
            np.multiply(lower_scaled[i], y[i - 1], out=scratch)
            np.subtract(y[i], scratch, out=y[i])
        for i in range(n_points - 2, -1, -1):
            np.multiply(upper_scaled[i], y[i + 1], out=scratch)
            np.subtract(y[i], scratch, out=y[i])
        c, y = y, c
    return c


def solve_battery_published(
    porosity: np.ndarray,
    U0: float | np.ndarray,
    F_right: float | np.ndarray,
    params: BatteryParameters = _DEFAULT_PARAMETERS,
    settings: PublishedCodeSettings = PUBLISHED_CODE_SETTINGS,
    dtype: type | np.dtype | None = None,
) -> BatterySolution:
    """Fields ``(c(T), phi)`` of the published-code formulation on the cell centres.

    Args:
        porosity: (B, N) or (N,) porosity on ``params.cell_centres()``, inside (0, 1).
        U0: V, scalar or (B,). F_right: A/m^2, scalar or (B,).
        params: model constants (``n_points`` cells).
        settings: time step, final time and precision (``gp_jitter`` is not used here).
        dtype: arithmetic precision, float64 or float32 (the public code's); default (None)
            ``settings.precision``.

    Returns:
        :class:`~scorepde.physics.battery.BatterySolution` of (B, N) arrays: ``c`` at
        ``settings.final_time``; ``phi`` shifted so ``phi[:, 0] = 0``; ``reaction_current``
        from the shifted potential.
    """
    params = _check_parameters(params)
    if not isinstance(settings, PublishedCodeSettings):
        raise TypeError(f"settings must be a PublishedCodeSettings, got {type(settings).__name__}")
    dtype = _check_dtype(settings.precision if dtype is None else dtype)
    porosity = _check_porosity(porosity, params)
    batch = porosity.shape[0]
    open_circuit = _check_condition("U0", U0, batch)
    current = _check_condition("F_right", F_right, batch)
    phi_unshifted = solve_potential_published(porosity, open_circuit, current, params, dtype)
    phi = (phi_unshifted.astype(dtype) - phi_unshifted[:, :1].astype(dtype)).astype(float)
    j = reaction_current_published(phi, open_circuit, params)
    if dtype == np.float32:
        j = j.astype(np.float32).astype(float)
    c = concentration_transient_published(
        porosity, j, params, settings.time_step, settings.n_steps, dtype=dtype
    )
    return BatterySolution(c=c, phi=phi, phi_unshifted=phi_unshifted, reaction_current=j)
