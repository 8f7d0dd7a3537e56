"""The evaluation report: ``report.json`` (everything) and ``report.md`` (for people).

One *result* per evaluation condition, built by ``evaluation_result``::

    {"condition": {"load": 3.6, ...},          # the condition values
     "comparison": compare_sample_sets(...),    # per-channel metrics, floors, joint energy,
                                                # optionally "derived" and "residual"
     "targets": EvaluationTargets.as_dict(),
     "failures": [...], "passed": bool,         # check_targets against those targets
     "figures": ["figures/band_load=3.6.png"],  # relative to the report folder
     "invariances": {name: invariance_check}}   # optional: the declared invariances

``write_report`` writes both files atomically; ``format_table`` prints the summary in a
terminal; ``plot_result_figures`` draws the figures of one result for a grid of any rank and
records them in it: for 1-D fields ``plot_result_band`` (mean and 95 % band of model and
simulator, the seed study's Figure 4), for 2-D fields images of mean, std and samples
(``plotting.plot_field_images``) and bands along the middle row (``plot_transect_band``).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scorepde.evaluation.compare import EvaluationTargets, check_targets
from scorepde.fields import FieldSpec
from scorepde.fileio import atomic_write_text
from scorepde.plotting import plot_field_images, plot_mean_band, plot_transect_band
from scorepde.provenance import provenance

__all__ = [
    "evaluation_result",
    "format_condition",
    "format_table",
    "plot_result_band",
    "plot_result_figures",
    "to_jsonable",
    "write_report",
]


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays, tuples, paths and dataclass targets.

    Non-finite floats become None (strict JSON has no NaN or infinity).
    """
    if isinstance(value, EvaluationTargets):
        return to_jsonable(value.as_dict())
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def format_condition(condition: Mapping[str, Any]) -> str:
    """``{"load": 3.6, "I": 1.0}`` -> ``"load=3.6, I=1"`` (numbers to 4 significant digits)."""
    parts = []
    for key, value in condition.items():
        if isinstance(value, int | float | np.number) and not isinstance(value, bool):
            parts.append(f"{key}={float(value):.4g}")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts) if parts else "-"


def evaluation_result(
    condition: Mapping[str, Any],
    comparison: Mapping[str, Any],
    targets: EvaluationTargets | Mapping[str, Any],
    figures: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """One condition's entry of the report: the comparison judged against the targets.

    condition: name -> value (physical units); comparison: from ``compare_sample_sets``;
    figures: paths relative to the report folder (``plot_result_band`` appends to them).
    """
    if not isinstance(targets, EvaluationTargets):
        targets = EvaluationTargets.from_dict(targets)
    failures = check_targets(comparison, targets)
    return {
        "condition": dict(condition),
        "comparison": dict(comparison),
        "targets": targets.as_dict(),
        "failures": failures,
        "passed": not failures,
        "figures": [Path(f).as_posix() for f in figures],
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9=.+-]+", "_", text).strip("_") or "condition"


def plot_result_band(
    result: dict[str, Any],
    model: np.ndarray,
    simulator: np.ndarray,
    grid: np.ndarray,
    out_dir: str | Path,
    *,
    channel_units: Sequence[str] | None = None,
    level: float = 0.95,
    model_label: str = "SGM",
) -> Path:
    """Mean and central band of model and simulator per channel, for one result.

    model: (n, C, N), simulator: (m, C, N) in physical units (1-D fields; for any rank use
    ``plot_result_figures``); grid: (N,) metres. Writes
    ``out_dir/figures/band_<condition>.png``, appends its path relative to ``out_dir`` to
    ``result["figures"]`` and returns the absolute path.
    """
    out_dir = Path(out_dir)
    channels = result["comparison"]["channels"]
    condition_text = format_condition(result["condition"])
    relative = Path("figures") / f"band_{_slug(condition_text)}.png"
    path = plot_mean_band(
        {"simulator": simulator, model_label: model},
        grid,
        channels,
        out_dir / relative,
        channel_units=channel_units,
        title=f"{condition_text}: mean and {round(level * 100)} % band",
        level=level,
    )
    result.setdefault("figures", []).append(relative.as_posix())
    return path


def plot_result_figures(
    result: dict[str, Any],
    model: np.ndarray,
    simulator: np.ndarray,
    spec: FieldSpec,
    out_dir: str | Path,
    *,
    level: float = 0.95,
    model_label: str = "SGM",
) -> list[Path]:
    """The figures of one result, chosen by the grid's rank; returns their absolute paths.

    model: (n, C, *S), simulator: (m, C, *S) in physical units; spec: their ``FieldSpec``.
    Rank 1: ``plot_result_band`` (``figures/band_<condition>.png``). Rank 2:
    ``figures/fields_<condition>.png`` (per channel, mean, std and three samples of model and
    simulator as images on a shared colour scale) and ``figures/transect_<condition>.png``
    (mean, mean +- 2 std and the central band along the middle row, model vs simulator).
    Rank 3: the transect only. Each path, relative to ``out_dir``, is appended to
    ``result["figures"]``.
    """
    if spec.rank == 1:
        return [
            plot_result_band(
                result,
                model,
                simulator,
                spec.coordinates[0],
                out_dir,
                channel_units=spec.channel_units,
                level=level,
                model_label=model_label,
            )
        ]
    out_dir = Path(out_dir)
    condition_text = format_condition(result["condition"])
    sets = {model_label: model, "simulator": simulator}
    paths = []
    if spec.rank == 2:
        relative = Path("figures") / f"fields_{_slug(condition_text)}.png"
        paths.append(
            plot_field_images(
                sets, spec, out_dir / relative, title=f"{condition_text}: mean, std, samples"
            )
        )
        result.setdefault("figures", []).append(relative.as_posix())
    relative = Path("figures") / f"transect_{_slug(condition_text)}.png"
    paths.append(
        plot_transect_band(
            sets, spec, out_dir / relative, level=level, title=f"{condition_text}: transect"
        )
    )
    result.setdefault("figures", []).append(relative.as_posix())
    return paths


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "nan" if value is None or math.isnan(value) else str(value)
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


_DECLARED_PREFIXES = ("derived_", "derived[", "residual_")


def _channel_passed(result: Mapping[str, Any], channel: str) -> bool:
    for failure in result.get("failures", []):
        if failure.startswith(_DECLARED_PREFIXES):
            continue  # a derived quantity or the residual, not a channel
        if f"[{channel}]" in failure or failure.startswith("energy_"):
            return False
    return True


def _invariance_checks(result: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(condition name, check) of every invariance checked in a result.

    Results written before "invariances" existed hold one "invariance"; its condition is the
    one that differs in "shifted_condition".
    """
    if "invariances" in result:
        return list(result["invariances"].items())
    if "invariance" not in result:
        return []
    check = result["invariance"]
    shifted, condition = check.get("shifted_condition", {}), result.get("condition", {})
    moved = [key for key, value in shifted.items() if condition.get(key) != value]
    return [(", ".join(moved) or "-", check)]


def _declared_status(result: Mapping[str, Any], key: str, failure_prefix: str) -> str:
    """PASS/FAIL of a declared check whose target is ``key``; "-" when not judged."""
    if result.get("targets", {}).get(key) is None:
        return "-"
    failures = result.get("failures", [])
    return "FAIL" if any(f.startswith(failure_prefix) for f in failures) else "PASS"


_DECLARED_HEADER = ("condition", "check", "model (floor)", "status")


def _declared_rows(
    results: Sequence[Mapping[str, Any]], *, invariances: bool
) -> list[tuple[str, ...]]:
    """Rows of the checks a problem declares: derived quantities, residual, invariances.

    Status: PASS/FAIL when the result's targets judge the check, "-" when it is reported only.
    """
    rows: list[tuple[str, ...]] = []
    for result in results:
        comparison = result["comparison"]
        condition = format_condition(result["condition"])

        for name, entry in comparison.get("derived", {}).items():
            model, floor = entry["model"], entry["floor"]
            rows.append(
                (
                    condition,
                    f"{name}: mean difference",
                    f"{_number(model['mean_difference'])} ({_number(floor['mean_difference'])})",
                    _declared_status(
                        result, "derived_mean_difference", f"derived_mean_difference[{name}]"
                    ),
                )
            )
            rows.append(
                (
                    condition,
                    f"{name}: std ratio",
                    f"{_number(model['std_ratio'])} ({_number(floor['std_ratio'])})",
                    _declared_status(result, "derived_std_ratio", f"derived_std_ratio[{name}]"),
                )
            )
            undefined = entry.get("model_nonfinite_fraction", 0.0)
            if undefined:
                rows.append(
                    (
                        condition,
                        f"{name}: undefined (non-finite) share",
                        f"{_number(undefined)} (0)",
                        "FAIL"
                        if any(f.startswith(f"derived[{name}]") for f in result.get("failures", []))
                        else "PASS",
                    )
                )
        residual = comparison.get("residual")
        if residual is not None:
            rows.append(
                (
                    condition,
                    "residual mean: model / simulator",
                    f"{_number(residual['model_mean'])} / {_number(residual['simulator_mean'])}",
                    "-",
                )
            )
            for stat in ("mean", "median"):
                rows.append(
                    (
                        condition,
                        f"residual ratio ({stat})",
                        f"{_number(residual[f'ratio_{stat}'])} "
                        f"({_number(residual[f'floor_{stat}'])})",
                        _declared_status(result, "residual_ratio", "residual_ratio")
                        if stat == "mean"
                        else "-",
                    )
                )
        if invariances:
            for name, check in _invariance_checks(result):
                mean_errors = " / ".join(_number(v) for v in check["model"]["mean_error"])
                floor_errors = " / ".join(_number(v) for v in check["floor"]["mean_error"])
                rows.append(
                    (
                        condition,
                        f"invariance in {name}: mean err per channel",
                        f"{mean_errors} ({floor_errors})",
                        "-",
                    )
                )
                rows.append(
                    (
                        condition,
                        f"invariance in {name}: energy ratio",
                        _number(check["energy_ratio"]),
                        "-",
                    )
                )
    return rows


_HEADER = (
    "condition",
    "channel",
    "mean err (floor)",
    "std err (floor)",
    "coverage (floor)",
    "energy ratio ch",
    "energy ratio joint",
    "status",
)


def _rows(results: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    rows = []
    for result in results:
        comparison = result["comparison"]
        values, floor = comparison["metrics"], comparison["floor"]
        condition = format_condition(result["condition"])
        for ch, channel in enumerate(comparison["channels"]):
            rows.append(
                (
                    condition,
                    channel,
                    f"{_number(values['mean_error'][ch])} ({_number(floor['mean_error'][ch])})",
                    f"{_number(values['std_error'][ch])} ({_number(floor['std_error'][ch])})",
                    f"{_number(values['coverage'][ch])} ({_number(floor['coverage'][ch])})",
                    _number(comparison["energy_ratio"][ch]),
                    _number(comparison["joint"]["energy_ratio"]),
                    "PASS" if _channel_passed(result, channel) else "FAIL",
                )
            )
    return rows


def format_table(results: Sequence[Mapping[str, Any]]) -> str:
    """Plain-text summary, one row per condition x channel, columns aligned.

    Each metric is shown as ``value (simulator floor)``; "energy ratio ch" is the
    channel-alone ratio (reported), "energy ratio joint" the one judged by the targets.
    A row FAILs if a target of its channel or the joint energy target is missed. When the
    results hold declared checks (derived quantities, residual, invariances), a second table
    follows, one row per check: ``model value (floor)`` and PASS/FAIL, or "-" when the
    targets do not judge it.
    """
    text = _aligned(_HEADER, _rows(results))
    declared = _declared_rows(results, invariances=True)
    if declared:
        text += "\n\n" + _aligned(_DECLARED_HEADER, declared)
    return text


def _aligned(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    rows = [tuple(header), *body]
    widths = [max(len(row[k]) for row in rows) for k in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _markdown(title: str, results: Sequence[Mapping[str, Any]], document: Mapping[str, Any]) -> str:
    passed = sum(1 for r in results if r.get("passed"))
    lines = [f"# {title}", "", f"**{passed} of {len(results)} conditions pass.**", ""]
    grid = document.get("grid")
    if grid:
        lines += _grid_headline(grid)
    profiles = {json.dumps(r["targets"], sort_keys=True): r["targets"] for r in results}
    for target in profiles.values():
        energy = target.get("energy_ratio")
        declared = []
        if target.get("derived_mean_difference") is not None:
            declared.append(
                f"derived quantities' mean difference <= {target['derived_mean_difference']}"
            )
        if target.get("derived_std_ratio") is not None:
            deviation = target["derived_std_ratio"]
            declared.append(f"std ratio in [{1 - deviation:.4g}, {1 + deviation:.4g}]")
        if target.get("residual_ratio") is not None:
            declared.append(f"residual ratio <= {target['residual_ratio']}")
        lines.append(
            f"Targets `{target['name']}`: mean err <= {target['mean_error']}, std err <= "
            f"{target['std_error']}, coverage in [{target['coverage'][0]}, "
            f"{target['coverage'][1]}], joint energy ratio "
            + (f"<= {energy}" if energy is not None else "reported only")
            + "".join(f", {text}" for text in declared)
            + "."
        )
    lines += [
        "",
        "## Summary",
        "",
        "Each metric as `value (floor)`; the floor is a second simulator set against the "
        "first, i.e. what a perfect model scores with these sample sizes.",
        "",
        *_markdown_table(_HEADER, _rows(results)),
        "",
    ]
    failing = [r for r in results if r.get("failures")]
    if failing:
        lines += ["## Failures", ""]
        for result in failing:
            lines.append(f"- **{format_condition(result['condition'])}**")
            lines += [f"  - {failure}" for failure in result["failures"]]
        lines.append("")
    boundary_rows = []
    for result in results:
        comparison = result["comparison"]
        for key, entry in comparison.get("boundary", {}).items():
            floor = comparison.get("boundary_floor", {}).get(key, {})
            boundary_rows.append(
                (
                    format_condition(result["condition"]),
                    f"{key} = {entry['target']:.4g}",
                    f"{_number(entry['mean'])} / {_number(entry['max'])}",
                    f"{_number(floor.get('mean'))} / {_number(floor.get('max'))}",
                )
            )
    if boundary_rows:
        lines += [
            "## Boundary conditions",
            "",
            "Relative error (mean / max over samples) of the boundary value, or of the "
            "boundary derivative times the domain length, over the channel's overall std.",
            "",
            *_markdown_table(("condition", "constraint", "model", "simulator"), boundary_rows),
            "",
        ]
    declared_rows = _declared_rows(results, invariances=False)
    if declared_rows:
        lines += [
            "## Derived quantities and residual",
            "",
            "Quantities the problem declares, per field. Derived quantity: standardised mean "
            "difference `|mean_model - mean_sim| / std_sim` and std ratio `std_model / std_sim`; "
            "residual: the model's discrete PDE residual over the simulator's (mean and "
            "median over samples). Each as `model (floor)`, the floor being a second simulator "
            "set against the first; status `-`: reported only.",
            "",
            *_markdown_table(_DECLARED_HEADER, declared_rows),
            "",
        ]
    invariance_rows = []
    for result in results:
        for name, check in _invariance_checks(result):
            invariance_rows.append(
                (
                    format_condition(result["condition"]),
                    name,
                    format_condition(check.get("shifted_condition", {})),
                    " / ".join(_number(v) for v in check["model"]["mean_error"]),
                    " / ".join(_number(v) for v in check["floor"]["mean_error"]),
                    _number(check["energy_ratio"]),
                )
            )
    if invariance_rows:
        lines += [
            "## Invariances",
            "",
            "The problem declares that the distribution of its fields does not depend on these "
            "conditions, so model samples at the condition and at the condition moved must be "
            "as close to each other as two independent simulator sets. Mean error per channel "
            "(model pair vs simulator pair) and the joint energy ratio (model pair / simulator "
            "pair, sample-size corrected; ~1 or below = invariant).",
            "",
            *_markdown_table(
                (
                    "condition",
                    "invariant in",
                    "moved to",
                    "model mean err",
                    "simulator floor",
                    "energy ratio",
                ),
                invariance_rows,
            ),
            "",
        ]
    if grid and grid.get("heatmaps"):
        lines += [
            "## Heat maps over the design grid",
            "",
            "Each measure at every grid point (model vs the first simulator set, n as in the "
            "metadata); red outline: the point misses the target of that measure.",
            "",
        ]
        for figure in grid["heatmaps"]:
            lines += [f"![{figure}]({figure})", ""]
    figure_lines = []
    for result in results:
        for figure in result.get("figures", []):
            caption = format_condition(result["condition"])
            figure_lines += [f"### {caption}", "", f"![{caption}]({figure})", ""]
    if figure_lines:
        lines += ["## Figures", "", *figure_lines]
    lines += [
        "## Metadata",
        "",
        "```json",
        json.dumps(
            {"metadata": document["metadata"], "provenance": document["provenance"]},
            indent=2,
            sort_keys=True,
        ),
        "```",
        "",
    ]
    return "\n".join(lines)


def _grid_headline(grid: Mapping[str, Any]) -> list[str]:
    """The worst case over the design grid: the report's headline (``grid.grid_summary``)."""
    axes = grid["grid"]["axes"]
    description = "; ".join(
        f"{name}: " + ", ".join(_number(v) for v in values) for name, values in axes.items()
    )
    rows = []
    for row in grid["worst"]:
        bound = row["bound"]
        if isinstance(bound, list):
            bound_text = f"[{_number(bound[0])}, {_number(bound[1])}]"
        else:
            bound_text = "-" if bound is None else _number(bound)
        rows.append(
            (
                row["measure"],
                row["channel"],
                _number(row["value"]),
                _number(row["floor"]),
                format_condition(row["condition"]),
                bound_text,
                "PASS" if row["passed"] else "FAIL",
            )
        )
    return [
        "## Worst case over the design grid",
        "",
        f"**{grid['passed']} of {grid['points']} grid points pass.** Grid: {description}"
        + (
            f" (invariant: {', '.join(grid['grid']['invariant'])}, paired at every point)"
            if grid["grid"]["invariant"]
            else ""
        )
        + ".",
        "",
        *_markdown_table(
            ("measure", "channel", "worst", "floor there", "at", "target", "status"), rows
        ),
        "",
    ]


def write_report(
    out_dir: str | Path,
    results: list[dict[str, Any]],
    *,
    title: str,
    metadata: Mapping[str, Any],
    grid: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` atomically.

    results: one ``evaluation_result`` dict per condition (figure paths relative to
    ``out_dir``; absolute paths are made relative when possible); metadata: the run's
    configuration, seeds, checkpoint, etc. The JSON holds {"title", "metadata",
    "provenance", "results"}; provenance (version, git revision, time) is added here.
    grid: a design-grid summary (``evaluation.grid.grid_summary``): stored as "grid" in the
    JSON; the Markdown opens with its worst cases and shows its heat maps.
    Returns (json_path, markdown_path).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cleaned = []
    for result in results:
        result = dict(result)
        figures = []
        for figure in result.get("figures", []):
            figure = Path(figure)
            if figure.is_absolute():
                figure = Path(os.path.relpath(figure, out_dir))
            figures.append(figure.as_posix())
        result["figures"] = figures
        cleaned.append(to_jsonable(result))
    document = {
        "title": title,
        "metadata": to_jsonable(dict(metadata)),
        "provenance": provenance(),
        "results": cleaned,
    }
    if grid is not None:
        document["grid"] = to_jsonable(dict(grid))
    json_path = out_dir / "report.json"
    markdown_path = out_dir / "report.md"
    atomic_write_text(json_path, json.dumps(document, indent=2, allow_nan=False) + "\n")
    atomic_write_text(markdown_path, _markdown(title, cleaned, document))
    return json_path, markdown_path
