"""evaluation layer: statistics of generated fields against fresh simulator fields, the report.

metrics: per-channel statistics on (n, channels, *grid) sample sets of any grid rank; compare:
model vs simulator next to the simulator-vs-simulator noise floor, the checks a problem
declares (invariances, derived quantities, residual), and target profiles; evaluate: all of it
for a problem at its evaluation conditions; grid: the same over a grid of the whole design,
its heat maps and worst case; report: JSON + Markdown report, terminal table and
the figures (1-D bands, 2-D images and transects). calibration: simulation-based
calibration (rank statistics, KS tests, coverage of credible intervals) of posterior samplers.
"""

from scorepde.evaluation.calibration import (
    CalibrationResult,
    calibration_from_samples,
    component_statistics,
    simulation_based_calibration,
)
from scorepde.evaluation.compare import (
    QUICK_2D_TARGETS,
    QUICK_DESIGN_TARGETS,
    QUICK_TARGETS,
    SEED_TARGETS,
    TARGET_PROFILES,
    EvaluationTargets,
    check_targets,
    compare_sample_sets,
    derived_quantity_check,
    invariance_check,
    residual_check,
    targets_from_config,
)
from scorepde.evaluation.grid import (
    DesignGrid,
    design_grid,
    evaluate_grid,
    grid_summary,
    grid_worst_cases,
    plot_grid_heatmaps,
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
    plot_result_figures,
    write_report,
)

__all__ = [
    "QUICK_2D_TARGETS",
    "QUICK_DESIGN_TARGETS",
    "QUICK_TARGETS",
    "SEED_TARGETS",
    "TARGET_PROFILES",
    "CalibrationResult",
    "DesignGrid",
    "EvaluationTargets",
    "boundary_errors",
    "calibration_from_samples",
    "channel_fluctuation_scale",
    "check_targets",
    "classifier_two_sample_test",
    "compare_sample_sets",
    "component_statistics",
    "coverage",
    "derived_quantity_check",
    "design_grid",
    "energy_distance",
    "energy_permutation_test",
    "evaluate_grid",
    "evaluation_result",
    "format_table",
    "grid_summary",
    "grid_worst_cases",
    "invariance_check",
    "mean_error",
    "plot_grid_heatmaps",
    "plot_result_band",
    "plot_result_figures",
    "residual_check",
    "simulation_based_calibration",
    "std_error",
    "targets_from_config",
    "write_report",
]
