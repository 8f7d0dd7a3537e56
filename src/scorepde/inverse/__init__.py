"""inverse layer: simulator + noise model -> pairs (x, y) -> conditional score p(x | y) ->
posterior samples for any observation without retraining (see docs/inverse.md)."""

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
from scorepde.inverse.linear_gaussian import LinearGaussianProblem, make_linear_gaussian
from scorepde.inverse.mcmc import (
    MCMCResult,
    effective_sample_size,
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
    "format_summary",
    "from_simulator",
    "inclusion_reference",
    "make_linear_gaussian",
    "pcn_sample",
    "split_rhat",
    "summarise",
    "train_battery_posterior",
]
