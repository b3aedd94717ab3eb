"""Recognise a model file and load it safely (no unpickling of untrusted files by default)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from .._core.errors import ArtifactError, InvalidArgumentError, invalid

# kind -> what it is, for messages
KINDS = {
    "onnx": "ONNX model (.onnx)",
    "openvino_ir": "OpenVINO IR (.xml beside its .bin)",
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


def sniff(path: Path) -> str:
    """What the first bytes of ``path`` say it is: ``empty``, ``zip``, ``pickle``, ``elf``, ``hdf5``,
    ``safetensors``, ``text`` or ``unknown`` (ONNX protobuf has no magic number)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            size = path.stat().st_size
    except OSError as exc:
        raise ArtifactError(f"model: cannot read {path} ({exc.strerror or exc})") from None
    if not head:
        return "empty"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if head[:4] == b"\x7fELF":
        return "elf"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if len(head) >= 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") <= size - 8:
        return "safetensors"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "text"
    return "unknown"


_SNIFFED = {"empty": "an empty file", "zip": "a zip archive", "pickle": "a Python pickle", "elf": "a native library",
            "hdf5": "an HDF5 (Keras .h5) file", "safetensors": "safetensors weights", "text": "a text file",
            "unknown": "unrecognised bytes"}


_NOT_A = {"onnx": "is not a loadable ONNX model", "pt2": "is not a valid torch.export archive",
          "torch": "is not a readable PyTorch file", "safetensors": "is not a readable safetensors file"}


def _wrong_format(path: Path, found: str, expected: str, kind: str, argument: str = "model") -> ArtifactError:
    return ArtifactError(f"{argument}: {path} {_NOT_A[kind]}: it is {_SNIFFED[found]}, expected {expected} (empty, "
                         "truncated, or another format renamed?)")


def detect_kind(path: Path) -> str:
    """Tell what kind of model file ``path`` is from its name and contents; a file whose contents do not match
    its name (empty, truncated, another format renamed) is an :class:`ArtifactError` naming it."""
    path = Path(path)
    if not path.exists():
        raise InvalidArgumentError(f"model: file not found: {path}")
    if path.is_dir():
        raise invalid("model", str(path), "a model file (.onnx, .pt2, .pt, .pth, .safetensors), not a folder")
    suffix = path.suffix.lower()
    found = sniff(path) if suffix in {".onnx", ".safetensors", ".pt2", ".pt", ".pth", ".bin", ".ckpt"} else None
    if suffix == ".onnx":
        # an ONNX ModelProto starts with a protobuf field tag: ir_version (0x08) in files written by onnx
        if found in {"empty", "zip", "pickle", "elf", "hdf5", "safetensors", "text"}:
            raise _wrong_format(path, found, KINDS["onnx"], "onnx")
        return "onnx"
    if suffix == ".xml":
        with open(path, "rb") as f:
            head = f.read(4096)
        if b"<net" not in head:
            raise invalid("model", str(path), "an OpenVINO IR .xml (its <net> element was not found)")
        if not path.with_suffix(".bin").exists():
            raise invalid("model", str(path), f"an OpenVINO IR .xml beside its weights ({path.with_suffix('.bin').name} "
                                              "is missing)")
        return "openvino_ir"
    if suffix == ".safetensors":
        if found != "safetensors":
            raise _wrong_format(path, found, KINDS["safetensors"], "safetensors")
        return "safetensors"
    if suffix == ".pt2":
        if found != "zip":
            raise _wrong_format(path, found, "a torch.export program or AOTInductor package (.pt2, a zip archive)", "pt2")
        return "aoti_package" if is_aoti_package(path) else "exported_program"
    if suffix == ".so":
        from .arm64_bundle import is_arm64_library

        if is_arm64_library(path):
            return "arm64_bundle"
        raise invalid("model", str(path), "an arm64 bundle's .so from deepseek-compile (this is not an AArch64 library)")
    if suffix in {".pt", ".pth", ".bin", ".ckpt"}:
        if found not in {"zip", "pickle"}:
            raise _wrong_format(path, found, "a PyTorch file (torch.save / TorchScript)", "torch")
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
            if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
                return "torchscript"
        return _pickled_kind(path)
    raise invalid("model", str(path), f"one of: {', '.join(KINDS.values())}")


def load_onnx_model(path: Path, *, argument: str = "model") -> Any:
    """The ONNX ``ModelProto`` in ``path`` (external weights not loaded), or an :class:`ArtifactError` naming the
    file when it is not one (empty, truncated, another format renamed)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise invalid(argument, str(path), "an existing .onnx file")
    found = sniff(path)
    if found in {"empty", "zip", "pickle", "elf", "hdf5", "safetensors", "text"}:
        raise _wrong_format(path, found, KINDS["onnx"], "onnx", argument)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ArtifactError(f"{argument}: {path} is not a loadable ONNX model, expected {KINDS['onnx']} (truncated "
                            f"or another format renamed?) ({_brief(exc)})") from None
    if not len(model.graph.node) and not len(model.graph.output):
        raise ArtifactError(f"{argument}: {path} holds no ONNX graph, expected {KINDS['onnx']}")
    return model


def _pickled_kind(path: Path) -> str:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses arbitrary classes: that is a pickled module
        if "Unsupported global" in str(exc) or "Unsupported class" in str(exc):
            return "pickled_module"
        raise ArtifactError(f"model: {path} is not a readable PyTorch file, expected a torch.save or TorchScript "
                            f"file (empty, truncated, or another format renamed?) ({_brief(exc)})") from None
    if isinstance(obj, dict) and (all(isinstance(v, torch.Tensor) for v in obj.values())
                                  or isinstance(obj.get("state_dict"), dict)):
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
        try:
            module = torch.load(path, map_location="cpu", weights_only=False)  # trusted by explicit flag
        except Exception as exc:  # unpickling runs the file's own code: any error can come out
            raise ArtifactError(f"model: {path} could not be unpickled as a PyTorch model ({_brief(exc)})") from None
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
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ArtifactError(f"model: {path} holds a {type(state).__name__}, expected a state_dict (names to tensors)")
    return state


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if len(text[0]) <= 160 else text[0][:160].rsplit(" ", 1)[0] + " ..." if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
