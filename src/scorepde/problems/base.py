"""The Problem interface: what the ML layers need to know about one PDE and its simulator.

A problem names its conditions (the inputs ``p`` a model is conditioned on) with units and
design ranges, its output channels and grid, its latent random field (e.g. porosity), and it
simulates fields for given conditions with explicit random generators. Everything here stays in
physical units; only ``scorepde.data`` normalises.

A new PDE plugs in by subclassing :class:`Problem` and implementing :meth:`Problem.sample_latent`
and :meth:`Problem.solve` (plus the metadata); :meth:`Problem.simulate` does the batching and the
bookkeeping of seeds and shapes.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["BoundaryCondition", "ConditionSpec", "Problem", "RngLike"]

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
            ``(physical_low, physical_high)`` (infinite = unbounded). Values outside the design
            range but inside this interval are allowed (a model may be asked to extrapolate).
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
        """Boolean mask, same shape as ``values``: finite and inside the physical domain."""
        values = np.asarray(values, dtype=float)
        return np.isfinite(values) & (values > self.physical_low) & (values < self.physical_high)

    def in_design_range(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask, same shape as ``values``: inside the closed design range."""
        values = np.asarray(values, dtype=float)
        return (values >= self.low) & (values <= self.high)

    def domain_text(self) -> str:
        """The physical domain as text, e.g. ``"(0, inf) L"``."""
        return f"({self.physical_low:g}, {self.physical_high:g}) {self.unit}"


class BoundaryCondition(NamedTuple):
    """A boundary constraint every simulated field of a channel satisfies.

    ``kind`` is ``"dirichlet"`` (``field = value``) or ``"neumann"`` (``d field / dx = value``,
    in the channel's unit per metre); ``side`` is ``"left"`` (x = 0) or ``"right"`` (x = L).
    Compares equal to the plain tuple ``(channel, kind, side, value)``.
    """

    channel: str
    kind: str
    side: str
    value: float


class Problem(abc.ABC):
    """A simulator plus the metadata the ML layers need.

    Subclasses set the class/instance attributes below and implement :meth:`sample_latent`,
    :meth:`solve`, :meth:`attributes`, :meth:`boundary_conditions` and the :attr:`grid`.

    Attributes:
        name: registry name (``"battery"``).
        conditions: the condition specs, in the column order of every ``(M, k)`` conditions array.
        channels: names of the output fields, in the channel order of ``(n, C, N)`` arrays.
        channel_units: unit of each channel.
        latent_name, latent_unit: the random input field that the simulator maps to the fields.
    """

    name: str
    conditions: tuple[ConditionSpec, ...]
    channels: tuple[str, ...]
    channel_units: tuple[str, ...]
    latent_name: str
    latent_unit: str = "1"

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
    @abc.abstractmethod
    def grid(self) -> np.ndarray:
        """Grid coordinates: ``(N,)`` metres."""

    @property
    def n_points(self) -> int:
        """Number of grid points ``N``."""
        return int(np.asarray(self.grid).shape[0])

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
        """Draw ``n`` latent fields for one condition row ``(k,)``: ``(n, N)``."""

    @abc.abstractmethod
    def solve(self, latent: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Fields for a batch: latent ``(B, N)``, conditions ``(B, k)`` -> ``(B, C, N)``."""

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
            ``fields`` ``(M * per_condition, C, N)`` in :attr:`channel_units`, ``latent``
            ``(M * per_condition, N)``, ``conditions`` ``(M * per_condition, k)``; row-major:
            the draws of condition 0 first.
        """
        array = self.validate_conditions(conditions)
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
        expected = (len(repeated), len(self.channels), self.n_points)
        if fields.shape != expected:
            raise RuntimeError(
                f"{type(self).__name__}.solve returned shape {fields.shape}; expected {expected}"
            )
        return {"fields": fields, "latent": latent, "conditions": repeated}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, conditions={self.condition_names})"
