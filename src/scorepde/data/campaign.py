"""Simulation campaigns: design of conditions -> simulator -> one HDF5 file; chunked, resumable.

Seeding (results do not depend on chunking, resuming or the number of workers):

- ``split_key = SPLITS[split]`` (train 1, test 2, validation 3);
- the design of conditions is drawn from ``SeedSequence([seed, split_key, DESIGN_STREAM])``, so
  the train and test splits of one seed never share conditions;
- the latent draws of design point ``i`` come from
  ``np.random.default_rng(SeedSequence([seed, split_key, i]))`` and nothing else.

Nothing is lost: the conditions are processed in chunks of ``chunk_conditions``; each finished
chunk is saved atomically as ``OUT.parts/chunk_00000.npz`` beside a ``manifest.json`` (the
config, the problem's attributes and the design) that is written before any chunk. A rerun
with the same config skips finished chunks; a different config is refused (use ``overwrite``);
an unreadable chunk (truncated, not a zip archive, wrong arrays) is reported and simulated again.
When all chunks are done the HDF5 file is written atomically and the parts folder removed.

One writer per output: a campaign holds ``OUT.lock`` (an ``flock``, released by the kernel when
its holder dies) from start to end; a second campaign on the same ``out`` is refused with a
``CampaignError`` naming the holder's pid and host. Holding the lock, a campaign first removes
the temporary files a killed writer left beside ``out`` (``.OUT.XXXXXXXX.h5``).

Where chunks run: in this process (``workers = 1``), in a pool of ``workers`` local processes,
or on a dask.distributed cluster (``scheduler=ADDRESS`` of a running scheduler, or ``"local"``
for a ``LocalCluster`` of ``workers`` processes; needs ``pip install 'scorepde[dask]'``). The
tasks are the same in every case; dask workers return each chunk's arrays and this process
writes the shard, so workers need no access to the output folder. The output is the same,
byte for byte, whichever is used.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import multiprocessing
import shutil
import sys
import warnings
import zipfile
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from scorepde.configuration import ConfigError, from_dict, to_dict
from scorepde.fileio import (
    LockedError,
    atomic_path,
    atomic_write_text,
    exclusive_lock,
    stale_temporaries,
)
from scorepde.problems import PROBLEMS, Problem, get_problem

__all__ = [
    "DESIGN_STREAM",
    "SPLITS",
    "CampaignError",
    "SimulationConfig",
    "condition_seed",
    "config_from_attributes",
    "design_seed",
    "lock_path",
    "parts_folder",
    "problem_from_config",
    "simulate_campaign",
]

logger = logging.getLogger(__name__)

#: Split name -> the integer that enters every seed of that split.
SPLITS: dict[str, int] = {"train": 1, "test": 2, "validation": 3}

#: Third word of the design's seed; no design-point index reaches it (n_conditions < 2**32 - 1).
DESIGN_STREAM = 2**32 - 1

_MANIFEST_FORMAT = "scorepde.campaign_parts/1"
_MANIFEST = "manifest.json"
_MAX_SEED = 2**32


class CampaignError(ValueError):
    """A campaign cannot proceed as asked (conflicting existing output or parts folder)."""


@dataclass
class SimulationConfig:
    """What to simulate: the recipe of one data set (round-trips through YAML).

    Attributes:
        problem: registry name (``scorepde.problems.PROBLEMS``).
        n_conditions: number of design points ``M``, >= 1.
        per_condition: latent draws per design point, >= 1 (``n = M * per_condition`` fields).
        seed: integer in ``[0, 2**32)``; see the module docstring for the seeding scheme.
        split: one of ``SPLITS`` (``"train"``, ``"test"``, ``"validation"``).
        design: ``"sobol"`` (scrambled Sobol) or ``"lhs"`` (Latin hypercube).
        chunk_conditions: design points per saved chunk, >= 1 (does not change the data).
        workers: processes, >= 1 (does not change the data).
        problem_options: keyword arguments of the problem (battery: ``params``, ``kernel``,
            ``variance``).
    """

    problem: str = "battery"
    n_conditions: int = 100
    per_condition: int = 100
    seed: int = 0
    split: str = "train"
    design: str = "sobol"
    chunk_conditions: int = 20
    workers: int = 1
    problem_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field, its value and what is allowed."""
        from scorepde.data.design import DESIGNS

        def integer(name: str, low: int, high: int | None = None) -> None:
            value = getattr(self, name)
            ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
            ok = ok and value >= low and (high is None or value < high)
            if not ok:
                bound = f"in [{low}, {high})" if high is not None else f">= {low}"
                raise ValueError(
                    f"SimulationConfig.{name} = {value!r} is not allowed; "
                    f"expected an integer {bound}"
                )

        if self.problem not in PROBLEMS:
            raise ValueError(
                f"SimulationConfig.problem = {self.problem!r} is not known; expected one of "
                f"{sorted(PROBLEMS)}"
            )
        integer("n_conditions", 1, DESIGN_STREAM)
        integer("per_condition", 1)
        integer("seed", 0, _MAX_SEED)
        integer("chunk_conditions", 1)
        integer("workers", 1)
        if not isinstance(self.split, str) or self.split not in SPLITS:
            raise ValueError(
                f"SimulationConfig.split = {self.split!r} is not allowed; "
                f"expected one of {list(SPLITS)}"
            )
        if not isinstance(self.design, str) or self.design not in DESIGNS:
            raise ValueError(
                f"SimulationConfig.design = {self.design!r} is not allowed; "
                f"expected one of {list(DESIGNS)}"
            )
        if not isinstance(self.problem_options, dict):
            raise ValueError(
                f"SimulationConfig.problem_options = {self.problem_options!r} is not allowed; "
                "expected a mapping of keyword arguments"
            )
        try:  # the problem's own checks (e.g. params.n_points), now rather than mid-campaign
            _cached_problem(
                self.problem, json.dumps(_jsonable(self.problem_options), sort_keys=True)
            )
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"SimulationConfig.problem_options = {self.problem_options!r} is not allowed: "
                f"{error}"
            ) from error

    @property
    def n_chunks(self) -> int:
        """Number of chunks ``ceil(n_conditions / chunk_conditions)``."""
        return math.ceil(self.n_conditions / self.chunk_conditions)

    @property
    def n_fields(self) -> int:
        """Number of fields ``n_conditions * per_condition``."""
        return self.n_conditions * self.per_condition


# ----------------------------------------------------------------------------- seeds
def design_seed(seed: int, split: str) -> np.random.SeedSequence:
    """The seed of the design of conditions of ``(seed, split)``."""
    return np.random.SeedSequence([int(seed), _split_key(split), DESIGN_STREAM])


def condition_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    """The seed of the latent draws of design point ``index`` of ``(seed, split)``."""
    return np.random.SeedSequence([int(seed), _split_key(split), int(index)])


def _split_key(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"split = {split!r} is not allowed; expected one of {list(SPLITS)}")
    return SPLITS[split]


# ----------------------------------------------------------------------------- problems
def problem_from_config(config: SimulationConfig) -> Problem:
    """The problem a config simulates (``get_problem(config.problem, **problem_options)``)."""
    return get_problem(config.problem, **config.problem_options)


@functools.lru_cache(maxsize=4)
def _cached_problem(name: str, options_json: str) -> Problem:
    return get_problem(name, **json.loads(options_json))


def config_from_attributes(attrs: dict[str, Any]) -> SimulationConfig:
    """The :class:`SimulationConfig` stored (as YAML) in a data set's ``config`` attribute."""
    if "config" not in attrs:
        raise CampaignError("the data set has no 'config' attribute (not made by a campaign?)")
    try:
        return from_dict(SimulationConfig, yaml.safe_load(attrs["config"]) or {})
    except (ConfigError, yaml.YAMLError) as error:
        raise CampaignError(f"the stored config cannot be read: {error}") from error


def _jsonable(value: Any) -> Any:
    return json.loads(
        json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v))
    )


def _identity(config: SimulationConfig, problem: Problem) -> dict[str, Any]:
    """What determines the data: not ``workers`` nor ``chunk_conditions``; the problem by its
    canonical attributes (so ``problem_options={}`` equals spelling out the defaults)."""
    keys = ("problem", "n_conditions", "per_condition", "seed", "split", "design")
    out = {key: getattr(config, key) for key in keys}
    out["problem_attributes"] = problem.attributes()
    return _jsonable(out)


def _differences(
    existing: dict[str, Any], requested: dict[str, Any], prefix: str = ""
) -> list[str]:
    lines = []
    for key in sorted(set(existing) | set(requested)):
        old, new = existing.get(key, "<absent>"), requested.get(key, "<absent>")
        if isinstance(old, dict) and isinstance(new, dict):
            lines += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            lines.append(f"{prefix}{key}: {old!r} there, {new!r} requested")
    return lines


# ----------------------------------------------------------------------------- parts folder
def parts_folder(out: str | Path) -> Path:
    """The folder of finished chunks of a campaign writing ``out``: ``OUT.parts`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def lock_path(out: str | Path) -> Path:
    """The lock file of a campaign writing ``out``: ``OUT.lock`` beside it, present while a
    campaign runs (``fileio.exclusive_lock``; a dead holder's file does not block)."""
    out = Path(out)
    return out.with_name(out.name + ".lock")


def _shard_path(parts: Path, chunk: int) -> Path:
    return parts / f"chunk_{chunk:05d}.npz"


def _chunk_range(config: SimulationConfig, chunk: int) -> tuple[int, int]:
    start = chunk * config.chunk_conditions
    return start, min(start + config.chunk_conditions, config.n_conditions)


@dataclass(frozen=True)
class _ChunkTask:
    """Everything a (possibly separate) process needs to simulate and save one chunk."""

    problem: str
    options_json: str
    seed: int
    split: str
    start: int
    design_rows: np.ndarray
    per_condition: int
    shard: Path


def _simulate_chunk(task: _ChunkTask) -> dict[str, np.ndarray]:
    """Simulate one chunk: ``fields``, ``latent``, ``conditions``, ``condition_index``."""
    problem = _cached_problem(task.problem, task.options_json)
    indices = np.arange(task.start, task.start + len(task.design_rows))
    rngs = [np.random.default_rng(condition_seed(task.seed, task.split, i)) for i in indices]
    result = problem.simulate(task.design_rows, task.per_condition, rngs)
    return {
        "fields": result["fields"],
        "latent": result["latent"],
        "conditions": result["conditions"],
        "condition_index": np.repeat(indices, task.per_condition).astype(np.int64),
    }


def _save_chunk(task: _ChunkTask, arrays: dict[str, np.ndarray]) -> Path:
    """Save one chunk's arrays atomically as ``task.shard`` (``.npz``); returns its path."""
    with atomic_path(task.shard, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return task.shard


def _run_chunk(task: _ChunkTask) -> Path:
    """Simulate one chunk and save it atomically as ``.npz``; returns the shard path."""
    return _save_chunk(task, _simulate_chunk(task))


def _load_shard(path: Path, task: _ChunkTask, problem: Problem) -> dict[str, np.ndarray]:
    """Read and check one shard; ``ValueError``/``OSError`` if it is not what ``task`` makes."""
    m = len(task.design_rows) * task.per_condition
    expected = {
        "fields": (m, len(problem.channels), *problem.grid_shape),
        "latent": (m, *problem.latent_shape),
        "conditions": (m, len(problem.conditions)),
        "condition_index": (m,),
    }
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in expected}
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise ValueError(f"{key} has shape {arrays[key].shape}, expected {shape}")
    indices = np.arange(task.start, task.start + len(task.design_rows))
    if not np.array_equal(arrays["condition_index"], np.repeat(indices, task.per_condition)):
        raise ValueError("condition_index does not match the chunk")
    if not np.array_equal(arrays["conditions"], np.repeat(task.design_rows, task.per_condition, 0)):
        raise ValueError("conditions do not match the design")
    if not all(np.all(np.isfinite(a)) for a in arrays.values()):
        raise ValueError("non-finite values")
    return arrays


def _say(message: str, progress: bool) -> None:
    logger.info(message)
    if progress:
        print(message, file=sys.stderr, flush=True)


def _manifest(config: SimulationConfig, problem: Problem, design: np.ndarray) -> dict[str, Any]:
    return {
        "format": _MANIFEST_FORMAT,
        "identity": _identity(config, problem),
        "chunk_conditions": config.chunk_conditions,
        "config": to_dict(config),
        "design": design.tolist(),
    }


def _prepare_parts(
    parts: Path, config: SimulationConfig, problem: Problem, overwrite: bool
) -> np.ndarray:
    """Create or check the parts folder; returns the design ``(M, k)`` to use."""
    from scorepde.data.design import design_conditions

    manifest_path = parts / _MANIFEST
    if parts.exists():
        existing = None
        try:
            existing = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            existing = None
        same = (
            isinstance(existing, dict)
            and existing.get("format") == _MANIFEST_FORMAT
            and existing.get("identity") == _identity(config, problem)
            and existing.get("chunk_conditions") == config.chunk_conditions
        )
        if same:
            design = np.asarray(existing["design"], dtype=float)
            if design.shape == (config.n_conditions, len(problem.conditions)):
                return design
        if not overwrite:
            if isinstance(existing, dict) and "identity" in existing:
                diff = _differences(existing["identity"], _identity(config, problem))
                if existing.get("chunk_conditions") != config.chunk_conditions:
                    diff.append(
                        f"chunk_conditions: {existing.get('chunk_conditions')!r} there, "
                        f"{config.chunk_conditions!r} requested"
                    )
                what = "; ".join(diff) or "unreadable design"
            else:
                what = f"no readable {_MANIFEST}"
            raise CampaignError(
                f"{parts} holds chunks of a different campaign ({what}). Rerun with the same "
                "settings to resume, or with --overwrite (overwrite=True) to discard them."
            )
        shutil.rmtree(parts)
    design = design_conditions(
        problem.conditions,
        config.n_conditions,
        design_seed(config.seed, config.split),
        config.design,
    )
    parts.mkdir(parents=True, exist_ok=True)
    atomic_write_text(manifest_path, json.dumps(_manifest(config, problem, design), indent=1))
    return design


def _existing_output(out: Path, config: SimulationConfig, problem: Problem) -> bool:
    """True if ``out`` is a complete data set of this config; error if it is another one."""
    from scorepde.data.schema import DatasetError, read_attributes

    try:
        attrs = read_attributes(out)
        stored = config_from_attributes(attrs)
        stored_problem = problem_from_config(stored)
    except (DatasetError, CampaignError, ValueError) as error:
        raise CampaignError(
            f"{out} exists and is not a data set this campaign can reuse ({error}); "
            "use --overwrite (overwrite=True) to replace it"
        ) from error
    old, new = _identity(stored, stored_problem), _identity(config, problem)
    if old != new:
        diff = "; ".join(_differences(old, new))
        raise CampaignError(
            f"{out} exists with a different config ({diff}); use --overwrite (overwrite=True) "
            "to replace it, or choose another --out"
        )
    return True


# ----------------------------------------------------------------------------- the campaign
def simulate_campaign(
    config: SimulationConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    scheduler: str | None = None,
) -> Path:
    """Run (or resume) a simulation campaign and write one ``scorepde.fields/2`` HDF5 file.

    Args:
        config: the recipe; ``n_conditions * per_condition`` fields are simulated.
        out: target ``.h5`` file. Finished chunks live in ``OUT.parts/`` until it is written.
        overwrite: replace an existing output or parts folder made with a different config
            (a parts folder with the same config is still resumed: same config, same data),
            and regenerate an existing output with the same config.
        progress: print status lines and a progress bar (tqdm, only on a terminal) to stderr.
        scheduler: None (default: this process, or ``config.workers`` local processes), the
            address of a running dask.distributed scheduler (e.g. ``"tcp://10.0.0.5:8786"``),
            or ``"local"`` to start a ``LocalCluster`` of ``config.workers`` processes for this
            campaign. Needs the ``dask`` extra. The same chunks, shards, manifest and resume
            logic either way, and the same data.

    Returns:
        ``out`` as a ``Path``.

    Raises:
        CampaignError: ``out`` or its parts folder belongs to a different config and
            ``overwrite`` is False; another live process is writing ``out`` (it holds
            ``OUT.lock``; the message names its pid and host); or ``scheduler`` is given and
            dask.distributed is not installed, or the scheduler cannot be reached.
    """
    config.validate()
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise CampaignError(
            f"scheduler = {scheduler!r} is not allowed; expected None, 'local' or the address "
            "of a dask.distributed scheduler such as 'tcp://host:8786'"
        )
    if scheduler is not None:
        _require_distributed(scheduler)  # fail before any work if dask is missing
    out = Path(out)
    if out.is_dir():
        raise CampaignError(f"out = {str(out)!r} is a folder; expected the path of an .h5 file")
    try:
        with exclusive_lock(lock_path(out)):
            return _simulate_locked(config, out, overwrite, progress, scheduler)
    except LockedError as error:
        raise CampaignError(
            f"{out} is being written by another campaign ({error.holder or 'holder unknown'}; "
            f"lock {error.lock}); wait for it to finish, stop it, or choose another --out"
        ) from None


def _simulate_locked(
    config: SimulationConfig, out: Path, overwrite: bool, progress: bool, scheduler: str | None
) -> Path:
    """:func:`simulate_campaign` once the campaign holds the lock on ``out``."""
    parts = parts_folder(out)
    for stale in stale_temporaries(out):  # left by a writer killed before its rename
        _say(f"removing {stale}, left by an interrupted write", progress)
        stale.unlink(missing_ok=True)
    problem = problem_from_config(config)
    if out.exists() and not overwrite and _existing_output(out, config, problem):
        _say(f"{out} is already complete for this config; nothing to do", progress)
        if parts.exists():
            shutil.rmtree(parts)
        return out

    design = _prepare_parts(parts, config, problem, overwrite)
    options_json = json.dumps(_jsonable(config.problem_options), sort_keys=True)
    tasks = []
    for chunk in range(config.n_chunks):
        start, stop = _chunk_range(config, chunk)
        tasks.append(
            _ChunkTask(
                problem=config.problem,
                options_json=options_json,
                seed=config.seed,
                split=config.split,
                start=start,
                design_rows=design[start:stop],
                per_condition=config.per_condition,
                shard=_shard_path(parts, chunk),
            )
        )

    todo = []
    for task in tasks:
        if not task.shard.exists():
            todo.append(task)
            continue
        try:
            _load_shard(task.shard, task, problem)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            warnings.warn(
                f"chunk file {task.shard} is unreadable ({error}); simulating it again",
                RuntimeWarning,
                stacklevel=2,
            )
            task.shard.unlink()
            todo.append(task)
    done = len(tasks) - len(todo)
    if done:
        _say(f"resuming: {done}/{len(tasks)} chunks done (in {parts})", progress)
    _run_tasks(todo, config, total=len(tasks), done=done, progress=progress, scheduler=scheduler)

    arrays = [_load_shard(task.shard, task, problem) for task in tasks]
    _write_output(out, config, problem, arrays)
    shutil.rmtree(parts)
    return out


def _run_tasks(
    todo: list[_ChunkTask],
    config: SimulationConfig,
    *,
    total: int,
    done: int,
    progress: bool,
    scheduler: str | None = None,
) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        initial=done,
        unit="chunk",
        desc=f"simulate {config.problem}/{config.split}",
        disable=None if progress else True,
        file=sys.stderr,
    )
    try:
        if scheduler is not None:
            if todo:
                _run_tasks_dask(todo, scheduler, config.workers, bar.update)
            return
        if config.workers == 1 or len(todo) <= 1:
            for task in todo:
                _run_chunk(task)
                bar.update(1)
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(config.workers, len(todo)), mp_context=context) as pool:
            pending = {pool.submit(_run_chunk, task) for task in todo}
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for future in finished:
                        future.result()  # re-raises a worker's error
                        bar.update(1)
            except BaseException:
                # chunks already running finish and are saved; queued ones are dropped
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        bar.close()


def _require_distributed(scheduler: str) -> Any:
    """The ``distributed`` module, or a CampaignError saying how to install it."""
    try:
        import distributed
    except ImportError as error:
        raise CampaignError(
            f"scheduler = {scheduler!r} needs dask.distributed, which is not installed; "
            "install it with: pip install 'scorepde[dask]'"
        ) from error
    return distributed


def _dask_client(scheduler: str, workers: int) -> tuple[Any, Any]:
    """``(client, cluster)`` for ``scheduler``; ``cluster`` is None unless ``"local"``."""
    distributed = _require_distributed(scheduler)
    Client, LocalCluster = distributed.Client, distributed.LocalCluster
    if scheduler == "local":
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="30s"), None
    except (OSError, TimeoutError, ValueError) as error:
        raise CampaignError(
            f"cannot connect to the dask scheduler at {scheduler!r} ({error}); give the address "
            "of a running scheduler (e.g. 'tcp://host:8786') or 'local'"
        ) from error


def _run_tasks_dask(
    todo: list[_ChunkTask], scheduler: str, workers: int, advance: Callable[[int], object]
) -> None:
    """Simulate ``todo`` on a dask cluster; each finished chunk is saved here at once."""
    client, cluster = _dask_client(scheduler, workers)
    from distributed import as_completed

    try:
        futures = {client.submit(_simulate_chunk, task, pure=False): task for task in todo}
        try:
            for future in as_completed(futures):
                _save_chunk(futures[future], future.result())  # re-raises a worker's error
                advance(1)
        except BaseException:
            # finished chunks are saved; pending ones are dropped
            client.cancel(list(futures))
            raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _write_output(
    out: Path,
    config: SimulationConfig,
    problem: Problem,
    shards: list[dict[str, np.ndarray]],
) -> None:
    from scorepde.data.schema import write_dataset
    from scorepde.provenance import provenance

    fields = np.concatenate([s["fields"] for s in shards], axis=0)
    arrays: dict[str, np.ndarray] = {
        name: fields[:, ch] for ch, name in enumerate(problem.channels)
    }
    arrays[problem.latent_name] = np.concatenate([s["latent"] for s in shards], axis=0)
    arrays["conditions"] = np.concatenate([s["conditions"] for s in shards], axis=0)
    arrays["condition_index"] = np.concatenate([s["condition_index"] for s in shards], axis=0)
    arrays["coordinates"] = tuple(np.asarray(axis, dtype=float) for axis in problem.coordinates)
    attrs: dict[str, Any] = dict(problem.attributes())
    attrs.update(
        {
            "problem": problem.name,
            "channels": list(problem.channels),
            "channel_units": list(problem.channel_units),
            "latent_name": problem.latent_name,
            "latent_unit": problem.latent_unit,
            "condition_names": list(problem.condition_names),
            "condition_units": list(problem.condition_units),
            "axis_names": list(problem.field_spec.axis_names),
            "axis_units": list(problem.field_spec.axis_units),
            "seed": config.seed,
            "split": config.split,
            "split_key": SPLITS[config.split],
            "design": config.design,
            "n_conditions": config.n_conditions,
            "per_condition": config.per_condition,
            "config": yaml.safe_dump(to_dict(config), sort_keys=False),
            "seeding": (
                "design: SeedSequence([seed, split_key, 2**32 - 1]); latent draws of design "
                "point i: default_rng(SeedSequence([seed, split_key, i]))"
            ),
        }
    )
    attrs.update(provenance())
    write_dataset(out, arrays, attrs)
