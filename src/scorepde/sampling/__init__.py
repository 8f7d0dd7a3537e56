"""sampling layer: reverse-SDE and probability-flow samplers as plain functions."""

from scorepde.sampling.noise import PerSampleNoise
from scorepde.sampling.samplers import (
    TIME_GRIDS,
    CountingScoreFn,
    ScoreFn,
    count_evaluations,
    sample_euler_maruyama,
    sample_predictor_corrector,
    sample_probability_flow_dpm2m,
    sample_probability_flow_heun,
    time_grid,
)

__all__ = [
    "TIME_GRIDS",
    "CountingScoreFn",
    "PerSampleNoise",
    "ScoreFn",
    "count_evaluations",
    "sample_euler_maruyama",
    "sample_predictor_corrector",
    "sample_probability_flow_dpm2m",
    "sample_probability_flow_heun",
    "time_grid",
]
