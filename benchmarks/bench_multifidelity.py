"""Multi-fidelity benchmarks (Poisson 2-D, Heat 1-D, Burgers 1-D): data-generation cost and the
nRMSE of the baselines, trained on the same data in the same run.

``python benchmarks/bench_multifidelity.py [--benchmarks poisson,heat,burgers] [--repeats 5]
[--baselines coarse_solver,linear,affine,gp_pca,ar1_pca] [--sweep 5,10,20,40]
[--sweep-baselines ...] [--methods dgmf,score_high,unet_regression] [--dgmf-... options]
[--n-train 512] [--n-test 128] [--seed 0] [--out PATH]``

For each benchmark it draws the pools (Sobol, seeded), solves them at every fidelity (timed),
interpolates to the finest grid and then prints

1. seconds per solution per fidelity, and the cost of the default training set (100 / 50 / 20 /
   5 from the lowest fidelity up) against the same number of finest solutions;
2. the nRMSE of every available baseline at the default budgets, mean ± std over the repeats;
3. the nRMSE against the high-fidelity budget (``--sweep``, the lower budgets fixed) for the
   baselines named by ``--sweep-baselines``.

Baselines whose optional packages are missing (``pip install 'scorepde[mf]'``) are skipped with
a note. ``--methods`` (default: none) adds the network methods of :mod:`scorepde.multifidelity.
dgmf`, trained on the same data and subsets in the same run: ``dgmf`` (the score model on all
levels), ``score_high`` (baseline (a): the same model on the finest level only) and
``unet_regression`` (baseline (b)); they print their nRMSE, training and sampling time and, for
the score models, the coverage of the truth by the band of their ``K`` samples. Method ``m`` of
repeat ``r`` uses the seed ``100 * seed + r``.
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
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from scorepde.multifidelity import (  # noqa: E402
    BASELINES,
    DEFAULT_BUDGETS,
    available_baselines,
    evaluate_baselines,
    generate_data,
    get_benchmark,
    make_training_set,
    nrmse,
)
from scorepde.multifidelity.dgmf import (  # noqa: E402
    NETWORK_METHODS,
    DGMFConfig,
    band_coverage,
    run_network_method,
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
    if args.methods:
        report["methods"] = run_methods(data, args, budgets)
    return report


def dgmf_config(args: argparse.Namespace) -> DGMFConfig:
    return DGMFConfig(
        fidelity=args.dgmf_fidelity,
        base_channels=args.dgmf_base_channels,
        epochs=args.dgmf_epochs,
        steps_per_epoch=args.dgmf_steps_per_epoch,
        batch_size=args.dgmf_batch_size,
        learning_rate=args.dgmf_lr,
        level_weights=args.dgmf_level_weights,
        sampler=args.dgmf_sampler,
        steps=args.dgmf_sampler_steps,
        samples=args.dgmf_samples,
        sigma_min_fraction=args.dgmf_sigma_min_fraction,
        num_threads=1,
    )


def run_methods(data, args: argparse.Namespace, budgets: list[int]) -> dict:
    """The network methods on the same repeats (subsets) as the baselines."""
    base = dgmf_config(args)
    rows: dict = {}
    for method in args.methods:
        values, coverage, metadata, train_s, predict_s = [], [], [], 0.0, 0.0
        for repeat in range(args.repeats):
            training, test = make_training_set(data, budgets, repeat, args.seed)
            config = replace(base, seed=100 * args.seed + repeat)
            out = run_network_method(method, config, training, test)
            values.append(nrmse(test.fields, out["prediction"]))
            train_s += out["train_seconds"]
            predict_s += out["predict_seconds"]
            metadata.append(out["metadata"])
            if out["samples"] is not None:
                truth = test.fields.reshape(out["samples"].shape[0], *out["samples"].shape[2:])
                coverage.append(band_coverage(out["samples"], truth))
        array = np.asarray(values)
        rows[method] = {
            "nrmse": values,
            "mean": float(array.mean()),
            "std": float(array.std(ddof=1)) if array.size > 1 else 0.0,
            "train_seconds": train_s,
            "predict_seconds": predict_s,
            "coverage": coverage,
            "metadata": metadata,
            "config": {k: v for k, v in vars(config).items() if k != "sampler_options"},
        }
        print(
            f"  {method}: nRMSE {values} ({train_s:.0f} s training, {predict_s:.0f} s predicting)",
            flush=True,
        )
    return rows


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
    if report.get("methods"):
        print("\n| method | nRMSE mean ± std | train (s) | predict (s) | band coverage (nominal) |")
        print("|---|---:|---:|---:|---:|")
        for method, row in report["methods"].items():
            cover = "-"
            if row["coverage"]:
                inside = np.mean([c["minmax"] for c in row["coverage"]])
                cover = f"{inside:.3f} ({row['coverage'][0]['minmax_nominal']:.3f})"
            print(
                f"| {method} | {row['mean']:.3g} ± {row['std']:.2g} | "
                f"{row['train_seconds']:.0f} | {row['predict_seconds']:.0f} | {cover} |"
            )


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
    parser.add_argument(
        "--methods", type=parse_list, default=[], help=f"some of {','.join(NETWORK_METHODS)}"
    )
    defaults = DGMFConfig()
    parser.add_argument("--dgmf-fidelity", default=defaults.fidelity)
    parser.add_argument("--dgmf-base-channels", type=int, default=defaults.base_channels)
    parser.add_argument("--dgmf-epochs", type=int, default=defaults.epochs)
    parser.add_argument("--dgmf-steps-per-epoch", type=int, default=defaults.steps_per_epoch)
    parser.add_argument("--dgmf-batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--dgmf-lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--dgmf-level-weights", default=defaults.level_weights)
    parser.add_argument("--dgmf-sampler", default=defaults.sampler)
    parser.add_argument("--dgmf-sampler-steps", type=int, default=defaults.steps)
    parser.add_argument("--dgmf-samples", type=int, default=defaults.samples)
    parser.add_argument(
        "--dgmf-sigma-min-fraction", type=float, default=defaults.sigma_min_fraction
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
    unknown = sorted(set(args.methods) - set(NETWORK_METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; expected some of {list(NETWORK_METHODS)}")
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
