"""The sampler registry: names -> sampling functions, and the default steps and options of
each sampler (one table for the forward and the inverse models).

Every entry has the signature of ``scorepde.sampling.samplers`` (``sampler(score_fn, process,
shape, cond, *, n, steps, seed, batch_size, device, dtype, progress, **options)``). NFE per
sample for ``steps``: euler_maruyama ``steps + 1``; predictor_corrector ``2 steps + 1`` (one
corrector step); ode_heun, ode_heun_edm and heun_churn ``2 steps``; ode_dpm2m ``steps + 1``;
annealed_langevin see ``scorepde.sampling.langevin``. Keyword options given by the caller
override the presets below (e.g. ``s_churn=20`` for heun_churn).

Default steps. :data:`DEFAULT_STEPS` is the step count per sampler when a caller names a
sampler but gives no steps (``AmortisedPosterior.sample(..., sampler=NAME, steps=None)``;
chosen so that each sampler is close to its converged result on the test problems). A
forward model (``ConditionalModel.sample``) first uses the sampler and steps of the recipe it
was trained with; a sampler named without steps gets :data:`FALLBACK_STEPS` (100) there, as it
always has, so results do not change. A posterior sampled without a sampler name uses
:data:`DEFAULT_POSTERIOR_SAMPLER` at :data:`DEFAULT_POSTERIOR_STEPS` (the fast default;
annealed Langevin and the SDE samplers stay available by name).
:data:`DEFAULT_SAMPLER_OPTIONS` are extra defaults the inverse models apply (a forward model
passes only the options it is given).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from torch import Tensor

from scorepde.sampling.langevin import sample_annealed_langevin
from scorepde.sampling.samplers import (
    sample_euler_maruyama,
    sample_predictor_corrector,
    sample_probability_flow_dpm2m,
    sample_probability_flow_heun,
)

#: Sampler name -> sampling function (presets bound with ``functools.partial``).
SAMPLERS: dict[str, Callable[..., Tensor]] = {
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

#: Sampler name -> total steps used when the caller gives none.
DEFAULT_STEPS: dict[str, int] = {
    "euler_maruyama": 500,
    "predictor_corrector": 500,
    "ode_heun": 100,
    "ode_heun_edm": 50,
    "heun_churn": 50,
    "ode_dpm2m": 49,
    "annealed_langevin": 2000,
}

#: The sampler and steps of ``AmortisedPosterior.sample`` / ``sample_many`` when the caller
#: names no sampler: the probability-flow ODE with DPM-Solver-2M steps on a log-SNR grid, 19
#: steps = 20 network evaluations per sample. On the linear-Gaussian tasks (exact score and
#: trained network) it is as accurate as Euler-Maruyama at 500 steps (501 evaluations) to
#: within the Monte-Carlo noise of 10 000 samples; figures in docs/inverse.md ("Defaults").
DEFAULT_POSTERIOR_SAMPLER = "ode_dpm2m"
DEFAULT_POSTERIOR_STEPS = 19

#: Steps of a forward model's sampler named without steps and without a recorded recipe.
FALLBACK_STEPS = 100

#: Sampler name -> extra default options (the caller's options override them).
DEFAULT_SAMPLER_OPTIONS: dict[str, dict[str, Any]] = {
    # 20 levels x 100 steps, step 5e-5 at r_L = 0.01: ~2 % variance excess on a Gaussian
    # (see sampling/langevin.py and tests/test_sampling_langevin.py).
    "annealed_langevin": {"levels": 20, "step_size": 5e-5},
}


def resolve_sampler(name: str) -> Callable[..., Tensor]:
    """The sampling function registered as ``name``; an unknown name is a ``ValueError``
    listing the registered names."""
    if not isinstance(name, str) or name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; allowed: {sorted(SAMPLERS)}")
    return SAMPLERS[name]


def default_steps(name: str) -> int:
    """:data:`DEFAULT_STEPS` of sampler ``name`` (checked like :func:`resolve_sampler`)."""
    resolve_sampler(name)
    return DEFAULT_STEPS[name]


def sampler_options(name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """:data:`DEFAULT_SAMPLER_OPTIONS` of ``name`` overridden by ``options``."""
    resolve_sampler(name)
    return {**DEFAULT_SAMPLER_OPTIONS.get(name, {}), **(options or {})}


__all__ = [
    "DEFAULT_POSTERIOR_SAMPLER",
    "DEFAULT_POSTERIOR_STEPS",
    "DEFAULT_SAMPLER_OPTIONS",
    "DEFAULT_STEPS",
    "FALLBACK_STEPS",
    "SAMPLERS",
    "default_steps",
    "resolve_sampler",
    "sampler_options",
]
