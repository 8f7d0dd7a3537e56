"""Run a multi-fidelity recipe end to end in one folder: ``scorepde run mf-poisson``.

For a ``kind: benchmark`` recipe (:class:`~scorepde.multifidelity.recipes.BenchmarkRunConfig`):

1. **data** -- both pools solved at every fidelity and interpolated to the finest grid
   (:func:`~scorepde.multifidelity.protocol.generate_data`), kept in ``data.npz`` with the solve
   times;
2. **baselines** -- every available baseline on ``repeats`` training subsets, and the budget
   sweep of ``sweep_baselines``;
3. **network methods** -- DGMF and the network baselines on the first ``network_repeats``
   subsets (the same subsets as the baselines' first repeats, so rows compare pairwise); the
   DGMF model of repeat 0 is saved in ``model/`` (``scorepde sample RUN --fidelity F``);
4. **report** -- ``report.md`` (tables, the paper's claims beside ours), ``results.json``
   (every number), ``budget_sweep.png`` and ``example.png``.

Every finished piece is written at once (atomically) and a rerun of the same recipe in the same
folder skips it (``resume``), so an interrupted run continues where it stopped. The recipe a
folder was made with is kept in ``recipe.yaml``; running a different one there is refused.
"""

from __future__ import annotations

import json
import time
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from scorepde.configuration import from_dict
from scorepde.fileio import atomic_path, atomic_write_text
from scorepde.multifidelity.baselines import BASELINES, available_baselines
from scorepde.multifidelity.benchmarks import MultiFidelityBenchmark, get_benchmark
from scorepde.multifidelity.protocol import (
    MultiFidelityData,
    Standardiser,
    evaluate_baselines,
    generate_data,
    make_training_set,
    nrmse,
    to_finest_grid,
)
from scorepde.multifidelity.recipes import BenchmarkRunConfig, MFRecipe
from scorepde.multifidelity.saved import write_marker

__all__ = ["PAPER_REDUCTION", "RunError", "run_benchmark_recipe", "run_mf_recipe"]

#: DGMF paper (arXiv 2311.05606): error reduction (%) against the best earlier multi-fidelity
#: method it compared with.
PAPER_REDUCTION = {"poisson": 55.6, "heat": 58.0, "burgers": 45.4}
RESULTS_FILE = "results.json"
RECIPE_FILE = "recipe.yaml"
DATA_FILE = "data.npz"
MODEL_DIR = "model"


class RunError(RuntimeError):
    """A run folder that cannot be continued (another recipe's, or a corrupt file)."""


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)


def run_mf_recipe(
    recipe: MFRecipe, out: str | Path, *, resume: bool = True, progress: bool = True
) -> Path:
    """Run ``recipe`` in the folder ``out``; returns the path of ``report.md``."""
    out = Path(out)
    _claim_folder(recipe, out, resume)
    if recipe.kind == "battery":
        from scorepde.multifidelity.battery import run_battery_mf

        return run_battery_mf(
            recipe.options, out, name=recipe.name, resume=resume, progress=progress
        )
    return run_benchmark_recipe(
        recipe.benchmark_config(), out, name=recipe.name, resume=resume, progress=progress
    )


def _claim_folder(recipe: MFRecipe, out: Path, resume: bool) -> None:
    """Keep the recipe in ``out/recipe.yaml``; refuse to resume another recipe's folder."""
    out.mkdir(parents=True, exist_ok=True)
    saved = out / RECIPE_FILE
    mine = {"name": recipe.name, "description": recipe.description}
    mine["multifidelity"] = recipe.multifidelity
    if saved.is_file() and resume:
        try:
            theirs = yaml.safe_load(saved.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise RunError(f"{saved}: not valid YAML ({error}); rerun with --no-resume") from error
        if theirs != mine:
            raise RunError(
                f"{out} holds a run of another recipe ({saved}); use another --out folder, or "
                "--no-resume to start this one afresh there"
            )
        return
    if not resume:
        for name in (RESULTS_FILE, DATA_FILE):
            (out / name).unlink(missing_ok=True)
    atomic_write_text(saved, yaml.safe_dump(mine, sort_keys=False))


# ------------------------------------------------------------------------------ data


def _data_key(config: BenchmarkRunConfig) -> dict[str, Any]:
    return {
        "benchmark": config.benchmark,
        "n_train": config.n_train,
        "n_test": config.n_test,
        "design": config.design,
        "seed": config.seed,
    }


def save_data(path: Path, data: MultiFidelityData, key: dict[str, Any], seconds: float) -> None:
    """The pools, their outputs at every fidelity and the solve times, in one ``.npz``."""
    arrays: dict[str, np.ndarray] = {
        "train_inputs": data.train_inputs,
        "test_inputs": data.test_inputs,
        "key": np.array(json.dumps({**key, "generation_s": seconds})),
        "seconds_per_solution": np.array(
            [[f, data.seconds_per_solution[f]] for f in data.benchmark.fidelities]
        ),
    }
    for f in data.benchmark.fidelities:
        arrays[f"train_{f}"] = data.train_fields[f]
        arrays[f"test_{f}"] = data.test_fields[f]
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_data(
    path: Path, benchmark: MultiFidelityBenchmark, key: dict[str, Any]
) -> tuple[MultiFidelityData, float]:
    """Read :func:`save_data`'s file; a corrupt file or one made with other settings is an
    error naming it (never half-read)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            stored = json.loads(str(archive["key"]))
            generation = float(stored.pop("generation_s"))
            if stored != key:
                raise RunError(
                    f"{path} was made with {stored}; this recipe needs {key}: rerun with "
                    "--no-resume or use another --out folder"
                )
            seconds = {int(f): float(s) for f, s in archive["seconds_per_solution"]}
            train = {f: archive[f"train_{f}"] for f in benchmark.fidelities}
            test = {f: archive[f"test_{f}"] for f in benchmark.fidelities}
            data = MultiFidelityData(
                benchmark,
                archive["train_inputs"],
                archive["test_inputs"],
                train,
                test,
                seconds,
            )
    except RunError:
        raise
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise RunError(
            f"{path} is unreadable or incomplete ({error!r}); delete it or rerun with --no-resume"
        ) from error
    return data, generation


# ------------------------------------------------------------------------------ results


class _Results:
    """``results.json``, rewritten atomically after every finished piece."""

    def __init__(self, path: Path, key: dict[str, Any], resume: bool) -> None:
        self.path = path
        self.values: dict[str, Any] = {"key": key}
        if resume and path.is_file():
            try:
                stored = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                raise RunError(
                    f"{path} is unreadable ({error}); delete it or rerun with --no-resume"
                ) from error
            if stored.get("key") == key:
                self.values = stored

    def get(self, *keys: str) -> Any:
        node: Any = self.values
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                return None
            node = node[k]
        return node

    def put(self, value: Any, *keys: str) -> None:
        node = self.values
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
        atomic_write_text(self.path, json.dumps(self.values, indent=1) + "\n")


def _summary(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return {"mean": float(array.mean()), "std": std, "n": int(array.size)}


# ------------------------------------------------------------------------------ the run


def run_benchmark_recipe(
    config: BenchmarkRunConfig,
    out: str | Path,
    *,
    name: str = "mf",
    resume: bool = True,
    progress: bool = True,
) -> Path:
    """Data, baselines, network methods and the report of one benchmark in ``out``."""
    from scorepde.multifidelity.dgmf import DGMFConfig

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    benchmark = get_benchmark(config.benchmark)
    dgmf_base = from_dict(DGMFConfig, dict(config.dgmf), where=f"{name}.multifidelity.dgmf")
    key = {**_data_key(config), "budgets": config.budgets}
    results = _Results(out / RESULTS_FILE, key, resume)

    data_path = out / DATA_FILE
    if resume and data_path.is_file():
        data, generation = load_data(data_path, benchmark, _data_key(config))
        _say(progress, f"[{name}] data: reused {data_path}")
    else:
        _say(
            progress,
            f"[{name}] data: solving {config.n_train} + {config.n_test} inputs at "
            f"fidelities {list(benchmark.fidelities)}",
        )
        start = time.perf_counter()
        data = generate_data(benchmark, config.n_train, config.n_test, config.seed, config.design)
        generation = time.perf_counter() - start
        save_data(data_path, data, _data_key(config), generation)
    seconds = data.seconds_per_solution
    results.put(
        {
            "fidelities": list(benchmark.fidelities),
            "seconds_per_solution": {str(f): seconds[f] for f in benchmark.fidelities},
            "training_set_cost_s": sum(
                b * seconds[f] for b, f in zip(config.budgets, benchmark.fidelities, strict=True)
            ),
            "all_finest_cost_s": sum(config.budgets) * seconds[benchmark.finest],
            "generation_s": generation,
        },
        "data",
    )

    here = set(available_baselines())
    skipped = [b for b in config.baselines if b not in here]
    results.put(skipped, "skipped_baselines")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GPy's and scikit-learn's optimiser chatter
        for baseline in [b for b in config.baselines if b in here]:
            if results.get("baselines", baseline) is not None:
                continue
            _say(progress, f"[{name}] baseline {baseline} ({config.repeats} repeats)")
            start = time.perf_counter()
            values = evaluate_baselines(
                data, {baseline: BASELINES[baseline]}, config.budgets, config.repeats, config.seed
            )[baseline]
            results.put(
                {"nrmse": values.tolist(), "seconds": time.perf_counter() - start},
                "baselines",
                baseline,
            )
        for baseline in [b for b in config.sweep_baselines if b in here]:
            for high in config.sweep:
                if results.get("sweep", baseline, str(high)) is not None:
                    continue
                budgets = [*config.budgets[:-1], high]
                values = evaluate_baselines(
                    data, {baseline: BASELINES[baseline]}, budgets, config.repeats, config.seed
                )[baseline]
                results.put(values.tolist(), "sweep", baseline, str(high))

    for repeat in range(config.network_repeats):
        training, test = make_training_set(data, config.budgets, repeat, config.seed)
        dgmf_config = replace(dgmf_base, seed=100 * config.seed + repeat)
        for method in config.methods:
            if results.get("methods", method, str(repeat)) is not None:
                continue
            _say(progress, f"[{name}] {method}, repeat {repeat}: training")
            row = _run_method(method, dgmf_config, training, test, out, repeat, config, name)
            results.put(row, "methods", method, str(repeat))
            _say(
                progress,
                f"[{name}] {method}, repeat {repeat}: nRMSE {row['nrmse']:.4f} "
                f"({row['train_seconds']:.0f} s training, "
                f"{row['predict_seconds']:.0f} s predicting)",
            )
    if config.continuous is not None:
        _continuous(data, config, dgmf_base, results, progress, name, out)
    report = write_report(out, name, config, results.values)
    _say(progress, f"[{name}] report: {report}")
    return report


def _continuous(
    data: MultiFidelityData,
    config: BenchmarkRunConfig,
    dgmf_base: Any,
    results: _Results,
    progress: bool,
    name: str,
    saved: Path,
) -> None:
    """The continuous-fidelity experiments (see :class:`ContinuousConfig`), on repeat 0.

    Every prediction is the mean of ``K`` samples, compared in the standardisation of the level
    asked for: for a held-out level its training statistics (the protocol's subset at that
    level); for the extrapolated level the same statistics computed from the finest level's
    training inputs solved at that level (only its per-point mean and scale: no output of that
    level is trained on). A prediction made at another level is carried over through physical
    units (its own standardisation inverted, the asked level's applied). When the run's DGMF
    itself has continuous fidelity, its saved model of repeat 0 (the same training subsets and
    seed) answers the extrapolation instead of a second training.
    """
    from scorepde.multifidelity.dgmf import train_dgmf

    cont = config.continuous
    assert cont is not None
    benchmark = data.benchmark
    training, test = make_training_set(data, config.budgets, 0, config.seed)
    m = cont.n_test
    inputs = test.inputs[:m]
    finest = training.fidelities[-1]
    base = replace(dgmf_base, fidelity="continuous", seed=100 * config.seed)

    def carried(model: Any, level: int, target: Standardiser) -> np.ndarray:
        mean = model.sample(inputs, level).mean(axis=1).reshape(m, -1)
        return target.transform(model.standardisers[level].inverse(mean))

    if cont.extrapolate is not None and results.get("continuous", "extrapolate") is None:
        level = cont.extrapolate
        _say(
            progress,
            f"[{name}] continuous fidelity: trained on {list(training.fidelities)}, "
            f"asked for {level}",
        )
        both = np.concatenate([training.inputs[-1], inputs])
        start = time.perf_counter()
        solved = benchmark.solve(both, level)
        seconds = (time.perf_counter() - start) / both.shape[0]
        fine = to_finest_grid(benchmark, solved, both, level).reshape(both.shape[0], -1)
        n_fit = training.inputs[-1].shape[0]
        statistics = Standardiser.fit(fine[:n_fit])
        truth = statistics.transform(fine[n_fit:])
        start = time.perf_counter()
        if dgmf_base.fidelity == "continuous" and (saved / MODEL_DIR).is_dir():
            from scorepde.multifidelity.dgmf import DGMFModel

            model = DGMFModel.load(saved / MODEL_DIR)  # the run's own DGMF of repeat 0
            trained = float(model.metadata.get("train_seconds", 0.0))
        else:
            model = train_dgmf(training, base)
            trained = time.perf_counter() - start
        asked = model.sample(inputs, level).mean(axis=1).reshape(m, -1)
        finest_solver = statistics.transform(data.test_fields[finest][:m].reshape(m, -1))
        results.put(
            {
                "level": level,
                "trained": list(training.fidelities),
                "n_test": m,
                "seconds_per_solution": seconds,
                "train_seconds": trained,
                "nrmse": {
                    f"DGMF (continuous) asked for {level}": nrmse(truth, asked),
                    f"DGMF (continuous) asked for {finest}": nrmse(
                        truth, carried(model, finest, statistics)
                    ),
                    f"solver at {finest}": nrmse(truth, finest_solver),
                },
            },
            "continuous",
            "extrapolate",
        )
    if cont.hold_out is not None and results.get("continuous", "hold_out") is None:
        level = cont.hold_out
        kept = tuple(f for f in training.fidelities if f != level)
        _say(progress, f"[{name}] continuous fidelity: trained on {list(kept)}, asked for {level}")
        index = training.fidelities.index(level)
        statistics = training.standardisers[index]
        truth = statistics.transform(data.test_fields[level][:m].reshape(m, -1))
        start = time.perf_counter()
        model = train_dgmf(training, replace(base, levels=kept))
        trained = time.perf_counter() - start
        lower, upper = training.fidelities[index - 1], training.fidelities[index + 1]
        asked = model.sample(inputs, level).mean(axis=1).reshape(m, -1)
        lower_solver = statistics.transform(data.test_fields[lower][:m].reshape(m, -1))
        results.put(
            {
                "level": level,
                "trained": list(kept),
                "n_test": m,
                "train_seconds": trained,
                "nrmse": {
                    f"DGMF (continuous) asked for {level}": nrmse(truth, asked),
                    f"DGMF (continuous) asked for {lower}": nrmse(
                        truth, carried(model, lower, statistics)
                    ),
                    f"DGMF (continuous) asked for {upper}": nrmse(
                        truth, carried(model, upper, statistics)
                    ),
                    f"solver at {lower}": nrmse(truth, lower_solver),
                },
            },
            "continuous",
            "hold_out",
        )


def _run_method(
    method: str,
    dgmf_config: Any,
    training: Any,
    test: Any,
    out: Path,
    repeat: int,
    config: BenchmarkRunConfig,
    name: str,
) -> dict[str, Any]:
    from scorepde.multifidelity.dgmf import band_coverage, run_network_method

    result = run_network_method(method, dgmf_config, training, test)
    samples, prediction = result["samples"], result["prediction"]
    if method == "dgmf" and repeat == 0:
        _save_dgmf(result["model"], training, test, samples, out, config, name)
    row: dict[str, Any] = {
        "train_seconds": result["train_seconds"],
        "predict_seconds": result["predict_seconds"],
        "nrmse": nrmse(test.fields, prediction),
    }
    if samples is not None:
        truth = test.fields.reshape(samples.shape[0], *samples.shape[2:])
        row["coverage"] = band_coverage(samples, truth)
    row["metadata"] = {
        k: v for k, v in result["metadata"].items() if isinstance(v, str | int | float | bool)
    }
    return row


def _save_dgmf(
    model: Any,
    training: Any,
    test: Any,
    samples: np.ndarray,
    out: Path,
    config: BenchmarkRunConfig,
    name: str,
) -> None:
    """The DGMF model of repeat 0 in ``out/model`` (marked for the CLI) and the samples of the
    first ``samples_saved`` test inputs with their truth and coarse answer (the figure)."""
    benchmark = get_benchmark(config.benchmark)
    model.save(out / MODEL_DIR)
    write_marker(
        out / MODEL_DIR,
        "dgmf",
        model.fidelities,
        benchmark=config.benchmark,
        input_names=list(benchmark.input_names),
        axis_names=list(benchmark.axis_names),
        recipe=name,
    )
    m, keep = len(test.inputs), config.samples_saved
    truth = test.fields.reshape(m, model.grid, model.grid)
    coarse = test.raw[training.fidelities[-2]].reshape(m, -1)
    coarse = training.finest.transform(coarse).reshape(m, model.grid, model.grid)
    with atomic_path(out / "samples.npz", suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            inputs=test.inputs[:keep],
            truth=truth[:keep],
            samples=samples[:keep],
            coarse=coarse[:keep],
        )


# ------------------------------------------------------------------------------ report


_LABELS = {
    "coarse_solver": "(c) coarse solver, second-finest level interpolated",
    "linear": "(e) linear least squares in the inputs",
    "affine": "(e) affine least squares in the inputs",
    "gp_pca": "(e) GP on principal components, finest level only",
    "ar1_pca": "(d) AR1 multi-fidelity GP (emukit) on principal components",
    "score_high": "(a) score model, finest level only",
    "unet_regression": "(b) U-Net regression, all levels",
    "dgmf": "DGMF, all levels",
}


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _reduction(theirs: float, ours: float) -> str:
    """DGMF's error reduction against a reference, in %; past -1000 % as a ratio."""
    if theirs <= 0 or ours > 11 * theirs:
        return f"none: DGMF's error is {ours / theirs:.3g}x" if theirs > 0 else "none"
    return f"{100.0 * (theirs - ours) / theirs:.1f} %"


def write_report(out: Path, name: str, config: BenchmarkRunConfig, values: dict[str, Any]) -> Path:
    """``report.md`` and the figures from ``results.json``'s values."""
    n_paired = config.network_repeats
    lines = [f"# {name}: {config.benchmark}, multi-fidelity\n"]
    data = values.get("data", {})
    fids = data.get("fidelities", [])
    lines.append(
        f"Pools {config.n_train} + {config.n_test} ({config.design}, seed {config.seed}); budgets "
        f"{config.budgets} at fidelities {fids} (nested); baselines on {config.repeats} training "
        f"subsets, network methods on the first {n_paired}. nRMSE on the finest level, "
        "standardised per grid point with its training statistics (lower is better).\n"
    )
    lines.append("| fidelity | s per solution |\n|---:|---:|")
    for f, s in data.get("seconds_per_solution", {}).items():
        lines.append(f"| {f} | {s:.2e} |")
    if data:
        lines.append(
            f"\nTraining set {config.budgets}: {data['training_set_cost_s']:.3f} s of solves; "
            f"the same number of finest solutions: {data['all_finest_cost_s']:.3f} s.\n"
        )
    rows: list[tuple[str, dict[str, float], list[float], str]] = []
    for baseline, row in values.get("baselines", {}).items():
        paired = row["nrmse"][:n_paired]
        rows.append((baseline, _summary(row["nrmse"]), paired, f"{row['seconds']:.1f}"))
    for method, repeats in values.get("methods", {}).items():
        got = [repeats[str(r)] for r in range(n_paired) if str(r) in repeats]
        if not got:
            continue
        nr = [g["nrmse"] for g in got]
        times = (
            f"{sum(g['train_seconds'] for g in got):.0f} + "
            f"{sum(g['predict_seconds'] for g in got):.0f}"
        )
        rows.append((method, _summary(nr), nr, times))
    lines.append(
        f"| method | nRMSE mean ± std (repeats) | nRMSE on the first {n_paired} repeat(s) | "
        "seconds (train + predict, all repeats) |\n|---|---:|---:|---:|"
    )
    for method, summary, paired, seconds in sorted(rows, key=lambda r: np.mean(r[2])):
        spread = f" ± {_fmt(summary['std'])}" if summary["n"] > 1 else ""
        lines.append(
            f"| {_LABELS.get(method, method)} | {_fmt(summary['mean'])}{spread} "
            f"({summary['n']}) | {_fmt(float(np.mean(paired)))} | {seconds} |"
        )
    skipped = values.get("skipped_baselines") or []
    if skipped:
        lines.append(
            f"\nSkipped (optional dependencies missing, `pip install 'scorepde[mf]'`): "
            f"{', '.join(skipped)}."
        )
    coverage = [
        (m, [rep["coverage"] for rep in reps.values() if "coverage" in rep])
        for m, reps in values.get("methods", {}).items()
    ]
    coverage = [(m, c) for m, c in coverage if c]
    if coverage:
        lines.append(
            "\nCalibration of the sample spread (K samples per test input): share of finest "
            "test values inside the min-max band of the samples (nominal (K-1)/(K+1) for "
            "exchangeable samples) and inside mean ± 2 std.\n"
        )
        lines.append(
            "| method | min-max | nominal | ± 2 std | mean std |\n|---|---:|---:|---:|---:|"
        )
        for method, cov in coverage:
            mean = {k: float(np.mean([c[k] for c in cov])) for k in cov[0]}
            lines.append(
                f"| {_LABELS.get(method, method)} | {mean['minmax']:.3f} | "
                f"{mean['minmax_nominal']:.3f} | {mean['two_sigma']:.3f} | {mean['mean_std']:.3f} |"
            )
    dgmf = values.get("methods", {}).get("dgmf", {})
    dgmf_values = [dgmf[str(r)]["nrmse"] for r in range(n_paired) if str(r) in dgmf]
    if dgmf_values:
        ours = float(np.mean(dgmf_values))
        others = [(m, float(np.mean(p))) for m, _, p, _ in rows if m != "dgmf"]
        lines.append(
            "\n**Against the paper's claim** (error reduction of DGMF, paired repeats; "
            "negative: DGMF's error is higher):\n"
        )
        lines.append(
            "| reference | its nRMSE | DGMF's | reduction | the paper's |\n"
            "|---|---:|---:|---:|---:|"
        )
        paper = PAPER_REDUCTION.get(config.benchmark)
        paper_text = f"{paper:.1f} %" if paper is not None else "-"
        refs = []
        if others:
            refs.append(("the best other method", min(others, key=lambda r: r[1])))
        ar1 = [r for r in others if r[0] == "ar1_pca"]
        if ar1:
            refs.append(("the earlier multi-fidelity method here", ar1[0]))
        for label, (method, theirs) in refs:
            lines.append(
                f"| {label}: {_LABELS.get(method, method)} | {_fmt(theirs)} | {_fmt(ours)} | "
                f"{_reduction(theirs, ours)} | {paper_text} |"
            )
    continuous = values.get("continuous") or {}
    for part, title in (
        ("extrapolate", "never seen, above the finest"),
        ("hold_out", "left out of training"),
    ):
        row = continuous.get(part)
        if not row:
            continue
        lines.append(
            f"\n**Continuous fidelity: level {row['level']} ({title}).** DGMF with the fidelity "
            f"as a number, trained on {row['trained']} (repeat 0's subsets, "
            f"{row['train_seconds']:.0f} s), first {row['n_test']} test inputs, nRMSE in level "
            f"{row['level']}'s standardisation against its solver:\n"
        )
        lines.append("| prediction | nRMSE |\n|---|---:|")
        lines.extend(f"| {k} | {_fmt(v)} |" for k, v in row["nrmse"].items())
    figures = _figures(out, config, values)
    if figures:
        lines.append("")
        lines.extend(f"![{f.stem}]({f.name})" for f in figures)
    report = out / "report.md"
    atomic_write_text(report, "\n".join(lines) + "\n")
    return report


def _figures(out: Path, config: BenchmarkRunConfig, values: dict[str, Any]) -> list[Path]:
    from scorepde.plotting import pyplot, save_figure

    plt = pyplot()
    written = []
    sweep = values.get("sweep") or {}
    if sweep:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for baseline, by_budget in sweep.items():
            budgets = sorted(int(b) for b in by_budget)
            means = [float(np.mean(by_budget[str(b)])) for b in budgets]
            stds = [
                float(np.std(by_budget[str(b)], ddof=1)) if len(by_budget[str(b)]) > 1 else 0.0
                for b in budgets
            ]
            ax.errorbar(budgets, means, yerr=stds, marker="o", capsize=3, label=baseline)
        dgmf = values.get("methods", {}).get("dgmf", {})
        if dgmf:
            ax.scatter(
                [config.budgets[-1]],
                [np.mean([r["nrmse"] for r in dgmf.values()])],
                marker="*",
                s=120,
                color="k",
                zorder=5,
                label="DGMF",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("high-fidelity budget")
        ax.set_ylabel("nRMSE")
        ax.legend(fontsize=7)
        written.append(save_figure(fig, out / "budget_sweep.png"))
    samples_file = out / "samples.npz"
    if samples_file.is_file():
        with np.load(samples_file) as archive:
            truth, samples, coarse = archive["truth"], archive["samples"], archive["coarse"]
        if truth.shape[0]:
            panels = [
                ("truth (finest)", truth[0]),
                ("DGMF mean", samples[0].mean(axis=0)),
                (
                    "DGMF std",
                    samples[0].std(axis=0, ddof=1)
                    if samples.shape[1] > 1
                    else np.zeros_like(truth[0]),
                ),
                ("|truth - mean|", np.abs(truth[0] - samples[0].mean(axis=0))),
                ("coarse solver", coarse[0]),
            ]
            fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3))
            for ax, (title, image) in zip(axes, panels, strict=True):
                shown = ax.imshow(image, origin="lower", cmap="viridis")
                ax.set_title(title, fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
                fig.colorbar(shown, ax=ax, fraction=0.046)
            fig.suptitle("test input 0, standardised units", fontsize=9)
            written.append(save_figure(fig, out / "example.png"))
    return written
