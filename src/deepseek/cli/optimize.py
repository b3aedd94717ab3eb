"""``deepseek optimize``: the fastest (or smallest) artifact within an accuracy budget, searched and measured.

    deepseek optimize MODEL --target x86_64|arm64|cuda --data photos|digits|mnist-5k|fashion-mnist|DIR
                      --max-accuracy-drop 0.5 [--objective latency|size] [--trials 12] [--lowerings ort-fp32,ort-int8]
                      [--prune 0.25,0.5] [--inputs 1x3x224x224] --output out/
    deepseek optimize model.onnx --data DIR [--metric module:function | --judge fidelity [--min-sqnr 30]] --output out/
    deepseek optimize --recipe out/recipe.yaml --output again/ [MODEL]
    deepseek optimize smollm2|HF_FOLDER --data hamlet|text.txt --max-accuracy-drop 0.5 --output out/   (a causal LM:
                      weight-only int8/int4 and bfloat16, judged by next-token accuracy)
"""

from __future__ import annotations

import argparse
from typing import Any

from .._core.errors import invalid
from ..optimize.config import JUDGES, OBJECTIVES, ONNX_LOWERINGS, TARGET_LOWERINGS, TARGETS, OptimizeConfig

# the Python argument a library error names -> the flag the user typed
FLAGS = {"max_accuracy_drop": "--max-accuracy-drop", "target": "--target", "objective": "--objective",
         "trials": "--trials", "lowerings": "--lowerings", "prune_ratios": "--prune", "finetune_epochs": "--finetune-epochs",
         "calib_samples": "--calib-samples", "seed": "--seed", "data": "--data", "output": "--output",
         "recipe": "--recipe", "model": "MODEL", "example_inputs": "--inputs", "metric": "--metric",
         "judge": "--judge", "min_sqnr_db": "--min-sqnr"}
ALL_LOWERINGS = tuple(dict.fromkeys([*(lw for lws in TARGET_LOWERINGS.values() for lw in lws), *ONNX_LOWERINGS]))


def _ratios_type(text: str) -> tuple[float, ...]:
    """``--prune``: comma-separated fractions of channels strictly between 0 and 1."""
    import math

    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions between 0 and 1, e.g. 0.25,0.5, got "
                                         f"{text!r}") from None
    if not values or any(not math.isfinite(v) or not 0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions between 0 and 1 (exclusive), e.g. "
                                         f"0.25,0.5, got {text!r}")
    return values


def _lowerings_type(text: str) -> tuple[str, ...]:
    """``--lowerings``: comma-separated names among every target's lowerings (the target's own are checked later)."""
    values = tuple(x.strip() for x in text.split(","))
    if not values or any(v not in ALL_LOWERINGS for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated lowerings among {','.join(ALL_LOWERINGS)}, got "
                                         f"{text!r}")
    return values


def _shapes_type(text: str) -> list[tuple[int, ...]]:
    """``--inputs``: shapes like 1x3x224x224, comma-separated, every dimension >= 1."""
    shapes = []
    for part in text.split(","):
        try:
            dims = tuple(int(d) for d in part.strip().lower().split("x"))
        except ValueError:
            dims = ()
        if not dims or any(d < 1 for d in dims):
            raise argparse.ArgumentTypeError(f"expected shapes of positive dimensions like 1x3x224x224, "
                                             f"comma-separated, got {text!r}")
        shapes.append(dims)
    return shapes


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ._common import count, declare_flag_names, declare_outputs, number

    parser.add_argument("model", metavar="MODEL", nargs="?", help="a model file, an .onnx file or a built-in name "
                        "(with --recipe: optional, the recipe names its model)")
    parser.add_argument("--target", "--target-arch", default="x86_64", choices=TARGETS, help="where the artifact will run")
    parser.add_argument("--data", default=None, help="held-out data judging accuracy: photos (agreement with FP32), "
                        "digits, mnist-5k, fashion-mnist (labeled accuracy), or a folder DIR with inputs.npy "
                        "[labels.npy] [calibration.npy]")
    parser.add_argument("--max-accuracy-drop", type=number(minimum=0), default=0.5, metavar="PP",
                        help="percentage points below FP32 allowed (default 0.5), of accuracy or of --metric")
    parser.add_argument("--metric", default=None, metavar="MODULE:FUNCTION",
                        help="judge by your function(outputs, labels) -> score in [0, 1], higher is better, over the "
                        "model's outputs on the folder's inputs.npy and its labels.npy (module:function or "
                        "file.py:function): for detectors, segmenters, any output that is not class scores")
    parser.add_argument("--judge", default=None, choices=[j for j in JUDGES if j != "metric"],
                        help="fidelity: judge by every output's SQNR against FP32 (no labels needed); default: "
                        "--metric if given, else class scores")
    parser.add_argument("--min-sqnr", type=number(), default=None, metavar="DB",
                        help="with --judge fidelity: the lowest SQNR any output may have (default 30 dB)")
    parser.add_argument("--objective", default="latency", choices=OBJECTIVES)
    parser.add_argument("--trials", type=count(), default=12, help="distinct candidates to build and measure")
    parser.add_argument("--lowerings", type=_lowerings_type, default=None,
                        help="comma-separated subset of the target's (default: all): "
                        + "; ".join(f"{t}: {','.join(lw)}" for t, lw in TARGET_LOWERINGS.items()))
    parser.add_argument("--prune", type=_ratios_type, default=None, metavar="RATIOS",
                        help="channel-pruning ratios to try, e.g. 0.25,0.5; with a bundled labeled --data, each pruned "
                        "candidate is fine-tuned on its training part")
    parser.add_argument("--finetune-epochs", type=count(0), default=None,
                        help="fine-tune epochs of a pruned candidate (0: none; default 1)")
    parser.add_argument("--inputs", type=_shapes_type, default=None, metavar="SHAPE",
                        help="input shape when the file does not fix it")
    parser.add_argument("--arch", default=None, help="architecture for state_dict files, e.g. torchvision:resnet18")
    parser.add_argument("--calib-samples", "--samples", type=count(), default=None, help="calibration samples (default 128)")
    parser.add_argument("--seed", type=count(0), default=None, help="seed of the search (default 0)")
    parser.add_argument("--recipe", default=None, help="rebuild the artifact of a recipe.yaml exactly, and measure it")
    parser.add_argument("--output", "-o", required=True, help="a new folder for the artifact, pareto.json/png, "
                        "report.md and recipe.yaml")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    declare_outputs(parser, folders=("output",))
    declare_flag_names(parser, FLAGS)


def _refuse_unused(args: argparse.Namespace, why: str, *dests: str) -> None:
    flags = {"data": "--data", "prune": "--prune", "lowerings": "--lowerings", "inputs": "--inputs", "arch": "--arch",
             "finetune_epochs": "--finetune-epochs", "calib_samples": "--calib-samples", "seed": "--seed",
             "metric": "--metric", "judge": "--judge", "min_sqnr": "--min-sqnr"}
    for dest in dests:
        if getattr(args, dest) is not None:
            raise invalid(flags[dest], getattr(args, dest), f"nothing {why}")


def _optimize_lm(args: argparse.Namespace) -> int:
    from ..optimize.lm import describe_lm, optimize_lm
    from ._common import console

    _refuse_unused(args, "for a language model (its candidates are weight-only int8/int4 and bfloat16)", "prune",
                   "lowerings", "inputs", "arch", "finetune_epochs", "calib_samples", "seed", "metric", "judge",
                   "min_sqnr")
    if args.target != "x86_64":
        raise invalid("--target", args.target, "x86_64 for a language model (it is run by PyTorch on this CPU)")
    result = optimize_lm(args.model, data=args.data, max_accuracy_drop=args.max_accuracy_drop,
                         objective=args.objective, trials=args.trials, output=args.output, progress=not args.quiet)
    best, base = result.best, result.baseline
    speed = f"; float32 {base.latency_ms:.2f} ms/token" if base.latency_ms else ""
    console().print(f"[bold]chosen[/]: {describe_lm(best.params)} — "
                    f"{best.latency_ms if best.latency_ms is not None else float('nan'):.2f} ms/token, "
                    f"{best.size_bytes / 1e6:.0f} MB, next-token accuracy drop {best.scores['drop_pp']:.2f} pp "
                    f"(budget {args.max_accuracy_drop:g}){speed}\n[green]wrote[/] {result.output}/ (model/, pareto.json, "
                    "pareto.png, report.md, recipe.yaml)")
    return 0


def run_cli(args: argparse.Namespace) -> int:
    from ._common import console

    if args.recipe:
        return _replay(args)
    if args.model is None:
        raise invalid("MODEL", None, "a model file or built-in name (or --recipe)")
    if args.data is None:
        raise invalid("--data", None, "held-out data: photos, digits, mnist-5k, fashion-mnist or a folder with inputs.npy")
    from ..optimize.lm import is_causal_lm

    if is_causal_lm(args.model):
        return _optimize_lm(args)
    from ..optimize.search import describe, optimize

    # every flag, the output folder and the data checked before the model is loaded; unset flags take the config's
    # defaults (None in argparse, so that a language model or a recipe can refuse them when given)
    given = {k: getattr(args, k) for k in ("seed", "calib_samples", "finetune_epochs", "metric", "judge")
             if getattr(args, k) is not None}
    if args.min_sqnr is not None:
        if args.judge != "fidelity":
            raise invalid("--min-sqnr", args.min_sqnr, "nothing without --judge fidelity")
        given["min_sqnr_db"] = args.min_sqnr
    cfg = OptimizeConfig(target=args.target, data=args.data, max_accuracy_drop=args.max_accuracy_drop,
                         objective=args.objective, trials=args.trials, lowerings=args.lowerings or (),
                         prune_ratios=args.prune or (), **given)
    if args.model.lower().endswith(".onnx"):
        _refuse_unused(args, "for an ONNX file (its graph names its inputs and architecture)", "inputs", "arch")
    result = optimize(args.model, args.inputs, arch=args.arch, config=cfg, output=args.output, progress=not args.quiet)
    out = console()
    best, base = result.best, result.baseline
    timing = (f"; FP32 baseline {base.latency_ms:.3f} ms: {result.speedup:.2f}x" if result.speedup else
              f"; FP32 baseline {base.size_bytes / 1e6:.2f} MB (latency not measurable on this host)")
    out.print(f"[bold]chosen[/]: {describe(best.params, best.recipe)} — "
              + (f"{best.latency_ms:.3f} ms, " if best.latency_ms is not None else "")
              + f"{best.size_bytes / 1e6:.2f} MB, {result.judge.describe(best.scores)}{timing}")
    if result.ranking:
        from ..optimize.ranking import summary_line

        out.print(f"finalists re-timed together: {summary_line(result.ranking)}")
    feasible = sum(c.feasible for c in result.candidates)
    out.print(f"[green]wrote[/] {result.artifact}, pareto.json, pareto.png, report.md, recipe.yaml in {args.output} "
              f"({len(result.candidates)} candidates measured, {feasible} within the budget)")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from ..optimize.replay import replay
    from ._common import console

    _refuse_unused(args, "with --recipe (the recipe names its data and its candidate)", "data", "prune", "lowerings",
                   "inputs", "arch", "finetune_epochs", "calib_samples", "seed", "metric", "judge", "min_sqnr")
    done = replay(args.recipe, output=args.output, model=args.model, progress=not args.quiet)
    rec = done["recorded"]
    figure = (f"worst-output SQNR {_num(done['sqnr_db'], '.1f')} dB (recorded {_num(-(rec.get('drop') or 0), '.1f')})"
              if done.get("sqnr_db") is not None else
              f"accuracy drop {_num(done['drop_pp'], '.2f')} pp (recorded {_num(rec.get('drop_pp'), '.2f')})")
    console().print(f"[green]rebuilt[/] {done['artifact']} from {args.recipe}: {figure}, "
                    f"{_num(done['latency_ms'], '.3f')} ms "
                    f"(recorded {_num(rec.get('latency_ms', rec.get('ms_per_token')), '.3f')} ms on its machine), "
                    f"{done['size_bytes'] / 1e6:.2f} MB")
    return 0


def _num(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


__all__: list[Any] = ["configure_parser", "run_cli"]
