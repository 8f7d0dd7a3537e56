"""nets layer: schedule-free backbones ``forward(x, noise_label, cond)`` and their embeddings."""

from scorepde.nets.embeddings import GaussianFourierFeatures, SinusoidalEmbedding
from scorepde.nets.film import FiLMConvNet
from scorepde.nets.mlp import MLPScoreNet
from scorepde.nets.registry import (
    BACKBONES,
    BackboneConfig,
    backbone_options,
    build_backbone,
    complete_backbone,
    count_parameters,
)
from scorepde.nets.unet import UNet

__all__ = [
    "BACKBONES",
    "BackboneConfig",
    "FiLMConvNet",
    "GaussianFourierFeatures",
    "MLPScoreNet",
    "SinusoidalEmbedding",
    "UNet",
    "backbone_options",
    "build_backbone",
    "complete_backbone",
    "count_parameters",
]
