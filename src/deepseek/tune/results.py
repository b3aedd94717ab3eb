"""A study's results on disk: the trials table (CSV and JSON), the best trial, and PNG plots (optimisation history,
parameter importances, parallel coordinates) drawn with Optuna's matplotlib backend."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._core.atomic import atomic_path, check_output, output_folder, write_json, write_text

if TYPE_CHECKING:
    from .study import TuneResult


def write_report(result: TuneResult, output: Path) -> list[Path]:
    """Every file in ``output`` (created if needed); each written atomically."""
    check_output(output, argument="output", folder=True)
    folder = output_folder(output)
    rows = result.trials()
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k != "number", k != "state", k != "value",
                                                                   k != "seconds", k.startswith("error"), k))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    written = [write_text(folder / "trials.csv", buffer.getvalue()),
               write_json(folder / "trials.json", [_jsonable(r) for r in rows]),
               write_json(folder / "best.json", {"metric": result.config.metric, "direction": result.config.direction,
                                                 "best_value": result.best_value, "best_trial": result.best_trial,
                                                 "best_params": result.best_params, "complete": result.complete,
                                                 "pruned": result.pruned, "failed": result.failed,
                                                 "study_name": result.config.study_name,
                                                 "storage": result.config.storage})]
    written += plot(result, folder)
    return written


def plot(result: TuneResult, folder: Path) -> list[Path]:
    """history.png always; importances.png and parallel.png when the study has 2+ parameters and enough trials."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    study = result.study
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    names = {k for t in complete for k in t.params}
    plots: list[tuple[str, Any]] = [("history.png", lambda: ovm.plot_optimization_history(study, target_name=result.config.metric))]
    if len(names) >= 2 and len(complete) >= 3:
        plots.append(("importances.png", lambda: ovm.plot_param_importances(study)))
        plots.append(("parallel.png", lambda: ovm.plot_parallel_coordinate(study, target_name=result.config.metric)))
    written = []
    import warnings

    for name, draw in plots:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib backend experimental
            ax = draw()
        figure = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        figure.set_size_inches(8, 4.5)
        figure.tight_layout()
        with atomic_path(folder / name) as tmp:
            figure.savefig(tmp, dpi=100, format="png")
        plt.close(figure)
        written.append(folder / name)
    return written


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
