"""The amortised posterior with default arguments on the sbi benchmark's gaussian_linear task.

``x ~ N(0, 0.1 I_d)``, ``y = x + N(0, 0.1 I_d)`` (``d = 10`` by default): the exact posterior
is ``N(y / 2, 0.05 I)``, standard deviation 0.2236 in every component
(``scorepde.inverse.linear_gaussian.make_gaussian_linear_task``). Trains
``AmortisedPosterior().train(x, y)`` with default arguments on ``--n-train`` simulated pairs,
then draws ``--n-samples`` posterior samples for each of ``--n-observations`` observations
(``sample_many``, all at once) with each sampler and prints a Markdown table: training time,
epochs (best / stopped), and per sampler the wall time, the largest error of the posterior
mean (in posterior standard deviations), of the standard deviation (relative) and of the
covariance (largest entry, relative to the variance 0.05), next to the Monte-Carlo noise
floor of ``n`` exact samples (the same statistics of ``n`` draws of the exact posterior).

One CPU thread. ``--train key=value`` overrides a ``TrainConfig`` field of the default recipe
(for experiments). Usage::

    python benchmarks/bench_inverse_defaults.py [--d 10] [--n-train 10000]
        [--n-observations 3] [--n-samples 10000] [--samplers NAME:STEPS ...]
        [--train epochs=50 ...] [--seed 0] [--json FILE]
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from scorepde.inverse.linear_gaussian import (  # noqa: E402
    LinearGaussianProblem,
    make_gaussian_linear_task,
)
from scorepde.inverse.posterior import (  # noqa: E402
    AmortisedPosterior,
    default_train_config,
    from_simulator,
)
from scorepde.sampling.registry import (  # noqa: E402
    DEFAULT_POSTERIOR_SAMPLER,
    DEFAULT_POSTERIOR_STEPS,
    DEFAULT_STEPS,
)

#: Network evaluations per sample for ``steps`` (sampling/registry.py's docstring).
NFE = {
    "euler_maruyama": lambda k: k + 1,
    "predictor_corrector": lambda k: 2 * k + 1,
    "ode_heun": lambda k: 2 * k,
    "ode_heun_edm": lambda k: 2 * k,
    "heun_churn": lambda k: 2 * k,
    "ode_dpm2m": lambda k: k + 1,
}
SAMPLERS = ("default", "euler_maruyama:500", "ode_dpm2m:19", "ode_heun_edm:10", "heun_churn:10")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-observations", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), help="NAME[:STEPS]")
    parser.add_argument("--train", nargs="*", default=[], help="TrainConfig overrides k=v")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    return parser.parse_args(argv)


def errors(samples: np.ndarray, problem: LinearGaussianProblem, y: np.ndarray) -> dict[str, float]:
    """Largest errors over components of one observation's ``samples (n, d)``."""
    mean, cov = problem.exact_posterior(y)
    std = np.sqrt(np.diag(cov))
    sample_cov = np.cov(samples, rowvar=False)
    return {
        "mean": float(np.max(np.abs(samples.mean(axis=0) - mean) / std)),
        "std": float(np.max(np.abs(np.sqrt(np.diag(sample_cov)) / std - 1.0))),
        "cov": float(np.max(np.abs(sample_cov - cov)) / np.max(np.diag(cov))),
    }


def worst(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: max(row[key] for row in rows) for key in rows[0]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    torch.set_num_threads(1)
    problem = make_gaussian_linear_task(args.d)
    x, y = from_simulator(problem.sample_prior, problem.forward, problem.noise, args.n_train, 0)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.train)}
    training = None
    if overrides:
        n_fit = args.n_train - round(0.1 * args.n_train)
        training = default_train_config(n_fit, args.seed).replace(**overrides)
    run_dir = tempfile.mkdtemp(prefix="bench-inverse-defaults-")
    start, cpu_start = time.perf_counter(), time.process_time()
    posterior = AmortisedPosterior().train(x, y, run_dir=run_dir, training=training, seed=args.seed)
    train_seconds, train_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    meta = posterior.metadata
    rng = np.random.default_rng(1)
    observations = problem.forward(problem.sample_prior(args.n_observations, rng))
    observations = problem.noise.sample(observations, rng)
    floor = worst(
        [
            errors(
                rng.multivariate_normal(*problem.exact_posterior(obs), size=args.n_samples),
                problem,
                obs,
            )
            for obs in observations
        ]
    )
    print(f"load average {os.getloadavg()[0]:.1f}; run folder {run_dir}")
    print(
        f"d = {args.d}, {args.n_train} pairs: training {train_seconds:.1f} s "
        f"({train_cpu:.1f} s CPU), "
        f"{meta.get('epochs')} epochs ({meta.get('steps')} steps; best epoch "
        f"{meta.get('best_epoch')}, stopped at {meta.get('stopped_epoch')}), best val loss "
        f"{meta.get('best_val_loss'):.4f}"
    )
    print(
        f"\n| sampler | steps | NFE | {args.n_samples} x {args.n_observations} obs. "
        "wall (CPU) [s] | mean err [post. std] | std err [rel.] | cov err [rel.] |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| exact (noise floor) | | | | {floor['mean']:.3f} | {floor['std']:.3f} | "
        f"{floor['cov']:.3f} |"
    )
    results: dict[str, Any] = {
        "d": args.d,
        "n_train": args.n_train,
        "train_seconds": train_seconds,
        "train_cpu_seconds": train_cpu,
        "load_average": os.getloadavg(),
        "training": {k: v for k, v in meta.items() if k != "train_seconds"},
        "floor": floor,
        "samplers": {},
    }
    for item in args.samplers:
        name, _, steps_text = item.partition(":")
        kwargs: dict[str, Any] = {}
        if name != "default":
            kwargs["sampler"] = name
        if steps_text:
            kwargs["steps"] = int(steps_text)
        start, cpu_start = time.perf_counter(), time.process_time()
        samples = posterior.sample_many(args.n_samples, observations, seed=2, **kwargs)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        err = worst([errors(s, problem, obs) for s, obs in zip(samples, observations, strict=True)])
        label = name if name != "default" else f"default ({DEFAULT_POSTERIOR_SAMPLER})"
        if "steps" in kwargs:
            steps = kwargs["steps"]
        elif name == "default":
            steps = DEFAULT_POSTERIOR_STEPS
        else:
            steps = DEFAULT_STEPS[name]
        nfe = NFE.get(name if name != "default" else DEFAULT_POSTERIOR_SAMPLER, lambda k: "")(steps)
        print(
            f"| {label} | {steps} | {nfe} | {seconds:.2f} ({cpu:.2f}) | {err['mean']:.3f} "
            f"| {err['std']:.3f} | {err['cov']:.3f} |"
        )
        results["samplers"][item] = {"seconds": seconds, "cpu_seconds": cpu, "steps": steps, **err}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return results


if __name__ == "__main__":
    main()
