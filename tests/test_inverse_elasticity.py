"""Elastography end to end at toy size: pairs from the inverse problem, a 2-D U-Net with the
displacement as field conditions (y_as="fields"), a few training steps, posterior samples of
log mu; and the throughput benchmark's smallest run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from scorepde.inverse.posterior import AmortisedPosterior, from_simulator
from scorepde.inverse.problems import build_inverse_problem
from scorepde.nets.registry import BackboneConfig
from scorepde.training.config import TrainConfig
from scorepde.training.model_config import ModelConfig

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_field_conditioned_posterior_trains_and_samples(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    problem = build_inverse_problem("elasticity", {"prior": "inclusion", "n_cells": 8})
    x, y = from_simulator(problem.sample_prior, problem.forward, problem.noise, 32, 0)
    assert x.shape == (32, 1, 8, 8) and y.shape == (32, 2, 8, 8)
    model = ModelConfig(
        backbone=BackboneConfig(
            name="unet",
            options={
                "in_channels": 1,
                "out_channels": 1,
                "dims": 2,
                "cond_channels": 2,
                "base_channels": 8,
                "channel_mults": [1, 2],
            },
        ),
        process={"name": "ve", "sigma_min": 0.01, "sigma_max": 20.0},
        sigma_data=1.0,
        parametrisation="edm",
    )
    training = TrainConfig(
        epochs=1, batch_size=16, checkpoint_every=1, num_threads=1, plot=False, device="cpu"
    )
    posterior = AmortisedPosterior().train(
        x, y, run_dir=tmp_path / "run", model=model, training=training, y_as="fields"
    )
    assert posterior.model.conditioning_spec.field_channels == 2
    samples = posterior.sample(3, y[0], steps=4, seed=0, device="cpu")
    assert samples.shape == (3, 1, 8, 8) and np.all(np.isfinite(samples))
    again = AmortisedPosterior.load(tmp_path / "run")
    np.testing.assert_array_equal(samples, again.sample(3, y[0], steps=4, seed=0, device="cpu"))


def test_bench_elasticity_smallest_run(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_elasticity", BENCHMARKS / "bench_elasticity.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    rows = module.main(["--pairs", "4", "--batch", "2", "--sizes", "8", "--campaign-pairs", "0"])
    printed = capsys.readouterr().out
    assert "| N | prior | set-up s | pairs timed | pairs/s (1 core) | 10,000 pairs, s |" in printed
    assert [(row["N"], row["prior"], row["pairs"]) for row in rows] == [
        (8, "inclusion", 4),
        (8, "grf", 4),
    ]
    assert all(row["pairs_per_s"] > 0 for row in rows)
