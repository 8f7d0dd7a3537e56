"""Test oracle: rank-normalised split R-hat and bulk ESS written from the definitions of
Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), independently of ArviZ.

These were ``scorepde.inverse.mcmc``'s own diagnostics before the library moved to ArviZ; they
stay here only to check ArviZ's numbers (``tests/test_inverse_arviz.py``).

* :func:`split_rhat`: every chain is split in halves; the draws are rank-normalised over all
  chains (``z = Phi^-1((r - 3/8) / (S + 1/4))``); ``R-hat`` is the larger of the classic
  ``sqrt(var_plus / W)`` of the normalised draws and of the normalised folded draws
  ``|x - median|``.
* :func:`effective_sample_size`: bulk ESS of the rank-normalised split chains, from the
  multi-chain autocorrelation with Geyer's initial monotone sequence.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats


def _as_chains(samples: np.ndarray) -> np.ndarray:
    """``(chains, draws)`` or ``(chains, draws, dim)`` -> float ``(chains, draws, dim)``."""
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim == 2:
        array = array[:, :, None]
    assert array.ndim == 3 and array.shape[1] >= 4 and np.all(np.isfinite(array))
    return array


def _split_chains(samples: np.ndarray) -> np.ndarray:
    """``(M, N, d)`` -> ``(2M, N // 2, d)``: each chain's first and second half (the middle
    draw of an odd-length chain is dropped)."""
    half = samples.shape[1] // 2
    return np.concatenate([samples[:, :half], samples[:, -half:]], axis=0)


def rank_normalise(samples: np.ndarray) -> np.ndarray:
    """Rank-normalised draws: ``Phi^-1((r - 3/8) / (S + 1/4))`` with ``r`` the average rank of a
    draw among all ``S`` draws of its component. ``(chains, draws, dim)`` -> same shape."""
    samples = np.asarray(samples, dtype=np.float64)
    chains, draws, dim = samples.shape
    flat = samples.reshape(chains * draws, dim)
    ranks = stats.rankdata(flat, method="average", axis=0)
    total = chains * draws
    return special.ndtri((ranks - 0.375) / (total + 0.25)).reshape(chains, draws, dim)


def _classic_rhat(chains: np.ndarray) -> np.ndarray:
    """``sqrt(var_plus / W)`` of ``(M, N, d)`` chains; nan where the within-chain variance is 0."""
    n = chains.shape[1]
    within = chains.var(axis=1, ddof=1).mean(axis=0)
    between_over_n = chains.mean(axis=1).var(axis=0, ddof=1)
    var_plus = (n - 1) / n * within + between_over_n
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(within > 0, np.sqrt(var_plus / within), np.nan)


def split_rhat(samples: np.ndarray, *, rank: bool = True) -> np.ndarray:
    """Split R-hat per component: ``(chains, draws[, dim])`` -> ``(dim,)``.

    rank=True (default): rank-normalised, the larger of the bulk and the folded value
    (Vehtari et al. 2021); rank=False: the classic split R-hat of the raw draws. Needs at least
    4 draws per chain (one chain is enough: its halves are compared). A component with no
    spread within the chains gives nan.
    """
    samples = _as_chains(samples)
    split = _split_chains(samples)
    if not rank:
        return _classic_rhat(split)
    bulk = _classic_rhat(rank_normalise(split))
    folded = np.abs(split - np.median(split.reshape(-1, split.shape[2]), axis=0))
    tail = _classic_rhat(rank_normalise(folded))
    return np.fmax(bulk, tail)


def _autocovariance(chains: np.ndarray) -> np.ndarray:
    """Biased autocovariance of each chain along the draws, by FFT: ``(M, N, d)`` -> same."""
    n = chains.shape[1]
    centred = chains - chains.mean(axis=1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    return np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n] / n


def effective_sample_size(samples: np.ndarray, *, rank: bool = True) -> np.ndarray:
    """Bulk effective sample size per component: ``(chains, draws[, dim])`` -> ``(dim,)``.

    Computed on the split chains (rank-normalised unless ``rank=False``): the multi-chain
    autocorrelation ``rho_t = 1 - (W - mean_m acov_m(t)) / var_plus``, summed in pairs
    ``P_k = rho_2k + rho_2k+1`` up to the first non-positive pair and made non-increasing
    (Geyer's initial monotone sequence); ``tau = -1 + 2 sum_k P_k`` and
    ``ESS = chains * draws / tau``, at most ``S log10(S)`` for ``S`` draws in all. Independent
    draws give about ``S``; an AR(1) chain with coefficient ``a`` about
    ``S (1 - a) / (1 + a)``. A component with no spread gives nan.
    """
    samples = _as_chains(samples)
    split = _split_chains(samples)
    if rank:
        split = rank_normalise(split)
    m, n, _ = split.shape
    acov = _autocovariance(split)  # (m, n, d)
    within = acov[:, 0].mean(axis=0) * n / (n - 1)
    var_plus = within * (n - 1) / n
    if m > 1:
        var_plus = var_plus + split.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (within - acov.mean(axis=0)) / var_plus  # (n, d)
    rho[0] = 1.0
    n_pairs = n // 2
    pairs = rho[0 : 2 * n_pairs : 2] + rho[1 : 2 * n_pairs : 2]  # (n_pairs, d)
    positive = np.cumprod(pairs > 0.0, axis=0).astype(bool)  # initial positive sequence
    monotone = np.minimum.accumulate(np.where(positive, pairs, np.inf), axis=0)
    total = np.where(positive, monotone, 0.0).sum(axis=0)
    draws = m * n
    tau = np.maximum(-1.0 + 2.0 * total, 1.0 / math.log10(draws))
    ess = draws / tau
    return np.where(var_plus > 0, ess, np.nan)
