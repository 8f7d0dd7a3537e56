"""The field specification: what one sample of a problem's output is.

A :class:`FieldSpec` names the channels with their units and gives one coordinate array per
grid axis, in the order of the array axes (1-D ``(x,)``; 2-D ``(y, x)`` so that arrays are
indexed ``[..., j, i]`` with ``j`` the y index). Fields are ``(n, C, *S)`` everywhere, with
``S = spec.grid_shape``. Problems produce a spec, data files store it, normalisers, evaluation
and plots read it; nothing else needs to know the rank of the grid.

Optionally a spec carries a ``fidelity`` (a resolution or mesh size as a number) for
multi-fidelity data sets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FieldSpec"]


@dataclass(frozen=True, eq=False)
class FieldSpec:
    """Channels, units and grid of one field sample ``(C, *S)``.

    Attributes:
        channels: channel names (``("c", "phi")``).
        channel_units: unit of each channel.
        coordinates: one ``(S_a,)`` float array per grid axis, in array-axis order.
        axis_names: name of each grid axis (``("x",)``, ``("y", "x")``).
        axis_units: unit of each axis' coordinates (default metres).
        fidelity: optional resolution label of the data (None: single fidelity).
    """

    channels: tuple[str, ...]
    channel_units: tuple[str, ...]
    coordinates: tuple[np.ndarray, ...]
    axis_names: tuple[str, ...] = ("x",)
    axis_units: tuple[str, ...] = ()
    fidelity: float | None = None

    def __post_init__(self) -> None:
        channels = tuple(str(c) for c in self.channels)
        units = tuple(str(u) for u in self.channel_units)
        if not channels or len(units) != len(channels):
            raise ValueError(
                f"FieldSpec: channels {list(channels)} and channel_units {list(units)} must be "
                "non-empty and of equal length"
            )
        if len(set(channels)) != len(channels):
            raise ValueError(f"FieldSpec: channel names {list(channels)} must be distinct")
        coordinates = tuple(np.asarray(axis, dtype=float).reshape(-1) for axis in self.coordinates)
        if not 1 <= len(coordinates) <= 3:
            raise ValueError(
                f"FieldSpec: {len(coordinates)} coordinate arrays; expected 1 to 3 grid axes"
            )
        for axis in coordinates:
            if axis.size < 1 or not np.all(np.isfinite(axis)):
                raise ValueError("FieldSpec: every coordinate array must be finite and non-empty")
            axis.setflags(write=False)
        names = tuple(str(a) for a in self.axis_names)
        if len(names) != len(coordinates):
            raise ValueError(
                f"FieldSpec: axis_names {list(names)} do not match {len(coordinates)} grid axes"
            )
        axis_units = tuple(str(u) for u in self.axis_units) or ("m",) * len(coordinates)
        if len(axis_units) != len(coordinates):
            raise ValueError(
                f"FieldSpec: axis_units {list(axis_units)} do not match {len(coordinates)} axes"
            )
        fidelity = self.fidelity
        if fidelity is not None:
            fidelity = float(fidelity)
            if not math.isfinite(fidelity):
                raise ValueError(f"FieldSpec: fidelity = {self.fidelity!r} must be finite")
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "channel_units", units)
        object.__setattr__(self, "coordinates", coordinates)
        object.__setattr__(self, "axis_names", names)
        object.__setattr__(self, "axis_units", axis_units)
        object.__setattr__(self, "fidelity", fidelity)

    # ------------------------------------------------------------------ derived sizes
    @property
    def rank(self) -> int:
        """Number of grid axes (1 or 2; 3 allowed)."""
        return len(self.coordinates)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """``S``: the number of points along each grid axis."""
        return tuple(int(axis.size) for axis in self.coordinates)

    @property
    def n_points(self) -> int:
        """``prod(S)``: grid points per channel."""
        return math.prod(self.grid_shape)

    @property
    def n_channels(self) -> int:
        """``C``."""
        return len(self.channels)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """``(C, *S)``: the shape of one field sample."""
        return (self.n_channels, *self.grid_shape)

    @property
    def grid_axes(self) -> tuple[int, ...]:
        """The axes of a ``(n, C, *S)`` array that are grid axes: ``(2, ..., 1 + rank)``."""
        return tuple(range(2, 2 + self.rank))

    def axis(self, name: str) -> np.ndarray:
        """The coordinates of the axis called ``name``."""
        if name not in self.axis_names:
            raise ValueError(f"axis {name!r} is not known; expected one of {list(self.axis_names)}")
        return self.coordinates[self.axis_names.index(name)]

    def channel_index(self, name: str) -> int:
        """Position of channel ``name``."""
        if name not in self.channels:
            raise ValueError(
                f"channel {name!r} is not known; expected one of {list(self.channels)}"
            )
        return self.channels.index(name)

    # ------------------------------------------------------------------ checks
    def check(self, fields: Any, name: str = "fields") -> np.ndarray:
        """``fields`` as float64 ``(n, C, *S)``; ``ValueError`` naming ``name`` and the shapes
        otherwise."""
        array = np.asarray(fields, dtype=float)
        if array.ndim != 2 + self.rank or tuple(array.shape[1:]) != self.sample_shape:
            expected = ", ".join(map(str, self.sample_shape))
            raise ValueError(
                f"{name} has shape {array.shape}; expected (n, {expected}) "
                f"for channels {list(self.channels)} on a grid {self.grid_shape}"
            )
        return array

    def same_grid(self, other: FieldSpec) -> bool:
        """Whether ``other`` has the same axes and coordinates (to round-off)."""
        return self.axis_names == other.axis_names and all(
            a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=0.0)
            for a, b in zip(self.coordinates, other.coordinates, strict=True)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSpec):
            return NotImplemented
        return (
            self.channels == other.channels
            and self.channel_units == other.channel_units
            and self.axis_units == other.axis_units
            and self.fidelity == other.fidelity
            and self.same_grid(other)
        )

    __hash__ = None  # type: ignore[assignment]

    def with_fidelity(self, fidelity: float | None) -> FieldSpec:
        """A copy with another fidelity label."""
        return FieldSpec(
            self.channels,
            self.channel_units,
            self.coordinates,
            self.axis_names,
            self.axis_units,
            fidelity,
        )

    # ------------------------------------------------------------------ plain data
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML/JSON-ready; coordinates as lists: one short array per axis)."""
        return {
            "channels": list(self.channels),
            "channel_units": list(self.channel_units),
            "axis_names": list(self.axis_names),
            "axis_units": list(self.axis_units),
            "coordinates": [axis.tolist() for axis in self.coordinates],
            "fidelity": self.fidelity,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FieldSpec:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        allowed = {
            "channels",
            "channel_units",
            "axis_names",
            "axis_units",
            "coordinates",
            "fidelity",
        }
        if not isinstance(data, dict):
            raise ValueError(f"a FieldSpec must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"FieldSpec: unknown key(s) {unknown}; allowed {sorted(allowed)}")
        missing = sorted({"channels", "channel_units", "coordinates"} - set(data))
        if missing:
            raise ValueError(f"FieldSpec: missing key(s) {missing}")
        coordinates: Sequence[Any] = data["coordinates"]
        return cls(
            channels=tuple(data["channels"]),
            channel_units=tuple(data["channel_units"]),
            coordinates=tuple(np.asarray(axis, dtype=float) for axis in coordinates),
            axis_names=tuple(data.get("axis_names") or ("x", "y", "z")[: len(coordinates)][::-1]),
            axis_units=tuple(data.get("axis_units") or ()),
            fidelity=data.get("fidelity"),
        )

    def __repr__(self) -> str:
        grid = " x ".join(f"{n}:{s}" for n, s in zip(self.axis_names, self.grid_shape, strict=True))
        extra = f", fidelity={self.fidelity:g}" if self.fidelity is not None else ""
        return f"FieldSpec(channels={list(self.channels)}, grid={grid}{extra})"
