"""Transforms between physical values and a network's space that are not a field normaliser:
the per-component :class:`Standardiser` (``x`` and observed ``y`` of an inverse problem), and
its record for a model folder.

A transform exposes ``transform(values, conditions=None)`` (physical -> network space) and
``inverse(z, conditions=None)`` (network space -> physical), like the field normalisers of
``scorepde.data.normalisation``; the Standardiser ignores ``conditions``.

In a model or checkpoint folder a Standardiser is recorded as ``{"kind": "standardiser",
"shape": [...], "mean": array, "scale": array}``; ``checkpoint.py`` writes the arrays to
``transforms.safetensors`` and leaves a reference in the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

STANDARDISER_KIND = "standardiser"


@dataclass(eq=False)
class Standardiser:
    """Per-component ``z = (v - mean) / scale``; ``mean``, ``scale`` have one sample's shape.

    A component whose standard deviation is below ``floor * max(1, |mean|)`` (constant over
    the training set) gets ``scale = 1``, so nothing is divided by ~0.
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, floor: float = 1e-12) -> Standardiser:
        """Fit to ``values (n, *shape)``, ``n >= 1``."""
        values = np.asarray(values, dtype=np.float64)
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        scale = np.where(std > floor * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return cls(mean=mean, scale=scale)

    @property
    def shape(self) -> tuple[int, ...]:
        """One sample's shape."""
        return tuple(self.mean.shape)

    def transform(self, values: np.ndarray, conditions: Any = None) -> np.ndarray:
        """``(..., *shape)`` physical -> standardised, float64 (``conditions`` is ignored)."""
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.scale

    def inverse(self, z: np.ndarray, conditions: Any = None) -> np.ndarray:
        """``(..., *shape)`` standardised -> physical, float64 (``conditions`` is ignored)."""
        return np.asarray(z, dtype=np.float64) * self.scale + self.mean

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (JSON-ready; floats round-trip exactly). A model folder stores
        :meth:`to_record` instead, whose arrays go to safetensors."""
        return {
            "shape": list(self.shape),
            "mean": self.mean.ravel().tolist(),
            "scale": self.scale.ravel().tolist(),
        }

    def to_record(self) -> dict[str, Any]:
        """``{"kind", "shape", "mean", "scale"}`` with float64 arrays (for a model folder)."""
        return {
            "kind": STANDARDISER_KIND,
            "shape": list(self.shape),
            "mean": np.array(self.mean, dtype=np.float64),
            "scale": np.array(self.scale, dtype=np.float64),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Standardiser:
        """Inverse of :meth:`to_dict` and of :meth:`to_record` (lists or arrays)."""
        kind = data.get("kind", STANDARDISER_KIND)
        if kind != STANDARDISER_KIND:
            raise ValueError(
                f"Standardiser.from_dict: kind {kind!r}, expected {STANDARDISER_KIND!r}"
            )
        shape = tuple(int(s) for s in data["shape"])
        mean = np.asarray(data["mean"], dtype=np.float64).reshape(shape)
        scale = np.asarray(data["scale"], dtype=np.float64).reshape(shape)
        if not (np.all(np.isfinite(mean)) and np.all(scale > 0)):
            raise ValueError("Standardiser: mean must be finite and scale > 0")
        return cls(mean=mean, scale=scale)


#: Transform kind -> class with ``from_dict`` (the transforms a model folder records itself;
#: field normalisers and condition encoders have files of their own).
TRANSFORMS: dict[str, type[Standardiser]] = {STANDARDISER_KIND: Standardiser}


def transform_from_record(record: dict[str, Any]) -> Standardiser:
    """Rebuild a transform from its record (see :data:`TRANSFORMS`)."""
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind not in TRANSFORMS:
        raise ValueError(f"unknown transform kind {kind!r}; allowed: {sorted(TRANSFORMS)}")
    return TRANSFORMS[kind].from_dict(record)


__all__ = ["TRANSFORMS", "Standardiser", "transform_from_record"]
