"""Fault injection: a campaign and a training killed with SIGKILL at random points, rerun until
they finish, end bit-identical to an uninterrupted run (and leave no lock or temporary file).

The slow tests kill many times at random delays (seeded); the fast smoke test kills a campaign
once. Each run is a fresh ``scorepde`` process, as a user's rerun would be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import tiny_recipe_dict
from scorepde.data.schema import read_dataset

CLI = [sys.executable, "-c", "from scorepde.cli import app; app()"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
SIMULATE = ["simulate", "--conditions", "120", "--per-condition", "60", "--chunk-conditions", "4"]
SIMULATE += ["--seed", "3", "--no-plot", "--quiet"]


def _run(args: list[str], kill_after: float | None) -> int | None:
    """Run the CLI; SIGKILL it after ``kill_after`` seconds. Returns the exit code, or None
    when it was killed."""
    process = subprocess.Popen([*CLI, *args], env=ENV, stdout=subprocess.DEVNULL)
    try:
        return process.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return None


def _kill_until_done(args: list[str], delays: np.ndarray) -> int:
    """Kill a run after each delay in turn, then let it finish; returns the number of kills."""
    kills = 0
    for delay in delays:
        if _run(args, float(delay)) is None:
            kills += 1
        else:
            break
    assert _run(args, None) == 0
    return kills


def _assert_clean_folder(folder: Path, keep: set[str]) -> None:
    left = {p.name for p in folder.iterdir()} - keep
    assert not left, f"left behind: {sorted(left)}"


def _timed(args: list[str]) -> float:
    """Run to completion; the wall time in seconds (the scale of the random kill times)."""
    start = time.perf_counter()
    assert _run(args, None) == 0
    return time.perf_counter() - start


def _campaign_case(tmp_path: Path, fractions: np.ndarray) -> int:
    """Kill times: ``fractions`` of the uninterrupted run's wall time."""
    reference = tmp_path / "reference.h5"
    tmp_path.mkdir(parents=True, exist_ok=True)
    delays = fractions * _timed([*SIMULATE, "--out", str(reference)])
    folder = tmp_path / "killed"
    folder.mkdir()
    out = folder / "data.h5"
    kills = _kill_until_done([*SIMULATE, "--out", str(out)], delays)
    a, b = read_dataset(reference), read_dataset(out)
    for name in ("fields", "latent", "conditions", "condition_index"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    _assert_clean_folder(folder, {"data.h5"})
    return kills


def test_campaign_killed_once_resumes_bit_identical(tmp_path: Path) -> None:
    """Smoke version: one SIGKILL once the interpreter has started simulating."""
    _campaign_case(tmp_path, np.array([0.6]))


@pytest.mark.slow
def test_campaign_killed_at_random_points_resumes_bit_identical(tmp_path: Path) -> None:
    rng = np.random.default_rng(16)
    kills = 0
    for trial in range(4):
        kills += _campaign_case(tmp_path / f"t{trial}", rng.uniform(0.3, 0.95, size=6))
    assert kills >= 4  # the runs were really interrupted


@pytest.mark.slow
def test_training_killed_at_random_points_resumes_bit_identical(tmp_path: Path) -> None:
    recipe = tiny_recipe_dict()
    recipe["training"]["epochs"] = 6
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    data = tmp_path / "train.h5"
    train = recipe["data"]["train"]
    args = ["simulate", "--conditions", str(train["n_conditions"]), "--per-condition"]
    args += [str(train["per_condition"]), "--seed", str(train["seed"]), "--out", str(data)]
    assert _run([*args, "--no-plot", "--quiet"], None) == 0
    reference = tmp_path / "reference"
    duration = _timed(["train", str(path), "--data", str(data), "--out", str(reference), "-q"])
    rng = np.random.default_rng(7)
    kills = 0
    for trial in range(3):
        run = tmp_path / f"killed{trial}"
        train_args = ["train", str(path), "--data", str(data), "--out", str(run), "-q"]
        kills += _kill_until_done(train_args, duration * rng.uniform(0.3, 0.95, size=5))
        expected = (reference / "model" / "model.safetensors").read_bytes()
        assert (run / "model" / "model.safetensors").read_bytes() == expected
    assert kills >= 3
