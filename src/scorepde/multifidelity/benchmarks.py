"""The three multi-fidelity benchmarks as data: inputs, fidelities, solver, grid, interpolation.

Each :class:`MultiFidelityBenchmark` ties a solver of ``scorepde.physics`` to what the protocol
needs: the input names and box, the fidelities (lowest to highest), the solve at one fidelity,
the output grid in physical coordinates extended by the values known without solving (boundary
data, initial condition), and the interpolation order used to bring a coarse output onto the
finest grid. The definitions follow Li et al., "Infinite-fidelity coregionalization" (NeurIPS
2022) as the multi-fidelity issue states them; the solver modules document every difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scorepde.physics import burgers1d, heat1d, poisson2d

__all__ = ["BENCHMARKS", "MultiFidelityBenchmark", "get_benchmark"]

Extended = tuple[tuple[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MultiFidelityBenchmark:
    """One multi-fidelity benchmark.

    Attributes:
        name: registry key.
        input_names: the ``d`` input names, in column order.
        input_bounds: ``d`` pairs ``(low, high)``: the box the design is drawn from.
        fidelities: the fidelity levels, lowest to highest (each output is ``(n, n)``).
        solve: ``(inputs (B, d), fidelity) -> (B, n, n)`` outputs in physical units.
        extend: ``(outputs (B, n, n), inputs (B, d)) -> ((axis0, axis1), values (B, n0, n1))``:
            the outputs on their physical coordinates, padded with known values (boundary data,
            initial condition) so the finest grid lies inside every coarser one.
        grid: ``fidelity -> (axis0 (n,), axis1 (n,))`` the output's own coordinates.
        interpolation: ``"linear"`` (bilinear) or ``"cubic"`` (bicubic spline).
        axis_names: the names of the two output axes (``(y, x)`` or ``(t, x)``).
    """

    name: str
    input_names: tuple[str, ...]
    input_bounds: tuple[tuple[float, float], ...]
    fidelities: tuple[int, ...]
    solve: Callable[[np.ndarray, int], np.ndarray]
    extend: Callable[[np.ndarray, np.ndarray], Extended]
    grid: Callable[[int], tuple[np.ndarray, np.ndarray]]
    interpolation: str
    axis_names: tuple[str, str]

    @property
    def dimension(self) -> int:
        return len(self.input_names)

    @property
    def finest(self) -> int:
        return self.fidelities[-1]


BENCHMARKS: dict[str, MultiFidelityBenchmark] = {
    "poisson": MultiFidelityBenchmark(
        name="poisson",
        input_names=poisson2d.POISSON_INPUT_NAMES,
        input_bounds=poisson2d.POISSON_INPUT_BOUNDS,
        fidelities=poisson2d.POISSON_FIDELITIES,
        solve=poisson2d.solve_poisson_benchmark,
        extend=poisson2d.poisson_extended,
        grid=lambda n: (poisson2d.poisson_nodes(n), poisson2d.poisson_nodes(n)),
        interpolation="linear",
        axis_names=("y", "x"),
    ),
    "heat": MultiFidelityBenchmark(
        name="heat",
        input_names=heat1d.HEAT_INPUT_NAMES,
        input_bounds=heat1d.HEAT_INPUT_BOUNDS,
        fidelities=heat1d.HEAT_FIDELITIES,
        solve=heat1d.solve_heat_benchmark,
        extend=heat1d.heat_extended,
        grid=lambda n: (heat1d.heat_times(n), heat1d.heat_nodes(n)),
        interpolation="linear",
        axis_names=("t", "x"),
    ),
    "burgers": MultiFidelityBenchmark(
        name="burgers",
        input_names=burgers1d.BURGERS_INPUT_NAMES,
        input_bounds=burgers1d.BURGERS_INPUT_BOUNDS,
        fidelities=burgers1d.BURGERS_FIDELITIES,
        solve=burgers1d.solve_burgers_benchmark,
        extend=burgers1d.burgers_extended,
        grid=lambda n: (burgers1d.burgers_times(n), burgers1d.burgers_centres(n)),
        interpolation="cubic",
        axis_names=("t", "x"),
    ),
}


def get_benchmark(name: str) -> MultiFidelityBenchmark:
    """The benchmark called ``name`` (one of :data:`BENCHMARKS`)."""
    if name not in BENCHMARKS:
        raise KeyError(f"benchmark is {name!r}; expected one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]
