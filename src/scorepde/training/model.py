"""What a trained model is, under the names this module has always offered.

The parts now live in one place each: :class:`ModelConfig` and :func:`build_score_model` in
``training/model_config.py``; the model users sample from, :class:`ConditionalModel` (also
called :class:`TrainedModel`), in ``training/conditional.py``; the sampler registry
:data:`SAMPLERS` in ``sampling/registry.py``. Import them from here or from there.
"""

from __future__ import annotations

from scorepde.sampling.registry import SAMPLERS
from scorepde.training.conditional import ConditionalModel, TrainedModel
from scorepde.training.model_config import ModelConfig, build_score_model, model_config_differences

__all__ = [
    "SAMPLERS",
    "ConditionalModel",
    "ModelConfig",
    "TrainedModel",
    "build_score_model",
    "model_config_differences",
]
