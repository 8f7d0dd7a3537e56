"""Command line: ``scorepde simulate | ...``; thin, every command calls the library layers.

Each command is a plain function registered on ``app``; heavy imports happen inside the
command so that ``scorepde --help`` stays fast. Add a command with ``@app.command()``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from scorepde import __version__

app = typer.Typer(
    name="scorepde",
    help="Learn distributions of PDE solutions with conditional diffusion models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_H5_SUFFIXES = (".h5", ".hdf5")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"scorepde {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the package version and exit.",
        ),
    ] = False,
) -> None:
    """Learn distributions of PDE solutions with conditional diffusion models."""


def _known_problem(name: str) -> str:
    from scorepde.problems import PROBLEMS

    if name not in PROBLEMS:
        raise typer.BadParameter(
            f"{name!r} is not a known problem; expected one of {sorted(PROBLEMS)}"
        )
    return name


def _h5_path(path: Path) -> Path:
    if path.suffix.lower() not in _H5_SUFFIXES:
        raise typer.BadParameter(
            f"{str(path)!r} has suffix {path.suffix!r}; expected one of {list(_H5_SUFFIXES)}"
        )
    return path


def _at_least_one(value: int) -> int:
    if value < 1:
        raise typer.BadParameter(f"{value} is not allowed; expected an integer >= 1")
    return value


def _optional_at_least_one(value: int | None) -> int | None:
    return None if value is None else _at_least_one(value)


def _non_negative(value: int) -> int:
    if value < 0:
        raise typer.BadParameter(f"{value} is not allowed; expected an integer >= 0")
    return value


def _device(value: str | None) -> str | None:
    from scorepde.training.config import DEVICES

    if value is None:
        return None
    index = value.removeprefix("cuda:")
    if value not in DEVICES and not (value.startswith("cuda:") and index.isdigit()):
        raise typer.BadParameter(
            f"{value!r} is not allowed; expected one of {list(DEVICES)} or 'cuda:<index>'"
        )
    return value


def _output_file(path: Path, option: str) -> Path:
    """Refuse an output path that can never be written: a folder, or below a file."""
    if path.is_dir():
        raise typer.BadParameter(
            f"{str(path)!r} is a folder; expected the path of a file", param_hint=option
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise typer.BadParameter(
                    f"{str(path)!r}: {str(parent)!r} is a file, not a folder", param_hint=option
                )
            break
    return path


def _split(value: str) -> str:
    from scorepde.data.campaign import SPLITS

    if value not in SPLITS:
        raise typer.BadParameter(f"{value!r} is not allowed; expected one of {list(SPLITS)}")
    return value


def _design(value: str) -> str:
    from scorepde.data.design import DESIGNS

    if value not in DESIGNS:
        raise typer.BadParameter(f"{value!r} is not allowed; expected one of {list(DESIGNS)}")
    return value


def _seed(value: int) -> int:
    if not 0 <= value < 2**32:
        raise typer.BadParameter(f"{value} is not allowed; expected an integer in [0, 2**32)")
    return value


def _plot_dataset(out: Path) -> list[Path]:
    """``<stem>_fields.png`` (a few fields and their latent field) and ``<stem>_band.png``
    (mean and 95 % band of the fields of the first design point). On a 2-D grid:
    ``<stem>_fields.png`` shows the first design point's mean, a few fields and the standard
    deviation as images, and ``<stem>_band.png`` the band along the middle row."""
    import numpy as np

    from scorepde.data.schema import group_by_condition, read_dataset
    from scorepde.plotting import (
        plot_field_images,
        plot_mean_band,
        plot_sample_fields,
        plot_transect_band,
    )

    data = read_dataset(out)
    groups = group_by_condition(data)
    if data.spec.rank > 1:
        index, members = next(iter(groups.items()))
        values = ", ".join(
            f"{name}={value:.4g} {unit}"
            for name, value, unit in zip(
                data.condition_names, data.conditions[members[0]], data.condition_units, strict=True
            )
        )
        sets = {"simulator": data.fields[members]}
        title = f"design point {index}: {values}"
        fields_png = out.with_name(f"{out.stem}_fields.png")
        band_png = out.with_name(f"{out.stem}_band.png")
        return [
            plot_field_images(sets, data.spec, fields_png, title=title),
            plot_transect_band(sets, data.spec, band_png, title=title),
        ]
    first_of_each = np.array([indices[0] for indices in groups.values()])[:5]
    fields_png = plot_sample_fields(
        data.fields[first_of_each],
        data.latent[first_of_each],
        data.grid,
        data.channels,
        out.with_name(f"{out.stem}_fields.png"),
        latent_name=data.latent_name,
        channel_units=data.channel_units,
        title=f"{len(first_of_each)} fields (one per design point) and their {data.latent_name}",
    )
    index, members = next(iter(groups.items()))
    values = ", ".join(
        f"{name}={value:.4g} {unit}"
        for name, value, unit in zip(
            data.condition_names, data.conditions[members[0]], data.condition_units, strict=True
        )
    )
    band_png = plot_mean_band(
        {"simulator": data.fields[members]},
        data.grid,
        data.channels,
        out.with_name(f"{out.stem}_band.png"),
        channel_units=data.channel_units,
        title=f"design point {index}: {values}",
    )
    return [fields_png, band_png]


def _simulate_out(path: Path) -> Path:
    if path.suffix.lower() not in (*_H5_SUFFIXES, ".npy"):
        raise typer.BadParameter(
            f"{str(path)!r} has suffix {path.suffix!r}; expected one of {[*_H5_SUFFIXES, '.npy']}"
        )
    return path


def _one_condition(names: tuple[str, ...], items: list[str]) -> list[float]:
    """NAME=VALUE items -> one conditions row in the order ``names``; all must be given."""
    given: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            given[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise typer.BadParameter(f"{item!r} is not NAME=NUMBER", param_hint="--condition")
    unknown = sorted(set(given) - set(names))
    missing = [n for n in names if n not in given]
    if unknown or missing:
        raise typer.BadParameter(
            f"give every condition of {list(names)} (one condition, no design); missing "
            f"{missing}, unknown {unknown}",
            param_hint="--condition",
        )
    return [given[n] for n in names]


@app.command()
def simulate(
    problem: Annotated[
        str,
        typer.Argument(callback=_known_problem, help="Problem to simulate (e.g. 'battery')."),
    ] = "battery",
    conditions: Annotated[
        int,
        typer.Option(
            "--conditions",
            callback=_at_least_one,
            help="Number of design points (conditions). The seed recipe uses 250.",
        ),
    ] = 100,
    per_condition: Annotated[
        int,
        typer.Option(
            "--per-condition",
            callback=_at_least_one,
            help="Latent draws (fields) per condition. The seed recipe uses 100.",
        ),
    ] = 100,
    seed: Annotated[
        int, typer.Option("--seed", callback=_seed, help="Seed of the design and all draws.")
    ] = 0,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            callback=_simulate_out,
            help="Output HDF5 file (.h5/.hdf5); .npy with --condition (one condition).",
        ),
    ] = Path("runs/battery/train.h5"),
    formulation: Annotated[
        str | None,
        typer.Option(
            "--formulation",
            help="Battery formulation: post (default) | published-code (the post's public code).",
        ),
    ] = None,
    condition: Annotated[
        list[str] | None,
        typer.Option(
            "--condition",
            "-c",
            help="NAME=VALUE for every condition: simulate that one condition (no design) "
            "into a .npy file of shape (per-condition, C, *grid).",
        ),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            callback=_split,
            help="train | test | validation: each split has its own conditions.",
        ),
    ] = "train",
    design: Annotated[
        str,
        typer.Option(
            "--design", callback=_design, help="sobol (scrambled Sobol) | lhs (Latin hypercube)."
        ),
    ] = "sobol",
    workers: Annotated[
        int,
        typer.Option(
            "--workers", callback=_at_least_one, help="Processes (the data do not depend on it)."
        ),
    ] = 1,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Run the chunks on dask.distributed: the address of a running scheduler "
            "(tcp://host:8786) or 'local' for a LocalCluster of --workers processes. Needs "
            "pip install 'scorepde\\[dask]'. The data do not depend on it.",
        ),
    ] = None,
    chunk_conditions: Annotated[
        int,
        typer.Option(
            "--chunk-conditions",
            callback=_at_least_one,
            help="Conditions per saved chunk (the unit of resuming; the data do not depend on it).",
        ),
    ] = 20,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace an existing output or parts folder of another config."
        ),
    ] = False,
    plot: Annotated[
        bool,
        typer.Option("--plot/--no-plot", help="Write <stem>_fields.png and <stem>_band.png."),
    ] = True,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress bar, status lines or summary.")
    ] = False,
) -> None:
    """Simulate fields over a design of conditions into one HDF5 file.

    Quick default: 100 conditions x 100 draws = 10,000 fields.
    Full seed recipe: --conditions 250 (250 x 100 = 25,000 fields).
    A rerun with the same settings resumes from the finished chunks in OUT.parts/.
    One condition: -c U0=0 -c l=0.1 -c F_right=25 --per-condition 1000 --out f.npy.
    """
    from scorepde.data.campaign import CampaignError, SimulationConfig, simulate_campaign

    problem_options = {} if formulation is None else {"formulation": formulation}
    if condition:
        _simulate_one(problem, problem_options, condition, per_condition, seed, out, quiet)
        return
    if out.suffix.lower() == ".npy":
        raise typer.BadParameter(
            ".npy output needs one condition: give every condition with -c NAME=VALUE",
            param_hint="--out",
        )
    config = SimulationConfig(
        problem=problem,
        n_conditions=conditions,
        per_condition=per_condition,
        seed=seed,
        split=split,
        design=design,
        chunk_conditions=chunk_conditions,
        workers=workers,
        problem_options=problem_options,
    )
    start = time.perf_counter()
    try:
        path = simulate_campaign(
            config, out, overwrite=overwrite, progress=not quiet, scheduler=scheduler
        )
    except CampaignError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(code=2) from error
    elapsed = time.perf_counter() - start
    pictures = _plot_dataset(path) if plot else []
    if not quiet:
        typer.echo(
            f"{config.n_fields} fields ({conditions} conditions x {per_condition} draws, "
            f"split {split}, seed {seed}) -> {path} in {elapsed:.1f} s"
        )
        for picture in pictures:
            typer.echo(f"figure: {picture}")


def _simulate_one(
    name: str,
    options: dict[str, Any],
    items: list[str],
    per_condition: int,
    seed: int,
    out: Path,
    quiet: bool,
) -> None:
    """``simulate`` at one condition: ``per_condition`` fields -> ``out`` (.npy)."""
    import numpy as np

    from scorepde.problems import get_problem

    if out.suffix.lower() != ".npy":
        raise typer.BadParameter(
            f"one condition (-c) writes a .npy file; got {str(out)!r}", param_hint="--out"
        )
    try:
        problem = get_problem(name, **options)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--formulation") from error
    row = _one_condition(problem.condition_names, items)
    start = time.perf_counter()
    try:
        fields = problem.simulate([row], per_condition, [np.random.SeedSequence(seed)])["fields"]
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--condition") from error
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, fields)
    if not quiet:
        described = ", ".join(
            f"{n}={v:g}" for n, v in zip(problem.condition_names, row, strict=True)
        )
        typer.echo(
            f"{len(fields)} fields {fields.shape[1:]} ({problem.name}, "
            f"{getattr(problem, 'formulation', 'default')}, {described}, seed {seed}) -> "
            f"{out} in {time.perf_counter() - start:.1f} s"
        )


# ----------------------------------------------------------------------------- model commands


def _library_errors() -> tuple[type[Exception], ...]:
    """The errors that mean bad input or a bad file (reported in one line, exit code 2)."""
    from scorepde.configuration import ConfigError
    from scorepde.data.campaign import CampaignError
    from scorepde.data.normalisation import NormalisationError
    from scorepde.data.schema import DatasetError
    from scorepde.training.checkpoint import CheckpointError

    return (ConfigError, CampaignError, NormalisationError, DatasetError, CheckpointError)


def _recipe(name_or_path: str):
    from scorepde.configuration import ConfigError
    from scorepde.recipes import load_recipe

    try:
        return load_recipe(name_or_path)
    except (ConfigError, FileNotFoundError) as error:
        raise typer.BadParameter(str(error), param_hint="RECIPE") from error


def _load_model(path: Path):
    from scorepde.pipeline import load_model
    from scorepde.training.checkpoint import CheckpointError

    try:
        return load_model(path)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="CHECKPOINT") from error


@app.command()
def train(
    recipe: Annotated[
        str,
        typer.Argument(help="Recipe name (battery-quick, battery-seed) or a recipe .yaml path."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder (data/, training/, model/).")
    ] = Path("runs/train"),
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Training HDF5; default: simulate the recipe's design into OUT/data/train.h5.",
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            callback=_optional_at_least_one,
            help="Override the recipe's number of epochs.",
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", callback=_device, help="auto, cpu, cuda, cuda:1, ..."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume/--no-resume", help="Continue from the latest checkpoint in OUT."),
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train a conditional score model from a recipe; exports OUT/model."""
    from scorepde import pipeline

    config = _recipe(recipe)
    changes = {}
    if epochs is not None:
        changes["epochs"] = epochs
    if device is not None:
        changes["device"] = device
    if changes:
        config.training = config.training.replace(**changes)
    try:
        if data is None:
            data = pipeline.simulate(
                config.data.train, out / "data" / "train.h5", progress=not quiet
            )
        _, result = pipeline.train(config, data, out, resume=resume, progress=not quiet)
    except _library_errors() as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(code=2) from error
    typer.echo(
        f"trained {result.epochs_done} epochs in {result.wall_time:.0f} s "
        f"({result.samples_per_second:.0f} samples/s); model: {out / 'model'}"
    )


def _conditions(
    model: Any, U0: float | None, length: float | None, F_right: float | None, condition: list[str]
) -> list[float]:
    given: dict[str, float] = {}
    for name, value in (("U0", U0), ("l", length), ("F_right", F_right)):
        if value is not None:
            given[name] = value
    for item in condition:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--condition")
        try:
            given[name.strip()] = float(value)
        except ValueError as error:
            raise typer.BadParameter(
                f"{item!r}: {value!r} is not a number", param_hint="--condition"
            ) from error
    names = list(model.condition_names)
    unknown = sorted(set(given) - set(names))
    missing = [n for n in names if n not in given]
    if unknown or missing:
        raise typer.BadParameter(
            f"the model is conditioned on {names}; missing {missing}, unknown {unknown}",
            param_hint="conditions",
        )
    values = [given[n] for n in names]
    try:
        model.check_conditions(values)
    except ValueError as error:
        options = {"U0": U0, "l": length, "F_right": F_right}
        flag = {"U0": "--U0", "l": "--l", "F_right": "--F-right"}
        bad = next(
            (n for n in names if f"condition {n} = " in str(error)), None
        )  # the condition the message names
        hint = flag[bad] if bad in flag and options[bad] is not None else "--condition"
        raise typer.BadParameter(str(error), param_hint=hint) from error
    return values


def _say_what_samples(
    model: Any, checkpoint: Path | None, sampler: str | None, steps: int | None
) -> None:
    """On stderr: the checkpoint used when CHECKPOINT is not an exported model (an unfinished
    run), and where the sampler and steps come from when they were not given."""
    source = getattr(model, "source", None)
    if checkpoint is not None and not (checkpoint / "model.yaml").is_file() and source:
        epoch = model.metadata.get("epoch")
        typer.echo(
            f"note: {checkpoint} has no exported model (model.yaml): using checkpoint {source}"
            + (f" (epoch {epoch})" if epoch is not None else ""),
            err=True,
        )
    if sampler is None or steps is None:
        chosen, chosen_steps = model.default_sampling(sampler, steps)
        recorded = (model.metadata.get("recipe_config") or {}).get("sampling")
        origin = (
            "the model's recipe"
            if sampler is None and recorded
            else "the default (the model records no recipe sampler)"
            if sampler is None
            else "the default steps"
        )
        typer.echo(f"note: sampler {chosen}, {chosen_steps} steps, from {origin}", err=True)


@app.command()
def sample(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(help="Model folder, checkpoint folder or run folder (or --pretrained)."),
    ] = None,
    pretrained: Annotated[
        str | None,
        typer.Option(
            "--pretrained", help="A model shipped with scorepde instead of CHECKPOINT: battery."
        ),
    ] = None,
    U0: Annotated[float | None, typer.Option("--U0", help="Equilibrium potential U0 [V].")] = None,
    length: Annotated[
        float | None, typer.Option("--l", help="Correlation length l, in units of L.")
    ] = None,
    F_right: Annotated[
        float | None, typer.Option("--F-right", help="Current at x = L [A/m^2].")
    ] = None,
    condition: Annotated[
        list[str],
        typer.Option("--condition", "-c", help="Any condition as NAME=VALUE (repeatable)."),
    ] = [],  # noqa: B006
    n: Annotated[
        int, typer.Option("-n", "--n", callback=_at_least_one, help="Number of samples.")
    ] = 1000,
    seed: Annotated[
        int, typer.Option("--seed", callback=_non_negative, help="First per-sample seed.")
    ] = 0,
    sampler: Annotated[
        str | None,
        typer.Option(
            "--sampler",
            help="euler_maruyama, predictor_corrector, ode_heun, ode_heun_edm, heun_churn, "
            "ode_dpm2m or annealed_langevin. Default: the sampler of the model's recipe (the "
            "one its evaluation used), else euler_maruyama.",
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            callback=_optional_at_least_one,
            help="Sampler steps. Network evaluations per sample: euler_maruyama and ode_dpm2m "
            "steps + 1; ode_heun* and heun_churn 2 steps; predictor_corrector 2 steps + 1. "
            "Default: the model's recipe, else 100.",
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            callback=_at_least_one,
            help="Samples per network batch (does not change results).",
        ),
    ] = 1000,
    out: Annotated[
        Path, typer.Option("--out", "-o", help=".npy (n, C, N) physical units, or .h5/.hdf5.")
    ] = Path("samples.npy"),
    fidelity: Annotated[
        float | None,
        typer.Option(
            "--fidelity",
            help="Multi-fidelity models only (a run of an mf-* recipe): the level to sample "
            "(its resolution, e.g. 64; the battery's grid size, e.g. 100). Default: the finest.",
        ),
    ] = None,
    standardised: Annotated[
        bool,
        typer.Option(
            "--standardised",
            help="Multi-fidelity benchmark models: write the level's standardised values (the "
            "only output a continuous-fidelity model has for an untrained level).",
        ),
    ] = False,
) -> None:
    """Generate fields for given conditions (physical units) from a trained model."""
    import numpy as np

    from scorepde.fileio import atomic_save_npy
    from scorepde.training.model import SAMPLERS

    if sampler is not None and sampler not in SAMPLERS:
        raise typer.BadParameter(
            f"{sampler!r} is not a sampler; expected one of {sorted(SAMPLERS)}",
            param_hint="--sampler",
        )
    if out.suffix.lower() not in (".npy", *_H5_SUFFIXES):
        raise typer.BadParameter(
            f"{str(out)!r}: expected a .npy, .h5 or .hdf5 file", param_hint="--out"
        )
    _output_file(out, "--out")
    if (checkpoint is None) == (pretrained is None):
        raise typer.BadParameter(
            f"give exactly one of CHECKPOINT and --pretrained; got CHECKPOINT={checkpoint}, "
            f"--pretrained={pretrained}"
        )
    if pretrained is not None:
        from scorepde.pretrained import PretrainedError, load_pretrained

        try:
            model = load_pretrained(pretrained)
        except PretrainedError as error:
            raise typer.BadParameter(str(error), param_hint="--pretrained") from error
    else:
        from scorepde.multifidelity.saved import find_multifidelity_model

        if find_multifidelity_model(checkpoint) is not None:
            if sampler is not None or steps is not None:
                raise typer.BadParameter(
                    f"--sampler {sampler} / --steps {steps}: a multi-fidelity model samples with "
                    "its run's sampler and steps (the recipe's dgmf or battery options); leave "
                    "them out",
                    param_hint="--sampler",
                )
            _sample_multifidelity(
                checkpoint, fidelity, standardised, U0, length, F_right, condition, n, seed, out
            )
            return
        model = _load_model(checkpoint)
    if fidelity is not None or standardised:
        raise typer.BadParameter(
            f"{checkpoint or pretrained} is not a multi-fidelity model; --fidelity and "
            "--standardised apply to runs of the mf-* recipes",
            param_hint="--fidelity",
        )
    values = _conditions(model, U0, length, F_right, condition)
    _say_what_samples(model, checkpoint, sampler, steps)
    sampler, steps = model.default_sampling(sampler, steps)
    start = time.perf_counter()
    try:
        fields = model.sample(
            values, n, sampler=sampler, steps=steps, seed=seed, batch_size=batch_size
        )
    except ValueError as error:  # bad input the checks above did not anticipate
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(code=2) from error
    elapsed = time.perf_counter() - start
    if out.suffix.lower() == ".npy":
        atomic_save_npy(out, fields.astype(np.float64))
    else:
        from scorepde.pipeline import save_samples

        save_samples(out, fields, model, values, sampler=sampler, steps=steps, seed=seed)
    typer.echo(f"{n} samples {fields.shape} in {elapsed:.2f} s ({sampler}, {steps} steps) -> {out}")


def _sample_multifidelity(
    checkpoint: Path,
    fidelity: float | None,
    standardised: bool,
    U0: float | None,
    length: float | None,
    F_right: float | None,
    condition: list[str],
    n: int,
    seed: int,
    out: Path,
) -> None:
    """``scorepde sample RUN --fidelity F`` for a multi-fidelity model (``.npy`` output)."""
    import numpy as np

    from scorepde.fileio import atomic_save_npy
    from scorepde.multifidelity.saved import SavedMultiFidelityModel
    from scorepde.training.checkpoint import CheckpointError

    if out.suffix.lower() != ".npy":
        raise typer.BadParameter(
            f"{str(out)!r}: a multi-fidelity model writes .npy files only", param_hint="--out"
        )
    try:
        model = SavedMultiFidelityModel.load(checkpoint)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="CHECKPOINT") from error
    level = float(model.fidelities[-1] if fidelity is None else fidelity)
    values = _conditions(model, U0, length, F_right, condition)
    start = time.perf_counter()
    try:
        fields = model.sample(values, n, level, seed=seed, standardised=standardised)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--fidelity") from error
    elapsed = time.perf_counter() - start
    atomic_save_npy(out, np.asarray(fields, dtype=np.float64))
    space = "standardised" if standardised else "physical units"
    typer.echo(
        f"{n} samples {fields.shape} at fidelity {level:g} ({space}) in {elapsed:.2f} s -> {out}"
    )


@app.command()
def evaluate(
    checkpoint: Annotated[
        Path, typer.Argument(help="Model folder, checkpoint folder or run folder.")
    ],
    recipe: Annotated[
        str | None,
        typer.Option("--recipe", help="Take evaluation and sampling settings from this recipe."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Report folder (default: CHECKPOINT/../evaluation)."),
    ] = None,
    n_samples: Annotated[
        int | None,
        typer.Option(
            "--n-samples",
            callback=_optional_at_least_one,
            help="Model and simulator samples per condition.",
        ),
    ] = None,
    sampler: Annotated[str | None, typer.Option("--sampler")] = None,
    steps: Annotated[int | None, typer.Option("--steps", callback=_optional_at_least_one)] = None,
    targets: Annotated[str | None, typer.Option("--targets", help="quick or seed.")] = None,
    test_data: Annotated[
        Path | None, typer.Option("--test-data", help="HDF5 test design for held-out conditions.")
    ] = None,
) -> None:
    """Compare model samples with fresh simulator samples; print the table, write the report."""
    import dataclasses

    from scorepde import pipeline

    model = _load_model(checkpoint)
    config = _recipe(recipe) if recipe else None
    evaluation = config.evaluation if config else pipeline.EvaluationConfig()
    sampling = config.sampling if config else pipeline.SamplingConfig()
    if n_samples is not None:
        evaluation = dataclasses.replace(evaluation, n_samples=n_samples)
    if targets is not None:
        evaluation = dataclasses.replace(evaluation, targets=targets)
    if sampler is not None:
        sampling = dataclasses.replace(sampling, sampler=sampler)
    if steps is not None:
        sampling = dataclasses.replace(sampling, steps=steps)
    if test_data is None:
        candidate = checkpoint / "data" / "test.h5"
        sibling = checkpoint.parent / "data" / "test.h5"
        test_data = candidate if candidate.is_file() else sibling if sibling.is_file() else None
    if out is None:
        out = (checkpoint if (checkpoint / "model").is_dir() else checkpoint.parent) / "evaluation"
    try:
        results, report = pipeline.evaluate(
            model, out, evaluation=evaluation, sampling=sampling, test_data=test_data
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    failed = sum(not r["passed"] for r in results)
    typer.echo(f"{len(results) - failed}/{len(results)} conditions pass; report: {report}")


@app.command()
def run(
    recipe: Annotated[
        str,
        typer.Argument(
            help="Recipe name (battery-quick, battery-seed, ...; multi-fidelity: mf-poisson, "
            "mf-heat, mf-burgers, mf-battery) or a recipe .yaml path."
        ),
    ] = "battery-quick",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run folder (default: runs/RECIPE).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Continue an interrupted run in OUT.")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """The whole pipeline: simulate, train, sample, evaluate, report, in one folder (for a
    multi-fidelity recipe: data at every fidelity, DGMF and the baselines, the nRMSE report)."""
    from scorepde import pipeline
    from scorepde.multifidelity.recipes import is_mf_recipe

    if is_mf_recipe(recipe):
        _run_multifidelity(recipe, out, resume, quiet)
        return
    config = _recipe(recipe)
    out = out or Path("runs") / config.name
    try:
        report = pipeline.run(config, out, resume=resume, progress=not quiet)
    except _library_errors() as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(code=2) from error
    typer.echo(f"report: {report}")


def _run_multifidelity(recipe: str, out: Path | None, resume: bool, quiet: bool) -> None:
    from scorepde.configuration import ConfigError
    from scorepde.multifidelity.recipes import load_mf_recipe
    from scorepde.multifidelity.run import RunError, run_mf_recipe

    try:
        config = load_mf_recipe(recipe)
    except (ConfigError, FileNotFoundError) as error:
        raise typer.BadParameter(str(error), param_hint="RECIPE") from error
    out = out or Path("runs") / config.name
    try:
        report = run_mf_recipe(config, out, resume=resume, progress=not quiet)
    except (RunError, *_library_errors()) as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(code=2) from error
    typer.echo(f"report: {report}")


# ----------------------------------------------------------------------------- inverse problems

from scorepde.cli_invert import invert_app  # noqa: E402  (a sub-app with lazy imports)

app.add_typer(invert_app, name="invert")


if __name__ == "__main__":  # pragma: no cover
    app()
