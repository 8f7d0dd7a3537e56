"""Baselines of the multi-fidelity issue, each ``(training, test) -> (n_test, P)`` predictions of
the finest outputs in the finest level's standardisation (see :mod:`.protocol`).

- ``coarse_solver`` (c): the second-highest fidelity's solver answer at the test inputs,
  interpolated to the finest grid (what a user gets by solving coarse). No training.
- ``linear`` and ``affine`` (e): least squares of the finest outputs (physical units, every
  grid point) on the inputs, without and with an intercept. The Poisson output is linear in
  its five inputs, so ``linear`` reproduces it to round-off from five independent solutions.
- ``gp_pca`` (e): Gaussian-process regression (scikit-learn's ``GaussianProcessRegressor``) on
  the leading principal components of the finest level's standardised outputs, one GP per
  component, inputs scaled to the unit cube.
- ``ar1_pca`` (d): the linear autoregressive multi-fidelity GP of Kennedy and O'Hagan (2000),
  emukit's ``GPyLinearMultiFidelityModel`` with ``LinearMultiFidelityKernel``, one model per
  principal component of a basis shared by all levels.

scikit-learn, emukit and GPy are optional (``pip install 'scorepde[mf]'``); a baseline that
needs a missing one raises ``ImportError`` naming the extra. :func:`available_baselines` lists
the ones that can run here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from scorepde.multifidelity.protocol import TestSet, TrainingSet

__all__ = [
    "BASELINES",
    "ar1_pca",
    "available_baselines",
    "coarse_solver",
    "gp_pca",
    "linear_least_squares",
    "principal_basis",
]

_EXTRAS = {"gp_pca": ("sklearn",), "ar1_pca": ("emukit", "GPy")}


def _require(baseline: str) -> None:
    missing = [m for m in _EXTRAS.get(baseline, ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"baseline {baseline!r} needs {', '.join(missing)}, not installed; install the "
            "optional extra: pip install 'scorepde[mf]'"
        )


def _unit_inputs(inputs: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    return (np.asarray(inputs, dtype=float) - bounds[:, 0]) / (bounds[:, 1] - bounds[:, 0])


def coarse_solver(training: TrainingSet, test: TestSet) -> np.ndarray:
    """(c) The second-highest fidelity's answer, standardised like the finest outputs."""
    second = training.fidelities[-2]
    return training.finest.transform(test.raw[second])


def linear_least_squares(
    training: TrainingSet, test: TestSet, intercept: bool = False
) -> np.ndarray:
    """(e) ``y ~ X W`` (or ``[X, 1] W``) fitted on the finest level in physical units by
    minimum-norm least squares, every grid point at once."""
    inputs, targets = training.inputs[-1], training.raw[-1]
    design = np.column_stack([inputs, np.ones(len(inputs))]) if intercept else inputs
    weights, *_ = np.linalg.lstsq(design, targets, rcond=None)
    test_design = (
        np.column_stack([test.inputs, np.ones(len(test.inputs))]) if intercept else test.inputs
    )
    return training.finest.transform(test_design @ weights)


def principal_basis(
    fields: np.ndarray, max_components: int = 10, energy: float = 1.0 - 1e-8
) -> np.ndarray:
    """``(P, r)`` orthonormal leading principal directions of ``(n, P)`` centred fields: the
    fewest that keep the fraction ``energy`` of the sum of squares, at most ``max_components``
    and at most the numerical rank."""
    array = np.asarray(fields, dtype=float)
    _, singular, right = np.linalg.svd(array, full_matrices=False)
    power = singular**2
    if power.sum() == 0:
        return right[:1].T
    cumulative = np.cumsum(power) / power.sum()
    rank = int(np.sum(singular > singular[0] * 1e-10))
    count = min(int(np.searchsorted(cumulative, energy) + 1), max_components, max(rank, 1))
    return right[:count].T


def gp_pca(training: TrainingSet, test: TestSet, max_components: int = 10) -> np.ndarray:
    """(e) One scikit-learn GP per leading principal component of the finest level alone.

    Kernel: ``C * RBF(ARD) + White`` on inputs scaled to the unit cube, ``normalize_y``, three
    optimiser restarts (seeded by ``training.seed``).
    """
    _require("gp_pca")
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    fields = training.fields[-1]
    basis = principal_basis(fields, max_components)
    coefficients = fields @ basis
    x_train = _unit_inputs(training.inputs[-1], training.input_bounds)
    x_test = _unit_inputs(test.inputs, training.input_bounds)
    dimension = x_train.shape[1]
    predicted = np.empty((x_test.shape[0], basis.shape[1]))
    for component in range(basis.shape[1]):
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(
            np.full(dimension, 0.5), (1e-2, 1e2)
        ) + WhiteKernel(1e-6, (1e-10, 1e-1))
        model = GaussianProcessRegressor(
            kernel, normalize_y=True, n_restarts_optimizer=3, random_state=training.seed
        )
        model.fit(x_train, coefficients[:, component])
        predicted[:, component] = model.predict(x_test)
    return predicted @ basis.T


def ar1_pca(
    training: TrainingSet,
    test: TestSet,
    max_components: int = 5,
    restarts: int = 0,
    max_iterations: int = 200,
) -> np.ndarray:
    """(d) Kennedy-O'Hagan AR1 multi-fidelity GP (emukit) per shared principal component.

    All levels are first put in one coordinate system, the lowest level's standardisation (its
    training set is the largest); per-level standardisation would give each level its own
    per-point offset and scale, so a level's coefficients would not be a scalar multiple of the
    level below plus a smooth correction, which is what AR1 assumes (tried: nRMSE 0.68 on
    Poisson that way). The basis: principal directions of every level's outputs so standardised,
    stacked together; each level's coefficients on it are one fidelity of the AR1 model
    ``f_l(x) = rho_{l-1} f_{l-1}(x) + delta_l(x)``, ``delta_l`` a GP with an ARD RBF kernel on
    inputs scaled to the unit cube; the noise variance of each level is fixed at ``1e-6`` times
    the variance of that level's coefficients (the solutions are deterministic; where GPy's
    Cholesky fails even with jitter, the fit is redone with ``1e-4``, then ``1e-2``); the
    hyperparameters maximise the marginal likelihood (GPy's L-BFGS-B from GPy's defaults, at most
    ``max_iterations`` iterations, plus ``restarts`` random restarts drawn from numpy's global
    random state, seeded by ``training.seed``). The defaults (5 components, no restart) keep one
    fit at tens of seconds on one loaded core; GPy is the cost.
    """
    _require("ar1_pca")
    import GPy
    from emukit.model_wrappers.gpy_model_wrappers import GPyMultiOutputWrapper
    from emukit.multi_fidelity.convert_lists_to_array import (
        convert_x_list_to_array,
        convert_xy_lists_to_arrays,
    )
    from emukit.multi_fidelity.kernels import LinearMultiFidelityKernel
    from emukit.multi_fidelity.models import GPyLinearMultiFidelityModel

    levels = len(training.fidelities)
    common = training.standardisers[0]
    fields = [common.transform(raw) for raw in training.raw]
    basis = principal_basis(np.concatenate(fields), max_components)
    x_levels = [_unit_inputs(x, training.input_bounds) for x in training.inputs]
    x_test = _unit_inputs(test.inputs, training.input_bounds)
    query = convert_x_list_to_array([x_test] * levels)[(levels - 1) * len(x_test) :]
    predicted = np.empty((x_test.shape[0], basis.shape[1]))
    state = np.random.get_state()  # noqa: NPY002 (GPy restarts draw from the global state)
    np.random.seed(training.seed % 2**32)  # noqa: NPY002
    try:
        for component in range(basis.shape[1]):
            y_levels = [(f @ basis[:, component])[:, None] for f in fields]
            x_all, y_all = convert_xy_lists_to_arrays(x_levels, y_levels)
            for noise in _AR1_NOISE_LEVELS:
                try:
                    model = _fit_ar1(
                        GPy,
                        LinearMultiFidelityKernel,
                        GPyLinearMultiFidelityModel,
                        x_all,
                        y_all,
                        y_levels,
                        noise,
                        restarts,
                        max_iterations,
                    )
                    break
                except np.linalg.LinAlgError:
                    continue  # the covariance lost definiteness: retry with more noise
            else:
                raise np.linalg.LinAlgError(
                    f"AR1 fit of component {component} failed at every fixed noise level "
                    f"{_AR1_NOISE_LEVELS}"
                )
            wrapper = GPyMultiOutputWrapper(model, levels, n_optimization_restarts=0)
            mean, _ = wrapper.predict(query)
            predicted[:, component] = mean[:, 0]
    finally:
        np.random.set_state(state)  # noqa: NPY002
    return training.finest.transform(common.inverse(predicted @ basis.T))


#: Fixed noise variances tried in turn, as fractions of each level's coefficient variance.
_AR1_NOISE_LEVELS = (1e-6, 1e-4, 1e-2)


def _fit_ar1(
    gpy: Any,
    kernel_class: Any,
    model_class: Any,
    x_all: np.ndarray,
    y_all: np.ndarray,
    y_levels: list[np.ndarray],
    noise: float,
    restarts: int,
    max_iterations: int,
) -> Any:
    """One emukit AR1 model fitted with fixed per-level noise ``noise * var(level)``."""
    levels = len(y_levels)
    dimension = x_all.shape[1] - 1
    kernel = kernel_class([gpy.kern.RBF(dimension, ARD=True) for _ in range(levels)])
    model = model_class(x_all, y_all, kernel, n_fidelities=levels)
    for level in range(levels):
        name = "Gaussian_noise" if level == 0 else f"Gaussian_noise_{level}"
        variance = max(float(np.var(y_levels[level])), 1e-12)
        getattr(model.mixed_noise, name).fix(noise * variance)
    if restarts > 0:
        model.optimize_restarts(restarts + 1, max_iters=max_iterations, verbose=False)
    else:
        model.optimize(max_iters=max_iterations)
    return model


BASELINES: dict[str, Callable[[TrainingSet, TestSet], np.ndarray]] = {
    "coarse_solver": coarse_solver,
    "linear": linear_least_squares,
    "affine": lambda training, test: linear_least_squares(training, test, intercept=True),
    "gp_pca": gp_pca,
    "ar1_pca": ar1_pca,
}


def available_baselines() -> list[str]:
    """The names in :data:`BASELINES` whose optional packages are installed here."""
    found = []
    for name in BASELINES:
        try:
            _require(name)
        except ImportError:
            continue
        found.append(name)
    return found
