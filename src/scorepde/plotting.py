"""Figures: sample fields with their latent input, and mean with a 95 % band per channel.

1-D fields: ``plot_mean_band``, ``plot_sample_fields``. 2-D fields: ``plot_field_images``
(mean, std and a few samples as images, model and simulator on one colour scale) and
``plot_transect_band`` (mean and bands along a line of the grid). All functions write a PNG
(atomically) and return its path; they never show a window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from scorepde.fields import FieldSpec
from scorepde.fileio import atomic_path

_COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple")


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (figures are files here)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, *, tight: bool = True) -> Path:
    """Write ``fig`` as a PNG atomically (temp file + rename) and close it; returns ``path``."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight" if tight else None, format="png")
    pyplot().close(fig)
    return path


def plot_mean_band(
    samples: Mapping[str, np.ndarray],
    grid: np.ndarray,
    channel_names: Sequence[str],
    path: str | Path,
    *,
    channel_units: Sequence[str] | None = None,
    title: str | None = None,
    level: float = 0.95,
) -> Path:
    """Mean and central ``level`` band of several sample sets, one panel per channel.

    samples: label -> (n, channels, n_points) in physical units (e.g. {"simulator": ..,
    "SGM": ..}); grid: (n_points,) coordinates in metres (plotted in micrometres).
    """
    if not samples:
        raise ValueError("plot_mean_band: samples is empty; give at least one labelled set")
    plt = pyplot()
    n_channels = len(channel_names)
    fig, axes = plt.subplots(1, n_channels, figsize=(5.0 * n_channels, 3.8), squeeze=False)
    x = np.asarray(grid) * 1e6
    lo_q, hi_q = 50 * (1 - level), 50 * (1 + level)
    for ch, name in enumerate(channel_names):
        ax = axes[0, ch]
        for k, (label, values) in enumerate(samples.items()):
            values = np.asarray(values)
            if values.ndim != 3 or values.shape[1] != n_channels:
                raise ValueError(
                    f"plot_mean_band: samples[{label!r}] has shape {values.shape}; "
                    f"expected (n, {n_channels}, n_points)"
                )
            colour = _COLOURS[k % len(_COLOURS)]
            lo, hi = np.percentile(values[:, ch], [lo_q, hi_q], axis=0)
            ax.fill_between(x, lo, hi, color=colour, alpha=0.25, linewidth=0)
            ax.plot(x, values[:, ch].mean(axis=0), color=colour, label=f"{label} (n={len(values)})")
        unit = f" [{channel_units[ch]}]" if channel_units else ""
        ax.set_xlabel("x [µm]")
        ax.set_ylabel(f"{name}{unit}")
        ax.grid(alpha=0.3)
        if ch == 0:
            ax.legend(fontsize=8)
    fig.suptitle(title or f"mean and {round(level * 100)} % band")
    return save_figure(fig, path)


def plot_sample_fields(
    fields: np.ndarray,
    latent: np.ndarray,
    grid: np.ndarray,
    channel_names: Sequence[str],
    path: str | Path,
    *,
    latent_name: str = "porosity",
    channel_units: Sequence[str] | None = None,
    title: str | None = None,
    max_samples: int = 5,
) -> Path:
    """A few individual fields next to the latent field that produced each.

    fields: (n, channels, n_points); latent: (n, n_points); grid: (n_points,) in metres.
    """
    plt = pyplot()
    fields = np.asarray(fields)
    latent = np.asarray(latent)
    if fields.ndim != 3 or latent.ndim != 2 or len(fields) != len(latent):
        raise ValueError(
            f"plot_sample_fields: fields {fields.shape} and latent {latent.shape} must be "
            "(n, channels, n_points) and (n, n_points) with the same n"
        )
    n = min(max_samples, len(fields))
    n_channels = len(channel_names)
    fig, axes = plt.subplots(1, n_channels + 1, figsize=(4.5 * (n_channels + 1), 3.6))
    x = np.asarray(grid) * 1e6
    for i in range(n):
        colour = _COLOURS[i % len(_COLOURS)]
        axes[0].plot(x, latent[i], color=colour)
        for ch in range(n_channels):
            axes[ch + 1].plot(x, fields[i, ch], color=colour)
    axes[0].set_ylabel(latent_name)
    for ch, name in enumerate(channel_names):
        unit = f" [{channel_units[ch]}]" if channel_units else ""
        axes[ch + 1].set_ylabel(f"{name}{unit}")
    for ax in axes:
        ax.set_xlabel("x [µm]")
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"{n} sample fields and their {latent_name}")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_training_history(
    history: Mapping[str, Sequence[float]], path: str | Path, *, title: str | None = None
) -> Path:
    """Per-epoch curves on a log axis (e.g. train_loss, grad_norm, val_loss) against ``epoch``."""
    plt = pyplot()
    if "epoch" not in history:
        raise ValueError(
            f"plot_training_history: history needs an 'epoch' column, has {list(history)}"
        )
    epochs = np.asarray(history["epoch"], dtype=float)
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for k, (name, values) in enumerate(history.items()):
        if name == "epoch":
            continue
        values = np.asarray(values, dtype=float)
        ok = np.isfinite(values) & (values > 0)
        ax.plot(epochs[ok], values[ok], color=_COLOURS[k % len(_COLOURS)], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(title or "training history")
    return save_figure(fig, path)


def _check_sets(
    samples: Mapping[str, np.ndarray], spec: FieldSpec, caller: str
) -> dict[str, np.ndarray]:
    if not samples:
        raise ValueError(f"{caller}: samples is empty; give at least one labelled set")
    return {
        label: spec.check(values, f"{caller}: samples[{label!r}]")
        for label, values in samples.items()
    }


def _axis_label(spec: FieldSpec, axis: int) -> str:
    return f"{spec.axis_names[axis]} [{spec.axis_units[axis]}]"


def plot_field_images(
    samples: Mapping[str, np.ndarray],
    spec: FieldSpec,
    path: str | Path,
    *,
    n_shown: int = 3,
    title: str | None = None,
) -> Path:
    """Mean, ``n_shown`` samples and standard deviation of each set as images, per channel.

    samples: label -> ``(n, C, Ny, Nx)`` in physical units (e.g. {"SGM": .., "simulator":
    ..}); spec: the 2-D ``FieldSpec`` (coordinates of y and x, in array-axis order). One row
    per channel and set; columns: mean, samples 1..n_shown (the first ones of each set), the
    colour bar of those, the std and its colour bar. Within a channel every set uses the same
    two colour scales (values: the 0.5-99.5 percentiles of the shown means and samples; std:
    0 to the largest std of the sets), so the rows of a channel compare by eye.
    """
    if spec.rank != 2:
        raise ValueError(f"plot_field_images: spec has a {spec.rank}-D grid; expected 2-D")
    if n_shown < 0:
        raise ValueError(f"plot_field_images: n_shown = {n_shown}; expected >= 0")
    sets = _check_sets(samples, spec, "plot_field_images")
    plt = pyplot()
    y, x = spec.coordinates
    n_rows = spec.n_channels * len(sets)
    n_values = 1 + n_shown  # mean and samples share the value scale
    width_ratios = [1.0] * n_values + [0.07, 0.35, 1.0, 0.07]
    width, height = 2.3 * (n_values + 1) + 1.8, 2.0 * n_rows + 0.9  # inches
    fig = plt.figure(figsize=(width, height))
    grid = fig.add_gridspec(
        n_rows,
        len(width_ratios),
        width_ratios=width_ratios,
        wspace=0.08,
        hspace=0.35,
        left=0.6 / width,
        right=1.0 - 0.7 / width,
        bottom=0.5 / height,
        top=1.0 - 0.6 / height,
    )
    spacer = n_values + 1  # an empty column between the value colour bar and the std images
    for ch, name in enumerate(spec.channels):
        unit = spec.channel_units[ch]
        stats = {}
        for label, values in sets.items():
            shown = values[: min(n_shown, len(values)), ch]
            stats[label] = (values[:, ch].mean(axis=0), values[:, ch].std(axis=0, ddof=1), shown)
        pooled = np.concatenate(
            [np.ravel(mean) for mean, _, _ in stats.values()]
            + [np.ravel(shown) for _, _, shown in stats.values()]
        )
        vmin, vmax = np.percentile(pooled, [0.5, 99.5])
        std_max = max(float(std.max()) for _, std, _ in stats.values()) or 1.0
        rows = slice(ch * len(sets), (ch + 1) * len(sets))
        for k, (label, (mean, std, shown)) in enumerate(stats.items()):
            row = ch * len(sets) + k
            panels = [("mean", mean)] + [(f"sample {i + 1}", f) for i, f in enumerate(shown)]
            panels.append(("std", std))
            for col, (heading, image) in enumerate(panels):
                is_std = heading == "std"
                ax = fig.add_subplot(grid[row, spacer + 1 if is_std else col])
                mesh = ax.pcolormesh(
                    x,
                    y,
                    image,
                    shading="nearest",
                    cmap="magma" if is_std else "viridis",
                    vmin=0.0 if is_std else vmin,
                    vmax=std_max if is_std else vmax,
                )
                ax.set_title(f"{label}: {name} {heading}", fontsize=8)
                ax.tick_params(labelsize=7)
                if col == 0 or is_std:
                    ax.set_ylabel(_axis_label(spec, 0), fontsize=8)
                else:
                    ax.set_yticklabels([])
                if row == n_rows - 1:
                    ax.set_xlabel(_axis_label(spec, 1), fontsize=8)
                else:
                    ax.set_xticklabels([])
                if k == 0:
                    colour_bar = fig.add_subplot(grid[rows, spacer + 2 if is_std else n_values])
                    fig.colorbar(
                        mesh, cax=colour_bar, label=f"{'std ' if is_std else ''}{name} [{unit}]"
                    )
    fig.suptitle(title or "mean, samples and std", y=1.0 - 0.2 / height)
    return save_figure(fig, path, tight=False)


def plot_transect_band(
    samples: Mapping[str, np.ndarray],
    spec: FieldSpec,
    path: str | Path,
    *,
    index: Sequence[int] | None = None,
    level: float = 0.95,
    title: str | None = None,
) -> Path:
    """Mean, mean +- 2 std and the central ``level`` band along a line of the grid.

    samples: label -> ``(n, C, *S)`` in physical units; spec: their ``FieldSpec`` (rank >= 1).
    The line runs along the last grid axis, at ``index`` (one position per other axis;
    default the middle: the middle row ``j = Ny // 2`` of a 2-D grid). One panel per channel:
    per set, the mean (solid), mean +- 2 std (dashed) and the pointwise central band (shaded).
    """
    sets = _check_sets(samples, spec, "plot_transect_band")
    if index is None:
        index = tuple(size // 2 for size in spec.grid_shape[:-1])
    index = tuple(int(i) for i in index)
    if len(index) != spec.rank - 1 or any(
        not 0 <= i < size for i, size in zip(index, spec.grid_shape[:-1], strict=True)
    ):
        raise ValueError(
            f"plot_transect_band: index = {index}; expected {spec.rank - 1} position(s) inside "
            f"the grid {spec.grid_shape[:-1]} of the axes {list(spec.axis_names[:-1])}"
        )
    plt = pyplot()
    x = spec.coordinates[-1]
    lo_q, hi_q = 50 * (1 - level), 50 * (1 + level)
    fig, axes = plt.subplots(
        1, spec.n_channels, figsize=(5.0 * spec.n_channels, 3.8), squeeze=False
    )
    for ch, name in enumerate(spec.channels):
        ax = axes[0, ch]
        for k, (label, values) in enumerate(sets.items()):
            line = values[(slice(None), ch, *index)]  # (n, N_last)
            colour = _COLOURS[k % len(_COLOURS)]
            mean, std = line.mean(axis=0), line.std(axis=0, ddof=1)
            lo, hi = np.percentile(line, [lo_q, hi_q], axis=0)
            ax.fill_between(x, lo, hi, color=colour, alpha=0.25, linewidth=0)
            ax.plot(x, mean, color=colour, label=f"{label} (n={len(values)})")
            ax.plot(x, mean - 2 * std, color=colour, linestyle="--", linewidth=0.9)
            ax.plot(x, mean + 2 * std, color=colour, linestyle="--", linewidth=0.9)
        ax.set_xlabel(_axis_label(spec, spec.rank - 1))
        ax.set_ylabel(f"{name} [{spec.channel_units[ch]}]")
        ax.grid(alpha=0.3)
        if ch == 0:
            ax.legend(fontsize=8)
    where = ", ".join(
        f"{axis} = {spec.coordinates[a][i]:.4g} {spec.axis_units[a]}"
        for a, (axis, i) in enumerate(zip(spec.axis_names[:-1], index, strict=True))
    )
    fig.suptitle(
        (title or "transect")
        + (f" at {where}" if where else "")
        + f": mean (solid), mean +- 2 std (dashed), {round(level * 100)} % band (shaded)"
    )
    return save_figure(fig, path)
