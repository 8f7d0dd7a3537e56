"""Named recipes: one YAML file fixes a whole pipeline (data, model, training, sampling,
evaluation). ``battery-quick`` is the CPU default; ``battery-seed`` is the blog post's full scale.

Recipes ship inside the package (``scorepde/configs/*.yaml``) so that ``scorepde run NAME``
works from an installed wheel as well as from a checkout; a path to any YAML file works too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scorepde.configuration import ConfigError, from_dict, load_yaml, save_yaml, to_dict
from scorepde.data.campaign import SimulationConfig
from scorepde.data.normalisation import SCALE_FITS
from scorepde.training.config import TrainConfig
from scorepde.training.model import ModelConfig
from scorepde.training.solution_map import SolutionMapConfig

RECIPE_FOLDER = Path(__file__).resolve().parent / "configs"
NORMALISATIONS = ("conditional", "global")
SOURCES = ("file", "stream")
STREAM_DESIGNS = ("uniform", "edges")
INVARIANT_CONDITIONS = ("learn", "declared")
NORMALISER_DATA = ("train", "stream")


def _test_split() -> SimulationConfig:
    return SimulationConfig(split="test", n_conditions=8)


@dataclass
class DataRecipe:
    """The training design and a held-out test design (a different split: other conditions).

    validation_fraction: share of the training *conditions* (whole conditions, never single
    fields) held out for the per-epoch validation loss. normalisation: ``"conditional"``
    (mean and scale as smooth functions of the conditions, the default; see
    ``scorepde.data.normalisation.ConditionalNormaliser``) or ``"global"`` (one mean profile
    and one scale per channel). normalisation_degree: polynomial degree of the conditional
    mean and scale. subspace_components: if set, the normalised fields are projected onto
    their leading principal directions and the model learns those ``K`` coefficients
    (``scorepde.data.normalisation.SubspaceNormaliser``; needs a vector backbone such as
    ``mlp``); None keeps every grid value. subspace_whiten: false, true (divide each subspace
    coefficient by its training spread) or ``"conditional"`` (standardise each coefficient by
    its own condition-dependent mean and spread, polynomials of degree
    ``subspace_whiten_degree``; see ``SubspaceNormaliser``). subspace_whiten_fit: how that
    spread is fitted, ``"spread"`` (default, a polynomial in the observed spread),
    ``"log_variance"`` (a polynomial in the log of the unbiased variance, corrected for the
    bias of the log; follows spreads that change by orders of magnitude over the design; see
    ``ConditionalNormaliser``'s ``scale_fit``). source:
    ``"file"`` (train on the fields of ``train``, the default) or ``"stream"`` (every batch is
    simulated afresh during training, for cheap simulators: conditions drawn uniformly over the
    design ranges, log-uniformly for log-scale conditions, ``stream_per_condition`` fields
    each; ``train`` is still simulated, to fit the normaliser and hold out the validation
    conditions). stream_epoch_samples: rows per streamed epoch (None: as many as the training
    part of ``train``). stream_design: ``"uniform"`` (the default above) or ``"edges"``: the same
    transformed space with extra mass ``stream_edge_mass`` per condition in the bands of
    relative width ``stream_edge_width`` at both ends of its range, so that the faces, edges
    and corners of the design are trained on (``scorepde.data.design.edge_weighted_unit``).
    invariant_conditions: ``"learn"`` (default: the network sees every condition and must
    learn the invariances the problem declares) or ``"declared"`` (every condition the
    problem declares an invariance in, ``Problem.invariances()``, is pinned to the middle of
    its range in training and sampling, so the network does not see it; the model still
    accepts any value and its samples do not depend on it). normaliser_data: ``"train"``
    (default: fit the normaliser on the training part of ``train``) or ``"stream"`` (with
    ``source: stream``: fit it on a fresh, seeded draw from the stream's design with as many
    conditions and fields per condition as ``train``; with ``stream_design: edges`` the
    normaliser then sees the faces of the design, where a polynomial fitted to a
    space-filling design extrapolates: the battery's mean at F_right = 0).
    """

    train: SimulationConfig = field(default_factory=SimulationConfig)
    test: SimulationConfig = field(default_factory=_test_split)
    validation_fraction: float = 0.1
    normalisation: str = "conditional"
    normalisation_degree: int = 2
    subspace_components: int | None = None
    subspace_whiten: bool | str = False
    subspace_whiten_degree: int = 3
    subspace_whiten_fit: str = "spread"
    source: str = "file"
    stream_per_condition: int = 25
    stream_epoch_samples: int | None = None
    stream_design: str = "uniform"
    stream_edge_mass: float = 0.3
    stream_edge_width: float = 0.05
    invariant_conditions: str = "learn"
    normaliser_data: str = "train"

    def __post_init__(self) -> None:
        if self.normaliser_data not in NORMALISER_DATA:
            raise ConfigError(
                f"data.normaliser_data = {self.normaliser_data!r} is not allowed; expected one "
                f"of {list(NORMALISER_DATA)}"
            )
        if self.normaliser_data == "stream" and self.source != "stream":
            raise ConfigError(
                f"data.normaliser_data = 'stream' needs data.source = 'stream', got {self.source!r}"
            )
        if self.subspace_whiten_fit not in SCALE_FITS:
            raise ConfigError(
                f"data.subspace_whiten_fit = {self.subspace_whiten_fit!r} is not allowed; "
                f"expected one of {list(SCALE_FITS)}"
            )
        if self.stream_design not in STREAM_DESIGNS:
            raise ConfigError(
                f"data.stream_design = {self.stream_design!r} is not allowed; expected one of "
                f"{list(STREAM_DESIGNS)}"
            )
        if not 0.0 <= self.stream_edge_mass <= 1.0:
            raise ConfigError(
                f"data.stream_edge_mass = {self.stream_edge_mass!r} is not allowed; expected "
                "a value in [0, 1]"
            )
        if not 0.0 < self.stream_edge_width <= 0.5:
            raise ConfigError(
                f"data.stream_edge_width = {self.stream_edge_width!r} is not allowed; expected "
                "a value in (0, 0.5]"
            )
        if self.invariant_conditions not in INVARIANT_CONDITIONS:
            raise ConfigError(
                f"data.invariant_conditions = {self.invariant_conditions!r} is not allowed; "
                f"expected one of {list(INVARIANT_CONDITIONS)}"
            )
        if self.source not in SOURCES:
            raise ConfigError(
                f"data.source = {self.source!r} is not allowed; expected one of {list(SOURCES)}"
            )
        for name in ("stream_per_condition", "stream_epoch_samples"):
            value = getattr(self, name)
            if value is None and name == "stream_epoch_samples":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"data.{name} = {value!r} is not allowed; expected an int >= 1")
        if self.subspace_components is not None and (
            isinstance(self.subspace_components, bool)
            or not isinstance(self.subspace_components, int)
            or self.subspace_components < 1
        ):
            raise ConfigError(
                f"data.subspace_components = {self.subspace_components!r} is not allowed; "
                "expected an int >= 1 or null"
            )
        if self.normalisation not in NORMALISATIONS:
            raise ConfigError(
                f"data.normalisation = {self.normalisation!r} is not allowed; "
                f"expected one of {list(NORMALISATIONS)}"
            )
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(
                f"data.validation_fraction = {self.validation_fraction!r} is not allowed; "
                "expected a fraction in [0, 1)"
            )
        if self.train.split == self.test.split and self.train.seed == self.test.seed:
            raise ConfigError(
                "data.test must differ from data.train (another split or seed) so that the "
                f"held-out conditions are new; both are split={self.train.split!r}, "
                f"seed={self.train.seed}"
            )


@dataclass
class SamplingConfig:
    """The default sampler of a recipe: name (see ``scorepde.training.model.SAMPLERS``),
    number of steps, batch size and the first per-sample seed."""

    sampler: str = "euler_maruyama"
    steps: int = 100
    batch_size: int = 1000
    seed: int = 0


@dataclass
class GridConfig:
    """The evaluation grid over the whole design (``scorepde.evaluation.grid.design_grid``).

    points: values per condition, evenly spaced in its transformed space with both ends of
    its design range; points_per_condition: ``name -> count`` overriding ``points``; values:
    ``name -> explicit values`` (physical units); invariant_points: values of each condition
    the problem declares an invariance in (2: at 20 % and 80 % of its range, paired at every
    point of the others for the invariance check; 1: the middle only); n_samples: model and
    simulator samples per grid point (None: ``evaluation.n_samples``).
    """

    points: int = 5
    points_per_condition: dict[str, int] = field(default_factory=dict)
    values: dict[str, list[float]] = field(default_factory=dict)
    invariant_points: int = 2
    n_samples: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.points, bool) or not isinstance(self.points, int) or self.points < 1:
            raise ConfigError(
                f"evaluation.grid.points = {self.points!r} is not allowed; expected an int >= 1"
            )
        if self.invariant_points not in (1, 2):
            raise ConfigError(
                f"evaluation.grid.invariant_points = {self.invariant_points!r} is not allowed; "
                "expected 1 or 2"
            )
        if self.n_samples is not None and (
            isinstance(self.n_samples, bool)
            or not isinstance(self.n_samples, int)
            or self.n_samples < 2
        ):
            raise ConfigError(
                f"evaluation.grid.n_samples = {self.n_samples!r} is not allowed; expected an "
                "int >= 2 or null"
            )


@dataclass
class EvaluationConfig:
    """How a trained model is judged against fresh simulator samples.

    conditions: explicit evaluation points in physical units (empty: the problem's
    ``default_evaluation_conditions()``). held_out: how many conditions of the test design to
    add. n_samples: model and simulator samples per condition (two simulator sets give the
    noise floor). invariance_shift: how far to move each condition the problem declares an
    invariance for (``Problem.invariances()``; null: the declared shift, 0: skip the check).
    targets: a profile name of ``scorepde.evaluation.compare.TARGET_PROFILES`` (``"seed"``,
    ``"quick"``, ``"quick-2d"``) or a mapping of thresholds. seed: the simulator reference
    draws (a stream separate from the training data). grid: a ``GridConfig`` (the whole
    design: every point judged by the targets, heat maps, the worst case as the report's
    headline and the declared invariances paired at every point), evaluated after the
    conditions above; None: no grid.
    """

    conditions: list[list[float]] = field(default_factory=list)
    held_out: int = 2
    n_samples: int = 1000
    invariance_shift: float | None = None
    targets: Any = "quick"
    seed: int = 2024
    grid: GridConfig | None = None

    def __post_init__(self) -> None:
        if isinstance(self.grid, dict):  # a union field: from_dict leaves a bad mapping as is
            self.grid = from_dict(GridConfig, self.grid, where="evaluation.grid")


@dataclass
class Recipe:
    """A whole pipeline: simulate -> train -> sample -> evaluate."""

    name: str = "custom"
    description: str = ""
    data: DataRecipe = field(default_factory=DataRecipe)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    #: A two-stage model (``scorepde.training.solution_map``): the score model learns the
    #: problem's input channels only and this map gives their solution channels. None: one
    #: model of every channel.
    solution_map: SolutionMapConfig | None = None

    def __post_init__(self) -> None:
        if isinstance(self.solution_map, dict):  # a union field: from_dict leaves a bad mapping
            self.solution_map = from_dict(SolutionMapConfig, self.solution_map, "solution_map")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-ready)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming the key."""
        return from_dict(cls, data, where="recipe")

    def save(self, path: str | Path) -> None:
        """Write the recipe as YAML (atomically)."""
        save_yaml(self, path)


def list_recipes() -> list[str]:
    """Names of the recipes shipped with the package."""
    return sorted(p.stem for p in RECIPE_FOLDER.glob("*.yaml"))


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A shipped recipe by name (``battery-quick``) or any recipe YAML file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        return load_yaml(Recipe, candidate)
    path = RECIPE_FOLDER / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown recipe {str(name_or_path)!r}; shipped recipes: {list_recipes()} "
            "(or give the path of a recipe .yaml file)"
        )
    return load_yaml(Recipe, path)
