"""The post's Fig. 4 point, compared with the post's stored fields, averaged over many splits.

The post's repository stores 500 simulator fields at its Fig. 4 point (U0 = 0 V, l = L/10,
F_right = 25 A/m^2; ``models/pde_realizations.pt``) and 500 samples of its own score model at
the same point (``models/sgm_realizations.pt``). One split of the stored fields into halves
``a`` / ``b`` (250 each) gives measures whose noise is as large as the differences between
models (mean error floor ~0.09), so this script repeats the comparison over ``--splits`` random
halvings: in each, every set (250 fields drawn from it without replacement) is compared with
half ``a`` by :func:`scorepde.evaluation.compare.compare_sample_sets`, and half ``b`` against
``a`` is the floor. Printed: the mean of every measure over the splits, a Markdown table.

Sets: the post's model; each ``NAME=MODEL_DIR`` given (1000 samples at the point with
DPM-Solver++(2M), 20 network evaluations, seed 0); our published-code simulator in float32 and
in float64 (1000 fields each, seed ``SeedSequence(99)``).

``python benchmarks/bench_published_fig4.py --stored PATH/pde_realizations.pt --post-model
PATH/sgm_realizations.pt [NAME=MODEL_DIR ...] [--splits 100] [--seed 0]``

Needs the two files of the post's repository (docs/physics.md, "Acceptance against the stored
fields", says how to get them); torch loads them with ``weights_only=True``.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FIG4 = np.array([0.0, 0.1, 25.0])
MEASURES = ("mean c", "mean phi", "std c", "std phi", "coverage c", "coverage phi", "energy")


def load_stored(path: Path, name: str) -> np.ndarray:
    """A stored torch tensor ``(n, 2, 100)`` as float64; a clear error when it is not one."""
    import torch

    if not path.is_file():
        raise SystemExit(f"{name} = {str(path)!r}: no such file")
    array = torch.load(path, map_location="cpu", weights_only=True)
    array = np.asarray(array.numpy() if hasattr(array, "numpy") else array, dtype=float)
    if array.ndim != 3 or array.shape[1:] != (2, 100):
        raise SystemExit(f"{name} = {str(path)!r} holds shape {array.shape}; expected (n, 2, 100)")
    return array


def measures(metrics: dict, energy_ratio: float) -> list[float]:
    """The seven numbers of ``MEASURES`` from a comparison's per-channel ``metrics`` (the
    model's, or the ``floor``) and its joint energy ratio (1 for the floor)."""
    return [
        *metrics["mean_error"][:2],
        *metrics["std_error"][:2],
        *metrics["coverage"][:2],
        energy_ratio,
    ]


def compare(
    stored: np.ndarray, sets: dict[str, np.ndarray], splits: int, seed: int
) -> dict[str, np.ndarray]:
    """``{set name: (splits, 7)}`` plus ``"floor (stored half b)"``."""
    from scorepde.evaluation.compare import compare_sample_sets
    from scorepde.problems import get_problem

    spec = get_problem("battery", formulation="published-code").field_spec
    rng = np.random.default_rng(seed)
    half = len(stored) // 2
    rows: dict[str, list[list[float]]] = {name: [] for name in sets}
    rows["floor (stored half b)"] = []
    for split in range(splits):
        order = rng.permutation(len(stored))
        a, b = stored[order[:half]], stored[order[half : 2 * half]]
        for index, (name, fields) in enumerate(sets.items()):
            # each set's draw has its own stream (seed, split, name): a set's figures do not
            # depend on which other sets are compared in the same run
            picker = np.random.default_rng([seed, split, zlib.crc32(name.encode())])
            pick = fields[picker.permutation(len(fields))[:half]]
            result = compare_sample_sets(pick, a, b, spec=spec)
            rows[name].append(measures(result["metrics"], result["joint"]["energy_ratio"]))
            if index == 0:
                rows["floor (stored half b)"].append(measures(result["floor"], 1.0))
    return {name: np.asarray(values) for name, values in rows.items()}


def markdown(table: dict[str, np.ndarray], splits: int) -> str:
    """Means over the splits (and the spread of the c mean error across them)."""
    lines = [
        f"| set (250 fields) vs stored half a, mean over {splits} splits | mean error c / phi "
        "| std error c / phi | coverage c / phi | joint energy ratio |",
        "|---|---|---|---|---|",
    ]
    for name, values in table.items():
        mu = values.mean(axis=0)
        lines.append(
            f"| {name} | {mu[0]:.3f} / {mu[1]:.3f} | {mu[2]:.3f} / {mu[3]:.3f} | "
            f"{mu[4]:.3f} / {mu[5]:.3f} | {mu[6]:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("models", nargs="*", help="NAME=MODEL_DIR of our models to compare")
    parser.add_argument("--stored", type=Path, required=True, help="pde_realizations.pt")
    parser.add_argument("--post-model", type=Path, required=True, help="sgm_realizations.pt")
    parser.add_argument("--splits", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.splits < 1:
        parser.error(f"--splits = {args.splits} is not allowed; expected an integer >= 1")
    import torch

    from scorepde import pipeline
    from scorepde.problems import get_problem

    torch.set_num_threads(1)
    stored = load_stored(args.stored, "--stored")
    sets = {"the post's model": load_stored(args.post_model, "--post-model")}
    for item in args.models:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            parser.error(f"model {item!r} is not allowed; expected NAME=MODEL_DIR")
        model = pipeline.load_model(folder)
        sets[name] = model.sample(
            FIG4, 1000, sampler="ode_dpm2m", steps=19, seed=0, batch_size=1000
        )
    for precision in ("float32", "float64"):
        problem = get_problem("battery", formulation="published-code", precision=precision)
        sets[f"our simulator, {precision}"] = problem.simulate(
            FIG4[None, :], 1000, [np.random.SeedSequence(99)]
        )["fields"]
    print(markdown(compare(stored, sets, args.splits, args.seed), args.splits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
