"""Batch sources of the trainer (tensors, weighted groups, streamed simulations) and training on
a :class:`~scorepde.conditioning.Conditioning` with vector, field and label parts.

Tiny models on CPU with one thread. ``ConditioningNet`` (a test backbone taking a Conditioning)
is also used by ``distributed_worker.py``.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import warnings

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from helpers import tiny_train_config as config
from scorepde.conditioning import Conditioning, ConditioningSpec
from scorepde.nets import registry
from scorepde.nets.registry import BackboneConfig
from scorepde.training import (
    GroupedSource,
    ModelConfig,
    StreamingSource,
    TensorSource,
    Trainer,
    build_score_model,
    epoch_layout,
    latest_checkpoint,
    load_checkpoint,
)

N_POINTS = 16


class ConditioningNet(nn.Module):
    """A test backbone for ``Conditioning(vector (B, k), fields (B, Cy, N), labels (B,))``: the
    fields join x as input channels; the vector, the label embedding and the noise label shift
    the hidden channels."""

    def __init__(
        self,
        channels: int = 2,
        field_channels: int = 1,
        vector_dim: int = 1,
        n_labels: int = 2,
        hidden: int = 16,
    ) -> None:
        super().__init__()
        self.field_channels = field_channels
        self.inp = nn.Conv1d(channels + field_channels, hidden, 3, padding=1)
        self.vector = nn.Linear(max(vector_dim, 1), hidden) if vector_dim else None
        self.labels = nn.Embedding(n_labels, hidden) if n_labels else None
        self.time = nn.Linear(1, hidden)
        self.mid = nn.Conv1d(hidden, hidden, 3, padding=1)
        self.out = nn.Conv1d(hidden, channels, 3, padding=1)

    def forward(self, x: Tensor, noise_label: Tensor, cond: Conditioning) -> Tensor:
        if not isinstance(cond, Conditioning):
            raise TypeError(f"ConditioningNet takes a Conditioning, got {type(cond).__name__}")
        inputs = torch.cat([x, cond.fields], 1) if self.field_channels else x
        shift = self.time(noise_label[:, None])
        if self.vector is not None:
            shift = shift + self.vector(cond.vector)
        if self.labels is not None:
            shift = shift + self.labels(cond.labels)
        h = torch.nn.functional.silu(self.inp(inputs) + shift[:, :, None])
        return self.out(torch.nn.functional.silu(self.mid(h)))


@pytest.fixture
def conditioning_backbone(monkeypatch):
    monkeypatch.setitem(registry.BACKBONES, "conditioning_test", ConditioningNet)


def film_model(cond_dim: int = 1, seed: int = 0, parametrisation: str = "edm"):
    options = {
        "in_channels": 2,
        "out_channels": 2,
        "channels": 8,
        "blocks": 2,
        "cond_dim": cond_dim,
        "time_embedding_dim": 16,
        "film_hidden": 16,
    }
    config = ModelConfig(backbone=BackboneConfig("film", options), parametrisation=parametrisation)
    torch.manual_seed(seed)
    return build_score_model(config)


def conditioning_model(seed: int = 0, **options):
    config = ModelConfig(
        backbone=BackboneConfig("conditioning_test", options), parametrisation="eps"
    )
    torch.manual_seed(seed)
    return build_score_model(config)


def toy_data(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """Normalised fields (n, 2, 16) whose level follows the condition (n, 1) in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    cond = torch.rand(n, 1, generator=generator) * 2 - 1
    x = cond[:, :, None] * torch.ones(n, 2, N_POINTS)
    return x + 0.1 * torch.randn(n, 2, N_POINTS, generator=generator), cond


def toy_conditioning(n: int, seed: int, label: int | None = None) -> tuple[Tensor, Conditioning]:
    """Fields (n, 2, 16) = observed field (n, 1, 16) + 0.5 label + vector level, plus noise;
    labels in {0, 1} (or all ``label``)."""
    generator = torch.Generator().manual_seed(seed)
    vector = torch.rand(n, 1, generator=generator) * 2 - 1
    grid = torch.linspace(0, 1, N_POINTS)
    phase = torch.rand(n, 1, 1, generator=generator) * 2 * math.pi
    fields = torch.sin(2 * math.pi * grid + phase)
    if label is None:
        labels = torch.randint(0, 2, (n,), generator=generator)
    else:
        labels = torch.full((n,), label, dtype=torch.long)
    x = fields + 0.5 * labels[:, None, None] + vector[:, :, None]
    x = x.expand(n, 2, N_POINTS) + 0.05 * torch.randn(n, 2, N_POINTS, generator=generator)
    return x, Conditioning(vector=vector, fields=fields, labels=labels)


def streaming_draw(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A cheap 'simulator' already normalised: numpy fields (n, 2, 16), conditions (n, 1)."""
    cond = rng.uniform(-1.0, 1.0, size=(n, 1))
    x = cond[:, :, None] * np.ones((n, 2, N_POINTS)) + 0.1 * rng.standard_normal((n, 2, N_POINTS))
    return x, cond


def weights_hash(trainer: Trainer) -> str:
    """sha256 over the names and bytes of the final weights and EMA weights."""
    digest = hashlib.sha256()
    for state in (trainer.model.state_dict(), trainer.ema.averaged_state_dict()):
        for key in sorted(state):
            digest.update(key.encode())
            digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------- TensorSource

#: Final weights of a 3-epoch run (21 samples, batch 8, validation, seed 7) by the trainer of
#: commit 7bd2c02 (before batch sources), torch 2.13.0 on x86_64 CPU, one thread; recorded by
#: running ``_reference_run`` there. Bit patterns depend on the CPU's kernels, so the
#: comparison is opt-in (``SCOREPDE_REFERENCE_HASHES=1``); CI machines of the recording's kind
#: passed it until 2026-12-02.
_REFERENCE_TORCH = "2.13.0"
_REFERENCE_HASHES = {
    "conditional": "b862b2b3573cc024effdb9a55ddf8c741886df8bc3e1ea24409161c031b51186",
    "unconditional": "f889608ba85ab35c47225bce22c9f94677618fd08bc587768d4511985daac422",
}


def _reference_data() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(1)
    cond = torch.rand(21, 1, generator=generator) * 2 - 1
    x = cond[:, :, None] * torch.ones(21, 2, N_POINTS)
    x = x + 0.1 * torch.randn(21, 2, N_POINTS, generator=generator)
    x_val = torch.randn(6, 2, N_POINTS, generator=generator)
    cond_val = torch.rand(6, 1, generator=generator)
    return x, cond, x_val, cond_val


def _reference_run(run_dir, conditional: bool, explicit_source: bool) -> Trainer:
    x, cond, x_val, cond_val = _reference_data()
    if not conditional:
        cond = cond_val = None
    trainer = Trainer(
        film_model(cond_dim=1 if conditional else 0),
        config(epochs=3, checkpoint_every=3, seed=7),
        run_dir,
    )
    if explicit_source:
        trainer.fit(
            source=TensorSource(x, cond),
            val_source=TensorSource(x_val, cond_val),
            progress=False,
        )
    else:
        trainer.fit(x, cond, x_val, cond_val, progress=False)
    return trainer


@pytest.mark.parametrize("kind", ["conditional", "unconditional"])
def test_tensor_source_is_bit_identical_to_the_trainer_before_sources(tmp_path, kind):
    conditional = kind == "conditional"
    plain = weights_hash(_reference_run(tmp_path / "plain", conditional, explicit_source=False))
    explicit = weights_hash(_reference_run(tmp_path / "source", conditional, explicit_source=True))
    assert explicit == plain
    if torch.__version__.split("+")[0] != _REFERENCE_TORCH or not _x86_64():
        pytest.skip(f"reference hash recorded with torch {_REFERENCE_TORCH} on x86_64")
    if os.environ.get("SCOREPDE_REFERENCE_HASHES") != "1":
        # the same torch build rounds differently on other CPUs (an AVX-512 Xeon gave other
        # hashes, whatever ATEN_CPU_CAPABILITY and thread count, 2026-12-02): opt in on a
        # machine of the recording's kind
        pytest.skip("set SCOREPDE_REFERENCE_HASHES=1 to compare with the recorded hashes")
    assert plain == _REFERENCE_HASHES[kind]


def _x86_64() -> bool:
    import platform

    return platform.machine() in ("x86_64", "AMD64")


def test_plain_tensor_checkpoints_keep_their_metadata_and_state(tmp_path):
    x, cond = toy_data(12, seed=1)
    trainer = Trainer(film_model(), config(epochs=1, checkpoint_every=1), tmp_path)
    trainer.fit(x, cond, progress=False)
    loaded = load_checkpoint(latest_checkpoint(tmp_path))
    assert loaded.metadata["condition_dim"] == 1
    assert loaded.metadata["sample_shape"] == [2, N_POINTS]
    assert "conditioning" not in loaded.metadata
    assert loaded.trainer_state["data"] == {"n_train": 12, "batch_size": 8, "steps_per_epoch": 2}
    assert "source" not in loaded.trainer_state


def test_epoch_layout_drops_only_a_last_batch_smaller_than_the_minimum():
    assert epoch_layout(21, 8) == [8, 8, 5]
    assert epoch_layout(21, 8, 5) == [8, 8, 5]
    assert epoch_layout(21, 8, 6) == [8, 8]
    assert epoch_layout(16, 8, 4) == [8, 8]
    assert epoch_layout(3, 8) == [3]
    with pytest.raises(ValueError, match="batch_size = 0"):
        epoch_layout(4, 0)


def test_tensor_source_batches_are_a_permutation_slice_by_slice():
    x = torch.arange(21.0)[:, None, None].expand(21, 1, 4)
    source = TensorSource(x, torch.arange(21.0)[:, None])
    generator = torch.Generator().manual_seed(3)
    batches = list(source.batches(1, 8, generator, min_last_batch=1))
    assert [b.shape[0] for b, _ in batches] == [8, 8, 5]
    rows = torch.cat([b[:, 0, 0] for b, _ in batches])
    conds = torch.cat([c[:, 0] for _, c in batches])
    assert torch.equal(rows, conds)  # x and cond stay paired
    expected = torch.randperm(21, generator=torch.Generator().manual_seed(3)).float()
    assert torch.equal(rows, expected)


# ---------------------------------------------------------------------- GroupedSource


def test_grouped_frequencies_follow_the_weights():
    """Rows of each group are tagged by value; 40 000 draws. Each group frequency must lie
    within 4.5 binomial standard deviations (~0.011 at p = 5/8) of weight / sum(weights), and
    each row of the smallest group within 4.5 sd of uniform."""
    sizes, weights = [50, 10, 5], [1.0, 2.0, 5.0]
    groups = [
        TensorSource(g * 1000.0 + torch.arange(float(n))[:, None, None].expand(n, 1, 2))
        for g, n in enumerate(sizes)
    ]
    draws = 40_000
    source = GroupedSource(groups, weights, samples_per_epoch=draws)
    generator = torch.Generator().manual_seed(11)
    values = torch.cat([x[:, 0, 0] for x, _ in source.batches(1, 1000, generator)])
    assert values.shape == (draws,)
    group = (values // 1000).long()
    probabilities = np.array(weights) / sum(weights)
    frequencies = np.bincount(group.numpy(), minlength=3) / draws
    tolerance = 4.5 * np.sqrt(probabilities * (1 - probabilities) / draws)
    assert np.all(np.abs(frequencies - probabilities) < tolerance), (frequencies, probabilities)
    small = (values[group == 2] - 2000).long()
    counts = np.bincount(small.numpy(), minlength=5)
    expected = small.numel() / 5
    assert np.all(np.abs(counts - expected) < 4.5 * np.sqrt(expected * (1 - 1 / 5))), counts
    # every value drawn is a real row of its group
    assert bool(((values % 1000) < torch.tensor(sizes, dtype=values.dtype)[group]).all())


def test_grouped_source_keeps_conditioning_paired_with_its_rows():
    x0, c0 = toy_conditioning(6, seed=1, label=0)
    x1, c1 = toy_conditioning(4, seed=2, label=1)
    source = GroupedSource([TensorSource(x0, c0), TensorSource(x1, c1)], [1, 1])
    assert source.samples_per_epoch == 10
    assert source.condition_spec == ConditioningSpec(1, 1, (N_POINTS,), 2)
    x_all, c_all = torch.cat([x0, x1]), Conditioning.cat([c0, c1])
    for x, cond in source.batches(1, 4, torch.Generator().manual_seed(0)):
        assert isinstance(cond, Conditioning) and cond.labels.dtype == torch.long
        for row in range(x.shape[0]):
            match = [i for i in range(10) if torch.equal(x_all[i], x[row])]
            assert len(match) == 1
            assert torch.equal(c_all.vector[match[0]], cond.vector[row])
            assert torch.equal(c_all.fields[match[0]], cond.fields[row])
            assert int(c_all.labels[match[0]]) == int(cond.labels[row])


# ---------------------------------------------------------------------- StreamingSource


def test_streaming_draws_differ_between_batches_and_epochs_and_repeat_for_a_seed():
    def epoch(source, e):
        return [x for x, _ in source.batches(e, 8, torch.Generator().manual_seed(e))]

    source = StreamingSource(streaming_draw, samples_per_epoch=20, seed=5)
    assert source.sample_shape == (2, N_POINTS)
    assert source.condition_spec == ConditioningSpec(vector_dim=1)
    assert source.plain_condition
    first, second = epoch(source, 1), epoch(source, 2)
    assert [x.shape[0] for x in first] == [8, 8, 4]
    assert all(x.dtype == torch.float32 for x in first)
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first[0], second[0])
    # the trainer's generator plays no part: same seed, same batches, whatever the generator
    again = StreamingSource(streaming_draw, samples_per_epoch=20, seed=5)
    for a, b in zip(first, epoch(again, 1), strict=True):
        assert torch.equal(a, b)
    other = StreamingSource(streaming_draw, samples_per_epoch=20, seed=6)
    assert not torch.equal(first[0], epoch(other, 1)[0])
    # each batch is the documented draw, converted to float32
    expected, _ = streaming_draw(8, np.random.default_rng(np.random.SeedSequence([5, 2, 1])))
    assert torch.equal(second[1], torch.as_tensor(expected, dtype=torch.float32))


def test_streaming_accepts_torch_tensors_and_conditioning():
    def draw(n, rng):
        x, cond = toy_conditioning(n, seed=int(rng.integers(2**31)))
        return x.double(), cond

    spec = ConditioningSpec(vector_dim=1, field_channels=1, field_shape=(N_POINTS,), n_labels=2)
    source = StreamingSource(draw, 10, seed=0, condition_spec=spec)
    assert source.condition_spec == spec and not source.plain_condition
    x, cond = next(source.batches(1, 10, torch.Generator()))
    assert x.dtype == torch.float32 and isinstance(cond, Conditioning)
    assert cond.fields.dtype == torch.float32 and cond.labels.dtype == torch.long


# ---------------------------------------------------------------------- resume


def _tensor_case():
    x, cond = toy_data(21, seed=1)
    return film_model, TensorSource(x, cond), toy_data(8, seed=2)


def _grouped_case():
    """Two fidelity groups, 24 'coarse' (label 0) and 6 'fine' (label 1), fine drawn half the
    time; Conditioning with vector, fields and labels."""
    x0, c0 = toy_conditioning(24, seed=1, label=0)
    x1, c1 = toy_conditioning(6, seed=2, label=1)
    source = GroupedSource(
        [TensorSource(x0, c0), TensorSource(x1, c1)], [1.0, 1.0], samples_per_epoch=20
    )
    return conditioning_model, source, toy_conditioning(8, seed=3)


def _streaming_case():
    source = StreamingSource(streaming_draw, samples_per_epoch=21, seed=3)
    val = StreamingSource(streaming_draw, samples_per_epoch=8, seed=4)
    return film_model, source, (val, None)


class _CountingSource(TensorSource):
    """A source with state: it counts the batches it has served and shifts every batch by
    0.01 * count, so a resumed run that lost the count would train on other data."""

    def __init__(self, x: Tensor, cond: Tensor) -> None:
        super().__init__(x, cond)
        self.served = 0

    def to(self, device):
        return self  # CPU only (and the trainer must keep talking to this object)

    def batches(self, epoch, batch_size, generator, *, min_last_batch=1):
        for x, cond in super().batches(epoch, batch_size, generator, min_last_batch=min_last_batch):
            self.served += 1
            yield x + 0.01 * self.served, cond

    def state_dict(self):
        return {"served": self.served}

    def load_state_dict(self, state):
        self.served = int(state["served"])


def _stateful_case():
    x, cond = toy_data(21, seed=1)
    return film_model, _CountingSource(x, cond), toy_data(8, seed=2)


class _Interrupt(Exception):
    pass


def _stop_at_epoch_two(epoch: int, row: dict[str, float]) -> None:
    if epoch == 2:
        raise _Interrupt


@pytest.mark.parametrize(
    "case", [_tensor_case, _grouped_case, _streaming_case, _stateful_case], ids=lambda c: c.__name__
)
@pytest.mark.usefixtures("conditioning_backbone")
def test_resume_is_bit_identical_for_every_source(tmp_path, case):
    """4 epochs straight vs 2 epochs, interruption, the run folder copied elsewhere, resumed
    there with freshly initialised weights for the last 2 epochs."""
    make_model, source, (x_val, cond_val) = case()
    straight = Trainer(make_model(), config(), tmp_path / "straight")
    result = straight.fit(source, None, x_val, cond_val, progress=False)
    source = case()[1]  # a fresh source (a stateful one starts from its initial state)
    with pytest.raises(_Interrupt):
        Trainer(make_model(), config(), tmp_path / "interrupted").fit(
            source=source,
            x_val=x_val,
            cond_val=cond_val,
            progress=False,
            callback=_stop_at_epoch_two,
        )
    shutil.copytree(tmp_path / "interrupted", tmp_path / "copy")
    resumed = Trainer(make_model(seed=123), config(), tmp_path / "copy")
    source = case()[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. "the training set changed"
        resumed_result = resumed.fit(source, None, x_val, cond_val, progress=False)
    assert resumed_result.history["train_loss"] == result.history["train_loss"]
    assert resumed_result.history["val_loss"] == result.history["val_loss"]
    assert weights_hash(resumed) == weights_hash(straight)
    assert math.isfinite(result.history["val_loss"][-1])
    if isinstance(source, _CountingSource):
        assert source.served == 4 * 3  # 2 epochs restored from the checkpoint + 2 served


def test_resume_with_another_source_warns(tmp_path):
    x, cond = toy_data(21, seed=1)
    Trainer(film_model(), config(epochs=2), tmp_path).fit(x, cond, progress=False)
    streaming = StreamingSource(streaming_draw, samples_per_epoch=21, seed=3)
    with pytest.warns(UserWarning, match="training set or batching changed"):
        Trainer(film_model(), config(epochs=3), tmp_path).fit(source=streaming, progress=False)


# ---------------------------------------------------------------------- Conditioning


@pytest.mark.usefixtures("conditioning_backbone")
def test_conditioning_with_vector_fields_and_labels_trains(tmp_path):
    """Noise prediction starts at loss ~1; the loss must fall clearly, and the checkpoint must
    record the conditioning's sizes."""
    x, cond = toy_conditioning(48, seed=1)
    x_val, cond_val = toy_conditioning(16, seed=2)
    trainer = Trainer(
        conditioning_model(), config(epochs=30, checkpoint_every=30, batch_size=16), tmp_path
    )
    result = trainer.fit(x, cond, x_val, cond_val, progress=False)
    loss = result.history["train_loss"]
    assert np.mean(loss[-5:]) < 0.6 * np.mean(loss[:5]), loss
    assert math.isfinite(result.best_val)
    metadata = load_checkpoint(latest_checkpoint(tmp_path)).metadata
    assert metadata["condition_dim"] == 1
    assert metadata["conditioning"] == {
        "vector_dim": 1,
        "field_channels": 1,
        "field_shape": [N_POINTS],
        "n_labels": 2,
    }
    # the same conditioning evaluates to the same validation loss (fixed set, fixed noise)
    assert trainer.validation_loss(x_val, cond_val) == trainer.validation_loss(x_val, cond_val)


# ---------------------------------------------------------------------- errors


def test_groups_must_agree_and_weights_must_be_positive():
    x, cond = toy_data(6, seed=1)
    a = TensorSource(x, cond)
    with pytest.raises(ValueError, match=r"group 1 has samples of shape \(2, 8\).*\(2, 16\)"):
        GroupedSource([a, TensorSource(torch.zeros(4, 2, 8), torch.zeros(4, 1))], [1, 1])
    with pytest.raises(ValueError, match=r"group 1 has a plain tensor.*same conditioning parts"):
        GroupedSource([a, TensorSource(x, torch.zeros(6, 3))], [1, 1])
    with pytest.raises(ValueError, match="group 1 has no conditioning"):
        GroupedSource([a, TensorSource(x)], [1, 1])
    _, c = toy_conditioning(6, seed=1)
    with pytest.raises(ValueError, match="group 1 has a Conditioning"):
        GroupedSource([a, TensorSource(x, c)], [1, 1])
    for weights in ([1, 0], [1, -2], [1, float("nan")]):
        with pytest.raises(ValueError, match=r"weights .* must be finite and > 0"):
            GroupedSource([a, a], weights)
    with pytest.raises(ValueError, match="3 weights for 2 groups"):
        GroupedSource([a, a], [1, 1, 1])
    with pytest.raises(ValueError, match="at least one group"):
        GroupedSource([], [])
    with pytest.raises(TypeError, match="group 0 is a tuple"):
        GroupedSource([(x, cond)], [1])
    with pytest.raises(ValueError, match="samples_per_epoch = 0"):
        GroupedSource([a], [1], samples_per_epoch=0)


def test_conditioning_batch_size_and_values_are_checked(tmp_path):
    x, cond = toy_data(6, seed=1)
    trainer = Trainer(film_model(), config(epochs=1), tmp_path)
    with pytest.raises(ValueError, match=r"cond_train has shape \(5, 1\); expected \(6, k\)"):
        trainer.fit(x, cond[:5], progress=False)
    _, c = toy_conditioning(5, seed=1)
    with pytest.raises(ValueError, match="cond_train has 5 rows but x_train has 6"):
        trainer.fit(x, c, progress=False)
    with pytest.raises(ValueError, match="cond_val has 5 rows but x_val has 6"):
        trainer.fit(x, cond, x, c, progress=False)
    bad = Conditioning(vector=torch.full((6, 1), float("nan")))
    with pytest.raises(ValueError, match="cond_train contains non-finite values"):
        trainer.fit(x, bad, progress=False)
    with pytest.raises(TypeError, match=r"cond_train must be a torch.Tensor .*got list"):
        trainer.fit(x, [[0.0]] * 6, progress=False)
    with pytest.raises(ValueError, match=r"either x_train .* or source=, not both"):
        trainer.fit(x, source=TensorSource(x), progress=False)
    with pytest.raises(ValueError, match="cond_train must be None"):
        trainer.fit(TensorSource(x), cond, progress=False)
    with pytest.raises(ValueError, match="fit needs training data"):
        trainer.fit(progress=False)
    with pytest.raises(ValueError, match=r"x_val samples have shape \(2, 8\)"):
        trainer.fit(x, cond, torch.zeros(3, 2, 8), torch.zeros(3, 1), progress=False)
    with pytest.raises(ValueError, match="validation set has no conditioning"):
        trainer.fit(x, cond, x, None, progress=False)


def test_streaming_draws_are_checked():
    def wrong_count(n, rng):
        return np.zeros((n + 1, 2, 4)), None

    with pytest.raises(ValueError, match=r"draw\(1, rng\) returned 2 samples; expected 1"):
        StreamingSource(wrong_count, 8, seed=0)

    def growing(n, rng):
        return np.zeros((n, 2, 4 if n == 1 else 5)), None

    source = StreamingSource(growing, 8, seed=0)
    with pytest.raises(ValueError, match=r"shape \(2, 5\) in batch 0 of epoch 1.*\(2, 4\)"):
        next(source.batches(1, 4, torch.Generator()))

    def labelled(n, rng):
        return np.zeros((n, 2, 4)), Conditioning(labels=torch.ones(n, dtype=torch.long))

    with pytest.raises(ValueError, match="pass condition_spec"):
        StreamingSource(labelled, 8, seed=0)
    source = StreamingSource(labelled, 8, seed=0, condition_spec=ConditioningSpec(n_labels=1))
    with pytest.raises(ValueError, match=r"label 1 in batch 0 of epoch 1.*\[0, 1\)"):
        next(source.batches(1, 4, torch.Generator()))
    with pytest.raises(ValueError, match="seed = -1"):
        StreamingSource(streaming_draw, 8, seed=-1)
    with pytest.raises(ValueError, match="samples_per_epoch = 0"):
        StreamingSource(streaming_draw, 0, seed=1)
