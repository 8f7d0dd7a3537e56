"""Normalisation of fields and conditions; the statistics are saved with every model.

:class:`FieldNormaliser` maps physical fields ``(..., C, *S)`` (any grid rank) to the network's
scale and back; :class:`ConditionEncoder` maps physical conditions ``(M, k)`` to ``[-1, 1]`` over
the design ranges. Both work on numpy arrays and torch tensors (torch is imported only when a
tensor is passed) and round-trip through plain dicts.

Files: ``save(path)`` writes the small configuration as JSON at ``path`` and the arrays (means,
regression coefficients, bases) beside it as ``<stem>.safetensors``; the JSON refers to each
array as ``{"$array": name}``. Files of earlier versions, with the arrays as JSON lists, still
load.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.special

from scorepde.fileio import atomic_path, atomic_write_text
from scorepde.problems.base import ConditionSpec

__all__ = [
    "ConditionEncoder",
    "ConditionalNormaliser",
    "FieldNormaliser",
    "NormalisationError",
    "SubspaceNormaliser",
    "load_normaliser",
]

_NORMALISER_FORMAT = "scorepde.field_normaliser/1"
_ENCODER_FORMAT = "scorepde.condition_encoder/1"
_CONDITIONAL_FORMAT = "scorepde.conditional_normaliser/1"
_SUBSPACE_FORMAT = "scorepde.subspace_normaliser/1"

#: How :class:`ConditionalNormaliser` fits ``scale(p)``: a polynomial in the spread (weighted by
#: the observed spread), or a polynomial in the log of the unbiased variance.
SCALE_FITS = ("spread", "log_variance")


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


_ARRAY_REF = "$array"


def arrays_path(path: str | Path) -> Path:
    """Where the arrays of the normaliser file ``path`` are kept: ``<stem>.safetensors``."""
    return Path(path).with_suffix(".safetensors")


def _split_arrays(data: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Replace every numpy array in nested ``data`` by ``{"$array": key}``; collect them."""
    if isinstance(data, np.ndarray):
        key = prefix or "array"
        arrays[key] = np.ascontiguousarray(data)
        return {_ARRAY_REF: key}
    if isinstance(data, dict):
        return {
            k: _split_arrays(v, f"{prefix}.{k}" if prefix else str(k), arrays)
            for k, v in data.items()
        }
    return data


def _join_arrays(data: Any, arrays: dict[str, np.ndarray], path: Path) -> Any:
    """Inverse of :func:`_split_arrays`."""
    if isinstance(data, dict):
        if set(data) == {_ARRAY_REF}:
            key = data[_ARRAY_REF]
            if key not in arrays:
                raise NormalisationError(f"{arrays_path(path)} lacks the array {key!r}")
            return arrays[key]
        return {k: _join_arrays(v, arrays, path) for k, v in data.items()}
    return data


def _listify(data: Any) -> Any:
    """Nested data with numpy arrays -> nested plain lists (JSON-ready)."""
    if isinstance(data, np.ndarray):
        return data.tolist()
    if isinstance(data, dict):
        return {k: _listify(v) for k, v in data.items()}
    return data


def _write_json_and_arrays(path: str | Path, raw: dict[str, Any], indent: int | None) -> Path:
    """``raw`` (nested, with numpy arrays) -> ``path`` (JSON) + ``<stem>.safetensors``."""
    from safetensors.numpy import save_file

    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    config = _split_arrays(raw, "", arrays)
    if arrays:
        config["arrays_file"] = arrays_path(path).name
        with atomic_path(arrays_path(path), suffix=".safetensors") as tmp:
            save_file(arrays, str(tmp))
    atomic_write_text(path, json.dumps(config, indent=indent))
    return path


def _read_json(path: str | Path, what: str, expected_format: str | None) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NormalisationError(f"{path}: not a valid {what} JSON file ({error})") from error
    if not isinstance(data, dict) or (
        expected_format is not None and data.get("format") != expected_format
    ):
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise NormalisationError(
            f"{path}: format {found!r} is not allowed; expected {expected_format!r}"
        )
    name = data.pop("arrays_file", None)
    if name is None:
        return data  # an earlier version: arrays as JSON lists
    from safetensors.numpy import load_file

    file = path.parent / str(name)
    if not file.is_file():
        raise NormalisationError(f"{path}: its arrays file {file} is missing")
    try:
        arrays = load_file(str(file))
    except Exception as error:
        raise NormalisationError(f"{file}: corrupt or unreadable arrays ({error})") from error
    return _join_arrays(data, arrays, path)


class _JsonFile:
    """``save`` / ``load`` as JSON (atomic write; a missing or corrupt file is a clear error).

    A subclass sets ``_WHAT`` (for messages), ``_FORMAT`` (recorded and checked) and
    ``_INDENT``, and provides ``to_dict`` / ``from_dict``.
    """

    _WHAT: ClassVar[str]
    _FORMAT: ClassVar[str]
    _INDENT: ClassVar[int | None] = 1

    def save(self, path: str | Path) -> Path:
        """Write the configuration as JSON at ``path`` and the arrays beside it as
        ``<stem>.safetensors`` (both atomically; the arrays first); returns ``path``."""
        return _write_json_and_arrays(path, self._raw_dict(), self._INDENT)

    def _raw_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` with numpy arrays in place of lists (the default: no arrays)."""
        return self.to_dict()  # type: ignore[attr-defined]

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """Read a file written by :meth:`save` (clear error for a missing or corrupt file)."""
        data = _read_json(path, cls._WHAT, cls._FORMAT)
        try:
            return cls.from_dict(data)  # type: ignore[attr-defined]
        except (NormalisationError, ValueError, TypeError) as error:
            raise NormalisationError(f"{path}: {error}") from error


class FieldNormaliser(_JsonFile):
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

    _WHAT: ClassVar[str] = "field normaliser"
    _FORMAT: ClassVar[str] = _NORMALISER_FORMAT

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
        if mean.ndim < 2 or scale.shape != (mean.shape[0],):
            raise NormalisationError(
                f"mean {mean.shape} and scale {scale.shape} must be (C, *S) and (C,)"
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
        """Fit to physical fields ``(n, C, *S)`` (n >= 1, any grid rank); returns ``self``."""
        fields = np.asarray(fields, dtype=float)
        if fields.ndim < 3 or fields.shape[0] < 1:
            raise NormalisationError(
                f"fields has shape {fields.shape}; expected (n >= 1, C, *S) with a grid S"
            )
        if not np.all(np.isfinite(fields)):
            raise NormalisationError("fields contain non-finite values")
        mean = fields.mean(axis=0)
        low, high = fields.min(axis=0), fields.max(axis=0)
        constant = low == high
        mean[constant] = low[constant]  # exact where all samples agree (Dirichlet points)
        reduce = (0, *range(2, fields.ndim))
        std = np.sqrt(((fields - mean) ** 2).mean(axis=reduce))
        magnitude = np.maximum(1.0, np.abs(mean).reshape(len(mean), -1).max(axis=1))
        scale = np.where(std > self.floor * magnitude, std, 1.0)
        self._set(mean, scale)
        return self

    def _check(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None or self.scale is None:
            raise NormalisationError("FieldNormaliser is not fitted; call fit(fields) first")
        shape = tuple(x.shape)
        rank = self.mean.ndim
        if len(shape) < rank or shape[-rank:] != self.mean.shape:
            raise NormalisationError(
                f"input has shape {shape}; expected (..., {', '.join(map(str, self.mean.shape))})"
            )
        return self.mean, self.scale.reshape(-1, *([1] * (rank - 1)))

    @property
    def field_shape(self) -> tuple[int, ...] | None:
        """``(C, *S)`` once fitted."""
        return None if self.mean is None else tuple(self.mean.shape)

    def transform(self, x: Any, conditions: Any = None) -> Any:
        """Physical ``(..., C, *S)`` -> normalised, same shape and array type (numpy or torch).

        ``conditions`` is accepted for a common interface with :class:`ConditionalNormaliser`
        and ignored: this normaliser is the same for every condition.
        """
        x = _as_float(x)
        mean, scale = self._check(x)
        return (x - _like(mean, x)) / _like(scale, x)

    def inverse(self, z: Any, conditions: Any = None) -> Any:
        """Normalised ``(..., C, *S)`` -> physical units, same shape and array type."""
        z = _as_float(z)
        mean, scale = self._check(z)
        return z * _like(scale, z) + _like(mean, z)

    def _raw_dict(self) -> dict[str, Any]:
        if self.mean is None or self.scale is None:
            raise NormalisationError("FieldNormaliser is not fitted; nothing to serialise")
        return {
            "format": _NORMALISER_FORMAT,
            "channels": list(self.channels) if self.channels is not None else None,
            "floor": self.floor,
            "mean": self.mean,
            "scale": self.scale,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-ready; arrays as nested lists)."""
        return _listify(self._raw_dict())

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


def polynomial_exponents(n_variables: int, degree: int) -> np.ndarray:
    """Exponents ``(F, k)`` of all monomials of total degree ``<= degree`` in ``k`` variables,
    the constant first (graded order)."""
    if n_variables < 0 or degree < 0:
        raise NormalisationError(
            f"n_variables = {n_variables}, degree = {degree} are not allowed; expected >= 0"
        )
    rows = [
        exps
        for total in range(degree + 1)
        for exps in itertools.product(range(total + 1), repeat=n_variables)
        if sum(exps) == total
    ]
    return np.asarray(rows, dtype=int).reshape(len(rows), n_variables)


def polynomial_features(encoded: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """Monomials ``(M, F)`` of encoded conditions ``(M, k)`` (values ~[-1, 1])."""
    encoded = np.atleast_2d(np.asarray(encoded, dtype=float))
    if encoded.shape[1] != exponents.shape[1]:
        raise NormalisationError(
            f"conditions have {encoded.shape[1]} columns; the normaliser was fitted on "
            f"{exponents.shape[1]}"
        )
    return np.prod(encoded[:, None, :] ** exponents[None, :, :], axis=2)


class ConditionalNormaliser(_JsonFile):
    """Condition-dependent standardisation: ``z = (x - mean(p)) / scale(p)``.

    ``mean(p)`` ``(C, N)`` and ``scale(p)`` ``(C,)`` are ridge regressions on the monomials
    (total degree ``<= degree``) of the *encoded* conditions ``e = encoder.encode(p)``, fitted
    to the per-condition mean profiles and per-condition spreads of the training set. Both are
    weighted least squares with weight ``1 / spread`` per design point, i.e. fitted to relative
    precision. The scale is regressed directly (not its log): near a knee such as the battery's
    spread ~ sqrt((a F)^2 + b^2) at F_right -> 0, a polynomial in the spread follows the data
    (held-out ratio true/predicted 0.96-1.14) where a polynomial in its log cannot (0.6-1.56).
    A floor of half the smallest training spread keeps ``scale(p)`` positive when extrapolating.

    ``scale_fit = "log_variance"`` instead regresses the log of the per-condition variance
    (``ddof = 1``) less its known bias for Gaussian values, ``E[log s^2] = log var +
    digamma(d / 2) - log(d / 2)`` with ``d`` the degrees of freedom, and takes ``scale(p) =
    exp(fit / 2)``, unweighted. The ``"spread"`` fit is biased low when each design point has few
    fields: the spread with ``ddof = 0`` is low by ``sqrt((m - 1) / m)``, and the weight
    ``1 / spread`` favours the points whose spread came out small. A polynomial in the log also
    follows a spread that changes by orders of magnitude over the design (a high-frequency
    principal direction against the correlation length), where one in the spread cannot. Fitted
    to ``darcy-quick``'s whitened coefficients, the standardised values of fresh simulations at
    24 random conditions had a spread of 1.13 on average (up to 1.75 at one condition) with the
    spread fit, 1.02 (up to 1.13) with this one at degree 5 (``benchmarks/bench_whitening.py``;
    docs/darcy.md, "Why the samples are too narrow").

    Why: the spread of the fields within one condition can vary by orders of magnitude across
    the design (battery: c - c_right and phi scale with F_right, so at F_right ~ 1 A/m^2 the
    spread is ~100x smaller than at 50). A global normaliser then leaves the low-current
    conditions far below the diffusion's noise floor (sigma at t_min), where the model cannot
    resolve them. For each ``p`` the map is affine and invertible, so the generative model
    still learns the whole conditional law ``p(x | p)``; ``mean(p)`` and ``scale(p)`` need only
    be roughly right (the network learns the remainder), and are smooth in ``p``.

    Exactness: a grid point where every training value is the same (a Dirichlet point) gets
    that value as a constant mean, so it maps to exactly 0 and back exactly. The scale is one
    number per channel, as in :class:`FieldNormaliser` (see there why not per point).

    Units: ``mean`` and ``scale`` in the channel's unit; ``z`` dimensionless.
    """

    _WHAT: ClassVar[str] = "conditional normaliser"
    _FORMAT: ClassVar[str] = _CONDITIONAL_FORMAT
    _INDENT: ClassVar[int | None] = None

    def __init__(
        self,
        degree: int = 2,
        ridge: float = 1e-6,
        channels: Sequence[str] | None = None,
        floor: float = 1e-12,
        scale_fit: str = "spread",
    ) -> None:
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 0:
            raise NormalisationError(f"degree = {degree!r} is not allowed; expected an int >= 0")
        if scale_fit not in SCALE_FITS:
            raise NormalisationError(
                f"scale_fit = {scale_fit!r} is not allowed; expected one of {list(SCALE_FITS)}"
            )
        self.scale_fit = scale_fit
        if not (math.isfinite(ridge) and ridge >= 0):
            raise NormalisationError(f"ridge = {ridge!r} is not allowed; expected a number >= 0")
        self.degree = degree
        self.ridge = float(ridge)
        self.floor = float(floor)
        self.channels = tuple(channels) if channels is not None else None
        self.exponents: np.ndarray | None = None
        self.mean_coefficients: np.ndarray | None = None  # (F, C, *S)
        self.scale_coefficients: np.ndarray | None = None  # (F, C)
        self.scale_floor: np.ndarray | None = None  # (C,)

    @property
    def fitted(self) -> bool:
        """Whether the regressions are set."""
        return self.mean_coefficients is not None

    @property
    def field_shape(self) -> tuple[int, ...] | None:
        """``(C, *S)`` once fitted."""
        if self.mean_coefficients is None:
            return None
        return tuple(self.mean_coefficients.shape[1:])

    def _solve(self, features: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Ridge least squares ``(F, T)``; the constant term is not penalised."""
        n_features = features.shape[1]
        penalty = np.sqrt(self.ridge * len(features)) * np.eye(n_features)[1:]
        design = np.vstack([features, penalty])
        padded = np.vstack([targets, np.zeros((n_features - 1, targets.shape[1]))])
        coefficients, *_ = np.linalg.lstsq(design, padded, rcond=None)
        return coefficients

    def fit(
        self, fields: np.ndarray, encoded: np.ndarray, groups: np.ndarray
    ) -> ConditionalNormaliser:
        """Fit to physical fields ``(n, C, *S)`` with encoded conditions ``(n, k)`` and the
        design point of each field ``groups`` ``(n,)`` (>= 2 fields per design point); returns
        self."""
        fields = np.asarray(fields, dtype=float)
        encoded = np.asarray(encoded, dtype=float)
        groups = np.asarray(groups)
        if fields.ndim < 3 or encoded.ndim != 2 or not len(fields) == len(encoded) == len(groups):
            raise NormalisationError(
                f"fields {fields.shape}, conditions {encoded.shape} and groups {groups.shape} "
                "must be (n, C, *S), (n, k) and (n,) with the same n"
            )
        if not (np.all(np.isfinite(fields)) and np.all(np.isfinite(encoded))):
            raise NormalisationError("fields or conditions contain non-finite values")
        keys, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
        if counts.min() < 2:
            raise NormalisationError(
                "every design point needs >= 2 fields to estimate its spread; design point "
                f"{keys[counts.argmin()]!r} has {counts.min()} (use FieldNormaliser instead)"
            )
        n_groups = len(keys)
        field_shape = fields.shape[1:]
        channels = field_shape[0]
        grid_axes = tuple(range(2, fields.ndim))
        sums = np.zeros((n_groups, *field_shape))
        np.add.at(sums, inverse, fields)
        group_mean = sums / counts.reshape(-1, *([1] * len(field_shape)))
        squares = np.zeros((n_groups, channels))
        np.add.at(squares, inverse, ((fields - group_mean[inverse]) ** 2).mean(axis=grid_axes))
        group_spread = np.sqrt(squares / counts[:, None])
        first = np.zeros(n_groups, dtype=int)
        first[inverse[::-1]] = np.arange(len(groups))[::-1]
        group_conditions = encoded[first]
        exponents = polynomial_exponents(encoded.shape[1], self.degree)
        if len(exponents) > n_groups:
            raise NormalisationError(
                f"degree {self.degree} needs {len(exponents)} coefficients but the data have "
                f"only {n_groups} design points; lower the degree"
            )
        features = polynomial_features(group_conditions, exponents)
        magnitude = np.maximum(1.0, np.abs(group_mean).max(axis=(0, *grid_axes)))
        spread = np.maximum(group_spread, self.floor * magnitude)
        if np.any(group_spread.max(axis=0) <= self.floor * magnitude):
            raise NormalisationError("a channel is constant in every design point; nothing to fit")
        # the mean is fitted to *relative* precision: each design point weighted by 1/spread,
        # so conditions with a small spread (low current) get an accurate centre too
        mean_coefficients = np.empty((len(exponents), *field_shape))
        for channel in range(channels):
            weight = 1.0 / spread[:, channel : channel + 1]
            targets = group_mean[:, channel].reshape(n_groups, -1)
            mean_coefficients[:, channel] = self._solve(
                features * weight, targets * weight
            ).reshape(len(exponents), *field_shape[1:])
        low, high = fields.min(axis=0), fields.max(axis=0)
        constant = low == high
        mean_coefficients[:, constant] = 0.0
        mean_coefficients[0][constant] = low[constant]
        self.exponents = exponents
        self.mean_coefficients = mean_coefficients
        self.scale_floor = 0.5 * spread.min(axis=0)
        if self.scale_fit == "log_variance":
            dof = counts[:, None] - 1.0
            # E[log s^2] = log var + digamma(dof / 2) - log(dof / 2) for Gaussian values
            bias = scipy.special.digamma(dof / 2.0) - np.log(dof / 2.0)
            log_variance = np.log(np.maximum(squares / dof, self.scale_floor**2)) - bias
            self.scale_coefficients = self._solve(features, log_variance)
            return self
        self.scale_coefficients = np.empty((len(exponents), channels))
        for channel in range(channels):
            weight = 1.0 / spread[:, channel : channel + 1]
            self.scale_coefficients[:, channel] = self._solve(
                features * weight, spread[:, channel : channel + 1] * weight
            )[:, 0]
        return self

    def _coefficients_at(self, conditions: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.exponents is None or self.mean_coefficients is None:
            raise NormalisationError("ConditionalNormaliser is not fitted; call fit first")
        if conditions is None:
            raise NormalisationError(
                "ConditionalNormaliser needs the encoded conditions of every sample"
            )
        if hasattr(conditions, "detach"):
            conditions = conditions.detach().cpu().numpy()
        encoded = np.atleast_2d(np.asarray(conditions, dtype=float))
        if len(encoded) == 1 and n != 1:
            encoded = np.repeat(encoded, n, axis=0)
        if len(encoded) != n:
            raise NormalisationError(
                f"{len(encoded)} condition rows for {n} fields; expected one row each (or one)"
            )
        features = polynomial_features(encoded, self.exponents)
        mean = np.einsum("mf,f...->m...", features, self.mean_coefficients)
        if self.scale_fit == "log_variance":
            scale = np.maximum(np.exp(0.5 * (features @ self.scale_coefficients)), self.scale_floor)
        else:
            scale = np.maximum(features @ self.scale_coefficients, self.scale_floor)
        return mean, scale.reshape(*scale.shape, *([1] * (self.mean_coefficients.ndim - 2)))

    def _check(self, x: Any) -> None:
        shape = tuple(x.shape)
        if (
            self.field_shape is None
            or len(shape) != 1 + len(self.field_shape)
            or (shape[1:] != self.field_shape)
        ):
            raise NormalisationError(
                f"input has shape {shape}; expected (n, {', '.join(map(str, self.field_shape))})"
                if self.field_shape
                else "ConditionalNormaliser is not fitted; call fit first"
            )

    def mean_at(self, conditions: Any) -> np.ndarray:
        """``mean(p)`` ``(M, C, *S)`` for encoded conditions ``(M, k)``, physical units."""
        encoded = np.atleast_2d(np.asarray(conditions, dtype=float))
        return self._coefficients_at(encoded, len(encoded))[0]

    def scale_at(self, conditions: Any) -> np.ndarray:
        """``scale(p)`` ``(M, C)`` for encoded conditions ``(M, k)``, physical units."""
        encoded = np.atleast_2d(np.asarray(conditions, dtype=float))
        return self._coefficients_at(encoded, len(encoded))[1].reshape(len(encoded), -1)

    def transform(self, x: Any, conditions: Any) -> Any:
        """Physical ``(n, C, *S)`` -> normalised, given encoded conditions ``(n, k)`` (or one
        row for all); same array type (numpy or torch)."""
        x = _as_float(x)
        self._check(x)
        mean, scale = self._coefficients_at(conditions, x.shape[0])
        return (x - _like(mean, x)) / _like(scale, x)

    def inverse(self, z: Any, conditions: Any) -> Any:
        """Normalised ``(n, C, *S)`` -> physical units, given encoded conditions ``(n, k)``."""
        z = _as_float(z)
        self._check(z)
        mean, scale = self._coefficients_at(conditions, z.shape[0])
        return z * _like(scale, z) + _like(mean, z)

    def _raw_dict(self) -> dict[str, Any]:
        if self.exponents is None or self.mean_coefficients is None:
            raise NormalisationError("ConditionalNormaliser is not fitted; nothing to serialise")
        assert self.scale_coefficients is not None and self.scale_floor is not None
        return {
            "format": _CONDITIONAL_FORMAT,
            "channels": list(self.channels) if self.channels is not None else None,
            "degree": self.degree,
            "ridge": self.ridge,
            "floor": self.floor,
            "exponents": self.exponents.astype(np.int64),
            "mean_coefficients": self.mean_coefficients,
            "scale_coefficients": self.scale_coefficients,
            "scale_floor": self.scale_floor,
            **({"scale_fit": self.scale_fit} if self.scale_fit != "spread" else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-ready; arrays as nested lists)."""
        return _listify(self._raw_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConditionalNormaliser:
        """Inverse of :meth:`to_dict`."""
        required = {"exponents", "mean_coefficients", "scale_coefficients", "scale_floor", "degree"}
        allowed = required | {"format", "channels", "ridge", "floor", "scale_fit"}
        if not isinstance(data, dict) or not required <= set(data):
            raise NormalisationError(f"a ConditionalNormaliser dict needs {sorted(required)}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise NormalisationError(f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        normaliser = cls(
            degree=int(data["degree"]),
            ridge=float(data.get("ridge", 1e-6)),
            channels=data.get("channels"),
            floor=float(data.get("floor", 1e-12)),
            scale_fit=str(data.get("scale_fit", "spread")),
        )
        exponents = np.asarray(data["exponents"], dtype=int)
        mean = np.asarray(data["mean_coefficients"], dtype=float)
        scale = np.asarray(data["scale_coefficients"], dtype=float)
        floor = np.asarray(data["scale_floor"], dtype=float)
        if (
            exponents.ndim != 2
            or mean.ndim < 3
            or scale.shape != (len(exponents), mean.shape[1])
            or floor.shape != (mean.shape[1],)
            or not np.all(floor > 0)
            or len(mean) != len(exponents)
            or not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)))
        ):
            raise NormalisationError("inconsistent or non-finite ConditionalNormaliser arrays")
        normaliser.exponents = exponents
        normaliser.mean_coefficients = mean
        normaliser.scale_coefficients = scale
        normaliser.scale_floor = floor
        return normaliser


class SubspaceNormaliser(_JsonFile):
    """A base normaliser followed by projection onto the leading principal directions.

    ``transform``: physical ``(n, C, N)`` -> ``z = base.transform(x, p)`` -> coefficients
    ``w = z V`` of shape ``(n, 1, K)``, where the orthonormal columns of ``V`` ``(C*N, K)`` are the
    ``K`` leading right singular vectors of the normalised training fields (uncentred, so the
    base normaliser's residual mean lies in the subspace too). ``inverse``: ``w V^T`` reshaped to
    ``(n, C, N)`` and mapped back through ``base.inverse``.

    Why: fields of a smooth PDE solution operator driven by a smooth random input live, to
    rounding, in a low-dimensional linear subspace (battery: 48 of 200 directions keep all but
    6e-9 of the normalised energy; residual r.m.s. 8e-5 field scales). A score model trained on
    all ``C*N`` values must learn to remove the noise from the ~150 empty directions exactly;
    a small network does not, and its samples come out rough (derivatives and Neumann boundary
    values wrong by whole field scales). In the subspace every sample is a combination of smooth
    training directions: smooth, and the linear homogeneous boundary conditions that every
    normalised training field satisfies (Dirichlet values, zero Neumann fluxes) hold to the
    truncation error. The coefficients are not whitened: the diffusion sees an orthogonal
    rotation of the normalised fields, restricted to the subspace, so the noise process and the
    loss weights mean the same as without the projection.

    ``captured`` records the fraction of the training energy the subspace keeps; fitting warns
    if the residual is not small.

    ``whiten=True`` divides each coefficient by its standard deviation over the training set
    (``component_scale`` ``(K,)``), so every coefficient the model sees has unit spread. For
    fields with many directions of very different energy (a 2-D random field: the leading
    coefficient's spread is ~50 times the 300th's) the unwhitened coefficients are far from the
    preconditioning's ``sigma_data = 1`` at both ends; whitened, they match it. The noise
    process then adds equal noise to every direction of the whitened space, so in the field's
    space the small-scale directions are noised (and denoised) first.

    ``whiten="conditional"`` standardises each coefficient with its own condition-dependent
    mean and spread: a :class:`ConditionalNormaliser` (polynomial degree ``whiten_degree``)
    fitted to the coefficients ``(n, K, 1)`` as ``K`` one-point channels. Why: where the
    conditions change *which* directions carry the energy (a random field's correlation
    length moves energy between large and small scales by orders of magnitude), one global
    spread per direction is wrong for every condition, and the network must learn a
    condition-dependent rescaling of hundreds of directions; here the affine map does it, as
    the conditional normaliser does per channel, and the network learns the rest.
    """

    _WHAT: ClassVar[str] = "subspace normaliser"
    _FORMAT: ClassVar[str] = _SUBSPACE_FORMAT
    _INDENT: ClassVar[int | None] = None

    def __init__(
        self,
        base: FieldNormaliser | ConditionalNormaliser,
        components: int,
        *,
        whiten: bool | str = False,
        whiten_degree: int = 3,
        whiten_scale_fit: str = "spread",
    ) -> None:
        if not isinstance(base, FieldNormaliser | ConditionalNormaliser):
            raise NormalisationError(
                f"base = {type(base).__name__} is not allowed; expected a FieldNormaliser or "
                "ConditionalNormaliser"
            )
        if isinstance(components, bool) or not isinstance(components, int) or components < 1:
            raise NormalisationError(
                f"components = {components!r} is not allowed; expected an int >= 1"
            )
        self.base = base
        self.components = components
        self.basis: np.ndarray | None = None  # (C*N, K), orthonormal columns
        self.captured: float | None = None
        if whiten not in (False, True, "conditional"):
            raise NormalisationError(
                f"whiten = {whiten!r} is not allowed; expected false, true or 'conditional'"
            )
        self.whiten: bool | str = whiten
        self.component_scale: np.ndarray | None = None  # (K,) when whitened globally
        self.coefficient_normaliser: ConditionalNormaliser | None = (
            ConditionalNormaliser(degree=whiten_degree, scale_fit=whiten_scale_fit)
            if whiten == "conditional"
            else None
        )

    @property
    def channels(self) -> tuple[str, ...] | None:
        """Channel names of the physical fields (the base normaliser's)."""
        return self.base.channels

    @property
    def fitted(self) -> bool:
        """Whether the base is fitted and the basis set."""
        return (
            self.basis is not None
            and self.base.fitted
            and (self.coefficient_normaliser is None or self.coefficient_normaliser.fitted)
        )

    @property
    def field_shape(self) -> tuple[int, ...] | None:
        """``(C, *S)`` of the physical fields once fitted."""
        return self.base.field_shape

    @property
    def latent_shape(self) -> tuple[int, int]:
        """``(1, K)``: the shape of one sample in the model's space."""
        return (1, self.components)

    def fit(
        self, fields: np.ndarray, encoded: Any = None, groups: Any = None
    ) -> SubspaceNormaliser:
        """Fit the base normaliser (unless already fitted) and the basis on physical fields
        ``(n, C, N)`` with their encoded conditions ``(n, k)`` (and design point per field for a
        conditional base); returns self."""
        fields = np.asarray(fields, dtype=float)
        if fields.ndim < 3:
            raise NormalisationError(f"fields must be (n, C, *S), got shape {fields.shape}")
        size = int(np.prod(fields.shape[1:]))
        if self.components > min(size, len(fields)):
            raise NormalisationError(
                f"components = {self.components} is not allowed for {len(fields)} fields of "
                f"{size} values; expected <= {min(size, len(fields))}"
            )
        if not self.base.fitted:
            if isinstance(self.base, ConditionalNormaliser):
                self.base.fit(fields, encoded, groups)
            else:
                self.base.fit(fields)
        z = np.asarray(self.base.transform(fields, encoded), dtype=float).reshape(len(fields), -1)
        _, singular, vt = np.linalg.svd(z, full_matrices=False)
        energy = singular**2
        self.basis = np.ascontiguousarray(vt[: self.components].T)
        self.captured = float(energy[: self.components].sum() / max(energy.sum(), 1e-300))
        if self.coefficient_normaliser is not None:
            self.coefficient_normaliser.fit((z @ self.basis)[:, :, None], encoded, groups)
        elif self.whiten:
            spread = (z @ self.basis).std(axis=0)
            self.component_scale = np.where(spread > 0, spread, 1.0)
        if 1.0 - self.captured > 1e-4:
            warnings.warn(
                f"SubspaceNormaliser: {self.components} components keep only "
                f"{self.captured:.6f} of the training energy; samples will miss the rest",
                stacklevel=2,
            )
        return self

    def _basis(self) -> np.ndarray:
        if self.basis is None or not self.base.fitted:
            raise NormalisationError("SubspaceNormaliser is not fitted; call fit first")
        return self.basis

    def projections(self, x: Any, conditions: Any = None) -> Any:
        """Physical ``(n, C, *S)`` -> the normalised fields' projections on the basis ``(n, K)``,
        before any whitening (numpy or torch, as given)."""
        basis = self._basis()
        z = self.base.transform(x, conditions)
        flat = z.reshape(z.shape[0], -1)
        return flat @ _like(basis, flat)

    def transform(self, x: Any, conditions: Any = None) -> Any:
        """Physical ``(n, C, *S)`` -> coefficients ``(n, 1, K)`` (numpy or torch, as given)."""
        w = self.projections(x, conditions)
        if self.coefficient_normaliser is not None:
            w = self.coefficient_normaliser.transform(w[:, :, None], conditions)
        elif self.component_scale is not None:
            w = w / _like(self.component_scale, w)
        return w.reshape(w.shape[0], 1, self.components)

    def inverse(self, w: Any, conditions: Any = None) -> Any:
        """Coefficients ``(n, 1, K)`` (or ``(n, K)``) -> physical ``(n, C, *S)``."""
        basis = self._basis()
        w = _as_float(w)
        if tuple(w.shape[1:]) not in {(1, self.components), (self.components,)}:
            raise NormalisationError(
                f"coefficients have shape {tuple(w.shape)}; expected (n, 1, {self.components})"
            )
        w = w.reshape(w.shape[0], self.components)
        if self.coefficient_normaliser is not None:
            w = self.coefficient_normaliser.inverse(w[:, :, None], conditions)[:, :, 0]
        elif self.component_scale is not None:
            w = w * _like(self.component_scale, w)
        flat = w @ _like(basis.T, w)
        shape = self.field_shape
        assert shape is not None
        return self.base.inverse(flat.reshape(w.shape[0], *shape), conditions)

    def _raw_dict(self) -> dict[str, Any]:
        basis = self._basis()
        return {
            "format": _SUBSPACE_FORMAT,
            "components": self.components,
            "captured": self.captured,
            "base": self.base._raw_dict(),
            "basis": basis,
            **({"component_scale": self.component_scale} if self.whiten is True else {}),
            **(
                {"coefficient_normaliser": self.coefficient_normaliser._raw_dict()}
                if self.coefficient_normaliser is not None
                else {}
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-ready; arrays as nested lists)."""
        return _listify(self._raw_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubspaceNormaliser:
        """Inverse of :meth:`to_dict`."""
        required = {"components", "base", "basis"}
        allowed = required | {"format", "captured", "component_scale", "coefficient_normaliser"}
        if not isinstance(data, dict) or not required <= set(data):
            raise NormalisationError(f"a SubspaceNormaliser dict needs {sorted(required)}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise NormalisationError(f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        base_data = data["base"]
        kind = base_data.get("format") if isinstance(base_data, dict) else None
        base: FieldNormaliser | ConditionalNormaliser
        if kind == _CONDITIONAL_FORMAT:
            base = ConditionalNormaliser.from_dict(base_data)
        else:
            base = FieldNormaliser.from_dict(base_data)
        whiten: bool | str = "component_scale" in data
        if "coefficient_normaliser" in data:
            whiten = "conditional"
        normaliser = cls(base, int(data["components"]), whiten=whiten)
        if whiten == "conditional":
            normaliser.coefficient_normaliser = ConditionalNormaliser.from_dict(
                data["coefficient_normaliser"]
            )
        basis = np.asarray(data["basis"], dtype=float)
        shape = base.field_shape
        if (
            shape is None
            or basis.shape != (int(np.prod(shape)), normaliser.components)
            or not np.all(np.isfinite(basis))
            or not np.allclose(basis.T @ basis, np.eye(normaliser.components), atol=1e-8)
        ):
            raise NormalisationError("SubspaceNormaliser basis is inconsistent or not orthonormal")
        normaliser.basis = basis
        if normaliser.whiten is True:
            scale = np.asarray(data["component_scale"], dtype=float)
            if scale.shape != (normaliser.components,) or not np.all(scale > 0):
                raise NormalisationError(
                    f"SubspaceNormaliser component_scale has shape {scale.shape} or values <= 0; "
                    f"expected ({normaliser.components},) positive"
                )
            normaliser.component_scale = scale
        captured = data.get("captured")
        normaliser.captured = None if captured is None else float(captured)
        return normaliser


Normaliser = FieldNormaliser | ConditionalNormaliser | SubspaceNormaliser


def load_normaliser(path: str | Path) -> Normaliser:
    """Any normaliser, by the ``format`` recorded in the file (its arrays from
    ``<stem>.safetensors``, or from JSON lists in files of earlier versions)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise NormalisationError(f"normaliser file not found: {path}") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NormalisationError(f"{path}: not a readable normaliser file ({error})") from error
    kind = data.get("format") if isinstance(data, dict) else None
    if kind == _CONDITIONAL_FORMAT:
        return ConditionalNormaliser.load(path)
    if kind == _SUBSPACE_FORMAT:
        return SubspaceNormaliser.load(path)
    return FieldNormaliser.load(path)


@dataclass(frozen=True)
class ConditionEncoder(_JsonFile):
    """Maps each condition onto ``[-1, 1]`` over its design range (in ``log`` where log_scale).

    ``encode(p)_j = 2 (t(p_j) - t(low_j)) / (t(high_j) - t(low_j)) - 1`` with ``t = log`` for
    log-scale conditions and the identity otherwise. Values outside the range map outside
    ``[-1, 1]`` (extrapolation; see :meth:`check`).
    """

    _WHAT: ClassVar[str] = "condition encoder"
    _FORMAT: ClassVar[str] = _ENCODER_FORMAT

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
