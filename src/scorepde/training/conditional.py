"""One conditional model for forward and inverse problems: :class:`ConditionalModel`.

A conditional model is a score network ``s(x_t, t | c)`` (a :class:`ScoreModel` holding EMA
weights) plus what maps physical values to the network's space and back:

* ``x_transform``: physical ``x`` <-> network space. A field normaliser
  (``scorepde.data.normalisation``: fields ``(n, C, *S)`` <-> normalised, possibly depending on
  the encoded conditions) or a :class:`~scorepde.training.transforms.Standardiser` (the
  unknowns of an inverse problem). Both expose ``transform(x, conditions)`` and
  ``inverse(z, conditions)``. None: the network works in physical units.
* ``condition_transform``: physical conditions -> the network's conditioning. A
  ``ConditionEncoder`` (operating conditions, ``encode``) or a Standardiser (an observed ``y``;
  its standardised value enters as the vector or, for ``conditioning_spec.field_channels > 0``,
  as field conditions ``Conditioning(fields=...)``). None: an unconditional model.
* ``field_spec`` (a ``FieldSpec`` or None), ``conditioning_spec`` (a ``ConditioningSpec``),
  ``sample_shape`` (one sample in the network's space) and ``metadata``.

Forward problems (``TrainedModel`` is this class) sample with :meth:`ConditionalModel.sample`
(physical conditions -> physical fields); ``AmortisedPosterior`` (``scorepde.inverse``) is a view
that standardises observations and calls :meth:`ConditionalModel.sample_conditioned` (any
conditioning -> network-space samples). Save and load go through ``checkpoint.py``
(:meth:`ConditionalModel.save`, :func:`load_trained_model`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from scorepde.conditioning import Conditioning, ConditioningSpec
from scorepde.data.normalisation import ConditionEncoder
from scorepde.diffusion.processes import NoiseProcess
from scorepde.fields import FieldSpec
from scorepde.problems import PROBLEMS
from scorepde.sampling.registry import DEFAULT_STEPS, FALLBACK_STEPS, resolve_sampler
from scorepde.training.checkpoint import CheckpointError, read_model, save_trained_model
from scorepde.training.config import resolve_device
from scorepde.training.model_config import ModelConfig
from scorepde.training.solution_map import SOLUTION_MAP_FOLDER, SolutionMap, StagedModel
from scorepde.training.transforms import Standardiser, transform_from_record

_UNSET: Any = object()

#: Metadata key under which a model folder records its Standardiser transforms.
TRANSFORMS_KEY = "transforms"

#: Metadata key of the conditions a model does not see (``{name: value}``): the problem
#: declares the fields invariant in them, so the model was trained with each pinned to
#: ``value`` and :meth:`ConditionalModel.encode_conditions` pins them the same way.
PINNED_KEY = "pinned_conditions"


def pin_conditions(
    conditions: np.ndarray, names: list[str] | tuple[str, ...], pinned: dict[str, float]
) -> np.ndarray:
    """A copy of physical conditions ``(n, k)`` (columns ``names``) with each column named in
    ``pinned`` set to its value: how a model that drops declared-invariant conditions from its
    input sees them (the network and a conditional normaliser then get a constant there).
    An unknown name in ``pinned`` is an error naming it."""
    values = np.array(conditions, dtype=np.float64, copy=True)
    names = list(names)
    for name, value in pinned.items():
        if name not in names:
            raise ValueError(
                f"pinned condition {name!r} is not one of the model's conditions {names}"
            )
        values[..., names.index(name)] = float(value)
    return values


class ConditionalModel:
    """A score model with the transforms of ``x`` and of the conditioning; see the module
    docstring.

    Args:
        score_model: the network with EMA weights (put in eval mode).
        model_config: how to rebuild ``score_model`` (None: the model cannot be saved).
        x_transform: physical ``x`` <-> network space (a field normaliser or a Standardiser).
        condition_transform: physical conditions -> network conditioning (a
            ``ConditionEncoder`` or a Standardiser).
        sample_shape: one sample's shape in the network's space, e.g. ``(C, N)``.
        field_spec: channels, units and grid of ``x`` (or None).
        conditioning_spec: sizes of the conditioning; None derives it from
            ``condition_transform`` (a vector of its size, or empty).
        problem_name: name of the problem (or None); channel_names / condition_names: labels.
        metadata: everything else recorded at training time (provenance, units, ...).
        normaliser, condition_encoder: the former names of ``x_transform`` and
            ``condition_transform`` (``TrainedModel``'s signature); give one name or the other.
    """

    def __init__(
        self,
        score_model: nn.Module,
        model_config: ModelConfig | None = None,
        *,
        sample_shape: tuple[int, ...],
        x_transform: Any = None,
        condition_transform: Any = None,
        field_spec: FieldSpec | None = None,
        conditioning_spec: ConditioningSpec | None = None,
        problem_name: str | None = None,
        channel_names: list[str] | None = None,
        condition_names: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        normaliser: Any = _UNSET,
        condition_encoder: Any = _UNSET,
    ) -> None:
        if normaliser is not _UNSET:
            if x_transform is not None:
                raise ValueError("give x_transform or normaliser (its former name), not both")
            x_transform = normaliser
        if condition_encoder is not _UNSET:
            if condition_transform is not None:
                raise ValueError(
                    "give condition_transform or condition_encoder (its former name), not both"
                )
            condition_transform = condition_encoder
        self.score_model = score_model.eval()
        self.model_config = model_config
        self.x_transform = x_transform
        self.condition_transform = condition_transform
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.field_spec = field_spec
        self.conditioning_spec = (
            conditioning_spec
            if conditioning_spec is not None
            else _default_conditioning_spec(condition_transform)
        )
        self.problem_name = problem_name
        self.channel_names = list(channel_names or [])
        self.condition_names = list(condition_names or [])
        self.metadata = dict(metadata or {})
        #: The folder the model was loaded from (an exported model or a checkpoint), or None.
        self.source: Path | None = None

    # ------------------------------------------------------------------ former names

    @property
    def normaliser(self) -> Any:
        """The former name of :attr:`x_transform`."""
        return self.x_transform

    @normaliser.setter
    def normaliser(self, value: Any) -> None:
        self.x_transform = value

    @property
    def condition_encoder(self) -> Any:
        """The former name of :attr:`condition_transform`."""
        return self.condition_transform

    @condition_encoder.setter
    def condition_encoder(self, value: Any) -> None:
        self.condition_transform = value

    @property
    def process(self) -> NoiseProcess:
        """The noise process of the score model."""
        return self.score_model.process

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(problem={self.problem_name!r}, "
            f"sample_shape={self.sample_shape}, conditions={self.condition_names}, "
            f"channels={self.channel_names})"
        )

    @property
    def pinned_conditions(self) -> dict[str, float]:
        """Conditions the network does not see, ``{name: value}`` (physical units): the
        problem declares the fields invariant in them and the model was trained with each
        pinned to ``value``. Any value is still accepted by :meth:`sample`; samples do not
        depend on it. Empty for a model that learnt every condition."""
        return {str(k): float(v) for k, v in (self.metadata.get(PINNED_KEY) or {}).items()}

    # ------------------------------------------------------------------ conditioning

    def encode_conditions(self, conditions: Any, n: int) -> Tensor | Conditioning | None:
        """Physical conditions -> the network's conditioning for ``n`` samples.

        With a ``ConditionEncoder``: ``(k,)`` (repeated ``n`` times) or ``(n, k)`` -> an
        ``(n, k)`` float32 tensor. With a Standardiser of shape ``Y``: ``Y`` (shared: one row) or
        ``(n, *Y)`` -> standardised float32, as a ``(rows, prod(Y))`` tensor, or as
        ``Conditioning(fields=(rows, *Y))`` when the model takes field conditions. Returns None
        for an unconditional model (then ``conditions`` must be None).
        """
        transform = self.condition_transform
        if transform is None:
            if conditions is not None:
                raise ValueError(
                    "this model is unconditional (no condition encoder); pass conditions=None"
                )
            return None
        if conditions is None:
            raise ValueError(
                f"this model needs conditions {self.condition_names or ''}: an array of shape "
                "(k,) or (n, k) in physical units"
            )
        if isinstance(transform, Standardiser):
            return self._standardised_condition(transform, conditions, n)
        values = np.asarray(conditions, dtype=np.float64)
        if values.ndim == 1:
            values = np.broadcast_to(values, (n, values.shape[0]))
        if values.ndim != 2 or values.shape[0] != n:
            raise ValueError(
                f"conditions must have shape (k,) or (n, k) = ({n}, k), got {values.shape}"
            )
        k = len(self.condition_names) if self.condition_names else values.shape[1]
        if values.shape[1] != k:
            raise ValueError(
                f"conditions have {values.shape[1]} columns; this model expects {k}: "
                f"{self.condition_names}"
            )
        self.check_conditions(values)
        pinned = self.pinned_conditions
        if pinned:
            values = pin_conditions(values, self.condition_names, pinned)
        check = getattr(transform, "check", None)
        if callable(check):
            check(values)
        encoded = np.asarray(transform.encode(values), dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(encoded))

    def check_conditions(self, conditions: Any) -> np.ndarray:
        """Refuse impossible physical conditions before any sampling; returns them as float64
        ``(n, k)``.

        conditions: ``(k,)`` or ``(n, k)`` in physical units (columns :attr:`condition_names`).
        For a model of a known problem (``problems.PROBLEMS[problem_name]``) each named
        condition must lie in its physical domain (``ConditionSpec.is_physical``); otherwise
        every value must be finite. Raises ``ValueError`` naming the condition, the value and
        the allowed domain. Values that are physical but outside the training range are allowed
        (the condition encoder warns that the model extrapolates).
        """
        values = np.asarray(conditions, dtype=np.float64)
        if values.ndim == 1:
            values = values[None, :]
        if values.ndim != 2:
            raise ValueError(f"conditions must have shape (k,) or (n, k), got {values.shape}")
        problem = PROBLEMS.get(self.problem_name) if self.problem_name else None
        specs = {spec.name: spec for spec in problem.conditions} if problem else {}
        names = list(self.condition_names)
        for j in range(values.shape[1]):
            name = names[j] if j < len(names) else f"#{j}"
            spec = specs.get(name)
            column = values[:, j]
            ok = spec.is_physical(column) if spec is not None else np.isfinite(column)
            if not np.all(ok):
                where = f" for problem {self.problem_name!r}" if spec is not None else ""
                domain = spec.domain_text() if spec is not None else "(-inf, inf)"
                raise ValueError(
                    f"condition {name} = {float(column[~ok][0])!r} is not allowed{where}; "
                    f"expected a finite value in {domain}"
                )
        return values

    def _standardised_condition(
        self, transform: Standardiser, conditions: Any, n: int
    ) -> Tensor | Conditioning:
        shape = transform.shape
        values = np.asarray(conditions, dtype=np.float64)
        if values.shape == shape or values.size == math.prod(shape):
            values = values.reshape(1, *shape)
        elif values.shape[1:] != shape or values.shape[0] not in (1, n):
            raise ValueError(
                f"conditions have shape {values.shape}; expected {shape} (shared) or "
                f"({n}, *{shape})"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError("conditions must be finite")
        return self.condition_from_standardised(transform.transform(values))

    def condition_from_standardised(self, values: np.ndarray) -> Tensor | Conditioning:
        """Standardised conditions ``(rows, *Y)`` -> the network's conditioning (float32):
        ``Conditioning(fields=...)`` for a model that takes field conditions, else a
        ``(rows, prod(Y))`` tensor."""
        values = np.asarray(values)
        rows = values.shape[0]
        if self.conditioning_spec.field_channels:
            fields = values.reshape(rows, *self.condition_field_shape)
            return Conditioning(fields=torch.from_numpy(fields).float())
        return torch.from_numpy(values.reshape(rows, -1)).float()

    @property
    def condition_field_shape(self) -> tuple[int, ...]:
        """``(Cy, *S')`` of the field conditions (``()`` for a model without them)."""
        spec = self.conditioning_spec
        if not spec.field_channels:
            return ()
        return (spec.field_channels, *spec.field_shape)

    # ------------------------------------------------------------------ sampling

    def default_sampling(
        self, sampler: str | None = None, steps: int | None = None
    ) -> tuple[str, int]:
        """The sampler and step count to use when the caller leaves them out: those of the
        recipe the model was trained with (recorded in its metadata), else Euler-Maruyama with
        100 steps. An explicit ``sampler`` without ``steps`` gets 100 steps
        (``sampling.registry.FALLBACK_STEPS``), not the recipe's steps (they belong to the
        recipe's sampler)."""
        recorded = (self.metadata.get("recipe_config") or {}).get("sampling") or {}
        if sampler is None:
            sampler = str(recorded.get("sampler", "euler_maruyama"))
            if steps is None:
                steps = int(recorded.get("steps", FALLBACK_STEPS))
        return sampler, FALLBACK_STEPS if steps is None else steps

    def sample_conditioned(
        self,
        cond: Conditioning | Tensor | None,
        n: int,
        *,
        sampler: str = "euler_maruyama",
        steps: int | None = None,
        seed: int = 0,
        batch_size: int | None = 1000,
        device: str | torch.device = "auto",
        progress: bool = False,
        **sampler_options: Any,
    ) -> Tensor:
        """``n`` samples ``(n, *sample_shape)`` in the network's space (detached, on
        ``device``, float32) for a conditioning already in the network's space.

        cond: a ``Conditioning`` or an ``(n, k)`` tensor with ``n`` rows or one shared row
        (a tensor may be ``(k,)``), or None. sampler: a key of ``sampling.registry.SAMPLERS``;
        steps: None uses ``DEFAULT_STEPS[sampler]``. seed: sample ``i`` uses the stream
        ``(seed, i)`` whatever ``batch_size``. sampler_options are passed on as given.
        """
        function = resolve_sampler(sampler)
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        n = int(n)
        torch_device = resolve_device(device)
        self.score_model.to(torch_device)
        if cond is not None:
            cond = cond.to(torch_device)
        with torch.no_grad():
            samples = function(
                self.score_model,
                self.score_model.process,
                self.sample_shape,
                cond,
                n=n,
                steps=steps if steps is not None else DEFAULT_STEPS[sampler],
                seed=seed,
                batch_size=batch_size,
                device=torch_device,
                progress=progress,
                **sampler_options,
            )
        return samples.detach()

    def sample(
        self,
        conditions: Any,
        n: int,
        *,
        sampler: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int = 1000,
        device: str | torch.device = "auto",
        progress: bool = False,
        **sampler_options: Any,
    ) -> np.ndarray:
        """Draw ``n`` samples in physical units: fields ``(n, C, *S)`` (the normaliser's field
        shape; without an ``x_transform`` ``(n, *sample_shape)``; with a Standardiser
        ``(n, *its shape)``).

        conditions: ``(k,)`` (shared by all samples) or ``(n, k)``, physical units (None for
        an unconditional model); see :meth:`encode_conditions`. sampler: a key of
        ``SAMPLERS``; steps: sampler steps; None: :meth:`default_sampling` (what the model's
        recipe was evaluated with). seed: per-sample seeds start here, so sample ``i`` does
        not depend on ``batch_size``. sampler_options: passed on (e.g. ``snr``).
        """
        sampler, steps = self.default_sampling(sampler, steps)
        resolve_sampler(sampler)
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        n = int(n)
        cond = self.encode_conditions(conditions, n)
        samples = self.sample_conditioned(
            cond,
            n,
            sampler=sampler,
            steps=steps,
            seed=seed,
            batch_size=batch_size,
            device=device,
            progress=progress,
            **sampler_options,
        )
        physical = self.to_physical(samples, cond)
        if not np.all(np.isfinite(physical)):  # never hand back a silent NaN
            raise ValueError(
                f"sampling at conditions {np.asarray(conditions).tolist()!r} gave non-finite "
                "values: the conditions lie so far outside the training range that the "
                "transforms overflow; use conditions nearer the training range"
            )
        return physical

    def to_physical(
        self, samples: Tensor | np.ndarray, cond: Tensor | Conditioning | None = None
    ) -> np.ndarray:
        """Network-space samples ``(n, *sample_shape)`` -> physical float64 through
        ``x_transform.inverse`` (given the encoded vector conditions, which a conditional
        normaliser needs); a Standardiser's values are reshaped to its shape first and it gets
        the field conditions (a ``ResidualStandardiser`` adds the estimate they carry)."""
        if isinstance(samples, Tensor):
            samples = samples.detach().to("cpu", torch.float64).numpy()
        transform = self.x_transform
        if transform is None:
            return samples
        if isinstance(transform, Standardiser):
            # the field conditions for a transform defined relative to them (the residual
            # from a linear estimate); a plain Standardiser ignores them
            fields = cond.fields if isinstance(cond, Conditioning) else None
            return transform.inverse(
                samples.reshape(samples.shape[0], *transform.shape),
                None if fields is None else fields.detach().to("cpu", torch.float64).numpy(),
            )
        vector = cond.vector if isinstance(cond, Conditioning) else cond
        return np.asarray(
            transform.inverse(samples, None if vector is None else vector.cpu().numpy())
        )

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Export to a model folder (``checkpoint.save_trained_model``): EMA weights, small
        YAML, a field normaliser in ``normaliser.json`` and the arrays of Standardiser
        transforms in ``transforms.safetensors``. Returns the folder."""
        if self.model_config is None:
            raise ValueError("this model has no model_config, so it cannot be saved")
        extra = {**self.metadata, **(metadata or {})}
        transforms = {}
        normaliser = self.x_transform
        encoder = self.condition_transform
        if isinstance(normaliser, Standardiser):
            transforms["x"] = normaliser.to_record()
            normaliser = None
        if isinstance(encoder, Standardiser):
            transforms["condition"] = encoder.to_record()
            encoder = None
        if transforms:
            extra[TRANSFORMS_KEY] = transforms
        return save_trained_model(
            path,
            self.score_model,
            self.model_config,
            normaliser=normaliser,
            condition_encoder=encoder,
            problem_name=self.problem_name,
            sample_shape=self.sample_shape,
            channel_names=self.channel_names,
            condition_names=self.condition_names,
            metadata=extra,
            conditioning_spec=self.conditioning_spec,
            field_spec=self.field_spec,
        )

    @classmethod
    def load(
        cls, path: str | Path, *, map_location: str | torch.device = "cpu"
    ) -> ConditionalModel:
        """Load from an exported model folder, a checkpoint folder or a run folder (its latest
        checkpoint); EMA weights, eval mode."""
        loaded = read_model(path, map_location=map_location)
        metadata = dict(loaded.metadata)
        transforms = metadata.pop(TRANSFORMS_KEY, None) or {}
        x_transform: Any = loaded.normaliser
        condition_transform: Any = loaded.condition_encoder
        if "x" in transforms:
            x_transform = transform_from_record(transforms["x"])
        if "condition" in transforms:
            condition_transform = transform_from_record(transforms["condition"])
        where = loaded.folder / (
            "model.yaml" if loaded.folder.joinpath("model.yaml").is_file() else "config.yaml"
        )
        try:
            field_spec = FieldSpec.from_dict(loaded.field_spec) if loaded.field_spec else None
            conditioning_spec = (
                ConditioningSpec.from_dict(loaded.conditioning_spec)
                if loaded.conditioning_spec
                else None
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(
                f"{where}: bad field_spec or conditioning_spec ({error!r})"
            ) from error
        model = cls(
            loaded.score_model,
            loaded.model_config,
            x_transform=x_transform,
            condition_transform=condition_transform,
            sample_shape=loaded.sample_shape,
            field_spec=field_spec,
            conditioning_spec=conditioning_spec,
            problem_name=loaded.problem_name,
            channel_names=loaded.channel_names,
            condition_names=loaded.condition_names,
            metadata=metadata,
        )
        model.source = loaded.folder
        return model


#: The forward model's former name: the same class (same constructor keywords accepted).
TrainedModel = ConditionalModel


def load_trained_model(
    path: str | Path, *, map_location: str | torch.device = "cpu"
) -> ConditionalModel | StagedModel:
    """Load a :class:`ConditionalModel` (EMA weights, eval mode) from an exported model
    folder, a checkpoint folder, or a run folder (its latest checkpoint). An exported folder
    with a ``solution_map`` sub-folder is a two-stage model: a :class:`StagedModel` of the
    two (it samples every channel); a checkpoint folder holds its first stage only."""
    model = ConditionalModel.load(path, map_location=map_location)
    folder = (model.source or Path(path)) / SOLUTION_MAP_FOLDER
    if folder.is_dir():
        return StagedModel(model, SolutionMap.load(folder))
    return model


def _default_conditioning_spec(transform: Any) -> ConditioningSpec:
    if transform is None:
        return ConditioningSpec()
    if isinstance(transform, ConditionEncoder):
        return ConditioningSpec(vector_dim=len(transform.names))
    shape = getattr(transform, "shape", None)
    if shape is not None:
        return ConditioningSpec(vector_dim=math.prod(shape))
    return ConditioningSpec()


__all__ = [
    "PINNED_KEY",
    "ConditionalModel",
    "TrainedModel",
    "load_trained_model",
    "pin_conditions",
]
