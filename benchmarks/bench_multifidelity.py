"""Multi-fidelity benchmarks (Poisson 2-D, Heat 1-D, Burgers 1-D): data-generation cost and the
nRMSE of the baselines, trained on the same data in the same run.

``python benchmarks/bench_multifidelity.py [--benchmarks poisson,heat,burgers] [--repeats 5]
[--baselines coarse_solver,linear,affine,gp_pca,ar1_pca] [--sweep 5,10,20,40]
[--sweep-baselines ...] [--n-train 512] [--n-test 128] [--seed 0] [--out PATH]``

For each benchmark it draws the pools (Sobol, seeded), solves them at every fidelity (timed),
interpolates to the finest grid and then prints

1. seconds per solution per fidelity, and the cost of the default training set (100 / 50 / 20 /
   5 from the lowest fidelity up) against the same number of finest solutions;
2. the nRMSE of every available baseline at the default budgets, mean ± std over the repeats;
3. the nRMSE against the high-fidelity budget (``--sweep``, the lower budgets fixed) for the
   baselines named by ``--sweep-baselines``.

Baselines whose optional packages are missing (``pip install 'scorepde[mf]'``) are skipped with
a note. The score model and the deterministic U-Net regression of the issue are not here yet.
Runs on one thread (the script sets the BLAS variables before importing numpy).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from scorepde.multifidelity import (  # noqa: E402
    BASELINES,
    DEFAULT_BUDGETS,
    available_baselines,
    evaluate_baselines,
    generate_data,
    get_benchmark,
)


def parse_list(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


def run_benchmark(name: str, args: argparse.Namespace, baselines: list[str]) -> dict:
    benchmark = get_benchmark(name)
    start = time.perf_counter()
    data = generate_data(benchmark, args.n_train, args.n_test, args.seed)
    generation = time.perf_counter() - start
    seconds = data.seconds_per_solution
    budgets = list(DEFAULT_BUDGETS)
    mixed_cost = sum(b * seconds[f] for b, f in zip(budgets, benchmark.fidelities, strict=True))
    report: dict = {
        "fidelities": list(benchmark.fidelities),
        "seconds_per_solution": {str(f): s for f, s in seconds.items()},
        "training_set_cost_s": mixed_cost,
        "all_finest_cost_s": sum(budgets) * seconds[benchmark.finest],
        "generation_s": generation,
        "baselines": {},
        "sweep": {},
    }
    for baseline in baselines:
        start = time.perf_counter()
        values = evaluate_baselines(
            data, {baseline: BASELINES[baseline]}, budgets, args.repeats, args.seed
        )[baseline]
        report["baselines"][baseline] = {
            "nrmse": values.tolist(),
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "seconds": time.perf_counter() - start,
        }
    for baseline in [b for b in args.sweep_baselines if b in baselines]:
        rows = {}
        for high in args.sweep:
            values = evaluate_baselines(
                data,
                {baseline: BASELINES[baseline]},
                [*budgets[:-1], high],
                args.repeats,
                args.seed,
            )[baseline]
            rows[str(high)] = {"mean": float(values.mean()), "std": float(values.std(ddof=1))}
        report["sweep"][baseline] = rows
    return report


def print_report(name: str, report: dict) -> None:
    print(f"\n## {name}\n")
    print("| fidelity | s per solution |")
    print("|---:|---:|")
    for fidelity, seconds in report["seconds_per_solution"].items():
        print(f"| {fidelity} | {seconds:.2e} |")
    print(
        f"\ntraining set {DEFAULT_BUDGETS}: {report['training_set_cost_s']:.3f} s; the same "
        f"number of finest solutions: {report['all_finest_cost_s']:.3f} s "
        f"(generation of both pools at every fidelity: {report['generation_s']:.1f} s)\n"
    )
    print("| baseline | nRMSE mean ± std | fit+predict (s, all repeats) |")
    print("|---|---:|---:|")
    for baseline, row in report["baselines"].items():
        print(f"| {baseline} | {row['mean']:.3g} ± {row['std']:.2g} | {row['seconds']:.1f} |")
    for baseline, rows in report["sweep"].items():
        print(f"\n{baseline}, nRMSE against the high-fidelity budget (lower budgets fixed):\n")
        print("| " + " | ".join(rows) + " |")
        print("|" + "---:|" * len(rows))
        print("| " + " | ".join(f"{r['mean']:.3g} ± {r['std']:.2g}" for r in rows.values()) + " |")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmarks", type=parse_list, default=["poisson", "heat", "burgers"])
    parser.add_argument("--baselines", type=parse_list, default=list(BASELINES))
    parser.add_argument(
        "--sweep", type=lambda t: [int(v) for v in parse_list(t)], default=[5, 10, 20, 40]
    )
    parser.add_argument(
        "--sweep-baselines", type=parse_list, default=["linear", "gp_pca", "ar1_pca"]
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=512)
    parser.add_argument("--n-test", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.baselines) - set(BASELINES))
    if unknown:
        parser.error(f"unknown baselines {unknown}; expected some of {sorted(BASELINES)}")
    here = available_baselines()
    for missing in [b for b in args.baselines if b not in here]:
        print(f"note: baseline {missing!r} skipped (pip install 'scorepde[mf]')")
    baselines = [b for b in args.baselines if b in here]
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GPy's and scikit-learn's optimiser chatter
        for name in args.benchmarks:
            results[name] = run_benchmark(name, args, baselines)
            print_report(name, results[name])
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
