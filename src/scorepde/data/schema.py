"""The HDF5 schema of a field data set (``scorepde.fields/1``), its writer and its reader.

Layout (``n`` fields, ``N`` grid points, ``k`` conditions, ``C`` channels; see docs/data.md):

- one data set per channel, named after it (battery: ``c``, ``phi``): ``(n, N)`` float64,
  attribute ``units``;
- the latent field, named after it (battery: ``porosity``): ``(n, N)`` float64, ``units``;
- ``conditions``: ``(n, k)`` float64, attributes ``names`` and ``units``;
- ``condition_index``: ``(n,)`` int64, the design point each field was simulated at;
- ``grid``: ``(N,)`` float64, ``units = "m"``;
- file attributes: ``schema``, ``problem``, ``channels``, ``channel_units``, ``latent_name``,
  ``latent_unit``, ``condition_names``, ``condition_units``, plus whatever else the writer
  passes (parameter set with units, seed, split, design, config YAML, provenance).

Per-sample data sets are chunked along ``n`` and gzip-compressed. Files are written atomically;
the reader checks everything before returning, so a caller gets a whole data set or a
:class:`DatasetError`, never a half-read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scorepde.fileio import atomic_path

__all__ = [
    "REQUIRED_ATTRIBUTES",
    "SCHEMA",
    "DatasetError",
    "FieldDataset",
    "group_by_condition",
    "read_attributes",
    "read_dataset",
    "write_dataset",
]

#: Schema name and major version written to (and required in) every file.
SCHEMA = "scorepde.fields/1"

#: File attributes the writer needs and the reader requires.
REQUIRED_ATTRIBUTES: tuple[str, ...] = (
    "problem",
    "channels",
    "channel_units",
    "latent_name",
    "latent_unit",
    "condition_names",
    "condition_units",
)

_CHUNK_ROWS = 256


class DatasetError(ValueError):
    """A file is missing, not HDF5, not a scorepde field data set, or inconsistent."""


@dataclass
class FieldDataset:
    """A field data set in memory, physical units throughout.

    Attributes:
        fields: ``(n, C, N)`` channels stacked in ``channels`` order (battery: c mol/m^3, phi V).
        latent: ``(n, N)`` the latent field (battery: porosity, dimensionless).
        conditions: ``(n, k)`` the condition of each field, columns ``condition_names``.
        condition_names, condition_units: ``(k,)`` names and units of the condition columns.
        condition_index: ``(n,)`` int64, index of the design point of each field.
        grid: ``(N,)`` metres.
        channels, channel_units: ``(C,)`` names and units of the channels.
        latent_name, latent_unit: name and unit of the latent field.
        attrs: every file attribute (plain Python values).
    """

    fields: np.ndarray
    latent: np.ndarray
    conditions: np.ndarray
    condition_names: tuple[str, ...]
    condition_index: np.ndarray
    grid: np.ndarray
    channels: tuple[str, ...]
    channel_units: tuple[str, ...] = ()
    condition_units: tuple[str, ...] = ()
    latent_name: str = "latent"
    latent_unit: str = "1"
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_shapes(
            fields=self.fields,
            latent=self.latent,
            conditions=self.conditions,
            condition_index=self.condition_index,
            grid=self.grid,
            channels=self.channels,
            condition_names=self.condition_names,
        )

    @property
    def n(self) -> int:
        """Number of fields."""
        return int(self.fields.shape[0])

    @property
    def n_points(self) -> int:
        """Number of grid points ``N``."""
        return int(self.grid.shape[0])

    @property
    def n_conditions(self) -> int:
        """Number of distinct design points present."""
        return int(np.unique(self.condition_index).size)

    def subset(self, indices: np.ndarray) -> FieldDataset:
        """The fields at ``indices`` (integer array or boolean mask) as a new data set."""
        indices = np.asarray(indices)
        return FieldDataset(
            fields=self.fields[indices],
            latent=self.latent[indices],
            conditions=self.conditions[indices],
            condition_names=self.condition_names,
            condition_index=self.condition_index[indices],
            grid=self.grid,
            channels=self.channels,
            channel_units=self.channel_units,
            condition_units=self.condition_units,
            latent_name=self.latent_name,
            latent_unit=self.latent_unit,
            attrs=dict(self.attrs),
        )


def _check_shapes(
    *,
    fields: np.ndarray,
    latent: np.ndarray,
    conditions: np.ndarray,
    condition_index: np.ndarray,
    grid: np.ndarray,
    channels: Sequence[str],
    condition_names: Sequence[str],
) -> None:
    n_channels, k = len(channels), len(condition_names)
    if grid.ndim != 1:
        raise DatasetError(f"grid has shape {grid.shape}; expected (N,)")
    n_points = grid.shape[0]
    n = fields.shape[0] if fields.ndim else -1
    expected = {
        "fields": (fields, (n, n_channels, n_points)),
        "latent": (latent, (n, n_points)),
        "conditions": (conditions, (n, k)),
        "condition_index": (condition_index, (n,)),
    }
    for name, (array, shape) in expected.items():
        if array.shape != shape:
            raise DatasetError(
                f"{name} has shape {array.shape}; expected {shape} "
                f"(n={n}, C={n_channels} channels {list(channels)}, N={n_points}, k={k})"
            )


def _plain(value: Any) -> Any:
    """HDF5 attribute value -> plain Python (str, int, float, bool, list)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attribute_value(key: str, value: Any) -> Any:
    """Plain Python value -> something h5py stores as an attribute."""
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            import h5py

            return np.array(value, dtype=h5py.string_dtype())
        return np.asarray(value)
    if value is None:
        return "null"
    if isinstance(value, str | bool | int | float | np.generic | np.ndarray):
        return value
    raise DatasetError(
        f"attribute {key!r} has type {type(value).__name__}; expected str, number, bool or a list"
    )


def write_dataset(
    path: str | Path, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]
) -> Path:
    """Write a field data set atomically in the ``scorepde.fields/1`` layout.

    Args:
        path: target ``.h5`` file; replaced atomically (readers see the old or the new file).
        arrays: one ``(n, N)`` array per channel and for the latent field (keyed by their
            names), ``conditions`` ``(n, k)``, ``condition_index`` ``(n,)``, ``grid`` ``(N,)`` m.
        attrs: file attributes; must hold ``REQUIRED_ATTRIBUTES`` (``channels``, ...). Values are
            str, numbers, bools or lists of them. ``schema`` is set by the writer.

    Raises:
        DatasetError: a required array/attribute is missing or shapes disagree (nothing is
            written then).
    """
    import h5py

    missing = [key for key in REQUIRED_ATTRIBUTES if key not in attrs]
    if missing:
        raise DatasetError(
            f"write_dataset: attrs lack {missing}; required: {list(REQUIRED_ATTRIBUTES)}"
        )
    channels = tuple(str(c) for c in attrs["channels"])
    latent_name = str(attrs["latent_name"])
    condition_names = tuple(str(c) for c in attrs["condition_names"])
    if not channels or len(attrs["channel_units"]) != len(channels):
        raise DatasetError(
            f"write_dataset: channels {list(channels)} and channel_units "
            f"{list(attrs['channel_units'])} must be non-empty and of equal length"
        )
    needed = [*channels, latent_name, "conditions", "condition_index", "grid"]
    absent = [key for key in needed if key not in arrays]
    if absent:
        raise DatasetError(f"write_dataset: arrays lack {absent}; required: {needed}")
    grid = np.asarray(arrays["grid"], dtype=float)
    channel_arrays = [np.asarray(arrays[c], dtype=float) for c in channels]
    shapes = {c: a.shape for c, a in zip(channels, channel_arrays, strict=True)}
    if len(set(shapes.values())) != 1:
        raise DatasetError(f"write_dataset: channel arrays disagree in shape: {shapes}")
    fields = np.stack(channel_arrays, axis=1)
    latent = np.asarray(arrays[latent_name], dtype=float)
    conditions = np.asarray(arrays["conditions"], dtype=float)
    condition_index = np.asarray(arrays["condition_index"])
    if condition_index.dtype.kind not in "iu":
        raise DatasetError(f"condition_index has dtype {condition_index.dtype}; expected integers")
    _check_shapes(
        fields=fields,
        latent=latent,
        conditions=conditions,
        condition_index=condition_index,
        grid=grid,
        channels=channels,
        condition_names=condition_names,
    )
    n, n_points = fields.shape[0], grid.shape[0]
    chunk_rows = max(1, min(n, _CHUNK_ROWS))
    compress = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["schema"] = SCHEMA
            for key, value in attrs.items():
                if key == "schema":
                    continue
                handle.attrs[key] = _attribute_value(key, value)
            for ch, (name, unit) in enumerate(zip(channels, attrs["channel_units"], strict=True)):
                data = handle.create_dataset(
                    name, data=fields[:, ch], chunks=(chunk_rows, n_points), **compress
                )
                data.attrs["units"] = str(unit)
            data = handle.create_dataset(
                latent_name, data=latent, chunks=(chunk_rows, n_points), **compress
            )
            data.attrs["units"] = str(attrs["latent_unit"])
            data = handle.create_dataset(
                "conditions",
                data=conditions,
                chunks=(chunk_rows, conditions.shape[1]),
                **compress,
            )
            data.attrs["names"] = _attribute_value("names", list(condition_names))
            data.attrs["units"] = _attribute_value("units", list(attrs["condition_units"]))
            handle.create_dataset(
                "condition_index",
                data=condition_index.astype(np.int64),
                chunks=(chunk_rows,),
                **compress,
            )
            data = handle.create_dataset("grid", data=grid)
            data.attrs["units"] = "m"
    return path


def _open(path: str | Path):
    import h5py

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"data set not found: {path}")
    if not path.is_file():
        raise DatasetError(f"data set path is not a file: {path}")
    if not h5py.is_hdf5(path):
        raise DatasetError(f"{path} is not an HDF5 file (expected a {SCHEMA} data set)")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise DatasetError(f"{path}: cannot open as HDF5 ({error})") from error


def _check_schema(path: Path, attrs: Mapping[str, Any]) -> None:
    schema = attrs.get("schema")
    if schema is None:
        raise DatasetError(
            f"{path} is an HDF5 file but not a scorepde data set (no 'schema' attribute; "
            f"expected {SCHEMA!r})"
        )
    if schema != SCHEMA:
        raise DatasetError(f"{path} has schema {schema!r}; this version reads {SCHEMA!r}")
    missing = [key for key in REQUIRED_ATTRIBUTES if key not in attrs]
    if missing:
        raise DatasetError(f"{path}: file attributes {missing} are missing (schema {SCHEMA})")


def read_attributes(path: str | Path) -> dict[str, Any]:
    """The file attributes of a ``scorepde.fields/1`` file as plain Python values.

    Cheap (no array is read). Raises :class:`DatasetError` for a missing, non-HDF5 or foreign
    file.
    """
    with _open(path) as handle:
        attrs = {key: _plain(value) for key, value in handle.attrs.items()}
    _check_schema(Path(path), attrs)
    return attrs


def read_dataset(path: str | Path) -> FieldDataset:
    """Read a whole ``scorepde.fields/1`` file into memory.

    Raises:
        DatasetError: the file is missing, not HDF5, not a scorepde data set (no schema
            attribute, missing data sets) or has inconsistent shapes.
    """
    import h5py

    path = Path(path)
    with _open(path) as handle:
        attrs = {key: _plain(value) for key, value in handle.attrs.items()}
        _check_schema(path, attrs)
        channels = tuple(str(c) for c in attrs["channels"])
        latent_name = str(attrs["latent_name"])
        needed = [*channels, latent_name, "conditions", "condition_index", "grid"]
        absent = [key for key in needed if not isinstance(handle.get(key), h5py.Dataset)]
        if absent:
            raise DatasetError(f"{path}: data sets {absent} are missing (schema {SCHEMA})")
        try:
            grid = handle["grid"][()]
            channel_arrays = [handle[c][()] for c in channels]
            latent = handle[latent_name][()]
            conditions = handle["conditions"][()]
            condition_index = handle["condition_index"][()]
        except (OSError, ValueError, KeyError) as error:
            raise DatasetError(f"{path}: cannot read the arrays ({error})") from error
    shapes = {c: a.shape for c, a in zip(channels, channel_arrays, strict=True)}
    if len(set(shapes.values())) != 1:
        raise DatasetError(f"{path}: channel data sets disagree in shape: {shapes}")
    fields = np.stack(channel_arrays, axis=1) if channel_arrays else np.empty((0, 0, 0))
    try:
        return FieldDataset(
            fields=fields,
            latent=latent,
            conditions=conditions,
            condition_names=tuple(str(c) for c in attrs["condition_names"]),
            condition_index=condition_index,
            grid=grid,
            channels=channels,
            channel_units=tuple(str(u) for u in attrs["channel_units"]),
            condition_units=tuple(str(u) for u in attrs["condition_units"]),
            latent_name=latent_name,
            latent_unit=str(attrs["latent_unit"]),
            attrs=attrs,
        )
    except DatasetError as error:
        raise DatasetError(f"{path}: inconsistent shapes: {error}") from error


def group_by_condition(dataset: FieldDataset) -> dict[int, np.ndarray]:
    """Design-point index -> the indices ``(m,)`` of its fields, in increasing index order."""
    order = np.argsort(dataset.condition_index, kind="stable")
    keys, starts = np.unique(dataset.condition_index[order], return_index=True)
    groups = np.split(order, starts[1:])
    return {int(key): group for key, group in zip(keys, groups, strict=True)}
