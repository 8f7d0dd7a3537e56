"""Statistics that compare two sets of sampled fields, channel by channel.

Every function takes sample sets of shape ``(n, C, *S)``: ``n`` samples, ``C`` channels,
a grid of shape ``S`` of any rank >= 1 (``(N,)`` in 1-D, ``(Ny, Nx)`` in 2-D), in physical
units. Pointwise statistics are taken at every grid point and then reduced over the whole
grid, so a metric of a 2-D set equals the metric of the same set with its grid flattened
(``reshape(n, C, -1)``); for 1-D sets this is the plain ``(n, C, N)`` definition.
By convention the first argument is the set under test (the model's samples) and the second
the reference (fresh simulator samples); the metrics are not symmetric, because they are
normalised by the reference's spread.

Definitions (see docs/evaluation.md for the reasoning and the noise floors):

- ``mean_error``: ``max_x |mean_model(x) - mean_ref(x)| / max_x std_ref(x)`` per channel
  (``norm="max"``), or the r.m.s. over the grid of the mean's error over the r.m.s. of the
  reference's std (``norm="rms"``).
- ``std_error``: ``||std_model - std_ref||_2 / ||std_ref||_2`` per channel, over the grid
  points where the reference is not degenerate.
- ``coverage``: fraction of (reference sample, grid point) pairs that fall inside the model's
  pointwise central band; points that are exact constraints in both sets are excluded.
- ``energy_distance``: V-statistic (default) or U-statistic energy distance between the
  flattened, per-channel normalised sample sets.
- ``boundary_errors``: Dirichlet value and Neumann derivative errors, relative to a scale,
  on any side of any grid axis.
- ``classifier_two_sample_test``: held-out accuracy of a quadratic logistic classifier.

All standard deviations use ``ddof=1``. Nothing here draws random numbers except
``classifier_two_sample_test``, which takes an explicit seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from scorepde.fields import FieldSpec

__all__ = [
    "boundary_errors",
    "channel_fluctuation_scale",
    "classifier_two_sample_test",
    "coverage",
    "energy_distance",
    "energy_permutation_test",
    "mean_error",
    "std_error",
]

MEAN_ERROR_NORMS = ("max", "rms")

# A block of pairwise distances holds at most this many float64 entries (~32 MB); with the
# few temporaries of one block the energy distance stays well under 200 MB.
_BLOCK_ENTRIES = 4_000_000


def _as_samples(values: Any, name: str) -> np.ndarray:
    """``values`` as float64 ``(n, C, P)``: the grid ``S`` (rank >= 1) flattened to P points."""
    array = np.asarray(values, dtype=float)
    if array.ndim < 3:
        raise ValueError(
            f"{name} has shape {array.shape}; expected (n_samples, channels, n_points) or "
            "(n_samples, channels, *grid_shape)"
        )
    if array.shape[0] < 2:
        raise ValueError(f"{name} has {array.shape[0]} samples; at least 2 are needed")
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"{name} contains {np.count_nonzero(~np.isfinite(array))} non-finite values"
        )
    return array.reshape(array.shape[0], array.shape[1], -1)


def _check_pair(model: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both sets as ``(n, C, P)`` after checking that ``(C, *S)`` agree."""
    model_shape, reference_shape = np.shape(model), np.shape(reference)
    model = _as_samples(model, "model")
    reference = _as_samples(reference, "reference")
    if tuple(model_shape[1:]) != tuple(reference_shape[1:]):
        raise ValueError(
            f"model fields have shape {tuple(model_shape[1:])} and reference fields "
            f"{tuple(reference_shape[1:])}; (channels, n_points) / (channels, *grid_shape) "
            "must agree"
        )
    return model, reference


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, with 0/0 -> 0 and x/0 -> inf (a deterministic reference)."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(numerator, denominator).shape, np.inf)
    positive = denominator > 0
    np.divide(numerator, denominator, out=out, where=positive)
    out[~positive & (numerator == 0)] = 0.0
    return out


def mean_error(model: np.ndarray, reference: np.ndarray, norm: str = "max") -> np.ndarray:
    """Error of the pointwise mean, in units of the reference's spread.

    model: (n, C, *S), reference: (m, C, *S), same physical units. Returns (C,),
    dimensionless (0/0 -> 0, x/0 -> inf), with ``x`` running over every grid point:

    - ``norm="max"``: ``max_x |mean_model - mean_ref| / max_x std_ref``, the worst pointwise
      error over the largest spread. Between two independent sets from one distribution it
      is of order ``sqrt(1/n + 1/m)`` times the expected maximum of the grid's effectively
      independent standard normals (about 2-3 for smooth 1-D fields, more on large grids).
    - ``norm="rms"``: ``sqrt(mean_x (mean_model - mean_ref)^2) / sqrt(mean_x var_ref)``, the
      r.m.s. error over the r.m.s. spread. Its floor is about ``sqrt(1/n + 1/m)`` whatever
      the grid size, so it suits large (2-D) grids, where a max over thousands of points is
      dominated by sampling noise; a localised error is diluted by the points it misses.

    Neither is ever 0 for finite samples: compare with the simulator-vs-simulator floor.
    """
    if norm not in MEAN_ERROR_NORMS:
        raise ValueError(f"norm = {norm!r} is not allowed; expected one of {MEAN_ERROR_NORMS}")
    model, reference = _check_pair(model, reference)
    error = model.mean(axis=0) - reference.mean(axis=0)
    if norm == "max":
        difference = np.abs(error).max(axis=-1)
        spread = reference.std(axis=0, ddof=1).max(axis=-1)
    else:
        difference = np.sqrt(np.mean(error**2, axis=-1))
        spread = np.sqrt(reference.var(axis=0, ddof=1).mean(axis=-1))
    return _safe_ratio(difference, spread)


def std_error(model: np.ndarray, reference: np.ndarray, rel_floor: float = 1e-3) -> np.ndarray:
    """Relative L2 error of the pointwise standard deviation.

    model: (n, C, *S), reference: (m, C, *S). Returns (C,), dimensionless:
    ``||std_model - std_ref||_2 / ||std_ref||_2`` over the grid points where
    ``std_ref > rel_floor * max_x std_ref`` (points where the reference is deterministic, such
    as Dirichlet boundaries, carry no spread to compare; ``boundary_errors`` checks them).
    A channel whose reference has no spread anywhere gives 0 if the model has none either,
    else inf. Between two sets from one distribution this is about ``sqrt((1/n + 1/m) / 2)``
    for Gaussian fields.
    """
    model, reference = _check_pair(model, reference)
    if not 0 <= rel_floor < 1:
        raise ValueError(f"rel_floor = {rel_floor}; expected 0 <= rel_floor < 1")
    std_model = model.std(axis=0, ddof=1)
    std_ref = reference.std(axis=0, ddof=1)
    result = np.empty(std_ref.shape[0])
    for ch in range(std_ref.shape[0]):
        largest = std_ref[ch].max()
        if largest <= 0:
            result[ch] = 0.0 if np.all(std_model[ch] == 0) else np.inf
            continue
        keep = std_ref[ch] > rel_floor * largest
        result[ch] = np.linalg.norm(std_model[ch, keep] - std_ref[ch, keep]) / np.linalg.norm(
            std_ref[ch, keep]
        )
    return result


def coverage(
    model: np.ndarray,
    reference: np.ndarray,
    level: float = 0.95,
    *,
    rel_tol: float = 1e-6,
) -> np.ndarray:
    """Fraction of reference values inside the model's pointwise central band.

    model: (n, C, *S) defines the band ``[q_(1-level)/2, q_(1+level)/2]`` at each grid point
    (``numpy.quantile``, linear interpolation); reference: (m, C, *S). Returns (C,), the
    fraction of the (reference sample, grid point) pairs inside the band; a calibrated model
    gives ``level`` on average.

    Values within ``tol = rel_tol * magnitude`` of the band count as inside, where magnitude
    is the channel's ``max(max_x std_ref, max |reference|)`` (1 if that is 0); this absorbs
    float32 rounding of exact values. Degenerate points are EXCLUDED: a grid point where the
    model's band is narrower than ``tol``, the reference's values span less than ``tol`` and
    the two agree within ``tol`` (an exact constraint such as a Dirichlet value honoured by
    both) says nothing about calibration, and counting it as inside would bias the coverage
    towards 1. A point degenerate in both sets but at different values stays in (as misses).
    A channel with no non-degenerate point gives nan.
    """
    model, reference = _check_pair(model, reference)
    if not 0 < level < 1:
        raise ValueError(f"level = {level}; expected 0 < level < 1")
    lower, upper = np.quantile(model, [(1 - level) / 2, (1 + level) / 2], axis=0)
    magnitude = np.maximum(
        reference.std(axis=0, ddof=1).max(axis=-1), np.abs(reference).max(axis=(0, 2))
    )
    tol = rel_tol * np.where(magnitude > 0, magnitude, 1.0)[:, None]  # (C, 1)
    inside = (reference >= lower - tol) & (reference <= upper + tol)  # (m, C, P)
    degenerate = (
        (upper - lower <= tol)
        & (np.ptp(reference, axis=0) <= tol)
        & (np.abs(reference[0] - lower) <= tol)
    )  # (C, P)
    result = np.full(model.shape[1], np.nan)
    for ch in range(model.shape[1]):
        keep = ~degenerate[ch]
        if keep.any():
            result[ch] = inside[:, ch, keep].mean()
    return result


def channel_fluctuation_scale(reference: np.ndarray) -> np.ndarray:
    """Per-channel scale of the random fluctuations: ``sqrt(mean_x var_ref(x))``.

    reference: (n, C, *S) -> (C,) in the channel's physical units. Unlike the overall std of a
    channel, it ignores the spatial variation of the mean profile. A channel with no spread
    gets 1 (its values are then compared in raw units).
    """
    reference = _as_samples(reference, "reference")
    scale = np.sqrt(reference.var(axis=0, ddof=1).mean(axis=-1))
    return np.where(scale > 0, scale, 1.0)


def _mean_pairwise_distance(x: np.ndarray, y: np.ndarray | None) -> float:
    """Mean Euclidean distance over all pairs (x_i, y_j), or over i != j when ``y`` is None.

    x: (n, d), y: (m, d); computed in row blocks of at most ``_BLOCK_ENTRIES`` distances.
    """
    same = y is None
    other = x if same else y
    n, m = len(x), len(other)
    x_sq = np.einsum("ij,ij->i", x, x)
    other_sq = np.einsum("ij,ij->i", other, other)
    block = max(1, _BLOCK_ENTRIES // m)
    total = 0.0
    for start in range(0, n, block):
        stop = min(n, start + block)
        squared = x_sq[start:stop, None] + other_sq[None, :] - 2.0 * (x[start:stop] @ other.T)
        np.maximum(squared, 0.0, out=squared)
        if same:  # the self-distance is exactly 0, not sqrt(rounding error)
            rows = np.arange(start, stop)
            squared[rows - start, rows] = 0.0
        total += np.sqrt(squared).sum()
    pairs = n * (n - 1) if same else n * m
    return total / pairs


def energy_distance(
    a: np.ndarray,
    b: np.ndarray,
    scale: np.ndarray | Sequence[float] | None = None,
    *,
    unbiased: bool = False,
) -> float:
    """Energy distance ``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` between two sets of fields.

    a: (n, C, *S), b: (m, C, *S); b is the reference. Each channel is divided by ``scale``
    ((C,), physical units; default ``channel_fluctuation_scale(b)``), then every sample is
    flattened to a vector of C*N dimensionless numbers and ``|.|`` is the Euclidean norm.

    ``unbiased=False`` (default) gives the V-statistic: the within-set means include the i = j
    pairs. It is the energy distance between the two empirical distributions, so it is
    never negative, and for two sets from one distribution its expectation is
    ``E|X-X'| * (1/n + 1/m)``: a positive noise floor, which makes the ratio
    ``energy(model, sim) / energy(sim', sim)`` meaningful (about 1 when the model is right).
    ``unbiased=True`` gives the U-statistic (i != j), an unbiased estimate of the population
    energy distance that fluctuates around 0 for equal distributions; report it, but do not
    divide by it.
    """
    a, b = _check_pair(a, b)
    if scale is None:
        scale = channel_fluctuation_scale(b)
    scale = np.asarray(scale, dtype=float).reshape(-1)
    if scale.shape != (a.shape[1],) or np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        raise ValueError(
            f"scale = {scale}; expected {a.shape[1]} positive finite values, one per channel"
        )
    centre = b.mean(axis=0)  # shifting both sets leaves distances unchanged, improves rounding
    x = ((a - centre) / scale[:, None]).reshape(len(a), -1)
    y = ((b - centre) / scale[:, None]).reshape(len(b), -1)
    cross = _mean_pairwise_distance(x, y)
    within_x = _mean_pairwise_distance(x, None)
    within_y = _mean_pairwise_distance(y, None)
    if not unbiased:
        n, m = len(x), len(y)
        within_x *= (n - 1) / n
        within_y *= (m - 1) / m
    return float(2.0 * cross - within_x - within_y)


def energy_permutation_test(
    a: np.ndarray,
    b: np.ndarray,
    scale: np.ndarray | Sequence[float] | None = None,
    *,
    seed: int,
    n_permutations: int = 200,
    max_per_set: int = 1500,
) -> dict[str, float]:
    """Permutation p-value of the V-statistic energy distance (H0: same distribution).

    a: (n, C, *S), b: (m, C, *S), normalised as in ``energy_distance``. Sets larger than
    ``max_per_set`` are subsampled (``seed``) because the pooled distance matrix
    ((n + m)^2 float64) is held in memory: 3000 samples -> 72 MB. The labels are permuted
    ``n_permutations`` times (``seed``). Returns {"p_value", "energy_distance",
    "n_permutations"}; ``p_value = (1 + #{perm >= observed}) / (1 + n_permutations)``.

    Use this, not a fixed bound on the energy ratio, as the decision: the null distribution
    of ``n * energy`` does not narrow as n grows, and for smooth fields (few effective
    dimensions) the ratio of two null draws often exceeds 1.5.
    """
    a, b = _check_pair(a, b)
    if n_permutations < 1:
        raise ValueError(f"n_permutations = {n_permutations}; expected >= 1")
    rng = np.random.default_rng(seed)
    if scale is None:
        scale = channel_fluctuation_scale(b)
    scale = np.asarray(scale, dtype=float).reshape(-1)
    if len(a) > max_per_set:
        a = a[np.sort(rng.choice(len(a), max_per_set, replace=False))]
    if len(b) > max_per_set:
        b = b[np.sort(rng.choice(len(b), max_per_set, replace=False))]
    n, m = len(a), len(b)
    centre = b.mean(axis=0)
    pooled = ((np.concatenate([a, b]) - centre) / scale[:, None]).reshape(n + m, -1)
    squared_norm = np.einsum("ij,ij->i", pooled, pooled)
    distance = pooled @ pooled.T  # in place from here: one (n + m)^2 array in memory
    distance *= -2.0
    distance += squared_norm[:, None]
    distance += squared_norm[None, :]
    np.maximum(distance, 0.0, out=distance)
    np.fill_diagonal(distance, 0.0)
    np.sqrt(distance, out=distance)

    labels = np.zeros((n + m, n_permutations + 1))
    labels[:n, 0] = 1.0  # column 0: the observed split
    for k in range(1, n_permutations + 1):
        labels[rng.permutation(n + m)[:n], k] = 1.0
    row_sums = distance.sum(axis=1)  # D @ 1
    d_labels = distance @ labels  # (n + m, P + 1)
    within_a = np.einsum("ip,ip->p", labels, d_labels)
    cross = labels.T @ row_sums - within_a
    within_b = row_sums.sum() - 2.0 * cross - within_a
    energy = 2.0 * cross / (n * m) - within_a / n**2 - within_b / m**2
    observed = energy[0]
    exceed = int(np.count_nonzero(energy[1:] >= observed))
    return {
        "p_value": (1 + exceed) / (1 + n_permutations),
        "energy_distance": float(observed),
        "n_permutations": int(n_permutations),
    }


def _endpoint_derivative_weights(grid: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights of the second-order one-sided derivative at the left/right end."""
    idx = np.array([0, 1, 2]) if side == "left" else np.array([-1, -2, -3])
    x0, x1, x2 = grid[idx]
    weights = np.array(
        [
            (2 * x0 - x1 - x2) / ((x0 - x1) * (x0 - x2)),
            (x0 - x2) / ((x1 - x0) * (x1 - x2)),
            (x0 - x1) / ((x2 - x0) * (x2 - x1)),
        ]
    )
    return idx, weights


def _boundary_axis(side: str, axis_names: Sequence[str]) -> tuple[int, str] | None:
    """(grid axis index, "left"/"right") of a side name, or None when it is not one.

    "left"/"right" are the low/high ends of the last grid axis; "<axis>_low"/"<axis>_high"
    the ends of the named axis.
    """
    rank = len(axis_names)
    if side in ("left", "right"):
        return rank - 1, side
    for suffix, end in (("_low", "left"), ("_high", "right")):
        if side.endswith(suffix) and side[: -len(suffix)] in axis_names:
            return list(axis_names).index(side[: -len(suffix)]), end
    return None


def boundary_errors(
    samples: np.ndarray,
    constraints: Sequence[tuple[str, str, str, float]],
    grid: np.ndarray | FieldSpec,
    scale: np.ndarray | Sequence[float] | Mapping[str, float],
    *,
    channels: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """How well each sample honours boundary conditions, relative to a channel scale.

    samples: (n, C, *S) in physical units. grid: either the (N,) increasing coordinates of a
    1-D field (metres; then ``channels`` names the C channels), or a ``FieldSpec`` of any
    rank (channels, coordinates and axis names from it; ``channels`` may be omitted).
    scale: (C,) or channel -> scale, physical units (e.g. the reference's overall std of the
    channel). constraints: (channel, kind, side, target) with kind "dirichlet" (target in the
    channel's units) or "neumann" (target d u / d axis in units per metre, along the axis
    normal to the side, pointing to increasing coordinates) and side "left"/"right" (the
    first/last point of the last grid axis) or "<axis>_low"/"<axis>_high" (the first/last
    point of the named axis; needs a ``FieldSpec`` unless the axis is called "x" in 1-D).
    The constraint holds at every grid point of the side (one point in 1-D, a line in 2-D).

    Dirichlet: ``|u(boundary) - target| / scale``. Neumann: ``|du/dn - target| * L / scale``
    with the second-order one-sided difference along the axis and ``L`` that axis' length
    (last minus first coordinate). Returns ``"{channel}:{kind}:{side}" -> {"channel", "kind",
    "side", "target", "mean", "max"}``: mean and max of the relative error over the samples
    and the points of the side (dimensionless).
    """
    samples = np.asarray(samples, dtype=float)
    if isinstance(grid, FieldSpec):
        spec = grid
        if channels is not None and tuple(channels) != spec.channels:
            raise ValueError(
                f"channels = {list(channels)} disagree with the FieldSpec's {list(spec.channels)}"
            )
        channels = list(spec.channels)
        coordinates = list(spec.coordinates)
        axis_names: tuple[str, ...] = spec.axis_names
    else:
        if channels is None:
            raise ValueError("boundary_errors: give channels= with a 1-D grid, or a FieldSpec")
        channels = list(channels)
        coordinates = [np.asarray(grid, dtype=float).reshape(-1)]
        axis_names = ("x",)
    shape = tuple(len(axis) for axis in coordinates)
    if samples.ndim != 2 + len(shape) or samples.shape[1:] != (len(channels), *shape):
        expected = ", ".join(str(v) for v in (len(channels), *shape))
        raise ValueError(
            f"samples have shape {samples.shape}; expected (n, {expected}) for channels "
            f"{channels} and a grid of shape {shape}"
        )
    if isinstance(scale, Mapping):
        scale_by_channel = {name: float(scale[name]) for name in channels if name in scale}
    else:
        values = np.asarray(scale, dtype=float).reshape(-1)
        if values.shape != (len(channels),):
            raise ValueError(f"scale = {values}; expected one value per channel {channels}")
        scale_by_channel = dict(zip(channels, values.tolist(), strict=True))
    if len(coordinates) == 1:  # 1-D: the grid is checked whatever the constraints (as always)
        _check_axis(coordinates[0], axis_names[0])
    sides = ["left", "right"] + [f"{a}_{end}" for a in axis_names for end in ("low", "high")]
    result: dict[str, dict[str, Any]] = {}
    for constraint in constraints:
        channel, kind, side, target = constraint
        kind, side = kind.lower(), side.lower()
        if channel not in channels:
            raise ValueError(f"constraint {constraint}: channel {channel!r} not in {channels}")
        if kind not in ("dirichlet", "neumann"):
            raise ValueError(f"constraint {constraint}: kind {kind!r}; use 'dirichlet'/'neumann'")
        located = _boundary_axis(side, axis_names)
        if located is None:
            raise ValueError(f"constraint {constraint}: side {side!r}; use one of {sides}")
        axis, end = located
        axis_grid = coordinates[axis]
        _check_axis(axis_grid, axis_names[axis])
        channel_scale = scale_by_channel.get(channel)
        if channel_scale is None or not channel_scale > 0:
            raise ValueError(
                f"constraint {constraint}: scale of {channel!r} is {channel_scale}; "
                "need a positive number"
            )
        # (n, *rest, N_axis): the constrained axis last
        values = np.moveaxis(samples[:, channels.index(channel)], 1 + axis, -1)
        if kind == "dirichlet":
            boundary = values[..., 0] if end == "left" else values[..., -1]
            error = np.abs(boundary - target) / channel_scale
        else:
            idx, weights = _endpoint_derivative_weights(axis_grid, end)
            derivative = values[..., idx] @ weights
            error = np.abs(derivative - target) * (axis_grid[-1] - axis_grid[0]) / channel_scale
        result[f"{channel}:{kind}:{side}"] = {
            "channel": channel,
            "kind": kind,
            "side": side,
            "target": float(target),
            "mean": float(error.mean()),
            "max": float(error.max()),
        }
    return result


def _check_axis(axis_grid: np.ndarray, name: str) -> None:
    if len(axis_grid) < 3 or np.any(np.diff(axis_grid) <= 0):
        raise ValueError(
            f"grid axis {name!r} has {len(axis_grid)} points; a boundary check needs at least 3 "
            "strictly increasing points"
        )


def _fit_logistic(features: np.ndarray, labels: np.ndarray, penalty: float) -> np.ndarray:
    """L2-penalised logistic regression by Newton's method; features carry a bias column."""
    weights = np.zeros(features.shape[1])
    ridge = penalty * np.eye(features.shape[1])
    ridge[0, 0] = 0.0  # no penalty on the bias
    for _ in range(50):
        prob = 1.0 / (1.0 + np.exp(-np.clip(features @ weights, -30, 30)))
        gradient = features.T @ (prob - labels) + ridge @ weights
        hessian = (features * (prob * (1 - prob))[:, None]).T @ features + ridge
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return weights


def classifier_two_sample_test(
    a: np.ndarray,
    b: np.ndarray,
    seed: int,
    *,
    n_components: int = 10,
    penalty: float = 1.0,
) -> dict[str, float]:
    """Can a simple classifier tell the two sets apart on held-out samples?

    a: (n, C, *S), b: (m, C, *S). Each channel is standardised by
    ``channel_fluctuation_scale`` of the pooled set; the flattened fields are projected on
    the first ``n_components`` principal components of the training half, and a logistic
    regression on [z, z^2] (so it sees both mean and variance differences) is fitted on a
    random half (``seed``) of the balanced, pooled samples and scored on the other half.
    Returns {"accuracy", "p_value", "n_test"}: accuracy near 0.5 means indistinguishable;
    p_value is the one-sided binomial test of accuracy > 0.5.
    """
    a, b = _check_pair(a, b)
    rng = np.random.default_rng(seed)
    size = min(len(a), len(b))
    if size < 10:
        raise ValueError(f"classifier_two_sample_test needs >= 10 samples per set, got {size}")
    a = a[rng.permutation(len(a))[:size]]
    b = b[rng.permutation(len(b))[:size]]
    pooled = np.concatenate([a, b])
    scale = channel_fluctuation_scale(pooled)
    flat = ((pooled - pooled.mean(axis=0)) / scale[:, None]).reshape(len(pooled), -1)
    labels = np.concatenate([np.ones(size), np.zeros(size)])
    order = rng.permutation(len(flat))
    train, test = order[: len(order) // 2], order[len(order) // 2 :]
    centre = flat[train].mean(axis=0)
    _, singular, basis = np.linalg.svd(flat[train] - centre, full_matrices=False)
    k = min(n_components, int(np.count_nonzero(singular > 1e-10 * singular[0])))
    projected = (flat - centre) @ basis[:k].T
    projected /= projected[train].std(axis=0, ddof=1)
    features = np.column_stack([np.ones(len(flat)), projected, projected**2 - 1.0])
    weights = _fit_logistic(features[train], labels[train], penalty)
    predicted = (features[test] @ weights) > 0
    correct = int(np.count_nonzero(predicted == (labels[test] == 1)))
    p_value = stats.binomtest(correct, len(test), 0.5, alternative="greater").pvalue
    return {
        "accuracy": correct / len(test),
        "p_value": float(p_value),
        "n_test": len(test),
    }
