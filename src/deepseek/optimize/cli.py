"""``deepseek optimize``: the fastest (or smallest) artifact within an accuracy budget, searched and measured.

    deepseek optimize MODEL --target x86_64|arm64|cuda --data photos|digits|mnist-5k|fashion-mnist|DIR
                      --max-accuracy-drop 0.5 [--objective latency|size] [--trials 12] [--lowerings ort-fp32,ort-int8]
                      [--prune 0.25,0.5] [--inputs 1x3x224x224] --output out/
    deepseek optimize --recipe out/recipe.yaml --output again/ [MODEL]
    deepseek optimize smollm2|HF_FOLDER --data hamlet|text.txt --max-accuracy-drop 0.5 --output out/   (a causal LM:
                      weight-only int8/int4 and bfloat16, judged by next-token accuracy)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._errors import invalid
from .config import OBJECTIVES, TARGET_LOWERINGS, TARGETS


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from .._cli_common import count

    parser.add_argument("model", metavar="MODEL", nargs="?", help="a model file or built-in name (with --recipe: "
                        "optional, the recipe names its model)")
    parser.add_argument("--target", default="x86_64", choices=TARGETS, help="where the artifact will run")
    parser.add_argument("--data", default=None, help="held-out data judging accuracy: photos (agreement with FP32), "
                        "digits, mnist-5k, fashion-mnist (labeled accuracy), or a folder DIR with inputs.npy "
                        "[labels.npy] [calibration.npy]")
    parser.add_argument("--max-accuracy-drop", type=float, default=0.5, metavar="PP",
                        help="percentage points below FP32 allowed (default 0.5)")
    parser.add_argument("--objective", default="latency", choices=OBJECTIVES)
    parser.add_argument("--trials", type=count(), default=12, help="distinct candidates to build and measure")
    parser.add_argument("--lowerings", default=None, help="comma-separated subset of the target's (default: all): "
                        + "; ".join(f"{t}: {','.join(lw)}" for t, lw in TARGET_LOWERINGS.items()))
    parser.add_argument("--prune", default=None, metavar="RATIOS", help="channel-pruning ratios to try, e.g. 0.25,0.5; "
                        "with a bundled labeled --data, each pruned candidate is fine-tuned on its training part")
    parser.add_argument("--finetune-epochs", type=int, default=1, help="fine-tune epochs of a pruned candidate (0: none)")
    parser.add_argument("--inputs", default=None, metavar="SHAPE", help="input shape when the file does not fix it")
    parser.add_argument("--arch", default=None, help="architecture for state_dict files, e.g. torchvision:resnet18")
    parser.add_argument("--calib-samples", type=count(), default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipe", default=None, help="rebuild the artifact of a recipe.yaml exactly, and measure it")
    parser.add_argument("--output", "-o", required=True, help="a new folder for the artifact, pareto.json/png, "
                        "report.md and recipe.yaml")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _optimize_lm(args: argparse.Namespace) -> int:
    from .._cli_common import console
    from .lm import describe_lm, optimize_lm

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
    from .._cli_common import console

    if args.recipe:
        return _replay(args)
    if args.model is None:
        raise invalid("MODEL", None, "a model file or built-in name (or --recipe)")
    if args.data is None:
        raise invalid("--data", None, "held-out data: photos, digits, mnist-5k, fashion-mnist or a folder with inputs.npy")
    from .lm import is_causal_lm

    if is_causal_lm(args.model) or (Path(args.model) / "config.json").is_file():
        return _optimize_lm(args)
    lowerings = tuple(x.strip() for x in (args.lowerings or "").split(",") if x.strip())
    prune = _ratios(args.prune)
    from .._cli_common import parse_shapes, resolve_model
    from .search import describe, optimize

    module, examples, _, _ = resolve_model(args.model, parse_shapes(args.inputs), arch=args.arch)
    result = optimize(module, examples, data=args.data, target=args.target, max_accuracy_drop=args.max_accuracy_drop,
                      objective=args.objective, trials=args.trials, output=args.output, seed=args.seed,
                      progress=not args.quiet, lowerings=lowerings, prune_ratios=prune, calib_samples=args.calib_samples,
                      finetune_epochs=args.finetune_epochs,
                      model_source=args.model)
    out = console()
    best, base = result.best, result.baseline
    timing = (f"; FP32 baseline {base.latency_ms:.3f} ms: {result.speedup:.2f}x" if result.speedup else
              f"; FP32 baseline {base.size_bytes / 1e6:.2f} MB (latency not measurable on this host)")
    out.print(f"[bold]chosen[/]: {describe(best.params, best.recipe)} — "
              + (f"{best.latency_ms:.3f} ms, " if best.latency_ms is not None else "")
              + f"{best.size_bytes / 1e6:.2f} MB, accuracy drop {best.scores['drop_pp']:.2f} pp "
              f"(budget {args.max_accuracy_drop:g}){timing}")
    feasible = sum(c.feasible for c in result.candidates)
    out.print(f"[green]wrote[/] {result.artifact}, pareto.json, pareto.png, report.md, recipe.yaml in {args.output} "
              f"({len(result.candidates)} candidates measured, {feasible} within the budget)")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from .._cli_common import console
    from .replay import replay

    done = replay(args.recipe, output=args.output, model=args.model)
    rec = done["recorded"]
    console().print(f"[green]rebuilt[/] {done['artifact']} from {args.recipe}: accuracy drop {done['drop_pp']:.2f} pp "
                    f"(recorded {rec.get('drop_pp', float('nan')):.2f}), {done['latency_ms'] or float('nan'):.3f} ms "
                    f"(recorded {rec.get('latency_ms') or float('nan'):.3f} ms on its machine), "
                    f"{done['size_bytes'] / 1e6:.2f} MB")
    return 0


def _ratios(text: str | None) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise invalid("--prune", text, "comma-separated fractions, e.g. 0.25,0.5") from None
    return values


__all__: list[Any] = ["configure_parser", "run_cli"]
