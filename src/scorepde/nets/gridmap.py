"""A deterministic map between fields on the same grid: :class:`GridMapNet`.

The second stage of a two-stage model (``scorepde.training.solution_map``): the solution
channels of a problem as a function of its input channels, ``u = f(log_k)`` for Darcy flow.
Unlike the score backbones it has no noise level and no conditions: the solution of a PDE
depends on the conditions only through its inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["GridMapNet"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_POOL = {1: nn.functional.avg_pool1d, 2: nn.functional.avg_pool2d, 3: nn.functional.avg_pool3d}


def _block(rank: int, c_in: int, c_out: int) -> nn.Module:
    conv = _CONV[rank]
    return nn.Sequential(
        conv(c_in, c_out, 3, padding=1), nn.GELU(), conv(c_out, c_out, 3, padding=1), nn.GELU()
    )


class GridMapNet(nn.Module):
    """A small U-Net ``(B, F, *S) -> (B, C, *S)`` on a grid of rank 1, 2 or 3: ``levels``
    resolutions (2x average pooling down, nearest upsampling up, skip connections), widths
    ``width x 1, 2, ..., levels``, two 3x3 convolutions with GELU per block. It is local and
    translation-equivariant, which a map from a medium to its pressure is, up to the boundary.

    Args:
        rank: number of grid axes (1, 2 or 3).
        in_channels: feature channels ``F``.
        out_channels: output channels ``C``.
        width: channels of the finest level.
        levels: number of resolutions; every grid size must be divisible by
            ``2 ** (levels - 1)`` (checked in :meth:`forward`).
    """

    def __init__(
        self, rank: int, in_channels: int, out_channels: int, *, width: int = 32, levels: int = 4
    ) -> None:
        super().__init__()
        if rank not in _CONV:
            raise ValueError(f"rank = {rank!r} is not allowed; expected 1, 2 or 3")
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("width", width),
            ("levels", levels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} = {value!r} is not allowed; expected an integer >= 1")
        self.rank = rank
        self.levels = levels
        widths = [width * (i + 1) for i in range(levels)]
        self.down = nn.ModuleList(
            _block(rank, c_in, c_out)
            for c_in, c_out in zip([in_channels, *widths[:-1]], widths, strict=True)
        )
        self.up = nn.ModuleList(
            _block(rank, widths[i + 1] + widths[i], widths[i]) for i in reversed(range(levels - 1))
        )
        self.out = _CONV[rank](width, out_channels, 1)

    def forward(self, features: Tensor) -> Tensor:
        """``features`` ``(B, F, *S)`` -> ``(B, C, *S)``."""
        shape = tuple(features.shape[2:])
        factor = 2 ** (self.levels - 1)
        if len(shape) != self.rank or any(size % factor for size in shape):
            raise ValueError(
                f"features of grid shape {shape} are not allowed; expected {self.rank} axes, "
                f"each divisible by {factor} (2 ** (levels - 1))"
            )
        pool = _POOL[self.rank]
        h = features
        skips = []
        for level, block in enumerate(self.down):
            h = block(h if level == 0 else pool(h, 2))
            skips.append(h)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            h = block(torch.cat([nn.functional.interpolate(h, scale_factor=2.0), skip], dim=1))
        return self.out(h)
