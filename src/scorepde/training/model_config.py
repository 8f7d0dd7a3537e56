"""What fixes a score model: :class:`ModelConfig` (backbone, noise process, preconditioning)
and :func:`build_score_model`, which turns one into a fresh :class:`ScoreModel`.

This module sits below everything else in ``training``: the checkpoint files
(``checkpoint.py``) and the conditional model (``conditional.py``) both build models from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scorepde.configuration import from_dict, to_dict
from scorepde.diffusion.preconditioning import ScoreModel
from scorepde.diffusion.processes import build_process
from scorepde.nets.registry import BackboneConfig, build_backbone


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


__all__ = ["ModelConfig", "build_score_model", "model_config_differences"]
