"""2-D elastography (plane-strain compression of a block) with a random shear modulus, as a
Problem: priors on ``mu`` and the ``(log_mu, u_x, u_y)`` pairs the campaigns store.

The forward model is :class:`scorepde.physics.elasticity.ElasticitySolver`: the unit square,
bottom on rollers, top pushed down by ``compression`` (in units of the side), sides free, Poisson
ratio 0.49, the shear modulus piecewise constant on ``n x n`` cells. Everything is
dimensionless: ``mu`` in units of the background (inclusion prior) or of its geometric mean
(random-field prior), displacements in units of the side.

Priors (``prior=``):

* ``"inclusion"`` (the seed's synthetic case): a background ``mu = 1`` with ``n_inclusions``
  (1 by default, or 2) circular inclusions of modulus ``contrast``. Condition ``contrast`` in
  ``[2, 8]`` (log-uniform in a campaign's design); latent: ``(n_inclusions, 3)`` rows ``(c_x,
  c_y, r)``, the radius uniform in ``radius_range`` (default ``[0.1, 0.25]``) and the centre
  uniform in ``[r, 1 - r]^2`` (the inclusion lies inside the square; two inclusions may
  overlap). A cell cut by a circle gets ``1 + (contrast - 1) f`` with ``f`` the fraction of its
  ``supersample x supersample`` sub-points (default 4 x 4) inside an inclusion (the union of
  the discs), so ``mu`` varies continuously with the centre and radius (an MCMC on these
  parameters sees a continuous likelihood at the scale of a sub-cell).
* ``"grf"``: ``log mu = sigma g`` with ``g`` a unit-variance squared-exponential Gaussian random
  field of length scale ``l`` on the cell centres (:class:`KroneckerGaussianProcessSampler`,
  exact, as Darcy's ``log k``). Conditions ``(l, sigma)``: ``l`` in ``[0.1, 0.4]``
  (log-uniform), ``sigma`` in ``[0.25, 1.0]``; latent ``g`` ``(n, n)``.

Fields: channels ``(log_mu, u_x, u_y)`` on the ``n x n`` cell centres ``((i + 1/2) / n, (j +
1/2) / n)``, arrays ``[..., j, i]``: the unknown of elastography (``log mu``, the first channel)
and the displacement it produces (the measurement, noise-free; the inverse layer adds the
noise). The displacement is evaluated at the cell centres so that ``mu`` and ``u`` share one
grid: a campaign file has the forward data's schema, and a 2-D U-Net takes ``u`` as field
conditions on the grid of ``log mu``. The displacement does not depend on the scale of ``mu``
(no force is measured): the prior fixes it (background 1, or ``E[log mu] = 0``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from scorepde.physics.elasticity import ElasticitySolver
from scorepde.physics.random_fields import KroneckerGaussianProcessSampler
from scorepde.problems.base import BoundaryCondition, ConditionSpec, Problem

__all__ = [
    "PRIORS",
    "ElasticityProblem",
    "inclusion_modulus",
    "sample_inclusions",
]

#: Priors on the shear modulus.
PRIORS = ("inclusion", "grf")

_INCLUSION_CONDITIONS = (
    ConditionSpec(
        "contrast",
        "1",
        2.0,
        8.0,
        log_scale=True,
        description="shear modulus of the inclusions over the background's",
        physical_low=0.0,
    ),
)
_GRF_CONDITIONS = (
    ConditionSpec(
        "l",
        "1",
        0.1,
        0.4,
        log_scale=True,
        description="correlation length of log mu in units of the side",
        physical_low=0.0,
    ),
    ConditionSpec(
        "sigma", "1", 0.25, 1.0, description="standard deviation of log mu", physical_low=0.0
    ),
)


def _check_radius_range(radius_range: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(value) for value in radius_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"radius_range = {radius_range!r} is not allowed; expected (low, high) with "
            "0 < low <= high < 0.5"
        ) from None
    if not (0.0 < low <= high < 0.5):
        raise ValueError(
            f"radius_range = {radius_range!r} is not allowed; expected (low, high) with "
            "0 < low <= high < 0.5"
        )
    return low, high


def sample_inclusions(
    n: int,
    rng: np.random.Generator,
    *,
    n_inclusions: int = 1,
    radius_range: tuple[float, float] = (0.1, 0.25),
) -> np.ndarray:
    """``n`` draws of ``n_inclusions`` discs inside the unit square: ``(n, n_inclusions, 3)``
    rows ``(c_x, c_y, r)`` in units of the side; ``r ~ U(radius_range)``, then each centre
    coordinate ``~ U(r, 1 - r)``."""
    low, high = _check_radius_range(radius_range)
    radius = rng.uniform(low, high, size=(int(n), int(n_inclusions)))
    unit = rng.uniform(0.0, 1.0, size=(int(n), int(n_inclusions), 2))
    centres = radius[..., None] + unit * (1.0 - 2.0 * radius[..., None])
    return np.concatenate([centres, radius[..., None]], axis=-1)


def inclusion_modulus(
    inclusions: np.ndarray, contrast: np.ndarray | float, n_cells: int, supersample: int = 4
) -> np.ndarray:
    """Shear modulus per cell of a unit background with circular inclusions.

    Args:
        inclusions: ``(B, m, 3)`` rows ``(c_x, c_y, r)`` in units of the side.
        contrast: ``(B,)`` or a scalar, the inclusions' modulus over the background's, ``> 0``.
        n_cells: cells per side ``n``.
        supersample: sub-points per cell per side used for the area fraction (``>= 1``).

    Returns:
        ``mu`` ``(B, n, n)`` (``[..., j, i]``): ``1 + (contrast - 1) f`` with ``f`` the
        fraction of the cell's sub-points inside at least one disc.
    """
    inclusions = np.asarray(inclusions, dtype=float)
    if inclusions.ndim != 3 or inclusions.shape[-1] != 3:
        raise ValueError(
            f"inclusions has shape {np.shape(inclusions)}; expected (B, m, 3) rows (c_x, c_y, r)"
        )
    batch = inclusions.shape[0]
    contrast = np.broadcast_to(np.asarray(contrast, dtype=float), (batch,))
    if not np.all(np.isfinite(contrast) & (contrast > 0.0)):
        raise ValueError(f"contrast = {contrast!r} is not allowed; expected finite values > 0")
    if isinstance(supersample, bool) or not isinstance(supersample, int) or supersample < 1:
        raise ValueError(f"supersample = {supersample!r} is not allowed; expected an integer >= 1")
    points = (np.arange(n_cells * supersample) + 0.5) / (n_cells * supersample)
    inside = np.zeros((batch, points.size, points.size), dtype=bool)
    for disc in range(inclusions.shape[1]):
        cx, cy, r = (inclusions[:, disc, k, None, None] for k in range(3))
        inside |= (points[None, None, :] - cx) ** 2 + (points[None, :, None] - cy) ** 2 < r**2
    fraction = inside.reshape(batch, n_cells, supersample, n_cells, supersample).mean(axis=(2, 4))
    return 1.0 + (contrast[:, None, None] - 1.0) * fraction


class ElasticityProblem(Problem):
    """Elastography pairs ``(log_mu, u_x, u_y)`` on ``n x n`` cell centres (module docstring).

    Args:
        n_cells: cells per side ``n`` (an integer ``>= 4``; 32 by default, 64 finer).
        prior: ``"inclusion"`` or ``"grf"``.
        n_inclusions: discs of the inclusion prior (1 or 2).
        radius_range: ``(low, high)`` radius of the discs in units of the side.
        supersample: sub-points per cell per side for the cut cells (inclusion prior).
        poisson_ratio, compression, element: of the solver
            (:class:`~scorepde.physics.elasticity.ElasticitySolver`).
    """

    name = "elasticity2d"
    channels = ("log_mu", "u_x", "u_y")
    channel_units = ("1", "1", "1")
    axis_names = ("y", "x")
    axis_units = ("1", "1")
    latent_unit = "1"
    mean_error_norm = "rms"
    kernel = "squared_exponential"

    def __init__(
        self,
        n_cells: int = 32,
        prior: str = "inclusion",
        *,
        n_inclusions: int = 1,
        radius_range: tuple[float, float] | list[float] = (0.1, 0.25),
        supersample: int = 4,
        poisson_ratio: float = 0.49,
        compression: float = 0.01,
        element: str = "Q1-sri",
    ) -> None:
        if isinstance(n_cells, bool) or not isinstance(n_cells, int | np.integer) or n_cells < 4:
            raise ValueError(f"n_cells = {n_cells!r} is not allowed; expected an integer >= 4")
        if prior not in PRIORS:
            raise ValueError(f"prior = {prior!r} is not allowed; expected one of {list(PRIORS)}")
        if n_inclusions not in (1, 2) or isinstance(n_inclusions, bool):
            raise ValueError(f"n_inclusions = {n_inclusions!r} is not allowed; expected 1 or 2")
        if isinstance(supersample, bool) or not isinstance(supersample, int) or supersample < 1:
            raise ValueError(
                f"supersample = {supersample!r} is not allowed; expected an integer >= 1"
            )
        self.n_cells = int(n_cells)
        self.prior = prior
        self.n_inclusions = int(n_inclusions)
        self.radius_range = _check_radius_range(tuple(radius_range))
        self.supersample = int(supersample)
        self.solver = ElasticitySolver(
            self.n_cells, poisson_ratio=poisson_ratio, compression=compression, element=element
        )
        self.conditions = _INCLUSION_CONDITIONS if prior == "inclusion" else _GRF_CONDITIONS
        self.latent_name = "inclusions" if prior == "inclusion" else "unit_log_mu"
        self._sampler = (
            KroneckerGaussianProcessSampler((self.centres, self.centres), kernel=self.kernel)
            if prior == "grf"
            else None
        )

    @property
    def centres(self) -> np.ndarray:
        """Cell-centre coordinates ``(i + 1/2) / n``: ``(n,)`` (read-only), both axes."""
        return self.solver.centres

    @property
    def coordinates(self) -> tuple[np.ndarray, ...]:
        """Cell centres ``(y_j, x_i)``, each ``(n,)``, in units of the side."""
        return (self.centres, self.centres)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """``(n_inclusions, 3)`` (inclusion prior) or ``(n, n)`` (random-field prior)."""
        if self.prior == "inclusion":
            return (self.n_inclusions, 3)
        return (self.n_cells, self.n_cells)

    def options(self) -> dict[str, Any]:
        """The constructor arguments as plain data."""
        return {
            "n_cells": self.n_cells,
            "prior": self.prior,
            "n_inclusions": self.n_inclusions,
            "radius_range": list(self.radius_range),
            "supersample": self.supersample,
            "poisson_ratio": self.solver.poisson_ratio,
            "compression": self.solver.compression,
            "element": self.solver.element,
        }

    def attributes(self) -> dict[str, Any]:
        """Flat HDF5-ready record of the prior, the solver and the condition specs."""
        return {
            "problem": self.name,
            **{f"option.{key}": value for key, value in self.options().items()},
            "domain": "unit square [0, 1]^2, lengths and displacements in units of the side",
            "equations": "plane-strain linear elasticity, lambda = 2 nu / (1 - 2 nu) mu",
            "boundary": (
                "u_y = 0 on y = 0, u_y = -compression on y = 1 (no shear traction on either), "
                f"sides traction-free, u_x = 0 at ({self.solver.x0:g}, 0)"
            ),
            "discretisation": (
                f"scikit-fem {self.solver.element} on the n x n cells, displacement at the cell "
                "centres"
            ),
            "log_mu": (
                "log of 1 + (contrast - 1) * (area fraction inside the discs)"
                if self.prior == "inclusion"
                else "sigma * unit_log_mu (squared-exponential GP of length scale l)"
            ),
            "condition_specs": json.dumps([dataclasses.asdict(s) for s in self.conditions]),
        }

    def boundary_conditions(self) -> tuple[BoundaryCondition, ...]:
        """None on the grid: the prescribed displacements hold on the edges, half a cell from
        the nearest cell centres."""
        return ()

    def default_evaluation_conditions(self) -> np.ndarray:
        """Inclusion: contrasts 2.5, 4, 6; random field: ``(l, sigma) = (0.15, 0.5), (0.3,
        0.8)``."""
        if self.prior == "inclusion":
            return np.array([[2.5], [4.0], [6.0]])
        return np.array([[0.15, 0.5], [0.3, 0.8]])

    def sample_latent(self, condition: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` latent draws for one condition row: discs ``(n, m, 3)`` or ``g`` ``(n, n, n)``."""
        if self.prior == "inclusion":
            return sample_inclusions(
                n, rng, n_inclusions=self.n_inclusions, radius_range=self.radius_range
            )
        assert self._sampler is not None
        return self._sampler.sample(float(condition[0]), n, rng)

    def log_modulus(self, latent: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """``log mu`` ``(B, n, n)`` from latent ``(B, *latent_shape)`` and conditions ``(B, k)``."""
        latent = np.asarray(latent, dtype=float)
        conditions = np.asarray(conditions, dtype=float)
        if self.prior == "inclusion":
            mu = inclusion_modulus(latent, conditions[:, 0], self.n_cells, self.supersample)
            return np.log(mu)
        return conditions[:, 1, None, None] * latent

    def solve(self, latent: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Latent ``(B, *latent_shape)`` and conditions ``(B, k)`` -> ``(B, 3, n, n)``:
        ``log mu`` and the displacement ``(u_x, u_y)`` at the cell centres."""
        log_mu = self.log_modulus(latent, conditions)
        u = self.solver.solve(np.exp(log_mu))
        return np.concatenate([log_mu[:, None], u], axis=1)

    def __repr__(self) -> str:
        return (
            f"ElasticityProblem(n_cells={self.n_cells}, prior={self.prior!r}, "
            f"conditions={self.condition_names})"
        )
