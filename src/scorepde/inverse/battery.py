"""Battery porosity from measurements of ``c`` and ``phi``, with a pCN MCMC reference posterior.

The unknown is the porosity field ``eps(x)`` of the battery problem at known operating
conditions ``(U0, l, F_right)``; the measurements are the steady electrolyte concentration
``c`` (mol/m^3) and potential ``phi`` (V) from :func:`~scorepde.physics.solve_battery`.

Prior: exactly the forward campaign's (``problems/battery.py``): a zero-mean GP latent ``g`` of
length scale ``l * L`` metres (same kernel and variance), ``eps = porosity_from_latent(g)`` with
the parameters' ``porosity_min``/``porosity_max``. The GP is whitened through the sampler's
eigen factor ``A = V diag(sqrt(lambda))`` (:meth:`GaussianProcessSampler.factor`), keeping the
``k`` modes with ``lambda_i > mode_tolerance * lambda_max`` (default ``1e-6``): ``g = A_k xi``,
``xi ~ N(0, I_k)``. The squared-exponential kernel's eigenvalues fall off super-exponentially,
so ``k`` is small (``l = 0.25 L``: 10 modes; ``0.05 L``: 36) and the dropped modes change the
porosity by about ``1e-4`` of its prior spread (``retained_variance`` records the exact share).

Observations (``observation=``):

* ``"full"``: ``c`` and ``phi`` at all ``N = 100`` grid nodes, ``y: (2, N)``, 1 % relative
  Gaussian noise;
* ``"sensors"``: ``c`` and ``phi`` at ``sensors`` interior points (default 5, evenly spaced at
  ``x = i L / 6``, snapped to the nearest nodes), ``y: (2, 5)``, 2 % relative noise.

Noise: :class:`~scorepde.inverse.noise_models.RelativeGaussian` (pointwise), ``y = F + level
|F| z``; its log-likelihood keeps the ``-sum log(level |F(x)|)`` term, which depends on ``x``.
In ``"full"`` mode ``phi(0) = 0`` for every porosity: that component is noise-free (zero
relative noise) and adds nothing to the likelihood; ``c(L) = c_right`` is measured with noise but
its clean value is the same for every porosity, so its term is a constant.

What is ``x`` for training: the user-facing unknown is the porosity ``(1, N)``, and
:meth:`BatteryPorosityProblem.simulate` gives ``x`` in that form by default. The comparison
trains on the whitened latent ``xi (k,)`` by default (``space="whitened"``) and maps samples to
porosity: ``k = 10`` instead of 100 dimensions for the network, and every sample lies in the
prior's support (smooth, inside ``(porosity_min, porosity_max)``), which a score model on the
100 correlated porosity values only learns approximately. Both spaces are supported.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scorepde.evaluation.metrics import coverage, mean_error, std_error
from scorepde.inverse.mcmc import (
    MCMCResult,
    ReferenceComparison,
    effective_sample_size,
    pcn_sample,
    split_rhat,
)
from scorepde.inverse.noise_models import RelativeGaussian
from scorepde.inverse.posterior import (
    AmortisedPosterior,
    default_model_config,
    fixed_steps_train_config,
    from_simulator,
)
from scorepde.physics.battery import solve_battery
from scorepde.physics.parameters import BatteryParameters
from scorepde.physics.random_fields import (
    GaussianProcessSampler,
    latent_from_porosity,
    porosity_from_latent,
)
from scorepde.problems.battery import BatteryProblem

__all__ = [
    "DEFAULT_NOISE_LEVELS",
    "OBSERVATIONS",
    "SPACES",
    "BatteryComparison",
    "BatteryPorosityProblem",
    "ObservationComparison",
    "compare_with_mcmc",
    "train_battery_posterior",
]

#: Observation modes and their default relative noise levels.
OBSERVATIONS = ("full", "sensors")
DEFAULT_NOISE_LEVELS: dict[str, float] = {"full": 0.01, "sensors": 0.02}
#: Spaces a score posterior can be trained in.
SPACES = ("whitened", "porosity")


def _finite(name: str, value: object, *, positive: bool = False) -> float:
    allowed = "a finite number > 0" if positive else "a finite number"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} = {value!r} is not allowed; expected {allowed}")
    number = float(value)
    if not math.isfinite(number) or (positive and number <= 0.0):
        raise ValueError(f"{name} = {value!r} is not allowed; expected {allowed}")
    return number


def _count(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} = {value!r} is not allowed; expected an integer >= {minimum}")
    return int(value)


class BatteryPorosityProblem:
    """Porosity ``(1, N)`` from noisy ``c``/``phi`` measurements at known ``(U0, l, F_right)``.

    Args:
        observation: ``"full"`` (all nodes) or ``"sensors"``.
        U0: equilibrium potential offset, V. length_scale: GP length scale ``l`` in units of the
            electrode thickness ``L`` (> 0). F_right: current density at ``x = L``, A/m^2.
        sensors: for ``"sensors"``: a number of evenly spaced interior points
            (``x = i L / (n + 1)``) or positions as fractions of ``L`` in ``[0, 1]``; each is
            snapped to the nearest grid node (nodes must be distinct). Ignored for ``"full"``.
        noise_level: relative noise level (None: 0.01 for ``"full"``, 0.02 for ``"sensors"``).
        params, kernel, variance: as in :class:`~scorepde.problems.battery.BatteryProblem`.
        mode_tolerance: keep GP modes with ``lambda > mode_tolerance * lambda_max``, in
            ``(0, 1)``.

    Attributes: ``grid (N,)`` m, ``sensor_indices (m,)`` node indices observed,
    ``factor (N, k)`` whitening factor (``A_k A_k^T ≈ K``), ``eigenvalues (k,)``,
    ``retained_variance`` (share of the GP's total variance kept), ``noise``.
    """

    def __init__(
        self,
        observation: str = "sensors",
        *,
        U0: float = 0.0,
        length_scale: float = 0.25,
        F_right: float = 25.0,
        sensors: int | Sequence[float] = 5,
        noise_level: float | None = None,
        params: BatteryParameters | None = None,
        kernel: str = "squared_exponential",
        variance: float = 1.0,
        mode_tolerance: float = 1e-6,
    ) -> None:
        if observation not in OBSERVATIONS:
            raise ValueError(
                f"observation = {observation!r} is not allowed; expected one of {OBSERVATIONS}"
            )
        self.observation = observation
        self.U0 = _finite("U0", U0)
        self.length_scale = _finite("length_scale", length_scale, positive=True)
        self.F_right = _finite("F_right", F_right)
        level = DEFAULT_NOISE_LEVELS[observation] if noise_level is None else noise_level
        self.noise = RelativeGaussian(_finite("noise_level", level, positive=True))
        tolerance = _finite("mode_tolerance", mode_tolerance, positive=True)
        if tolerance >= 1.0:
            raise ValueError(
                f"mode_tolerance = {mode_tolerance!r} is not allowed; expected a number in (0, 1)"
            )
        self.mode_tolerance = tolerance
        # the forward campaign's problem: same parameters, kernel, variance and porosity map
        self.battery = BatteryProblem(params, kernel=kernel, variance=variance)
        self.params = self.battery.params
        self.grid = self.battery.grid
        self.sensor_indices = self._sensor_indices(sensors)
        sampler = GaussianProcessSampler(self.grid, kernel=kernel, variance=variance)
        root = sampler.factor(self.length_scale * self.params.length)  # (N, N), A A^T = K
        eigenvalues = np.sum(root**2, axis=0)  # columns are sqrt(lambda_i) v_i
        order = np.argsort(eigenvalues)[::-1]
        keep = order[eigenvalues[order] > tolerance * eigenvalues.max()]
        self.factor = np.ascontiguousarray(root[:, keep])
        self.factor.setflags(write=False)
        self.eigenvalues = eigenvalues[keep]
        self.retained_variance = float(self.eigenvalues.sum() / eigenvalues.sum())

    def _sensor_indices(self, sensors: int | Sequence[float]) -> np.ndarray:
        n_points = self.params.n_points
        if self.observation == "full":
            return np.arange(n_points)
        if isinstance(sensors, int | np.integer) and not isinstance(sensors, bool):
            if not 1 <= sensors <= n_points - 2:
                raise ValueError(
                    f"sensors = {sensors!r} is not allowed; expected an integer in "
                    f"[1, {n_points - 2}] or positions in [0, 1]"
                )
            fractions = np.arange(1, sensors + 1) / (sensors + 1)
        else:
            fractions = np.asarray(sensors, dtype=float)
            if (
                fractions.ndim != 1
                or fractions.size < 1
                or not np.all(np.isfinite(fractions) & (fractions >= 0.0) & (fractions <= 1.0))
            ):
                raise ValueError(
                    f"sensors = {sensors!r} is not allowed; expected an integer >= 1 or a "
                    "non-empty list of positions in [0, 1] (fractions of L)"
                )
        indices = np.rint(fractions * (n_points - 1)).astype(int)
        if len(np.unique(indices)) != len(indices):
            raise ValueError(
                f"sensors = {sensors!r} is not allowed: positions snap to the repeated grid "
                f"nodes {indices.tolist()}; expected distinct nodes"
            )
        return indices

    # ------------------------------------------------------------------ shapes

    @property
    def n_modes(self) -> int:
        """Dimension ``k`` of the whitened latent."""
        return int(self.factor.shape[1])

    @property
    def x_shape(self) -> tuple[int, int]:
        """Shape of one porosity field: ``(1, N)``."""
        return (1, self.params.n_points)

    @property
    def y_shape(self) -> tuple[int, int]:
        """Shape of one observation: ``(2, m)`` (rows ``c`` mol/m^3 and ``phi`` V)."""
        return (2, len(self.sensor_indices))

    @property
    def conditions(self) -> np.ndarray:
        """The known condition row ``(U0, l, F_right)`` as in the battery problem: ``(3,)``."""
        return np.array([self.U0, self.length_scale, self.F_right])

    def describe(self) -> dict[str, Any]:
        """Settings as plain data."""
        return {
            "observation": self.observation,
            "U0": self.U0,
            "length_scale": self.length_scale,
            "F_right": self.F_right,
            "sensor_indices": self.sensor_indices.tolist(),
            "noise": self.noise.to_config(),
            "kernel": self.battery.kernel,
            "variance": self.battery.variance,
            "n_modes": self.n_modes,
            "retained_variance": self.retained_variance,
        }

    # ------------------------------------------------------------------ prior

    def _whitened(self, xi: np.ndarray) -> np.ndarray:
        array = np.asarray(xi, dtype=np.float64)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self.n_modes or not np.all(np.isfinite(array)):
            raise ValueError(
                f"xi has shape {np.shape(xi)}; expected finite values of shape (n, "
                f"{self.n_modes}) (n_modes = {self.n_modes})"
            )
        return array

    def _porosity(self, porosity: np.ndarray) -> np.ndarray:
        """``(n, 1, N)`` or ``(n, N)`` -> ``(n, N)``."""
        array = np.asarray(porosity, dtype=np.float64)
        n_points = self.params.n_points
        if array.ndim == 3 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 2 or array.shape[1] != n_points:
            raise ValueError(
                f"porosity has shape {np.shape(porosity)}; expected (n, 1, {n_points}) or "
                f"(n, {n_points})"
            )
        return array

    def porosity_from_whitened(self, xi: np.ndarray) -> np.ndarray:
        """``xi (n, k)`` -> porosity ``(n, 1, N)``: ``porosity_from_latent(A_k xi)``."""
        latent = self._whitened(xi) @ self.factor.T
        porosity = porosity_from_latent(latent, self.params.porosity_min, self.params.porosity_max)
        return porosity[:, None, :]

    def whitened_from_porosity(self, porosity: np.ndarray) -> np.ndarray:
        """Porosity ``(n, 1, N)`` or ``(n, N)`` -> ``xi (n, k)``: least-squares coordinates of
        ``latent_from_porosity(eps)`` in the kept modes (exact for fields of the prior's
        range)."""
        latent = latent_from_porosity(
            self._porosity(porosity), self.params.porosity_min, self.params.porosity_max
        )
        return latent @ self.factor / self.eigenvalues

    def sample_whitened(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` prior draws of ``xi``: ``(n, k)`` standard normal."""
        return rng.standard_normal((_count("n", n, minimum=0), self.n_modes))

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` prior porosity fields ``(n, 1, N)`` (dimensionless)."""
        return self.porosity_from_whitened(self.sample_whitened(n, rng))

    # ------------------------------------------------------------------ forward model

    def forward(self, porosity: np.ndarray) -> np.ndarray:
        """Noise-free observations: porosity ``(n, 1, N)`` -> ``(n, 2, m)`` (``c`` mol/m^3,
        ``phi`` V at the sensor nodes), one batched solve."""
        solution = solve_battery(self._porosity(porosity), self.U0, self.F_right, self.params)
        return solution.as_channels()[:, :, self.sensor_indices]

    def forward_whitened(self, xi: np.ndarray) -> np.ndarray:
        """``xi (n, k)`` -> noise-free observations ``(n, 2, m)``."""
        return self.forward(self.porosity_from_whitened(xi))

    def observe(self, porosity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy observations ``(n, 2, m)`` of porosity fields ``(n, 1, N)``."""
        return self.noise.sample(self.forward(porosity), rng)

    def _observation(self, y: np.ndarray) -> np.ndarray:
        array = np.asarray(y, dtype=np.float64)
        if array.size != math.prod(self.y_shape) or not np.all(np.isfinite(array)):
            raise ValueError(
                f"y has shape {np.shape(y)}; expected one finite observation of shape "
                f"{self.y_shape}"
            )
        return array.reshape(self.y_shape)

    def log_likelihood(self, xi: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``log p(y | xi)`` for ``xi (n, k)`` and one observation ``y (2, m)``: ``(n,)``."""
        observation = self._observation(y)
        clean = self.forward_whitened(xi)
        return self.noise.log_likelihood(np.broadcast_to(observation, clean.shape), clean)

    def log_likelihood_function(self, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """``xi (n, k) -> log p(y | xi) (n,)`` for one observation: what :func:`pcn_sample`
        takes."""
        observation = self._observation(y)
        return lambda xi: self.log_likelihood(xi, observation)

    def simulate(
        self, n: int, seed: int, *, space: str = "porosity", batch: int = 4096
    ) -> tuple[np.ndarray, np.ndarray]:
        """Training pairs through :func:`~scorepde.inverse.posterior.from_simulator`:
        ``x (n, 1, N)`` porosity (``space="porosity"``) or ``(n, k)`` whitened latent
        (``"whitened"``), and ``y (n, 2, m)``."""
        if space not in SPACES:
            raise ValueError(f"space = {space!r} is not allowed; expected one of {SPACES}")
        if space == "porosity":
            return from_simulator(self.sample_prior, self.forward, self.noise, n, seed, batch=batch)
        return from_simulator(
            self.sample_whitened, self.forward_whitened, self.noise, n, seed, batch=batch
        )

    def sample_mcmc(
        self,
        y: np.ndarray,
        *,
        n_chains: int = 8,
        n_draws: int = 2000,
        n_burn: int = 2000,
        thin: int = 1,
        seed: int = 0,
        step_size: float = 0.1,
        adapt_covariance: bool = True,
    ) -> MCMCResult:
        """pCN reference posterior for one observation ``y (2, m)``; draws are of ``xi``
        (map them with :meth:`porosity_from_whitened`). ``adapt_covariance``: generalised pCN
        with a Gaussian reference fitted during burn-in (default; plain pCN mixes the
        prior-dominated modes too slowly here, see docs/inverse.md)."""
        return pcn_sample(
            self.log_likelihood_function(y),
            self.n_modes,
            n_chains=n_chains,
            n_draws=n_draws,
            n_burn=n_burn,
            thin=thin,
            step_size=step_size,
            adapt_covariance=adapt_covariance,
            seed=seed,
        )


# ----------------------------------------------------------------------------- training


def train_battery_posterior(
    problem: BatteryPorosityProblem,
    *,
    n_train: int = 20_000,
    steps: int = 4000,
    space: str = "whitened",
    run_dir: str | Path,
    seed: int = 0,
    validation_fraction: float = 0.1,
) -> AmortisedPosterior:
    """Simulate ``n_train`` pairs (seed ``seed``) and train the default amortised posterior
    (``default_model_config``; ``fixed_steps_train_config`` cut to about ``steps`` optimiser
    steps, with EMA warm-up) on ``x`` in ``space`` (``"whitened"`` or ``"porosity"``)."""
    n_train = _count("n_train", n_train, minimum=10)
    steps = _count("steps", steps)
    x, y = problem.simulate(n_train, seed, space=space)
    n_fit = n_train - min(round(validation_fraction * n_train), n_train - 1)
    training = fixed_steps_train_config(n_fit, seed=seed)
    epochs = max(1, math.ceil(steps / math.ceil(n_fit / training.batch_size)))
    # EMA warm-up: without it a 2000-step run keeps 0.999^2000 = 14 % of the random initial
    # weights in the averaged model
    training = training.replace(
        epochs=epochs, checkpoint_every=epochs, val_every=max(1, epochs // 5), ema_warmup=True
    )
    model = default_model_config(tuple(x.shape[1:]), tuple(y.shape[1:]), cond_to_input=False)
    return AmortisedPosterior().train(
        x,
        y,
        run_dir=run_dir,
        model=model,
        training=training,
        validation_fraction=validation_fraction,
        seed=seed,
    )


# ----------------------------------------------------------------------------- comparison


@dataclass
class ObservationComparison:
    """Score posterior against the MCMC reference for one observation (porosity, 1 channel).

    mean_error, std_error, coverage: :mod:`scorepde.evaluation.metrics` with the score samples
    as the model and the MCMC draws as the reference (coverage: share of MCMC draws inside the
    score posterior's pointwise 95 % band). floor_mean_error / floor_std_error: the same metrics
    between the two halves of the MCMC chains (the reference's own Monte-Carlo noise).
    truth_in_band_score / truth_in_band_mcmc: share of grid nodes where the true porosity lies
    in the 95 % band. max_rhat: over porosity nodes and latent modes. min_ess: bulk ESS, the
    smallest over porosity nodes. converged: ``max_rhat < rhat_threshold``.
    """

    index: int
    mean_error: float
    std_error: float
    coverage: float
    floor_mean_error: float
    floor_std_error: float
    truth_in_band_score: float
    truth_in_band_mcmc: float
    max_rhat: float
    min_ess: float
    acceptance: float
    step_size: float
    mcmc_seconds: float
    mcmc_draws: int
    score_seconds: float
    score_samples: int
    converged: bool


@dataclass
class BatteryComparison(ReferenceComparison):
    """Rows (:class:`ObservationComparison`) of :func:`compare_with_mcmc` and the settings that
    made them."""

    def to_markdown(self) -> str:
        """A Markdown table, one row per observation."""
        lines = [
            "| obs | mean err | std err | coverage | floor mean/std | truth in band score/MCMC "
            "| R-hat max | ESS min | accept | MCMC s (draws) | score s (samples) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            flag = "" if row.converged else " (!)"
            lines.append(
                f"| {row.index} | {row.mean_error:.3f} | {row.std_error:.3f} | "
                f"{row.coverage:.3f} | {row.floor_mean_error:.3f} / {row.floor_std_error:.3f} | "
                f"{row.truth_in_band_score:.2f} / {row.truth_in_band_mcmc:.2f} | "
                f"{row.max_rhat:.3f}{flag} | {row.min_ess:.0f} | {row.acceptance:.2f} | "
                f"{row.mcmc_seconds:.1f} ({row.mcmc_draws}) | "
                f"{row.score_seconds:.1f} ({row.score_samples}) |"
            )
        return "\n".join(lines)


def _truth_in_band(samples: np.ndarray, truth: np.ndarray, level: float = 0.95) -> float:
    low, high = np.quantile(samples[:, 0], [(1 - level) / 2, (1 + level) / 2], axis=0)
    return float(np.mean((truth >= low) & (truth <= high)))


def compare_with_mcmc(
    problem: BatteryPorosityProblem,
    posterior: AmortisedPosterior,
    *,
    n_observations: int = 3,
    seed: int = 0,
    n_posterior_samples: int = 1000,
    sampler: str = "euler_maruyama",
    steps: int | None = None,
    n_chains: int = 8,
    n_draws: int = 2000,
    n_burn: int = 2000,
    thin: int = 1,
    rhat_threshold: float = 1.05,
    progress: Callable[[str], None] | None = None,
) -> BatteryComparison:
    """Score posterior against pCN MCMC on ``n_observations`` synthetic observations.

    True porosities are prior draws and their observations are simulated from
    ``default_rng(seed)``; MCMC for observation ``j`` uses seed ``seed + 1 + j``, the score
    sampler seed ``j``. The posterior's ``x_shape`` says its space: ``(k,)`` whitened latent
    (samples mapped to porosity) or ``(1, N)`` porosity. Returns one
    :class:`ObservationComparison` per observation; MCMC runs that miss ``rhat_threshold`` are
    kept and flagged (``converged=False``), not dropped.
    """
    n_observations = _count("n_observations", n_observations)
    n_posterior_samples = _count("n_posterior_samples", n_posterior_samples, minimum=2)
    n_chains = _count("n_chains", n_chains, minimum=2)
    threshold = _finite("rhat_threshold", rhat_threshold, positive=True)
    if tuple(posterior.y_shape) != problem.y_shape:
        raise ValueError(
            f"posterior.y_shape = {posterior.y_shape} does not match the problem's observation "
            f"shape {problem.y_shape}"
        )
    if tuple(posterior.x_shape) == (problem.n_modes,):
        space = "whitened"
    elif tuple(posterior.x_shape) == problem.x_shape:
        space = "porosity"
    else:
        raise ValueError(
            f"posterior.x_shape = {posterior.x_shape} is not allowed; expected "
            f"({problem.n_modes},) (whitened latent) or {problem.x_shape} (porosity)"
        )
    rng = np.random.default_rng(seed)
    truths = problem.sample_prior(n_observations, rng)
    observations = problem.observe(truths, rng)
    rows = []
    for j in range(n_observations):
        result = problem.sample_mcmc(
            observations[j],
            n_chains=n_chains,
            n_draws=n_draws,
            n_burn=n_burn,
            thin=thin,
            seed=seed + 1 + j,
        )
        chains = problem.porosity_from_whitened(result.flat()).reshape(n_chains, result.n_draws, -1)
        reference = chains.reshape(-1, *problem.x_shape)
        rhat_porosity = split_rhat(chains)
        max_rhat = float(max(np.nanmax(rhat_porosity), np.nanmax(result.rhat)))
        min_ess = float(np.nanmin(effective_sample_size(chains)))

        start = time.perf_counter()
        samples = posterior.sample(
            n_posterior_samples, observations[j], sampler=sampler, steps=steps, seed=j
        )
        if space == "whitened":
            samples = problem.porosity_from_whitened(samples)
        score_seconds = time.perf_counter() - start

        half = n_chains // 2
        first = chains[:half].reshape(-1, *problem.x_shape)
        second = chains[half:].reshape(-1, *problem.x_shape)
        row = ObservationComparison(
            index=j,
            mean_error=float(mean_error(samples, reference)[0]),
            std_error=float(std_error(samples, reference)[0]),
            coverage=float(coverage(samples, reference)[0]),
            floor_mean_error=float(mean_error(first, second)[0]),
            floor_std_error=float(std_error(first, second)[0]),
            truth_in_band_score=_truth_in_band(samples, truths[j, 0]),
            truth_in_band_mcmc=_truth_in_band(reference, truths[j, 0]),
            max_rhat=max_rhat,
            min_ess=min_ess,
            acceptance=float(result.acceptance_rate.mean()),
            step_size=float(result.step_size.mean()),
            mcmc_seconds=float(result.wall_time),
            mcmc_draws=int(n_chains * result.n_draws),
            score_seconds=float(score_seconds),
            score_samples=n_posterior_samples,
            converged=max_rhat < threshold,
        )
        rows.append(row)
        if progress is not None:
            progress(
                f"observation {j}: mean err {row.mean_error:.3f}, R-hat {max_rhat:.3f}, "
                f"MCMC {row.mcmc_seconds:.1f} s, score {score_seconds:.1f} s"
            )
    settings = {
        "problem": problem.describe(),
        "space": space,
        "n_observations": n_observations,
        "seed": seed,
        "sampler": sampler,
        "steps": steps,
        "n_posterior_samples": n_posterior_samples,
        "n_chains": n_chains,
        "n_draws": n_draws,
        "n_burn": n_burn,
        "thin": thin,
        "rhat_threshold": threshold,
        "posterior": dict(posterior.metadata),
    }
    return BatteryComparison(rows=rows, settings=settings)
