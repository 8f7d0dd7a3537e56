"""Figures for inverse problems: posterior of a field (mean and band against the truth), pair
plot of a vector posterior, and the calibration figure (rank histograms and coverage curve).

Like :mod:`scorepde.plotting`: matplotlib's Agg backend, one PNG written atomically, the path
returned, never a window.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from scorepde.evaluation.calibration import CalibrationResult
from scorepde.plotting import pyplot, save_figure

_TRUTH = "tab:red"
_POSTERIOR = "tab:blue"


def plot_posterior_band(
    samples: np.ndarray,
    path: str | Path,
    *,
    truth: np.ndarray | None = None,
    grid: np.ndarray | None = None,
    level: float = 0.95,
    channel_names: Sequence[str] | None = None,
    x_label: str = "index",
    title: str | None = None,
) -> Path:
    """Posterior mean and central ``level`` band of a field, one panel per channel, with the
    truth if given.

    samples: ``(n, N)`` or ``(n, C, N)``; truth: ``(N,)`` or ``(C, N)``; grid: ``(N,)`` x-axis
    values (default ``0..N-1``), plotted as given with ``x_label``.
    """
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim == 2:
        values = values[:, None, :]
    if values.ndim != 3 or values.shape[0] < 2:
        raise ValueError(
            f"plot_posterior_band: samples have shape {np.shape(samples)}; expected (n, N) or "
            "(n, C, N) with n >= 2"
        )
    n_channels, n_points = values.shape[1:]
    reference = None
    if truth is not None:
        reference = np.asarray(truth, dtype=np.float64).reshape(n_channels, n_points)
    axis = np.arange(n_points) if grid is None else np.asarray(grid, dtype=np.float64)
    if axis.shape != (n_points,):
        raise ValueError(
            f"plot_posterior_band: grid has shape {axis.shape}; expected ({n_points},)"
        )
    if not 0.0 < level < 1.0:
        raise ValueError(f"plot_posterior_band: level must be in (0, 1), got {level!r}")
    names = list(channel_names) if channel_names else [f"x{c}" for c in range(n_channels)]
    plt = pyplot()
    fig, axes = plt.subplots(1, n_channels, figsize=(5.5 * n_channels, 3.8), squeeze=False)
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)], axis=0)
    mean = values.mean(axis=0)
    for c in range(n_channels):
        ax = axes[0, c]
        ax.fill_between(
            axis,
            lo[c],
            hi[c],
            color=_POSTERIOR,
            alpha=0.25,
            linewidth=0,
            label=f"{round(100 * level)} % band",
        )
        ax.plot(axis, mean[c], color=_POSTERIOR, label=f"posterior mean (n={len(values)})")
        if reference is not None:
            ax.plot(axis, reference[c], color=_TRUTH, linestyle="--", label="truth")
        ax.set_xlabel(x_label)
        ax.set_ylabel(names[c])
        ax.grid(alpha=0.3)
        if c == 0:
            ax.legend(fontsize=8)
    fig.suptitle(title or f"posterior mean and {round(100 * level)} % band")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_field_posterior(
    samples: np.ndarray,
    path: str | Path,
    *,
    truth: np.ndarray | None = None,
    measurement: np.ndarray | None = None,
    measurement_names: Sequence[str] = ("u_x", "u_y"),
    name: str = "log mu",
    extent: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0),
    title: str | None = None,
) -> Path:
    """Posterior of a 2-D field beside what was measured: the truth (if given), each
    measured channel (if given), the posterior mean and the posterior standard deviation, one
    image each, side by side.

    samples: ``(n, 1, Ny, Nx)`` or ``(n, Ny, Nx)`` (``n >= 2``; arrays ``[..., j, i]``, ``j``
    along y, drawn with y up); truth: ``(Ny, Nx)`` or ``(1, Ny, Nx)``; measurement:
    ``(Cy, Ny', Nx')`` (e.g. the displacement ``(u_x, u_y)``); extent: ``(x0, x1, y0, y1)`` of
    the images, in the grid's units. Truth and mean share one colour scale.
    """
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim == 4 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 3 or values.shape[0] < 2:
        raise ValueError(
            f"plot_field_posterior: samples have shape {np.shape(samples)}; expected "
            "(n, 1, Ny, Nx) or (n, Ny, Nx) with n >= 2"
        )
    grid_shape = values.shape[1:]
    panels: list[tuple[str, np.ndarray, str]] = []  # (title, image, colour group)
    if truth is not None:
        known = np.asarray(truth, dtype=np.float64)
        if known.size != int(np.prod(grid_shape)):
            raise ValueError(
                f"plot_field_posterior: truth has shape {known.shape}; expected {grid_shape}"
            )
        panels.append((f"truth {name}", known.reshape(grid_shape), "field"))
    if measurement is not None:
        measured = np.asarray(measurement, dtype=np.float64)
        if measured.ndim != 3:
            raise ValueError(
                f"plot_field_posterior: measurement has shape {measured.shape}; expected "
                "(Cy, Ny, Nx)"
            )
        labels = list(measurement_names) + [f"y{c}" for c in range(measured.shape[0])]
        for c in range(measured.shape[0]):
            panels.append((f"measured {labels[c]}", measured[c], f"y{c}"))
    mean = values.mean(axis=0)
    panels.append((f"posterior mean (n={values.shape[0]})", mean, "field"))
    panels.append(("posterior std", values.std(axis=0, ddof=1), "std"))
    field_images = [image for _, image, group in panels if group == "field"]
    field_limits = (min(i.min() for i in field_images), max(i.max() for i in field_images))
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.3), squeeze=False)
    for ax, (label, image, group) in zip(axes[0], panels, strict=True):
        limits = field_limits if group == "field" else (image.min(), image.max())
        cmap = "viridis" if group == "field" else ("magma" if group == "std" else "RdBu_r")
        shown = ax.imshow(
            image, origin="lower", extent=extent, cmap=cmap, vmin=limits[0], vmax=limits[1]
        )
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    fig.suptitle(title or f"posterior of {name}")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_pair(
    samples: np.ndarray,
    path: str | Path,
    *,
    truth: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    max_dims: int = 5,
    max_points: int = 2000,
    title: str | None = None,
) -> Path:
    """Corner-style pair plot of the first ``k = min(max_dims, d)`` components of vector
    samples ``(n, d)`` (higher-rank samples are flattened): histograms on the diagonal,
    scatter below it (at most ``max_points`` points), the truth ``(d,)`` as red lines/stars.
    """
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim < 2 or values.shape[0] < 2:
        raise ValueError(
            f"plot_pair: samples have shape {values.shape}; expected (n, d) with n >= 2"
        )
    values = values.reshape(values.shape[0], -1)
    if max_dims < 1:
        raise ValueError(f"plot_pair: max_dims must be >= 1, got {max_dims}")
    k = min(max_dims, values.shape[1])
    marked = None if truth is None else np.asarray(truth, dtype=np.float64).ravel()
    if marked is not None and marked.size != values.shape[1]:
        raise ValueError(
            f"plot_pair: truth has {marked.size} components; samples have {values.shape[1]}"
        )
    labels = list(names)[:k] if names else [f"x[{i}]" for i in range(k)]
    shown = values[:: max(1, int(np.ceil(len(values) / max_points)))]
    plt = pyplot()
    fig, axes = plt.subplots(k, k, figsize=(2.2 * k + 1, 2.2 * k + 1), squeeze=False)
    for row in range(k):
        for col in range(k):
            ax = axes[row, col]
            if col > row:
                ax.set_visible(False)
                continue
            if row == col:
                ax.hist(values[:, col], bins=40, color=_POSTERIOR, alpha=0.7)
                if marked is not None:
                    ax.axvline(marked[col], color=_TRUTH)
                ax.set_yticks([])
            else:
                ax.scatter(shown[:, col], shown[:, row], s=2, color=_POSTERIOR, alpha=0.3)
                if marked is not None:
                    ax.plot(marked[col], marked[row], marker="*", color=_TRUTH, markersize=10)
            if row == k - 1:
                ax.set_xlabel(labels[col])
            if col == 0 and row > 0:
                ax.set_ylabel(labels[row])
    fig.suptitle(title or f"posterior pair plot (n={len(values)}, first {k} of {values.shape[1]})")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_calibration(
    result: CalibrationResult,
    path: str | Path,
    *,
    max_statistics: int = 6,
    title: str | None = None,
) -> Path:
    """Rank histograms of up to ``max_statistics`` statistics (the worst by KS distance,
    ``mean`` if present, then the first ones) with the 99 % band of a uniform histogram's
    counts, and the coverage curve (pooled, and its range over statistics) against nominal."""
    counts, edges = result.rank_histogram()
    order = [int(np.argmax(result.ks))]
    if "mean" in result.names:
        order.append(result.names.index("mean"))
    order += list(range(len(result.names)))
    chosen = list(dict.fromkeys(order))[: max(1, max_statistics)]
    n_bins = counts.shape[1]
    band = stats.binom(result.n_observations, 1.0 / n_bins).ppf([0.005, 0.995])
    n_cols = min(3, len(chosen))
    n_rows = int(np.ceil(len(chosen) / n_cols))
    plt = pyplot()
    fig = plt.figure(figsize=(3.2 * n_cols + 4.5, 2.6 * max(n_rows, 1.5)))
    grid = fig.add_gridspec(n_rows, n_cols + 2)
    centres = 0.5 * (edges[:-1] + edges[1:])
    for i, s in enumerate(chosen):
        ax = fig.add_subplot(grid[i // n_cols, i % n_cols])
        ax.bar(centres, counts[s], width=1.0 / n_bins, color=_POSTERIOR, alpha=0.8)
        ax.axhspan(band[0], band[1], color="0.5", alpha=0.25, linewidth=0)  # 99 % if uniform
        ax.set_title(f"{result.names[s]}  KS {result.ks[s]:.3f}", fontsize=9)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=7)
        if i // n_cols == n_rows - 1:
            ax.set_xlabel("normalised rank")
    ax = fig.add_subplot(grid[:, n_cols:])
    levels = np.r_[0.0, result.levels, 1.0]
    pooled = np.r_[0.0, result.coverage, 1.0]
    tolerance = np.r_[0.0, result.coverage_tolerance, 0.0]
    ax.fill_between(levels, levels - tolerance, levels + tolerance, color="0.85", label="tolerance")
    ax.plot([0, 1], [0, 1], color="0.3", linestyle="--", linewidth=1)
    ax.fill_between(
        result.levels,
        result.coverage_by_statistic.min(axis=1),
        result.coverage_by_statistic.max(axis=1),
        color=_POSTERIOR,
        alpha=0.2,
        label="range over statistics",
    )
    ax.plot(levels, pooled, color=_POSTERIOR, marker="o", markersize=3, label="pooled")
    ax.set_xlabel("nominal level of the central interval")
    ax.set_ylabel("coverage of the truth")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    verdict = "passed" if result.passed else "FAILED"
    fig.suptitle(
        title
        or f"SBC {verdict}: {result.n_observations} pairs x {result.n_samples} samples, max KS "
        f"{np.max(result.ks):.3f} (critical {result.ks_critical:.3f})"
    )
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["plot_calibration", "plot_field_posterior", "plot_pair", "plot_posterior_band"]
