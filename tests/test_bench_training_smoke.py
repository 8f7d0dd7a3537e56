"""Smoke test of ``benchmarks/bench_training.py``: the tiny run prints its tables and JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_bench_training() -> ModuleType:
    """Import ``benchmarks/bench_training.py`` (not a package) as a module."""
    path = BENCHMARKS / "bench_training.py"
    spec = importlib.util.spec_from_file_location("bench_training", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_bench_training_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench_training()
    out = tmp_path / "bench.json"
    argv = ["--tiny", "--threads", "1", "--thread-counts", "1", "--seconds", "0.05"]
    report = bench.main([*argv, "--json", str(out)])
    printed = capsys.readouterr().out
    assert "| model | params | batch | epochs timed | ms/step | samples/s |" in printed
    assert "| 1 thread(s) |" in printed
    data = json.loads(out.read_text())
    assert data["threads"] == 1 and data["device"] == "cpu"
    (row,) = data["tables"]["throughput"]
    assert row["model"] == "tiny MLP" and row["batch_size"] == 8
    assert row["samples_per_second"] > 0 and row["mflop_per_sample"] > 0
    # the tiny MLP (200 -> 16 -> 200 with conditioning): a few matmuls of ~3,200 MACs each,
    # forward + backward (about 3x the forward)
    assert 0.01 < row["mflop_per_sample"] < 1.0
    assert 0 < row["of_peak"] and data["tables"]["peak"][0]["gflops"] > 0
    assert report.tables["threads"][0]["epochs_timed"] == 2


def test_recipe_models_come_with_the_shape_their_network_takes() -> None:
    """The shipped recipes' networks (not only the tiny one) accept the benchmark's inputs: the
    quick MLP learns 48 subspace coefficients, the seed net (2, 100) fields."""
    import torch

    from scorepde.training import build_score_model

    bench = load_bench_training()
    models = bench.recipe_models(tiny=False)
    assert models["quick MLP"][1] == (1, 48) and models["seed FiLM"][1] == (2, 100)
    for model_config, shape in models.values():
        model = build_score_model(model_config)
        x = torch.randn(2, *shape)
        t = torch.full((2,), 0.5)
        with torch.no_grad():
            out = model.predict_noise(x, t, torch.zeros(2, 3))
        assert out.shape == x.shape
