"""Training throughput of the shipped recipes' models through the real ``Trainer``, against peak.

Prints Markdown tables (record them in docs/benchmarks.md, section "Training throughput");
``--json PATH`` also writes them. The same script runs on a GPU unchanged (``--device cuda``).

1. Peak: the FLOP rate of one large square matmul (``--peak-size``, default 2048 on CPU and
   8192 on CUDA) in the dtype the training matmuls use (fp32, or bf16 with ``--precision
   bf16``), best of 3.
2. FLOPs per training sample: ``torch.utils.flop_counter.FlopCounterMode`` over one forward +
   backward of the DSM loss at batch 8, divided by 8. It counts matmuls and convolutions
   (2 FLOPs per multiply-add), not element-wise work, activations or the optimiser.
3. Throughput: ``Trainer.fit`` (``scorepde.training``, so EMA, clipping, the cosine schedule,
   the device-resident data and the per-epoch host reads are all included) on random data of
   the battery shape (C = 2, N = 100, k = 3; time does not depend on the values) for the seed
   recipe's FiLM net (``battery-seed``) and the CPU recipe's MLP (``battery-quick``), and for
   the U-Net's CPU preset on 2 x 32 x 32 fields (``"U-Net CPU"``, k = 3), at several global
   batch sizes. One "epoch" is ``--steps`` optimiser steps; the first epoch is
   a warm-up (compilation, allocator, caches) and is not timed; epochs run until
   ``--seconds`` of timed epochs (at least 2). samples/s = epoch samples / median epoch time.
   Achieved FLOP/s = FLOPs per sample x samples/s; "of peak" divides by (1).
4. Threads (CPU only, ``--thread-counts``, default 1,2): one real epoch of the battery-quick
   recipe (9,000 fields = 400 conditions x 25 draws less 10 % validation, batch 256, MLP) at
   each torch thread count, median of ``--quick-epochs`` timed epochs after a warm-up epoch.

Usage::

    python benchmarks/bench_training.py [--device cpu|cuda] [--precision fp32|bf16]
        [--compile off|on] [--compile-mode default|reduce-overhead|max-autotune]
        [--threads N] [--batch-sizes 64,256,1024] [--seconds 5] [--steps 4]
        [--thread-counts 1,2] [--tiny] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from scorepde.data.campaign import problem_from_config
from scorepde.diffusion.losses import dsm_loss
from scorepde.fileio import atomic_write_text
from scorepde.nets.registry import BackboneConfig, count_parameters
from scorepde.pipeline import complete_recipe, model_sample_shape
from scorepde.recipes import load_recipe
from scorepde.training import ModelConfig, TrainConfig, Trainer, build_score_model
from scorepde.training.config import COMPILE_BACKEND_MODES, resolve_num_threads

SHAPE = (2, 100)  # battery: channels (c, phi), N = 100 grid points
UNET_SHAPE = (2, 32, 32)  # a 2-D field of 2 channels for the U-Net's CPU preset
COND_DIM = 3  # (U0, l, F_right)
#: The battery-quick recipe's training set: 400 conditions x 25 draws, 10 % held out.
QUICK_TRAIN_FIELDS = 9000
QUICK_BATCH = 256
#: Default global batch sizes per model and device kind.
BATCH_SIZES = {
    "cpu": {"seed FiLM": (32, 128), "quick MLP": (64, 256, 1024), "U-Net CPU": (64,)},
    "cuda": {
        "seed FiLM": (256, 1024, 4096),
        "quick MLP": (256, 1024, 4096, 16384),
        "U-Net CPU": (256, 1024),
    },
}


class _Enough(Exception):
    """Raised from the Trainer's epoch callback once enough epochs were timed."""


@dataclass
class PeakRow:
    dtype: str
    size: int
    seconds: float
    gflops: float


@dataclass
class ThroughputRow:
    model: str
    parameters: int
    batch_size: int
    epochs_timed: int
    ms_per_step: float
    samples_per_second: float
    mflop_per_sample: float
    achieved_gflops: float
    of_peak: float


@dataclass
class ThreadRow:
    fields: int
    threads: int
    epochs_timed: int
    epoch_seconds: float
    samples_per_second: float


@dataclass
class Report:
    machine: str
    python: str
    torch: str
    device: str
    precision: str
    compile: str
    threads: int
    auto_threads: int | None
    date: str
    load_average: list[str]
    command: str
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def machine_name(device: torch.device) -> str:
    """The GPU's name on CUDA; else the CPU model from /proc/cpuinfo and the core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name or platform.processor() or platform.machine()} ({os.cpu_count()} logical cores)"


def load_average() -> str:
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


Shape = tuple[int, ...]


def recipe_models(tiny: bool) -> dict[str, tuple[ModelConfig, Shape]]:
    """The backbones of the shipped recipes (or a tiny MLP for smoke tests), each with the
    shape of one sample in the model's space (``(2, 100)`` fields, or ``(1, K)`` subspace
    coefficients)."""
    if tiny:
        backbone = BackboneConfig(
            "mlp", {"data_dim": SHAPE[0] * SHAPE[1], "hidden": 16, "depth": 1, "cond_dim": 3}
        )
        return {"tiny MLP": (ModelConfig(backbone=backbone), SHAPE)}
    models = {}
    for name, recipe_name in (("seed FiLM", "battery-seed"), ("quick MLP", "battery-quick")):
        recipe = complete_recipe(load_recipe(recipe_name))
        problem = problem_from_config(recipe.data.train)
        models[name] = (recipe.model, tuple(model_sample_shape(recipe, problem)))
    unet = BackboneConfig("unet", {"dims": 2, "cond_dim": COND_DIM})  # the CPU preset
    models["U-Net CPU"] = (ModelConfig(backbone=unet), UNET_SHAPE)
    return models


def measure_peak(device: torch.device, dtype: torch.dtype, size: int) -> PeakRow:
    """Best of 3 ``size x size`` matmuls; 2 size^3 FLOPs each."""
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, generator=generator, device=device).to(dtype)
    b = torch.randn(size, size, generator=generator, device=device).to(dtype)
    torch.matmul(a, b)  # warm-up
    best = math.inf
    for _ in range(3):
        synchronise(device)
        start = time.perf_counter()
        torch.matmul(a, b)
        synchronise(device)
        best = min(best, time.perf_counter() - start)
    return PeakRow(str(dtype).removeprefix("torch."), size, best, 2 * size**3 / best / 1e9)


def flops_per_sample(
    model_config: ModelConfig, shape: Shape, device: torch.device, autocast: Any
) -> float:
    """Matmul/convolution FLOPs of one forward + backward of the DSM loss, per sample."""
    torch.manual_seed(0)
    model = build_score_model(model_config).to(device)
    batch = 8
    x = torch.randn(batch, *shape, device=device)
    cond = torch.zeros(batch, COND_DIM, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    with FlopCounterMode(display=False) as counter:
        with autocast():
            loss = dsm_loss(model, x, cond, generator=generator).float().mean()
        loss.backward()
    return counter.get_total_flops() / batch


def train_config(args: argparse.Namespace, batch_size: int, epochs: int) -> TrainConfig:
    return TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        checkpoint_every=epochs,
        device=args.device,
        precision=args.precision,
        compile=args.compile,
        compile_mode=args.compile_mode,
        num_threads=None,  # the benchmark sets the threads itself
        plot=False,
    )


def timed_epochs(
    model_config: ModelConfig,
    shape: Shape,
    config: TrainConfig,
    n_train: int,
    *,
    seconds: float,
    min_epochs: int = 2,
) -> list[float]:
    """Seconds of each timed epoch of ``Trainer.fit`` (the first, warm-up epoch excluded)."""
    torch.manual_seed(0)
    model = build_score_model(model_config)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n_train, *shape, generator=generator)
    cond = torch.rand(n_train, COND_DIM, generator=generator) * 2 - 1
    times: list[float] = []

    def record(epoch: int, row: dict[str, float]) -> None:
        if epoch > 1:
            times.append(row["epoch_seconds"])
        if len(times) >= min_epochs and sum(times) >= seconds:
            raise _Enough

    with tempfile.TemporaryDirectory(prefix="bench_training_") as run_dir:
        trainer = Trainer(model, config, run_dir)
        try:
            trainer.fit(x, cond, progress=False, callback=record)
        except _Enough:
            pass
    return times


def bench_throughput(
    args: argparse.Namespace, models: dict[str, tuple[ModelConfig, Shape]], peak: PeakRow
) -> list[ThroughputRow]:
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.precision == "bf16" else None

    def autocast() -> Any:
        if dtype is None:
            return torch.autocast(device.type, enabled=False)
        return torch.autocast(device.type, dtype=dtype)

    rows = []
    for name, (model_config, shape) in models.items():
        flops = flops_per_sample(model_config, shape, device, autocast)
        parameters = count_parameters(build_score_model(model_config))
        sizes = args.batch_sizes or BATCH_SIZES[device.type].get(name, (8,))
        for batch_size in sizes:
            config = train_config(args, batch_size, epochs=10_000)
            times = timed_epochs(
                model_config, shape, config, batch_size * args.steps, seconds=args.seconds
            )
            epoch = statistics.median(times)
            samples_per_second = batch_size * args.steps / epoch
            achieved = flops * samples_per_second / 1e9
            rows.append(
                ThroughputRow(
                    model=name,
                    parameters=parameters,
                    batch_size=batch_size,
                    epochs_timed=len(times),
                    ms_per_step=1e3 * epoch / args.steps,
                    samples_per_second=samples_per_second,
                    mflop_per_sample=flops / 1e6,
                    achieved_gflops=achieved,
                    of_peak=achieved / peak.gflops,
                )
            )
            print(f"  {name} batch {batch_size}: {samples_per_second:,.0f} samples/s", flush=True)
    return rows


def bench_threads(
    args: argparse.Namespace, model_config: ModelConfig, shape: Shape
) -> list[ThreadRow]:
    """One battery-quick epoch (9,000 fields, batch 256) per torch thread count."""
    rows = []
    before = torch.get_num_threads()
    n_train = args.quick_fields
    for threads in args.thread_counts:
        torch.set_num_threads(threads)
        config = train_config(args, QUICK_BATCH, epochs=10_000)
        times = timed_epochs(
            model_config, shape, config, n_train, seconds=0.0, min_epochs=args.quick_epochs
        )
        epoch = statistics.median(times)
        rows.append(ThreadRow(n_train, threads, len(times), epoch, n_train / epoch))
        print(f"  {threads} thread(s): {epoch:.2f} s/epoch", flush=True)
    torch.set_num_threads(before)
    return rows


def markdown(report: Report) -> str:
    lines = [
        f"machine: {report.machine}; torch {report.torch}; device {report.device}; precision "
        f"{report.precision}; compile {report.compile}; torch threads: {report.threads} "
        f"('auto' would use {report.auto_threads}); load average {report.load_average[0]} at "
        f"the start, {report.load_average[-1]} at the end; {report.date}",
        f"command: {report.command}",
        "",
        "| peak: square matmul | size | time (ms) | GFLOP/s |",
        "|---|---:|---:|---:|",
    ]
    for row in report.tables["peak"]:
        lines.append(
            f"| {row['dtype']} | {row['size']} | {1e3 * row['seconds']:.1f} | "
            f"{row['gflops']:,.1f} |"
        )
    lines += [
        "",
        "| model | params | batch | epochs timed | ms/step | samples/s | MFLOP/sample "
        "| achieved GFLOP/s | of peak |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report.tables["throughput"]:
        lines.append(
            f"| {row['model']} | {row['parameters']:,} | {row['batch_size']} | "
            f"{row['epochs_timed']} | {row['ms_per_step']:.1f} | {row['samples_per_second']:,.0f} "
            f"| {row['mflop_per_sample']:.2f} | {row['achieved_gflops']:,.1f} | "
            f"{100 * row['of_peak']:.1f} % |"
        )
    if report.tables.get("threads"):
        fields = report.tables["threads"][0]["fields"]
        lines += [
            "",
            f"| battery-quick epoch ({fields:,} fields, batch {QUICK_BATCH}) | epochs timed "
            "| s/epoch | samples/s |",
            "|---|---:|---:|---:|",
        ]
        for row in report.tables["threads"]:
            lines.append(
                f"| {row['threads']} thread(s) | {row['epochs_timed']} | "
                f"{row['epoch_seconds']:.2f} | {row['samples_per_second']:,.0f} |"
            )
    return "\n".join(lines)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected integers >= 1, e.g. 64,256")
    return values


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<i> (default cpu)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--compile", choices=("off", "on"), default="off")
    parser.add_argument("--compile-mode", choices=COMPILE_BACKEND_MODES, default="default")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    parser.add_argument(
        "--batch-sizes", type=_int_list, default=None, help="global batch sizes for every model"
    )
    parser.add_argument("--steps", type=int, default=4, help="optimiser steps per epoch")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per row")
    parser.add_argument("--peak-size", type=int, default=None, help="matmul size for the peak")
    parser.add_argument("--thread-counts", type=_int_list, default=(1, 2))
    parser.add_argument("--quick-epochs", type=int, default=2, help="timed quick epochs")
    parser.add_argument("--quick-fields", type=int, default=QUICK_TRAIN_FIELDS)
    parser.add_argument("--tiny", action="store_true", help="a tiny MLP, small sizes (tests)")
    parser.add_argument("--json", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.quick_epochs < 1:
        parser.error("--steps and --quick-epochs must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> Report:
    args = parse_arguments(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device!r}: CUDA is not available here")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.tiny:
        args.batch_sizes = args.batch_sizes or (8,)
        args.peak_size = args.peak_size or 64
        args.quick_fields = min(args.quick_fields, 64)
    models = recipe_models(args.tiny)
    start_load = load_average()
    report = Report(
        machine=machine_name(device),
        python=platform.python_version(),
        torch=torch.__version__,
        device=str(device),
        precision=args.precision,
        compile=args.compile + ("" if args.compile == "off" else f" ({args.compile_mode})"),
        threads=torch.get_num_threads(),
        auto_threads=resolve_num_threads("auto"),
        date=datetime.date.today().isoformat(),
        load_average=[start_load],
        command="python " + " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
    )
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    size = args.peak_size or (8192 if device.type == "cuda" else 2048)
    peak = measure_peak(device, dtype, size)
    print(f"peak {peak.dtype} matmul: {peak.gflops:,.1f} GFLOP/s", flush=True)
    report.tables["peak"] = [asdict(peak)]
    report.tables["throughput"] = [asdict(r) for r in bench_throughput(args, models, peak)]
    if device.type == "cpu" and args.thread_counts:
        quick = next(iter(models.values())) if args.tiny else models["quick MLP"]
        report.tables["threads"] = [asdict(r) for r in bench_threads(args, *quick)]
    report.load_average.append(load_average())
    print()
    print(markdown(report))
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(asdict(report), indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
