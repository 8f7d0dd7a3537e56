"""The report: JSON + Markdown files, the terminal table, the band figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scorepde.evaluation.compare import EvaluationTargets, compare_sample_sets
from scorepde.evaluation.report import (
    evaluation_result,
    format_table,
    plot_result_band,
    to_jsonable,
    write_report,
)

GRID = np.linspace(0.0, 1.0e-4, 20)  # metres
CHANNELS = ("phi", "c")
# Bounds several noise floors wide (mean-error floor ~0.1 at n = 300, ratio of two null
# energy draws up to ~2 for these nearly one-dimensional fields): this file tests the report,
# not the statistics, so the right model must pass whatever the seed.
TARGETS = EvaluationTargets(
    name="report-test", mean_error=0.4, std_error=0.3, coverage=(0.90, 0.98), energy_ratio=5.0
)


def fields(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """(n, 2, 20) Gaussian fields, phi ~ N(shift, 0.1^2) and c ~ N(1000, 50^2) at each point,
    95 % of the variance in one random offset per sample and channel."""
    rng = np.random.default_rng(seed)
    unit = np.sqrt(0.95) * rng.standard_normal((n, 2, 1))
    unit = unit + np.sqrt(0.05) * rng.standard_normal((n, 2, 20))
    return unit * np.array([[0.1], [50.0]]) + np.array([[shift], [1000.0]])


def compute_results(out_dir: Path, *, with_figures: bool) -> list[dict]:
    """U0 = 3.6: a right model (passes); U0 = 3.8: phi shifted by 3 of its std (fails)."""
    sim_a, sim_b = fields(300, 1), fields(300, 2)
    results = []
    for u0, shift, seed in ((3.6, 0.0, 3), (3.8, 0.3, 4)):
        model = fields(300, seed, shift)
        comparison = compare_sample_sets(
            model,
            sim_a,
            sim_b,
            channels=CHANNELS,
            grid=GRID,
            constraints=[("c", "neumann", "left", 0.0)],
        )
        result = evaluation_result({"U0": u0, "I": 1}, comparison, TARGETS)
        if with_figures:
            plot_result_band(result, model, sim_a, GRID, out_dir, channel_units=("V", "mol/m^3"))
        results.append(result)
    return results


def test_report_files_round_trip_and_show_pass_fail(tmp_path) -> None:
    """Both files exist; report.json loads back to exactly the results written; the Markdown
    has one summary row per condition x channel, the failures, the figures by relative path
    and the provenance; only the shifted condition fails, and only on its phi channel plus
    the joint energy ratio (c is unchanged, but the joint ratio marks every row)."""
    results = compute_results(tmp_path, with_figures=True)
    assert results[0]["passed"] and not results[1]["passed"]
    assert any(f.startswith("mean_error[phi]") for f in results[1]["failures"])
    assert not any("[c]" in f for f in results[1]["failures"])

    json_path, md_path = write_report(
        tmp_path, results, title="battery-quick evaluation", metadata={"seed": 7, "steps": 100}
    )
    document = json.loads(json_path.read_text())
    assert document["results"] == to_jsonable(results)
    assert document["metadata"] == {"seed": 7, "steps": 100}
    assert document["provenance"]["package"] == "scorepde"

    markdown = md_path.read_text()
    assert markdown.startswith("# battery-quick evaluation")
    assert "**1 of 2 conditions pass.**" in markdown
    summary_rows = [line for line in markdown.splitlines() if line.startswith("| U0=")]
    assert len(summary_rows) == 2 * 2 + 2  # 4 summary rows + 2 boundary rows
    assert "| U0=3.6, I=1 | phi |" in markdown and "PASS |" in markdown and "FAIL |" in markdown
    for result in results:
        (figure,) = result["figures"]
        assert f"]({figure})" in markdown
        assert (tmp_path / figure).stat().st_size > 1000  # a real PNG
    assert '"git_revision"' in markdown
    assert not list(tmp_path.glob(".report*"))  # no temporary files left behind


def test_format_table_is_aligned(tmp_path) -> None:
    """Plain text: a header, a rule, one row per condition x channel, columns aligned (every
    column starts at the same offset in every line)."""
    table = format_table(compute_results(tmp_path, with_figures=False))
    lines = table.splitlines()
    assert len(lines) == 2 + 4
    assert lines[0].startswith("condition") and set(lines[1]) <= {"-", " "}
    starts = [
        i for i, ch in enumerate(lines[1]) if ch == "-" and (i == 0 or lines[1][i - 1] == " ")
    ]
    for line in lines[2:]:
        for start in starts[1:]:
            assert line[start - 2 : start] == "  " and line[start] != " "
    assert lines[-1].rstrip().endswith("FAIL") and lines[2].rstrip().endswith("PASS")


def test_to_jsonable_handles_numpy_and_non_finite() -> None:
    """numpy scalars/arrays become plain numbers/lists, tuples lists, nan/inf None."""
    value = {"a": np.float32(1.5), "b": np.arange(2), "c": (np.nan, np.inf), "d": np.bool_(True)}
    assert to_jsonable(value) == {"a": 1.5, "b": [0, 1], "c": [None, None], "d": True}
