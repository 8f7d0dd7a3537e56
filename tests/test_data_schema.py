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
        assert handle["grid"].attrs["units"] == "m"


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
    with pytest.raises(DatasetError, match="latent has shape"):
        FieldDataset(
            fields=np.zeros((2, 2, 5)),
            latent=np.zeros((2, 4)),
            conditions=np.zeros((2, 3)),
            condition_names=("a", "b", "c"),
            condition_index=np.zeros(2, dtype=int),
            grid=np.zeros(5),
            channels=("c", "phi"),
        )
