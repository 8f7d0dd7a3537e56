"""Deep ensembles of amortised posteriors (scorepde.inverse.ensemble) on a tiny linear-Gaussian
problem: the pooling contract (sample ``j`` from member ``j mod M`` with that member's seed),
``sample_many`` against ``sample``, the folder round trip and its refusals, and the recipe's
``ensemble`` section end to end (members in worker processes, resume keeps finished members,
calibration of the pooled posterior, ``invert train | sample`` on the CLI).

What the ensemble buys statistically (coverage of an over-confident model) is measured in
docs/elasticity.md, "Ensembles".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from helpers import tiny_inverse_recipe
from scorepde.cli import app
from scorepde.configuration import ConfigError
from scorepde.inverse import (
    AmortisedPosterior,
    EnsemblePosterior,
    from_simulator,
    load_posterior,
    make_linear_gaussian,
    member_seed,
)
from scorepde.inverse.ensemble import ENSEMBLE_FILE
from scorepde.inverse.recipes import InverseRecipe, member_recipe, train_from_recipe
from scorepde.nets.registry import BackboneConfig
from scorepde.training.config import TrainConfig
from scorepde.training.model import ModelConfig

runner = CliRunner()


def _train_member(tmp: Path, seed: int, d: int = 2) -> AmortisedPosterior:
    problem = make_linear_gaussian(d, 2, seed=0)
    x, y = from_simulator(problem.sample_prior, problem.forward, problem.noise, 300, seed=seed)
    model = ModelConfig(
        backbone=BackboneConfig(
            name="mlp", options={"data_dim": d, "cond_dim": 2, "hidden": 16, "depth": 1}
        ),
        process={"name": "ve", "sigma_min": 0.01, "sigma_max": 20.0},
    )
    training = TrainConfig(
        epochs=3, batch_size=128, device="cpu", compile="off", plot=False, seed=seed
    )
    return AmortisedPosterior().train(
        x, y, run_dir=tmp / f"run-{seed}-{d}", model=model, training=training, seed=seed
    )


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[AmortisedPosterior]:
    tmp = tmp_path_factory.mktemp("members")
    return [_train_member(tmp, seed) for seed in (0, 1, 2)]


Y0 = np.array([0.3, -0.2])


def test_member_seed() -> None:
    assert member_seed(7, 0) == 7
    seeds = [member_seed(7, k) for k in range(1, 6)]
    assert len(set(seeds)) == 5 and not {7, 8, 9} & set(seeds)
    assert seeds == [member_seed(7, k) for k in range(1, 6)]
    assert member_seed(8, 1) != member_seed(7, 1)
    with pytest.raises(ValueError, match="member"):
        member_seed(7, -1)


def test_pooled_samples_interleave_the_members(members: list[AmortisedPosterior]) -> None:
    ensemble = EnsemblePosterior(members)
    assert len(ensemble) == 3 and ensemble.x_shape == (2,) and ensemble.y_shape == (2,)
    pooled = ensemble.sample(7, Y0, steps=10, seed=5)
    assert pooled.shape == (7, 2)
    for k, member in enumerate(members):
        own = member.sample(len(range(k, 7, 3)), Y0, steps=10, seed=member_seed(5, k))
        np.testing.assert_array_equal(pooled[k::3], own)
    # one sample: member 0 alone; batch size and sample_many do not change the draws
    np.testing.assert_array_equal(
        ensemble.sample(1, Y0, steps=10, seed=5), members[0].sample(1, Y0, steps=10, seed=5)
    )
    np.testing.assert_allclose(
        ensemble.sample(7, Y0, steps=10, seed=5, batch_size=2), pooled, rtol=1e-5, atol=1e-6
    )
    observations = np.stack([Y0, -Y0, 2 * Y0])
    many = ensemble.sample_many(7, observations, steps=10, seed=5)
    assert many.shape == (3, 7, 2)
    # the same draws; sample_many batches the three observations together, and a float32
    # forward pass over a different batch may round differently (a fresh-clone CI run saw
    # 2.6e-7), so the same tolerance as for batch_size above
    np.testing.assert_allclose(many[0], pooled, rtol=1e-5, atol=1e-6)
    # the members are different models: their means at this observation differ
    big = ensemble.sample(600, Y0, steps=10, seed=1)
    means = np.stack([big[k::3].mean(axis=0) for k in range(3)])
    assert np.all(means.std(axis=0) > 0)


def test_save_load_round_trip_and_refusals(
    members: list[AmortisedPosterior], tmp_path: Path
) -> None:
    ensemble = EnsemblePosterior(members[:2])
    folder = ensemble.save(tmp_path / "ens")
    assert (folder / ENSEMBLE_FILE).is_file()
    assert all((folder / f"member-{k}" / "model.yaml").is_file() for k in range(2))
    loaded = load_posterior(folder)
    assert isinstance(loaded, EnsemblePosterior) and len(loaded) == 2
    np.testing.assert_allclose(
        loaded.sample(6, Y0, steps=10, seed=2),
        ensemble.sample(6, Y0, steps=10, seed=2),
        rtol=1e-6,
        atol=1e-6,
    )
    single = load_posterior(members[0].save(tmp_path / "one"))
    assert isinstance(single, AmortisedPosterior)

    with pytest.raises(ValueError, match="at least one"):
        EnsemblePosterior([])
    with pytest.raises(TypeError, match="AmortisedPosterior"):
        EnsemblePosterior([members[0], "model"])  # type: ignore[list-item]
    with pytest.raises(RuntimeError, match="not trained"):
        EnsemblePosterior([AmortisedPosterior()])
    other = _train_member(tmp_path, 0, d=3)
    with pytest.raises(ValueError, match=r"members\[1\] models x \(3,\)"):
        EnsemblePosterior([members[0], other])
    with pytest.raises(ValueError, match="observation of shape"):
        ensemble.sample(4, np.zeros(3))
    with pytest.raises(ValueError, match="positive integer"):
        ensemble.sample(0, Y0)

    index = folder / ENSEMBLE_FILE
    record = yaml.safe_load(index.read_text())
    index.write_text(yaml.safe_dump({**record, "members": ["member-0", "member-7"]}))
    with pytest.raises(ValueError, match="member-7 is missing"):
        load_posterior(folder)
    index.write_text(yaml.safe_dump({**record, "members": ["../one"]}))
    with pytest.raises(ValueError, match="must lie inside"):
        load_posterior(folder)
    index.write_text(yaml.safe_dump({**record, "format": "scorepde.ensemble/9"}))
    with pytest.raises(ValueError, match="expected format"):
        load_posterior(folder)
    index.write_text("members: [unclosed")
    with pytest.raises(ValueError, match="not a readable ensemble index"):
        load_posterior(folder)


# ---------------------------------------------------------------------------- recipes


def _ensemble_recipe(members: int, workers: int) -> dict[str, Any]:
    return {
        **tiny_inverse_recipe(),
        "name": "tiny-ensemble",
        "calibration": {"n_observations": 10, "n_samples": 4, "levels": [0.5, 0.9]},
        "ensemble": {"members": members, "workers": workers},
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [({"members": 0}, "ensemble.members = 0"), ({"workers": 1.5}, "ensemble.workers = 1.5")],
)
def test_bad_ensemble_sections_are_refused(change: dict[str, Any], message: str) -> None:
    data = _ensemble_recipe(2, 1)
    data["ensemble"] = {**data["ensemble"], **change}
    with pytest.raises(ConfigError, match=message):
        InverseRecipe.from_dict(data)


def test_member_recipes_differ_by_seed_only() -> None:
    recipe = InverseRecipe.from_dict(_ensemble_recipe(3, 1))
    first = member_recipe(recipe, 0)
    assert first.seed == recipe.seed and first.ensemble.members == 1
    assert first.calibration.n_observations == 0
    second = member_recipe(recipe, 2)
    assert second.seed == member_seed(recipe.seed, 2)
    assert second.model == recipe.model and second.data == recipe.data
    assert second.training == recipe.training and second.name == "tiny-ensemble/member-2"


def test_ensemble_recipe_trains_members_side_by_side_and_resumes(tmp_path: Path) -> None:
    recipe = InverseRecipe.from_dict(_ensemble_recipe(2, 2))
    run = train_from_recipe(recipe, tmp_path / "run")
    assert isinstance(run.posterior, EnsemblePosterior) and len(run.posterior) == 2
    assert (run.model_dir / ENSEMBLE_FILE).is_file() and (run.model_dir / "recipe.yaml").is_file()
    seeds = [m.metadata["seed"] for m in run.posterior.members]
    assert seeds == [member_seed(3, 0), member_seed(3, 1)]
    assert run.posterior.metadata["members"][1]["seed"] == member_seed(3, 1)
    assert run.calibration is not None and run.calibration_dir is not None
    assert run.seconds["simulate"] > 0 and run.seconds["train"] > 0

    # member k is the single-model recipe with its seed: trained here in this process, it
    # gives the same samples as the member trained in a worker process
    alone = train_from_recipe(member_recipe(recipe, 1), tmp_path / "alone")
    np.testing.assert_allclose(
        alone.posterior.sample(5, Y0, steps=10, seed=1),
        run.posterior.members[1].sample(5, Y0, steps=10, seed=1),
        rtol=1e-4,
        atol=1e-5,
    )

    # again: both members are kept (nothing simulated), and the pooled draws are unchanged
    weights = tmp_path / "run" / "members" / "member-1" / "model" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = train_from_recipe(recipe, tmp_path / "run")
    assert again.seconds["simulate"] == 0 and weights.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(
        again.posterior.sample(4, Y0, steps=10, seed=0),
        run.posterior.sample(4, Y0, steps=10, seed=0),
    )


def test_cli_trains_and_samples_an_ensemble(tmp_path: Path) -> None:
    path = tmp_path / "tiny-ensemble.yaml"
    path.write_text(yaml.safe_dump(_ensemble_recipe(2, 1), sort_keys=False), encoding="utf-8")
    out = tmp_path / "run"
    result = runner.invoke(app, ["invert", "train", str(path), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "trained 2 members x 3 epochs on 360 pairs each" in result.output
    np.save(tmp_path / "y.npy", Y0)
    samples = tmp_path / "s.npy"
    result = runner.invoke(
        app,
        [
            "invert",
            "sample",
            str(out),
            "-y",
            str(tmp_path / "y.npy"),
            "-n",
            "6",
            "--out",
            str(samples),
        ],
    )
    assert result.exit_code == 0, result.output
    drawn = np.load(samples)
    assert drawn.shape == (6, 3) and np.all(np.isfinite(drawn))


def test_worker_thread_environment_is_set_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    from scorepde.inverse.recipes import THREAD_VARIABLES, _thread_environment

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with _thread_environment(1):
        assert all(os.environ[name] == "1" for name in THREAD_VARIABLES)
    assert os.environ["OMP_NUM_THREADS"] == "7" and "MKL_NUM_THREADS" not in os.environ
