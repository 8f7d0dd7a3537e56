"""Field normaliser and condition encoder: round trips, exact Dirichlet points, range mapping."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from scorepde.data.normalisation import ConditionEncoder, FieldNormaliser, NormalisationError
from scorepde.problems import get_problem


def fields_with_dirichlet_points(n: int = 50, n_points: int = 20, seed: int = 0) -> np.ndarray:
    """(n, 2, N): channel 0 ends at c_right = 1000.1 (not exactly representable sums), channel 1
    starts at phi = 0, like the battery fields."""
    rng = np.random.default_rng(seed)
    c = 1000.1 + rng.normal(0.0, 30.0, (n, n_points)).cumsum(axis=1)[:, ::-1]
    c[:, -1] = 1000.1
    phi = rng.normal(0.0, 0.003, (n, n_points)).cumsum(axis=1)
    phi[:, 0] = 0.0
    return np.stack([c, phi], axis=1)


def test_round_trip_numpy_and_dirichlet_points_stay_exact() -> None:
    fields = fields_with_dirichlet_points()
    normaliser = FieldNormaliser(channels=("c", "phi")).fit(fields)
    z = normaliser.transform(fields)
    assert z.shape == fields.shape
    assert np.all(z[:, 0, -1] == 0.0) and np.all(z[:, 1, 0] == 0.0)
    back = normaliser.inverse(z)
    np.testing.assert_allclose(back, fields, rtol=1e-12, atol=1e-12)
    assert np.all(back[:, 0, -1] == 1000.1) and np.all(back[:, 1, 0] == 0.0)
    # one scale per channel: the centred normalised field has unit variance per channel
    np.testing.assert_allclose((z**2).mean(axis=(0, 2)), 1.0, rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip_torch(dtype: torch.dtype) -> None:
    fields = fields_with_dirichlet_points()
    normaliser = FieldNormaliser().fit(fields)
    x = torch.as_tensor(fields, dtype=dtype)
    z = normaliser.transform(x)
    assert isinstance(z, torch.Tensor) and z.dtype == dtype and z.shape == x.shape
    assert torch.all(z[:, 0, -1] == 0) and torch.all(z[:, 1, 0] == 0)
    back = normaliser.inverse(z)
    tolerance = 1e-4 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(back, x, rtol=tolerance, atol=tolerance * 1e-2)
    assert torch.all(back[:, 0, -1] == x[:, 0, -1])
    np.testing.assert_allclose(
        normaliser.transform(fields[:3]), z[:3].double().numpy(), rtol=1e-5, atol=1e-5
    )


def test_constant_channel_gets_unit_scale() -> None:
    fields = fields_with_dirichlet_points()
    fields[:, 1] = 0.25
    normaliser = FieldNormaliser().fit(fields)
    assert normaliser.scale[1] == 1.0
    assert np.all(normaliser.transform(fields)[:, 1] == 0.0)


def test_save_load_and_bad_files(tmp_path: Path) -> None:
    normaliser = FieldNormaliser(channels=("c", "phi")).fit(fields_with_dirichlet_points())
    path = normaliser.save(tmp_path / "normaliser.json")
    loaded = FieldNormaliser.load(path)
    np.testing.assert_array_equal(loaded.mean, normaliser.mean)
    np.testing.assert_array_equal(loaded.scale, normaliser.scale)
    assert loaded.channels == ("c", "phi")
    with pytest.raises(FileNotFoundError, match="field normaliser file not found"):
        FieldNormaliser.load(tmp_path / "absent.json")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"mean": [1, 2')
    with pytest.raises(NormalisationError, match="not a valid field normaliser JSON"):
        FieldNormaliser.load(corrupt)
    corrupt.write_text('{"format": "scorepde.condition_encoder/1"}')
    with pytest.raises(NormalisationError, match=r"expected 'scorepde\.field_normaliser/1'"):
        FieldNormaliser.load(corrupt)


def test_unfitted_and_wrong_shapes() -> None:
    with pytest.raises(NormalisationError, match="not fitted"):
        FieldNormaliser().transform(np.zeros((1, 2, 3)))
    normaliser = FieldNormaliser().fit(np.ones((4, 2, 3)))
    with pytest.raises(NormalisationError, match=r"expected \(\.\.\., 2, 3\)"):
        normaliser.transform(np.zeros((4, 3, 3)))
    with pytest.raises(NormalisationError, match=r"expected \(n >= 1, C, N\)"):
        FieldNormaliser().fit(np.zeros((4, 3)))


def test_condition_encoder_maps_design_ranges_to_unit_interval(tmp_path: Path) -> None:
    encoder = ConditionEncoder.from_specs(get_problem("battery").conditions)
    corners = np.array([[-0.5, 0.05, 0.0], [0.5, 0.5, 50.0], [0.0, np.sqrt(0.05 * 0.5), 25.0]])
    encoded = encoder.encode(corners)
    assert encoded.dtype == np.float32 and encoded.shape == (3, 3)
    np.testing.assert_allclose(encoded, [[-1, -1, -1], [1, 1, 1], [0, 0, 0]], atol=1e-6)
    np.testing.assert_allclose(encoder.decode(encoded), corners, rtol=1e-6, atol=1e-6)
    assert ConditionEncoder.from_dict(encoder.to_dict()) == encoder
    assert ConditionEncoder.load(encoder.save(tmp_path / "enc.json")) == encoder
    with pytest.raises(NormalisationError, match=r"condition l = -0\.1 .*log-scaled"):
        encoder.encode([0.0, -0.1, 1.0])


def test_condition_encoder_warns_when_extrapolating() -> None:
    encoder = ConditionEncoder.from_specs(get_problem("battery").conditions)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert encoder.check([[0.0, 0.1, 10.0]])
    with pytest.warns(UserWarning, match=r"condition l = 0\.8 L .*\[0\.05, 0\.5\] L"):
        assert not encoder.check([[0.0, 0.8, 10.0]])
