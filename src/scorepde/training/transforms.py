"""Transforms between physical values and a network's space that are not a field normaliser:
the per-component :class:`Standardiser` (``x`` and observed ``y`` of an inverse problem), the
:class:`LinearEstimateStandardiser` (an observed field plus the linear estimate of ``x`` from it,
as condition channels), the :class:`ResidualStandardiser` (``x`` as its standardised residual
from that estimate), and their records for a model folder.

A transform exposes ``transform(values, conditions=None)`` (physical -> network space) and
``inverse(z, conditions=None)`` (network space -> physical), like the field normalisers of
``scorepde.data.normalisation``; the Standardiser ignores ``conditions``.

In a model or checkpoint folder a Standardiser is recorded as ``{"kind": "standardiser",
"shape": [...], "mean": array, "scale": array}``; ``checkpoint.py`` writes the arrays to
``transforms.safetensors`` and leaves a reference in the YAML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.linalg

STANDARDISER_KIND = "standardiser"
LINEAR_ESTIMATE_KIND = "standardiser_linear_estimate"
RESIDUAL_KIND = "standardiser_residual"


def linear_gain(x: np.ndarray, y: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """Least-squares gain ``B (dx, dy)`` of centred ``x (N, dx)`` on centred ``y (N, dy)``:
    ``B = C_xy (C_yy + r I)^-1`` with ``r = ridge x`` the mean diagonal of ``C_yy`` (``ridge > 0``
    keeps the solve defined when ``N < dy`` or a component of ``y`` is constant). Both inputs
    must already have their means removed."""
    if not ridge > 0 or not np.isfinite(ridge):
        raise ValueError(f"ridge = {ridge!r}; expected a finite number > 0")
    c_yy = y.T @ y
    c_yy[np.diag_indices_from(c_yy)] += ridge * max(float(np.trace(c_yy)) / c_yy.shape[0], 1e-300)
    factor = scipy.linalg.cho_factor(c_yy, lower=True)
    return scipy.linalg.cho_solve(factor, (x.T @ y).T).T


@dataclass(eq=False)
class Standardiser:
    """Per-component ``z = (v - mean) / scale``; ``mean``, ``scale`` have one sample's shape.

    A component whose standard deviation is below ``floor * max(1, |mean|)`` (constant over
    the training set) gets ``scale = 1``, so nothing is divided by ~0.
    """

    mean: np.ndarray
    scale: np.ndarray

    #: The ``kind`` of :meth:`to_record`, checked by :meth:`from_dict` (each subclass its own).
    KIND: ClassVar[str] = STANDARDISER_KIND

    @classmethod
    def fit(cls, values: np.ndarray, floor: float = 1e-12) -> Standardiser:
        """Fit to ``values (n, *shape)``, ``n >= 1``."""
        values = np.asarray(values, dtype=np.float64)
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        scale = np.where(std > floor * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return cls(mean=mean, scale=scale)

    @property
    def shape(self) -> tuple[int, ...]:
        """One sample's shape."""
        return tuple(self.mean.shape)

    def transform(self, values: np.ndarray, conditions: Any = None) -> np.ndarray:
        """``(..., *shape)`` physical -> standardised, float64 (``conditions`` is ignored)."""
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.scale

    def inverse(self, z: np.ndarray, conditions: Any = None) -> np.ndarray:
        """``(..., *shape)`` standardised -> physical, float64 (``conditions`` is ignored)."""
        return np.asarray(z, dtype=np.float64) * self.scale + self.mean

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (JSON-ready; floats round-trip exactly). A model folder stores
        :meth:`to_record` instead, whose arrays go to safetensors."""
        return {
            "shape": list(self.shape),
            "mean": self.mean.ravel().tolist(),
            "scale": self.scale.ravel().tolist(),
        }

    def to_record(self) -> dict[str, Any]:
        """``{"kind", "shape", "mean", "scale"}`` with float64 arrays (for a model folder); a
        subclass adds its own arrays, under its own ``kind``."""
        return {
            "kind": self.KIND,
            "shape": list(self.shape),
            "mean": np.array(self.mean, dtype=np.float64),
            "scale": np.array(self.scale, dtype=np.float64),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Standardiser:
        """Inverse of :meth:`to_dict` and of :meth:`to_record` (lists or arrays)."""
        mean, scale = cls._mean_and_scale(data)
        return cls(mean=mean, scale=scale)

    @classmethod
    def _mean_and_scale(cls, data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Check a record's ``kind`` against :attr:`KIND` (a plain Standardiser's list form may
        leave it out) and read its ``mean`` and ``scale``; the part every subclass shares."""
        kind = data.get("kind", STANDARDISER_KIND if cls.KIND == STANDARDISER_KIND else None)
        if kind != cls.KIND:
            raise ValueError(f"{cls.__name__}.from_dict: kind {kind!r}, expected {cls.KIND!r}")
        shape = tuple(int(s) for s in data["shape"])
        mean = np.asarray(data["mean"], dtype=np.float64).reshape(shape)
        scale = np.asarray(data["scale"], dtype=np.float64).reshape(shape)
        if not (np.all(np.isfinite(mean)) and np.all(scale > 0)):
            raise ValueError("Standardiser: mean must be finite and scale > 0")
        return mean, scale


@dataclass(eq=False)
class LinearEstimateStandardiser(Standardiser):
    """Standardise an observed field ``y (Cy, *S)`` and append the linear estimate of ``x``
    from it as ``Cx`` more channels on the same grid: ``(..., Cy, *S) -> (..., Cy + Cx, *S)``.

    The estimate is ``B z``, ``z`` the standardised ``y`` and ``B`` the least-squares gain of the
    standardised ``x`` on ``z`` fitted on the training pairs (:func:`linear_gain`): the best
    linear guess of ``x`` (in ``x``'s standardised units), a global map of ``y`` that a
    convolutional network with a small receptive field cannot form itself. The network then
    learns the non-linear remainder (docs/elasticity.md). ``mean`` and ``scale`` are ``y``'s;
    ``gain`` has shape ``(prod(x_shape), prod(y_shape))``. A condition transform only:
    :meth:`inverse` is refused.
    """

    gain: np.ndarray = None  # type: ignore[assignment]
    x_shape: tuple[int, ...] = ()

    KIND: ClassVar[str] = LINEAR_ESTIMATE_KIND

    @classmethod
    def fit_pairs(
        cls, y: np.ndarray, x_standardised: np.ndarray, *, ridge: float = 1e-6
    ) -> LinearEstimateStandardiser:
        """Fit to ``y (n, Cy, *S)`` (physical) and ``x_standardised (n, Cx, *S)``."""
        y = np.asarray(y, dtype=np.float64)
        x = np.asarray(x_standardised, dtype=np.float64)
        if y.ndim < 3 or x.ndim != y.ndim or x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[2:]:
            raise ValueError(
                f"y {y.shape} and x {x.shape} must be (n, Cy, *S) and (n, Cx, *S) on one grid S"
            )
        base = Standardiser.fit(y)
        z = base.transform(y).reshape(y.shape[0], -1)
        xf = x.reshape(x.shape[0], -1)
        gain = linear_gain(xf - xf.mean(axis=0), z - z.mean(axis=0), ridge)
        return cls(mean=base.mean, scale=base.scale, gain=gain, x_shape=tuple(x.shape[1:]))

    def out_of_fold(
        self,
        y: np.ndarray,
        x_standardised: np.ndarray,
        *,
        folds: int = 5,
        seed: int = 0,
        ridge: float = 1e-6,
    ) -> np.ndarray:
        """:meth:`transform` of the pairs the gain was fitted on, with each pair's estimate
        from a gain fitted on the other ``folds - 1`` folds (cross-fitting; folds drawn from
        ``default_rng(seed)``): ``(n, Cy + Cx, *S)``.

        Why: with ``dy`` regressors and ``n`` pairs the in-sample estimate is closer to ``x``
        than on new data (its residual variance is about ``(n - dy) / n`` of the out-of-sample
        one: 77 % for 2048 values and 9000 pairs). A network trained on in-sample estimates
        learns to trust them more than they deserve on a new observation: a narrower and
        shifted posterior. Out-of-fold estimates have the error of new data."""
        y = np.asarray(y, dtype=np.float64)
        x = np.asarray(x_standardised, dtype=np.float64)
        n = y.shape[0]
        if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= n:
            raise ValueError(f"folds = {folds!r}; expected an integer in [2, {n}] (the pairs)")
        if y.shape[1:] != self.shape or x.shape != (n, *self.x_shape):
            raise ValueError(
                f"y {y.shape} and x {x.shape}; expected (n, *{self.shape}) and (n, *{self.x_shape})"
            )
        z = Standardiser.transform(self, y).reshape(n, -1)
        xf = x.reshape(n, -1)
        estimate = np.empty_like(xf)
        assignment = np.random.default_rng(seed).permutation(n) % folds
        for k in range(folds):
            held, kept = assignment == k, assignment != k
            z_mean, x_mean = z[kept].mean(axis=0), xf[kept].mean(axis=0)
            gain = linear_gain(xf[kept] - x_mean, z[kept] - z_mean, ridge)
            estimate[held] = x_mean + (z[held] - z_mean) @ gain.T
        return np.concatenate(
            [z.reshape(n, *self.shape), estimate.reshape(n, *self.x_shape)], axis=1
        )

    def transform(self, values: np.ndarray, conditions: Any = None) -> np.ndarray:
        """``(..., Cy, *S)`` physical -> ``(..., Cy + Cx, *S)``: standardised ``y`` then the
        linear estimate of standardised ``x``."""
        z = super().transform(values)
        lead = z.shape[: z.ndim - len(self.shape)]
        flat = z.reshape(-1, math.prod(self.shape))
        estimate = (flat @ self.gain.T).reshape(*lead, *self.x_shape)
        return np.concatenate([z, estimate], axis=len(lead))

    def inverse(self, z: np.ndarray, conditions: Any = None) -> np.ndarray:
        """Not defined (the estimate channels are a function of ``y``)."""
        raise TypeError("LinearEstimateStandardiser is a condition transform; it has no inverse")

    def to_dict(self) -> dict[str, Any]:
        """Not offered: the gain matrix is large; use :meth:`to_record` (safetensors)."""
        raise TypeError("LinearEstimateStandardiser has no list form; use to_record()")

    def to_record(self) -> dict[str, Any]:
        """``{"kind", "shape", "mean", "scale", "gain", "x_shape"}`` (arrays for safetensors)."""
        return {
            **super().to_record(),
            "gain": np.array(self.gain, dtype=np.float64),
            "x_shape": list(self.x_shape),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearEstimateStandardiser:
        """Inverse of :meth:`to_record`."""
        mean, scale = cls._mean_and_scale(data)
        x_shape = tuple(int(s) for s in data["x_shape"])
        gain = np.asarray(data["gain"], dtype=np.float64)
        expected = (math.prod(x_shape), mean.size)
        if gain.shape != expected or not np.all(np.isfinite(gain)):
            raise ValueError(
                f"LinearEstimateStandardiser: gain of shape {gain.shape}, expected finite "
                f"{expected}"
            )
        return cls(mean=mean, scale=scale, gain=gain, x_shape=x_shape)


@dataclass(eq=False)
class ResidualStandardiser(Standardiser):
    """``x`` as its residual from the linear estimate, per component scaled to unit spread:
    ``z = ((x - mean) / scale - e) / residual_scale``, ``e`` the estimate channels of the
    conditioning (channels ``offset:`` of a :class:`LinearEstimateStandardiser`'s output).

    Why: with the estimate subtracted, a network that has learned nothing samples
    ``e + residual_scale * N(0, I)``: the linear-Gaussian posterior with its marginal spreads,
    calibrated per component. The network only has to learn the non-linear and non-Gaussian
    remainder, where trained on ``x`` itself it must also learn each component's spread given
    ``y`` and (on a CPU budget) came out over-confident (docs/elasticity.md, "Residual
    parametrisation"). ``mean``, ``scale`` standardise ``x``; ``residual_scale`` has ``x``'s
    shape. :meth:`transform` and :meth:`inverse` need ``conditions``: the standardised
    conditioning ``(rows, Cy + Cx, *S)`` with ``rows`` equal to the values' rows or 1.
    """

    residual_scale: np.ndarray = None  # type: ignore[assignment]
    offset: int = 0

    KIND: ClassVar[str] = RESIDUAL_KIND

    @classmethod
    def fit_residuals(
        cls,
        x: np.ndarray,
        conditioning: np.ndarray,
        base: Standardiser,
        offset: int,
        floor: float = 1e-12,
    ) -> ResidualStandardiser:
        """Fit ``residual_scale`` to ``x (n, *shape)`` (physical) and the standardised
        conditioning ``(n, Cy + Cx, *S)`` of the same pairs (out-of-fold estimates, so that the
        residual has the spread of new data), on ``base``'s standardisation of ``x``. The
        residual's mean is not removed: the estimate is the posterior mean to be corrected."""
        x = np.asarray(x, dtype=np.float64)
        fitted = cls(mean=base.mean, scale=base.scale, offset=int(offset))
        residual = base.transform(x) - fitted._estimate(conditioning, x.shape[0])
        spread = np.sqrt(np.mean(residual**2, axis=0))
        fitted.residual_scale = np.where(spread > floor, spread, 1.0)
        return fitted

    def _estimate(self, conditions: Any, rows: int) -> np.ndarray:
        if conditions is None:
            raise ValueError(
                "ResidualStandardiser needs conditions: the standardised conditioning with the "
                "linear-estimate channels"
            )
        cond = np.asarray(conditions, dtype=np.float64)
        if cond.shape[0] not in (1, rows) or cond.ndim < 2 or cond.shape[1] <= self.offset:
            raise ValueError(
                f"conditions of shape {cond.shape}; expected ({rows} or 1, > {self.offset} "
                "channels, *S) holding the estimate after the observed channels"
            )
        estimate = cond[:, self.offset :]
        if estimate.shape[1:] != self.shape:
            raise ValueError(
                f"estimate channels of shape {estimate.shape[1:]}; expected {self.shape}"
            )
        return estimate

    def transform(self, values: np.ndarray, conditions: Any = None) -> np.ndarray:
        """``(rows, *shape)`` physical -> the scaled residual (needs ``conditions``)."""
        values = np.asarray(values, dtype=np.float64)
        estimate = self._estimate(conditions, values.shape[0])
        return (super().transform(values) - estimate) / self.residual_scale

    def inverse(self, z: np.ndarray, conditions: Any = None) -> np.ndarray:
        """The scaled residual ``(rows, *shape)`` -> physical (needs ``conditions``)."""
        z = np.asarray(z, dtype=np.float64)
        estimate = self._estimate(conditions, z.shape[0])
        return super().inverse(z * self.residual_scale + estimate)

    def to_dict(self) -> dict[str, Any]:
        """Not offered: use :meth:`to_record` (safetensors)."""
        raise TypeError("ResidualStandardiser has no list form; use to_record()")

    def to_record(self) -> dict[str, Any]:
        """``{"kind", "shape", "mean", "scale", "residual_scale", "offset"}``."""
        return {
            **super().to_record(),
            "residual_scale": np.array(self.residual_scale, dtype=np.float64),
            "offset": int(self.offset),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResidualStandardiser:
        """Inverse of :meth:`to_record`."""
        mean, scale = cls._mean_and_scale(data)
        residual_scale = np.asarray(data["residual_scale"], dtype=np.float64)
        if residual_scale.size != mean.size or not np.all(residual_scale > 0):
            raise ValueError(
                f"ResidualStandardiser: residual_scale of {residual_scale.size} values, expected "
                f"{mean.size} values > 0"
            )
        offset = int(np.asarray(data["offset"]))
        if offset < 0:
            raise ValueError(f"ResidualStandardiser: offset = {offset}, expected >= 0")
        return cls(
            mean=mean, scale=scale, residual_scale=residual_scale.reshape(mean.shape), offset=offset
        )


#: Transform kind -> class with ``from_dict`` (the transforms a model folder records itself;
#: field normalisers and condition encoders have files of their own).
TRANSFORMS: dict[str, type[Standardiser]] = {
    STANDARDISER_KIND: Standardiser,
    LINEAR_ESTIMATE_KIND: LinearEstimateStandardiser,
    RESIDUAL_KIND: ResidualStandardiser,
}


def transform_from_record(record: dict[str, Any]) -> Standardiser:
    """Rebuild a transform from its record (see :data:`TRANSFORMS`)."""
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind not in TRANSFORMS:
        raise ValueError(f"unknown transform kind {kind!r}; allowed: {sorted(TRANSFORMS)}")
    return TRANSFORMS[kind].from_dict(record)


__all__ = [
    "TRANSFORMS",
    "LinearEstimateStandardiser",
    "ResidualStandardiser",
    "Standardiser",
    "linear_gain",
    "transform_from_record",
]
