"""2-D elastography as an inverse problem (registered as ``"elasticity"`` in
:data:`~scorepde.inverse.problems.INVERSE_PROBLEMS`): ``log mu`` on the cell grid from a noisy
displacement.

The unknown ``x`` is the log shear modulus ``(1, n, n)`` on the cell centres; the measurement
``y`` is the displacement ``(u_x, u_y)`` ``(2, n, n)`` on the same grid
(:class:`~scorepde.problems.elasticity.ElasticityProblem`, which also fixes the priors and the
forward model). Priors:

* ``"inclusion"``: unit background, ``n_inclusions`` discs (1 or 2) of modulus ``contrast``,
  ``contrast`` log-uniform in ``contrast_range`` (default ``[2, 8]``, the forward problem's
  design range), radius uniform in ``radius_range``, centre uniform with the disc inside the
  square;
* ``"grf"``: ``log mu = sigma g``, ``g`` the unit squared-exponential GRF of length scale
  ``length_scale`` (defaults ``sigma = 0.5``, ``l = 0.2``).

Noise (``noise=``), all sized by ``noise_level`` (default 0.05):

* ``"gaussian"``: additive Gaussian of standard deviation ``noise_level`` times the range of
  the displacement, taken as the applied compression ``delta`` (``u_y`` runs from ``-delta``
  on the top edge to 0 on the bottom edge for every modulus; ``u_x`` spans ``~0.96 delta`` for
  a homogeneous block): 2.5 %, 5 % and 10 % are ``noise_level = 0.025, 0.05, 0.1``;
* ``"student_t"``: additive Student-t with ``df`` degrees of freedom (default 3) and the same
  scale (outliers);
* ``"multiplicative"``: a mean-one log-normal factor per component with ``sigma =
  noise_level``.

The displacement does not depend on the scale of ``mu``; the priors fix it (background 1 or
``E[log mu] = 0``), so only the pattern of ``mu`` is learnt from ``y``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scorepde.inverse.noise_models import (
    AdditiveGaussian,
    MultiplicativeLogNormal,
    NoiseModel,
    StudentT,
)
from scorepde.problems.elasticity import ElasticityProblem, sample_inclusions

__all__ = ["NOISES", "Elastography"]

#: Measurement noise families of :class:`Elastography`.
NOISES = ("gaussian", "student_t", "multiplicative")


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} = {value!r} is not allowed; expected a finite number > 0")
    number = float(value)
    if not (math.isfinite(number) and number > 0.0):
        raise ValueError(f"{name} = {value!r} is not allowed; expected a finite number > 0")
    return number


class Elastography:
    """Prior, forward model and noise of the elastography inverse problem (module docstring).

    Args:
        prior: ``"inclusion"`` or ``"grf"``.
        n_cells: cells per side ``n`` (32 by default).
        noise: one of :data:`NOISES`; noise_level: its size (see the module docstring);
            df: degrees of freedom of ``"student_t"``.
        contrast_range: ``(low, high)``, ``0 < low < high``, inclusion prior.
        length_scale, sigma: of the random-field prior (``> 0``).
        **options: passed to :class:`ElasticityProblem` (``n_inclusions``, ``radius_range``,
            ``supersample``, ``poisson_ratio``, ``compression``, ``element``).

    Attributes: ``problem`` (the :class:`ElasticityProblem`), ``noise``, ``x_shape = (1, n,
    n)``, ``y_shape = (2, n, n)``.
    """

    def __init__(
        self,
        prior: str = "inclusion",
        n_cells: int = 32,
        *,
        noise: str = "gaussian",
        noise_level: float = 0.05,
        df: float = 3.0,
        contrast_range: tuple[float, float] | list[float] = (2.0, 8.0),
        length_scale: float = 0.2,
        sigma: float = 0.5,
        **options: Any,
    ) -> None:
        self.problem = ElasticityProblem(n_cells, prior, **options)
        if noise not in NOISES:
            raise ValueError(f"noise = {noise!r} is not allowed; expected one of {list(NOISES)}")
        level = _positive("noise_level", noise_level)
        scale = level * abs(self.problem.solver.compression)
        self.noise: NoiseModel
        if noise == "gaussian":
            self.noise = AdditiveGaussian(scale)
        elif noise == "student_t":
            self.noise = StudentT(_positive("df", df), scale)
        else:
            self.noise = MultiplicativeLogNormal(level)
        self.noise_name = noise
        self.noise_level = level
        low, high = (float(value) for value in contrast_range)
        if not (0.0 < low < high and math.isfinite(high)):
            raise ValueError(
                f"contrast_range = {contrast_range!r} is not allowed; expected 0 < low < high"
            )
        self.contrast_range = (low, high)
        self.length_scale = _positive("length_scale", length_scale)
        self.sigma = _positive("sigma", sigma)
        n = self.problem.n_cells
        self.x_shape = (1, n, n)
        self.y_shape = (2, n, n)

    def sample_conditions(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The forward problem's conditions of ``n`` prior draws: ``(n, k)`` (inclusion:
        log-uniform contrasts; random field: the fixed ``(l, sigma)``)."""
        if self.problem.prior == "inclusion":
            low, high = np.log(self.contrast_range)
            return np.exp(rng.uniform(low, high, size=(int(n), 1)))
        return np.tile([self.length_scale, self.sigma], (int(n), 1))

    def sample_latent(self, conditions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Latent draws for conditions ``(n, k)``: discs ``(n, m, 3)`` or ``g`` ``(n, n, n)``."""
        count = conditions.shape[0]
        if self.problem.prior == "inclusion":
            return sample_inclusions(
                count,
                rng,
                n_inclusions=self.problem.n_inclusions,
                radius_range=self.problem.radius_range,
            )
        return self.problem.sample_latent(conditions[0], count, rng)

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` prior draws of ``x = log mu``: ``(n, 1, n_cells, n_cells)``."""
        conditions = self.sample_conditions(n, rng)
        latent = self.sample_latent(conditions, rng)
        return self.problem.log_modulus(latent, conditions)[:, None]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Noise-free displacement of ``x = log mu`` ``(n, 1, N, N)``: ``(n, 2, N, N)``."""
        x = np.asarray(x, dtype=float)
        if x.ndim != 4 or x.shape[1:] != self.x_shape:
            raise ValueError(f"x has shape {x.shape}; expected (n, *{self.x_shape}) (log mu)")
        return self.problem.solver.solve(np.exp(x[:, 0]))
