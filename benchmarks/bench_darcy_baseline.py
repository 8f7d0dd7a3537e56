"""Simple baselines for a conditional field model, evaluated like the model itself.

Samplers that use a run's training file (``RUN_DIR/data/train.h5``) and no score network:

* ``gaussian`` (:class:`GaussianBaseline`): a conditional Gaussian. For a query condition,
  the ``K`` nearest training design points in encoded-condition space
  (``ConditionEncoder.from_specs(problem.conditions).encode``, Euclidean distance) pool their
  fields; each field is normalised at its own condition by a ``ConditionalNormaliser`` fitted
  on the whole training file (the recipe's degree) and projected onto the leading ``P``
  principal directions of all normalised training fields (a whitened ``SubspaceNormaliser``:
  every coefficient has unit spread over the whole training set). The pooled coefficients'
  mean and covariance are fitted with shrinkage (``--covariance``): ``diagonal`` (default,
  :func:`diagonal_shrinkage`, Schaefer-Strimmer: keeps every coefficient's local variance and
  shrinks the covariances towards 0) or ``ledoit-wolf`` (:func:`ledoit_wolf`, towards ``mu I``;
  in whitened coordinates that is the *global* spectrum, which at a corner of the design
  such as a short correlation length puts far too much variance into the long-wavelength
  directions). Samples are drawn from that Gaussian with ``np.random.default_rng(seed)`` and
  mapped back with the normaliser's inverse at the *query* condition (the conditional mean
  and scale move the pooled shape to the query).
* ``nearest`` (:class:`NearestDesignResampler`): the training fields of the nearest design
  point, re-drawn with replacement (``np.random.default_rng(seed)``), unchanged.
* ``latent+solver`` (:class:`LatentSolverBaseline`): the simulator with a learned input law;
  the training file's latent fields modelled by a conditional Gaussian in whitened principal
  coordinates (all directions unless ``--latent-components``; ``--latent-whiten-degree 2``,
  ``--latent-scale-fit log_variance``), each draw solved by the problem. Consistent pairs by
  construction; it needs the simulator at sampling time.
* ``gaussian+conv`` (:class:`GaussianConvTwoStage`, only with ``--conv-steps`` > 0; for
  ``darcy2d``): two stages with neither a simulator nor a score network at sampling time;
  ``log_k`` from the same whitened Gaussian fitted to the ``log_k`` channel, then ``u`` from
  ``bench_darcy_surrogate.fit_conv_map`` (the package's solution map trained on the pairs for
  ``--conv-steps`` steps of ``--conv-batch``, width ``--conv-width``, ``--energy-weight``,
  seed ``--conv-seed``).

``python benchmarks/bench_darcy_baseline.py RUN_DIR [--k 8] [--components 384]
[--covariance diagonal] [--latent-components P] [--latent-whiten-degree 2]
[--latent-scale-fit log_variance] [--conv-steps 0] [--conv-batch 64] [--conv-width 32]
[--energy-weight 100] [--conv-seed 2024] [--n N] [--targets quick-2d] [--out PATH]``
evaluates them with
``scorepde.evaluation.evaluate.evaluate_conditions`` at the conditions of
``RUN_DIR/evaluation/report.json``, with the recipe's evaluation seed and sampling seed
(``RUN_DIR/recipe.yaml``) and ``figures=False``, so the simulator reference sets are the very
ones the model was judged against (same seed, same ``n``: the floors are identical). ``--n``
defaults to the model report's sample count (the recipe's ``evaluation.n_samples``); another
``n`` changes the floors, and the model's figures are then at a different sample size. It
prints one table (per condition and channel: mean error, std error, coverage, channel energy
ratio, joint energy ratio; per condition: the derived quantity's standardised mean difference,
std ratio and non-finite share; for the model, each baseline and the simulator floor) and
writes the baselines' results as JSON (``--out``, default
``RUN_DIR/evaluation/baselines.json``) with the table beside it (same stem, ``.md``).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scorepde.data.campaign import problem_from_config
from scorepde.data.normalisation import (
    SCALE_FITS,
    ConditionalNormaliser,
    ConditionEncoder,
    SubspaceNormaliser,
)
from scorepde.data.schema import FieldDataset, group_by_condition, read_dataset
from scorepde.evaluation.compare import targets_from_config
from scorepde.evaluation.evaluate import evaluate_conditions
from scorepde.problems.base import Problem
from scorepde.recipes import load_recipe

SampleFn = Callable[[np.ndarray, int, int], np.ndarray]


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean ``(p,)``, shrunk covariance ``(p, p)`` and shrinkage intensity of samples ``(n, p)``.

    Ledoit & Wolf (2004): ``S`` the sample covariance (divisor ``n``), ``mu = tr(S) / p``,
    ``d2 = |S - mu I|_F^2 / p``, ``b2 = min(d2, sum_k |x_k x_k^T - S|_F^2 / (n^2 p))``;
    the estimate is ``(b2 / d2) mu I + (1 - b2 / d2) S``. Units: those of ``x`` (squared).
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"x has shape {x.shape}; expected (n >= 2, p) samples")
    n, p = x.shape
    mean = x.mean(axis=0)
    centred = x - mean
    sample = centred.T @ centred / n
    mu = float(np.trace(sample)) / p
    d2 = float(np.sum((sample - mu * np.eye(p)) ** 2)) / p
    # sum_k |x_k x_k^T - S|_F^2 = sum_k |x_k|^4 - n |S|_F^2
    b2_full = (float(np.sum(np.sum(centred**2, axis=1) ** 2)) - n * float(np.sum(sample**2))) / (
        n**2 * p
    )
    shrinkage = 0.0 if d2 <= 0 else float(np.clip(b2_full / d2, 0.0, 1.0))
    covariance = shrinkage * mu * np.eye(p) + (1.0 - shrinkage) * sample
    return mean, covariance, shrinkage


def diagonal_shrinkage(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean ``(p,)``, covariance ``(p, p)`` shrunk towards its own diagonal, and the intensity.

    Schaefer & Strimmer (2005), target D (diagonal, unequal variances): ``S`` the sample
    covariance (divisor ``n - 1``), ``w_kij = x_ki x_kj`` of the centred samples,
    ``Var(s_ij) = n / (n - 1)^3 sum_k (w_kij - mean_k w_kij)^2``,
    ``lambda = sum_{i != j} Var(s_ij) / sum_{i != j} s_ij^2`` (clipped to [0, 1]); the
    estimate keeps every variance and multiplies every covariance by ``1 - lambda``.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"x has shape {x.shape}; expected (n >= 2, p) samples")
    n = len(x)
    mean = x.mean(axis=0)
    centred = x - mean
    w_mean = centred.T @ centred / n
    sample = w_mean * n / (n - 1)
    squares = centred**2
    spread = squares.T @ squares - n * w_mean**2  # sum_k (w_kij - mean w_ij)^2
    variance = spread * n / (n - 1) ** 3
    off = ~np.eye(len(mean), dtype=bool)
    denominator = float(np.sum(sample[off] ** 2))
    shrinkage = 1.0 if denominator <= 0 else float(np.clip(variance[off].sum() / denominator, 0, 1))
    covariance = sample * (1.0 - shrinkage)
    np.fill_diagonal(covariance, np.diag(sample))
    return mean, covariance, shrinkage


#: Covariance estimators of the Gaussian baseline, by name.
COVARIANCES = {"ledoit-wolf": ledoit_wolf, "diagonal": diagonal_shrinkage}


def _design_points(dataset: FieldDataset, encoder: ConditionEncoder) -> tuple[list, np.ndarray]:
    """The groups (field indices per design point, in key order) and their encoded conditions
    ``(G, k)``."""
    groups = group_by_condition(dataset)
    keys = sorted(groups)
    members = [groups[key] for key in keys]
    encoded = encoder.encode(np.stack([dataset.conditions[g[0]] for g in members]))
    return members, np.asarray(encoded, dtype=float)


def _nearest(design: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` rows of ``design`` ``(G, d)`` nearest to ``query`` ``(d,)``
    (Euclidean; ties to the lower index)."""
    distance = np.sqrt(np.sum((design - query[None, :]) ** 2, axis=1))
    return np.argsort(distance, kind="stable")[:k]


class GaussianBaseline:
    """Conditional Gaussian in the principal subspace of the normalised training fields.

    dataset: the training file (physical units, ``(n, C, *S)`` fields, >= 2 per design
    point); problem: its problem (conditions, channels); k: design points pooled per query
    (>= 1); components: principal directions ``P`` (<= min(n, C * prod(S))); degree: the
    ``ConditionalNormaliser``'s polynomial degree; covariance: a name of ``COVARIANCES``.
    """

    def __init__(
        self,
        dataset: FieldDataset,
        problem: Problem,
        *,
        k: int = 8,
        components: int = 384,
        degree: int = 2,
        covariance: str = "diagonal",
    ) -> None:
        if covariance not in COVARIANCES:
            raise ValueError(
                f"covariance = {covariance!r} is not allowed; expected one of {sorted(COVARIANCES)}"
            )
        self.covariance = covariance
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k = {k!r} is not allowed; expected an int >= 1")
        self.problem = problem
        self.encoder = ConditionEncoder.from_specs(problem.conditions)
        self.members, self.design = _design_points(dataset, self.encoder)
        if k > len(self.members):
            raise ValueError(
                f"k = {k} is not allowed; the training file has {len(self.members)} design points"
            )
        self.k = k
        encoded = self.encoder.encode(dataset.conditions)
        base = ConditionalNormaliser(degree=degree, channels=problem.channels).fit(
            dataset.fields, encoded, dataset.condition_index
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the captured share is kept instead
            self.normaliser = SubspaceNormaliser(base, components, whiten=True).fit(
                dataset.fields, encoded, dataset.condition_index
            )
        #: share of the normalised training energy the P directions keep
        self.captured = self.normaliser.captured
        self.coefficients = np.asarray(
            self.normaliser.transform(dataset.fields, encoded), dtype=float
        )[:, 0, :]
        self.last_shrinkage: float | None = None

    def neighbours(self, condition: Sequence[float]) -> list[np.ndarray]:
        """Field indices of the ``k`` design points nearest to ``condition`` ``(k_c,)``."""
        query = np.asarray(self.encoder.encode(condition), dtype=float)[0]
        return [self.members[i] for i in _nearest(self.design, query, self.k)]

    def moments(self, condition: Sequence[float]) -> tuple[np.ndarray, np.ndarray, float]:
        """Coefficient mean ``(P,)``, covariance ``(P, P)`` (whitened units) and shrinkage."""
        pooled = np.concatenate(self.neighbours(condition))
        return COVARIANCES[self.covariance](self.coefficients[pooled])

    def mean_field(self, condition: Sequence[float]) -> np.ndarray:
        """The Gaussian's mean mapped to physical units at ``condition``: ``(C, *S)``."""
        mean, _, _ = self.moments(condition)
        encoded = self.encoder.encode(condition)
        return np.asarray(self.normaliser.inverse(mean[None, None, :], encoded))[0]

    def sample(self, condition: Sequence[float], n: int, seed: int) -> np.ndarray:
        """``n`` fields ``(n, C, *S)`` in physical units at ``condition`` ``(k_c,)``."""
        mean, covariance, shrinkage = self.moments(condition)
        self.last_shrinkage = shrinkage
        values, vectors = np.linalg.eigh(covariance)
        root = vectors * np.sqrt(np.clip(values, 0.0, None))[None, :]
        noise = np.random.default_rng(seed).standard_normal((int(n), len(mean)))
        w = mean[None, :] + noise @ root.T
        encoded = np.repeat(self.encoder.encode(condition), int(n), axis=0)
        return np.asarray(self.normaliser.inverse(w[:, None, :], encoded))


class NearestDesignResampler:
    """The training fields of the design point nearest (encoded conditions) to the query,
    re-drawn with replacement; physical units, unchanged."""

    def __init__(self, dataset: FieldDataset, problem: Problem) -> None:
        self.encoder = ConditionEncoder.from_specs(problem.conditions)
        self.members, self.design = _design_points(dataset, self.encoder)
        self.fields = dataset.fields

    def sample(self, condition: Sequence[float], n: int, seed: int) -> np.ndarray:
        """``n`` fields ``(n, C, *S)`` re-drawn from the nearest design point's fields."""
        query = np.asarray(self.encoder.encode(condition), dtype=float)[0]
        group = self.members[int(_nearest(self.design, query, 1)[0])]
        picks = np.random.default_rng(seed).choice(group, size=int(n), replace=True)
        return np.array(self.fields[picks])


class WhitenedGaussian:
    """A conditional Gaussian of fields ``(n, C, *S)`` in whitened principal coordinates.

    The fields are normalised per condition (a ``ConditionalNormaliser`` of ``degree``),
    rotated onto all (or the leading ``components``) principal directions and each coefficient
    standardised with its own condition-dependent mean and scale (a ``SubspaceNormaliser`` with
    ``whiten="conditional"``, ``whiten_degree``, ``scale_fit``); a sample is ``z ~ N(0, I)``
    mapped back at the query condition. Correlations between coefficients at one condition are
    not kept: exact for a stationary Gaussian field whose covariance the principal directions
    diagonalise, as they nearly do for ``darcy2d``'s squared-exponential input.
    """

    def __init__(
        self,
        fields: np.ndarray,
        conditions: np.ndarray,
        groups: np.ndarray,
        encoder: ConditionEncoder,
        *,
        name: str,
        components: int | None = None,
        degree: int = 2,
        whiten_degree: int = 2,
        scale_fit: str = "log_variance",
    ) -> None:
        fields = np.asarray(fields, dtype=float)
        size = int(np.prod(fields.shape[1:]))
        self.encoder = encoder
        base = ConditionalNormaliser(degree=degree, channels=(name,) * fields.shape[1])
        self.normaliser = SubspaceNormaliser(
            base,
            min(size if components is None else components, len(fields)),
            whiten="conditional",
            whiten_degree=whiten_degree,
            whiten_scale_fit=scale_fit,
        ).fit(fields, encoder.encode(conditions), groups)

    def sample(self, condition: Sequence[float], n: int, seed: int) -> np.ndarray:
        """``n`` fields ``(n, C, *S)`` at ``condition`` ``(k_c,)``."""
        rows = np.repeat(np.atleast_2d(np.asarray(condition, dtype=float)), int(n), axis=0)
        z = np.random.default_rng(seed).standard_normal((int(n), 1, self.normaliser.components))
        return np.asarray(self.normaliser.inverse(z, self.encoder.encode(rows)))


class LatentSolverBaseline:
    """The simulator with a learned input law: the training file's *latent* fields (the random
    input the problem solves for, e.g. ``darcy2d``'s unit Gaussian-process draw) modelled by a
    :class:`WhitenedGaussian` (options as there), each draw pushed through ``problem.solve``.

    Every pair is consistent (the simulator made it), so this is the strongest simple baseline
    where the input's law is close to Gaussian: what a model that generates the solution fields
    must beat on them. It needs the simulator at sampling time (about 1 ms per 32 x 32 Darcy
    solve), which a model of the fields does not.
    """

    def __init__(self, dataset: FieldDataset, problem: Problem, **options: Any) -> None:
        self.problem = problem
        self.input_law = WhitenedGaussian(
            np.asarray(dataset.latent, dtype=float)[:, None],
            dataset.conditions,
            dataset.condition_index,
            ConditionEncoder.from_specs(problem.conditions),
            name=dataset.latent_name,
            **options,
        )

    def sample(self, condition: Sequence[float], n: int, seed: int) -> np.ndarray:
        """``n`` fields ``(n, C, *S)`` in physical units at ``condition`` ``(k_c,)``."""
        rows = np.repeat(np.atleast_2d(np.asarray(condition, dtype=float)), int(n), axis=0)
        latent = self.input_law.sample(condition, n, seed)[:, 0]
        return np.asarray(self.problem.solve(latent, rows))


class GaussianConvTwoStage:
    """Two stages, no simulator and no score network at sampling time (``darcy2d``): ``log_k``
    (channel 0) from a :class:`WhitenedGaussian` of the training file's ``log_k`` (options as
    there), then ``u`` (channel 1) from a learned map of it, ``map_fit(log_k, u) -> map``
    (``bench_darcy_surrogate.fit_conv_map``)."""

    def __init__(
        self,
        dataset: FieldDataset,
        problem: Problem,
        map_fit: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]],
        **options: Any,
    ) -> None:
        self.medium = WhitenedGaussian(
            dataset.fields[:, :1],
            dataset.conditions,
            dataset.condition_index,
            ConditionEncoder.from_specs(problem.conditions),
            name=dataset.channels[0],
            **options,
        )
        self.map = map_fit(dataset.fields[:, 0], dataset.fields[:, 1])

    def sample(self, condition: Sequence[float], n: int, seed: int) -> np.ndarray:
        """``n`` pairs ``(n, 2, *S)`` at ``condition`` ``(k_c,)``."""
        log_k = self.medium.sample(condition, n, seed)[:, 0]
        return np.stack([log_k, self.map(log_k)], axis=1)


# ---------------------------------------------------------------------------- the table

HEADER = (
    "condition",
    "channel",
    "sampler",
    "mean err",
    "std err",
    "coverage",
    "E ratio ch",
    "E ratio joint",
    "dq mean diff",
    "dq std ratio",
    "dq non-finite",
    "pass",
)


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{float(value):.{digits}f}"


def _condition_text(condition: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in condition.items())


def _rows_of(label: str, result: dict[str, Any], floor: bool = False) -> list[list[str]]:
    comparison = result["comparison"]
    metrics = comparison["floor" if floor else "metrics"]
    derived = comparison.get("derived", {})
    rows = []
    for c, channel in enumerate(comparison["channels"]):
        if floor:
            ratio_ch = ratio_joint = "1 (def)"
        else:
            ratio_ch = _f(comparison["energy_ratio"][c], 2)
            ratio_joint = _f(comparison["joint"]["energy_ratio"], 2)
        dq = ["", "", ""]
        if c == 0 and derived:
            name, check = next(iter(derived.items()))
            part = check["floor" if floor else "model"]
            dq = [
                f"{_f(part['mean_difference'])} ({name})",
                _f(part["std_ratio"]),
                "0" if floor else _f(check["model_nonfinite_fraction"]),
            ]
        verdict = "" if floor else ("PASS" if result.get("passed") else "FAIL")
        rows.append(
            [
                _condition_text(result["condition"]),
                channel,
                label,
                _f(metrics["mean_error"][c], 4),
                _f(metrics["std_error"][c], 4),
                _f(metrics["coverage"][c]),
                ratio_ch,
                ratio_joint,
                *dq,
                verdict,
            ]
        )
    return rows


def baseline_table(
    model: Sequence[dict[str, Any]], baselines: dict[str, list[dict[str, Any]]]
) -> str:
    """Markdown table: per condition, the model's rows (from its report), each baseline's and
    the simulator floor's (from the first baseline's comparison), per channel."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    first = next(iter(baselines.values()))
    for index, floor_result in enumerate(first):
        blocks = []
        if index < len(model):
            blocks.append(_rows_of("model", model[index]))
        for name, results in baselines.items():
            blocks.append(_rows_of(name, results[index]))
        blocks.append(_rows_of("simulator (floor)", floor_result, floor=True))
        for block in blocks:
            lines += ["| " + " | ".join(row) + " |" for row in block]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--k", type=int, default=8, help="design points pooled (gaussian)")
    parser.add_argument("--components", type=int, default=384, help="principal directions P")
    parser.add_argument("--covariance", choices=sorted(COVARIANCES), default="diagonal")
    parser.add_argument(
        "--latent-components",
        type=int,
        default=None,
        help="principal directions of the latent field (latent+solver; default: all)",
    )
    parser.add_argument("--latent-whiten-degree", type=int, default=2, help="(latent+solver)")
    parser.add_argument(
        "--latent-scale-fit", choices=SCALE_FITS, default="log_variance", help="(latent+solver)"
    )
    parser.add_argument(
        "--conv-steps", type=int, default=0, help="gaussian+conv: map steps (0: not run)"
    )
    parser.add_argument("--conv-batch", type=int, default=64, help="(gaussian+conv)")
    parser.add_argument("--conv-width", type=int, default=32, help="(gaussian+conv)")
    parser.add_argument("--energy-weight", type=float, default=100.0, help="(gaussian+conv)")
    parser.add_argument("--conv-seed", type=int, default=2024, help="(gaussian+conv)")
    parser.add_argument("--n", type=int, default=None, help="samples (default: the report's)")
    parser.add_argument("--targets", default="quick-2d")
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Evaluate both baselines on a run folder; print the table; write the JSON."""
    args = _parse(argv)
    run_dir: Path = args.run_dir
    recipe = load_recipe(run_dir / "recipe.yaml")
    problem = problem_from_config(recipe.data.train)
    report = json.loads((run_dir / "evaluation" / "report.json").read_text(encoding="utf-8"))
    model_results = report["results"]
    names = list(problem.condition_names)
    conditions = np.array([[r["condition"][name] for name in names] for r in model_results])
    labels = [r.get("label", "") for r in model_results]
    n = args.n if args.n is not None else int(report["metadata"]["n_samples"])
    if n != int(report["metadata"]["n_samples"]):
        print(
            f"note: n = {n} differs from the model report's {report['metadata']['n_samples']}; "
            "the baselines' floors differ from the model's"
        )
    dataset = read_dataset(run_dir / "data" / "train.h5")
    if tuple(dataset.channels) != tuple(problem.channels):
        raise SystemExit(
            f"{run_dir}/data/train.h5 has channels {list(dataset.channels)}; the recipe's "
            f"problem expects {list(problem.channels)}"
        )
    start = time.perf_counter()
    gaussian = GaussianBaseline(
        dataset,
        problem,
        k=args.k,
        components=args.components,
        degree=recipe.data.normalisation_degree,
        covariance=args.covariance,
    )
    fit_seconds = time.perf_counter() - start
    nearest = NearestDesignResampler(dataset, problem)
    start = time.perf_counter()
    whitened = {
        "components": args.latent_components,
        "degree": recipe.data.normalisation_degree,
        "whiten_degree": args.latent_whiten_degree,
        "scale_fit": args.latent_scale_fit,
    }
    latent_solver = LatentSolverBaseline(dataset, problem, **whitened)
    latent_fit_seconds = time.perf_counter() - start
    two_stage = None
    conv_options = {
        "steps": args.conv_steps,
        "batch": args.conv_batch,
        "width": args.conv_width,
        "energy_weight": args.energy_weight,
        "seed": args.conv_seed,
    }
    if args.conv_steps:
        # the sibling script (benchmarks/ is not a package)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_darcy_surrogate import fit_conv_map

        conv_fit = functools.partial(fit_conv_map, problem, **conv_options)
        two_stage = GaussianConvTwoStage(dataset, problem, conv_fit, **whitened)
    shrinkage: list[float] = []

    def gaussian_sample(condition: np.ndarray, size: int, seed: int) -> np.ndarray:
        fields = gaussian.sample(condition, size, seed)
        assert gaussian.last_shrinkage is not None
        shrinkage.append(gaussian.last_shrinkage)
        return fields

    targets = targets_from_config(args.targets)
    common = dict(
        out_dir=run_dir / "evaluation" / "baselines",
        targets=targets,
        n_samples=n,
        seed=recipe.evaluation.seed,
        sample_seed=recipe.sampling.seed,
        invariance_shift=recipe.evaluation.invariance_shift,
        labels=labels,
        log=None,
        figures=False,
    )
    results: dict[str, list[dict[str, Any]]] = {}
    samplers: tuple[tuple[str, SampleFn], ...] = (
        ("gaussian", gaussian_sample),
        ("nearest", nearest.sample),
        ("latent+solver", latent_solver.sample),
    )
    if two_stage is not None:
        samplers += (("gaussian+conv", two_stage.sample),)
    for name, sample in samplers:
        results[name] = evaluate_conditions(sample, problem, conditions, **common)
    floors_match = n == int(report["metadata"]["n_samples"]) and all(
        np.allclose(m["comparison"]["floor"]["mean_error"], b["comparison"]["floor"]["mean_error"])
        for m, b in zip(model_results, results["gaussian"], strict=True)
    )
    table = baseline_table(model_results, results)
    print(
        f"{run_dir}: n = {n}, evaluation seed {recipe.evaluation.seed}, sample seed "
        f"{recipe.sampling.seed}, targets {targets.name}; gaussian: K = {args.k}, "
        f"P = {args.components} (keeps {gaussian.captured:.4f} of the normalised training "
        f"energy), {args.covariance} shrinkage {', '.join(f'{s:.3f}' for s in shrinkage)}; "
        f"simulator floors {'identical to' if floors_match else 'DIFFERENT from'} the report's"
    )
    print(table)
    document = {
        "run_dir": str(run_dir),
        "n_samples": n,
        "evaluation_seed": recipe.evaluation.seed,
        "sample_seed": recipe.sampling.seed,
        "targets": targets.name,
        "gaussian": {
            "k": args.k,
            "components": args.components,
            "captured": gaussian.captured,
            "covariance": args.covariance,
            "shrinkage": shrinkage,
            "fit_seconds": fit_seconds,
        },
        "latent_solver": {
            **whitened,
            "components": latent_solver.input_law.normaliser.components,
            "fit_seconds": latent_fit_seconds,
        },
        "gaussian_conv": None if two_stage is None else conv_options,
        "floors_match_report": floors_match,
        "results": results,
        "table": table,
    }
    out = args.out or run_dir / "evaluation" / "baselines.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1, default=float), encoding="utf-8")
    out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return document


if __name__ == "__main__":
    main(sys.argv[1:])
