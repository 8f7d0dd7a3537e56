"""``MLPScoreNet``: a residual MLP noise predictor for vector data.

Vector data follow the ``(batch, channels, *grid)`` convention as ``(B, 1, d)`` (one channel, a
"grid" of ``d`` components); plain ``(B, d)`` is accepted too. Any input ``(B, *shape)`` with
``prod(shape) == data_dim`` is flattened, processed and reshaped back, so the output always has
the input's shape.

Diagram::

    noise_label (B,) -> Fourier features (B, E) --+
    cond vector (B, k) ---------------------------+
    cond fields (B, Cy, *S') flattened (B, F) ----+  (only with cond_field_dim = F > 0)
    cond labels (B,) -> Embedding (B, L) ---------+  (only with n_labels > 0)
                                                  +-> concat -> Linear - SiLU - Linear -> e (B, H)
    x (B, d) [+ cond vector with cond_to_input] -> Linear d(+k)->H -> h
    repeat depth times:  h <- h + Linear(SiLU(Linear(LN(h) * (1 + gamma(e)) + beta(e))))
    Linear H->d (SiLU before it) -> eps_hat (B, d)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from scorepde.conditioning import Conditioning, ConditioningSpec
from scorepde.nets.embeddings import build_time_embedding
from scorepde.nets.inputs import read_conditioning


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

    ``forward(x (B, 1, d) | (B, d), noise_label (B,), cond) -> x.shape``, with ``cond`` a
    :class:`~scorepde.conditioning.Conditioning`, a ``(B, k)`` tensor (vector conditions) or
    ``None``.

    Args:
        data_dim: number of components ``d`` of one sample.
        cond_dim: number of conditions ``k`` (0: unconditional).
        hidden: width of the residual stream.
        depth: number of residual blocks.
        time_embedding_dim: size of the Fourier embedding of the noise label.
        fourier_scale: frequency standard deviation of that embedding.
        time_embedding: ``"fourier"`` or ``"sinusoidal"``.
        n_labels: number of integer labels (0: none); embedded by
            ``nn.Embedding(n_labels, label_embedding_dim)``.
        cond_field_dim: numbers per sample of the field conditions ``Cy * prod(S')``, flattened
            into the condition vector (0: none).
        label_embedding_dim: size of the label embedding (used only when ``n_labels > 0``).
        cond_to_input: the vector conditions also enter the input layer beside ``x``
            (``Linear(d + k, H)``), not only the embedding that modulates the blocks; with zero-
            initialised modulation this is the only path by which a fresh network sees them.
        zero_output: the output layer starts at zero. Under the EDM parametrisation with
            ``sigma_data = 1`` the untrained model is then the exact score of ``N(0, I)``: in a
            whitened model space (every coordinate standardised per condition) it starts as
            the conditional Gaussian that the whitening defines, and training moves it only
            where the loss says so. Off by default: with it on, the same seed gives different
            initial weights for the output layer (all others are unchanged).

    The options from ``n_labels`` to ``cond_to_input`` are off by default, and the modules
    they need are created only when used and after all the others, so a model built without
    them is the original network (same parameter names, same initial values for the same
    seed).
    """

    #: Whether the network works along the sample's grid (a flat vector); a model
    #: space without a grid (subspace coefficients) needs a backbone that does not.
    uses_grid = False

    def __init__(
        self,
        data_dim: int,
        cond_dim: int = 0,
        hidden: int = 128,
        depth: int = 3,
        time_embedding_dim: int = 64,
        fourier_scale: float = 16.0,
        time_embedding: str = "fourier",
        n_labels: int = 0,
        cond_field_dim: int = 0,
        label_embedding_dim: int = 16,
        cond_to_input: bool = False,
        zero_output: bool = False,
    ) -> None:
        super().__init__()
        if data_dim < 1 or cond_dim < 0 or hidden < 1 or depth < 0:
            raise ValueError(
                f"MLPScoreNet: need data_dim >= 1, cond_dim >= 0, hidden >= 1, depth >= 0; got "
                f"data_dim={data_dim}, cond_dim={cond_dim}, hidden={hidden}, depth={depth}"
            )
        if n_labels < 0 or cond_field_dim < 0 or label_embedding_dim < 1:
            raise ValueError(
                f"MLPScoreNet: need n_labels >= 0, cond_field_dim >= 0, label_embedding_dim >= 1;"
                f" got n_labels={n_labels}, cond_field_dim={cond_field_dim}, "
                f"label_embedding_dim={label_embedding_dim}"
            )
        self.data_dim = data_dim
        self.cond_dim = cond_dim
        self.n_labels = n_labels
        self.cond_field_dim = cond_field_dim
        label_dim = label_embedding_dim if n_labels else 0
        self.time_embedding = build_time_embedding(
            time_embedding, time_embedding_dim, fourier_scale
        )
        self.embedding = nn.Sequential(
            nn.Linear(time_embedding_dim + cond_dim + cond_field_dim + label_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
        )
        self.cond_to_input = bool(cond_to_input)
        self.input = nn.Linear(data_dim + (cond_dim if cond_to_input else 0), hidden)
        self.blocks = nn.ModuleList(_ResidualBlock(hidden) for _ in range(depth))
        self.output = nn.Sequential(nn.SiLU(), nn.Linear(hidden, data_dim))
        if zero_output:  # after the default init, so every other weight is the same
            nn.init.zeros_(self.output[1].weight)
            nn.init.zeros_(self.output[1].bias)
        if n_labels:  # created last: a model without labels is unchanged
            self.label_embedding = nn.Embedding(n_labels, label_embedding_dim)

    @classmethod
    def options_from_spec(
        cls, sample_shape: tuple[int, ...], cond: ConditioningSpec
    ) -> dict[str, Any]:
        """The size options that follow from one sample's shape and the conditioning:
        ``data_dim = prod(sample_shape)``, ``cond_dim``, ``n_labels``, ``cond_field_dim``."""
        return {
            "data_dim": math.prod(int(s) for s in sample_shape),
            "cond_dim": cond.vector_dim,
            "n_labels": cond.n_labels,
            "cond_field_dim": cond.field_channels * math.prod(cond.field_shape)
            if cond.field_channels
            else 0,
        }

    def forward(
        self, x: Tensor, noise_label: Tensor, cond: Conditioning | Tensor | None = None
    ) -> Tensor:
        """``x: (B, *shape)`` with ``prod(shape) == data_dim`` -> ``(B, *shape)``."""
        shape = x.shape
        if math.prod(shape[1:]) != self.data_dim:
            raise ValueError(
                f"MLPScoreNet built for data_dim={self.data_dim} received x of shape {tuple(shape)}"
            )
        parts = read_conditioning(
            cond,
            owner="MLPScoreNet",
            batch=shape[0],
            vector_dim=self.cond_dim,
            field_numel=self.cond_field_dim,
            field_option="cond_field_dim",
            n_labels=self.n_labels,
        )
        features = self.time_embedding(noise_label).to(x.dtype)
        if parts.vector is not None or parts.fields is not None or parts.labels is not None:
            pieces = [features]
            if parts.vector is not None:
                pieces.append(parts.vector.to(x.dtype))
            if parts.fields is not None:
                pieces.append(parts.fields.reshape(shape[0], -1).to(x.dtype))
            if parts.labels is not None:
                pieces.append(self.label_embedding(parts.labels).to(x.dtype))
            features = torch.cat(pieces, dim=-1)
        if shape[0] > 1 and bool((features[1:] == features[:1]).all()):
            # One noise level and one condition for the whole batch (a sampler drawing many
            # samples of one condition): the embedding and every block's modulation are the
            # same for all rows, so compute them once and broadcast (about half the work).
            features = features[:1]
        embedding = self.embedding(features)
        flat = x.reshape(shape[0], self.data_dim)
        if self.cond_to_input and parts.vector is not None:
            # the vector conditions also enter the residual stream additively (through the
            # input layer): a score that is affine in them needs no modulation to express it
            flat = torch.cat([flat, parts.vector.to(x.dtype)], dim=-1)
        h = self.input(flat)
        for block in self.blocks:
            h = block(h, embedding)
        return self.output(h).reshape(shape)
