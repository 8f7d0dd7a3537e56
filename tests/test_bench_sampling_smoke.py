"""Smoke test of ``benchmarks/bench_sampling.py`` on the shipped pretrained model (tiny n)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from helpers import load_benchmark
from scorepde.pretrained import pretrained_path


def load_bench_sampling() -> ModuleType:
    """Import ``benchmarks/bench_sampling.py`` (not a package) as a module."""
    return load_benchmark("bench_sampling")


def test_bench_sampling_prints_the_nfe_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_bench_sampling()
    out = tmp_path / "nfe.json"
    model = str(pretrained_path("battery"))
    args = [model, "--n", "16", "--nfe", "4,6", "--samplers", "ode_dpm2m,ode_heun_edm"]
    report = bench.main([*args, "--condition", "0,0.1,25", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "| U0=0, l=0.1, F_right=25 | simulator (floor) | - | - |" in printed
    assert "| U0=0, l=0.1, F_right=25 | ode_dpm2m | 4 | 3 |" in printed  # NFE = steps + 1
    assert "| U0=0, l=0.1, F_right=25 | ode_heun_edm | 6 | 3 |" in printed  # NFE = 2 steps
    data = json.loads(out.read_text())
    assert data["n"] == 16 and len(data["rows"]) == 4 and len(data["floors"]) == 1
    assert {row["nfe"] for row in data["rows"]} == {4, 6}
    assert all(row["seconds"] > 0 for row in data["rows"])
    assert report["rows"][0]["sampler"] == "ode_dpm2m"
    with pytest.raises(SystemExit):
        bench.main([model, "--samplers", "langevin"])
