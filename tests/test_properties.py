"""Property-based tests (Hypothesis): hostile values at the public API and the CLI.

Every call either works (finite results) or raises the documented error (``ValueError``,
whose subclasses are ``ConfigError``, ``CampaignError``, ``NormalisationError``...); a CLI call
exits 0 or with status 2 and a message, never with a traceback. The default run is a fast
subset (``max_examples`` small); ``-m slow`` runs the same properties with more examples.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from helpers import WIDE
from scorepde.cli import app
from scorepde.data.campaign import SimulationConfig
from scorepde.pretrained import load_pretrained
from scorepde.problems import get_problem

runner = CliRunner()
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MORE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hostile_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.0, 1e-300, 1e300, -1e300, 50.0, 0.05, 0.5]),
)
hostile_values = st.one_of(
    hostile_floats,
    st.integers(-(2**70), 2**70),
    st.text(max_size=5),
    st.none(),
    st.lists(hostile_floats, max_size=4),
)


@pytest.fixture(scope="module")
def model():
    return load_pretrained("battery")


def _conditions_property(model, values) -> None:
    try:
        out = model.sample(values, 2, steps=2, batch_size=2)
    except (ValueError, TypeError):
        return  # the documented refusal (TypeError: not numbers at all)
    assert np.all(np.isfinite(out)), values
    assert get_problem("battery").validate_conditions(np.asarray(values, dtype=float)).shape


@FAST
@given(st.lists(hostile_floats, min_size=3, max_size=3))
def test_model_sample_refuses_or_returns_finite_fields(model, values) -> None:
    _conditions_property(model, values)


@pytest.mark.slow
@MORE
@given(st.lists(hostile_floats, min_size=3, max_size=3))
def test_model_sample_refuses_or_returns_finite_fields_many(model, values) -> None:
    _conditions_property(model, values)


@FAST
@given(
    st.one_of(
        st.lists(hostile_floats, max_size=5),
        st.lists(st.lists(hostile_floats, min_size=3, max_size=3), max_size=3),
        hostile_values,
    )
)
def test_validate_conditions_is_all_or_nothing(values) -> None:
    problem = get_problem("battery")
    try:
        array = problem.validate_conditions(values)
    except (ValueError, TypeError):
        return
    assert array.ndim == 2 and array.shape[1] == 3 and np.all(np.isfinite(array))
    for j, spec in enumerate(problem.conditions):
        assert np.all(spec.is_physical(array[:, j]))


@FAST
@given(
    n_conditions=hostile_values,
    per_condition=hostile_values,
    seed=hostile_values,
    chunk=hostile_values,
    split=st.one_of(st.sampled_from(["train", "test", "bogus"]), hostile_values),
)
# Found by hypothesis: an unhashable split raised TypeError from the dict lookup.
@example(n_conditions=1, per_condition=1, seed=0, chunk=1, split=[])
def test_simulation_config_refuses_with_value_error(
    n_conditions, per_condition, seed, chunk, split
) -> None:
    try:
        config = SimulationConfig(
            n_conditions=n_conditions,
            per_condition=per_condition,
            seed=seed,
            chunk_conditions=chunk,
            split=split,
        )
    except ValueError as error:
        assert "SimulationConfig." in str(error)
        return
    assert config.n_fields >= 1


def _assert_clean_exit(result) -> None:
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert isinstance(result.exception, SystemExit), repr(result.exception)


option_text = st.one_of(
    st.integers(-5, 3).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "", "x", "0x1", "1.5", "-0"]),
)


@FAST
@given(
    n=option_text,
    seed=option_text,
    batch=option_text,
    steps=option_text,
    u0=st.one_of(hostile_floats.map(repr), st.sampled_from(["nan", "1e999", "abc"])),
    length=st.one_of(hostile_floats.map(repr), st.sampled_from(["0", "-1", "nan"])),
)
def test_cli_sample_options_exit_cleanly(tmp_path_factory, n, seed, batch, steps, u0, length):
    out = tmp_path_factory.mktemp("p") / "s.npy"
    args = ["sample", "--pretrained", "battery", "--U0", u0, "--l", length, "--F-right", "25"]
    args += ["-n", n, "--seed", seed, "--batch-size", batch, "--steps", steps, "--out", str(out)]
    result = runner.invoke(app, args, env=WIDE)
    _assert_clean_exit(result)
    if result.exit_code == 0:
        assert np.all(np.isfinite(np.load(out)))


@FAST
@given(
    conditions=option_text,
    per_condition=option_text,
    seed=st.one_of(option_text, st.sampled_from([str(2**32), str(2**64)])),
    workers=option_text,
    chunk=option_text,
    suffix=st.sampled_from([".h5", ".hdf5", ".npy", "", ".H5"]),
)
def test_cli_simulate_options_exit_cleanly(
    tmp_path_factory, conditions, per_condition, seed, workers, chunk, suffix
):
    out = tmp_path_factory.mktemp("p") / f"d{suffix}"
    args = ["simulate", "--conditions", conditions, "--per-condition", per_condition]
    args += ["--seed", seed, "--workers", "1", "--chunk-conditions", chunk, "--out", str(out)]
    args += ["--no-plot", "--quiet"]
    del workers  # several processes per example would be slow; --workers is an int >= 1 too
    result = runner.invoke(app, args, env=WIDE)
    _assert_clean_exit(result)


@FAST
@given(st.lists(hostile_floats, min_size=1, max_size=4))
def test_condition_spec_masks_agree_with_the_domain_text(values) -> None:
    for spec in get_problem("battery").conditions:
        mask = spec.is_physical(np.asarray(values))
        for value, ok in zip(values, mask, strict=True):
            if not math.isfinite(value):
                assert not ok
            elif spec.low <= value <= spec.high:
                assert ok
