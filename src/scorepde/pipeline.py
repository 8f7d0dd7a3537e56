"""The Python API: simulate -> train -> sample -> evaluate, the same steps as the CLI.

In a notebook::

    from scorepde import pipeline
    from scorepde.recipes import load_recipe

    recipe = load_recipe("battery-quick")
    report = pipeline.run(recipe, "runs/quick")          # everything, resumable
    model = pipeline.load_model("runs/quick/model")
    fields = model.sample([0.0, 0.1, 25.0], n=1000, seed=0)   # (1000, 2, 100): c, phi

A run folder holds ``recipe.yaml``, ``data/{train,test}.h5``, ``training/`` (history,
checkpoints), ``model/`` (the exported model) and ``evaluation/`` (report.json, report.md,
figures). Every step skips work already done, so an interrupted ``run`` continues.

Under ``torchrun`` (see ``docs/training.md``) every process calls the same functions: rank 0
simulates missing data, logs, exports and evaluates, the others wait for it where they need
its files and take part in training only.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scorepde.conditioning import ConditioningSpec
from scorepde.configuration import ConfigError, save_yaml
from scorepde.data.campaign import SimulationConfig, problem_from_config, simulate_campaign
from scorepde.data.datasets import split_by_condition, to_training_tensors
from scorepde.data.design import draw_conditions
from scorepde.data.normalisation import (
    ConditionalNormaliser,
    ConditionEncoder,
    FieldNormaliser,
    Normaliser,
    SubspaceNormaliser,
)
from scorepde.data.schema import FieldDataset, group_by_condition, read_dataset
from scorepde.evaluation.compare import targets_from_config
from scorepde.evaluation.evaluate import evaluate_conditions
from scorepde.evaluation.grid import design_grid, evaluate_grid, grid_summary, plot_grid_heatmaps
from scorepde.evaluation.report import format_table, write_report
from scorepde.fields import FieldSpec
from scorepde.nets.registry import BACKBONES, complete_backbone
from scorepde.problems.base import Problem
from scorepde.recipes import EvaluationConfig, Recipe, SamplingConfig
from scorepde.training import distributed
from scorepde.training.checkpoint import save_trained_model
from scorepde.training.conditional import (
    PINNED_KEY,
    TrainedModel,
    load_trained_model,
    pin_conditions,
)
from scorepde.training.model_config import build_score_model
from scorepde.training.solution_map import (
    SOLUTION_MAP_FOLDER,
    StagedModel,
    fit_solution_map,
    split_channels,
)
from scorepde.training.sources import BatchSource, StreamingSource, TensorSource
from scorepde.training.trainer import Trainer, TrainingResult

Log = Callable[[str], None] | None
#: What a forward model folder loads as: one conditional model, or a two-stage model.
Model = TrainedModel | StagedModel


def _say(log: Log, message: str) -> None:
    if log is not None:
        log(message)


def simulate(
    config: SimulationConfig, out: str | Path, *, overwrite: bool = False, progress: bool = True
) -> Path:
    """Run (or resume) one simulation campaign into an HDF5 file; returns its path.

    Under torchrun rank 0 simulates and the other ranks wait until the file is complete.
    """
    context = distributed.setup()
    path = Path(out)
    if context.is_main:
        path = simulate_campaign(config, path, overwrite=overwrite, progress=progress)
    context.barrier()
    return path


def conditioning_spec(problem: Problem) -> ConditioningSpec:
    """What a forward model of ``problem`` is conditioned on: its vector of conditions."""
    return ConditioningSpec(vector_dim=len(problem.conditions))


def complete_recipe(recipe: Recipe) -> Recipe:
    """A copy of ``recipe`` whose backbone options are completed from the data: the sizes that
    follow from the model's sample shape and the conditioning are filled in where the recipe
    leaves them out, and a contradicting option is an error naming it (each backbone declares
    what it derives: ``options_from_spec``). The caller's recipe is not changed."""
    recipe = copy.deepcopy(recipe)
    problem = problem_from_config(recipe.data.train)
    if recipe.solution_map is not None:
        split_channels(problem)  # a clear error now, before any simulation or training
    shape = model_sample_shape(recipe, problem)
    backbone = recipe.model.backbone
    if recipe.data.subspace_components is not None and getattr(
        BACKBONES.get(backbone.name), "uses_grid", False
    ):
        raise ValueError(
            f"data.subspace_components = {recipe.data.subspace_components} needs a vector "
            f"backbone: the model learns subspace coefficients, which have no grid, and "
            f"model.backbone.name = {backbone.name!r} works along a grid (use mlp, or "
            "subspace_components: null)"
        )
    try:
        recipe.model.backbone = complete_backbone(backbone, shape, conditioning_spec(problem))
    except ConfigError as error:
        raise ValueError(f"model.backbone.options: {error}") from error
    return recipe


def fit_normaliser(
    recipe: Recipe, problem: Problem, dataset: FieldDataset, encoder: ConditionEncoder
) -> Normaliser:
    """The recipe's normaliser fitted on ``dataset`` (the training part only, with the
    channels the model learns: :func:`model_channels`)."""
    encoded = encoder.encode(dataset.conditions)
    base: FieldNormaliser | ConditionalNormaliser
    if recipe.data.normalisation == "global":
        base = FieldNormaliser(channels=dataset.channels).fit(dataset.fields)
    else:
        base = ConditionalNormaliser(
            degree=recipe.data.normalisation_degree, channels=dataset.channels
        ).fit(dataset.fields, encoded, dataset.condition_index)
    if recipe.data.subspace_components is None:
        return base
    return SubspaceNormaliser(
        base,
        recipe.data.subspace_components,
        whiten=recipe.data.subspace_whiten,
        whiten_degree=recipe.data.subspace_whiten_degree,
        whiten_scale_fit=recipe.data.subspace_whiten_fit,
    ).fit(dataset.fields, encoded, dataset.condition_index)


def model_channels(recipe: Recipe, problem: Problem) -> list[int]:
    """Indices of the channels the score model learns: every channel, or with a
    ``solution_map`` (a two-stage model) the problem's input channels only."""
    if recipe.solution_map is None:
        return list(range(len(problem.channels)))
    return split_channels(problem)[0]


def model_part(recipe: Recipe, problem: Problem, dataset: FieldDataset) -> FieldDataset:
    """``dataset`` with the channels the score model learns (:func:`model_channels`)."""
    index = model_channels(recipe, problem)
    if len(index) == len(dataset.channels):
        return dataset
    return dataclasses.replace(
        dataset,
        fields=dataset.fields[:, index],
        channels=tuple(dataset.channels[i] for i in index),
        channel_units=tuple(dataset.channel_units[i] for i in index),
    )


def model_field_spec(recipe: Recipe, problem: Problem) -> FieldSpec:
    """The field specification of what the score model learns (:func:`model_channels`)."""
    index = model_channels(recipe, problem)
    spec = problem.field_spec
    return dataclasses.replace(
        spec,
        channels=tuple(spec.channels[i] for i in index),
        channel_units=tuple(spec.channel_units[i] for i in index),
    )


def model_sample_shape(recipe: Recipe, problem: Problem) -> list[int]:
    """Shape of one sample in the model's space: ``[C, *S]`` (``C`` the channels it learns),
    or ``[1, K]`` with a subspace."""
    if recipe.data.subspace_components is not None:
        return [1, recipe.data.subspace_components]
    return [len(model_channels(recipe, problem)), *problem.grid_shape]


def design_draw(problem: Problem, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` conditions ``(n, k)`` drawn independently over the design ranges: uniform, or
    log-uniform for log-scale conditions."""
    columns = []
    for spec in problem.conditions:
        u = rng.random(n)
        if spec.log_scale:
            columns.append(np.exp(np.log(spec.low) + u * (np.log(spec.high) - np.log(spec.low))))
        else:
            columns.append(spec.low + u * (spec.high - spec.low))
    return np.stack(columns, axis=1)


def pinned_conditions(recipe: Recipe, problem: Problem) -> dict[str, float]:
    """The conditions a model of ``recipe`` does not see, ``{name: value}``: with
    ``data.invariant_conditions: declared`` every condition ``problem.invariances()`` names,
    at the middle of its design range (geometric middle for a log-scale condition); else
    none."""
    if recipe.data.invariant_conditions != "declared":
        return {}
    specs = {spec.name: spec for spec in problem.conditions}
    pinned: dict[str, float] = {}
    for invariance in problem.invariances():
        spec = specs[invariance.condition]
        middle = (
            float(np.sqrt(spec.low * spec.high)) if spec.log_scale else (spec.low + spec.high) / 2
        )
        pinned[spec.name] = middle
    return pinned


def _pinned_dataset(dataset: FieldDataset, pinned: dict[str, float]) -> FieldDataset:
    if not pinned:
        return dataset
    return dataclasses.replace(
        dataset, conditions=pin_conditions(dataset.conditions, dataset.condition_names, pinned)
    )


#: Seed-sequence key of the draw the normaliser is fitted on (``data.normaliser_data: stream``).
NORMALISER_STREAM = 0x4E0


def _stream_conditions(recipe: Recipe, problem: Problem, m: int, rng: np.random.Generator):
    if recipe.data.stream_design == "uniform":
        return design_draw(problem, m, rng)
    return draw_conditions(
        problem.conditions,
        m,
        rng,
        recipe.data.stream_design,
        edge_mass=recipe.data.stream_edge_mass,
        width=recipe.data.stream_edge_width,
    )


def stream_fit_dataset(recipe: Recipe, problem: Problem, like: FieldDataset) -> FieldDataset:
    """Fields to fit the normaliser on with ``data.normaliser_data: stream`` (the channels the
    model learns, :func:`model_channels`): as many conditions as ``like`` holds, drawn from
    the stream's design, and as many fields per condition (``len(like) // conditions``), from
    the generator
    ``SeedSequence([training.seed, NORMALISER_STREAM])``."""
    m = len(group_by_condition(like))
    per = max(1, len(like.fields) // m)
    rng = np.random.default_rng(np.random.SeedSequence([recipe.training.seed, NORMALISER_STREAM]))
    conditions = _stream_conditions(recipe, problem, m, rng)
    simulated = problem.simulate(conditions, per, rng.spawn(m))
    return dataclasses.replace(
        like,
        fields=simulated["fields"][:, model_channels(recipe, problem)],
        latent=simulated["latent"],
        conditions=simulated["conditions"],
        condition_index=np.repeat(np.arange(m, dtype=np.int64), per),
    )


def streaming_source(
    recipe: Recipe,
    problem: Problem,
    normaliser: Normaliser,
    encoder: ConditionEncoder,
    samples_per_epoch: int,
) -> StreamingSource:
    """Fresh simulations for every batch (``data.source: stream``): ``ceil(n / per)``
    conditions from :func:`design_draw` (``data.stream_design: edges``:
    ``scorepde.data.design.draw_conditions`` with extra mass at the ends of every range),
    ``per = data.stream_per_condition`` fields each, all drawn from the batch's generator,
    normalised like the training file (conditions the recipe pins, :func:`pinned_conditions`,
    are pinned before encoding)."""
    per = recipe.data.stream_per_condition
    pinned = pinned_conditions(recipe, problem)
    channels = model_channels(recipe, problem)

    def draw(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        m = -(-n // per)
        conditions = _stream_conditions(recipe, problem, m, rng)
        rngs = rng.spawn(m)
        fields = problem.simulate(conditions, per, rngs)
        seen = fields["conditions"][:n]
        if pinned:
            seen = pin_conditions(seen, problem.condition_names, pinned)
        encoded = encoder.encode(seen)
        x = np.asarray(
            normaliser.transform(fields["fields"][:n, channels], encoded), dtype=np.float32
        )
        return x, encoded

    return StreamingSource(draw, samples_per_epoch, seed=recipe.training.seed)


def train(
    recipe: Recipe,
    data: str | Path,
    run_dir: str | Path,
    *,
    resume: bool = True,
    progress: bool = True,
    log: Log = print,
) -> tuple[Model, TrainingResult]:
    """Train the recipe's model on an HDF5 data set; export it to ``run_dir/model``.

    With a ``solution_map`` (a two-stage model) the score model learns the problem's input
    channels and the map (``scorepde.training.solution_map``, checkpoints in
    ``run_dir/training/solution_map``) their solution, exported to ``model/solution_map``;
    the returned model samples every channel either way.
    Whole design points (``recipe.data.validation_fraction`` of them) are held out for the
    validation loss. The normaliser is fitted on the training part only. Under torchrun every
    rank trains (data-parallel); rank 0 logs and exports the model.
    """
    context = distributed.setup()
    if not context.is_main:
        log = None
    run_dir = Path(run_dir)
    recipe = complete_recipe(recipe)
    dataset = read_dataset(data)
    problem = problem_from_config(recipe.data.train)
    if tuple(dataset.channels) != tuple(problem.channels):
        raise ValueError(
            f"data set {data} has channels {list(dataset.channels)}; the recipe's problem "
            f"{problem.name!r} expects {list(problem.channels)}"
        )
    if recipe.data.validation_fraction > 0 and len(group_by_condition(dataset)) >= 2:
        train_part, val_part = split_by_condition(
            dataset, recipe.data.validation_fraction, seed=recipe.training.seed
        )
    else:
        train_part, val_part = dataset, None
    pinned = pinned_conditions(recipe, problem)
    pairs = train_part.fields  # every channel, for the solution map
    train_part = _pinned_dataset(model_part(recipe, problem, train_part), pinned)
    if val_part is not None:
        val_part = _pinned_dataset(model_part(recipe, problem, val_part), pinned)
    encoder = ConditionEncoder.from_specs(problem.conditions)
    fit_part = train_part
    if recipe.data.normaliser_data == "stream":
        fit_part = _pinned_dataset(stream_fit_dataset(recipe, problem, train_part), pinned)
    normaliser = fit_normaliser(recipe, problem, fit_part, encoder)
    x_train, c_train = to_training_tensors(train_part, normaliser, encoder)
    x_val = c_val = None
    if val_part is not None:
        x_val, c_val = to_training_tensors(val_part, normaliser, encoder)
    torch.manual_seed(recipe.training.seed)
    model = build_score_model(recipe.model)
    metadata = {
        "problem": problem.name,
        "recipe": recipe.name,
        "data": str(data),
        "data_seed": int(dataset.attrs.get("seed", -1)),
        "sample_shape": model_sample_shape(recipe, problem),
        "channel_names": list(train_part.channels),
        "condition_names": list(problem.condition_names),
    }
    if pinned:
        metadata[PINNED_KEY] = pinned
    trainer = Trainer(
        model,
        recipe.training,
        run_dir / "training",
        metadata=metadata,
        normaliser=normaliser,
        condition_encoder=encoder,
    )
    source: BatchSource = TensorSource(x_train, c_train)
    what = f"{len(x_train)} fields"
    if recipe.data.source == "stream":
        per_epoch = recipe.data.stream_epoch_samples or len(x_train)
        source = streaming_source(recipe, problem, normaliser, encoder, per_epoch)
        what = f"{per_epoch} freshly simulated fields per epoch"
    _say(
        log,
        f"training on {what} ({0 if x_val is None else len(x_val)} validation) "
        f"for {recipe.training.epochs} epochs on {trainer.device}"
        + (f" x {context.world_size} processes" if context.is_distributed else ""),
    )
    result = trainer.fit(
        source=source,
        val_source=None if x_val is None else TensorSource(x_val, c_val),
        resume=resume,
        progress=progress,
    )
    folder = run_dir / "model"
    if context.is_main:
        folder = save_trained_model(
            folder,
            trainer.averaged_model(),
            recipe.model,
            normaliser=normaliser,
            condition_encoder=encoder,
            problem_name=problem.name,
            metadata={**metadata, "recipe_config": recipe.to_dict()},
            conditioning_spec=conditioning_spec(problem),
            field_spec=model_field_spec(recipe, problem),
        )
        if recipe.solution_map is not None:
            _say(log, f"training the solution map on {len(pairs)} pairs")
            solution_map = fit_solution_map(
                problem, pairs, recipe.solution_map, run_dir / "training" / "solution_map", log=log
            )
            solution_map.save(folder / SOLUTION_MAP_FOLDER)
    context.barrier()
    _say(log, f"model exported to {folder}")
    return load_trained_model(folder), result


def load_model(path: str | Path) -> Model:
    """A trained model from a model folder, a checkpoint folder or a run folder."""
    path = Path(path)
    if (path / "model" / "model.yaml").is_file():
        path = path / "model"
    elif (path / "training" / "checkpoints").is_dir():
        path = path / "training"
    return load_trained_model(path)


def save_samples(
    path: str | Path,
    fields: np.ndarray,
    model: Model,
    conditions: Any,
    *,
    sampler: str,
    steps: int,
    seed: int,
) -> Path:
    """Write generated fields to HDF5 atomically: one data set per channel ``(n, N)`` and
    ``samples`` ``(n, C, N)``, with the conditions, sampler settings and provenance as
    attributes."""
    import h5py

    from scorepde.fileio import atomic_path
    from scorepde.provenance import provenance

    fields = np.asarray(fields)
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("samples", data=fields, compression="gzip")
        for index, name in enumerate(model.channel_names):
            handle.create_dataset(name, data=fields[:, index], compression="gzip")
        handle.attrs["schema"] = "scorepde.samples/1"
        handle.attrs["channels"] = list(model.channel_names)
        handle.attrs["condition_names"] = list(model.condition_names)
        handle.attrs["conditions"] = np.asarray(conditions, dtype=float)
        handle.attrs["problem"] = str(model.problem_name)
        handle.attrs["sampler"] = sampler
        handle.attrs["steps"] = int(steps)
        handle.attrs["seed"] = int(seed)
        for key, value in provenance().items():
            handle.attrs[key] = value
    return Path(path)


def model_problem(model: Model) -> Problem:
    """The simulator a model was trained on: its problem with the options of the training
    data (from the recipe recorded with the model), or the problem's defaults when the model
    records no recipe."""
    if model.problem_name is None:
        raise ValueError("the model records no problem; pass problem=...")
    recorded = ((model.metadata.get("recipe_config") or {}).get("data") or {}).get("train")
    options = recorded.get("problem_options", {}) if isinstance(recorded, dict) else {}
    return problem_from_config(
        SimulationConfig(problem=model.problem_name, problem_options=dict(options or {}))
    )


def evaluation_conditions(
    problem: Problem, config: EvaluationConfig, test_data: str | Path | None
) -> tuple[np.ndarray, list[str]]:
    """The recipe's explicit conditions (or, when it names none, the problem's
    ``default_evaluation_conditions()``) plus ``held_out`` points of the test design."""
    rows = [np.asarray(c, dtype=float) for c in config.conditions]
    if not rows:
        rows = list(np.atleast_2d(problem.default_evaluation_conditions()))
    labels = ["fixed"] * len(rows)
    if config.held_out and test_data is not None:
        test = read_dataset(test_data)
        groups = group_by_condition(test)
        for key in sorted(groups)[: config.held_out]:
            rows.append(np.asarray(test.conditions[groups[key][0]], dtype=float))
            labels.append("held-out")
    if not rows:
        raise ValueError("no evaluation conditions: give evaluation.conditions or held_out > 0")
    return np.stack(rows), labels


def evaluate(
    model: Model,
    out_dir: str | Path,
    *,
    evaluation: EvaluationConfig | None = None,
    sampling: SamplingConfig | None = None,
    problem: Problem | None = None,
    test_data: str | Path | None = None,
    title: str = "scorepde evaluation",
    log: Log = print,
) -> tuple[list[dict[str, Any]], Path]:
    """Compare model samples with fresh simulator samples; write ``report.{json,md}``.

    With ``evaluation.grid`` the design grid (``scorepde.evaluation.grid``) follows the
    explicit conditions: its results (label "grid") are appended, its heat maps go to
    ``out_dir/figures/grid_*.png`` and its worst cases open the report.
    Returns the per-condition results and the Markdown report's path.
    """
    evaluation = evaluation or EvaluationConfig()
    sampling = sampling or SamplingConfig()
    if problem is None:
        problem = model_problem(model)
    targets = targets_from_config(evaluation.targets)
    conditions, labels = evaluation_conditions(problem, evaluation, test_data)

    def sample(condition: np.ndarray, n: int, seed: int) -> np.ndarray:
        return model.sample(
            condition,
            n,
            sampler=sampling.sampler,
            steps=sampling.steps,
            seed=seed,
            batch_size=sampling.batch_size,
        )

    out_dir = Path(out_dir)
    start = time.perf_counter()
    results = evaluate_conditions(
        sample,
        problem,
        conditions,
        out_dir=out_dir,
        targets=targets,
        n_samples=evaluation.n_samples,
        seed=evaluation.seed,
        sample_seed=sampling.seed,
        invariance_shift=evaluation.invariance_shift,
        labels=labels,
        log=log,
    )
    summary = None
    if evaluation.grid is not None:
        config = evaluation.grid
        grid = design_grid(
            problem,
            {
                name: config.points_per_condition.get(name, config.points)
                for name in problem.condition_names
            },
            values=config.values,
            invariant_points=config.invariant_points,
        )
        grid_results = evaluate_grid(
            sample,
            problem,
            grid,
            targets=targets,
            n_samples=config.n_samples or evaluation.n_samples,
            seed=evaluation.seed,
            sample_seed=sampling.seed,
            log=log,
        )
        summary = grid_summary(grid, grid_results, plot_grid_heatmaps(grid, grid_results, out_dir))
        results = results + grid_results
    metadata = {
        "sampler": sampling.sampler,
        "steps": sampling.steps,
        "n_samples": evaluation.n_samples,
        "evaluation_seed": evaluation.seed,
        "targets": targets.name,
        "model": repr(model),
        "wall_seconds": time.perf_counter() - start,
    }
    _, markdown = write_report(out_dir, results, title=title, metadata=metadata, grid=summary)
    _say(log, format_table(results))
    if summary is not None:
        for row in summary["worst"]:
            _say(
                log,
                f"grid worst {row['measure']} [{row['channel']}] = {row['value']:.4g} "
                f"at {row['condition']} (floor {row['floor']:.4g})",
            )
    _say(log, f"report: {markdown}")
    return results, markdown


def run(
    recipe: Recipe,
    out_dir: str | Path,
    *,
    resume: bool = True,
    progress: bool = True,
    log: Log = print,
) -> Path:
    """The whole pipeline in one folder: simulate, train, export, evaluate, report.

    Returns the path of ``evaluation/report.md``. Re-running continues where it stopped.
    Under torchrun all ranks train; rank 0 alone evaluates (the others return at once).
    """
    context = distributed.setup()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    recipe = complete_recipe(recipe)
    if context.is_main:
        save_yaml(recipe, out_dir / "recipe.yaml")
    start = time.perf_counter()
    train_path = simulate(recipe.data.train, out_dir / "data" / "train.h5", progress=progress)
    test_path = simulate(recipe.data.test, out_dir / "data" / "test.h5", progress=progress)
    _say(log, f"data ready in {time.perf_counter() - start:.1f} s")
    model, _ = train(recipe, train_path, out_dir, resume=resume, progress=progress, log=log)
    if not context.is_main:
        return out_dir / "evaluation" / "report.md"
    _, report = evaluate(
        model,
        out_dir / "evaluation",
        problem=problem_from_config(recipe.data.train),
        evaluation=recipe.evaluation,
        sampling=recipe.sampling,
        test_data=test_path,
        title=f"scorepde evaluation: recipe {recipe.name}",
        log=log,
    )
    _say(log, f"done in {time.perf_counter() - start:.0f} s")
    return report
