"""Embeddings of a scalar per sample (the diffusion time label): ``(B,) -> (B, dim)``."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class GaussianFourierFeatures(nn.Module):
    """Random Fourier features ``[sin(2 pi w t), cos(2 pi w t)]`` with fixed ``w ~ N(0, scale^2)``.

    The frequencies are a buffer drawn from a private generator seeded with ``seed``, so two
    models built with the same arguments embed identically and a checkpoint restores them.

    Args:
        dim: output size (even).
        scale: standard deviation of the frequencies, in cycles per unit of the input. The
            default 16 resolves details of ~1/100 of a unit on a label in ``[0, 1]``.
        seed: seed of the frequency draw.
    """

    def __init__(self, dim: int, scale: float = 16.0, seed: int = 0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"GaussianFourierFeatures: dim must be even and >= 2, got {dim}")
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("frequencies", torch.randn(dim // 2, generator=generator) * scale)
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        """``t: (B,)`` -> ``(B, dim)``."""
        angles = 2.0 * math.pi * t[:, None].to(self.frequencies.dtype) * self.frequencies[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class SinusoidalEmbedding(nn.Module):
    """Transformer positional embedding of a scalar, geometric frequencies.

    ``[sin(k t w_j), cos(k t w_j)]`` with ``w_j = max_period^(-j/(dim/2))``, ``j = 0..dim/2-1``,
    where ``k = input_scale`` stretches a label in ``[0, 1]`` to the range of positions
    (1000 as for DDPM's integer steps).
    """

    def __init__(self, dim: int, max_period: float = 10_000.0, input_scale: float = 1000.0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"SinusoidalEmbedding: dim must be even and >= 2, got {dim}")
        half = dim // 2
        frequencies = torch.exp(-math.log(max_period) * torch.arange(half) / half)
        self.register_buffer("frequencies", frequencies)
        self.input_scale = input_scale
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        """``t: (B,)`` -> ``(B, dim)``."""
        angles = self.input_scale * t[:, None].to(self.frequencies.dtype) * self.frequencies[None]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


EMBEDDINGS: dict[str, type[nn.Module]] = {
    "fourier": GaussianFourierFeatures,
    "sinusoidal": SinusoidalEmbedding,
}


def build_time_embedding(kind: str, dim: int, scale: float = 16.0) -> nn.Module:
    """``"fourier"`` (``scale`` = frequency std) or ``"sinusoidal"`` (``scale`` unused)."""
    if kind == "fourier":
        return GaussianFourierFeatures(dim, scale)
    if kind == "sinusoidal":
        return SinusoidalEmbedding(dim)
    raise ValueError(f"unknown time embedding {kind!r}; allowed: {sorted(EMBEDDINGS)}")
