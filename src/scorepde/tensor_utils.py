"""Small tensor helpers shared by every layer that works on ``(batch, channels, *grid)`` arrays."""

from __future__ import annotations

import torch
from torch import Tensor


def append_dims(values: Tensor, ndim: int) -> Tensor:
    """Broadcast per-sample scalars against a batch of any rank.

    ``values: (B,)`` -> ``(B, 1, ..., 1)`` with ``ndim`` dimensions in all, so that
    ``append_dims(sigma, x.ndim) * x`` works for vectors ``(B, d)``, 1-D fields ``(B, C, N)``
    and 2-D fields ``(B, C, H, W)`` alike. A 0-d tensor is returned unchanged (it broadcasts).
    """
    if values.ndim == 0:
        return values
    if values.ndim > ndim:
        raise ValueError(
            f"append_dims: values has {values.ndim} dimensions (shape {tuple(values.shape)}), "
            f"more than the target rank {ndim}"
        )
    return values.reshape(*values.shape, *([1] * (ndim - values.ndim)))


def batch_times(t: Tensor | float, batch_size: int, *, like: Tensor) -> Tensor:
    """Diffusion times as a ``(B,)`` tensor on ``like``'s device and dtype.

    ``t`` may be a Python float, a 0-d tensor, a ``(1,)`` tensor (all broadcast to ``(B,)``)
    or already ``(B,)``.
    """
    t = torch.as_tensor(t, device=like.device, dtype=like.dtype)
    if t.ndim == 0 or t.shape == (1,):
        return t.reshape(()).expand(batch_size)
    if t.shape != (batch_size,):
        raise ValueError(
            f"diffusion time must be a scalar or have shape ({batch_size},), "
            f"got shape {tuple(t.shape)}"
        )
    return t
