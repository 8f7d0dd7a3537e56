"""evaluation layer: statistics of generated fields against fresh simulator fields, the report.

metrics: per-channel statistics on (n, channels, n_points) sample sets; compare: model vs
simulator next to the simulator-vs-simulator noise floor, and target profiles; report: JSON +
Markdown report and terminal table; plots: the figures. calibration: simulation-based
calibration (rank statistics, KS tests, coverage of credible intervals) of posterior samplers.
"""

from scorepde.evaluation.calibration import (
    CalibrationResult,
    calibration_from_samples,
    component_statistics,
    simulation_based_calibration,
)
from scorepde.evaluation.compare import (
    QUICK_TARGETS,
    SEED_TARGETS,
    EvaluationTargets,
    check_targets,
    compare_sample_sets,
    invariance_check,
)
from scorepde.evaluation.metrics import (
    boundary_errors,
    channel_fluctuation_scale,
    classifier_two_sample_test,
    coverage,
    energy_distance,
    energy_permutation_test,
    mean_error,
    std_error,
)
from scorepde.evaluation.report import (
    evaluation_result,
    format_table,
    plot_result_band,
    write_report,
)

__all__ = [
    "QUICK_TARGETS",
    "SEED_TARGETS",
    "CalibrationResult",
    "EvaluationTargets",
    "boundary_errors",
    "calibration_from_samples",
    "channel_fluctuation_scale",
    "check_targets",
    "classifier_two_sample_test",
    "compare_sample_sets",
    "component_statistics",
    "coverage",
    "energy_distance",
    "energy_permutation_test",
    "evaluation_result",
    "format_table",
    "invariance_check",
    "mean_error",
    "plot_result_band",
    "simulation_based_calibration",
    "std_error",
    "write_report",
]
