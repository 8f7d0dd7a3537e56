"""Problems: a simulator tied to what ML needs (conditions, channels, grid, latent field).

The registry is a plain dict; a new PDE is added by writing a :class:`Problem` subclass and one
line here.

>>> problem = get_problem("battery")
>>> problem.condition_names
('U0', 'l', 'F_right')
"""

from __future__ import annotations

from typing import Any

from scorepde.problems.base import BoundaryCondition, ConditionSpec, Invariance, Problem
from scorepde.problems.battery import BatteryProblem
from scorepde.problems.darcy import DarcyProblem
from scorepde.problems.elasticity import ElasticityProblem

__all__ = [
    "PROBLEMS",
    "BatteryProblem",
    "BoundaryCondition",
    "ConditionSpec",
    "DarcyProblem",
    "ElasticityProblem",
    "Invariance",
    "Problem",
    "get_problem",
]

#: Registry name -> Problem class.
PROBLEMS: dict[str, type[Problem]] = {
    "battery": BatteryProblem,
    "darcy2d": DarcyProblem,
    "elasticity2d": ElasticityProblem,
}


def get_problem(name: str, **options: Any) -> Problem:
    """Build the problem registered as ``name`` with constructor ``options``.

    Raises ``ValueError`` listing the known names for an unknown ``name``, and naming the
    option for an option the problem does not take.
    """
    if name not in PROBLEMS:
        raise ValueError(f"problem = {name!r} is not known; expected one of {sorted(PROBLEMS)}")
    try:
        return PROBLEMS[name](**options)
    except TypeError as error:
        raise ValueError(f"problem {name!r}: bad option(s) {sorted(options)}: {error}") from error
