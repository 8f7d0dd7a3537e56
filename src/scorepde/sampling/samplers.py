"""Samplers: integrate the reverse-time dynamics of a noise process from ``t_max`` to ``t_min``.

All samplers share one signature style::

    sampler(score_fn, process, shape, cond, *, n, steps, seed, batch_size, device, dtype, progress)
        -> samples (n, *shape)

* ``score_fn(x (B, *shape), t (B,), cond) -> (B, *shape)`` approximates
  ``grad_x log p_t(x | cond)``; a ``ScoreModel`` is one. It is called under ``torch.no_grad``;
  put a network in ``eval()`` mode yourself.
* ``cond`` is a :class:`~scorepde.conditioning.Conditioning` (vector, fields and/or labels) or
  a plain tensor ``(n, k)``, with one row per sample or one row shared by all ``n`` samples
  (a tensor may also be ``(k,)``), or ``None``. The score function receives the rows of its
  batch in the same kind: a ``(B, k)`` tensor or a ``Conditioning`` of ``B`` rows. Float parts
  are cast to the sampler's ``dtype``; labels stay int64.
* Sample ``i`` draws its prior noise and all its step noise from its own stream
  (``PerSampleNoise(seed, [i])``), so the result does not depend on ``batch_size``.

Dynamics (``f``, ``g`` the forward drift and diffusion of ``process``, ``s`` the score)::

    reverse SDE:        dx = [f(x, t) - g(t)^2 s(x, t)] dt + g(t) dW_bar     (t decreasing)
    probability flow:   dx = [f(x, t) - g(t)^2 s(x, t) / 2] dt                 (same marginals)

Erratum to the seed: its VP sampler pairs the ODE drift ``beta/2 (x + s)`` with SDE noise
``sqrt(beta) dB``, which does not have the data marginals; the correct reverse SDE in reversed
time ``u = 1 - t`` is ``dY = beta/2 (Y + 2 s) du + sqrt(beta) dB``, used here.

Deterministic samplers of the probability flow: Heun (``sample_probability_flow_heun``,
2nd order, on a uniform, EDM (rho = 7) or log-SNR time grid, with optional EDM churn) and the
multistep exponential integrator DPM-Solver++(2M) (``sample_probability_flow_dpm2m``, one score
evaluation per step). NFE per sample (``steps`` = number of grid intervals): Euler-Maruyama
``steps + 1``; predictor-corrector ``steps (corrector_steps + 1) + 1``; Heun ``2 steps``;
DPM-Solver++(2M) ``steps + 1``. So for an NFE budget ``B``: EM and DPM-2M ``steps = B - 1``,
Heun ``steps = B / 2``, PC (one corrector step) ``steps = (B - 1) / 2``.

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

from scorepde.conditioning import Conditioning
from scorepde.diffusion.processes import NoiseProcess
from scorepde.sampling.noise import PerSampleNoise
from scorepde.tensor_utils import append_dims

#: What a sampler accepts as conditioning: a ``Conditioning``, a ``(n, k)``/``(k,)`` tensor or None.
Condition = Conditioning | Tensor | None
ScoreFn = Callable[[Tensor, Tensor, Condition], Tensor]
TimeGrid = Literal["uniform", "edm", "logsnr"]
TIME_GRIDS: tuple[str, ...] = ("uniform", "edm", "logsnr")


class CountingScoreFn:
    """Wraps a score function and counts its use.

    ``calls``: number of (batched) calls; ``evaluations``: total rows evaluated. The number of
    function evaluations per sample (NFE) of a run over ``n`` samples is ``evaluations / n``.
    """

    def __init__(self, score_fn: ScoreFn) -> None:
        self.score_fn = score_fn
        self.calls = 0
        self.evaluations = 0

    def __call__(self, x: Tensor, t: Tensor, cond: Condition) -> Tensor:
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
    the process; it concentrates steps at low noise. ``"logsnr"``: equal steps in the half
    log-SNR ``lambda_t = log(m_t / sigma_t) = -log r`` (DPM-Solver's grid; for VE, equal steps
    in ``log sigma``, i.e. the same as ``"uniform"``).
    """
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    steps = int(steps)
    fraction = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    t_max = torch.tensor(process.t_max, dtype=torch.float64)
    t_min = torch.tensor(process.t_min, dtype=torch.float64)
    if kind == "uniform":
        grid = t_max + fraction * (t_min - t_max)
    elif kind == "edm":
        if not rho > 0.0:
            raise ValueError(f"rho must be positive for the 'edm' time grid, got {rho!r}")
        r_max = process.noise_ratio(t_max) ** (1.0 / rho)
        r_min = process.noise_ratio(t_min) ** (1.0 / rho)
        grid = process.time_from_noise_ratio((r_max + fraction * (r_min - r_max)) ** rho)
    elif kind == "logsnr":
        log_r_max = torch.log(process.noise_ratio(t_max))
        log_r_min = torch.log(process.noise_ratio(t_min))
        log_ratio = log_r_max + fraction * (log_r_min - log_r_max)
        grid = process.time_from_noise_ratio(torch.exp(log_ratio))
    else:
        raise ValueError(f"unknown time grid {kind!r}; allowed: {list(TIME_GRIDS)}")
    grid[0], grid[-1] = t_max, t_min  # exact end points despite round-off
    return grid


def sample_euler_maruyama(
    score_fn: ScoreFn,
    process: NoiseProcess,
    shape: tuple[int, ...],
    cond: Condition,
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

    def run(noise: PerSampleNoise, cond_batch: Condition) -> Tensor:
        x = process.prior_std() * noise.normal(shape, device=device, dtype=dtype)
        for i in _steps(steps, progress):
            x = _euler_maruyama_step(score_fn, process, x, grid[i], grid[i + 1], cond_batch, noise)
        return _tweedie(score_fn, process, x, grid[-1], cond_batch)

    return sample_in_batches(run, n, cond, seed, batch_size, device, dtype)


def sample_predictor_corrector(
    score_fn: ScoreFn,
    process: NoiseProcess,
    shape: tuple[int, ...],
    cond: Condition,
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

    def run(noise: PerSampleNoise, cond_batch: Condition) -> Tensor:
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
    cond: Condition,
    *,
    n: int,
    steps: int = 100,
    time_grid_kind: TimeGrid = "uniform",
    rho: float = 7.0,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    s_noise: float = 1.0,
    seed: int = 0,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> Tensor:
    """Heun's method (2nd order) on the probability-flow ODE ``dx/dt = f - g^2 s / 2``.

    Deterministic given the initial noise when ``s_churn = 0`` (only the prior draw is random).
    The last step is a plain Euler step, then Tweedie denoising at ``t_min``.
    ``time_grid_kind``: ``"uniform"`` in ``t``, ``"edm"`` (``rho``-spacing of the
    noise-to-signal ratio; ``rho = 7`` is EDM's choice) or ``"logsnr"``.

    Stochastic churn (Karras et al. 2022, Algorithm 2), off by default: before step ``i``,
    if ``s_tmin <= r_i <= s_tmax`` (``r = sigma_t / m_t``, the noise-to-signal ratio), raise
    the noise level to ``r^ = r_i (1 + gamma)``, ``gamma = min(s_churn / steps, sqrt(2) - 1)``
    (capped at ``r(t_max)``), by exact forward noising of ``x^ = x / m``::

        x <- (m(t^) / m(t_i)) x + m(t^) sqrt(r^2 - r_i^2) s_noise z,     r(t^) = r^

    and take the Heun step from ``t^`` to ``t_{i+1}``. ``z`` comes from the sample's own
    stream, so samples still do not depend on ``batch_size``. Churn re-injects noise that the
    ODE then removes, which corrects part of the error of an imperfect score.

    NFE per sample: ``2 steps`` (2 per step, 1 for the last Euler step, 1 for Tweedie), with
    or without churn. Returns ``(n, *shape)``.
    """
    if s_churn < 0.0 or s_noise < 0.0 or not s_tmin <= s_tmax:
        raise ValueError(
            f"need s_churn >= 0, s_noise >= 0 and s_tmin <= s_tmax; got s_churn={s_churn}, "
            f"s_noise={s_noise}, s_tmin={s_tmin}, s_tmax={s_tmax}"
        )
    grid = time_grid(process, steps, time_grid_kind, rho)
    ratios = process.noise_ratio(grid)
    gamma = min(s_churn / steps, math.sqrt(2.0) - 1.0)

    def velocity(x: Tensor, t: Tensor, cond_batch: Condition) -> Tensor:
        g2 = append_dims(process.diffusion(t) ** 2, x.ndim)
        return process.drift(x, t) - 0.5 * g2 * score_fn(x, t, cond_batch)

    def churn(x: Tensor, i: int, noise: PerSampleNoise) -> tuple[Tensor, Tensor]:
        """Raise the noise of ``x`` at ``t_i``; returns ``(x^, t^)``."""
        ratio = ratios[i]
        if gamma == 0.0 or not s_tmin <= float(ratio) <= s_tmax:
            return x, grid[i]
        raised = torch.clamp(ratio * (1.0 + gamma), max=ratios[0])
        if not raised > ratio:
            return x, grid[i]
        t_hat = process.time_from_noise_ratio(raised)
        m_now, m_hat = process.mean_coef(grid[i]), process.mean_coef(t_hat)
        z = noise.normal(shape, device=x.device, dtype=x.dtype)
        extra = float(m_hat * torch.sqrt(raised**2 - ratio**2)) * s_noise
        return float(m_hat / m_now) * x + extra * z, t_hat

    def run(noise: PerSampleNoise, cond_batch: Condition) -> Tensor:
        x = process.prior_std() * noise.normal(shape, device=device, dtype=dtype)
        for i in _steps(steps, progress):
            x, t_now = churn(x, i, noise)
            h = float(grid[i + 1] - t_now)
            slope = velocity(x, times_like(t_now, x), cond_batch)
            x_euler = x + h * slope
            if i == steps - 1:
                x = x_euler
            else:
                slope_next = velocity(x_euler, times_like(grid[i + 1], x), cond_batch)
                x = x + 0.5 * h * (slope + slope_next)
        return _tweedie(score_fn, process, x, grid[-1], cond_batch)

    return sample_in_batches(run, n, cond, seed, batch_size, device, dtype)


def sample_probability_flow_dpm2m(
    score_fn: ScoreFn,
    process: NoiseProcess,
    shape: tuple[int, ...],
    cond: Condition,
    *,
    n: int,
    steps: int = 19,
    time_grid_kind: TimeGrid = "logsnr",
    rho: float = 7.0,
    seed: int = 0,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> Tensor:
    """Second-order multistep exponential integrator of the probability-flow ODE in the
    data-prediction form (DPM-Solver++(2M), Lu et al. 2022), then Tweedie at ``t_min``.

    With ``alpha_t = m_t``, ``sigma_t`` and the half log-SNR ``lambda_t = log(m_t / sigma_t)``
    read from ``process`` (VE: ``m_t = 1``, ``lambda = -log sigma``), the PF ODE written for
    the denoiser ``D(x, t) = (x + sigma_t^2 s(x, t)) / m_t`` is linear in ``x`` plus a
    ``D`` term, and its exact solution from ``t_i`` to ``t_{i+1}`` is::

        x_{i+1} = (sigma_{i+1} / sigma_i) x_i + sigma_{i+1} int_{lambda_i}^{lambda_{i+1}}
                  e^lambda D(x_lambda, lambda) d lambda

    Holding ``D`` at ``D_i`` gives ``int = (e^{lambda_{i+1}} - e^{lambda_i}) D_i``, i.e.
    ``x_{i+1} = (sigma_{i+1}/sigma_i) x_i - m_{i+1} expm1(-h_i) D_i`` with
    ``h_i = lambda_{i+1} - lambda_i`` (first order; DDIM). The multistep second-order
    version replaces ``D_i`` by the linear extrapolation in ``lambda`` through the previous
    step's denoiser, evaluated at the step's midpoint in the sense of the paper::

        D'_i = (1 + 1/(2 r_i)) D_i - 1/(2 r_i) D_{i-1},     r_i = h_{i-1} / h_i

    (the first step is first order). One score evaluation per step and one for Tweedie:
    NFE per sample ``steps + 1``. ``time_grid_kind``: ``"logsnr"`` (default, equal ``h``),
    ``"edm"`` or ``"uniform"``. Deterministic given the prior draw. Returns ``(n, *shape)``.
    """
    grid = time_grid(process, steps, time_grid_kind, rho)
    mean = process.mean_coef(grid)
    std = process.std(grid)
    log_snr = torch.log(mean / std)  # lambda_t, increasing along the grid

    def run(noise: PerSampleNoise, cond_batch: Condition) -> Tensor:
        x = process.prior_std() * noise.normal(shape, device=device, dtype=dtype)
        previous: Tensor | None = None
        for i in _steps(steps, progress):
            denoised = _tweedie(score_fn, process, x, grid[i], cond_batch)
            h = log_snr[i + 1] - log_snr[i]
            if previous is None:
                estimate = denoised
            else:
                half_inverse_r = float(0.5 * h / (log_snr[i] - log_snr[i - 1]))
                estimate = (1.0 + half_inverse_r) * denoised - half_inverse_r * previous
            x = float(std[i + 1] / std[i]) * x - float(mean[i + 1] * torch.expm1(-h)) * estimate
            previous = denoised
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
    cond: Condition,
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
    score_fn: ScoreFn, process: NoiseProcess, x: Tensor, t_end: Tensor, cond: Condition
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
    cond: Condition, n: int, device: torch.device | str | None, dtype: torch.dtype
) -> Condition:
    """``cond`` with ``n`` rows on ``device`` (float parts in ``dtype``, labels int64)."""
    if cond is None:
        return None
    if isinstance(cond, Conditioning):
        if cond.batch_size not in (1, n):
            raise ValueError(
                f"cond is a Conditioning of {cond.batch_size} rows; expected n = {n} rows or "
                "1 row shared by all samples"
            )
        return cond.to(device, dtype).expand(n)
    cond = torch.as_tensor(cond).to(device=device, dtype=dtype)
    if cond.ndim == 1:
        cond = cond[None]
    if cond.ndim != 2 or cond.shape[0] not in (1, n):
        raise ValueError(
            f"cond must have shape (n, k) = ({n}, k), (1, k) or (k,); got {tuple(cond.shape)}"
        )
    return cond.expand(n, -1)


def sample_in_batches(
    run: Callable[[PerSampleNoise, Condition], Tensor],
    n: int,
    cond: Condition,
    seed: int,
    batch_size: int | None,
    device: torch.device | str | None,
    dtype: torch.dtype,
) -> Tensor:
    """Run ``run(noise, cond_batch) -> (B, *shape)`` over samples ``0..n-1`` in batches.

    Sample ``i`` draws all its noise from its own stream ``PerSampleNoise(seed, [i, ...])``,
    so the result does not depend on ``batch_size`` (None: one batch). ``cond``: a
    ``Conditioning`` or a tensor with ``n`` rows or one shared row (a tensor may be ``(k,)``), or
    None; ``run`` gets rows ``start:stop`` of it. Returns ``(n, *shape)``.
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
