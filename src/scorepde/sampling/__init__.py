"""sampling layer: reverse-SDE and probability-flow samplers as plain functions."""

from scorepde.sampling.noise import PerSampleNoise
from scorepde.sampling.samplers import (
    CountingScoreFn,
    ScoreFn,
    count_evaluations,
    sample_euler_maruyama,
    sample_predictor_corrector,
    sample_probability_flow_heun,
    time_grid,
)

__all__ = [
    "CountingScoreFn",
    "PerSampleNoise",
    "ScoreFn",
    "count_evaluations",
    "sample_euler_maruyama",
    "sample_predictor_corrector",
    "sample_probability_flow_heun",
    "time_grid",
]
