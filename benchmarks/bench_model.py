"""Training throughput and sampling time of the score-model backbones, against the simulator.

Prints Markdown tables (record them in docs/benchmarks.md, section "Model: training throughput
and sampling time (CPU)"); ``--json PATH`` also writes them as JSON. Everything is measured in
ONE run on this machine, so the ratios between rows are meaningful:

1. Training: one optimiser step (``dsm_loss`` forward + backward + Adam step) at
   ``--batch-size`` (default 256) on the battery shape (C=2, N=100, k=3 conditions), for the seed
   FiLM net (channels 64, blocks 10, kernel 7), a small FiLM net (channels 32, blocks 4,
   kernel 5, FiLM hidden 64, time embedding 32) and the MLP backbone (hidden 256, depth 4). Each
   is built with ``ModelConfig``/``build_score_model`` (VP process, "edm" parametrisation).
   2 warm-up steps, then at least ``--train-steps`` steps and ``--train-seconds`` seconds.
2. Sampling: the time to generate ``--n`` (default 1000) samples at one condition (the centre
   of the design range, U0 = 0 V, l = sqrt(0.05 * 0.5) L, F_right = 25 A/m^2, encoded to zeros)
   in one batch, for each sampler and several step counts. The NFE per sample is measured with
   ``count_evaluations``. A configuration whose estimated time (NFE x the time of one batched
   score evaluation) exceeds ``--max-seconds`` (default 60) is timed on ``--n-seed`` samples
   (default 100) and extrapolated linearly to ``--n``; the table says "extrapolated".
3. Simulator reference: ``BatteryProblem.simulate`` (GP sampling + batched finite-volume solve)
   for the same ``--n`` fields at the same condition, best of 3; each sampling row gets the
   ratio model time / simulator time.

The networks have random (untrained) weights: the time of a forward or backward pass does not
depend on the values of the weights, so trained models sample at the same speed.

Threads: torch's default unless ``--threads N`` (``torch.set_num_threads``); the count in use
is printed. On a machine shared with other jobs ``--threads 1`` can be several times faster
than torch's default (threads waiting on a busy core; see docs/benchmarks.md). Short
measurements are repeated (best of up to 3 within ~1 s).

Usage::

    python benchmarks/bench_model.py [--batch-size 256] [--n 1000] [--n-seed 100]
        [--threads N] [--quick | --tiny] [--json PATH]
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

from scorepde.data.normalisation import ConditionEncoder
from scorepde.diffusion.losses import dsm_loss
from scorepde.diffusion.preconditioning import ScoreModel
from scorepde.nets.registry import BackboneConfig, count_parameters
from scorepde.problems.battery import BatteryProblem
from scorepde.sampling.samplers import (
    count_evaluations,
    sample_euler_maruyama,
    sample_predictor_corrector,
    sample_probability_flow_heun,
)
from scorepde.training.model import ModelConfig, build_score_model

SHAPE = (2, 100)  # battery: channels (c, phi), N = 100 grid points
COND_DIM = 3  # (U0, l, F_right)
#: Physical condition of the sampling runs: the centre of the design range (encodes to zeros).
CENTRE_CONDITION = (0.0, math.sqrt(0.05 * 0.5), 25.0)

BACKBONES: dict[str, BackboneConfig] = {
    "seed FiLM": BackboneConfig(
        "film", {"channels": 64, "blocks": 10, "kernel_size": 7, "cond_dim": COND_DIM}
    ),
    "small FiLM": BackboneConfig(
        "film",
        {
            "channels": 32,
            "blocks": 4,
            "kernel_size": 5,
            "film_hidden": 64,
            "time_embedding_dim": 32,
            "cond_dim": COND_DIM,
        },
    ),
    "MLP": BackboneConfig(
        "mlp",
        {"data_dim": SHAPE[0] * SHAPE[1], "hidden": 256, "depth": 4, "cond_dim": COND_DIM},
    ),
}

SamplerFn = Callable[..., torch.Tensor]
SAMPLER_FUNCTIONS: dict[str, tuple[SamplerFn, dict[str, Any]]] = {
    "euler_maruyama": (sample_euler_maruyama, {}),
    "predictor_corrector": (sample_predictor_corrector, {}),
    "probability_flow_heun": (sample_probability_flow_heun, {"time_grid_kind": "uniform"}),
}

#: (backbone, sampler) -> step counts, per mode.
FULL_PLAN: dict[str, dict[str, tuple[int, ...]]] = {
    "seed FiLM": {"euler_maruyama": (100,), "probability_flow_heun": (25,)},
    "small FiLM": {
        "euler_maruyama": (50, 100, 200),
        "predictor_corrector": (50, 100),
        "probability_flow_heun": (10, 25, 50),
    },
    "MLP": {
        "euler_maruyama": (50, 100, 200),
        "predictor_corrector": (50, 100),
        "probability_flow_heun": (10, 25, 50),
    },
}
QUICK_PLAN: dict[str, dict[str, tuple[int, ...]]] = {
    "seed FiLM": {"probability_flow_heun": (5,)},
    "small FiLM": {
        "euler_maruyama": (20,),
        "predictor_corrector": (10,),
        "probability_flow_heun": (5,),
    },
    "MLP": {
        "euler_maruyama": (20,),
        "predictor_corrector": (10,),
        "probability_flow_heun": (5,),
    },
}
TINY_PLAN: dict[str, dict[str, tuple[int, ...]]] = {
    "MLP": {
        "euler_maruyama": (2,),
        "predictor_corrector": (2,),
        "probability_flow_heun": (2,),
    },
}


@dataclass
class TrainingRow:
    backbone: str
    parameters: int
    batch_size: int
    steps_timed: int
    ms_per_step: float
    samples_per_second: float


@dataclass
class SamplingRow:
    backbone: str
    sampler: str
    steps: int
    nfe_per_sample: float
    samples_timed: int
    extrapolated: bool
    seconds: float  # for n samples (extrapolated when ``extrapolated``)
    samples_per_second: float
    model_over_simulator: float = math.nan


@dataclass
class SimulatorRow:
    fields: int
    seconds: float
    fields_per_second: float


@dataclass
class Report:
    machine: str
    python: str
    torch: str
    numpy: str
    threads: int
    date: str
    load_average: str
    command: str
    n: int
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def machine_name() -> str:
    """CPU model name from /proc/cpuinfo, else ``platform.processor()``, plus the core count."""
    name = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    name = name or platform.processor() or platform.machine()
    return f"{name} ({os.cpu_count()} logical cores)"


def build(name: str) -> ScoreModel:
    """The score model for backbone ``name`` of :data:`BACKBONES` (VP, "edm"), seeded weights."""
    torch.manual_seed(0)
    config = ModelConfig(
        backbone=BackboneConfig(BACKBONES[name].name, dict(BACKBONES[name].options))
    )
    return build_score_model(config)


def best_time(function: Callable[[], object], min_seconds: float = 1.0, repeats: int = 3) -> float:
    """Smallest wall time of up to ``repeats`` calls; stops once ``min_seconds`` are spent."""
    times: list[float] = []
    while not times or (len(times) < repeats and sum(times) < min_seconds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_training(
    name: str, batch_size: int, warmup: int, min_steps: int, min_seconds: float
) -> TrainingRow:
    """Time optimiser steps (DSM loss, backward, Adam) on random battery-shaped data."""
    model = build(name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn((batch_size, *SHAPE), generator=generator)
    cond = 2.0 * torch.rand((batch_size, COND_DIM), generator=generator) - 1.0

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = dsm_loss(model, x0, cond, generator=generator).mean()
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    steps = 0
    start = time.perf_counter()
    while steps < min_steps or time.perf_counter() - start < min_seconds:
        step()
        steps += 1
    elapsed = time.perf_counter() - start
    return TrainingRow(
        backbone=name,
        parameters=count_parameters(model),
        batch_size=batch_size,
        steps_timed=steps,
        ms_per_step=1e3 * elapsed / steps,
        samples_per_second=batch_size * steps / elapsed,
    )


def run_sampler(model: ScoreModel, sampler: str, steps: int, cond: torch.Tensor, n: int) -> float:
    """Sample ``n`` fields in one batch with a counting wrapper; returns the NFE per sample."""
    function, options = SAMPLER_FUNCTIONS[sampler]
    counted = count_evaluations(model)
    function(counted, model.process, SHAPE, cond, n=n, steps=steps, seed=0, **options)
    return counted.nfe(n)


def bench_sampling(
    name: str,
    plan: dict[str, tuple[int, ...]],
    cond: torch.Tensor,
    n: int,
    n_reduced: int,
    max_seconds: float,
) -> list[SamplingRow]:
    """Time every (sampler, steps) of ``plan`` for backbone ``name`` on ``n`` samples."""
    model = build(name).eval()
    x = torch.randn((n, *SHAPE), generator=torch.Generator().manual_seed(1))
    t = torch.full((n,), 0.5)
    batch_cond = cond.expand(n, -1)
    with torch.no_grad():
        model(x, t, batch_cond)  # warm-up
        evaluation = best_time(lambda: model(x, t, batch_cond), min_seconds=0.5)
    rows = []
    for sampler, step_counts in plan.items():
        for steps in step_counts:
            # NFE per sample from a counted 1-sample run (also a warm-up); it does not depend on n
            nfe = run_sampler(model, sampler, steps, cond, 1)
            estimate = nfe * evaluation
            timed_n = n if estimate <= max_seconds else min(n, n_reduced)

            def once(timed_n: int = timed_n, sampler: str = sampler, steps: int = steps) -> None:
                run_sampler(model, sampler, steps, cond, timed_n)

            min_seconds = 1.0 if timed_n == n else 0.0
            seconds = best_time(once, min_seconds=min_seconds) * n / timed_n
            rows.append(
                SamplingRow(
                    backbone=name,
                    sampler=sampler,
                    steps=steps,
                    nfe_per_sample=nfe,
                    samples_timed=timed_n,
                    extrapolated=timed_n != n,
                    seconds=seconds,
                    samples_per_second=n / seconds,
                )
            )
            print(f"  ... {name} {sampler} {steps} steps: {seconds:.2f} s", flush=True)
    return rows


def bench_simulator(problem: BatteryProblem, n: int) -> SimulatorRow:
    """GP sampling + batched finite-volume solve of ``n`` fields at the centre condition."""
    conditions = np.asarray([CENTRE_CONDITION])
    seconds = best_time(
        lambda: problem.simulate(conditions, n, [np.random.default_rng(0)]),
        min_seconds=math.inf,
    )
    return SimulatorRow(fields=n, seconds=seconds, fields_per_second=n / seconds)


def format_ratio(ratio: float) -> str:
    """``1,234x`` for large ratios, ``3.4x`` / ``0.52x`` for small ones."""
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2g}x"


def training_table(rows: Sequence[TrainingRow]) -> list[str]:
    lines = [
        "| backbone | params | batch | steps timed | ms/step | samples/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.backbone} | {row.parameters:,} | {row.batch_size} | {row.steps_timed} | "
            f"{row.ms_per_step:,.1f} | {row.samples_per_second:,.0f} |"
        )
    return lines


def sampling_table(rows: Sequence[SamplingRow], n: int) -> list[str]:
    lines = [
        f"| backbone | sampler | steps | NFE/sample | time for {n} samples (s) | samples/s | "
        "model / simulator |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        note = f" (extrapolated from {row.samples_timed})" if row.extrapolated else ""
        lines.append(
            f"| {row.backbone} | {row.sampler} | {row.steps} | {row.nfe_per_sample:g} | "
            f"{row.seconds:,.2f}{note} | {row.samples_per_second:,.0f} | "
            f"{format_ratio(row.model_over_simulator)} |"
        )
    return lines


def simulator_table(row: SimulatorRow) -> list[str]:
    return [
        "| simulator (`BatteryProblem.simulate`, GP + solve) | fields | time (s) | fields/s |",
        "|---|---:|---:|---:|",
        f"| batched finite volumes, one condition | {row.fields} | {row.seconds:.4f} | "
        f"{row.fields_per_second:,.0f} |",
    ]


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256, help="training batch size")
    parser.add_argument("--n", type=int, default=1000, help="samples per sampling run")
    parser.add_argument(
        "--n-seed",
        type=int,
        default=100,
        help="samples timed when a run would take over --max-seconds",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="estimated time above which to extrapolate"
    )
    parser.add_argument("--train-steps", type=int, default=5, help="minimum timed training steps")
    parser.add_argument(
        "--train-seconds", type=float, default=2.0, help="minimum timed training seconds"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer configurations (smoke test)")
    mode.add_argument("--tiny", action="store_true", help="MLP only, 2 steps (for tests)")
    parser.add_argument("--json", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args(argv)
    if min(args.batch_size, args.n, args.n_seed, args.train_steps) < 1:
        raise SystemExit("--batch-size, --n, --n-seed and --train-steps must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise SystemExit("--threads must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> Report:
    """Run the benchmark, print the tables and return them (also as JSON with ``--json``)."""
    args = parse_arguments(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    plan = TINY_PLAN if args.tiny else QUICK_PLAN if args.quick else FULL_PLAN
    warmup, min_steps, min_seconds = 2, args.train_steps, args.train_seconds
    if args.quick or args.tiny:
        warmup, min_steps, min_seconds = 1, 2, 0.0

    arguments = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(["python benchmarks/bench_model.py", *arguments])
    report = Report(
        machine=machine_name(),
        python=platform.python_version(),
        torch=torch.__version__,
        numpy=np.__version__,
        threads=torch.get_num_threads(),
        date=datetime.datetime.now().isoformat(timespec="minutes"),
        load_average=", ".join(f"{value:.2f}" for value in os.getloadavg()),
        command=command,
        n=args.n,
    )
    print(f"machine: {report.machine}")
    print(f"python {report.python}, torch {report.torch}, numpy {report.numpy}")
    print(f"torch threads: {report.threads}; load average at start: {report.load_average}")
    print(f"date: {report.date}; command: {report.command}")
    print(flush=True)

    problem = BatteryProblem()
    encoder = ConditionEncoder.from_specs(problem.conditions)
    encoded = encoder.encode(np.asarray([CENTRE_CONDITION]))
    cond = torch.as_tensor(np.asarray(encoded, dtype=np.float32)[0])  # (3,), ~zeros

    training = [
        bench_training(name, args.batch_size, warmup, min_steps, min_seconds) for name in plan
    ]
    simulator = bench_simulator(problem, args.n)
    sampling: list[SamplingRow] = []
    for name, backbone_plan in plan.items():
        sampling.extend(
            bench_sampling(name, backbone_plan, cond, args.n, args.n_seed, args.max_seconds)
        )
    for row in sampling:
        row.model_over_simulator = row.seconds / simulator.seconds

    print()
    print(f"Training: one optimiser step (DSM loss + backward + Adam), batch {args.batch_size}")
    print()
    print("\n".join(training_table(training)))
    print()
    print(f"Sampling: {args.n} samples at one condition, one batch, random weights")
    print()
    print("\n".join(sampling_table(sampling, args.n)))
    print()
    print("\n".join(simulator_table(simulator)))
    print(f"\nload average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")

    report.tables = {
        "training": [asdict(row) for row in training],
        "sampling": [asdict(row) for row in sampling],
        "simulator": [asdict(simulator)],
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
