"""sbi benchmark: scorepde's amortised posterior beside sbi's NPE and NPSE on sbibm tasks.

For each task (sbibm: Lueckmann et al. 2021) the prior and the simulator make
``--num-simulations`` pairs (one seed per task), and every method trains on the *same* pairs
in the same run:

* ``scorepde``: ``AmortisedPosterior().train(theta, x)`` then ``sample_many`` for all
  observations at once, both with the library's default arguments (model, training length,
  sampler); ``--scorepde-steps`` caps the optimiser steps for smoke runs only;
* ``npe``: ``sbi.inference.NPE(prior)`` (a neural spline flow), defaults;
* ``npse``: ``sbi.inference.NPSE(prior)`` (a score-based estimator), defaults.

Each draws ``--num-samples`` posterior samples for the benchmark's observations
(``--observations``, numbered 1-10 in sbibm) and is scored by the classifier two-sample test
``sbibm.metrics.c2st`` against the reference posterior samples shipped with sbibm (0.5: the
classifier cannot tell them apart; 1.0: it always can). Printed: a Markdown table (C2ST per
observation and their mean, training seconds, sampling seconds per observation); written: a
JSON file with every number, the settings and the versions.

Install (not part of scorepde's own dependencies; sbibm 1.1.0 pins sbi < 0.22, so it goes in
without its dependencies, and the extra lists what its tasks and metrics import)::

    pip install -e '.[bench]' && pip install --no-deps sbibm==1.1.0

Usage::

    python benchmarks/bench_sbi.py [--tasks gaussian_mixture,gaussian_linear_uniform,...]
        [--num-simulations 10000] [--observations 1,2,3,4,5] [--methods scorepde,npe,npse]
        [--num-samples 10000] [--threads 1] [--seed 0] [--scorepde-steps N] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

TASKS = ("gaussian_mixture", "gaussian_linear_uniform", "bernoulli_glm", "slcp_distractors")
METHODS = ("scorepde", "npe", "npse")
INSTALL = "pip install -e '.[bench]' && pip install --no-deps sbibm==1.1.0"


def missing_packages() -> list[str]:
    """The benchmark's packages that cannot be imported here (empty: ready to run)."""
    missing = []
    for name in ("sbi", "sbibm", "sklearn", "pyro"):
        try:
            __import__(name)
        except Exception:  # sbibm fails with ImportError or worse when its imports are missing
            missing.append(name)
    if "sbibm" not in missing:
        try:
            import sbibm.metrics  # noqa: F401  (imports future, autograd, sklearn)
        except Exception:
            missing.append("sbibm.metrics")
    return missing


@contextlib.contextmanager
def _trusted_sbibm_files() -> Iterator[None]:
    """slcp_distractors' simulator ``torch.load``s a pickled pyro mixture shipped with sbibm;
    torch >= 2.6 loads weights only unless the classes are allow-listed, as here."""
    import pyro.distributions as pdist
    import torch

    allowed = [
        pdist.torch.MixtureSameFamily,
        pdist.torch.Categorical,
        pdist.torch.Independent,
        pdist.torch.Chi2,
        pdist.MultivariateStudentT,
    ]
    with torch.serialization.safe_globals(allowed):
        yield


def simulate(task: Any, n: int, seed: int) -> tuple[Any, Any]:
    """``n`` pairs ``theta (n, d)``, ``x (n, k)`` (float32 tensors) from the task's prior and
    simulator, seeded."""
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (some sbibm simulators draw from numpy's global state)
    theta = task.get_prior()(num_samples=n)
    with _trusted_sbibm_files():
        x = task.get_simulator()(theta)
    return theta, x


def run_scorepde(
    theta: Any,
    x: Any,
    observations: Any,
    num_samples: int,
    seed: int,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Train ``AmortisedPosterior`` with its defaults on ``(theta, x)`` (theta is the unknown,
    x the observation) and sample every observation at once with ``sample_many``'s defaults.
    ``max_steps``: smoke runs only, caps the default recipe's optimiser steps."""
    from scorepde.inverse import AmortisedPosterior

    theta_np = theta.double().numpy()
    x_np = x.double().numpy()
    with tempfile.TemporaryDirectory(prefix="bench-sbi-") as run_dir:
        options: dict[str, Any] = {"run_dir": run_dir}
        if max_steps is not None:
            options["training"] = _capped_training(len(theta_np), max_steps, seed)
        start = time.perf_counter()
        posterior = AmortisedPosterior().train(theta_np, x_np, seed=seed, **options)
        train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    samples = posterior.sample_many(num_samples, observations.double().numpy(), seed=seed)
    sample_seconds = time.perf_counter() - start
    return {
        "samples": samples,
        "train_seconds": train_seconds,
        "sample_seconds": sample_seconds,
        "details": {k: v for k, v in posterior.metadata.items() if isinstance(v, int | float)},
    }


def _capped_training(n_pairs: int, max_steps: int, seed: int) -> Any:
    """The default training recipe cut to about ``max_steps`` optimiser steps (smoke runs)."""
    import math

    from scorepde.inverse import default_train_config

    n_fit = n_pairs - round(0.1 * n_pairs)
    config = default_train_config(n_fit, seed=seed)
    epochs = max(1, math.ceil(max_steps / math.ceil(n_fit / config.batch_size)))
    return config.replace(epochs=epochs, checkpoint_every=epochs, val_every=max(1, epochs // 5))


def run_sbi(
    method: str, task: Any, theta: Any, x: Any, observations: Any, num_samples: int, seed: int
) -> dict[str, Any]:
    """sbi's NPE or NPSE with default arguments on the same pairs; one ``sample`` call per
    observation."""
    import torch
    from sbi.inference import NPE, NPSE

    torch.manual_seed(seed)
    prior = task.get_prior_dist()
    builder = {"npe": NPE, "npse": NPSE}[method]
    inference = builder(prior=prior, show_progress_bars=False)
    start = time.perf_counter()
    estimator = inference.append_simulations(theta, x).train()
    train_seconds = time.perf_counter() - start
    posterior = inference.build_posterior(estimator)
    start = time.perf_counter()
    samples = [
        posterior.sample((num_samples,), x=observation[None], show_progress_bars=False)
        .detach()
        .double()
        .numpy()
        for observation in observations
    ]
    sample_seconds = time.perf_counter() - start
    return {
        "samples": np.stack(samples),
        "train_seconds": train_seconds,
        "sample_seconds": sample_seconds,
        "details": {"epochs": int(getattr(inference, "epoch", 0) or 0)},
    }


def c2st_score(reference: np.ndarray, samples: np.ndarray, seed: int) -> float:
    """``sbibm.metrics.c2st`` (5-fold cross-validated accuracy of an MLP classifier, z-scored
    by the reference) between ``reference (n, d)`` and ``samples (m, d)``; non-finite samples
    count as a failed method (1.0)."""
    import torch
    from sbibm.metrics import c2st

    if not np.all(np.isfinite(samples)):
        return 1.0
    score = c2st(
        torch.as_tensor(reference, dtype=torch.float32),
        torch.as_tensor(samples, dtype=torch.float32),
        seed=seed,
    )
    return float(score.reshape(-1)[0])


def run_benchmark(
    tasks: Sequence[str],
    *,
    num_simulations: int = 10_000,
    observations: Sequence[int] = (1, 2, 3, 4, 5),
    methods: Sequence[str] = METHODS,
    num_samples: int = 10_000,
    seed: int = 0,
    scorepde_steps: int | None = None,
    log: Any = print,
) -> list[dict[str, Any]]:
    """One row per (task, method): C2ST per observation, their mean, the training and
    sampling seconds. Pairs of task ``i`` come from seed ``seed + i``; every method trains on
    them."""
    import sbibm
    import torch

    rows = []
    for i, name in enumerate(tasks):
        task = sbibm.get_task(name)
        start = time.perf_counter()
        theta, x = simulate(task, num_simulations, seed + i)
        simulate_seconds = time.perf_counter() - start
        obs = torch.cat([task.get_observation(num_observation=k) for k in observations])
        references = [
            task.get_reference_posterior_samples(num_observation=k)[:num_samples].double().numpy()
            for k in observations
        ]
        log(f"{name}: {num_simulations} simulations in {simulate_seconds:.1f} s")
        for method in methods:
            if method == "scorepde":
                result = run_scorepde(theta, x, obs, num_samples, seed, scorepde_steps)
            else:
                result = run_sbi(method, task, theta, x, obs, num_samples, seed)
            start = time.perf_counter()
            scores = [
                c2st_score(reference, samples, seed)
                for reference, samples in zip(references, result["samples"], strict=True)
            ]
            row = {
                "task": name,
                "method": method,
                "num_simulations": num_simulations,
                "num_samples": num_samples,
                "observations": list(observations),
                "c2st": scores,
                "c2st_mean": float(np.mean(scores)),
                "train_seconds": result["train_seconds"],
                "sample_seconds_per_observation": result["sample_seconds"] / len(observations),
                "c2st_seconds": time.perf_counter() - start,
                "details": result["details"],
            }
            rows.append(row)
            log(
                f"  {method}: C2ST {row['c2st_mean']:.3f} ({', '.join(f'{s:.3f}' for s in scores)})"
                f"; train {row['train_seconds']:.1f} s, sample "
                f"{row['sample_seconds_per_observation']:.2f} s per observation"
            )
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table (C2ST: 0.5 is best)."""
    lines = [
        "| task | method | C2ST mean | C2ST per observation | train s | sample s / obs |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        per = ", ".join(f"{s:.3f}" for s in row["c2st"])
        lines.append(
            f"| {row['task']} | {row['method']} | {row['c2st_mean']:.3f} | {per} | "
            f"{row['train_seconds']:.1f} | {row['sample_seconds_per_observation']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _list(text: str, allowed: Sequence[str] | None, name: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values or (allowed is not None and any(v not in allowed for v in values)):
        raise argparse.ArgumentTypeError(
            f"{name} = {text!r} is not allowed; expected a comma-separated list of {allowed}"
        )
    return values


def _observations(text: str) -> list[int]:
    try:
        values = [int(v) for v in _list(text, None, "--observations")]
    except ValueError:
        values = []
    if not values or any(not 1 <= v <= 10 for v in values):
        raise argparse.ArgumentTypeError(
            f"--observations = {text!r} is not allowed; expected numbers in 1..10, e.g. 1,2,3"
        )
    return values


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; expected an integer >= 1")
    return value


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=lambda t: _list(t, TASKS, "--tasks"), default=list(TASKS))
    parser.add_argument("--num-simulations", type=_positive, default=10_000)
    parser.add_argument("--observations", type=_observations, default=[1, 2, 3, 4, 5])
    parser.add_argument(
        "--methods", type=lambda t: _list(t, METHODS, "--methods"), default=list(METHODS)
    )
    parser.add_argument("--num-samples", type=_positive, default=10_000)
    parser.add_argument("--threads", type=_positive, default=1, help="torch and BLAS threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scorepde-steps",
        type=_positive,
        default=None,
        help="smoke runs only: cap scorepde's optimiser steps (default: the library's defaults)",
    )
    parser.add_argument("--json", type=Path, default=Path("bench_sbi.json"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)
    missing = missing_packages()
    if missing:
        print(f"missing packages {missing}; install with: {INSTALL}", file=sys.stderr)
        return 2
    import sbi
    import sbibm
    import torch

    from scorepde.fileio import atomic_write_text
    from scorepde.provenance import provenance

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = run_benchmark(
        args.tasks,
        num_simulations=args.num_simulations,
        observations=args.observations,
        methods=args.methods,
        num_samples=args.num_samples,
        seed=args.seed,
        scorepde_steps=args.scorepde_steps,
    )
    table = markdown(rows)
    print(table)
    print(f"total {time.perf_counter() - start:.0f} s, {args.threads} thread(s)")
    record = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows": rows,
        "versions": {
            "sbi": sbi.__version__,
            "sbibm": getattr(sbibm, "__version__", "?"),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "provenance": provenance(),
    }
    atomic_write_text(args.json, json.dumps(record, indent=2) + "\n")
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
