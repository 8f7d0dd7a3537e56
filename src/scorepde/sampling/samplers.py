"""Samplers: integrate the reverse-time dynamics of a noise process from ``t_max`` to ``t_min``.

All samplers share one signature style::

    sampler(score_fn, process, shape, cond, *, n, steps, seed, batch_size, device, dtype, progress)
        -> samples (n, *shape)

* ``score_fn(x (B, *shape), t (B,), cond (B, k) | None) -> (B, *shape)`` approximates
  ``grad_x log p_t(x | cond)``; a ``ScoreModel`` is one. It is called under ``torch.no_grad``;
  put a network in ``eval()`` mode yourself.
* ``cond`` is ``(n, k)`` (one row per sample), ``(k,)`` or ``(1, k)`` (the same conditions for
  all ``n``), or ``None``.
* Sample ``i`` draws its prior noise and all its step noise from its own stream
  (``PerSampleNoise(seed, [i])``), so the result does not depend on ``batch_size``.

Dynamics (``f``, ``g`` the forward drift and diffusion of ``process``, ``s`` the score)::

    reverse SDE:        dx = [f(x, t) - g(t)^2 s(x, t)] dt + g(t) dW_bar     (t decreasing)
    probability flow:   dx = [f(x, t) - g(t)^2 s(x, t) / 2] dt                 (same marginals)

Erratum to the seed: its VP sampler pairs the ODE drift ``beta/2 (x + s)`` with SDE noise
``sqrt(beta) dB``, which does not have the data marginals; the correct reverse SDE in reversed
time ``u = 1 - t`` is ``dY = beta/2 (Y + 2 s) du + sqrt(beta) dB``, used here.

Every sampler ends with one denoising step at ``t_min`` without noise (Tweedie's formula,
``x0 = (x + sigma^2 s) / m``), which removes the residual ``sigma(t_min)`` noise; it costs one
score evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from scorepde.diffusion.processes import NoiseProcess
from scorepde.sampling.noise import PerSampleNoise
from scorepde.tensor_utils import append_dims

ScoreFn = Callable[[Tensor, Tensor, Tensor | None], Tensor]
TimeGrid = Literal["uniform", "edm"]


class CountingScoreFn:
    """Wraps a score function and counts its use.

    ``calls``: number of (batched) calls; ``evaluations``: total rows evaluated. The number of
    function evaluations per sample (NFE) of a run over ``n`` samples is ``evaluations / n``.
    """

    def __init__(self, score_fn: ScoreFn) -> None:
        self.score_fn = score_fn
        self.calls = 0
        self.evaluations = 0

    def __call__(self, x: Tensor, t: Tensor, cond: Tensor | None) -> Tensor:
        self.calls += 1
        self.evaluations += x.shape[0]
        return self.score_fn(x, t, cond)

    def nfe(self, n: int) -> float:
        """Evaluations per sample over a run of ``n`` samples."""
        return self.evaluations / n


def count_evaluations(score_fn: ScoreFn) -> CountingScoreFn:
    """``counted = count_evaluations(model)``; sample with ``counted``; read ``counted.nfe(n)``."""
    return CountingScoreFn(score_fn)


def time_grid(
    process: NoiseProcess, steps: int, kind: TimeGrid = "uniform", rho: float = 7.0
) -> Tensor:
    """Decreasing times ``(steps + 1,)`` float64 from ``t_max`` to ``t_min``.

    ``"uniform"``: equal steps in ``t``. ``"edm"``: Karras et al. (2022) spacing, uniform in
    ``r^(1/rho)`` for the noise-to-signal ratio ``r = sigma_t / m_t``, mapped back to ``t`` by
    the process; it concentrates steps at low noise.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    fraction = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    t_max = torch.tensor(process.t_max, dtype=torch.float64)
    t_min = torch.tensor(process.t_min, dtype=torch.float64)
    if kind == "uniform":
        grid = t_max + fraction * (t_min - t_max)
    elif kind == "edm":
        r_max = process.noise_ratio(t_max) ** (1.0 / rho)
        r_min = process.noise_ratio(t_min) ** (1.0 / rho)
        grid = process.time_from_noise_ratio((r_max + fraction * (r_min - r_max)) ** rho)
    else:
        raise ValueError(f"unknown time grid {kind!r}; allowed: 'uniform', 'edm'")
    grid[0], grid[-1] = t_max, t_min  # exact end points despite round-off
    return grid


def sample_euler_maruyama(
    score_fn: ScoreFn,
    process: NoiseProcess,
    shape: tuple[int, ...],
    cond: Tensor | None,
    *,
    n: int,
    steps: int = 500,
    seed: int = 0,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> Tensor:
    """Euler-Maruyama on the reverse SDE, uniform steps in ``t``, then Tweedie denoising.

    ``x <- x - [f(x,t) - g^2 s(x,t)] h + g sqrt(h) z`` with ``h = (t_max - t_min) / steps``.
    NFE per sample: ``steps + 1``. Returns ``(n, *shape)``.
    """
    grid = time_grid(process, steps, "uniform")

    def run(noise: PerSampleNoise, cond_batch: Tensor | None) -> Tensor:
        x = process.prior_std() * noise.normal(shape, device=device, dtype=dtype)
        for i in _steps(steps, progress):
            x = _euler_maruyama_step(score_fn, process, x, grid[i], grid[i + 1], cond_batch, noise)
        return _tweedie(score_fn, process, x, grid[-1], cond_batch)

    return sample_in_batches(run, n, cond, seed, batch_size, device, dtype)


def sample_predictor_corrector(
    score_fn: ScoreFn,
    process: NoiseProcess,
    shape: tuple[int, ...],
    cond: Tensor | None,
    *,
    n: int,
    steps: int = 500,
    corrector_steps: int = 1,
    snr: float = 0.16,
    step_rule: Literal["sigma", "batch_norm"] = "sigma",
    seed: int = 0,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> Tensor:
    """Predictor-corrector (Song et al. 2021): Langevin corrector at ``t_i``, then an
    Euler-Maruyama predictor step to ``t_{i+1}``; Tweedie denoising at ``t_min``.

    Corrector step ``x <- x + eps s(x, t) + sqrt(2 eps) z`` with step size

    * ``"sigma"`` (default): ``eps = 2 snr^2 sigma_t^2``. Since the Fisher information of
      ``p_t`` is at most ``D / sigma_t^2`` (Stam's inequality: adding ``N(0, sigma_t^2 I)`` noise),
      this is never larger than score_sde's rule ``2 snr^2 D / E||s||^2``; it does not depend
      on ``x`` or on the other samples, so the chain stays unbiased to first order and the
      samples do not depend on the batch.
    * ``"batch_norm"``: score_sde's rule ``eps = 2 (snr mean||z|| / mean||s||)^2`` with norms
      averaged over the current batch; samples then DEPEND on ``batch_size``. (A per-sample
      version is biased: a step that grows where ``||s||`` is small pushes samples out of the
      modes, e.g. a 30 % covariance error for an 8-d Gaussian.)

    NFE per sample: ``steps (corrector_steps + 1) + 1``. Returns ``(n, *shape)``.
    """
    if corrector_steps < 0 or snr <= 0.0:
        raise ValueError(
            f"need corrector_steps >= 0 and snr > 0, got corrector_steps={corrector_steps}, "
            f"snr={snr}"
        )
    if step_rule not in ("sigma", "batch_norm"):
        raise ValueError(f"unknown step_rule {step_rule!r}; allowed: 'sigma', 'batch_norm'")
    grid = time_grid(process, steps, "uniform")

    def run(noise: PerSampleNoise, cond_batch: Tensor | None) -> Tensor:
        x = process.prior_std() * noise.normal(shape, device=device, dtype=dtype)
        for i in _steps(steps, progress):
            t = times_like(grid[i], x)
            for _ in range(corrector_steps):
                score = score_fn(x, t, cond_batch)
                z = noise.normal(shape, device=device, dtype=dtype)
                if step_rule == "sigma":
                    step = 2.0 * snr**2 * process.variance(t)
                else:
                    ratio = z.flatten(1).norm(dim=1).mean() / score.flatten(1).norm(dim=1).mean()
                    step = (2.0 * (snr * ratio) ** 2).expand(x.shape[0])
                step = append_dims(step, x.ndim)
                x = x + step * score + torch.sqrt(2.0 * step) * z
            x = _euler_maruyama_step(score_fn, process, x, grid[i], grid[i + 1], cond_batch, noise)
        return _tweedie(score_fn, process, x, grid[-1], cond_batch)

    return sample_in_batches(run, n, cond, seed, batch_size, device, dtype)


def sample_probability_flow_heun(
    score_fn: ScoreFn,
    process: NoiseProcess,
    shape: tuple[int, ...],
    cond: Tensor | None,
    *,
    n: int,
    steps: int = 100,
    time_grid_kind: TimeGrid = "uniform",
    rho: float = 7.0,
    seed: int = 0,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> Tensor:
    """Heun's method (2nd order) on the probability-flow ODE ``dx/dt = f - g^2 s / 2``.

    Deterministic given the initial noise (only the prior draw is random). The last step is a
    plain Euler step, then Tweedie denoising at ``t_min``. ``time_grid_kind``: ``"uniform"`` in
    ``t`` or ``"edm"`` (``rho``-spacing of the noise-to-signal ratio). NFE per sample:
    ``2 steps``. Returns ``(n, *shape)``.
    """
    grid = time_grid(process, steps, time_grid_kind, rho)

    def velocity(x: Tensor, t: Tensor, cond_batch: Tensor | None) -> Tensor:
        g2 = append_dims(process.diffusion(t) ** 2, x.ndim)
        return process.drift(x, t) - 0.5 * g2 * score_fn(x, t, cond_batch)

    def run(noise: PerSampleNoise, cond_batch: Tensor | None) -> Tensor:
        x = process.prior_std() * noise.normal(shape, device=device, dtype=dtype)
        for i in _steps(steps, progress):
            h = float(grid[i + 1] - grid[i])
            slope = velocity(x, times_like(grid[i], x), cond_batch)
            x_euler = x + h * slope
            if i == steps - 1:
                x = x_euler
            else:
                slope_next = velocity(x_euler, times_like(grid[i + 1], x), cond_batch)
                x = x + 0.5 * h * (slope + slope_next)
        return _tweedie(score_fn, process, x, grid[-1], cond_batch)

    return sample_in_batches(run, n, cond, seed, batch_size, device, dtype)


# ----------------------------------------------------------------------------------------------


def times_like(t: Tensor | float, like: Tensor) -> Tensor:
    """A grid time as a ``(B,)`` tensor matching ``like``."""
    return torch.full((like.shape[0],), float(t), device=like.device, dtype=like.dtype)


def _euler_maruyama_step(
    score_fn: ScoreFn,
    process: NoiseProcess,
    x: Tensor,
    t_now: Tensor,
    t_next: Tensor,
    cond: Tensor | None,
    noise: PerSampleNoise,
) -> Tensor:
    """One reverse-SDE step from ``t_now`` down to ``t_next`` (drift at ``t_now``)."""
    h = float(t_now - t_next)
    t = times_like(t_now, x)
    g = append_dims(process.diffusion(t), x.ndim)
    drift = process.drift(x, t) - g**2 * score_fn(x, t, cond)
    z = noise.normal(x.shape[1:], device=x.device, dtype=x.dtype)
    return x - h * drift + math.sqrt(h) * g * z


def _tweedie(
    score_fn: ScoreFn, process: NoiseProcess, x: Tensor, t_end: Tensor, cond: Tensor | None
) -> Tensor:
    """Denoise at ``t_end``: ``E[x0 | x_t] = (x + sigma_t^2 s) / m_t``."""
    t = times_like(t_end, x)
    variance = append_dims(process.variance(t), x.ndim)
    return (x + variance * score_fn(x, t, cond)) / append_dims(process.mean_coef(t), x.ndim)


def _steps(steps: int, progress: bool) -> Iterator[int]:
    if progress:
        return iter(tqdm(range(steps), desc="sampling", leave=False))
    return iter(range(steps))


def _expand_cond(
    cond: Tensor | None, n: int, device: torch.device | str | None, dtype: torch.dtype
) -> Tensor | None:
    if cond is None:
        return None
    cond = torch.as_tensor(cond).to(device=device, dtype=dtype)
    if cond.ndim == 1:
        cond = cond[None]
    if cond.ndim != 2 or cond.shape[0] not in (1, n):
        raise ValueError(
            f"cond must have shape (n, k) = ({n}, k), (1, k) or (k,); got {tuple(cond.shape)}"
        )
    return cond.expand(n, -1)


def sample_in_batches(
    run: Callable[[PerSampleNoise, Tensor | None], Tensor],
    n: int,
    cond: Tensor | None,
    seed: int,
    batch_size: int | None,
    device: torch.device | str | None,
    dtype: torch.dtype,
) -> Tensor:
    """Run ``run(noise, cond_batch) -> (B, *shape)`` over samples ``0..n-1`` in batches.

    Sample ``i`` draws all its noise from its own stream ``PerSampleNoise(seed, [i, ...])``,
    so the result does not depend on ``batch_size`` (None: one batch). ``cond``: ``(n, k)``,
    ``(k,)``/``(1, k)`` (shared) or None. Returns ``(n, *shape)``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 or None, got {batch_size}")
    batch_size = n if batch_size is None else batch_size
    cond = _expand_cond(cond, n, device, dtype)
    outputs = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            noise = PerSampleNoise(seed, range(start, stop))
            cond_batch = None if cond is None else cond[start:stop]
            outputs.append(run(noise, cond_batch))
    return torch.cat(outputs)
