"""Multi-fidelity recipes: ``scorepde run mf-poisson`` (and ``mf-heat``, ``mf-burgers``,
``mf-battery``, their ``-gpu`` variants).

A recipe is a YAML file with ``name``, ``description`` and a ``multifidelity`` mapping whose
``kind`` says which experiment runs it:

* ``kind: benchmark`` -- one benchmark of :data:`~scorepde.multifidelity.benchmarks.BENCHMARKS`
  under the protocol of :mod:`~scorepde.multifidelity.protocol`: the DGMF score model and the
  baselines trained on the same subsets, the nRMSE table (:class:`BenchmarkRunConfig`,
  :mod:`~scorepde.multifidelity.run`);
* ``kind: battery`` -- the battery at several grid sizes, a distribution per condition
  (:mod:`~scorepde.multifidelity.battery`; its options are read there).

Shipped recipes live in ``scorepde/configs/multifidelity/*.yaml`` (package data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scorepde.configuration import ConfigError, from_dict, load_yaml
from scorepde.multifidelity.baselines import BASELINES
from scorepde.multifidelity.benchmarks import BENCHMARKS
from scorepde.multifidelity.protocol import DEFAULT_BUDGETS

__all__ = [
    "MF_KINDS",
    "MF_RECIPE_FOLDER",
    "BenchmarkRunConfig",
    "ContinuousConfig",
    "MFRecipe",
    "is_mf_recipe",
    "list_mf_recipes",
    "load_mf_recipe",
]

MF_RECIPE_FOLDER = Path(__file__).resolve().parent.parent / "configs" / "multifidelity"
MF_KINDS = ("benchmark", "battery")
#: The network methods (names of :data:`~scorepde.multifidelity.dgmf.NETWORK_METHODS`; listed
#: here so that reading a recipe does not import torch).
_NETWORK_METHODS = ("dgmf", "score_high", "unet_regression")


@dataclass
class MFRecipe:
    """A multi-fidelity recipe: ``multifidelity`` holds ``kind`` and that kind's options."""

    name: str
    description: str = ""
    multifidelity: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.multifidelity, dict):
            raise ConfigError(
                f"recipe {self.name!r}: multifidelity is {self.multifidelity!r}; expected a "
                "mapping with a 'kind'"
            )
        kind = self.multifidelity.get("kind")
        if kind not in MF_KINDS:
            raise ConfigError(
                f"recipe {self.name!r}: multifidelity.kind is {kind!r}; expected one of {MF_KINDS}"
            )

    @property
    def kind(self) -> str:
        return str(self.multifidelity["kind"])

    @property
    def options(self) -> dict[str, Any]:
        """The ``multifidelity`` mapping without ``kind``."""
        return {k: v for k, v in self.multifidelity.items() if k != "kind"}

    def benchmark_config(self) -> BenchmarkRunConfig:
        """The options of a ``kind: benchmark`` recipe as a checked :class:`BenchmarkRunConfig`."""
        if self.kind != "benchmark":
            raise ConfigError(f"recipe {self.name!r} is of kind {self.kind!r}, not 'benchmark'")
        return from_dict(BenchmarkRunConfig, self.options, where=f"{self.name}.multifidelity")


@dataclass
class ContinuousConfig:
    """The continuous-fidelity experiments of a benchmark run (DGMF with the fidelity as a
    number, trained on repeat 0's subsets).

    Attributes:
        extrapolate: a fidelity above the finest (128 for 8..64): the model trained on every
            level is asked for it and compared with that solver's answer; None: skipped.
        hold_out: a middle fidelity (32): a model trained without it is asked for it; None:
            skipped.
        n_test: the first ``n_test`` test inputs are used (sampling cost).
    """

    extrapolate: int | None = 128
    hold_out: int | None = None
    n_test: int = 32


@dataclass
class BenchmarkRunConfig:
    """One benchmark run (defaults: the protocol of the issue, CPU-sized networks).

    Attributes:
        benchmark: ``poisson``, ``heat`` or ``burgers``.
        n_train, n_test: pool sizes (512 and 128 in the reference protocol). design:
            ``sobol`` or ``lhs``. seed: pools, subsets and network seeds derive from it.
        budgets: training outputs per fidelity, lowest first (nested subsets).
        repeats: training subsets for the baselines (cheap: five, as the protocol says).
        network_repeats: of those, how many the network methods train on (the first ones; each
            trains every method once: the CPU cost of a run).
        baselines: names of :data:`~scorepde.multifidelity.baselines.BASELINES`; those whose
            optional dependencies are missing are skipped with a note in the report.
        sweep: high-fidelity budgets of the budget sweep (lower budgets fixed) for
            ``sweep_baselines``; empty: no sweep.
        methods: network methods (``dgmf``, ``score_high``, ``unet_regression``).
        dgmf: the :class:`~scorepde.multifidelity.dgmf.DGMFConfig` options (a mapping; its seed
            is replaced per repeat by ``100 * seed + repeat``).
        samples_saved: test inputs whose DGMF samples are kept in ``samples.npz`` (figures).
    """

    benchmark: str = "poisson"
    n_train: int = 512
    n_test: int = 128
    design: str = "sobol"
    seed: int = 0
    budgets: list[int] = field(default_factory=lambda: list(DEFAULT_BUDGETS))
    repeats: int = 5
    network_repeats: int = 1
    baselines: list[str] = field(default_factory=lambda: list(BASELINES))
    sweep: list[int] = field(default_factory=lambda: [5, 10, 20, 40])
    sweep_baselines: list[str] = field(default_factory=lambda: ["linear", "gp_pca", "ar1_pca"])
    methods: list[str] = field(default_factory=lambda: list(_NETWORK_METHODS))
    dgmf: dict[str, Any] = field(default_factory=dict)
    samples_saved: int = 4
    continuous: ContinuousConfig | None = None

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ValueError(
                f"benchmark is {self.benchmark!r}; expected one of {sorted(BENCHMARKS)}"
            )
        fidelities = BENCHMARKS[self.benchmark].fidelities
        if len(self.budgets) != len(fidelities) or any(
            isinstance(b, bool) or not isinstance(b, int) or b < 2 for b in self.budgets
        ):
            raise ValueError(
                f"budgets is {self.budgets!r}; expected {len(fidelities)} ints >= 2 (one per "
                f"fidelity {list(fidelities)}, lowest first)"
            )
        for name in ("n_train", "n_test", "repeats", "network_repeats"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} is {value!r}; expected an int >= 1")
        if self.network_repeats > self.repeats:
            raise ValueError(
                f"network_repeats is {self.network_repeats}; expected at most repeats "
                f"({self.repeats})"
            )
        if max(max(self.budgets), *self.sweep, 0) > self.n_train:
            raise ValueError(
                f"budgets {self.budgets} and sweep {self.sweep} need up to "
                f"{max(max(self.budgets), *self.sweep)} training inputs; n_train is {self.n_train}"
            )
        if self.design not in ("sobol", "lhs"):
            raise ValueError(f"design is {self.design!r}; expected 'sobol' or 'lhs'")
        for name, allowed in (
            ("baselines", BASELINES),
            ("sweep_baselines", BASELINES),
            ("methods", _NETWORK_METHODS),
        ):
            unknown = sorted(set(getattr(self, name)) - set(allowed))
            if unknown:
                raise ValueError(
                    f"{name} has unknown entries {unknown}; allowed: {sorted(allowed)}"
                )
        if any(isinstance(b, bool) or not isinstance(b, int) or b < 2 for b in self.sweep):
            raise ValueError(f"sweep is {self.sweep!r}; expected ints >= 2")
        if not isinstance(self.dgmf, dict):
            raise ValueError(f"dgmf is {self.dgmf!r}; expected a mapping of DGMFConfig options")
        if self.continuous is not None:
            self._check_continuous(fidelities)
        if isinstance(self.samples_saved, bool) or not 0 <= self.samples_saved <= self.n_test:
            raise ValueError(
                f"samples_saved is {self.samples_saved!r}; expected an int in [0, n_test]"
            )

    def _check_continuous(self, fidelities: tuple[int, ...]) -> None:
        cont = self.continuous
        if not isinstance(cont, ContinuousConfig):
            raise ValueError(f"continuous is {cont!r}; expected a mapping of ContinuousConfig")
        if cont.extrapolate is not None and not (
            isinstance(cont.extrapolate, int) and cont.extrapolate > fidelities[-1]
        ):
            raise ValueError(
                f"continuous.extrapolate is {cont.extrapolate!r}; expected an int above the "
                f"finest fidelity {fidelities[-1]}, or null"
            )
        if cont.hold_out is not None and cont.hold_out not in fidelities[1:-1]:
            raise ValueError(
                f"continuous.hold_out is {cont.hold_out!r}; expected one of the middle fidelities "
                f"{list(fidelities[1:-1])}, or null"
            )
        if isinstance(cont.n_test, bool) or not 1 <= cont.n_test <= self.n_test:
            raise ValueError(
                f"continuous.n_test is {cont.n_test!r}; expected an int in [1, n_test = "
                f"{self.n_test}]"
            )


def list_mf_recipes() -> list[str]:
    """Names of the multi-fidelity recipes shipped with the package."""
    return sorted(p.stem for p in MF_RECIPE_FOLDER.glob("*.yaml"))


def _path(name_or_path: str | Path) -> Path | None:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        return candidate
    shipped = MF_RECIPE_FOLDER / f"{name_or_path}.yaml"
    return shipped if shipped.is_file() else None


def is_mf_recipe(name_or_path: str | Path) -> bool:
    """True for a shipped multi-fidelity recipe's name, or a YAML file with a top-level
    ``multifidelity`` key (an unreadable file: False, the caller's loader reports it)."""
    path = _path(name_or_path)
    if path is None or not path.is_file():
        return False
    if path.parent == MF_RECIPE_FOLDER:
        return True
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "multifidelity" in data


def load_mf_recipe(name_or_path: str | Path) -> MFRecipe:
    """A shipped multi-fidelity recipe by name (``mf-poisson``) or a recipe YAML by path."""
    path = _path(name_or_path)
    if path is None:
        raise ConfigError(
            f"unknown multi-fidelity recipe {str(name_or_path)!r}; shipped: "
            f"{list_mf_recipes()} (or give the path of a recipe .yaml file)"
        )
    recipe = load_yaml(MFRecipe, path)
    if recipe.kind == "benchmark":
        recipe.benchmark_config()  # check the options now, not after the data are made
    return recipe
