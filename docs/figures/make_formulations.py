"""Figure and numbers of docs/physics.md, "Two formulations": the post's and the published-code
battery formulations at the post's Fig. 4 point, the effect of U0, the range of c over each
design, and float32 against float64.

    python docs/figures/make_formulations.py [--stored PATH/TO/pde_realizations.pt]

Writes docs/figures/formulations_fig4.png and prints Markdown tables. ``--stored`` (the post's
stored fields, see tests/test_battery_published_data_slow.py) adds their band to the figure.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from scorepde.problems import get_problem

FIG4 = [0.0, 0.1, 25.0]
OUT = Path(__file__).resolve().parent / "formulations_fig4.png"


def band(fields: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and the 2.5 / 97.5 % quantiles over the samples: (C, N) each."""
    return fields.mean(axis=0), *np.quantile(fields, [0.025, 0.975], axis=0)


def design(problem, n_conditions: int, rng: np.random.Generator) -> np.ndarray:
    """Conditions drawn uniformly (log-uniformly for log-scale specs) in the design ranges."""
    columns = []
    for spec in problem.conditions:
        if spec.log_scale:
            columns.append(np.exp(rng.uniform(np.log(spec.low), np.log(spec.high), n_conditions)))
        else:
            columns.append(rng.uniform(spec.low, spec.high, n_conditions))
    return np.stack(columns, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=Path, default=None)
    parser.add_argument("--n", type=int, default=1000, help="fields at the Fig. 4 point")
    args = parser.parse_args()
    problems = {
        "post": get_problem("battery"),
        "published-code": get_problem("battery", formulation="published-code"),
        "published-code, float32": get_problem(
            "battery", formulation="published-code", precision="float32"
        ),
    }
    seed = np.random.SeedSequence(2024)
    fields = {name: p.simulate([FIG4], args.n, [seed])["fields"] for name, p in problems.items()}
    stored = None
    if args.stored is not None:
        import torch

        stored = torch.load(args.stored, map_location="cpu", weights_only=True).numpy()
        stored = stored.astype(float)

    figure, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    units = ("c [mol/m³]", "φ [V]")
    for column, name in enumerate(("post", "published-code")):
        grid = 1e6 * problems[name].grid
        sets = [(name + " (float64)", fields[name], "C0")]
        if name == "published-code":
            sets.append(("published-code, float32", fields["published-code, float32"], "C2"))
            if stored is not None:
                sets.append(("stored (post's repository)", stored, "C3"))
        for row in range(2):
            axis = axes[row, column]
            for label, values, colour in sets:
                mean, low, high = band(values)
                axis.plot(grid, mean[row], color=colour, label=label)
                axis.fill_between(grid, low[row], high[row], color=colour, alpha=0.2)
            axis.set_xlabel("x [µm]")
            axis.set_ylabel(units[row])
            axis.set_title(f"{name}: {('c', 'φ')[row]}, mean and 95 % band")
            if row == 0:
                axis.legend(fontsize=8)
    figure.suptitle("U0 = 0 V, l = 0.1 L, F_right = 25 A/m² (the post's Fig. 4 point)")
    figure.savefig(OUT, dpi=110)
    print(f"figure: {OUT}")

    print("\n| formulation | c(x_0) mean ± std | c range over x, 95 % band | φ(x_N-1) mean ± std |")
    print("|---|---:|---:|---:|")
    for name, values in list(fields.items()) + ([("stored", stored)] if stored is not None else []):
        _, low, high = band(values)
        print(
            f"| {name} | {values[:, 0, 0].mean():.2f} ± {values[:, 0, 0].std():.2f} | "
            f"[{low[0].min():.2f}, {high[0].max():.2f}] | "
            f"{1e3 * values[:, 1, -1].mean():.3f} ± {1e3 * values[:, 1, -1].std():.3f} mV |"
        )

    print("\n| formulation | U0 = -0.2 V: mean c(x_0) | U0 = +0.2 V: mean c(x_0) | max |Δφ| |")
    print("|---|---:|---:|---:|")
    for name in ("post", "published-code"):
        problem = problems[name]
        pair = problem.simulate([[-0.2, 0.1, 25.0], [0.2, 0.1, 25.0]], 200, [seed, seed])
        low, high = pair["fields"][:200], pair["fields"][200:]
        print(
            f"| {name} | {low[:, 0, 0].mean():.2f} | {high[:, 0, 0].mean():.2f} | "
            f"{np.max(np.abs(low[:, 1] - high[:, 1])):.1e} V |"
        )

    print("\n| formulation | design | min c | max c | min φ | max φ |")
    print("|---|---|---:|---:|---:|---:|")
    for name in ("post", "published-code"):
        problem = problems[name]
        conditions = design(problem, 400, np.random.default_rng(0))
        values = problem.simulate(conditions, 5, list(range(400)))["fields"]
        ranges = ", ".join(f"{s.name} [{s.low:g}, {s.high:g}]" for s in problem.conditions)
        print(
            f"| {name} | {ranges} | {values[:, 0].min():.1f} | {values[:, 0].max():.1f} | "
            f"{values[:, 1].min():.4f} | {values[:, 1].max():.4f} |"
        )

    double, single = fields["published-code"], fields["published-code, float32"]
    print("\nfloat32 - float64 (published-code, Fig. 4 point, max over fields and x):")
    for k, name in enumerate(("c", "phi")):
        error = np.max(np.abs(single[:, k] - double[:, k]))
        spread = np.max(double[:, k].std(axis=0))
        digits = -np.log10(error / np.max(np.abs(double[:, k])))
        print(
            f"  {name}: {error:.2e} (largest std over x {spread:.2e}; "
            f"{digits:.1f} correct significant digits of the field)"
        )


if __name__ == "__main__":
    main()
