"""The multi-fidelity evaluation protocol (as in the reference code of Li et al., NeurIPS 2022).

1. **Pools**: 512 training and 128 test inputs from a scrambled Sobol sequence (or a Latin
   hypercube) on the benchmark's input box, seeded (``SeedSequence([seed, split])``).
2. **Data**: every pool input solved at every fidelity, each solve timed (seconds per solution
   per fidelity: the cost that multi-fidelity learning saves).
3. **Interpolation**: every output brought onto the finest grid on physical coordinates, after
   padding with the values known without solving (:class:`~scorepde.multifidelity.benchmarks.
   MultiFidelityBenchmark`.extend): bilinear (Poisson, Heat; scipy's
   ``RegularGridInterpolator``) or bicubic (Burgers; scipy's interpolating
   ``RectBivariateSpline``, ``kx = ky = 3``, ``s = 0``). The finest level is kept as solved.
4. **Budgets**: for each repeat, the training inputs of level ``l`` are the first ``b_l`` entries
   of one random permutation of the pool (``SeedSequence([seed, 2, repeat])``): with
   non-increasing budgets (default 100 / 50 / 20 / 5 from the lowest to the highest fidelity)
   every level's inputs are a subset of the level below (nested). A high-fidelity budget larger
   than the level below (the sweep's 40 against 20) makes that lower level a subset of it instead.
5. **Standardisation**: per fidelity and per grid point (of the finest grid), mean and standard
   deviation over that level's training outputs; a point whose standard deviation is below
   ``1e-12`` times the largest keeps scale 1 (none of the three benchmarks has one: their
   outputs exclude the input-independent initial condition and boundary values).
6. **Metric**: ``nRMSE = rms(y - y_hat) / rms(y)`` over all test inputs and grid points of the
   finest fidelity, both standardised with the finest level's training statistics.
7. **Repeats**: five different training subsets (the pools and solutions are shared), mean and
   standard deviation of the nRMSE.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import RectBivariateSpline, RegularGridInterpolator
from scipy.stats import qmc

from scorepde.multifidelity.benchmarks import MultiFidelityBenchmark

__all__ = [
    "DEFAULT_BUDGETS",
    "MultiFidelityData",
    "Standardiser",
    "TestSet",
    "TrainingSet",
    "design_pool",
    "evaluate_baselines",
    "generate_data",
    "make_training_set",
    "nested_subsets",
    "nrmse",
    "to_finest_grid",
]

DEFAULT_BUDGETS: tuple[int, ...] = (100, 50, 20, 5)
_SPLITS = {"train": 0, "test": 1, "subsets": 2}


def design_pool(
    benchmark: MultiFidelityBenchmark,
    size: int,
    seed: int,
    split: str = "train",
    method: str = "sobol",
) -> np.ndarray:
    """``(size, d)`` inputs in the benchmark's box, physical units.

    Args:
        benchmark: the benchmark (its ``input_bounds``).
        size: number of points (a power of two keeps a Sobol design balanced).
        seed: base seed; the split's stream is ``SeedSequence([seed, split index])``.
        split: ``"train"`` or ``"test"`` (independent scrambles).
        method: ``"sobol"`` (scrambled) or ``"lhs"`` (Latin hypercube).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split is {split!r}; expected 'train' or 'test'")
    if not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"size is {size!r}; expected an int >= 1")
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLITS[split]]))
    dimension = benchmark.dimension
    if method == "sobol":
        sampler: qmc.QMCEngine = qmc.Sobol(dimension, scramble=True, rng=rng)
        unit = sampler.random(size)
    elif method == "lhs":
        unit = qmc.LatinHypercube(dimension, rng=rng).random(size)
    else:
        raise ValueError(f"method is {method!r}; expected 'sobol' or 'lhs'")
    bounds = np.asarray(benchmark.input_bounds, dtype=float)
    return qmc.scale(unit, bounds[:, 0], bounds[:, 1])


def nested_subsets(pool_size: int, budgets: Sequence[int], rng: np.random.Generator) -> list:
    """Index arrays, one per level: the first ``budgets[l]`` entries of one permutation."""
    budgets = [int(b) for b in budgets]
    if any(b < 1 or b > pool_size for b in budgets):
        raise ValueError(f"budgets are {budgets}; expected each in [1, pool size {pool_size}]")
    order = rng.permutation(pool_size)
    return [order[:b] for b in budgets]


def to_finest_grid(
    benchmark: MultiFidelityBenchmark, outputs: np.ndarray, inputs: np.ndarray, fidelity: int
) -> np.ndarray:
    """``(B, N, N)`` outputs of one fidelity on the finest grid (``N = benchmark.finest``).

    The finest fidelity is returned as is; a coarser one is padded with its known values
    (``benchmark.extend``) and interpolated on physical coordinates with the benchmark's order.
    """
    fields = np.asarray(outputs, dtype=float)
    if fields.ndim != 3 or fields.shape[1:] != (fidelity, fidelity):
        raise ValueError(
            f"outputs has shape {np.shape(outputs)}; expected (B, {fidelity}, {fidelity})"
        )
    if fidelity == benchmark.finest:
        return fields.copy()
    (axis0, axis1), values = benchmark.extend(fields, inputs)
    target0, target1 = benchmark.grid(benchmark.finest)
    if benchmark.interpolation == "cubic":
        # FITPACK's interpolating bicubic spline (s = 0), one sample at a time: exact for
        # cubic polynomials (RegularGridInterpolator's "cubic" solves its spline iteratively,
        # to ~1e-5 only).
        return np.stack(
            [
                RectBivariateSpline(axis0, axis1, sample, kx=3, ky=3, s=0)(target0, target1)
                for sample in values
            ]
        )
    if benchmark.interpolation != "linear":
        raise ValueError(
            f"benchmark.interpolation is {benchmark.interpolation!r}; expected 'linear' or 'cubic'"
        )
    interpolator = RegularGridInterpolator((axis0, axis1), np.moveaxis(values, 0, -1))
    points = np.stack(np.meshgrid(target0, target1, indexing="ij"), axis=-1)
    return np.moveaxis(interpolator(points), -1, 0)


@dataclass
class Standardiser:
    """Per-grid-point standardisation ``(y - mean) / scale`` fitted on training outputs.

    Attributes:
        mean: ``(P,)`` mean over the training outputs at each grid point.
        scale: ``(P,)`` their standard deviation (``ddof = 0``); 1 where it is below
            ``1e-12`` times the largest (a point constant over the training outputs).
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, fields: np.ndarray) -> Standardiser:
        """From ``(n, P)`` training outputs (``n >= 2``)."""
        array = np.asarray(fields, dtype=float)
        if array.ndim != 2 or array.shape[0] < 2:
            raise ValueError(f"fields has shape {np.shape(fields)}; expected (n >= 2, P)")
        mean = array.mean(axis=0)
        std = array.std(axis=0)
        scale = np.where(std > 1e-12 * std.max(), std, 1.0)
        return cls(mean=mean, scale=scale)

    def transform(self, fields: np.ndarray) -> np.ndarray:
        return (np.asarray(fields, dtype=float) - self.mean) / self.scale

    def inverse(self, standardised: np.ndarray) -> np.ndarray:
        return np.asarray(standardised, dtype=float) * self.scale + self.mean


def nrmse(truth: np.ndarray, prediction: np.ndarray) -> float:
    """``rms(truth - prediction) / rms(truth)`` over all entries (same shapes)."""
    truth = np.asarray(truth, dtype=float)
    prediction = np.asarray(prediction, dtype=float)
    if truth.shape != prediction.shape:
        raise ValueError(
            f"prediction has shape {prediction.shape}; expected the truth's {truth.shape}"
        )
    return float(np.sqrt(np.mean((truth - prediction) ** 2) / np.mean(truth**2)))


@dataclass
class MultiFidelityData:
    """Pools, their solutions on the finest grid, and the solve times.

    Attributes:
        benchmark: the benchmark.
        train_inputs: ``(n_train, d)``; test_inputs: ``(n_test, d)`` (physical units).
        train_fields: fidelity -> ``(n_train, N, N)`` the training pool's outputs at that
            fidelity on the finest grid (physical units).
        test_fields: fidelity -> ``(n_test, N, N)`` likewise for the test pool (every fidelity;
            the finest is the truth, the others serve the coarse-solver baseline).
        seconds_per_solution: fidelity -> wall-clock seconds per solution (batched solve of
            both pools, one thread; interpolation not included).
    """

    benchmark: MultiFidelityBenchmark
    train_inputs: np.ndarray
    test_inputs: np.ndarray
    train_fields: dict[int, np.ndarray]
    test_fields: dict[int, np.ndarray]
    seconds_per_solution: dict[int, float] = field(default_factory=dict)


def generate_data(
    benchmark: MultiFidelityBenchmark,
    n_train: int = 512,
    n_test: int = 128,
    seed: int = 0,
    method: str = "sobol",
) -> MultiFidelityData:
    """Draw both pools, solve them at every fidelity (timed) and interpolate to the finest grid."""
    train_inputs = design_pool(benchmark, n_train, seed, "train", method)
    test_inputs = design_pool(benchmark, n_test, seed, "test", method)
    both = np.concatenate([train_inputs, test_inputs])
    train_fields, test_fields, seconds = {}, {}, {}
    for fidelity in benchmark.fidelities:
        start = time.perf_counter()
        outputs = benchmark.solve(both, fidelity)
        seconds[fidelity] = (time.perf_counter() - start) / both.shape[0]
        fine = to_finest_grid(benchmark, outputs, both, fidelity)
        train_fields[fidelity], test_fields[fidelity] = fine[:n_train], fine[n_train:]
    return MultiFidelityData(
        benchmark, train_inputs, test_inputs, train_fields, test_fields, seconds
    )


@dataclass
class TrainingSet:
    """One repeat's training data, lowest fidelity first.

    Attributes:
        fidelities: the levels.
        inputs: per level ``(n_l, d)`` physical inputs.
        raw: per level ``(n_l, P)`` outputs on the finest grid, physical units, flattened.
        fields: per level ``(n_l, P)`` the same standardised with the level's own statistics.
        standardisers: per level, the fitted :class:`Standardiser`.
        input_bounds: ``(d, 2)`` the input box (for scaling inputs to the unit cube).
        seed: a seed for the baselines' own randomness (optimiser restarts).
    """

    fidelities: tuple[int, ...]
    inputs: list[np.ndarray]
    raw: list[np.ndarray]
    fields: list[np.ndarray]
    standardisers: list[Standardiser]
    input_bounds: np.ndarray
    seed: int

    @property
    def finest(self) -> Standardiser:
        return self.standardisers[-1]


@dataclass
class TestSet:
    """The test pool: ``inputs`` ``(n, d)``; ``raw`` fidelity -> ``(n, P)`` physical outputs on
    the finest grid at every fidelity but the finest (for the coarse-solver baseline); ``fields``
    ``(n, P)`` the finest outputs standardised with the finest training statistics (the truth,
    read only by the metric)."""

    inputs: np.ndarray
    raw: dict[int, np.ndarray]
    fields: np.ndarray


def make_training_set(
    data: MultiFidelityData, budgets: Sequence[int], repeat: int, seed: int = 0
) -> tuple[TrainingSet, TestSet]:
    """The training subsets of one repeat and the test set standardised to match."""
    fidelities = data.benchmark.fidelities
    if len(budgets) != len(fidelities):
        raise ValueError(
            f"budgets has {len(budgets)} entries; expected one per fidelity {fidelities}"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLITS["subsets"], repeat]))
    subsets = nested_subsets(data.train_inputs.shape[0], budgets, rng)
    inputs, raw, fields, standardisers = [], [], [], []
    for fidelity, subset in zip(fidelities, subsets, strict=True):
        level = data.train_fields[fidelity][subset].reshape(subset.size, -1)
        standardiser = Standardiser.fit(level)
        inputs.append(data.train_inputs[subset])
        raw.append(level)
        fields.append(standardiser.transform(level))
        standardisers.append(standardiser)
    training = TrainingSet(
        fidelities=tuple(fidelities),
        inputs=inputs,
        raw=raw,
        fields=fields,
        standardisers=standardisers,
        input_bounds=np.asarray(data.benchmark.input_bounds, dtype=float),
        seed=int(np.random.SeedSequence([seed, 3, repeat]).generate_state(1)[0]),
    )
    n_test = data.test_inputs.shape[0]
    coarse = {f: data.test_fields[f].reshape(n_test, -1) for f in fidelities[:-1]}
    truth = data.test_fields[fidelities[-1]].reshape(n_test, -1)
    test = TestSet(data.test_inputs, coarse, standardisers[-1].transform(truth))
    return training, test


Baseline = Callable[[TrainingSet, TestSet], np.ndarray]


def evaluate_baselines(
    data: MultiFidelityData,
    baselines: dict[str, Baseline],
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    repeats: int = 5,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """nRMSE of each baseline on each repeat: name -> ``(repeats,)``.

    A baseline is ``(training, test) -> (n_test, P)``, its prediction of the finest outputs in
    the finest level's standardisation; it reads ``test.inputs`` and, for the coarse-solver
    baseline only, ``test.raw`` (coarser fidelities only), never ``test.fields``.
    """
    results = {name: np.empty(repeats) for name in baselines}
    for repeat in range(repeats):
        training, test = make_training_set(data, budgets, repeat, seed)
        for name, baseline in baselines.items():
            results[name][repeat] = nrmse(test.fields, baseline(training, test))
    return results
