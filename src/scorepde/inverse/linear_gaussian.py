"""A linear-Gaussian inverse problem with a closed-form posterior, to check posterior samplers.

Prior ``x ~ N(mu, P)`` in ``d`` dimensions, forward model ``F(x) = A x`` (``A: (m, d)``), noise
``y = A x + s e``, ``e ~ N(0, I_m)``. The posterior is Gaussian (Kalman gain form)::

    K = P A^T (A P A^T + s^2 I)^{-1}
    mean(y) = mu + K (y - A mu),      cov = P - K A P   (the same for every y)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scorepde.inverse.noise_models import AdditiveGaussian


@dataclass(eq=False)
class LinearGaussianProblem:
    """``x ~ N(prior_mean, prior_cov)``, ``y = A x + noise_std e``.

    Shapes: ``prior_mean (d,)``, ``prior_cov (d, d)`` symmetric positive definite, ``A (m, d)``;
    ``noise_std > 0`` (units of ``y``).
    """

    d: int
    m: int
    prior_mean: np.ndarray
    prior_cov: np.ndarray
    A: np.ndarray
    noise_std: float

    def __post_init__(self) -> None:
        self.prior_mean = np.asarray(self.prior_mean, dtype=np.float64)
        self.prior_cov = np.asarray(self.prior_cov, dtype=np.float64)
        self.A = np.asarray(self.A, dtype=np.float64)
        if self.prior_mean.shape != (self.d,) or self.prior_cov.shape != (self.d, self.d):
            raise ValueError(
                f"prior_mean {self.prior_mean.shape} and prior_cov {self.prior_cov.shape} must "
                f"be ({self.d},) and ({self.d}, {self.d})"
            )
        if self.A.shape != (self.m, self.d):
            raise ValueError(f"A has shape {self.A.shape}; expected ({self.m}, {self.d})")
        if not np.allclose(self.prior_cov, self.prior_cov.T):
            raise ValueError("prior_cov must be symmetric")
        if not self.noise_std > 0.0:
            raise ValueError(f"noise_std must be > 0, got {self.noise_std}")
        self._prior_factor = np.linalg.cholesky(self.prior_cov)  # raises if not SPD

    @property
    def noise(self) -> AdditiveGaussian:
        """The measurement noise model ``AdditiveGaussian(noise_std)``."""
        return AdditiveGaussian(float(self.noise_std))

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` prior draws ``(n, d)``."""
        return self.prior_mean + rng.standard_normal((n, self.d)) @ self._prior_factor.T

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Noise-free measurements ``A x``: ``(n, d) -> (n, m)`` (or ``(d,) -> (m,)``)."""
        return np.asarray(x, dtype=np.float64) @ self.A.T

    def exact_posterior(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior ``(mean (d,), cov (d, d))`` of ``x`` given one observation ``y (m,)``."""
        y = np.asarray(y, dtype=np.float64).reshape(self.m)
        pa = self.prior_cov @ self.A.T  # (d, m)
        innovation = self.A @ pa + self.noise_std**2 * np.eye(self.m)
        gain = np.linalg.solve(innovation, pa.T).T  # (d, m), innovation is symmetric
        mean = self.prior_mean + gain @ (y - self.A @ self.prior_mean)
        cov = self.prior_cov - gain @ pa.T
        return mean, 0.5 * (cov + cov.T)


def make_linear_gaussian(
    d: int, m: int, seed: int, *, noise_std: float = 0.25
) -> LinearGaussianProblem:
    """A well-conditioned random instance.

    Prior: mean entries ``~ N(0, 0.5^2)``; covariance ``Q diag(lambda) Q^T`` with a random
    rotation ``Q`` and eigenvalues spaced geometrically in ``[0.5, 2]``. Forward matrix:
    ``U diag(s) V^T`` with random orthonormal ``U (m, r)``, ``V (d, r)`` (``r = min(m, d)``) and
    singular values geometric in ``[0.5, 1.5]``. So every observed direction is informative
    (posterior / prior variance between ~0.01 and ~0.2 with ``noise_std = 0.25``) and, for
    ``m < d``, ``d - m`` directions keep their prior spread.
    """
    if d < 1 or m < 1:
        raise ValueError(f"need d >= 1 and m >= 1, got d={d}, m={m}")
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eigenvalues = np.geomspace(0.5, 2.0, d) if d > 1 else np.ones(1)
    prior_cov = (q * eigenvalues) @ q.T
    prior_mean = 0.5 * rng.standard_normal(d)
    r = min(m, d)
    u, _ = np.linalg.qr(rng.standard_normal((m, r)))
    v, _ = np.linalg.qr(rng.standard_normal((d, r)))
    singular = np.geomspace(0.5, 1.5, r) if r > 1 else np.ones(1)
    a = (u * singular) @ v.T
    return LinearGaussianProblem(
        d=d,
        m=m,
        prior_mean=prior_mean,
        prior_cov=0.5 * (prior_cov + prior_cov.T),
        A=a,
        noise_std=noise_std,
    )


def make_gaussian_linear_task(
    d: int = 10, *, prior_variance: float = 0.1, noise_variance: float = 0.1
) -> LinearGaussianProblem:
    """The sbi benchmark's ``gaussian_linear`` task: ``x ~ N(0, prior_variance I_d)``,
    ``y = x + sqrt(noise_variance) e`` (``m = d``, ``A = I``).

    The posterior is ``N(y v_p / (v_p + v_n), v_p v_n / (v_p + v_n) I)``: with the defaults
    (``v_p = v_n = 0.1``) mean ``y / 2`` and standard deviation ``sqrt(0.05) = 0.2236`` in every
    component, for every ``y``.
    """
    if d < 1:
        raise ValueError(f"need d >= 1, got d={d}")
    if not (prior_variance > 0.0 and noise_variance > 0.0):
        raise ValueError(
            f"prior_variance and noise_variance must be > 0, got {prior_variance}, {noise_variance}"
        )
    return LinearGaussianProblem(
        d=d,
        m=d,
        prior_mean=np.zeros(d),
        prior_cov=prior_variance * np.eye(d),
        A=np.eye(d),
        noise_std=float(np.sqrt(noise_variance)),
    )


__all__ = ["LinearGaussianProblem", "make_gaussian_linear_task", "make_linear_gaussian"]
