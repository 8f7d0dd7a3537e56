"""One conditioning input for every backbone, trainer and sampler.

A conditional score model ``s(x, t | c)`` may be conditioned on up to three kinds of thing at
once, each optional:

* ``vector`` ``(B, k)`` float: operating conditions or PDE parameters (encoded, ~[-1, 1]);
* ``fields`` ``(B, Cy, *S')`` float: fields that a backbone takes as extra input channels
  (an observed displacement image, a coarse solution); ``S'`` is usually the sample's grid;
* ``labels`` ``(B,)`` int64: a discrete label per sample (a fidelity level, a class).

:class:`Conditioning` holds the parts as torch tensors and knows how to select rows, move to a
device and broadcast one shared row to a batch, so the trainer and the samplers never look
inside it. A plain ``(B, k)`` tensor is still accepted everywhere a conditioning is: it means
``Conditioning(vector=tensor)`` (see :func:`as_conditioning`).

:class:`ConditioningSpec` gives the sizes (``vector_dim``, ``field_channels``,
``field_shape``, ``n_labels``) from which a backbone derives its own sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = ["Conditioning", "ConditioningSpec", "as_conditioning", "conditioning_parts"]


@dataclass(frozen=True)
class ConditioningSpec:
    """The sizes of a conditioning input (what a backbone needs to build itself).

    Attributes:
        vector_dim: number of vector conditions ``k`` (0: none).
        field_channels: channels ``Cy`` of the field conditions (0: none).
        field_shape: grid shape ``S'`` of the field conditions (``()`` when there are none).
        n_labels: number of distinct integer labels (0: none); labels lie in ``[0, n_labels)``.
    """

    vector_dim: int = 0
    field_channels: int = 0
    field_shape: tuple[int, ...] = field(default_factory=tuple)
    n_labels: int = 0

    def __post_init__(self) -> None:
        for name in ("vector_dim", "field_channels", "n_labels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"ConditioningSpec.{name} = {value!r} is not allowed; expected an int >= 0"
                )
        object.__setattr__(self, "field_shape", tuple(int(s) for s in self.field_shape))
        if self.field_channels and not self.field_shape:
            raise ValueError(
                f"ConditioningSpec: field_channels = {self.field_channels} needs a field_shape"
            )

    @property
    def empty(self) -> bool:
        """Whether the model is unconditional."""
        return not (self.vector_dim or self.field_channels or self.n_labels)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-ready)."""
        return {
            "vector_dim": self.vector_dim,
            "field_channels": self.field_channels,
            "field_shape": list(self.field_shape),
            "n_labels": self.n_labels,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConditioningSpec:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        allowed = {"vector_dim", "field_channels", "field_shape", "n_labels"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(
                f"ConditioningSpec: unknown key(s) {unknown}; allowed {sorted(allowed)}"
            )
        return cls(
            vector_dim=int(data.get("vector_dim", 0)),
            field_channels=int(data.get("field_channels", 0)),
            field_shape=tuple(int(s) for s in data.get("field_shape", ())),
            n_labels=int(data.get("n_labels", 0)),
        )


@dataclass
class Conditioning:
    """The conditioning of a batch: any of ``vector (B, k)``, ``fields (B, Cy, *S')`` and
    ``labels (B,)`` (int64). At least one part is set; all set parts have the same ``B``."""

    vector: Tensor | None = None
    fields: Tensor | None = None
    labels: Tensor | None = None

    def __post_init__(self) -> None:
        sizes = {name: part.shape[0] for name, part in self._parts() if part.ndim > 0}
        if not sizes and all(part is None for part in (self.vector, self.fields, self.labels)):
            raise ValueError("Conditioning needs at least one of vector, fields, labels")
        if self.vector is not None and self.vector.ndim != 2:
            raise ValueError(
                f"Conditioning.vector has shape {tuple(self.vector.shape)}; expected (B, k)"
            )
        if self.fields is not None and self.fields.ndim < 3:
            raise ValueError(
                f"Conditioning.fields has shape {tuple(self.fields.shape)}; expected (B, Cy, *S)"
            )
        if self.labels is not None:
            if self.labels.ndim != 1:
                raise ValueError(
                    f"Conditioning.labels has shape {tuple(self.labels.shape)}; expected (B,)"
                )
            if self.labels.is_floating_point() or self.labels.is_complex():
                raise ValueError(
                    f"Conditioning.labels has dtype {self.labels.dtype}; expected integers"
                )
        if len(set(sizes.values())) > 1:
            raise ValueError(f"Conditioning parts disagree in batch size: {sizes}")

    def _parts(self) -> list[tuple[str, Tensor]]:
        return [
            (name, part)
            for name, part in (
                ("vector", self.vector),
                ("fields", self.fields),
                ("labels", self.labels),
            )
            if part is not None
        ]

    @property
    def batch_size(self) -> int:
        """``B``, the number of rows."""
        return int(self._parts()[0][1].shape[0])

    def __len__(self) -> int:
        return self.batch_size

    @property
    def device(self) -> torch.device:
        """Device of the first set part."""
        return self._parts()[0][1].device

    def spec(self) -> ConditioningSpec:
        """Sizes of this conditioning (``n_labels`` is ``max(label) + 1``, a lower bound)."""
        return ConditioningSpec(
            vector_dim=0 if self.vector is None else int(self.vector.shape[1]),
            field_channels=0 if self.fields is None else int(self.fields.shape[1]),
            field_shape=() if self.fields is None else tuple(self.fields.shape[2:]),
            n_labels=0 if self.labels is None else int(self.labels.max()) + 1,
        )

    def map(self, fn: Any, *, labels_too: bool = True) -> Conditioning:
        """A new conditioning with ``fn`` applied to every set part (``labels_too=False``
        leaves the labels as they are)."""
        return Conditioning(
            vector=None if self.vector is None else fn(self.vector),
            fields=None if self.fields is None else fn(self.fields),
            labels=None
            if self.labels is None
            else (fn(self.labels) if labels_too else self.labels),
        )

    def index_select(self, index: Tensor) -> Conditioning:
        """Rows ``index`` (a ``(b,)`` long tensor on the parts' device)."""
        return self.map(lambda part: part.index_select(0, index.to(part.device)))

    def __getitem__(self, rows: slice | Tensor) -> Conditioning:
        return self.map(lambda part: part[rows])

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Conditioning:
        """Move every part to ``device``; cast the float parts (not the labels) to ``dtype``."""
        return Conditioning(
            vector=None if self.vector is None else self.vector.to(device=device, dtype=dtype),
            fields=None if self.fields is None else self.fields.to(device=device, dtype=dtype),
            labels=None if self.labels is None else self.labels.to(device=device, dtype=torch.long),
        )

    def contiguous(self) -> Conditioning:
        """Every part made contiguous."""
        return self.map(lambda part: part.contiguous())

    def expand(self, n: int) -> Conditioning:
        """Broadcast a one-row conditioning to ``n`` rows (``n`` rows are returned as is)."""
        if self.batch_size == n:
            return self
        if self.batch_size != 1:
            raise ValueError(
                f"conditioning has {self.batch_size} rows; expected 1 (shared) or n = {n}"
            )
        return self.map(lambda part: part.expand(n, *part.shape[1:]))

    def repeat_interleave(self, repeats: int) -> Conditioning:
        """Each row repeated ``repeats`` times in place (row ``m`` -> rows ``m r .. m r + r-1``)."""
        return self.map(lambda part: part.repeat_interleave(repeats, dim=0))

    def all_finite(self) -> bool:
        """Whether every float part is finite."""
        return all(
            bool(torch.isfinite(part).all()) for name, part in self._parts() if name != "labels"
        )

    @staticmethod
    def cat(items: Sequence[Conditioning]) -> Conditioning:
        """Rows of several conditionings with the same parts, in order."""
        if not items:
            raise ValueError("Conditioning.cat needs at least one conditioning")

        def join(name: str) -> Tensor | None:
            parts = [getattr(item, name) for item in items]
            if all(part is None for part in parts):
                return None
            if any(part is None for part in parts):
                raise ValueError(f"cannot concatenate conditionings: some lack {name!r}")
            return torch.cat(parts)

        return Conditioning(vector=join("vector"), fields=join("fields"), labels=join("labels"))


def as_conditioning(cond: Conditioning | Tensor | None) -> Conditioning | None:
    """``None`` -> None; a tensor ``(B, k)`` (or ``(k,)``) -> ``Conditioning(vector=...)``;
    a :class:`Conditioning` -> itself."""
    if cond is None or isinstance(cond, Conditioning):
        return cond
    if isinstance(cond, Tensor):
        if cond.numel() == 0:
            return None
        return Conditioning(vector=cond if cond.ndim == 2 else cond.reshape(1, -1))
    raise TypeError(
        f"a conditioning must be a Conditioning, a (B, k) tensor or None, got {type(cond).__name__}"
    )


def conditioning_parts(
    cond: Conditioning | Tensor | None,
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(vector, fields, labels)`` of any accepted conditioning (each possibly None)."""
    c = as_conditioning(cond)
    if c is None:
        return None, None, None
    return c.vector, c.fields, c.labels
