"""Annealed Langevin dynamics (NCSN; Song & Ermon 2019, Algorithm 1) for any linear process.

Noise ladder. Write the marginal as ``x_t = m_t (x_0 + r_t z)`` with the noise-to-signal ratio
``r_t = sigma_t / m_t`` (VE: ``m_t = 1``, ``r_t = sigma(t)``) and work on the rescaled variable
``x^ = x_t / m_t``, whose density is the data smoothed by ``N(0, r_t^2 I)`` whatever the process.
Its score follows from the model's score in ``x_t`` by the chain rule::

    grad_{x^} log p^(x^) = m_t s(m_t x^, t | cond)

The ladder is ``L`` ratios ``r_1 > ... > r_L`` spaced geometrically between
``r_max = r(t_max)`` and ``r_min = r(t_min)``; level ``i`` uses the time
``t_i = process.time_from_noise_ratio(r_i)``. For VE this is exactly NCSN's geometric
``sigma_1 = sigma_max > ... > sigma_L = sigma_min`` (``t_i`` then uniform in ``t``); for VP
it is the same ladder of noise ratios, read on ``x^`` (so VP and VE models are sampled by one
code path and no error is raised for VP).

Update at level ``i`` (``steps_per_level`` times, ``z ~ N(0, I)``)::

    x^ <- x^ + (a_i / 2) score^(x^, r_i | y) + sqrt(a_i) z,     a_i = step_size r_i^2 / r_L^2

``step_size`` is the step at the last (smallest) level; the default ``2e-5`` is NCSN's
``epsilon`` for ``sigma_L = 0.01`` (our VE default ``sigma_min`` and VP's ``r(t_min)``). The
ratio ``a_i / r_i^2 = step_size / r_L^2`` (0.2 with the defaults) is the same at every level:
it is the step relative to the width of the smoothing kernel, which fixes the discretisation
bias of the noise-dominated directions (for a Gaussian of variance ``V`` the chain's stationary
variance is ``V / (1 - a / (4 V))``, at most 5 % too large with the defaults). Directions in
which the data vary on a scale ``lambda`` mix at the levels with ``r_i ~ sqrt(lambda)`` or
above; ``levels * steps_per_level`` must be large enough for that (see the Gaussian test).

Start: ``x^ ~ N(0, (prior_std / m(t_max))^2 I)`` (VE: ``sigma_max``; VP: ``sqrt(1 + r_max^2)``).
End (``final_denoise=True``): Tweedie at the last level, ``x_0 = x^ + r_L^2 score^(x^)``, which
removes the residual ``r_L`` noise; it costs one score evaluation. NFE per sample:
``levels * steps_per_level (+ 1)``.

Sample ``i`` draws all its noise from its own stream (``PerSampleNoise(seed, [i])``), so the
result does not depend on ``batch_size``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from tqdm.auto import tqdm

from scorepde.diffusion.processes import NoiseProcess
from scorepde.sampling.noise import PerSampleNoise
from scorepde.sampling.samplers import Condition, ScoreFn, sample_in_batches, times_like


def langevin_ladder(process: NoiseProcess, levels: int) -> tuple[Tensor, Tensor]:
    """The annealing ladder: ``(ratios (L,), times (L,))``, float64, decreasing.

    ``ratios``: noise-to-signal ratios ``r_1 = r(t_max) > ... > r_L = r(t_min)``, geometric.
    ``times``: ``t_i`` with ``r(t_i) = r_i`` (end points set exactly to ``t_max``, ``t_min``).
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an integer >= 2, got {levels!r}")
    t_max = torch.tensor(process.t_max, dtype=torch.float64)
    t_min = torch.tensor(process.t_min, dtype=torch.float64)
    log_max = torch.log(process.noise_ratio(t_max))
    log_min = torch.log(process.noise_ratio(t_min))
    fraction = torch.linspace(0.0, 1.0, levels, dtype=torch.float64)
    ratios = torch.exp(log_max + fraction * (log_min - log_max))
    times = process.time_from_noise_ratio(ratios)
    times[0], times[-1] = t_max, t_min
    ratios[0], ratios[-1] = process.noise_ratio(t_max), process.noise_ratio(t_min)
    return ratios, times


def sample_annealed_langevin(
    score_fn: ScoreFn,
    process: NoiseProcess,
    shape: tuple[int, ...],
    cond: Condition,
    *,
    n: int,
    levels: int = 10,
    steps_per_level: int = 100,
    step_size: float = 2e-5,
    steps: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    final_denoise: bool = True,
    progress: bool = False,
) -> Tensor:
    """Annealed Langevin dynamics over a geometric noise ladder; see the module docstring.

    Args:
        score_fn: ``(x (B, *shape), t (B,), cond) -> (B, *shape)``, the score in the
            process's own variable ``x_t`` (a ``ScoreModel``); ``cond`` is the batch's rows.
        process: the noise process the score belongs to (VE or VP).
        shape: one sample's shape, e.g. ``(1, d)`` or ``(C, N)``.
        cond: a ``Conditioning`` or a tensor ``(n, k)``, with ``n`` rows or one row shared by
            all samples (a tensor may be ``(k,)``), or None.
        n: number of samples.
        levels: number of noise levels ``L >= 2``.
        steps_per_level: Langevin steps ``T`` at each level.
        step_size: ``epsilon``, the step at the smallest level (``a_L``); ``a_i`` scales with
            ``r_i^2``. Default ``2e-5`` (NCSN's value for ``r_L = 0.01``); scale it with
            ``r_L^2`` for another ``r_min``.
        steps: total Langevin steps, the common ``steps`` argument of the sampler registry; when
            given it overrides ``steps_per_level`` with ``max(1, round(steps / levels))``.
        seed: per-sample streams ``PerSampleNoise(seed, [i])``.
        batch_size: samples per batch (None: all at once); does not change the result.
        device, dtype: where and in which precision to run.
        final_denoise: end with Tweedie's denoising step at the smallest level.
        progress: show a progress bar over the levels.

    Returns:
        ``(n, *shape)`` samples in the process's data space (``x_0``).
    """
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer or None, got {steps!r}")
        steps_per_level = max(1, round(steps / levels))
    if isinstance(steps_per_level, bool) or not isinstance(steps_per_level, int):
        raise ValueError(f"steps_per_level must be an integer, got {steps_per_level!r}")
    if steps_per_level < 1 or not (math.isfinite(step_size) and step_size > 0.0):
        raise ValueError(
            f"need steps_per_level >= 1 and step_size > 0, got steps_per_level="
            f"{steps_per_level}, step_size={step_size}"
        )
    ratios, times = langevin_ladder(process, levels)
    means = process.mean_coef(times)
    start_std = process.prior_std() / float(means[0])
    r_last = float(ratios[-1])

    def rescaled_score(x_hat: Tensor, level: int, cond_batch: Condition) -> Tensor:
        m = float(means[level])
        return m * score_fn(m * x_hat, times_like(times[level], x_hat), cond_batch)

    def run(noise: PerSampleNoise, cond_batch: Condition) -> Tensor:
        x_hat = start_std * noise.normal(shape, device=device, dtype=dtype)
        ladder = range(levels)
        for level in tqdm(ladder, desc="langevin", leave=False) if progress else ladder:
            a = step_size * (float(ratios[level]) / r_last) ** 2
            half, root = 0.5 * a, math.sqrt(a)
            for _ in range(steps_per_level):
                score = rescaled_score(x_hat, level, cond_batch)
                z = noise.normal(shape, device=x_hat.device, dtype=x_hat.dtype)
                x_hat = x_hat + half * score + root * z
        if final_denoise:
            x_hat = x_hat + r_last**2 * rescaled_score(x_hat, levels - 1, cond_batch)
        return x_hat

    return sample_in_batches(run, n, cond, seed, batch_size, device, dtype)


__all__ = ["langevin_ladder", "sample_annealed_langevin"]
