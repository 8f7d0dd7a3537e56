"""Problems: registry, condition checks, boundary conditions of simulated fields, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from scorepde.problems import PROBLEMS, BatteryProblem, ConditionSpec, get_problem


@pytest.fixture(scope="module")
def battery() -> BatteryProblem:
    return get_problem("battery")


def test_registry_builds_battery_and_names_known_problems() -> None:
    assert isinstance(get_problem("battery"), BatteryProblem)
    with pytest.raises(ValueError, match=r"'heat'.*\['battery', "):
        get_problem("heat")
    assert PROBLEMS["battery"] is BatteryProblem


def test_battery_metadata(battery: BatteryProblem) -> None:
    assert battery.condition_names == ("U0", "l", "F_right")
    assert battery.condition_units == ("V", "L", "A/m^2")
    assert battery.channels == ("c", "phi") and battery.channel_units == ("mol/m^3", "V")
    assert battery.latent_name == "porosity"
    assert battery.grid.shape == (100,) and battery.grid[-1] == pytest.approx(1e-4)
    [l_spec] = [s for s in battery.conditions if s.name == "l"]
    assert l_spec.log_scale and (l_spec.low, l_spec.high) == (0.05, 0.5)
    attrs = battery.attributes()
    assert attrs["parameter.c_right"] == 1000.0 and attrs["parameter.c_right.unit"] == "mol/m^3"
    examples = battery.seed_example_conditions()
    np.testing.assert_array_equal(examples[:, 1], [0.05, 0.1, 0.25, 0.5])
    assert np.all(examples[:, 0] == 0.0) and np.all(examples[:, 2] == 25.0)


def test_problem_options_from_plain_data() -> None:
    problem = get_problem("battery", params={"n_points": 50}, kernel="matern52")
    assert problem.grid.shape == (50,)
    with pytest.raises(ValueError, match=r"unknown key.*'lenght'"):
        get_problem("battery", params={"lenght": 1e-4})
    with pytest.raises(ValueError, match="bad option"):
        get_problem("battery", colour="red")


def test_validate_conditions_rejects_impossible_values(battery: BatteryProblem) -> None:
    with pytest.raises(ValueError, match=r"condition l = 0\.0 .*\(0, inf\) L"):
        battery.validate_conditions([[0.0, 0.0, 10.0]])
    with pytest.raises(ValueError, match="condition U0 = nan"):
        battery.validate_conditions([[np.nan, 0.1, 10.0]])
    with pytest.raises(ValueError, match=r"expected \(M, 3\)"):
        battery.validate_conditions(np.zeros((2, 2)))
    # outside the design range but physical: allowed (extrapolation)
    out = battery.validate_conditions([0.7, 0.8, 60.0])
    assert out.shape == (1, 3)


def test_condition_spec_checks_its_range() -> None:
    with pytest.raises(ValueError, match="log_scale needs low > 0"):
        ConditionSpec("l", "L", 0.0, 1.0, log_scale=True)
    with pytest.raises(ValueError, match="low < high"):
        ConditionSpec("U0", "V", 1.0, -1.0)


def test_simulated_fields_satisfy_boundary_conditions(battery: BatteryProblem) -> None:
    """Dirichlet constraints hold exactly; Neumann ones to discretisation accuracy: the
    second-order one-sided derivative at x = 0 is below 1 % of the largest |df/dx| (it is
    ~1e-3 on N = 100 points)."""
    result = battery.simulate(battery.seed_example_conditions(), 4, [0, 1, 2, 3])
    fields = result["fields"]
    assert fields.shape == (16, 2, 100) and result["latent"].shape == (16, 100)
    assert np.all((result["latent"] >= 0.2) & (result["latent"] <= 0.5))
    h = battery.grid[1] - battery.grid[0]
    index = {"left": 0, "right": -1}
    for channel, kind, side, value in battery.boundary_conditions():
        f = fields[:, battery.channels.index(channel)]
        if kind == "dirichlet":
            assert np.all(f[:, index[side]] == value), (channel, side)
        else:
            assert side == "left"
            slope = (-3 * f[:, 0] + 4 * f[:, 1] - f[:, 2]) / (2 * h)
            scale = np.abs(np.gradient(f, h, axis=1)).max(axis=1)
            assert np.all(np.abs(slope - value) < 1e-2 * scale), channel


def test_draws_of_a_condition_depend_only_on_its_generator(battery: BatteryProblem) -> None:
    conditions = battery.seed_example_conditions()
    seeds = [np.random.SeedSequence([7, i]) for i in range(4)]
    together = battery.simulate(conditions, 3, seeds)
    alone = [battery.simulate(conditions[i], 3, [seeds[i]]) for i in range(4)]
    for key in ("fields", "latent", "conditions"):
        np.testing.assert_array_equal(together[key], np.concatenate([a[key] for a in alone]))
    with pytest.raises(ValueError, match="one generator per condition"):
        battery.simulate(conditions, 3, seeds[:2])
    with pytest.raises(ValueError, match="per_condition = 0"):
        battery.simulate(conditions, 0, seeds)
