"""Rebuild an artifact from ``recipe.yaml`` exactly (``deepseek optimize --recipe out/recipe.yaml``) and measure it
again: the same compile steps, the same named float fallbacks, the same calibration data."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from .._errors import invalid
from .report import RECIPE_VERSION


def read_recipe(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise invalid("--recipe", str(path), "a recipe.yaml written by deepseek optimize")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise invalid("--recipe", str(path), "valid YAML") from None
    if isinstance(data, dict) and "deepseek_optimize_lm_recipe" in data:
        from .lm import LM_RECIPE_VERSION

        if data["deepseek_optimize_lm_recipe"] != LM_RECIPE_VERSION or "params" not in data or "data" not in data:
            raise invalid("--recipe", str(path), f"a deepseek optimize language-model recipe (version {LM_RECIPE_VERSION})")
        return data
    if not isinstance(data, dict) or data.get("deepseek_optimize_recipe") != RECIPE_VERSION or "compile" not in data:
        raise invalid("--recipe", str(path), f"a deepseek optimize recipe (version {RECIPE_VERSION})")
    from ..compile.pipeline import CompileRecipe

    data["compile"] = CompileRecipe.from_dict(data["compile"])
    return data


def replay(recipe: str | Path, *, output: str | Path, model: Any = None, progress: bool = True,
           tokenizer: Any = None) -> dict[str, Any]:
    """Build ``recipe``'s artifact into ``output`` and score it as the search did; returns the figures now and
    as recorded. A language-model recipe rebuilds ``output/model`` (``tokenizer``: with a model given as an object)."""
    import torch

    from .._tensors import eval_mode
    from .config import OptimizeConfig, latency_device
    from .data import make_judge
    from .report import copy_verified, write_recipe
    from .search import SUFFIX, measure_candidate, params_of

    data = read_recipe(recipe)
    if "deepseek_optimize_lm_recipe" in data:
        from .lm import replay_lm

        return replay_lm(data, output=output, model=model, tokenizer=tokenizer)
    source = model if model is not None else data.get("model")
    if source is None:
        raise invalid("MODEL", None, "the model (this recipe was made from a Python object, not a file or name)")
    if isinstance(source, (str, Path)):
        from .._cli_common import resolve_model

        module, _, _, _ = resolve_model(str(source), [tuple(s) for s in data["inputs"]])
    else:
        module = source
    if not isinstance(module, torch.nn.Module):
        raise invalid("MODEL", str(source), "a PyTorch model")
    g = torch.Generator().manual_seed(0)
    dtypes = data.get("input_dtypes") or ["float32"] * len(data["inputs"])
    if len(dtypes) != len(data["inputs"]) or not all(isinstance(d, str) and isinstance(getattr(torch, d, None), torch.dtype)
                                                     for d in dtypes):
        raise invalid("--recipe", str(recipe), "input_dtypes naming a torch dtype per input, e.g. [float32]")
    examples = tuple(torch.randn(*s, generator=g) if getattr(torch, d).is_floating_point else
                     torch.zeros(*s, dtype=getattr(torch, d)) for s, d in zip(data["inputs"], dtypes))
    out = Path(output)
    if out.exists() and any(out.iterdir()):
        raise invalid("--output", str(out), "a new or empty folder (it is never overwritten)")
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
            raise invalid("--recipe", str(recipe), f"a recipe that builds ({candidate.error})")
        out.mkdir(parents=True, exist_ok=True)
        artifact = copy_verified(candidate, out, judge, cfg.threads)
        assert artifact.suffix == SUFFIX[backend]
        write_recipe(out / "recipe.yaml", candidate, source if isinstance(source, (str, Path)) else None,
                     data["inputs"], cfg.data, cfg.threads, dtypes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"artifact": str(artifact), "drop_pp": candidate.scores["drop_pp"], "latency_ms": candidate.latency_ms,
            "size_bytes": candidate.size_bytes, "recorded": data["measured"]}
