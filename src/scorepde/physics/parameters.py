"""Physical parameters of the 1-D porous battery electrode, as named data with units.

One frozen dataclass holds every constant of the model in SI units. Override a value with
keyword arguments or :func:`dataclasses.replace`; both re-run :meth:`BatteryParameters.validate`.

>>> from dataclasses import replace
>>> params = replace(BatteryParameters(), n_points=50)
>>> params.grid().shape
(50,)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

__all__ = ["BatteryParameters", "PublishedCodeSettings"]


def _require(condition: bool, name: str, value: object, allowed: str) -> None:
    if not condition:
        raise ValueError(f"BatteryParameters.{name} = {value!r} is not allowed; expected {allowed}")


@dataclass(frozen=True)
class BatteryParameters:
    """Constants of the porous-electrode model (SI units; see ``UNITS``).

    Attributes:
        length: electrode thickness ``L``, m.
        transference_number: cation transference number ``t_plus``, dimensionless, in [0, 1].
        specific_area: ``a_s0`` in ``a_s(x) = a_s0 (1 - porosity(x))``, 1/m.
        reaction_rate: linearised reaction rate ``k_rn``, S/m^2 (= A/(V m^2)).
        solid_potential_slope: slope of the solid potential ``phi_s(x) = slope * x``, V/m.
        conductivity: bulk electrolyte conductivity ``kappa0`` in ``k_eff = kappa0 eps^b``, S/m.
        diffusivity: bulk electrolyte diffusivity ``D0`` in ``D_eff = D0 eps^b``, m^2/s.
        bruggeman: Bruggeman exponent ``b`` (1.5 for spherical particles), dimensionless.
        c_right: electrolyte concentration imposed at ``x = L``, mol/m^3 (1 mol/L).
        faraday: Faraday's constant ``F``, C/mol.
        porosity_min: lower bound ``eps_min`` of the sigmoid porosity map, in (0, 1).
        porosity_max: upper bound ``eps_max`` of the sigmoid porosity map, in (0, 1).
        n_points: number of grid vertices ``N`` (``x_i = i L / (N - 1)``), at least 3.
    """

    length: float = 1e-4
    transference_number: float = 0.4
    specific_area: float = 5e5
    reaction_rate: float = 0.1
    solid_potential_slope: float = -1000.0
    conductivity: float = 1.0
    diffusivity: float = 3e-11
    bruggeman: float = 1.5
    c_right: float = 1000.0
    faraday: float = 96485.33212
    porosity_min: float = 0.2
    porosity_max: float = 0.5
    n_points: int = 100

    UNITS: ClassVar[dict[str, str]] = {
        "length": "m",
        "transference_number": "1",
        "specific_area": "1/m",
        "reaction_rate": "S/m^2",
        "solid_potential_slope": "V/m",
        "conductivity": "S/m",
        "diffusivity": "m^2/s",
        "bruggeman": "1",
        "c_right": "mol/m^3",
        "faraday": "C/mol",
        "porosity_min": "1",
        "porosity_max": "1",
        "n_points": "1",
    }
    SYMBOLS: ClassVar[dict[str, str]] = {
        "length": "L",
        "transference_number": "t_plus",
        "specific_area": "a_s0",
        "reaction_rate": "k_rn",
        "solid_potential_slope": "dphi_s/dx",
        "conductivity": "kappa0",
        "diffusivity": "D0",
        "bruggeman": "b",
        "c_right": "c_right",
        "faraday": "F",
        "porosity_min": "eps_min",
        "porosity_max": "eps_max",
        "n_points": "N",
    }

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first non-physical value."""
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "n_points":
                _require(
                    isinstance(value, int | np.integer) and not isinstance(value, bool),
                    "n_points",
                    value,
                    "an integer >= 3",
                )
            else:
                _require(
                    isinstance(value, int | float | np.floating | np.integer)
                    and not isinstance(value, bool)
                    and math.isfinite(value),
                    item.name,
                    value,
                    "a finite real number",
                )
        _require(self.length > 0, "length", self.length, "> 0 (metres)")
        _require(
            0.0 <= self.transference_number <= 1.0,
            "transference_number",
            self.transference_number,
            "a value in [0, 1]",
        )
        _require(self.specific_area > 0, "specific_area", self.specific_area, "> 0 (1/m)")
        _require(self.reaction_rate > 0, "reaction_rate", self.reaction_rate, "> 0 (S/m^2)")
        _require(self.conductivity > 0, "conductivity", self.conductivity, "> 0 (S/m)")
        _require(self.diffusivity > 0, "diffusivity", self.diffusivity, "> 0 (m^2/s)")
        _require(self.bruggeman >= 0, "bruggeman", self.bruggeman, ">= 0")
        _require(self.c_right >= 0, "c_right", self.c_right, ">= 0 (mol/m^3)")
        _require(self.faraday > 0, "faraday", self.faraday, "> 0 (C/mol)")
        _require(
            0.0 < self.porosity_min < 1.0, "porosity_min", self.porosity_min, "a value in (0, 1)"
        )
        _require(
            0.0 < self.porosity_max < 1.0, "porosity_max", self.porosity_max, "a value in (0, 1)"
        )
        _require(
            self.porosity_min < self.porosity_max,
            "porosity_min",
            self.porosity_min,
            f"a value below porosity_max = {self.porosity_max!r}",
        )
        _require(self.n_points >= 3, "n_points", self.n_points, "an integer >= 3")

    # ------------------------------------------------------------------ grid and derived fields
    def grid(self) -> np.ndarray:
        """Vertex positions ``x_i = i L / (N - 1)``: shape ``(N,)``, metres."""
        return np.linspace(0.0, self.length, self.n_points)

    @property
    def spacing(self) -> float:
        """Grid spacing ``L / (N - 1)``, m."""
        return self.length / (self.n_points - 1)

    def cell_centres(self) -> np.ndarray:
        """Cell centres ``x_i = (i + 1/2) L / N`` of ``N = n_points`` equal cells: ``(N,)``, m.

        The grid of the ``published-code`` formulation (cell-centred finite volumes)."""
        return (np.arange(self.n_points) + 0.5) * (self.length / self.n_points)

    @property
    def cell_width(self) -> float:
        """Cell width ``L / N`` of the cell-centred grid, m."""
        return self.length / self.n_points

    def solid_potential(self, x: np.ndarray) -> np.ndarray:
        """Solid-phase potential ``phi_s(x) = slope * x``: same shape as ``x`` (m), V."""
        return self.solid_potential_slope * np.asarray(x, dtype=float)

    def bruggeman_factor(self, porosity: np.ndarray) -> np.ndarray:
        """``eps^b`` (dimensionless), same shape as ``porosity``."""
        porosity = np.asarray(porosity, dtype=float)
        if self.bruggeman == 1.5:  # eps * sqrt(eps) is exact to round-off and ~5x faster
            return porosity * np.sqrt(porosity)
        return porosity**self.bruggeman

    def effective_conductivity(self, porosity: np.ndarray) -> np.ndarray:
        """``k_eff = kappa0 eps^b``, S/m, same shape as ``porosity``."""
        return self.conductivity * self.bruggeman_factor(porosity)

    def effective_diffusivity(self, porosity: np.ndarray) -> np.ndarray:
        """``D_eff = D0 eps^b``, m^2/s, same shape as ``porosity``."""
        return self.diffusivity * self.bruggeman_factor(porosity)

    def surface_area_density(self, porosity: np.ndarray) -> np.ndarray:
        """``a_s = a_s0 (1 - eps)``, 1/m, same shape as ``porosity``."""
        return self.specific_area * (1.0 - np.asarray(porosity, dtype=float))

    # ------------------------------------------------------------------ metadata
    def as_attributes(self) -> dict[str, float | int]:
        """``{name: value}`` with plain Python numbers, ready for HDF5 attributes."""
        out: dict[str, float | int] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            out[item.name] = int(value) if item.name == "n_points" else float(value)
        return out

    def units(self) -> dict[str, str]:
        """``{name: unit}`` for every field (``"1"`` for dimensionless)."""
        return dict(self.UNITS)

    def describe(self) -> str:
        """A Markdown table: name, symbol, value, unit."""
        lines = ["| name | symbol | value | unit |", "|---|---|---|---|"]
        for name, value in self.as_attributes().items():
            lines.append(f"| {name} | {self.SYMBOLS[name]} | {value:g} | {self.UNITS[name]} |")
        return "\n".join(lines)


@dataclass(frozen=True)
class PublishedCodeSettings:
    """What the ``published-code`` formulation adds to :class:`BatteryParameters`.

    The post's public code (OpenNumerics/SGM-for-porous-media) uses the same constants as
    ``BatteryParameters()`` but integrates the concentration in time instead of solving for
    its steady state, and draws the porosity GP by a Cholesky factor with a nugget.

    Attributes:
        time_step: implicit-Euler step ``dt``, s.
        final_time: output time ``T``, s; ``T / dt`` must be a whole number of steps.
        gp_jitter: nugget added to the unit-variance GP covariance (``K + jitter I``),
            dimensionless (relative to the variance).
        precision: arithmetic of the solver, ``"float64"`` (default) or ``"float32"`` (the
            public code's, which rounds away most of the reaction term of the potential's
            matrix; use it to reproduce the stored data, see docs/physics.md).
    """

    time_step: float = 0.1
    final_time: float = 100.0
    gp_jitter: float = 1e-4
    precision: str = "float64"

    UNITS: ClassVar[dict[str, str]] = {
        "time_step": "s",
        "final_time": "s",
        "gp_jitter": "1",
        "precision": "",
    }
    PRECISIONS: ClassVar[tuple[str, str]] = ("float64", "float32")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first value that is not allowed."""
        if self.precision not in self.PRECISIONS:
            raise ValueError(
                f"PublishedCodeSettings.precision = {self.precision!r} is not allowed; expected "
                f"one of {list(self.PRECISIONS)}"
            )
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "precision":
                continue
            if isinstance(value, bool) or not isinstance(
                value, int | float | np.floating | np.integer
            ):
                raise ValueError(
                    f"PublishedCodeSettings.{item.name} = {value!r} is not allowed; expected a "
                    "finite real number"
                )
        if not (math.isfinite(self.time_step) and self.time_step > 0):
            raise ValueError(
                f"PublishedCodeSettings.time_step = {self.time_step!r} is not allowed; "
                "expected a finite number > 0 (seconds)"
            )
        if not (math.isfinite(self.final_time) and self.final_time > 0):
            raise ValueError(
                f"PublishedCodeSettings.final_time = {self.final_time!r} is not allowed; "
                "expected a finite number > 0 (seconds)"
            )
        steps = self.final_time / self.time_step
        if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
            raise ValueError(
                f"PublishedCodeSettings.final_time = {self.final_time!r} is not allowed; expected "
                f"a whole number of time steps of {self.time_step!r} s (got {steps!r})"
            )
        if not (math.isfinite(self.gp_jitter) and self.gp_jitter >= 0):
            raise ValueError(
                f"PublishedCodeSettings.gp_jitter = {self.gp_jitter!r} is not allowed; "
                "expected a finite number >= 0"
            )

    @property
    def n_steps(self) -> int:
        """Number of implicit-Euler steps ``round(T / dt)``."""
        return round(self.final_time / self.time_step)

    def as_attributes(self) -> dict[str, float | str]:
        """``{name: value}`` with plain Python floats (and the precision's name), ready for
        HDF5 attributes."""
        return {
            item.name: getattr(self, item.name)
            if item.name == "precision"
            else float(getattr(self, item.name))
            for item in fields(self)
        }
