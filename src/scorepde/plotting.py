"""Figures: sample fields with their latent input, and mean with a 95 % band per channel.

All functions write a PNG (atomically) and return its path; they never show a window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from scorepde.fileio import atomic_path

_COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    _pyplot().close(fig)
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
    plt = _pyplot()
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
    return _save(fig, path)


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
    plt = _pyplot()
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
    return _save(fig, path)


def plot_training_history(
    history: Mapping[str, Sequence[float]], path: str | Path, *, title: str | None = None
) -> Path:
    """Per-epoch curves on a log axis (e.g. train_loss, grad_norm, val_loss) against ``epoch``."""
    plt = _pyplot()
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
    return _save(fig, path)
