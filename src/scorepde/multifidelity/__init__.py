"""Multi-fidelity learning: the benchmarks of the multi-fidelity issue, their evaluation
protocol and the baselines trained on the same data.

- :mod:`~scorepde.multifidelity.benchmarks`: Poisson 2-D, Heat 1-D and Burgers 1-D as data
  (:data:`BENCHMARKS`).
- :mod:`~scorepde.multifidelity.protocol`: pools, nested budgets, interpolation to the finest
  grid, per-grid-point standardisation, nRMSE, repeats.
- :mod:`~scorepde.multifidelity.baselines`: coarse solver, least squares, GP on principal
  components, emukit's AR1 multi-fidelity GP.
- :mod:`~scorepde.multifidelity.dgmf`: the DGMF score model on all fidelities and the baselines
  on its network (score model on the finest level alone, U-Net regression). Its names are
  exported here lazily (importing this package does not import torch).
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

#: Names of :mod:`.dgmf` exported here, imported on first use (PEP 562).
_DGMF_NAMES = (
    "NETWORK_METHODS",
    "DGMFConfig",
    "DGMFModel",
    "UNetRegressionModel",
    "band_coverage",
    "run_network_method",
    "train_dgmf",
    "train_unet_regression",
)


def __getattr__(name: str) -> object:
    if name in _DGMF_NAMES:
        from scorepde.multifidelity import dgmf

        return getattr(dgmf, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BASELINES",
    "BENCHMARKS",
    "DEFAULT_BUDGETS",
    "NETWORK_METHODS",
    "DGMFConfig",
    "DGMFModel",
    "MultiFidelityBenchmark",
    "MultiFidelityData",
    "Standardiser",
    "TestSet",
    "TrainingSet",
    "UNetRegressionModel",
    "available_baselines",
    "band_coverage",
    "design_pool",
    "evaluate_baselines",
    "generate_data",
    "get_benchmark",
    "make_training_set",
    "nested_subsets",
    "nrmse",
    "run_network_method",
    "to_finest_grid",
    "train_dgmf",
    "train_unet_regression",
]
