"""The Python API end to end on a tiny recipe: run folder layout, report structure, resume,
``load_model`` and ``TrainedModel.sample`` (shape, units, seeds, batch-size independence), the
U0-invariance check, and recipe round-trips.

The tiny run is built once per module (a few seconds) and shared; tests only read it, except
``test_rerun_resumes_without_new_work``, which re-runs it and checks that nothing changes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from helpers import CONDITION, tiny_recipe_dict
from scorepde import pipeline
from scorepde.configuration import ConfigError
from scorepde.data.campaign import SimulationConfig, problem_from_config
from scorepde.evaluation.evaluate import shifted_condition, simulator_reference
from scorepde.recipes import Recipe, list_recipes, load_recipe
from scorepde.training.model import TrainedModel


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pipeline") / "run"
    report = pipeline.run(Recipe.from_dict(tiny_recipe_dict()), folder, progress=False, log=None)
    assert report == folder / "evaluation" / "report.md"
    return folder


@pytest.fixture(scope="module")
def report(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "evaluation" / "report.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def model(run_dir: Path) -> TrainedModel:
    return pipeline.load_model(run_dir)


def _history_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "training" / "history.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ----------------------------------------------------------------------------- run folder


def test_run_writes_every_artefact(run_dir: Path) -> None:
    expected = [
        "recipe.yaml",
        "data/train.h5",
        "data/test.h5",
        "training/history.csv",
        "model/model.yaml",
        "model/model.safetensors",
        "model/normaliser.json",
        "evaluation/report.json",
        "evaluation/report.md",
    ]
    for name in expected:
        assert (run_dir / name).is_file(), name
        assert (run_dir / name).stat().st_size > 0, name
    figures = sorted((run_dir / "evaluation" / "figures").glob("*.png"))
    assert len(figures) == 2  # one per evaluation condition (fixed + held-out)
    assert all(f.stat().st_size > 0 for f in figures)
    assert load_recipe(run_dir / "recipe.yaml").name == "tiny"
    assert "conditions pass" in (run_dir / "evaluation" / "report.md").read_text("utf-8")


def test_history_has_one_row_per_epoch(run_dir: Path) -> None:
    rows = _history_rows(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(np.isfinite(float(r["train_loss"])) for r in rows)
    assert np.isfinite(float(rows[-1]["val_loss"]))  # 2 of the 6 conditions validate


def test_data_sets_follow_the_recipe(run_dir: Path) -> None:
    from scorepde.data.schema import read_dataset

    train = read_dataset(run_dir / "data" / "train.h5")
    test = read_dataset(run_dir / "data" / "test.h5")
    assert train.fields.shape == (48, 2, 100) and train.attrs["split"] == "train"
    assert test.fields.shape == (12, 2, 100) and test.attrs["split"] == "test"


def test_report_has_one_result_per_condition_with_full_structure(
    run_dir: Path, report: dict[str, Any]
) -> None:
    assert set(report) >= {"title", "metadata", "provenance", "results"}
    assert "tiny" in report["title"]
    assert report["metadata"]["steps"] == 5 and report["metadata"]["n_samples"] == 20
    results = report["results"]
    assert [r["label"] for r in results] == ["fixed", "held-out"]
    assert results[0]["condition"] == {"U0": 0.0, "l": 0.1, "F_right": 25.0}
    for result in results:
        assert {"condition", "comparison", "targets", "failures", "passed", "invariance"} <= set(
            result
        )
        assert isinstance(result["passed"], bool)
        assert result["passed"] == (not result["failures"])  # untrained: structure, not a pass
        comparison = result["comparison"]
        assert comparison["channels"] == ["c", "phi"]
        assert comparison["n"]["model"] == 20
        for block in ("metrics", "floor"):
            for metric in ("mean_error", "std_error", "coverage", "energy_distance"):
                values = comparison[block][metric]
                assert len(values) == 2, (block, metric)
                assert all(v is not None and np.isfinite(v) for v in values), (block, metric)
        assert result["targets"]["name"] == "quick"
        for figure in result["figures"]:
            assert (run_dir / "evaluation" / figure).is_file()


def test_held_out_condition_comes_from_the_test_design(
    run_dir: Path, report: dict[str, Any]
) -> None:
    from scorepde.data.schema import read_dataset

    test = read_dataset(run_dir / "data" / "test.h5")
    held_out = report["results"][1]["condition"]
    row = [held_out[name] for name in ("U0", "l", "F_right")]
    assert np.any(np.all(np.isclose(test.conditions, row), axis=1))


def test_rerun_resumes_without_new_work(run_dir: Path) -> None:
    data = [run_dir / "data" / "train.h5", run_dir / "data" / "test.h5"]
    stamps = [p.stat().st_mtime_ns for p in data]
    rows = _history_rows(run_dir)
    checkpoints = sorted(p.name for p in (run_dir / "training" / "checkpoints").iterdir())
    messages: list[str] = []
    pipeline.run(Recipe.from_dict(tiny_recipe_dict()), run_dir, progress=False, log=messages.append)
    assert [p.stat().st_mtime_ns for p in data] == stamps  # not re-simulated
    assert _history_rows(run_dir) == rows  # no epoch beyond the configured 2
    assert sorted(p.name for p in (run_dir / "training" / "checkpoints").iterdir()) == checkpoints
    assert (run_dir / "training" / "checkpoints" / "latest").read_text().strip() == "epoch-000002"
    assert (run_dir / "evaluation" / "report.json").is_file()
    assert any("report:" in m for m in messages)


# ----------------------------------------------------------------------------- the model


def test_load_model_from_run_model_and_training_folders(run_dir: Path, model: TrainedModel) -> None:
    from_model = pipeline.load_model(run_dir / "model")
    from_checkpoint = pipeline.load_model(run_dir / "training")
    for loaded in (model, from_model, from_checkpoint):
        assert loaded.problem_name == "battery"
        assert loaded.sample_shape == (2, 100)
        assert loaded.channel_names == ["c", "phi"]
        assert loaded.condition_names == ["U0", "l", "F_right"]
    a = model.sample(CONDITION, n=3, steps=3, seed=4)
    np.testing.assert_array_equal(a, from_model.sample(CONDITION, n=3, steps=3, seed=4))
    # the exported model holds the final checkpoint's EMA weights
    np.testing.assert_array_equal(a, from_checkpoint.sample(CONDITION, n=3, steps=3, seed=4))
    assert model.metadata["recipe"] == "tiny"


def test_sample_shape_units_and_seeds(model: TrainedModel) -> None:
    fields = model.sample(CONDITION, n=7, steps=3, seed=1)
    assert fields.shape == (7, 2, 100)
    assert np.all(np.isfinite(fields))
    c, phi = fields[:, 0], fields[:, 1]
    assert 1e2 < np.abs(c).mean() < 1e4  # mol/m^3: around the 1e3 reference concentration
    assert np.abs(phi).max() < 1.0  # volts: small
    np.testing.assert_array_equal(fields, model.sample(CONDITION, n=7, steps=3, seed=1))
    assert not np.allclose(fields, model.sample(CONDITION, n=7, steps=3, seed=2))


def test_sample_does_not_depend_on_batch_size(model: TrainedModel) -> None:
    whole = model.sample(CONDITION, n=7, steps=3, seed=1, batch_size=7)
    pieces = model.sample(CONDITION, n=7, steps=3, seed=1, batch_size=2)
    # per-sample seeds: only float32 round-off of batched convolutions may differ
    scale = np.abs(whole).max(axis=(0, 2))
    assert np.all(np.abs(whole - pieces).max(axis=(0, 2)) <= 1e-5 * scale)
    # and sample i is the same whether drawn alone or among others
    first = model.sample(CONDITION, n=3, steps=3, seed=1, batch_size=2)
    assert np.all(np.abs(first - whole[:3]).max(axis=(0, 2)) <= 1e-5 * scale)


def test_sample_refuses_bad_input(model: TrainedModel) -> None:
    with pytest.raises(ValueError, match="unknown sampler"):
        model.sample(CONDITION, n=2, sampler="euler", steps=3)
    with pytest.raises(ValueError, match="positive integer"):
        model.sample(CONDITION, n=0, steps=3)
    with pytest.raises(ValueError, match="expects 3"):
        model.sample([0.0, 0.1], n=2, steps=3)


def test_save_samples_writes_hdf5(tmp_path: Path, model: TrainedModel) -> None:
    import h5py

    fields = model.sample(CONDITION, n=4, steps=3, seed=0)
    path = pipeline.save_samples(
        tmp_path / "s.h5", fields, model, CONDITION, sampler="euler_maruyama", steps=3, seed=0
    )
    with h5py.File(path, "r") as handle:
        np.testing.assert_array_equal(handle["samples"][()], fields)
        np.testing.assert_array_equal(handle["c"][()], fields[:, 0])
        np.testing.assert_array_equal(handle["phi"][()], fields[:, 1])
        assert list(handle.attrs["condition_names"]) == ["U0", "l", "F_right"]
        np.testing.assert_array_equal(handle.attrs["conditions"], CONDITION)
        assert handle.attrs["steps"] == 3


# ----------------------------------------------------------------------------- U0 invariance


def test_simulator_is_u0_invariant_and_the_evaluation_uses_it() -> None:
    problem = problem_from_config(SimulationConfig())
    moved = shifted_condition(problem, np.array(CONDITION), "U0", 0.4)
    np.testing.assert_allclose(moved, [0.4, 0.1, 25.0])
    # reflected back into the design range when the shift would leave it
    np.testing.assert_allclose(
        shifted_condition(problem, np.array([0.3, 0.1, 25.0]), "U0", 0.4), [-0.1, 0.1, 25.0]
    )
    # the same draws at U0 and U0 + 0.4: identical fields, so the model must be invariant too
    a = simulator_reference(problem, CONDITION, 3, seed=1, index=0, stream=0)
    b = simulator_reference(problem, moved, 3, seed=1, index=0, stream=0)
    scale = np.abs(a).max(axis=(0, 2))
    assert np.all(np.abs(a - b).max(axis=(0, 2)) <= 1e-9 * scale)


def test_results_carry_the_invariance_check(report: dict[str, Any]) -> None:
    for result in report["results"]:
        check = result["invariance"]
        assert {"model", "floor", "mean_error_ratio", "std_error_ratio", "energy_ratio"} <= set(
            check
        )
        for entry in (check["model"], check["floor"]):
            assert len(entry["mean_error"]) == 2 and len(entry["std_error"]) == 2
            assert np.isfinite(entry["energy_distance"])
        condition, shifted = result["condition"], check["shifted_condition"]
        assert abs(abs(shifted["U0"] - condition["U0"]) - 0.4) < 1e-12
        assert -0.5 <= shifted["U0"] <= 0.5
        assert shifted["l"] == condition["l"] and shifted["F_right"] == condition["F_right"]


def test_evaluate_refuses_unknown_targets(tmp_path: Path, model: TrainedModel) -> None:
    from scorepde.recipes import EvaluationConfig

    with pytest.raises(ValueError, match="targets = 'strict'"):
        pipeline.evaluate(model, tmp_path, evaluation=EvaluationConfig(targets="strict"), log=None)


# ----------------------------------------------------------------------------- recipes


@pytest.mark.parametrize("name", list_recipes())
def test_shipped_recipe_round_trips(tmp_path: Path, name: str) -> None:
    recipe = load_recipe(name)
    assert recipe.name == name
    data = recipe.to_dict()
    assert Recipe.from_dict(data) == recipe
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    recipe.save(tmp_path / f"{name}.yaml")
    assert load_recipe(tmp_path / f"{name}.yaml") == recipe


def test_recipes_are_shipped() -> None:
    assert "battery-seed" in list_recipes()


def test_tiny_recipe_round_trips_through_yaml(tmp_path: Path) -> None:
    recipe = Recipe.from_dict(tiny_recipe_dict())
    recipe.save(tmp_path / "tiny.yaml")
    assert load_recipe(tmp_path / "tiny.yaml") == recipe
    assert Recipe.from_dict(recipe.to_dict()) == recipe


@pytest.mark.parametrize(
    ("section", "key"), [(None, "epochz"), ("training", "epochz"), ("evaluation", "heldout")]
)
def test_unknown_recipe_key_is_an_error_naming_it(
    tmp_path: Path, section: str | None, key: str
) -> None:
    data = tiny_recipe_dict()
    (data if section is None else data[section])[key] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=key):
        load_recipe(path)
    with pytest.raises(ConfigError, match=key):
        Recipe.from_dict(data)


def test_unknown_recipe_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="unknown recipe 'no-such-recipe'") as info:
        load_recipe("no-such-recipe")
    for name in list_recipes():
        assert name in str(info.value)


# ----------------------------------------------------------------------------- subspace


def _subspace_recipe(components: int = 6) -> Recipe:
    data = tiny_recipe_dict()
    data["data"]["subspace_components"] = components
    data["model"]["backbone"] = {"name": "mlp", "options": {"hidden": 16, "depth": 1}}
    return Recipe.from_dict(data)


@pytest.mark.filterwarnings("ignore:SubspaceNormaliser")  # 6 directions of 32 tiny-run fields
def test_subspace_model_samples_physical_fields_that_keep_dirichlet_values(
    tmp_path: Path,
) -> None:
    """A model trained on subspace coefficients: its model space is (1, K), but it samples
    physical (n, 2, N) fields, whose Dirichlet values hold to rounding even from a barely
    trained network (every basis direction has them)."""
    recipe = _subspace_recipe()
    folder = tmp_path / "run"
    data = pipeline.simulate(recipe.data.train, folder / "train.h5", progress=False)
    trained, _ = pipeline.train(recipe, data, folder, progress=False, log=None)
    assert trained.sample_shape == (1, 6)
    reloaded = pipeline.load_model(folder)
    fields = reloaded.sample(CONDITION, n=5, steps=3, seed=0)
    assert fields.shape == (5, 2, 100) and np.all(np.isfinite(fields))
    c_right = problem_from_config(recipe.data.train).params.c_right
    np.testing.assert_allclose(fields[:, 0, -1], c_right, rtol=1e-9)
    assert np.abs(fields[:, 1, 0]).max() < 1e-9
    np.testing.assert_array_equal(fields, trained.sample(CONDITION, n=5, steps=3, seed=0))


def test_subspace_needs_a_matching_vector_backbone() -> None:
    recipe = _subspace_recipe()
    recipe.model.backbone.options["data_dim"] = 200
    with pytest.raises(ValueError, match="data_dim must be 6"):
        pipeline.complete_recipe(recipe)
    film = Recipe.from_dict({**tiny_recipe_dict()})
    film.data.subspace_components = 6
    with pytest.raises(ValueError, match="needs a vector backbone"):
        pipeline.complete_recipe(film)
    with pytest.raises(ConfigError, match="subspace_components = 0"):
        data = tiny_recipe_dict()
        data["data"]["subspace_components"] = 0
        Recipe.from_dict(data)
