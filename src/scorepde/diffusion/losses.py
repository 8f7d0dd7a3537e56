"""Denoising score matching (DSM) with the ``sigma_t^2`` weighting.

For ``x_0 ~ data``, ``t ~ U[t_min, t_max]``, ``x_t = m_t x_0 + sigma_t eps`` the loss is::

    E_t[ lambda(t) E || s(x_t, t | cond) + (x_t - m_t x_0) / sigma_t^2 ||^2 ]

with ``lambda(t) = sigma_t^2``. With the noise parametrisation ``s = -eps_hat / sigma_t``
(``preconditioning.py``) the integrand is exactly ``|| eps_hat - eps ||^2``; we average it over
the elements of a sample, so one sample's loss is O(1) whatever the field size.

Choice of weighting and of the time expectation: the seed text writes a maximum over ``t``; we
minimise the expectation over ``t`` with ``lambda(t) = sigma_t^2`` (Song et al. 2021, "Score-based
generative modeling through SDEs", eq. 7), the weighting proportional to ``1/E||grad log
p(x_t|x_0)||^2``, so every noise level contributes O(1) and no level dominates the gradient.

Variance reduction: with ``stratified=True`` the batch's times are drawn one per stratum of
``[t_min, t_max]`` (``B`` equal strata, then shuffled), which covers the interval evenly in every
batch and lowers the variance of the batch-mean loss without biasing it.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from scorepde.conditioning import Conditioning
from scorepde.diffusion.processes import NoiseProcess


class NoisePredictor(Protocol):
    """What the loss needs from a model: its process and its noise prediction (``ScoreModel``)."""

    process: NoiseProcess

    def predict_noise(self, x: Tensor, t: Tensor, cond: Conditioning | Tensor | None) -> Tensor: ...


def sample_diffusion_times(
    process: NoiseProcess,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    stratified: bool = True,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Training times ``t: (B,)`` in ``[t_min, t_max]``, uniform or stratified-uniform."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    uniform = torch.rand(batch_size, generator=generator, device=device, dtype=torch.float64)
    if stratified:
        order = torch.randperm(batch_size, generator=generator, device=device)
        uniform = (order.to(torch.float64) + uniform) / batch_size
    t = process.t_min + (process.t_max - process.t_min) * uniform
    return t.to(dtype)


def dsm_loss(
    model: NoisePredictor,
    x0: Tensor,
    cond: Conditioning | Tensor | None,
    *,
    generator: torch.Generator | None = None,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    stratified: bool = True,
) -> Tensor:
    """Per-sample denoising score-matching loss with weight ``sigma_t^2``.

    Args:
        model: a ``ScoreModel`` (anything with ``.process`` and ``.predict_noise``).
        x0: clean (normalised) data ``(B, *shape)``, e.g. ``(B, C, N)`` or ``(B, C, H, W)``.
        cond: a ``Conditioning`` of ``B`` rows, conditions ``(B, k)`` or ``None``.
        generator: torch generator for the times and the noise (on ``x0``'s device).
        t: fixed times ``(B,)``; drawn from ``U[t_min, t_max]`` when ``None``.
        noise: fixed standard normal noise shaped like ``x0``; drawn (after ``t``) when ``None``.
        stratified: stratify the drawn times over the batch (ignored when ``t`` is given).

    Returns:
        ``(B,)``: ``mean over elements of (eps_hat - eps)^2`` for each sample; take ``.mean()``
        for the training objective.
    """
    batch = x0.shape[0]
    if t is None:
        t = sample_diffusion_times(
            model.process,
            batch,
            generator=generator,
            stratified=stratified,
            device=x0.device,
            dtype=x0.dtype,
        )
    elif t.shape != (batch,):
        raise ValueError(f"dsm_loss: t must have shape ({batch},), got {tuple(t.shape)}")
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    elif noise.shape != x0.shape:
        raise ValueError(
            f"dsm_loss: noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}"
        )
    x_t = model.process.perturb(x0, t, noise)
    residual = model.predict_noise(x_t, t, cond) - noise
    return residual.square().flatten(1).mean(dim=1)
