"""Posterior draws as ArviZ ``InferenceData`` and its netCDF file, so that ``arviz.summary``,
``arviz.plot_posterior``, ``plot_pair``, ``plot_trace`` and the rest work on them.

Two sources, one function (:func:`to_inference_data`):

* samples of an :class:`~scorepde.inverse.posterior.AmortisedPosterior` for one observation,
  ``(n, *x_shape)`` (independent draws: one chain, or ``chains=k`` consecutive blocks, which
  makes ArviZ's R-hat a check that the blocks agree);
* an :class:`~scorepde.inverse.mcmc.MCMCResult`: its chains ``(chains, draws, dim)`` of the
  whitened latent ``xi`` (or their image under ``transform``, e.g. the porosity field), the
  log-likelihood of each draw (group ``log_likelihood``, the joint over the observation) and
  the unnormalised log posterior ``lp = log_likelihood - |xi|^2 / 2`` (``sample_stats``).

The observation goes to the ``observed_data`` group. :func:`write_netcdf` writes atomically
(a temporary file beside the target, then a rename) with the ``h5netcdf`` engine (HDF5 via
h5py; no netCDF-C library needed); :func:`read_netcdf` reads the whole file into memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scorepde.fileio import atomic_path
from scorepde.inverse.mcmc import MCMCResult

if TYPE_CHECKING:  # arviz takes seconds to import: only where it is used
    import arviz

__all__ = ["NETCDF_ENGINE", "read_netcdf", "to_inference_data", "write_netcdf"]

#: The netCDF engine ArviZ and xarray use here (h5netcdf is an ArviZ dependency).
NETCDF_ENGINE = "h5netcdf"


def _draws(samples: np.ndarray, chains: int | None) -> np.ndarray:
    """``(n, *x_shape)`` -> ``(chains, n / chains, *x_shape)``, chain after chain."""
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim < 1 or array.shape[0] < 1:
        raise ValueError(f"samples has shape {array.shape}; expected (n, *x_shape) with n >= 1")
    if not np.all(np.isfinite(array)):
        raise ValueError("samples contains non-finite values; expected finite numbers")
    n = array.shape[0]
    count = 1 if chains is None else chains
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise ValueError(f"chains = {chains!r} is not allowed; expected an integer >= 1 or None")
    if n % count:
        raise ValueError(
            f"chains = {chains!r} does not divide the {n} samples; expected a divisor of n"
        )
    return array.reshape(count, n // count, *array.shape[1:])


def _variables(
    draws: np.ndarray, var_name: str, names: Sequence[str] | None
) -> dict[str, np.ndarray]:
    if names is None:
        return {var_name: draws}
    names = [str(name) for name in names]
    if draws.ndim != 3:
        raise ValueError(
            f"names is only allowed for vector samples (n, d); got x_shape {draws.shape[2:]}"
        )
    if len(names) != draws.shape[2] or len(set(names)) != len(names):
        raise ValueError(
            f"names = {names} is not allowed; expected {draws.shape[2]} distinct names, one per "
            "component of x"
        )
    return {name: draws[:, :, i] for i, name in enumerate(names)}


def to_inference_data(
    samples: np.ndarray | MCMCResult,
    *,
    chains: int | None = None,
    observed: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    var_name: str = "x",
    dims: Sequence[str] | None = None,
    coords: Mapping[str, Sequence[Any] | np.ndarray] | None = None,
    observed_name: str = "y",
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> arviz.InferenceData:
    """Posterior draws as ArviZ ``InferenceData`` (groups ``posterior``, and where given
    ``observed_data``, ``log_likelihood``, ``sample_stats``).

    Args:
        samples: ``(n, *x_shape)`` draws for one observation (e.g.
            ``AmortisedPosterior.sample``, or ``sample_many(...)[m]``), chain after chain; or an
            :class:`~scorepde.inverse.mcmc.MCMCResult` (its chains, log-likelihood, ``lp``, and
            acceptance, step size, burn-in, thinning, seed and wall time as attributes).
        chains: for an array: the number of chains, consecutive blocks of ``n / chains`` draws
            (None: one chain); for an MCMCResult: None or its number of chains.
        observed: the observation ``y`` (any shape) -> ``observed_data[observed_name]``.
        names: for vector draws ``(n, d)``: ``d`` distinct names; each component becomes its
            own variable (``arviz.summary`` rows ``theta_1``, ...). None: one variable
            ``var_name`` with the dimensions ``dims``.
        var_name: name of the single variable when ``names`` is None.
        dims: names of the axes of ``x_shape`` (default ArviZ's ``x_dim_0``, ...).
        coords: values along ``dims`` (e.g. ``{"position_um": grid}``).
        observed_name: variable name of the observation (and of the MCMC log-likelihood).
        transform: MCMCResult only: ``(chains * draws, dim) -> (chains * draws, *shape)``
            applied to the draws of ``xi`` (e.g. ``BatteryPorosityProblem.
            porosity_from_whitened``); ``lp`` stays that of ``xi``.
        attrs: extra attributes of the posterior group (numbers, strings, flat lists).

    Returns:
        ``arviz.InferenceData``; ``arviz.summary(data)`` gives mean, sd, HDI, MCSE, bulk and
        tail ESS and R-hat per component.
    """
    import arviz as az

    posterior_attrs: dict[str, Any] = {"source": "scorepde"}
    log_likelihood = None
    sample_stats = None
    if isinstance(samples, MCMCResult):
        if chains is not None and chains != samples.n_chains:
            raise ValueError(
                f"chains = {chains!r} is not allowed with an MCMCResult of "
                f"{samples.n_chains} chains; expected None or {samples.n_chains}"
            )
        xi = samples.samples
        if transform is None:
            draws = xi
        else:
            mapped = np.asarray(transform(samples.flat()), dtype=np.float64)
            if mapped.shape[0] != samples.n_chains * samples.n_draws:
                raise ValueError(
                    f"transform returned shape {mapped.shape}; expected "
                    f"({samples.n_chains * samples.n_draws}, ...), one row per draw"
                )
            draws = mapped.reshape(samples.n_chains, samples.n_draws, *mapped.shape[1:])
        log_likelihood = {observed_name: samples.log_likelihood}
        sample_stats = {"lp": samples.log_likelihood - 0.5 * np.sum(xi**2, axis=2)}
        posterior_attrs.update(
            sampler="pCN" if transform is None else "pCN (transformed draws)",
            acceptance_rate=samples.acceptance_rate.tolist(),
            step_size=samples.step_size.tolist(),
            n_burn=samples.n_burn,
            thin=samples.thin,
            seed=samples.seed,
            wall_time=samples.wall_time,
        )
    else:
        if transform is not None:
            raise ValueError("transform is only allowed with an MCMCResult; map the array first")
        draws = _draws(samples, chains)
    posterior = _variables(draws, var_name, names)
    if dims is not None and names is None:
        dims = [str(d) for d in dims]
        if len(dims) != draws.ndim - 2:
            raise ValueError(
                f"dims = {dims} has {len(dims)} names; expected {draws.ndim - 2}, one per axis "
                f"of x_shape {draws.shape[2:]}"
            )
    dims_map = {var_name: list(dims)} if dims is not None and names is None else None
    observed_data = None
    if observed is not None:
        y = np.asarray(observed, dtype=np.float64)
        observed_data = {observed_name: y}
    posterior_attrs.update(dict(attrs or {}))
    data = az.from_dict(
        posterior=posterior,
        observed_data=observed_data,
        log_likelihood=log_likelihood,
        sample_stats=sample_stats,
        coords={k: np.asarray(v) for k, v in (coords or {}).items()} or None,
        dims=dims_map,
        posterior_attrs=posterior_attrs,
    )
    return data


def write_netcdf(data: arviz.InferenceData, path: str | Path) -> Path:
    """Write ``data`` to ``path`` (``.nc``) atomically: a temporary file beside it, then a
    rename, so a reader sees the old file or the whole new one. Returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".nc":
        raise ValueError(f"path = {str(path)!r} has suffix {path.suffix!r}; expected '.nc'")
    with atomic_path(path, suffix=".nc") as tmp:
        data.to_netcdf(str(tmp), engine=NETCDF_ENGINE)
    return path


def read_netcdf(path: str | Path) -> arviz.InferenceData:
    """The ``InferenceData`` of a netCDF file, read whole into memory (the file is closed)."""
    import arviz as az

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist; expected a netCDF (.nc) file")
    with az.rc_context({"data.load": "eager"}):
        return az.from_netcdf(str(path), engine=NETCDF_ENGINE)
