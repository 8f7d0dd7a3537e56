"""One training process of ``tests/test_training_distributed.py`` (launched by torchrun).

``python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed_worker.py
OUT`` trains the same tiny model as :func:`train_runs` in every process and saves what each
rank ended with to ``OUT/rank<r>.pt``; the test runs :func:`train_runs` once more in a single
process and compares. :func:`train_runs` also trains on a ``StreamingSource`` and on a
``GroupedSource`` of ``Conditioning`` groups (vector, fields, labels; the test backbone
``ConditioningNet`` of ``test_training_sources.py``). Not a test module itself (pytest collects
``test_*.py`` only).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scorepde.nets import registry
from scorepde.nets.registry import BackboneConfig
from scorepde.training import (
    GroupedSource,
    ModelConfig,
    StreamingSource,
    TensorSource,
    TrainConfig,
    Trainer,
    build_score_model,
)
from scorepde.training import trainer as trainer_module

N_POINTS = 16
N_TRAIN = 21  # global batch 8: batches of 8, 8 and 5 rows; 2 ranks: 4+4, 4+4, 2+3 rows
EPOCHS = 16
SOURCE_EPOCHS = 4  # the StreamingSource and GroupedSource runs: 21 rows per epoch, as above


def tiny_model(seed: int = 0) -> torch.nn.Module:
    options = {
        "in_channels": 2,
        "out_channels": 2,
        "channels": 8,
        "blocks": 2,
        "cond_dim": 1,
        "time_embedding_dim": 16,
        "film_hidden": 16,
    }
    config = ModelConfig(backbone=BackboneConfig("film", options), parametrisation="eps")
    torch.manual_seed(seed)
    return build_score_model(config)


def toy_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised fields (n, 2, 16) whose level follows the condition (n, 1) in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    cond = torch.rand(n, 1, generator=generator) * 2 - 1
    x = cond[:, :, None] * torch.ones(n, 2, N_POINTS)
    return x + 0.1 * torch.randn(n, 2, N_POINTS, generator=generator), cond


def train_config(epochs: int = EPOCHS) -> TrainConfig:
    return TrainConfig(
        epochs=epochs,
        batch_size=8,
        learning_rate=3e-3,
        min_learning_rate=1e-4,
        checkpoint_every=epochs // 2,
        num_threads=1,
        plot=False,
        device="cpu",
    )


class _Interrupt(Exception):
    pass


def _stop_halfway(epoch: int, row: dict[str, float]) -> None:
    if epoch == EPOCHS // 2:
        raise _Interrupt


def train_runs(out: Path) -> dict[str, Any]:
    """A straight run in ``out/straight`` and an interrupted + resumed one in
    ``out/interrupted``; returns final weights, EMA weights, losses and file-write counts."""
    writes = {"checkpoints": 0, "atomic_texts": 0, "opens": 0}
    save_checkpoint = trainer_module.save_checkpoint
    atomic_write_text = trainer_module.atomic_write_text

    def counting_save_checkpoint(*args: Any, **kwargs: Any) -> Path:
        writes["checkpoints"] += 1
        return save_checkpoint(*args, **kwargs)

    def counting_atomic_write_text(*args: Any, **kwargs: Any) -> None:
        writes["atomic_texts"] += 1
        atomic_write_text(*args, **kwargs)

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        writes["opens"] += 1
        return open(*args, **kwargs)

    trainer_module.save_checkpoint = counting_save_checkpoint
    trainer_module.atomic_write_text = counting_atomic_write_text
    trainer_module.open = counting_open  # shadows the builtin in the trainer module only
    try:
        x, cond = toy_data(N_TRAIN, seed=1)
        x_val, cond_val = toy_data(8, seed=2)
        straight = Trainer(tiny_model(), train_config(), out / "straight")
        result = straight.fit(x, cond, x_val, cond_val, progress=False)
        try:
            Trainer(tiny_model(), train_config(), out / "interrupted").fit(
                x, cond, x_val, cond_val, progress=False, callback=_stop_halfway
            )
        except _Interrupt:
            pass
        resumed = Trainer(tiny_model(seed=123), train_config(), out / "interrupted")
        resumed_result = resumed.fit(x, cond, x_val, cond_val, progress=False)
    finally:
        trainer_module.save_checkpoint = save_checkpoint
        trainer_module.atomic_write_text = atomic_write_text
        del trainer_module.open
    streaming, grouped = _source_runs(out)
    return {
        "rank": straight.distributed.rank,
        "world_size": straight.distributed.world_size,
        "model": {k: v.detach().clone() for k, v in straight.model.state_dict().items()},
        "ema": {k: v.clone() for k, v in straight.ema.averaged_state_dict().items()},
        "train_loss": result.history["train_loss"],
        "val_loss": result.history["val_loss"],
        "resumed_model": {k: v.detach().clone() for k, v in resumed.model.state_dict().items()},
        "resumed_train_loss": resumed_result.history["train_loss"],
        "writes": writes,
        "streaming_model": streaming.model.state_dict(),
        "streaming_train_loss": streaming.history["train_loss"],
        "grouped_model": grouped.model.state_dict(),
        "grouped_train_loss": grouped.history["train_loss"],
    }


def streaming_draw(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fresh normalised fields (n, 2, 16) around the condition (n, 1) in [-1, 1] (numpy)."""
    cond = rng.uniform(-1.0, 1.0, size=(n, 1))
    x = cond[:, :, None] * np.ones((n, 2, N_POINTS)) + 0.1 * rng.standard_normal((n, 2, N_POINTS))
    return x, cond


def _source_runs(out: Path) -> tuple[Trainer, Trainer]:
    """Trainers after a StreamingSource run and a GroupedSource (Conditioning) run."""
    from test_training_sources import ConditioningNet, conditioning_model, toy_conditioning

    streaming = Trainer(tiny_model(), train_config(SOURCE_EPOCHS), out / "streaming")
    source = StreamingSource(streaming_draw, samples_per_epoch=N_TRAIN, seed=3)
    streaming.fit(source=source, progress=False)
    registry.BACKBONES["conditioning_test"] = ConditioningNet
    try:
        x0, c0 = toy_conditioning(15, seed=1, label=0)
        x1, c1 = toy_conditioning(5, seed=2, label=1)
        groups = GroupedSource(
            [TensorSource(x0, c0), TensorSource(x1, c1)], [1.0, 1.0], samples_per_epoch=N_TRAIN
        )
        grouped = Trainer(conditioning_model(), train_config(SOURCE_EPOCHS), out / "grouped")
        grouped.fit(source=groups, progress=False)
    finally:
        del registry.BACKBONES["conditioning_test"]
    return streaming, grouped


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    out = Path(argv[0])
    record = train_runs(out)
    torch.save(record, out / f"rank{record['rank']}.pt")


if __name__ == "__main__":
    main(sys.argv[1:])
