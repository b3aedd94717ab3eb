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
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._core.checks import check_flag
from .._core.errors import DeepSeekError, invalid
from .._core.progress import progress as bar_context
from ..compile.pipeline import CompileRecipe, build
from ..evaluation import load_eval_data
from ..quantization.calibration_data import TRAIN_SPLITS
from ..quantization.onnx_static import StaticINT8Config
from .config import FALLBACKS, NEEDS_BF16, ONNX_LOWERINGS, TARGET_LOWERINGS, OptimizeConfig, latency_device
from .data import Judge, artifact_outputs, check_data, load_folder, load_metric, make_judge
from .latency import measure_latency
from .report import check_new_folder, write_outputs
from .result import Candidate, OptimizeResult, describe

SUFFIX = {"ort": ".onnx", "inductor": ".pt2", "xnnpack": ".so", "openvino": ".xml"}
ARTIFACT = {"ort": "model.onnx", "inductor": "model.pt2", "xnnpack": "model_arm.so",
            "openvino": "model.xml"}  # what --output holds


def searched_lowerings(cfg: OptimizeConfig, features: dict[str, bool] | None = None) -> tuple[str, ...]:
    """``cfg.lowerings`` less the bfloat16 ones when this CPU has no bfloat16 arithmetic (they would be emulated),
    and OpenVINO's when its extra is not installed."""
    from .._core.machine import cpu_features
    from .onnx_source import openvino_installed

    features = cpu_features() if features is None else features
    bf16 = features.get("avx512_bf16") or features.get("amx_bf16")
    openvino = openvino_installed()
    return tuple(lw for lw in cfg.lowerings if (bf16 or lw not in NEEDS_BF16)
                 and (openvino or not lw.startswith("openvino")))


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
                              "backend": backend if backend in ("inductor", "openvino") else None,
                              "prune": params.get("prune") or None}
    if fields["prune"] and cfg.finetune_epochs and cfg.data in TRAIN_SPLITS:
        fields.update(finetune=cfg.data, finetune_epochs=cfg.finetune_epochs, finetune_samples=cfg.finetune_samples)
    if lowering == "ort-int8":
        # the search's own judge and budget decide: no floor swapping the candidate's layout
        fields["int8"] = StaticINT8Config(method=params["calibration_method"], bias_correction=params["bias_correction"],
                                          rounding=params.get("rounding", "nearest"),
                                          float_activations=tuple(ranking[: params["fallbacks"]]), min_agreement=None)
    return CompileRecipe(**fields)


def params_of(recipe: CompileRecipe) -> dict[str, Any]:
    """The candidate parameters a recipe was built from (the inverse of :func:`recipe_for`), for a replay."""
    backend = recipe.backend if recipe.backend in ("inductor", "openvino") else \
        "xnnpack" if recipe.target_arch == "arm64" else "ort"
    precision = recipe.quantize or ("fp16" if recipe.target_arch == "cuda" and recipe.precision in ("auto", "fp16") else
                                    recipe.precision if recipe.precision in ("bf16", "fp16") else "fp32")
    params: dict[str, Any] = {"lowering": f"{backend}-{precision}"}
    if params["lowering"] == "ort-int8":
        int8 = recipe.int8
        params.update(fallbacks=len(int8.float_activations), calibration_method=int8.method,
                      bias_correction=int8.bias_correction, rounding=int8.rounding)
    if recipe.prune:
        params["prune"] = recipe.prune
    return params


def optimize(model: Any, example_inputs: Any = None, *, data: str = "photos", target: str = "x86_64",
             max_accuracy_drop: float = 0.5, objective: str = "latency", trials: int = 12,
             output: str | Path | None = None, seed: int = 0, progress: bool = True,
             config: OptimizeConfig | None = None, model_source: str | None = None, metric: Any = None,
             arch: str | None = None, **options: Any) -> OptimizeResult:
    """Search for the fastest (``objective="latency"``) or smallest artifact of ``model`` for ``target`` whose
    accuracy on ``data``'s held-out part stays within ``max_accuracy_drop`` percentage points of FP32; write it,
    with the Pareto front, a report and a replayable recipe, to ``output``. ``model``: a PyTorch module, a model
    file or built-in name, or an ONNX file (searched over the lowerings and INT8 schemes of its graph alone).
    ``metric``: ``metric(outputs, labels) -> float`` in [0, 1], higher is better, over every output of the model and
    ``data``'s labels.npy — a callable or ``"module:function"`` / ``"file.py:function"``; it judges models whose
    output is not class scores (detectors, segmenters). ``judge="fidelity"`` judges by every output's SQNR against
    FP32 instead, ``min_sqnr_db`` its floor. ``model_source`` names the model file or built-in name the recipe
    rebuilds from, when ``model`` is given as a module; ``arch`` the architecture a state_dict file fills
    (``"torchvision:resnet18"``). A causal language model (a Hugging Face one with
    ``tokenizer=``, or ``"smollm2"``) is searched over weight-only int8/int4 and bfloat16 instead, judged by
    next-token accuracy on ``data`` (``"hamlet"`` or a .txt file)."""
    from .._core.tensors import as_input_tuple, eval_mode
    from .lm import is_causal_lm, optimize_lm

    if is_causal_lm(model):  # weight-only int8/int4 and bfloat16, judged on text (:mod:`.lm`)
        lm_options = {k: options.pop(k) for k in ("tokenizer", "windows", "window", "new_tokens", "threads")
                      if k in options}
        if options or example_inputs is not None or metric is not None or arch is not None:
            raise invalid("options", sorted(options) or ("metric" if metric is not None else "arch" if arch is not None
                                                         else "example_inputs"),
                          "none of these for a language model (its candidates are weight-only/bf16)")
        return optimize_lm(model, lm_options.pop("tokenizer", None), data=data, max_accuracy_drop=max_accuracy_drop,
                           objective=objective, trials=trials, output=output, progress=progress, **lm_options)
    if config is not None and not isinstance(config, OptimizeConfig):
        raise invalid("config", type(config).__name__, "an OptimizeConfig or None")
    unknown = set(options) - {f.name for f in dataclasses.fields(OptimizeConfig)}
    if unknown:
        raise invalid("options", sorted(unknown), f"keyword arguments among "
                                                  f"{sorted(f.name for f in dataclasses.fields(OptimizeConfig))}")
    if metric is not None and not callable(metric):
        options["metric"] = metric
    cfg = config or OptimizeConfig(target=target, data=data, max_accuracy_drop=max_accuracy_drop, objective=objective,
                                   trials=trials, seed=seed, **options)
    metric = metric if callable(metric) else cfg.metric
    check_flag(progress, "progress")
    check_timeable(cfg)
    # every cheap check before the model is loaded: the output folder, then the data
    output_dir = None if output is None else check_new_folder(
        output, inputs=[p for p in (model, model_source, cfg.data) if isinstance(p, (str, Path)) and Path(p).exists()])
    check_data(cfg.data, cfg.calib_samples, class_labels=metric is None and cfg.judge != "fidelity")
    if metric is not None:
        load_metric(metric)  # a metric that does not import fails before any model is loaded
    if isinstance(model, (str, Path)) and str(model).lower().endswith(".onnx"):
        if arch is not None:
            raise invalid("arch", arch, "None for an ONNX file (its graph is its architecture)")
        return _optimize_onnx(Path(model), example_inputs, cfg, metric, output_dir, progress)
    import torch

    if isinstance(model, (str, Path)):
        from ..models import resolve_model

        module, examples, _, _ = resolve_model(str(model), None if example_inputs is None else
                                               _shapes(example_inputs), arch=arch)
        if isinstance(module, Path):
            raise invalid("model", str(model), "a PyTorch model or an .onnx file")
    else:
        if arch is not None:
            raise invalid("arch", arch, "None for a model given as a module (arch builds the one a weights file fills)")
        module, examples = model, example_inputs
    if not isinstance(module, torch.nn.Module):
        raise invalid("model", type(module).__name__, "an nn.Module, a model file, an .onnx file or a built-in "
                                                      "model name")
    if examples is None:
        raise invalid("example_inputs", None, "example inputs (or shapes such as [(1, 3, 224, 224)])")
    examples = as_input_tuple(examples, "example_inputs") if isinstance(examples, torch.Tensor) else tuple(examples)
    if all(isinstance(e, (tuple, list)) for e in examples):
        g = torch.Generator().manual_seed(0)
        examples = tuple(torch.randn(*s, generator=g) for s in examples)
    module = eval_mode(module)
    judge = _judge(module, examples, cfg, metric)
    work = Path(tempfile.mkdtemp(prefix="deepseek-optimize-"))
    try:
        calib, samples = judge.calib, judge.calib_samples

        def rank() -> list[str]:
            return _sensitivity(module, examples, cfg, calib, samples, work)

        def make(params: dict[str, Any], number: int, ranking: list[str], sample: Path, device: str | None
                 ) -> Candidate:
            return measure_candidate(module, examples, params, recipe_for(params, cfg, calib, ranking, samples), cfg,
                                     judge, work / f"c{number}", tuple(examples[0].shape), sample, device=device)

        first = {"lowering": "ort-int8", "lowering=ort-int8/fallbacks": 0,
                 "lowering=ort-int8/calibration_method": "percentile", "lowering=ort-int8/bias_correction": False,
                 "lowering=ort-int8/rounding": "nearest", **({"prune": 0.0} if cfg.prune_ratios else {})} \
            if "ort-int8" in cfg.lowerings else None
        result = _search(cfg, judge, work, progress, search_space(cfg), {"lowering": cfg.baseline}, first, make, rank,
                         tuple(examples[0].shape))
        if output_dir is not None:
            write_outputs(result, output_dir, model if isinstance(model, (str, Path)) else model_source,
                          [list(e.shape) for e in examples], judge, [str(e.dtype).removeprefix("torch.") for e in examples])
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _judge(model: Any, examples: tuple[Any, ...], cfg: OptimizeConfig, metric: Any) -> Judge:
    return make_judge(model, examples, cfg.data, cfg.eval_limit, cfg.calib_samples, judge=cfg.judge, metric=metric,
                      budget=cfg.max_accuracy_drop, min_sqnr_db=cfg.min_sqnr_db)


def onnx_lowerings(cfg: OptimizeConfig) -> tuple[str, ...]:
    """The lowerings searched for an ONNX file: the ones named (those of ONNX files only), or all of them."""
    if cfg.target != "x86_64":
        raise invalid("target", cfg.target, "x86_64 for an ONNX file (arm64 and CUDA builds start from a PyTorch "
                                            "model in this version)")
    if cfg.lowerings == TARGET_LOWERINGS[cfg.target]:  # none named: the config's default
        return ONNX_LOWERINGS
    wrong = [lw for lw in cfg.lowerings if lw not in ONNX_LOWERINGS]
    if wrong:
        raise invalid("lowerings", ",".join(wrong), f"lowerings of an ONNX file: a subset of {','.join(ONNX_LOWERINGS)} "
                                                    f"(the others need the PyTorch model)")
    return cfg.lowerings if cfg.lowerings[0] == "ort-fp32" else ("ort-fp32", *cfg.lowerings)


def _optimize_onnx(source: Path, example_inputs: Any, cfg: OptimizeConfig, metric: Any, output_dir: Path | None,
                   progress: bool) -> OptimizeResult:
    """:func:`optimize` of an ONNX file: its graph's lowerings and INT8 schemes, judged in ONNX Runtime."""
    from ..runtime import load
    from ..runtime.artifacts import detect_kind, load_onnx_model
    from .onnx_source import (
        FIRST_TRIAL,
        available_lowerings,
        build_onnx,
        calibration_array,
        onnx_examples,
        onnx_recipe_for,
        onnx_space,
    )

    if example_inputs is not None:
        raise invalid("example_inputs", example_inputs, "None for an ONNX file (its graph names its inputs)")
    if cfg.prune_ratios:
        raise invalid("prune_ratios", list(cfg.prune_ratios), "none for an ONNX file (pruning needs the PyTorch model)")
    wanted = onnx_lowerings(cfg)
    if detect_kind(source) != "onnx":
        raise invalid("model", str(source), "an ONNX file")
    load_onnx_model(source)  # a file that does not parse is an error naming it, before any work
    lowerings = available_lowerings(source, wanted)
    reference = load(source, threads=cfg.threads)
    data_x = load_folder(Path(cfg.data), cfg.calib_samples, class_labels=metric is None and cfg.judge != "fidelity")[0] \
        if Path(cfg.data).is_dir() else load_eval_data(cfg.data, 8)[0].numpy()
    examples = onnx_examples(source, tuple(data_x.shape[1:]), data_x.dtype)
    judge = _judge(reference, examples, cfg, metric)
    work = Path(tempfile.mkdtemp(prefix="deepseek-optimize-"))
    try:
        calibration = calibration_array(judge.calib, judge.calib_samples or cfg.calib_samples, examples[0])

        def rank() -> list[str]:
            from ..quantization.onnx_graph import rank_graph_activations

            return rank_graph_activations(source, calibration)

        def make(params: dict[str, Any], number: int, ranking: list[str], sample: Path, device: str | None
                 ) -> Candidate:
            recipe = onnx_recipe_for(params, judge.calib, judge.calib_samples or cfg.calib_samples, ranking)
            return measure_candidate(None, examples, params, recipe, cfg, judge, work / f"c{number}",
                                     tuple(examples[0].shape), sample, device=device,
                                     builder=lambda path: build_onnx(source, recipe, path, calibration))

        first = FIRST_TRIAL if "ort-int8" in lowerings else None
        result = _search(cfg, judge, work, progress, onnx_space(lowerings), {"lowering": "ort-fp32"}, first, make,
                         rank, tuple(examples[0].shape))
        if output_dir is not None:
            write_outputs(result, output_dir, source, [list(examples[0].shape)], judge, [str(examples[0].dtype)])
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _search(cfg: OptimizeConfig, judge: Judge, work: Path, progress: bool, space: dict[str, Any],
            baseline_params: dict[str, Any], first: dict[str, Any] | None,
            make: Callable[[dict[str, Any], int, list[str], Path, str | None], Candidate],
            rank: Callable[[], list[str]], shape: tuple[int, ...]) -> OptimizeResult:
    """Optuna's search over ``space``: ``make`` builds and measures one candidate (given the activation ranking
    ``rank`` measures once, when a candidate first needs float fallbacks); ``first`` is enqueued first."""
    import optuna

    from ..tune.space import parse_space, suggest

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    device = latency_device(cfg.target)
    sample = judge.timing_sample(work, shape[0])
    cache: dict[str, Candidate] = {}
    ranking: list[str] = []
    measured: list[Candidate] = []

    def run(params: dict[str, Any], number: int) -> Candidate:
        nonlocal ranking
        if "prune" in params and not params["prune"]:  # unpruned: the same candidate as without the parameter
            params = {k: v for k, v in params.items() if k != "prune"}
        if params["lowering"] == "ort-int8" and params["fallbacks"]:
            ranking = ranking or rank()
            # more fallbacks than the model has quantized activations: the same candidate as "all of them"
            params = {**params, "fallbacks": min(params["fallbacks"], len(ranking))}
        key = json.dumps(params, sort_keys=True)
        if key in cache:
            return cache[key]
        candidate = make(params, number, ranking, sample, device)
        candidate.number = number
        cache[key] = candidate
        measured.append(candidate)
        return candidate

    baseline = run(baseline_params, 0)
    if baseline.error:
        raise DeepSeekError(f"the FP32 baseline failed to build: {baseline.error}")
    params = parse_space(space)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=cfg.seed, multivariate=True, group=True,
                                             n_startup_trials=min(5, cfg.trials))
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    if first is not None:  # the plain INT8 candidate first: the peer every user would try
        study.enqueue_trial(first)
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
            drop = candidate.scores.get("drop", 1e9) if not candidate.error else 1e9
            trial.set_constraint("accuracy_budget", (drop - judge.budget) if not candidate.error else 100.0)
            study.tell(trial, [cost, drop])
            if progress and new:
                best = _best(measured, cfg)
                bar.update(task, advance=1, description=f"optimize: best {describe(best.params)} "
                                                       f"({_figure(best, cfg)})" if best else "optimize: candidates")
    ranked: list[Any] = []
    if device is not None:
        ranked = _confirm(measured, baseline, cfg, shape, sample, device=device)
    best = _best(measured, cfg) or baseline
    return OptimizeResult(best, baseline, measured, cfg, judge.reference_accuracy, judge=judge, ranking=ranked)


FINALISTS = 6  # at most this many contenders (the baseline included) re-timed together
ROUND_SECONDS = 0.15  # the time each contender's calls take in one round, roughly


def _confirm(measured: list[Candidate], baseline: Candidate, cfg: OptimizeConfig, shape: tuple[int, ...],
             sample: Path | None = None, rounds: int = 7, margin: float = 1.5, device: str = "cpu") -> list[Any]:
    """Time the finalists again, together, before choosing: the feasible candidates within ``margin`` of the fastest
    first figure and the baseline, interleaved in one process (``rounds`` rounds, their order rotating; every round
    long enough to time a sub-millisecond model), so each compares with the others under the same machine state. A
    candidate's latency becomes the median of its round medians; returns :func:`.ranking.rank_latencies`' estimates
    (speed-up over the baseline with a 95 % paired-bootstrap interval, and who is within noise of whom). One
    process's figure swings tens of percent on a shared machine (the same INT8 model: 0.035 and 0.051 ms)."""
    if cfg.objective != "latency":
        return []
    from .latency import measure_interleaved
    from .ranking import rank_latencies

    timed = sorted((c for c in measured if c.feasible and c.latency_ms is not None), key=lambda c: c.latency_ms)
    if not timed:
        return []
    contenders = [c for c in timed if c.latency_ms <= margin * timed[0].latency_ms][: FINALISTS - 1]
    if baseline not in contenders and baseline.latency_ms is not None:
        contenders.append(baseline)
    if len(contenders) < 2:
        return []
    slowest = max(c.latency_ms for c in contenders)
    calls = int(min(1000, max(10, ROUND_SECONDS / max(slowest, 1e-3) * 1000)))
    times = measure_interleaved([c.path for c in contenders], shape, threads=cfg.threads, rounds=rounds, calls=calls,
                                sample=sample, device=device)
    names = {id(c): f"trial {c.number}: {describe(c.params, c.recipe)}" for c in contenders}
    estimates = rank_latencies({names[id(c)]: times[str(c.path)] for c in contenders}, names[id(baseline)]) \
        if baseline in contenders else []
    by_name = {e.name: e for e in estimates}
    for c in contenders:
        c.latency_ms = by_name[names[id(c)]].median_ms if by_name else statistics.median(times[str(c.path)])
        c.scores["latency_estimate"] = dataclasses.asdict(by_name[names[id(c)]]) if by_name else None
    return estimates


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
    """The fastest (or smallest) feasible candidate; when the finalists were re-timed together, the most accurate
    of those whose latency cannot be told from the fastest's (a 95 % interval of their ratio holding 1)."""
    feasible = [c for c in candidates if c.feasible]
    if not feasible:
        return None
    if cfg.objective != "latency":
        return min(feasible, key=lambda c: (c.size_bytes, c.scores["drop"]))
    fastest = min(feasible, key=lambda c: (c.latency_ms if c.latency_ms is not None else 1e18, c.scores["drop"]))
    estimate = fastest.scores.get("latency_estimate")
    if not estimate:
        return fastest
    tied = set(estimate["within_noise_of"])
    peers = [c for c in feasible if (c.scores.get("latency_estimate") or {}).get("name") in tied]
    return min([fastest, *peers], key=lambda c: (c.scores["drop"], c.latency_ms))


def measure_candidate(module: Any, examples: tuple[Any, ...], params: dict[str, Any], recipe: Any,
                      cfg: OptimizeConfig, judge: Judge, folder: Path, shape: tuple[int, ...],
                      sample: Path | None = None, *, device: str | None = "cpu",
                      builder: Callable[[Path], Any] | None = None) -> Candidate:
    """Build one candidate (``builder(path)``, or the compile pipeline from ``module``), score it on the judge's
    data, and time it on ``device`` (``sample``: the input timed) if it keeps the budget; ``device`` None: this host
    cannot time the target's artifacts (scored on the CPU)."""
    folder.mkdir(parents=True)
    path = folder / ARTIFACT[params["lowering"].partition("-")[0]]
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if builder is not None:
                builder(path)
            else:
                build(module, recipe, path, inputs=examples)
    except DeepSeekError as exc:
        return Candidate(0, params, recipe, None, {}, None, None, False, time.perf_counter() - started, str(exc))
    seconds = time.perf_counter() - started
    scores = judge.score(artifact_outputs(path, judge, cfg.threads, device or "cpu"))
    feasible = judge.feasible(scores)
    latency = None
    # the baseline is always timed: every speed-up is against it
    if device is not None and (feasible or params["lowering"] == cfg.baseline):
        latency = measure_latency(path, shape, threads=cfg.threads, sample=sample, device=device)["median_ms"]
    return Candidate(0, params, recipe, path, scores, latency, artifact_size(path), feasible, seconds)


def artifact_size(path: Path) -> int:
    """Bytes of the artifact: an OpenVINO IR's .xml with its .bin."""
    weights = path.with_suffix(".bin")
    return path.stat().st_size + (weights.stat().st_size if path.suffix == ".xml" and weights.is_file() else 0)


def _sensitivity(module: Any, examples: tuple[Any, ...], cfg: OptimizeConfig, calib: str, samples: int | None,
                 work: Path) -> list[str]:
    """The INT8 activations most harmful to quantize, most harmful first (measured once in ONNX Runtime)."""
    recipe = CompileRecipe(target_arch=cfg.target, quantize="int8", calib=calib, samples=samples or cfg.calib_samples,
                           int8=StaticINT8Config(method="percentile", keep_fp32=1, min_agreement=None))
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


