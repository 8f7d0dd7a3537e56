"""``scorepde simulate`` through typer's CliRunner: files, figures, summary, argument errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scorepde import __version__
from scorepde.cli import app
from scorepde.data.schema import read_dataset

runner = CliRunner()


def test_simulate_writes_the_file_figures_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "train.h5"
    args = ["simulate", "battery", "--conditions", "3", "--per-condition", "2", "--seed", "1"]
    result = runner.invoke(app, [*args, "--chunk-conditions", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = read_dataset(out)
    assert data.fields.shape == (6, 2, 100) and data.attrs["seed"] == 1
    assert (tmp_path / "runs" / "train_fields.png").stat().st_size > 0
    assert (tmp_path / "runs" / "train_band.png").stat().st_size > 0
    assert "6 fields (3 conditions x 2 draws" in result.output
    assert not (tmp_path / "runs" / "train.h5.parts").exists()

    again = runner.invoke(app, [*args, "--out", str(out), "--no-plot", "--quiet"])
    assert again.exit_code == 0 and again.output == ""

    conflict = runner.invoke(app, [*args[:-1], "2", "--out", str(out), "--no-plot"])
    assert conflict.exit_code == 2
    assert "different config" in conflict.output and "--overwrite" in conflict.output


def test_no_plot_writes_no_figures(tmp_path: Path) -> None:
    out = tmp_path / "test.hdf5"
    args = ["simulate", "--conditions", "1", "--per-condition", "2", "--split", "test"]
    result = runner.invoke(app, [*args, "--out", str(out), "--no-plot", "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.hdf5"]
    assert read_dataset(out).attrs["split"] == "test"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--conditions", "0"], "0 is not allowed; expected an integer >= 1"),
        (["--per-condition", "-2"], "-2 is not allowed"),
        (["--out", "fields.txt"], "has suffix '.txt'"),
        (["--split", "dev"], "'dev' is not allowed"),
        (["--design", "grid"], "'grid' is not allowed"),
        (["--seed", "-1"], "-1 is not allowed"),
        (["heat"], "'heat' is not a known problem"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = ["--out", str(tmp_path / "x.h5")] if "--out" not in args else []
    result = runner.invoke(app, ["simulate", *args, *out], env={"COLUMNS": "200"})
    assert result.exit_code != 0
    assert message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "x.h5").exists()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"scorepde {__version__}"
