"""Reference posterior sampling: preconditioned Crank-Nicolson (pCN) MCMC and its diagnostics.

Target: ``p(xi | y) ∝ exp(log_likelihood(xi)) N(xi; 0, I)`` on a whitened Gaussian latent
``xi`` (``dim`` components); the user maps ``xi`` to the physical unknown (for a Gaussian
prior ``x = mean + A xi`` with ``A A^T`` the prior covariance, or a nonlinear map after that).

pCN proposal (Cotter, Roberts, Stuart & White 2013)::

    xi' = sqrt(1 - beta^2) xi + beta z,     z ~ N(0, I),     0 < beta <= 1,

which is reversible with respect to the prior ``N(0, I)``, so the acceptance probability holds
the likelihood only: ``min(1, exp(log_likelihood(xi') - log_likelihood(xi)))``. Its acceptance
rate does not collapse as the dimension grows (unlike random-walk Metropolis), so it suits
discretised fields. ``beta = 1`` proposes independent prior draws.

Chains run vectorised: one call ``log_likelihood(xi (n_chains, dim)) -> (n_chains,)`` per step
for all chains (the battery solver costs about the same for 1 or 64 fields). During burn-in each
chain adapts its own ``beta`` by a Robbins-Monro step on ``log beta`` towards the target
acceptance (0.25 by default): ``log beta += k^-0.6 (alpha_k - target)`` with ``alpha_k`` the
acceptance probability of step ``k`` (``k`` counted from the last restart); ``beta`` is then
frozen (the average of ``log beta`` over the last quarter of burn-in), so the kept draws come
from a fixed Markov kernel.

Generalised pCN (``adapt_covariance=True``; Rudolf & Sprungk 2018): plain pCN moves every
direction of ``xi`` by the same ``beta``, so when the data pin a few directions (``beta`` must
be small) the prior-dominated ones take ``~1 / beta^2`` steps to decorrelate (measured on the
battery sensors problem: R-hat 2.1, bulk ESS 10 out of 16 000 draws). With the option, at 25,
45 and 65 % of burn-in the pooled recent draws of all chains give a Gaussian ``N(m, C)`` with
``C`` twice their covariance (a reference wider than the posterior keeps the chains from
sticking in its tails), and the proposal becomes

    xi' = m + sqrt(1 - beta^2) (xi - m) + beta C^(1/2) z,

reversible with respect to ``N(m, C)``; the acceptance ratio then carries
``log pi(xi) - log N(xi; m, C)`` with ``log pi = log_likelihood - |xi|^2 / 2``. ``beta``
restarts at 0.5 after each refit. When ``N(m, C)`` is close to the posterior ``beta`` tends to
1 (an independence sampler) and the acceptance can stay above the target.

Random numbers: chain ``c`` draws from the children of ``SeedSequence(seed).spawn(n_chains)[c]``
(initial state, proposals, acceptance uniforms), so with plain pCN a chain's trajectory does
not depend on how many other chains run beside it (generalised pCN pools the chains to fit
``N(m, C)``, so there it does).

Diagnostics come from ArviZ (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021); the
functions here are thin wrappers that take plain arrays ``(chains, draws[, dim])`` and return
one value per component:

* :func:`split_rhat`: rank-normalised split R-hat, the larger of the bulk and the folded value
  (``arviz.rhat(method="rank")``; ``rank=False``: the classic split R-hat of the raw draws,
  ``method="split"``). Chains agreeing give ``~1``; ``> 1.01``-``1.05`` means not mixed.
* :func:`effective_sample_size`: bulk ESS (``arviz.ess(method="bulk")``), tail ESS
  (``kind="tail"``: the smaller ESS of the 5 % and 95 % quantile indicators) or the ESS of the
  raw split chains (``rank=False``, ``method="mean"``).
* :func:`monte_carlo_standard_error`: ``arviz.mcse`` of the mean, sd, median or a quantile.

:func:`scorepde.inverse.to_inference_data` turns draws into ArviZ ``InferenceData`` for
``arviz.summary`` and the plots. The hand-written versions that preceded ArviZ live on as the
test oracle ``tests/mcmc_oracle.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ESS_KINDS",
    "MCSE_KINDS",
    "MCMCResult",
    "ReferenceComparison",
    "effective_sample_size",
    "monte_carlo_standard_error",
    "pcn_sample",
    "split_rhat",
]

#: Limits of the adapted step size ``beta``.
MIN_STEP_SIZE = 1e-6
MAX_STEP_SIZE = 1.0
#: Generalised pCN: shares of the burn-in at which the Gaussian reference is refitted.
REFIT_FRACTIONS = (0.25, 0.45, 0.65)
#: Generalised pCN: the fitted covariance is multiplied by this (a reference wider than the
#: posterior keeps the ratio posterior / reference bounded in the tails, so no chain sticks).
REFERENCE_INFLATION = 2.0


@dataclass
class ReferenceComparison:
    """Per-observation rows comparing a score posterior with an MCMC reference, and the
    settings that made them. Each row has a ``converged`` flag (its reference run's R-hat was
    below the threshold); subclasses add their table (``to_markdown``) and data."""

    rows: list[Any]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def all_converged(self) -> bool:
        """Whether every reference run had R-hat below the threshold."""
        return all(row.converged for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return {"settings": self.settings, "rows": [asdict(row) for row in self.rows]}


@dataclass(eq=False)
class MCMCResult:
    """Draws and diagnostics of a multi-chain MCMC run.

    Attributes:
        samples: ``(n_chains, n_draws, dim)`` kept draws of ``xi`` (after burn-in and thinning).
        log_likelihood: ``(n_chains, n_draws)`` log-likelihood of each kept draw.
        acceptance_rate: ``(n_chains,)`` fraction of accepted proposals after burn-in.
        step_size: ``(n_chains,)`` the frozen pCN ``beta`` of each chain.
        rhat: ``(dim,)`` rank-normalised split R-hat per component.
        ess: ``(dim,)`` bulk effective sample size per component (all chains together).
        wall_time: seconds of the whole run (burn-in included).
        n_burn: burn-in steps per chain; thin: keep every ``thin``-th step; seed: the seed.
        ess_tail: ``(dim,)`` tail effective sample size per component (None: not computed).

    Diagnostics are ArviZ's (:func:`split_rhat`, :func:`effective_sample_size`);
    :func:`scorepde.inverse.to_inference_data` turns the result into ``InferenceData``.
    """

    samples: np.ndarray
    log_likelihood: np.ndarray
    acceptance_rate: np.ndarray
    step_size: np.ndarray
    rhat: np.ndarray
    ess: np.ndarray
    wall_time: float
    n_burn: int
    thin: int
    seed: int
    ess_tail: np.ndarray | None = None

    @property
    def n_chains(self) -> int:
        """Number of chains."""
        return int(self.samples.shape[0])

    @property
    def n_draws(self) -> int:
        """Kept draws per chain."""
        return int(self.samples.shape[1])

    @property
    def dim(self) -> int:
        """Dimension of ``xi``."""
        return int(self.samples.shape[2])

    def flat(self) -> np.ndarray:
        """All kept draws ``(n_chains * n_draws, dim)``, chain after chain."""
        return self.samples.reshape(-1, self.dim)

    def summary(self) -> dict[str, float]:
        """``max_rhat``, ``min_ess`` (bulk), ``min_ess_tail`` (where computed),
        ``mean_acceptance``, ``mean_step_size``, ``wall_time``."""
        tail = {} if self.ess_tail is None else {"min_ess_tail": float(np.nanmin(self.ess_tail))}
        return {
            "max_rhat": float(np.nanmax(self.rhat)),
            "min_ess": float(np.nanmin(self.ess)),
            **tail,
            "mean_acceptance": float(self.acceptance_rate.mean()),
            "mean_step_size": float(self.step_size.mean()),
            "wall_time": float(self.wall_time),
        }


# ----------------------------------------------------------------------------- checks


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} = {value!r} is not allowed; expected an integer >= {minimum}")
    return int(value)


def _as_chains(samples: np.ndarray) -> np.ndarray:
    """``(chains, draws)`` or ``(chains, draws, dim)`` -> float ``(chains, draws, dim)``."""
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(
            f"samples has shape {array.shape}; expected (chains, draws) or (chains, draws, dim)"
        )
    if array.shape[1] < 4:
        raise ValueError(f"samples has {array.shape[1]} draws per chain; at least 4 are needed")
    if not np.all(np.isfinite(array)):
        raise ValueError("samples contains non-finite values; expected finite numbers")
    return array


# ----------------------------------------------------------------------------- diagnostics

#: Kinds of effective sample size :func:`effective_sample_size` computes.
ESS_KINDS = ("bulk", "tail")
#: Statistics whose Monte-Carlo standard error :func:`monte_carlo_standard_error` computes.
MCSE_KINDS = ("mean", "sd", "median", "quantile")


def _per_component(function: Callable[[np.ndarray], float], samples: np.ndarray) -> np.ndarray:
    """Apply an ArviZ diagnostic of ``(chains, draws)`` to each component of
    ``(chains, draws, dim)``; a component with no spread gives nan (ArviZ would divide by
    zero or report every draw as effective)."""
    values = np.empty(samples.shape[2])
    for i in range(samples.shape[2]):
        component = samples[:, :, i]
        if np.ptp(component) == 0.0:
            values[i] = np.nan
        else:
            values[i] = float(function(component))
    return values


def _two_chains_if_one(samples: np.ndarray) -> np.ndarray:
    """ArviZ's R-hat needs two chains: a single chain is given as its two halves (ArviZ then
    splits each again, so the four quarters of the chain are compared)."""
    if samples.shape[0] > 1:
        return samples
    half = samples.shape[1] // 2
    return np.concatenate([samples[:, :half], samples[:, -half:]], axis=0)


def split_rhat(samples: np.ndarray, *, rank: bool = True) -> np.ndarray:
    """Split R-hat per component by ArviZ: ``(chains, draws[, dim])`` -> ``(dim,)``.

    rank=True (default): rank-normalised, the larger of the bulk and the folded value
    (``arviz.rhat(method="rank")``, Vehtari et al. 2021); rank=False: the classic split R-hat
    of the raw draws (``method="split"``). Needs at least 4 draws per chain; one chain is
    given to ArviZ as its two halves (so at least 8 draws then). A component with no spread
    within the chains gives nan.
    """
    import arviz as az

    samples = _as_chains(samples)
    samples = _two_chains_if_one(samples)
    if samples.shape[1] < 4:
        raise ValueError(
            f"samples has one chain of {2 * samples.shape[1]} draws; at least 8 are needed "
            "for the R-hat of a single chain"
        )
    method = "rank" if rank else "split"
    return _per_component(lambda chains: az.rhat(chains, method=method), samples)


def effective_sample_size(
    samples: np.ndarray, *, rank: bool = True, kind: str = "bulk"
) -> np.ndarray:
    """Effective sample size per component by ArviZ: ``(chains, draws[, dim])`` -> ``(dim,)``.

    kind="bulk" (default): the ESS of the rank-normalised split chains
    (``arviz.ess(method="bulk")``; ``rank=False``: of the raw split chains,
    ``method="mean"``), from the multi-chain autocorrelation with Geyer's initial monotone
    sequence, at most ``S log10(S)`` for ``S`` draws in all. Independent draws give about
    ``S``; an AR(1) chain with coefficient ``a`` about ``S (1 - a) / (1 + a)``.
    kind="tail": the smaller ESS of the indicators of the 5 % and 95 % quantiles
    (``method="tail"``), i.e. how well the central 90 % interval is known. A component with no
    spread gives nan.
    """
    import arviz as az

    if kind not in ESS_KINDS:
        raise ValueError(f"kind = {kind!r} is not allowed; expected one of {ESS_KINDS}")
    if kind == "tail" and not rank:
        raise ValueError(
            "rank=False is only allowed with kind='bulk' (the tail ESS has no raw form)"
        )
    samples = _as_chains(samples)
    method = kind if rank else "mean"
    return _per_component(lambda chains: az.ess(chains, method=method), samples)


def monte_carlo_standard_error(
    samples: np.ndarray, *, kind: str = "mean", prob: float | None = None
) -> np.ndarray:
    """Monte-Carlo standard error per component by ArviZ (``arviz.mcse``):
    ``(chains, draws[, dim])`` -> ``(dim,)``, in the units of the draws.

    kind: ``"mean"``, ``"sd"``, ``"median"`` or ``"quantile"`` (then ``prob`` in ``(0, 1)``
    is the quantile's level). For independent draws the MCSE of the mean is about
    ``std / sqrt(S)``. A component with no spread gives nan.
    """
    import arviz as az

    if kind not in MCSE_KINDS:
        raise ValueError(f"kind = {kind!r} is not allowed; expected one of {MCSE_KINDS}")
    if kind == "quantile":
        if prob is None or not 0.0 < float(prob) < 1.0:
            raise ValueError(f"prob = {prob!r} is not allowed; expected a number in (0, 1)")
        return _per_component(
            lambda chains: az.mcse(chains, method="quantile", prob=float(prob)),
            _as_chains(samples),
        )
    if prob is not None:
        raise ValueError(f"prob = {prob!r} is only allowed with kind='quantile'")
    return _per_component(lambda chains: az.mcse(chains, method=kind), _as_chains(samples))


# ----------------------------------------------------------------------------- sampler


def pcn_sample(
    log_likelihood: Callable[[np.ndarray], np.ndarray],
    dim: int,
    *,
    n_chains: int = 4,
    n_draws: int = 1000,
    n_burn: int = 1000,
    thin: int = 1,
    step_size: float = 0.1,
    target_acceptance: float = 0.25,
    adapt_covariance: bool = False,
    seed: int = 0,
    initial: np.ndarray | None = None,
) -> MCMCResult:
    """Sample ``p(xi | y) ∝ exp(log_likelihood(xi)) N(xi; 0, I_dim)`` with pCN, chains vectorised.

    Args:
        log_likelihood: ``xi (n_chains, dim) -> (n_chains,)``, called once per step for all
            chains; ``nan`` counts as ``-inf`` (the proposal is rejected).
        dim: dimension of the whitened latent ``xi``.
        n_chains: independent chains (>= 1; >= 2 for a meaningful R-hat).
        n_draws: kept draws per chain (>= 4) after burn-in and thinning.
        n_burn: burn-in steps per chain (adaptation happens here; 0: no adaptation).
        thin: keep every ``thin``-th step after burn-in.
        step_size: initial ``beta`` in ``(0, 1]``.
        target_acceptance: acceptance rate the adaptation aims at, in ``(0, 1)``.
        adapt_covariance: generalised pCN (see the module docstring): at 25, 45 and 65 % of
            burn-in (:data:`REFIT_FRACTIONS`), make the proposal reversible with respect to
            ``N(m, C)`` fitted to the chains' recent draws (pooled; ``C`` inflated by
            :data:`REFERENCE_INFLATION`) and restart ``beta`` at 0.5. Needs ``n_burn >= 40``.
            The chains then share ``(m, C)``, so a chain's draws depend on the others.
        seed: the seed of everything random (initial states drawn from the prior, proposals,
            acceptance tests).
        initial: ``(n_chains, dim)`` starting states; default: independent prior draws.

    Returns:
        :class:`MCMCResult` (draws of ``xi``, acceptance, frozen ``beta``, R-hat, bulk and
        tail ESS by ArviZ, wall time).
    """
    start_time = time.perf_counter()
    dim = _positive_int("dim", dim)
    n_chains = _positive_int("n_chains", n_chains)
    n_draws = _positive_int("n_draws", n_draws, minimum=4)
    n_burn = _positive_int("n_burn", n_burn, minimum=40 if adapt_covariance else 0)
    thin = _positive_int("thin", thin)
    if isinstance(step_size, bool) or not (
        isinstance(step_size, int | float) and 0.0 < step_size <= 1.0
    ):
        raise ValueError(f"step_size = {step_size!r} is not allowed; expected 0 < step_size <= 1")
    if isinstance(target_acceptance, bool) or not (
        isinstance(target_acceptance, int | float) and 0.0 < target_acceptance < 1.0
    ):
        raise ValueError(
            f"target_acceptance = {target_acceptance!r} is not allowed; expected a number in (0, 1)"
        )
    seed = _positive_int("seed", seed, minimum=0)

    streams = [child.spawn(3) for child in np.random.SeedSequence(seed).spawn(n_chains)]
    init_rngs = [np.random.default_rng(s[0]) for s in streams]
    proposal_rngs = [np.random.default_rng(s[1]) for s in streams]
    accept_rngs = [np.random.default_rng(s[2]) for s in streams]

    if initial is None:
        state = np.stack([rng.standard_normal(dim) for rng in init_rngs])
    else:
        state = np.array(initial, dtype=np.float64)
        if state.shape != (n_chains, dim) or not np.all(np.isfinite(state)):
            raise ValueError(
                f"initial has shape {np.shape(initial)}; expected finite values of shape "
                f"(n_chains, dim) = ({n_chains}, {dim})"
            )

    def evaluate(xi: np.ndarray) -> np.ndarray:
        values = np.asarray(log_likelihood(xi), dtype=np.float64).reshape(-1)
        if values.shape != (n_chains,):
            raise ValueError(
                f"log_likelihood returned shape {values.shape}; expected ({n_chains},), one "
                "value per chain"
            )
        values = np.where(np.isnan(values), -np.inf, values)
        if np.any(values == np.inf):
            raise ValueError("log_likelihood returned +inf; expected finite values or -inf")
        return values

    # The proposal is reversible w.r.t. the reference N(centre, root root^T) (the prior
    # N(0, I) for plain pCN); the acceptance ratio holds log pi(xi) - log reference(xi).
    centre = np.zeros(dim)
    root = np.eye(dim)
    inverse_root = np.eye(dim)
    reference_is_prior = True

    def correction(xi: np.ndarray) -> np.ndarray:
        if reference_is_prior:
            return np.zeros(xi.shape[0])
        whitened = (xi - centre) @ inverse_root.T
        return -0.5 * np.sum(xi**2, axis=1) + 0.5 * np.sum(whitened**2, axis=1)

    current = evaluate(state)
    current_target = current + correction(state)
    log_beta = np.full(n_chains, math.log(step_size))
    refits = sorted({int(f * n_burn) for f in REFIT_FRACTIONS}) if adapt_covariance else []
    history = np.empty((n_burn, n_chains, dim)) if adapt_covariance else None
    last_refit = 0
    adapt_clock = 0  # steps since the last restart of the beta adaptation
    average_from = n_burn - max(1, n_burn // 4)
    log_beta_sum = np.zeros(n_chains)
    n_steps = n_burn + n_draws * thin
    block = 256
    samples = np.empty((n_chains, n_draws, dim))
    kept_log_likelihood = np.empty((n_chains, n_draws))
    accepted = np.zeros(n_chains)

    for block_start in range(0, n_steps, block):
        size = min(block, n_steps - block_start)
        noise = np.stack([rng.standard_normal((size, dim)) for rng in proposal_rngs], axis=1)
        log_u = np.log(np.stack([rng.random(size) for rng in accept_rngs], axis=1))
        for offset in range(size):
            step = block_start + offset
            if step in refits:
                assert history is not None
                window = history[(last_refit + step) // 2 : step].reshape(-1, dim)
                centre = window.mean(axis=0)
                covariance = REFERENCE_INFLATION * np.atleast_2d(np.cov(window.T))
                covariance += 1e-10 * np.eye(dim)
                root = np.linalg.cholesky(covariance)
                inverse_root = np.linalg.inv(root)
                reference_is_prior = False
                current_target = current + correction(state)
                log_beta = np.full(n_chains, math.log(0.5))
                last_refit, adapt_clock = step, 0
            beta = np.exp(log_beta)
            proposal = (
                centre
                + np.sqrt(1.0 - beta**2)[:, None] * (state - centre)
                + beta[:, None] * (noise[offset] @ root.T)
            )
            candidate = evaluate(proposal)
            candidate_target = candidate + correction(proposal)
            with np.errstate(invalid="ignore"):
                log_ratio = candidate_target - current_target
            log_ratio = np.where(np.isnan(log_ratio), -np.inf, log_ratio)
            accept = log_u[offset] < log_ratio
            state = np.where(accept[:, None], proposal, state)
            current = np.where(accept, candidate, current)
            current_target = np.where(accept, candidate_target, current_target)
            if step < n_burn:
                if history is not None:
                    history[step] = state
                alpha = np.exp(np.minimum(log_ratio, 0.0))
                adapt_clock += 1
                log_beta = log_beta + adapt_clock**-0.6 * (alpha - target_acceptance)
                log_beta = np.clip(log_beta, math.log(MIN_STEP_SIZE), math.log(MAX_STEP_SIZE))
                if step >= average_from:
                    log_beta_sum += log_beta
                if step == n_burn - 1:
                    log_beta = log_beta_sum / (n_burn - average_from)
            else:
                accepted += accept
                kept = step - n_burn
                if (kept + 1) % thin == 0:
                    index = kept // thin
                    samples[:, index] = state
                    kept_log_likelihood[:, index] = current

    return MCMCResult(
        samples=samples,
        log_likelihood=kept_log_likelihood,
        acceptance_rate=accepted / (n_draws * thin),
        step_size=np.exp(log_beta),
        rhat=split_rhat(samples),
        ess=effective_sample_size(samples),
        ess_tail=effective_sample_size(samples, kind="tail"),
        wall_time=time.perf_counter() - start_time,
        n_burn=n_burn,
        thin=thin,
        seed=seed,
    )
