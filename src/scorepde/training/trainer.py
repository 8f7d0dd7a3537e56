"""The training loop: denoising score matching with Adam, a cosine schedule, EMA and checkpoints.

One :class:`Trainer` trains one :class:`~scorepde.diffusion.preconditioning.ScoreModel` in one
run folder::

    run_dir/
      history.csv        one row per epoch (epoch, step, train_loss, grad_norm, val_loss, lr,
                         epoch_seconds, wall_seconds); appended and fsync'ed each epoch
      history.png        training loss, gradient norm and validation loss per epoch
      checkpoints/       see ``checkpoint.py``; ``latest`` names the newest one

The batches come from a :class:`~scorepde.training.sources.BatchSource`: tensors resident on
the device (``TensorSource``; every epoch draws a fresh permutation from a seeded generator and
takes index slices of it as batches), weighted groups of data sets (``GroupedSource``, drawn from
the same generator) or fresh simulations (``StreamingSource``, seeded per epoch and batch). The
diffusion times and noise come from a second seeded generator on the device. Both generators,
the source's state (if any), the optimiser, the scheduler, the EMA and the history are
checkpointed, so an interrupted run resumed from its last checkpoint ends with the same weights
as an uninterrupted one (bit-identical on CPU). The conditioning may be a plain ``(n, k)``
tensor or a :class:`~scorepde.conditioning.Conditioning` (vector, fields, labels).

Under ``torchrun`` (``WORLD_SIZE > 1``, see ``distributed.py``) every rank sees the whole
source and receives the same global batch (the same permutation from the shared seed), draws the
same global batch's diffusion times and noise, then keeps its own contiguous rows; DDP averages the
gradients of ``sum of the rank's per-sample losses * world_size / global batch``, which is the
gradient of the global batch's mean loss, so a run's result does not depend on the number of
processes (up to floating-point summation order). Rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import inspect
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from scorepde.configuration import to_dict
from scorepde.diffusion.losses import dsm_loss, sample_diffusion_times
from scorepde.diffusion.preconditioning import ScoreModel
from scorepde.fileio import atomic_write_text
from scorepde.training import distributed
from scorepde.training.checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    load_latest_intact,
    save_checkpoint,
)
from scorepde.training.config import (
    TrainConfig,
    resolve_autocast_dtype,
    resolve_compile,
    resolve_device,
    resolve_num_threads,
)
from scorepde.training.ema import EMA
from scorepde.training.model import ModelConfig, model_config_differences
from scorepde.training.schedule import build_cosine_scheduler
from scorepde.training.sources import (
    BatchSource,
    Condition,
    TensorSource,
    epoch_layout,
    fixed_set,
)

#: Columns of ``history.csv`` (and keys of ``TrainingResult.history``), in order.
HISTORY_COLUMNS = (
    "epoch",
    "step",
    "train_loss",
    "grad_norm",
    "val_loss",
    "lr",
    "epoch_seconds",
    "wall_seconds",
)
#: Offsets added to ``TrainConfig.seed`` for the independent random streams.
_PERMUTATION_STREAM, _NOISE_STREAM, _VALIDATION_STREAM = 0, 1, 2
#: TrainConfig fields that may change between an interrupted run and its resumption without
#: changing the result.
_RESUME_SAFE_FIELDS = {
    "epochs",
    "checkpoint_every",
    "keep_checkpoints",
    "num_threads",
    "loss_read_every",
    "val_every",
    "val_batch_size",
    "plot",
    "compile",
    "compile_mode",
    "device",
}


@dataclass
class TrainingResult:
    """What :meth:`Trainer.fit` returns.

    history: per-epoch columns (see :data:`HISTORY_COLUMNS`), including epochs of earlier
    (resumed) sessions. epochs_done: epochs completed in total. best_val: lowest validation loss
    (NaN without a validation set). wall_time: seconds spent in this call. samples_per_second:
    training samples processed per second of optimisation in this call, by all ranks together
    (excludes validation, checkpoints and plots; NaN if no epoch ran). checkpoint: the newest
    checkpoint folder. best_epoch: the epoch of the lowest validation loss seen by the early
    stopping (None unless ``patience`` or ``restore_best`` is set and a validation ran).
    stopped_epoch: the epoch at which ``patience`` stopped training (None: it ran to
    ``epochs``). restored_best: whether the EMA weights of ``best_epoch`` were put back.
    """

    history: dict[str, list[float]]
    epochs_done: int
    best_val: float
    wall_time: float
    samples_per_second: float
    checkpoint: Path | None = None
    best_epoch: int | None = None
    stopped_epoch: int | None = None
    restored_best: bool = False


@dataclass
class EarlyStopping:
    """The state of early stopping (``TrainConfig.patience`` / ``restore_best``), checkpointed.

    best_val: lowest validation loss so far (NaN before the first validation); best_epoch: its
    epoch (0: none yet); bad_validations: validations in a row without an improvement of more
    than ``min_delta``; stopped_epoch: the epoch at which patience ran out (None: not
    stopped); restored: whether the best EMA weights were put back; best_ema: a copy of the
    EMA weights and buffers at ``best_epoch`` (kept only with ``restore_best``).
    """

    best_val: float = math.nan
    best_epoch: int = 0
    bad_validations: int = 0
    stopped_epoch: int | None = None
    restored: bool = False
    best_ema: dict[str, Tensor] | None = None

    def observe(self, epoch: int, val_loss: float, min_delta: float) -> bool:
        """Record one validation; True if it is the new best."""
        if math.isnan(self.best_val) or val_loss < self.best_val - min_delta:
            self.best_val, self.best_epoch, self.bad_validations = val_loss, epoch, 0
            return True
        self.bad_validations += 1
        return False

    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors for ``trainer_state.pt``."""
        return {
            "best_val": float(self.best_val),
            "best_epoch": int(self.best_epoch),
            "bad_validations": int(self.bad_validations),
            "stopped_epoch": self.stopped_epoch,
            "restored": bool(self.restored),
            "best_ema": self.best_ema,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> EarlyStopping:
        """Inverse of :meth:`state_dict`."""
        return cls(
            best_val=float(state["best_val"]),
            best_epoch=int(state["best_epoch"]),
            bad_validations=int(state["bad_validations"]),
            stopped_epoch=None if state["stopped_epoch"] is None else int(state["stopped_epoch"]),
            restored=bool(state.get("restored", False)),
            best_ema=state.get("best_ema"),
        )


#: The buffers (e.g. fixed Fourier frequencies) are synchronised once, when DDP wraps the model,
#: not before every forward pass; the keyword was renamed in torch 2.13.
_NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}
)


class _NoiseNetwork(nn.Module):
    """``ScoreModel.predict_noise`` as ``forward``: DDP synchronises gradients only for calls
    that go through the wrapped module's ``forward``."""

    def __init__(self, model: ScoreModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, t: Tensor, cond: Condition) -> Tensor:
        return self.model.predict_noise(x, t, cond)


class _NoisePredictor:
    """What ``dsm_loss`` calls: a process and a ``predict_noise`` (here DDP's forward)."""

    def __init__(self, model: ScoreModel, predict_noise: Callable[..., Tensor]) -> None:
        self.process = model.process
        self.predict_noise = predict_noise


class Trainer:
    """Trains a score model with denoising score matching; see the module docstring.

    Args:
        model: the score model to train (moved to the configured device; trained in place).
        config: the training recipe.
        run_dir: folder for the history, plots and checkpoints (created).
        metadata: saved with every checkpoint (e.g. ``{"problem": "battery",
            "channel_names": [...], "condition_names": [...]}``); must be YAML-serialisable.
        model_config: how ``model`` was built; defaults to ``model.model_config`` as set by
            :func:`~scorepde.training.model.build_score_model`.
        normaliser: the fields' normaliser (global or conditional), saved with every checkpoint.
        condition_encoder: ``ConditionEncoder`` of the conditions, saved with every checkpoint.
    """

    def __init__(
        self,
        model: ScoreModel,
        config: TrainConfig,
        run_dir: str | Path,
        *,
        metadata: dict[str, Any] | None = None,
        model_config: ModelConfig | None = None,
        normaliser: Any | None = None,
        condition_encoder: Any | None = None,
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        model_config = model_config or getattr(model, "model_config", None)
        if not isinstance(model_config, ModelConfig):
            raise ValueError(
                "Trainer needs the model's ModelConfig to write loadable checkpoints: build the "
                "model with build_score_model(config) or pass model_config=..."
            )
        self.config = config
        self.model_config = model_config
        self.run_dir = Path(run_dir)
        self.metadata = dict(metadata or {})
        self.normaliser = normaliser
        self.condition_encoder = condition_encoder
        self.distributed = distributed.setup()
        world_size = self.distributed.world_size
        if config.batch_size % world_size:
            suggestion = math.ceil(config.batch_size / world_size) * world_size
            raise ValueError(
                f"TrainConfig.batch_size = {config.batch_size} is the global batch and must be "
                f"divisible by the number of processes ({world_size}, from torchrun); use a "
                f"multiple of {world_size}, e.g. {suggestion}"
            )
        threads = resolve_num_threads(config.num_threads, self.distributed.local_world_size)
        if threads is not None:
            torch.set_num_threads(threads)
        self.device = distributed.rank_device(
            resolve_device(config.device), self.distributed, config.device
        )
        self.autocast_dtype = resolve_autocast_dtype(config.precision, self.device)
        self.use_compile = resolve_compile(config.compile, self.device)
        self.model = model.to(self.device)
        self._ddp: DistributedDataParallel | None = None
        if self.distributed.is_distributed:
            # broadcasts rank 0's parameters and buffers, so every rank starts from them
            self._ddp = DistributedDataParallel(
                _NoiseNetwork(self.model),
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                **_NO_FORWARD_BUFFER_SYNC,
            )
        self.ema = EMA(self.model, config.ema_decay, warmup=config.ema_warmup)
        self._ema_model = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            fused=self.device.type == "cuda",
        )
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self.permutation_generator = torch.Generator(device="cpu")
        self.permutation_generator.manual_seed(config.seed * 1000 + _PERMUTATION_STREAM)
        self.noise_generator = torch.Generator(device=self.device)
        self.noise_generator.manual_seed(config.seed * 1000 + _NOISE_STREAM)
        self.epoch = 0
        self.step = 0
        self.history: dict[str, list[float]] = {name: [] for name in HISTORY_COLUMNS}
        self._loss_fn: Callable[..., Tensor] = self._build_loss_fn()
        self._data_summary: dict[str, Any] = {}
        self._source: BatchSource | None = None
        self.early_stopping = EarlyStopping()

    @property
    def _tracks_best(self) -> bool:
        return self.config.patience is not None or self.config.restore_best

    # ------------------------------------------------------------------ public API

    @property
    def checkpoint_dir(self) -> Path:
        """``run_dir / "checkpoints"``."""
        return self.run_dir / "checkpoints"

    def fit(
        self,
        x_train: Tensor | BatchSource | None = None,
        cond_train: Condition = None,
        x_val: Tensor | BatchSource | None = None,
        cond_val: Condition = None,
        *,
        source: BatchSource | None = None,
        val_source: BatchSource | None = None,
        resume: bool = True,
        progress: bool = True,
        callback: Callable[[int, dict[str, float]], None] | None = None,
    ) -> TrainingResult:
        """Train for ``config.epochs`` epochs in all (continuing a checkpointed run if any).

        Args:
            x_train: normalised training fields ``(n, *shape)``, e.g. ``(n, C, N)`` or
                ``(n, C, H, W)`` (wrapped in a :class:`~scorepde.training.sources.TensorSource`),
                or a :class:`~scorepde.training.sources.BatchSource` (then ``cond_train`` is
                None); or None when ``source`` is given.
            cond_train: encoded conditions ``(n, k)``, a
                :class:`~scorepde.conditioning.Conditioning` of ``n`` rows (vector, fields,
                labels), or None for an unconditional model.
            x_val, cond_val: held-out validation set (same layout), a ``BatchSource`` in place
                of ``x_val``, or None. A source other than a ``TensorSource`` is drawn once
                (its epoch 0, deterministically) into a fixed set.
            source, val_source: the training and validation sources, as keywords (instead of
                ``x_train`` / ``x_val``).
            resume: continue from ``run_dir/checkpoints/latest`` if it exists. With False, a
                run_dir that already has checkpoints is an error (nothing is overwritten).
            progress: show a tqdm bar (loss, validation loss, ETA); rank 0 only.
            callback: called after each epoch (after any checkpoint) with the epoch number
                and that epoch's history row; an exception raised there stops training. Under
                torchrun it runs on every rank (with identical rows): raise on all or none.

        With ``config.patience`` set, training stops once that many validations in a row
        brought no improvement (see :class:`~scorepde.training.config.TrainConfig`); with
        ``config.restore_best`` the EMA weights of the best validation are put back at the end,
        before the last checkpoint is written. Both need a validation set.

        Returns:
            :class:`TrainingResult`. Raises ``FloatingPointError`` naming the epoch when the
            loss or gradient norm becomes non-finite (no checkpoint is written for that epoch).
        """
        start_time = time.perf_counter()
        cfg = self.config
        train = _resolve_source(x_train, cond_train, source, "train").to(self.device)
        val = _resolve_source(x_val, cond_val, val_source, "val", optional=True)
        x_val_set: Tensor | None = None
        cond_val_set: Condition = None
        if val is not None:
            val = val.to(self.device)
            if val.sample_shape != train.sample_shape:
                raise ValueError(
                    f"x_val samples have shape {val.sample_shape}, x_train samples "
                    f"{train.sample_shape}; they must match"
                )
            if val.condition_spec is None and train.condition_spec is not None:
                raise ValueError(
                    f"the validation set has no conditioning but the training set has "
                    f"{train.condition_spec}; give cond_val"
                )
            x_val_set, cond_val_set = fixed_set(
                val,
                cfg.val_batch_size or cfg.batch_size,
                seed=cfg.seed * 1000 + _VALIDATION_STREAM,
            )
        if self._tracks_best and val is None:
            raise ValueError(
                f"TrainConfig.patience = {cfg.patience!r} / restore_best = {cfg.restore_best!r} "
                "need a validation set (x_val or val_source); none was given"
            )
        n_train = train.samples_per_epoch
        world_size = self.distributed.world_size
        if n_train < world_size:
            raise ValueError(
                f"x_train has {n_train} samples, fewer than the {world_size} processes; every "
                "process needs at least one sample per batch"
            )
        batch_size = min(cfg.batch_size, n_train)
        # a last batch smaller than the world size is dropped (every rank needs >= 1 row);
        # with one process that never happens and steps_per_epoch = ceil(n_train / batch_size)
        sizes = epoch_layout(n_train, batch_size, world_size)
        steps_per_epoch = len(sizes)
        samples_per_epoch = sum(sizes)
        rest = n_train - samples_per_epoch
        if rest and self.distributed.is_main:
            warnings.warn(
                f"{n_train} training samples with global batch {batch_size} leave a last batch "
                f"of {rest} < {world_size} processes: it is dropped every epoch (a different "
                "permutation each epoch, so no sample is left out for good)",
                stacklevel=2,
            )
        # epochs = 0 trains nothing; the schedule still needs a length
        total_steps = max(cfg.epochs * steps_per_epoch, 1)
        self.scheduler = build_cosine_scheduler(
            self.optimizer,
            total_steps=total_steps,
            learning_rate=cfg.learning_rate,
            min_learning_rate=cfg.min_learning_rate,
            warmup_steps=cfg.warmup_epochs * steps_per_epoch,
        )
        spec = train.condition_spec
        self.metadata.setdefault("sample_shape", list(train.sample_shape))
        self.metadata.setdefault("condition_dim", 0 if spec is None else spec.vector_dim)
        if spec is not None and not train.plain_condition:
            self.metadata.setdefault("conditioning", spec.to_dict())
        self._source = train
        self._data_summary = {
            **train.summary(),
            "batch_size": batch_size,
            "steps_per_epoch": steps_per_epoch,
        }

        resumed = False
        loaded, skipped = (
            load_latest_intact(self.run_dir, map_location=self.device) if resume else (None, [])
        )
        for folder, reason in skipped:
            warnings.warn(
                f"skipped checkpoint {folder}, which cannot be read ({reason}); resuming from "
                f"{loaded.folder if loaded is not None else 'none'}",
                RuntimeWarning,
                stacklevel=2,
            )
        if loaded is not None:
            self._restore(loaded.folder, loaded)
            resumed = True
        elif not resume and latest_checkpoint(self.run_dir) is not None:
            raise CheckpointError(
                f"resume=False but {self.checkpoint_dir} already holds checkpoints (latest: "
                f"{latest_checkpoint(self.run_dir)}); pass resume=True to continue that run, or "
                "use a new run_dir (or delete the old checkpoints) to start afresh"
            )
        if self.distributed.is_distributed:
            epochs = self.distributed.all_gather_object(self.epoch)
            if len(set(epochs)) > 1:
                raise CheckpointError(
                    f"the ranks resumed {self.run_dir} at different epochs {epochs}: run_dir "
                    "must be on a file system that every node sees"
                )
        if self.distributed.is_main:
            self._write_history_file()

        from tqdm.auto import tqdm

        bar = tqdm(
            total=cfg.epochs,
            initial=self.epoch,
            unit="epoch",
            disable=not progress or not self.distributed.is_main,
            dynamic_ncols=True,
            desc="training" + (" (resumed)" if resumed else ""),
        )
        train_seconds = 0.0
        samples_done = 0
        wall_before = self.history["wall_seconds"][-1] if self.history["wall_seconds"] else 0.0
        best_val = _nanmin(self.history["val_loss"])
        early = self.early_stopping
        try:
            while self.epoch < cfg.epochs and early.stopped_epoch is None:
                epoch = self.epoch + 1
                epoch_start = time.perf_counter()
                train_loss, grad_norm, lr = self._train_epoch(epoch, train, batch_size, bar)
                train_seconds += time.perf_counter() - epoch_start
                samples_done += samples_per_epoch
                self.epoch = epoch
                val_loss = math.nan
                if x_val_set is not None and (epoch % cfg.val_every == 0 or epoch == cfg.epochs):
                    val_loss = self.validation_loss(x_val_set, cond_val_set)
                    if math.isnan(best_val) or val_loss < best_val:
                        best_val = val_loss
                    if self._tracks_best:
                        self._observe_validation(epoch, val_loss)
                if cfg.patience is not None and early.bad_validations >= cfg.patience:
                    early.stopped_epoch = epoch
                last = epoch == cfg.epochs or early.stopped_epoch is not None
                if last and cfg.restore_best:
                    self._restore_best_ema()
                row = {
                    "epoch": epoch,
                    "step": self.step,
                    "train_loss": train_loss,
                    "grad_norm": grad_norm,
                    "val_loss": val_loss,
                    "lr": lr,
                    "epoch_seconds": time.perf_counter() - epoch_start,
                    "wall_seconds": wall_before + time.perf_counter() - start_time,
                }
                self._append_history(row)
                if epoch % cfg.checkpoint_every == 0 or last:
                    self.save_checkpoint()
                    self.plot_history()
                bar.update(1)
                bar.set_postfix(_postfix(train_loss, val_loss), refresh=False)
                if callback is not None:
                    callback(epoch, row)
        finally:
            bar.close()
        if cfg.epochs == 0 and latest_checkpoint(self.run_dir) is None:
            self.save_checkpoint()  # the untrained network, so that export and resume work
        latest = latest_checkpoint(self.run_dir)
        return TrainingResult(
            history={k: list(v) for k, v in self.history.items()},
            epochs_done=self.epoch,
            best_val=best_val,
            wall_time=time.perf_counter() - start_time,
            samples_per_second=samples_done / train_seconds if train_seconds > 0 else math.nan,
            checkpoint=latest,
            best_epoch=early.best_epoch if self._tracks_best and early.best_epoch > 0 else None,
            stopped_epoch=early.stopped_epoch,
            restored_best=early.restored,
        )

    def _observe_validation(self, epoch: int, val_loss: float) -> None:
        """Early stopping's bookkeeping for one validation (copies the EMA weights on a new
        best when ``restore_best`` is set)."""
        improved = self.early_stopping.observe(epoch, val_loss, self.config.min_delta)
        if improved and self.config.restore_best:
            self.early_stopping.best_ema = {
                **{f"shadow.{k}": v.detach().clone() for k, v in self.ema.shadow.items()},
                **{f"buffers.{k}": v.detach().clone() for k, v in self.ema.buffers.items()},
            }

    @torch.no_grad()
    def _restore_best_ema(self) -> None:
        """Put the EMA weights of the best validation back (nothing if there was none)."""
        best = self.early_stopping.best_ema
        if best is None:
            return
        for name, value in self.ema.shadow.items():
            value.copy_(best[f"shadow.{name}"])
        for name, value in self.ema.buffers.items():
            value.copy_(best[f"buffers.{name}"])
        self.early_stopping.restored = True

    @torch.no_grad()
    def validation_loss(self, x_val: Tensor, cond_val: Condition) -> float:
        """Mean DSM loss of the EMA weights on ``(x_val, cond_val)``, comparable across epochs.

        ``x_val (n, *shape)`` on the trainer's device; ``cond_val`` an ``(n, k)`` tensor, a
        :class:`~scorepde.conditioning.Conditioning` of ``n`` rows, or None.

        The diffusion times are a fixed stratified grid over ``[t_min, t_max]`` (one per sample,
        in a fixed shuffled order) and the noise comes from a generator re-seeded on every call,
        so only the weights change between evaluations.
        """
        self.ema.copy_to(self._ema_model)
        process = self._ema_model.process
        n_val = x_val.shape[0]
        order = torch.randperm(
            n_val,
            generator=torch.Generator().manual_seed(self.config.seed * 1000 + _VALIDATION_STREAM),
        )
        fraction = (order.to(torch.float64) + 0.5) / n_val
        times = (process.t_min + (process.t_max - process.t_min) * fraction).to(
            device=x_val.device, dtype=x_val.dtype
        )
        generator = torch.Generator(device=x_val.device)
        generator.manual_seed(self.config.seed * 1000 + _VALIDATION_STREAM)
        batch = self.config.val_batch_size or self.config.batch_size
        total = torch.zeros((), device=x_val.device, dtype=torch.float64)
        for start in range(0, n_val, batch):
            stop = min(start + batch, n_val)
            with self._autocast():
                losses = dsm_loss(
                    self._ema_model,
                    x_val[start:stop],
                    None if cond_val is None else cond_val[start:stop],
                    generator=generator,
                    t=times[start:stop],
                )
            total += losses.double().sum()
        return float(total) / n_val

    def save_checkpoint(self) -> Path:
        """Write a checkpoint for the current epoch (see ``checkpoint.py``); returns its folder.

        Under torchrun rank 0 writes it and every rank waits until it is complete."""
        if not self.distributed.is_main:
            self.distributed.barrier()
            return self.checkpoint_dir / checkpoint_name(self.epoch)
        folder = save_checkpoint(
            self.run_dir,
            self.epoch,
            model=self.model,
            ema=self.ema,
            model_config=self.model_config,
            train_config=self.config,
            metadata=self._full_metadata(),
            normaliser=self.normaliser,
            trainer_state=self._trainer_state(),
            keep=self.config.keep_checkpoints,
        )
        self.distributed.barrier()
        return folder

    def plot_history(self) -> Path | None:
        """Write ``run_dir/history.png`` (train loss, gradient norm, validation loss); None if
        plotting is off, nothing was recorded yet, or this is not rank 0."""
        if not self.config.plot or not self.history["epoch"] or not self.distributed.is_main:
            return None
        from scorepde.plotting import plot_training_history

        curves = {
            "epoch": self.history["epoch"],
            "train_loss": self.history["train_loss"],
            "grad_norm": self.history["grad_norm"],
        }
        if any(math.isfinite(v) for v in self.history["val_loss"]):
            curves["val_loss"] = self.history["val_loss"]
        return plot_training_history(
            curves, self.run_dir / "history.png", title=self.metadata.get("problem")
        )

    def averaged_model(self) -> ScoreModel:
        """A copy of the model holding the EMA weights (eval mode, no gradients)."""
        self.ema.copy_to(self._ema_model)
        return self._ema_model

    # ------------------------------------------------------------------ the epoch

    def _autocast(self) -> Any:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def _build_loss_fn(self) -> Callable[..., Tensor]:
        """``(x0, t, noise, cond) -> per-sample losses (B,)``: the whole forward of a step
        (perturbation, network, squared error), compiled when ``compile`` resolves to on; its
        backward is then compiled too."""
        predictor: Any = self.model
        if self._ddp is not None:
            predictor = _NoisePredictor(self.model, self._ddp)

        def sample_losses(x0: Tensor, t: Tensor, noise: Tensor, cond: Condition) -> Tensor:
            return dsm_loss(predictor, x0, cond, t=t, noise=noise)

        if self.use_compile:
            return torch.compile(sample_losses, mode=self.config.compile_mode)
        return sample_losses

    def _batch_loss(self, x: Tensor, cond: Condition) -> Tensor:
        """The loss whose gradient (averaged over the ranks by DDP) is the gradient of the mean
        DSM loss over the global batch ``(x (b, *shape), cond)``.

        The times and noise of the whole global batch are drawn on every rank from the shared
        generator (the same draws as a single process), and each rank keeps its own rows.
        """
        global_batch = x.shape[0]
        t = sample_diffusion_times(
            self.model.process,
            global_batch,
            generator=self.noise_generator,
            device=x.device,
            dtype=x.dtype,
        )
        noise = torch.randn(
            (global_batch, *x.shape[1:]),
            generator=self.noise_generator,
            device=x.device,
            dtype=x.dtype,
        )
        if self.distributed.is_distributed:
            rows = self.distributed.shard(global_batch)
            x, t, noise = x[rows], t[rows], noise[rows]
            cond = None if cond is None else cond[rows]
        with self._autocast():
            losses = self._loss_fn(x, t, noise, cond).float()
        if not self.distributed.is_distributed:
            return losses.mean()
        return losses.sum() * (self.distributed.world_size / global_batch)

    def _global_means(self, loss_sum: Tensor, grad_sum: Tensor, steps: int) -> tuple[float, float]:
        """Mean loss and mean gradient norm per step over all ranks (one host read)."""
        if not self.distributed.is_distributed:
            return float(loss_sum) / steps, float(grad_sum) / steps
        totals = self.distributed.all_reduce_sum(torch.stack([loss_sum, grad_sum]).double())
        totals = totals.cpu() / (self.distributed.world_size * steps)
        return float(totals[0]), float(totals[1])

    def _train_epoch(
        self, epoch: int, source: BatchSource, batch_size: int, bar: Any
    ) -> tuple[float, float, float]:
        """One epoch of ``source``'s batches; returns (mean loss, mean pre-clip gradient norm,
        last lr)."""
        cfg = self.config
        assert self.scheduler is not None
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float32)
        grad_sum = torch.zeros((), device=self.device, dtype=torch.float32)
        steps = 0
        lr = self.optimizer.param_groups[0]["lr"]
        batches = source.batches(
            epoch,
            batch_size,
            self.permutation_generator,
            min_last_batch=self.distributed.world_size,
        )
        for x, cond in batches:
            loss = self._batch_loss(x, cond)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = _clip_gradients(params, cfg.grad_clip)
            lr = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            self.scheduler.step()
            self.ema.update(self.model)
            self.step += 1
            steps += 1
            loss_sum += loss.detach()
            grad_sum += grad_norm.detach().float()
            if steps % cfg.loss_read_every == 0:
                running, running_grad = self._global_means(loss_sum, grad_sum, steps)
                self._check_finite(running, running_grad, epoch)
                bar.set_postfix(_postfix(running, math.nan), refresh=False)
        train_loss, grad_norm_mean = self._global_means(loss_sum, grad_sum, steps)
        self._check_finite(train_loss, grad_norm_mean, epoch)
        return train_loss, grad_norm_mean, float(lr)

    def _check_finite(self, loss: float, grad_norm: float, epoch: int) -> None:
        if math.isfinite(loss) and math.isfinite(grad_norm):
            return
        latest = latest_checkpoint(self.run_dir)
        raise FloatingPointError(
            f"training diverged at epoch {epoch} (step {self.step}): mean loss {loss!r}, "
            f"gradient norm {grad_norm!r}. Nothing was saved for this epoch; the last good "
            f"checkpoint is {latest or 'none'}. Lower learning_rate, keep grad_clip > 0, or "
            "check the data for extreme values."
        )

    # ------------------------------------------------------------------ state

    def _full_metadata(self) -> dict[str, Any]:
        metadata = dict(self.metadata)
        if self.condition_encoder is not None:
            encoder = self.condition_encoder
            metadata["condition_encoder"] = (
                encoder if isinstance(encoder, dict) else encoder.to_dict()
            )
        return metadata

    def _trainer_state(self) -> dict[str, Any]:
        if self.scheduler is None:
            raise RuntimeError("nothing to checkpoint before fit() has set up the schedule")
        rng: dict[str, Any] = {
            "torch_cpu": torch.get_rng_state(),
            "permutation": self.permutation_generator.get_state(),
            "noise": self.noise_generator.get_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["torch_cuda"] = torch.cuda.get_rng_state_all()
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": {
                "num_updates": self.ema.num_updates,
                "decay": self.ema.decay,
                "warmup": self.ema.warmup,
            },
            "rng": rng,
            "history": {k: list(map(float, v)) for k, v in self.history.items()},
            "data": dict(self._data_summary),
            "world_size": self.distributed.world_size,
        }
        if self._tracks_best:  # absent otherwise: the state stays as before early stopping
            state["early_stopping"] = self.early_stopping.state_dict()
        source_state = {} if self._source is None else self._source.state_dict()
        if source_state:  # stateless sources add nothing: the state stays as before sources
            state["source"] = source_state
        return state

    def _restore(self, folder: Path, loaded: LoadedCheckpoint | None = None) -> None:
        """Load weights, EMA, optimiser, scheduler, generators and history from ``folder``
        (``loaded``: the checkpoint already read from it)."""
        if loaded is None:
            loaded = load_checkpoint(folder, map_location=self.device)
        differences = model_config_differences(loaded.model_config, self.model_config)
        if differences:
            raise CheckpointError(
                f"checkpoint {folder} was written for a different model config "
                f"({'; '.join(differences[:5])}); train it in another run_dir"
            )
        saved_train = to_dict(loaded.train_config)
        current_train = to_dict(self.config)
        changed = sorted(
            k
            for k in current_train
            if saved_train.get(k) != current_train[k] and k not in _RESUME_SAFE_FIELDS
        )
        if changed:
            warnings.warn(
                f"resuming {folder} with changed training settings {changed}: the result will "
                "differ from an uninterrupted run",
                stacklevel=3,
            )
        state = loaded.trainer_state
        if state.get("data") != self._data_summary:
            warnings.warn(
                f"resuming {folder}: the training set or batching changed ({state.get('data')} "
                f"-> {self._data_summary}); batch order will differ from an uninterrupted run",
                stacklevel=3,
            )
        try:
            self.model.load_state_dict(loaded.model_state)
            self.ema.load_state_dict(
                {
                    "shadow": {k: loaded.ema_state[k] for k in self.ema.shadow},
                    "buffers": {k: v for k, v in loaded.ema_state.items() if k in self.ema.buffers},
                    **state["ema"],
                }
            )
            self.optimizer.load_state_dict(state["optimizer"])
            assert self.scheduler is not None
            self.scheduler.load_state_dict(state["scheduler"])
            self.permutation_generator.set_state(state["rng"]["permutation"])
            self.noise_generator.set_state(state["rng"]["noise"])
            torch.set_rng_state(state["rng"]["torch_cpu"])
            if self._source is not None:
                self._source.load_state_dict(state.get("source", {}))
            if "torch_cuda" in state["rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["rng"]["torch_cuda"])
        except (KeyError, RuntimeError, ValueError) as error:
            raise CheckpointError(
                f"checkpoint {folder} does not fit this trainer: {error}"
            ) from error
        # the scheduler's lr for the next step (LambdaLR.load_state_dict does not set it)
        for group, lr in zip(
            self.optimizer.param_groups, self.scheduler.get_last_lr(), strict=True
        ):
            group["lr"] = lr
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.history = {name: list(state["history"].get(name, [])) for name in HISTORY_COLUMNS}
        if "early_stopping" in state:
            self.early_stopping = EarlyStopping.from_state_dict(state["early_stopping"])
        elif self._tracks_best:
            # a run begun without early stopping: start counting from its history
            self.early_stopping = EarlyStopping()
            for epoch, loss in zip(self.history["epoch"], self.history["val_loss"], strict=True):
                if math.isfinite(loss):
                    self.early_stopping.observe(int(epoch), loss, self.config.min_delta)

    # ------------------------------------------------------------------ history file

    @property
    def history_path(self) -> Path:
        """``run_dir / "history.csv"``."""
        return self.run_dir / "history.csv"

    def _write_history_file(self) -> None:
        """Rewrite ``history.csv`` atomically from ``self.history`` (header + rows so far)."""
        lines = [",".join(HISTORY_COLUMNS)]
        for i in range(len(self.history["epoch"])):
            lines.append(_csv_row({k: self.history[k][i] for k in HISTORY_COLUMNS}))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.history_path, "\n".join(lines) + "\n")

    def _append_history(self, row: dict[str, float]) -> None:
        for name in HISTORY_COLUMNS:
            self.history[name].append(float(row[name]))
        if not self.distributed.is_main:
            return
        with open(self.history_path, "a", encoding="utf-8") as handle:
            handle.write(_csv_row(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def _resolve_source(
    x: Tensor | BatchSource | None,
    cond: Condition,
    source: BatchSource | None,
    which: str,
    *,
    optional: bool = False,
) -> BatchSource | None:
    """The source of ``fit``'s ``x_<which>`` / ``cond_<which>`` / ``source`` arguments."""
    keyword = "source" if which == "train" else "val_source"
    if source is not None:
        if x is not None or cond is not None:
            raise ValueError(
                f"fit: give either x_{which} (and cond_{which}) or {keyword}=, not both"
            )
        if not isinstance(source, BatchSource):
            raise TypeError(f"fit: {keyword} must be a BatchSource, got {type(source).__name__}")
        return source
    if isinstance(x, BatchSource):
        if cond is not None:
            raise ValueError(
                f"fit: x_{which} is a {type(x).__name__}, which brings its own conditioning; "
                f"cond_{which} must be None"
            )
        return x
    if x is None:
        if cond is not None:
            raise ValueError(f"cond_{which} was given without x_{which}")
        if optional:
            return None
        raise ValueError(f"fit needs training data: x_train (and cond_train) or {keyword}=")
    return TensorSource(x, cond, name=which)


def read_history(path: str | Path) -> dict[str, list[float]]:
    """Read a ``history.csv`` back into columns (floats; empty cells are NaN)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"history file not found: {path}")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {name: [] for name in HISTORY_COLUMNS}
    return {
        name: [float(r[name]) if r[name] not in ("", None) else math.nan for r in rows]
        for name in rows[0]
    }


def _csv_row(row: dict[str, float]) -> str:
    cells = []
    for name in HISTORY_COLUMNS:
        value = row[name]
        if name in ("epoch", "step"):
            cells.append(str(int(value)))
        else:
            cells.append(repr(float(value)))
    return ",".join(cells)


def _clip_gradients(params: list[Tensor], max_norm: float) -> Tensor:
    """Global L2 norm of the gradients before clipping (a device tensor; no host sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    # max_norm = inf: the norm is computed and the gradients are left as they are
    return torch.nn.utils.clip_grad_norm_(
        params, max_norm if max_norm > 0 else math.inf, foreach=True
    )


def _nanmin(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return min(finite) if finite else math.nan


def _postfix(loss: float, val_loss: float) -> dict[str, str]:
    out = {"loss": f"{loss:.4g}"}
    if math.isfinite(val_loss):
        out["val"] = f"{val_loss:.4g}"
    return out
