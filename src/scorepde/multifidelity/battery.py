"""The battery, multi-fidelity and distributional (issue "Multi-fidelity generative learning",
benchmark 4): one conditional score model learns the *distribution* of the fields ``(c, phi)``
at given conditions ``(U0, l, F_right)`` from many coarse simulations and few fine ones.

Fidelity = the number of vertices ``N`` of the battery solver's grid (``BatteryParameters(
n_points=N)``, ``x_i = i L / (N - 1)``); by default 13, 25, 50 and 100. Every level's fields are
interpolated *linearly* to the finest grid (:func:`interpolation_matrix`: piecewise-linear
interpolation between the coarse vertices, exact for a linear profile, and both grids share
their end points, so the boundary values are kept), so all levels share the output shape
``(2, N_fine)``.

Three models are trained in one run, on the same network and for the same number of
optimiser steps (``epochs * samples_per_epoch / batch_size``):

* ``multifidelity``: all coarse levels plus ``fine_fraction`` (10 %) of the fine data, the
  fidelity given to the network as an integer label (``Conditioning(vector, labels)``; label
  ``i`` is ``fidelities[i]``), every level drawn equally often (``level_weights: balanced``)
  or in proportion to its size (``size``);
* ``fine_10``: the same fine fraction alone;
* ``fine_100``: all fine data alone.

The network and its data space follow ``battery-quick`` (see its YAML): a residual MLP with
adaptive-norm conditioning on the coefficients of the leading ``subspace_components``
principal directions of the fields after a condition-dependent standardisation
(``ConditionalNormaliser`` of degree ``normalisation_degree``), VP process with
``t_min = 1e-5``, EDM preconditioning, DPM-Solver++(2M) on the probability-flow ODE; ``U0`` is
pinned (the fields are declared invariant in it). Each model's normaliser is fitted on the
*fine* fields it trains on (``normaliser_data: fine``: ``multifidelity`` and ``fine_10`` then
share theirs, so the coarse data are the only difference between them), or its conditional
mean and scale on every level it trains on and its principal directions on the fine fields
(``all``); the coarse fields are mapped through it as they are (their discretisation error is
part of what the label tells the network).

Evaluation at the finest level: for each evaluation condition, ``n_samples`` fields of every
model against two fresh independent simulator sets at ``N_fine`` (``compare_sample_sets``:
mean error, std error, 95 % band coverage, energy ratio), beside the simulator-vs-simulator
floor. Data-generation time per fidelity (s per solution) and the cost of each training set
against an all-fine one are recorded too.

A run folder holds ``data/level_<N>.npz`` (the interpolated fields, conditions and generation
time per level), ``training/<model>/`` (the trainer's checkpoints), ``model/`` (the
multi-fidelity model: ``ConditionalModel`` export plus ``multifidelity.json``),
``baselines/fine_10/`` and ``baselines/fine_100/`` (the same for the baselines),
``results.json`` and ``report.md``. Every piece is written atomically and reused by a run with
``resume=True``.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scorepde.conditioning import Conditioning, ConditioningSpec
from scorepde.data.design import DESIGNS, design_conditions
from scorepde.data.normalisation import (
    ConditionalNormaliser,
    ConditionEncoder,
    SubspaceNormaliser,
)
from scorepde.evaluation.compare import compare_sample_sets
from scorepde.evaluation.evaluate import simulator_reference
from scorepde.fileio import atomic_path, atomic_write_text
from scorepde.nets.registry import BackboneConfig, complete_backbone
from scorepde.problems.battery import BatteryProblem
from scorepde.sampling.registry import SAMPLERS
from scorepde.training.conditional import PINNED_KEY, ConditionalModel, pin_conditions
from scorepde.training.config import TrainConfig
from scorepde.training.model_config import ModelConfig, build_score_model
from scorepde.training.sources import GroupedSource, TensorSource
from scorepde.training.trainer import Trainer

__all__ = [
    "DEFAULT_OPTIONS",
    "MODEL_NAMES",
    "BatteryMFModel",
    "interpolate_to_grid",
    "interpolation_matrix",
    "load_battery_mf",
    "resolve_options",
    "run_battery_mf",
]

#: The three models of a run: the multi-fidelity one and the two fine-only baselines.
MODEL_NAMES = ("multifidelity", "fine_10", "fine_100")

#: The options of ``run_battery_mf`` and their defaults (the ``mf-battery`` recipe's values
#: are in ``configs/multifidelity/mf-battery.yaml``, with the reasons).
DEFAULT_OPTIONS: dict[str, Any] = {
    "fidelities": [13, 25, 50, 100],
    "n_conditions": 400,
    "per_condition": 25,
    "fine_fraction": 0.1,
    "design": "sobol",
    "data_seed": 0,
    "level_weights": "balanced",
    "normaliser_data": "all",
    "subspace_components": 48,
    "normalisation_degree": 2,
    "hidden": 256,
    "depth": 4,
    "epochs": 200,
    "samples_per_epoch": 10000,
    "batch_size": 256,
    "learning_rate": 1.0e-3,
    "min_learning_rate": 1.0e-5,
    "ema_decay": 0.999,
    "seed": 0,
    "num_threads": 1,
    "device": "cpu",
    "sampler": "ode_dpm2m",
    "steps": 19,
    "evaluation_conditions": [[0.0, 0.1, 25.0], [0.0, 0.25, 25.0]],
    "drawn_conditions": 4,
    "n_samples": 1000,
    "evaluation_seed": 2024,
}

#: Noise process of every model (battery-quick's).
PROCESS = {"name": "vp", "beta_min": 0.1, "beta_max": 20.0, "t_min": 1.0e-5}
#: Name of the small description file beside an exported model.
DESCRIPTION_FILE = "multifidelity.json"
#: Seed-sequence key of the drawn evaluation conditions (apart from the training design).
_EVALUATION_DESIGN = 0xE7A1


#: Where progress lines go (None: nowhere).
Log = Callable[[str], None] | None


def _say(log: Log, message: str) -> None:
    if log is not None:
        log(message)


# ---------------------------------------------------------------------- options


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ValueError(f"multifidelity.{key} = {value!r} is not allowed; expected {allowed}")


def resolve_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` (the recipe's ``multifidelity:`` mapping without ``kind``) merged over
    :data:`DEFAULT_OPTIONS` and checked; an unknown key or a bad value is a ``ValueError``
    naming the key, the value and what is allowed."""
    if not isinstance(options, Mapping):
        raise ValueError(f"multifidelity options = {options!r}; expected a mapping")
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(
            f"multifidelity has unknown key(s) {unknown}; allowed: {sorted(DEFAULT_OPTIONS)}"
        )
    merged = {**copy.deepcopy(DEFAULT_OPTIONS), **copy.deepcopy(dict(options))}
    fidelities = merged["fidelities"]
    if (
        not isinstance(fidelities, Sequence)
        or isinstance(fidelities, str)
        or len(fidelities) < 2
        or not all(_is_int(f) and f >= 3 for f in fidelities)
        or list(fidelities) != sorted(set(fidelities))
    ):
        _fail("fidelities", fidelities, "at least two distinct grid sizes >= 3, increasing")
    merged["fidelities"] = [int(f) for f in fidelities]
    positive_ints = (
        "n_conditions",
        "per_condition",
        "subspace_components",
        "hidden",
        "depth",
        "epochs",
        "samples_per_epoch",
        "batch_size",
        "steps",
        "n_samples",
    )
    for key in positive_ints:
        if not _is_int(merged[key]) or merged[key] < 1:
            _fail(key, merged[key], "an integer >= 1")
    if merged["per_condition"] < 2:
        _fail("per_condition", merged["per_condition"], "an integer >= 2 (a spread per condition)")
    if merged["n_samples"] < 2:
        _fail("n_samples", merged["n_samples"], "an integer >= 2")
    for key in ("data_seed", "seed", "evaluation_seed", "drawn_conditions", "normalisation_degree"):
        if not _is_int(merged[key]) or merged[key] < 0:
            _fail(key, merged[key], "an integer >= 0")
    if not _is_int(merged["num_threads"]) or merged["num_threads"] < 1:
        _fail("num_threads", merged["num_threads"], "an integer >= 1")
    fraction = merged["fine_fraction"]
    if not _is_number(fraction) or not 0 < fraction < 1:
        _fail("fine_fraction", fraction, "a number in (0, 1)")
    fine_conditions = round(fraction * merged["n_conditions"])
    if fine_conditions < 2:
        _fail(
            "fine_fraction",
            fraction,
            f"a fraction that keeps >= 2 of the n_conditions = {merged['n_conditions']} fine "
            f"conditions (it keeps {fine_conditions})",
        )
    coefficients = math.comb(3 + merged["normalisation_degree"], 3)
    if fine_conditions < coefficients:
        _fail(
            "fine_fraction",
            fraction,
            f"a fraction that keeps at least {coefficients} fine conditions (the coefficients "
            f"of a degree-{merged['normalisation_degree']} normaliser in 3 conditions; it "
            f"keeps {fine_conditions} of n_conditions = {merged['n_conditions']})",
        )
    smallest = fine_conditions * merged["per_condition"]
    if merged["subspace_components"] > min(smallest, 2 * merged["fidelities"][-1]):
        _fail(
            "subspace_components",
            merged["subspace_components"],
            f"at most min(fields of the smallest training set = {smallest}, 2 * finest grid "
            f"= {2 * merged['fidelities'][-1]})",
        )
    for key in ("learning_rate", "min_learning_rate"):
        if not _is_number(merged[key]) or not merged[key] > 0:
            _fail(key, merged[key], "a number > 0")
    if not _is_number(merged["ema_decay"]) or not 0 <= merged["ema_decay"] < 1:
        _fail("ema_decay", merged["ema_decay"], "a number in [0, 1)")
    if merged["design"] not in DESIGNS:
        _fail("design", merged["design"], f"one of {list(DESIGNS)}")
    if merged["normaliser_data"] not in ("fine", "all"):
        _fail("normaliser_data", merged["normaliser_data"], "'fine' or 'all'")
    if merged["level_weights"] not in ("balanced", "size"):
        _fail("level_weights", merged["level_weights"], "'balanced' or 'size'")
    if merged["device"] not in ("cpu", "cuda", "auto"):
        _fail("device", merged["device"], "'cpu', 'cuda' or 'auto'")
    if merged["sampler"] not in SAMPLERS:
        _fail("sampler", merged["sampler"], f"one of {sorted(SAMPLERS)}")
    rows = merged["evaluation_conditions"]
    problem = BatteryProblem()
    width = len(problem.conditions)
    try:
        table = np.asarray(rows, dtype=float)
        if table.size == 0:
            table = table.reshape(0, width)
        if table.ndim != 2 or table.shape[1] != width:
            raise ValueError(f"shape {table.shape}, not (M, {width})")
        if len(table):
            problem.validate_conditions(table)
    except (TypeError, ValueError) as error:
        _fail(
            "evaluation_conditions",
            rows,
            f"a list of [U0, l, F_right] rows of physical values ({error})",
        )
    if len(table) + merged["drawn_conditions"] < 1:
        _fail("drawn_conditions", merged["drawn_conditions"], ">= 1 when no conditions are given")
    merged["evaluation_conditions"] = table.tolist()
    return merged


# ---------------------------------------------------------------------- grids and data


def interpolation_matrix(coarse: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """``(len(fine), len(coarse))`` matrix ``W`` of piecewise-linear interpolation: ``W @ u``
    is the linear interpolant of the values ``u`` on the increasing grid ``coarse`` evaluated
    at ``fine`` (same units, e.g. metres; ``fine`` inside ``[coarse[0], coarse[-1]]``). Each
    column is the interpolant of a unit vector (a hat function), so ``W`` reproduces linear
    profiles exactly and its rows sum to 1."""
    coarse = np.asarray(coarse, dtype=float)
    fine = np.asarray(fine, dtype=float)
    if coarse.ndim != 1 or len(coarse) < 2 or np.any(np.diff(coarse) <= 0):
        raise ValueError(f"coarse has shape {coarse.shape}; expected an increasing (M >= 2,) grid")
    if fine.ndim != 1 or fine.min() < coarse[0] or fine.max() > coarse[-1]:
        raise ValueError(
            f"fine spans [{fine.min()}, {fine.max()}]; expected a (N,) grid inside "
            f"[{coarse[0]}, {coarse[-1]}]"
        )
    eye = np.eye(len(coarse))
    return np.stack([np.interp(fine, coarse, eye[j]) for j in range(len(coarse))], axis=1)


def interpolate_to_grid(fields: np.ndarray, coarse: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """Fields ``(n, C, M)`` on the vertices ``coarse`` ``(M,)`` -> ``(n, C, N)`` on ``fine``
    ``(N,)`` by piecewise-linear interpolation (:func:`interpolation_matrix`); units kept."""
    fields = np.asarray(fields, dtype=float)
    if fields.ndim != 3 or fields.shape[-1] != len(coarse):
        raise ValueError(f"fields has shape {fields.shape}; expected (n, C, {len(coarse)})")
    return fields @ interpolation_matrix(coarse, fine).T


def _problem(n_points: int) -> BatteryProblem:
    return BatteryProblem(params={"n_points": int(n_points)})


def _pinned(problem: BatteryProblem) -> dict[str, float]:
    """The declared-invariant conditions at the middle of their range (U0 = 0 V)."""
    specs = {spec.name: spec for spec in problem.conditions}
    return {
        inv.condition: (specs[inv.condition].low + specs[inv.condition].high) / 2
        for inv in problem.invariances()
    }


def _simulate_level(options: dict[str, Any], n_points: int, n_conditions: int) -> dict[str, Any]:
    """The first ``n_conditions`` of the design at grid ``n_points``, ``per_condition`` fields
    each, interpolated to the finest grid. Condition ``i`` draws from
    ``SeedSequence([data_seed, n_points, i])``."""
    fine = _problem(options["fidelities"][-1])
    problem = _problem(n_points)
    conditions = design_conditions(
        problem.conditions, options["n_conditions"], options["data_seed"], options["design"]
    )[:n_conditions]
    rngs = [
        np.random.default_rng(np.random.SeedSequence([options["data_seed"], n_points, i]))
        for i in range(n_conditions)
    ]
    start = time.perf_counter()
    simulated = problem.simulate(conditions, options["per_condition"], rngs)
    seconds = time.perf_counter() - start
    fields = interpolate_to_grid(simulated["fields"], problem.grid, fine.grid)
    return {
        "fields": fields,
        "conditions": simulated["conditions"],
        "condition_index": np.repeat(np.arange(n_conditions), options["per_condition"]),
        "seconds": seconds,
    }


#: Options that fix the data files (the rest change only the models or the evaluation).
DATA_KEYS = ("fidelities", "n_conditions", "per_condition", "design", "data_seed")
#: Options that do not change a trained model (only how it is evaluated or run).
EVALUATION_KEYS = (
    "sampler",
    "steps",
    "evaluation_conditions",
    "drawn_conditions",
    "n_samples",
    "evaluation_seed",
    "num_threads",
)


def _data_key(options: Mapping[str, Any], n_points: int) -> str:
    return json.dumps({"n_points": n_points, **{k: options[k] for k in DATA_KEYS}})


def _model_key(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in EVALUATION_KEYS}


def _load_or_simulate(
    path: Path, options: dict[str, Any], n_points: int, n_conditions: int, resume: bool, log: Log
) -> dict[str, Any]:
    """The level's data from ``path`` when it was made with the same data options (and
    ``resume``), else simulated and written atomically."""
    key = _data_key(options, n_points)
    if resume and path.is_file():
        with np.load(path) as stored:
            data = {name: stored[name] for name in stored.files}
        if str(data.get("key")) == key:
            _say(log, f"reusing {path}")
            data["seconds"] = float(data["seconds"])
            return data
        _say(log, f"{path} was made with other data options: simulating it again")
    data = _simulate_level(options, n_points, n_conditions)
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, key=np.array(key), **data)
    _say(
        log, f"simulated {len(data['fields'])} fields at N = {n_points} in {data['seconds']:.2f} s"
    )
    return data


# ---------------------------------------------------------------------- models


@dataclass
class _Level:
    fidelity: int
    fields: np.ndarray  # (n, 2, N_fine) physical
    conditions: np.ndarray  # (n, 3) physical
    groups: np.ndarray  # (n,)


def _encode(
    encoder: ConditionEncoder,
    pinned: dict[str, float],
    names: Sequence[str],
    conditions: np.ndarray,
) -> np.ndarray:
    return np.asarray(encoder.encode(pin_conditions(conditions, list(names), pinned)))


def _train_model(
    name: str,
    levels: list[_Level],
    options: dict[str, Any],
    out: Path,
    folder: Path,
    *,
    resume: bool,
    progress: bool,
    log: Log,
) -> tuple[ConditionalModel, float]:
    """Fit the normaliser on the finest level of ``levels``, train, export to ``folder``;
    returns the model and the training wall time (s)."""
    fidelities = options["fidelities"]
    problem = _problem(fidelities[-1])
    names = problem.condition_names
    pinned = _pinned(problem)
    encoder = ConditionEncoder.from_specs(problem.conditions)
    finest = levels[-1]
    if finest.fidelity != fidelities[-1]:
        raise ValueError(f"model {name}: its last level must be the finest, {fidelities[-1]}")
    encoded_fine = _encode(encoder, pinned, names, finest.conditions)
    base = ConditionalNormaliser(degree=options["normalisation_degree"], channels=problem.channels)
    if options["normaliser_data"] == "all" and len(levels) > 1:
        # the condition-dependent mean and scale from every level (each level's design points
        # are their own groups); the principal directions from the fine fields alone
        offsets = np.cumsum([0, *(int(level.groups.max()) + 1 for level in levels[:-1])])
        base.fit(
            np.concatenate([level.fields for level in levels]),
            np.concatenate([_encode(encoder, pinned, names, lv.conditions) for lv in levels]),
            np.concatenate([lv.groups + off for lv, off in zip(levels, offsets, strict=True)]),
        )
    normaliser = SubspaceNormaliser(base, options["subspace_components"]).fit(
        finest.fields, encoded_fine, finest.groups
    )
    label_of = {f: i for i, f in enumerate(fidelities)}
    groups = []
    for level in levels:
        encoded = _encode(encoder, pinned, names, level.conditions)
        x = torch.from_numpy(np.asarray(normaliser.transform(level.fields, encoded))).float()
        cond = Conditioning(
            vector=torch.from_numpy(encoded).float(),
            labels=torch.full((len(x),), label_of[level.fidelity], dtype=torch.int64),
        )
        groups.append(TensorSource(x, cond, name=f"N{level.fidelity}"))
    sizes = [len(g) for g in groups]
    weights = [1.0] * len(groups) if options["level_weights"] == "balanced" else sizes
    source = GroupedSource(groups, weights, samples_per_epoch=options["samples_per_epoch"])
    spec = ConditioningSpec(vector_dim=len(names), n_labels=len(fidelities))
    sample_shape = (1, options["subspace_components"])
    backbone = complete_backbone(
        BackboneConfig(
            name="mlp", options={"hidden": options["hidden"], "depth": options["depth"]}
        ),
        sample_shape,
        spec,
    )
    model_config = ModelConfig(
        backbone=backbone, process=dict(PROCESS), sigma_data=1.0, parametrisation="edm"
    )
    train_config = TrainConfig(
        epochs=options["epochs"],
        batch_size=options["batch_size"],
        learning_rate=float(options["learning_rate"]),
        min_learning_rate=float(options["min_learning_rate"]),
        grad_clip=1.0,
        ema_decay=float(options["ema_decay"]),
        checkpoint_every=max(1, options["epochs"] // 4),
        keep_checkpoints=1,
        seed=options["seed"],
        device=options["device"],
        precision="fp32",
        compile="off",
        num_threads=options["num_threads"],
        val_every=options["epochs"],
        plot=False,
    )
    trained = [level.fidelity for level in levels]
    metadata = {
        "problem": problem.name,
        "condition_names": list(names),
        "channel_names": list(problem.channels),
        "sample_shape": list(sample_shape),
        PINNED_KEY: pinned,
        "multifidelity_model": name,
        "trained_fidelities": trained,
        "recipe_config": {"sampling": {"sampler": options["sampler"], "steps": options["steps"]}},
    }
    torch.manual_seed(options["seed"])
    score_model = build_score_model(model_config)
    trainer = Trainer(
        score_model,
        train_config,
        out / "training" / name,
        metadata=metadata,
        normaliser=normaliser,
        condition_encoder=encoder,
    )
    _say(log, f"training {name} on levels {trained} (sizes {sizes}, weights {weights})")
    start = time.perf_counter()
    trainer.fit(source=source, resume=resume, progress=progress)
    seconds = time.perf_counter() - start
    model = ConditionalModel(
        copy.deepcopy(trainer.averaged_model()).to("cpu").eval(),
        model_config,
        sample_shape=sample_shape,
        x_transform=normaliser,
        condition_transform=encoder,
        field_spec=problem.field_spec,
        conditioning_spec=spec,
        problem_name=problem.name,
        channel_names=list(problem.channels),
        condition_names=list(names),
        metadata={k: v for k, v in metadata.items() if k not in ("sample_shape",)},
    )
    model.save(folder)
    description = {
        "kind": "battery",
        "model": name,
        "fidelities": trained,
        "label_fidelities": list(fidelities),
        "condition_names": list(names),
        "channel_names": list(problem.channels),
        "output_shape": [len(problem.channels), fidelities[-1]],
        "interpolation": "piecewise linear to the finest vertex grid",
        "sampler": options["sampler"],
        "steps": options["steps"],
        "train_seconds": seconds,
        "training_fields": sizes,
        "options": _model_key(options),
    }
    atomic_write_text(folder / DESCRIPTION_FILE, json.dumps(description, indent=2) + "\n")
    _say(log, f"{name} trained in {seconds:.0f} s, exported to {folder}")
    return model, seconds


# ---------------------------------------------------------------------- loading, sampling


class BatteryMFModel:
    """A trained battery model of a multi-fidelity run (the multi-fidelity model or a
    baseline), sampling fields at a trained fidelity.

    Attributes:
        model: the :class:`ConditionalModel` (network space: subspace coefficients).
        fidelities: the grid sizes it was trained on. condition_names: ``(U0, l, F_right)``.
        label_fidelities: the fidelity of each label (label ``i`` is ``label_fidelities[i]``).
        description: the contents of ``multifidelity.json``.
    """

    def __init__(self, model: ConditionalModel, description: Mapping[str, Any]) -> None:
        self.model = model
        self.description = dict(description)
        self.fidelities: tuple[int, ...] = tuple(int(f) for f in description["fidelities"])
        self.label_fidelities: tuple[int, ...] = tuple(
            int(f) for f in description["label_fidelities"]
        )
        self.condition_names: tuple[str, ...] = tuple(description["condition_names"])

    def __repr__(self) -> str:
        return (
            f"BatteryMFModel(model={self.description.get('model')!r}, "
            f"fidelities={self.fidelities}, conditions={self.condition_names})"
        )

    def sample(
        self,
        values: Sequence[float],
        n: int,
        fidelity: int,
        *,
        seed: int = 0,
        sampler: str | None = None,
        steps: int | None = None,
        device: str = "cpu",
    ) -> np.ndarray:
        """``n`` fields ``(n, 2, N_fine)`` (``c`` mol/m^3, ``phi`` V) at the physical
        conditions ``values = (U0, l, F_right)`` for the trained ``fidelity`` (interpolated
        to the finest grid when coarser). seed: sample ``i`` uses the noise stream
        ``(seed, i)``. sampler / steps: None uses the run's (``multifidelity.json``). device:
        ``"cpu"``, ``"cuda"`` or ``"auto"``."""
        if _is_number(fidelity) and float(fidelity) in self.fidelities:
            fidelity = int(fidelity)  # 100 or 100.0
        else:
            raise ValueError(
                f"fidelity = {fidelity!r} was not trained by this model; trained fidelities: "
                f"{list(self.fidelities)}"
            )
        row = np.asarray(values, dtype=float)
        if row.shape != (len(self.condition_names),):
            raise ValueError(
                f"values has shape {row.shape}; expected ({len(self.condition_names)},): "
                f"{list(self.condition_names)}"
            )
        if not _is_int(n) or n < 1:
            raise ValueError(f"n = {n!r} is not allowed; expected an integer >= 1")
        if sampler is None:
            sampler = str(self.description["sampler"])
            steps = int(self.description["steps"]) if steps is None else steps
        vector = self.model.encode_conditions(row, int(n))
        assert isinstance(vector, torch.Tensor)
        label = self.label_fidelities.index(fidelity)
        cond = Conditioning(vector=vector, labels=torch.full((int(n),), label, dtype=torch.int64))
        samples = self.model.sample_conditioned(
            cond, int(n), sampler=sampler, steps=steps, seed=seed, device=device
        )
        return np.asarray(self.model.to_physical(samples, cond))


def load_battery_mf(path: Path) -> BatteryMFModel:
    """A :class:`BatteryMFModel` from a model folder (holding ``multifidelity.json``) or a run
    folder (its ``model/``, the multi-fidelity model)."""
    path = Path(path)
    if not (path / DESCRIPTION_FILE).is_file() and (path / "model" / DESCRIPTION_FILE).is_file():
        path = path / "model"
    description_path = path / DESCRIPTION_FILE
    if not description_path.is_file():
        raise FileNotFoundError(
            f"{path} holds no {DESCRIPTION_FILE}; expected a multi-fidelity battery model "
            "folder or a run folder of run_battery_mf"
        )
    description = json.loads(description_path.read_text(encoding="utf-8"))
    if description.get("kind") != "battery":
        raise ValueError(
            f"{description_path} has kind {description.get('kind')!r}; expected 'battery'"
        )
    return BatteryMFModel(ConditionalModel.load(path), description)


# ---------------------------------------------------------------------- evaluation


def _evaluation_conditions(options: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    problem = _problem(options["fidelities"][-1])
    rows = [np.asarray(r, dtype=float) for r in options["evaluation_conditions"]]
    labels = ["fixed"] * len(rows)
    if options["drawn_conditions"]:
        seed = np.random.SeedSequence([options["evaluation_seed"], _EVALUATION_DESIGN])
        drawn = design_conditions(problem.conditions, options["drawn_conditions"], seed, "lhs")
        rows.extend(drawn)
        labels.extend(["drawn"] * len(drawn))
    return np.stack(rows), labels


def _measures(comparison: Mapping[str, Any], key: str) -> dict[str, Any]:
    part = comparison[key]
    out = {m: [float(v) for v in part[m]] for m in ("mean_error", "std_error", "coverage")}
    if key == "metrics":
        out["energy_ratio"] = float(comparison["joint"]["energy_ratio"])
    return out


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and worst over the conditions, per measure and channel."""
    out: dict[str, Any] = {}
    for measure in ("mean_error", "std_error", "coverage"):
        values = np.asarray([r[measure] for r in rows], dtype=float)  # (M, C)
        worst = values.min(axis=0) if measure == "coverage" else values.max(axis=0)
        out[measure] = {"mean": values.mean(axis=0).tolist(), "worst": worst.tolist()}
    if "energy_ratio" in rows[0]:
        ratios = np.asarray([r["energy_ratio"] for r in rows], dtype=float)
        out["energy_ratio"] = {"mean": float(ratios.mean()), "worst": float(ratios.max())}
    return out


def _evaluate(
    models: Mapping[str, BatteryMFModel], options: dict[str, Any], log: Log
) -> dict[str, Any]:
    """Every model at the finest fidelity, and the multi-fidelity model asked for each of its
    coarser levels too (``coarse_labels``), against the same two fresh simulator sets at the
    finest grid per condition."""
    problem = _problem(options["fidelities"][-1])
    fine = options["fidelities"][-1]
    conditions, labels = _evaluation_conditions(options)
    n = options["n_samples"]
    runs = [(name, model, fine) for name, model in models.items()]
    runs += [
        (f"multifidelity@{f}", models["multifidelity"], f)
        for f in models["multifidelity"].fidelities[:-1]
    ]
    per_run: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in runs}
    floor_rows: list[dict[str, Any]] = []
    sample_seconds = dict.fromkeys(per_run, 0.0)
    for index, row in enumerate(conditions):
        seed = options["evaluation_seed"]
        sim_a = simulator_reference(problem, row, n, seed=seed, index=index, stream=0)
        sim_b = simulator_reference(problem, row, n, seed=seed, index=index, stream=1)
        condition = dict(zip(problem.condition_names, map(float, row), strict=True))
        for name, model, fidelity in runs:
            start = time.perf_counter()
            fields = model.sample(row, n, fidelity, seed=options["seed"], device=options["device"])
            sample_seconds[name] += time.perf_counter() - start
            comparison = compare_sample_sets(
                fields,
                sim_a,
                sim_b,
                spec=problem.field_spec,
                mean_error_norm=problem.mean_error_norm,
            )
            per_run[name].append(
                {"condition": condition, "label": labels[index], **_measures(comparison, "metrics")}
            )
            if name == runs[0][0]:
                floor_rows.append(
                    {
                        "condition": condition,
                        "label": labels[index],
                        **_measures(comparison, "floor"),
                    }
                )
        _say(log, f"evaluated condition {index + 1}/{len(conditions)} {condition}")

    def record(name: str) -> dict[str, Any]:
        rows = per_run[name]
        return {
            "conditions": rows,
            "summary": _summary(rows),
            "sample_seconds_per_field": sample_seconds[name] / (n * len(conditions)),
        }

    return {
        "conditions": conditions.tolist(),
        "labels": labels,
        "models": {name: record(name) for name in models},
        "coarse_labels": {name: record(name) for name, _, _ in runs[len(models) :]},
        "floor": {"conditions": floor_rows, "summary": _summary(floor_rows)},
    }


# ---------------------------------------------------------------------- report

_LABELS = {
    "multifidelity": "multi-fidelity (all coarse + {pct} fine)",
    "fine_10": "fine only, {pct}",
    "fine_100": "fine only, 100 %",
    "floor": "simulator vs simulator (floor)",
}


def _row(label: str, summary: Mapping[str, Any], what: str) -> str:
    cells = [label]
    for measure in ("mean_error", "std_error", "coverage"):
        cells.extend(f"{v:.3f}" for v in summary[measure][what])
    ratio = summary.get("energy_ratio")
    cells.append("1 (ref.)" if ratio is None else f"{ratio[what]:.2f}")
    return "| " + " | ".join(cells) + " |"


def _format_report(results: Mapping[str, Any]) -> str:
    options = results["options"]
    pct = f"{100 * options['fine_fraction']:g} %"
    evaluation = results["evaluation"]
    header = (
        "| model | mean err c | mean err phi | std err c | std err phi | coverage c | "
        "coverage phi | energy ratio |\n|---|---|---|---|---|---|---|---|"
    )
    lines = [
        f"# Multi-fidelity battery: run {results['name']}",
        "",
        f"Fidelities (grid points) {options['fidelities']}; coarse levels interpolated linearly "
        f"to N = {options['fidelities'][-1]}. Evaluated at N = {options['fidelities'][-1]} on "
        f"{len(evaluation['conditions'])} conditions, n = {options['n_samples']} samples each, "
        f"against fresh simulator samples. Mean error: max over x of the mean's error over the "
        "largest spread; std error: relative L2; coverage: of the 95 % band (nominal 0.95); "
        "energy ratio: joint energy distance over the floor (about 1 for a right model).",
        "",
        "## Mean over the conditions",
        "",
        header,
    ]
    for what, title in (("mean", None), ("worst", "## Worst condition (coverage: lowest)")):
        if title:
            lines += ["", title, "", header]
        for name in MODEL_NAMES:
            summary = evaluation["models"][name]["summary"]
            lines.append(_row(_LABELS[name].format(pct=pct), summary, what))
        lines.append(_row(_LABELS["floor"], evaluation["floor"]["summary"], what))
    lines += [
        "",
        f"## The multi-fidelity model asked for its coarser levels, against N = "
        f"{options['fidelities'][-1]} simulations (mean over the conditions)",
        "",
        header,
    ]
    for name, record in evaluation["coarse_labels"].items():
        label = f"multi-fidelity, label N = {name.split('@')[1]}"
        lines.append(_row(label, record["summary"], "mean"))
    lines += ["", "## Per condition: energy ratio", ""]
    names = ["condition", *MODEL_NAMES]
    lines += ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for index, condition in enumerate(evaluation["conditions"]):
        cells = [f"{evaluation['labels'][index]} {[round(v, 4) for v in condition]}"]
        cells += [
            f"{evaluation['models'][n]['conditions'][index]['energy_ratio']:.2f}"
            for n in MODEL_NAMES
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Data and training",
        "",
        "| fidelity N | fields | generation s | s per solution |",
        "|---|---|---|---|",
    ]
    for fidelity, record in results["data"].items():
        lines.append(
            f"| {fidelity} | {record['fields']} | {record['seconds']:.3f} | "
            f"{record['seconds_per_solution']:.2e} |"
        )
    cost = results["training_set_cost"]
    lines += [
        "",
        "Cost of each training set (generation seconds at the measured s per solution):",
        "",
        "| training set | fields | generation s | relative to all-fine |",
        "|---|---|---|---|",
    ]
    for name, record in cost.items():
        lines.append(
            f"| {name} | {record['fields']} | {record['seconds']:.3f} | "
            f"{record['relative_to_all_fine']:.3f} |"
        )
    lines += [
        "",
        "| model | training s | optimiser steps | sampling s per field |",
        "|---|---|---|---|",
    ]
    for name in MODEL_NAMES:
        lines.append(
            f"| {name} | {results['training_seconds'][name]:.0f} | {results['optimiser_steps']} | "
            f"{evaluation['models'][name]['sample_seconds_per_field']:.2e} |"
        )
    lines += ["", f"Wall time of this call: {results['wall_seconds']:.0f} s.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------- the run


def run_battery_mf(
    options: Mapping[str, Any],
    out: Path,
    *,
    name: str,
    resume: bool = True,
    progress: bool = True,
    log: Log = print,
) -> Path:
    """Run the multi-fidelity battery experiment in the run folder ``out`` (see the module
    docstring); returns the path of ``out/report.md`` (``out/results.json`` beside it).

    options: the recipe's ``multifidelity:`` mapping without ``kind`` (keys and defaults:
    :data:`DEFAULT_OPTIONS`; :func:`resolve_options` checks them). name: the run's name (in
    the report). resume: reuse the data files and exported models already in ``out``.
    progress: the trainers' progress bars. log: where progress lines go (None: nowhere).
    """
    resolved = resolve_options(options)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(resolved["num_threads"])
    start = time.perf_counter()
    fidelities = resolved["fidelities"]
    fine = fidelities[-1]
    n_all = resolved["n_conditions"]
    n_fine_part = round(resolved["fine_fraction"] * n_all)
    per = resolved["per_condition"]

    data = {
        f: _load_or_simulate(out / "data" / f"level_{f}.npz", resolved, f, n_all, resume, log)
        for f in fidelities
    }

    def level(fidelity: int, conditions: int) -> _Level:
        rows = conditions * per
        record = data[fidelity]
        return _Level(
            fidelity,
            record["fields"][:rows],
            record["conditions"][:rows],
            record["condition_index"][:rows],
        )

    plans = {
        "multifidelity": [*(level(f, n_all) for f in fidelities[:-1]), level(fine, n_fine_part)],
        "fine_10": [level(fine, n_fine_part)],
        "fine_100": [level(fine, n_all)],
    }
    folders = {
        "multifidelity": out / "model",
        "fine_10": out / "baselines" / "fine_10",
        "fine_100": out / "baselines" / "fine_100",
    }
    models: dict[str, BatteryMFModel] = {}
    train_seconds: dict[str, float] = {}
    for model_name in MODEL_NAMES:
        folder = folders[model_name]
        if resume and (folder / DESCRIPTION_FILE).is_file():
            stored = load_battery_mf(folder)
            if stored.description.get("options") == _model_key(resolved):
                models[model_name] = stored
                train_seconds[model_name] = float(stored.description["train_seconds"])
                _say(log, f"reusing trained model {model_name} in {folder}")
                continue
            _say(log, f"{folder} was trained with other options: training {model_name} again")
            (folder / DESCRIPTION_FILE).unlink()
            shutil.rmtree(out / "training" / model_name, ignore_errors=True)
        _train_model(
            model_name,
            plans[model_name],
            resolved,
            out,
            folder,
            resume=resume,
            progress=progress,
            log=log,
        )
        models[model_name] = load_battery_mf(folder)
        train_seconds[model_name] = float(models[model_name].description["train_seconds"])

    evaluation = _evaluate(models, resolved, log)

    per_solution = {f: data[f]["seconds"] / (n_all * per) for f in fidelities}
    data_record = {
        str(f): {
            "fields": n_all * per,
            "conditions": n_all,
            "seconds": float(data[f]["seconds"]),
            "seconds_per_solution": float(per_solution[f]),
        }
        for f in fidelities
    }
    all_fine = n_all * per * per_solution[fine]

    def cost(counts: Mapping[int, int]) -> dict[str, Any]:
        seconds = sum(per_solution[f] * c for f, c in counts.items())
        return {
            "fields": int(sum(counts.values())),
            "seconds": float(seconds),
            "relative_to_all_fine": float(seconds / all_fine) if all_fine > 0 else math.nan,
        }

    costs = {
        "multifidelity": cost(
            {**{f: n_all * per for f in fidelities[:-1]}, fine: n_fine_part * per}
        ),
        "fine_10": cost({fine: n_fine_part * per}),
        "fine_100": cost({fine: n_all * per}),
    }
    results = {
        "name": name,
        "kind": "battery",
        "options": resolved,
        "data": data_record,
        "training_set_cost": costs,
        "training_seconds": train_seconds,
        "optimiser_steps": resolved["epochs"]
        * math.ceil(resolved["samples_per_epoch"] / resolved["batch_size"]),
        "evaluation": evaluation,
        "wall_seconds": time.perf_counter() - start,
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    report = out / "report.md"
    atomic_write_text(report, _format_report(results))
    _say(log, f"report: {report}")
    return report
