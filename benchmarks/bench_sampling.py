"""NFE table: accuracy and time of every sampler at several NFE budgets on a trained model.

For each evaluation condition, each sampler of ``scorepde.training.model.SAMPLERS`` that has an
NFE budget rule (``STEPS_FOR_NFE``) and each budget ``B`` of ``--nfe`` (default 10, 20, 50,
100, 200): draw ``--n`` fields (default 1000) with ``TrainedModel.sample`` (encoding, one batch,
de-normalisation: what a user pays), time it, and compare them with two fresh, independent
simulator sets of ``n`` fields at the same condition (``evaluation.simulator_reference``, the
evaluation's own seed stream) using the evaluation code (``compare_sample_sets``,
``check_targets``): mean error, std error, 95 % coverage, joint energy ratio, pass/fail against
the target profile (``--targets``, default ``quick``). The simulator's time for the same
``n`` fields is printed beside it, and the simulator-vs-simulator floor as its own row.

Budget rules (the NFE actually used is measured with ``count_evaluations`` and printed):
euler_maruyama and ode_dpm2m ``steps = B - 1``; predictor_corrector (one corrector step)
``steps = (B - 1) // 2``; ode_heun, ode_heun_edm and heun_churn ``steps = B // 2``.

At the end: the fastest configuration that passes the targets at every condition, and its time
for 1000 samples (measured when ``--n`` is 1000, else scaled linearly and marked).

Usage::

    python benchmarks/bench_sampling.py [MODEL] [--n 1000] [--nfe 10,20,50,100,200]
        [--samplers ode_dpm2m,ode_heun_edm] [--condition 0,0.1,25 ...] [--threads 1]
        [--json PATH]

MODEL defaults to ``runs/battery-quick/model`` (relative to the current directory).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scorepde.evaluation.compare import (
    QUICK_TARGETS,
    SEED_TARGETS,
    EvaluationTargets,
    check_targets,
    compare_sample_sets,
)
from scorepde.evaluation.evaluate import simulator_reference
from scorepde.pipeline import load_model
from scorepde.problems import get_problem
from scorepde.sampling.samplers import count_evaluations
from scorepde.training.model import SAMPLERS, TrainedModel

#: Sampler name -> steps for an NFE budget (see the module docstring).
STEPS_FOR_NFE: dict[str, Callable[[int], int]] = {
    "euler_maruyama": lambda budget: budget - 1,
    "predictor_corrector": lambda budget: (budget - 1) // 2,
    "ode_heun": lambda budget: budget // 2,
    "ode_heun_edm": lambda budget: budget // 2,
    "heun_churn": lambda budget: budget // 2,
    "ode_dpm2m": lambda budget: budget - 1,
}
TARGETS: dict[str, EvaluationTargets] = {"quick": QUICK_TARGETS, "seed": SEED_TARGETS}
#: Used when the model records no evaluation conditions: the battery-quick recipe's two.
DEFAULT_CONDITIONS = ((0.0, 0.1, 25.0), (0.0, 0.25, 25.0))


@dataclass
class Row:
    condition: dict[str, float]
    sampler: str
    budget: int
    steps: int
    nfe: float
    n: int
    seconds: float
    simulator_seconds: float
    mean_error: list[float]
    std_error: list[float]
    coverage: list[float]
    energy_ratio: float
    passed: bool
    failures: list[str] = field(default_factory=list)


def machine_name() -> str:
    """CPU model name from /proc/cpuinfo (else ``platform.processor()``) and the core count."""
    name = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name or platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def model_conditions(model: TrainedModel) -> list[tuple[float, ...]]:
    """The explicit evaluation conditions of the model's recipe, else ``DEFAULT_CONDITIONS``."""
    recipe = model.metadata.get("recipe_config") or {}
    rows = (recipe.get("evaluation") or {}).get("conditions") or DEFAULT_CONDITIONS
    return [tuple(float(v) for v in row) for row in rows]


def measured_nfe(model: TrainedModel, sampler: str, steps: int, cond: Any) -> float:
    """NFE per sample of ``sampler`` at ``steps``, counted on a one-sample run."""
    counted = count_evaluations(model.score_model)
    encoded = model.encode_conditions(cond, 1)
    SAMPLERS[sampler](counted, model.process, model.sample_shape, encoded, n=1, steps=steps)
    return counted.nfe(1)


def bench_condition(
    model: TrainedModel,
    condition: Sequence[float],
    index: int,
    *,
    samplers: Sequence[str],
    budgets: Sequence[int],
    n: int,
    seed: int,
    evaluation_seed: int,
    targets: EvaluationTargets,
    repeats: int = 1,
    log: Callable[[str], None] = print,
) -> tuple[list[Row], Row]:
    """All (sampler, budget) rows at one condition, and the simulator floor row."""
    problem = get_problem(model.problem_name or "battery")
    names = list(problem.condition_names)
    labels = {name: float(v) for name, v in zip(names, condition, strict=True)}
    start = time.perf_counter()
    sim_a = simulator_reference(problem, condition, n, seed=evaluation_seed, index=index, stream=0)
    simulator_seconds = time.perf_counter() - start
    sim_b = simulator_reference(problem, condition, n, seed=evaluation_seed, index=index, stream=1)

    def row(sampler: str, budget: int, steps: int, nfe: float, seconds: float, x: np.ndarray):
        result = compare_sample_sets(x, sim_a, sim_b, channels=problem.channels, grid=problem.grid)
        failures = check_targets(result, targets)
        return Row(
            condition=labels,
            sampler=sampler,
            budget=budget,
            steps=steps,
            nfe=nfe,
            n=n,
            seconds=seconds,
            simulator_seconds=simulator_seconds,
            mean_error=result["metrics"]["mean_error"],
            std_error=result["metrics"]["std_error"],
            coverage=result["metrics"]["coverage"],
            energy_ratio=result["joint"]["energy_ratio"],
            passed=not failures,
            failures=failures,
        )

    floor = row("simulator (floor)", 0, 0, 0.0, simulator_seconds, sim_b)
    log("\n".join(table_lines([floor], problem.channels)))
    rows = []
    for sampler in samplers:
        for budget in budgets:
            steps = STEPS_FOR_NFE[sampler](budget)
            if steps < 1:
                continue
            nfe = measured_nfe(model, sampler, steps, condition)
            seconds = math.inf
            for _ in range(repeats):
                start = time.perf_counter()
                x = model.sample(
                    condition, n, sampler=sampler, steps=steps, seed=seed, batch_size=n
                )
                seconds = min(seconds, time.perf_counter() - start)
            rows.append(row(sampler, budget, steps, nfe, seconds, x))
            log(table_lines([rows[-1]], problem.channels)[-1])
    return rows, floor


def _pair(values: Sequence[float], digits: int = 3) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in values)


def table_lines(rows: Sequence[Row], channels: Sequence[str]) -> list[str]:
    """Markdown table (header and one line per row, in order)."""
    chan = "/".join(channels)
    lines = [
        f"| condition | sampler | NFE | steps | time (s) | sim. time (s) | mean err {chan} | "
        f"std err {chan} | coverage {chan} | energy ratio | targets |",
        "|---|---|---:|---:|---:|---:|---|---|---|---:|---|",
    ]
    for r in rows:
        label = ", ".join(f"{k}={v:g}" for k, v in r.condition.items())
        nfe = "-" if r.budget == 0 else f"{r.nfe:g}"
        steps = "-" if r.budget == 0 else str(r.steps)
        lines.append(
            f"| {label} | {r.sampler} | {nfe} | {steps} | {r.seconds:.3f} | "
            f"{r.simulator_seconds:.3f} | {_pair(r.mean_error)} | {_pair(r.std_error)} | "
            f"{_pair(r.coverage)} | {r.energy_ratio:.2f} | {'pass' if r.passed else 'FAIL'} |"
        )
    return lines


def table(rows: Sequence[Row], floors: Sequence[Row], channels: Sequence[str]) -> list[str]:
    """The floor row of each condition followed by its sampler rows."""
    ordered = []
    for floor in floors:
        ordered.append(floor)
        ordered.extend(r for r in rows if r.condition == floor.condition)
    return table_lines(ordered, channels)


def fastest_passing(rows: Sequence[Row]) -> tuple[str, int, float] | None:
    """(sampler, budget, worst time over conditions) of the fastest config passing everywhere."""
    configs: dict[tuple[str, int], list[Row]] = {}
    for r in rows:
        configs.setdefault((r.sampler, r.budget), []).append(r)
    conditions = {json.dumps(r.condition, sort_keys=True) for r in rows}
    passing = [
        (max(r.seconds for r in group), key)
        for key, group in configs.items()
        if len(group) == len(conditions) and all(r.passed for r in group)
    ]
    if not passing:
        return None
    seconds, (sampler, budget) = min(passing)
    return sampler, budget, seconds


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "model", nargs="?", type=Path, default=Path("runs/battery-quick/model"),
        help="model, checkpoint or run folder",
    )  # fmt: skip
    parser.add_argument("--n", type=int, default=1000, help="samples per configuration")
    parser.add_argument("--nfe", default="10,20,50,100,200", help="NFE budgets, comma-separated")
    parser.add_argument(
        "--samplers", default=",".join(STEPS_FOR_NFE), help="comma-separated sampler names"
    )
    parser.add_argument(
        "--condition",
        action="append",
        default=None,
        help="physical condition as comma-separated values in the model's order (repeatable); "
        "default: the recipe's evaluation conditions",
    )
    parser.add_argument("--seed", type=int, default=0, help="first per-sample seed")
    parser.add_argument("--evaluation-seed", type=int, default=2024, help="simulator seed")
    parser.add_argument("--targets", default="quick", help="quick | seed")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads(N)")
    parser.add_argument("--repeats", type=int, default=1, help="time = best of R runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    try:
        args.budgets = [int(b) for b in args.nfe.split(",") if b.strip()]
    except ValueError as error:
        parser.error(f"--nfe {args.nfe!r}: expected comma-separated integers ({error})")
    args.sampler_names = [s.strip() for s in args.samplers.split(",") if s.strip()]
    unknown = [s for s in args.sampler_names if s not in STEPS_FOR_NFE]
    if unknown:
        parser.error(
            f"--samplers: {unknown} not allowed; expected names from {list(STEPS_FOR_NFE)}"
        )
    if args.targets not in TARGETS:
        parser.error(f"--targets {args.targets!r} not allowed; expected one of {list(TARGETS)}")
    if args.n < 2 or min(args.threads, args.repeats) < 1 or not args.budgets:
        parser.error("need --n >= 2, --threads >= 1, --repeats >= 1 and some NFE budgets")
    if min(args.budgets) < 1:
        parser.error(f"--nfe {args.nfe!r}: budgets must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table; returns (and with ``--json`` writes) the rows."""
    args = parse_arguments(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    if args.condition:
        conditions = [tuple(float(v) for v in c.split(",")) for c in args.condition]
    else:
        conditions = model_conditions(model)
    command = " ".join(
        ["python benchmarks/bench_sampling.py", *(sys.argv[1:] if argv is None else argv)]
    )
    header = {
        "machine": machine_name(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": datetime.datetime.now().isoformat(timespec="minutes"),
        "load_average_start": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
        "command": command,
        "model": str(args.model),
        "n": args.n,
        "targets": args.targets,
        "repeats": args.repeats,
    }
    for key, value in header.items():
        print(f"{key}: {value}")
    print(flush=True)
    rows: list[Row] = []
    floors: list[Row] = []
    for index, condition in enumerate(conditions):
        found, floor = bench_condition(
            model,
            condition,
            index,
            samplers=args.sampler_names,
            budgets=args.budgets,
            n=args.n,
            seed=args.seed,
            evaluation_seed=args.evaluation_seed,
            targets=TARGETS[args.targets],
            repeats=args.repeats,
        )
        rows.extend(found)
        floors.append(floor)
    print()
    print("\n".join(table(rows, floors, model.channel_names)))
    best = fastest_passing(rows)
    print()
    if best is None:
        print(f"no configuration passes the {args.targets!r} targets at every condition")
    else:
        sampler, budget, seconds = best
        scaled = seconds * 1000 / args.n
        note = "" if args.n == 1000 else f" (scaled linearly from n = {args.n})"
        print(
            f"fastest passing everywhere: {sampler} at NFE budget {budget}: {seconds:.2f} s for "
            f"{args.n} samples; {scaled:.2f} s per 1000 samples{note}"
        )
    header["load_average_end"] = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average at end: {header['load_average_end']}")
    report = {
        **header,
        "rows": [asdict(r) for r in rows],
        "floors": [asdict(r) for r in floors],
        "fastest_passing": None
        if best is None
        else dict(zip(("sampler", "budget", "seconds"), best, strict=True)),
    }
    if args.json is not None:
        from scorepde.fileio import atomic_write_text

        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps(report, indent=1, default=float) + "\n")
    return report


if __name__ == "__main__":
    main()
