"""``MLPScoreNet``: a residual MLP noise predictor for vector data.

Vector data follow the ``(batch, channels, *grid)`` convention as ``(B, 1, d)`` (one channel, a
"grid" of ``d`` components); plain ``(B, d)`` is accepted too. Any input ``(B, *shape)`` with
``prod(shape) == data_dim`` is flattened, processed and reshaped back, so the output always has
the input's shape.

Diagram::

    noise_label (B,) -> Fourier features (B, E) --+
    cond (B, k) ----------------------------------+-> Linear - SiLU - Linear -> e (B, H)
    x (B, d) -> Linear d->H -> h
    repeat depth times:  h <- h + Linear(SiLU(Linear(LN(h) * (1 + gamma(e)) + beta(e))))
    Linear H->d (SiLU before it) -> eps_hat (B, d)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from scorepde.nets.embeddings import build_time_embedding


class _ResidualBlock(nn.Module):
    """Pre-norm residual block whose normalised input is modulated by the embedding
    (adaptive layer norm, FiLM-style): ``h + W2 SiLU(W1 (LN(h) (1 + gamma(e)) + beta(e)))``.

    The modulation is multiplicative, so the conditions can set the *spread* of the output,
    not only shift it; gamma and beta start at zero (the block starts as a plain MLP block).
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.modulation = nn.Linear(hidden, 2 * hidden)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
        self.inner = nn.Linear(hidden, hidden)
        self.outer = nn.Linear(hidden, hidden)
        self.activation = nn.SiLU()

    def forward(self, h: Tensor, embedding: Tensor) -> Tensor:
        gamma, beta = self.modulation(embedding).chunk(2, dim=-1)
        modulated = self.norm(h) * (1.0 + gamma) + beta
        return h + self.outer(self.activation(self.inner(modulated)))


class MLPScoreNet(nn.Module):
    """Noise predictor for vectors.

    ``forward(x (B, 1, d) | (B, d), noise_label (B,), cond (B, k) | None) -> x.shape``.

    Args:
        data_dim: number of components ``d`` of one sample.
        cond_dim: number of conditions ``k`` (0: unconditional).
        hidden: width of the residual stream.
        depth: number of residual blocks.
        time_embedding_dim: size of the Fourier embedding of the noise label.
        fourier_scale: frequency standard deviation of that embedding.
        time_embedding: ``"fourier"`` or ``"sinusoidal"``.
    """

    def __init__(
        self,
        data_dim: int,
        cond_dim: int = 0,
        hidden: int = 128,
        depth: int = 3,
        time_embedding_dim: int = 64,
        fourier_scale: float = 16.0,
        time_embedding: str = "fourier",
    ) -> None:
        super().__init__()
        if data_dim < 1 or cond_dim < 0 or hidden < 1 or depth < 0:
            raise ValueError(
                f"MLPScoreNet: need data_dim >= 1, cond_dim >= 0, hidden >= 1, depth >= 0; got "
                f"data_dim={data_dim}, cond_dim={cond_dim}, hidden={hidden}, depth={depth}"
            )
        self.data_dim = data_dim
        self.cond_dim = cond_dim
        self.time_embedding = build_time_embedding(
            time_embedding, time_embedding_dim, fourier_scale
        )
        self.embedding = nn.Sequential(
            nn.Linear(time_embedding_dim + cond_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.input = nn.Linear(data_dim, hidden)
        self.blocks = nn.ModuleList(_ResidualBlock(hidden) for _ in range(depth))
        self.output = nn.Sequential(nn.SiLU(), nn.Linear(hidden, data_dim))

    def forward(self, x: Tensor, noise_label: Tensor, cond: Tensor | None = None) -> Tensor:
        """``x: (B, *shape)`` with ``prod(shape) == data_dim`` -> ``(B, *shape)``."""
        shape = x.shape
        if math.prod(shape[1:]) != self.data_dim:
            raise ValueError(
                f"MLPScoreNet built for data_dim={self.data_dim} received x of shape {tuple(shape)}"
            )
        features = self.time_embedding(noise_label).to(x.dtype)
        if self.cond_dim:
            if cond is None or cond.shape != (shape[0], self.cond_dim):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(
                    f"MLPScoreNet expects cond of shape ({shape[0]}, {self.cond_dim}), got {got}"
                )
            features = torch.cat([features, cond.to(x.dtype)], dim=-1)
        elif cond is not None and cond.numel() > 0:
            raise ValueError("MLPScoreNet was built with cond_dim=0 but received conditions")
        embedding = self.embedding(features)
        h = self.input(x.reshape(shape[0], self.data_dim))
        for block in self.blocks:
            h = block(h, embedding)
        return self.output(h).reshape(shape)
