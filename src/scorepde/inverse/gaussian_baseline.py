"""The linear-Gaussian baseline of an amortised posterior: fit ``(x, y)`` jointly Gaussian.

The strongest simple method trained on the same simulated pairs as the score model: regress
``x`` on ``y`` by least squares (with a small ridge) and take the regression's residual
covariance as the posterior covariance::

    mean(y) = mu_x + B (y - mu_y),     B = C_xy (C_yy + r I)^-1
    cov     = cov(x - mean(y))          (the same for every y)

For a linear forward model with Gaussian prior and noise this *is* the exact posterior (up to
the sampling error of ``N`` pairs); otherwise the mean is the best linear estimator of ``x``
from ``y`` (the linear minimum-mean-square-error estimate) and the covariance its average error.
What a score model must beat to claim it has learned more than second moments.

Hand-written: it is a least-squares gain and a Cholesky factor (numpy/scipy); no library offers
"a conditional Gaussian fitted to samples, sampled for any y" with this interface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scorepde.training.transforms import linear_gain


@dataclass(eq=False)
class GaussianPosterior:
    """``x | y ~ N(mu_x + B (y - mu_y), cov)``, fitted by :meth:`fit`.

    Shapes: ``x_shape``, ``y_shape`` (one pair, no batch axis); ``mean_x (dx,)``,
    ``mean_y (dy,)``, ``gain (dx, dy)``, ``cov_factor (dx, dx)`` lower triangular with
    ``cov_factor @ cov_factor.T`` the posterior covariance.
    """

    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    mean_x: np.ndarray
    mean_y: np.ndarray
    gain: np.ndarray
    cov_factor: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, *, ridge: float = 1e-6) -> GaussianPosterior:
        """Fit to ``N`` pairs ``x (N, *x_shape)``, ``y (N, *y_shape)``.

        ridge: added to the diagonal of ``C_yy`` relative to its mean diagonal (> 0 keeps the
        solve defined when ``N`` is below ``dy`` or ``y`` has constant components). The
        residual covariance is divided by ``N - 1 - min(dy, N - 2)`` degrees of freedom (the
        unbiased estimate of least squares; without it the in-sample residuals understate
        the error by the share of ``dy`` in ``N``).
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.ndim < 2 or y.ndim < 2:
            raise ValueError(
                f"x {x.shape} and y {y.shape} must be batches (N, ...) of at least 2 dimensions"
            )
        n = x.shape[0]
        if y.shape[0] != n:
            raise ValueError(f"x has {n} pairs and y {y.shape[0]}; they must match")
        if n < 3:
            raise ValueError(f"x has {n} pairs; need at least 3 to fit a mean and covariance")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("x and y must be finite")
        xf, yf = x.reshape(n, -1), y.reshape(n, -1)
        mean_x, mean_y = xf.mean(axis=0), yf.mean(axis=0)
        xc, yc = xf - mean_x, yf - mean_y
        gain = linear_gain(xc, yc, ridge)
        residual = xc - yc @ gain.T
        dof = n - 1 - min(yf.shape[1], n - 2)
        cov = residual.T @ residual / dof
        cov[np.diag_indices_from(cov)] += 1e-10 * max(float(np.trace(cov)) / cov.shape[0], 1e-300)
        cov_factor = np.linalg.cholesky(cov)
        return cls(
            tuple(int(s) for s in x.shape[1:]),
            tuple(int(s) for s in y.shape[1:]),
            mean_x,
            mean_y,
            gain,
            cov_factor,
        )

    def _check_y(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if y.shape == self.y_shape:
            y = y[None]
        if y.shape[1:] != self.y_shape:
            raise ValueError(
                f"y has shape {y.shape}; expected {self.y_shape} or (M, *{self.y_shape})"
            )
        return y.reshape(y.shape[0], -1)

    def mean(self, y: np.ndarray) -> np.ndarray:
        """The posterior mean ``(*x_shape)`` of one observation or ``(M, *x_shape)`` of ``M``."""
        single = np.shape(y) == self.y_shape
        flat = self.mean_x + (self._check_y(y) - self.mean_y) @ self.gain.T
        out = flat.reshape(-1, *self.x_shape)
        return out[0] if single else out

    @property
    def std(self) -> np.ndarray:
        """The posterior standard deviation ``(*x_shape)`` (the same for every observation)."""
        return np.sqrt(np.sum(self.cov_factor**2, axis=1)).reshape(self.x_shape)

    def sample(self, n: int, y: np.ndarray, seed: int) -> np.ndarray:
        """``n`` draws ``(n, *x_shape)`` for one observation ``y (*y_shape)``, from
        ``default_rng(seed)``."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n = {n!r}; expected an integer >= 1")
        if np.shape(y) != self.y_shape:
            raise ValueError(f"y has shape {np.shape(y)}; expected one observation {self.y_shape}")
        centre = self.mean(y).reshape(-1)
        z = np.random.default_rng(seed).standard_normal((int(n), centre.size))
        return (centre + z @ self.cov_factor.T).reshape(int(n), *self.x_shape)

    def __call__(self, y: np.ndarray, n: int, seed: int) -> np.ndarray:
        """The :data:`~scorepde.inverse.elasticity_reference.PosteriorSampler` signature:
        ``(y, n, seed) -> (n, *x_shape)``."""
        return self.sample(n, y, seed)


__all__ = ["GaussianPosterior"]
