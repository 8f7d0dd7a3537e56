"""The HDF5 schema of a field data set (``scorepde.fields/2``), its writer and its reader.

Layout (``n`` fields on a grid of shape ``S`` (``(N,)`` in 1-D, ``(Ny, Nx)`` in 2-D), ``k``
conditions, ``C`` channels; see docs/data.md):

- one data set per channel, named after it (battery: ``c``, ``phi``): ``(n, *S)`` float64,
  attribute ``units``;
- the latent field, named after it (battery: ``porosity``): ``(n, *L)`` float64, ``units``;
- ``conditions``: ``(n, k)`` float64, attributes ``names`` and ``units``;
- ``condition_index``: ``(n,)`` int64, the design point each field was simulated at;
- ``coordinates/<axis>``: one ``(S_a,)`` float64 data set per grid axis, named after the axis,
  attribute ``units``; the file attribute ``axis_names`` gives their order (array-axis order);
- file attributes: ``schema``, ``problem``, ``channels``, ``channel_units``, ``latent_name``,
  ``latent_unit``, ``condition_names``, ``condition_units``, ``axis_names``, ``axis_units``,
  optionally ``fidelity``, plus whatever else the writer passes (parameter set with units,
  seed, split, design, config YAML, provenance).

Version 1 files (``scorepde.fields/1``: one 1-D ``grid`` data set, axis ``x``) are still read;
:func:`upgrade_dataset` rewrites one as version 2.

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

from scorepde.fields import FieldSpec
from scorepde.fileio import atomic_path

__all__ = [
    "READABLE_SCHEMAS",
    "REQUIRED_ATTRIBUTES",
    "SCHEMA",
    "DatasetError",
    "FieldDataset",
    "dataset_arrays",
    "default_axis_names",
    "group_by_condition",
    "read_attributes",
    "read_dataset",
    "upgrade_dataset",
    "write_dataset",
]

#: Schema name and major version written to every file.
SCHEMA = "scorepde.fields/2"
#: Version 1: one 1-D ``grid`` data set (the battery's files before fields of any rank).
SCHEMA_V1 = "scorepde.fields/1"
#: Schemas the reader accepts.
READABLE_SCHEMAS = (SCHEMA, SCHEMA_V1)

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


def default_axis_names(rank: int) -> tuple[str, ...]:
    """``("x",)``, ``("y", "x")`` or ``("z", "y", "x")``: axis names in array order."""
    if not 1 <= rank <= 3:
        raise DatasetError(f"a grid of rank {rank} is not allowed; expected 1, 2 or 3 axes")
    return ("z", "y", "x")[3 - rank :]


def _as_coordinates(grid: Any) -> tuple[np.ndarray, ...]:
    """A 1-D grid array or a sequence of per-axis coordinate arrays -> tuple of 1-D arrays."""
    if isinstance(grid, np.ndarray) or (
        isinstance(grid, Sequence) and grid and np.ndim(grid[0]) == 0
    ):
        array = np.asarray(grid, dtype=float)
        if array.ndim != 1:
            raise DatasetError(
                f"grid has shape {array.shape}; expected (N,) or one coordinate array per axis"
            )
        return (array,)
    return tuple(np.asarray(axis, dtype=float) for axis in grid)


@dataclass
class FieldDataset:
    """A field data set in memory, physical units throughout.

    Attributes:
        fields: ``(n, C, *S)`` channels stacked in ``channels`` order (battery: c mol/m^3,
            phi V; ``S = (N,)``).
        latent: ``(n, *L)`` the latent field (battery: porosity, dimensionless).
        conditions: ``(n, k)`` the condition of each field, columns ``condition_names``.
        condition_names, condition_units: ``(k,)`` names and units of the condition columns.
        condition_index: ``(n,)`` int64, index of the design point of each field.
        grid: the grid coordinates: ``(N,)`` for a 1-D grid, or one coordinate array per
            axis (a tuple) for any rank; normalised to that tuple in :attr:`coordinates`.
        channels, channel_units: ``(C,)`` names and units of the channels.
        latent_name, latent_unit: name and unit of the latent field.
        axis_names, axis_units: names and units of the grid axes (default ``x`` / ``y, x``;
            metres).
        fidelity: optional resolution label of the data.
        attrs: every file attribute (plain Python values).
    """

    fields: np.ndarray
    latent: np.ndarray
    conditions: np.ndarray
    condition_names: tuple[str, ...]
    condition_index: np.ndarray
    grid: Any
    channels: tuple[str, ...]
    channel_units: tuple[str, ...] = ()
    condition_units: tuple[str, ...] = ()
    latent_name: str = "latent"
    latent_unit: str = "1"
    attrs: dict[str, Any] = field(default_factory=dict)
    axis_names: tuple[str, ...] = ()
    axis_units: tuple[str, ...] = ()
    fidelity: float | None = None

    def __post_init__(self) -> None:
        self.coordinates = _as_coordinates(self.grid)
        if len(self.coordinates) == 1:
            self.grid = self.coordinates[0]
        self.axis_names = tuple(self.axis_names) or default_axis_names(len(self.coordinates))
        self.axis_units = tuple(self.axis_units) or ("m",) * len(self.coordinates)
        if len(self.axis_names) != len(self.coordinates):
            raise DatasetError(
                f"axis_names {list(self.axis_names)} do not match {len(self.coordinates)} grid axes"
            )
        _check_shapes(
            fields=self.fields,
            latent=self.latent,
            conditions=self.conditions,
            condition_index=self.condition_index,
            coordinates=self.coordinates,
            channels=self.channels,
            condition_names=self.condition_names,
        )

    @property
    def spec(self) -> FieldSpec:
        """The field specification (channels, units, grid) of these fields."""
        units = self.channel_units or ("1",) * len(self.channels)
        return FieldSpec(
            channels=tuple(self.channels),
            channel_units=tuple(units),
            coordinates=self.coordinates,
            axis_names=self.axis_names,
            axis_units=self.axis_units,
            fidelity=self.fidelity,
        )

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """``S``: points along each grid axis."""
        return tuple(int(axis.shape[0]) for axis in self.coordinates)

    @property
    def n(self) -> int:
        """Number of fields."""
        return int(self.fields.shape[0])

    @property
    def n_points(self) -> int:
        """Number of grid points ``prod(S)`` (``N`` in 1-D)."""
        return int(np.prod(self.grid_shape))

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
            axis_names=self.axis_names,
            axis_units=self.axis_units,
            fidelity=self.fidelity,
        )


def _check_shapes(
    *,
    fields: np.ndarray,
    latent: np.ndarray,
    conditions: np.ndarray,
    condition_index: np.ndarray,
    coordinates: tuple[np.ndarray, ...],
    channels: Sequence[str],
    condition_names: Sequence[str],
) -> None:
    n_channels, k = len(channels), len(condition_names)
    for axis in coordinates:
        if axis.ndim != 1 or axis.size < 1:
            raise DatasetError(f"a grid axis has shape {axis.shape}; expected (S_a,) with S_a >= 1")
    grid_shape = tuple(axis.shape[0] for axis in coordinates)
    n = fields.shape[0] if fields.ndim else -1
    expected = {
        "fields": (fields, (n, n_channels, *grid_shape)),
        "conditions": (conditions, (n, k)),
        "condition_index": (condition_index, (n,)),
    }
    for name, (array, shape) in expected.items():
        if array.shape != shape:
            raise DatasetError(
                f"{name} has shape {array.shape}; expected {shape} "
                f"(n={n}, C={n_channels} channels {list(channels)}, grid {grid_shape}, k={k})"
            )
    if latent.ndim < 2 or latent.shape[0] != n:
        raise DatasetError(f"latent has shape {latent.shape}; expected (n={n}, *latent_shape)")


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
    """Write a field data set atomically in the ``scorepde.fields/2`` layout.

    Args:
        path: target ``.h5`` file; replaced atomically (readers see the old or the new file).
        arrays: one ``(n, *S)`` array per channel and ``(n, *L)`` for the latent field (keyed
            by their names), ``conditions`` ``(n, k)``, ``condition_index`` ``(n,)``, and the
            grid: ``grid`` ``(N,)`` (1-D) or ``coordinates``, one ``(S_a,)`` array per axis.
        attrs: file attributes; must hold ``REQUIRED_ATTRIBUTES`` (``channels``, ...). Values are
            str, numbers, bools or lists of them. ``schema`` is set by the writer; ``axis_names``
            (default ``x`` / ``y, x``), ``axis_units`` (default metres) and ``fidelity`` are
            optional.

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
    grid_key = "coordinates" if "coordinates" in arrays else "grid"
    needed = [*channels, latent_name, "conditions", "condition_index", grid_key]
    absent = [key for key in needed if key not in arrays]
    if absent:
        raise DatasetError(f"write_dataset: arrays lack {absent}; required: {needed}")
    coordinates = _as_coordinates(arrays[grid_key])
    axis_names = tuple(str(a) for a in attrs.get("axis_names") or ()) or default_axis_names(
        len(coordinates)
    )
    axis_units = tuple(str(u) for u in attrs.get("axis_units") or ()) or ("m",) * len(coordinates)
    if len(axis_names) != len(coordinates) or len(axis_units) != len(coordinates):
        raise DatasetError(
            f"write_dataset: axis_names {list(axis_names)} / axis_units {list(axis_units)} do "
            f"not match {len(coordinates)} grid axes"
        )
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
        coordinates=coordinates,
        channels=channels,
        condition_names=condition_names,
    )
    n = fields.shape[0]
    chunk_rows = max(1, min(n, _CHUNK_ROWS))
    compress = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["schema"] = SCHEMA
            for key, value in attrs.items():
                if key in ("schema", "axis_names", "axis_units"):
                    continue
                handle.attrs[key] = _attribute_value(key, value)
            handle.attrs["axis_names"] = _attribute_value("axis_names", list(axis_names))
            handle.attrs["axis_units"] = _attribute_value("axis_units", list(axis_units))
            for ch, (name, unit) in enumerate(zip(channels, attrs["channel_units"], strict=True)):
                data = handle.create_dataset(
                    name, data=fields[:, ch], chunks=(chunk_rows, *fields.shape[2:]), **compress
                )
                data.attrs["units"] = str(unit)
            data = handle.create_dataset(
                latent_name, data=latent, chunks=(chunk_rows, *latent.shape[1:]), **compress
            )
            data.attrs["units"] = str(attrs["latent_unit"])
            data = handle.create_dataset(
                "conditions",
                data=conditions,
                chunks=(chunk_rows, max(1, conditions.shape[1])),
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
            group = handle.create_group("coordinates")
            for name, unit, axis in zip(axis_names, axis_units, coordinates, strict=True):
                data = group.create_dataset(name, data=axis)
                data.attrs["units"] = unit
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
    if schema not in READABLE_SCHEMAS:
        raise DatasetError(
            f"{path} has schema {schema!r}; this version reads {list(READABLE_SCHEMAS)}"
        )
    missing = [key for key in REQUIRED_ATTRIBUTES if key not in attrs]
    if missing:
        raise DatasetError(f"{path}: file attributes {missing} are missing (schema {schema})")


def read_attributes(path: str | Path) -> dict[str, Any]:
    """The file attributes of a ``scorepde.fields`` file as plain Python values.

    Cheap (no array is read). Raises :class:`DatasetError` for a missing, non-HDF5 or foreign
    file.
    """
    with _open(path) as handle:
        attrs = {key: _plain(value) for key, value in handle.attrs.items()}
    _check_schema(Path(path), attrs)
    return attrs


def _read_coordinates(handle: Any, path: Path, attrs: Mapping[str, Any]) -> tuple[Any, ...]:
    """``(coordinates, axis_names, axis_units)`` of a version 1 or 2 file."""
    import h5py

    if attrs["schema"] == SCHEMA_V1:
        if not isinstance(handle.get("grid"), h5py.Dataset):
            raise DatasetError(f"{path}: data set 'grid' is missing (schema {SCHEMA_V1})")
        return (handle["grid"][()],), ("x",), ("m",)
    names = tuple(str(a) for a in attrs.get("axis_names") or ())
    group = handle.get("coordinates")
    if not names or not isinstance(group, h5py.Group):
        raise DatasetError(f"{path}: the grid ('coordinates' group, 'axis_names') is missing")
    absent = [name for name in names if not isinstance(group.get(name), h5py.Dataset)]
    if absent:
        raise DatasetError(f"{path}: coordinate data sets {absent} are missing")
    units = tuple(str(u) for u in attrs.get("axis_units") or ()) or ("m",) * len(names)
    return tuple(group[name][()] for name in names), names, units


def read_dataset(path: str | Path) -> FieldDataset:
    """Read a whole ``scorepde.fields`` file (version 2, or version 1) into memory.

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
        needed = [*channels, latent_name, "conditions", "condition_index"]
        absent = [key for key in needed if not isinstance(handle.get(key), h5py.Dataset)]
        if absent:
            raise DatasetError(f"{path}: data sets {absent} are missing (schema {attrs['schema']})")
        try:
            coordinates, axis_names, axis_units = _read_coordinates(handle, path, attrs)
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
    fidelity = attrs.get("fidelity")
    try:
        return FieldDataset(
            fields=fields,
            latent=latent,
            conditions=conditions,
            condition_names=tuple(str(c) for c in attrs["condition_names"]),
            condition_index=condition_index,
            grid=coordinates,
            channels=channels,
            channel_units=tuple(str(u) for u in attrs["channel_units"]),
            condition_units=tuple(str(u) for u in attrs["condition_units"]),
            latent_name=latent_name,
            latent_unit=str(attrs["latent_unit"]),
            attrs=attrs,
            axis_names=axis_names,
            axis_units=axis_units,
            fidelity=None if fidelity in (None, "null") else float(fidelity),
        )
    except DatasetError as error:
        raise DatasetError(f"{path}: inconsistent shapes: {error}") from error


def dataset_arrays(dataset: FieldDataset) -> dict[str, Any]:
    """The ``arrays`` argument of :func:`write_dataset` for an in-memory data set."""
    arrays: dict[str, Any] = {
        name: dataset.fields[:, ch] for ch, name in enumerate(dataset.channels)
    }
    arrays[dataset.latent_name] = dataset.latent
    arrays["conditions"] = dataset.conditions
    arrays["condition_index"] = dataset.condition_index
    arrays["coordinates"] = dataset.coordinates
    return arrays


def upgrade_dataset(source: str | Path, target: str | Path | None = None) -> Path:
    """Rewrite a ``scorepde.fields/1`` file as ``scorepde.fields/2`` (atomically; ``target``
    defaults to ``source``, replaced in place). Every array and attribute is kept."""
    dataset = read_dataset(source)
    attrs = {k: v for k, v in dataset.attrs.items() if k != "schema"}
    attrs["axis_names"] = list(dataset.axis_names)
    attrs["axis_units"] = list(dataset.axis_units)
    return write_dataset(target if target is not None else source, dataset_arrays(dataset), attrs)


def group_by_condition(dataset: FieldDataset) -> dict[int, np.ndarray]:
    """Design-point index -> the indices ``(m,)`` of its fields, in increasing index order."""
    order = np.argsort(dataset.condition_index, kind="stable")
    keys, starts = np.unique(dataset.condition_index[order], return_index=True)
    groups = np.split(order, starts[1:])
    return {int(key): group for key, group in zip(keys, groups, strict=True)}
