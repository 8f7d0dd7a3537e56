"""The Problem interface: what the ML layers need to know about one PDE and its simulator.

A problem names its conditions (the inputs ``p`` a model is conditioned on) with units and
design ranges, its output channels and grid, its latent random field (e.g. porosity), and it
simulates fields for given conditions with explicit random generators. Everything here stays in
physical units; only ``scorepde.data`` normalises.

A new PDE plugs in by subclassing :class:`Problem` and implementing :meth:`Problem.sample_latent`
and :meth:`Problem.solve` (plus the metadata); :meth:`Problem.simulate` does the batching and the
bookkeeping of seeds and shapes.

Shapes: a problem's fields are ``(n, C, *S)`` with ``S`` the grid shape (``(N,)`` in 1-D,
``(Ny, Nx)`` in 2-D, arrays indexed ``[..., j, i]``); :attr:`Problem.field_spec` describes them.
What the generic layers check is declared here, never inferred from a problem's or a
condition's name: :meth:`Problem.boundary_conditions` (values every field satisfies),
:meth:`Problem.invariances` (conditions the fields' distribution does not depend on),
:meth:`Problem.derived_quantities` (scalars per field whose distribution the evaluation
compares) and :meth:`Problem.residual` (the discrete PDE residual of a field).

A problem whose solution is a deterministic function of its random input (``u`` of ``log_k``
for Darcy flow) may declare it for a two-stage model (``scorepde.training.solution_map``):
:attr:`Problem.solution_channels` names the solution, :meth:`Problem.solution_reflections`
the mirror symmetries of the map from input to solution, and :meth:`Problem.solution_norm`
the physics norm its error is measured in (numpy only; the training layer evaluates it).
"""

from __future__ import annotations

import abc
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from scorepde.fields import FieldSpec

__all__ = [
    "BoundaryCondition",
    "ConditionSpec",
    "Invariance",
    "Problem",
    "Reflection",
    "RngLike",
    "TwoPointNorm",
]

#: What may stand for the random generator of one condition: a ``Generator`` (used as is), a
#: ``SeedSequence`` or a non-negative integer seed (passed to ``np.random.default_rng``).
RngLike = np.random.Generator | np.random.SeedSequence | int


@dataclass(frozen=True)
class ConditionSpec:
    """One condition ``p_j`` of a problem: its name, unit and design range.

    Attributes:
        name: identifier used in files and configs (e.g. ``"U0"``).
        unit: physical unit as text (e.g. ``"V"``; ``"L"`` for multiples of the domain length).
        low, high: the design range ``[low, high]`` that training conditions are drawn from.
        log_scale: draw (and encode) the condition uniformly in ``log`` over the range;
            requires ``low > 0``.
        description: one line for humans.
        physical_low, physical_high: the physically possible values form the *open* interval
            ``(physical_low, physical_high)`` (infinite = unbounded), plus the closed design
            range (a bound equal to a design-range end is included: ``F_right`` with
            ``physical_low = low = 0`` allows ``[0, inf)``). Values outside the design range
            but physical are allowed (a model may be asked to extrapolate).
    """

    name: str
    unit: str
    low: float
    high: float
    log_scale: bool = False
    description: str = ""
    physical_low: float = -math.inf
    physical_high: float = math.inf

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(
                f"ConditionSpec.name = {self.name!r} is not allowed; expected an identifier"
            )
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(
                f"ConditionSpec {self.name!r}: design range [{self.low!r}, {self.high!r}] is not "
                "allowed; expected finite low < high"
            )
        if self.log_scale and self.low <= 0:
            raise ValueError(
                f"ConditionSpec {self.name!r}: log_scale needs low > 0, got low = {self.low!r}"
            )
        if not (self.physical_low <= self.low and self.high <= self.physical_high):
            raise ValueError(
                f"ConditionSpec {self.name!r}: design range [{self.low}, {self.high}] must lie "
                f"inside the physical domain ({self.physical_low}, {self.physical_high})"
            )

    def is_physical(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask, same shape as ``values``: finite and inside the physical domain (the
        open interval ``(physical_low, physical_high)`` joined with the design range)."""
        values = np.asarray(values, dtype=float)
        above = (values > self.physical_low) | (values >= self.low)
        below = (values < self.physical_high) | (values <= self.high)
        return np.isfinite(values) & above & below

    def in_design_range(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask, same shape as ``values``: inside the closed design range."""
        values = np.asarray(values, dtype=float)
        return (values >= self.low) & (values <= self.high)

    def domain_text(self) -> str:
        """The physical domain as text, e.g. ``"(0, inf) L"`` or ``"[0, inf) A/m^2"``."""
        left = "[" if self.physical_low == self.low else "("
        right = "]" if self.physical_high == self.high else ")"
        return f"{left}{self.physical_low:g}, {self.physical_high:g}{right} {self.unit}"


class BoundaryCondition(NamedTuple):
    """A boundary constraint every simulated field of a channel satisfies.

    ``kind`` is ``"dirichlet"`` (``field = value``) or ``"neumann"`` (``d field / dx = value``,
    in the channel's unit per metre); ``side`` is ``"left"`` (x = 0) or ``"right"`` (x = L) of
    the last grid axis, or ``"<axis>_low"`` / ``"<axis>_high"`` for any named axis (2-D:
    ``"y_low"``); the constraint holds at every grid point of that side.
    Compares equal to the plain tuple ``(channel, kind, side, value)``.
    """

    channel: str
    kind: str
    side: str
    value: float


@dataclass(frozen=True)
class Invariance:
    """The distribution of a problem's fields does not depend on condition ``condition``.

    ``shift``: how far the evaluation moves the condition to check that a model has the same
    invariance (in the condition's unit; reflected to stay in the design range).
    """

    condition: str
    shift: float
    description: str = ""


@dataclass(frozen=True)
class Reflection:
    """A mirror symmetry of a problem's map from input to solution: reflecting the input
    channels along grid axis ``axis`` gives a valid input whose solution is the reflected
    solution with every solution value ``v`` replaced by ``scale * v + offset`` (Darcy flow:
    ``y -> 1 - y`` leaves ``u``; ``x -> 1 - x`` swaps the boundary values, ``u -> 1 - u``)."""

    axis: int
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class TwoPointNorm:
    """The energy norm of a two-point (finite-volume) operator for a batch of inputs: the
    error ``e`` of a solution has energy ``sum over axes a, faces f of w_a[f] (e+ - e-)^2``
    with ``e+``, ``e-`` the error in the cells on either side of face ``f`` and, on a boundary
    face, the error of its one cell against zero (a Dirichlet face; a no-flux face has weight
    0). Reported over ``sum(w)`` so media of different conductance weigh alike.

    Attributes:
        face_weights: per grid axis ``a``, ``(n, *S)`` with ``S[a] + 1`` faces along ``a``;
            the transmissibilities of the medium (flux per unit potential difference).
    """

    face_weights: tuple[np.ndarray, ...]


class Problem(abc.ABC):
    """A simulator plus the metadata the ML layers need.

    Subclasses set the class/instance attributes below and implement :meth:`sample_latent`,
    :meth:`solve`, :meth:`attributes`, :meth:`boundary_conditions` and either :attr:`grid`
    (1-D) or :attr:`coordinates` (any rank).

    Attributes:
        name: registry name (``"battery"``).
        conditions: the condition specs, in the column order of every ``(M, k)`` conditions array.
        channels: names of the output fields, in the channel order of ``(n, C, *S)`` arrays.
        channel_units: unit of each channel.
        axis_names: names of the grid axes in array order (``("x",)``, ``("y", "x")``).
        axis_units: units of the axes' coordinates (empty: metres).
        latent_name, latent_unit: the random input field that the simulator maps to the fields.
        mean_error_norm: how the evaluation reduces the mean's error over the grid: ``"max"``
            (largest pointwise error over the largest standard deviation) or ``"rms"``
            (r.m.s. error over r.m.s. standard deviation; for large grids, where a max over
            thousands of points is dominated by sampling noise).
    """

    name: str
    conditions: tuple[ConditionSpec, ...]
    channels: tuple[str, ...]
    channel_units: tuple[str, ...]
    latent_name: str
    latent_unit: str = "1"
    axis_names: tuple[str, ...] = ("x",)
    axis_units: tuple[str, ...] = ()
    mean_error_norm: str = "max"
    #: Channels that are a deterministic function of the others (the solution of the PDE for
    #: the random input in the other channels), in channel order; empty: none declared.
    solution_channels: tuple[str, ...] = ()

    # ------------------------------------------------------------------ metadata
    @property
    def condition_names(self) -> tuple[str, ...]:
        """Names of the conditions, in column order."""
        return tuple(spec.name for spec in self.conditions)

    @property
    def condition_units(self) -> tuple[str, ...]:
        """Units of the conditions, in column order."""
        return tuple(spec.unit for spec in self.conditions)

    @property
    def grid(self) -> np.ndarray:
        """Grid coordinates of a 1-D problem: ``(N,)`` metres. A problem of higher rank has
        no single grid array: use :attr:`coordinates` or :attr:`field_spec`."""
        if type(self).coordinates is Problem.coordinates:
            raise NotImplementedError(f"{type(self).__name__} defines neither grid nor coordinates")
        coordinates = self.coordinates
        if len(coordinates) != 1:
            raise ValueError(
                f"problem {self.name!r} has a {len(coordinates)}-D grid; use problem.coordinates "
                "or problem.field_spec instead of problem.grid"
            )
        return coordinates[0]

    @property
    def coordinates(self) -> tuple[np.ndarray, ...]:
        """One coordinate array per grid axis, in array-axis order (default: ``(grid,)``)."""
        return (np.asarray(self.grid, dtype=float),)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """``S``: points along each grid axis."""
        return tuple(int(np.asarray(axis).shape[0]) for axis in self.coordinates)

    @property
    def n_points(self) -> int:
        """Total number of grid points ``prod(S)`` (``N`` in 1-D)."""
        return math.prod(self.grid_shape)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent draw (default: the grid shape)."""
        return self.grid_shape

    @property
    def field_spec(self) -> FieldSpec:
        """Channels, units and grid of one sample ``(C, *S)``."""
        return FieldSpec(
            channels=tuple(self.channels),
            channel_units=tuple(self.channel_units),
            coordinates=tuple(self.coordinates),
            axis_names=tuple(self.axis_names),
            axis_units=tuple(self.axis_units),
        )

    def invariances(self) -> tuple[Invariance, ...]:
        """Conditions the distribution of the fields does not depend on (default: none)."""
        return ()

    def derived_quantities(
        self, fields: np.ndarray, conditions: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Scalar quantities of interest per field, ``{name: (n,)}``, computed from fields
        ``(n, C, *S)`` and their conditions ``(n, k)`` (default: none). The evaluation compares
        their distributions (model vs simulator)."""
        del fields, conditions
        return {}

    def residual(self, fields: np.ndarray, conditions: np.ndarray) -> np.ndarray | None:
        """The discrete PDE residual of each field, ``(n,)`` (a norm, in a unit the problem
        documents), or None when the problem has no residual to check (default)."""
        del fields, conditions
        return None

    def solution_reflections(self) -> tuple[Reflection, ...]:
        """Mirror symmetries of the map from the input channels to :attr:`solution_channels`
        (default: none); a two-stage model trains on them as augmentation."""
        return ()

    def solution_norm(self, fields: np.ndarray) -> TwoPointNorm | None:
        """The norm in which an error of the solution channels of ``fields`` ``(n, C, *S)``
        (each pair's own operator) is measured (default None: the squared error only)."""
        del fields
        return None

    def default_evaluation_conditions(self) -> np.ndarray:
        """Conditions a recipe evaluates at when it names none: ``(M, k)`` (default: the
        centre of the design, geometric for log-scale conditions)."""
        centre = [
            math.sqrt(spec.low * spec.high) if spec.log_scale else 0.5 * (spec.low + spec.high)
            for spec in self.conditions
        ]
        return np.asarray([centre], dtype=float)

    @abc.abstractmethod
    def attributes(self) -> dict[str, Any]:
        """Flat ``{name: value}`` of everything that defines the simulator (parameters, units,
        options), with plain Python scalars/strings only, ready for HDF5 attributes."""

    @abc.abstractmethod
    def boundary_conditions(self) -> tuple[BoundaryCondition, ...]:
        """The Dirichlet/Neumann constraints that every simulated field satisfies."""

    # ------------------------------------------------------------------ simulation
    @abc.abstractmethod
    def sample_latent(self, condition: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` latent fields for one condition row ``(k,)``: ``(n, *latent_shape)``."""

    @abc.abstractmethod
    def solve(self, latent: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Fields for a batch: latent ``(B, *latent_shape)``, conditions ``(B, k)`` ->
        ``(B, C, *S)``."""

    def validate_conditions(self, conditions: np.ndarray) -> np.ndarray:
        """Check a conditions array and return it as float64 ``(M, k)``.

        A single row ``(k,)`` is accepted and promoted to ``(1, k)``. Raises ``ValueError``
        naming the condition, the offending value and the allowed domain when a value is not
        finite or physically impossible. Values outside the design range but physical are
        allowed (a model may be asked to extrapolate).
        """
        array = np.asarray(conditions, dtype=float)
        if array.ndim == 1:
            array = array[None, :]
        k = len(self.conditions)
        if array.ndim != 2 or array.shape[1] != k:
            raise ValueError(
                f"conditions has shape {np.shape(conditions)}; expected (M, {k}) with columns "
                f"{list(self.condition_names)}"
            )
        for j, spec in enumerate(self.conditions):
            ok = spec.is_physical(array[:, j])
            if not np.all(ok):
                bad = array[~ok, j][0]
                raise ValueError(
                    f"condition {spec.name} = {float(bad)!r} is not allowed for problem "
                    f"{self.name!r}; expected a finite value in {spec.domain_text()}"
                )
        return array

    def warn_outside_design_range(self, conditions: np.ndarray) -> bool:
        """Warn (``UserWarning``, naming the condition, the value and the design range) for each
        condition of ``conditions`` ``(M, k)`` outside its design range, where the problem's
        documented regime (docs/physics.md) is not guaranteed; returns whether all are inside."""
        inside = True
        for j, spec in enumerate(self.conditions):
            outside = ~spec.in_design_range(conditions[:, j])
            if np.any(outside):
                inside = False
                warnings.warn(
                    f"condition {spec.name} = {float(conditions[outside, j][0])!r} {spec.unit} "
                    f"lies outside the design range [{spec.low:g}, {spec.high:g}] {spec.unit} of "
                    f"problem {self.name!r}: the fields are computed, but the regime documented "
                    "in docs/physics.md is not guaranteed there",
                    UserWarning,
                    stacklevel=3,
                )
        return inside

    def simulate(
        self,
        conditions: np.ndarray,
        per_condition: int,
        rngs: Sequence[RngLike],
    ) -> dict[str, np.ndarray]:
        """Simulate ``per_condition`` fields for each condition row, all rows in one batch.

        Args:
            conditions: ``(M, k)`` in the units of :attr:`conditions`.
            per_condition: number of latent draws per condition, ``>= 1``.
            rngs: one generator (or seed / ``SeedSequence``) per row, length ``M``. The draws
                of row ``i`` come from ``rngs[i]`` only, so results do not depend on batching.

        Returns:
            ``fields`` ``(M * per_condition, C, *S)`` in :attr:`channel_units`, ``latent``
            ``(M * per_condition, *latent_shape)``, ``conditions`` ``(M * per_condition, k)``;
            row-major: the draws of condition 0 first.
        """
        array = self.validate_conditions(conditions)
        self.warn_outside_design_range(array)
        if isinstance(per_condition, bool) or not isinstance(per_condition, int | np.integer):
            raise ValueError(f"per_condition = {per_condition!r} is not allowed; expected int >= 1")
        if per_condition < 1:
            raise ValueError(f"per_condition = {per_condition!r} is not allowed; expected >= 1")
        if len(rngs) != len(array):
            raise ValueError(
                f"rngs has length {len(rngs)}; expected one generator per condition ({len(array)})"
            )
        latent = np.concatenate(
            [
                self.sample_latent(row, int(per_condition), np.random.default_rng(rng))
                for row, rng in zip(array, rngs, strict=True)
            ],
            axis=0,
        )
        repeated = np.repeat(array, int(per_condition), axis=0)
        fields = np.asarray(self.solve(latent, repeated), dtype=float)
        expected = (len(repeated), len(self.channels), *self.grid_shape)
        if fields.shape != expected:
            raise RuntimeError(
                f"{type(self).__name__}.solve returned shape {fields.shape}; expected {expected}"
            )
        if latent.shape != (len(repeated), *self.latent_shape):
            raise RuntimeError(
                f"{type(self).__name__}.sample_latent gave shape {latent.shape[1:]} per draw; "
                f"expected {self.latent_shape}"
            )
        return {"fields": fields, "latent": latent, "conditions": repeated}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, conditions={self.condition_names})"
