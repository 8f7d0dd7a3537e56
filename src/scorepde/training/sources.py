"""Batch sources: where the trainer's global batches come from.

A :class:`BatchSource` answers three questions for :class:`~scorepde.training.trainer.Trainer`:
how many samples make an epoch (``samples_per_epoch``), what one sample looks like
(``sample_shape``, ``condition_spec``) and, for epoch ``e``, which global batches
``(x (b, *shape), cond | None)`` to train on (:meth:`BatchSource.batches`, given the epoch
number, the global batch size and the trainer's seeded permutation generator). Three sources:

* :class:`TensorSource` ``(x, cond)``: a data set held in memory (on the training device). Each
  epoch draws a permutation of the rows from the trainer's generator and slices it into batches
  (the trainer's behaviour before sources existed, bit for bit).
* :class:`GroupedSource` ``(sources, weights)``: several data sets of the same sample shape and
  conditioning parts (e.g. many coarse fields and few fine ones). Every row of a batch picks
  its group with probability ``weights / sum(weights)`` and then a uniform row of that group
  (with replacement), all from the trainer's generator.
* :class:`StreamingSource` ``(draw, samples_per_epoch, seed)``: fresh simulations during
  training. Batch ``b`` of epoch ``e`` is ``draw(size, np.random.default_rng(SeedSequence([seed,
  e, b])))``: stateless, so resuming and every torchrun rank see the same batches.

The batches are global: under torchrun every rank receives the same global batch and keeps its
own rows. The layout of an epoch (:func:`epoch_layout`) is ``samples_per_epoch`` rows in batches
of ``batch_size``; a last, smaller batch with fewer rows than ``min_last_batch`` (the number of
processes) is dropped, because every process needs at least one row.

A source that keeps state between epochs returns it from :meth:`BatchSource.state_dict`
(tensors, numbers, strings, lists and dicts only: it is saved in the trainer's checkpoint and
loaded with ``weights_only=True``) and takes it back in :meth:`BatchSource.load_state_dict`; the
three sources here are stateless (all their randomness comes from the trainer's checkpointed
generator or from the seed). :meth:`BatchSource.summary` is what a resumed run compares with the
checkpoint to warn when the data changed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scorepde.conditioning import Conditioning, ConditioningSpec

__all__ = [
    "BatchSource",
    "Condition",
    "GroupedSource",
    "StreamingSource",
    "TensorSource",
    "epoch_layout",
    "fixed_set",
]

#: A batch's conditioning: a plain ``(B, k)`` tensor, a :class:`Conditioning` or None.
Condition = Tensor | Conditioning | None


def epoch_layout(samples_per_epoch: int, batch_size: int, min_last_batch: int = 1) -> list[int]:
    """Sizes of an epoch's batches: ``batch_size`` rows each, then the rest if it has at least
    ``min_last_batch`` rows (a smaller rest is dropped).

    ``samples_per_epoch >= 1``, ``batch_size >= 1``; e.g. ``epoch_layout(21, 8, 2) == [8, 8, 5]``
    and ``epoch_layout(17, 8, 2) == [8, 8]``.
    """
    for name, value in (("samples_per_epoch", samples_per_epoch), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"epoch_layout: {name} = {value!r} is not allowed; expected an int >= 1"
            )
    full, rest = divmod(samples_per_epoch, batch_size)
    return [batch_size] * full + ([rest] if rest and rest >= min_last_batch else [])


class BatchSource(ABC):
    """Where the trainer's global batches come from; see the module docstring."""

    @property
    @abstractmethod
    def samples_per_epoch(self) -> int:
        """Rows in one epoch (before a too-small last batch is dropped)."""

    @property
    @abstractmethod
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(C, N)`` or ``(C, H, W)``."""

    @property
    @abstractmethod
    def condition_spec(self) -> ConditioningSpec | None:
        """Sizes of the conditioning (None: unconditional)."""

    @property
    @abstractmethod
    def plain_condition(self) -> bool:
        """Whether the conditioning is a plain ``(B, k)`` tensor (False for a
        :class:`Conditioning` or no conditioning)."""

    @abstractmethod
    def batches(
        self,
        epoch: int,
        batch_size: int,
        generator: torch.Generator,
        *,
        min_last_batch: int = 1,
    ) -> Iterator[tuple[Tensor, Condition]]:
        """The global batches of epoch ``epoch`` (1, 2, ...): ``(x (b, *shape), cond)`` with
        ``b`` following :func:`epoch_layout` ``(samples_per_epoch, batch_size, min_last_batch)``.

        ``generator`` is the trainer's seeded CPU generator (checkpointed with the run); a
        source draws its batch order from it, or ignores it when it is seeded otherwise.
        """

    @abstractmethod
    def to(self, device: torch.device | str) -> BatchSource:
        """This source with its batches on ``device`` (float32 fields, int64 labels)."""

    def state_dict(self) -> dict[str, Any]:
        """State kept between epochs (empty for a stateless source)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (a stateless source accepts only an empty dict)."""
        if state:
            raise ValueError(
                f"{type(self).__name__} keeps no state but was given {sorted(state)}; the "
                "checkpoint was written with another kind of source"
            )

    @abstractmethod
    def summary(self) -> dict[str, Any]:
        """What a resumed run compares with its checkpoint (numbers, strings and lists)."""


# ---------------------------------------------------------------------- helpers


def _condition_spec(cond: Condition) -> ConditioningSpec | None:
    if cond is None:
        return None
    if isinstance(cond, Tensor):
        return ConditioningSpec(vector_dim=int(cond.shape[1]))
    return cond.spec()


def _same_parts(a: ConditioningSpec | None, b: ConditioningSpec | None) -> bool:
    """Same conditioning parts and sizes (the label count may differ)."""
    if a is None or b is None:
        return a is b
    return (a.vector_dim, a.field_channels, a.field_shape, bool(a.n_labels)) == (
        b.vector_dim,
        b.field_channels,
        b.field_shape,
        bool(b.n_labels),
    )


def _describe(cond: Condition) -> str:
    if cond is None:
        return "no conditioning"
    if isinstance(cond, Tensor):
        return f"a plain tensor {tuple(cond.shape[1:])}"
    return f"a Conditioning with {_condition_spec(cond)}"


def _rows(cond: Condition, index: Tensor) -> Condition:
    if cond is None:
        return None
    return cond.index_select(0, index) if isinstance(cond, Tensor) else cond.index_select(index)


def _cat(conds: Sequence[Condition]) -> Condition:
    if conds[0] is None:
        return None
    if isinstance(conds[0], Tensor):
        return torch.cat(list(conds))  # type: ignore[arg-type]
    return Conditioning.cat(list(conds))  # type: ignore[arg-type]


def _prepare(
    x: Any, cond: Any, x_name: str, cond_name: str, device: torch.device | str | None
) -> tuple[Tensor, Condition]:
    """Check and convert ``(x, cond)`` (``device=None`` keeps their device): x a float32
    ``(n >= 1, *shape)`` tensor, cond None, a float32 ``(n, k)`` tensor or a
    :class:`Conditioning` of ``n`` rows, all finite."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{x_name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"{x_name} has shape {tuple(x.shape)}; expected (n >= 1, *shape)")
    x = x.to(device=device, dtype=torch.float32).contiguous()
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{x_name} contains non-finite values")
    n = x.shape[0]
    if cond is None:
        return x, None
    if isinstance(cond, Tensor):
        if cond.ndim != 2 or cond.shape[0] != n:
            raise ValueError(f"{cond_name} has shape {tuple(cond.shape)}; expected ({n}, k)")
        cond = cond.to(device=device, dtype=torch.float32).contiguous()
        finite = bool(torch.isfinite(cond).all())
    elif isinstance(cond, Conditioning):
        if cond.batch_size != n:
            raise ValueError(
                f"{cond_name} has {cond.batch_size} rows but {x_name} has {n}; they must match"
            )
        cond = cond.to(device, torch.float32).contiguous()
        finite = cond.all_finite()
        if cond.labels is not None and bool((cond.labels < 0).any()):
            raise ValueError(f"{cond_name}.labels has negative values; labels must be >= 0")
    else:
        raise TypeError(
            f"{cond_name} must be a torch.Tensor (n, k), a Conditioning or None, "
            f"got {type(cond).__name__}"
        )
    if not finite:
        raise ValueError(f"{cond_name} contains non-finite values")
    return x, cond


# ---------------------------------------------------------------------- tensors in memory


class _ResidentTensors:
    """What a source that holds its rows as ``x`` and ``cond`` on the device answers alike."""

    x: Tensor
    cond: Condition

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def condition_spec(self) -> ConditioningSpec | None:
        return _condition_spec(self.cond)

    @property
    def plain_condition(self) -> bool:
        return isinstance(self.cond, Tensor)

    def to(self, device: torch.device | str) -> Any:
        """A shallow copy whose ``x`` and ``cond`` live on ``device``."""
        moved = object.__new__(type(self))
        moved.__dict__.update(self.__dict__)
        moved.x = self.x.to(device)
        moved.cond = None if self.cond is None else self.cond.to(device)
        return moved


class TensorSource(_ResidentTensors, BatchSource):
    """A data set in memory: a fresh permutation of the rows per epoch, sliced into batches.

    Args:
        x: normalised fields ``(n, *shape)`` (cast to float32).
        cond: encoded conditions ``(n, k)``, a :class:`Conditioning` of ``n`` rows, or None.
        name: names the arguments in error messages (``x_<name>``, ``cond_<name>``).

    Every epoch draws ``torch.randperm(n, generator=generator)`` and takes its consecutive
    slices as batches (see :func:`epoch_layout` for the dropped last batch).
    """

    def __init__(self, x: Tensor, cond: Condition = None, *, name: str = "") -> None:
        suffix = f"_{name}" if name else ""
        self.x, self.cond = _prepare(x, cond, f"x{suffix}", f"cond{suffix}", None)
        self.name = name

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def samples_per_epoch(self) -> int:
        return len(self)

    def batches(
        self,
        epoch: int,
        batch_size: int,
        generator: torch.Generator,
        *,
        min_last_batch: int = 1,
    ) -> Iterator[tuple[Tensor, Condition]]:
        sizes = epoch_layout(len(self), batch_size, min_last_batch)
        permutation = torch.randperm(len(self), generator=generator).to(self.x.device)
        start = 0
        for size in sizes:
            index = permutation[start : start + size]
            start += size
            yield self.x.index_select(0, index), _rows(self.cond, index)

    def summary(self) -> dict[str, Any]:
        return {"n_train": len(self)}


# ---------------------------------------------------------------------- weighted groups


class GroupedSource(_ResidentTensors, BatchSource):
    """Several data sets drawn with fixed probabilities (e.g. many coarse and few fine fields).

    Args:
        sources: :class:`TensorSource` groups with the same sample shape and the same
            conditioning parts (all plain tensors of the same ``k``, all Conditionings with the
            same parts and sizes, or all unconditional).
        weights: one positive weight per group; row ``i`` of a batch comes from group ``g``
            with probability ``weights[g] / sum(weights)``, then is a uniform row of it.
        samples_per_epoch: rows per epoch (default: the total size of the groups).

    The groups are concatenated once; each batch draws its groups with ``torch.multinomial``
    and its rows with ``torch.rand`` from the trainer's generator (sampling with replacement,
    so an epoch is a number of draws, not a pass over every row).
    """

    def __init__(
        self,
        sources: Sequence[TensorSource],
        weights: Sequence[float],
        *,
        samples_per_epoch: int | None = None,
    ) -> None:
        sources = list(sources)
        if not sources:
            raise ValueError("GroupedSource needs at least one group; got an empty list")
        for g, source in enumerate(sources):
            if not isinstance(source, TensorSource):
                raise TypeError(
                    f"GroupedSource: group {g} is a {type(source).__name__}; expected a "
                    "TensorSource"
                )
        weights = [float(w) for w in weights]
        if len(weights) != len(sources):
            raise ValueError(
                f"GroupedSource: {len(weights)} weights for {len(sources)} groups; give one "
                "weight per group"
            )
        if not all(np.isfinite(w) and w > 0 for w in weights):
            raise ValueError(
                f"GroupedSource: weights {weights} are not allowed; every weight must be finite "
                "and > 0 (leave a group out rather than give it weight 0)"
            )
        first = sources[0]
        for g, source in enumerate(sources[1:], start=1):
            if source.sample_shape != first.sample_shape:
                raise ValueError(
                    f"GroupedSource: group {g} has samples of shape {source.sample_shape}, "
                    f"group 0 {first.sample_shape}; every group must have the same sample shape"
                )
            same_kind = isinstance(source.cond, Tensor) == isinstance(first.cond, Tensor)
            if not same_kind or not _same_parts(source.condition_spec, first.condition_spec):
                raise ValueError(
                    f"GroupedSource: group {g} has {_describe(source.cond)}, group 0 "
                    f"{_describe(first.cond)}; every group must have the same conditioning parts"
                )
        devices = {source.x.device for source in sources}
        if len(devices) > 1:
            raise ValueError(f"GroupedSource: the groups lie on different devices {devices}")
        self.group_sizes = [len(source) for source in sources]
        total = sum(self.group_sizes)
        if samples_per_epoch is None:
            samples_per_epoch = total
        if isinstance(samples_per_epoch, bool) or not isinstance(samples_per_epoch, int):
            raise ValueError(
                f"GroupedSource: samples_per_epoch = {samples_per_epoch!r}; expected an int >= 1"
            )
        if samples_per_epoch < 1:
            raise ValueError(
                f"GroupedSource: samples_per_epoch = {samples_per_epoch}; expected an int >= 1"
            )
        self._samples_per_epoch = samples_per_epoch
        self.weights = [w / sum(weights) for w in weights]
        self.x = torch.cat([source.x for source in sources])
        self.cond = _cat([source.cond for source in sources])
        self._offsets = torch.tensor([0, *np.cumsum(self.group_sizes)[:-1].tolist()])
        self._sizes = torch.tensor(self.group_sizes)
        self._probabilities = torch.tensor(self.weights, dtype=torch.float64)

    @property
    def samples_per_epoch(self) -> int:
        return self._samples_per_epoch

    def draw_rows(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``size`` draws: ``(group (size,), row of the concatenated data (size,))``, CPU int64."""
        groups = torch.multinomial(self._probabilities, size, replacement=True, generator=generator)
        uniform = torch.rand(size, generator=generator, dtype=torch.float64)
        sizes = self._sizes[groups]
        within = torch.minimum((uniform * sizes).long(), sizes - 1)
        return groups, self._offsets[groups] + within

    def batches(
        self,
        epoch: int,
        batch_size: int,
        generator: torch.Generator,
        *,
        min_last_batch: int = 1,
    ) -> Iterator[tuple[Tensor, Condition]]:
        for size in epoch_layout(self.samples_per_epoch, batch_size, min_last_batch):
            _, rows = self.draw_rows(size, generator)
            index = rows.to(self.x.device)
            yield self.x.index_select(0, index), _rows(self.cond, index)

    def summary(self) -> dict[str, Any]:
        return {
            "source": "grouped",
            "n_train": self.samples_per_epoch,
            "group_sizes": list(self.group_sizes),
            "weights": list(self.weights),
        }


# ---------------------------------------------------------------------- fresh simulations


Draw = Callable[[int, np.random.Generator], tuple[Any, Any]]


class StreamingSource(BatchSource):
    """Fresh samples for every batch from a cheap simulator.

    Args:
        draw: ``draw(n, rng) -> (x, cond)`` with NORMALISED fields ``x (n, *shape)`` and encoded
            conditions (None, an ``(n, k)`` array/tensor or a :class:`Conditioning`); numpy
            arrays or torch tensors (converted to float32 on the training device). Compose the
            simulator and the normaliser in it. It must draw all its randomness from ``rng``.
        samples_per_epoch: rows per epoch (the epoch's batches follow :func:`epoch_layout`).
        seed: batch ``b`` (0, 1, ...) of epoch ``e`` uses
            ``np.random.default_rng(SeedSequence([seed, e, b]))``.
        condition_spec: the conditioning's sizes; needed when it has labels (the number of
            labels cannot be read off a sample), otherwise read off one probe draw.

    The source is stateless: a resumed run and every torchrun rank draw the same batches. The
    sample shape comes from one probe draw of one row (with ``SeedSequence([seed])``).
    """

    def __init__(
        self,
        draw: Draw,
        samples_per_epoch: int,
        seed: int,
        *,
        condition_spec: ConditioningSpec | None = None,
    ) -> None:
        if not callable(draw):
            raise TypeError(f"StreamingSource: draw must be callable, got {type(draw).__name__}")
        for name, value, low in (("samples_per_epoch", samples_per_epoch, 1), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"StreamingSource: {name} = {value!r} is not allowed; expected an int >= {low}"
                )
        self.draw = draw
        self._samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.device = torch.device("cpu")
        x, cond = self._convert(*draw(1, np.random.default_rng(np.random.SeedSequence([seed]))), 1)
        self._sample_shape = tuple(x.shape[1:])
        self._plain = isinstance(cond, Tensor)
        found = _condition_spec(cond)
        if condition_spec is not None:
            if not isinstance(condition_spec, ConditioningSpec):
                raise TypeError(
                    "StreamingSource: condition_spec must be a ConditioningSpec, got "
                    f"{type(condition_spec).__name__}"
                )
            if not _same_parts(condition_spec, found) and not (
                found is None and condition_spec.empty
            ):
                raise ValueError(
                    f"StreamingSource: condition_spec {condition_spec} does not match the "
                    f"conditioning that draw returns ({found})"
                )
            found = None if condition_spec.empty else condition_spec
        elif found is not None and found.n_labels:
            raise ValueError(
                "StreamingSource: draw returns labels; pass condition_spec=ConditioningSpec("
                "..., n_labels=...) to say how many labels there are"
            )
        self._condition_spec = found

    @property
    def samples_per_epoch(self) -> int:
        return self._samples_per_epoch

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self._sample_shape

    @property
    def condition_spec(self) -> ConditioningSpec | None:
        return self._condition_spec

    @property
    def plain_condition(self) -> bool:
        return self._plain

    def to(self, device: torch.device | str) -> StreamingSource:
        moved = object.__new__(StreamingSource)
        moved.__dict__.update(self.__dict__)
        moved.device = torch.device(device)
        return moved

    def rng(self, epoch: int, batch: int) -> np.random.Generator:
        """The generator of batch ``batch`` of epoch ``epoch``."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, epoch, batch]))

    def batches(
        self,
        epoch: int,
        batch_size: int,
        generator: torch.Generator,
        *,
        min_last_batch: int = 1,
    ) -> Iterator[tuple[Tensor, Condition]]:
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"StreamingSource: epoch = {epoch!r}; expected an int >= 0")
        for b, size in enumerate(epoch_layout(self.samples_per_epoch, batch_size, min_last_batch)):
            x, cond = self._convert(*self.draw(size, self.rng(epoch, b)), size)
            if x.shape[1:] != self._sample_shape:
                raise ValueError(
                    f"StreamingSource: draw returned samples of shape {tuple(x.shape[1:])} in "
                    f"batch {b} of epoch {epoch}; the first draw had {self._sample_shape}"
                )
            spec = _condition_spec(cond)
            if isinstance(cond, Tensor) != self._plain or not _same_parts(
                spec, self._condition_spec
            ):
                raise ValueError(
                    f"StreamingSource: draw returned {_describe(cond)} in batch {b} of epoch "
                    f"{epoch}; the first draw had {self._condition_spec}"
                )
            if spec is not None and self._condition_spec is not None and spec.n_labels:
                if spec.n_labels > self._condition_spec.n_labels:
                    raise ValueError(
                        f"StreamingSource: draw returned label {spec.n_labels - 1} in batch {b} "
                        f"of epoch {epoch}; condition_spec allows [0, "
                        f"{self._condition_spec.n_labels})"
                    )
            yield x, cond

    def _convert(self, x: Any, cond: Any, n: int) -> tuple[Tensor, Condition]:
        x = torch.as_tensor(x)
        if cond is not None and not isinstance(cond, Conditioning):
            cond = torch.as_tensor(cond)
        x, cond = _prepare(x, cond, "StreamingSource: draw's x", "draw's cond", self.device)
        if x.shape[0] != n:
            raise ValueError(
                f"StreamingSource: draw({n}, rng) returned {x.shape[0]} samples; expected {n}"
            )
        return x, cond

    def summary(self) -> dict[str, Any]:
        return {"source": "streaming", "n_train": self.samples_per_epoch, "seed": self.seed}


# ---------------------------------------------------------------------- a fixed set


def fixed_set(source: BatchSource, batch_size: int, seed: int = 0) -> tuple[Tensor, Condition]:
    """All of a source's epoch-0 rows as one fixed set ``(x (n, *shape), cond)``, e.g. for
    validation: a :class:`TensorSource` gives its tensors in order; any other source its
    batches of epoch 0 drawn with a generator seeded with ``seed`` (deterministic)."""
    if isinstance(source, TensorSource):
        return source.x, source.cond
    generator = torch.Generator().manual_seed(seed)
    parts = list(source.batches(0, batch_size, generator))
    return torch.cat([x for x, _ in parts]), _cat([c for _, c in parts])
