"""Measurement noise models: ``y = noise.sample(F(x), rng)``.

Every model is a small frozen dataclass whose fields are its whole configuration, with

* ``sample(clean (n, *y_shape), rng) -> (n, *y_shape)`` float64: noisy measurements of the
  noise-free forward-model outputs ``clean`` (the first axis is the sample axis);
* ``log_likelihood(y, clean) -> (n,)``: ``log p(y | clean)`` summed over a sample's components
  (what a reference MCMC needs);
* ``to_config() -> {"name": ..., **fields}``, undone by :func:`build_noise_model`.

Models:

* ``AdditiveGaussian(std)``: ``y = clean + std z``.
* ``RelativeGaussian(level, reference)``: ``y = clean + level s z`` with ``s = |clean|``
  component by component (``reference="pointwise"``, the default) or ``s`` the root mean square
  of each sample's ``clean`` over all its components (``reference="rms"``; one noise scale per
  sample, so components near zero are still noisy).
* ``MultiplicativeLogNormal(sigma)``: ``y = clean exp(sigma z - sigma^2 / 2)``; the factor has
  mean 1 (unbiased measurements) and keeps the sign of ``clean``.
* ``StudentT(df, scale)``: ``y = clean + scale t_df`` (heavy tails: outliers).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
from scipy import special

from scorepde.configuration import ConfigError


class NoiseModel(Protocol):
    """What :func:`~scorepde.inverse.posterior.from_simulator` needs from a noise model."""

    name: ClassVar[str]

    def sample(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy copy of ``clean (n, *y_shape)``, same shape, float64."""
        ...

    def to_config(self) -> dict[str, Any]:
        """``{"name": ..., **fields}``."""
        ...


def _positive(owner: str, **values: float) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{owner}: {key} must be a number, got {value!r}")
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"{owner}: {key} must be finite and > 0, got {value!r}")


def _as_batch(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim < 1:
        raise ValueError(f"expected an array (n, *y_shape), got a scalar {values!r}")
    return array


def _sum_per_sample(values: np.ndarray) -> np.ndarray:
    return values.reshape(values.shape[0], -1).sum(axis=1)


class _Base:
    """Shared ``to_config`` for the frozen dataclasses below."""

    name: ClassVar[str]

    def to_config(self) -> dict[str, Any]:
        """Plain dict ``{"name": ..., **fields}``; :func:`build_noise_model` inverts it."""
        return {"name": self.name, **dataclasses.asdict(self)}  # type: ignore[call-overload]


@dataclass(frozen=True)
class AdditiveGaussian(_Base):
    """``y = clean + std z``, ``z ~ N(0, I)``; ``std`` in the units of ``y``."""

    name: ClassVar[str] = "additive_gaussian"
    std: float

    def __post_init__(self) -> None:
        _positive("AdditiveGaussian", std=self.std)

    def sample(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n, *y_shape)`` -> same shape."""
        clean = _as_batch(clean)
        return clean + self.std * rng.standard_normal(clean.shape)

    def log_likelihood(self, y: np.ndarray, clean: np.ndarray) -> np.ndarray:
        """``log N(y; clean, std^2 I)`` per sample: ``(n, *y_shape)`` x 2 -> ``(n,)``."""
        r = (_as_batch(y) - _as_batch(clean)) / self.std
        return _sum_per_sample(-0.5 * r**2 - math.log(self.std) - 0.5 * math.log(2 * math.pi))


@dataclass(frozen=True)
class RelativeGaussian(_Base):
    """``y = clean + level s z`` with ``s = |clean|`` (``"pointwise"``) or the per-sample RMS
    of ``clean`` (``"rms"``); ``level`` is dimensionless (0.05 = 5 % noise)."""

    name: ClassVar[str] = "relative_gaussian"
    level: float
    reference: str = "pointwise"

    def __post_init__(self) -> None:
        _positive("RelativeGaussian", level=self.level)
        if self.reference not in ("pointwise", "rms"):
            raise ValueError(
                f"RelativeGaussian: reference must be 'pointwise' or 'rms', got {self.reference!r}"
            )

    def noise_std(self, clean: np.ndarray) -> np.ndarray:
        """Standard deviation of the noise, broadcastable to ``clean (n, *y_shape)``."""
        clean = _as_batch(clean)
        if self.reference == "pointwise":
            return self.level * np.abs(clean)
        rms = np.sqrt(np.mean(clean.reshape(clean.shape[0], -1) ** 2, axis=1))
        return (self.level * rms).reshape(-1, *([1] * (clean.ndim - 1)))

    def sample(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n, *y_shape)`` -> same shape."""
        clean = _as_batch(clean)
        return clean + self.noise_std(clean) * rng.standard_normal(clean.shape)

    def log_likelihood(self, y: np.ndarray, clean: np.ndarray) -> np.ndarray:
        """Gaussian log density per sample ``(n,)``; components with zero noise std must match
        exactly (``-inf`` otherwise, ``0`` contribution if they do)."""
        y, clean = _as_batch(y), _as_batch(clean)
        std = np.broadcast_to(self.noise_std(clean), clean.shape)
        residual = y - clean
        exact = std == 0.0
        safe = np.where(exact, 1.0, std)
        terms = -0.5 * (residual / safe) ** 2 - np.log(safe) - 0.5 * math.log(2 * math.pi)
        terms = np.where(exact, np.where(residual == 0.0, 0.0, -np.inf), terms)
        return _sum_per_sample(terms)


@dataclass(frozen=True)
class MultiplicativeLogNormal(_Base):
    """``y = clean exp(sigma z - sigma^2 / 2)``: mean-one log-normal factor per component."""

    name: ClassVar[str] = "multiplicative_lognormal"
    sigma: float

    def __post_init__(self) -> None:
        _positive("MultiplicativeLogNormal", sigma=self.sigma)

    def sample(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n, *y_shape)`` -> same shape (same signs as ``clean``)."""
        clean = _as_batch(clean)
        factor = np.exp(self.sigma * rng.standard_normal(clean.shape) - 0.5 * self.sigma**2)
        return clean * factor

    def log_likelihood(self, y: np.ndarray, clean: np.ndarray) -> np.ndarray:
        """Log density of ``y`` given ``clean`` per sample ``(n,)`` (``-inf`` where the signs
        differ or a component is zero)."""
        y, clean = _as_batch(y), _as_batch(clean)
        ratio = np.divide(y, clean, out=np.full(y.shape, -1.0), where=clean != 0.0)
        valid = ratio > 0.0
        log_ratio = np.log(np.where(valid, ratio, 1.0))
        z = (log_ratio + 0.5 * self.sigma**2) / self.sigma
        absolute = np.abs(np.where(valid, y, 1.0))
        terms = -0.5 * z**2 - math.log(self.sigma) - 0.5 * math.log(2 * math.pi) - np.log(absolute)
        return _sum_per_sample(np.where(valid, terms, -np.inf))


@dataclass(frozen=True)
class StudentT(_Base):
    """``y = clean + scale t``, ``t`` Student-t with ``df`` degrees of freedom (heavy tails;
    the variance ``scale^2 df / (df - 2)`` exists for ``df > 2``)."""

    name: ClassVar[str] = "student_t"
    df: float
    scale: float

    def __post_init__(self) -> None:
        _positive("StudentT", df=self.df, scale=self.scale)

    def sample(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n, *y_shape)`` -> same shape."""
        clean = _as_batch(clean)
        return clean + self.scale * rng.standard_t(self.df, size=clean.shape)

    def log_likelihood(self, y: np.ndarray, clean: np.ndarray) -> np.ndarray:
        """Student-t log density per sample ``(n,)``."""
        r = (_as_batch(y) - _as_batch(clean)) / self.scale
        nu = self.df
        constant = (
            special.gammaln((nu + 1) / 2)
            - special.gammaln(nu / 2)
            - 0.5 * math.log(nu * math.pi)
            - math.log(self.scale)
        )
        return _sum_per_sample(constant - (nu + 1) / 2 * np.log1p(r**2 / nu))


NOISE_MODELS: dict[str, type[_Base]] = {
    "additive_gaussian": AdditiveGaussian,
    "relative_gaussian": RelativeGaussian,
    "multiplicative_lognormal": MultiplicativeLogNormal,
    "student_t": StudentT,
}


def build_noise_model(config: dict[str, Any]) -> Any:
    """Build a noise model from ``{"name": ..., **fields}`` (as written by ``to_config``)."""
    if not isinstance(config, dict) or "name" not in config:
        raise ConfigError(
            f"build_noise_model: expected a dict with a 'name' key (one of "
            f"{sorted(NOISE_MODELS)}), got {config!r}"
        )
    options = dict(config)
    name = options.pop("name")
    if name not in NOISE_MODELS:
        raise ConfigError(f"unknown noise model {name!r}; allowed: {sorted(NOISE_MODELS)}")
    cls = NOISE_MODELS[name]
    allowed = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"noise model {name!r}: unknown option(s) {unknown}; allowed: {allowed}")
    try:
        return cls(**options)
    except TypeError as error:
        raise ConfigError(f"noise model {name!r}: {error}") from error


__all__ = [
    "NOISE_MODELS",
    "AdditiveGaussian",
    "MultiplicativeLogNormal",
    "NoiseModel",
    "RelativeGaussian",
    "StudentT",
    "build_noise_model",
]
