"""Simulation-based calibration (SBC) of a posterior sampler, and coverage of credible intervals.

If a sampler draws from the true posterior ``p(x | y)``, then for pairs ``x_true ~ p(x)``,
``y ~ p(y | x_true)`` the rank of any scalar statistic ``f(x_true)`` among ``L`` posterior
samples ``f(x_1..L)`` is uniform on ``{0, ..., L}`` (Talts et al. 2018). Over ``M`` pairs:

* **ranks** ``r_{ms}`` for every pair ``m`` and statistic ``s`` (default: every component of
  ``x``, or an evenly spaced subset, plus the mean over components). Ties (a constant component)
  are broken uniformly at random.
* **normalised ranks** ``u = (r + U) / (L + 1)`` with ``U ~ Uniform(0, 1)`` (randomised PIT):
  exactly ``Uniform(0, 1)`` under calibration, so the continuous Kolmogorov-Smirnov test applies
  without a correction for the discreteness of ranks.
* **KS test** per statistic against ``Uniform(0, 1)``; with ``S`` statistics the largest KS
  distance is compared with the ``1 - alpha / S`` quantile of the KS distribution for ``M``
  (Bonferroni), so a calibrated sampler fails with probability at most ``alpha``.
* **coverage** of central credible intervals at ``levels``: the fraction of ``(m, s)`` whose
  truth lies in the sampler's central ``level`` interval (``|u - 1/2| <= level / 2``). Its
  tolerance is ``z sqrt(level (1 - level) / M)`` with ``z`` the ``1 - alpha / (2 n_levels)``
  normal quantile; the ``S`` statistics of one pair are correlated, so ``M`` (not ``M S``) is
  the conservative sample size. An over-confident sampler covers less than nominal, an
  under-confident one more.

Pure numpy/scipy: the sampler is any callable; ``scorepde.inverse`` supplies amortised ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

#: Nominal levels of the central credible intervals whose coverage is reported.
DEFAULT_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)

#: Statistic function: ``values (..., *x_shape) -> (..., S)``.
StatisticFn = Callable[[np.ndarray], np.ndarray]


def component_statistics(
    x_shape: Sequence[int], max_components: int = 64, *, include_mean: bool = True
) -> tuple[StatisticFn, list[str]]:
    """Every component of ``x`` (flattened index ``i`` named ``x[i]``; an evenly spaced subset
    of ``max_components`` if there are more) plus, if ``include_mean``, ``mean``: the mean over
    all components.

    Returns ``(function (..., *x_shape) -> (..., S), names (S,))``.
    """
    x_shape = tuple(int(s) for s in x_shape)
    if max_components < 1:
        raise ValueError(f"max_components must be >= 1, got {max_components}")
    size = int(np.prod(x_shape)) if x_shape else 1
    if size <= max_components:
        index = np.arange(size)
    else:
        index = np.unique(np.round(np.linspace(0, size - 1, max_components)).astype(int))
    names = [f"x[{i}]" for i in index] + (["mean"] if include_mean else [])
    n_axes = len(x_shape)

    def statistics(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        flat = values.reshape(*values.shape[: values.ndim - n_axes], size)
        if not include_mean:
            return flat[..., index]
        return np.concatenate([flat[..., index], flat.mean(axis=-1, keepdims=True)], axis=-1)

    return statistics, names


@dataclass
class CalibrationResult:
    """Ranks, KS tests and coverage of one SBC run (see the module docstring).

    names: (S,) statistic names. ranks: (M, S) integers in ``0..n_samples``. normalised_ranks:
    (M, S) in (0, 1). ks: (S,) KS distances; ks_pvalue: (S,). ks_critical: Bonferroni critical
    value of the largest distance. levels: (K,) nominal levels; coverage: (K,) pooled over
    statistics; coverage_by_statistic: (K, S); coverage_tolerance: (K,) allowed
    ``|coverage - level|``.
    """

    names: list[str]
    n_samples: int
    alpha: float
    ranks: np.ndarray
    normalised_ranks: np.ndarray
    ks: np.ndarray
    ks_pvalue: np.ndarray
    ks_critical: float
    levels: np.ndarray
    coverage: np.ndarray
    coverage_by_statistic: np.ndarray
    coverage_tolerance: np.ndarray

    @property
    def n_observations(self) -> int:
        """``M``, the number of (x_true, y) pairs."""
        return int(self.ranks.shape[0])

    @property
    def ks_passed(self) -> bool:
        """The largest KS distance is within the Bonferroni critical value."""
        return bool(np.max(self.ks) <= self.ks_critical)

    @property
    def coverage_passed(self) -> bool:
        """Pooled coverage within tolerance of the nominal level at every level."""
        return bool(np.all(np.abs(self.coverage - self.levels) <= self.coverage_tolerance))

    @property
    def passed(self) -> bool:
        """Both checks pass."""
        return self.ks_passed and self.coverage_passed

    def rank_histogram(self, bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(counts (S, bins), edges (bins + 1,))`` of the normalised ranks; each count is
        ``Binomial(M, 1 / bins)`` under calibration. Default bins: ``min(20, L + 1, M // 5)``
        (at least 1)."""
        if bins is None:
            bins = max(1, min(20, self.n_samples + 1, self.n_observations // 5))
        edges = np.linspace(0.0, 1.0, bins + 1)
        counts = np.stack([np.histogram(u, bins=edges)[0] for u in self.normalised_ranks.T], axis=0)
        return counts, edges

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-pair ranks)."""
        worst = int(np.argmax(self.ks))
        return {
            "passed": self.passed,
            "n_observations": self.n_observations,
            "n_samples": self.n_samples,
            "alpha": self.alpha,
            "ks": {
                "passed": self.ks_passed,
                "max": float(self.ks[worst]),
                "worst_statistic": self.names[worst],
                "critical": float(self.ks_critical),
                "min_pvalue": float(np.min(self.ks_pvalue)),
                "by_statistic": {
                    name: {"ks": float(d), "pvalue": float(p)}
                    for name, d, p in zip(self.names, self.ks, self.ks_pvalue, strict=True)
                },
            },
            "coverage": {
                "passed": self.coverage_passed,
                "levels": [float(v) for v in self.levels],
                "pooled": [float(v) for v in self.coverage],
                "tolerance": [float(v) for v in self.coverage_tolerance],
                "min_by_statistic": [float(v) for v in self.coverage_by_statistic.min(axis=1)],
                "max_by_statistic": [float(v) for v in self.coverage_by_statistic.max(axis=1)],
            },
        }

    def to_markdown(self) -> str:
        """A short Markdown report: the verdict, the KS line and the coverage table."""
        worst = int(np.argmax(self.ks))
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"Simulation-based calibration: **{verdict}** ({self.n_observations} pairs, "
            f"{self.n_samples} posterior samples each, {len(self.names)} statistics, "
            f"alpha = {self.alpha:g})",
            "",
            f"- KS vs Uniform(0, 1): max {self.ks[worst]:.4f} ({self.names[worst]}), critical "
            f"{self.ks_critical:.4f} (Bonferroni over {len(self.names)}): "
            f"{'pass' if self.ks_passed else 'FAIL'}",
            f"- coverage of central credible intervals: "
            f"{'pass' if self.coverage_passed else 'FAIL'}",
            "",
            "| nominal | coverage (pooled) | tolerance | min over statistics | max |",
            "|---|---|---|---|---|",
        ]
        for k, level in enumerate(self.levels):
            lines.append(
                f"| {level:.2f} | {self.coverage[k]:.3f} | ±{self.coverage_tolerance[k]:.3f} | "
                f"{self.coverage_by_statistic[k].min():.3f} | "
                f"{self.coverage_by_statistic[k].max():.3f} |"
            )
        return "\n".join(lines) + "\n"


def _check_levels(levels: Sequence[float]) -> np.ndarray:
    array = np.asarray(levels, dtype=np.float64).ravel()
    if array.size == 0 or not np.all((array > 0.0) & (array < 1.0)):
        raise ValueError(f"levels must be a non-empty list of numbers in (0, 1), got {levels!r}")
    return array


def calibration_from_samples(
    truths: np.ndarray,
    samples: np.ndarray,
    *,
    statistics: StatisticFn | None = None,
    names: Sequence[str] | None = None,
    alpha: float = 0.01,
    levels: Sequence[float] = DEFAULT_LEVELS,
    seed: int = 0,
) -> CalibrationResult:
    """SBC ranks, KS tests and coverage from ``truths (M, *x_shape)`` and posterior
    ``samples (M, L, *x_shape)`` (sample row ``m`` conditioned on the observation of truth
    ``m``).

    statistics / names: scalar statistics ``(..., *x_shape) -> (..., S)`` and their names
    (default :func:`component_statistics`). alpha: family-wise false-alarm rate of each check.
    seed: the tie-breaking and PIT jitter stream.
    """
    truths = np.asarray(truths, dtype=np.float64)
    samples = np.asarray(samples, dtype=np.float64)
    if (
        samples.ndim < 2
        or truths.shape[0] != samples.shape[0]
        or truths.shape[1:] != (samples.shape[2:])
    ):
        raise ValueError(
            f"truths {truths.shape} and samples {samples.shape} must be (M, *x_shape) and "
            "(M, L, *x_shape) with the same M and x_shape"
        )
    n_pairs, n_samples = samples.shape[:2]
    if n_pairs < 2 or n_samples < 1:
        raise ValueError(f"need M >= 2 pairs and L >= 1 samples, got M={n_pairs}, L={n_samples}")
    if not (np.all(np.isfinite(truths)) and np.all(np.isfinite(samples))):
        raise ValueError("truths and samples must be finite")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    levels_array = _check_levels(levels)
    if statistics is None:
        statistics, default_names = component_statistics(truths.shape[1:])
        names = default_names if names is None else names
    truth_stats = np.asarray(statistics(truths), dtype=np.float64)  # (M, S)
    sample_stats = np.asarray(statistics(samples), dtype=np.float64)  # (M, L, S)
    if truth_stats.ndim != 2 or sample_stats.shape != (n_pairs, n_samples, truth_stats.shape[1]):
        raise ValueError(
            f"statistics gave {truth_stats.shape} for the truths and {sample_stats.shape} for "
            f"the samples; expected (M, S) and (M, L, S)"
        )
    n_stats = truth_stats.shape[1]
    names = [f"s{i}" for i in range(n_stats)] if names is None else [str(n) for n in names]
    if len(names) != n_stats:
        raise ValueError(f"{len(names)} names for {n_stats} statistics")

    rng = np.random.default_rng(seed)
    below = np.sum(sample_stats < truth_stats[:, None, :], axis=1)
    ties = np.sum(sample_stats == truth_stats[:, None, :], axis=1)
    ranks = below + rng.integers(0, ties + 1)  # uniform tie-breaking
    normalised = (ranks + rng.random(ranks.shape)) / (n_samples + 1)

    ks = np.empty(n_stats)
    pvalue = np.empty(n_stats)
    for s in range(n_stats):
        test = stats.kstest(normalised[:, s], "uniform")
        ks[s], pvalue[s] = test.statistic, test.pvalue
    critical = float(stats.kstwo.isf(alpha / n_stats, n_pairs))

    inside = np.abs(normalised[None, :, :] - 0.5) <= levels_array[:, None, None] / 2  # (K, M, S)
    by_statistic = inside.mean(axis=1)
    z = stats.norm.isf(alpha / (2 * len(levels_array)))
    tolerance = z * np.sqrt(levels_array * (1 - levels_array) / n_pairs)
    return CalibrationResult(
        names=names,
        n_samples=int(n_samples),
        alpha=float(alpha),
        ranks=ranks.astype(np.int64),
        normalised_ranks=normalised,
        ks=ks,
        ks_pvalue=pvalue,
        ks_critical=critical,
        levels=levels_array,
        coverage=inside.mean(axis=(1, 2)),
        coverage_by_statistic=by_statistic,
        coverage_tolerance=tolerance,
    )


def simulation_based_calibration(
    sample_posterior: Callable[[np.ndarray, int, int], np.ndarray],
    prior_sample: Callable[[int, np.random.Generator], np.ndarray],
    forward: Callable[[np.ndarray], np.ndarray],
    noise: Any,
    *,
    n_observations: int,
    n_samples: int,
    seed: int,
    statistics: StatisticFn | None = None,
    names: Sequence[str] | None = None,
    alpha: float = 0.01,
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> CalibrationResult:
    """Draw ``n_observations`` pairs ``x_true ~ prior``, ``y = noise.sample(forward(x_true))``
    from the stream ``default_rng(seed)``, then ``n_samples`` posterior draws per observation,
    and compare (:func:`calibration_from_samples`).

    sample_posterior(observations (M, *y_shape), n_samples, seed) -> (M, n_samples, *x_shape),
    called once with ``seed + 1``. noise: anything with ``sample(clean, rng)`` (a
    ``scorepde.inverse`` noise model).
    """
    if n_observations < 2 or n_samples < 1:
        raise ValueError(
            f"need n_observations >= 2 and n_samples >= 1, got {n_observations}, {n_samples}"
        )
    rng = np.random.default_rng(seed)
    truths = np.asarray(prior_sample(n_observations, rng), dtype=np.float64)
    observations = np.asarray(
        noise.sample(np.asarray(forward(truths), dtype=np.float64), rng), dtype=np.float64
    )
    samples = np.asarray(sample_posterior(observations, n_samples, seed + 1), dtype=np.float64)
    expected = (n_observations, n_samples, *truths.shape[1:])
    if samples.shape != expected:
        raise ValueError(f"sample_posterior returned {samples.shape}; expected {expected}")
    return calibration_from_samples(
        truths, samples, statistics=statistics, names=names, alpha=alpha, levels=levels, seed=seed
    )


__all__ = [
    "DEFAULT_LEVELS",
    "CalibrationResult",
    "StatisticFn",
    "calibration_from_samples",
    "component_statistics",
    "simulation_based_calibration",
]
