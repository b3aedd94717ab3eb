"""``deepseek.optimize``: search precision × lowering × float fallbacks × pruning for the fastest (or smallest)
artifact within an accuracy budget, every candidate built by the compile pipeline and measured for real.

Each trial: build the candidate (:func:`deepseek.compile.build`), score it on held-out data (cheap, in this
process), and only if it keeps within the budget measure its batch-1 latency in a process of its own. Optuna's
multi-objective TPE (cost, accuracy drop) with the budget as a constraint picks the next candidate; a candidate
seen before is not rebuilt. INT8 float fallbacks come from one measured ranking of the activations most harmful
to quantize, so every candidate (and its recipe) names exactly which stay in float.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from .._errors import DeepSeekError, invalid
from .._progress import progress as bar_context
from ..compile.pipeline import CompileRecipe, build
from ..quantization.calibration_data import TRAIN_SPLITS
from .config import FALLBACKS, NEEDS_BF16, OptimizeConfig, latency_device
from .data import Judge, artifact_logits, check_data, make_judge
from .latency import measure_latency
from .report import check_new_folder

SUFFIX = {"ort": ".onnx", "inductor": ".pt2", "xnnpack": ".so"}
ARTIFACT = {"ort": "model.onnx", "inductor": "model.pt2", "xnnpack": "model_arm.so"}  # what --output holds


@dataclasses.dataclass
class Candidate:
    """One measured candidate: its parameters, the recipe that rebuilds it, and what it measured."""

    number: int
    params: dict[str, Any]
    recipe: CompileRecipe
    path: Path | None
    scores: dict[str, Any]
    latency_ms: float | None
    size_bytes: int | None
    feasible: bool
    build_s: float
    error: str | None = None

    def row(self) -> dict[str, Any]:
        return {"trial": self.number, "candidate": describe(self.params, self.recipe), **{f"param:{k}": v for k, v in self.params.items()},
                "drop_pp": self.scores.get("drop_pp"), "accuracy": self.scores.get("accuracy"),
                "agreement": self.scores.get("agreement"), "confident_agreement": self.scores.get("confident_agreement"),
                "clear_agreement": self.scores.get("clear_agreement"), "mean_kl": self.scores.get("mean_kl"),
                "latency_ms": self.latency_ms, "size_bytes": self.size_bytes, "feasible": self.feasible,
                "build_s": self.build_s, "error": self.error}


@dataclasses.dataclass
class OptimizeResult:
    """The chosen candidate (``best``), the FP32 baseline, every candidate measured, and the files written."""

    best: Candidate
    baseline: Candidate
    candidates: list[Candidate]
    config: OptimizeConfig
    reference_accuracy: float | None
    output: Path | None = None
    artifact: Path | None = None

    @property
    def speedup(self) -> float | None:
        if self.best.latency_ms and self.baseline.latency_ms:
            return self.baseline.latency_ms / self.best.latency_ms
        return None

    def pareto(self) -> list[Candidate]:
        """Feasible-or-not candidates no other beats on accuracy drop, latency and size at once."""
        return pareto_front(self.candidates)


def describe(params: dict[str, Any], recipe: CompileRecipe | None = None) -> str:
    """One line naming a candidate (``recipe``: says whether a pruned one was fine-tuned)."""
    lowering = params["lowering"]
    if lowering.startswith("torch-"):  # a language-model candidate (:mod:`.lm`)
        from .lm import describe_lm

        return describe_lm(params)
    parts = [lowering]
    if lowering == "ort-int8":
        parts.append(f"{params['fallbacks']} float fallbacks, {params['calibration_method']}"
                     + {"adaround": ", AdaRound", "adaround-block": ", AdaRound per block"}.get(params.get("rounding"), "")
                     + (", bias-corrected" if params["bias_correction"] else ""))
    if params.get("prune"):
        tuned = recipe is not None and recipe.finetune
        parts.append(f"pruned {params['prune']:.0%}" + (f", fine-tuned {recipe.finetune_epochs} epoch(s)" if tuned else
                                                        ", not fine-tuned"))
    return ", ".join(parts)


def searched_lowerings(cfg: OptimizeConfig, features: dict[str, bool] | None = None) -> tuple[str, ...]:
    """``cfg.lowerings`` less the bfloat16 ones when this CPU has no bfloat16 arithmetic (they would be emulated)."""
    from .._machine import cpu_features

    features = cpu_features() if features is None else features
    bf16 = features.get("avx512_bf16") or features.get("amx_bf16")
    return tuple(lw for lw in cfg.lowerings if bf16 or lw not in NEEDS_BF16)


def search_space(cfg: OptimizeConfig) -> dict[str, Any]:
    """The candidates as a deepseek.tune search space (conditional on the lowering)."""
    options: dict[str, Any] = {}
    for lowering in searched_lowerings(cfg):
        if lowering == "ort-int8":
            options[lowering] = {"fallbacks": {"type": "choice", "options": list(FALLBACKS)},
                                 "calibration_method": {"type": "choice", "options": ["percentile", "minmax", "entropy"]},
                                 "bias_correction": {"type": "choice", "options": [False, True]},
                                 "rounding": {"type": "choice", "options": ["nearest", "adaround", "adaround-block"]}}
        else:
            options[lowering] = None
    space: dict[str, Any] = {"lowering": {"type": "choice", "options": options}}
    if cfg.prune_ratios:
        space["prune"] = {"type": "choice", "options": [0.0, *cfg.prune_ratios]}
    return space


def recipe_for(params: dict[str, Any], cfg: OptimizeConfig, calib: str, ranking: list[str],
               samples: int | None = None) -> CompileRecipe:
    """The compile recipe of a candidate; ``samples`` caps the calibration rows (a ``--data`` folder's head)."""
    lowering = params["lowering"]
    backend, _, precision = lowering.partition("-")
    fields: dict[str, Any] = {"target_arch": cfg.target, "optimization_level": 3, "calib": calib,
                              "samples": samples or cfg.calib_samples,
                              "quantize": precision if precision.startswith("int8") else None,
                              # CUDA's float32 candidate is float32 throughout ("auto" there means float16 where safe)
                              "precision": precision if precision in ("bf16", "fp16") or cfg.target == "cuda" else "auto",
                              "backend": "inductor" if backend == "inductor" else None,
                              "prune": params.get("prune") or None}
    if fields["prune"] and cfg.finetune_epochs and cfg.data in TRAIN_SPLITS:
        fields.update(finetune=cfg.data, finetune_epochs=cfg.finetune_epochs, finetune_samples=cfg.finetune_samples)
    if lowering == "ort-int8":
        fields.update(calibration_method=params["calibration_method"], bias_correction=params["bias_correction"],
                      rounding=params.get("rounding", "nearest"), float_activations=tuple(ranking[: params["fallbacks"]]))
    return CompileRecipe(**fields)


def params_of(recipe: CompileRecipe) -> dict[str, Any]:
    """The candidate parameters a recipe was built from (the inverse of :func:`recipe_for`), for a replay."""
    backend = "inductor" if recipe.backend == "inductor" else "xnnpack" if recipe.target_arch == "arm64" else "ort"
    precision = recipe.quantize or ("fp16" if recipe.target_arch == "cuda" and recipe.precision in ("auto", "fp16") else
                                    recipe.precision if recipe.precision in ("bf16", "fp16") else "fp32")
    params: dict[str, Any] = {"lowering": f"{backend}-{precision}"}
    if params["lowering"] == "ort-int8":
        params.update(fallbacks=len(recipe.float_activations), calibration_method=recipe.calibration_method,
                      bias_correction=recipe.bias_correction, rounding=recipe.rounding)
    if recipe.prune:
        params["prune"] = recipe.prune
    return params


def optimize(model: Any, example_inputs: Any = None, *, data: str = "photos", target: str = "x86_64",
             max_accuracy_drop: float = 0.5, objective: str = "latency", trials: int = 12,
             output: str | Path | None = None, seed: int = 0, progress: bool = True,
             config: OptimizeConfig | None = None, model_source: str | None = None, **options: Any) -> OptimizeResult:
    """Search for the fastest (``objective="latency"``) or smallest artifact of ``model`` for ``target`` whose
    accuracy on ``data``'s held-out part stays within ``max_accuracy_drop`` percentage points of FP32; write it,
    with the Pareto front, a report and a replayable recipe, to ``output``. ``model_source`` names the model file
    or built-in name the recipe rebuilds from, when ``model`` is given as a module. A causal language model (a
    Hugging Face one with ``tokenizer=``, or ``"smollm2"``) is searched over weight-only int8/int4 and bfloat16
    instead, judged by next-token accuracy on ``data`` (``"hamlet"`` or a .txt file)."""
    from .._tensors import as_input_tuple, eval_mode
    from .lm import is_causal_lm, optimize_lm

    if is_causal_lm(model):  # weight-only int8/int4 and bfloat16, judged on text (:mod:`.lm`)
        lm_options = {k: options.pop(k) for k in ("tokenizer", "windows", "window", "new_tokens", "threads")
                      if k in options}
        if options or example_inputs is not None:
            raise invalid("options", sorted(options) or "example_inputs", "none of these for a language model "
                                                                          "(its candidates are weight-only/bf16)")
        return optimize_lm(model, lm_options.pop("tokenizer", None), data=data, max_accuracy_drop=max_accuracy_drop,
                           objective=objective, trials=trials, output=output, progress=progress, **lm_options)
    if config is not None and not isinstance(config, OptimizeConfig):
        raise invalid("config", type(config).__name__, "an OptimizeConfig or None")
    unknown = set(options) - {f.name for f in dataclasses.fields(OptimizeConfig)}
    if unknown:
        raise invalid("options", sorted(unknown), f"keyword arguments among "
                                                  f"{sorted(f.name for f in dataclasses.fields(OptimizeConfig))}")
    cfg = config or OptimizeConfig(target=target, data=data, max_accuracy_drop=max_accuracy_drop, objective=objective,
                                   trials=trials, seed=seed, **options)
    if not isinstance(progress, bool):
        raise invalid("progress", progress, "True or False")
    check_timeable(cfg)
    # every cheap check before the model is loaded: the output folder, then the data
    output_dir = None if output is None else check_new_folder(
        output, inputs=[p for p in (model, model_source, cfg.data) if isinstance(p, (str, Path)) and Path(p).exists()])
    check_data(cfg.data, cfg.calib_samples)
    import torch

    if isinstance(model, (str, Path)):
        from ..models import resolve_model

        module, examples, _, _ = resolve_model(str(model), None if example_inputs is None else
                                               _shapes(example_inputs))
        if isinstance(module, Path):
            raise invalid("model", str(model), "a PyTorch model (candidates are exported, quantized and lowered from it)")
    else:
        module, examples = model, example_inputs
    if not isinstance(module, torch.nn.Module):
        raise invalid("model", type(module).__name__, "an nn.Module, a model file or a built-in model name")
    if examples is None:
        raise invalid("example_inputs", None, "example inputs (or shapes such as [(1, 3, 224, 224)])")
    examples = as_input_tuple(examples, "example_inputs") if isinstance(examples, torch.Tensor) else tuple(examples)
    if all(isinstance(e, (tuple, list)) for e in examples):
        g = torch.Generator().manual_seed(0)
        examples = tuple(torch.randn(*s, generator=g) for s in examples)
    module = eval_mode(module)
    judge = make_judge(module, examples, cfg.data, cfg.eval_limit, cfg.calib_samples)
    work = Path(tempfile.mkdtemp(prefix="deepseek-optimize-"))
    try:
        result = _search(module, examples, cfg, judge, work, progress)
        if output_dir is not None:
            from .report import write_outputs

            write_outputs(result, output_dir, model if isinstance(model, (str, Path)) else model_source,
                          [list(e.shape) for e in examples], judge, [str(e.dtype).removeprefix("torch.") for e in examples])
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _search(module: Any, examples: tuple[Any, ...], cfg: OptimizeConfig, judge: Judge, work: Path,
            progress: bool) -> OptimizeResult:
    import optuna

    from ..tune.space import parse_space, suggest

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    shape = tuple(examples[0].shape)
    device = latency_device(cfg.target)
    calib, samples = judge.calib, judge.calib_samples
    sample = judge.timing_sample(work, shape[0])
    cache: dict[str, Candidate] = {}
    ranking: list[str] = []
    measured: list[Candidate] = []

    def run(params: dict[str, Any], number: int) -> Candidate:
        nonlocal ranking
        if "prune" in params and not params["prune"]:  # unpruned: the same candidate as without the parameter
            params = {k: v for k, v in params.items() if k != "prune"}
        if params["lowering"] == "ort-int8" and params["fallbacks"]:
            ranking = ranking or _sensitivity(module, examples, cfg, calib, samples, work)
            # more fallbacks than the model has quantized activations: the same candidate as "all of them"
            params = {**params, "fallbacks": min(params["fallbacks"], len(ranking))}
        key = json.dumps(params, sort_keys=True)
        if key in cache:
            return cache[key]
        candidate = measure_candidate(module, examples, params, recipe_for(params, cfg, calib, ranking, samples), cfg,
                                      judge, work / f"c{number}", shape, sample, device=device)
        candidate.number = number
        cache[key] = candidate
        measured.append(candidate)
        return candidate

    baseline = run({"lowering": cfg.baseline}, 0)
    if baseline.error:
        raise DeepSeekError(f"the FP32 baseline failed to build: {baseline.error}")
    params = parse_space(search_space(cfg))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=cfg.seed, multivariate=True, group=True,
                                             n_startup_trials=min(5, cfg.trials))
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    if "ort-int8" in cfg.lowerings:  # the plain INT8 candidate first: the peer every user would try
        study.enqueue_trial({"lowering": "ort-int8", "lowering=ort-int8/fallbacks": 0,
                             "lowering=ort-int8/calibration_method": "percentile",
                             "lowering=ort-int8/bias_correction": False, "lowering=ort-int8/rounding": "nearest",
                             **({"prune": 0.0} if cfg.prune_ratios else {})})
    with (bar_context(transient=True) if progress else contextlib.nullcontext()) as bar:
        task = bar.add_task("optimize: candidates", total=cfg.trials) if progress else None
        asks = 0
        # ``trials`` distinct candidates (the baseline included); a repeat the sampler proposes is answered from the
        # cache and not counted; a small space may run out first
        while len(measured) < cfg.trials and asks < 20 * cfg.trials:
            asks += 1
            trial = study.ask()
            chosen = suggest(params, trial)
            before = len(measured)
            candidate = run(chosen, before)
            new = len(measured) > before
            cost = _cost(candidate, cfg, baseline)
            drop = candidate.scores.get("drop_pp", 100.0)
            trial.set_constraint("accuracy_budget", (drop - cfg.max_accuracy_drop) if not candidate.error else 100.0)
            study.tell(trial, [cost, drop])
            if progress and new:
                best = _best(measured, cfg)
                bar.update(task, advance=1, description=f"optimize: best {describe(best.params)} "
                                                       f"({_figure(best, cfg)})" if best else "optimize: candidates")
    if device is not None:
        _confirm(measured, baseline, cfg, shape, sample, device=device)
    best = _best(measured, cfg) or baseline
    return OptimizeResult(best, baseline, measured, cfg, judge.reference_accuracy)


def _confirm(measured: list[Candidate], baseline: Candidate, cfg: OptimizeConfig, shape: tuple[int, ...],
             sample: Path | None = None, rounds: int = 3, margin: float = 1.25, device: str = "cpu") -> None:
    """Time the contenders again before choosing: the feasible candidates within ``margin`` of the fastest, and
    the baseline, in ``rounds`` interleaved rounds (A B C, A B C, ...), each a process of its own; a candidate's
    latency becomes the median of its first measurement and these. One process's figure swings tens of percent
    on a shared machine (the same INT8 model: 0.035 and 0.051 ms), enough to pick the wrong candidate."""
    if cfg.objective != "latency":
        return
    import statistics

    timed = [c for c in measured if c.feasible and c.latency_ms is not None]
    if not timed:
        return
    fastest = min(c.latency_ms for c in timed)
    contenders = [c for c in timed if c.latency_ms <= margin * fastest]
    if baseline not in contenders and baseline.latency_ms is not None:
        contenders.append(baseline)
    if len(contenders) < 2:
        return
    samples = {id(c): [c.latency_ms] for c in contenders}
    for _ in range(rounds):
        for c in contenders:
            samples[id(c)].append(measure_latency(c.path, shape, threads=cfg.threads, sample=sample,
                                                  device=device)["median_ms"])
    for c in contenders:
        c.latency_ms = statistics.median(samples[id(c)])


def _figure(c: Candidate, cfg: OptimizeConfig) -> str:
    return f"{c.latency_ms:.2f} ms" if cfg.objective == "latency" and c.latency_ms else f"{(c.size_bytes or 0) / 1e6:.1f} MB"


def _cost(c: Candidate, cfg: OptimizeConfig, baseline: Candidate) -> float:
    if c.error:
        return 1e9
    if cfg.objective == "size":
        return float(c.size_bytes)
    # an infeasible candidate's latency is not measured (cheapest checks first): it sits at the baseline's cost
    return c.latency_ms if c.latency_ms is not None else (baseline.latency_ms or 1e9)


def _best(candidates: list[Candidate], cfg: OptimizeConfig) -> Candidate | None:
    feasible = [c for c in candidates if c.feasible]
    if not feasible:
        return None
    key = (lambda c: (c.latency_ms, c.scores["drop_pp"])) if cfg.objective == "latency" else \
        (lambda c: (c.size_bytes, c.scores["drop_pp"]))
    return min(feasible, key=key)


def measure_candidate(module: Any, examples: tuple[Any, ...], params: dict[str, Any], recipe: CompileRecipe,
                      cfg: OptimizeConfig, judge: Judge, folder: Path, shape: tuple[int, ...],
                      sample: Path | None = None, *, device: str | None = "cpu") -> Candidate:
    """Build one candidate, score it on the judge's data, and time it on ``device`` (``sample``: the input timed)
    if it keeps the budget; ``device`` None: this host cannot time the target's artifacts (scored on the CPU)."""
    folder.mkdir(parents=True)
    path = folder / ARTIFACT[params["lowering"].partition("-")[0]]
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build(module, recipe, path, inputs=examples)
    except DeepSeekError as exc:
        return Candidate(0, params, recipe, None, {}, None, None, False, time.perf_counter() - started, str(exc))
    seconds = time.perf_counter() - started
    scores = judge.score(artifact_logits(path, judge, cfg.threads, device or "cpu"))
    feasible = scores["drop_pp"] <= cfg.max_accuracy_drop + 1e-9
    latency = None
    # the baseline is always timed: every speed-up is against it
    if device is not None and (feasible or params["lowering"] == cfg.baseline):
        latency = measure_latency(path, shape, threads=cfg.threads, sample=sample, device=device)["median_ms"]
    return Candidate(0, params, recipe, path, scores, latency, path.stat().st_size, feasible, seconds)


def _sensitivity(module: Any, examples: tuple[Any, ...], cfg: OptimizeConfig, calib: str, samples: int | None,
                 work: Path) -> list[str]:
    """The INT8 activations most harmful to quantize, most harmful first (measured once in ONNX Runtime)."""
    recipe = CompileRecipe(target_arch=cfg.target, quantize="int8", calib=calib, samples=samples or cfg.calib_samples,
                           keep_fp32=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = build(module, recipe, work / "sensitivity.onnx", inputs=examples)
    return list(result.get("sensitivity") or [])


def check_timeable(cfg: OptimizeConfig) -> None:
    """Refuse ``objective="latency"`` where this host cannot time the target's artifacts for real."""
    import platform

    if cfg.objective != "latency" or latency_device(cfg.target) is not None:
        return
    why = {"arm64": f"arm64 code runs on this {platform.machine()} host only under qemu, whose timings are emulation, "
                    "not ARM's: pass objective 'size' (accuracy is still judged on the real arm64 bundle, under qemu), "
                    "or run deepseek optimize on an arm64 host",
           "cuda": "ONNX Runtime here has no CUDAExecutionProvider (onnxruntime-gpu on a CUDA machine): pass "
                   "objective 'size' (accuracy is judged with ONNX Runtime's CPU provider), or run it on a CUDA host",
           "x86_64": f"x86_64 artifacts cannot be timed on this {platform.machine()} host: pass objective 'size'"}
    raise invalid("objective", cfg.objective, f"size for target {cfg.target} here: {why[cfg.target]}")


def _shapes(example_inputs: Any) -> list[tuple[int, ...]]:
    """``example_inputs`` given as shapes (``[(1, 3, 224, 224)]``) for a model file, checked."""
    if isinstance(example_inputs, (tuple, list)) and example_inputs and all(isinstance(d, int) for d in example_inputs):
        example_inputs = [example_inputs]
    shapes = list(example_inputs) if isinstance(example_inputs, (tuple, list)) else []
    if not shapes or not all(isinstance(s, (tuple, list)) and s and all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in s) for s in shapes):
        raise invalid("example_inputs", example_inputs, "input shapes such as [(1, 3, 224, 224)] for a model file")
    return [tuple(s) for s in shapes]


def pareto_front(candidates: list[Candidate]) -> list[Candidate]:
    """Candidates no other beats on accuracy drop, latency and size at once (drop and size where none was timed)."""
    measured = [c for c in candidates if not c.error and c.size_bytes is not None]
    timed = [c for c in measured if c.latency_ms is not None]
    if timed:
        measured = timed

    def dominates(a: Candidate, b: Candidate) -> bool:
        ka = (a.scores["drop_pp"], a.latency_ms or 0.0, a.size_bytes)
        kb = (b.scores["drop_pp"], b.latency_ms or 0.0, b.size_bytes)
        return all(x <= y for x, y in zip(ka, kb)) and ka != kb

    return [c for c in measured if not any(dominates(o, c) for o in measured if o is not c)]
