"""Steady 2-D Darcy flow through a random permeability field, as a Problem.

Conditions ``p = (l, sigma)``:

=====  ====  ============  =================================================================
name   unit  design range  meaning
=====  ====  ============  =================================================================
l      1     [0.05, 0.5]   correlation length of ``log k`` in units of the side (log-uniform)
sigma  1     [0.25, 1.5]   standard deviation of ``log k``
=====  ====  ============  =================================================================

Latent field: ``g``, a unit-variance zero-mean squared-exponential GP of length scale ``l`` on
the ``N x N`` cell centres (sampled exactly, :class:`KroneckerGaussianProcessSampler`); the
log permeability is ``log k = sigma * g``. The pressure ``u`` solves ``-div(k grad u) = 0`` on
the unit square with ``u = 1`` on ``x = 0``, ``u = 0`` on ``x = 1`` and no flux through
``y = 0, 1`` (:func:`scorepde.physics.darcy.solve_darcy`). Channels ``(log_k, u)``, both
dimensionless (``log(k / k_ref)`` and the pressure in units of the applied drop), on the cell
centres, arrays ``[..., j, i]`` (``j`` the y index).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from scorepde.physics.darcy import (
    darcy_residual,
    darcy_transmissibilities,
    effective_permeability,
    solve_darcy,
)
from scorepde.physics.random_fields import KroneckerGaussianProcessSampler
from scorepde.problems.base import (
    BoundaryCondition,
    ConditionSpec,
    Problem,
    Reflection,
    TwoPointNorm,
)

__all__ = ["DarcyProblem"]

#: Pressure on the inflow face x = 0 and the outflow face x = 1 (dimensionless).
LEFT_PRESSURE = 1.0
RIGHT_PRESSURE = 0.0


class DarcyProblem(Problem):
    """2-D Darcy flow: unit GP draw ``g`` -> ``(log_k = sigma g, u)``, conditions ``(l, sigma)``.

    Args:
        n_cells: cells per side ``N`` (an integer ``>= 4``; 32 by default, 64 for finer data).
            The grid is ``N x N`` cell centres ``(i + 1/2) / N``.
    """

    name = "darcy2d"
    conditions = (
        ConditionSpec(
            "l",
            "1",
            0.05,
            0.5,
            log_scale=True,
            description="correlation length of log k in units of the side",
            physical_low=0.0,
        ),
        ConditionSpec(
            "sigma", "1", 0.25, 1.5, description="standard deviation of log k", physical_low=0.0
        ),
    )
    channels = ("log_k", "u")
    solution_channels = ("u",)
    channel_units = ("1", "1")
    axis_names = ("y", "x")
    axis_units = ("1", "1")  # coordinates in units of the side
    latent_name = "unit_log_k"
    latent_unit = "1"
    mean_error_norm = "rms"
    kernel = "squared_exponential"

    def __init__(self, n_cells: int = 32) -> None:
        if isinstance(n_cells, bool) or not isinstance(n_cells, int | np.integer) or n_cells < 4:
            raise ValueError(f"n_cells = {n_cells!r} is not allowed; expected an integer >= 4")
        self.n_cells = int(n_cells)
        centres = (np.arange(self.n_cells) + 0.5) / self.n_cells
        centres.setflags(write=False)
        self._centres = centres
        self._sampler = KroneckerGaussianProcessSampler((centres, centres), kernel=self.kernel)

    @property
    def coordinates(self) -> tuple[np.ndarray, ...]:
        """Cell centres ``(y_j, x_i) = ((j + 1/2) / N, (i + 1/2) / N)``, each ``(N,)``, in units
        of the side (read-only)."""
        return (self._centres, self._centres)

    def options(self) -> dict[str, Any]:
        """The constructor arguments as plain data (``get_problem("darcy2d", **options)``)."""
        return {"n_cells": self.n_cells}

    def attributes(self) -> dict[str, Any]:
        """Flat HDF5-ready record: grid size, latent GP, boundary values, the discretisation
        and the condition specs as JSON."""
        return {
            "problem": self.name,
            "n_cells": self.n_cells,
            "domain": "unit square [0, 1]^2, lengths in units of the side",
            "latent.kernel": self.kernel,
            "latent.variance": 1.0,
            "latent.length_scale_unit": "side of the square (condition l)",
            "log_k": "sigma * unit_log_k (condition sigma)",
            "boundary.left_pressure": LEFT_PRESSURE,
            "boundary.right_pressure": RIGHT_PRESSURE,
            "boundary.y": "no flux through y = 0 and y = 1",
            "discretisation": (
                "cell-centred finite volumes, two-point fluxes, harmonic-mean face permeability, "
                "Dirichlet values on the boundary faces"
            ),
            "condition_specs": json.dumps([dataclasses.asdict(s) for s in self.conditions]),
        }

    def boundary_conditions(self) -> tuple[BoundaryCondition, ...]:
        """None on the grid: the Dirichlet values ``u = 1`` (x = 0) and ``u = 0`` (x = 1) and the
        no-flux conditions hold on the boundary *faces*, half a cell away from the nearest grid
        points (cell centres), so no grid value is fixed. The residual checks them instead."""
        return ()

    def derived_quantities(
        self, fields: np.ndarray, conditions: np.ndarray
    ) -> dict[str, np.ndarray]:
        """``{"log_k_eff": (n,)}``: the log of the effective permeability of each
        ``(log_k, u)`` pair of ``fields`` ``(n, 2, N, N)`` under the unit pressure drop: the
        total flux averaged over the vertical cuts (:func:`effective_permeability` with
        ``estimator="mean_flux"``), which equals the outflow through ``x = 1`` to round-off for
        every simulated pair and does not rest on the one column of cells next to the outlet
        for a generated pair (docs/physics.md); NaN where the flux is not positive (possible
        for a generated field only)."""
        del conditions
        log_k, u = self._channels(fields)
        k_eff = effective_permeability(
            log_k, u, left=LEFT_PRESSURE, right=RIGHT_PRESSURE, estimator="mean_flux"
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            log_k_eff = np.where(k_eff > 0, np.log(np.where(k_eff > 0, k_eff, 1.0)), np.nan)
        return {"log_k_eff": log_k_eff}

    def residual(self, fields: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """R.m.s. over the cells of the finite-volume residual (net outflow of each cell,
        :func:`darcy_residual`, with ``u = 1`` / ``0`` on the faces x = 0 / 1) of each
        ``(log_k, u)`` pair: ``(n,)``, in units of ``k_ref`` times the pressure drop (a total
        flux per cell; the flux through the whole square is ``k_eff``). Round-off (~1e-14) for
        simulated fields."""
        del conditions
        log_k, u = self._channels(fields)
        cells = darcy_residual(log_k, u, left=LEFT_PRESSURE, right=RIGHT_PRESSURE)
        return np.sqrt(np.mean(cells**2, axis=(1, 2)))

    def solution_reflections(self) -> tuple[Reflection, ...]:
        """``y -> 1 - y`` (axis 0) leaves the pressure; ``x -> 1 - x`` (axis 1) swaps the
        boundary values 1 and 0, so the pressure becomes ``1 - u`` (reflected)."""
        return (
            Reflection(axis=0),
            Reflection(axis=1, scale=-1.0, offset=LEFT_PRESSURE + RIGHT_PRESSURE),
        )

    def solution_norm(self, fields: np.ndarray) -> TwoPointNorm:
        """The two-point operator of each medium: its face transmissibilities ``(ty, tx)``
        (:func:`darcy_transmissibilities`: Dirichlet faces at x = 0, 1, no-flux faces at
        y = 0, 1)."""
        log_k, _ = self._channels(fields)
        tx, ty = darcy_transmissibilities(log_k)
        return TwoPointNorm(face_weights=(ty, tx))

    def default_evaluation_conditions(self) -> np.ndarray:
        """Three interior conditions: ``(l, sigma) = (0.1, 0.5), (0.2, 1.0), (0.3, 1.25)``."""
        return np.array([[0.1, 0.5], [0.2, 1.0], [0.3, 1.25]])

    def sample_latent(self, condition: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Unit-variance GP draws ``g`` for one condition row ``(l, sigma)``: ``(n, N, N)``,
        dimensionless, length scale ``l`` (in units of the side)."""
        return self._sampler.sample(float(condition[0]), n, rng)

    def solve(self, latent: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Latent ``g`` ``(B, N, N)`` and conditions ``(B, 2)`` -> ``(B, 2, N, N)``:
        ``log_k = sigma * g`` and the pressure ``u`` (both dimensionless)."""
        latent = np.asarray(latent, dtype=float)
        conditions = np.asarray(conditions, dtype=float)
        log_k = conditions[:, 1, None, None] * latent
        u = solve_darcy(log_k, left=LEFT_PRESSURE, right=RIGHT_PRESSURE)
        return np.stack([log_k, u], axis=1)

    def _channels(self, fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        array = np.asarray(fields, dtype=float)
        n = self.n_cells
        if array.ndim != 4 or array.shape[1:] != (len(self.channels), n, n):
            raise ValueError(
                f"fields has shape {np.shape(fields)}; expected (n, 2, {n}, {n}) with channels "
                "(log_k, u)"
            )
        return array[:, 0], array[:, 1]
