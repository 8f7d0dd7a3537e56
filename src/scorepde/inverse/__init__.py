"""inverse layer: simulator + noise model -> pairs (x, y) -> conditional score p(x | y) ->
posterior samples for any observation without retraining (see docs/inverse.md)."""

from scorepde.inverse.arviz_io import read_netcdf, to_inference_data, write_netcdf
from scorepde.inverse.battery import (
    BatteryComparison,
    BatteryPorosityProblem,
    ObservationComparison,
    compare_with_mcmc,
    train_battery_posterior,
)
from scorepde.inverse.elasticity import Elastography
from scorepde.inverse.elasticity_reference import (
    ElastographyComparison,
    InclusionPosterior,
    compare_with_reference,
    inclusion_reference,
)
from scorepde.inverse.ensemble import EnsemblePosterior, load_posterior, member_seed
from scorepde.inverse.linear_gaussian import (
    LinearGaussianProblem,
    make_gaussian_linear_task,
    make_linear_gaussian,
)
from scorepde.inverse.mcmc import (
    MCMCResult,
    effective_sample_size,
    monte_carlo_standard_error,
    pcn_sample,
    split_rhat,
)
from scorepde.inverse.noise_models import (
    NOISE_MODELS,
    AdditiveGaussian,
    MultiplicativeLogNormal,
    NoiseModel,
    RelativeGaussian,
    StudentT,
    build_noise_model,
)
from scorepde.inverse.posterior import (
    AmortisedPosterior,
    Standardiser,
    default_model_config,
    default_train_config,
    fixed_steps_train_config,
    format_summary,
    from_simulator,
    summarise,
)

__all__ = [
    "NOISE_MODELS",
    "AdditiveGaussian",
    "AmortisedPosterior",
    "BatteryComparison",
    "BatteryPorosityProblem",
    "Elastography",
    "ElastographyComparison",
    "EnsemblePosterior",
    "InclusionPosterior",
    "LinearGaussianProblem",
    "MCMCResult",
    "MultiplicativeLogNormal",
    "NoiseModel",
    "ObservationComparison",
    "RelativeGaussian",
    "Standardiser",
    "StudentT",
    "build_noise_model",
    "compare_with_mcmc",
    "compare_with_reference",
    "default_model_config",
    "default_train_config",
    "effective_sample_size",
    "fixed_steps_train_config",
    "format_summary",
    "from_simulator",
    "inclusion_reference",
    "load_posterior",
    "make_gaussian_linear_task",
    "make_linear_gaussian",
    "member_seed",
    "monte_carlo_standard_error",
    "pcn_sample",
    "read_netcdf",
    "split_rhat",
    "summarise",
    "to_inference_data",
    "train_battery_posterior",
    "write_netcdf",
]
