"""``FiLMConvNet``: the seed's 1-D convolutional noise predictor with FiLM conditioning.

Diagram (default sizes; ``B`` batch, ``N`` grid points, ``k = cond_dim``)::

    noise_label (B,) -> GaussianFourierFeatures -> (B, 128) --+
    cond (B, k) ----------------------------------------------+-> concat (B, 128 + k)
        -> Linear 256 -> SiLU -> Linear 256 -> SiLU -> Linear 256 -> SiLU
        -> Linear 10 * 2 * 64 -> per block b: gamma_b = 1 + delta_b (B, 64), beta_b (B, 64)

    x (B, 2, N)
      block 1:     conv7 2->64 - SiLU - conv7 64->64 - SiLU - FiLM_1            -> (B, 64, N)
      block 2..10: h + [conv7 64->64 - SiLU - conv7 64->64 - SiLU - FiLM_b](h)  -> (B, 64, N)
      conv1 64->2                                                               -> (B, 2, N)

20 convolutions of kernel 7 (plus the 1x1 output projection), SiLU, no pooling, so any ``N``
(>= kernel_size // 2 + 1 for reflect padding) works and the output has the input's shape.
FiLM ``h <- gamma * h + beta`` scales and shifts each channel by an amount computed from the
conditions and the diffusion time, broadcast over the grid.

Choices:
* Padding ``"reflect"`` (default): the mirror extension matches the zero-flux (Neumann)
  boundaries of the battery fields and does not inject the artificial jump to zero that zero
  padding would put at each end of a field that is non-zero there; ``padding_mode`` may be any
  of ``torch.nn.Conv1d``'s modes.
* Output: a 1x1 convolution (a per-point linear read-out); all spatial mixing is done by the
  twenty kernel-7 convolutions (receptive field 1 + 20 * 6 = 121 points).
* Residual connections around blocks 2..10 (``residual=True``): a plain 20-layer stack trains
  slowly; identity skips keep the layer count and the FiLM structure while giving gradients a
  short path. Block 1 changes the channel count and has no skip.
* ``gamma = 1 + delta`` with the FiLM head's last layer initialised at 0.1x its default scale,
  so at initialisation FiLM is close to the identity but already depends on the conditions.

Conditioning beyond the vector (off by default; see ``FiLMConvNet``): integer labels are
embedded and concatenated to the FiLM MLP's input; field conditions are extra input channels of
the first convolution.

With the defaults and ``cond_dim=4`` the network has 1,041,666 trainable parameters (the seed
reports ~1.1 M); see ``count_parameters`` in ``registry.py``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from scorepde.conditioning import Conditioning, ConditioningSpec
from scorepde.nets.embeddings import build_time_embedding
from scorepde.nets.inputs import ConditioningInputs, read_conditioning, resample_to_grid


class FiLMConvNet(nn.Module):
    """1-D conv noise predictor.

    ``forward(x (B, C_in, N), noise_label (B,), cond) -> (B, C_out, N)`` with ``cond`` a
    :class:`~scorepde.conditioning.Conditioning`, a ``(B, k)`` tensor (vector conditions) or
    ``None``.

    Conditioning: vector conditions ``(B, k)`` and an embedding of the labels
    (``nn.Embedding(n_labels, label_embedding_dim)``) are concatenated to the time embedding at
    the FiLM MLP's input; field conditions ``(B, Cy, N')`` are concatenated to ``x`` as input
    channels (linearly interpolated to ``x``'s grid when ``N' != N``, end points matched).

    Args:
        in_channels, out_channels: field channels (2 for the battery's ``c`` and ``phi``).
        channels: hidden channels of every convolution.
        blocks: number of conv-SiLU-conv-SiLU-FiLM blocks (2 convolutions each).
        kernel_size: odd convolution width.
        cond_dim: number of (normalised) conditions ``k``; 0 for an unconditional model.
        time_embedding_dim: size of the Fourier embedding of the noise label.
        film_hidden: width of the 3 hidden layers of the FiLM MLP.
        fourier_scale: frequency standard deviation of the time embedding.
        time_embedding: ``"fourier"`` or ``"sinusoidal"``.
        padding_mode: ``"reflect"``, ``"zeros"``, ``"replicate"`` or ``"circular"``.
        residual: identity skips around blocks 2..blocks.
        n_labels: number of integer labels (0: no labels).
        cond_channels: channels ``Cy`` of the field conditions (0: none).
        label_embedding_dim: size of the label embedding (used only when ``n_labels > 0``).

    The options after ``residual`` are off by default, and the modules they need are created
    only when used and after all the others, so a model built without them has the parameter
    names and the initial values (same seed) of the original network.
    """

    #: Whether the network works along the sample's grid (convolutions along the grid); a model
    #: space without a grid (subspace coefficients) needs a backbone that does not.
    uses_grid = True

    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = 2,
        channels: int = 64,
        blocks: int = 10,
        kernel_size: int = 7,
        cond_dim: int = 4,
        time_embedding_dim: int = 128,
        film_hidden: int = 256,
        fourier_scale: float = 16.0,
        time_embedding: str = "fourier",
        padding_mode: str = "reflect",
        residual: bool = True,
        n_labels: int = 0,
        cond_channels: int = 0,
        label_embedding_dim: int = 16,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"FiLMConvNet: kernel_size must be odd and positive, got {kernel_size}"
            )
        if blocks < 1 or channels < 1 or cond_dim < 0:
            raise ValueError(
                f"FiLMConvNet: need blocks >= 1, channels >= 1, cond_dim >= 0; got "
                f"blocks={blocks}, channels={channels}, cond_dim={cond_dim}"
            )
        if n_labels < 0 or cond_channels < 0 or label_embedding_dim < 1:
            raise ValueError(
                f"FiLMConvNet: need n_labels >= 0, cond_channels >= 0, label_embedding_dim >= 1; "
                f"got n_labels={n_labels}, cond_channels={cond_channels}, "
                f"label_embedding_dim={label_embedding_dim}"
            )
        allowed_padding = ("zeros", "reflect", "replicate", "circular")
        if padding_mode not in allowed_padding:
            raise ValueError(
                f"FiLMConvNet: padding_mode {padding_mode!r} not allowed; "
                f"use one of {allowed_padding}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = channels
        self.blocks = blocks
        self.cond_dim = cond_dim
        self.n_labels = n_labels
        self.cond_channels = cond_channels
        self.residual = residual
        self.padding = kernel_size // 2

        def conv(c_in: int, c_out: int) -> nn.Conv1d:
            return nn.Conv1d(c_in, c_out, kernel_size, padding="same", padding_mode=padding_mode)

        self.convs = nn.ModuleList()
        for b in range(blocks):
            self.convs.append(conv(in_channels + cond_channels if b == 0 else channels, channels))
            self.convs.append(conv(channels, channels))
        self.output = nn.Conv1d(channels, out_channels, kernel_size=1)
        self.activation = nn.SiLU()

        label_dim = label_embedding_dim if n_labels else 0
        self.time_embedding = build_time_embedding(
            time_embedding, time_embedding_dim, fourier_scale
        )
        self.film = nn.Sequential(
            nn.Linear(time_embedding_dim + cond_dim + label_dim, film_hidden),
            nn.SiLU(),
            nn.Linear(film_hidden, film_hidden),
            nn.SiLU(),
            nn.Linear(film_hidden, film_hidden),
            nn.SiLU(),
            nn.Linear(film_hidden, blocks * 2 * channels),
        )
        head = self.film[-1]
        assert isinstance(head, nn.Linear)
        with torch.no_grad():
            head.weight.mul_(0.1)
            head.bias.zero_()
        if n_labels:  # created last: a model without labels is unchanged
            self.label_embedding = nn.Embedding(n_labels, label_embedding_dim)

    @classmethod
    def options_from_spec(
        cls, sample_shape: tuple[int, ...], cond: ConditioningSpec
    ) -> dict[str, Any]:
        """The size options that follow from one sample's shape ``(C, N)`` and the
        conditioning: ``in_channels = out_channels = C``, ``cond_dim``, ``n_labels``,
        ``cond_channels``."""
        shape = tuple(int(s) for s in sample_shape)
        if len(shape) != 2:
            raise ValueError(
                f"FiLMConvNet is a 1-D network: one sample must have shape (C, N), got {shape}; "
                "use the 'unet' backbone for other grid ranks"
            )
        if cond.field_channels and len(cond.field_shape) != 1:
            raise ValueError(
                f"FiLMConvNet: field conditions must be 1-D like the samples, got field_shape "
                f"{cond.field_shape}"
            )
        return {
            "in_channels": shape[0],
            "out_channels": shape[0],
            "cond_dim": cond.vector_dim,
            "n_labels": cond.n_labels,
            "cond_channels": cond.field_channels,
        }

    def _read(self, cond: Conditioning | Tensor | None, batch: int) -> ConditioningInputs:
        return read_conditioning(
            cond,
            owner="FiLMConvNet",
            batch=batch,
            vector_dim=self.cond_dim,
            field_channels=self.cond_channels,
            field_rank=1,
            n_labels=self.n_labels,
        )

    def film_parameters(
        self, noise_label: Tensor, cond: Conditioning | Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """``gamma, beta``: each ``(B, blocks, channels)``; ``gamma = 1 + delta``."""
        return self._film(noise_label, self._read(cond, noise_label.shape[0]))

    def _film(self, noise_label: Tensor, parts: ConditioningInputs) -> tuple[Tensor, Tensor]:
        embedding = self.time_embedding(noise_label)
        if parts.vector is not None:
            embedding = torch.cat([embedding, parts.vector.to(embedding.dtype)], dim=-1)
        if parts.labels is not None:
            labels = self.label_embedding(parts.labels).to(embedding.dtype)
            embedding = torch.cat([embedding, labels], dim=-1)
        out = self.film(embedding).view(-1, self.blocks, 2, self.channels)
        return 1.0 + out[:, :, 0], out[:, :, 1]

    def forward(
        self, x: Tensor, noise_label: Tensor, cond: Conditioning | Tensor | None = None
    ) -> Tensor:
        """Noise prediction ``(B, C_out, N)`` from ``x: (B, C_in, N)``, ``noise_label: (B,)``,
        ``cond``: a ``Conditioning``, a ``(B, k)`` tensor or ``None``."""
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"FiLMConvNet expects x of shape (B, {self.in_channels}, N), got {tuple(x.shape)}"
            )
        if x.shape[-1] <= self.padding:
            raise ValueError(
                f"FiLMConvNet: grid of {x.shape[-1]} points is too short for kernel "
                f"{2 * self.padding + 1}; need more than {self.padding}"
            )
        parts = self._read(cond, x.shape[0])
        gamma, beta = self._film(noise_label, parts)
        h = x
        if parts.fields is not None:
            h = torch.cat([x, resample_to_grid(parts.fields, x.shape[2:]).to(x.dtype)], dim=1)
        for b in range(self.blocks):
            update = self.activation(self.convs[2 * b](h))
            update = self.activation(self.convs[2 * b + 1](update))
            update = gamma[:, b, :, None] * update + beta[:, b, :, None]
            h = h + update if (self.residual and b > 0) else update
        return self.output(h)
