"""The 1-D porous battery electrode as a Problem.

Conditions ``p = (U0, l, F_right)``:

========  =======  ==============  ============================================================
name      unit     design range    meaning
========  =======  ==============  ============================================================
U0        V        [-0.5, 0.5]     applied voltage offset
l         L        [0.05, 0.5]     GP length scale of the porosity, in units of the electrode
                                   thickness ``L`` (drawn log-uniformly)
F_right   A/m^2    [0, 50]         current flux imposed at ``x = L``
========  =======  ==============  ============================================================

Latent field: porosity ``eps(x) = porosity_from_latent(g(x))`` with ``g`` a zero-mean GP of
length scale ``l * L`` metres. Channels: electrolyte concentration ``c`` (mol/m^3) and the
electrolyte potential ``phi`` (V, shifted so that ``phi(0) = 0``).

Two formulations (``formulation=``, see ``docs/physics.md`` "Two formulations"):

* ``"post"`` (default): the model of the post's text: steady ``c`` on the vertex grid
  ``x_i = i L / (N - 1)``, ``j`` from the potential before its shift, so the fields do not
  depend on ``U0`` (a declared invariance); the design ranges above.
* ``"published-code"``: the model the post's public code computes (OpenNumerics/
  SGM-for-porous-media): cell centres ``x_i = (i + 1/2) L / N``, GP with a ``1e-4`` nugget,
  ``j`` from the shifted potential (``U0`` matters), ``c`` after 100 s of implicit Euler
  (``dt = 0.1 s``) from ``c_right``; design ranges U0 in [-0.2, 0.2] V, l in [0.02, 0.2] L
  (log-uniform), F_right in [0, 50] A/m^2.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from scorepde.physics.battery import solve_battery
from scorepde.physics.battery_published import solve_battery_published
from scorepde.physics.parameters import BatteryParameters, PublishedCodeSettings
from scorepde.physics.random_fields import GaussianProcessSampler, porosity_from_latent
from scorepde.problems.base import BoundaryCondition, ConditionSpec, Invariance, Problem

__all__ = ["FORMULATIONS", "PUBLISHED_CODE_CONDITIONS", "BatteryProblem"]

#: The formulations of the battery problem (``BatteryProblem(formulation=...)``).
FORMULATIONS = ("post", "published-code")

#: Condition specs of the ``published-code`` formulation (the public code's sampling ranges).
PUBLISHED_CODE_CONDITIONS = (
    ConditionSpec("U0", "V", -0.2, 0.2, description="applied voltage offset"),
    ConditionSpec(
        "l",
        "L",
        0.02,
        0.2,
        log_scale=True,
        description="porosity correlation length in units of the electrode thickness L",
        physical_low=0.0,
    ),
    ConditionSpec("F_right", "A/m^2", 0.0, 50.0, description="current flux at x = L"),
)


def _parameters(params: BatteryParameters | Mapping[str, Any] | None) -> BatteryParameters:
    if params is None:
        return BatteryParameters()
    if isinstance(params, BatteryParameters):
        return params
    if isinstance(params, Mapping):
        allowed = {item.name for item in dataclasses.fields(BatteryParameters)}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(f"params has unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        return BatteryParameters(**dict(params))
    raise TypeError(
        "params must be a BatteryParameters or a mapping of its fields, "
        f"got {type(params).__name__}"
    )


class BatteryProblem(Problem):
    """Porous-electrode battery: porosity field -> (c, phi), conditioned on (U0, l, F_right).

    Args:
        params: the physical constants (a ``BatteryParameters`` or a mapping of its fields,
            as found in YAML configs); defaults to ``BatteryParameters()``.
        kernel: GP kernel of the latent field (see ``physics.random_fields.KERNELS``).
        variance: marginal variance of the GP before the sigmoid porosity map (dimensionless).
        formulation: ``"post"`` (default; the post's text) or ``"published-code"`` (what the
            post's public code computes); see the module docstring. It sets the grid, the GP
            nugget, the solver, the design ranges (:attr:`conditions`, per instance) and the
            declared invariances.
        precision: ``published-code`` only: ``"float64"`` (default) or ``"float32"``, the
            public code's arithmetic, which reproduces its stored fields (docs/physics.md).
    """

    name = "battery"
    conditions = (
        ConditionSpec("U0", "V", -0.5, 0.5, description="applied voltage offset"),
        ConditionSpec(
            "l",
            "L",
            0.05,
            0.5,
            log_scale=True,
            description="porosity correlation length in units of the electrode thickness L",
            physical_low=0.0,
        ),
        ConditionSpec(
            "F_right",
            "A/m^2",
            0.0,
            50.0,
            description="current flux at x = L",
            physical_low=0.0,  # discharge only: F_right < 0 drives c below 0 (docs/physics.md)
        ),
    )
    channels = ("c", "phi")
    channel_units = ("mol/m^3", "V")
    latent_name = "porosity"
    latent_unit = "1"

    def __init__(
        self,
        params: BatteryParameters | Mapping[str, Any] | None = None,
        kernel: str = "squared_exponential",
        variance: float = 1.0,
        formulation: str = "post",
        precision: str = "float64",
    ) -> None:
        if formulation not in FORMULATIONS:
            raise ValueError(
                f"formulation = {formulation!r} is not allowed; "
                f"expected one of {list(FORMULATIONS)}"
            )
        self.params = _parameters(params)
        self.kernel = kernel
        self.variance = float(variance)
        self.formulation = formulation
        self.settings: PublishedCodeSettings | None = None
        jitter = 0.0
        if formulation != "published-code" and precision != "float64":
            raise ValueError(
                f"precision = {precision!r} is not allowed for formulation {formulation!r}; "
                "only 'published-code' takes 'float32'"
            )
        if formulation == "published-code":
            self.conditions = PUBLISHED_CODE_CONDITIONS
            self.settings = PublishedCodeSettings(precision=precision)
            jitter = self.settings.gp_jitter
            self._grid = self.params.cell_centres()
        else:
            self._grid = self.params.grid()
        self._grid.setflags(write=False)
        self._sampler = GaussianProcessSampler(
            self._grid, kernel=kernel, variance=self.variance, jitter=jitter
        )

    @property
    def grid(self) -> np.ndarray:
        """``(N,)`` metres (read-only): vertices ``x_i = i L / (N - 1)`` (``post``) or cell
        centres ``x_i = (i + 1/2) L / N`` (``published-code``)."""
        return self._grid

    def options(self) -> dict[str, Any]:
        """The constructor arguments as plain data (``get_problem("battery", **options)``)."""
        return {
            "params": self.params.as_attributes(),
            "kernel": self.kernel,
            "variance": self.variance,
            "formulation": self.formulation,
            **({} if self.settings is None else {"precision": self.settings.precision}),
        }

    def attributes(self) -> dict[str, Any]:
        """Flat HDF5-ready record: the formulation, ``parameter.<name>`` values,
        ``parameter.<name>.unit``, the GP kernel, variance and nugget, the time stepping of
        ``published-code`` (``transient.<name>``), and the condition specs as JSON."""
        out: dict[str, Any] = {"problem": self.name, "formulation": self.formulation}
        units = self.params.units()
        for key, value in self.params.as_attributes().items():
            out[f"parameter.{key}"] = value
            out[f"parameter.{key}.unit"] = units[key]
        out["latent.kernel"] = self.kernel
        out["latent.variance"] = self.variance
        out["latent.length_scale_unit"] = "L (condition l times parameter.length, metres)"
        if self.settings is not None:
            out["latent.jitter"] = self.settings.gp_jitter
            out["grid"] = "cell centres (i + 1/2) L / N"
            for key, value in self.settings.as_attributes().items():
                if key != "gp_jitter":
                    out[f"transient.{key}"] = value
                if key in ("time_step", "final_time"):
                    out[f"transient.{key}.unit"] = self.settings.UNITS[key]
        out["condition_specs"] = json.dumps([dataclasses.asdict(s) for s in self.conditions])
        return out

    def boundary_conditions(self) -> tuple[BoundaryCondition, ...]:
        """``phi(0) = 0`` (the shift), ``dphi/dx(0) = 0``, ``c(L) = c_right``, ``dc/dx(0) = 0``.

        The flux condition ``-k_eff(L) dphi/dx(L) = F_right`` depends on the condition and the
        porosity at ``x = L``, so it is not listed as a fixed constraint.

        ``published-code``: only the values that hold on the grid's end points, ``phi = 0`` on
        the first cell centre and ``c = c_right`` on the last; its no-flux conditions hold on
        the face ``x = 0``, half a cell from the first grid point, so a one-sided difference
        at the grid's end does not vanish and they are not listed.
        """
        if self.formulation == "published-code":
            return (
                BoundaryCondition("phi", "dirichlet", "left", 0.0),
                BoundaryCondition("c", "dirichlet", "right", float(self.params.c_right)),
            )
        return (
            BoundaryCondition("phi", "dirichlet", "left", 0.0),
            BoundaryCondition("phi", "neumann", "left", 0.0),
            BoundaryCondition("c", "dirichlet", "right", float(self.params.c_right)),
            BoundaryCondition("c", "neumann", "left", 0.0),
        )

    def invariances(self) -> tuple[Invariance, ...]:
        """(c, phi) do not depend on U0: shifting U0 moves the unshifted potential by a
        constant only, which the shift ``phi(0) = 0`` removes (docs/physics.md).

        ``published-code``: none; its reaction current uses the shifted potential, so U0
        changes ``j`` and hence ``c``."""
        if self.formulation == "published-code":
            return ()
        return (
            Invariance(
                "U0",
                shift=0.4,
                description="U0 moves the unshifted potential by a constant that the shift removes",
            ),
        )

    def default_evaluation_conditions(self) -> np.ndarray:
        """The seed's showcase at ``l = 0.1`` and ``0.25``: ``U0 = 0``, ``F_right = 25``.

        ``published-code``: the post's Fig. 4 point ``(0, 0.1, 25)`` and, as U0 is a real
        condition there, ``(0.15, 0.05, 40)`` and ``(-0.15, 0.15, 10)``."""
        if self.formulation == "published-code":
            return np.array([[0.0, 0.1, 25.0], [0.15, 0.05, 40.0], [-0.15, 0.15, 10.0]])
        return np.array([[0.0, 0.1, 25.0], [0.0, 0.25, 25.0]])

    def seed_example_conditions(self) -> np.ndarray:
        """The seed's showcase conditions: ``U0 = 0 V``, ``F_right = 25 A/m^2`` at
        ``l = 0.05, 0.1, 0.25, 0.5`` L: ``(4, 3)``."""
        lengths = np.array([0.05, 0.1, 0.25, 0.5])
        return np.stack([np.zeros_like(lengths), lengths, np.full_like(lengths, 25.0)], axis=1)

    def sample_latent(self, condition: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Porosity draws for one condition row ``(U0, l, F_right)``: ``(n, N)``, dimensionless.

        GP of length scale ``l * L`` metres, mapped by ``porosity_from_latent`` into
        ``[porosity_min, porosity_max]``.
        """
        length_scale = float(condition[1]) * self.params.length
        gaussian = self._sampler.sample(length_scale, n, rng)
        return porosity_from_latent(gaussian, self.params.porosity_min, self.params.porosity_max)

    def solve(self, latent: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Porosity ``(B, N)`` and conditions ``(B, 3)`` -> ``(B, 2, N)``: ``c`` mol/m^3 and
        ``phi`` V (shifted so ``phi[:, 0] = 0``), in one batched solve (``published-code``:
        ``c`` at ``T = 100 s``)."""
        conditions = np.asarray(conditions, dtype=float)
        if self.settings is not None:
            solution = solve_battery_published(
                latent, conditions[:, 0], conditions[:, 2], self.params, self.settings
            )
            return solution.as_channels()
        solution = solve_battery(latent, conditions[:, 0], conditions[:, 2], self.params)
        return solution.as_channels()
