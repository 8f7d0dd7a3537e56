"""``scorepde simulate --formulation F -c NAME=VALUE ... --out f.npy``: one condition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scorepde.cli import app
from scorepde.data.schema import read_attributes, read_dataset
from scorepde.problems import get_problem

runner = CliRunner()
FIG4 = ["-c", "U0=0", "-c", "l=0.1", "-c", "F_right=25"]


def test_one_condition_published_code_writes_npy(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "f.npy"
    args = ["simulate", "battery", "--formulation", "published-code", *FIG4]
    result = runner.invoke(app, [*args, "--per-condition", "40", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    fields = np.load(out)
    assert fields.shape == (40, 2, 100)
    expected = get_problem("battery", formulation="published-code").simulate(
        [[0.0, 0.1, 25.0]], 40, [np.random.SeedSequence(3)]
    )["fields"]
    np.testing.assert_array_equal(fields, expected)
    assert "40 fields" in result.output and "published-code" in result.output
    # c after 100 s stays within a few mol/m^3 of c_right (the published transient)
    assert np.max(np.abs(fields[:, 0] - 1000.0)) < 10.0


def test_one_condition_post_formulation_and_order_of_options(tmp_path: Path) -> None:
    out = tmp_path / "post.npy"
    args = ["simulate", "-c", "F_right=25", "-c", "l=0.1", "-c", "U0=0", "--per-condition", "5"]
    result = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    fields = np.load(out)
    assert fields.shape == (5, 2, 100)
    # the post's steady c moves by hundreds of mol/m^3 at F_right = 25
    assert np.max(np.abs(fields[:, 0] - 1000.0)) > 100.0


def test_design_with_formulation_writes_hdf5(tmp_path: Path) -> None:
    out = tmp_path / "d.h5"
    args = ["simulate", "--formulation", "published-code", "--conditions", "2"]
    result = runner.invoke(
        app, [*args, "--per-condition", "2", "--no-plot", "--quiet", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = read_dataset(out)
    assert data.fields.shape == (4, 2, 100)
    assert np.all(np.abs(data.conditions[:, 0]) <= 0.2)
    assert "published-code" in str(read_attributes(out))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "U0=0", "-c", "l=0.1", "--out", "{tmp}/f.npy"], "missing ['F_right']"),
        ([*FIG4, "-c", "T=3", "--out", "{tmp}/f.npy"], "unknown ['T']"),
        (["-c", "U0", "--out", "{tmp}/f.npy"], "'U0' is not NAME=NUMBER"),
        (["-c", "U0=abc", "--out", "{tmp}/f.npy"], "'U0=abc' is not NAME=NUMBER"),
        ([*FIG4, "--out", "{tmp}/f.h5"], "writes a .npy file"),
        (["--out", "{tmp}/f.npy"], ".npy output needs one condition"),
        (["--formulation", "paper", *FIG4, "--out", "{tmp}/f.npy"], "formulation = 'paper'"),
        (["-c", "U0=0", "-c", "l=0", "-c", "F_right=1", "--out", "{tmp}/f.npy"], "l = 0.0"),
        (["--out", "{tmp}/f.csv"], "has suffix '.csv'"),
    ],
)
def test_bad_single_condition_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = runner.invoke(app, ["simulate", *args, "--no-plot"], env={"COLUMNS": "300"})
    assert result.exit_code != 0
    assert message in " ".join(result.output.split()), result.output
    assert not list(tmp_path.iterdir())
