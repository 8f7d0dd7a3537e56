"""Campaigns: reproducible, independent of chunking and workers, resumable, refusing conflicts.

Kept tiny (4 conditions x 3 draws on the default 100-point grid) so the file runs in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_campaign
from scorepde.configuration import from_dict, to_dict
from scorepde.data import campaign
from scorepde.data.campaign import (
    CampaignError,
    SimulationConfig,
    config_from_attributes,
    parts_folder,
    simulate_campaign,
)
from scorepde.data.schema import FieldDataset, read_attributes, read_dataset


def assert_same_data(a: FieldDataset, b: FieldDataset) -> None:
    for name in ("fields", "latent", "conditions", "condition_index", "grid"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> FieldDataset:
    """The uninterrupted run that the other runs must reproduce exactly."""
    out = tmp_path_factory.mktemp("reference") / "ref.h5"
    return read_dataset(simulate_campaign(tiny_campaign(), out, progress=False))


def test_output_layout_and_provenance(reference: FieldDataset) -> None:
    assert reference.fields.shape == (12, 2, 100)
    np.testing.assert_array_equal(reference.condition_index, np.repeat(np.arange(4), 3))
    attrs = reference.attrs
    assert attrs["schema"] == "scorepde.fields/2" and attrs["problem"] == "battery"
    assert attrs["seed"] == 5 and attrs["split"] == "train" and attrs["per_condition"] == 3
    assert "git_revision" in attrs and "package_version" in attrs and "created_utc" in attrs
    assert config_from_attributes(attrs) == tiny_campaign()


def test_same_seed_same_arrays_and_chunking_does_not_matter(
    tmp_path: Path, reference: FieldDataset
) -> None:
    again = read_dataset(simulate_campaign(tiny_campaign(), tmp_path / "a.h5", progress=False))
    one_chunk = read_dataset(
        simulate_campaign(tiny_campaign(chunk_conditions=4), tmp_path / "b.h5", progress=False)
    )
    assert_same_data(again, reference)
    assert_same_data(one_chunk, reference)
    other = read_dataset(
        simulate_campaign(tiny_campaign(seed=6), tmp_path / "c.h5", progress=False)
    )
    assert not np.array_equal(other.fields, reference.fields)


def test_two_workers_give_identical_output(tmp_path: Path, reference: FieldDataset) -> None:
    out = simulate_campaign(
        tiny_campaign(workers=2, chunk_conditions=2), tmp_path / "w.h5", progress=False
    )
    assert_same_data(read_dataset(out), reference)


def test_train_and_test_splits_differ(tmp_path: Path, reference: FieldDataset) -> None:
    test = read_dataset(
        simulate_campaign(tiny_campaign(split="test"), tmp_path / "t.h5", progress=False)
    )
    shared = (reference.conditions[:, None, :] == test.conditions[None, :, :]).all(axis=2)
    assert not shared.any()


def test_resume_after_a_crash_reproduces_the_uninterrupted_run(
    tmp_path: Path, reference: FieldDataset, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    out = tmp_path / "crash.h5"
    real_run_chunk = campaign._run_chunk
    calls = {"n": 0}

    def crash_after_two(task):
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated crash")
        calls["n"] += 1
        return real_run_chunk(task)

    monkeypatch.setattr(campaign, "_run_chunk", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        simulate_campaign(tiny_campaign(), out, progress=False)
    parts = parts_folder(out)
    assert not out.exists()
    assert sorted(p.name for p in parts.iterdir()) == [
        "chunk_00000.npz",
        "chunk_00001.npz",
        "manifest.json",
    ]
    monkeypatch.setattr(campaign, "_run_chunk", real_run_chunk)
    simulate_campaign(tiny_campaign(), out, progress=True)
    assert "resuming: 2/4 chunks done" in capsys.readouterr().err
    assert not parts.exists()
    assert_same_data(read_dataset(out), reference)


def test_unreadable_chunk_is_reported_and_simulated_again(
    tmp_path: Path, reference: FieldDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "corrupt.h5"
    real_run_chunk = campaign._run_chunk

    def stop_before_last(task):
        if task.start == 3:
            raise RuntimeError("stop")
        return real_run_chunk(task)

    monkeypatch.setattr(campaign, "_run_chunk", stop_before_last)
    with pytest.raises(RuntimeError, match="stop"):
        simulate_campaign(tiny_campaign(), out, progress=False)
    monkeypatch.setattr(campaign, "_run_chunk", real_run_chunk)
    broken = parts_folder(out) / "chunk_00001.npz"
    broken.write_bytes(b"not an npz archive")
    with pytest.warns(RuntimeWarning, match=r"chunk_00001\.npz is unreadable"):
        simulate_campaign(tiny_campaign(), out, progress=False)
    assert_same_data(read_dataset(out), reference)


def test_parts_of_another_config_are_refused(
    tmp_path: Path, reference: FieldDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "conflict.h5"
    real_run_chunk = campaign._run_chunk

    def crash(task):
        if task.start > 0:
            raise RuntimeError("stop")
        return real_run_chunk(task)

    monkeypatch.setattr(campaign, "_run_chunk", crash)
    with pytest.raises(RuntimeError):
        simulate_campaign(tiny_campaign(per_condition=2), out, progress=False)
    monkeypatch.setattr(campaign, "_run_chunk", real_run_chunk)
    with pytest.raises(CampaignError, match=r"per_condition: 2 there, 3 requested.*--overwrite"):
        simulate_campaign(tiny_campaign(), out, progress=False)
    with pytest.raises(CampaignError, match="chunk_conditions: 1 there, 2 requested"):
        simulate_campaign(tiny_campaign(per_condition=2, chunk_conditions=2), out, progress=False)
    simulate_campaign(tiny_campaign(), out, overwrite=True, progress=False)
    assert_same_data(read_dataset(out), reference)


def test_existing_output_is_reused_or_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "done.h5"
    simulate_campaign(tiny_campaign(n_conditions=2), out, progress=False)
    created = read_attributes(out)["created_utc"]
    stamp = out.stat().st_mtime_ns
    simulate_campaign(
        tiny_campaign(n_conditions=2, workers=3, chunk_conditions=2), out, progress=True
    )
    assert "already complete" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == stamp and read_attributes(out)["created_utc"] == created
    with pytest.raises(CampaignError, match=r"n_conditions: 2 there, 3 requested.*--overwrite"):
        simulate_campaign(tiny_campaign(n_conditions=3), out, progress=False)
    simulate_campaign(tiny_campaign(n_conditions=3), out, overwrite=True, progress=False)
    assert read_dataset(out).n_conditions == 3

    foreign = tmp_path / "foreign.h5"
    foreign.write_text("hello")
    with pytest.raises(CampaignError, match="not a data set this campaign can reuse"):
        simulate_campaign(tiny_campaign(), foreign, progress=False)


def test_config_validation_and_yaml_round_trip() -> None:
    config = tiny_campaign(problem_options={"kernel": "matern52"})
    assert from_dict(SimulationConfig, json.loads(json.dumps(to_dict(config)))) == config
    for bad, match in [
        ({"n_conditions": 0}, "n_conditions = 0"),
        ({"per_condition": -1}, "per_condition = -1"),
        ({"seed": -1}, r"seed = -1 .*\[0, 4294967296\)"),
        ({"split": "dev"}, "split = 'dev'.*'train', 'test'"),
        ({"design": "grid"}, "design = 'grid'"),
        ({"problem": "heat"}, "problem = 'heat'.*'battery'"),
        ({"workers": 0}, "workers = 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            tiny_campaign(**bad)
