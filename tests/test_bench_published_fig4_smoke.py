"""Smoke test of ``benchmarks/bench_published_fig4.py`` on stand-in files: our own float32
simulator fields saved as the "stored" set, so the float32 row must sit at the floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import load_benchmark
from scorepde.problems import get_problem


def _bench():
    return load_benchmark("bench_published_fig4")


def test_stand_in_stored_fields_sit_at_the_floor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _bench()
    problem = get_problem("battery", formulation="published-code", precision="float32")
    fields = problem.simulate(bench.FIG4[None, :], 500, [7])["fields"]
    stored, post = tmp_path / "stored.pt", tmp_path / "post.pt"
    torch.save(torch.as_tensor(fields, dtype=torch.float32), stored)
    torch.save(torch.as_tensor(fields[::-1].copy(), dtype=torch.float32), post)
    assert bench.main(["--stored", str(stored), "--post-model", str(post), "--splits", "3"]) == 0
    printed = capsys.readouterr().out
    rows = {line.split(" | ")[0].strip("| "): line for line in printed.splitlines()[2:]}
    assert set(rows) == {
        "the post's model",
        "our simulator, float32",
        "our simulator, float64",
        "floor (stored half b)",
    }
    # same simulator, same arithmetic: the float32 set is as close to "stored" as its own halves
    table = bench.compare(
        fields,
        {"same": problem.simulate(bench.FIG4[None, :], 1000, [8])["fields"]},
        splits=5,
        seed=0,
    )
    same, floor = table["same"].mean(axis=0), table["floor (stored half b)"].mean(axis=0)
    assert np.all(same[:4] < 2.0 * floor[:4] + 0.02), (same, floor)


def test_bad_files_are_named(tmp_path: Path) -> None:
    bench = _bench()
    with pytest.raises(SystemExit, match="no such file"):
        bench.main(["--stored", str(tmp_path / "x.pt"), "--post-model", str(tmp_path / "y.pt")])
    wrong = tmp_path / "wrong.pt"
    torch.save(torch.zeros(4, 3), wrong)
    with pytest.raises(SystemExit, match=r"expected \(n, 2, 100\)"):
        bench.main(["--stored", str(wrong), "--post-model", str(wrong)])
