"""Steady (and transient) 1-D porous-electrode model: electrolyte potential and concentration.

On ``x in [0, L]`` with porosity ``eps(x)`` (see ``docs/physics.md``)::

    -(k_eff phi')' = a_s j,            j = k_rn (phi_s - phi - U0),   phi'(0) = 0,
                                                                       -k_eff(L) phi'(L) = F_right
    eps c_t = (D_eff c')' + (1 - t_plus) / F * a_s j,                  c'(0) = 0, c(L) = c_right

with ``k_eff = kappa0 eps^b``, ``D_eff = D0 eps^b``, ``a_s = a_s0 (1 - eps)``,
``phi_s = slope * x``. The potential is solved first (it does not depend on ``c``); ``j`` is
evaluated with that (unshifted) potential; afterwards ``phi`` is shifted so ``phi(0) = 0``.
The steady concentration is the default output.

Every function is batched: a porosity of shape ``(B, N)`` gives outputs of shape ``(B, N)``;
a single field ``(N,)`` is treated as ``B = 1`` and the outputs keep the leading batch axis
``(1, N)``. Conditions ``U0`` (V) and ``F_right`` (A/m^2) are scalars or ``(B,)`` arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from scorepde.physics.finite_volume import (
    solve_diffusion_reaction,
    solve_diffusion_reaction_transient,
)
from scorepde.physics.parameters import BatteryParameters

__all__ = [
    "BatterySolution",
    "reaction_current",
    "reference_solve_battery_scipy",
    "solve_battery",
    "solve_concentration",
    "solve_concentration_transient",
    "solve_potential",
]

_DEFAULT_PARAMETERS = BatteryParameters()


@dataclass(eq=False)
class BatterySolution:
    """Fields of a batch of steady solutions on the grid ``params.grid()``.

    (``eq=False``: fields are arrays; compare them with ``numpy.testing``.)

    Attributes:
        c: (B, N) electrolyte concentration, mol/m^3.
        phi: (B, N) electrolyte potential shifted so that ``phi[:, 0] == 0``, V.
        phi_unshifted: (B, N) electrolyte potential as solved (before the shift), V.
        reaction_current: (B, N) ``j = k_rn (phi_s - phi_unshifted - U0)``, A/m^2.
    """

    c: np.ndarray
    phi: np.ndarray
    phi_unshifted: np.ndarray
    reaction_current: np.ndarray

    CHANNELS: ClassVar[tuple[str, str]] = ("c", "phi")

    def as_channels(self) -> np.ndarray:
        """``(B, 2, N)`` stack of the channels ``CHANNELS = ("c", "phi")`` (mol/m^3, V)."""
        return np.stack([self.c, self.phi], axis=1)


# ----------------------------------------------------------------------------- validation
def _check_parameters(params: BatteryParameters) -> BatteryParameters:
    if not isinstance(params, BatteryParameters):
        raise TypeError(f"params must be a BatteryParameters, got {type(params).__name__}")
    params.validate()
    return params


def _check_porosity(porosity: np.ndarray, params: BatteryParameters) -> np.ndarray:
    """Porosity as a float array (B, N), finite and strictly inside (0, 1)."""
    array = np.asarray(porosity, dtype=float)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != params.n_points or array.shape[0] < 1:
        raise ValueError(
            f"porosity has shape {np.shape(porosity)}; expected (B, {params.n_points}) or "
            f"({params.n_points},) with n_points = {params.n_points} from params"
        )
    inside = np.isfinite(array) & (array > 0.0) & (array < 1.0)
    if not np.all(inside):
        sample, node = np.argwhere(~inside)[0]
        raise ValueError(
            f"porosity[{sample}, {node}] = {float(array[sample, node])!r} is not allowed; "
            "expected finite values strictly inside (0, 1)"
        )
    return array


def _check_condition(name: str, value: float | np.ndarray, batch: int) -> np.ndarray:
    """Per-sample condition broadcast to (B,)."""
    array = np.asarray(value, dtype=float)
    if array.ndim > 1 or (array.ndim == 1 and array.shape[0] not in (1, batch)):
        raise ValueError(
            f"{name} has shape {np.shape(value)}; expected a scalar, (1,) or ({batch},) "
            "to match the porosity batch"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} = {value!r} is not allowed; expected finite values")
    return np.broadcast_to(array, (batch,)).astype(float)


def _check_nodal(name: str, value: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.ndim == 1:
        array = array[None, :]
    try:
        array = np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(f"{name} has shape {np.shape(value)}; expected {shape}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values; expected finite numbers")
    return array


# ----------------------------------------------------------------------------- the two steps
def solve_potential(
    porosity: np.ndarray,
    U0: float | np.ndarray,
    F_right: float | np.ndarray,
    params: BatteryParameters = _DEFAULT_PARAMETERS,
) -> np.ndarray:
    """Electrolyte potential before the shift, ``phi_unshifted``: (B, N), V.

    Solves ``-(k_eff phi')' + a_s k_rn phi = a_s k_rn (phi_s - U0)`` with ``-k_eff phi'(0) = 0``
    and ``-k_eff phi'(L) = F_right``.

    Args:
        porosity: (B, N) or (N,) porosity, strictly inside (0, 1).
        U0: equilibrium potential, V; scalar or (B,).
        F_right: ionic current density leaving through ``x = L``, A/m^2; scalar or (B,).
        params: model constants.
    """
    params = _check_parameters(params)
    porosity = _check_porosity(porosity, params)
    batch = porosity.shape[0]
    open_circuit = _check_condition("U0", U0, batch)
    current = _check_condition("F_right", F_right, batch)
    grid = params.grid()
    reaction = params.surface_area_density(porosity) * params.reaction_rate  # S/m^3
    source = reaction * (params.solid_potential(grid)[None, :] - open_circuit[:, None])  # A/m^3
    return solve_diffusion_reaction(
        grid,
        params.effective_conductivity(porosity),
        reaction,
        source,
        left_flux=0.0,
        right=current,
        right_kind="flux",
    )


def reaction_current(
    phi_unshifted: np.ndarray,
    U0: float | np.ndarray,
    params: BatteryParameters = _DEFAULT_PARAMETERS,
) -> np.ndarray:
    """``j = k_rn (phi_s(x) - phi_unshifted - U0)``: (B, N), A/m^2.

    ``phi_unshifted`` (B, N) or (N,) in V must be the potential *before* the ``phi(0) = 0``
    shift; ``U0`` in V, scalar or (B,).
    """
    params = _check_parameters(params)
    return _reaction_current_at(params.grid(), phi_unshifted, "phi_unshifted", U0, params)


def _reaction_current_at(
    positions: np.ndarray,
    phi: np.ndarray,
    name: str,
    U0: float | np.ndarray,
    params: BatteryParameters,
) -> np.ndarray:
    """``k_rn (phi_s(positions) - phi - U0)``: (B, N) A/m^2 for ``phi`` (B, N) or (N,) in V
    (named ``name`` in errors) on the points ``positions`` (N,) m; ``U0`` scalar or (B,)."""
    potential = np.asarray(phi, dtype=float)
    if potential.ndim == 1:
        potential = potential[None, :]
    if potential.ndim != 2 or potential.shape[1] != params.n_points:
        raise ValueError(f"{name} has shape {np.shape(phi)}; expected (B, {params.n_points})")
    open_circuit = _check_condition("U0", U0, potential.shape[0])
    solid = params.solid_potential(positions)[None, :]
    return params.reaction_rate * (solid - potential - open_circuit[:, None])


def _concentration_coefficients(
    porosity: np.ndarray, current: np.ndarray, params: BatteryParameters
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    porosity = _check_porosity(porosity, params)
    current = _check_nodal("reaction_current", current, porosity.shape)
    diffusivity = params.effective_diffusivity(porosity)  # m^2/s
    source = (  # mol/(m^3 s)
        (1.0 - params.transference_number)
        / params.faraday
        * params.surface_area_density(porosity)
        * current
    )
    return porosity, diffusivity, source


def solve_concentration(
    porosity: np.ndarray,
    reaction_current: np.ndarray,
    params: BatteryParameters = _DEFAULT_PARAMETERS,
) -> np.ndarray:
    """Steady electrolyte concentration ``c``: (B, N), mol/m^3.

    Solves ``-(D_eff c')' = (1 - t_plus) / F * a_s j`` with ``c'(0) = 0``, ``c(L) = c_right``.

    Args:
        porosity: (B, N) or (N,), strictly inside (0, 1).
        reaction_current: ``j`` (B, N) or (N,), A/m^2 (from the unshifted potential).
        params: model constants.
    """
    params = _check_parameters(params)
    porosity, diffusivity, source = _concentration_coefficients(porosity, reaction_current, params)
    return solve_diffusion_reaction(
        params.grid(),
        diffusivity,
        0.0,
        source,
        left_flux=0.0,
        right=params.c_right,
        right_kind="dirichlet",
    )


def solve_concentration_transient(
    porosity: np.ndarray,
    reaction_current: np.ndarray,
    times: np.ndarray,
    c_initial: np.ndarray | float | None = None,
    params: BatteryParameters = _DEFAULT_PARAMETERS,
    substeps: int = 1,
) -> np.ndarray:
    """Time-dependent concentration of ``eps c_t = (D_eff c')' + (1 - t_plus) / F a_s j``.

    Same spatial scheme as :func:`solve_concentration` (capacity ``eps`` lumped at the nodes,
    half cells at the ends), variable-step BDF2 in time (see
    :func:`scorepde.physics.finite_volume.solve_diffusion_reaction_transient`); ``j`` is held
    fixed in time (the potential is quasi-static).

    Args:
        porosity: (B, N) or (N,), strictly inside (0, 1).
        reaction_current: ``j`` (B, N) or (N,), A/m^2.
        times: (T,) strictly increasing output times >= 0, s.
        c_initial: concentration at ``t = 0``, mol/m^3: (B, N), (N,), scalar, or ``None`` for
            the uniform ``c_right``.
        params: model constants.
        substeps: equal time steps per output interval, >= 1.

    Returns:
        (B, T, N) concentration, mol/m^3; it tends to :func:`solve_concentration` as t grows
        (the slowest mode decays on the scale ``L^2 eps / D_eff`` ~ 10^2-10^3 s).
    """
    params = _check_parameters(params)
    porosity, diffusivity, source = _concentration_coefficients(porosity, reaction_current, params)
    initial = params.c_right if c_initial is None else c_initial
    return solve_diffusion_reaction_transient(
        params.grid(),
        porosity,
        diffusivity,
        0.0,
        source,
        left_flux=0.0,
        right=params.c_right,
        right_kind="dirichlet",
        times=times,
        u_initial=initial,
        substeps=substeps,
    )


def solve_battery(
    porosity: np.ndarray,
    U0: float | np.ndarray,
    F_right: float | np.ndarray,
    params: BatteryParameters = _DEFAULT_PARAMETERS,
) -> BatterySolution:
    """Steady fields ``(c, phi)`` for a batch of porosity fields and operating conditions.

    Args:
        porosity: (B, N) or (N,) porosity, finite and strictly inside (0, 1); ``N`` must equal
            ``params.n_points``. A single field gives outputs of shape (1, N).
        U0: equilibrium potential, V; scalar or (B,).
        F_right: current density through ``x = L``, A/m^2; scalar or (B,).
        params: model constants.

    Returns:
        :class:`BatterySolution` with (B, N) arrays.
    """
    params = _check_parameters(params)
    porosity = _check_porosity(porosity, params)
    batch = porosity.shape[0]
    open_circuit = _check_condition("U0", U0, batch)
    current = _check_condition("F_right", F_right, batch)
    phi_unshifted = solve_potential(porosity, open_circuit, current, params)
    j = reaction_current(phi_unshifted, open_circuit, params)
    c = solve_concentration(porosity, j, params)
    return BatterySolution(
        c=c,
        phi=phi_unshifted - phi_unshifted[:, :1],
        phi_unshifted=phi_unshifted,
        reaction_current=j,
    )


# ----------------------------------------------------------------------------- scipy reference
def _sparse_diffusion_reaction(
    x: np.ndarray,
    conductivity: np.ndarray,
    reaction: np.ndarray,
    source: np.ndarray,
    left_flux: float,
    right: float,
    dirichlet: bool,
) -> np.ndarray:
    """One sample of the same scheme, assembled face by face in COO form, solved by spsolve."""
    n_points = x.shape[0]
    spacing = x[1:] - x[:-1]
    volumes = np.zeros(n_points)
    volumes[:-1] += 0.5 * spacing
    volumes[1:] += 0.5 * spacing
    face = 2.0 * conductivity[:-1] * conductivity[1:] / (conductivity[:-1] + conductivity[1:])
    weight = face / spacing
    left, right_node = np.arange(n_points - 1), np.arange(1, n_points)
    rows = np.concatenate([left, left, right_node, right_node, np.arange(n_points)])
    cols = np.concatenate([left, right_node, left, right_node, np.arange(n_points)])
    values = np.concatenate([weight, -weight, -weight, weight, reaction * volumes])
    load = source * volumes
    load[0] += left_flux
    if dirichlet:
        keep = rows != n_points - 1
        rows = np.append(rows[keep], n_points - 1)
        cols = np.append(cols[keep], n_points - 1)
        values = np.append(values[keep], 1.0)
        load[-1] = right
    else:
        load[-1] -= right
    matrix = scipy.sparse.coo_matrix((values, (rows, cols)), shape=(n_points, n_points)).tocsc()
    return scipy.sparse.linalg.spsolve(matrix, load)


def reference_solve_battery_scipy(
    porosity: np.ndarray,
    U0: float,
    F_right: float,
    params: BatteryParameters = _DEFAULT_PARAMETERS,
) -> BatterySolution:
    """Per-sample reference: the same discretisation assembled with scipy.sparse and spsolve.

    An independent implementation (face-wise COO assembly, sparse LU) used to cross-check
    :func:`solve_battery` and as the baseline of ``benchmarks/bench_solver.py``.

    Args:
        porosity: (N,) porosity, strictly inside (0, 1).
        U0: equilibrium potential, V (scalar).
        F_right: current density through ``x = L``, A/m^2 (scalar).
        params: model constants.

    Returns:
        :class:`BatterySolution` with (1, N) arrays.
    """
    params = _check_parameters(params)
    field = np.asarray(porosity, dtype=float)
    if field.ndim != 1:
        raise ValueError(f"porosity has shape {field.shape}; expected ({params.n_points},)")
    field = _check_porosity(field, params)[0]
    open_circuit = float(_check_condition("U0", U0, 1)[0])
    current = float(_check_condition("F_right", F_right, 1)[0])
    x = params.grid()
    surface = params.specific_area * (1.0 - field)
    bruggeman = field**params.bruggeman
    reaction = surface * params.reaction_rate
    phi_solid = params.solid_potential_slope * x
    phi = _sparse_diffusion_reaction(
        x,
        params.conductivity * bruggeman,
        reaction,
        reaction * (phi_solid - open_circuit),
        0.0,
        current,
        dirichlet=False,
    )
    j = params.reaction_rate * (phi_solid - phi - open_circuit)
    source = (1.0 - params.transference_number) / params.faraday * surface * j
    c = _sparse_diffusion_reaction(
        x,
        params.diffusivity * bruggeman,
        np.zeros_like(x),
        source,
        0.0,
        params.c_right,
        dirichlet=True,
    )
    return BatterySolution(
        c=c[None, :],
        phi=(phi - phi[0])[None, :],
        phi_unshifted=phi[None, :],
        reaction_current=j[None, :],
    )
