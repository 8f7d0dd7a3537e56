"""Normalisers on grids of any rank, and their files (small JSON + safetensors arrays)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scorepde.data.normalisation import (
    ConditionalNormaliser,
    FieldNormaliser,
    NormalisationError,
    SubspaceNormaliser,
    arrays_path,
    load_normaliser,
)

NY, NX, C = 4, 5, 2


def grouped_fields(seed: int = 0, groups: int = 12, per: int = 6):
    """2-D fields whose mean and spread depend on one encoded condition, with a constant
    (Dirichlet-like) column in channel 1."""
    rng = np.random.default_rng(seed)
    encoded = np.repeat(rng.uniform(-1, 1, (groups, 1)), per, axis=0)
    group_index = np.repeat(np.arange(groups), per)
    x = np.linspace(0, 1, NX)
    base = np.stack([np.ones((NY, NX)), np.broadcast_to(1 - x, (NY, NX))])
    noise = rng.normal(size=(groups * per, C, NY, NX))
    fields = base * (2.0 + encoded[:, :, None, None]) + (1.5 + encoded[:, :, None, None]) * noise
    fields[:, 1, :, 0] = 1.0  # every sample agrees here
    return fields, encoded, group_index


def test_two_dimensional_normalisers_equal_the_flattened_one_dimensional_ones() -> None:
    """Reducing over all grid axes is the same as flattening the grid first."""
    fields, encoded, groups = grouped_fields()
    flat = fields.reshape(len(fields), C, NY * NX)
    for make in (
        lambda: FieldNormaliser(),
        lambda: ConditionalNormaliser(degree=2),
    ):
        two_d, one_d = make(), make()
        if isinstance(two_d, ConditionalNormaliser):
            two_d.fit(fields, encoded, groups)
            one_d.fit(flat, encoded, groups)
        else:
            two_d.fit(fields)
            one_d.fit(flat)
        z2 = two_d.transform(fields, encoded)
        z1 = one_d.transform(flat, encoded)
        assert z2.shape == fields.shape and two_d.field_shape == (C, NY, NX)
        np.testing.assert_allclose(z2.reshape(flat.shape), z1, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(two_d.inverse(z2, encoded), fields, rtol=1e-12, atol=1e-12)
        # the constant column maps to exactly 0 and back exactly
        assert np.all(z2[:, 1, :, 0] == 0.0)
        assert np.all(two_d.inverse(z2, encoded)[:, 1, :, 0] == 1.0)


def test_subspace_on_a_two_dimensional_grid() -> None:
    fields, encoded, groups = grouped_fields()
    base = ConditionalNormaliser(degree=1).fit(fields, encoded, groups)
    with pytest.warns(UserWarning, match="keep only"):
        subspace = SubspaceNormaliser(base, 10).fit(fields, encoded, groups)
    w = subspace.transform(fields, encoded)
    assert w.shape == (len(fields), 1, 10)
    back = subspace.inverse(w, encoded)
    assert back.shape == fields.shape
    full = SubspaceNormaliser(ConditionalNormaliser(degree=1), C * NY * NX - 1)
    full.fit(fields, encoded, groups)
    # with (almost) every direction kept, the projection is (almost) lossless
    residual = full.inverse(full.transform(fields, encoded), encoded) - fields
    assert np.sqrt(np.mean(residual**2)) < 0.2 * fields.std()


@pytest.mark.parametrize("kind", ["field", "conditional", "subspace"])
def test_files_keep_arrays_in_safetensors_and_round_trip(tmp_path: Path, kind: str) -> None:
    fields, encoded, groups = grouped_fields()
    if kind == "field":
        normaliser = FieldNormaliser(channels=("a", "b")).fit(fields)
    elif kind == "conditional":
        normaliser = ConditionalNormaliser(channels=("a", "b")).fit(fields, encoded, groups)
    else:
        with pytest.warns(UserWarning):
            normaliser = SubspaceNormaliser(ConditionalNormaliser(), 8).fit(fields, encoded, groups)
    path = normaliser.save(tmp_path / "normaliser.json")
    assert arrays_path(path).is_file()
    text = path.read_text()
    assert len(text) < 2000, "the JSON holds the configuration only, not the arrays"
    assert "$array" in text and "arrays_file" in json.loads(text)
    loaded = load_normaliser(path)
    assert type(loaded) is type(normaliser)
    np.testing.assert_array_equal(
        loaded.transform(fields, encoded), normaliser.transform(fields, encoded)
    )
    # an earlier version wrote the arrays as JSON lists: such files still load
    old = tmp_path / "old.json"
    old.write_text(json.dumps(normaliser.to_dict()))
    np.testing.assert_array_equal(
        load_normaliser(old).transform(fields, encoded), normaliser.transform(fields, encoded)
    )
    # the arrays file is part of the normaliser: a missing or corrupt one is reported
    arrays_path(path).write_bytes(b"not safetensors")
    with pytest.raises(NormalisationError, match="corrupt or unreadable"):
        load_normaliser(path)
    arrays_path(path).unlink()
    with pytest.raises(NormalisationError, match=r"arrays file .* is missing"):
        load_normaliser(path)


def test_whitened_subspace_has_unit_spread_and_round_trips(tmp_path: Path) -> None:
    fields, encoded, groups = grouped_fields()
    base = ConditionalNormaliser(degree=1)
    with pytest.warns(UserWarning):
        plain = SubspaceNormaliser(base, 10).fit(fields, encoded, groups)
    whitened = SubspaceNormaliser(base, 10, whiten=True).fit(fields, encoded, groups)
    w = whitened.transform(fields, encoded)
    np.testing.assert_allclose(w.reshape(len(w), -1).std(axis=0), 1.0, rtol=1e-10)
    # the same field space: whitening is undone exactly by inverse
    np.testing.assert_allclose(
        whitened.inverse(w, encoded), plain.inverse(plain.transform(fields, encoded), encoded)
    )
    loaded = load_normaliser(whitened.save(tmp_path / "w.json"))
    assert loaded.whiten
    np.testing.assert_array_equal(loaded.transform(fields, encoded), w)
