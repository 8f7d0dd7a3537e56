"""``UNet``: a residual U-Net noise predictor for fields on 1-D, 2-D (or 3-D) grids.

Diagram (``L = len(channel_mults)`` levels, ``c_l = base_channels * channel_mults[l]``,
``E`` = embedding size, ``k = cond_dim``, ``Cy = cond_channels``)::

    noise_label (B,) -> Fourier / sinusoidal features (B, T) ----------+
    cond vector (B, k) -> Linear k->T (B, T) --------------------------+ sum
        -> Linear T->E - SiLU - Linear E->E -> e (B, E)
        (+ Embedding(n_labels, E)(labels) when n_labels > 0)

    x (B, C_in, *S) ++ field conditions (B, Cy, *S) as channels
      -> pad each grid axis to a multiple of 2^(L-1)                     (replicate)
      -> conv3 -> c_0
      encoder, level l = 0..L-1: num_res_blocks x ResBlock(-> c_l) [+ attention at l = L-1],
                                 then Downsample (halves every axis) unless l = L-1
      middle: ResBlock - [attention] - ResBlock                          (coarsest grid)
      decoder, level l = L-1..0: (num_res_blocks + 1) x ResBlock(skip ++ h -> c_l)
                                 [+ attention at l = L-1], then Upsample unless l = 0
      -> GroupNorm - SiLU - conv3 -> C_out -> crop to S                  (B, C_out, *S)

    ResBlock(h, e): y = conv3(SiLU(GN(h)));  y = GN(y) * (1 + scale(e)) + shift(e);
                    y = conv3(Dropout(SiLU(y)));  return skip(h) + y      (skip: 1x1 conv or id)

Choices:
* Conditioning on the noise level and the vector conditions in **every** residual block, by
  adaptive group norm (FiLM after the normalisation): ``scale, shift = Linear(SiLU(e))``, one
  pair per channel. That layer is initialised at 0.1x PyTorch's default scale and zero bias, so
  every block starts close to the identity modulation (``scale ~ 0``) but already depends on
  the conditions, and every parameter receives a gradient from the first step.
* Integer labels: ``nn.Embedding(n_labels, E)`` added to ``e`` (after the MLP).
* Field conditions ``(B, Cy, *S')``: concatenated to ``x`` as input channels; when
  ``S' != S`` they are first interpolated to ``S`` (linear / bilinear / trilinear,
  ``align_corners=True``: both grids span the same domain with nodes on its boundary).
* Any grid size: each axis is padded (split evenly between the two ends) to the next multiple
  of ``2^(L-1)`` by ``replicate`` padding (the boundary value continued, valid for any size,
  no jump to zero) and the output is cropped back, so ``N = 37`` or ``33 x 29`` work. An axis
  shorter than ``2^(L-1)`` points (the coarsest grid would have less than one point per
  original cell) is an error.
* Down-sampling ``"conv"`` (3-wide convolution of stride 2, learned) or ``"avgpool"`` (mean of
  2^dims points, parameter-free); up-sampling: nearest-neighbour doubling then a 3-wide conv.
* Self-attention (``attention=True``): multi-head attention over the grid points at the
  coarsest level only (after each encoder/decoder residual block there and in the middle),
  where the grid is smallest and attention cheapest; its output projection starts at 0.1x.
* Output layer: GroupNorm - SiLU - 3-wide conv whose weights are initialised at 0.1x PyTorch's
  default scale and zero bias (small, not zero, so gradients reach every parameter at once).
* Group norm with ``gcd(norm_groups, channels)`` groups.

Presets (trainable parameters for 2 channels, 2 vector conditions, 32 x 32 fields, ``dims=2``):

* CPU (the constructor defaults): ``base_channels=16, channel_mults=(1, 2, 4),
  num_res_blocks=1, attention=False, time_embedding_dim=64`` (E = 64): **653,410**
  parameters, 0.54 GFLOP per sample for forward + backward at 32 x 32.
* GPU: ``base_channels=128, channel_mults=(1, 2, 2, 2), num_res_blocks=2, attention=True,
  attention_heads=4, dropout=0.1, time_embedding_dim=128`` (E = 512): **38,305,282**
  parameters.

``tests/test_nets_unet.py`` checks both counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scorepde.conditioning import Conditioning, ConditioningSpec
from scorepde.nets.embeddings import build_time_embedding
from scorepde.nets.inputs import ConditioningInputs, read_conditioning, resample_to_grid

CONVOLUTIONS: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
DOWNSAMPLING = ("conv", "avgpool")
GRID_PADDING = ("replicate", "reflect")
SMALL_INIT = 0.1  # scale of the initial weights of the modulation and output layers


def _scale_init(layer: nn.Module, factor: float = SMALL_INIT) -> None:
    """Multiply ``layer``'s initial weights by ``factor`` and zero its bias."""
    with torch.no_grad():
        layer.weight.mul_(factor)
        if layer.bias is not None:
            layer.bias.zero_()


def _group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class _ResBlock(nn.Module):
    """``skip(h) + conv(Dropout(SiLU(AdaGN(conv(SiLU(GN(h))), e))))``."""

    def __init__(
        self,
        conv: type[nn.Module],
        c_in: int,
        c_out: int,
        embedding_dim: int,
        groups: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.norm_in = _group_norm(c_in, groups)
        self.conv_in = conv(c_in, c_out, 3, padding=1)
        self.modulation = nn.Linear(embedding_dim, 2 * c_out)
        _scale_init(self.modulation)
        self.norm_out = _group_norm(c_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv_out = conv(c_out, c_out, 3, padding=1)
        self.skip = conv(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: Tensor, embedding: Tensor) -> Tensor:
        y = self.conv_in(F.silu(self.norm_in(h)))
        scale, shift = self.modulation(F.silu(embedding)).chunk(2, dim=-1)
        extra = (1,) * (h.ndim - 2)
        y = self.norm_out(y) * (1.0 + scale.view(*scale.shape, *extra))
        y = y + shift.view(*shift.shape, *extra)
        y = self.conv_out(self.dropout(F.silu(y)))
        return self.skip(h) + y


class _SelfAttention(nn.Module):
    """Multi-head self-attention over the grid points, pre-norm, residual."""

    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        if heads < 1 or channels % heads:
            raise ValueError(
                f"UNet: attention_heads = {heads} must be >= 1 and divide the coarsest level's "
                f"{channels} channels"
            )
        self.heads = heads
        self.norm = _group_norm(channels, groups)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.project = nn.Conv1d(channels, channels, 1)
        _scale_init(self.project)

    def forward(self, h: Tensor) -> Tensor:
        batch, channels = h.shape[:2]
        flat = self.norm(h).reshape(batch, channels, -1)  # (B, C, P)
        qkv = self.qkv(flat).reshape(batch, 3, self.heads, channels // self.heads, -1)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))  # (B, heads, P, C/heads)
        attended = F.scaled_dot_product_attention(q, k, v)
        attended = attended.transpose(-1, -2).reshape(batch, channels, -1)
        return h + self.project(attended).reshape(h.shape)


class _Downsample(nn.Module):
    def __init__(self, conv: type[nn.Module], dims: int, channels: int, kind: str) -> None:
        super().__init__()
        if kind == "conv":
            self.op: nn.Module = conv(channels, channels, 3, stride=2, padding=1)
        else:
            self.op = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[dims](2)

    def forward(self, h: Tensor) -> Tensor:
        return self.op(h)


class _Upsample(nn.Module):
    def __init__(self, conv: type[nn.Module], channels: int) -> None:
        super().__init__()
        self.conv = conv(channels, channels, 3, padding=1)

    def forward(self, h: Tensor) -> Tensor:
        return self.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """A residual block, optionally followed by self-attention."""

    def __init__(self, block: _ResBlock, attention: _SelfAttention | None) -> None:
        super().__init__()
        self.block = block
        self.attention = attention

    def forward(self, h: Tensor, embedding: Tensor) -> Tensor:
        h = self.block(h, embedding)
        return h if self.attention is None else self.attention(h)


class UNet(nn.Module):
    """U-Net noise predictor for fields ``(B, C, *S)`` on a grid of rank ``dims``.

    ``forward(x (B, C_in, *S), noise_label (B,), cond) -> (B, C_out, *S)`` with ``cond`` a
    :class:`~scorepde.conditioning.Conditioning`, a ``(B, k)`` tensor (vector conditions) or
    ``None``. See the module docstring for the architecture and the presets.

    Args:
        in_channels, out_channels: field channels of ``x`` and of the output.
        dims: grid rank (1 or 2; 3 works too).
        base_channels: channels of the first level.
        channel_mults: channel multiplier of each level (a list is accepted); the grid is
            halved ``len(channel_mults) - 1`` times.
        num_res_blocks: residual blocks per level in the encoder (the decoder has one more).
        attention: self-attention at the coarsest level and in the middle.
        attention_heads: heads of that attention (must divide its channels).
        dropout: dropout probability inside the residual blocks.
        cond_dim: number of vector conditions ``k`` (0: none).
        cond_channels: channels ``Cy`` of the field conditions (0: none).
        n_labels: number of integer labels (0: none).
        time_embedding_dim: size ``T`` of the noise-label features.
        fourier_scale: frequency standard deviation of the Fourier features.
        time_embedding: ``"fourier"`` or ``"sinusoidal"``.
        embedding_dim: size ``E`` of the conditioning embedding (``None``: ``4 base_channels``).
        downsample: ``"conv"`` (strided convolution) or ``"avgpool"``.
        grid_padding: ``"replicate"`` or ``"reflect"``, how each axis is padded to a multiple
            of ``2^(levels - 1)``.
        norm_groups: group-norm groups (``gcd(norm_groups, channels)`` are used).
    """

    #: Whether the network works along the sample's grid (convolutions along the grid); a model
    #: space without a grid (subspace coefficients) needs a backbone that does not.
    uses_grid = True

    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = 2,
        dims: int = 2,
        base_channels: int = 16,
        channel_mults: Sequence[int] = (1, 2, 4),
        num_res_blocks: int = 1,
        attention: bool = False,
        attention_heads: int = 4,
        dropout: float = 0.0,
        cond_dim: int = 0,
        cond_channels: int = 0,
        n_labels: int = 0,
        time_embedding_dim: int = 64,
        fourier_scale: float = 16.0,
        time_embedding: str = "fourier",
        embedding_dim: int | None = None,
        downsample: str = "conv",
        grid_padding: str = "replicate",
        norm_groups: int = 8,
    ) -> None:
        super().__init__()
        mults = tuple(int(m) for m in channel_mults)
        counts = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "base_channels": base_channels,
            "num_res_blocks": num_res_blocks,
            "norm_groups": norm_groups,
        }
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"UNet: {name} = {value!r} is not allowed; expected an int >= 1")
        for name, value in (("cond_dim", cond_dim), ("cond_channels", cond_channels),
                            ("n_labels", n_labels)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"UNet: {name} = {value!r} is not allowed; expected an int >= 0")
        if dims not in CONVOLUTIONS:
            raise ValueError(f"UNet: dims = {dims!r} is not allowed; expected one of 1, 2, 3")
        if not mults or min(mults) < 1:
            raise ValueError(
                f"UNet: channel_mults = {list(channel_mults)} is not allowed; expected a "
                "non-empty list of ints >= 1"
            )
        if downsample not in DOWNSAMPLING:
            raise ValueError(
                f"UNet: downsample = {downsample!r} is not allowed; expected one of {DOWNSAMPLING}"
            )
        if grid_padding not in GRID_PADDING:
            raise ValueError(
                f"UNet: grid_padding = {grid_padding!r} is not allowed; expected one of "
                f"{GRID_PADDING}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"UNet: dropout = {dropout!r} is not allowed; expected [0, 1)")
        embedding_dim = 4 * base_channels if embedding_dim is None else int(embedding_dim)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dims = dims
        self.channel_mults = mults
        self.cond_dim = cond_dim
        self.cond_channels = cond_channels
        self.n_labels = n_labels
        self.grid_padding = grid_padding
        self.multiple = 2 ** (len(mults) - 1)
        conv = CONVOLUTIONS[dims]

        # conditioning embedding
        self.time_embedding = build_time_embedding(
            time_embedding, time_embedding_dim, fourier_scale
        )
        self.vector_embedding = nn.Linear(cond_dim, time_embedding_dim) if cond_dim else None
        self.embedding = nn.Sequential(
            nn.Linear(time_embedding_dim, embedding_dim),
            nn.SiLU(),
            nn.Linear(embedding_dim, embedding_dim),
        )
        self.label_embedding = nn.Embedding(n_labels, embedding_dim) if n_labels else None

        def block(c_in: int, c_out: int) -> _ResBlock:
            return _ResBlock(conv, c_in, c_out, embedding_dim, norm_groups, dropout)

        def attend(channels: int) -> _SelfAttention:
            return _SelfAttention(channels, attention_heads, norm_groups)

        last = len(mults) - 1
        channels = base_channels * mults[0]
        self.stem = conv(in_channels + cond_channels, channels, 3, padding=1)
        skips = [channels]
        self.encoder = nn.ModuleList()
        for level, mult in enumerate(mults):
            for _ in range(num_res_blocks):
                out = base_channels * mult
                use = attention and level == last
                self.encoder.append(_Level(block(channels, out), attend(out) if use else None))
                channels = out
                skips.append(channels)
            if level != last:
                self.encoder.append(_Downsample(conv, dims, channels, downsample))
                skips.append(channels)
        self.middle = nn.ModuleList(
            [_Level(block(channels, channels), attend(channels) if attention else None),
             _Level(block(channels, channels), None)]
        )  # fmt: skip
        self.decoder = nn.ModuleList()
        for level in reversed(range(len(mults))):
            for _ in range(num_res_blocks + 1):
                out = base_channels * mults[level]
                use = attention and level == last
                self.decoder.append(
                    _Level(block(channels + skips.pop(), out), attend(out) if use else None)
                )
                channels = out
            if level != 0:
                self.decoder.append(_Upsample(conv, channels))
        self.head = nn.Sequential(
            _group_norm(channels, norm_groups),
            nn.SiLU(),
            conv(channels, out_channels, 3, padding=1),
        )
        _scale_init(self.head[-1])

    @classmethod
    def options_from_spec(
        cls, sample_shape: tuple[int, ...], cond: ConditioningSpec
    ) -> dict[str, Any]:
        """The size options that follow from one sample's shape ``(C, *S)`` and the
        conditioning: ``in_channels = out_channels = C``, ``dims = len(S)``, ``cond_dim``,
        ``cond_channels``, ``n_labels``."""
        shape = tuple(int(s) for s in sample_shape)
        if len(shape) - 1 not in CONVOLUTIONS:
            raise ValueError(
                f"UNet: one sample must have shape (C, *S) with 1 to 3 grid axes, got {shape}"
            )
        if cond.field_channels and len(cond.field_shape) != len(shape) - 1:
            raise ValueError(
                f"UNet: field conditions of grid {cond.field_shape} must have the samples' grid "
                f"rank {len(shape) - 1}"
            )
        return {
            "in_channels": shape[0],
            "out_channels": shape[0],
            "dims": len(shape) - 1,
            "cond_dim": cond.vector_dim,
            "cond_channels": cond.field_channels,
            "n_labels": cond.n_labels,
        }

    def conditioning_embedding(self, noise_label: Tensor, parts: ConditioningInputs) -> Tensor:
        """``e: (B, E)`` from the noise label ``(B,)`` and the checked conditioning parts."""
        features = self.time_embedding(noise_label)
        if self.vector_embedding is not None and parts.vector is not None:
            features = features + self.vector_embedding(parts.vector.to(features.dtype))
        embedding = self.embedding(features)
        if self.label_embedding is not None and parts.labels is not None:
            embedding = embedding + self.label_embedding(parts.labels)
        return embedding

    def _padding(self, grid: Sequence[int]) -> list[int]:
        """``F.pad`` amounts (last axis first) bringing each axis to a multiple of
        ``2^(levels-1)``."""
        amounts: list[int] = []
        for axis, n in enumerate(grid):
            if n < self.multiple:
                raise ValueError(
                    f"UNet: grid axis {axis} has {n} points; with {len(self.channel_mults)} "
                    f"levels the grid is halved {len(self.channel_mults) - 1} times, so every "
                    f"axis needs at least {self.multiple} points (use fewer channel_mults)"
                )
            extra = -n % self.multiple  # < n, so reflect padding is always possible
            amounts = [extra // 2, extra - extra // 2, *amounts]
        return amounts

    def forward(
        self, x: Tensor, noise_label: Tensor, cond: Conditioning | Tensor | None = None
    ) -> Tensor:
        """Noise prediction ``(B, C_out, *S)`` from ``x: (B, C_in, *S)``,
        ``noise_label: (B,)`` and ``cond``."""
        if x.ndim != self.dims + 2 or x.shape[1] != self.in_channels:
            grid = ", ".join(f"S{i}" for i in range(self.dims))
            raise ValueError(
                f"UNet expects x of shape (B, {self.in_channels}, {grid}) (in_channels="
                f"{self.in_channels}, dims={self.dims}), got {tuple(x.shape)}"
            )
        if noise_label.shape != (x.shape[0],):
            raise ValueError(
                f"UNet: noise_label must have shape ({x.shape[0]},), got {tuple(noise_label.shape)}"
            )
        parts = read_conditioning(
            cond,
            owner="UNet",
            batch=x.shape[0],
            vector_dim=self.cond_dim,
            field_channels=self.cond_channels,
            field_rank=self.dims,
            n_labels=self.n_labels,
        )
        grid = tuple(x.shape[2:])
        h = x
        if parts.fields is not None:
            h = torch.cat([x, resample_to_grid(parts.fields, grid).to(x.dtype)], dim=1)
        padding = self._padding(grid)
        if any(padding):
            h = F.pad(h, padding, mode=self.grid_padding)
        embedding = self.conditioning_embedding(noise_label, parts).to(h.dtype)

        h = self.stem(h)
        skips = [h]
        for module in self.encoder:
            h = module(h, embedding) if isinstance(module, _Level) else module(h)
            skips.append(h)
        for module in self.middle:
            h = module(h, embedding)
        for module in self.decoder:
            if isinstance(module, _Level):
                h = module(torch.cat([h, skips.pop()], dim=1), embedding)
            else:
                h = module(h)
        out = self.head(h)
        if any(padding):
            index = [slice(None), slice(None)]
            for axis, n in enumerate(grid):
                start = padding[2 * (len(grid) - 1 - axis)]
                index.append(slice(start, start + n))
            out = out[tuple(index)]
        return out
