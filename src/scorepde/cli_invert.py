"""``scorepde invert train | sample | misspecify``: amortised posterior sampling from the
command line; thin, every command calls :mod:`scorepde.inverse`.

Registered on the main app in :mod:`scorepde.cli` with ``app.add_typer(invert_app)``. Heavy
imports happen inside the commands so that ``scorepde --help`` stays fast. Bad input is refused
with a one-line message naming the argument, the value and what is allowed (exit code 2).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

invert_app = typer.Typer(
    name="invert",
    help="Inverse problems: train a conditional score model on simulated (x, y) pairs, then "
    "sample the posterior p(x | y) for any observation y without retraining.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(error: Exception) -> typer.Exit:
    typer.echo(f"Error: {error}", err=True)
    return typer.Exit(code=2)


def _library_errors() -> tuple[type[Exception], ...]:
    from scorepde.configuration import ConfigError
    from scorepde.training.checkpoint import CheckpointError

    return (ConfigError, CheckpointError, ValueError)


def _positive(value: int | None, hint: str) -> int | None:
    if value is not None and value < 1:
        raise typer.BadParameter(
            f"{value} is not allowed; expected an integer >= 1", param_hint=hint
        )
    return value


def _seed(value: int | None, hint: str = "--seed") -> int | None:
    if value is not None and not 0 <= value < 2**32:
        raise typer.BadParameter(
            f"{value} is not allowed; expected an integer in [0, 2**32)", param_hint=hint
        )
    return value


def _sampler(value: str | None) -> str | None:
    from scorepde.sampling.registry import SAMPLERS

    if value is not None and value not in SAMPLERS:
        raise typer.BadParameter(
            f"{value!r} is not a sampler; expected one of {sorted(SAMPLERS)}",
            param_hint="--sampler",
        )
    return value


def _suffix(path: Path, allowed: tuple[str, ...], hint: str) -> Path:
    if path.suffix.lower() not in allowed:
        raise typer.BadParameter(
            f"{str(path)!r} has suffix {path.suffix!r}; expected one of {list(allowed)}",
            param_hint=hint,
        )
    return path


def _load_npy(path: Path, hint: str):
    import numpy as np

    _suffix(path, (".npy",), hint)
    if not path.is_file():
        raise typer.BadParameter(
            f"{str(path)!r} does not exist; expected a .npy file", param_hint=hint
        )
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise typer.BadParameter(
            f"{str(path)!r} is not a readable .npy file ({error})", param_hint=hint
        ) from (error)
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
        raise typer.BadParameter(
            f"{str(path)!r} holds {array.dtype} values of shape {array.shape}; expected finite "
            "numbers",
            param_hint=hint,
        )
    return array.astype(np.float64)


def _load_posterior(checkpoint: Path):
    from scorepde.inverse.ensemble import ENSEMBLE_FILE, load_posterior
    from scorepde.training.checkpoint import CheckpointError

    if any((checkpoint / "model" / name).is_file() for name in ("model.yaml", ENSEMBLE_FILE)):
        checkpoint = checkpoint / "model"  # the run folder of 'invert train'
    try:
        return load_posterior(checkpoint)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="CHECKPOINT") from error


def _find_recipe(checkpoint: Path):
    from scorepde.configuration import ConfigError
    from scorepde.inverse.recipes import find_recipe

    try:
        return find_recipe(checkpoint)
    except (ConfigError, ValueError) as error:
        raise typer.BadParameter(
            f"its recipe.yaml is not valid: {error}", param_hint="CHECKPOINT"
        ) from error


@invert_app.command("train")
def train(
    recipe: Annotated[
        str,
        typer.Argument(
            help="Inverse recipe name (e.g. inverse-linear-gaussian-2d) or a recipe .yaml path."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run folder (default: runs/RECIPE)."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Override the recipe's seed (pairs, split, weights)."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Override the recipe's number of epochs.")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume/--no-resume", help="Continue from the latest checkpoint in OUT."),
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Simulate training pairs, train, save OUT/model (+ recipe) and a calibration report."""
    from scorepde.configuration import ConfigError
    from scorepde.inverse.recipes import load_inverse_recipe, train_from_recipe

    _seed(seed)
    _positive(epochs, "--epochs")
    try:
        config = load_inverse_recipe(recipe)
    except (ConfigError, FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="RECIPE") from error
    if seed is not None:
        config = dataclasses.replace(config, seed=seed)
    if epochs is not None:
        config = dataclasses.replace(config, training={**config.training, "epochs": epochs})
    out = out or Path("runs") / config.name
    try:
        result = train_from_recipe(config, out, resume=resume, progress=not quiet)
    except _library_errors() as error:
        raise _fail(error) from error
    meta = result.posterior.metadata
    members = len(meta.get("members", [meta]))
    typer.echo(
        f"trained {f'{members} members x ' if members > 1 else ''}{meta.get('epochs')} epochs "
        f"on {meta.get('n_train')} pairs{' each' if members > 1 else ''} in "
        f"{result.seconds['train']:.0f} s (best validation loss "
        f"{meta.get('best_val_loss', float('nan')):.4g}); model: {result.model_dir}"
    )
    if result.calibration is not None:
        calibration = result.calibration
        record = calibration.to_dict()
        verdict = "passed" if calibration.passed else "FAILED"
        coverage = ", ".join(
            f"{level:g}: {value:.3f}"
            for level, value in zip(calibration.levels, calibration.coverage, strict=True)
            if level in (0.5, 0.9, 0.95)
        )
        typer.echo(
            f"calibration {verdict}: max KS {record['ks']['max']:.3f} "
            f"({record['ks']['worst_statistic']}, critical {record['ks']['critical']:.3f}); "
            f"coverage {coverage}; report: {result.calibration_dir / 'calibration.md'}"
        )


@invert_app.command("sample")
def sample(
    checkpoint: Annotated[
        Path, typer.Argument(help="Model folder (OUT/model of 'invert train') or run folder.")
    ],
    observation: Annotated[
        Path,
        typer.Option("--observation", "-y", help="One observation y as .npy (the recipe's shape)."),
    ],
    n: Annotated[int, typer.Option("-n", "--n", help="Number of posterior samples.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="First per-sample seed.")] = 0,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Samples as .npy (n, *x_shape), physical units.")
    ] = Path("posterior.npy"),
    sampler: Annotated[
        str | None, typer.Option("--sampler", help="Default: the recipe's sampler.")
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", help="Default: the recipe's (or sampler's) steps.")
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", help="Samples per network batch (does not change results)."),
    ] = 1000,
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="Known x (.npy) to print and plot beside the summary."),
    ] = None,
    plot: Annotated[
        bool,
        typer.Option(
            "--plot/--no-plot",
            help="Write OUT with .png: truth, measurement, mean and std (2-D fields), mean and "
            "95 % band (1-D fields) or a pair plot (vectors).",
        ),
    ] = False,
    arviz: Annotated[
        Path | None,
        typer.Option(
            "--arviz",
            help="Also write the samples and the observation as ArviZ InferenceData (.nc).",
        ),
    ] = None,
) -> None:
    """Draw posterior samples for one observation; print their summary."""
    import numpy as np

    from scorepde.fileio import atomic_save_npy
    from scorepde.inverse.posterior import format_summary, summarise

    _positive(n, "-n")
    _positive(steps, "--steps")
    _positive(batch_size, "--batch-size")
    _seed(seed)
    _sampler(sampler)
    _suffix(out, (".npy",), "--out")
    if arviz is not None:
        _suffix(arviz, (".nc",), "--arviz")
    posterior = _load_posterior(checkpoint)
    recipe = _find_recipe(checkpoint)
    y = _load_npy(observation, "--observation")
    expected = int(np.prod(posterior.y_shape))
    if y.size != expected:
        raise typer.BadParameter(
            f"{str(observation)!r} holds an array of shape {y.shape}; expected one observation "
            f"of shape {posterior.y_shape} ({expected} values)",
            param_hint="--observation",
        )
    problem = recipe.build_problem() if recipe is not None else None
    if sampler is None:
        sampler = recipe.sampling.sampler if recipe is not None else "euler_maruyama"
    if steps is None and recipe is not None and sampler == recipe.sampling.sampler:
        steps = recipe.sampling.steps
    start = time.perf_counter()
    try:
        samples = posterior.sample(
            n, y, sampler=sampler, steps=steps, seed=seed, batch_size=batch_size
        )
    except ValueError as error:
        raise _fail(error) from error
    elapsed = time.perf_counter() - start
    physical = problem.physical(samples) if problem is not None else samples
    known = None
    if truth is not None:
        known = _load_npy(truth, "--truth")
        if known.size != int(np.prod(physical.shape[1:])):
            raise typer.BadParameter(
                f"{str(truth)!r} holds an array of shape {known.shape}; expected "
                f"{physical.shape[1:]}",
                param_hint="--truth",
            )
        known = known.reshape(physical.shape[1:])
    atomic_save_npy(out, physical)
    typer.echo(f"{n} posterior samples {physical.shape} ({sampler}) in {elapsed:.2f} s -> {out}")
    typer.echo(format_summary(summarise(physical), truth=known))
    if arviz is not None:
        _write_arviz(arviz, physical, y.reshape(posterior.y_shape), problem, sampler, steps, seed)
        typer.echo(f"InferenceData: {arviz}")
    if plot:
        from scorepde.inverse.plots import plot_field_posterior, plot_pair, plot_posterior_band

        picture = out.with_suffix(".png")
        if physical.ndim == 4 and physical.shape[1] == 1:  # 2-D field: truth, y, mean, std
            shape = tuple(posterior.y_shape)
            plot_field_posterior(
                physical,
                picture,
                truth=known,
                measurement=y.reshape(shape) if len(shape) == 3 else None,
                name=problem.channel_names[0] if problem and problem.channel_names else "x",
                title=f"posterior of {problem.description or problem.name} (n={n})"
                if problem is not None
                else None,
            )
        elif problem is not None and problem.kind == "field":
            plot_posterior_band(
                physical,
                picture,
                truth=known,
                grid=problem.grid,
                x_label=problem.grid_label,
                channel_names=problem.channel_names or None,
                title=f"posterior of {problem.description or problem.name} (n={n})",
            )
        else:
            plot_pair(physical, picture, truth=known)
        typer.echo(f"figure: {picture}")


def _write_arviz(
    path: Path,
    samples: Any,
    observation: Any,
    problem: Any,
    sampler: str,
    steps: int | None,
    seed: int,
) -> None:
    """``samples (n, *shape)`` physical units and the observation as InferenceData (.nc): one
    chain; a field problem's axes are named ``channel`` and ``position`` (its grid)."""
    from scorepde.inverse.arviz_io import to_inference_data, write_netcdf

    dims = coords = None
    if problem is not None and problem.kind == "field" and samples.ndim == 3:
        dims = ["channel", "position"]
        coords = {}
        if problem.grid is not None and len(problem.grid) == samples.shape[2]:
            coords["position"] = problem.grid
        if len(problem.channel_names) == samples.shape[1]:
            coords["channel"] = list(problem.channel_names)
    attrs = {"sampler": sampler, "seed": seed, **({"steps": steps} if steps else {})}
    data = to_inference_data(samples, observed=observation, dims=dims, coords=coords, attrs=attrs)
    write_netcdf(data, path)


@invert_app.command("misspecify")
def misspecify(
    checkpoint: Annotated[
        Path, typer.Argument(help="Model folder (OUT/model of 'invert train') or run folder.")
    ],
    factor: Annotated[
        list[float],
        typer.Option(
            "--factor",
            help="Observed noise level / trained level (repeatable). Default: 0.5 1 2 4.",
        ),
    ] = [],  # noqa: B006
    n_observations: Annotated[
        int, typer.Option("--n-observations", help="Truths (shared by all factors).")
    ] = 200,
    n_samples: Annotated[
        int, typer.Option("--n-samples", help="Posterior samples per observation.")
    ] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Truths and noise streams.")] = 0,
    sampler: Annotated[
        str | None, typer.Option("--sampler", help="Default: the recipe's sampler.")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Sampler steps.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the table (.md) and .json.")
    ] = None,
) -> None:
    """Observe with the trained noise model scaled by each factor; print bias and coverage."""
    import numpy as np

    from scorepde.fileio import atomic_write_text
    from scorepde.inverse.misspecification import (
        misspecification_markdown,
        noise_misspecification,
        scale_noise,
    )
    from scorepde.provenance import provenance

    factors = list(factor) or [0.5, 1.0, 2.0, 4.0]
    for value in factors:
        if not (np.isfinite(value) and value > 0):
            raise typer.BadParameter(
                f"{value} is not allowed; expected a number > 0", param_hint="--factor"
            )
    if n_observations < 2:
        raise typer.BadParameter(
            f"{n_observations} is not allowed; expected >= 2", param_hint="--n-observations"
        )
    if n_samples < 2:
        raise typer.BadParameter(
            f"{n_samples} is not allowed; expected >= 2", param_hint="--n-samples"
        )
    _positive(steps, "--steps")
    _seed(seed)
    _sampler(sampler)
    if out is not None:
        _suffix(out, (".md",), "--out")
    posterior = _load_posterior(checkpoint)
    recipe = _find_recipe(checkpoint)
    if recipe is None:
        raise typer.BadParameter(
            f"{str(checkpoint)!r} has no recipe.yaml beside the model; expected a model folder "
            "written by 'scorepde invert train'",
            param_hint="CHECKPOINT",
        )
    problem = recipe.build_problem()
    sampler = sampler or recipe.sampling.sampler
    if steps is None and sampler == recipe.sampling.sampler:
        steps = recipe.sampling.steps

    def draw(observations: Any, count: int, sample_seed: int) -> Any:
        return posterior.sample_many(
            count, observations, sampler=sampler, steps=steps, seed=sample_seed
        )

    start = time.perf_counter()
    try:
        rows = noise_misspecification(
            draw,
            problem.sample_prior,
            problem.forward,
            problem.noise,
            [scale_noise(problem.noise, value) for value in factors],
            n_observations=n_observations,
            n_samples=n_samples,
            seed=seed,
            reference_posterior=problem.reference_posterior,
        )
    except ValueError as error:
        raise _fail(error) from error
    table = misspecification_markdown(rows)
    typer.echo(table)
    typer.echo(
        f"{len(factors)} noise levels x {n_observations} observations x {n_samples} "
        f"samples ({sampler}) in {time.perf_counter() - start:.0f} s"
    )
    if out is not None:
        atomic_write_text(out, table)
        record = {
            "recipe": recipe.name,
            "sampler": sampler,
            "steps": steps,
            "seed": seed,
            "rows": rows,
            "provenance": provenance(),
        }
        atomic_write_text(out.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
        typer.echo(f"table: {out}")


__all__ = ["invert_app"]
