"""Noise processes: the forward SDE ``dx = f(x, t) dt + g(t) dW`` and its Gaussian marginals.

One process object is the single source of truth for a diffusion: the denoising loss, every
sampler and the likelihood all read ``mean_coef``, ``std``, ``drift``, ``diffusion`` and
``prior_std`` from it. Both processes here are linear with a Gaussian transition kernel::

    x_t = m_t x_0 + sigma_t z,        z ~ N(0, I)

so the perturbed data have the exact score ``-(x_t - m_t x_0) / sigma_t^2`` given ``x_0``.

* ``VPProcess`` (variance preserving, the seed's choice; Song et al. 2021):
  ``beta(t) = beta_min + t (beta_max - beta_min)``, ``f = -beta(t) x / 2``, ``g = sqrt(beta(t))``,
  ``alpha(t) = int_0^t beta = beta_min t + t^2 (beta_max - beta_min) / 2``,
  ``m_t = exp(-alpha/2)``, ``sigma_t^2 = 1 - exp(-alpha)`` (computed with ``expm1``), so
  ``m_t^2 + sigma_t^2 = 1``. Prior ``N(0, I)``.
* ``VEProcess`` (variance exploding): ``sigma(t) = sigma_min (sigma_max/sigma_min)^t``, ``m_t = 1``,
  ``f = 0``, ``g(t) = sigma(t) sqrt(2 log(sigma_max/sigma_min))``. Integrating ``g^2`` from 0 gives
  ``sigma(t)^2 - sigma_min^2``, so the stated marginal ``x_0 + sigma(t) z`` is exact when the SDE
  starts from the data smoothed by ``N(0, sigma_min^2)`` (the convention of score_sde). The
  defaults ``sigma_min = 0.01`` and ``sigma_max = 50`` suit data normalised to unit variance:
  ``sigma_min`` is far below the data scale and ``sigma_max`` well above the largest pairwise
  distance of a few-hundred-dimensional field (Song & Ermon 2020, technique 1). Prior
  ``N(0, sigma_max^2 I)``.

Time is dimensionless, ``t in [t_min, t_max]``; all methods take ``t`` of any shape (usually
``(B,)``) and return a tensor of that shape, except ``drift`` which returns ``x``'s shape.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from scorepde.configuration import ConfigError, from_dict
from scorepde.tensor_utils import append_dims


class NoiseProcess(ABC):
    """A linear forward SDE with Gaussian marginals ``x_t = m_t x_0 + sigma_t z``.

    Subclasses are frozen dataclasses whose fields are their whole configuration; they must
    define ``t_min`` and ``t_max`` (the training and sampling time interval) and ``name``.
    """

    name: ClassVar[str]
    t_min: float
    t_max: float

    @abstractmethod
    def mean_coef(self, t: Tensor) -> Tensor:
        """Signal coefficient ``m_t``; same shape as ``t``."""

    @abstractmethod
    def std(self, t: Tensor) -> Tensor:
        """Noise standard deviation ``sigma_t``; same shape as ``t``."""

    @abstractmethod
    def drift(self, x: Tensor, t: Tensor) -> Tensor:
        """Forward drift ``f(x, t)``; ``x: (B, *shape)``, ``t: (B,)`` or 0-d -> ``(B, *shape)``."""

    @abstractmethod
    def diffusion(self, t: Tensor) -> Tensor:
        """Diffusion coefficient ``g(t)``; same shape as ``t``."""

    @abstractmethod
    def prior_std(self) -> float:
        """Standard deviation of the sampling prior: ``x_{t_max} ~ N(0, prior_std^2 I)``."""

    @abstractmethod
    def time_from_noise_ratio(self, ratio: Tensor) -> Tensor:
        """Inverse of ``noise_ratio``: the time ``t`` at which ``sigma_t / m_t == ratio``."""

    def noise_ratio(self, t: Tensor) -> Tensor:
        """Noise-to-signal ratio ``sigma_t / m_t`` (EDM's sigma); monotone increasing in ``t``."""
        return self.std(t) / self.mean_coef(t)

    def variance(self, t: Tensor) -> Tensor:
        """``v_t = sigma_t^2``; same shape as ``t``."""
        return self.std(t) ** 2

    def noise_label(self, t: Tensor) -> Tensor:
        """What the backbone receives as its time input: ``t`` itself, in ``[t_min, t_max]``.

        For VE, ``log sigma(t)`` is affine in ``t``, so ``t`` carries the same information as
        EDM's ``log sigma`` label while keeping one O(1) range for every process.
        """
        return t

    def perturb(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Sample the marginal: ``x_t = m_t x0 + sigma_t noise``; ``x0, noise: (B, *shape)``."""
        return (
            append_dims(self.mean_coef(t), x0.ndim) * x0 + append_dims(self.std(t), x0.ndim) * noise
        )

    def to_config(self) -> dict[str, Any]:
        """Plain dict ``{"name": ..., **fields}``; ``build_process`` turns it back into ``self``."""
        return {"name": self.name, **dataclasses.asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> NoiseProcess:
        """Build from the dict written by ``to_config`` (the ``name`` key is optional)."""
        options = dict(config)
        name = options.pop("name", cls.name)
        if name != cls.name:
            raise ConfigError(
                f"{cls.__name__}.from_config: name is {name!r}, expected {cls.name!r}"
            )
        return from_dict(cls, options, where=cls.__name__)  # type: ignore[type-var]

    def _check_times(self) -> None:
        if not 0.0 < self.t_min < self.t_max:
            raise ValueError(
                f"{type(self).__name__}: need 0 < t_min < t_max, got t_min={self.t_min}, "
                f"t_max={self.t_max}"
            )


@dataclass(frozen=True)
class VPProcess(NoiseProcess):
    """Variance-preserving process with a linear ``beta(t)`` (dimensionless rates)."""

    name: ClassVar[str] = "vp"
    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-3
    t_max: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.beta_min <= self.beta_max or self.beta_max <= 0.0:
            raise ValueError(
                f"VPProcess: need 0 <= beta_min <= beta_max and beta_max > 0, got "
                f"beta_min={self.beta_min}, beta_max={self.beta_max}"
            )
        self._check_times()

    def beta(self, t: Tensor) -> Tensor:
        """``beta(t) = beta_min + t (beta_max - beta_min)``; shape of ``t``."""
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def integrated_beta(self, t: Tensor) -> Tensor:
        """``alpha(t) = int_0^t beta(s) ds``; shape of ``t``."""
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def mean_coef(self, t: Tensor) -> Tensor:
        return torch.exp(-0.5 * self.integrated_beta(t))

    def variance(self, t: Tensor) -> Tensor:
        return -torch.expm1(-self.integrated_beta(t))

    def std(self, t: Tensor) -> Tensor:
        return torch.sqrt(self.variance(t))

    def noise_ratio(self, t: Tensor) -> Tensor:
        return torch.sqrt(torch.expm1(self.integrated_beta(t)))

    def time_from_noise_ratio(self, ratio: Tensor) -> Tensor:
        # sigma/m = sqrt(exp(alpha) - 1)  =>  alpha = log1p(ratio^2); solve the quadratic in t.
        alpha = torch.log1p(ratio**2)
        slope = self.beta_max - self.beta_min
        if slope == 0.0:
            return alpha / self.beta_min
        # Root of slope/2 t^2 + beta_min t - alpha = 0 written without cancellation.
        return 2.0 * alpha / (self.beta_min + torch.sqrt(self.beta_min**2 + 2.0 * slope * alpha))

    def drift(self, x: Tensor, t: Tensor) -> Tensor:
        return -0.5 * append_dims(self.beta(t), x.ndim) * x

    def diffusion(self, t: Tensor) -> Tensor:
        return torch.sqrt(self.beta(t))

    def prior_std(self) -> float:
        return 1.0


@dataclass(frozen=True)
class VEProcess(NoiseProcess):
    """Variance-exploding process with a geometric ``sigma(t)`` (in units of the data)."""

    name: ClassVar[str] = "ve"
    sigma_min: float = 0.01
    sigma_max: float = 50.0
    t_min: float = 1e-5
    t_max: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.sigma_min < self.sigma_max:
            raise ValueError(
                f"VEProcess: need 0 < sigma_min < sigma_max, got sigma_min={self.sigma_min}, "
                f"sigma_max={self.sigma_max}"
            )
        self._check_times()

    @property
    def _log_ratio(self) -> float:
        return math.log(self.sigma_max / self.sigma_min)

    def mean_coef(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def std(self, t: Tensor) -> Tensor:
        return self.sigma_min * torch.exp(t * self._log_ratio)

    def noise_ratio(self, t: Tensor) -> Tensor:
        return self.std(t)

    def time_from_noise_ratio(self, ratio: Tensor) -> Tensor:
        return torch.log(ratio / self.sigma_min) / self._log_ratio

    def drift(self, x: Tensor, t: Tensor) -> Tensor:
        return torch.zeros_like(x)

    def diffusion(self, t: Tensor) -> Tensor:
        return self.std(t) * math.sqrt(2.0 * self._log_ratio)

    def prior_std(self) -> float:
        return float(self.std(torch.tensor(self.t_max, dtype=torch.float64)))


PROCESSES: dict[str, type[NoiseProcess]] = {"vp": VPProcess, "ve": VEProcess}


def build_process(config: dict[str, Any]) -> NoiseProcess:
    """Build a process from ``{"name": "vp" | "ve", **options}`` (as written by ``to_config``)."""
    if not isinstance(config, dict) or "name" not in config:
        raise ConfigError(
            f"build_process: expected a dict with a 'name' key (one of {sorted(PROCESSES)}), "
            f"got {config!r}"
        )
    name = config["name"]
    if name not in PROCESSES:
        raise ConfigError(f"unknown noise process {name!r}; allowed: {sorted(PROCESSES)}")
    return PROCESSES[name].from_config(config)
