"""Recognise a model file and load it safely (no unpickling of untrusted files by default)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from .._errors import ArtifactError, InvalidArgumentError, invalid

# kind -> what it is, for messages
KINDS = {
    "onnx": "ONNX model (.onnx)",
    "exported_program": "torch.export program (.pt2)",
    "torchscript": "TorchScript archive (.pt)",
    "state_dict": "PyTorch state_dict (.pt/.pth, needs arch=)",
    "safetensors": "safetensors weights (needs arch=)",
    "pickled_module": "a pickled whole nn.Module (can run code: needs trust_pickle=True)",
    "arm64_bundle": "arm64 bundle from deepseek-compile (.so)",
    "aoti_package": "AOTInductor package (.pt2 from deepseek-compile --backend inductor)",
}


def is_aoti_package(path: Path) -> bool:
    """True for a ``.pt2`` that holds AOTInductor-compiled code (not a plain torch.export program)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any("/aotinductor/" in n or n.endswith(".so") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def detect_kind(path: Path) -> str:
    """Tell what kind of model file ``path`` is from its name and contents."""
    if not path.exists():
        raise InvalidArgumentError(f"model: file not found: {path}")
    if path.is_dir():
        raise invalid("model", str(path), "a model file (.onnx, .pt2, .pt, .pth, .safetensors), not a folder")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".safetensors":
        return "safetensors"
    if suffix == ".pt2":
        return "aoti_package" if is_aoti_package(path) else "exported_program"
    if suffix == ".so":
        from .arm64_bundle import is_arm64_library

        if is_arm64_library(path):
            return "arm64_bundle"
        raise invalid("model", str(path), "an arm64 bundle's .so from deepseek-compile (this is not an AArch64 library)")
    if suffix in {".pt", ".pth", ".bin", ".ckpt"}:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
            if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
                return "torchscript"
        return _pickled_kind(path)
    raise invalid("model", str(path), f"one of: {', '.join(KINDS.values())}")


def _pickled_kind(path: Path) -> str:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses arbitrary classes: that is a pickled module
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            return "pickled_module"
        raise ArtifactError(f"model: {path} is not a readable PyTorch file ({type(exc).__name__})") from exc
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return "state_dict"
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        return "state_dict"
    raise ArtifactError(f"model: {path} holds a {type(obj).__name__}, not a model or state_dict")


def load_exported_program(path: Path) -> Any:
    """``torch.export.load(path)``, with one clear error for a file that is not a torch.export archive (torch itself
    logs a multi-line traceback before raising; that log is kept out of the user's terminal)."""
    import logging

    import torch

    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"model: {path} is not a valid torch.export archive (not a zip archive: truncated or "
                            "not written by torch.export.save)")
    class _Keep(logging.Handler):  # torch logs the real cause (with a traceback), then raises a generic error
        def __init__(self) -> None:
            super().__init__()
            self.causes: list[BaseException] = []

        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                self.causes.append(record.exc_info[1])

    logger, keep = logging.getLogger("torch.export"), _Keep()
    handlers, propagate = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [keep], False
    try:
        return torch.export.load(str(path))
    except Exception as exc:
        cause = keep.causes[-1] if keep.causes else exc
        raise ArtifactError(f"model: {path} is not a valid torch.export archive ({_brief(cause)})") from exc
    finally:
        logger.handlers, logger.propagate = handlers, propagate


def load_module(path: Path, kind: str, *, arch: str | None = None, trust_pickle: bool = False) -> Any:
    """Load a PyTorch file as something callable on tensors (nn.Module or ScriptModule)."""
    import torch

    if kind == "aoti_package":
        from torch._inductor import aoti_load_package

        try:
            return aoti_load_package(str(path))
        except Exception as exc:
            raise ArtifactError(f"model: {path} is not a loadable AOTInductor package ({_brief(exc)})") from exc
    if kind == "exported_program":
        return load_exported_program(path).module()
    if kind == "torchscript":
        try:
            return torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:
            raise ArtifactError(f"model: {path} is not a valid TorchScript archive ({_brief(exc)})") from exc
    if kind in {"state_dict", "safetensors"}:
        if not arch:
            raise invalid("arch", arch, f"an architecture for {KINDS[kind]}, e.g. 'torchvision:resnet18'")
        module = build_arch(arch)
        state = _read_state(path, kind)
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise ArtifactError(f"model: weights in {path} do not fit arch {arch!r}: {_brief(exc)}") from exc
        return module.eval()
    if kind == "pickled_module":
        if not trust_pickle:
            raise ArtifactError(
                f"model: {path} is a pickled whole model; loading it can run arbitrary code. "
                "Save a state_dict, torch.export (.pt2) or TorchScript instead, or pass trust_pickle=True "
                "(--trust-pickle) if you trust the file"
            )
        module = torch.load(path, map_location="cpu", weights_only=False)  # trusted by explicit flag
        if not isinstance(module, torch.nn.Module):
            raise ArtifactError(f"model: {path} holds a {type(module).__name__}, not an nn.Module")
        return module.eval()
    raise invalid("kind", kind, f"one of {sorted(KINDS)}")


def build_arch(arch: str) -> Any:
    """``torchvision:NAME`` → an untrained torchvision model of that architecture."""
    source, _, name = arch.partition(":")
    if source != "torchvision" or not name:
        raise invalid("arch", arch, "'torchvision:NAME', e.g. 'torchvision:resnet18'")
    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        raise invalid("arch", arch, "a torchvision classification model name (torchvision.models.list_models())")
    return torchvision.models.get_model(name, weights=None)


def _read_state(path: Path, kind: str) -> dict[str, Any]:
    import torch

    try:
        if kind == "safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ArtifactError(f"model: cannot read weights from {path} ({_brief(exc)})") from exc
    return state["state_dict"] if "state_dict" in state and isinstance(state["state_dict"], dict) else state


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
