"""``benchmarks/bench_sbi.py``: the sbi benchmark on one task at small scale (slow), and its
argument checks and table (fast, no sbi needed).

Slow test: gaussian_linear_uniform (10 parameters, 10 observables, uniform prior on
[-1, 1]^10, Gaussian likelihood with std 0.1), 2000 simulations, observation 1, 2000 posterior
samples, scorepde with the library's default arguments (sbi's methods are left out to keep it
short; the benchmark itself runs them). Bound: C2ST <= 0.85. Scale: two samplers of the same
distribution give 0.5 +- 0.01 at 2000 + 2000 samples; measured 2026-12-01 on this setting:
scorepde with the data-sized defaults of issue 15 0.789 (72 s training, 0.9 s sampling under
load), sbi's NPE 0.651 (1000 samples); the over-confident default model of issue 15 gave
0.95-0.99 (a 300-step smoke run 0.98). The bound leaves ~0.06 for run-to-run training noise
and catches that failure. It skips, with the reason, when the bench extra is not installed
(``make test-slow`` installs it).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_bench_sbi() -> ModuleType:
    """Import ``benchmarks/bench_sbi.py`` (not a package) as a module."""
    spec = importlib.util.spec_from_file_location("bench_sbi", BENCHMARKS / "bench_sbi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_arguments_are_checked_and_the_table_renders(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench_sbi()
    args = bench.parse(["--tasks", "bernoulli_glm", "--observations", "1,3", "--threads", "2"])
    assert args.tasks == ["bernoulli_glm"] and args.observations == [1, 3] and args.threads == 2
    assert args.methods == ["scorepde", "npe", "npse"] and args.num_simulations == 10_000
    for bad in (["--tasks", "two_moons"], ["--observations", "0"], ["--methods", "snle"]):
        with pytest.raises(SystemExit):
            bench.parse(bad)
    assert "is not allowed" in capsys.readouterr().err
    row = {
        "task": "gaussian_mixture",
        "method": "npe",
        "c2st": [0.51, 0.55],
        "c2st_mean": 0.53,
        "train_seconds": 12.34,
        "sample_seconds_per_observation": 0.056,
    }
    assert "| gaussian_mixture | npe | 0.530 | 0.510, 0.550 | 12.3 | 0.06 |" in bench.markdown(
        [row]
    )


@pytest.mark.slow
def test_benchmark_on_one_task_beats_the_bound(tmp_path: Path) -> None:
    bench = load_bench_sbi()
    missing = bench.missing_packages()
    if missing:
        pytest.skip(f"sbi benchmark packages not importable: {missing}; install: {bench.INSTALL}")
    out = tmp_path / "bench.json"
    status = bench.main(
        [
            "--tasks",
            "gaussian_linear_uniform",
            "--num-simulations",
            "2000",
            "--observations",
            "1",
            "--num-samples",
            "2000",
            "--methods",
            "scorepde",
            "--json",
            str(out),
        ]
    )
    assert status == 0
    rows = {row["method"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"scorepde"}
    row = rows["scorepde"]
    assert row["train_seconds"] > 0 and row["sample_seconds_per_observation"] > 0
    assert 0.4 <= row["c2st_mean"] <= 0.85, row
