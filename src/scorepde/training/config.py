"""Training hyper-parameters (:class:`TrainConfig`) and how ``"auto"`` settings resolve.

The defaults are the seed's recipe: Adam at 2e-4 with a cosine decay to 1e-6 over 5000 epochs,
batch 1024, gradient clipping at norm 1, EMA decay 0.999. ``"auto"`` means: CUDA if available
else CPU; bf16 autocast on CUDA and fp32 on CPU; ``torch.compile`` on CUDA (when Triton is
installed) and off on CPU; CPU threads: the physical cores this process may run on, divided
among the training processes of this node (:func:`resolve_num_threads`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import warnings
from dataclasses import dataclass

import torch

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
COMPILE_MODES = ("auto", "on", "off")
#: ``mode`` argument of ``torch.compile`` ("reduce-overhead" / "max-autotune" add CUDA graphs).
COMPILE_BACKEND_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainConfig:
    """What :class:`~scorepde.training.trainer.Trainer` needs to train one model.

    epochs: passes over the training set (0: no training; the exported network is its
    initialisation, e.g. a zero-output backbone, which is the exact score of the normalised
    coordinates' Gaussian). batch_size: samples per optimiser step (the last batch
    of an epoch is smaller when ``n_train`` is not a multiple; clipped to ``n_train``).
    learning_rate / min_learning_rate: start and end of the per-step cosine decay (1/step units
    of Adam). warmup_epochs: linear warm-up from ``learning_rate / warmup_steps`` before the
    decay. weight_decay: Adam's L2 penalty (0 = off). grad_clip: maximum global gradient norm
    (0 = no clipping; the norm is recorded either way). ema_decay: per-step decay of the
    weight average; ema_warmup: use ``min(ema_decay, (1 + k) / (10 + k))`` at update ``k``.
    checkpoint_every: epochs between checkpoints (one is always written at the end);
    keep_checkpoints: how many checkpoint folders to keep. seed: initialises the model-free
    random streams (batch order, diffusion times and noise). device / precision / compile: see
    the module docstring. compile_mode: ``torch.compile``'s ``mode`` when compiling (one of
    :data:`COMPILE_BACKEND_MODES`; the CUDA-graph modes pay off for small models on a GPU).
    num_threads: ``torch.set_num_threads`` (process-wide): an integer, ``"auto"`` (see
    :func:`resolve_num_threads`) or None (leave torch's setting alone).
    loss_read_every: steps between host reads of the running loss (progress bar, non-finite
    check); larger avoids per-step GPU synchronisation. val_every: epochs between validation
    losses (the last epoch is always validated; others are NaN in the history). val_batch_size:
    batch for the validation pass (None = ``batch_size``). plot: write ``history.png`` at
    checkpoints and at the end.

    Early stopping (off by default; needs a validation set): patience: stop after this many
    validations in a row (every ``val_every`` epochs) without the validation loss of the EMA
    weights falling below its best so far by more than min_delta (absolute, in units of the
    DSM loss); None = never stop early. restore_best: at the end of training (early stop or
    last epoch) put the EMA weights of the best validation back in place, so the final
    checkpoint and :meth:`~scorepde.training.trainer.Trainer.averaged_model` hold them. The
    learning-rate schedule still spans ``epochs`` (the planned length): a run stopped early
    ends at a higher rate than the cosine's end.
    """

    epochs: int = 5000
    batch_size: int = 1024
    learning_rate: float = 2e-4
    min_learning_rate: float = 1e-6
    warmup_epochs: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = False
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: str = "auto"
    compile_mode: str = "default"
    num_threads: int | str | None = "auto"
    loss_read_every: int = 10
    val_every: int = 1
    val_batch_size: int | None = None
    plot: bool = True
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = False

    def __post_init__(self) -> None:
        _check_int(self, "epochs", minimum=0)
        _check_int(self, "batch_size", minimum=1)
        _check_int(self, "warmup_epochs", minimum=0)
        _check_int(self, "checkpoint_every", minimum=1)
        _check_int(self, "keep_checkpoints", minimum=1)
        _check_int(self, "seed", minimum=0)
        _check_int(self, "loss_read_every", minimum=1)
        _check_int(self, "val_every", minimum=1)
        if self.num_threads is not None and self.num_threads != "auto":
            if isinstance(self.num_threads, str):
                raise ValueError(
                    f"TrainConfig.num_threads must be an integer >= 1, 'auto' or null, got "
                    f"{self.num_threads!r}"
                )
            _check_int(self, "num_threads", minimum=1)
        if self.val_batch_size is not None:
            _check_int(self, "val_batch_size", minimum=1)
        if self.patience is not None:
            _check_int(self, "patience", minimum=1)
        for name in (
            "learning_rate",
            "min_learning_rate",
            "weight_decay",
            "grad_clip",
            "min_delta",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"TrainConfig.{name} must be a number, got {value!r}")
            setattr(self, name, float(value))
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be finite and >= 0, got {value!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate!r}")
        if self.min_learning_rate > self.learning_rate:
            raise ValueError(
                f"TrainConfig.min_learning_rate ({self.min_learning_rate!r}) must not exceed "
                f"learning_rate ({self.learning_rate!r})"
            )
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"TrainConfig.warmup_epochs ({self.warmup_epochs}) must be smaller than "
                f"epochs ({self.epochs})"
            )
        if isinstance(self.ema_decay, bool) or not isinstance(self.ema_decay, int | float):
            raise ValueError(f"TrainConfig.ema_decay must be a number, got {self.ema_decay!r}")
        self.ema_decay = float(self.ema_decay)
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"TrainConfig.ema_decay must be in [0, 1), got {self.ema_decay!r}")
        _check_choice(self, "device", DEVICES, prefix_ok="cuda:")
        _check_choice(self, "precision", PRECISIONS)
        _check_choice(self, "compile", COMPILE_MODES)
        _check_choice(self, "compile_mode", COMPILE_BACKEND_MODES)
        for name in ("ema_warmup", "plot", "restore_best"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"TrainConfig.{name} must be true/false, got {getattr(self, name)!r}"
                )

    def replace(self, **changes: object) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_int(config: TrainConfig, name: str, *, minimum: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"TrainConfig.{name} must be an integer >= {minimum}, got {value!r}")


def _check_choice(
    config: TrainConfig, name: str, allowed: tuple[str, ...], prefix_ok: str | None = None
) -> None:
    value = getattr(config, name)
    if isinstance(value, str) and (
        value in allowed or (prefix_ok is not None and value.startswith(prefix_ok))
    ):
        return
    extra = f" or '{prefix_ok}<index>'" if prefix_ok else ""
    raise ValueError(f"TrainConfig.{name} must be one of {list(allowed)}{extra}, got {value!r}")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` if available else ``cpu``; an explicit CUDA device must exist."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available here")
    return resolved


def resolve_autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain fp32.

    ``"auto"`` -> bf16 on CUDA (when the GPU supports it), fp32 elsewhere. Weights, optimiser
    state and the EMA stay fp32 in every case; only the forward/backward matmuls run in bf16.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    if device.type == "cpu":
        warnings.warn("bf16 autocast on CPU is usually slower than fp32", stacklevel=2)
    return torch.bfloat16


def resolve_compile(mode: str, device: torch.device) -> bool:
    """``"auto"`` -> compile on CUDA when Triton is installed; ``"on"``/``"off"`` as written."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {list(COMPILE_MODES)}, got {mode!r}")
    if mode == "auto":
        return device.type == "cuda" and importlib.util.find_spec("triton") is not None
    return mode == "on"


def usable_physical_cores() -> int:
    """Physical cores this process may run on: its CPU affinity with hyper-thread siblings
    counted once (from ``/sys/devices/system/cpu``), capped by a cgroup v2 CPU quota
    (``/sys/fs/cgroup/cpu.max``) when there is one. Falls back to ``os.cpu_count()``."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = list(range(os.cpu_count() or 1))
    cores: set[str] = set()
    for cpu in allowed:
        siblings = f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
        try:
            with open(siblings, encoding="ascii") as handle:
                cores.add(handle.read().strip())
        except OSError:
            cores.add(str(cpu))
    count = max(1, len(cores))
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as handle:
            quota, period = handle.read().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


def resolve_num_threads(num_threads: int | str | None, processes_per_node: int = 1) -> int | None:
    """The torch thread count for ``TrainConfig.num_threads``; None means leave torch's.

    ``"auto"`` -> ``max(1, usable_physical_cores() // processes_per_node)``: one thread per
    physical core (hyper-threads do not speed up dense kernels), shared out among the
    training processes torchrun started on this node so they do not oversubscribe the cores.
    On a CPU shared with other jobs fewer threads can be faster; set an integer then.
    """
    if num_threads is None:
        return None
    if num_threads == "auto":
        return max(1, usable_physical_cores() // max(1, processes_per_node))
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(
            f"num_threads must be an integer >= 1, 'auto' or None, got {num_threads!r}"
        )
    return num_threads
