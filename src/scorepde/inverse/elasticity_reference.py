"""Reference posterior of the elastography inclusion prior by MCMC on the disc parameters, and
the tools that compare a score posterior of ``log mu`` with it.

**Parameters.** The inclusion prior of :class:`~scorepde.inverse.elasticity.Elastography` draws,
per disc, the radius ``r ~ U(r_low, r_high)``, then each centre coordinate ``c ~ U(r, 1 - r)``,
and one contrast ``log k ~ U(log k_low, log k_high)``. With ``u = Phi(xi)`` (``Phi`` the
standard normal CDF) of a whitened latent ``xi ~ N(0, I_d)``, ``d = 3 m + 1`` for ``m`` discs,

    r = r_low + u_r (r_high - r_low),   c = r + u_c (1 - 2 r),   log k = log k_low + u_k (...),

is exactly that prior, so :func:`~scorepde.inverse.mcmc.pcn_sample` (generalised pCN, chains
vectorised: one batched solve per step) samples ``p(xi | y)`` with the problem's own forward
model (:meth:`Elastography.forward` of :meth:`inclusion_log_mu`) and noise
(``noise.log_likelihood``). ``log mu`` moves continuously with the parameters (cut cells get
the disc's area fraction on ``supersample x supersample`` sub-points), in steps of
``1 / (n supersample)`` in centre and radius: the likelihood is flat on such steps, which
Metropolis does not mind. With two discs the posterior is symmetric under swapping them (label
switching): judge convergence by the R-hat of ``log mu``, not of the parameters.

Chains start at the best of ``n_start`` prior draws (one batched solve) spread over the
``n_chains`` best, so a concentrated posterior is found without a long burn-in; R-hat over the
chains still tells whether they agree.

**Comparison.** :func:`compare_with_reference` draws synthetic observations, runs the reference
for each and sets the score posterior's samples of ``log mu`` against it (mean error in
reference-std units, std error, share of reference draws inside the score posterior's 95 %
band, beside the reference's own floor from its two halves of chains; r.m.s. error of both
posterior means against the truth). SBC / coverage over many observations reuse
:func:`scorepde.evaluation.calibration.calibration_from_samples` (:func:`calibration_table`);
the noise-misspecification table reuses
:func:`scorepde.inverse.misspecification.noise_misspecification`, with this reference as its
exact posterior (:func:`reference_function`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from scorepde.evaluation.calibration import (
    CalibrationResult,
    calibration_from_samples,
    component_statistics,
)
from scorepde.evaluation.metrics import coverage, mean_error, std_error
from scorepde.inverse.elasticity import Elastography
from scorepde.inverse.mcmc import (
    MCMCResult,
    ReferenceComparison,
    effective_sample_size,
    pcn_sample,
    split_rhat,
)
from scorepde.inverse.noise_models import NoiseModel
from scorepde.problems.elasticity import inclusion_modulus

__all__ = [
    "ElastographyComparison",
    "InclusionPosterior",
    "ObservationRow",
    "PosteriorSampler",
    "calibration_table",
    "compare_with_reference",
    "inclusion_log_mu",
    "inclusion_parameters",
    "inclusion_reference",
    "misspecification_rows",
    "reference_function",
    "rmse_by_noise_level",
]

#: ``(y (2, n, n), n_samples, seed) -> (n_samples, 1, n, n)`` samples of ``log mu``.
PosteriorSampler = Callable[[np.ndarray, int, int], np.ndarray]


def _check_inclusion(problem: Elastography) -> None:
    if problem.problem.prior != "inclusion":
        raise ValueError(
            f"problem.prior = {problem.problem.prior!r} is not allowed; the parameter MCMC "
            "needs the 'inclusion' prior"
        )


def _dim(problem: Elastography) -> int:
    return 3 * problem.problem.n_inclusions + 1


def inclusion_parameters(problem: Elastography, xi: np.ndarray) -> np.ndarray:
    """Disc parameters of whitened latents ``xi (B, 3 m + 1)``: ``(B, 3 m + 1)`` columns
    ``(c_x, c_y, r)`` per disc (units of the side), then ``log contrast``."""
    _check_inclusion(problem)
    xi = np.asarray(xi, dtype=np.float64)
    if xi.ndim != 2 or xi.shape[1] != _dim(problem):
        raise ValueError(f"xi has shape {xi.shape}; expected (B, {_dim(problem)})")
    u = special.ndtr(xi)
    low, high = problem.problem.radius_range
    columns = []
    for disc in range(problem.problem.n_inclusions):
        ux, uy, ur = u[:, 3 * disc], u[:, 3 * disc + 1], u[:, 3 * disc + 2]
        r = low + ur * (high - low)
        columns += [r + ux * (1 - 2 * r), r + uy * (1 - 2 * r), r]
    k_low, k_high = np.log(problem.contrast_range)
    columns.append(k_low + u[:, -1] * (k_high - k_low))
    return np.stack(columns, axis=1)


def inclusion_log_mu(problem: Elastography, parameters: np.ndarray) -> np.ndarray:
    """``log mu (B, 1, n, n)`` of parameters ``(B, 3 m + 1)`` (:func:`inclusion_parameters`)."""
    parameters = np.asarray(parameters, dtype=np.float64)
    if parameters.ndim != 2 or parameters.shape[1] != _dim(problem):
        raise ValueError(f"parameters has shape {parameters.shape}; expected (B, {_dim(problem)})")
    discs = parameters[:, :-1].reshape(parameters.shape[0], -1, 3)
    mu = inclusion_modulus(
        discs, np.exp(parameters[:, -1]), problem.problem.n_cells, problem.problem.supersample
    )
    return np.log(mu)[:, None]


def _log_likelihood(
    problem: Elastography, y: np.ndarray, noise: NoiseModel
) -> Callable[[np.ndarray], np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    if y.shape != problem.y_shape:
        raise ValueError(f"y has shape {y.shape}; expected {problem.y_shape} (u_x, u_y)")

    def log_likelihood(xi: np.ndarray) -> np.ndarray:
        clean = problem.forward(inclusion_log_mu(problem, inclusion_parameters(problem, xi)))
        return noise.log_likelihood(np.broadcast_to(y, clean.shape), clean)  # type: ignore[attr-defined]

    return log_likelihood


@dataclass(eq=False)
class InclusionPosterior:
    """The MCMC reference posterior of one observation.

    Attributes:
        result: the :class:`~scorepde.inverse.mcmc.MCMCResult` (draws of ``xi``).
        parameters: ``(n_chains, n_draws, 3 m + 1)`` disc parameters of the draws.
        log_mu: ``(S, 1, n, n)`` ``log mu`` of ``S <= max_samples`` draws, evenly spaced in
            every chain, chain after chain; mean / std: ``(1, n, n)`` over them.
        mu_mean / mu_std: ``(1, n, n)`` of ``mu`` itself.
        rhat_log_mu / ess_log_mu: the largest split R-hat and the smallest bulk ESS of the
            cells of ``log mu`` (cells with spread only), over the same draws.
    """

    result: MCMCResult
    parameters: np.ndarray
    log_mu: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    mu_mean: np.ndarray
    mu_std: np.ndarray
    rhat_log_mu: float
    ess_log_mu: float

    @property
    def max_rhat(self) -> float:
        """The larger of the parameters' and the ``log mu`` cells' largest R-hat."""
        return float(max(np.nanmax(self.result.rhat), self.rhat_log_mu))

    def halves(self) -> tuple[np.ndarray, np.ndarray]:
        """``log_mu`` of the first and the second half of the chains (the reference's own
        Monte-Carlo floor)."""
        chains = self.result.n_chains
        per_chain = self.log_mu.shape[0] // chains
        half = (chains // 2) * per_chain
        return self.log_mu[:half], self.log_mu[half:]


def inclusion_reference(
    problem: Elastography,
    y: np.ndarray,
    *,
    noise: NoiseModel | None = None,
    n_chains: int = 8,
    n_draws: int = 2000,
    n_burn: int = 2000,
    thin: int = 1,
    n_start: int = 256,
    max_samples: int = 4000,
    seed: int = 0,
) -> InclusionPosterior:
    """Reference posterior of ``log mu`` for one observation ``y (2, n, n)`` (module docstring).

    noise: the likelihood's noise model (default: the problem's). n_chains (>= 2), n_draws,
    n_burn, thin: of :func:`~scorepde.inverse.mcmc.pcn_sample` (generalised pCN). n_start: prior
    draws whose best ``n_chains`` start the chains (>= n_chains). max_samples: at most this many
    draws are mapped to ``log mu``. seed: starting draws and the MCMC.
    """
    _check_inclusion(problem)
    if n_chains < 2 or n_start < n_chains or max_samples < n_chains:
        raise ValueError(
            f"n_chains = {n_chains!r}, n_start = {n_start!r}, max_samples = {max_samples!r}; "
            "expected n_chains >= 2 and n_start, max_samples >= n_chains"
        )
    noise = problem.noise if noise is None else noise
    log_likelihood = _log_likelihood(problem, y, noise)
    dim = _dim(problem)
    rng = np.random.default_rng([seed, 0])
    candidates = rng.standard_normal((n_start, dim))
    scores = log_likelihood(candidates)
    initial = candidates[np.argsort(-scores)[:n_chains]]
    result = pcn_sample(
        log_likelihood,
        dim,
        n_chains=n_chains,
        n_draws=n_draws,
        n_burn=n_burn,
        thin=thin,
        adapt_covariance=True,
        seed=seed,
        initial=initial,
    )
    parameters = inclusion_parameters(problem, result.flat()).reshape(n_chains, n_draws, dim)
    per_chain = max(2, min(n_draws, max_samples // n_chains))
    keep = np.linspace(0, n_draws - 1, per_chain).round().astype(int)
    chosen = parameters[:, keep].reshape(-1, dim)
    log_mu = inclusion_log_mu(problem, chosen)
    cells = log_mu.reshape(n_chains, per_chain, -1)
    moving = cells.std(axis=(0, 1)) > 1e-12
    if np.any(moving):
        rhat = float(np.nanmax(split_rhat(cells[..., moving])))
        ess = float(np.nanmin(effective_sample_size(cells[..., moving])))
    else:
        rhat, ess = 1.0, float(n_chains * per_chain)
    mu = np.exp(log_mu)
    return InclusionPosterior(
        result=result,
        parameters=parameters,
        log_mu=log_mu,
        mean=log_mu.mean(axis=0),
        std=log_mu.std(axis=0, ddof=1),
        mu_mean=mu.mean(axis=0),
        mu_std=mu.std(axis=0, ddof=1),
        rhat_log_mu=rhat,
        ess_log_mu=ess,
    )


def reference_function(
    problem: Elastography, **mcmc: Any
) -> Callable[[np.ndarray, NoiseModel], tuple[np.ndarray, np.ndarray]]:
    """``(y, noise) -> (mean, std)`` of ``log mu`` by :func:`inclusion_reference` (keyword
    options ``mcmc``): the ``reference_posterior`` of
    :func:`~scorepde.inverse.misspecification.noise_misspecification`."""

    def reference(y: np.ndarray, noise: NoiseModel) -> tuple[np.ndarray, np.ndarray]:
        posterior = inclusion_reference(problem, y, noise=noise, **mcmc)
        return posterior.mean, posterior.std

    return reference


# ----------------------------------------------------------------------------- comparison


@dataclass
class ObservationRow:
    """Score posterior against the reference for one observation (``log mu``, 1 channel).

    mean_error: r.m.s. over cells of the difference of the posterior means over the r.m.s.
    reference std (:func:`~scorepde.evaluation.metrics.mean_error`, ``norm="rms"``); std_error:
    relative L2 error of the pointwise std; coverage: share of reference draws inside the score
    posterior's pointwise 95 % band (0.95 when they agree); floor_*: the same between the two
    halves of the reference's chains. rmse_score / rmse_reference: r.m.s. error of each
    posterior mean against the true ``log mu``.
    """

    index: int
    mean_error: float
    std_error: float
    coverage: float
    floor_mean_error: float
    floor_std_error: float
    floor_coverage: float
    rmse_score: float
    rmse_reference: float
    max_rhat: float
    min_ess: float
    reference_seconds: float
    score_seconds: float
    converged: bool


@dataclass
class ElastographyComparison(ReferenceComparison):
    """Rows (:class:`ObservationRow`) of :func:`compare_with_reference`, their settings and the
    data behind them."""

    truths: np.ndarray | None = None
    observations: np.ndarray | None = None

    def to_markdown(self) -> str:
        """A Markdown table, one row per observation."""
        lines = [
            "| obs | mean err (ref std) | std err | coverage 95 % | floor mean/std/cov "
            "| RMSE score / ref | R-hat max | ESS min | ref s | score s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            flag = "" if row.converged else " (!)"
            lines.append(
                f"| {row.index} | {row.mean_error:.3f} | {row.std_error:.3f} | "
                f"{row.coverage:.3f} | {row.floor_mean_error:.3f} / {row.floor_std_error:.3f} / "
                f"{row.floor_coverage:.3f} | {row.rmse_score:.3f} / {row.rmse_reference:.3f} | "
                f"{row.max_rhat:.3f}{flag} | {row.min_ess:.0f} | {row.reference_seconds:.1f} | "
                f"{row.score_seconds:.1f} |"
            )
        return "\n".join(lines)


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def compare_with_reference(
    problem: Elastography,
    sample_posterior: PosteriorSampler,
    *,
    n_observations: int = 3,
    n_posterior_samples: int = 500,
    seed: int = 0,
    rhat_threshold: float = 1.05,
    **mcmc: Any,
) -> ElastographyComparison:
    """Score posterior of ``log mu`` against :func:`inclusion_reference` on ``n_observations``
    synthetic observations (truths and noise from ``default_rng(seed)``; the reference of
    observation ``j`` uses seed ``seed + 1 + j``, the score sampler seed ``j``). ``mcmc``: the
    keyword options of :func:`inclusion_reference`. Runs above ``rhat_threshold`` are kept and
    flagged (``converged=False``)."""
    _check_inclusion(problem)
    if n_observations < 1 or n_posterior_samples < 2:
        raise ValueError(
            f"n_observations = {n_observations!r}, n_posterior_samples = "
            f"{n_posterior_samples!r}; expected >= 1 and >= 2"
        )
    rng = np.random.default_rng(seed)
    truths = problem.sample_prior(n_observations, rng)
    observations = problem.noise.sample(problem.forward(truths), rng)
    rows = []
    for j in range(n_observations):
        reference = inclusion_reference(problem, observations[j], seed=seed + 1 + j, **mcmc)
        start = time.perf_counter()
        samples = np.asarray(sample_posterior(observations[j], n_posterior_samples, j), float)
        score_seconds = time.perf_counter() - start
        expected = (n_posterior_samples, *problem.x_shape)
        if samples.shape != expected:
            raise ValueError(f"sample_posterior returned {samples.shape}; expected {expected}")
        first, second = reference.halves()
        max_rhat = reference.max_rhat
        rows.append(
            ObservationRow(
                index=j,
                mean_error=float(mean_error(samples, reference.log_mu, norm="rms")[0]),
                std_error=float(std_error(samples, reference.log_mu)[0]),
                coverage=float(coverage(samples, reference.log_mu)[0]),
                floor_mean_error=float(mean_error(first, second, norm="rms")[0]),
                floor_std_error=float(std_error(first, second)[0]),
                floor_coverage=float(coverage(first, second)[0]),
                rmse_score=_rms(samples.mean(axis=0) - truths[j]),
                rmse_reference=_rms(reference.mean - truths[j]),
                max_rhat=max_rhat,
                min_ess=float(min(np.nanmin(reference.result.ess), reference.ess_log_mu)),
                reference_seconds=float(reference.result.wall_time),
                score_seconds=float(score_seconds),
                converged=max_rhat < rhat_threshold,
            )
        )
    settings = {
        "n_cells": problem.problem.n_cells,
        "noise": problem.noise.to_config(),
        "n_observations": n_observations,
        "n_posterior_samples": n_posterior_samples,
        "seed": seed,
        "rhat_threshold": rhat_threshold,
        "mcmc": dict(mcmc),
    }
    return ElastographyComparison(rows, settings, truths, observations)


def rmse_by_noise_level(
    samplers: Mapping[float, PosteriorSampler],
    options: Mapping[str, Any] | None = None,
    *,
    n_observations: int = 20,
    n_samples: int = 32,
    seed: int = 0,
    n_prior: int = 2000,
) -> list[dict[str, Any]]:
    """R.m.s. error of the posterior mean of ``log mu`` against the truth at each noise level.

    samplers: ``noise_level -> sampler`` (a posterior trained at that level, or one posterior
    for every level). options: :class:`Elastography` options (``noise_level`` is set per row).
    The truths ``(n_observations)`` come from ``default_rng(seed)`` and are the same in every
    row; row ``k``'s noise from ``default_rng([seed, k + 1])``. Columns: ``noise_level``,
    ``rmse`` (over observations and cells), ``rmse_prior_mean`` (the prior mean of ``log mu``
    from ``n_prior`` draws: what ignoring ``y`` gives), ``mean_std`` (posterior std averaged
    over cells and observations) and ``coverage_90`` (share of cells whose truth lies in the
    pointwise central 90 % band of the samples).
    """
    if not samplers:
        raise ValueError("samplers is empty; give at least one noise level")
    base = dict(options or {})
    rows = []
    truths = clean = prior_mean = None
    for k, (level, sampler) in enumerate(sorted(samplers.items())):
        problem = Elastography(**{**base, "noise_level": level})
        if truths is None:
            truths = problem.sample_prior(n_observations, np.random.default_rng(seed))
            clean = problem.forward(truths)
            prior_mean = problem.sample_prior(n_prior, np.random.default_rng([seed, 0])).mean(0)
        observations = problem.noise.sample(clean, np.random.default_rng([seed, k + 1]))
        samples = np.stack(
            [
                np.asarray(sampler(observations[j], n_samples, seed + j), float)
                for j in range(n_observations)
            ]
        )
        low, high = np.quantile(samples, [0.05, 0.95], axis=1)
        rows.append(
            {
                "noise_level": float(level),
                "rmse": _rms(samples.mean(axis=1) - truths),
                "rmse_prior_mean": _rms(prior_mean[None] - truths),
                "mean_std": float(samples.std(axis=1, ddof=1).mean()),
                "coverage_90": float(np.mean((truths >= low) & (truths <= high))),
            }
        )
    return rows


def calibration_table(
    problem: Elastography,
    sample_posterior: PosteriorSampler,
    *,
    n_observations: int = 100,
    n_samples: int = 50,
    seed: int = 0,
    max_components: int = 64,
    levels: Sequence[float] = (0.5, 0.9, 0.95),
    alpha: float = 0.01,
) -> CalibrationResult:
    """SBC and coverage of ``sample_posterior`` over ``n_observations`` synthetic observations
    (truths and noise from ``default_rng(seed)``): a
    :class:`~scorepde.evaluation.calibration.CalibrationResult` over at most
    ``max_components`` cells of ``log mu`` and their mean."""
    rng = np.random.default_rng(seed)
    truths = problem.sample_prior(n_observations, rng)
    observations = problem.noise.sample(problem.forward(truths), rng)
    samples = np.stack(
        [
            np.asarray(sample_posterior(observations[j], n_samples, seed + 1 + j), float)
            for j in range(n_observations)
        ]
    )
    statistics, names = component_statistics(problem.x_shape, max_components)
    return calibration_from_samples(
        truths,
        samples,
        statistics=statistics,
        names=names,
        alpha=alpha,
        levels=levels,
        seed=seed,
    )


def misspecification_rows(
    problem: Elastography,
    sample_posterior: PosteriorSampler,
    *,
    factors: Sequence[float] = (0.5, 1.0, 2.0),
    n_observations: int = 20,
    n_samples: int = 32,
    seed: int = 0,
    reference: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The noise-misspecification table of a posterior trained with ``problem.noise``:
    :func:`~scorepde.inverse.misspecification.noise_misspecification` with observations made
    at ``factor`` times the trained level (``(0.5, 2)``: train at 5 %, observe at 2.5 % and
    10 %). reference: keyword options of :func:`inclusion_reference` to add the columns
    against the MCMC posterior under the observed noise (one MCMC run per observation and row,
    plus one at the trained noise), or None to skip them."""
    from scorepde.inverse.misspecification import noise_misspecification, scale_noise

    def batch(observations: np.ndarray, n: int, sample_seed: int) -> np.ndarray:
        return np.stack(
            [sample_posterior(y, n, sample_seed + 1000 * j) for j, y in enumerate(observations)]
        )

    return noise_misspecification(
        batch,
        problem.sample_prior,
        problem.forward,
        problem.noise,
        [scale_noise(problem.noise, factor) for factor in factors],
        n_observations=n_observations,
        n_samples=n_samples,
        seed=seed,
        reference_posterior=None if reference is None else reference_function(problem, **reference),
    )
