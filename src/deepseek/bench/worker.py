"""One benchmark measurement (a backend at a batch size), run in a fresh process or in-process.

For ONNX Runtime this module imports only numpy and onnxruntime, so the child's peak memory is what
serving the model with ONNX Runtime costs, not PyTorch's.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import numpy as np

from .memory import RssSampler, current_rss_mb, peak_rss_mb, reset_peak_rss
from .timing import measure


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
    if backend == "onnxruntime":
        from ..runtime.backends import OrtBackend

        runner: Any = OrtBackend(job["source"]["path"], device=job.get("device", "cpu"), threads=job.get("threads"))
        call_inputs: tuple[Any, ...] = tuple(_inputs(job))
        run = runner.run
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
    """Greedy generation with the KV cache: tokens per second for exactly ``new_tokens`` new tokens."""
    import torch

    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    device = job.get("device", "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: got {device!r}, expected 'cpu' or 'cuda' for generation")
    model = _torch_module(job["source"]).eval().to(device)
    ids = torch.from_numpy(_inputs(job)[0]).to(device)
    new = int(job.get("new_tokens", 32))
    t0 = time.perf_counter()
    if job["backend"] == "compile":
        model.forward = torch.compile(model.forward, dynamic=True)

    def generate() -> Any:
        with torch.inference_mode():
            return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                                  do_sample=False, pad_token_id=model.config.eos_token_id)

    out = generate()
    setup_s = time.perf_counter() - t0
    stats = measure(generate, warmup=max(0, job["warmup"] - 1), runs=job["runs"])
    produced = int(out.shape[1] - ids.shape[1])
    tokens = produced * int(ids.shape[0])
    return {"latency": stats.to_dict(), "setup_s": setup_s, "tokens_per_call": tokens,
            "tokens_per_s": tokens * 1000.0 / stats.median_ms,
            "artifact_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}


def main(argv: list[str] | None = None) -> None:
    """``python -m deepseek.bench.worker JOB.json RESULT.json``: one isolated measurement.

    A fresh interpreter (not multiprocessing's spawn, which re-imports the caller's main script and
    whatever it imports) so the process holds only what the backend itself needs.
    """
    import json
    import sys

    job_path, result_path = (argv if argv is not None else sys.argv[1:])[:2]
    with open(job_path) as f:
        job = json.load(f)
    result = run_job(job)
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
