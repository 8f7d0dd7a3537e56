"""How a backbone reads its conditioning input: split it into its parts, check each part against
what the backbone was built for, and bring field conditions onto the sample's grid.

Every backbone accepts ``cond: Conditioning | Tensor | None`` (a plain ``(B, k)`` tensor means
vector conditions, see :func:`scorepde.conditioning.as_conditioning`). A part the backbone was
built for but that is missing, or a part it was not built for, is a ``ValueError`` naming the
part, the backbone's option and the shape received.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from scorepde.conditioning import Conditioning, conditioning_parts

#: Interpolation mode used to bring field conditions onto the sample's grid, per grid rank.
INTERPOLATION_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


class ConditioningInputs(NamedTuple):
    """The checked parts: ``vector (B, k)``, ``fields (B, Cy, *S')``, ``labels (B,)`` (each
    ``None`` when the backbone does not use it)."""

    vector: Tensor | None
    fields: Tensor | None
    labels: Tensor | None


def read_conditioning(
    cond: Conditioning | Tensor | None,
    *,
    owner: str,
    batch: int,
    vector_dim: int = 0,
    field_channels: int = 0,
    field_numel: int | None = None,
    field_rank: int | None = None,
    n_labels: int = 0,
    field_option: str = "cond_channels",
) -> ConditioningInputs:
    """Split ``cond`` and check it against a backbone built for ``vector_dim`` vector conditions,
    ``field_channels`` field-condition channels (or, for a flattening backbone, ``field_numel``
    numbers per sample) and ``n_labels`` labels.

    Args:
        owner: the backbone's class name, used in the error messages.
        batch: the batch size ``B`` of ``x``.
        field_rank: grid rank the fields must have (``None``: not checked).
        field_option: the backbone option that sets the fields' size (for the messages).

    Labels are range-checked on CPU only (on an accelerator that check would synchronise the
    device at every call; ``nn.Embedding`` then reports an out-of-range label itself).
    """
    vector, fields, labels = conditioning_parts(cond)
    if vector is not None and vector.numel() == 0:
        vector = None
    if vector_dim:
        if vector is None:
            raise ValueError(
                f"{owner} expects cond of shape ({batch}, {vector_dim}) (vector conditions, "
                f"cond_dim={vector_dim}), got none"
            )
        if vector.shape != (batch, vector_dim):
            raise ValueError(
                f"{owner}: cond must have shape ({batch}, {vector_dim}) (vector conditions, "
                f"cond_dim={vector_dim}), got {tuple(vector.shape)}"
            )
    elif vector is not None:
        raise ValueError(
            f"{owner} was built with cond_dim=0 but received vector conditions of shape "
            f"{tuple(vector.shape)}"
        )
    wants_fields = bool(field_channels) or bool(field_numel)
    if wants_fields:
        size = f"{field_option}={field_numel if field_numel else field_channels}"
        if fields is None:
            raise ValueError(
                f"{owner} was built for field conditions ({size}) but cond has no fields"
            )
        if fields.shape[0] != batch:
            raise ValueError(
                f"{owner}: cond fields have batch size {fields.shape[0]}, x has {batch}"
            )
        if field_numel:
            if fields[0].numel() != field_numel:
                raise ValueError(
                    f"{owner}: cond fields of shape {tuple(fields.shape)} have "
                    f"{fields[0].numel()} numbers per sample; {size} needs {field_numel}"
                )
        elif fields.shape[1] != field_channels:
            raise ValueError(
                f"{owner}: cond fields of shape {tuple(fields.shape)} have {fields.shape[1]} "
                f"channels; {size} needs {field_channels}"
            )
        if field_rank is not None and fields.ndim != field_rank + 2:
            raise ValueError(
                f"{owner}: cond fields of shape {tuple(fields.shape)} have grid rank "
                f"{fields.ndim - 2}; the samples have grid rank {field_rank}"
            )
    elif fields is not None:
        raise ValueError(
            f"{owner} was built without field conditions ({field_option}=0) but received "
            f"fields of shape {tuple(fields.shape)}"
        )
    if n_labels:
        if labels is None:
            raise ValueError(
                f"{owner} was built for labels (n_labels={n_labels}) but cond has none"
            )
        if labels.shape != (batch,):
            raise ValueError(
                f"{owner}: cond labels must have shape ({batch},), got {tuple(labels.shape)}"
            )
        if labels.device.type == "cpu" and labels.numel():
            low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= n_labels:
                raise ValueError(
                    f"{owner}: labels must lie in [0, {n_labels}) (n_labels={n_labels}); "
                    f"got values in [{low}, {high}]"
                )
    elif labels is not None:
        raise ValueError(
            f"{owner} was built without labels (n_labels=0) but received labels of shape "
            f"{tuple(labels.shape)}"
        )
    return ConditioningInputs(
        vector if vector_dim else None,
        fields if wants_fields else None,
        labels.long() if n_labels and labels is not None else None,
    )


def resample_to_grid(fields: Tensor, grid_shape: tuple[int, ...] | torch.Size) -> Tensor:
    """Field conditions ``(B, Cy, *S')`` on the grid ``S`` (``len(S') == len(S)``), by linear /
    bilinear / trilinear interpolation with ``align_corners=True``.

    ``align_corners=True`` maps the first and last grid points of ``S'`` onto those of ``S``:
    both grids are taken to span the same domain with nodes on its boundary (as the problems'
    node-centred coordinates do). Fields already on ``S`` are returned unchanged.
    """
    grid_shape = tuple(int(s) for s in grid_shape)
    if tuple(fields.shape[2:]) == grid_shape:
        return fields
    rank = len(grid_shape)
    if fields.ndim != rank + 2 or rank not in INTERPOLATION_MODES:
        raise ValueError(
            f"field conditions of shape {tuple(fields.shape)} cannot be resampled to the grid "
            f"{grid_shape}: need the same grid rank (1, 2 or 3)"
        )
    return F.interpolate(
        fields, size=grid_shape, mode=INTERPOLATION_MODES[rank], align_corners=True
    )
