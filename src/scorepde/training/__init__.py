"""training layer: denoising score-matching training, checkpoints and exported models.

``TrainConfig`` + ``ModelConfig`` -> ``build_score_model`` -> ``Trainer(...).fit(...)`` ->
checkpoints in ``run_dir/checkpoints`` -> ``load_trained_model(run_dir)`` ->
``TrainedModel.sample(conditions, n)`` in physical units. See ``docs/training.md``.
"""

from __future__ import annotations

from scorepde.training.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    load_trained_model,
    save_trained_model,
)
from scorepde.training.config import TrainConfig
from scorepde.training.ema import EMA
from scorepde.training.model import SAMPLERS, ModelConfig, TrainedModel, build_score_model
from scorepde.training.schedule import build_cosine_scheduler, cosine_learning_rate
from scorepde.training.sources import (
    BatchSource,
    GroupedSource,
    StreamingSource,
    TensorSource,
    epoch_layout,
)
from scorepde.training.trainer import Trainer, TrainingResult, read_history

__all__ = [
    "EMA",
    "SAMPLERS",
    "BatchSource",
    "CheckpointError",
    "GroupedSource",
    "ModelConfig",
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
