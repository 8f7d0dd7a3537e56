"""Data-parallel training: 2 CPU processes under torchrun (gloo) against one process.

The 2-rank run is launched once per session (``python -m torch.distributed.run --standalone``,
about 15-25 s on 2 cores) by a module fixture; the tests read what each rank saved.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

import distributed_worker as worker  # tests/ is on sys.path under pytest
import scorepde
from helpers import tiny_recipe_dict
from scorepde.training import TrainConfig, Trainer, distributed
from scorepde.training.config import resolve_num_threads, usable_physical_cores

WORKER = Path(worker.__file__).resolve()
SRC = Path(scorepde.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """Run the worker on 2 gloo ranks; returns its folder and each rank's record."""
    out = tmp_path_factory.mktemp("ddp")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(WORKER),
        str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    records = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    return out, records


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    torch.set_num_threads(1)
    return worker.train_runs(tmp_path_factory.mktemp("single"))


def test_ranks_end_with_identical_weights_and_the_loss_falls(two_ranks) -> None:
    _, (rank0, rank1) = two_ranks
    assert (rank0["rank"], rank1["rank"]) == (0, 1)
    assert rank0["world_size"] == rank1["world_size"] == 2
    for part in ("model", "ema", "resumed_model", "streaming_model", "grouped_model"):
        assert rank0[part].keys() == rank1[part].keys()
        for key in rank0[part]:
            assert torch.equal(rank0[part][key], rank1[part][key]), (part, key)
    # the epoch losses are all-reduced: the same history on both ranks
    assert rank0["train_loss"] == rank1["train_loss"]
    loss = rank0["train_loss"]
    assert len(loss) == worker.EPOCHS
    assert np.mean(loss[-4:]) < 0.75 * np.mean(loss[:4])  # ~0.97 -> ~0.58


def test_only_rank_zero_writes_files(two_ranks) -> None:
    out, (rank0, rank1) = two_ranks
    # straight: checkpoints at epochs 8 and 16; interrupted: 8, then 16 after resuming
    assert rank0["writes"]["checkpoints"] == 4
    assert rank0["writes"]["atomic_texts"] == 3  # history.csv at the start of each fit
    assert rank0["writes"]["opens"] == 2 * worker.EPOCHS  # one history row per epoch
    assert rank1["writes"] == {"checkpoints": 0, "atomic_texts": 0, "opens": 0}
    names = sorted(p.name for p in (out / "straight" / "checkpoints").iterdir())
    assert names == ["epoch-000008", "epoch-000016", "latest"]
    rows = (out / "straight" / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + worker.EPOCHS


def test_resume_on_two_ranks_matches_the_straight_run(two_ranks) -> None:
    _, (rank0, _) = two_ranks
    for key, value in rank0["model"].items():
        torch.testing.assert_close(rank0["resumed_model"][key], value, rtol=0, atol=1e-6)
    np.testing.assert_allclose(rank0["resumed_train_loss"], rank0["train_loss"], atol=1e-7)


def test_two_ranks_match_one_process_with_the_same_global_batch(two_ranks, one_process) -> None:
    """Same permutation, same global batches, same times and noise: only the order of the
    floating-point sums differs (per-rank partial sums, then DDP's average). Measured after
    48 steps: weights within 6e-8, losses within 1e-7 relative; the tolerances leave 10x."""
    _, (rank0, _) = two_ranks
    assert one_process["world_size"] == 1
    np.testing.assert_allclose(rank0["train_loss"], one_process["train_loss"], rtol=1e-6)
    np.testing.assert_allclose(rank0["val_loss"], one_process["val_loss"], rtol=1e-6)
    for part in ("model", "ema"):
        for key, value in one_process[part].items():
            torch.testing.assert_close(rank0[part][key], value, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("source", ["streaming", "grouped"])
def test_sources_give_every_rank_the_global_batch(two_ranks, one_process, source) -> None:
    """A StreamingSource (seeded per batch) and a GroupedSource of Conditioning groups (drawn
    from the shared generator): both ranks end equal, and equal to one process up to the
    order of the floating-point sums (12 steps; same tolerances as above)."""
    _, (rank0, _) = two_ranks
    np.testing.assert_allclose(
        rank0[f"{source}_train_loss"], one_process[f"{source}_train_loss"], rtol=1e-6
    )
    assert len(rank0[f"{source}_train_loss"]) == worker.SOURCE_EPOCHS
    for key, value in one_process[f"{source}_model"].items():
        torch.testing.assert_close(rank0[f"{source}_model"][key], value, rtol=1e-6, atol=1e-6)


def test_environment_is_parsed_and_checked() -> None:
    assert distributed.context_from_environment({}) == distributed.DistributedContext()
    context = distributed.context_from_environment(
        {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    )
    assert (context.rank, context.world_size, context.local_rank) == (3, 4, 1)
    assert context.is_distributed and not context.is_main
    with pytest.raises(ValueError, match="RANK=4"):
        distributed.context_from_environment({"RANK": "4", "WORLD_SIZE": "4", "LOCAL_RANK": "0"})
    with pytest.raises(ValueError, match="LOCAL_RANK is not set"):
        distributed.context_from_environment({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        distributed.context_from_environment({"RANK": "0", "WORLD_SIZE": "two", "LOCAL_RANK": "0"})


def test_shards_cover_a_batch_once() -> None:
    for world_size in (1, 2, 3, 4):
        for batch in range(world_size, 12):
            rows = [
                list(range(batch))[distributed.DistributedContext(r, world_size).shard(batch)]
                for r in range(world_size)
            ]
            assert list(itertools.chain(*rows)) == list(range(batch))
            sizes = [len(r) for r in rows]
            assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_global_batch_must_divide_among_the_ranks(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(distributed, "setup", lambda: distributed.DistributedContext(0, 3))
    config = TrainConfig(epochs=1, batch_size=8, device="cpu", num_threads=1, plot=False)
    with pytest.raises(ValueError, match=r"batch_size = 8 .* processes \(3.* e\.g\. 9"):
        Trainer(worker.tiny_model(), config, tmp_path)


def test_thread_count_defaults_to_usable_physical_cores() -> None:
    cores = usable_physical_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    assert resolve_num_threads("auto") == cores
    assert resolve_num_threads("auto", processes_per_node=2 * cores) == 1
    assert resolve_num_threads(None) is None and resolve_num_threads(3) == 3
    with pytest.raises(ValueError, match="num_threads"):
        TrainConfig(num_threads="many")
    with pytest.raises(ValueError, match="num_threads"):
        resolve_num_threads(0)


@pytest.mark.slow
def test_cli_train_under_torchrun(tmp_path: Path) -> None:
    """``torchrun --nproc-per-node 2 ... scorepde train RECIPE``: the same command and recipe as
    a single-process run; rank 0 simulates, writes the history and exports the model (~30 s)."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict()))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"),
        *("--no-python", sys.executable, "-c", "from scorepde.cli import app; app()"),
        *("train", str(recipe), "--out", str(tmp_path / "run"), "--quiet"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.stdout.count("x 2 processes") == 1  # pipeline logs come from rank 0 only
    rows = (tmp_path / "run" / "training" / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + 2
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
