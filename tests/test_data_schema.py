"""The HDF5 schema: round trip, and a clear DatasetError for every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from scorepde.data.schema import (
    SCHEMA,
    DatasetError,
    FieldDataset,
    group_by_condition,
    read_attributes,
    read_dataset,
    upgrade_dataset,
    write_dataset,
)

N, K = 7, 3


def synthetic(n_conditions: int = 3, per: int = 2, seed: int = 0):
    """Arrays and attributes of a small, made-up data set (no simulator needed)."""
    rng = np.random.default_rng(seed)
    n = n_conditions * per
    arrays = {
        "c": rng.normal(1000.0, 10.0, (n, N)),
        "phi": rng.normal(0.0, 0.01, (n, N)),
        "porosity": rng.uniform(0.2, 0.5, (n, N)),
        "conditions": np.repeat(rng.uniform(0.1, 1.0, (n_conditions, K)), per, axis=0),
        "condition_index": np.repeat(np.arange(n_conditions), per),
        "grid": np.linspace(0.0, 1e-4, N),
    }
    attrs = {
        "problem": "battery",
        "channels": ["c", "phi"],
        "channel_units": ["mol/m^3", "V"],
        "latent_name": "porosity",
        "latent_unit": "1",
        "condition_names": ["U0", "l", "F_right"],
        "condition_units": ["V", "L", "A/m^2"],
        "seed": 3,
        "parameter.c_right": 1000.0,
        "config": "problem: battery\n",
    }
    return arrays, attrs


def test_round_trip(tmp_path: Path) -> None:
    arrays, attrs = synthetic()
    path = write_dataset(tmp_path / "d.h5", arrays, attrs)
    data = read_dataset(path)
    np.testing.assert_array_equal(data.fields[:, 0], arrays["c"])
    np.testing.assert_array_equal(data.fields[:, 1], arrays["phi"])
    np.testing.assert_array_equal(data.latent, arrays["porosity"])
    np.testing.assert_array_equal(data.conditions, arrays["conditions"])
    np.testing.assert_array_equal(data.condition_index, arrays["condition_index"])
    np.testing.assert_array_equal(data.grid, arrays["grid"])
    assert data.channels == ("c", "phi") and data.condition_names == ("U0", "l", "F_right")
    assert data.channel_units == ("mol/m^3", "V") and data.latent_name == "porosity"
    assert data.attrs["schema"] == SCHEMA and data.attrs["seed"] == 3
    assert read_attributes(path)["parameter.c_right"] == 1000.0
    with h5py.File(path) as handle:
        assert list(handle["conditions"].attrs["names"]) == ["U0", "l", "F_right"]
        assert handle["c"].compression == "gzip" and handle["c"].chunks is not None
        assert handle["coordinates/x"].attrs["units"] == "m"
        assert list(handle.attrs["axis_names"]) == ["x"]


def _write_version_1(path: Path, arrays: dict, attrs: dict) -> None:
    """A file in the layout of schema 1 (one 1-D ``grid`` data set), as earlier releases wrote."""
    with h5py.File(path, "w") as handle:
        handle.attrs["schema"] = "scorepde.fields/1"
        for key, value in attrs.items():
            handle.attrs[key] = value
        for key, value in arrays.items():
            handle.create_dataset(key, data=value)


def test_version_1_files_still_read_and_upgrade(tmp_path: Path) -> None:
    arrays, attrs = synthetic()
    old = tmp_path / "v1.h5"
    _write_version_1(old, arrays, attrs)
    data = read_dataset(old)
    np.testing.assert_array_equal(data.grid, arrays["grid"])
    np.testing.assert_array_equal(data.fields[:, 1], arrays["phi"])
    assert data.axis_names == ("x",) and data.spec.grid_shape == (N,)
    new = upgrade_dataset(old, tmp_path / "v2.h5")
    upgraded = read_dataset(new)
    assert upgraded.attrs["schema"] == SCHEMA
    np.testing.assert_array_equal(upgraded.fields, data.fields)
    np.testing.assert_array_equal(upgraded.grid, data.grid)
    assert upgraded.attrs["seed"] == 3


def test_unknown_schema_version_is_refused_naming_the_readable_ones(tmp_path: Path) -> None:
    arrays, attrs = synthetic()
    path = tmp_path / "v9.h5"
    _write_version_1(path, arrays, attrs)
    with h5py.File(path, "a") as handle:
        handle.attrs["schema"] = "scorepde.fields/9"
    with pytest.raises(DatasetError, match=r"fields/9.*fields/2"):
        read_dataset(path)


def test_two_dimensional_round_trip(tmp_path: Path) -> None:
    """Fields ``(n, C, Ny, Nx)`` with one coordinate data set per axis, in array order."""
    rng = np.random.default_rng(1)
    ny, nx, n = 4, 6, 5
    y, x = (np.arange(ny) + 0.5) / ny, (np.arange(nx) + 0.5) / nx
    arrays = {
        "log_k": rng.normal(size=(n, ny, nx)),
        "u": rng.uniform(size=(n, ny, nx)),
        "g": rng.normal(size=(n, ny, nx)),
        "conditions": rng.uniform(0.1, 1.0, (n, 2)),
        "condition_index": np.arange(n),
        "coordinates": (y, x),
    }
    attrs = {
        "problem": "toy2d",
        "channels": ["log_k", "u"],
        "channel_units": ["1", "1"],
        "latent_name": "g",
        "latent_unit": "1",
        "condition_names": ["l", "sigma"],
        "condition_units": ["1", "1"],
        "axis_names": ["y", "x"],
        "axis_units": ["1", "1"],
        "fidelity": 6.0,
    }
    data = read_dataset(write_dataset(tmp_path / "d2.h5", arrays, attrs))
    assert data.fields.shape == (n, 2, ny, nx) and data.grid_shape == (ny, nx)
    np.testing.assert_array_equal(data.fields[:, 0], arrays["log_k"])
    np.testing.assert_array_equal(data.coordinates[0], y)
    np.testing.assert_array_equal(data.coordinates[1], x)
    spec = data.spec
    assert spec.axis_names == ("y", "x") and spec.axis_units == ("1", "1")
    assert spec.sample_shape == (2, ny, nx) and spec.fidelity == 6.0
    assert data.subset(np.array([0, 2])).spec == spec
    bad = dict(arrays, u=rng.uniform(size=(n, ny, nx + 1)))
    with pytest.raises(DatasetError, match="disagree in shape"):
        write_dataset(tmp_path / "bad.h5", bad, attrs)
    with pytest.raises(DatasetError, match="axis_names"):
        write_dataset(tmp_path / "bad.h5", arrays, dict(attrs, axis_names=["x"]))


def test_group_by_condition_and_subset(tmp_path: Path) -> None:
    arrays, attrs = synthetic(n_conditions=3, per=2)
    order = np.array([5, 0, 3, 1, 4, 2])
    shuffled = {k: (v[order] if k != "grid" else v) for k, v in arrays.items()}
    data = read_dataset(write_dataset(tmp_path / "d.h5", shuffled, attrs))
    groups = group_by_condition(data)
    assert sorted(groups) == [0, 1, 2]
    for key, indices in groups.items():
        assert np.all(data.condition_index[indices] == key) and len(indices) == 2
    assert data.subset(groups[1]).n == 2 and data.n_conditions == 3


def test_writer_refuses_inconsistent_arrays_and_writes_nothing(tmp_path: Path) -> None:
    arrays, attrs = synthetic()
    arrays["phi"] = arrays["phi"][:-1]
    target = tmp_path / "bad.h5"
    with pytest.raises(DatasetError, match=r"channel arrays disagree in shape"):
        write_dataset(target, arrays, attrs)
    arrays, attrs = synthetic()
    del attrs["channels"]
    with pytest.raises(DatasetError, match=r"attrs lack \['channels'\]"):
        write_dataset(target, arrays, attrs)
    assert list(tmp_path.iterdir()) == []


def test_missing_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="data set not found"):
        read_dataset(tmp_path / "absent.h5")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x00\x01 definitely not HDF5")
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        read_dataset(garbage)
    with pytest.raises(DatasetError, match="not a file"):
        read_dataset(tmp_path)


def test_foreign_and_incomplete_hdf5_files(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle["x"] = np.zeros(3)
    with pytest.raises(DatasetError, match="no 'schema' attribute"):
        read_dataset(foreign)

    arrays, attrs = synthetic()
    path = write_dataset(tmp_path / "d.h5", arrays, attrs)
    with h5py.File(path, "a") as handle:
        del handle["porosity"]
    with pytest.raises(DatasetError, match=r"data sets \['porosity'\] are missing"):
        read_dataset(path)

    path = write_dataset(tmp_path / "e.h5", arrays, attrs)
    with h5py.File(path, "a") as handle:
        del handle["condition_index"]
        handle["condition_index"] = np.arange(2)
    with pytest.raises(DatasetError, match=r"inconsistent shapes.*condition_index"):
        read_dataset(path)

    path = write_dataset(tmp_path / "f.h5", arrays, attrs)
    with h5py.File(path, "a") as handle:
        handle.attrs["schema"] = "other.fields/9"
    with pytest.raises(DatasetError, match=r"has schema 'other\.fields/9'"):
        read_dataset(path)


def test_field_dataset_checks_shapes() -> None:
    # the latent field may live on a grid of its own (schema 2), but one draw per field
    with pytest.raises(DatasetError, match="latent has shape"):
        FieldDataset(
            fields=np.zeros((2, 2, 5)),
            latent=np.zeros((3, 5)),
            conditions=np.zeros((2, 3)),
            condition_names=("a", "b", "c"),
            condition_index=np.zeros(2, dtype=int),
            grid=np.zeros(5),
            channels=("c", "phi"),
        )
