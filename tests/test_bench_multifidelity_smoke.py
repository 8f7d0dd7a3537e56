"""Smoke test of ``benchmarks/bench_multifidelity.py``: small pools, the two cheapest baselines,
tables printed and JSON written (Poisson: least squares at round-off)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_multifidelity.py"


def test_bench_multifidelity_small_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_multifidelity", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    out = tmp_path / "mf.json"
    results = module.main(
        [
            "--benchmarks", "poisson",
            "--baselines", "coarse_solver,linear",
            "--sweep", "5,8",
            "--sweep-baselines", "linear",
            "--repeats", "2",
            "--n-train", "128",
            "--n-test", "16",
            "--out", str(out),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "| coarse_solver |" in printed and "nRMSE against the high-fidelity budget" in printed
    poisson = json.loads(out.read_text())["poisson"]
    assert poisson == json.loads(json.dumps(results["poisson"]))
    assert poisson["baselines"]["linear"]["mean"] < 1e-10
    assert 0.01 < poisson["baselines"]["coarse_solver"]["mean"] < 0.5
    assert set(poisson["sweep"]["linear"]) == {"5", "8"}
    assert poisson["all_finest_cost_s"] > poisson["training_set_cost_s"]
