"""Named inverse recipes: one YAML file fixes a whole amortised-posterior job (problem, noise,
training pairs, model, training, sampler, calibration), and :func:`train_from_recipe` runs it.

Shipped recipes live in ``scorepde/configs/inverse/*.yaml`` (package data, separate from the
forward recipes of :mod:`scorepde.recipes`); a path to any YAML file works too. Unknown keys
are an error naming the key. Seeds: the training pairs use ``seed``, the train/validation split
and the weight initialisation ``seed`` (the trainer's own streams ``training.seed``, default
``seed``), the calibration pairs ``seed + 1`` and their posterior samples ``seed + 2``.

Folder written by :func:`train_from_recipe`::

    OUT/recipe.yaml                  the recipe as run
    OUT/training/                    the trainer's run folder (history, checkpoints)
    OUT/model/                       AmortisedPosterior.save + recipe.yaml (sample from here)
    OUT/calibration/calibration.{json,md,png}   simulation-based calibration report

With ``ensemble.members: M > 1`` (a deep ensemble, :mod:`scorepde.inverse.ensemble`) member
``k`` is the same recipe run with the seed ``member_seed(seed, k)`` (its own pairs, split and
initialisation) in ``OUT/members/member-k/`` (the layout above, without calibration), and
``OUT/model/`` holds :meth:`EnsemblePosterior.save` (each member and ``ensemble.yaml``) and the
recipe; calibration then runs on the pooled posterior.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scorepde.configuration import ConfigError, from_dict, load_yaml, save_yaml, to_dict
from scorepde.evaluation.calibration import (
    DEFAULT_LEVELS,
    CalibrationResult,
    component_statistics,
    simulation_based_calibration,
)
from scorepde.fileio import atomic_write_text
from scorepde.inverse.ensemble import EnsemblePosterior, member_seed
from scorepde.inverse.noise_models import build_noise_model
from scorepde.inverse.posterior import (
    Y_AS,
    AmortisedPosterior,
    default_model_config,
    default_train_config,
    fixed_steps_train_config,
    from_simulator,
)
from scorepde.inverse.problems import InverseProblem, build_inverse_problem
from scorepde.provenance import provenance
from scorepde.training.config import TrainConfig, resolve_num_threads
from scorepde.training.model import SAMPLERS, ModelConfig

INVERSE_RECIPE_FOLDER = Path(__file__).resolve().parent.parent / "configs" / "inverse"
RECIPE_FILE = "recipe.yaml"
#: Base training recipes an inverse recipe's ``training`` overrides (see ``InverseRecipe``).
TRAINING_DEFAULTS = ("data_size", "fixed_steps")


@dataclass
class ProblemSpec:
    """A problem of :data:`~scorepde.inverse.problems.INVERSE_PROBLEMS` and its builder's
    keyword options."""

    name: str = "linear_gaussian"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PairsConfig:
    """Training pairs: how many to simulate, and the share held out for the validation loss."""

    n_train: int = 20_000
    validation_fraction: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.n_train, bool) or not isinstance(self.n_train, int) or self.n_train < 2:
            raise ConfigError(f"data.n_train = {self.n_train!r}; expected an integer >= 2")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(
                f"data.validation_fraction = {self.validation_fraction!r}; expected [0, 1)"
            )


@dataclass
class InverseSamplingConfig:
    """The recipe's posterior sampler (see ``scorepde.training.model.SAMPLERS``); null: the
    posterior's default (``scorepde.sampling.registry.DEFAULT_POSTERIOR_SAMPLER``, at
    ``DEFAULT_POSTERIOR_STEPS`` when ``steps`` is null). ``steps`` None: the sampler's
    default (``scorepde.inverse.posterior.DEFAULT_STEPS``)."""

    sampler: str | None = None
    steps: int | None = None
    batch_size: int = 1000

    def __post_init__(self) -> None:
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise ConfigError(
                f"sampling.sampler = {self.sampler!r}; expected one of {sorted(SAMPLERS)}"
            )
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise ConfigError(f"sampling.steps = {self.steps!r}; expected an integer >= 1 or null")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(
                f"sampling.batch_size = {self.batch_size!r}; expected an integer >= 1"
            )


@dataclass
class CalibrationConfig:
    """Simulation-based calibration after training (``n_observations: 0`` skips it):
    ``n_observations`` fresh pairs, ``n_samples`` posterior samples each, family-wise
    ``alpha``, coverage ``levels``, at most ``max_components`` components ranked (plus their
    mean)."""

    n_observations: int = 200
    n_samples: int = 100
    alpha: float = 0.01
    levels: list[float] = field(default_factory=lambda: list(DEFAULT_LEVELS))
    max_components: int = 64

    def __post_init__(self) -> None:
        count = self.n_observations
        if isinstance(count, bool) or not isinstance(count, int) or count < 0 or count == 1:
            raise ConfigError(
                f"calibration.n_observations = {self.n_observations!r}; expected 0 (skip) or an "
                "integer >= 2"
            )
        if not isinstance(self.n_samples, int) or self.n_samples < 1:
            raise ConfigError(f"calibration.n_samples = {self.n_samples!r}; expected >= 1")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"calibration.alpha = {self.alpha!r}; expected (0, 1)")
        if not self.levels or not all(0.0 < level < 1.0 for level in self.levels):
            raise ConfigError(f"calibration.levels = {self.levels!r}; expected numbers in (0, 1)")


@dataclass
class EnsembleConfig:
    """A deep ensemble (:mod:`scorepde.inverse.ensemble`): ``members`` score models, member
    ``k`` trained with the seed ``member_seed(seed, k)`` (its own pairs, split and
    initialisation), their samples pooled. ``workers``: members trained at the same time, each
    in its own process with ``training.num_threads`` torch threads (1: one after the other in
    this process). ``members: 1`` is the single model."""

    members: int = 1
    workers: int = 1

    def __post_init__(self) -> None:
        for key in ("members", "workers"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ensemble.{key} = {value!r}; expected an integer >= 1")


@dataclass
class InverseRecipe:
    """A whole amortised-posterior job (see the module docstring).

    noise: overrides the problem's own noise model (``{"name": ..., **fields}``,
    ``scorepde.inverse.noise_models``); null keeps it. model: a full ``ModelConfig`` dict, or
    null for :func:`~scorepde.inverse.posterior.default_model_config`. training: overrides of
    the recipe named by training_defaults (any ``TrainConfig`` field, early stopping's
    ``patience`` / ``min_delta`` / ``restore_best`` included). training_defaults:
    ``"data_size"`` (:func:`~scorepde.inverse.posterior.default_train_config`: length from the
    data size, early stopping, the default) or ``"fixed_steps"``
    (:func:`~scorepde.inverse.posterior.fixed_steps_train_config`: about 20 000 steps whatever
    the data size, no early stopping; the recipe of the shipped recipes, which keep it so that
    their results stay as documented).
    y_as: how ``y`` enters the network, ``"vector"``, ``"fields"`` (field conditions: needs a
    ``model`` whose backbone takes them, e.g. the U-Net), ``"fields_linear"`` (those fields
    and the linear estimate of ``x`` from them as more channels; ``cond_channels`` counts both)
    or ``"fields_residual"`` (the same channels, and ``x`` modelled as its scaled residual from
    the estimate). ensemble: members and workers of a deep ensemble (:class:`EnsembleConfig`;
    one member by default).
    """

    name: str = "custom"
    description: str = ""
    seed: int = 0
    problem: ProblemSpec = field(default_factory=ProblemSpec)
    noise: dict[str, Any] | None = None
    data: PairsConfig = field(default_factory=PairsConfig)
    model: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    training_defaults: str = "data_size"
    sampling: InverseSamplingConfig = field(default_factory=InverseSamplingConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    y_as: str = "vector"
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)

    def __post_init__(self) -> None:
        if self.y_as not in Y_AS:
            raise ConfigError(f"y_as = {self.y_as!r}; expected one of {list(Y_AS)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed = {self.seed!r}; expected an integer >= 0")
        self.training = dict(self.training or {})
        if self.training_defaults not in TRAINING_DEFAULTS:
            raise ConfigError(
                f"training_defaults = {self.training_defaults!r}; expected one of "
                f"{list(TRAINING_DEFAULTS)}"
            )
        if self.noise is not None:
            build_noise_model(dict(self.noise))  # raises ConfigError naming a bad key
        if self.model is not None:
            ModelConfig.from_dict(dict(self.model))
        allowed = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(self.training) - allowed)
        if unknown:
            raise ConfigError(f"training: unknown key(s) {unknown}; allowed: {sorted(allowed)}")

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-ready)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InverseRecipe:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming the key."""
        return from_dict(cls, data, where="inverse recipe")

    def save(self, path: str | Path) -> None:
        """Write the recipe as YAML (atomically)."""
        save_yaml(self, path)

    # ------------------------------------------------------------------ what it builds

    def build_problem(self) -> InverseProblem:
        """The problem, with the recipe's noise model if it overrides the problem's."""
        problem = build_inverse_problem(self.problem.name, self.problem.options)
        if self.noise is not None:
            problem = dataclasses.replace(problem, noise=build_noise_model(dict(self.noise)))
        return problem

    def model_config(self, problem: InverseProblem) -> ModelConfig:
        """The recipe's model, or the default one sized to the problem."""
        if self.model is None:
            return default_model_config(problem.x_shape, problem.y_shape)
        return ModelConfig.from_dict(dict(self.model))

    def train_config(self) -> TrainConfig:
        """The training recipe named by ``training_defaults`` for the recipe's pair count,
        with its overrides (the data-sized recipe without early stopping when there is no
        validation set)."""
        n_val = round(self.data.validation_fraction * self.data.n_train)
        n_fit = max(1, self.data.n_train - n_val)
        if self.training_defaults == "fixed_steps":
            base = fixed_steps_train_config(n_fit, self.seed)
        else:
            base = default_train_config(n_fit, self.seed)
            if n_val == 0:
                base = base.replace(patience=None, restore_best=False)
        try:
            return base.replace(**self.training)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"training: {error}") from error


def list_inverse_recipes() -> list[str]:
    """Names of the inverse recipes shipped with the package."""
    return sorted(p.stem for p in INVERSE_RECIPE_FOLDER.glob("*.yaml"))


def load_inverse_recipe(name_or_path: str | Path) -> InverseRecipe:
    """A shipped inverse recipe by name (``inverse-linear-gaussian-2d``) or any inverse recipe
    YAML file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        return load_yaml(InverseRecipe, candidate)
    path = INVERSE_RECIPE_FOLDER / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown inverse recipe {str(name_or_path)!r}; shipped inverse recipes: "
            f"{list_inverse_recipes()} (or give the path of a recipe .yaml file)"
        )
    return load_yaml(InverseRecipe, path)


def find_recipe(model_dir: str | Path) -> InverseRecipe | None:
    """The recipe saved beside a model by :func:`train_from_recipe`: ``model_dir/recipe.yaml``
    or ``model_dir/../recipe.yaml``; None if there is none."""
    folder = Path(model_dir)
    for candidate in (folder / RECIPE_FILE, folder.parent / RECIPE_FILE):
        if candidate.is_file():
            return load_yaml(InverseRecipe, candidate)
    return None


# ---------------------------------------------------------------------------- running


def calibrate_posterior(
    posterior: AmortisedPosterior | EnsemblePosterior,
    problem: InverseProblem,
    calibration: CalibrationConfig,
    sampling: InverseSamplingConfig,
    seed: int,
) -> CalibrationResult:
    """SBC of ``posterior`` on fresh pairs of ``problem`` (pairs from ``seed``, posterior
    samples from ``seed + 1``), in the space the model was trained in."""

    def sample(observations: np.ndarray, n: int, sample_seed: int) -> np.ndarray:
        return posterior.sample_many(
            n,
            observations,
            sampler=sampling.sampler,
            steps=sampling.steps,
            seed=sample_seed,
            batch_size=sampling.batch_size,
        )

    statistics, names = component_statistics(problem.x_shape, calibration.max_components)
    return simulation_based_calibration(
        sample,
        problem.sample_prior,
        problem.forward,
        problem.noise,
        n_observations=calibration.n_observations,
        n_samples=calibration.n_samples,
        seed=seed,
        statistics=statistics,
        names=names,
        alpha=calibration.alpha,
        levels=calibration.levels,
    )


@dataclass
class InverseRun:
    """What :func:`train_from_recipe` made: the posterior (an :class:`EnsemblePosterior` for
    ``ensemble.members > 1``), where it lives, the calibration (None if skipped) and wall times
    in seconds."""

    posterior: AmortisedPosterior | EnsemblePosterior
    model_dir: Path
    calibration: CalibrationResult | None
    calibration_dir: Path | None
    seconds: dict[str, float]


def write_calibration_report(
    result: CalibrationResult, folder: str | Path, *, title: str, context: dict[str, Any]
) -> Path:
    """``folder/calibration.json`` (summary, ``context``, provenance), ``calibration.md`` and
    ``calibration.png``; returns the folder."""
    from scorepde.inverse.plots import plot_calibration

    folder = Path(folder)
    record = {**context, "calibration": result.to_dict(), "provenance": provenance()}
    atomic_write_text(folder / "calibration.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(folder / "calibration.md", f"# {title}\n\n{result.to_markdown()}")
    plot_calibration(result, folder / "calibration.png")
    return folder


def _train_one(
    recipe: InverseRecipe,
    out: Path,
    *,
    resume: bool,
    progress: bool,
    problem: InverseProblem | None = None,
) -> tuple[AmortisedPosterior, Path, dict[str, float]]:
    """Simulate the pairs, train one model and save it with the recipe in ``out`` (no
    calibration); ``problem``: the recipe's, if already built."""
    problem = problem or recipe.build_problem()
    config = recipe.model_config(problem)
    training = recipe.train_config()
    recipe.save(out / RECIPE_FILE)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    x, y = from_simulator(
        problem.sample_prior, problem.forward, problem.noise, recipe.data.n_train, recipe.seed
    )
    seconds["simulate"] = time.perf_counter() - start
    start = time.perf_counter()
    posterior = AmortisedPosterior().train(
        x,
        y,
        run_dir=out / "training",
        model=config,
        training=training,
        validation_fraction=recipe.data.validation_fraction,
        seed=recipe.seed,
        resume=resume,
        progress=progress,
        y_as=recipe.y_as,
    )
    seconds["train"] = time.perf_counter() - start
    model_dir = posterior.save(out / "model")
    recipe.save(model_dir / RECIPE_FILE)
    return posterior, model_dir, seconds


def member_recipe(recipe: InverseRecipe, member: int) -> InverseRecipe:
    """Ensemble member ``member`` of ``recipe``: the same job with the seed
    ``member_seed(recipe.seed, member)``, one model, no calibration of its own."""
    return dataclasses.replace(
        recipe,
        name=f"{recipe.name}/member-{member}",
        seed=member_seed(recipe.seed, member),
        calibration=dataclasses.replace(recipe.calibration, n_observations=0),
        ensemble=EnsembleConfig(),
    )


def _train_member(
    record: dict[str, Any], out: str, resume: bool, progress: bool
) -> dict[str, float]:
    """Train one ensemble member (a worker process's job: arguments that pickle); a member
    whose model folder already holds this recipe is kept (``resume``)."""
    recipe = InverseRecipe.from_dict(record)
    folder = Path(out)
    saved = folder / "model" / RECIPE_FILE
    if resume and saved.is_file():
        try:
            done = load_yaml(InverseRecipe, saved).to_dict() == recipe.to_dict()
        except (ConfigError, ValueError, OSError):
            done = False
        if done:
            return {}
    return _train_one(recipe, folder, resume=resume, progress=progress)[2]


#: Environment variables that size the BLAS / OpenMP thread pools of a starting process.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _thread_environment(threads: int) -> Iterator[None]:
    """Set :data:`THREAD_VARIABLES` to ``threads`` for processes started inside the block
    (restored after)."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _train_members(
    recipe: InverseRecipe, out: Path, *, resume: bool, progress: bool
) -> tuple[EnsemblePosterior, list[dict[str, float]]]:
    """Train the members of ``recipe.ensemble`` (``workers`` at a time, each in a spawned
    process when ``workers > 1``) in ``out/members/member-k``; returns the ensemble and each
    member's seconds (empty for a member kept from an earlier run)."""
    count, workers = recipe.ensemble.members, min(recipe.ensemble.workers, recipe.ensemble.members)
    jobs = [
        (member_recipe(recipe, k).to_dict(), str(out / "members" / f"member-{k}"), resume)
        for k in range(count)
    ]
    if workers == 1:
        seconds = [_train_member(*job, progress) for job in jobs]
    else:
        # spawn, not fork: a forked child would inherit this process's torch thread pool. The
        # children's BLAS / OpenMP pools are sized by the environment they start with: unset,
        # two workers on 2 cores ran two threads each and simulated their pairs 10 times slower
        threads = resolve_num_threads(recipe.train_config().num_threads, workers) or 1
        context = multiprocessing.get_context("spawn")
        with (
            _thread_environment(threads),
            ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool,
        ):
            futures = [pool.submit(_train_member, *job, False) for job in jobs]
            seconds = [future.result() for future in futures]
    members = [AmortisedPosterior.load(Path(job[1]) / "model") for job in jobs]
    return EnsemblePosterior(members), seconds


def train_from_recipe(
    recipe: InverseRecipe,
    out: str | Path,
    *,
    resume: bool = True,
    progress: bool = False,
) -> InverseRun:
    """Simulate the pairs, train, save the model (with the recipe) and calibrate; see the
    module docstring for the folder layout. For an ensemble, ``seconds["train"]`` is the wall
    time of the members' phase (their simulation included) and ``seconds["simulate"]`` the sum
    of the members' simulation times; a member finished by an earlier run is kept
    (``resume``)."""
    out = Path(out)
    problem = recipe.build_problem()
    posterior: AmortisedPosterior | EnsemblePosterior
    if recipe.ensemble.members == 1:
        posterior, model_dir, seconds = _train_one(
            recipe, out, resume=resume, progress=progress, problem=problem
        )
    else:
        recipe.save(out / RECIPE_FILE)
        start = time.perf_counter()
        posterior, member_seconds = _train_members(recipe, out, resume=resume, progress=progress)
        seconds = {
            "simulate": float(sum(s.get("simulate", 0.0) for s in member_seconds)),
            "train": time.perf_counter() - start,
        }
        model_dir = posterior.save(out / "model")
        recipe.save(model_dir / RECIPE_FILE)
    calibration, calibration_dir = None, None
    if recipe.calibration.n_observations > 0:
        start = time.perf_counter()
        calibration = calibrate_posterior(
            posterior, problem, recipe.calibration, recipe.sampling, recipe.seed + 1
        )
        seconds["calibrate"] = time.perf_counter() - start
        calibration_dir = write_calibration_report(
            calibration,
            out / "calibration",
            title=f"Calibration of {recipe.name}",
            context={
                "recipe": recipe.name,
                "problem": problem.description or problem.name,
                "sampler": recipe.sampling.sampler,
                "steps": recipe.sampling.steps,
                "seed": recipe.seed + 1,
                "seconds": seconds["calibrate"],
                "members": recipe.ensemble.members,
            },
        )
    return InverseRun(posterior, model_dir, calibration, calibration_dir, seconds)


__all__ = [
    "INVERSE_RECIPE_FOLDER",
    "CalibrationConfig",
    "EnsembleConfig",
    "InverseRecipe",
    "InverseRun",
    "InverseSamplingConfig",
    "PairsConfig",
    "ProblemSpec",
    "calibrate_posterior",
    "find_recipe",
    "list_inverse_recipes",
    "load_inverse_recipe",
    "member_recipe",
    "train_from_recipe",
    "write_calibration_report",
]
