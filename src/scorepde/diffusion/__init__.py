"""diffusion layer: noise processes, the denoising score-matching loss, the score wrapper."""

from scorepde.diffusion.losses import dsm_loss, sample_diffusion_times
from scorepde.diffusion.preconditioning import ScoreModel
from scorepde.diffusion.processes import (
    PROCESSES,
    NoiseProcess,
    VEProcess,
    VPProcess,
    build_process,
)

__all__ = [
    "PROCESSES",
    "NoiseProcess",
    "ScoreModel",
    "VEProcess",
    "VPProcess",
    "build_process",
    "dsm_loss",
    "sample_diffusion_times",
]
