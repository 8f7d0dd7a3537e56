"""Sampling time of trained models against their simulator, per stage for a two-stage model.

For each RUN (a run folder or a model folder), at one condition (``--condition``, default the
first of the recipe's evaluation conditions), draw ``--n`` fields with ``model.sample`` (the
recipe's sampler and steps, one batch, seed 0: what a user pays), best of ``--repeat``; for a
two-stage model (``StagedModel``) also its first stage alone and its solution map alone on
those inputs. The simulator's time for the same ``n`` fields at the same condition
(``problem.simulate``, latent draws and solves) is the reference of every ratio; all rows come
from one run on this machine.

``python benchmarks/bench_darcy_sampling.py RUN [RUN ...] [--n 1000] [--condition 0.2,1.0]
[--repeat 3] [--threads 2]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scorepde import pipeline
from scorepde.training.solution_map import StagedModel


def best_time(run: Callable[[], object], repeat: int) -> float:
    """The shortest wall time of ``repeat`` calls, seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def time_model(
    model: Any, condition: np.ndarray, n: int, options: dict[str, Any], repeat: int
) -> list[tuple[str, float]]:
    """``(label, seconds)`` of ``model.sample``, and for a two-stage model of each stage."""
    rows = [("model", best_time(lambda: model.sample(condition, n, **options), repeat))]
    if isinstance(model, StagedModel):
        inputs = model.inputs.sample(condition, n, **options)
        rows.append(
            (
                "  stage 1 alone",
                best_time(lambda: model.inputs.sample(condition, n, **options), repeat),
            )
        )
        rows.append(("  solution map alone", best_time(lambda: model.solution_map(inputs), repeat)))
    return rows


def main(argv: Sequence[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run or model folders")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--condition", default=None, help="comma-separated condition values")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = [pipeline.load_model(run) for run in args.runs]
    problem = pipeline.model_problem(models[0])
    recipe = models[0].metadata.get("recipe_config") or {}
    if args.condition is not None:
        condition = np.array([float(v) for v in args.condition.split(",")])
    else:
        listed = (recipe.get("evaluation") or {}).get("conditions")
        condition = np.asarray(listed[0] if listed else problem.default_evaluation_conditions()[0])
    rng = np.random.default_rng(0)
    simulator = best_time(lambda: problem.simulate(condition[None], args.n, [rng]), args.repeat)
    rows: list[dict[str, object]] = [
        {"sampler": f"simulator ({problem.name})", "seconds": simulator}
    ]
    for run, model in zip(args.runs, models, strict=True):
        sampling = (model.metadata.get("recipe_config") or {}).get("sampling") or {}
        options = {
            "sampler": sampling.get("sampler"),
            "steps": sampling.get("steps"),
            "seed": 0,
            "batch_size": args.n,
        }
        for label, seconds in time_model(model, condition, args.n, options, args.repeat):
            if label == "model":
                label = f"{run} ({options['sampler']}, {options['steps']} steps)"
            rows.append({"sampler": label, "seconds": seconds})
    print(f"n = {args.n}, condition {condition.tolist()}, {torch.get_num_threads()} threads")
    print("| sampler | s per n fields | ratio to the simulator |")
    print("|---|---:|---:|")
    for row in rows:
        row["ratio"] = float(row["seconds"]) / simulator
        print(f"| {row['sampler']} | {row['seconds']:.3f} | {row['ratio']:.2f} |")
    return rows


if __name__ == "__main__":
    main()
