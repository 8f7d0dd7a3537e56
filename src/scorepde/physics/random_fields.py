"""Gaussian-process random fields on a fixed 1-D grid and the sigmoid porosity map.

Sampling is exact on the grid: for a length scale ``l`` the covariance matrix ``K`` (N, N) is
factorised once by a symmetric eigendecomposition ``K = V diag(lam) V^T`` and ``A = V
diag(sqrt(max(lam, 0)))`` is kept, so ``A A^T = K`` up to round-off and ``x = A z`` with
``z ~ N(0, I)`` has covariance exactly ``K``. A Cholesky factor would need a jitter: the
squared-exponential kernel with ``l >= 0.05 L`` on 100 points has eigenvalues far below machine
precision (``K`` is numerically singular), while the eigendecomposition only has to clip the
round-off-sized negative eigenvalues (``|lam| < ~1e-14 * variance * N``) to zero.

The ``jitter`` option adds ``jitter * variance * I`` (a nugget) to ``K`` before factorising; it
defaults to ``0.0`` (exact). A non-zero jitter changes the distribution: it adds independent
white noise of variance ``jitter * variance`` at every node.

Factors are cached per length scale in a small LRU cache held by each sampler (the grid, and
so ``N``, is fixed per sampler), so many draws for one ``l`` cost one eigendecomposition.

On a tensor grid (one coordinate array per axis, e.g. cell centres ``(y_j, x_i)``), the
squared-exponential kernel is separable: ``exp(-|d|^2 / (2 l^2)) = prod_axes exp(-d_a^2 /
(2 l^2))``, so the covariance of the flattened field is the Kronecker product ``K = K_y kron
K_x`` of 1-D kernel matrices. :class:`KroneckerGaussianProcessSampler` factors each 1-D matrix
as above (``A_a A_a^T = K_a``, eigendecomposition with round-off negative eigenvalues clipped to
zero) and draws ``field = A_y Z A_x^T`` for ``Z`` standard normal ``(Ny, Nx)``: its covariance is
exactly ``(A_y A_y^T) kron (A_x A_x^T) = K``, at ``O(Ny^3 + Nx^3)`` for the factors and
``O(Ny Nx (Ny + Nx))`` per draw, never forming the ``(Ny Nx)^2`` matrix. Kernels that are not
separable in the Euclidean distance (exponential, Matern) are refused.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from scipy.special import expit, logit

__all__ = [
    "KERNELS",
    "GaussianProcessSampler",
    "KroneckerGaussianProcessSampler",
    "latent_from_porosity",
    "porosity_from_latent",
]


def _squared_exponential(distance: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * distance**2)


def _exponential(distance: np.ndarray) -> np.ndarray:
    return np.exp(-distance)


def _matern32(distance: np.ndarray) -> np.ndarray:
    scaled = math.sqrt(3.0) * distance
    return (1.0 + scaled) * np.exp(-scaled)


def _matern52(distance: np.ndarray) -> np.ndarray:
    scaled = math.sqrt(5.0) * distance
    return (1.0 + scaled + scaled**2 / 3.0) * np.exp(-scaled)


#: Correlation functions ``rho(d / l)`` of the distance in units of the length scale.
#: ``"exponential"`` is Matérn-1/2 (rough, continuous paths); ``"squared_exponential"`` gives
#: infinitely smooth paths.
KERNELS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "squared_exponential": _squared_exponential,
    "exponential": _exponential,
    "matern32": _matern32,
    "matern52": _matern52,
}


def _check_length_scale(length_scale: float) -> float:
    try:
        value = float(length_scale)
    except (TypeError, ValueError):
        raise ValueError(
            f"length_scale = {length_scale!r} is not allowed; expected a finite number > 0"
        ) from None
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(
            f"length_scale = {length_scale!r} is not allowed; expected a finite number > 0"
        )
    return value


class GaussianProcessSampler:
    """Exact zero-mean Gaussian-process sampler on a fixed 1-D grid.

    Args:
        grid: ``(N,)`` strictly increasing node positions (any length unit, e.g. metres),
            ``N >= 3``.
        kernel: one of ``KERNELS``: ``"squared_exponential"`` ``exp(-d^2 / (2 l^2))``,
            ``"exponential"`` ``exp(-d / l)``, ``"matern32"``, ``"matern52"``.
        variance: marginal variance of the field (> 0), in the square of the field's unit.
        jitter: relative nugget ``>= 0``; ``K + jitter * variance * I`` is factorised. The
            default 0.0 keeps sampling exact (see the module docstring).
        cache_size: number of length scales whose factors are kept (LRU), ``>= 1``.
    """

    def __init__(
        self,
        grid: np.ndarray,
        kernel: str = "squared_exponential",
        variance: float = 1.0,
        jitter: float = 0.0,
        cache_size: int = 16,
    ) -> None:
        grid = np.array(grid, dtype=float)  # a private copy, made read-only below
        if grid.ndim != 1 or grid.shape[0] < 3:
            raise ValueError(
                f"grid has shape {grid.shape}; expected a 1-D array with N >= 3 points"
            )
        if not np.all(np.isfinite(grid)) or not np.all(np.diff(grid) > 0):
            raise ValueError("grid must be finite and strictly increasing")
        if kernel not in KERNELS:
            raise ValueError(
                f"kernel = {kernel!r} is not allowed; expected one of {sorted(KERNELS)}"
            )
        if not (math.isfinite(variance) and variance > 0):
            raise ValueError(
                f"variance = {variance!r} is not allowed; expected a finite number > 0"
            )
        if not (math.isfinite(jitter) and jitter >= 0):
            raise ValueError(f"jitter = {jitter!r} is not allowed; expected a finite number >= 0")
        if not (isinstance(cache_size, int) and cache_size >= 1):
            raise ValueError(
                f"cache_size = {cache_size!r} is not allowed; expected an integer >= 1"
            )
        self.grid = grid
        self.grid.setflags(write=False)
        self.kernel = kernel
        self.variance = float(variance)
        self.jitter = float(jitter)
        self.cache_size = cache_size
        self._distance = np.abs(grid[:, None] - grid[None, :])
        self._factors: OrderedDict[float, np.ndarray] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    @property
    def n_points(self) -> int:
        """Number of grid nodes ``N``."""
        return int(self.grid.shape[0])

    def covariance(self, length_scale: float) -> np.ndarray:
        """Covariance matrix ``K_ij = variance * rho(|x_i - x_j| / l)``: ``(N, N)``.

        ``length_scale`` is in the grid's unit (metres for the battery grid), ``> 0``.
        The jitter is not included.
        """
        scale = _check_length_scale(length_scale)
        return self.variance * KERNELS[self.kernel](self._distance / scale)

    def factor(self, length_scale: float) -> np.ndarray:
        """Square-root factor ``A`` (N, N) with ``A A^T = K (+ jitter * variance * I)``.

        Cached per length scale; the returned array is read-only.
        """
        scale = _check_length_scale(length_scale)
        cached = self._factors.get(scale)
        if cached is not None:
            self._factors.move_to_end(scale)
            self.cache_hits += 1
            return cached
        self.cache_misses += 1
        matrix = self.covariance(scale)
        if self.jitter > 0.0:
            matrix = matrix + self.jitter * self.variance * np.eye(self.n_points)
        eigenvalues, eigenvectors = np.linalg.eigh(matrix)
        # Negative eigenvalues are round-off of a positive semi-definite matrix: clip them.
        root = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))[None, :]
        root.setflags(write=False)
        self._factors[scale] = root
        if len(self._factors) > self.cache_size:
            self._factors.popitem(last=False)
        return root

    def sample(self, length_scale: float, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` independent fields for one length scale: ``(n, N)``, zero mean.

        Args:
            length_scale: correlation length ``l`` in the grid's unit, ``> 0``.
            n: number of fields, ``>= 0``.
            rng: the generator every draw comes from.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if not (isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 0):
            raise ValueError(f"n = {n!r} is not allowed; expected an integer >= 0")
        root = self.factor(length_scale)
        normals = rng.standard_normal((int(n), self.n_points))
        return normals @ root.T

    def clear_cache(self) -> None:
        """Forget all cached factors (and reset the hit/miss counters)."""
        self._factors.clear()
        self.cache_hits = 0
        self.cache_misses = 0


class KroneckerGaussianProcessSampler:
    """Exact zero-mean squared-exponential Gaussian process on a tensor grid of any rank.

    The covariance of nodes ``p`` and ``q`` is ``variance * exp(-|p - q|^2 / (2 l^2))`` with
    the Euclidean distance over all axes; sampling uses the Kronecker structure (module
    docstring), one cached exact 1-D factor per axis and length scale.

    Args:
        coordinates: one strictly increasing 1-D array per grid axis, in array-axis order
            (``(y, x)`` for fields ``[..., j, i]``), each with at least 3 nodes; all axes in the
            same length unit.
        kernel: ``"squared_exponential"`` (the only separable kernel of ``KERNELS``).
        variance: marginal variance of the field (> 0), in the square of the field's unit.
        cache_size: number of length scales whose factors each axis keeps (LRU), ``>= 1``.
    """

    def __init__(
        self,
        coordinates: tuple[np.ndarray, ...],
        kernel: str = "squared_exponential",
        variance: float = 1.0,
        cache_size: int = 16,
    ) -> None:
        if kernel != "squared_exponential":
            raise ValueError(
                f"kernel = {kernel!r} is not allowed; expected 'squared_exponential' (the only "
                "kernel separable in the Euclidean distance, which the Kronecker sampler needs)"
            )
        if isinstance(coordinates, np.ndarray) or len(coordinates) < 1:
            raise ValueError(
                "coordinates must be a non-empty tuple of 1-D arrays (one per grid axis), got "
                f"{type(coordinates).__name__}"
            )
        if not (math.isfinite(variance) and variance > 0):
            raise ValueError(
                f"variance = {variance!r} is not allowed; expected a finite number > 0"
            )
        # One unit-variance 1-D sampler per axis: each owns its grid checks and factor cache.
        self._axes = tuple(
            GaussianProcessSampler(axis, kernel=kernel, variance=1.0, cache_size=cache_size)
            for axis in coordinates
        )
        self.kernel = kernel
        self.variance = float(variance)

    @property
    def coordinates(self) -> tuple[np.ndarray, ...]:
        """The grid axes (read-only copies), in array-axis order."""
        return tuple(axis.grid for axis in self._axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape ``S``: nodes along each axis."""
        return tuple(axis.n_points for axis in self._axes)

    def factors(self, length_scale: float) -> tuple[np.ndarray, ...]:
        """Per-axis unit-variance square roots ``A_a`` ``(N_a, N_a)``, ``A_a A_a^T = K_a``
        (cached, read-only); ``K = variance * kron(K_0, K_1, ...)``."""
        return tuple(axis.factor(length_scale) for axis in self._axes)

    def covariance(self, length_scale: float) -> np.ndarray:
        """The dense covariance of the flattened (C-order) field: ``(prod S, prod S)``.

        For checks on small grids only; sampling never forms it.
        """
        matrix = np.ones((1, 1))
        for axis in self._axes:
            matrix = np.kron(matrix, axis.covariance(length_scale))
        return self.variance * matrix

    def sample(self, length_scale: float, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` independent fields for one length scale: ``(n, *S)``, zero mean.

        Args:
            length_scale: correlation length ``l`` in the coordinates' unit, ``> 0``.
            n: number of fields, ``>= 0``.
            rng: the generator every draw comes from (one ``standard_normal((n, *S))`` call).
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if not (isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 0):
            raise ValueError(f"n = {n!r} is not allowed; expected an integer >= 0")
        roots = self.factors(length_scale)
        field = rng.standard_normal((int(n), *self.shape))
        for position, root in enumerate(roots):
            # Apply A_a along grid axis a: move it last, multiply by A_a^T, move it back.
            moved = np.moveaxis(field, position + 1, -1)
            field = np.moveaxis(moved @ root.T, -1, position + 1)
        return math.sqrt(self.variance) * field

    def clear_cache(self) -> None:
        """Forget all cached factors."""
        for axis in self._axes:
            axis.clear_cache()


def _check_bounds(porosity_min: float, porosity_max: float) -> None:
    if not (0.0 < porosity_min < porosity_max < 1.0):
        raise ValueError(
            f"porosity bounds (porosity_min, porosity_max) = ({porosity_min!r}, {porosity_max!r})"
            " are not allowed; expected 0 < porosity_min < porosity_max < 1"
        )


def porosity_from_latent(
    latent: np.ndarray, porosity_min: float = 0.2, porosity_max: float = 0.5
) -> np.ndarray:
    """Porosity ``eps = eps_min + (eps_max - eps_min) * sigmoid(latent)``: same shape as ``latent``.

    ``latent`` is dimensionless (a GP draw); the result lies in ``[eps_min, eps_max]`` (in the
    open interval unless ``|latent| > ~37``, where the sigmoid rounds to 0 or 1).
    """
    _check_bounds(porosity_min, porosity_max)
    latent = np.asarray(latent, dtype=float)
    if not np.all(np.isfinite(latent)):
        raise ValueError("latent contains non-finite values; expected finite numbers")
    return porosity_min + (porosity_max - porosity_min) * expit(latent)


def latent_from_porosity(
    porosity: np.ndarray, porosity_min: float = 0.2, porosity_max: float = 0.5
) -> np.ndarray:
    """Inverse of :func:`porosity_from_latent`: ``logit((eps - eps_min) / (eps_max - eps_min))``.

    ``porosity`` must lie strictly inside ``(porosity_min, porosity_max)``; same shape out.
    """
    _check_bounds(porosity_min, porosity_max)
    porosity = np.asarray(porosity, dtype=float)
    inside = np.isfinite(porosity) & (porosity > porosity_min) & (porosity < porosity_max)
    if not np.all(inside):
        bad = float(porosity[~inside].ravel()[0])
        raise ValueError(
            f"porosity contains {bad!r}; expected finite values strictly inside "
            f"({porosity_min}, {porosity_max})"
        )
    return logit((porosity - porosity_min) / (porosity_max - porosity_min))
