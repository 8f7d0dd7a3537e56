"""The second stage of a two-stage model: a learned map from a problem's input channels to its
solution channels, and the model that composes the two stages.

Where a problem's solution is a deterministic function of its random input (``u`` of
``log_k`` for Darcy flow, declared by :attr:`Problem.solution_channels`), a joint score model
of the pair has to learn that function as a near-degenerate direction of its law, and in
``docs/darcy.md`` it did not, to the accuracy the flux needs. A two-stage model splits the
work: stage 1 is a conditional model of the input channels (any :class:`ConditionalModel`),
stage 2 the map input -> solution, learned by regression on the same training pairs. Every
generated pair is then the map's solution of a generated input.

The map (:class:`SolutionMap`) is a small grid U-Net (:class:`~scorepde.nets.gridmap.
GridMapNet`) on features of the inputs (each input channel standardised, and its logistic
sigmoid, which resolves both ends of a high-contrast medium), plus the training set's mean
solution, which is also its base: the network learns the correction. It is trained
(:func:`fit_solution_map`) on the squared error, plus, where the problem declares the norm
(:meth:`Problem.solution_norm`), the error's energy under each medium's own two-point operator;
the problem's mirror symmetries (:meth:`Problem.solution_reflections`) serve as augmentation. It
checkpoints every ``checkpoint_every`` steps and resumes.

Files (a model folder ``model/`` holds stage 1 as usual, plus)::

    model/solution_map/
        solution_map.yaml           config, channel names and units, grid shape
        solution_map.safetensors    network weights, feature statistics, base solution
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import Tensor

from scorepde.configuration import ConfigError, from_dict, to_dict
from scorepde.fileio import atomic_path, atomic_write_text
from scorepde.nets.gridmap import GridMapNet
from scorepde.problems.base import Problem, Reflection, TwoPointNorm
from scorepde.training.checkpoint import CheckpointError, load_weights, read_record

__all__ = [
    "SOLUTION_MAP_FOLDER",
    "SolutionMap",
    "SolutionMapConfig",
    "StagedModel",
    "fit_solution_map",
]

#: Sub-folder of a model folder that holds the solution map of a two-stage model.
SOLUTION_MAP_FOLDER = "solution_map"
_FORMAT = "scorepde.solution_map/1"
_CHECKPOINT = "checkpoint.pt"

Log = Callable[[str], None] | None


@dataclass
class SolutionMapConfig:
    """How the solution map is built and trained (recipe section ``solution_map``).

    Attributes:
        width: channels of the network's finest level (``GridMapNet``: widths ``width`` times
            1, 2, ..., ``levels``).
        levels: resolutions of the U-Net; every grid size must be divisible by
            ``2 ** (levels - 1)``.
        steps: Adam steps.
        batch_size: training pairs per step.
        learning_rate: Adam's initial rate, cosine-decayed to 0 over ``steps``.
        energy_weight: weight of the error's energy (the problem's :class:`TwoPointNorm`, over
            the total face weight) against the mean squared error. For an error that is smooth
            on the grid the energy over the face weight is ~h^2 times its square, so a weight
            of order ``1 / h^2`` makes the large-scale error, which moves the total flux, count
            (Darcy flow, 32 x 32: weight 1, 100, 1000 -> log k_eff at (0.06, 1.4) off by 0.63,
            0.27, 0.40 std after 600 steps).
        checkpoint_every: steps between checkpoints (one is written at the end).
        num_threads: torch CPU threads while training (None: leave torch's setting).
        seed: initial weights and every batch draw.
    """

    width: int = 32
    levels: int = 4
    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 2e-3
    energy_weight: float = 100.0
    checkpoint_every: int = 250
    num_threads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("width", "levels", "steps", "batch_size", "checkpoint_every"):
            value = getattr(self, name)
            _require(name, value, _is_int(value) and value >= 1, "an integer >= 1")
        rate, weight, threads = self.learning_rate, self.energy_weight, self.num_threads
        _require("learning_rate", rate, _is_real(rate) and rate > 0, "a finite number > 0")
        _require("energy_weight", weight, _is_real(weight) and weight >= 0, "a finite number >= 0")
        _require(
            "num_threads",
            threads,
            threads is None or (_is_int(threads) and threads >= 1),
            "an integer >= 1 or null",
        )
        _require("seed", self.seed, _is_int(self.seed) and self.seed >= 0, "an integer >= 0")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _require(name: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"solution_map.{name} = {value!r} is not allowed; expected {allowed}")


def split_channels(problem: Problem) -> tuple[list[int], list[int]]:
    """Indices of the input and of the solution channels of ``problem`` (in channel order);
    a clear error when it declares no solution channels or names an unknown one."""
    channels = list(problem.channels)
    unknown = [name for name in problem.solution_channels if name not in channels]
    if not problem.solution_channels or unknown:
        raise ValueError(
            f"problem {problem.name!r} declares solution_channels = "
            f"{list(problem.solution_channels)}; a two-stage model (recipe section "
            f"solution_map) needs a non-empty subset of its channels {channels}"
        )
    solution = [channels.index(name) for name in problem.solution_channels]
    inputs = [i for i in range(len(channels)) if i not in solution]
    if not inputs:
        raise ValueError(
            f"problem {problem.name!r}: every channel is a solution channel; a two-stage model "
            "needs at least one input channel for its first stage"
        )
    return inputs, solution


class SolutionMap:
    """The map ``inputs (n, C_in, *S) -> solution (n, C_s, *S)`` in physical units.

    Args:
        net: the network on the features (``2 C_in + C_s`` channels in, ``C_s`` out).
        input_channels, solution_channels: channel names.
        channels, channel_units: every channel of the problem in its order, with units.
        input_mean, input_scale: ``(C_in,)`` statistics that standardise the inputs.
        base: ``(C_s, *S)`` the mean solution of the training set (the network's correction
            is added to it).
        config: how the map was trained.
    """

    def __init__(
        self,
        net: GridMapNet,
        *,
        input_channels: Sequence[str],
        solution_channels: Sequence[str],
        channels: Sequence[str],
        channel_units: Sequence[str],
        input_mean: np.ndarray,
        input_scale: np.ndarray,
        base: np.ndarray,
        config: SolutionMapConfig,
    ) -> None:
        self.net = net.eval()
        self.input_channels = tuple(input_channels)
        self.solution_channels = tuple(solution_channels)
        self.channels = tuple(channels)
        self.channel_units = tuple(channel_units)
        self.config = config
        rank = base.ndim - 1
        self._mean = torch.tensor(np.asarray(input_mean), dtype=torch.float32).reshape(
            1, -1, *[1] * rank
        )
        self._scale = torch.tensor(np.asarray(input_scale), dtype=torch.float32).reshape(
            1, -1, *[1] * rank
        )
        self._base = torch.tensor(np.asarray(base), dtype=torch.float32)[None]

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """``S``: the grid the map works on."""
        return tuple(self._base.shape[2:])

    def __repr__(self) -> str:
        return (
            f"SolutionMap({list(self.input_channels)} -> {list(self.solution_channels)}, "
            f"grid {self.grid_shape}, width {self.config.width}, levels {self.config.levels})"
        )

    def forward(self, inputs: Tensor) -> Tensor:
        """Differentiable map of a float32 batch ``(B, C_in, *S) -> (B, C_s, *S)``."""
        z = (inputs - self._mean) / self._scale
        base = self._base.expand(len(inputs), *self._base.shape[1:])
        features = torch.cat([z, torch.sigmoid(z), base], dim=1)
        return base + self.net(features)

    def __call__(self, inputs: np.ndarray, *, batch_size: int = 500) -> np.ndarray:
        """The solution of each input ``(n, C_in, *S)`` (physical units) -> ``(n, C_s, *S)``
        float64, in batches of ``batch_size``."""
        array = np.asarray(inputs)
        expected = (len(self.input_channels), *self.grid_shape)
        if array.ndim != len(expected) + 1 or array.shape[1:] != expected:
            raise ValueError(
                f"inputs of shape {array.shape} are not allowed; expected (n, *{expected}) "
                f"(channels {list(self.input_channels)})"
            )
        out = np.empty((len(array), len(self.solution_channels), *self.grid_shape))
        with torch.no_grad():
            for start in range(0, len(array), batch_size):
                chunk = torch.as_tensor(array[start : start + batch_size], dtype=torch.float32)
                out[start : start + len(chunk)] = self.forward(chunk).double().numpy()
        return out

    def assemble(self, inputs: np.ndarray, solution: np.ndarray) -> np.ndarray:
        """Inputs ``(n, C_in, *S)`` and solution ``(n, C_s, *S)`` as fields ``(n, C, *S)`` in
        the problem's channel order."""
        parts = dict(zip(self.input_channels, np.moveaxis(inputs, 1, 0), strict=True))
        parts.update(zip(self.solution_channels, np.moveaxis(solution, 1, 0), strict=True))
        return np.stack([parts[name] for name in self.channels], axis=1)

    # ------------------------------------------------------------------ files
    def save(self, folder: str | Path) -> Path:
        """Write ``solution_map.yaml`` and ``solution_map.safetensors`` (atomically)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()
        }
        tensors["input_mean"] = self._mean.flatten().contiguous()
        tensors["input_scale"] = self._scale.flatten().contiguous()
        tensors["base"] = self._base[0].contiguous()
        with atomic_path(folder / "solution_map.safetensors", suffix=".safetensors") as tmp:
            save_file(tensors, str(tmp))
        record = {
            "format": _FORMAT,
            "config": to_dict(self.config),
            "input_channels": list(self.input_channels),
            "solution_channels": list(self.solution_channels),
            "channels": list(self.channels),
            "channel_units": list(self.channel_units),
            "grid_shape": list(self.grid_shape),
        }
        atomic_write_text(folder / "solution_map.yaml", yaml.safe_dump(record, sort_keys=False))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SolutionMap:
        """Read a map written by :meth:`save`; a missing or corrupt file is a
        :class:`CheckpointError` naming it."""
        folder = Path(folder)
        config_path = folder / "solution_map.yaml"
        record = read_record(config_path, _FORMAT)
        tensors = load_weights(folder / "solution_map.safetensors", "cpu")
        try:
            config = from_dict(SolutionMapConfig, record["config"], where=str(config_path))
        except ConfigError as error:
            raise CheckpointError(str(error)) from error
        inputs, solution = record["input_channels"], record["solution_channels"]
        net = GridMapNet(
            len(record["grid_shape"]),
            2 * len(inputs) + len(solution),
            len(solution),
            width=config.width,
            levels=config.levels,
        )
        weights = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        try:
            net.load_state_dict(weights)
        except RuntimeError as error:
            raise CheckpointError(
                f"{folder}/solution_map.safetensors: weights do not fit the recorded network "
                f"({error})"
            ) from error
        return cls(
            net,
            input_channels=inputs,
            solution_channels=solution,
            channels=record["channels"],
            channel_units=record["channel_units"],
            input_mean=tensors["input_mean"].numpy(),
            input_scale=tensors["input_scale"].numpy(),
            base=tensors["base"].numpy(),
            config=config,
        )


# ---------------------------------------------------------------------------- training
def two_point_energy(error: Tensor, weights: Sequence[Tensor]) -> Tensor:
    """``sum_a sum_f w_a[f] (e+ - e-)^2`` per field ``(B,)`` for an error ``(B, *S)``; a
    boundary face sees its cell's error against zero (:class:`TwoPointNorm`)."""
    total = error.new_zeros(len(error))
    for axis, weight in enumerate(weights):
        jumps = _face_jumps(error, axis)
        total = total + (weight * jumps.square()).flatten(1).sum(1)
    return total


def _face_jumps(error: Tensor, axis: int) -> Tensor:
    """``e+ - e-`` on every face normal to grid ``axis`` (``S[axis] + 1`` of them), the
    error taken as zero beyond the boundary faces."""
    dim = axis + 1
    # torch pads the last dimension first: (last_low, last_high, second_last_low, ...)
    spec = [0, 0] * (error.ndim - dim)
    spec[-2:] = [1, 1]
    return torch.diff(torch.nn.functional.pad(error, spec), dim=dim)


def _reflect(
    inputs: Tensor, solution: Tensor, weights: list[Tensor], reflection: Reflection
) -> tuple[Tensor, Tensor, list[Tensor]]:
    dim = reflection.axis + 2
    inputs = inputs.flip(dim)
    solution = reflection.scale * solution.flip(dim) + reflection.offset
    weights = [w.flip(reflection.axis + 1) for w in weights]
    return inputs, solution, weights


def fit_solution_map(
    problem: Problem,
    fields: np.ndarray,
    config: SolutionMapConfig,
    run_dir: str | Path | None = None,
    *,
    log: Log = print,
) -> SolutionMap:
    """Train the solution map of ``problem`` on its simulated ``fields`` ``(n, C, *S)``
    (physical units; conditions are not needed: the solution depends on them only through
    the inputs).

    With ``run_dir`` a checkpoint ``run_dir/checkpoint.pt`` is written every
    ``config.checkpoint_every`` steps and at the end; a later call with the same config and
    data resumes from it (bit-identical to an uninterrupted run on the same machine). A
    checkpoint written with another config is an error naming the difference.
    """
    inputs_index, solution_index = split_channels(problem)
    array = np.asarray(fields)
    expected = (len(problem.channels), *problem.grid_shape)
    if array.ndim != len(expected) + 1 or array.shape[1:] != expected or len(array) < 2:
        raise ValueError(
            f"fields of shape {array.shape} are not allowed; expected (n >= 2, *{expected}) "
            f"for problem {problem.name!r}"
        )
    rank = len(problem.grid_shape)
    axes = (0, *range(2, rank + 2))
    x_in = array[:, inputs_index]
    input_mean = x_in.mean(axis=axes)
    input_scale = x_in.std(axis=axes)
    input_scale = np.where(input_scale > 0, input_scale, 1.0)
    base = array[:, solution_index].mean(axis=0)
    # the loss is measured in units of the solution's variance about the base, so Adam's steps
    # (and its epsilon) see the same scale whatever the unit of the solution
    scale = float(np.mean((array[:, solution_index] - base) ** 2)) or 1.0
    inputs = torch.tensor(x_in, dtype=torch.float32)
    solution = torch.tensor(array[:, solution_index], dtype=torch.float32)
    norm: TwoPointNorm | None = problem.solution_norm(array)
    weights: list[Tensor] = []
    if norm is not None:
        weights = [torch.tensor(w, dtype=torch.float32) for w in norm.face_weights]
    reflections = problem.solution_reflections()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = GridMapNet(
            rank,
            2 * len(inputs_index) + len(solution_index),
            len(solution_index),
            width=config.width,
            levels=config.levels,
        )
    model = SolutionMap(
        net,
        input_channels=[problem.channels[i] for i in inputs_index],
        solution_channels=[problem.channels[i] for i in solution_index],
        channels=problem.channels,
        channel_units=problem.channel_units,
        input_mean=input_mean,
        input_scale=input_scale,
        base=base,
        config=config,
    )
    net.train()
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.steps)
    generator = torch.Generator().manual_seed(config.seed)
    step = 0
    checkpoint = None if run_dir is None else Path(run_dir) / _CHECKPOINT
    # what the result depends on (threads and checkpoint spacing do not change the weights)
    record = {
        k: v for k, v in to_dict(config).items() if k not in ("num_threads", "checkpoint_every")
    }
    if checkpoint is not None and checkpoint.is_file():
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"{checkpoint}: corrupt or unreadable checkpoint ({error})") from error
        if state.get("config") != record or state.get("n_pairs") != len(array):
            raise ValueError(
                f"{checkpoint} was written for config {state.get('config')} on "
                f"{state.get('n_pairs')} pairs, not {record} on {len(array)}: delete it to "
                "train afresh"
            )
        net.load_state_dict(state["net"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        step = int(state["step"])
        if log is not None:
            log(f"solution map: resumed at step {step} from {checkpoint}")

    def save_checkpoint() -> None:
        if checkpoint is None:
            return
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "config": record,
            "n_pairs": len(array),
            "step": step,
            "net": net.state_dict(),
            "optimiser": optimiser.state_dict(),
            "schedule": schedule.state_dict(),
            "generator": generator.get_state(),
        }
        with atomic_path(checkpoint, suffix=".pt") as tmp:
            torch.save(state, tmp)

    threads = torch.get_num_threads()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    start = time.perf_counter()
    try:
        while step < config.steps:
            rows = torch.randint(0, len(inputs), (config.batch_size,), generator=generator)
            a, b = inputs[rows], solution[rows]
            w = [weight[rows] for weight in weights]
            flips = torch.rand(len(reflections), generator=generator) < 0.5
            for reflection, flip in zip(reflections, flips.tolist(), strict=True):
                if flip:
                    a, b, w = _reflect(a, b, w, reflection)
            error = model.forward(a) - b
            loss = error.square().mean()
            if w and config.energy_weight > 0:
                energy = sum(two_point_energy(error[:, c], w) for c in range(error.shape[1]))
                total_weight = sum(x.flatten(1).sum(1) for x in w)
                loss = loss + config.energy_weight * (energy / total_weight).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"solution map: the loss became {float(loss)} at step {step + 1}"
                )
            optimiser.zero_grad(set_to_none=True)
            (loss / scale).backward()
            optimiser.step()
            schedule.step()
            step += 1
            if step % config.checkpoint_every == 0 or step == config.steps:
                save_checkpoint()
                if log is not None:
                    log(
                        f"solution map: step {step}/{config.steps}, loss {loss.item():.3g}, "
                        f"{time.perf_counter() - start:.0f} s"
                    )
    finally:
        torch.set_num_threads(threads)
    net.eval()
    return model


# ---------------------------------------------------------------------------- composition
class StagedModel:
    """A two-stage conditional model: ``inputs`` (a :class:`ConditionalModel` of the input
    channels) followed by ``solution_map``. It samples whole fields ``(n, C, *S)`` in the
    problem's channel order; every other attribute (conditions, encoder, metadata, default
    sampling) is the first stage's.
    """

    def __init__(self, inputs: Any, solution_map: SolutionMap) -> None:
        self.inputs = inputs
        self.solution_map = solution_map

    def __getattr__(self, name: str) -> Any:
        if name in ("inputs", "solution_map"):  # not yet set (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.inputs, name)

    def __repr__(self) -> str:
        return f"StagedModel(inputs={self.inputs!r}, solution_map={self.solution_map!r})"

    @property
    def channel_names(self) -> list[str]:
        """Every channel of the problem, in its order."""
        return list(self.solution_map.channels)

    @property
    def field_spec(self) -> Any:
        """The first stage's field specification with every channel of the problem."""
        spec = self.inputs.field_spec
        if spec is None:
            return None
        return dataclasses.replace(
            spec,
            channels=tuple(self.solution_map.channels),
            channel_units=tuple(self.solution_map.channel_units),
        )

    def sample(self, conditions: Any, n: int, **options: Any) -> np.ndarray:
        """``n`` fields ``(n, C, *S)`` in physical units: the first stage's sample (same
        ``options``: sampler, steps, seed, batch size) and its solution."""
        inputs = np.asarray(self.inputs.sample(conditions, n, **options))
        return self.solution_map.assemble(inputs, self.solution_map(inputs))
