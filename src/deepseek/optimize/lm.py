"""``deepseek optimize`` for causal language models: weight-only int8 / int4 (group size, the output layer kept at
8 bits or not) and bfloat16 compute, judged by next-token top-1 accuracy on held-out text against the float
model, timed by greedy decoding with the KV cache in a process of its own.

The space is small (9 candidates) and every point costs about the same, so it is enumerated in a fixed order —
the recipes llama.cpp users reach for first — up to ``trials``; accuracy is checked before latency, and only a
candidate within the budget is timed. Round-to-nearest weights need no calibration data: the judged text is
held out from nothing, and the float model's own predictions are the reference.

    deepseek optimize smollm2 --data hamlet --max-accuracy-drop 0.5 --output out/

One candidate's decode latency is measured by this module run as a child (:func:`measure_decode`,
:mod:`deepseek._core.child`).
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._core.checks import check_flag, check_int
from .._core.errors import DeepSeekError, invalid
from .result import describe_lm

# the candidates, cheapest-to-judge first among equals; "head_bits": 8 keeps lm_head at int8 as llama.cpp does
SPACE: tuple[dict[str, Any], ...] = (
    {"lowering": "torch-float", "compute": "float32"},
    {"lowering": "torch-weight-only", "bits": 8, "group_size": None, "head_bits": None, "compute": "bfloat16"},
    {"lowering": "torch-weight-only", "bits": 4, "group_size": 32, "head_bits": 8, "compute": "bfloat16"},
    {"lowering": "torch-weight-only", "bits": 4, "group_size": 64, "head_bits": 8, "compute": "bfloat16"},
    {"lowering": "torch-weight-only", "bits": 4, "group_size": 128, "head_bits": 8, "compute": "bfloat16"},
    {"lowering": "torch-float", "compute": "bfloat16"},
    {"lowering": "torch-weight-only", "bits": 4, "group_size": 32, "head_bits": None, "compute": "bfloat16"},
    {"lowering": "torch-weight-only", "bits": 8, "group_size": None, "head_bits": None, "compute": "float32"},
    {"lowering": "torch-weight-only", "bits": 4, "group_size": 128, "head_bits": None, "compute": "bfloat16"},
)
QUANT_FILE = "deepseek_weight_only.json"
LM_RECIPE_VERSION = 1


def is_causal_lm(model: Any) -> bool:
    """A Hugging Face causal LM (``generate`` and a config), its folder (``config.json`` inside), or the bundled
    ``smollm2``."""
    if isinstance(model, (str, Path)):
        return str(model) == "smollm2" or (Path(model) / "config.json").is_file()
    return hasattr(model, "generate") and hasattr(model, "config") and hasattr(model, "save_pretrained")


def build_lm(model: Any, params: dict[str, Any]) -> Any:
    """A copy of ``model`` as the candidate ``params`` describes."""
    return _lowered(copy.deepcopy(model).eval(), params)


def _lowered(model: Any, params: dict[str, Any]) -> Any:
    """``model`` itself as the candidate ``params`` describes: cast to its float type, or its Linear layers
    swapped for weight-only ones."""
    import torch

    from ..quantization import quantize_weights

    if params["lowering"] == "torch-float":
        return model.to(getattr(torch, params["compute"]))
    return quantize_weights(model, weight_only_config(params))


def weight_only_config(params: dict[str, Any]) -> Any:
    from ..quantization import WeightOnlyConfig

    return WeightOnlyConfig(bits=params["bits"], group_size=params["group_size"], compute_dtype=params["compute"],
                            layer_bits={"lm_head": params["head_bits"]} if params.get("head_bits") else {})


class LMJudge:
    """Held-out windows of a text, the float model's next-token logits on them, and its accuracy."""

    def __init__(self, model: Any, tokenizer: Any, data: str, windows: int = 8, window: int = 256) -> None:
        import torch

        ids = tokenizer(read_lm_text(data), return_tensors="pt").input_ids[0]
        count = min(windows, ids.numel() // window)
        if count < 1:
            raise invalid("data", data, f"a text of at least {window} tokens (got {ids.numel()})")
        self.data, self.inputs = data, ids[: count * window].view(count, window)
        self.targets = self.inputs[:, 1:].numpy()
        with torch.inference_mode():
            self.reference = self._logits(model)
        self.reference_accuracy = float((self.reference.argmax(-1) == self.targets).mean())

    def _logits(self, model: Any) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return np.stack([model(row.unsqueeze(0)).logits[0, :-1].float().numpy() for row in self.inputs])

    def score(self, model: Any) -> dict[str, Any]:
        """Next-token top-1 accuracy, agreement with the float model, perplexity, mean KL; ``drop_pp``."""
        logits = self._logits(model)
        hits = agree = 0
        nll = kl = 0.0
        for got, ref, target in zip(logits, self.reference, self.targets):  # a window at a time: vocab-wide arrays
            logp, ref_logp = _log_softmax(got.astype(np.float64)), _log_softmax(ref.astype(np.float64))
            top = got.argmax(-1)
            hits += int((top == target).sum())
            agree += int((top == ref.argmax(-1)).sum())
            nll -= float(np.take_along_axis(logp, target[:, None], -1).sum())
            kl += float((np.exp(ref_logp) * (ref_logp - logp)).sum())
        n = int(self.targets.size)
        accuracy = hits / n
        return {"accuracy": accuracy, "agreement": agree / n, "perplexity": math.exp(nll / n), "mean_kl": kl / n,
                "drop_pp": 100.0 * (self.reference_accuracy - accuracy), "tokens": n}


def read_lm_text(data: Any) -> str:
    """The text of ``data`` for a language model: ``hamlet`` (bundled) or a UTF-8 .txt file; else an error naming
    ``data``."""
    from .._core.config import read_text_file

    if not isinstance(data, (str, Path)) or (data != "hamlet" and Path(data).suffix != ".txt"):
        raise invalid("data", data, "hamlet (bundled) or a .txt file, for a language model")
    if data == "hamlet":
        from .. import assets

        return assets.hamlet()
    text = read_text_file(data, argument="data", what="a UTF-8 text file to judge the language model on")
    if not text.strip():
        raise invalid("data", str(data), "a .txt file holding text (it is empty)")
    return text


def check_lm_options(*, windows: Any = 8, window: Any = 256, new_tokens: Any = 32, threads: Any = 2) -> None:
    """Refuse counts of the wrong type or below their minimum, naming the argument."""
    for name, value, minimum in (("windows", windows, 1), ("window", window, 2), ("new_tokens", new_tokens, 1),
                                 ("threads", threads, 1)):
        check_int(value, name, minimum=minimum)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def load_source(source: str) -> tuple[Any, Any]:
    """(model, tokenizer) from ``smollm2`` or a local Hugging Face folder (never downloaded)."""
    from .. import assets

    if source == "smollm2":
        return assets.smollm2()
    check_lm_source(source)
    folder = Path(source)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return (AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval(),
            AutoTokenizer.from_pretrained(folder, local_files_only=True))


def check_lm_source(source: Any) -> None:
    """Refuse a language-model source that is neither ``smollm2`` nor a local Hugging Face folder whose
    config.json is a JSON object naming its ``model_type`` (cheap: nothing is loaded)."""
    from .._core.config import field, read_json

    if source == "smollm2":
        return
    if not isinstance(source, (str, Path)) or not (Path(source) / "config.json").is_file():
        raise invalid("model", source, "smollm2 or a local Hugging Face model folder (with config.json; nothing is "
                                       "downloaded)")
    config = Path(source) / "config.json"
    data = read_json(config, argument="model", what="a Hugging Face model config", mapping=True)
    field(data, "model_type", str, source=f"model ({config})")


def measure_decode(source: str, params: dict[str, Any], *, new_tokens: int = 32, runs: int = 5,
                   threads: int = 2, timeout_s: float = 900) -> float:
    """Milliseconds per generated token (greedy, KV cache, batch 1) of the candidate, in a fresh process."""
    from .._core.child import run_child

    job = {"source": source, "params": params, "new_tokens": new_tokens, "runs": runs, "threads": threads}
    return float(run_child(__name__, job, what=f"decode latency of {describe_lm(params)}", threads=threads,
                           timeout_s=timeout_s)["ms_per_token"])


def save_source(model: Any, tokenizer: Any, folder: Path) -> None:
    """The float model as a local folder a fresh process can load."""
    from .._core.hf import save_pretrained_folder

    save_pretrained_folder(model, tokenizer, folder)


def save_lm(model: Any, tokenizer: Any, params: dict[str, Any], folder: Path) -> None:
    """The candidate as a folder :func:`load_lm` reads: config, safetensors weights (integer weights with their
    scales for weight-only layers), tokenizer, and the quantization parameters."""
    from safetensors.torch import save_model

    folder.mkdir(parents=True)
    model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    save_model(model, str(folder / "model.safetensors"))
    (folder / QUANT_FILE).write_text(json.dumps(params, indent=1))


def load_lm(folder: str | Path) -> Any:
    """A model saved by ``deepseek optimize`` for a language model: the architecture from its config, the
    weight-only layers rebuilt from its parameters, the weights loaded strictly (safetensors, no pickle)."""
    import torch
    from safetensors.torch import load_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from .._core.config import read_json

    if not isinstance(folder, (str, Path)) or not str(folder):
        raise invalid("folder", folder, f"a folder written by deepseek optimize ({QUANT_FILE}, model.safetensors)")
    folder = Path(folder)
    if not (folder / QUANT_FILE).is_file() or not (folder / "model.safetensors").is_file():
        raise invalid("folder", str(folder), f"a folder written by deepseek optimize ({QUANT_FILE}, model.safetensors)")
    params = read_json(folder / QUANT_FILE, argument="folder", what="deepseek optimize's quantization parameters",
                       mapping=True)
    if params not in [dict(p) for p in SPACE]:
        raise invalid(f"folder ({folder / QUANT_FILE})", params, f"the parameters of one of the language-model "
                                                                 f"candidates {[describe_lm(p) for p in SPACE]}")
    if not (folder / "config.json").is_file():
        raise invalid("folder", str(folder), "a folder with the model's config.json")
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    # built on the CPU, not the meta device: buffers computed at construction (rotary frequencies) are not in
    # the weights file; the random initial weights are all overwritten below (strict)
    model = _lowered(AutoModelForCausalLM.from_config(config, dtype=torch.float32), params)
    missing, unexpected = load_model(model, str(folder / "model.safetensors"), strict=False)
    if missing or unexpected:
        raise DeepSeekError(f"{folder}: weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval()


def optimize_lm(model: Any, tokenizer: Any = None, *, data: str = "hamlet", max_accuracy_drop: float = 0.5,
                objective: str = "latency", trials: int = 9, output: str | Path | None = None,
                threads: int = 2, progress: bool = True, windows: int = 8, window: int = 256,
                new_tokens: int = 32) -> Any:
    """Search :data:`SPACE` for the fastest (``objective="latency"``: decode ms/token) or smallest candidate of a
    causal LM whose next-token accuracy on ``data`` stays within ``max_accuracy_drop`` points of the float model."""
    import contextlib

    from .._core.progress import progress as bar_context
    from .config import OptimizeConfig
    from .report import check_new_folder
    from .result import Candidate, OptimizeResult

    if not isinstance(data, str):
        raise invalid("data", data, "hamlet (bundled) or the path of a .txt file, for a language model")
    cfg = OptimizeConfig(data=data, max_accuracy_drop=max_accuracy_drop, objective=objective, trials=trials,
                         threads=threads)
    check_lm_options(windows=windows, window=window, new_tokens=new_tokens, threads=threads)
    check_flag(progress, "progress")
    # every cheap check before the model is loaded: the source, the output folder, the text
    _check_model(model, tokenizer)
    out = None if output is None else check_new_folder(
        output, inputs=[p for p in (model, data) if isinstance(p, (str, Path)) and Path(p).exists()])
    read_lm_text(data)
    work = Path(tempfile.mkdtemp(prefix="deepseek-optimize-lm-"))
    try:
        module, tokenizer, source = _load_model(model, tokenizer, work)
        judge = LMJudge(module, tokenizer, data, windows, window)
        measured: list[Candidate] = []
        with (bar_context(transient=True) if progress else contextlib.nullcontext()) as bar:
            task = bar.add_task("optimize: language model candidates", total=min(trials, len(SPACE))) if progress else None
            for number, params in enumerate(SPACE[:trials]):
                started = time.perf_counter()
                built = build_lm(module, params)
                scores = judge.score(built)
                feasible = scores["drop_pp"] <= cfg.max_accuracy_drop + 1e-9
                size = _weight_bytes(built)
                latency = None
                if (feasible or number == 0) and objective == "latency":
                    latency = measure_decode(source, params, new_tokens=new_tokens, threads=threads)
                measured.append(Candidate(number, params, None, None, scores, latency, size, feasible,
                                          time.perf_counter() - started))
                if progress:
                    bar.update(task, advance=1, description=f"optimize: {describe_lm(params)}")
        feasible = [c for c in measured if c.feasible]
        key = (lambda c: (c.latency_ms, c.size_bytes)) if objective == "latency" else (lambda c: (c.size_bytes, 0))
        best = min(feasible, key=key) if feasible else measured[0]
        result = OptimizeResult(best, measured[0], measured, cfg, judge.reference_accuracy)
        if out is not None:
            _write_outputs(result, module, tokenizer, judge, out, source if isinstance(model, (str, Path)) else None,
                           windows, window)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _weight_bytes(model: Any) -> int:
    """Bytes of the model's parameters and buffers, shared tensors once (what its safetensors file holds)."""
    sizes: dict[int, int] = {}
    for t in [*model.parameters(), *model.buffers()]:
        sizes.setdefault(t.data_ptr(), t.numel() * t.element_size())
    return sum(sizes.values())


def save_verified(module: Any, tokenizer: Any, params: dict[str, Any], judge: LMJudge, folder: Path,
                  expected_drop: float) -> None:
    """Write the candidate to ``folder`` and score it again loaded fresh from there: the same figure or an error."""
    from .._core.errors import VerificationError

    save_lm(build_lm(module, params), tokenizer, params, folder)
    again = judge.score(load_lm(folder))
    if abs(again["drop_pp"] - expected_drop) > 1e-9:
        shutil.rmtree(folder)
        raise VerificationError(f"{folder}: scored {again['drop_pp']:.4f} pp after saving, {expected_drop:.4f} "
                                "when measured")


def write_lm_recipe(path: Path, source: str | None, judge: LMJudge, params: dict[str, Any], scores: dict[str, Any],
                    latency: float | None, windows: int, window: int) -> None:
    import yaml

    from .._core.atomic import write_text

    write_text(path, yaml.safe_dump({"deepseek_optimize_lm_recipe": LM_RECIPE_VERSION, "model": source,
                                     "data": judge.data, "windows": windows, "window": window, "params": params,
                                     "measured": {"drop_pp": scores["drop_pp"], "accuracy": scores["accuracy"],
                                                  "ms_per_token": latency}}, sort_keys=False))


def replay_lm(recipe: dict[str, Any], *, output: str | Path, model: Any = None, tokenizer: Any = None,
              threads: int = 2, new_tokens: int = 32) -> dict[str, Any]:
    """Rebuild a language-model recipe's candidate into ``output/model`` and measure it as the search did."""
    from .._core.atomic import output_folder
    from .report import check_new_folder

    params = recipe.get("params")
    if not isinstance(params, dict) or params not in [dict(p) for p in SPACE]:
        raise invalid("recipe", params, f"params of one of the language-model candidates "
                                        f"{[describe_lm(p) for p in SPACE]}")
    windows, window = recipe.get("windows", 8), recipe.get("window", 256)
    check_lm_options(windows=windows, window=window, new_tokens=new_tokens, threads=threads)
    source = model if model is not None else recipe.get("model")
    if source is None:
        raise invalid("model", None, "the model (this recipe was made from a Python object, not a name or folder)")
    _check_model(source, tokenizer)
    out = check_new_folder(output, inputs=[p for p in (source, recipe.get("data")) if isinstance(p, (str, Path))
                                           and Path(p).exists()])
    read_lm_text(recipe.get("data"))
    work = Path(tempfile.mkdtemp(prefix="deepseek-replay-lm-"))
    try:
        module, tokenizer, where = _load_model(source, tokenizer, work)
        judge = LMJudge(module, tokenizer, recipe["data"], windows, window)
        scores = judge.score(build_lm(module, params))
        latency = measure_decode(where, params, new_tokens=new_tokens, threads=threads)
        folder = output_folder(out, what=str(out))
        save_verified(module, tokenizer, params, judge, folder / "model", scores["drop_pp"])
        write_lm_recipe(folder / "recipe.yaml", str(source) if isinstance(source, (str, Path)) else None, judge,
                        params, scores, latency, windows, window)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"artifact": str(folder / "model"), "drop_pp": scores["drop_pp"], "latency_ms": latency,
            "size_bytes": _weight_bytes(load_lm(folder / "model")), "recorded": recipe.get("measured", {})}


def _check_model(model: Any, tokenizer: Any) -> None:
    """Refuse a model source that cannot load, or a model object without its tokenizer (nothing is loaded)."""
    if isinstance(model, (str, Path)):
        check_lm_source(str(model))
    elif tokenizer is None:
        raise invalid("tokenizer", None, "the model's tokenizer (a language model is judged on text)")


def _load_model(model: Any, tokenizer: Any, work: Path) -> tuple[Any, Any, str]:
    """(module, tokenizer, the folder a latency process loads it from): a name or folder loaded, a module
    saved to ``work/source``."""
    if isinstance(model, (str, Path)):
        return (*load_source(str(model)), str(model))
    save_source(model.eval(), tokenizer, work / "source")
    return model, tokenizer, str(work / "source")


def _write_outputs(result: Any, module: Any, tokenizer: Any, judge: LMJudge, out: Path, source: str | None,
                   windows: int = 8, window: int = 256) -> None:
    from .._core import machine as _machine
    from .._core.atomic import output_folder, write_json, write_text
    from .report import plot_pareto

    folder = output_folder(out, what=str(out))
    best = result.best
    save_verified(module, tokenizer, best.params, judge, folder / "model", best.scores["drop_pp"])
    result.output, result.artifact = folder, folder / "model"
    machine = _machine.describe(_machine.summary(threads=result.config.threads))
    front = {c.number for c in result.pareto()}
    rows = [{"trial": c.number, "candidate": describe_lm(c.params), **{f"param:{k}": v for k, v in c.params.items()},
             **{k: c.scores.get(k) for k in ("drop_pp", "accuracy", "agreement", "perplexity", "mean_kl")},
             "ms_per_token": c.latency_ms, "size_bytes": c.size_bytes, "feasible": c.feasible,
             "pareto": c.number in front, "chosen": c is best} for c in result.candidates]
    write_json(folder / "pareto.json", {"config": result.config.to_dict(), "machine": machine, "tokens": judge.targets.size,
                                        "reference_accuracy": result.reference_accuracy, "chosen": best.number,
                                        "artifact": "model", "candidates": rows})
    plot_pareto(result, folder / "pareto.png", machine, xlabel="decode latency (ms per token, batch 1)")
    lines = [f"# deepseek optimize (language model): {judge.data}, budget {result.config.max_accuracy_drop:g} pp "
             f"of next-token top-1 accuracy ({judge.targets.size} tokens)", "", f"Machine: {machine}.", "",
             f"**Chosen: {describe_lm(best.params)}** — {_ms(best.latency_ms)} ms/token, {best.size_bytes / 1e6:.0f} MB, "
             f"drop {best.scores['drop_pp']:.2f} pp, perplexity {best.scores['perplexity']:.2f}.", "",
             "| trial | candidate | accuracy | drop (pp) | agreement | perplexity | ms/token | MB | within budget |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['trial']} | {r['candidate']}{' (chosen)' if r['chosen'] else ''} | {r['accuracy']:.2%} | "
                     f"{r['drop_pp']:+.2f} | {r['agreement']:.2%} | {r['perplexity']:.2f} | {_ms(r['ms_per_token'])} | "
                     f"{r['size_bytes'] / 1e6:.0f} | {'yes' if r['feasible'] else 'no'} |")
    write_text(folder / "report.md", "\n".join(lines) + "\n")
    write_lm_recipe(folder / "recipe.yaml", source, judge, best.params, best.scores, best.latency_ms, windows, window)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def decode_job(job: dict[str, Any]) -> dict[str, Any]:
    """The child's side of :func:`measure_decode`: build the candidate from ``source`` and time its decoding."""
    import torch

    from ..evaluation.lm import generation_speed

    torch.set_num_threads(job["threads"])
    model, tokenizer = load_source(job["source"])
    built = build_lm(model, job["params"])
    del model
    speed = generation_speed(built, tokenizer, new_tokens=job["new_tokens"], runs=job["runs"])
    return {"ms_per_token": speed["median_ms"] / job["new_tokens"], "tokens_per_s": speed["tokens_per_s"]}


if __name__ == "__main__":
    from .._core.child import child_main

    raise SystemExit(child_main(decode_job))
