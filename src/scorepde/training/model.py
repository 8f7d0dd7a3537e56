"""What a trained model is: :class:`ModelConfig` -> :class:`ScoreModel`, and the user-facing
:class:`TrainedModel` (score model + normaliser + condition encoder) that samples in physical
units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scorepde.configuration import from_dict, to_dict
from scorepde.data.normalisation import ConditionEncoder, Normaliser
from scorepde.diffusion.preconditioning import ScoreModel
from scorepde.diffusion.processes import NoiseProcess, build_process
from scorepde.nets.registry import BackboneConfig, build_backbone
from scorepde.sampling.langevin import sample_annealed_langevin
from scorepde.sampling.samplers import (
    sample_euler_maruyama,
    sample_predictor_corrector,
    sample_probability_flow_dpm2m,
    sample_probability_flow_heun,
)
from scorepde.training.config import resolve_device


def _default_process() -> dict[str, Any]:
    return {"name": "vp", "beta_min": 0.1, "beta_max": 20.0}


@dataclass
class ModelConfig:
    """Everything that fixes a score model's architecture and noise process.

    backbone: which network and its options (``scorepde.nets.registry``). process: the noise
    process as ``{"name": "vp" | "ve", **options}`` (``scorepde.diffusion.processes``).
    sigma_data: data standard deviation for the preconditioning (None = off, "eps" only); 1.0
    suits normalised data. parametrisation: "edm" (skip connection, default) or "eps" (plain
    noise prediction); see ``scorepde.diffusion.preconditioning``.
    """

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    process: dict[str, Any] = field(default_factory=_default_process)
    sigma_data: float | None = 1.0
    parametrisation: str = "edm"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-ready)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return from_dict(cls, data, where="ModelConfig")


def build_score_model(config: ModelConfig) -> ScoreModel:
    """A freshly initialised :class:`ScoreModel` for ``config`` (on CPU, fp32).

    The model remembers its config as ``model.model_config`` so that the trainer can save it.
    Parameter initialisation draws from torch's global RNG: seed it for reproducible weights.
    """
    backbone = build_backbone(config.backbone)
    process = build_process(dict(config.process))
    model = ScoreModel(
        backbone, process, sigma_data=config.sigma_data, parametrisation=config.parametrisation
    )
    model.model_config = config
    return model


#: Sampler names accepted by :meth:`TrainedModel.sample` -> sampling functions. NFE per sample
#: for ``steps``: euler_maruyama steps + 1; predictor_corrector 2 steps + 1 (one corrector
#: step); ode_heun, ode_heun_edm and heun_churn 2 steps; ode_dpm2m steps + 1;
#: annealed_langevin see ``scorepde.sampling.langevin``. Keyword options given to ``sample``
#: override the presets below (e.g. ``s_churn=20`` for heun_churn).
SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "euler_maruyama": sample_euler_maruyama,
    "predictor_corrector": sample_predictor_corrector,
    "ode_heun": sample_probability_flow_heun,
    "ode_heun_edm": partial(sample_probability_flow_heun, time_grid_kind="edm", rho=7.0),
    "heun_churn": partial(
        sample_probability_flow_heun,
        time_grid_kind="edm",
        rho=7.0,
        s_churn=10.0,
        s_tmin=0.05,
        s_tmax=50.0,
        s_noise=1.0,
    ),
    "ode_dpm2m": partial(sample_probability_flow_dpm2m, time_grid_kind="logsnr"),
    "annealed_langevin": sample_annealed_langevin,
}


class TrainedModel:
    """A score model ready to sample fields in physical units.

    Attributes:
        score_model: the network with EMA weights, in eval mode.
        model_config: how to rebuild ``score_model``.
        normaliser: maps physical fields to the normalised space the model was trained in
            (None: the model was trained on raw fields).
        condition_encoder: maps physical conditions ``(M, k)`` to the model's inputs
            (None: an unconditional model).
        problem_name: name of the problem in ``scorepde.problems`` (or None).
        sample_shape: shape of one sample, e.g. ``(C, N)``.
        channel_names / condition_names: labels of the channels and of the ``k`` conditions.
        metadata: everything else recorded at training time (provenance, units, ...).
    """

    def __init__(
        self,
        score_model: ScoreModel,
        model_config: ModelConfig,
        *,
        normaliser: Normaliser | None,
        condition_encoder: ConditionEncoder | None,
        problem_name: str | None,
        sample_shape: tuple[int, ...],
        channel_names: list[str] | None = None,
        condition_names: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.score_model = score_model.eval()
        self.model_config = model_config
        self.normaliser = normaliser
        self.condition_encoder = condition_encoder
        self.problem_name = problem_name
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.channel_names = list(channel_names or [])
        self.condition_names = list(condition_names or [])
        self.metadata = dict(metadata or {})

    @property
    def process(self) -> NoiseProcess:
        """The noise process of the score model."""
        return self.score_model.process

    def __repr__(self) -> str:
        return (
            f"TrainedModel(problem={self.problem_name!r}, sample_shape={self.sample_shape}, "
            f"conditions={self.condition_names}, channels={self.channel_names})"
        )

    def encode_conditions(self, conditions: Any, n: int) -> torch.Tensor | None:
        """Physical conditions ``(k,)`` or ``(n, k)`` -> encoded ``(n, k)`` float32 tensor.

        A ``(k,)`` row is repeated ``n`` times. Returns None for an unconditional model
        (then ``conditions`` must be None).
        """
        if self.condition_encoder is None:
            if conditions is not None:
                raise ValueError(
                    "this model is unconditional (no condition encoder); pass conditions=None"
                )
            return None
        if conditions is None:
            raise ValueError(
                f"this model needs conditions {self.condition_names or ''}: an array of shape "
                "(k,) or (n, k) in physical units"
            )
        values = np.asarray(conditions, dtype=np.float64)
        if values.ndim == 1:
            values = np.broadcast_to(values, (n, values.shape[0]))
        if values.ndim != 2 or values.shape[0] != n:
            raise ValueError(
                f"conditions must have shape (k,) or (n, k) = ({n}, k), got {values.shape}"
            )
        k = len(self.condition_names) if self.condition_names else values.shape[1]
        if values.shape[1] != k:
            raise ValueError(
                f"conditions have {values.shape[1]} columns; this model expects {k}: "
                f"{self.condition_names}"
            )
        check = getattr(self.condition_encoder, "check", None)
        if callable(check):
            check(values)
        encoded = np.asarray(self.condition_encoder.encode(values), dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(encoded))

    def default_sampling(
        self, sampler: str | None = None, steps: int | None = None
    ) -> tuple[str, int]:
        """The sampler and step count to use when the caller leaves them out: those of the
        recipe the model was trained with (recorded in its metadata), else Euler-Maruyama with
        100 steps. An explicit ``sampler`` without ``steps`` gets 100 steps, not the recipe's
        steps (they belong to the recipe's sampler)."""
        recorded = (self.metadata.get("recipe_config") or {}).get("sampling") or {}
        if sampler is None:
            sampler = str(recorded.get("sampler", "euler_maruyama"))
            if steps is None:
                steps = int(recorded.get("steps", 100))
        return sampler, 100 if steps is None else steps

    def sample(
        self,
        conditions: Any,
        n: int,
        *,
        sampler: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int = 1000,
        device: str | torch.device = "auto",
        progress: bool = False,
        **sampler_options: Any,
    ) -> np.ndarray:
        """Draw ``n`` fields in physical units: ``(n, C, N)`` (the normaliser's field shape;
        without a normaliser ``(n, *sample_shape)``).

        conditions: ``(k,)`` (shared by all samples) or ``(n, k)``, physical units (None for
        an unconditional model). sampler: a key of :data:`SAMPLERS`; steps: sampler steps;
        None: :meth:`default_sampling` (what the model's recipe was evaluated with).
        seed: per-sample seeds start here, so sample ``i`` does not depend on ``batch_size``.
        sampler_options: passed on (e.g. ``snr``, ``corrector_steps`` for predictor-corrector).
        """
        sampler, steps = self.default_sampling(sampler, steps)
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; allowed: {sorted(SAMPLERS)}")
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        n = int(n)
        torch_device = resolve_device(device)
        cond = self.encode_conditions(conditions, n)
        self.score_model.to(torch_device)
        if cond is not None:
            cond = cond.to(torch_device)
        with torch.no_grad():
            samples = SAMPLERS[sampler](
                self.score_model,
                self.score_model.process,
                self.sample_shape,
                cond,
                n=n,
                steps=steps,
                seed=seed,
                batch_size=batch_size,
                device=torch_device,
                progress=progress,
                **sampler_options,
            )
        samples = samples.detach().to("cpu", torch.float64).numpy()
        if self.normaliser is not None:
            samples = np.asarray(
                self.normaliser.inverse(samples, None if cond is None else cond.cpu().numpy())
            )
        return samples

    def save(self, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Export to a model folder (``checkpoint.save_trained_model``); returns the folder."""
        from scorepde.training.checkpoint import save_trained_model

        return save_trained_model(
            path,
            self.score_model,
            self.model_config,
            normaliser=self.normaliser,
            condition_encoder=self.condition_encoder,
            problem_name=self.problem_name,
            sample_shape=self.sample_shape,
            channel_names=self.channel_names,
            condition_names=self.condition_names,
            metadata={**self.metadata, **(metadata or {})},
        )


def model_config_differences(a: ModelConfig, b: ModelConfig) -> list[str]:
    """Dotted names of the fields where two model configs differ (empty if equal)."""
    return _differences(to_dict(a), to_dict(b), "")


def _differences(a: Any, b: Any, prefix: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in a or key not in b:
                out.append(name)
            else:
                out.extend(_differences(a[key], b[key], name))
        return out
    return [] if a == b else [f"{prefix}: {a!r} != {b!r}"]


__all__ = [
    "SAMPLERS",
    "ModelConfig",
    "TrainedModel",
    "build_score_model",
    "model_config_differences",
]
