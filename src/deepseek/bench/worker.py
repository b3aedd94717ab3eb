"""One benchmark measurement (a backend at a batch size), run in a fresh process or in-process.

For ONNX Runtime this module imports only numpy and onnxruntime, so the child's peak memory is what
serving the model with ONNX Runtime costs, not PyTorch's.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import numpy as np

from .._core.timing import measure
from .memory import RssSampler, current_rss_mb, peak_rss_mb, reset_peak_rss


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement; never raises: failures come back as ``{"status": "error", ...}``."""
    try:
        if job.get("isolated", True) and reset_peak_rss():
            before = current_rss_mb()
            result = _measure(job)
            result.update(peak_rss_mb=peak_rss_mb(), rss_before_mb=before, memory_method="process peak RSS, isolated")
        else:
            with RssSampler() as sampler:
                result = _measure(job)
            result.update(peak_rss_mb=sampler.peak_mb - sampler.start_mb, rss_before_mb=sampler.start_mb,
                          memory_method="RSS increase, in-process")
        import sys

        result.update(status="ok", torch_imported="torch" in sys.modules)
        if job.get("device", "cpu") == "cuda" and "torch" in sys.modules:
            import torch

            result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return result
    except Exception as exc:
        lines = [ln for ln in (str(exc).strip() or type(exc).__name__).splitlines() if ln.strip()]
        return {"status": "error", "reason": f"{type(exc).__name__}: {lines[0] if lines else ''}",
                "traceback": traceback.format_exc(limit=5)}


def _inputs(job: dict[str, Any]) -> list[np.ndarray]:
    return [np.load(p, allow_pickle=False) if isinstance(p, str) else p for p in job["inputs"]]


def _measure(job: dict[str, Any]) -> dict[str, Any]:
    backend = job["backend"]
    if job.get("task") == "generate":
        return _measure_generation(job)
    t0 = time.perf_counter()
    if backend in ("onnxruntime", "openvino"):
        if backend == "onnxruntime":
            from ..runtime.backends import OrtBackend as FileBackend
        else:
            from ..runtime.openvino_backend import OpenVinoBackend as FileBackend

        runner: Any = FileBackend(job["source"]["path"], device=job.get("device", "cpu"),
                                  threads=job.get("threads"))
        call_inputs: tuple[Any, ...] = tuple(_inputs(job))
    else:
        import torch

        from ..runtime.backends import TorchBackend

        if job.get("threads"):
            torch.set_num_threads(job["threads"])
        module = _torch_module(job["source"])
        runner = TorchBackend(module, compiled=backend == "compile", device=job.get("device", "cpu"), specs=None)
        call_inputs = tuple(torch.from_numpy(a) for a in _inputs(job))
    run = runner.run
    first = run(call_inputs)  # the first call pays for compilation / session warm-up: reported apart
    setup_s = time.perf_counter() - t0
    stats = measure(lambda: run(call_inputs), warmup=job["warmup"], runs=job["runs"])
    if job.get("outputs_path"):
        np.save(job["outputs_path"], np.asarray(first[0]), allow_pickle=False)
    elif job.get("return_outputs"):
        job["outputs"] = first[0]
    return {"latency": stats.to_dict(), "setup_s": setup_s, "artifact_bytes": runner.artifact_bytes,
            "providers": getattr(runner, "providers", None)}


def _torch_module(source: dict[str, Any]) -> Any:
    import torch

    kind = source["kind"]
    if kind == "object":
        return source["module"]
    if kind == "pickle":
        # written by deepseek.benchmark in this same run, in its private temp folder, from the caller's own model
        return torch.load(source["path"], map_location="cpu", weights_only=False)  # trusted: our own file
    from pathlib import Path

    from ..runtime.artifacts import detect_kind, load_module

    path = Path(source["path"])
    return load_module(path, detect_kind(path), arch=source.get("arch"), trust_pickle=source.get("trust_pickle", False))


def _measure_generation(job: dict[str, Any]) -> dict[str, Any]:
    """Greedy generation with a KV cache: tokens per second for exactly ``new_tokens`` new tokens, decoded the way
    the job's backend names (:data:`deepseek.bench.benchmark.GENERATION_VARIANTS`)."""
    import torch

    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    device = job.get("device", "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: got {device!r}, expected 'cpu' or 'cuda' for generation")
    backend = job["backend"]
    model = _torch_module(job["source"])
    if job["source"]["kind"] == "object" and backend in ("int8", "int4", "compile"):
        import copy

        model = copy.deepcopy(model)  # in-process: these variants change the model, which is the caller's
    model = model.eval().to(device)
    ids = torch.from_numpy(_inputs(job)[0]).to(device)
    new = int(job.get("new_tokens", 32))
    t0 = time.perf_counter()
    options: dict[str, Any] = {}
    make_cache = None
    if backend in ("int8", "int4"):
        from ..quantization import quantize_weights

        quantize_weights(model, bits=int(backend[-1]), group_size=32)
    elif backend == "compile":
        options = _static_compile(model)
    elif backend in ("kv-int8", "kv-int4"):
        from ..nn.kv_cache import QuantizedKVCache

        bits = int(backend[-1])
        config = model.config.get_text_config()
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        group = 32 if bits == 4 and head_dim % 32 == 0 else None  # int4: groups of 32 channels where they fit

        def make_cache() -> Any:  # a fresh cache per call; a short float window so the history is compressed
            return QuantizedKVCache(bits=bits, group_size=group, residual=16, config=model.config)

    def generate() -> Any:
        extra = dict(options)
        if make_cache is not None:
            extra["past_key_values"] = make_cache()
        with torch.inference_mode():
            return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                                  do_sample=False, pad_token_id=model.config.eos_token_id, **extra)

    out = generate()
    setup_s = time.perf_counter() - t0
    stats = measure(generate, warmup=max(0, job["warmup"] - 1), runs=job["runs"])
    produced = int(out.shape[1] - ids.shape[1])
    tokens = produced * int(ids.shape[0])
    if job.get("outputs_path"):
        np.save(job["outputs_path"], out.cpu().numpy(), allow_pickle=False)
    elif job.get("return_outputs"):
        job["outputs"] = out.cpu().numpy()
    return {"latency": stats.to_dict(), "setup_s": setup_s, "tokens_per_call": tokens,
            "tokens_per_s": tokens * 1000.0 / stats.median_ms,
            "artifact_bytes": _module_bytes(model)}


def _static_compile(model: Any) -> dict[str, Any]:
    """A static KV cache (fixed shapes, so no recompiles while decoding) and ``torch.compile`` on the forward:
    the recipe transformers documents for fast generation. Returns the ``generate`` options it needs."""
    import torch

    model.forward = torch.compile(model.forward, dynamic=False, fullgraph=False)
    return {"cache_implementation": "static"}


def _module_bytes(model: Any) -> int:
    """Parameters and buffers (weight-only quantized layers keep their packed weights as buffers)."""
    unique = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return sum(t.numel() * t.element_size() for t in unique.values())


if __name__ == "__main__":  # ``python -m deepseek.bench.worker``: one isolated measurement (deepseek._core.child)
    from .._core.child import child_main

    raise SystemExit(child_main(run_job))  # a failed measurement is a result ({"status": "error"}), not a crash
