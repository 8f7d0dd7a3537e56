"""sampling layer: reverse-SDE and probability-flow samplers as plain functions, and the one
sampler registry (``SAMPLERS``, ``DEFAULT_STEPS``, ``resolve_sampler``)."""

from scorepde.sampling.langevin import sample_annealed_langevin
from scorepde.sampling.noise import PerSampleNoise
from scorepde.sampling.registry import (
    DEFAULT_SAMPLER_OPTIONS,
    DEFAULT_STEPS,
    SAMPLERS,
    resolve_sampler,
)
from scorepde.sampling.samplers import (
    TIME_GRIDS,
    Condition,
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
    "DEFAULT_SAMPLER_OPTIONS",
    "DEFAULT_STEPS",
    "SAMPLERS",
    "TIME_GRIDS",
    "Condition",
    "CountingScoreFn",
    "PerSampleNoise",
    "ScoreFn",
    "count_evaluations",
    "resolve_sampler",
    "sample_annealed_langevin",
    "sample_euler_maruyama",
    "sample_predictor_corrector",
    "sample_probability_flow_dpm2m",
    "sample_probability_flow_heun",
    "time_grid",
]
