"""Amortised posterior sampling with a conditional score model (arXiv 2406.13154).

Training pairs ``(x, y)`` come from the prior and the simulated measurement process
(``x ~ p(x)``, ``y = noise(F(x))``; the forward model is only run, never differentiated). A
score model ``s(x_t, t | y)`` trained by denoising score matching on these pairs learns the
score of ``p(x | y)`` for every ``y`` at once, so posterior samples for a new observation need
no retraining: run any reverse-time sampler conditioned on ``y``.

Two verbs::

    x, y = from_simulator(prior_sample, forward, noise, n_train=50_000, seed=0)
    posterior = AmortisedPosterior().train(x, y, run_dir="runs/inverse")
    samples = posterior.sample(1000, y_observed)           # (1000, *x_shape), x's units
    summary = summarise(samples)                           # mean, std, 2.5/50/97.5 %

Normalisation: ``x`` and ``y`` are standardised component by component (mean and standard
deviation over the training set, :class:`Standardiser`); both are saved with the model (their
arrays in ``transforms.safetensors``, not in the YAML). The network sees ``x`` as ``(B, 1, d)``
for vectors (``d = prod(x_shape)``; fields ``(C, N)`` keep their shape). The standardised ``y``
enters either as a vector ``(B, prod(y_shape))`` (``y_as="vector"``, the default) or, for an
observed field ``y (Cy, *S)``, as field conditions ``Conditioning(fields=(B, Cy, *S))``
(``y_as="fields"``; the backbone must take field conditions, e.g. the U-Net), or as those
fields plus the linear estimate of ``x`` from them as ``Cx`` more channels (``y_as=
"fields_linear"``, ``x (Cx, *S)`` on the same grid; the estimate's gain is fitted on the
training pairs: :class:`~scorepde.training.transforms.LinearEstimateStandardiser`; the
training pairs' own estimates are cross-fitted, so they are as good as on a new observation).
``y_as="fields_residual"`` conditions the same way and models ``x`` as its residual from that
estimate, scaled per component to unit spread
(:class:`~scorepde.training.transforms.ResidualStandardiser`): an untrained network then samples
the linear-Gaussian posterior's marginals, and training learns the correction.

The posterior is a view over one :class:`~scorepde.training.conditional.ConditionalModel` (the
model class of the forward problems too): ``x_transform`` is the Standardiser of ``x``,
``condition_transform`` that of ``y``; sampling and saving go through it
(:attr:`AmortisedPosterior.model`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scorepde.conditioning import Conditioning, ConditioningSpec
from scorepde.diffusion.preconditioning import ScoreModel
from scorepde.inverse.noise_models import NoiseModel
from scorepde.nets.registry import BackboneConfig
from scorepde.sampling.registry import (
    DEFAULT_POSTERIOR_SAMPLER,
    DEFAULT_POSTERIOR_STEPS,
    DEFAULT_SAMPLER_OPTIONS,
    DEFAULT_STEPS,
    resolve_sampler,
    sampler_options,
)
from scorepde.training.conditional import ConditionalModel
from scorepde.training.config import TrainConfig
from scorepde.training.model_config import ModelConfig, build_score_model
from scorepde.training.trainer import Trainer
from scorepde.training.transforms import (
    LinearEstimateStandardiser,
    ResidualStandardiser,
    Standardiser,
)

#: Format of the ``metadata.inverse`` record: /2 keeps the standardisers in the model's
#: transforms (safetensors); /1 (older folders, still read) held them as YAML lists.
INVERSE_FORMAT = "scorepde.inverse/2"
_INVERSE_FORMATS = ("scorepde.inverse/1", INVERSE_FORMAT)
#: How the observation enters the network: a flat vector, field conditions, field
#: conditions with the linear estimate of ``x`` appended as channels, or those channels with
#: ``x`` modelled as its scaled residual from the estimate.
Y_AS = ("vector", "fields", "fields_linear", "fields_residual")
#: The values of :data:`Y_AS` that enter as field conditions.
FIELD_Y_AS = ("fields", "fields_linear", "fields_residual")
#: The values of :data:`Y_AS` that append the linear estimate of ``x`` as channels.
LINEAR_Y_AS = ("fields_linear", "fields_residual")
#: ``y_as`` in :data:`LINEAR_Y_AS`: the training pairs' linear estimates are cross-fitted over this
#: many folds (:meth:`~scorepde.training.transforms.LinearEstimateStandardiser.out_of_fold`).
LINEAR_ESTIMATE_FOLDS = 5

#: Optimiser steps of :func:`fixed_steps_train_config` (the default recipe before the
#: data-sized one; the shipped battery and linear-Gaussian recipes keep it).
DEFAULT_TRAINING_STEPS = 20_000
#: The data-sized recipe (:func:`default_train_config`): the batch; the optimiser steps it
#: plans for a data set of ordinary size; at least / at most this many epochs; never more than
#: this many steps; the least patience of its early stopping (in validations).
DEFAULT_BATCH_SIZE = 128
DEFAULT_PLANNED_STEPS = 3000
DEFAULT_MIN_EPOCHS = 20
DEFAULT_MAX_EPOCHS = 1000
DEFAULT_MAX_STEPS = 20_000
DEFAULT_PATIENCE = 10
#: With early stopping, the held-out pairs are repeated to at least this many validation rows
#: (each with its own diffusion time and noise), so that the validation loss is precise.
VALIDATION_ROWS = 5000


def network_shape(x_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape the network sees for one sample: ``(1, d)`` for scalars/vectors, else ``x_shape``."""
    if len(x_shape) <= 1:
        return (1, math.prod(x_shape))
    return tuple(x_shape)


def default_model_config(
    x_shape: tuple[int, ...], y_shape: tuple[int, ...], *, cond_to_input: bool = False
) -> ModelConfig:
    """MLP backbone sized to ``x`` (``data_dim = prod(x_shape)``, ``cond_dim = prod(y_shape)``,
    width ``clip(8 (d + k), 128, 512)``, depth 3), VE process (``sigma`` 0.01 .. 50), EDM
    preconditioning with ``sigma_data = 1`` (standardised data).

    cond_to_input: ``y`` also enters the network's input layer beside ``x`` (it always enters
    the embedding that modulates every block). Off by default: on sbi's gaussian_linear task
    (10 + 10 dimensions, 10 000 pairs) it cut the worst posterior-mean error (0.30 -> 0.20 and
    0.25 -> 0.23 posterior stds, two training seeds), but on gaussian_linear_uniform's C2ST it
    did worse (0.763 against 0.719, one run); docs/inverse.md, "Defaults"."""
    d, k = math.prod(x_shape), math.prod(y_shape)
    hidden = int(min(512, max(128, 8 * (d + k))))
    options: dict[str, Any] = {"data_dim": d, "cond_dim": k, "hidden": hidden, "depth": 3}
    if cond_to_input:
        options["cond_to_input"] = True
    return ModelConfig(
        backbone=BackboneConfig(name="mlp", options=options),
        process={"name": "ve", "sigma_min": 0.01, "sigma_max": 50.0},
        sigma_data=1.0,
        parametrisation="edm",
    )


def default_train_config(n_train: int, seed: int = 0) -> TrainConfig:
    """The data-sized recipe of :meth:`AmortisedPosterior.train` for ``n_train`` training
    pairs: its length follows the data size, and early stopping on the validation loss ends it.

    Batch :data:`DEFAULT_BATCH_SIZE` (at most ``n_train``), ``s = ceil(n_train / batch)``
    steps per epoch. Planned epochs: ``ceil(DEFAULT_PLANNED_STEPS / s)`` clipped to
    [:data:`DEFAULT_MIN_EPOCHS`, :data:`DEFAULT_MAX_EPOCHS`] and to at most
    :data:`DEFAULT_MAX_STEPS` steps: about 3000 steps for ordinary data sets (43 epochs of
    9000 pairs, 375 of 1000), 20 passes over larger ones (up to 128 000 pairs; beyond, 20 000
    steps), at most 1000 passes over tiny ones. Adam at 1e-3 with a cosine decay to 1e-5 over
    the planned steps; EMA decay 0.999 with warm-up. Early stopping: the validation loss of
    the EMA weights every ``val_every = max(1, round(VALIDATION_ROWS / (3 n_train)))``
    epochs (validation, on :data:`VALIDATION_ROWS` rows, then costs at most about a third of
    the training), stop after ``max(DEFAULT_PATIENCE, ceil(epochs / (4 val_every)))``
    validations without improvement, restore the best EMA weights. A run stopped early ends at
    a learning rate above the cosine's end: the schedule spans the planned length, so it is
    the same whether or not the run stops. One torch thread (``num_threads=1``,
    process-wide): the default MLP's matrices are too small for intra-op threads to pay, and
    on a loaded 2-core CPU two threads were 14 times slower than one (32 s against 2.3 s per
    epoch of 9000 pairs, docs/inverse.md). One checkpoint at the end, no plot.
    :meth:`AmortisedPosterior.train` turns the early stopping off when
    ``validation_fraction`` is 0 (nothing to stop on).
    """
    if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1:
        raise ValueError(f"n_train must be an integer >= 1, got {n_train!r}")
    batch = min(DEFAULT_BATCH_SIZE, n_train)
    steps_per_epoch = math.ceil(n_train / batch)
    epochs = math.ceil(DEFAULT_PLANNED_STEPS / steps_per_epoch)
    epochs = min(DEFAULT_MAX_EPOCHS, max(DEFAULT_MIN_EPOCHS, epochs))
    epochs = max(1, min(epochs, DEFAULT_MAX_STEPS // steps_per_epoch))
    val_every = max(1, min(epochs, round(VALIDATION_ROWS / (3 * n_train))))
    return TrainConfig(
        epochs=epochs,
        batch_size=batch,
        learning_rate=1e-3,
        min_learning_rate=1e-5,
        ema_decay=0.999,
        ema_warmup=True,
        checkpoint_every=epochs,
        keep_checkpoints=1,
        seed=seed,
        val_every=val_every,
        patience=max(DEFAULT_PATIENCE, math.ceil(epochs / (4 * val_every))),
        restore_best=True,
        num_threads=1,
        plot=False,
    )


def fixed_steps_train_config(
    n_train: int, seed: int = 0, steps: int = DEFAULT_TRAINING_STEPS
) -> TrainConfig:
    """The fixed-length recipe (the default before the data-sized one; the battery and
    linear-Gaussian recipes keep it): Adam at 1e-3 with cosine decay to 1e-5, batch 512, EMA
    0.999, epochs chosen for about ``steps`` optimiser steps whatever the data size, no early
    stopping, one checkpoint at the end, no plot."""
    batch = min(512, n_train)
    epochs = max(1, math.ceil(steps / math.ceil(n_train / batch)))
    return TrainConfig(
        epochs=epochs,
        batch_size=batch,
        learning_rate=1e-3,
        min_learning_rate=1e-5,
        ema_decay=0.999,
        checkpoint_every=epochs,
        keep_checkpoints=1,
        seed=seed,
        val_every=max(1, epochs // 10),
        plot=False,
    )


class AmortisedPosterior:
    """Conditional score model of ``p(x | y)``, trained once, sampled for any ``y``.

    Attributes (set by :meth:`train` or :meth:`load`):
        score_model: the trained :class:`ScoreModel` (EMA weights, eval mode).
        model_config: how to rebuild it.
        x_standardiser / y_standardiser: per-component standardisation of ``x`` and ``y``.
        x_shape / y_shape: one sample's shape of ``x`` and of ``y``.
        y_as: a value of :data:`Y_AS`, how ``y`` enters the network (and, for
            ``"fields_residual"``, how ``x`` is represented).
        metadata: training summary (sizes, losses, timings).
        model: the :class:`ConditionalModel` these make up (a view: built from them).
    """

    def __init__(self) -> None:
        self.score_model: ScoreModel | None = None
        self.model_config: ModelConfig | None = None
        self.x_standardiser: Standardiser | None = None
        self.y_standardiser: Standardiser | None = None
        self.x_shape: tuple[int, ...] = ()
        self.y_shape: tuple[int, ...] = ()
        self.y_as: str = "vector"
        self.metadata: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = "trained" if self.score_model is not None else "untrained"
        return f"AmortisedPosterior({state}, x_shape={self.x_shape}, y_shape={self.y_shape})"

    @property
    def model(self) -> ConditionalModel:
        """The conditional model of ``p(x | y)``: the score model with the standardiser of
        ``x`` as ``x_transform`` and that of ``y`` as ``condition_transform``."""
        score_model, x_std, y_std = self._require_trained()
        return ConditionalModel(
            score_model,
            self.model_config,
            x_transform=x_std,
            condition_transform=y_std,
            sample_shape=self._net_shape,
            conditioning_spec=conditioning_spec_for(self.y_shape, self.y_as, self.x_shape),
            problem_name="inverse",
            metadata={"inverse": self._record(), "training": dict(self.metadata)},
        )

    # ------------------------------------------------------------------ training

    def train(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        run_dir: str | Path,
        model: ModelConfig | None = None,
        training: TrainConfig | None = None,
        validation_fraction: float = 0.1,
        seed: int = 0,
        resume: bool = False,
        progress: bool = False,
        y_as: str = "vector",
    ) -> AmortisedPosterior:
        """Train on pairs ``x (n, *x_shape)``, ``y (n, *y_shape)`` (physical units); returns self.

        run_dir: the trainer's folder (history, checkpoints; the checkpoints carry the
        standardisers, so ``AmortisedPosterior.load(run_dir)`` works). model: defaults to
        :func:`default_model_config` (``y_as="vector"`` only). training: defaults to
        :func:`default_train_config` (length from the data size, early stopping, best EMA weights
        restored; without a validation set, no early stopping). With early stopping (``patience`` or
        ``restore_best`` set) the held-out pairs are repeated to at least :data:`VALIDATION_ROWS`
        validation rows. validation_fraction: share of the pairs held out for the validation loss
        (0: none). The metadata records ``epochs``, ``steps``, ``best_epoch`` and ``stopped_epoch``.
        seed: the train/validation split, the weight initialisation and (for the default recipe) the
        trainer's streams. resume: continue an interrupted run in ``run_dir``. y_as: ``"vector"``
        (the flattened standardised ``y`` is the condition vector) or ``"fields"`` (``y (n, Cy,
        *S)`` enters as field conditions; give a ``model`` whose backbone takes them) or
        ``"fields_linear"`` (those fields and ``Cx`` channels of the linear estimate of ``x``,
        for ``x (n, Cx, *S)`` on ``y``'s grid: the backbone takes ``Cy + Cx`` field channels) or
        ``"fields_residual"`` (the same channels; the network models ``x``'s residual from the
        estimate, scaled per component to unit spread on the cross-fitted training pairs).
        """
        if y_as not in Y_AS:
            raise ValueError(f"y_as = {y_as!r} is not allowed; expected one of {list(Y_AS)}")
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
            raise ValueError(
                f"x {x.shape} and y {y.shape} must be (n, *x_shape) and (n, *y_shape) with the "
                "same n >= 2"
            )
        if y_as in FIELD_Y_AS and y.ndim < 3:
            raise ValueError(
                f"y_as={y_as!r} needs y of shape (n, Cy, *S) with at least one grid axis; got "
                f"{y.shape}"
            )
        if y_as in LINEAR_Y_AS and (x.ndim != y.ndim or x.shape[2:] != y.shape[2:]):
            raise ValueError(
                f"y_as={y_as!r} needs x (n, Cx, *S) on y's grid S = {y.shape[2:]}; got x {x.shape}"
            )
        if y_as in FIELD_Y_AS and model is None:
            raise ValueError(
                f"y_as={y_as!r} needs model=ModelConfig(...) with a backbone that takes field "
                "conditions (the default MLP takes a condition vector only)"
            )
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("x and y must be finite")
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        n = x.shape[0]
        order = np.random.default_rng(seed).permutation(n)
        n_val = round(validation_fraction * n)
        n_val = min(n_val, n - 1)
        val_index, train_index = order[:n_val], order[n_val:]

        self.x_shape, self.y_shape, self.y_as = tuple(x.shape[1:]), tuple(y.shape[1:]), y_as
        self.x_standardiser = Standardiser.fit(x[train_index])
        out_of_fold = None
        if y_as in LINEAR_Y_AS:
            x_fit = self.x_standardiser.transform(x[train_index])
            self.y_standardiser = LinearEstimateStandardiser.fit_pairs(y[train_index], x_fit)
            # the training rows' estimates by cross-fitting (see LinearEstimateStandardiser
            # .out_of_fold); the held-out rows are out of sample already
            out_of_fold = self.y_standardiser.out_of_fold(
                y[train_index], x_fit, folds=LINEAR_ESTIMATE_FOLDS, seed=seed
            )
            if y_as == "fields_residual":
                self.x_standardiser = ResidualStandardiser.fit_residuals(
                    x[train_index], out_of_fold, self.x_standardiser, offset=self.y_shape[0]
                )
        else:
            self.y_standardiser = Standardiser.fit(y[train_index])
        config = model or default_model_config(self.x_shape, self.y_shape)
        _check_field_channels(config, conditioning_spec_for(self.y_shape, y_as, self.x_shape))
        if training is None:
            training = default_train_config(len(train_index), seed)
            if n_val == 0:  # nothing to stop on: the planned length, the last weights
                training = training.replace(patience=None, restore_best=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            score_model = build_score_model(config)

        def tensors(
            index: np.ndarray, conditions: np.ndarray | None = None
        ) -> tuple[torch.Tensor, torch.Tensor | Conditioning]:
            assert self.x_standardiser is not None and self.y_standardiser is not None
            ys = self.y_standardiser.transform(y[index]) if conditions is None else conditions
            xs = self.x_standardiser.transform(x[index], ys).reshape(len(index), *self._net_shape)
            if self.y_as in FIELD_Y_AS:
                return torch.from_numpy(xs).float(), Conditioning(
                    fields=torch.from_numpy(ys).float()
                )
            return torch.from_numpy(xs).float(), torch.from_numpy(
                ys.reshape(len(index), -1)
            ).float()

        x_train, y_train = tensors(train_index, out_of_fold)
        x_val, y_val = None, None
        if n_val > 0:
            repeats = 1
            if training.patience is not None or training.restore_best:
                # each held-out pair at several diffusion times and noises: a validation loss
                # precise enough to stop on (with 100 pairs, one draw each, it picked the
                # weights of epoch 6 of 100: docs/inverse.md, "Defaults")
                repeats = max(1, math.ceil(VALIDATION_ROWS / n_val))
            x_val, y_val = tensors(np.tile(val_index, repeats))
        self.model_config = config
        self.metadata = {"n_train": len(train_index), "n_val": int(n_val), "seed": seed}
        if out_of_fold is not None:
            self.metadata["linear_estimate_folds"] = LINEAR_ESTIMATE_FOLDS
        trainer = Trainer(
            score_model,
            training,
            run_dir,
            metadata=self._checkpoint_metadata(),
            model_config=config,
        )
        result = trainer.fit(x_train, y_train, x_val, y_val, resume=resume, progress=progress)
        self.metadata.update(
            {
                "epochs": result.epochs_done,
                "steps": int(result.history["step"][-1]) if result.history["step"] else 0,
                "final_train_loss": float(result.history["train_loss"][-1]),
                "best_val_loss": float(result.best_val),
                "best_epoch": result.best_epoch,
                "stopped_epoch": result.stopped_epoch,
                "train_seconds": float(result.wall_time),
            }
        )
        self.score_model = copy.deepcopy(trainer.averaged_model()).to("cpu").eval()
        return self

    # ------------------------------------------------------------------ sampling

    @property
    def _net_shape(self) -> tuple[int, ...]:
        return network_shape(self.x_shape)

    def _require_trained(self) -> tuple[ScoreModel, Standardiser, Standardiser]:
        if self.score_model is None or self.x_standardiser is None or self.y_standardiser is None:
            raise RuntimeError("AmortisedPosterior is not trained: call train(...) or load(...)")
        return self.score_model, self.x_standardiser, self.y_standardiser

    def sample(
        self,
        n: int,
        y: np.ndarray,
        *,
        sampler: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int = 1000,
        device: str | torch.device = "auto",
        progress: bool = False,
        **options: Any,
    ) -> np.ndarray:
        """``n`` posterior samples ``(n, *x_shape)`` in ``x``'s units given one observation ``y``.

        y: ``y_shape`` (or anything with ``prod(y_shape)`` elements), physical units.
        sampler: a key of ``scorepde.sampling.registry.SAMPLERS`` (SDE, ODE and
        annealed-Langevin samplers); None: :data:`DEFAULT_POSTERIOR_SAMPLER` (the
        probability-flow ODE, DPM-Solver-2M) at :data:`DEFAULT_POSTERIOR_STEPS` (19 steps, 20
        network evaluations) unless ``steps`` is given. steps: total steps (None: the
        default above, or :data:`DEFAULT_STEPS` of a named sampler). seed:
        sample ``i`` uses the stream ``(seed, i)``, so results do not depend on ``batch_size``.
        options: passed to the sampler over :data:`DEFAULT_SAMPLER_OPTIONS` (e.g. ``levels``,
        ``step_size`` for Langevin).
        """
        self._require_trained()
        observation = np.asarray(y, dtype=np.float64)
        if observation.size != math.prod(self.y_shape):
            raise ValueError(
                f"y has shape {observation.shape}; expected one observation of shape {self.y_shape}"
            )
        return self._posterior_samples(
            observation.reshape(1, *self.y_shape),
            n,
            sampler=sampler,
            steps=steps,
            seed=seed,
            batch_size=batch_size,
            device=device,
            progress=progress,
            **options,
        )[0]

    def sample_many(
        self,
        n: int,
        observations: np.ndarray,
        *,
        sampler: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int = 1000,
        device: str | torch.device = "auto",
        progress: bool = False,
        **options: Any,
    ) -> np.ndarray:
        """``n`` posterior samples for each of ``M`` observations in one sampler run:
        ``observations (M, *y_shape)`` -> ``(M, n, *x_shape)``.

        Sample ``j`` of observation ``m`` uses the stream ``(seed, m n + j)``, so
        ``sample_many(n, y[None], seed=s)[0]`` equals ``sample(n, y, seed=s)``. The other
        arguments are those of :meth:`sample`.
        """
        self._require_trained()
        batch = np.asarray(observations, dtype=np.float64)
        if (
            batch.ndim < 1
            or batch.shape[0] < 1
            or math.prod(batch.shape[1:]) != math.prod(self.y_shape)
        ):
            raise ValueError(
                f"observations have shape {batch.shape}; expected (M, *{self.y_shape}) with M >= 1"
            )
        return self._posterior_samples(
            batch.reshape(batch.shape[0], *self.y_shape),
            n,
            sampler=sampler,
            steps=steps,
            seed=seed,
            batch_size=batch_size,
            device=device,
            progress=progress,
            **options,
        )

    def _posterior_samples(
        self,
        observations: np.ndarray,
        n: int,
        *,
        sampler: str | None,
        steps: int | None,
        seed: int,
        batch_size: int,
        device: str | torch.device,
        progress: bool,
        **options: Any,
    ) -> np.ndarray:
        """``observations (M, *y_shape)`` -> ``(M, n, *x_shape)`` through :attr:`model`."""
        model = self.model
        if sampler is None:
            sampler = DEFAULT_POSTERIOR_SAMPLER
            steps = DEFAULT_POSTERIOR_STEPS if steps is None else steps
        resolve_sampler(sampler)
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if not np.all(np.isfinite(observations)):
            raise ValueError("y must be finite")
        n, n_obs = int(n), observations.shape[0]
        standardised = model.condition_transform.transform(observations)
        if self.y_as in FIELD_Y_AS and n_obs == 1:
            cond = model.condition_from_standardised(standardised)  # one row, shared
        else:
            # row m n + j: observation m
            cond = model.condition_from_standardised(np.repeat(standardised, n, axis=0))
        samples = model.sample_conditioned(
            cond,
            n_obs * n,
            sampler=sampler,
            steps=int(steps) if steps is not None else DEFAULT_STEPS[sampler],
            seed=seed,
            batch_size=batch_size,
            device=device,
            progress=progress,
            **sampler_options(sampler, options),
        )
        return model.to_physical(samples, cond).reshape(n_obs, n, *self.x_shape)

    # ------------------------------------------------------------------ persistence

    def _record(self) -> dict[str, Any]:
        return {
            "format": INVERSE_FORMAT,
            "x_shape": list(self.x_shape),
            "y_shape": list(self.y_shape),
            "y_as": self.y_as,
        }

    def _checkpoint_metadata(self) -> dict[str, Any]:
        """What the trainer records in every checkpoint, so that a run folder loads as a
        posterior (the standardisers' arrays go to the checkpoint's safetensors)."""
        assert self.x_standardiser is not None and self.y_standardiser is not None
        return {
            "problem": "inverse",
            "inverse": self._record(),
            "transforms": {
                "x": self.x_standardiser.to_record(),
                "condition": self.y_standardiser.to_record(),
            },
            "conditioning_spec": conditioning_spec_for(
                self.y_shape, self.y_as, self.x_shape
            ).to_dict(),
        }

    def save(self, path: str | Path) -> Path:
        """Export to a model folder (``model.safetensors``; ``model.yaml`` with the shapes under
        ``metadata.inverse``; the standardisers in ``transforms.safetensors``); returns the
        folder."""
        self._require_trained()
        if self.model_config is None:
            raise RuntimeError("AmortisedPosterior has no model_config; train or load it first")
        return self.model.save(path)

    @classmethod
    def load(
        cls, path: str | Path, *, map_location: str | torch.device = "cpu"
    ) -> AmortisedPosterior:
        """Read a folder written by :meth:`save`, a checkpoint folder or a run folder of
        :meth:`train` (also those written before the standardisers moved to safetensors)."""
        model = ConditionalModel.load(path, map_location=map_location)
        record = model.metadata.get("inverse")
        if not isinstance(record, dict) or record.get("format") not in _INVERSE_FORMATS:
            raise ValueError(f"{path} holds no amortised posterior (metadata.inverse missing)")
        posterior = cls()
        posterior.score_model = model.score_model.eval()
        posterior.model_config = model.model_config
        posterior.x_shape = tuple(int(s) for s in record["x_shape"])
        posterior.y_shape = tuple(int(s) for s in record["y_shape"])
        posterior.y_as = str(record.get("y_as", "vector"))
        if "x_standardiser" in record:  # scorepde.inverse/1: the arrays in the YAML
            posterior.x_standardiser = Standardiser.from_dict(record["x_standardiser"])
            posterior.y_standardiser = Standardiser.from_dict(record["y_standardiser"])
        else:
            if not isinstance(model.x_transform, Standardiser) or not isinstance(
                model.condition_transform, Standardiser
            ):
                raise ValueError(f"{path}: the posterior's standardisers are missing")
            posterior.x_standardiser = model.x_transform
            posterior.y_standardiser = model.condition_transform
        posterior.metadata = dict(model.metadata.get("training") or {})
        return posterior


def conditioning_spec_for(
    y_shape: tuple[int, ...], y_as: str, x_shape: tuple[int, ...] = ()
) -> ConditioningSpec:
    """How an observation of shape ``y_shape`` enters the network: a vector of
    ``prod(y_shape)`` (``"vector"``), ``y_shape[0]`` field channels on ``y_shape[1:]``
    (``"fields"``), or ``y_shape[0] + x_shape[0]`` of them (``"fields_linear"``,
    ``"fields_residual"``)."""
    if y_as == "fields":
        return ConditioningSpec(field_channels=int(y_shape[0]), field_shape=tuple(y_shape[1:]))
    if y_as in LINEAR_Y_AS:
        return ConditioningSpec(
            field_channels=int(y_shape[0]) + int(x_shape[0]), field_shape=tuple(y_shape[1:])
        )
    return ConditioningSpec(vector_dim=math.prod(y_shape))


def _check_field_channels(config: ModelConfig, spec: ConditioningSpec) -> None:
    """Refuse a backbone whose ``cond_channels`` option disagrees with the field channels
    the observation brings (before any training)."""
    options = dict(config.backbone.options or {})
    declared = options.get("cond_channels")
    if spec.field_channels and declared is not None and int(declared) != spec.field_channels:
        raise ValueError(
            f"model.backbone.options.cond_channels = {declared}; the observation enters as "
            f"{spec.field_channels} field channels here (y_as and the shapes of x and y), so "
            f"set cond_channels: {spec.field_channels}"
        )


def summarise(
    samples: np.ndarray, percentiles: Sequence[float] = (2.5, 50.0, 97.5)
) -> dict[str, np.ndarray]:
    """Per-component summary of ``samples (n, *x_shape)``: ``mean``, ``std`` (ddof 1) and one
    entry per percentile ``q`` named ``f"p{q:g}"`` (default ``p2.5``, ``p50``, ``p97.5``: the
    median and the central 95 % interval); each ``x_shape``."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim < 1 or samples.shape[0] < 1:
        raise ValueError(f"samples have shape {samples.shape}; expected (n, *x_shape), n >= 1")
    levels = [float(q) for q in percentiles]
    if not all(0.0 <= q <= 100.0 for q in levels):
        raise ValueError(f"percentiles must lie in [0, 100], got {list(percentiles)}")
    summary = {
        "mean": samples.mean(axis=0),
        "std": samples.std(axis=0, ddof=1) if samples.shape[0] > 1 else np.zeros(samples.shape[1:]),
    }
    if levels:
        for q, value in zip(levels, np.percentile(samples, levels, axis=0), strict=True):
            summary[f"p{q:g}"] = value
    return summary


def format_summary(
    summary: Mapping[str, np.ndarray],
    *,
    names: Sequence[str] | None = None,
    truth: np.ndarray | None = None,
    max_rows: int = 20,
) -> str:
    """A plain-text table of a :func:`summarise` result, one row per component (flattened;
    the first ``max_rows`` and a count of the rest), with a ``truth`` column if given."""
    columns = list(summary)
    flat = {key: np.asarray(value, dtype=np.float64).ravel() for key, value in summary.items()}
    size = len(next(iter(flat.values())))
    labels = list(names) if names is not None else [f"x[{i}]" for i in range(size)]
    if truth is not None:
        flat["truth"] = np.asarray(truth, dtype=np.float64).ravel()
        if flat["truth"].size != size:
            raise ValueError(f"truth has {flat['truth'].size} components; the summary has {size}")
        columns.append("truth")
    width = max(len(label) for label in [*labels[:max_rows], "component"])
    lines = ["component".ljust(width) + "".join(f"{c:>12}" for c in columns)]
    for i in range(min(size, max_rows)):
        lines.append(labels[i].ljust(width) + "".join(f"{flat[c][i]:>12.4g}" for c in columns))
    if size > max_rows:
        lines.append(f"... {size - max_rows} more components")
    return "\n".join(lines)


def from_simulator(
    prior_sample: Callable[[int, np.random.Generator], np.ndarray],
    forward: Callable[[np.ndarray], np.ndarray],
    noise: NoiseModel,
    n_train: int,
    seed: int,
    *,
    batch: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """Training pairs ``(x (n_train, *x_shape), y (n_train, *y_shape))``, float64.

    prior_sample(b, rng) -> ``(b, *x_shape)``; forward(x (b, *x_shape)) -> clean measurements
    ``(b, *y_shape)`` (batched; wrap a one-sample simulator with ``np.stack``);
    ``noise.sample(clean, rng)`` adds the measurement noise. One generator
    ``default_rng(seed)`` feeds the prior and the noise, batch after batch of ``batch``.
    """
    if n_train < 1 or batch < 1:
        raise ValueError(f"need n_train >= 1 and batch >= 1, got {n_train}, {batch}")
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for start in range(0, n_train, batch):
        size = min(batch, n_train - start)
        x = np.asarray(prior_sample(size, rng), dtype=np.float64)
        clean = np.asarray(forward(x), dtype=np.float64)
        if x.shape[0] != size or clean.shape[0] != size:
            raise ValueError(
                f"prior_sample gave {x.shape} and forward {clean.shape}; both must start with "
                f"the batch size {size}"
            )
        xs.append(x)
        ys.append(np.asarray(noise.sample(clean, rng), dtype=np.float64))
    return np.concatenate(xs), np.concatenate(ys)


__all__ = [
    "DEFAULT_POSTERIOR_SAMPLER",
    "DEFAULT_POSTERIOR_STEPS",
    "DEFAULT_SAMPLER_OPTIONS",
    "DEFAULT_STEPS",
    "FIELD_Y_AS",
    "LINEAR_ESTIMATE_FOLDS",
    "LINEAR_Y_AS",
    "Y_AS",
    "AmortisedPosterior",
    "Standardiser",
    "conditioning_spec_for",
    "default_model_config",
    "default_train_config",
    "fixed_steps_train_config",
    "format_summary",
    "from_simulator",
    "network_shape",
    "summarise",
]
