"""Diffusion-generative multi-fidelity learning (DGMF, arXiv 2311.05606) and the two baselines
built on its network.

One conditional score model ``s(z, t | inputs, fidelity)`` is trained on the outputs of every
fidelity at once and generates the output of a chosen fidelity (the finest, normally) for new
inputs. The data come from the protocol (:mod:`.protocol`): every level's outputs already
interpolated to the finest ``N x N`` grid (bilinear for Poisson and Heat, bicubic for Burgers,
scipy; :func:`~scorepde.multifidelity.protocol.to_finest_grid`) and standardised per level and
per grid point on that level's training subset; the model works in that standardised space, so
one sample at the finest level is directly in the space of the metric.

Pieces (all the project's own machinery):

* backbone: the 2-D :class:`~scorepde.nets.unet.UNet` on one channel ``(1, N, N)``;
* conditioning (:class:`~scorepde.conditioning.Conditioning`): the inputs scaled to
  ``[-1, 1]`` as the vector, and the fidelity either as a label (``fidelity="label"``: an
  embedding per trained level) or as a number appended to the vector (``"continuous"``:
  ``log2`` of the resolution mapped affinely so the trained levels span ``[-1, 1]``; one level:
  0), so the model can be asked for a level it never saw; by default the same vector also
  enters as constant field channels, next to two channels holding the grid coordinates
  (``inputs_as``, ``coordinates``: with the vector alone the network has to build every
  position-dependent pattern from the zero padding of its convolutions; on Poisson 8 / 16 the
  U-Net regression reached nRMSE 0.55 with the vector alone, 0.41 with the vector as channels
  and 0.32 with coordinates too, 600 steps, seed 0);
* noise process: VE (:class:`~scorepde.diffusion.processes.VEProcess`), EDM preconditioning
  with ``sigma_data = 1`` (the fields are standardised per point);
* training: :class:`~scorepde.training.trainer.Trainer` (denoising score matching, Adam,
  cosine schedule, EMA) on a :class:`~scorepde.training.sources.GroupedSource` with one group
  per level, drawn with equal probability (``level_weights="balanced"``) or in proportion to
  the level's size (``"size"``: every training output equally often);
* sampling: any sampler of :data:`~scorepde.sampling.registry.SAMPLERS` through
  :meth:`~scorepde.training.conditional.ConditionalModel.sample_conditioned` (sample ``i`` has
  its own noise stream, so results do not depend on the batch size).

**sigma rule.** ``sigma_max`` = the largest pairwise Euclidean distance between the
standardised training fields (all levels the model trains on together; Song & Ermon 2020,
technique 1: the prior must cover the whole data set); ``sigma_min`` = ``0.3`` times the
root-mean-square of the standardised training fields per grid point (which is 1 up to the
pooling of levels). Both can be set by hand in :class:`DGMFConfig`. Why 0.3 and not the usual
1 %: the training times are uniform in ``log sigma``, so a small ``sigma_min`` spends much of
the training on noise levels where the conditioning does not matter, and the fields lie near a
low-dimensional set (Poisson: five dimensions in ``N^2``), so the final Tweedie denoising step
at ``sigma_min = 0.3`` per point already lands on it. On Poisson 4 / 8 (pools 64 + 32, budgets
40 / 8, 160 steps, seed 0; a tuning run, not the benchmark's data) the nRMSE of the mean of
4 samples was 0.82, 0.57, 0.45 and 0.38 for ``sigma_min`` = 0.01, 0.1, 0.3 and 1 (larger
values smooth the samples, so their spread understates the uncertainty: 0.3 is a compromise).

**Prediction and uncertainty.** :meth:`DGMFModel.predict` returns the mean of ``K`` samples
and their standard deviation (``ddof = 1``) per grid point; :func:`band_coverage` measures how
often the truth falls in the sample band.

Baselines of the issue that need this network:

* (a) ``score_high``: the same model trained on the finest level only
  (``DGMFConfig(levels="finest")``);
* (b) ``unet_regression``: the same backbone as a deterministic regression (no noise: the
  field input is zero, the noise label 0), the same conditioning (fidelity as input), trained
  by mean squared error on every level with the same level weights and optimiser steps.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.distance import pdist
from torch import Tensor

from scorepde.conditioning import Conditioning, ConditioningSpec
from scorepde.diffusion.preconditioning import ScoreModel
from scorepde.multifidelity.protocol import Standardiser, TestSet, TrainingSet
from scorepde.nets.registry import BackboneConfig, build_backbone
from scorepde.nets.unet import UNet
from scorepde.sampling.registry import resolve_sampler
from scorepde.training.conditional import ConditionalModel
from scorepde.training.config import TrainConfig
from scorepde.training.model_config import ModelConfig, build_score_model
from scorepde.training.schedule import build_cosine_scheduler
from scorepde.training.sources import GroupedSource, TensorSource
from scorepde.training.trainer import Trainer

__all__ = [
    "DGMF_KEY",
    "FIDELITY_MODES",
    "NETWORK_METHODS",
    "DGMFConfig",
    "DGMFModel",
    "FidelityEncoder",
    "UNetRegressionModel",
    "band_coverage",
    "run_network_method",
    "sigma_range",
    "train_dgmf",
    "train_unet_regression",
]

FIDELITY_MODES = ("label", "continuous")
LEVEL_WEIGHTS = ("balanced", "size")
INPUTS_AS = ("vector", "vector_and_fields")
#: ``sigma_min`` as a fraction of the per-point rms of the standardised training fields (see
#: the module docstring for how it was chosen).
SIGMA_MIN_FRACTION = 0.3


@dataclass
class DGMFConfig:
    """What fixes a DGMF model and its training (defaults: a CPU-sized run).

    Attributes:
        fidelity: ``"label"`` (an embedding per trained level) or ``"continuous"`` (a number,
            ``log2`` of the resolution, appended to the condition vector).
        inputs_as: ``"vector"`` (the scaled inputs enter the embedding that modulates every
            residual block) or ``"vector_and_fields"`` (also as constant input channels).
        coordinates: add the two grid coordinates (``[-1, 1]``) as input channels.
        levels: the fidelities to train on: ``"all"``, ``"finest"`` (baseline (a)) or a
            tuple of fidelities of the training set.
        level_weights: ``"balanced"`` (each level drawn equally often) or ``"size"`` (in
            proportion to its number of outputs).
        base_channels, channel_mults, num_res_blocks, attention: the UNet's size options.
        epochs, steps_per_epoch: optimiser steps = ``epochs * steps_per_epoch``.
        batch_size: rows per step (drawn with replacement). learning_rate: Adam's, decayed
            by a cosine to ``learning_rate / 100``. ema_decay: of the weight average (with
            warm-up).
        sigma_min, sigma_max: the VE range; None: the data rule of the module docstring.
        sigma_min_fraction: ``sigma_min`` in units of the per-point rms under that rule.
        sampler, steps: a sampler of ``SAMPLERS`` and its steps (``"predictor_corrector"`` is
            the paper's; the ODE samplers are cheaper).
        samples: ``K``, the number of samples per input whose mean is the prediction.
        seed: initial weights, batch order, diffusion noise and sampling noise.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``. num_threads: torch threads during
            training (None: leave as is).
    """

    fidelity: str = "label"
    inputs_as: str = "vector_and_fields"
    coordinates: bool = True
    levels: str | tuple[int, ...] = "all"
    level_weights: str = "balanced"
    base_channels: int = 8
    channel_mults: tuple[int, ...] = (1, 2, 2, 2)
    num_res_blocks: int = 1
    attention: bool = False
    epochs: int = 20
    steps_per_epoch: int = 25
    batch_size: int = 16
    learning_rate: float = 5e-3
    ema_decay: float = 0.999
    sigma_min: float | None = None
    sigma_max: float | None = None
    sigma_min_fraction: float = SIGMA_MIN_FRACTION
    sampler: str = "ode_dpm2m"
    steps: int = 19
    samples: int = 8
    seed: int = 0
    device: str = "cpu"
    num_threads: int | None = None
    sampler_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fidelity not in FIDELITY_MODES:
            raise ValueError(
                f"DGMFConfig.fidelity is {self.fidelity!r}; expected one of {FIDELITY_MODES}"
            )
        if self.inputs_as not in INPUTS_AS:
            raise ValueError(
                f"DGMFConfig.inputs_as is {self.inputs_as!r}; expected one of {INPUTS_AS}"
            )
        if self.level_weights not in LEVEL_WEIGHTS:
            raise ValueError(
                f"DGMFConfig.level_weights is {self.level_weights!r}; expected one of "
                f"{LEVEL_WEIGHTS}"
            )
        if isinstance(self.levels, str) and self.levels not in ("all", "finest"):
            raise ValueError(
                f"DGMFConfig.levels is {self.levels!r}; expected 'all', 'finest' or a tuple of "
                "fidelities"
            )
        for name in ("epochs", "steps_per_epoch", "batch_size", "steps", "samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DGMFConfig.{name} is {value!r}; expected an int >= 1")
        resolve_sampler(self.sampler)

    def backbone(self, cond: ConditioningSpec) -> BackboneConfig:
        """The UNet's config for one-channel 2-D fields and the conditioning ``cond``."""
        return BackboneConfig(
            name="unet",
            options={
                "in_channels": 1,
                "out_channels": 1,
                "dims": 2,
                "base_channels": self.base_channels,
                "channel_mults": list(self.channel_mults),
                "num_res_blocks": self.num_res_blocks,
                "attention": self.attention,
                "cond_dim": cond.vector_dim,
                "cond_channels": cond.field_channels,
                "n_labels": cond.n_labels,
            },
        )


@dataclass
class FidelityEncoder:
    """Physical inputs and a fidelity -> the network's :class:`Conditioning`.

    Attributes:
        input_bounds: ``(d, 2)`` the input box; inputs are mapped affinely to ``[-1, 1]``.
        fidelities: the trained levels, lowest first (label ``l`` is ``fidelities[l]``).
        mode: ``"label"`` or ``"continuous"``.
    """

    input_bounds: np.ndarray
    fidelities: tuple[int, ...]
    mode: str
    field_grid: int = 0
    coordinates: bool = False
    inputs_as_fields: bool = False

    @property
    def field_channels(self) -> int:
        d = int(np.asarray(self.input_bounds).shape[0])
        vector = d + (self.mode == "continuous")
        return 2 * self.coordinates + vector * self.inputs_as_fields

    @property
    def spec(self) -> ConditioningSpec:
        d = int(np.asarray(self.input_bounds).shape[0])
        channels = self.field_channels
        shape = (self.field_grid, self.field_grid) if channels else ()
        if self.mode == "label":
            return ConditioningSpec(
                vector_dim=d,
                n_labels=len(self.fidelities),
                field_channels=channels,
                field_shape=shape,
            )
        return ConditioningSpec(vector_dim=d + 1, field_channels=channels, field_shape=shape)

    def fidelity_coordinate(self, fidelity: float) -> float:
        """``log2(fidelity)`` mapped so the trained levels span ``[-1, 1]`` (one level: 0)."""
        if not fidelity > 0:
            raise ValueError(f"fidelity is {fidelity!r}; expected a positive resolution")
        low, high = math.log2(self.fidelities[0]), math.log2(self.fidelities[-1])
        if high == low:
            return 0.0
        return 2.0 * (math.log2(fidelity) - low) / (high - low) - 1.0

    def encode(self, inputs: np.ndarray, fidelity: float) -> Conditioning:
        """``inputs (m, d)`` physical, one fidelity -> ``Conditioning`` of ``m`` rows."""
        values = np.asarray(inputs, dtype=np.float64)
        bounds = np.asarray(self.input_bounds, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != bounds.shape[0]:
            raise ValueError(f"inputs has shape {values.shape}; expected (m, {bounds.shape[0]})")
        scaled = 2.0 * (values - bounds[:, 0]) / (bounds[:, 1] - bounds[:, 0]) - 1.0
        m = values.shape[0]
        if self.mode == "label":
            if fidelity not in self.fidelities:
                raise ValueError(
                    f"fidelity is {fidelity!r}; a model with fidelity='label' knows only its "
                    f"trained levels {list(self.fidelities)} (use fidelity='continuous' to ask "
                    "for others)"
                )
            labels = torch.full((m,), self.fidelities.index(fidelity), dtype=torch.int64)
            vector = torch.from_numpy(scaled).float()
        else:
            column = np.full((m, 1), self.fidelity_coordinate(fidelity))
            vector = torch.from_numpy(np.concatenate([scaled, column], axis=1)).float()
            labels = None
        fields = None
        if self.field_channels:
            n = self.field_grid
            parts = []
            if self.coordinates:
                axis = torch.linspace(-1.0, 1.0, n)
                grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"))
                parts.append(grid[None].expand(m, -1, -1, -1))
            if self.inputs_as_fields:
                parts.append(vector[:, :, None, None].expand(-1, -1, n, n))
            fields = torch.cat(parts, dim=1)
        return Conditioning(vector=vector, fields=fields, labels=labels)


def sigma_range(
    fields: np.ndarray, min_fraction: float = SIGMA_MIN_FRACTION
) -> tuple[float, float]:
    """``(sigma_min, sigma_max)`` of the VE process from ``(n, P)`` standardised training
    fields: ``sigma_max`` the largest pairwise distance, ``sigma_min`` ``min_fraction`` times
    the per-point rms (see the module docstring)."""
    array = np.asarray(fields, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 2:
        raise ValueError(f"fields has shape {array.shape}; expected (n >= 2, P)")
    sigma_max = float(pdist(array).max())
    sigma_min = min_fraction * float(np.sqrt(np.mean(array**2)))
    if not 0 < sigma_min < sigma_max:
        raise ValueError(
            f"the training fields give sigma_min {sigma_min} and sigma_max {sigma_max}; "
            "expected 0 < sigma_min < sigma_max (are the fields all equal?)"
        )
    return sigma_min, sigma_max


def _selected_levels(training: TrainingSet, levels: str | tuple[int, ...]) -> list[int]:
    """Indices into ``training``'s levels that the model trains on."""
    if levels == "all":
        return list(range(len(training.fidelities)))
    if levels == "finest":
        return [len(training.fidelities) - 1]
    chosen = []
    for fidelity in levels:
        if fidelity not in training.fidelities:
            raise ValueError(
                f"DGMFConfig.levels names fidelity {fidelity!r}; the training set has "
                f"{list(training.fidelities)}"
            )
        chosen.append(training.fidelities.index(fidelity))
    return sorted(set(chosen))


def _grid_size(points: int) -> int:
    side = math.isqrt(points)
    if side * side != points:
        raise ValueError(f"the training fields have {points} points; expected a square N x N")
    return side


@dataclass
class _Prepared:
    encoder: FidelityEncoder
    source: GroupedSource
    standardisers: dict[int, Standardiser]
    fields: np.ndarray
    grid: int


def _prepare(training: TrainingSet, config: DGMFConfig) -> _Prepared:
    """The grouped source (one group per chosen level) and the encoder."""
    chosen = _selected_levels(training, config.levels)
    fidelities = tuple(training.fidelities[i] for i in chosen)
    grid = _grid_size(training.fields[chosen[0]].shape[1])
    encoder = FidelityEncoder(
        np.asarray(training.input_bounds),
        fidelities,
        config.fidelity,
        field_grid=grid,
        coordinates=config.coordinates,
        inputs_as_fields=config.inputs_as == "vector_and_fields",
    )
    groups = []
    for i in chosen:
        fields = np.asarray(training.fields[i], dtype=np.float64)
        x = torch.from_numpy(fields.reshape(-1, 1, grid, grid)).float()
        cond = encoder.encode(training.inputs[i], training.fidelities[i])
        groups.append(TensorSource(x, cond, name=f"fidelity_{training.fidelities[i]}"))
    sizes = [len(g) for g in groups]
    weights = [1.0] * len(groups) if config.level_weights == "balanced" else sizes
    source = GroupedSource(
        groups, weights, samples_per_epoch=config.steps_per_epoch * config.batch_size
    )
    return _Prepared(
        encoder=encoder,
        source=source,
        standardisers={training.fidelities[i]: training.standardisers[i] for i in chosen},
        fields=np.concatenate([np.asarray(training.fields[i]) for i in chosen]),
        grid=grid,
    )


class DGMFModel:
    """A trained DGMF score model (see the module docstring).

    Attributes:
        model: the :class:`ConditionalModel` (EMA weights) in the standardised space.
        encoder: the :class:`FidelityEncoder`.
        standardisers: fidelity -> the level's per-point :class:`Standardiser` (physical
            outputs on the finest grid <-> the model's space).
        config: the :class:`DGMFConfig`. grid: ``N``. metadata: sigma range, training time.
    """

    def __init__(
        self,
        model: ConditionalModel,
        encoder: FidelityEncoder,
        standardisers: dict[int, Standardiser],
        config: DGMFConfig,
        grid: int,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.encoder = encoder
        self.standardisers = standardisers
        self.config = config
        self.grid = grid
        self.metadata = dict(metadata or {})

    @property
    def fidelities(self) -> tuple[int, ...]:
        return self.encoder.fidelities

    def sample(
        self,
        inputs: np.ndarray,
        fidelity: float,
        n_per_input: int | None = None,
        *,
        space: str = "standardised",
        seed: int | None = None,
        batch_size: int = 256,
    ) -> np.ndarray:
        """``(m, K, N, N)`` samples of the output at ``fidelity`` on the finest grid.

        inputs: ``(m, d)`` physical. n_per_input: ``K`` (None: ``config.samples``).
        space: ``"standardised"`` (the level's per-point standardisation; for the finest
        level the metric's space) or ``"physical"`` (the solver's units; trained levels only).
        seed: None: ``config.seed``; sample ``k`` of input ``j`` uses the noise stream
        ``(seed, j K + k)``, independent of ``batch_size``.
        """
        if space not in ("standardised", "physical"):
            raise ValueError(f"space is {space!r}; expected 'standardised' or 'physical'")
        if space == "physical" and fidelity not in self.standardisers:
            raise ValueError(
                f"fidelity {fidelity!r} was not trained, so it has no standardisation back to "
                f"physical units (trained: {sorted(self.standardisers)}); use "
                "space='standardised'"
            )
        k = self.config.samples if n_per_input is None else int(n_per_input)
        if k < 1:
            raise ValueError(f"n_per_input is {n_per_input!r}; expected an int >= 1")
        cond = self.encoder.encode(inputs, fidelity)
        m = cond.batch_size
        index = torch.arange(m).repeat_interleave(k)
        repeated = cond[index]
        samples = self.model.sample_conditioned(
            repeated,
            m * k,
            sampler=self.config.sampler,
            steps=self.config.steps,
            seed=self.config.seed if seed is None else seed,
            batch_size=batch_size,
            device=self.config.device,
            **self.config.sampler_options,
        )
        values = samples.to("cpu", torch.float64).numpy().reshape(m * k, -1)
        if space == "physical":
            values = self.standardisers[fidelity].inverse(values)
        return values.reshape(m, k, self.grid, self.grid)

    def predict(
        self,
        inputs: np.ndarray,
        fidelity: float,
        n_samples: int | None = None,
        *,
        space: str = "standardised",
        seed: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (``ddof = 1``; 0 for one sample) of ``K`` samples,
        each ``(m, N, N)``; arguments as :meth:`sample`."""
        samples = self.sample(inputs, fidelity, n_samples, space=space, seed=seed)
        std = samples.std(axis=1, ddof=1) if samples.shape[1] > 1 else np.zeros_like(samples[:, 0])
        return samples.mean(axis=1), std

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Export to the model folder ``path`` (:meth:`ConditionalModel.save`: EMA weights and
        YAML; the per-level standardisers and the input box go to ``transforms.safetensors``).
        :func:`~scorepde.multifidelity.saved.write_marker` then marks the folder as a
        multi-fidelity model for the CLI. Returns the folder."""
        folder = Path(path)
        record = {
            "encoder": {
                "input_bounds": np.asarray(self.encoder.input_bounds, dtype=np.float64),
                "fidelities": list(self.encoder.fidelities),
                "mode": self.encoder.mode,
                "field_grid": self.encoder.field_grid,
                "coordinates": self.encoder.coordinates,
                "inputs_as_fields": self.encoder.inputs_as_fields,
            },
            "standardisers": {
                str(f): {"mean": s.mean, "scale": s.scale} for f, s in self.standardisers.items()
            },
            "config": {
                k: (list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self.config).items()
                if k != "sampler_options"
            },
            "grid": self.grid,
            "training": {k: v for k, v in self.metadata.items() if _json_safe(v)},
        }
        self.model.save(folder, metadata={DGMF_KEY: record})
        return folder

    @classmethod
    def load(cls, path: str | Path) -> DGMFModel:
        """Read a folder written by :meth:`save` (a clear error if it is not one)."""
        folder = Path(path)
        model = ConditionalModel.load(folder)
        record = model.metadata.pop(DGMF_KEY, None)
        if not isinstance(record, dict):
            raise ValueError(f"{folder}: not a DGMF model folder (no {DGMF_KEY!r} metadata)")
        try:
            enc = record["encoder"]
            encoder = FidelityEncoder(
                np.asarray(enc["input_bounds"], dtype=np.float64),
                tuple(int(f) for f in enc["fidelities"]),
                str(enc["mode"]),
                field_grid=int(enc["field_grid"]),
                coordinates=bool(enc["coordinates"]),
                inputs_as_fields=bool(enc["inputs_as_fields"]),
            )
            standardisers = {
                int(f): Standardiser(
                    np.asarray(v["mean"], dtype=np.float64),
                    np.asarray(v["scale"], dtype=np.float64),
                )
                for f, v in record["standardisers"].items()
            }
            options = dict(record["config"])
            for key in ("channel_mults", "levels"):
                if isinstance(options.get(key), list):
                    options[key] = tuple(options[key])
            config = DGMFConfig(**options)
            grid = int(record["grid"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{folder}: bad DGMF metadata ({error!r})") from error
        return cls(model, encoder, standardisers, config, grid, record.get("training"))


def _json_safe(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


#: The key of the DGMF record in the model's metadata.
DGMF_KEY = "dgmf"


def train_dgmf(
    training: TrainingSet, config: DGMFConfig | None = None, run_dir: str | None = None
) -> DGMFModel:
    """Train the DGMF score model on the levels ``config.levels`` of ``training``.

    training: one repeat's :class:`~scorepde.multifidelity.protocol.TrainingSet` (fields per
    level ``(n_l, N*N)`` standardised). run_dir: the Trainer's folder (history, the final
    checkpoint); None: a temporary folder, removed afterwards.
    """
    config = config or DGMFConfig()
    prepared = _prepare(training, config)
    sigma_min, sigma_max = sigma_range(prepared.fields, config.sigma_min_fraction)
    sigma_min = config.sigma_min if config.sigma_min is not None else sigma_min
    sigma_max = config.sigma_max if config.sigma_max is not None else sigma_max
    spec = prepared.encoder.spec
    model_config = ModelConfig(
        backbone=config.backbone(spec),
        process={"name": "ve", "sigma_min": sigma_min, "sigma_max": sigma_max},
        sigma_data=1.0,
        parametrisation="edm",
    )
    torch.manual_seed(config.seed)
    score_model = build_score_model(model_config)
    train_config = TrainConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        min_learning_rate=config.learning_rate / 100,
        ema_decay=config.ema_decay,
        ema_warmup=True,
        checkpoint_every=config.epochs,
        keep_checkpoints=1,
        seed=config.seed,
        device=config.device,
        precision="fp32",
        compile="off",
        num_threads=config.num_threads,
        plot=False,
    )
    with tempfile.TemporaryDirectory(prefix="dgmf-") as scratch:
        trainer = Trainer(score_model, train_config, run_dir or scratch, model_config=model_config)
        result = trainer.fit(source=prepared.source, progress=False)
        averaged: ScoreModel = copy.deepcopy(trainer.averaged_model()).to("cpu").eval()
    conditional = ConditionalModel(
        averaged,
        model_config,
        sample_shape=(1, prepared.grid, prepared.grid),
        conditioning_spec=spec,
        metadata={"method": "dgmf"},
    )
    metadata = {
        "sigma_min": sigma_min,
        "sigma_max": sigma_max,
        "train_seconds": result.wall_time,
        "final_train_loss": float(result.history["train_loss"][-1]),
        "optimiser_steps": config.epochs * config.steps_per_epoch,
    }
    return DGMFModel(
        conditional, prepared.encoder, prepared.standardisers, config, prepared.grid, metadata
    )


class UNetRegressionModel:
    """Baseline (b): the DGMF backbone as a deterministic regression ``inputs, fidelity ->
    field`` (zero field input, noise label 0). ``predict(inputs (m, d), fidelity) -> (m, N,
    N)`` standardised (or ``space="physical"``)."""

    def __init__(
        self,
        network: UNet,
        encoder: FidelityEncoder,
        standardisers: dict[int, Standardiser],
        grid: int,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.network = network.eval()
        self.encoder = encoder
        self.standardisers = standardisers
        self.grid = grid
        self.metadata = dict(metadata or {})

    def predict(
        self, inputs: np.ndarray, fidelity: float, *, space: str = "standardised"
    ) -> np.ndarray:
        if space not in ("standardised", "physical"):
            raise ValueError(f"space is {space!r}; expected 'standardised' or 'physical'")
        cond = self.encoder.encode(inputs, fidelity)
        with torch.no_grad():
            out = _regress(self.network, cond, self.grid)
        values = out.to(torch.float64).numpy().reshape(cond.batch_size, -1)
        if space == "physical":
            if fidelity not in self.standardisers:
                raise ValueError(
                    f"fidelity {fidelity!r} was not trained (trained: "
                    f"{sorted(self.standardisers)}); use space='standardised'"
                )
            values = self.standardisers[fidelity].inverse(values)
        return values.reshape(-1, self.grid, self.grid)


def _regress(network: UNet, cond: Conditioning, grid: int) -> Tensor:
    batch = cond.batch_size
    zeros = torch.zeros(batch, 1, grid, grid)
    return network(zeros, torch.zeros(batch), cond)


def train_unet_regression(
    training: TrainingSet, config: DGMFConfig | None = None
) -> UNetRegressionModel:
    """Baseline (b): train the UNet of ``config`` by mean squared error on the levels
    ``config.levels`` with the same level weights, batch size, steps, Adam and cosine decay as
    :func:`train_dgmf` (no EMA: the regression has no noise to average out). CPU only."""
    config = config or DGMFConfig()
    prepared = _prepare(training, config)
    torch.manual_seed(config.seed)
    network = build_backbone(config.backbone(prepared.encoder.spec))
    assert isinstance(network, UNet)
    optimiser = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    total = config.epochs * config.steps_per_epoch
    scheduler = build_cosine_scheduler(
        optimiser,
        total_steps=total,
        learning_rate=config.learning_rate,
        min_learning_rate=config.learning_rate / 100,
        warmup_steps=0,
    )
    generator = torch.Generator().manual_seed(config.seed * 1000)
    network.train()
    loss = torch.zeros(())
    for epoch in range(config.epochs):
        for x, cond in prepared.source.batches(epoch, config.batch_size, generator):
            assert isinstance(cond, Conditioning)
            loss = (_regress(network, cond, prepared.grid) - x).square().mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
    return UNetRegressionModel(
        network,
        prepared.encoder,
        prepared.standardisers,
        prepared.grid,
        {"final_train_loss": float(loss.detach()), "optimiser_steps": total},
    )


def band_coverage(samples: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """How often the truth lies in the band of ``K`` samples.

    samples: ``(m, K, *S)``; truth: ``(m, *S)``. Returns ``minmax`` (fraction of entries with
    ``min_k <= truth <= max_k``), ``minmax_nominal`` (``(K - 1) / (K + 1)``: its value when
    the truth is exchangeable with the samples, i.e. a calibrated model), ``two_sigma``
    (fraction within mean ± 2 std, ``ddof = 1``; nominal 0.954 for a Gaussian spread) and
    ``mean_std`` (the mean spread).
    """
    samples = np.asarray(samples, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if (
        samples.ndim < 2
        or samples.shape[0] != truth.shape[0]
        or samples.shape[2:] != truth.shape[1:]
    ):
        raise ValueError(
            f"samples has shape {samples.shape} and truth {truth.shape}; expected (m, K, *S) "
            "and (m, *S)"
        )
    k = samples.shape[1]
    if k < 2:
        raise ValueError(f"samples has K = {k} per input; a band needs K >= 2")
    inside = (samples.min(axis=1) <= truth) & (truth <= samples.max(axis=1))
    mean = samples.mean(axis=1)
    std = samples.std(axis=1, ddof=1)
    return {
        "minmax": float(inside.mean()),
        "minmax_nominal": (k - 1) / (k + 1),
        "two_sigma": float((np.abs(truth - mean) <= 2 * std).mean()),
        "mean_std": float(std.mean()),
    }


#: The network methods of the issue: DGMF on all levels, (a) the score model on the finest
#: level only, (b) the deterministic U-Net regression on all levels.
NETWORK_METHODS = ("dgmf", "score_high", "unet_regression")


def run_network_method(
    name: str, config: DGMFConfig, training: TrainingSet, test: TestSet
) -> dict[str, Any]:
    """Train method ``name`` (one of :data:`NETWORK_METHODS`) on ``training`` and predict the
    finest outputs at ``test.inputs``.

    Returns ``prediction`` ``(n_test, P)`` in the finest level's standardisation (what the
    protocol's nRMSE compares with ``test.fields``), ``samples`` ``(n_test, K, N, N)`` (score
    methods; None for the regression), ``train_seconds``, ``predict_seconds`` and the
    model's ``metadata``, and the trained ``model`` (a :class:`DGMFModel`, or the
    :class:`UNetRegressionModel`). ``test.fields`` is not read.
    """
    if name not in NETWORK_METHODS:
        raise ValueError(f"method is {name!r}; expected one of {NETWORK_METHODS}")
    finest = training.fidelities[-1]
    m = len(test.inputs)
    start = time.perf_counter()
    model: DGMFModel | UNetRegressionModel
    if name == "unet_regression":
        regression = train_unet_regression(training, config)
        trained = time.perf_counter()
        prediction = regression.predict(test.inputs, finest).reshape(m, -1)
        samples, metadata, model = None, regression.metadata, regression
    else:
        levels = "finest" if name == "score_high" else config.levels
        model = train_dgmf(training, replace(config, levels=levels))
        trained = time.perf_counter()
        samples = model.sample(test.inputs, finest)
        prediction = samples.mean(axis=1).reshape(m, -1)
        metadata = model.metadata
    return {
        "prediction": prediction,
        "samples": samples,
        "train_seconds": trained - start,
        "predict_seconds": time.perf_counter() - trained,
        "metadata": metadata,
        "model": model,
    }
