"""The two-stage model: the solution map (``scorepde.training.solution_map``), the problem's
declarations it trains on (Darcy flow), and the pipeline that composes the stages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from helpers import load_benchmark
from scorepde import pipeline
from scorepde.configuration import ConfigError
from scorepde.nets.gridmap import GridMapNet
from scorepde.physics.darcy import darcy_residual, solve_darcy
from scorepde.problems.battery import BatteryProblem
from scorepde.problems.darcy import DarcyProblem
from scorepde.recipes import Recipe
from scorepde.training.checkpoint import CheckpointError
from scorepde.training.conditional import ConditionalModel, load_trained_model
from scorepde.training.solution_map import (
    SOLUTION_MAP_FOLDER,
    SolutionMap,
    SolutionMapConfig,
    StagedModel,
    fit_solution_map,
    split_channels,
    two_point_energy,
)

N = 8


@pytest.fixture(scope="module")
def problem() -> DarcyProblem:
    return DarcyProblem(n_cells=N)


@pytest.fixture(scope="module")
def pairs(problem: DarcyProblem) -> np.ndarray:
    """60 simulated (log_k, u) pairs at three conditions, ``(60, 2, 8, 8)``."""
    conditions = np.array([[0.1, 0.5], [0.3, 1.2], [0.06, 1.4]])
    rngs = [np.random.default_rng(seed) for seed in range(3)]
    return problem.simulate(conditions, 20, rngs)["fields"]


def test_two_point_energy_is_the_operator_quadratic_form(
    problem: DarcyProblem, pairs: np.ndarray
) -> None:
    """``sum w (e+ - e-)^2`` over the declared faces equals ``e . A e`` with ``A`` the solver's
    own operator (its residual with zero boundary values), for random errors."""
    norm = problem.solution_norm(pairs)
    error = np.random.default_rng(1).standard_normal(pairs[:, 1].shape)
    a_e = darcy_residual(pairs[:, 0], error, left=0.0, right=0.0)
    expected = (error * a_e).sum(axis=(1, 2))
    weights = [torch.tensor(w) for w in norm.face_weights]
    energy = two_point_energy(torch.tensor(error), weights).numpy()
    np.testing.assert_allclose(energy, expected, rtol=1e-10)
    assert np.all(energy > 0)


def test_declared_reflections_map_solutions_to_solutions(
    problem: DarcyProblem, pairs: np.ndarray
) -> None:
    """Each declared reflection of a simulated pair is the solver's solution of the reflected
    medium (so the augmentation adds only true pairs)."""
    reflections = problem.solution_reflections()
    assert {r.axis for r in reflections} == {0, 1}
    for reflection in reflections:
        log_k = np.flip(pairs[:, 0], axis=reflection.axis + 1)
        u = reflection.scale * np.flip(pairs[:, 1], axis=reflection.axis + 1) + reflection.offset
        np.testing.assert_allclose(u, solve_darcy(log_k), atol=1e-10)


def test_split_channels(problem: DarcyProblem) -> None:
    assert split_channels(problem) == ([0], [1])
    with pytest.raises(ValueError, match="solution_channels"):
        split_channels(BatteryProblem())


def test_grid_map_net_shapes_and_errors() -> None:
    for rank, shape in ((1, (16,)), (2, (8, 16)), (3, (4, 4, 8))):
        net = GridMapNet(rank, 3, 2, width=4, levels=3)
        assert net(torch.zeros(2, 3, *shape)).shape == (2, 2, *shape)
    with pytest.raises(ValueError, match="divisible by 4"):
        GridMapNet(2, 3, 1, width=4, levels=3)(torch.zeros(1, 3, 6, 8))
    with pytest.raises(ValueError, match="rank = 4"):
        GridMapNet(4, 1, 1)
    with pytest.raises(ValueError, match="width = 0"):
        GridMapNet(2, 1, 1, width=0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("steps", 0),
        ("width", 2.5),
        ("learning_rate", -1.0),
        ("energy_weight", float("nan")),
        ("num_threads", 0),
        ("seed", -1),
    ],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"solution_map.{field}"):
        SolutionMapConfig(**{field: value})


def test_recipe_section_is_checked() -> None:
    data = Recipe().to_dict()
    data["solution_map"] = {"steps": 5, "width": 8}
    assert Recipe.from_dict(data).solution_map == SolutionMapConfig(steps=5, width=8)
    data["solution_map"] = {"stepz": 5}
    with pytest.raises(ConfigError, match="stepz"):
        Recipe.from_dict(data)


SMALL = SolutionMapConfig(width=8, levels=2, steps=60, batch_size=16, checkpoint_every=20)


def test_map_learns(problem: DarcyProblem, pairs: np.ndarray) -> None:
    """Training lowers the r.m.s. error of u well below that of the base (the mean solution)."""
    fitted = fit_solution_map(problem, pairs, dataclasses.replace(SMALL, steps=200), log=None)
    base_error = np.sqrt(np.mean((pairs[:, 1] - pairs[:, 1].mean(0)) ** 2))
    error = np.sqrt(np.mean((fitted(pairs[:, :1])[:, 0] - pairs[:, 1]) ** 2))
    assert error < 0.6 * base_error


def test_map_resumes_bit_identically(problem: DarcyProblem, pairs: np.ndarray, tmp_path) -> None:
    """An interrupted run resumed from its checkpoint ends with the same weights as an
    uninterrupted one; a checkpoint of another config is refused."""
    config = SMALL
    whole = fit_solution_map(problem, pairs, config, tmp_path / "whole", log=None)

    class Stop(Exception):
        pass

    def stop_at_40(message: str) -> None:
        if "step 40/" in message:
            raise Stop

    with pytest.raises(Stop):
        fit_solution_map(problem, pairs, config, tmp_path / "cut", log=stop_at_40)
    resumed = fit_solution_map(problem, pairs, config, tmp_path / "cut", log=None)
    for key, value in whole.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[key], value, rtol=0, atol=0)
    # threads and checkpoint spacing do not change the weights: the finished run is reused
    again = dataclasses.replace(config, num_threads=1, checkpoint_every=7)
    reused = fit_solution_map(problem, pairs, again, tmp_path / "cut", log=None)
    for key, value in whole.net.state_dict().items():
        torch.testing.assert_close(reused.net.state_dict()[key], value, rtol=0, atol=0)
    other = dataclasses.replace(config, width=4)
    with pytest.raises(ValueError, match="delete it to train afresh"):
        fit_solution_map(problem, pairs, other, tmp_path / "cut", log=None)


def test_map_save_load_round_trip_and_corrupt_files(
    problem: DarcyProblem, pairs: np.ndarray, tmp_path
) -> None:
    fitted = fit_solution_map(problem, pairs, dataclasses.replace(SMALL, steps=5), log=None)
    folder = fitted.save(tmp_path / "map")
    loaded = SolutionMap.load(folder)
    np.testing.assert_array_equal(loaded(pairs[:5, :1]), fitted(pairs[:5, :1]))
    fields = loaded.assemble(pairs[:5, :1], loaded(pairs[:5, :1]))
    assert fields.shape == (5, 2, N, N)
    np.testing.assert_array_equal(fields[:, 0], pairs[:5, 0])
    with pytest.raises(ValueError, match="expected"):
        loaded(pairs[:5])  # both channels given where the input channel is expected
    (folder / "solution_map.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt"):
        SolutionMap.load(folder)
    (folder / "solution_map.yaml").unlink()
    with pytest.raises(CheckpointError, match=r"missing solution_map\.yaml"):
        SolutionMap.load(folder)


def two_stage_recipe() -> Recipe:
    return Recipe.from_dict(
        {
            "name": "two-stage-test",
            "data": {
                "train": {
                    "problem": "darcy2d",
                    "problem_options": {"n_cells": N},
                    "n_conditions": 24,
                    "per_condition": 5,
                    "seed": 0,
                    "split": "train",
                    "design": "sobol",
                },
                "test": {
                    "problem": "darcy2d",
                    "problem_options": {"n_cells": N},
                    "n_conditions": 2,
                    "per_condition": 20,
                    "seed": 0,
                    "split": "test",
                    "design": "sobol",
                },
                "validation_fraction": 0.1,
                "normalisation": "conditional",
                "normalisation_degree": 1,
                "subspace_components": 64,
                "subspace_whiten": "conditional",
                "subspace_whiten_degree": 1,
                "subspace_whiten_fit": "log_variance",
            },
            "model": {
                "backbone": {
                    "name": "mlp",
                    "options": {"hidden": 32, "depth": 1, "zero_output": True},
                },
                "process": {"name": "vp", "beta_min": 0.1, "beta_max": 20.0, "t_min": 1e-5},
                "sigma_data": 1.0,
                "parametrisation": "edm",
            },
            "training": {"epochs": 0, "batch_size": 16, "device": "cpu", "seed": 0},
            "sampling": {"sampler": "ode_dpm2m", "steps": 19, "batch_size": 500, "seed": 0},
            "evaluation": {
                "conditions": [[0.2, 1.0]],
                "held_out": 0,
                "n_samples": 50,
                "targets": "quick-2d",
            },
            "solution_map": dataclasses.asdict(SMALL),
        }
    )


def test_pipeline_trains_and_samples_a_two_stage_model(tmp_path) -> None:
    """The run folder's model is a StagedModel: its first stage learns log_k only (an
    untrained zero-output network, i.e. the whitened Gaussian), the map gives u, and a sample
    has both channels in the problem's order, u being the map of the sampled log_k."""
    recipe = two_stage_recipe()
    report = pipeline.run(recipe, tmp_path / "run", progress=False, log=None)
    assert report.is_file()
    model = pipeline.load_model(tmp_path / "run")
    assert isinstance(model, StagedModel)
    assert isinstance(model.inputs, ConditionalModel)
    assert model.inputs.channel_names == ["log_k"]
    assert model.channel_names == ["log_k", "u"]
    assert model.field_spec.channels == ("log_k", "u")
    assert (tmp_path / "run" / "model" / SOLUTION_MAP_FOLDER / "solution_map.yaml").is_file()
    fields = model.sample([0.2, 1.0], 400, seed=0)
    assert fields.shape == (400, 2, N, N)
    np.testing.assert_allclose(fields[:, 1:], model.solution_map(fields[:, :1]), rtol=1e-6)
    # the untrained first stage is the normaliser's Gaussian: whitened coefficients ~ N(0, 1)
    encoded = model.inputs.condition_encoder.encode(np.tile([0.2, 1.0], (400, 1)))
    z = np.asarray(model.inputs.normaliser.transform(fields[:, :1], encoded))
    assert abs(z.mean()) < 0.05
    assert abs(z.std() - 1.0) < 0.05
    # loading the exported folder directly gives the same two-stage model
    again = load_trained_model(tmp_path / "run" / "model")
    np.testing.assert_array_equal(
        again.sample([0.2, 1.0], 5, seed=3), model.sample([0.2, 1.0], 5, seed=3)
    )
    # the sampling-time benchmark times the model, each stage and the simulator
    rows = load_benchmark("bench_darcy_sampling").main(
        [str(tmp_path / "run"), "--n", "20", "--repeat", "1", "--threads", "1"]
    )
    labels = [str(row["sampler"]) for row in rows]
    assert labels[0].startswith("simulator") and "stage 1 alone" in labels[2]
    assert all(float(row["seconds"]) > 0 for row in rows)
    # a second run resumes everything and changes nothing
    pipeline.run(recipe, tmp_path / "run", progress=False, log=None)
    np.testing.assert_array_equal(
        pipeline.load_model(tmp_path / "run").sample([0.2, 1.0], 5, seed=3),
        again.sample([0.2, 1.0], 5, seed=3),
    )


def test_two_stage_recipe_needs_declared_solution_channels() -> None:
    data = two_stage_recipe().to_dict()
    data["data"]["train"] = {"problem": "battery", "n_conditions": 4, "per_condition": 2}
    with pytest.raises(ValueError, match="solution_channels"):
        pipeline.complete_recipe(Recipe.from_dict(data))
