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
deviation over the training set, :class:`Standardiser`); both are saved with the model. The
network sees ``x`` as ``(B, 1, d)`` for vectors (``d = prod(x_shape)``; fields ``(C, N)`` keep
their shape) and the flattened standardised ``y`` ``(B, prod(y_shape))`` as its condition.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scorepde.diffusion.preconditioning import ScoreModel
from scorepde.inverse.noise_models import NoiseModel
from scorepde.nets.registry import BackboneConfig
from scorepde.training.checkpoint import load_trained_model, save_trained_model
from scorepde.training.config import TrainConfig, resolve_device
from scorepde.training.model import SAMPLERS, ModelConfig, build_score_model
from scorepde.training.trainer import Trainer

INVERSE_FORMAT = "scorepde.inverse/1"

#: Default total steps per sampler (``steps=None``) and extra default options.
DEFAULT_STEPS: dict[str, int] = {
    "euler_maruyama": 500,
    "predictor_corrector": 500,
    "ode_heun": 100,
    "ode_heun_edm": 50,
    "heun_churn": 50,
    "ode_dpm2m": 49,
    "annealed_langevin": 2000,
}
DEFAULT_SAMPLER_OPTIONS: dict[str, dict[str, Any]] = {
    # 20 levels x 100 steps, step 5e-5 at r_L = 0.01: ~2 % variance excess on a Gaussian
    # (see sampling/langevin.py and tests/test_sampling_langevin.py).
    "annealed_langevin": {"levels": 20, "step_size": 5e-5},
}
#: Target number of optimiser steps of the default training recipe.
DEFAULT_TRAINING_STEPS = 20_000


@dataclass(eq=False)
class Standardiser:
    """Per-component ``z = (v - mean) / scale``; ``mean``, ``scale`` have one sample's shape.

    A component whose standard deviation is below ``floor * max(1, |mean|)`` (constant over
    the training set) gets ``scale = 1``, so nothing is divided by ~0.
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, floor: float = 1e-12) -> Standardiser:
        """Fit to ``values (n, *shape)``, ``n >= 1``."""
        values = np.asarray(values, dtype=np.float64)
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        scale = np.where(std > floor * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return cls(mean=mean, scale=scale)

    @property
    def shape(self) -> tuple[int, ...]:
        """One sample's shape."""
        return tuple(self.mean.shape)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """``(..., *shape)`` physical -> standardised, float64."""
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.scale

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """``(..., *shape)`` standardised -> physical, float64."""
        return np.asarray(z, dtype=np.float64) * self.scale + self.mean

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (YAML-ready; floats round-trip exactly)."""
        return {
            "shape": list(self.shape),
            "mean": self.mean.ravel().tolist(),
            "scale": self.scale.ravel().tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Standardiser:
        """Inverse of :meth:`to_dict`."""
        shape = tuple(int(s) for s in data["shape"])
        mean = np.asarray(data["mean"], dtype=np.float64).reshape(shape)
        scale = np.asarray(data["scale"], dtype=np.float64).reshape(shape)
        if not (np.all(np.isfinite(mean)) and np.all(scale > 0)):
            raise ValueError("Standardiser: mean must be finite and scale > 0")
        return cls(mean=mean, scale=scale)


def network_shape(x_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape the network sees for one sample: ``(1, d)`` for scalars/vectors, else ``x_shape``."""
    if len(x_shape) <= 1:
        return (1, math.prod(x_shape))
    return tuple(x_shape)


def default_model_config(x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> ModelConfig:
    """MLP backbone sized to ``x`` (``data_dim = prod(x_shape)``, ``cond_dim = prod(y_shape)``,
    width ``clip(8 (d + k), 128, 512)``, depth 3), VE process (``sigma`` 0.01 .. 50), EDM
    preconditioning with ``sigma_data = 1`` (standardised data)."""
    d, k = math.prod(x_shape), math.prod(y_shape)
    hidden = int(min(512, max(128, 8 * (d + k))))
    return ModelConfig(
        backbone=BackboneConfig(
            name="mlp", options={"data_dim": d, "cond_dim": k, "hidden": hidden, "depth": 3}
        ),
        process={"name": "ve", "sigma_min": 0.01, "sigma_max": 50.0},
        sigma_data=1.0,
        parametrisation="edm",
    )


def default_train_config(n_train: int, seed: int = 0) -> TrainConfig:
    """Adam at 1e-3 with cosine decay to 1e-5, batch 512, EMA 0.999, epochs chosen for about
    :data:`DEFAULT_TRAINING_STEPS` optimiser steps, one checkpoint at the end, no plot."""
    batch = min(512, n_train)
    epochs = max(1, math.ceil(DEFAULT_TRAINING_STEPS / math.ceil(n_train / batch)))
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
        metadata: training summary (sizes, losses, timings).
    """

    def __init__(self) -> None:
        self.score_model: ScoreModel | None = None
        self.model_config: ModelConfig | None = None
        self.x_standardiser: Standardiser | None = None
        self.y_standardiser: Standardiser | None = None
        self.x_shape: tuple[int, ...] = ()
        self.y_shape: tuple[int, ...] = ()
        self.metadata: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = "trained" if self.score_model is not None else "untrained"
        return f"AmortisedPosterior({state}, x_shape={self.x_shape}, y_shape={self.y_shape})"

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
    ) -> AmortisedPosterior:
        """Train on pairs ``x (n, *x_shape)``, ``y (n, *y_shape)`` (physical units); returns self.

        run_dir: the trainer's folder (history, checkpoints; the checkpoints carry the
        standardisers, so ``AmortisedPosterior.load(run_dir)`` works). model: defaults to
        :func:`default_model_config`. training: defaults to :func:`default_train_config`.
        validation_fraction: share of the pairs held out for the validation loss (0: none).
        seed: the train/validation split, the weight initialisation and (for the default
        recipe) the trainer's streams. resume: continue an interrupted run in ``run_dir``.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
            raise ValueError(
                f"x {x.shape} and y {y.shape} must be (n, *x_shape) and (n, *y_shape) with the "
                "same n >= 2"
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

        self.x_shape, self.y_shape = tuple(x.shape[1:]), tuple(y.shape[1:])
        self.x_standardiser = Standardiser.fit(x[train_index])
        self.y_standardiser = Standardiser.fit(y[train_index])
        config = model or default_model_config(self.x_shape, self.y_shape)
        training = training or default_train_config(len(train_index), seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            score_model = build_score_model(config)

        def tensors(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            assert self.x_standardiser is not None and self.y_standardiser is not None
            xs = self.x_standardiser.transform(x[index]).reshape(len(index), *self._net_shape)
            ys = self.y_standardiser.transform(y[index]).reshape(len(index), -1)
            return torch.from_numpy(xs).float(), torch.from_numpy(ys).float()

        x_train, y_train = tensors(train_index)
        x_val, y_val = tensors(val_index) if n_val > 0 else (None, None)
        self.model_config = config
        self.metadata = {"n_train": len(train_index), "n_val": int(n_val), "seed": seed}
        trainer = Trainer(
            score_model,
            training,
            run_dir,
            metadata={"problem": "inverse", "inverse": self._record()},
            model_config=config,
        )
        result = trainer.fit(x_train, y_train, x_val, y_val, resume=resume, progress=progress)
        self.metadata.update(
            {
                "epochs": result.epochs_done,
                "final_train_loss": float(result.history["train_loss"][-1]),
                "best_val_loss": float(result.best_val),
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
        sampler: str = "euler_maruyama",
        steps: int | None = None,
        seed: int = 0,
        batch_size: int = 1000,
        device: str | torch.device = "auto",
        progress: bool = False,
        **options: Any,
    ) -> np.ndarray:
        """``n`` posterior samples ``(n, *x_shape)`` in ``x``'s units given one observation ``y``.

        y: ``y_shape`` (or anything with ``prod(y_shape)`` elements), physical units.
        sampler: a key of ``scorepde.training.model.SAMPLERS`` (SDE, ODE and annealed-Langevin
        samplers). steps: total steps (None: :data:`DEFAULT_STEPS`). seed:
        sample ``i`` uses the stream ``(seed, i)``, so results do not depend on ``batch_size``.
        options: passed to the sampler (e.g. ``levels``, ``step_size`` for Langevin).
        """
        self._require_trained()
        observation = np.asarray(y, dtype=np.float64)
        if observation.size != math.prod(self.y_shape):
            raise ValueError(
                f"y has shape {observation.shape}; expected one observation of shape {self.y_shape}"
            )
        return self._sample(
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
        sampler: str = "euler_maruyama",
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
        return self._sample(
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

    def _sample(
        self,
        observations: np.ndarray,
        n: int,
        *,
        sampler: str,
        steps: int | None,
        seed: int,
        batch_size: int,
        device: str | torch.device,
        progress: bool,
        **options: Any,
    ) -> np.ndarray:
        """``observations (M, *y_shape)`` -> ``(M, n, *x_shape)``."""
        score_model, x_std, y_std = self._require_trained()
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; allowed: {sorted(SAMPLERS)}")
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if not np.all(np.isfinite(observations)):
            raise ValueError("y must be finite")
        n_obs = observations.shape[0]
        cond = y_std.transform(observations).reshape(n_obs, -1)
        cond = np.repeat(cond, int(n), axis=0)  # row m n + j: observation m
        torch_device = resolve_device(device)
        score_model.to(torch_device)
        kwargs = {**DEFAULT_SAMPLER_OPTIONS.get(sampler, {}), **options}
        with torch.no_grad():
            samples = SAMPLERS[sampler](
                score_model,
                score_model.process,
                self._net_shape,
                torch.from_numpy(cond).float().to(torch_device),
                n=n_obs * int(n),
                steps=int(steps) if steps is not None else DEFAULT_STEPS[sampler],
                seed=seed,
                batch_size=batch_size,
                device=torch_device,
                progress=progress,
                **kwargs,
            )
        z = samples.detach().to("cpu", torch.float64).numpy()
        return x_std.inverse(z.reshape(n_obs, int(n), *self.x_shape))

    # ------------------------------------------------------------------ persistence

    def _record(self) -> dict[str, Any]:
        assert self.x_standardiser is not None and self.y_standardiser is not None
        return {
            "format": INVERSE_FORMAT,
            "x_shape": list(self.x_shape),
            "y_shape": list(self.y_shape),
            "x_standardiser": self.x_standardiser.to_dict(),
            "y_standardiser": self.y_standardiser.to_dict(),
        }

    def save(self, path: str | Path) -> Path:
        """Export to a model folder (``model.safetensors``, ``model.yaml`` holding the
        standardisers under ``metadata.inverse``); returns the folder."""
        score_model, _, _ = self._require_trained()
        assert self.model_config is not None
        return save_trained_model(
            path,
            score_model,
            self.model_config,
            normaliser=None,
            condition_encoder=None,
            problem_name="inverse",
            sample_shape=self._net_shape,
            metadata={"inverse": self._record(), "training": dict(self.metadata)},
        )

    @classmethod
    def load(
        cls, path: str | Path, *, map_location: str | torch.device = "cpu"
    ) -> AmortisedPosterior:
        """Read a folder written by :meth:`save`, a checkpoint folder or a run folder of
        :meth:`train`."""
        trained = load_trained_model(path, map_location=map_location)
        record = trained.metadata.get("inverse")
        if not isinstance(record, dict) or record.get("format") != INVERSE_FORMAT:
            raise ValueError(f"{path} holds no amortised posterior (metadata.inverse missing)")
        posterior = cls()
        posterior.score_model = trained.score_model.eval()
        posterior.model_config = trained.model_config
        posterior.x_shape = tuple(int(s) for s in record["x_shape"])
        posterior.y_shape = tuple(int(s) for s in record["y_shape"])
        posterior.x_standardiser = Standardiser.from_dict(record["x_standardiser"])
        posterior.y_standardiser = Standardiser.from_dict(record["y_standardiser"])
        posterior.metadata = dict(trained.metadata.get("training") or {})
        return posterior


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
    "DEFAULT_SAMPLER_OPTIONS",
    "DEFAULT_STEPS",
    "AmortisedPosterior",
    "Standardiser",
    "default_model_config",
    "default_train_config",
    "format_summary",
    "from_simulator",
    "network_shape",
    "summarise",
]
