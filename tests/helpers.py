"""Shared test helpers (imported by test modules; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from scorepde.data.campaign import SimulationConfig
from scorepde.training.config import TrainConfig

CONDITION = [0.0, 0.1, 25.0]  # U0 [V], l [L], F_right [A/m^2]
WIDE = {"COLUMNS": "200"}  # typer's error box wraps long messages at the terminal width


def flat(text: str) -> str:
    """CLI output with the error box's line breaks and padding collapsed to single spaces."""
    return " ".join(text.replace("\u2502", " ").split())


def assert_refused(result: Any, message: str) -> None:
    """A CLI call refused cleanly: exit status 2, ``message`` shown, no traceback."""
    assert result.exit_code == 2, result.output
    assert message in flat(result.output), result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), result.exception


def tiny_campaign(**changes: Any) -> SimulationConfig:
    """A 4-condition x 3-draw battery campaign in 4 chunks (seed 5), with ``changes`` applied."""
    options: dict[str, Any] = {
        "n_conditions": 4,
        "per_condition": 3,
        "chunk_conditions": 1,
        "seed": 5,
    }
    options.update(changes)
    return SimulationConfig(**options)


def tiny_recipe_dict() -> dict[str, Any]:
    """6 x 8 training fields, 3 x 4 test fields, a 2-block FiLM net, 2 epochs, 20 samples.

    ``normalisation_degree: 1``: with 0.34 of the 6 training conditions held out for
    validation, 4 design points remain, too few for the default degree 2 (10 coefficients).
    """
    return {
        "name": "tiny",
        "description": "test-sized pipeline",
        "data": {
            "train": {"problem": "battery", "n_conditions": 6, "per_condition": 8, "seed": 0},
            "test": {
                "problem": "battery",
                "n_conditions": 3,
                "per_condition": 4,
                "seed": 0,
                "split": "test",
            },
            "validation_fraction": 0.34,
            "normalisation_degree": 1,
        },
        "model": {
            "backbone": {
                "name": "film",
                "options": {
                    "channels": 8,
                    "blocks": 2,
                    "kernel_size": 3,
                    "time_embedding_dim": 16,
                    "film_hidden": 16,
                },
            }
        },
        "training": {
            "epochs": 2,
            "batch_size": 16,
            "checkpoint_every": 1,
            "num_threads": 1,
            "device": "cpu",  # the same (fast, fp32) training on machines with a GPU
            "plot": False,
        },
        "sampling": {"sampler": "euler_maruyama", "steps": 5, "batch_size": 50},
        "evaluation": {
            "conditions": [list(CONDITION)],
            "held_out": 1,
            "n_samples": 20,
            "invariance_shift": 0.4,
            "targets": "quick",
        },
    }


def tiny_train_config(**changes: Any) -> TrainConfig:
    """A short CPU training recipe for trainer tests (4 epochs of batch 8, one thread, no plot);
    ``changes`` override any field."""
    base: dict[str, Any] = {
        "epochs": 4,
        "batch_size": 8,
        "learning_rate": 3e-3,
        "min_learning_rate": 1e-4,
        "checkpoint_every": 2,
        "num_threads": 1,
        "plot": False,
        "device": "cpu",
    }
    return TrainConfig(**{**base, **changes})


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def tiny_inverse_recipe() -> dict[str, Any]:
    """A test-sized inverse recipe: linear-Gaussian d = 3, m = 2, 400 pairs, a 16-wide MLP,
    3 epochs, 10 sampler steps, calibration 20 x 9."""
    return {
        "name": "tiny-inverse",
        "description": "test-sized linear-Gaussian",
        "seed": 3,
        "problem": {"name": "linear_gaussian", "options": {"d": 3, "m": 2, "seed": 1}},
        "data": {"n_train": 400, "validation_fraction": 0.1},
        "model": {
            "backbone": {
                "name": "mlp",
                "options": {"data_dim": 3, "cond_dim": 2, "hidden": 16, "depth": 1},
            },
            "process": {"name": "ve", "sigma_min": 0.01, "sigma_max": 20.0},
        },
        "training": {"epochs": 3, "batch_size": 128, "device": "cpu", "compile": "off"},
        "sampling": {"sampler": "euler_maruyama", "steps": 10, "batch_size": 500},
        "calibration": {"n_observations": 20, "n_samples": 9, "levels": [0.5, 0.9]},
    }


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (a script, not a package) as the module ``name``; it is
    registered in ``sys.modules`` first, because dataclasses look their module up there."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
