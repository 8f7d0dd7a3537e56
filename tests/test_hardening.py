"""Issue 16: every bad input gets a clear error, concurrent runs cannot collide.

One test (or one parametrised group) per numbered case of the issue; each failed on the code
before the fix. Sampling tests use the shipped ``battery`` model with 2 steps and 2 samples.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from helpers import CONDITION, WIDE, assert_refused, flat, tiny_campaign, tiny_recipe_dict
from scorepde.cli import app
from scorepde.data.campaign import CampaignError, parts_folder, simulate_campaign
from scorepde.data.schema import read_dataset
from scorepde.pretrained import load_pretrained, pretrained_path
from scorepde.problems import get_problem
from scorepde.training import CheckpointError, latest_checkpoint
from scorepde.training.conditional import load_trained_model

runner = CliRunner()
FAST = ["--steps", "2", "-n", "2"]
PRETRAINED_AT_25 = [
    "sample",
    "--pretrained",
    "battery",
    "--U0",
    "0",
    "--l",
    "0.1",
    "--F-right",
    "25",
]


@pytest.fixture(scope="module")
def battery_model():
    return load_pretrained("battery")


def _sample(tmp_path: Path, *args: str):
    out = tmp_path / "s.npy"
    result = runner.invoke(
        app, ["sample", "--pretrained", "battery", "--out", str(out), *args], env=WIDE
    )
    return result, out


# ----------------------------------------------------------------------------- case 1


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        (["--U0", "nan", "--l", "0.1", "--F-right", "25"], "--U0", "condition U0 = nan"),
        (["--U0", "inf", "--l", "0.1", "--F-right", "25"], "--U0", "condition U0 = inf"),
        (["--U0", "0", "--l", "0.1", "--F-right", "nan"], "--F-right", "condition F_right = nan"),
        (["--U0", "0", "--l", "0", "--F-right", "25"], "--l", "condition l = 0.0"),
        (["--U0", "0", "--l", "-1", "--F-right", "25"], "--l", "condition l = -1.0"),
        (["--U0", "0", "--l", "nan", "--F-right", "25"], "--l", "condition l = nan"),
        (["--U0", "0", "-c", "l=0", "--F-right", "25"], "--condition", "condition l = 0.0"),
    ],
)
def test_cli_refuses_non_finite_or_impossible_conditions(
    tmp_path: Path, args: list[str], option: str, message: str
) -> None:
    result, out = _sample(tmp_path, *args, *FAST)
    assert_refused(result, message)
    assert option in flat(result.output)
    assert "(0, inf) L" in flat(result.output) or "inf)" in flat(result.output)
    assert not out.exists()


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ([np.nan, 0.1, 25.0], r"condition U0 = nan .* \(-inf, inf\) V"),
        ([0.0, 0.1, np.inf], r"condition F_right = inf .* \[0, inf\) A/m\^2"),
        ([0.0, 0.0, 25.0], r"condition l = 0\.0 .* \(0, inf\) L"),
        ([[0.0, 0.1, 25.0], [0.0, -1.0, 25.0]], r"condition l = -1\.0"),
    ],
)
def test_api_refuses_before_sampling(battery_model, condition, message) -> None:
    n = 2
    with pytest.raises(ValueError, match=message):
        battery_model.sample(condition, n, steps=2)


def test_a_model_without_a_known_problem_refuses_non_finite_values(battery_model) -> None:
    battery_model.problem_name = None
    try:
        with pytest.raises(ValueError, match=r"condition U0 = nan .*\(-inf, inf\)"):
            battery_model.sample([np.nan, 0.1, 25.0], 2, steps=2)
        battery_model.check_conditions([0.0, -1.0, 25.0])  # no domain known: finite is enough
    finally:
        battery_model.problem_name = "battery"


# ----------------------------------------------------------------------------- case 2


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        (["--batch-size", "0"], "--batch-size", "0 is not allowed; expected an integer >= 1"),
        (["--seed", "-1"], "--seed", "-1 is not allowed; expected an integer >= 0"),
        (["-n", "0"], "-n", "0 is not allowed; expected an integer >= 1"),
        (["--steps", "0"], "--steps", "0 is not allowed; expected an integer >= 1"),
    ],
)
def test_cli_sample_options_are_named_in_their_errors(
    tmp_path: Path, args: list[str], option: str, message: str
) -> None:
    result, _ = _sample(tmp_path, "--U0", "0", "--l", "0.1", "--F-right", "25", *args)
    assert_refused(result, message)
    assert f"'{option}" in flat(result.output) or f"{option} " in flat(result.output)


def test_cli_sample_refuses_a_folder_as_out_before_sampling(tmp_path: Path) -> None:
    folder = tmp_path / "taken.npy"
    folder.mkdir()
    start = time.perf_counter()
    result = runner.invoke(
        app,
        [*PRETRAINED_AT_25, "-n", "20000", "--steps", "200", "--out", str(folder)],
        env=WIDE,
    )
    assert_refused(result, "is a folder")
    assert "--out" in flat(result.output)
    assert time.perf_counter() - start < 30  # 20000 x 200 steps would take minutes


def _recipe_file(tmp_path: Path, change) -> Path:
    data = tiny_recipe_dict()
    change(data)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_cli_train_device_epochs_and_recipe_problems_are_refused(tmp_path: Path) -> None:
    recipe = _recipe_file(tmp_path, lambda d: None)
    out = ["--out", str(tmp_path / "run"), "-q"]
    result = runner.invoke(app, ["train", str(recipe), "--device", "foo", *out], env=WIDE)
    assert_refused(result, "'foo' is not allowed")
    assert "--device" in flat(result.output)
    result = runner.invoke(app, ["train", str(recipe), "--epochs", "0", *out], env=WIDE)
    assert_refused(result, "0 is not allowed; expected an integer >= 1")
    assert "--epochs" in flat(result.output)

    def two_points(data):
        data["data"]["train"]["problem_options"] = {"params": {"n_points": 2}}

    result = runner.invoke(app, ["train", str(_recipe_file(tmp_path, two_points)), *out], env=WIDE)
    assert_refused(result, "n_points = 2 is not allowed")
    assert "recipe.yaml" in flat(result.output)

    def bad_device(data):
        data["training"]["device"] = "foo"

    result = runner.invoke(app, ["train", str(_recipe_file(tmp_path, bad_device)), *out], env=WIDE)
    assert_refused(result, "got 'foo'")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- case 3


def test_battery_condition_domains_refuse_negative_current_and_warn_far_outside() -> None:
    problem = get_problem("battery")
    with pytest.raises(ValueError, match=r"condition F_right = -50\.0 .*\[0, inf\) A/m\^2"):
        problem.simulate([[0.0, 0.1, -50.0]], 1, [0])
    with pytest.warns(UserWarning, match=r"F_right = 1000000000\.0 .* design range \[0, 50\]"):
        fields = problem.simulate([[0.0, 0.1, 1e9]], 1, [0])["fields"]
    assert np.all(fields[:, 0] > 0)  # positive (if absurd) concentrations: warned, not refused
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in range, and the closed end F_right = 0: silent
        at_rest = problem.simulate([[0.0, 0.1, 0.0], [0.5, 0.5, 50.0]], 2, [0, 1])["fields"]
    assert np.all(at_rest[:, 0] > 0)
    physics = (Path(__file__).parents[1] / "docs" / "physics.md").read_text(encoding="utf-8")
    assert "Physical domain of the conditions" in physics


def test_model_refuses_negative_current_and_warns_beyond_training(battery_model) -> None:
    with pytest.raises(ValueError, match=r"F_right = -50\.0"):
        battery_model.sample([0.0, 0.1, -50.0], 2, steps=2)
    with pytest.warns(UserWarning, match="extrapolates"):
        battery_model.sample([0.0, 0.1, 1e9], 2, steps=2)


# ----------------------------------------------------------------------------- case 4


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(pretrained_path("battery"), folder)
    return folder


def _edit_yaml(folder: Path, change) -> None:
    path = folder / "model.yaml"
    record = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(record)
    path.write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")


def _rename(record: dict, old: str, new: str) -> None:
    record[new] = record.pop(old)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(colour="red"), r"unknown key\(s\) \['colour'\]"),
        (
            lambda r: _rename(r, "condition_encoder", "condition_encodr"),
            r"unknown key\(s\) \['condition_encodr'\]",
        ),
        (lambda r: r.pop("sample_shape"), r"missing key\(s\) \['sample_shape'\]"),
        (lambda r: r.update(sample_shape=[2, 99]), r"sample_shape = \[2, 99\] does not match"),
        (lambda r: r.update(sample_shape="2x100"), r"sample_shape = '2x100' is not allowed"),
        (lambda r: r.update(sample_shape=[2, 0]), r"sample_shape = \[2, 0\] is not allowed"),
        (lambda r: r["condition_encoder"].pop("low"), "bad condition_encoder"),
    ],
)
def test_model_yaml_is_checked_key_by_key(model_copy: Path, change, message) -> None:
    _edit_yaml(model_copy, change)
    with pytest.raises(CheckpointError, match=message) as error:
        load_trained_model(model_copy)
    assert "model.yaml" in str(error.value)
    result = runner.invoke(
        app, ["sample", str(model_copy), "--U0", "0", "--l", "0.1", "--F-right", "25"], env=WIDE
    )
    assert_refused(result, "model.yaml")


# ----------------------------------------------------------------------------- case 5


def test_truncated_shard_is_simulated_again(tmp_path: Path) -> None:
    reference = read_dataset(
        simulate_campaign(tiny_campaign(), tmp_path / "ref.h5", progress=False)
    )
    out = tmp_path / "out.h5"
    parts = parts_folder(out)
    config = tiny_campaign()
    from scorepde.data import campaign

    calls = {"n": 0}
    original = campaign._run_chunk

    def stop_after_two(task):
        if calls["n"] == 2:
            raise KeyboardInterrupt
        calls["n"] += 1
        return original(task)

    campaign._run_chunk = stop_after_two
    try:
        with pytest.raises(KeyboardInterrupt):
            simulate_campaign(config, out, progress=False)
    finally:
        campaign._run_chunk = original
    shard = parts / "chunk_00001.npz"
    shard.write_bytes(shard.read_bytes()[:100])  # truncated, as by a full disk
    with pytest.warns(RuntimeWarning, match=r"chunk_00001\.npz is unreadable"):
        simulate_campaign(config, out, progress=False)
    again = read_dataset(out)
    np.testing.assert_array_equal(again.fields, reference.fields)
    np.testing.assert_array_equal(again.latent, reference.latent)


def test_temporary_file_of_a_killed_final_write_is_removed_by_the_rerun(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    stale = tmp_path / ".out.h5.k1ll3d_x.h5"  # what atomic_path leaves when killed mid-write
    stale.write_bytes(b"half an HDF5 file")
    simulate_campaign(tiny_campaign(), out, progress=False)
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]  # no lock file either


# ----------------------------------------------------------------------------- case 6

SIMULATE_TINY = ["simulate", "--conditions", "2", "--per-condition", "2"]
_HOLD_LOCK = """
import sys, time
from scorepde.fileio import exclusive_lock
with exclusive_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_campaign_on_the_same_out_is_refused_naming_the_holder(tmp_path: Path) -> None:
    from scorepde.data.campaign import lock_path

    out = tmp_path / "out.h5"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(lock_path(out))],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(CampaignError, match=rf"being written by .*pid={holder.pid}, host="):
            simulate_campaign(tiny_campaign(), out, progress=False)
        result = runner.invoke(
            app,
            [*SIMULATE_TINY, "--out", str(out), "--no-plot", "--quiet"],
            env=WIDE,
        )
        assert_refused(result, f"pid={holder.pid}")
        assert not parts_folder(out).exists() and not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder died by SIGKILL: its lock file does not block the next campaign
    simulate_campaign(tiny_campaign(), out, progress=False)
    assert out.is_file() and not lock_path(out).exists()


# ----------------------------------------------------------------------------- case 7


def test_resume_skips_a_corrupt_latest_checkpoint(tmp_path: Path) -> None:
    from scorepde.training import Trainer
    from test_training_trainer import _final_weights, config, tiny_model, toy_data

    x, cond = toy_data(20)
    straight = tmp_path / "straight"
    Trainer(tiny_model(), config(checkpoint_every=1), straight).fit(x, cond, progress=False)
    interrupted = tmp_path / "interrupted"

    def interrupt(epoch, row):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_model(), config(checkpoint_every=1), interrupted).fit(
            x, cond, progress=False, callback=interrupt
        )
    latest = latest_checkpoint(interrupted)
    assert latest.name == "epoch-000003"
    (latest / "trainer_state.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(
        RuntimeWarning, match=r"skipped checkpoint .*epoch-000003.*from .*epoch-000002"
    ):
        result = Trainer(tiny_model(seed=9), config(checkpoint_every=1), interrupted).fit(
            x, cond, progress=False
        )
    assert result.epochs_done == 4
    for a, b in zip(_final_weights(straight), _final_weights(interrupted), strict=True):
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


# ----------------------------------------------------------------------------- case 8


def test_sample_on_an_unfinished_run_names_the_checkpoint_and_sampler(tmp_path: Path) -> None:
    recipe = _recipe_file(tmp_path, lambda d: d["training"].update(epochs=1))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(recipe), "--out", str(run), "-q"], env=WIDE)
    assert result.exit_code == 0, result.output
    shutil.rmtree(run / "model")  # as if training had not finished
    training = run / "training"
    args = ["sample", str(training), "-n", "2", "--out", str(tmp_path / "s.npy")]
    result = runner.invoke(app, [*args, "--U0", "0", "--l", "0.1", "--F-right", "25"], env=WIDE)
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert f"using checkpoint {latest_checkpoint(training)}" in text
    assert "(epoch 1)" in text
    assert "note: sampler euler_maruyama, 100 steps, from the default" in text


# ----------------------------------------------------------------------------- case 9


def test_scheduler_help_shows_the_dask_extra() -> None:
    result = runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    assert "scorepde[dask]" in flat(result.output), result.output


# ----------------------------------------------------------------------------- shared helpers


def test_condition_used_in_the_helpers_is_physical() -> None:
    get_problem("battery").validate_conditions(CONDITION)


def test_fileio_lock_is_exclusive_within_a_process_too(tmp_path: Path) -> None:
    from scorepde.fileio import LockedError, exclusive_lock

    lock = tmp_path / "x.lock"
    with exclusive_lock(lock):
        with pytest.raises(LockedError, match=f"pid={os.getpid()}"):
            with exclusive_lock(lock):
                pass
    assert not lock.exists()
    with exclusive_lock(lock):  # free again
        pass
