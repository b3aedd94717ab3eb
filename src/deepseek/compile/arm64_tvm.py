"""arm64 bundles through Apache TVM (Relax): the model compiled by LLVM for AArch64 into a shared library, run by
TVM's small runtime (``libtvm_runtime.so`` + ``libtvm_ffi.so`` from the aarch64 wheels) and an example runner.

The second arm64 backend, beside ExecuTorch + XNNPACK: real code generation, untuned (tuning does not fit a
2-core build machine), so expect it slower than XNNPACK's hand-written kernels (../shared/notes/deploy.md).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from .._core.checks import check_choice
from .._core.errors import DeepSeekError, require
from .._core.export import export_or_explain
from .arm64 import (
    CXX,
    Arm64Bundle,
    cache_dir,
    check_bundle_request,
    fetch_aarch64_wheel,
    installed_version,
    publish,
    require_toolchain,
    run,
)
from .arm64 import verify as verify_under_qemu

RUNTIME_LIBS = ("libtvm_runtime.so", "libtvm_ffi.so")
TVM_PIN = "apache-tvm==0.27.0.post1"

_RUNNER = r"""// Example runner: run_model input.f32 output.f32 (raw little-endian float32, row-major).
// Loads @NAME@.so with TVM's runtime (lib/), runs its Relax "main" on one input of shape @SHAPE_TEXT@.
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

using namespace tvm::ffi;

namespace {
struct CPUAlloc {
  void AllocData(DLTensor* t) { t->data = std::malloc(GetDataSize(*t)); }
  void FreeData(DLTensor* t) { std::free(t->data); }
};
const int64_t kShape[] = {@SHAPE@};
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) { std::cerr << "usage: run_model input.f32 output.f32\n"; return 2; }
  std::string here(argv[0]);
  here = here.substr(0, here.find_last_of('/') + 1);
  Module lib = Module::LoadFromFile(here + "@NAME@.so");
  Module vm = lib->GetFunction("vm_load_executable").value()().cast<Module>();
  vm->GetFunction("vm_initialization").value()(static_cast<int>(kDLCPU), 0, 2);  // CPU, pooled allocator
  Tensor x = Tensor::FromNDAlloc(CPUAlloc(), ShapeView(kShape, sizeof(kShape) / sizeof(kShape[0])),
                                 DLDataType{kDLFloat, 32, 1}, DLDevice{kDLCPU, 0});
  std::ifstream in(argv[1], std::ios::binary);
  in.read(static_cast<char*>(x.data_ptr()), GetDataSize(x));
  if (!in) { std::cerr << "cannot read " << GetDataSize(x) << " bytes from " << argv[1] << "\n"; return 2; }
  Any out = vm->GetFunction("main").value()(x);
  Optional<Tensor> single = out.try_cast<Tensor>();
  Tensor y = single.has_value() ? *single : out.cast<Array<Any>>()[0].cast<Tensor>();
  std::ofstream o(argv[2], std::ios::binary);
  o.write(static_cast<const char*>(y.data_ptr()), GetDataSize(y));
  return o ? 0 : 1;
}
"""


def tvm_runtime_dir(cache: Path | None = None) -> Path:
    """TVM's aarch64 runtime (``lib/`` with the two runtime libraries, ``include/`` with the FFI headers), from
    the aarch64 wheels of the installed ``apache-tvm`` and ``apache-tvm-ffi`` (downloaded once into the cache)."""
    missing = f"the TVM backend needs Apache TVM: pip install {TVM_PIN}"
    tvm_version = installed_version("apache-tvm", missing)
    ffi_version = installed_version("apache-tvm-ffi", missing)
    root = cache_dir(cache) / f"tvm-aarch64-{tvm_version}-ffi{ffi_version}"
    if not all((root / "lib" / lib).is_file() for lib in RUNTIME_LIBS):
        fetch_aarch64_wheel(f"apache-tvm=={tvm_version}", ("tvm/lib/libtvm_runtime.so",), root)
        fetch_aarch64_wheel(f"apache-tvm-ffi=={ffi_version}", ("tvm_ffi/lib/libtvm_ffi.so", "tvm_ffi/include/"), root)
    return root


class OnnxReference(torch.nn.Module):
    """An ONNX file run by ONNX Runtime, called like the PyTorch model it stands for (its first output as a
    tensor): what a bundle compiled from ONNX is verified against."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnxruntime as ort

        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input_name: x.detach().numpy()})[0])


def build_arm64_tvm(model: torch.nn.Module | Path, examples: tuple[Any, ...], output: str | Path, *,
                    opt_level: int = 3, cpu: str = "cortex-a72", atol: float = 1e-4,
                    rtol: float = 1e-4) -> Arm64Bundle:
    """Compile ``model`` — a PyTorch module, or an ONNX file (through TVM's Relax ONNX frontend, with no PyTorch
    source) — with TVM for AArch64 (``-mcpu=cpu``, NEON) into a bundle beside ``output``, verified under qemu
    against PyTorch (an ONNX file: against ONNX Runtime) on ``examples`` (one float32 input) before anything is
    written."""
    output, name, bundle = check_bundle_request(output, examples)
    check_choice(opt_level, "opt_level", (0, 1, 2, 3), expected="0, 1, 2 or 3")
    tvm = require("tvm", "the TVM backend", TVM_PIN)
    from tvm.relax.frontend.torch import from_exported_program
    from tvm.support import cc

    require_toolchain()
    runtime = tvm_runtime_dir()
    with tempfile.TemporaryDirectory(prefix="deepseek-tvm-", ignore_cleanup_errors=True) as folder:
        work = Path(folder)
        stage = work / bundle.name
        (stage / "lib").mkdir(parents=True)
        if isinstance(model, Path):  # an ONNX file: TVM reads the graph itself
            import onnx
            from tvm.relax.frontend.onnx import from_onnx

            source, model = model, OnnxReference(model)
            try:
                relax_module = from_onnx(onnx.load(str(source)), shape_dict={model.input_name: list(examples[0].shape)},
                                         keep_params_in_input=False)
            except Exception as e:  # an operator TVM's ONNX frontend does not convert
                raise DeepSeekError(f"TVM could not import {source.name}: "
                                    f"{str(e).strip().splitlines()[-1][:300]}") from e
        else:
            program = export_or_explain(model, examples)
            try:
                relax_module = from_exported_program(program, keep_params_as_input=False)
            except Exception as e:  # an operator TVM's PyTorch frontend does not convert
                raise DeepSeekError(f"TVM could not import the model: {str(e).strip().splitlines()[-1][:300]}") from e
        target = tvm.target.Target({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": cpu, "mattr": ["+neon"]})
        with tvm.transform.PassContext(opt_level=opt_level):
            executable = tvm.compile(relax_module, target=target)
        executable.export_library(str(stage / f"{name}.so"), fcompile=cc.cross_compiler(CXX))
        for lib in RUNTIME_LIBS:
            shutil.copy2(runtime / "lib" / lib, stage / "lib" / lib)
        shape = list(examples[0].shape)
        (stage / "run_model.cc").write_text(_RUNNER.replace("@NAME@", name).replace("@SHAPE@", ", ".join(map(str, shape)))
                                            .replace("@SHAPE_TEXT@", str(shape)))
        run([CXX, "-std=c++17", "-O2", str(stage / "run_model.cc"), "-o", str(stage / "run_model"),
             f"-I{runtime / 'include'}", f"-L{stage / 'lib'}", "-ltvm_ffi", "-ltvm_runtime", "-Wl,-rpath,$ORIGIN/lib"],
            "build the example runner")
        with torch.no_grad():
            out_shape = list(model(examples[0]).shape)
        (stage / f"{name}.json").write_text(json.dumps({"input_shape": shape, "output_shape": out_shape, "dtype": "float32",
                                                        "precision": "fp32", "runtime": runtime.name, "backend": "tvm"}))
        (stage / "README.txt").write_text(
            f"{name}.so: {model.path.name if isinstance(model, OnnxReference) else type(model).__name__} compiled by Apache TVM {runtime.name.split('-')[2]} (Relax, LLVM, -mcpu={cpu},"
            f" opt level {opt_level}) for arm64.\nInput shape {shape} float32. Copy this folder to the device and run\n"
            "  ./run_model input.f32 output.f32\nlib/ holds TVM's runtime (libtvm_runtime.so, libtvm_ffi.so).\n")
        diff = verify_under_qemu(model, examples[0], stage, cpu, atol, rtol, work)
        publish(stage, bundle, output)
        size = (bundle / f"{name}.so").stat().st_size
    return Arm64Bundle(output, bundle, size, diff, atol, cpu, "fp32", None)
