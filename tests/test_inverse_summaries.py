"""Posterior summaries and batched sampling over many observations (tiny model, seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scorepde.inverse import (
    AmortisedPosterior,
    format_summary,
    from_simulator,
    make_linear_gaussian,
    summarise,
)
from scorepde.nets.registry import BackboneConfig
from scorepde.training.config import TrainConfig
from scorepde.training.model import ModelConfig


def test_summarise_percentiles_and_table() -> None:
    samples = np.random.default_rng(0).standard_normal((4000, 3)) * [1.0, 2.0, 0.5]
    summary = summarise(samples, percentiles=(5, 50, 95))
    assert list(summary) == ["mean", "std", "p5", "p50", "p95"]
    np.testing.assert_allclose(summary["p95"], 1.645 * np.array([1.0, 2.0, 0.5]), rtol=0.06)
    assert list(summarise(samples)) == ["mean", "std", "p2.5", "p50", "p97.5"]
    assert list(summarise(samples, percentiles=())) == ["mean", "std"]
    text = format_summary(summary, truth=np.zeros(3), max_rows=2)
    lines = text.splitlines()
    assert lines[0].split() == ["component", "mean", "std", "p5", "p50", "p95", "truth"]
    assert lines[1].startswith("x[0]") and lines[-1] == "... 1 more components"
    with pytest.raises(ValueError, match="percentiles"):
        summarise(samples, percentiles=(101,))
    with pytest.raises(ValueError, match="truth"):
        format_summary(summary, truth=np.zeros(4))


def test_sample_many_matches_sample(tmp_path: Path) -> None:
    problem = make_linear_gaussian(2, 2, seed=0)
    x, y = from_simulator(problem.sample_prior, problem.forward, problem.noise, 400, seed=0)
    model = ModelConfig(
        backbone=BackboneConfig(
            name="mlp", options={"data_dim": 2, "cond_dim": 2, "hidden": 16, "depth": 1}
        ),
        process={"name": "ve", "sigma_min": 0.01, "sigma_max": 20.0},
    )
    training = TrainConfig(epochs=2, batch_size=128, device="cpu", compile="off", plot=False)
    posterior = AmortisedPosterior().train(
        x, y, run_dir=tmp_path / "run", model=model, training=training
    )
    many = posterior.sample_many(5, y[:3], steps=10, seed=2)
    assert many.shape == (3, 5, 2)
    np.testing.assert_allclose(
        many[0], posterior.sample(5, y[0], steps=10, seed=2), rtol=1e-6, atol=1e-6
    )
    assert not np.allclose(many[1], many[2])
    with pytest.raises(ValueError, match="observations"):
        posterior.sample_many(5, np.zeros((3, 4)))
    with pytest.raises(RuntimeError, match="not trained"):
        AmortisedPosterior().sample_many(5, y[:3])
