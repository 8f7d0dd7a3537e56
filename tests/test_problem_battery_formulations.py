"""BatteryProblem(formulation=...): "post" unchanged, "published-code" with its own specs."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from helpers import tiny_recipe_dict
from scorepde import pipeline
from scorepde.data.campaign import SimulationConfig, simulate_campaign
from scorepde.data.schema import read_attributes
from scorepde.physics.battery import solve_battery
from scorepde.physics.random_fields import GaussianProcessSampler, porosity_from_latent
from scorepde.problems import BatteryProblem, get_problem
from scorepde.recipes import Recipe


@pytest.fixture(scope="module")
def published() -> BatteryProblem:
    return get_problem("battery", formulation="published-code")


def test_post_is_the_default_and_bit_identical() -> None:
    default, post = get_problem("battery"), get_problem("battery", formulation="post")
    conditions = np.array([[0.1, 0.1, 25.0], [-0.3, 0.3, 5.0]])
    a = default.simulate(conditions, 4, [1, 2])["fields"]
    b = post.simulate(conditions, 4, [1, 2])["fields"]
    np.testing.assert_array_equal(a, b)
    # the path of the code before the option existed: exact GP on the vertices, steady solve
    sampler = GaussianProcessSampler(post.params.grid())
    rows = []
    for row, seed in zip(conditions, [1, 2], strict=True):
        gaussian = sampler.sample(row[1] * post.params.length, 4, np.random.default_rng(seed))
        rows.append(porosity_from_latent(gaussian))
    porosity = np.concatenate(rows)
    repeated = np.repeat(conditions, 4, axis=0)
    expected = solve_battery(porosity, repeated[:, 0], repeated[:, 2]).as_channels()
    np.testing.assert_array_equal(a, expected)
    assert default.options()["formulation"] == "post" and "precision" not in default.options()
    assert [i.condition for i in default.invariances()] == ["U0"]


def test_published_code_specs_grid_and_records(published: BatteryProblem) -> None:
    specs = {s.name: s for s in published.conditions}
    assert (specs["U0"].low, specs["U0"].high) == (-0.2, 0.2)
    assert (specs["l"].low, specs["l"].high, specs["l"].log_scale) == (0.02, 0.2, True)
    assert (specs["F_right"].low, specs["F_right"].high) == (0.0, 50.0)
    # the class attribute (and so every post instance) keeps the post's ranges
    assert {s.name: (s.low, s.high) for s in BatteryProblem.conditions}["U0"] == (-0.5, 0.5)
    assert {s.name: (s.low, s.high) for s in get_problem("battery").conditions}["l"] == (
        0.05,
        0.5,
    )
    np.testing.assert_allclose(published.grid[[0, 1, -1]], [0.5e-6, 1.5e-6, 99.5e-6])
    assert published.invariances() == ()
    attrs = published.attributes()
    assert attrs["formulation"] == "published-code"
    assert attrs["transient.time_step"] == 0.1 and attrs["transient.final_time"] == 100.0
    assert attrs["latent.jitter"] == 1e-4 and attrs["transient.precision"] == "float64"
    assert json.loads(attrs["condition_specs"])[0]["low"] == -0.2
    rebuilt = get_problem("battery", **published.options())
    assert rebuilt.attributes() == attrs
    assert get_problem("battery").attributes()["formulation"] == "post"


def test_bad_formulation_and_precision_are_refused() -> None:
    with pytest.raises(ValueError, match=r"formulation = 'paper'.*'post', 'published-code'"):
        BatteryProblem(formulation="paper")
    with pytest.raises(ValueError, match="precision = 'float32' is not allowed for formulation"):
        BatteryProblem(precision="float32")
    with pytest.raises(ValueError, match="precision = 'half'"):
        BatteryProblem(formulation="published-code", precision="half")


def test_published_fields_honour_declared_constraints_and_depend_on_u0(
    published: BatteryProblem,
) -> None:
    out = published.simulate([[-0.2, 0.1, 25.0], [0.2, 0.1, 25.0]], 200, [5, 5])
    fields = out["fields"]
    assert fields.shape == (400, 2, 100)
    for constraint in published.boundary_conditions():
        channel = published.channels.index(constraint.channel)
        values = fields[:, channel, 0 if constraint.side == "left" else -1]
        np.testing.assert_array_equal(values, constraint.value)
    # same porosity draws (same seed) at two U0: c moves, phi does not
    low, high = fields[:200], fields[200:]
    np.testing.assert_allclose(low[:, 1], high[:, 1], atol=1e-12)
    shift = (low[:, 0] - high[:, 0]).mean(axis=0)
    spread = low[:, 0].std(axis=0)
    assert np.max(np.abs(shift[:-1]) / spread[:-1]) > 1.0  # U0 moves c by > 1 std somewhere


def test_published_float32_differs_from_float64_in_phi() -> None:
    single = get_problem("battery", formulation="published-code", precision="float32")
    double = get_problem("battery", formulation="published-code")
    a = single.simulate([[0.0, 0.1, 25.0]], 100, [3])["fields"]
    b = double.simulate([[0.0, 0.1, 25.0]], 100, [3])["fields"]
    phi_error = np.max(np.abs(a[:, 1] - b[:, 1]))
    assert phi_error > 0.1 * b[:, 1].std(axis=0).max()  # float32 round-off of phi's own size
    assert single.options()["precision"] == "float32"


def test_campaign_records_the_formulation(tmp_path) -> None:
    config = SimulationConfig(
        problem="battery",
        n_conditions=2,
        per_condition=3,
        seed=0,
        chunk_conditions=2,
        problem_options={"formulation": "published-code"},
    )
    path = simulate_campaign(config, tmp_path / "pub.h5", progress=False)
    attrs = read_attributes(path)
    flat = json.dumps({k: str(v) for k, v in attrs.items()})
    assert "published-code" in flat
    # conditions drawn in the published ranges
    with h5py.File(path, "r") as handle:
        conditions = handle["conditions"][...]
    assert np.all(np.abs(conditions[:, 0]) <= 0.2)
    assert np.all((conditions[:, 1] >= 0.02) & (conditions[:, 1] <= 0.2))


def test_pipeline_evaluates_against_the_formulation_it_was_trained_on(tmp_path) -> None:
    """The model records only the problem's name; the evaluation rebuilds the problem with the
    recipe's problem_options (here the formulation), not with the defaults."""
    data = tiny_recipe_dict()
    for split in ("train", "test"):
        data["data"][split]["problem_options"] = {"formulation": "published-code"}
    data["evaluation"].update(conditions=[[0.0, 0.1, 25.0]], held_out=0, invariance_shift=None)
    report = pipeline.run(Recipe.from_dict(data), tmp_path / "run", progress=False, log=None)
    results = json.loads((report.parent / "report.json").read_text(encoding="utf-8"))
    text = json.dumps(results)
    assert "c:dirichlet:right" in text and "neumann" not in text  # published-code's constraints
    assert '"invariances"' not in text  # published-code declares none
