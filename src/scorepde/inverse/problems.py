"""Inverse problems by name: what a recipe needs to simulate training pairs and to judge a
posterior.

An :class:`InverseProblem` bundles the prior sampler, the forward model, the measurement noise
and, where known, the exact posterior. :data:`INVERSE_PROBLEMS` is a plain dict from a name to
a builder taking the recipe's ``problem.options`` as keyword arguments; add a problem with one
line there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from scorepde.configuration import ConfigError
from scorepde.inverse.linear_gaussian import make_linear_gaussian
from scorepde.inverse.misspecification import ReferencePosterior, linear_gaussian_reference
from scorepde.inverse.noise_models import NoiseModel

KINDS = ("vector", "field")


@dataclass(eq=False)
class InverseProblem:
    """One inverse problem, ready for :func:`~scorepde.inverse.posterior.from_simulator`.

    sample_prior(n, rng) -> ``x (n, *x_shape)``; forward(x (n, *x_shape)) -> noise-free
    measurements ``(n, *y_shape)``; noise: the measurement noise model. kind: ``"vector"``
    (summaries as a pair plot) or ``"field"`` (mean and band along ``grid``, after
    ``to_physical``). reference_posterior: ``(y, noise) -> (mean, std)`` of the exact posterior,
    where known. to_physical: maps ``x (n, *x_shape)`` to what a user looks at (e.g. whitened
    modes -> porosity field ``(n, C, N)``); None: ``x`` itself. grid: ``(N,)`` positions of a
    field's points (units in ``grid_label``). channel_names: names of the physical channels.
    """

    name: str
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    sample_prior: Callable[[int, np.random.Generator], np.ndarray]
    forward: Callable[[np.ndarray], np.ndarray]
    noise: NoiseModel
    kind: str = "vector"
    reference_posterior: ReferencePosterior | None = None
    to_physical: Callable[[np.ndarray], np.ndarray] | None = None
    grid: np.ndarray | None = None
    grid_label: str = "index"
    channel_names: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"InverseProblem.kind = {self.kind!r}; expected one of {KINDS}")
        self.x_shape = tuple(int(s) for s in self.x_shape)
        self.y_shape = tuple(int(s) for s in self.y_shape)

    def physical(self, x: np.ndarray) -> np.ndarray:
        """``x (n, *x_shape)`` in the user's terms (``to_physical``, or ``x`` itself)."""
        x = np.asarray(x, dtype=np.float64)
        return x if self.to_physical is None else np.asarray(self.to_physical(x), np.float64)


def linear_gaussian_inverse_problem(
    d: int = 2, m: int = 2, seed: int = 0, noise_std: float = 0.25
) -> InverseProblem:
    """:func:`~scorepde.inverse.linear_gaussian.make_linear_gaussian` ``(d, m, seed,
    noise_std)``: ``x ~ N(mu, P)`` in ``d`` dimensions, ``y = A x + noise_std e`` in ``m``;
    exact posterior for any additive Gaussian noise."""
    problem = make_linear_gaussian(int(d), int(m), int(seed), noise_std=float(noise_std))
    return InverseProblem(
        name="linear_gaussian",
        x_shape=(problem.d,),
        y_shape=(problem.m,),
        sample_prior=problem.sample_prior,
        forward=problem.forward,
        noise=problem.noise,
        kind="vector",
        reference_posterior=linear_gaussian_reference(problem),
        description=f"linear-Gaussian, d={problem.d}, m={problem.m}, noise std {noise_std:g}",
    )


def battery_porosity_inverse_problem(
    observation: str = "sensors", space: str = "whitened", **options: Any
) -> InverseProblem:
    """:class:`~scorepde.inverse.battery.BatteryPorosityProblem` ``(observation, **options)``:
    the porosity field of the battery electrode from noisy ``c``/``phi`` measurements
    (``"sensors"`` or ``"full"``), no closed-form posterior (its pCN MCMC is the reference).

    space: ``"whitened"`` (default): ``x`` is the ``k``-dimensional whitened GP latent and
    samples map to porosity ``(n, 1, N)`` through ``to_physical``; ``"porosity"``: ``x`` is the
    porosity field ``(1, N)`` itself.
    """
    from scorepde.inverse.battery import SPACES, BatteryPorosityProblem

    if space not in SPACES:
        raise ValueError(f"space = {space!r} is not allowed; expected one of {SPACES}")
    problem = BatteryPorosityProblem(observation, **options)
    whitened = space == "whitened"
    return InverseProblem(
        name="battery_porosity",
        x_shape=(problem.n_modes,) if whitened else problem.x_shape,
        y_shape=problem.y_shape,
        sample_prior=problem.sample_whitened if whitened else problem.sample_prior,
        forward=problem.forward_whitened if whitened else problem.forward,
        noise=problem.noise,
        kind="field",
        to_physical=problem.porosity_from_whitened if whitened else None,
        grid=np.asarray(problem.grid) * 1e6,
        grid_label="x [µm]",
        channel_names=("porosity",),
        description=(
            f"battery porosity from {observation} c/phi ({problem.y_shape[1]} points, "
            f"{problem.noise.level:g} relative noise), {space} x"
        ),
    )


def elasticity_inverse_problem(
    prior: str = "inclusion", n_cells: int = 32, **options: Any
) -> InverseProblem:
    """:class:`~scorepde.inverse.elasticity.Elastography` ``(prior, n_cells, **options)``:
    ``x = log mu (1, n, n)`` from ``y = (u_x, u_y) (2, n, n)`` on the cell centres, no
    closed-form posterior."""
    from scorepde.inverse.elasticity import Elastography

    elastography = Elastography(prior, n_cells, **options)
    return InverseProblem(
        name=f"elasticity_{prior}",
        x_shape=elastography.x_shape,
        y_shape=elastography.y_shape,
        sample_prior=elastography.sample_prior,
        forward=elastography.forward,
        noise=elastography.noise,
        kind="field",
        grid=np.asarray(elastography.problem.centres),
        grid_label="x (units of the side)",
        channel_names=("log_mu",),
        description=(
            f"elastography, {prior} prior, {n_cells} x {n_cells} cells, "
            f"{elastography.noise_name} noise {elastography.noise_level:g}"
        ),
    )


#: Name -> builder(**options) -> InverseProblem.
INVERSE_PROBLEMS: dict[str, Callable[..., InverseProblem]] = {
    "linear_gaussian": linear_gaussian_inverse_problem,
    "battery_porosity": battery_porosity_inverse_problem,
    "elasticity": elasticity_inverse_problem,
}


def build_inverse_problem(name: str, options: dict[str, Any] | None = None) -> InverseProblem:
    """The problem registered as ``name`` built with ``options``; a :class:`ConfigError` names
    an unknown problem (listing the known ones) or bad options."""
    if name not in INVERSE_PROBLEMS:
        raise ConfigError(
            f"problem.name = {name!r} is not a known inverse problem; expected one of "
            f"{sorted(INVERSE_PROBLEMS)}"
        )
    try:
        return INVERSE_PROBLEMS[name](**dict(options or {}))
    except TypeError as error:
        raise ConfigError(
            f"problem {name!r}: bad option(s) {sorted(options or {})}: {error}"
        ) from (error)
    except ValueError as error:
        raise ConfigError(f"problem {name!r}: {error}") from error


__all__ = [
    "INVERSE_PROBLEMS",
    "KINDS",
    "InverseProblem",
    "battery_porosity_inverse_problem",
    "build_inverse_problem",
    "elasticity_inverse_problem",
    "linear_gaussian_inverse_problem",
]
