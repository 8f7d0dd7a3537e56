"""Smoke test of ``benchmarks/bench_model.py``: the smallest run prints its tables and JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_bench_model() -> ModuleType:
    """Import ``benchmarks/bench_model.py`` (not a package) as a module."""
    spec = importlib.util.spec_from_file_location("bench_model", BENCHMARKS / "bench_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_bench_model_tiny_prints_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench_model = load_bench_model()
    out = tmp_path / "bench.json"
    report = bench_model.main(
        ["--tiny", "--n", "8", "--batch-size", "8", "--threads", "1", "--json", str(out)]
    )
    printed = capsys.readouterr().out
    assert "| backbone | params | batch | steps timed | ms/step | samples/s |" in printed
    assert "| MLP | euler_maruyama | 2 | 3 |" in printed  # measured NFE: steps + 1
    assert "| MLP | probability_flow_heun | 2 | 4 |" in printed  # 2 steps
    assert "torch threads: 1" in printed
    data = json.loads(out.read_text())
    assert data["n"] == 8 and data["threads"] == 1
    assert {row["sampler"] for row in data["tables"]["sampling"]} == {
        "euler_maruyama",
        "predictor_corrector",
        "probability_flow_heun",
    }
    for row in data["tables"]["sampling"]:
        assert row["seconds"] > 0 and row["model_over_simulator"] > 0
        assert not row["extrapolated"]
    assert data["tables"]["simulator"][0]["fields"] == 8
    assert report.tables["training"][0]["backbone"] == "MLP"
