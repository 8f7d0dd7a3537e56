"""ArviZ in the inverse layer: the diagnostics of ``scorepde.inverse.mcmc`` (thin wrappers over
ArviZ) against the hand-written oracle ``tests/mcmc_oracle.py`` and against the known ESS of
AR(1) chains; posterior and MCMC draws as ``InferenceData``, its netCDF round trip and
``arviz.summary`` on the file read back.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
from scipy import stats

import mcmc_oracle
from scorepde.inverse import (
    effective_sample_size,
    monte_carlo_standard_error,
    pcn_sample,
    read_netcdf,
    split_rhat,
    to_inference_data,
    write_netcdf,
)


def _ar1(a: float, chains: int, draws: int, dim: int, seed: int) -> np.ndarray:
    """Stationary AR(1) chains ``x_t = a x_(t-1) + z_t``: integrated autocorrelation time
    ``(1 + a) / (1 - a)``, so ``S`` draws hold ``S (1 - a) / (1 + a)`` effective ones."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((chains, draws, dim))
    x = np.empty_like(z)
    x[:, 0] = z[:, 0] / np.sqrt(1 - a**2)
    for t in range(1, draws):
        x[:, t] = a * x[:, t - 1] + z[:, t]
    return x


def _indicator_autocorrelation_time(a: float, p: float) -> float:
    """``1 + 2 sum_t corr(1{x_0 <= q}, 1{x_t <= q})`` for the AR(1) chain above with ``q`` its
    ``p`` quantile: the pair ``(x_0, x_t)`` is standard bivariate normal with correlation
    ``a^t`` (in units of the stationary std), so the lag-t covariance of the indicators is
    ``Phi_2(q, q; a^t) - p^2``."""
    q = stats.norm.ppf(p)
    total, t = 0.0, 1
    while a**t > 1e-8:
        rho = a**t
        joint = stats.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]]).cdf([q, q])
        total += (joint - p * p) / (p * (1 - p))
        t += 1
    return 1.0 + 2.0 * total


@pytest.mark.parametrize("a", [0.0, 0.5, 0.9])
def test_arviz_diagnostics_agree_with_the_oracle_and_the_ar1_formula(a: float) -> None:
    """Same estimators, two implementations, same draws (4 chains x 2000, 4 components):
    R-hat identical to 1e-10 (the same rank normalisation and variances); bulk ESS within
    0.5 % (ArviZ adds the first negative autocorrelation pair's even term to the sum; measured
    differences <= 0.09 %). Against the truth ``S (1 - a) / (1 + a)``: the estimate's own
    relative noise is ~ sqrt(2 tau / S) ... ~10 % at a = 0.9; allow 35 % (measured 0.73-1.07)."""
    x = _ar1(a, chains=4, draws=2000, dim=4, seed=1)
    np.testing.assert_allclose(split_rhat(x), mcmc_oracle.split_rhat(x), rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        split_rhat(x, rank=False), mcmc_oracle.split_rhat(x, rank=False), atol=1e-10
    )
    ess = effective_sample_size(x)
    np.testing.assert_allclose(ess, mcmc_oracle.effective_sample_size(x), rtol=5e-3)
    np.testing.assert_allclose(
        effective_sample_size(x, rank=False),
        mcmc_oracle.effective_sample_size(x, rank=False),
        rtol=5e-3,
    )
    expected = 8000 * (1 - a) / (1 + a)
    assert np.all(np.abs(ess / expected - 1) < 0.35), (ess, expected)
    # tail ESS: the ESS of the indicator 1{x <= q_0.05} (and of q_0.95, the same by symmetry),
    # whose exact autocorrelation time follows from the bivariate normal (measured 0.76-1.09)
    expected_tail = 8000 / _indicator_autocorrelation_time(a, 0.05)
    tail = effective_sample_size(x, kind="tail")
    assert np.all(np.abs(tail / expected_tail - 1) < 0.35), (tail, expected_tail)
    # MCSE of the mean = std / sqrt(ESS of the raw draws) (ArviZ's definition): 1 %
    mcse = monte_carlo_standard_error(x)
    raw = effective_sample_size(x, rank=False)
    np.testing.assert_allclose(mcse, x.reshape(-1, 4).std(axis=0) / np.sqrt(raw), rtol=0.01)


def test_quantile_mcse_and_argument_errors() -> None:
    x = _ar1(0.5, chains=2, draws=500, dim=2, seed=2)
    assert np.all(monte_carlo_standard_error(x, kind="quantile", prob=0.9) > 0)
    assert monte_carlo_standard_error(x, kind="sd").shape == (2,)
    for call, match in [
        (lambda: effective_sample_size(x, kind="local"), "kind = 'local'"),
        (lambda: effective_sample_size(x, kind="tail", rank=False), "rank=False"),
        (lambda: monte_carlo_standard_error(x, kind="quantile"), "prob = None"),
        (lambda: monte_carlo_standard_error(x, prob=0.5), "only allowed with kind='quantile'"),
        (lambda: split_rhat(np.zeros((1, 6))), "at least 8"),
    ]:
        with pytest.raises(ValueError, match=match):
            call()


def test_pcn_result_has_tail_ess_and_exports_to_inference_data(tmp_path) -> None:
    """A 2-D Gaussian likelihood centred at (1, -1) with std 0.5: the posterior is
    N(0.8 * (1, -1), 0.2 I). The InferenceData carries the chains, the log-likelihood
    (group log_likelihood), lp = log-likelihood - |xi|^2 / 2, and the run's settings."""

    def log_likelihood(xi: np.ndarray) -> np.ndarray:
        return -0.5 * np.sum(((xi - [1.0, -1.0]) / 0.5) ** 2, axis=1)

    result = pcn_sample(log_likelihood, 2, n_chains=4, n_draws=300, n_burn=300, seed=0)
    assert result.ess_tail is not None and result.ess_tail.shape == (2,)
    assert "min_ess_tail" in result.summary()
    data = to_inference_data(
        result, observed=np.array([1.0, -1.0]), transform=lambda xi: 2.0 * xi, dims=["mode"]
    )
    assert data.posterior["x"].shape == (4, 300, 2)
    np.testing.assert_array_equal(data.posterior["x"].values, 2.0 * result.samples)
    np.testing.assert_array_equal(data.log_likelihood["y"].values, result.log_likelihood)
    np.testing.assert_allclose(
        data.sample_stats["lp"].values,
        result.log_likelihood - 0.5 * np.sum(result.samples**2, axis=2),
    )
    assert data.posterior.attrs["seed"] == 0 and data.posterior.attrs["n_burn"] == 300
    path = write_netcdf(data, tmp_path / "mcmc.nc")
    back = read_netcdf(path)
    np.testing.assert_array_equal(back.posterior["x"].values, data.posterior["x"].values)
    summary = az.summary(back)
    # ArviZ's r_hat column is split_rhat of the same chains (rounded to 2 decimals)
    np.testing.assert_allclose(
        summary["r_hat"].values, split_rhat(2.0 * result.samples), atol=0.006
    )
    with pytest.raises(ValueError, match="chains = 3 is not allowed with an MCMCResult"):
        to_inference_data(result, chains=3)


def test_posterior_samples_round_trip_through_netcdf(tmp_path) -> None:
    """Independent draws (as AmortisedPosterior.sample gives) in 4 blocks, named components,
    an observation: the file read back holds the same numbers; az.summary's mean and sd are the
    sample's, its R-hat ~1 (independent blocks agree: < 1.02) and its ESS near S (iid)."""
    rng = np.random.default_rng(3)
    samples = rng.normal([0.0, 5.0, -2.0], [1.0, 0.1, 3.0], size=(2000, 3))
    y = np.array([[0.5, 1.5]])
    data = to_inference_data(
        samples, chains=4, observed=y, names=["a", "b", "c"], attrs={"sampler": "ode_heun"}
    )
    path = write_netcdf(data, tmp_path / "posterior.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["posterior.nc"]  # no temporaries
    back = read_netcdf(path)
    assert set(back.groups()) == {"posterior", "observed_data"}
    for i, name in enumerate("abc"):
        np.testing.assert_array_equal(back.posterior[name].values.reshape(-1), samples[:, i])
    np.testing.assert_array_equal(back.observed_data["y"].values, y)
    assert back.posterior.attrs["sampler"] == "ode_heun"
    summary = az.summary(back, round_to="none")
    assert list(summary.index) == ["a", "b", "c"]
    np.testing.assert_allclose(summary["mean"].values, samples.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(summary["sd"].values, samples.std(axis=0, ddof=1), rtol=1e-12)
    assert np.all(summary["r_hat"].values < 1.02)
    assert np.all(summary["ess_bulk"].values > 0.8 * 2000)

    # a field: one variable with named dims and coordinates; overwriting replaces the file
    field = rng.standard_normal((10, 1, 5))
    grid = np.linspace(0.0, 1.0, 5)
    data = to_inference_data(field, dims=["channel", "position"], coords={"position": grid})
    write_netcdf(data, path)
    back = read_netcdf(path)
    assert back.posterior["x"].dims == ("chain", "draw", "channel", "position")
    np.testing.assert_array_equal(back.posterior["position"].values, grid)
    assert "observed_data" not in back.groups()


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch) -> None:
    path = write_netcdf(to_inference_data(np.ones((4, 2)) * [1.0, 2.0]), tmp_path / "a.nc")
    before = path.read_bytes()
    data = to_inference_data(np.zeros((4, 2)))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(data), "to_netcdf", broken)
    with pytest.raises(OSError, match="disk full"):
        write_netcdf(data, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: to_inference_data(np.zeros((10, 2)), chains=3), "does not divide the 10"),
        (lambda: to_inference_data(np.zeros((10, 2)), chains=0), "chains = 0"),
        (lambda: to_inference_data(np.zeros((10, 2)), names=["a"]), "expected 2 distinct"),
        (lambda: to_inference_data(np.zeros((10, 1, 2)), names=["a", "b"]), "vector samples"),
        (lambda: to_inference_data(np.zeros((10, 2)), dims=["a", "b"]), "expected 1, one per"),
        (lambda: to_inference_data(np.full((4, 2), np.nan)), "non-finite"),
        (lambda: to_inference_data(np.zeros((4, 2)), transform=np.exp), "only allowed with"),
        (lambda: write_netcdf(to_inference_data(np.zeros((4, 1))), "x.h5"), "expected '.nc'"),
        (lambda: read_netcdf("missing.nc"), "does not exist"),
    ],
)
def test_inference_data_rejects_bad_arguments(call, match: str) -> None:
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        call()
