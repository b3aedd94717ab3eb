"""Rebuild an artifact from ``recipe.yaml`` exactly (``deepseek optimize --recipe out/recipe.yaml``) and measure it
again: the same compile steps, the same named float fallbacks, the same calibration data."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from .._core.checks import check_flag, check_int
from .._core.errors import invalid
from .report import RECIPE_VERSION


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The recipe.yaml ``path`` written by ``deepseek optimize``, checked field by field: a file that is missing,
    not YAML or with a field missing or of the wrong type is an error naming the file and the field."""
    from .._core.config import field, read_yaml

    what = "a recipe.yaml written by deepseek optimize"
    data = read_yaml(path, argument="recipe", what=what, mapping=True)
    source = f"recipe ({path})"
    if "deepseek_optimize_lm_recipe" in data:
        return _lm_recipe(data, source)
    if "deepseek_optimize_recipe" not in data:
        raise invalid("recipe", str(path), f"{what} (it has no deepseek_optimize_recipe field)")
    version = field(data, "deepseek_optimize_recipe", int, source=source)
    if version not in (1, RECIPE_VERSION):  # 1: flat INT8 fields, read by CompileRecipe.from_dict
        raise invalid(f"{source}: field 'deepseek_optimize_recipe'", version, f"1 or {RECIPE_VERSION} (the recipe "
                                                                              "versions this deepseek reads)")
    from .._core.errors import DeepSeekError

    field(data, "model", (str, type(None)), source=source, required=False)
    inputs = field(data, "inputs", list, source=source)
    if not inputs or not all(isinstance(s, list) and s and all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                               for d in s) for s in inputs):
        raise invalid(f"{source}: field 'inputs'", inputs, "a list of input shapes of positive integers, e.g. "
                                                           "[[1, 3, 224, 224]]")
    dtypes = field(data, "input_dtypes", (list, type(None)), source=source, required=False)
    if dtypes is not None and (len(dtypes) != len(inputs) or not all(_is_dtype(d) for d in dtypes)):
        raise invalid(f"{source}: field 'input_dtypes'", dtypes, f"a torch dtype name per input ({len(inputs)}), "
                                                                 "e.g. [float32]")
    field(data, "data", str, source=source)
    data["measured"] = _measured(data, source)
    judge = field(data, "judge", dict, source=source, required=False, default={})
    if judge and judge.get("kind") not in ("metric", "fidelity"):
        raise invalid(f"{source}: field 'judge.kind'", judge.get("kind"), "metric or fidelity")
    if "onnx" in data:
        from .onnx_source import OnnxRecipe

        onnx_fields = field(data, "onnx", dict, source=source)
        try:
            data["onnx"] = OnnxRecipe.from_dict(onnx_fields)
        except (DeepSeekError, TypeError, ValueError) as exc:
            raise invalid(f"{source}: field 'onnx'", onnx_fields, f"an ONNX candidate's recipe ({exc})") from None
        return data
    compile_fields = field(data, "compile", dict, source=source)
    from ..compile.pipeline import CompileRecipe

    try:
        data["compile"] = CompileRecipe.from_dict(compile_fields)
    except DeepSeekError as exc:
        raise invalid(f"{source}: field 'compile'", "a bad compile recipe", f"a valid one ({exc})") from None
    except (TypeError, ValueError) as exc:
        raise invalid(f"{source}: field 'compile'", compile_fields, f"compile recipe fields of the right types "
                                                                    f"({exc})") from None
    return data


def _lm_recipe(data: dict[str, Any], source: str) -> dict[str, Any]:
    from .._core.config import field
    from .lm import LM_RECIPE_VERSION, SPACE
    from .result import describe_lm

    version = field(data, "deepseek_optimize_lm_recipe", int, source=source)
    if version != LM_RECIPE_VERSION:
        raise invalid(f"{source}: field 'deepseek_optimize_lm_recipe'", version,
                      f"{LM_RECIPE_VERSION} (this deepseek's language-model recipe version)")
    field(data, "model", (str, type(None)), source=source, required=False)
    field(data, "data", str, source=source)
    params = field(data, "params", dict, source=source)
    if params not in [dict(p) for p in SPACE]:
        raise invalid(f"{source}: field 'params'", params, f"one of the language-model candidates "
                                                           f"{[describe_lm(p) for p in SPACE]}")
    for name, default, minimum in (("windows", 8, 1), ("window", 256, 2)):
        value = field(data, name, int, source=source, required=False, default=default)
        data[name] = check_int(value, f"{source}: field {name!r}", minimum=minimum)
    data["measured"] = _measured(data, source)
    return data


def _measured(data: dict[str, Any], source: str) -> dict[str, Any]:
    """The recipe's recorded figures: numbers (or null) where the replay compares them."""
    from .._core.config import field

    measured = field(data, "measured", dict, source=source, required=False, default={})
    for key in ("drop", "drop_pp", "latency_ms", "ms_per_token", "size_bytes", "accuracy"):
        value = measured.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise invalid(f"{source}: field 'measured.{key}'", value, "a number or null")
    check_int(measured.get("threads", 2), f"{source}: field 'measured.threads'", minimum=1)
    return measured


def _is_dtype(name: Any) -> bool:
    import torch

    return isinstance(name, str) and isinstance(getattr(torch, name, None), torch.dtype)


def replay(recipe: str | Path, *, output: str | Path, model: Any = None, progress: bool = True,
           tokenizer: Any = None) -> dict[str, Any]:
    """Build ``recipe``'s artifact into ``output`` and score it as the search did; returns the figures now and
    as recorded. A language-model recipe rebuilds ``output/model`` (``tokenizer``: with a model given as an object)."""
    import torch

    from .._core.tensors import eval_mode
    from .config import OptimizeConfig, latency_device
    from .data import check_data, make_judge
    from .report import check_new_folder, copy_verified, write_recipe
    from .search import SUFFIX, measure_candidate, params_of

    check_flag(progress, "progress")
    data = read_recipe(recipe)
    if "deepseek_optimize_lm_recipe" in data:
        from .lm import replay_lm

        return replay_lm(data, output=output, model=model, tokenizer=tokenizer)
    source = model if model is not None else data.get("model")
    if source is None:
        raise invalid("model", None, "the model (this recipe was made from a Python object, not a file or name)")
    if "onnx" in data:
        return _replay_onnx(data, Path(recipe), Path(source), output, progress)
    # every cheap check before the model is loaded: the output folder, then the data
    out = check_new_folder(output, inputs=[p for p in (recipe, source, data["data"]) if isinstance(p, (str, Path))
                                           and Path(p).exists()])
    check_data(data["data"], data["compile"].samples)
    if isinstance(source, (str, Path)):
        from ..models import resolve_model

        module, _, _, _ = resolve_model(str(source), [tuple(s) for s in data["inputs"]])
    else:
        module = source
    if not isinstance(module, torch.nn.Module):
        raise invalid("model", str(source), "a PyTorch model")
    g = torch.Generator().manual_seed(0)
    dtypes = data.get("input_dtypes") or ["float32"] * len(data["inputs"])
    examples = tuple(torch.randn(*s, generator=g) if getattr(torch, d).is_floating_point else
                     torch.zeros(*s, dtype=getattr(torch, d)) for s, d in zip(data["inputs"], dtypes))
    # no budget on a replay: the candidate is measured whatever it scores, and its figures reported
    recipe_obj = data["compile"]
    cfg = OptimizeConfig(data=data["data"], threads=int(data["measured"].get("threads", 2)), max_accuracy_drop=100.0,
                         target=recipe_obj.target_arch)
    module = eval_mode(module)
    judge = make_judge(module, examples, cfg.data, calib_samples=data["compile"].samples)  # a folder's judged part
    # starts after the calibration rows the recorded candidate used
    params = params_of(recipe_obj)
    backend = params["lowering"].partition("-")[0]
    work = Path(tempfile.mkdtemp(prefix="deepseek-replay-"))
    try:
        candidate = measure_candidate(module, examples, params, recipe_obj, cfg, judge, work / "c", tuple(examples[0].shape),
                                      judge.timing_sample(work, int(examples[0].shape[0])),
                                      device=latency_device(cfg.target))
        if candidate.error:
            raise invalid("recipe", str(recipe), f"a recipe that builds ({candidate.error})")
        out.mkdir(parents=True, exist_ok=True)
        artifact = copy_verified(candidate, out, judge, cfg.threads)
        assert artifact.suffix == SUFFIX[backend]
        write_recipe(out / "recipe.yaml", candidate, source if isinstance(source, (str, Path)) else None,
                     data["inputs"], cfg.data, cfg.threads, dtypes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"artifact": str(artifact), "drop_pp": candidate.scores["drop_pp"], "latency_ms": candidate.latency_ms,
            "size_bytes": candidate.size_bytes, "recorded": data["measured"]}


def _replay_onnx(data: dict[str, Any], recipe_path: Path, source: Path, output: str | Path,
                 progress: bool) -> dict[str, Any]:
    """Rebuild an ONNX file's candidate from its recipe and score it with the judge it was chosen by."""
    import numpy as np

    from ..runtime import load
    from .config import OptimizeConfig, latency_device
    from .data import check_data, make_judge
    from .onnx_source import build_onnx, calibration_array, onnx_params_of
    from .report import check_new_folder, copy_verified, write_recipe
    from .search import measure_candidate

    recipe = data["onnx"]
    judge_spec = data.get("judge") or {}
    out = check_new_folder(output, inputs=[p for p in (recipe_path, source, data["data"]) if Path(p).exists()])
    check_data(data["data"], recipe.samples or 128, class_labels=judge_spec.get("kind") != "metric")
    if not source.is_file():
        raise invalid("model", str(source), "the ONNX file the recipe was made from")
    cfg = OptimizeConfig(data=data["data"], threads=int(data["measured"].get("threads", 2)), max_accuracy_drop=100.0,
                         judge=judge_spec.get("kind", "auto") if judge_spec.get("kind") == "fidelity" else "auto",
                         min_sqnr_db=-1e9)
    dtype = np.dtype((data.get("input_dtypes") or ["float32"])[0])
    examples = (np.zeros(data["inputs"][0], dtype),)
    judge = make_judge(load(source, threads=cfg.threads), examples, cfg.data, calib_samples=recipe.samples or 128,
                       judge=cfg.judge, metric=judge_spec.get("metric"), budget=cfg.max_accuracy_drop,
                       min_sqnr_db=cfg.min_sqnr_db)
    calibration = calibration_array(recipe.calib, recipe.samples, examples[0]) \
        if recipe.lowering in ("ort-int8", "openvino-int8") else None
    work = Path(tempfile.mkdtemp(prefix="deepseek-replay-"))
    try:
        candidate = measure_candidate(None, examples, onnx_params_of(recipe), recipe, cfg, judge, work / "c",
                                      tuple(examples[0].shape), judge.timing_sample(work, examples[0].shape[0]),
                                      device=latency_device(cfg.target),
                                      builder=lambda path: build_onnx(source, recipe, path, calibration))
        if candidate.error:
            raise invalid("recipe", str(recipe_path), f"a recipe that builds ({candidate.error})")
        out.mkdir(parents=True, exist_ok=True)
        artifact = copy_verified(candidate, out, judge, cfg.threads)
        write_recipe(out / "recipe.yaml", candidate, source, data["inputs"], cfg.data, cfg.threads,
                     data.get("input_dtypes"), judge)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"artifact": str(artifact), "drop": candidate.scores["drop"], "drop_pp": candidate.scores.get("drop_pp"),
            "sqnr_db": candidate.scores.get("sqnr_db"), "latency_ms": candidate.latency_ms,
            "size_bytes": candidate.size_bytes, "recorded": data["measured"]}
