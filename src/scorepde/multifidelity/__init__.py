"""Multi-fidelity learning: the benchmarks of the multi-fidelity issue, their evaluation
protocol and the baselines trained on the same data.

- :mod:`~scorepde.multifidelity.benchmarks`: Poisson 2-D, Heat 1-D and Burgers 1-D as data
  (:data:`BENCHMARKS`).
- :mod:`~scorepde.multifidelity.protocol`: pools, nested budgets, interpolation to the finest
  grid, per-grid-point standardisation, nRMSE, repeats.
- :mod:`~scorepde.multifidelity.baselines`: coarse solver, least squares, GP on principal
  components, emukit's AR1 multi-fidelity GP.
"""

from __future__ import annotations

from scorepde.multifidelity.baselines import BASELINES, available_baselines
from scorepde.multifidelity.benchmarks import BENCHMARKS, MultiFidelityBenchmark, get_benchmark
from scorepde.multifidelity.protocol import (
    DEFAULT_BUDGETS,
    MultiFidelityData,
    Standardiser,
    TestSet,
    TrainingSet,
    design_pool,
    evaluate_baselines,
    generate_data,
    make_training_set,
    nested_subsets,
    nrmse,
    to_finest_grid,
)

__all__ = [
    "BASELINES",
    "BENCHMARKS",
    "DEFAULT_BUDGETS",
    "MultiFidelityBenchmark",
    "MultiFidelityData",
    "Standardiser",
    "TestSet",
    "TrainingSet",
    "available_baselines",
    "design_pool",
    "evaluate_baselines",
    "generate_data",
    "get_benchmark",
    "make_training_set",
    "nested_subsets",
    "nrmse",
    "to_finest_grid",
]
