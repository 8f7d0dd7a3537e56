"""Designs of conditions: determinism, ranges, log-uniform sampling, split separation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from scorepde.data.campaign import design_seed
from scorepde.data.design import design_conditions
from scorepde.problems import get_problem

SPECS = get_problem("battery").conditions


@pytest.mark.parametrize("method", ["sobol", "lhs"])
def test_design_is_deterministic_and_inside_the_ranges(method: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the Sobol power-of-two warning is suppressed
        first = design_conditions(SPECS, 37, seed=3, method=method)
    np.testing.assert_array_equal(first, design_conditions(SPECS, 37, seed=3, method=method))
    assert not np.array_equal(first, design_conditions(SPECS, 37, seed=4, method=method))
    assert first.shape == (37, 3)
    for j, spec in enumerate(SPECS):
        assert np.all((first[:, j] >= spec.low) & (first[:, j] <= spec.high)), spec.name


def test_log_scale_condition_is_uniform_in_log() -> None:
    """With 256 scrambled Sobol points every coordinate is exactly balanced between the two
    halves of the unit interval, so exactly half of l lies below the geometric mean of its
    range (a linear map would put only ~23 % there)."""
    design = design_conditions(SPECS, 256, seed=0)
    l_values, u0 = design[:, 1], design[:, 0]
    assert np.sum(l_values < np.sqrt(0.05 * 0.5)) == 128
    assert np.sum(u0 < 0.0) == 128  # U0 is linear: half below the midpoint


def test_latin_hypercube_fills_each_stratum_once() -> None:
    n = 20
    design = design_conditions(SPECS, n, seed=1, method="lhs")
    u0_strata = np.floor((design[:, 0] + 0.5) * n).astype(int)
    log_l = (np.log(design[:, 1]) - np.log(0.05)) / (np.log(0.5) - np.log(0.05))
    assert sorted(u0_strata) == list(range(n))
    assert sorted(np.floor(log_l * n).astype(int)) == list(range(n))


def test_train_and_test_designs_share_no_condition() -> None:
    train = design_conditions(SPECS, 64, design_seed(0, "train"))
    test = design_conditions(SPECS, 64, design_seed(0, "test"))
    shared = (train[:, None, :] == test[None, :, :]).all(axis=2)
    assert not shared.any()


def test_bad_design_arguments() -> None:
    with pytest.raises(ValueError, match=r"design = 'grid'.*'sobol', 'lhs'"):
        design_conditions(SPECS, 4, 0, method="grid")
    with pytest.raises(ValueError, match="n = 0"):
        design_conditions(SPECS, 0, 0)
