"""Saved multi-fidelity models behind one interface (what ``scorepde sample RUN --fidelity F``
uses): a DGMF model of a benchmark run, or the battery's multi-fidelity model.

A multi-fidelity model folder holds ``multifidelity.json`` (``{"kind": "dgmf" | "battery",
"fidelities": [...], ...}``) beside the model; a run folder holds it under ``model/``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scorepde.fileio import atomic_write_text

__all__ = [
    "MULTIFIDELITY_FILE",
    "SavedMultiFidelityModel",
    "find_multifidelity_model",
    "write_marker",
]

MULTIFIDELITY_FILE = "multifidelity.json"


def write_marker(folder: str | Path, kind: str, fidelities: Sequence[int], **extra: Any) -> Path:
    """Write ``folder/multifidelity.json`` (atomically): ``kind`` (``"dgmf"`` or
    ``"battery"``), the trained ``fidelities`` and ``extra`` JSON-safe entries (a benchmark's
    ``input_names``, the recipe's name). Returns its path."""
    if kind not in ("dgmf", "battery"):
        raise ValueError(f"kind is {kind!r}; expected 'dgmf' or 'battery'")
    path = Path(folder) / MULTIFIDELITY_FILE
    marker = {"kind": kind, "fidelities": [int(f) for f in fidelities], **extra}
    atomic_write_text(path, json.dumps(marker, indent=2) + "\n")
    return path


def find_multifidelity_model(path: str | Path) -> Path | None:
    """The multi-fidelity model folder at ``path`` (the folder itself or its ``model/``), or
    None if ``path`` holds none."""
    folder = Path(path)
    for candidate in (folder, folder / "model"):
        if (candidate / MULTIFIDELITY_FILE).is_file():
            return candidate
    return None


class SavedMultiFidelityModel:
    """A loaded multi-fidelity model: ``condition_names``, ``fidelities``,
    :meth:`check_conditions` and :meth:`sample` (physical units at a trained fidelity)."""

    def __init__(self, kind: str, model: Any, marker: dict[str, Any], folder: Path) -> None:
        self.kind = kind
        self.model = model
        self.marker = marker
        self.folder = folder

    @classmethod
    def load(cls, path: str | Path) -> SavedMultiFidelityModel:
        """Load from a model folder or a run folder (a clear error if it holds none)."""
        folder = find_multifidelity_model(path)
        if folder is None:
            raise FileNotFoundError(
                f"{path}: no multi-fidelity model here (no {MULTIFIDELITY_FILE} in it or in its "
                "model/ folder)"
            )
        marker_file = folder / MULTIFIDELITY_FILE
        try:
            marker = json.loads(marker_file.read_text(encoding="utf-8"))
            kind = marker["kind"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{marker_file}: unreadable ({error!r})") from error
        if kind == "dgmf":
            from scorepde.multifidelity.dgmf import DGMFModel

            return cls(kind, DGMFModel.load(folder), marker, folder)
        if kind == "battery":
            from scorepde.multifidelity.battery import load_battery_mf

            return cls(kind, load_battery_mf(folder), marker, folder)
        raise ValueError(f"{marker_file}: kind is {kind!r}; expected 'dgmf' or 'battery'")

    @property
    def condition_names(self) -> tuple[str, ...]:
        if self.kind == "dgmf":
            names = self.marker.get("input_names")
            d = int(np.asarray(self.model.encoder.input_bounds).shape[0])
            return tuple(names) if names else tuple(f"x{i}" for i in range(d))
        return tuple(self.model.condition_names)

    @property
    def fidelities(self) -> tuple[int, ...]:
        return tuple(int(f) for f in self.model.fidelities)

    def check_conditions(self, values: Sequence[float]) -> None:
        """A ValueError naming the condition for a non-finite value or (DGMF) one outside the
        trained input box."""
        for name, value in zip(self.condition_names, values, strict=True):
            if not math.isfinite(value):
                raise ValueError(f"condition {name} = {value} is not finite")
        if self.kind == "dgmf":
            bounds = np.asarray(self.model.encoder.input_bounds, dtype=float)
            for name, value, (low, high) in zip(self.condition_names, values, bounds, strict=True):
                if not low <= value <= high:
                    raise ValueError(
                        f"condition {name} = {value} is outside the trained box [{low}, {high}]"
                    )

    def sample(
        self,
        values: Sequence[float],
        n: int,
        fidelity: float,
        *,
        seed: int = 0,
        standardised: bool = False,
    ) -> np.ndarray:
        """``n`` samples for one condition row at ``fidelity``: DGMF ``(n, 1, N, N)`` (physical
        units at a trained level; ``standardised=True``: the level's standardised space, the
        only one a continuous-fidelity model has for an untrained level); battery
        ``(n, 2, 100)`` physical."""
        if self.kind == "dgmf":
            trained = [int(f) for f in self.model.fidelities]
            if fidelity not in trained:
                if self.model.encoder.mode == "label":
                    raise ValueError(
                        f"fidelity is {fidelity:g}; this model has one label per trained level "
                        f"and samples only those: {trained}"
                    )
                if not standardised:
                    raise ValueError(
                        f"fidelity is {fidelity:g}, not a trained level {trained}: physical "
                        "units exist only there (each level has its own standardisation); ask "
                        "for the standardised values (--standardised, standardised=True)"
                    )
            space = "standardised" if standardised else "physical"
            inputs = np.asarray(values, dtype=float)[None, :]
            out = self.model.sample(inputs, fidelity, n, space=space, seed=seed)
            return out[0][:, None]
        if standardised:
            raise ValueError("standardised output exists only for DGMF benchmark models")
        if float(fidelity) != int(fidelity):
            raise ValueError(f"fidelity is {fidelity!r}; the battery's levels are grid sizes")
        return self.model.sample(list(values), n, int(fidelity), seed=seed)
