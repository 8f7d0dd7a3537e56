"""BatteryParameters: the spec's defaults, validation, units and HDF5-ready metadata."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields, replace

import numpy as np
import pytest

from scorepde.physics import BatteryParameters


def test_defaults_are_the_specified_constants() -> None:
    params = BatteryParameters()
    assert params.length == 1e-4
    assert params.transference_number == 0.4
    assert params.specific_area == 5e5
    assert params.reaction_rate == 0.1
    assert params.solid_potential_slope == -1000.0
    assert params.conductivity == 1.0
    assert params.diffusivity == 3e-11
    assert params.bruggeman == 1.5
    assert params.c_right == 1000.0
    assert params.faraday == 96485.33212
    assert (params.porosity_min, params.porosity_max) == (0.2, 0.5)
    assert params.n_points == 100


def test_grid_is_uniform_vertex_grid() -> None:
    params = BatteryParameters(n_points=11, length=2e-4)
    grid = params.grid()
    assert grid.shape == (11,)
    np.testing.assert_allclose(grid, np.arange(11) * 2e-4 / 10, rtol=1e-15, atol=0)
    assert params.spacing == pytest.approx(2e-5)


def test_frozen_and_replace_revalidates() -> None:
    params = BatteryParameters()
    with pytest.raises(FrozenInstanceError):
        params.length = 1.0  # type: ignore[misc]
    assert replace(params, n_points=50).n_points == 50
    with pytest.raises(ValueError, match="n_points"):
        replace(params, n_points=2)


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"length": 0.0}, "length"),
        ({"length": -1e-4}, "length"),
        ({"porosity_min": 0.0}, "porosity_min"),
        ({"porosity_max": 1.0}, "porosity_max"),
        ({"porosity_min": 0.5, "porosity_max": 0.4}, "porosity_min"),
        ({"n_points": 2}, "n_points"),
        ({"n_points": 100.0}, "n_points"),
        ({"diffusivity": 0.0}, "diffusivity"),
        ({"conductivity": -1.0}, "conductivity"),
        ({"reaction_rate": 0.0}, "reaction_rate"),
        ({"specific_area": 0.0}, "specific_area"),
        ({"transference_number": 1.5}, "transference_number"),
        ({"faraday": float("nan")}, "faraday"),
        ({"c_right": -1.0}, "c_right"),
    ],
)
def test_non_physical_values_raise_naming_the_field(overrides: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        BatteryParameters(**overrides)


def test_attributes_and_units_cover_every_field() -> None:
    params = BatteryParameters()
    names = [item.name for item in fields(params)]
    attributes = params.as_attributes()
    units = params.units()
    assert list(attributes) == names
    assert set(units) == set(names)
    assert all(type(value) in (int, float) for value in attributes.values())
    assert isinstance(attributes["n_points"], int)
    assert units["diffusivity"] == "m^2/s"
    assert units["c_right"] == "mol/m^3"
    assert BatteryParameters(**attributes) == params
    table = params.describe()
    assert "| diffusivity | D0 | 3e-11 | m^2/s |" in table


def test_derived_coefficients() -> None:
    params = BatteryParameters()
    porosity = np.array([0.2, 0.35, 0.5])
    np.testing.assert_allclose(params.effective_conductivity(porosity), porosity**1.5, rtol=1e-14)
    np.testing.assert_allclose(
        params.effective_diffusivity(porosity), 3e-11 * porosity**1.5, rtol=1e-14
    )
    np.testing.assert_allclose(params.surface_area_density(porosity), 5e5 * (1 - porosity))
    other = replace(params, bruggeman=2.0)
    np.testing.assert_allclose(other.bruggeman_factor(porosity), porosity**2, rtol=1e-15)
