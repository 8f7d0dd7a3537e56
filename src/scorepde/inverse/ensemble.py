"""A deep ensemble of amortised posteriors: several score models of the same ``p(x | y)``,
trained from different seeds (pairs, split, initialisation), whose samples are pooled.

Why: a single score model's posterior can be over-confident because its *mean* is off by about
its own spread (the network's approximation error), not because its spread is wrong; members
trained from different seeds err in different places, and the mixture of their posteriors
carries that disagreement as spread (docs/elasticity.md, "Ensembles"). Pooling is the mixture
with equal weights: sample ``j`` of a pooled draw comes from member ``j mod M``, so any prefix
of the samples is balanced across members.

Two verbs, as for one posterior::

    ensemble = EnsemblePosterior([posterior_a, posterior_b])
    samples = ensemble.sample(1000, y_observed)           # (1000, *x_shape)
    ensemble.save("runs/ens/model"); load_posterior("runs/ens/model")

Folder layout of :meth:`EnsemblePosterior.save`: ``ensemble.yaml`` (format, member folders)
and one :meth:`AmortisedPosterior.save` folder per member (``member-0``, ``member-1``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from scorepde.fileio import atomic_write_text
from scorepde.inverse.posterior import AmortisedPosterior

#: Format of ``ensemble.yaml``.
ENSEMBLE_FORMAT = "scorepde.ensemble/1"
ENSEMBLE_FILE = "ensemble.yaml"


def member_seed(seed: int, member: int) -> int:
    """The seed of ensemble member ``member`` of a job seeded ``seed``: ``seed`` itself for
    member 0 (so a one-member ensemble is the single model), else a value drawn from
    ``SeedSequence([seed, member])`` (far from ``seed + 1``, ``seed + 2``: the seeds the
    recipes give their calibration pairs and samples)."""
    if isinstance(member, bool) or not isinstance(member, int) or member < 0:
        raise ValueError(f"member must be an integer >= 0, got {member!r}")
    if member == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), member]).generate_state(1)[0] % 2**31)


class EnsemblePosterior:
    """Equal-weight mixture of :class:`AmortisedPosterior` members of the same ``x`` and ``y``.

    :meth:`sample` and :meth:`sample_many` have the signatures of :class:`AmortisedPosterior`'s:
    sample ``j`` comes from member ``j mod M``, drawn with that member's own seed
    (:func:`member_seed` of ``seed``), so the result does not depend on ``batch_size`` and the
    members' noise streams are independent.
    """

    def __init__(self, members: Sequence[AmortisedPosterior]) -> None:
        members = list(members)
        if not members:
            raise ValueError("members is empty; an ensemble needs at least one posterior")
        for index, member in enumerate(members):
            if not isinstance(member, AmortisedPosterior):
                raise TypeError(
                    f"members[{index}] is a {type(member).__name__}; expected AmortisedPosterior"
                )
            member._require_trained()
            if (member.x_shape, member.y_shape) != (members[0].x_shape, members[0].y_shape):
                raise ValueError(
                    f"members[{index}] models x {member.x_shape} given y {member.y_shape}; "
                    f"members[0] models x {members[0].x_shape} given y {members[0].y_shape}"
                )
        self.members = members

    def __repr__(self) -> str:
        return (
            f"EnsemblePosterior({len(self.members)} members, x_shape={self.x_shape}, "
            f"y_shape={self.y_shape})"
        )

    def __len__(self) -> int:
        return len(self.members)

    @property
    def x_shape(self) -> tuple[int, ...]:
        return self.members[0].x_shape

    @property
    def y_shape(self) -> tuple[int, ...]:
        return self.members[0].y_shape

    @property
    def metadata(self) -> dict[str, Any]:
        """Member 0's training summary, with ``members`` (each member's summary) and
        ``train_seconds`` summed over the members (the training cost; members trained side by
        side took less wall time)."""
        summaries = [dict(member.metadata) for member in self.members]
        combined = dict(summaries[0])
        combined["members"] = summaries
        combined["train_seconds"] = float(sum(s.get("train_seconds", 0.0) for s in summaries))
        return combined

    # ------------------------------------------------------------------ sampling

    def sample(self, n: int, y: np.ndarray, *, seed: int = 0, **kwargs: Any) -> np.ndarray:
        """``n`` pooled posterior samples ``(n, *x_shape)`` given one observation ``y``; the
        other arguments are those of :meth:`AmortisedPosterior.sample`."""
        observation = np.asarray(y, dtype=np.float64)
        if observation.size != int(np.prod(self.y_shape)):
            raise ValueError(
                f"y has shape {observation.shape}; expected one observation of shape {self.y_shape}"
            )
        return self.sample_many(n, observation.reshape(1, *self.y_shape), seed=seed, **kwargs)[0]

    def sample_many(
        self, n: int, observations: np.ndarray, *, seed: int = 0, **kwargs: Any
    ) -> np.ndarray:
        """``n`` pooled samples for each of ``M`` observations: ``(M, *y_shape)`` ->
        ``(M, n, *x_shape)``; sample ``j`` of each observation from member ``j mod`` (number of
        members). The other arguments are those of :meth:`AmortisedPosterior.sample_many`."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        batch = np.asarray(observations, dtype=np.float64)
        count = len(self.members)
        out: np.ndarray | None = None
        for index, member in enumerate(self.members):
            share = len(range(index, int(n), count))
            if share == 0:
                continue
            drawn = member.sample_many(share, batch, seed=member_seed(seed, index), **kwargs)
            if out is None:
                out = np.empty((drawn.shape[0], int(n), *drawn.shape[2:]), dtype=drawn.dtype)
            out[:, index::count] = drawn
        assert out is not None
        return out

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write each member to ``path/member-K`` and then ``path/ensemble.yaml`` (last and
        atomically, so a folder without it is not an ensemble); returns the folder."""
        folder = Path(path)
        names = []
        for index, member in enumerate(self.members):
            name = f"member-{index}"
            member.save(folder / name)
            names.append(name)
        record = {
            "format": ENSEMBLE_FORMAT,
            "members": names,
            "x_shape": list(self.x_shape),
            "y_shape": list(self.y_shape),
        }
        atomic_write_text(folder / ENSEMBLE_FILE, yaml.safe_dump(record, sort_keys=False))
        return folder

    @classmethod
    def load(
        cls, path: str | Path, *, map_location: str | torch.device = "cpu"
    ) -> EnsemblePosterior:
        """Read a folder written by :meth:`save`; a missing or unreadable ``ensemble.yaml`` or
        member folder is an error naming it."""
        folder = Path(path)
        index_file = folder / ENSEMBLE_FILE
        try:
            record = yaml.safe_load(index_file.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise ValueError(f"{index_file}: not a readable ensemble index ({error})") from error
        if not isinstance(record, dict) or record.get("format") != ENSEMBLE_FORMAT:
            raise ValueError(f"{index_file}: expected format {ENSEMBLE_FORMAT!r}, got {record!r}")
        names = record.get("members")
        if not isinstance(names, list) or not names or not all(isinstance(s, str) for s in names):
            raise ValueError(f"{index_file}: 'members' must be a non-empty list of folder names")
        members = []
        for name in names:
            member_dir = folder / name
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ValueError(f"{index_file}: member folder {name!r} must lie inside {folder}")
            if not member_dir.is_dir():
                raise ValueError(f"{index_file}: member folder {member_dir} is missing")
            members.append(AmortisedPosterior.load(member_dir, map_location=map_location))
        return cls(members)


def is_ensemble(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by :meth:`EnsemblePosterior.save`."""
    return (Path(path) / ENSEMBLE_FILE).is_file()


def load_posterior(
    path: str | Path, *, map_location: str | torch.device = "cpu"
) -> AmortisedPosterior | EnsemblePosterior:
    """An :class:`EnsemblePosterior` where ``path`` holds ``ensemble.yaml``, else
    :meth:`AmortisedPosterior.load` (a model, checkpoint or run folder)."""
    if is_ensemble(path):
        return EnsemblePosterior.load(path, map_location=map_location)
    return AmortisedPosterior.load(path, map_location=map_location)


__all__ = [
    "ENSEMBLE_FILE",
    "ENSEMBLE_FORMAT",
    "EnsemblePosterior",
    "is_ensemble",
    "load_posterior",
    "member_seed",
]
