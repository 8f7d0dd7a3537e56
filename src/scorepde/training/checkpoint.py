"""Checkpoints (resumable training state) and exported models (what users sample from).

Checkpoint layout (one folder per checkpoint, written to a temporary folder then renamed)::

    run_dir/checkpoints/
      latest                 text: the name of the newest complete checkpoint, e.g. epoch-000100
      epoch-000100/
        model.safetensors    raw (trained) weights, the model's state_dict
        ema.safetensors      EMA weights under the same names
        config.yaml          format, epoch, model (ModelConfig), train (TrainConfig), metadata
                             (problem, channel/condition names, condition encoder, sample shape),
                             provenance, files
        normaliser.json      FieldNormaliser or ConditionalNormaliser (when given one), with the
                             normaliser.safetensors it may write beside it
        transforms.safetensors  the numpy arrays of the metadata (e.g. an inverse model's
                             standardisers), when there are any; the YAML holds {"$array": key}
        trainer_state.pt     optimiser, scheduler, epoch, step, RNG states, EMA counter, history

Exported model layout (``save_trained_model``)::

    model_dir/
      model.safetensors      EMA weights
      model.yaml             format, model (ModelConfig), problem, sample_shape, channel and
                             condition names, condition encoder, conditioning and field
                             specification (when known), metadata, provenance, files
      normaliser.json        FieldNormaliser or ConditionalNormaliser (+ normaliser.safetensors)
      transforms.safetensors arrays of the metadata (standardisers, coordinates), if any

Large arrays never go into the YAML: every numpy array found in the metadata (or in the field
specification) is written to ``transforms.safetensors`` and read back as a numpy array. Folders
written before this (arrays as YAML lists) still load, with those values as lists.

:func:`read_model` reads either layout, or a run folder (its latest checkpoint's EMA weights),
into a :class:`LoadedModel` (the parts); ``scorepde.training.conditional.load_trained_model``
turns that into a :class:`~scorepde.training.conditional.ConditionalModel`. This module builds
models only from :class:`ModelConfig` and never imports the model class, so it has no import
cycle with it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from scorepde.configuration import ConfigError, from_dict, to_dict
from scorepde.data.normalisation import ConditionEncoder, Normaliser, load_normaliser
from scorepde.fileio import atomic_path, atomic_write_text
from scorepde.provenance import provenance
from scorepde.training.config import TrainConfig
from scorepde.training.ema import EMA
from scorepde.training.model_config import ModelConfig, build_score_model

CHECKPOINT_FORMAT = "scorepde.checkpoint/1"
MODEL_FORMAT = "scorepde.model/1"
_CHECKPOINT_NAME = re.compile(r"^epoch-(\d{6,})$")
#: File beside config.yaml / model.yaml holding the arrays of the metadata.
ARRAYS_FILE = "transforms.safetensors"
#: File a normaliser may write beside normaliser.json (its arrays).
NORMALISER_ARRAYS_FILE = "normaliser.safetensors"
_ARRAY_REF = "$array"


class CheckpointError(RuntimeError):
    """A checkpoint or model folder is missing, corrupt, or does not fit the model."""


@dataclass
class LoadedCheckpoint:
    """The contents of one checkpoint folder (tensors on ``map_location``)."""

    folder: Path
    epoch: int
    model_config: ModelConfig
    train_config: TrainConfig
    metadata: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    ema_state: dict[str, torch.Tensor]
    trainer_state: dict[str, Any]
    normaliser: Normaliser | None


# ---------------------------------------------------------------------------- names


def checkpoint_name(epoch: int) -> str:
    """Folder name of the checkpoint after ``epoch`` epochs: ``epoch-000100``."""
    return f"epoch-{int(epoch):06d}"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and _CHECKPOINT_NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_CHECKPOINT_NAME.match(p.name).group(1)))  # type: ignore[union-attr]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The folder named in ``run_dir/checkpoints/latest``, or None when the run has none.

    Without a ``latest`` file (e.g. a crash between the rename and its update) the newest
    complete folder is used. A ``latest`` naming a missing folder is a :class:`CheckpointError`.
    """
    folder = Path(run_dir) / "checkpoints"
    pointer = folder / "latest"
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        target = folder / name
        if not _CHECKPOINT_NAME.match(name) or not target.is_dir():
            raise CheckpointError(
                f"{pointer} names {name!r}, which is not a checkpoint folder in {folder}; "
                "delete the file to fall back to the newest complete checkpoint"
            )
        return target
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def load_latest_intact(
    run_dir: str | Path, *, map_location: str | torch.device = "cpu"
) -> tuple[LoadedCheckpoint | None, list[tuple[Path, str]]]:
    """The newest checkpoint of ``run_dir`` that loads whole (trainer state included), and the
    newer ones skipped as ``(folder, reason)``.

    Tries the folder named in ``checkpoints/latest`` first, then every complete folder from
    the newest down. Returns ``(None, [])`` for a run without checkpoints. Raises
    :class:`CheckpointError` listing every folder and why when none is intact.
    """
    skipped: list[tuple[Path, str]] = []
    candidates: list[Path] = []
    try:
        pointed = latest_checkpoint(run_dir)
    except CheckpointError as error:
        pointed = None
        skipped.append((Path(run_dir) / "checkpoints" / "latest", str(error)))
    if pointed is not None:
        candidates.append(pointed)
    candidates += [p for p in reversed(list_checkpoints(run_dir)) if p not in candidates]
    for folder in candidates:
        try:
            return load_checkpoint(folder, map_location=map_location), skipped
        except CheckpointError as error:
            skipped.append((folder, str(error)))
    if skipped:
        reasons = "; ".join(f"{folder}: {reason}" for folder, reason in skipped)
        raise CheckpointError(
            f"no intact checkpoint in {Path(run_dir) / 'checkpoints'} ({reasons}); delete the "
            "folder to start afresh"
        )
    return None, skipped


# ---------------------------------------------------------------------------- saving


def save_checkpoint(
    run_dir: str | Path,
    epoch: int,
    *,
    model: nn.Module,
    ema: EMA,
    model_config: ModelConfig,
    train_config: TrainConfig,
    metadata: dict[str, Any] | None,
    normaliser: Normaliser | None,
    trainer_state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write ``run_dir/checkpoints/epoch-NNNNNN`` atomically, point ``latest`` at it and keep
    only the newest ``keep`` checkpoints. Returns the folder."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(epoch)
    final = root / name
    tmp = root / f".{name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        files = ["model.safetensors", "ema.safetensors", "config.yaml", "trainer_state.pt"]
        _save_weights(tmp / "model.safetensors", model.state_dict())
        _save_weights(tmp / "ema.safetensors", ema_state_dict(model, ema))
        torch.save(trainer_state, tmp / "trainer_state.pt")
        _fsync(tmp / "trainer_state.pt")
        if normaliser is not None:
            normaliser.save(tmp / "normaliser.json")
            files.append("normaliser.json")
            if (tmp / NORMALISER_ARRAYS_FILE).is_file():
                files.append(NORMALISER_ARRAYS_FILE)
        arrays: dict[str, np.ndarray] = {}
        plain_metadata = _plain(split_arrays(metadata or {}, "metadata", arrays))
        if arrays:
            save_arrays(tmp / ARRAYS_FILE, arrays)
            files.append(ARRAYS_FILE)
        record = {
            "format": CHECKPOINT_FORMAT,
            "epoch": int(epoch),
            "model": to_dict(model_config),
            "train": to_dict(train_config),
            "metadata": plain_metadata,
            "provenance": provenance(),
            "files": sorted(files),
        }
        _write_yaml(tmp / "config.yaml", record)
        _fsync_dir(tmp)
        if final.exists():  # re-written after a resume from an earlier epoch
            old = root / f".{name}.old-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / "latest", name + "\n")
    _prune(root, final, keep)
    return final


def ema_state_dict(model: nn.Module, ema: EMA) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with every entry the EMA tracks replaced by its average."""
    averaged = ema.averaged_state_dict()
    return {key: averaged.get(key, value) for key, value in model.state_dict().items()}


def _prune(root: Path, current: Path, keep: int) -> None:
    found = list_checkpoints(root.parent)
    for folder in found[:-keep]:
        if folder != current:
            shutil.rmtree(folder, ignore_errors=True)
    for stale in root.glob(".epoch-*"):  # leftovers of interrupted writes
        with contextlib.suppress(OSError):
            if stale.is_dir() and not stale.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(stale)


def _save_weights(path: Path, state: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    _fsync(path)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def _plain(value: Any) -> Any:
    """Nested metadata -> YAML-safe builtins (tuples -> lists, numpy -> Python)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return _plain(value.to_dict())
    return value


def split_arrays(value: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` with every numpy array (numeric or boolean) replaced by ``{"$array": name}``
    and stored in ``arrays[name]``; ``name`` is the dotted path from ``key``. Objects with a
    ``to_record()`` (a Standardiser) are recorded through it, so their arrays are split too."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        arrays[key] = np.ascontiguousarray(value)
        return {_ARRAY_REF: key}
    if hasattr(value, "to_record") and callable(value.to_record):
        return split_arrays(value.to_record(), key, arrays)
    if isinstance(value, dict):
        return {str(k): split_arrays(v, f"{key}.{k}", arrays) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [split_arrays(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]
    return value


def join_arrays(value: Any, arrays: dict[str, np.ndarray], where: Path) -> Any:
    """Inverse of :func:`split_arrays`: references -> the arrays (a missing one is a
    :class:`CheckpointError` naming ``where``)."""
    if isinstance(value, dict):
        if set(value) == {_ARRAY_REF}:
            name = value[_ARRAY_REF]
            if name not in arrays:
                raise CheckpointError(f"{where}: array {name!r} is not in {ARRAYS_FILE}")
            return arrays[name]
        return {k: join_arrays(v, arrays, where) for k, v in value.items()}
    if isinstance(value, list):
        return [join_arrays(v, arrays, where) for v in value]
    return value


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write named numpy arrays to a safetensors file (atomically, dtypes kept)."""
    from safetensors.numpy import save_file

    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp))
        _fsync(tmp)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read the arrays written by :func:`save_arrays` ({} when the file does not exist)."""
    from safetensors.numpy import load_file

    if not path.is_file():
        return {}
    try:
        return dict(load_file(str(path)))
    except Exception as error:
        raise CheckpointError(
            f"{path}: corrupt or unreadable safetensors file ({error})"
        ) from error


# ---------------------------------------------------------------------------- loading


def load_checkpoint(
    folder: str | Path,
    *,
    map_location: str | torch.device = "cpu",
    trainer_state: bool = True,
) -> LoadedCheckpoint:
    """Read a checkpoint folder; a missing or corrupt file is a :class:`CheckpointError` naming
    it. ``trainer_state=False`` skips the optimiser/RNG state (enough to sample)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    record = read_record(folder / "config.yaml", CHECKPOINT_FORMAT)
    for name in record.get("files", []):
        if not (folder / name).is_file():
            raise CheckpointError(f"checkpoint {folder} is missing {name}")
    try:
        model_config = from_dict(ModelConfig, record["model"], where=f"{folder}/config.yaml:model")
        train_config = from_dict(TrainConfig, record["train"], where=f"{folder}/config.yaml:train")
    except (KeyError, ConfigError, ValueError) as error:
        raise CheckpointError(
            f"{folder / 'config.yaml'}: bad model/train config ({error})"
        ) from error
    model_state = load_weights(folder / "model.safetensors", map_location)
    ema_state = load_weights(folder / "ema.safetensors", map_location)
    state: dict[str, Any] = {}
    if trainer_state:
        path = folder / "trainer_state.pt"
        if not path.is_file():
            raise CheckpointError(f"checkpoint {folder} is missing trainer_state.pt")
        try:
            # always CPU: RNG states must be CPU tensors; the optimiser moves its own state
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise CheckpointError(
                f"{path}: corrupt or unreadable trainer state ({error})"
            ) from error
        if not isinstance(state, dict) or not {"epoch", "step", "optimizer", "rng"} <= set(state):
            raise CheckpointError(f"{path}: not a trainer state (keys {sorted(state)[:8]})")
    return LoadedCheckpoint(
        folder=folder,
        epoch=int(record.get("epoch", state.get("epoch", 0))),
        model_config=model_config,
        train_config=train_config,
        metadata=dict(
            join_arrays(
                record.get("metadata") or {},
                load_arrays(folder / ARRAYS_FILE),
                folder / "config.yaml",
            )
        ),
        model_state=model_state,
        ema_state=ema_state,
        trainer_state=state,
        normaliser=_load_normaliser(folder / "normaliser.json"),
    )


def read_record(path: Path, expected_format: str) -> dict[str, Any]:
    """A YAML record of format ``expected_format``; a missing file, corrupt YAML or another
    format is a :class:`CheckpointError` naming the file."""
    if not path.is_file():
        raise CheckpointError(f"{path.parent} is missing {path.name}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: corrupt YAML ({error})") from error
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: format {found!r}, expected {expected_format!r}")
    return data


def load_weights(path: Path, map_location: str | torch.device) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a missing or corrupt file is a
    :class:`CheckpointError` naming it."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path.parent} is missing {path.name}")
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as error:
        raise CheckpointError(
            f"{path}: corrupt or unreadable safetensors file ({error})"
        ) from error
    return {k: v.to(map_location) for k, v in tensors.items()}


def _load_normaliser(path: Path) -> Normaliser | None:
    if not path.is_file():
        return None
    try:
        return load_normaliser(path)
    except Exception as error:
        raise CheckpointError(f"{path}: corrupt normaliser ({error})") from error


# ---------------------------------------------------------------------------- export


def save_trained_model(
    path: str | Path,
    score_model: nn.Module,
    model_config: ModelConfig,
    *,
    normaliser: Normaliser | None,
    condition_encoder: ConditionEncoder | None,
    problem_name: str | None,
    sample_shape: tuple[int, ...] | list[int] | None = None,
    channel_names: list[str] | None = None,
    condition_names: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    ema: EMA | None = None,
    conditioning_spec: Any = None,
    field_spec: Any = None,
) -> Path:
    """Export a model folder (``model.safetensors``, ``model.yaml``, ``normaliser.json``, and
    ``transforms.safetensors`` when the metadata holds arrays).

    The weights written are ``ema``'s averages when ``ema`` is given, else ``score_model``'s
    own (pass a model that already holds EMA weights, e.g. ``Trainer.averaged_model()``).
    sample_shape: one sample's shape, e.g. ``(C, N)``; defaults to ``metadata["sample_shape"]``
    or the normaliser's ``(C, N)``. conditioning_spec / field_spec: a ``ConditioningSpec`` /
    ``FieldSpec`` (or their ``to_dict()``), recorded when given. Returns the folder.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    metadata = dict(metadata or {})
    if sample_shape is None:
        sample_shape = metadata.get("sample_shape")
    if sample_shape is None and normaliser is not None and normaliser.field_shape is not None:
        sample_shape = normaliser.field_shape
    if sample_shape is None:
        raise ValueError(
            "save_trained_model: give sample_shape (e.g. (C, N)); it is needed to sample"
        )
    if channel_names is None:
        channel_names = metadata.get("channel_names") or (
            list(normaliser.channels) if normaliser is not None and normaliser.channels else []
        )
    if condition_names is None:
        condition_names = metadata.get("condition_names") or (
            list(condition_encoder.names) if condition_encoder is not None else []
        )
    for key in ("sample_shape", "channel_names", "condition_names", "condition_encoder", "problem"):
        metadata.pop(key, None)
    state = ema_state_dict(score_model, ema) if ema is not None else score_model.state_dict()
    files = ["model.safetensors", "model.yaml"]
    with atomic_path(folder / "model.safetensors", suffix=".safetensors") as tmp:
        _save_weights(tmp, state)
    for stale in ("normaliser.json", NORMALISER_ARRAYS_FILE, ARRAYS_FILE):
        if (folder / stale).exists():  # left by an earlier export into this folder
            (folder / stale).unlink()
    if normaliser is not None:
        normaliser.save(folder / "normaliser.json")
        files.append("normaliser.json")
        if (folder / NORMALISER_ARRAYS_FILE).is_file():
            files.append(NORMALISER_ARRAYS_FILE)
    arrays: dict[str, np.ndarray] = {}
    record = {
        "format": MODEL_FORMAT,
        "model": to_dict(model_config),
        "problem": problem_name,
        "sample_shape": [int(s) for s in sample_shape],
        "channel_names": list(channel_names),
        "condition_names": list(condition_names),
        "condition_encoder": condition_encoder.to_dict() if condition_encoder is not None else None,
        "has_normaliser": normaliser is not None,
    }
    if conditioning_spec is not None:
        record["conditioning_spec"] = _plain(conditioning_spec)
    if field_spec is not None:
        record["field_spec"] = split_arrays(_field_spec_record(field_spec), "field_spec", arrays)
    record["metadata"] = _plain(split_arrays(metadata, "metadata", arrays))
    record["provenance"] = provenance()
    if arrays:
        save_arrays(folder / ARRAYS_FILE, arrays)
        files.append(ARRAYS_FILE)
    record["files"] = sorted(files)
    _write_yaml(folder / "model.yaml", record)
    return folder


def _field_spec_record(field_spec: Any) -> dict[str, Any]:
    """A FieldSpec's dict with its coordinates as arrays (so they go to safetensors)."""
    record = dict(field_spec if isinstance(field_spec, dict) else field_spec.to_dict())
    if "coordinates" in record:
        record["coordinates"] = [
            np.asarray(axis, dtype=np.float64) for axis in record["coordinates"]
        ]
    return record


@dataclass
class LoadedModel:
    """The parts of an exported model, checkpoint or run folder (see :func:`read_model`).

    ``score_model`` holds the EMA weights (exported folders hold only those). ``metadata``
    has its arrays back as numpy arrays, plus ``provenance`` (exported) or ``checkpoint`` and
    ``epoch`` (checkpoint). ``conditioning_spec`` / ``field_spec``: the recorded dicts or None.
    """

    folder: Path
    score_model: nn.Module
    model_config: ModelConfig
    normaliser: Normaliser | None
    condition_encoder: ConditionEncoder | None
    problem_name: str | None
    sample_shape: tuple[int, ...]
    channel_names: list[str] | None
    condition_names: list[str] | None
    metadata: dict[str, Any]
    conditioning_spec: dict[str, Any] | None = None
    field_spec: dict[str, Any] | None = None


def read_model(path: str | Path, *, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Read an exported model folder (``model.yaml``), a checkpoint folder (``config.yaml``)
    or a run folder (its latest checkpoint) into a :class:`LoadedModel`."""
    folder = Path(path)
    if (folder / "model.yaml").is_file():
        return _read_exported(folder, map_location)
    if (folder / "config.yaml").is_file():
        return _read_checkpoint(folder, map_location)
    if (folder / "checkpoints").is_dir():
        latest = latest_checkpoint(folder)
        if latest is None:
            raise CheckpointError(f"run folder {folder} has no checkpoint yet")
        return _read_checkpoint(latest, map_location)
    raise CheckpointError(
        f"{folder} is not a model folder (model.yaml), a checkpoint folder (config.yaml) or a "
        "run folder (checkpoints/)"
    )


def __getattr__(name: str) -> Any:
    """``load_trained_model`` moved to ``scorepde.training.conditional`` (it returns the
    model class, which this module does not import); this keeps the old import working until
    its callers import it from there."""
    if name == "load_trained_model":
        from scorepde.training.conditional import load_trained_model

        return load_trained_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The keys of ``model.yaml``: those every export writes, and those written when present.
_MODEL_KEYS_REQUIRED = ("format", "model", "sample_shape", "condition_encoder")
_MODEL_KEYS_OPTIONAL = (
    "problem",
    "channel_names",
    "condition_names",
    "has_normaliser",
    "conditioning_spec",
    "field_spec",
    "metadata",
    "provenance",
    "files",
)


def _check_model_record(record: dict[str, Any], where: Path) -> None:
    """Refuse a ``model.yaml`` with an unknown or missing key or a value of the wrong kind,
    naming the file, the key, what was found and what is allowed."""
    allowed = set(_MODEL_KEYS_REQUIRED) | set(_MODEL_KEYS_OPTIONAL)
    unknown = sorted(str(key) for key in set(record) - allowed)
    if unknown:
        raise CheckpointError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    missing = [key for key in _MODEL_KEYS_REQUIRED if key not in record]
    if missing:
        raise CheckpointError(f"{where}: missing key(s) {missing}")

    def bad(key: str, expected: str) -> CheckpointError:
        return CheckpointError(
            f"{where}: {key} = {record[key]!r} is not allowed; expected {expected}"
        )

    shape = record["sample_shape"]
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)
    ):
        raise bad("sample_shape", "a non-empty list of positive integers, e.g. [2, 100]")
    for key in ("channel_names", "condition_names", "files"):
        value = record.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise bad(key, "a list of names or null")
    for key in ("model", "condition_encoder", "conditioning_spec", "field_spec", "metadata"):
        value = record.get(key)
        if value is not None and not isinstance(value, dict):
            raise bad(key, "a mapping" + ("" if key == "model" else " or null"))
    if not isinstance(record["model"], dict):
        raise bad("model", "a mapping")
    if record.get("problem") is not None and not isinstance(record["problem"], str):
        raise bad("problem", "a problem name or null")
    if record.get("has_normaliser") is not None and not isinstance(record["has_normaliser"], bool):
        raise bad("has_normaliser", "true or false")


def _read_exported(folder: Path, map_location: str | torch.device) -> LoadedModel:
    record = read_record(folder / "model.yaml", MODEL_FORMAT)
    _check_model_record(record, folder / "model.yaml")
    for name in record.get("files", []):  # folders written before the list existed: no check
        if not (folder / name).is_file():
            raise CheckpointError(f"model folder {folder} is missing {name}")
    try:
        model_config = from_dict(ModelConfig, record["model"], where=f"{folder}/model.yaml:model")
    except (KeyError, ConfigError, ValueError) as error:
        raise CheckpointError(f"{folder / 'model.yaml'}: bad model config ({error})") from error
    normaliser = _load_normaliser(folder / "normaliser.json")
    if record.get("has_normaliser") and normaliser is None:
        raise CheckpointError(f"model folder {folder} is missing normaliser.json")
    arrays = load_arrays(folder / ARRAYS_FILE)
    where = folder / "model.yaml"
    encoder_dict = record.get("condition_encoder")
    try:
        encoder = ConditionEncoder.from_dict(encoder_dict) if encoder_dict else None
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{where}: bad condition_encoder ({error!r})") from error
    sample_shape = tuple(record["sample_shape"])
    network_shape = getattr(normaliser, "latent_shape", None) or getattr(
        normaliser, "field_shape", None
    )
    if network_shape is not None and tuple(network_shape) != sample_shape:
        # the network's space: the fields, or a subspace normaliser's coefficients (1, K)
        raise CheckpointError(
            f"{where}: sample_shape = {list(sample_shape)} does not match the shape "
            f"{list(network_shape)} of one sample in {folder / 'normaliser.json'}"
        )
    model = _build_with_weights(model_config, folder / "model.safetensors", map_location)
    metadata = join_arrays(record.get("metadata") or {}, arrays, where)
    return LoadedModel(
        folder=folder,
        score_model=model,
        model_config=model_config,
        normaliser=normaliser,
        condition_encoder=encoder,
        problem_name=record.get("problem"),
        sample_shape=sample_shape,
        channel_names=record.get("channel_names"),
        condition_names=record.get("condition_names"),
        metadata={**metadata, "provenance": record.get("provenance")},
        conditioning_spec=record.get("conditioning_spec"),
        field_spec=join_arrays(record.get("field_spec"), arrays, where),
    )


def _read_checkpoint(folder: Path, map_location: str | torch.device) -> LoadedModel:
    loaded = load_checkpoint(folder, map_location=map_location, trainer_state=False)
    metadata = dict(loaded.metadata)
    model = build_score_model(loaded.model_config).to(map_location)
    try:
        model.load_state_dict(loaded.ema_state)
    except RuntimeError as error:
        raise CheckpointError(
            f"{folder / 'ema.safetensors'} does not fit the model in config.yaml: {error}"
        ) from error
    normaliser = loaded.normaliser
    encoder_dict = metadata.pop("condition_encoder", None)
    sample_shape = metadata.pop("sample_shape", None)
    if sample_shape is None and normaliser is not None and normaliser.field_shape is not None:
        sample_shape = normaliser.field_shape
    if sample_shape is None:
        raise CheckpointError(f"{folder / 'config.yaml'}: metadata has no sample_shape")
    conditioning_spec = metadata.pop("conditioning_spec", None)
    field_spec = metadata.pop("field_spec", None)
    return LoadedModel(
        folder=folder,
        score_model=model,
        model_config=loaded.model_config,
        normaliser=normaliser,
        condition_encoder=ConditionEncoder.from_dict(encoder_dict) if encoder_dict else None,
        problem_name=metadata.pop("problem", None),
        sample_shape=tuple(sample_shape),
        channel_names=metadata.pop("channel_names", None)
        or (list(normaliser.channels) if normaliser is not None and normaliser.channels else None),
        condition_names=metadata.pop("condition_names", None)
        or (list(encoder_dict["names"]) if encoder_dict else None),
        metadata={**metadata, "checkpoint": str(folder), "epoch": loaded.epoch},
        conditioning_spec=conditioning_spec,
        field_spec=field_spec,
    )


def _build_with_weights(
    model_config: ModelConfig, path: Path, map_location: str | torch.device
) -> nn.Module:
    model = build_score_model(model_config)
    state = load_weights(path, map_location)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not fit the model in its config: {error}") from error
    return model.to(map_location)
