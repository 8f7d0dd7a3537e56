"""Noise misspecification: a posterior trained with one measurement noise, used on observations
made with another (typically the same family at another level).

An amortised posterior learns ``p(x | y)`` for the noise of its training pairs. If the real
instrument is noisier, the posterior is over-confident (too narrow, and its mean follows the
noise); if it is quieter, the posterior is too wide. :func:`noise_misspecification` measures
both effects on the same truths ``x_true ~ p(x)`` for each observed noise model:

* ``mean_bias``: RMS over observations and components of ``(mean_model - mean_exact) / std_exact``
  where ``mean_exact``, ``std_exact`` are the correct posterior's under the *observed* noise
  (needs ``reference_posterior``, e.g. :func:`linear_gaussian_reference`). Sampling noise alone
  gives about ``1 / sqrt(n_samples)``.
* ``exact_trained_bias``: the same for the exact posterior under the *trained* noise, i.e. what
  a perfect model trained at the wrong level would give; the difference to ``mean_bias`` is the
  model's own error.
* ``std_ratio``: mean over observations and components of ``std_model / std_exact``.
  Components whose reference std is 0 (a point mass) are left out of these three and counted
  in ``components_without_spread``.
* ``rmse_truth`` (and ``rmse_truth_exact``): RMS distance of the posterior mean (of the exact
  posterior mean) from ``x_true``, in ``x``'s units; available without a reference.
* ``coverage_<level>``: fraction of (observation, component) pairs whose ``x_true`` lies in the
  model's central ``level`` interval, from the PIT-jittered ranks of
  :mod:`scorepde.evaluation.calibration` (exactly ``level`` in expectation for a calibrated
  sampler whatever ``n_samples``; empirical quantiles of few samples would cover less);
  tolerance ~ ``2 sqrt(level (1 - level) / n_observations)``, the components of one
  observation being correlated.
* ``ks_max`` / ``ks_critical``: the largest SBC KS distance over components and its Bonferroni
  critical value.

Where the posterior has no closed form (the battery porosity problems), :func:`pcn_reference`
gives ``reference_posterior`` by generalised pCN MCMC for an ``x`` whose prior is ``N(0, I)``
(the battery's whitened GP modes); MCMC costs seconds per observation and noise level, so
``n_reference`` limits the reference columns to the first observations (the truth-based
columns and the calibration still use all of them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from scorepde.evaluation.calibration import calibration_from_samples, component_statistics
from scorepde.inverse.linear_gaussian import LinearGaussianProblem
from scorepde.inverse.mcmc import pcn_sample
from scorepde.inverse.noise_models import AdditiveGaussian, NoiseModel

#: The field that sets each noise family's level (what :func:`scale_noise` multiplies).
NOISE_SCALE_FIELDS: dict[str, str] = {
    "additive_gaussian": "std",
    "relative_gaussian": "level",
    "multiplicative_lognormal": "sigma",
    "student_t": "scale",
}

#: ``(y (*y_shape), noise) -> (mean (*x_shape), std (*x_shape))`` of the correct posterior.
ReferencePosterior = Callable[[np.ndarray, NoiseModel], tuple[np.ndarray, np.ndarray]]
#: ``(observations (M, *y_shape), n_samples, seed) -> (M, n_samples, *x_shape)``.
PosteriorSampler = Callable[[np.ndarray, int, int], np.ndarray]


def noise_level(noise: NoiseModel) -> float:
    """The value of the noise model's level field (:data:`NOISE_SCALE_FIELDS`)."""
    if noise.name not in NOISE_SCALE_FIELDS:
        raise ValueError(
            f"noise model {noise.name!r} has no known level field; known: "
            f"{sorted(NOISE_SCALE_FIELDS)}"
        )
    return float(getattr(noise, NOISE_SCALE_FIELDS[noise.name]))


def scale_noise(noise: NoiseModel, factor: float) -> NoiseModel:
    """A copy of ``noise`` with its level field (:data:`NOISE_SCALE_FIELDS`) times ``factor``."""
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"factor must be finite and > 0, got {factor!r}")
    field = NOISE_SCALE_FIELDS.get(noise.name)
    if field is None:
        raise ValueError(
            f"noise model {noise.name!r} has no known level field; known: "
            f"{sorted(NOISE_SCALE_FIELDS)}"
        )
    return dataclasses.replace(noise, **{field: noise_level(noise) * float(factor)})  # type: ignore[type-var]


def linear_gaussian_reference(problem: LinearGaussianProblem) -> ReferencePosterior:
    """The exact posterior of ``problem`` under any :class:`AdditiveGaussian` noise."""

    def reference(y: np.ndarray, noise: NoiseModel) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(noise, AdditiveGaussian):
            raise ValueError(
                f"the linear-Gaussian posterior is exact only for additive_gaussian noise, "
                f"got {noise.name!r}"
            )
        mean, cov = dataclasses.replace(problem, noise_std=noise.std).exact_posterior(y)
        return mean, np.sqrt(np.diag(cov))

    return reference


def pcn_reference(
    forward: Callable[[np.ndarray], np.ndarray],
    dim: int,
    *,
    n_chains: int = 4,
    n_draws: int = 500,
    n_burn: int = 1000,
    seed: int = 0,
    rhat_threshold: float | None = None,
) -> ReferencePosterior:
    """A reference posterior by generalised pCN MCMC (:func:`~scorepde.inverse.mcmc.pcn_sample`,
    ``adapt_covariance=True``) for ``x (dim,)`` with the prior ``N(0, I_dim)`` (e.g. the
    battery's whitened GP modes, ``InverseProblem.forward`` of a ``space: whitened`` recipe).

    ``(y, noise) -> (mean (dim,), std (dim,))`` of the draws of ``p(x | y)`` with the
    likelihood ``noise.log_likelihood(y, forward(x))``. Runs are memoised per ``(y, noise)``;
    run ``k`` uses seed ``seed + k``. The attribute ``runs`` of the returned function lists one
    ``{"max_rhat", "min_ess", "seconds"}`` per run (ArviZ's R-hat and bulk ESS over the
    components of ``x``): report them beside the table. With ``rhat_threshold`` a run with
    ``max_rhat >= rhat_threshold`` raises instead.
    """
    cache: dict[tuple[bytes, str], tuple[np.ndarray, np.ndarray]] = {}
    runs: list[dict[str, float]] = []

    def reference(y: np.ndarray, noise: NoiseModel) -> tuple[np.ndarray, np.ndarray]:
        observation = np.asarray(y, dtype=np.float64)
        key = (observation.tobytes(), repr(noise.to_config()))
        if key not in cache:

            def log_likelihood(xi: np.ndarray) -> np.ndarray:
                clean = forward(xi)
                return noise.log_likelihood(
                    np.broadcast_to(observation.reshape(clean.shape[1:]), clean.shape), clean
                )

            result = pcn_sample(
                log_likelihood,
                dim,
                n_chains=n_chains,
                n_draws=n_draws,
                n_burn=n_burn,
                adapt_covariance=True,
                seed=seed + len(runs),
            )
            summary = result.summary()
            runs.append(
                {
                    "max_rhat": summary["max_rhat"],
                    "min_ess": summary["min_ess"],
                    "seconds": summary["wall_time"],
                }
            )
            if rhat_threshold is not None and not summary["max_rhat"] < rhat_threshold:
                raise ValueError(
                    f"the MCMC reference did not mix: max R-hat {summary['max_rhat']:.3f} >= "
                    f"rhat_threshold {rhat_threshold}; give more n_burn / n_draws"
                )
            draws = result.flat()
            cache[key] = (draws.mean(axis=0), draws.std(axis=0, ddof=1))
        return cache[key]

    reference.runs = runs  # type: ignore[attr-defined]
    return reference


def _describe(noise: NoiseModel) -> str:
    fields = {k: v for k, v in noise.to_config().items() if k != "name"}
    return (
        f"{noise.name}("
        + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
        + ")"
    )


def _rms(values: np.ndarray) -> float:
    """Root mean square; NaN for no values."""
    return float(np.sqrt(np.mean(np.square(values)))) if np.size(values) else float("nan")


def noise_misspecification(
    sample_posterior: PosteriorSampler,
    prior_sample: Callable[[int, np.random.Generator], np.ndarray],
    forward: Callable[[np.ndarray], np.ndarray],
    trained_noise: NoiseModel,
    observed_noises: Sequence[NoiseModel],
    *,
    n_observations: int,
    n_samples: int,
    seed: int,
    reference_posterior: ReferencePosterior | None = None,
    levels: Sequence[float] = (0.5, 0.9),
    alpha: float = 0.01,
    n_reference: int | None = None,
) -> list[dict[str, Any]]:
    """One row per observed noise model (see the module docstring for the columns).

    The truths ``x_true (n_observations, *x_shape)`` come from ``default_rng(seed)`` and are
    shared by all rows; row ``k``'s measurement noise uses ``default_rng([seed, k + 1])`` and
    its posterior samples ``sample_posterior(y, n_samples, seed + k + 1)``. n_reference: the
    reference columns (``mean_bias``, ``exact_trained_bias``, ``std_ratio``,
    ``rmse_truth_exact``) over the first ``n_reference`` observations only (None: all); the
    row then records ``n_reference`` and ``rmse_truth_referenced`` (the model's RMSE over those
    observations, comparable with ``rmse_truth_exact``).
    """
    if n_observations < 2 or n_samples < 2:
        raise ValueError(
            f"need n_observations >= 2 and n_samples >= 2, got {n_observations}, {n_samples}"
        )
    if n_reference is not None and not 1 <= n_reference <= n_observations:
        raise ValueError(
            f"n_reference = {n_reference!r} is not allowed; expected None or an integer in "
            f"[1, n_observations = {n_observations}]"
        )
    referenced = slice(None) if n_reference is None else slice(0, n_reference)
    if not observed_noises:
        raise ValueError("observed_noises is empty; give at least one noise model")
    truths = np.asarray(prior_sample(n_observations, np.random.default_rng(seed)), np.float64)
    clean = np.asarray(forward(truths), dtype=np.float64)
    trained_level = noise_level(trained_noise) if trained_noise.name in NOISE_SCALE_FIELDS else None
    statistics, names = component_statistics(
        truths.shape[1:], max_components=int(np.prod(truths.shape[1:])), include_mean=False
    )
    rows: list[dict[str, Any]] = []
    for k, noise in enumerate(observed_noises):
        observations = noise.sample(clean, np.random.default_rng([seed, k + 1]))
        samples = np.asarray(sample_posterior(observations, n_samples, seed + k + 1), np.float64)
        expected = (n_observations, n_samples, *truths.shape[1:])
        if samples.shape != expected:
            raise ValueError(f"sample_posterior returned {samples.shape}; expected {expected}")
        mean, std = samples.mean(axis=1), samples.std(axis=1, ddof=1)
        ratio = None
        if trained_level is not None and noise.name == trained_noise.name:
            ratio = noise_level(noise) / trained_level
        row: dict[str, Any] = {
            "observed_noise": _describe(noise),
            "trained_noise": _describe(trained_noise),
            "level_ratio": ratio,
        }
        if reference_posterior is not None:
            subset = observations[referenced]
            pairs = [reference_posterior(y, noise) for y in subset]
            exact_mean = np.stack([p[0] for p in pairs])
            exact_std = np.stack([p[1] for p in pairs])
            at_trained = np.stack([reference_posterior(y, trained_noise)[0] for y in subset])
            # a component the reference pins exactly (std 0: e.g. a cell no inclusion of the
            # reference's draws reaches) has no std units; it is left out and counted
            spread = exact_std > 0
            units = np.where(spread, exact_std, 1.0)
            row["mean_bias"] = _rms(((mean[referenced] - exact_mean) / units)[spread])
            row["exact_trained_bias"] = _rms(((at_trained - exact_mean) / units)[spread])
            row["std_ratio"] = float(np.mean((std[referenced] / units)[spread]))
            row["components_without_spread"] = int(spread.size - spread.sum())
        row["rmse_truth"] = _rms(mean - truths)
        if reference_posterior is not None:
            row["rmse_truth_exact"] = _rms(exact_mean - truths[referenced])
            if n_reference is not None:
                # the model's RMSE over the same observations as the exact column
                row["rmse_truth_referenced"] = _rms(mean[referenced] - truths[referenced])
                row["n_reference"] = int(n_reference)
        calibration = calibration_from_samples(
            truths,
            samples,
            statistics=statistics,
            names=names,
            alpha=alpha,
            levels=levels,
            seed=seed + k + 1,
        )
        for level, value in zip(calibration.levels, calibration.coverage, strict=True):
            row[f"coverage_{level:g}"] = float(value)
        row["ks_max"] = float(np.max(calibration.ks))
        row["ks_critical"] = float(calibration.ks_critical)
        rows.append(row)
    return rows


_HEADERS = {
    "observed_noise": "observed noise",
    "level_ratio": "observed / trained",
    "mean_bias": "mean bias (exact post. std, RMS)",
    "exact_trained_bias": "same, exact posterior at trained noise",
    "std_ratio": "std / exact std",
    "rmse_truth": "RMSE to truth",
    "rmse_truth_exact": "RMSE to truth (exact)",
    "ks_max": "SBC max KS",
    "ks_critical": "KS critical",
    "rmse_truth_referenced": "RMSE to truth (same observations)",
    "n_reference": "observations with a reference",
}


def misspecification_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`noise_misspecification` rows (the trained noise, the same in
    every row, goes in a line above the table)."""
    if not rows:
        raise ValueError("no rows to render")
    keys = [k for k in rows[0] if k != "trained_noise"]
    headers = [
        _HEADERS.get(k, f"coverage {k.split('_', 1)[1]}" if k.startswith("coverage_") else k)
        for k in keys
    ]

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3g}"
        return str(value)

    lines = [
        f"trained with {rows[0].get('trained_noise', '?')}",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    lines += ["| " + " | ".join(cell(row.get(k)) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


__all__ = [
    "NOISE_SCALE_FIELDS",
    "PosteriorSampler",
    "ReferencePosterior",
    "linear_gaussian_reference",
    "misspecification_markdown",
    "noise_level",
    "noise_misspecification",
    "pcn_reference",
    "scale_noise",
]
