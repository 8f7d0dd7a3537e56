"""training layer: denoising score-matching training, checkpoints and exported models.

``TrainConfig`` + ``ModelConfig`` -> ``build_score_model`` -> ``Trainer(...).fit(...)`` ->
checkpoints in ``run_dir/checkpoints`` -> ``load_trained_model(run_dir)`` ->
``ConditionalModel.sample(conditions, n)`` in physical units (``TrainedModel`` is the same
class). See ``docs/training.md``.
"""

from __future__ import annotations

from scorepde.sampling.registry import SAMPLERS
from scorepde.training.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_trained_model,
)
from scorepde.training.conditional import ConditionalModel, TrainedModel, load_trained_model
from scorepde.training.config import TrainConfig
from scorepde.training.ema import EMA
from scorepde.training.model_config import ModelConfig, build_score_model
from scorepde.training.schedule import build_cosine_scheduler, cosine_learning_rate
from scorepde.training.sources import (
    BatchSource,
    GroupedSource,
    StreamingSource,
    TensorSource,
    epoch_layout,
)
from scorepde.training.trainer import Trainer, TrainingResult, read_history
from scorepde.training.transforms import Standardiser

__all__ = [
    "EMA",
    "SAMPLERS",
    "BatchSource",
    "CheckpointError",
    "ConditionalModel",
    "GroupedSource",
    "ModelConfig",
    "Standardiser",
    "StreamingSource",
    "TensorSource",
    "TrainConfig",
    "TrainedModel",
    "Trainer",
    "TrainingResult",
    "build_cosine_scheduler",
    "build_score_model",
    "cosine_learning_rate",
    "epoch_layout",
    "latest_checkpoint",
    "load_checkpoint",
    "load_trained_model",
    "read_history",
    "save_trained_model",
]
