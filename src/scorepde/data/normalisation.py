"""Normalisation of fields and conditions; the statistics are saved with every model.

:class:`FieldNormaliser` maps physical fields ``(..., C, N)`` to the network's scale and back;
:class:`ConditionEncoder` maps physical conditions ``(M, k)`` to ``[-1, 1]`` over the design
ranges. Both work on numpy arrays and torch tensors (torch is imported only when a tensor is
passed) and round-trip through plain dicts / JSON.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scorepde.fileio import atomic_write_text
from scorepde.problems.base import ConditionSpec

__all__ = ["ConditionEncoder", "FieldNormaliser", "NormalisationError"]

_NORMALISER_FORMAT = "scorepde.field_normaliser/1"
_ENCODER_FORMAT = "scorepde.condition_encoder/1"


class NormalisationError(ValueError):
    """A normaliser or encoder is unfitted, fed the wrong shape, or loaded from a bad file."""


def _is_tensor(x: Any) -> bool:
    module = type(x).__module__
    return module.startswith("torch") and hasattr(x, "device")


def _like(array: np.ndarray, x: Any) -> Any:
    """``array`` as a tensor on ``x``'s device with ``x``'s (floating) dtype, or as is."""
    if not _is_tensor(x):
        return array
    import torch

    dtype = x.dtype if x.is_floating_point() else torch.float32
    return torch.as_tensor(array, dtype=dtype, device=x.device)


def _as_float(x: Any) -> Any:
    if _is_tensor(x):
        return x if x.is_floating_point() else x.float()
    return np.asarray(x, dtype=float)


def _read_json(path: str | Path, what: str, expected_format: str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NormalisationError(f"{path}: not a valid {what} JSON file ({error})") from error
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise NormalisationError(
            f"{path}: format {found!r} is not allowed; expected {expected_format!r}"
        )
    return data


class FieldNormaliser:
    """Per-grid-point mean and one scale per channel: ``z = (x - mean) / scale``.

    ``mean`` ``(C, N)`` is the per-point mean over samples; ``scale`` ``(C,)`` is the standard
    deviation of the centred field over all samples *and* points of the channel.

    Why one scale per channel and not per point: the fields obey Dirichlet constraints (battery:
    ``phi(0) = 0`` after the shift and ``c(L) = c_right``). There every sample has the same
    value, so a per-point standard deviation is ~0 and dividing by it would turn an exact
    constraint into amplified round-off noise that the network must learn to cancel. With a
    per-channel scale those points are exactly 0 after centring (``mean`` at a point where all
    samples agree is set to that common value exactly, not to a rounded average), and the
    inverse map puts them back exactly. A per-channel scale also keeps the relative size of the
    fluctuations along ``x``, which is physical information.

    Scale floor: a channel whose centred standard deviation is below ``floor * max(1, |mean|)``
    (a constant channel) gets ``scale = 1``, so nothing is divided by ~0.

    Units: ``mean`` in the channel's unit, ``scale`` in the channel's unit; ``z`` dimensionless.
    """

    def __init__(
        self,
        mean: np.ndarray | None = None,
        scale: np.ndarray | None = None,
        channels: Sequence[str] | None = None,
        floor: float = 1e-12,
    ) -> None:
        if (mean is None) != (scale is None):
            raise NormalisationError("give both mean and scale, or neither (then call fit)")
        if not (math.isfinite(floor) and floor >= 0):
            raise NormalisationError(f"floor = {floor!r} is not allowed; expected a number >= 0")
        self.floor = float(floor)
        self.channels = tuple(channels) if channels is not None else None
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        if mean is not None and scale is not None:
            self._set(np.asarray(mean, dtype=float), np.asarray(scale, dtype=float))

    def _set(self, mean: np.ndarray, scale: np.ndarray) -> None:
        if mean.ndim != 2 or scale.shape != (mean.shape[0],):
            raise NormalisationError(
                f"mean {mean.shape} and scale {scale.shape} must be (C, N) and (C,)"
            )
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise NormalisationError("mean must be finite and scale finite and > 0")
        if self.channels is not None and len(self.channels) != mean.shape[0]:
            raise NormalisationError(
                f"channels {list(self.channels)} do not match mean with C = {mean.shape[0]}"
            )
        self.mean, self.scale = mean, scale

    @property
    def fitted(self) -> bool:
        """Whether ``mean`` and ``scale`` are set."""
        return self.mean is not None

    def fit(self, fields: np.ndarray) -> FieldNormaliser:
        """Fit to physical fields ``(n, C, N)`` (n >= 1); returns ``self``."""
        fields = np.asarray(fields, dtype=float)
        if fields.ndim != 3 or fields.shape[0] < 1:
            raise NormalisationError(f"fields has shape {fields.shape}; expected (n >= 1, C, N)")
        if not np.all(np.isfinite(fields)):
            raise NormalisationError("fields contain non-finite values")
        mean = fields.mean(axis=0)
        low, high = fields.min(axis=0), fields.max(axis=0)
        constant = low == high
        mean[constant] = low[constant]  # exact where all samples agree (Dirichlet points)
        std = np.sqrt(((fields - mean) ** 2).mean(axis=(0, 2)))
        magnitude = np.maximum(1.0, np.abs(mean).max(axis=1))
        scale = np.where(std > self.floor * magnitude, std, 1.0)
        self._set(mean, scale)
        return self

    def _check(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None or self.scale is None:
            raise NormalisationError("FieldNormaliser is not fitted; call fit(fields) first")
        shape = tuple(x.shape)
        if len(shape) < 2 or shape[-2:] != self.mean.shape:
            raise NormalisationError(
                f"input has shape {shape}; expected (..., {self.mean.shape[0]}, "
                f"{self.mean.shape[1]})"
            )
        return self.mean, self.scale[:, None]

    def transform(self, x: Any) -> Any:
        """Physical ``(..., C, N)`` -> normalised, same shape and array type (numpy or torch)."""
        x = _as_float(x)
        mean, scale = self._check(x)
        return (x - _like(mean, x)) / _like(scale, x)

    def inverse(self, z: Any) -> Any:
        """Normalised ``(..., C, N)`` -> physical units, same shape and array type."""
        z = _as_float(z)
        mean, scale = self._check(z)
        return z * _like(scale, z) + _like(mean, z)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-ready)."""
        if self.mean is None or self.scale is None:
            raise NormalisationError("FieldNormaliser is not fitted; nothing to serialise")
        return {
            "format": _NORMALISER_FORMAT,
            "channels": list(self.channels) if self.channels is not None else None,
            "floor": self.floor,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FieldNormaliser:
        """Inverse of :meth:`to_dict`."""
        allowed = {"format", "channels", "floor", "mean", "scale"}
        if not isinstance(data, dict) or not {"mean", "scale"} <= set(data):
            raise NormalisationError("a FieldNormaliser dict needs 'mean' and 'scale'")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise NormalisationError(f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        if data.get("format", _NORMALISER_FORMAT) != _NORMALISER_FORMAT:
            raise NormalisationError(
                f"format {data['format']!r} is not allowed; expected {_NORMALISER_FORMAT!r}"
            )
        return cls(
            mean=np.asarray(data["mean"], dtype=float),
            scale=np.asarray(data["scale"], dtype=float),
            channels=data.get("channels"),
            floor=float(data.get("floor", 1e-12)),
        )

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically; returns the path."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> FieldNormaliser:
        """Read a file written by :meth:`save` (clear error for a missing or corrupt file)."""
        data = _read_json(path, "field normaliser", _NORMALISER_FORMAT)
        try:
            return cls.from_dict(data)
        except (NormalisationError, ValueError, TypeError) as error:
            raise NormalisationError(f"{path}: {error}") from error


@dataclass(frozen=True)
class ConditionEncoder:
    """Maps each condition onto ``[-1, 1]`` over its design range (in ``log`` where log_scale).

    ``encode(p)_j = 2 (t(p_j) - t(low_j)) / (t(high_j) - t(low_j)) - 1`` with ``t = log`` for
    log-scale conditions and the identity otherwise. Values outside the range map outside
    ``[-1, 1]`` (extrapolation; see :meth:`check`).
    """

    names: tuple[str, ...]
    units: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    log_scale: tuple[bool, ...]

    def __post_init__(self) -> None:
        k = len(self.names)
        lengths = {len(self.units), len(self.low), len(self.high), len(self.log_scale)}
        if lengths != {k}:
            raise NormalisationError(
                "names, units, low, high and log_scale must have one entry each"
            )
        for name, lo, hi, log in zip(self.names, self.low, self.high, self.log_scale, strict=True):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi) or (log and lo <= 0):
                raise NormalisationError(
                    f"condition {name}: range [{lo}, {hi}] is not allowed (log_scale={log}); "
                    "expected finite low < high, and low > 0 for a log-scale condition"
                )

    @classmethod
    def from_specs(cls, specs: Sequence[ConditionSpec]) -> ConditionEncoder:
        """Build from a problem's condition specs (their design ranges)."""
        return cls(
            names=tuple(s.name for s in specs),
            units=tuple(s.unit for s in specs),
            low=tuple(float(s.low) for s in specs),
            high=tuple(float(s.high) for s in specs),
            log_scale=tuple(bool(s.log_scale) for s in specs),
        )

    def _bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        log = np.asarray(self.log_scale, dtype=bool)
        low, high = np.asarray(self.low, dtype=float), np.asarray(self.high, dtype=float)
        low = np.where(log, np.log(np.where(log, low, 1.0)), low)
        high = np.where(log, np.log(np.where(log, high, 1.0)), high)
        return log, low, high

    def _as_matrix(self, conditions: Any) -> np.ndarray:
        array = np.asarray(
            conditions.detach().cpu().numpy() if _is_tensor(conditions) else conditions,
            dtype=float,
        )
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != len(self.names):
            raise NormalisationError(
                f"conditions has shape {tuple(np.shape(conditions))}; expected (M, "
                f"{len(self.names)}) with columns {list(self.names)}"
            )
        return array

    def encode(self, conditions: Any) -> np.ndarray:
        """Physical ``(M, k)`` (or ``(k,)``) -> encoded ``(M, k)`` float32, ``[-1, 1]`` in range.

        A log-scale condition must be > 0 (``NormalisationError`` naming it otherwise).
        """
        array = self._as_matrix(conditions)
        log, low, high = self._bounds()
        for j in np.flatnonzero(log):
            if np.any(~(array[:, j] > 0)):
                bad = array[~(array[:, j] > 0), j][0]
                raise NormalisationError(
                    f"condition {self.names[j]} = {float(bad)!r} is not allowed; "
                    "it is log-scaled and must be > 0"
                )
        t = np.where(log, np.log(np.where(log, array, 1.0)), array)
        return (2.0 * (t - low) / (high - low) - 1.0).astype(np.float32)

    def decode(self, encoded: Any) -> np.ndarray:
        """Inverse of :meth:`encode`: ``(M, k)`` -> physical units, float64."""
        array = self._as_matrix(encoded)
        log, low, high = self._bounds()
        t = low + (array + 1.0) * (high - low) / 2.0
        return np.where(log, np.exp(t), t)

    def check(self, conditions: Any) -> bool:
        """Warn (``UserWarning``, naming the condition and range) for each condition outside its
        training range; returns whether all are inside."""
        array = self._as_matrix(conditions)
        inside = True
        for j, name in enumerate(self.names):
            column = array[:, j]
            outside = (column < self.low[j]) | (column > self.high[j])
            if np.any(outside):
                inside = False
                warnings.warn(
                    f"condition {name} = {float(column[outside][0])!r} {self.units[j]} lies "
                    f"outside the training range [{self.low[j]}, {self.high[j]}] {self.units[j]} "
                    f"({int(outside.sum())} of {len(column)} rows): the model extrapolates",
                    UserWarning,
                    stacklevel=2,
                )
        return inside

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON/YAML-ready)."""
        return {
            "format": _ENCODER_FORMAT,
            "names": list(self.names),
            "units": list(self.units),
            "low": list(self.low),
            "high": list(self.high),
            "log_scale": list(self.log_scale),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConditionEncoder:
        """Inverse of :meth:`to_dict`."""
        keys = {"names", "units", "low", "high", "log_scale"}
        if not isinstance(data, dict) or not keys <= set(data):
            raise NormalisationError(f"a ConditionEncoder dict needs keys {sorted(keys)}")
        unknown = sorted(set(data) - keys - {"format"})
        if unknown:
            raise NormalisationError(f"unknown key(s) {unknown}; allowed: {sorted(keys)}")
        return cls(
            names=tuple(str(v) for v in data["names"]),
            units=tuple(str(v) for v in data["units"]),
            low=tuple(float(v) for v in data["low"]),
            high=tuple(float(v) for v in data["high"]),
            log_scale=tuple(bool(v) for v in data["log_scale"]),
        )

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically; returns the path."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ConditionEncoder:
        """Read a file written by :meth:`save` (clear error for a missing or corrupt file)."""
        data = _read_json(path, "condition encoder", _ENCODER_FORMAT)
        try:
            return cls.from_dict(data)
        except (NormalisationError, ValueError, TypeError) as error:
            raise NormalisationError(f"{path}: {error}") from error
