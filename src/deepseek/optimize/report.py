"""What ``deepseek optimize`` leaves in ``--output``: the chosen artifact (verified again after copying), the
Pareto front (``pareto.json``, ``pareto.png``), ``report.md``, and ``recipe.yaml``, which rebuilds the artifact
exactly (``deepseek optimize --recipe out/recipe.yaml``)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._core.atomic import atomic_path, output_folder, write_json, write_text
from .._core.errors import VerificationError

if TYPE_CHECKING:
    from .data import Judge
    from .result import Candidate, OptimizeResult

RECIPE_VERSION = 2  # 2: the compile recipe nests its INT8 scheme (``int8``); 1 is still read


def check_new_folder(path: Any, *, argument: str = "output", inputs: Any = ()) -> Path:
    """Refuse, before any work, an output folder that holds files (it is never overwritten), is a file, is one of
    ``inputs`` or cannot be created and written."""
    from .._core.atomic import check_output
    from .._core.errors import invalid

    out = check_output(path, argument=argument, inputs=inputs, folder=True)
    try:
        has_files = out.is_dir() and any(out.iterdir())
    except OSError as exc:
        raise invalid(argument, str(out), f"a folder that can be read ({exc.strerror or exc})") from None
    if has_files:
        raise invalid(argument, str(out), "a new or empty folder (it is never overwritten)")
    return out


def write_outputs(result: OptimizeResult, folder: Path, model_source: Any, input_shapes: list[list[int]],
                  judge: Judge, input_dtypes: list[str] | None = None) -> None:
    from .._core import machine as _machine

    out = output_folder(folder, what=str(folder))
    best = result.best
    artifact = copy_verified(best, out, judge, result.config.threads)
    result.output, result.artifact = out, artifact
    machine = _machine.describe(_machine.summary(threads=result.config.threads))
    front = {c.number for c in result.pareto()}
    rows = [{**c.row(), "pareto": c.number in front, "chosen": c is best} for c in result.candidates]
    write_json(out / "pareto.json", {"config": result.config.to_dict(), "machine": machine,
                                     "judge": {"kind": judge.kind, "metric": judge.metric_name, "unit": judge.unit,
                                               "budget": judge.budget},
                                     "latency_ranking": [dataclasses.asdict(e) for e in result.ranking],
                                     "reference_accuracy": result.reference_accuracy,
                                     "baseline_latency_ms": result.baseline.latency_ms,
                                     "chosen": best.number, "artifact": artifact.name, "candidates": rows})
    plot_pareto(result, out / "pareto.png", machine)
    write_text(out / "report.md", report_markdown(result, rows, machine))
    write_recipe(out / "recipe.yaml", best, model_source, input_shapes, result.config.data, result.config.threads,
                 input_dtypes, judge)


def copy_verified(candidate: Candidate, folder: Path, judge: Judge, threads: int) -> Path:
    """``candidate``'s artifact as ``folder/model.<ext>`` (an arm64 bundle: ``model_arm.so`` with its
    ``model_arm.bundle/``), scored again from the copy: the same figures or an error."""
    from .data import artifact_outputs

    assert candidate.path is not None
    target = folder / candidate.path.name
    bundle = candidate.path.with_name(f"{candidate.path.stem}.bundle")
    if bundle.is_dir():  # the folder first: the .so finds its runtime libraries in it
        staged = folder / f".{bundle.name}.tmp"
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(bundle, staged, symlinks=True)
        staged.replace(folder / bundle.name)
    weights = candidate.path.with_suffix(".bin")
    if candidate.path.suffix == ".xml" and weights.is_file():  # OpenVINO IR: the weights before the graph
        with atomic_path(folder / weights.name) as tmp:
            shutil.copyfile(weights, tmp)
    with atomic_path(target) as tmp:
        shutil.copyfile(candidate.path, tmp)
    again = judge.score(artifact_outputs(target, judge, threads))
    if abs(again["drop"] - candidate.scores["drop"]) > 1e-9:
        target.unlink()
        (folder / weights.name).unlink(missing_ok=True)
        shutil.rmtree(folder / bundle.name, ignore_errors=True)
        raise VerificationError(f"{target}: scored {again['drop']:.4f} {judge.unit} after copying, "
                                f"{candidate.scores['drop']:.4f} when measured")
    return target


def write_recipe(path: Path, candidate: Candidate, model_source: Any, input_shapes: list[list[int]], data: str,
                 threads: int, input_dtypes: list[str] | None = None, judge: Judge | None = None) -> None:
    import yaml

    from .onnx_source import OnnxRecipe

    section = "onnx" if isinstance(candidate.recipe, OnnxRecipe) else "compile"
    recipe = {"deepseek_optimize_recipe": RECIPE_VERSION,
              "model": None if model_source is None else str(model_source), "inputs": input_shapes,
              "input_dtypes": input_dtypes or ["float32"] * len(input_shapes), "data": data,
              section: _plain({k: v for k, v in candidate.recipe.to_dict().items() if not k.startswith("_")}),
              "measured": {"candidate": candidate.row()["candidate"], "drop": candidate.scores.get("drop"),
                           "drop_pp": candidate.scores.get("drop_pp"),
                           "accuracy": candidate.scores.get("accuracy"),
                           "confident_agreement": candidate.scores.get("confident_agreement"),
                           "latency_ms": candidate.latency_ms, "size_bytes": candidate.size_bytes, "threads": threads}}
    if judge is not None and judge.kind != "classes":
        recipe["judge"] = {"kind": judge.kind, "metric": judge.metric_name,
                           "min_sqnr_db": -judge.budget if judge.kind == "fidelity" else None}
    write_text(path, yaml.safe_dump(recipe, sort_keys=False))


def report_markdown(result: OptimizeResult, rows: list[dict[str, Any]], machine: str) -> str:
    cfg, best, base = result.config, result.best, result.baseline
    judge = result.judge
    kind = judge.kind if judge is not None else "classes"
    budget = (f"every output's SQNR >= {cfg.min_sqnr_db:g} dB" if kind == "fidelity" else
              f"budget {cfg.max_accuracy_drop:g} pp" + (f" of {judge.metric_name}" if kind == "metric" else ""))
    lines = [f"# deepseek optimize: {cfg.target}, {cfg.data}, {budget}, objective {cfg.objective}",
             "", f"Machine: {machine}.", ""]
    speed = (f"{result.speedup:.2f}x the FP32 baseline's speed" if result.speedup else
             f"{(base.size_bytes or 0) / max(best.size_bytes or 1, 1):.2f}x smaller than the FP32 baseline")
    timing = "" if base.latency_ms is not None else \
        f" Latency not measured: this host cannot time {cfg.target} artifacts (only accuracy and size are real here)."
    def ms(c: Candidate) -> str:
        return "" if c.latency_ms is None else f"{c.latency_ms:.3f} ms, "

    if cfg.target == "arm64":
        timing += (" Size: the model library (`model_arm.so`, the program inside it); every candidate's bundle also "
                   "ships the same ExecuTorch runtime libraries in `model_arm.bundle/lib/`.")
    figure = judge.describe(best.scores) if judge is not None else f"drop {best.scores['drop_pp']:.2f} pp"
    lines += [f"**Chosen: {best.row()['candidate']}** — {ms(best)}"
              f"{(best.size_bytes or 0) / 1e6:.2f} MB, {figure}; {speed}.", "",
              f"Baseline ({cfg.baseline}): {ms(base)}{(base.size_bytes or 0) / 1e6:.2f} MB." + timing, "",
    ]

    def fmt(v: Any, spec: str) -> str:
        return "" if v is None else format(v, spec)

    if kind == "classes":
        head = "| drop (pp) | accuracy | agreement | confident | clear | KL "
        cells = lambda r: (f"| {fmt(r['drop_pp'], '.2f')} | {fmt(r['accuracy'], '.4f')} | "  # noqa: E731
                           f"{fmt(r['agreement'], '.4f')} | {fmt(r['confident_agreement'], '.4f')} | "
                           f"{fmt(r['clear_agreement'], '.4f')} | {fmt(r['mean_kl'], '.4f')} ")
    elif kind == "metric":
        head = f"| drop (pp) | {judge.metric_name} "
        cells = lambda r: f"| {fmt(r['drop_pp'], '.2f')} | {fmt(r['metric'], '.4f')} "  # noqa: E731
    else:
        head = "| worst SQNR (dB) | worst cosine "
        cells = lambda r: f"| {fmt(r['sqnr_db'], '.1f')} | {fmt(r['cosine'], '.5f')} "  # noqa: E731
    lines += [f"| trial | candidate {head}| latency (ms) | size (MB) | within budget | Pareto |",
              "|---|---|" + "---|" * (head.count("|")) + "---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (not r["feasible"], r["latency_ms"] or 1e9, r["size_bytes"] or 0)):
        lines.append(f"| {r['trial']} | {r['candidate']}{' (chosen)' if r['chosen'] else ''} {cells(r)}| "
                     f"{fmt(r['latency_ms'], '.3f')} | "
                     f"{fmt((r['size_bytes'] or 0) / 1e6 if r['size_bytes'] else None, '.2f')} | "
                     f"{'yes' if r['feasible'] else 'no'} | {'yes' if r['pareto'] else ''} |")
    what = {"classes": "FP32 accuracy minus the candidate's" if result.reference_accuracy is not None else
            "disagreement with FP32 on confident views",
            "metric": f"the FP32 model's {judge.metric_name if judge else ''} ({result.reference_accuracy or 0:.4f}) "
                      "minus the candidate's, in percentage points",
            "fidelity": "each output's SQNR and cosine similarity against the FP32 model's outputs, the worst shown"}
    lines += ["", "Latency: batch 1, median, each artifact in a process of its own; not measured for candidates "
                  "outside the budget (the cheaper accuracy check ran first). "
                  f"Judged by: {what[kind]}, on held-out data the calibration never saw.", ""]
    if result.ranking:
        lines += ["## Finalists, re-timed together", "",
                  "Interleaved in one process (rounds of calls, the order rotating each round); speed-up over the "
                  "baseline with a 95 % paired-bootstrap interval over rounds. Candidates within noise of each other "
                  "cannot be told apart on this machine; among those tied with the fastest, the most accurate is "
                  "chosen.", "", "| candidate | median (ms) | speed-up [95 % interval] | within noise of |",
                  "|---|---|---|---|"]
        for e in result.ranking:
            lines.append(f"| {e.name} | {e.median_ms:.3f} | {e.ratio:.2f}x [{e.ratio_low:.2f}, {e.ratio_high:.2f}] | "
                         f"{', '.join(e.within_noise_of)} |")
        lines.append("")
    return "\n".join(lines)


def plot_pareto(result: OptimizeResult, path: Path, machine: str, xlabel: str = "batch-1 latency (ms)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    fidelity = result.judge is not None and result.judge.kind == "fidelity"
    ylabel = "worst output SQNR (dB)" if fidelity else "accuracy drop (percentage points)"

    def _y(c: Candidate | None) -> float:
        drop = (result.judge.budget if result.judge is not None else result.config.max_accuracy_drop) \
            if c is None else c.scores.get("drop", c.scores.get("drop_pp"))
        return -drop if fidelity else drop

    timed = [c for c in result.candidates if c.latency_ms is not None]
    by_size = not timed
    if by_size:  # this host could not time the target's artifacts: accuracy against size
        timed, xlabel = [c for c in result.candidates if c.size_bytes and not c.error], "artifact size (MB)"

    def x_of(c: Candidate) -> float:
        return c.size_bytes / 1e6 if by_size else c.latency_ms

    for c in timed:
        ax.scatter(x_of(c), _y(c), s=20 + 80 * (c.size_bytes or 0) / max(x.size_bytes or 1 for x in timed),
                   color="tab:green" if c.feasible else "tab:gray", alpha=0.8)
        ax.annotate(c.row()["candidate"], (x_of(c), _y(c)), fontsize=6, alpha=0.7)
    front = sorted((c for c in result.pareto() if c in timed), key=x_of)
    if front:
        ax.plot([x_of(c) for c in front], [_y(c) for c in front], color="tab:blue", lw=1,
                label="Pareto front")
    ax.axhline(_y(None), color="tab:red", ls="--", lw=1, label="accuracy budget")
    if result.best in timed:
        ax.scatter([x_of(result.best)], [_y(result.best)], marker="*", s=200, color="tab:orange",
                   label="chosen", zorder=5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    fig.text(0.01, 0.01, machine, fontsize=6, color="gray")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _plain(value: Any) -> Any:
    """``value`` with its tuples as lists, nested dicts included (YAML's safe dumper takes no tuples)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
