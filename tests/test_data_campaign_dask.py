"""Campaigns on dask.distributed: the same shards and resume logic, byte-identical output.

A ``LocalCluster`` with two in-process workers (``processes=False``) keeps this file to a few
seconds; one test starts the ``"local"`` process cluster the CLI offers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from distributed import LocalCluster
from typer.testing import CliRunner

from helpers import tiny_campaign
from scorepde.cli import app
from scorepde.data import campaign
from scorepde.data.campaign import (
    CampaignError,
    parts_folder,
    simulate_campaign,
)
from scorepde.data.schema import FieldDataset, read_dataset


def assert_identical(a: FieldDataset, b: FieldDataset) -> None:
    """Same arrays bit for bit (dtype, shape and bytes)."""
    for name in ("fields", "latent", "conditions", "condition_index", "grid"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> FieldDataset:
    out = tmp_path_factory.mktemp("serial") / "serial.h5"
    return read_dataset(simulate_campaign(tiny_campaign(), out, progress=False))


@pytest.fixture(scope="module")
def address():
    """Address of a running scheduler with two in-process single-thread workers."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


def test_dask_output_is_byte_identical_to_the_serial_run(
    tmp_path: Path, reference: FieldDataset, address: str
) -> None:
    out = simulate_campaign(
        tiny_campaign(), tmp_path / "dask.h5", progress=False, scheduler=address
    )
    assert_identical(read_dataset(out), reference)
    assert not parts_folder(out).exists()


def test_dask_resumes_the_chunks_of_a_crashed_serial_run(
    tmp_path: Path,
    reference: FieldDataset,
    address: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "resume.h5"
    real_run_chunk = campaign._run_chunk

    def stop_at_third(task):
        if task.start == 2:
            raise KeyboardInterrupt("simulated crash")
        return real_run_chunk(task)

    monkeypatch.setattr(campaign, "_run_chunk", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        simulate_campaign(tiny_campaign(), out, progress=False)
    monkeypatch.setattr(campaign, "_run_chunk", real_run_chunk)
    simulate_campaign(tiny_campaign(), out, progress=True, scheduler=address)
    assert "resuming: 2/4 chunks done" in capsys.readouterr().err
    assert_identical(read_dataset(out), reference)


def test_a_worker_error_reaches_the_caller_and_finished_chunks_are_kept(
    tmp_path: Path, reference: FieldDataset, address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "error.h5"
    real_simulate = campaign._simulate_chunk

    def fail_on_last(task):
        if task.start == 3:
            raise RuntimeError("solver diverged")
        return real_simulate(task)

    monkeypatch.setattr(campaign, "_simulate_chunk", fail_on_last)
    with pytest.raises(RuntimeError, match="solver diverged"):
        simulate_campaign(tiny_campaign(), out, progress=False, scheduler=address)
    monkeypatch.setattr(campaign, "_simulate_chunk", real_simulate)
    assert not out.exists() and (parts_folder(out) / "manifest.json").is_file()
    simulate_campaign(tiny_campaign(), out, progress=False, scheduler=address)
    assert_identical(read_dataset(out), reference)


def test_local_process_cluster(tmp_path: Path, reference: FieldDataset) -> None:
    """``scheduler="local"`` starts (and stops) a LocalCluster of ``workers`` processes."""
    config = tiny_campaign(workers=2, chunk_conditions=2)
    out = simulate_campaign(config, tmp_path / "local.h5", progress=False, scheduler="local")
    assert_identical(read_dataset(out), reference)


def test_cli_scheduler_option(tmp_path: Path, reference: FieldDataset, address: str) -> None:
    out = tmp_path / "cli.h5"
    args = ["simulate", "--conditions", "4", "--per-condition", "3", "--seed", "5"]
    args += ["--chunk-conditions", "1", "--no-plot", "--quiet", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--scheduler", address])
    assert result.exit_code == 0, result.output
    assert_identical(read_dataset(out), reference)


def test_missing_dask_and_bad_scheduler_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CampaignError, match=r"scheduler = '' is not allowed"):
        simulate_campaign(tiny_campaign(), tmp_path / "a.h5", progress=False, scheduler="")
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(CampaignError, match=r"pip install 'scorepde\[dask\]'"):
        simulate_campaign(tiny_campaign(), tmp_path / "b.h5", progress=False, scheduler="local")
    result = CliRunner().invoke(
        app, ["simulate", "--conditions", "1", "--per-condition", "1", "--no-plot",
              "--out", str(tmp_path / "c.h5"), "--scheduler", "local"],
    )  # fmt: skip
    assert result.exit_code == 2 and "scorepde[dask]" in result.output
