import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import deepseek
from deepseek import assets
from deepseek.quantization import layer_sensitivity, quantize_static_onnx, sqnr_db
from deepseek.train import fit_classifier


class DigitNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(16)
        self.c2 = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = self.bn(self.c1(x)).relu()
        return self.fc(torch.nn.functional.max_pool2d(self.c2(x).relu(), 2).flatten(1))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    train, test = assets.digits().split(0.2, seed=0)
    return fit_classifier(DigitNet(), train, epochs=8), train, test


def _ops(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_static_int8_is_real_qdq_u8s8_and_keeps_accuracy(trained, tmp_path):
    model, train, test = trained
    r = quantize_static_onnx(model, train.x[:256], tmp_path / "q.onnx")
    ops = _ops(r.path)
    assert ops.count("QuantizeLinear") >= 3 and "DequantizeLinear" in ops
    graph = onnx.load(str(r.path)).graph
    zero_points = {i.name: i for i in graph.initializer if i.name.endswith("zero_point")}
    dtypes = {onnx.helper.tensor_dtype_to_np_dtype(z.data_type) for z in zero_points.values()}
    assert np.dtype("uint8") in dtypes and np.dtype("int8") in dtypes  # U8S8: uint8 activations, int8 weights
    s = ort.InferenceSession(str(r.path), providers=["CPUExecutionProvider"])
    pred = s.run(None, {s.get_inputs()[0].name: test.x.numpy()})[0].argmax(1)
    with torch.no_grad():
        ref = model(test.x).argmax(1).numpy()
    acc_fp32 = float((ref == test.y.numpy()).mean())
    acc_int8 = float((pred == test.y.numpy()).mean())
    assert acc_int8 >= acc_fp32 - 0.01
    assert r.calibration_agreement > 0.97


def test_excluded_layers_stay_fp32_in_onnx_runtime_too(trained, tmp_path):
    model, train, _ = trained
    r = quantize_static_onnx(model, train.x[:128], tmp_path / "q.onnx", exclude=["fc"])
    graph = onnx.load(str(r.path)).graph
    gemm = next(n for n in graph.node if n.op_type == "Gemm")
    producers = {o: n.op_type for n in graph.node for o in n.output}
    assert all(producers.get(i) != "DequantizeLinear" for i in gemm.input)  # float weights, bias and input
    assert r.kept_fp32 == ["fc"]
    # with a DequantizeLinear before it, ORT (>= 1.20) would quantize the float weights itself, per tensor
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(r.path), so, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "optimized.onnx")).graph
    assert not any("Gemm" in n.name and n.op_type == "QuantizeLinear" for n in optimized.node)
    assert all(n.op_type != "QGemm" for n in optimized.node)


def test_bias_correction_removes_the_mean_shift_of_rounded_weights(trained, tmp_path):
    model, train, test = trained
    from deepseek.quantization.onnx_qdq import leave_float, quantized_activations
    from deepseek.quantization.qat import fold_batchnorm

    folded = copy.deepcopy(model).eval()
    fold_batchnorm(folded)  # the graph quantize_static_onnx exported, with the same tensor names
    fp32 = onnx.load(str(deepseek.export_onnx(folded, train.x[:1], tmp_path / "fp32.onnx").path))
    outputs = {}
    for corrected in (False, True):
        r = quantize_static_onnx(model, train.x[:256], tmp_path / f"q{corrected}.onnx", bias_correction=corrected)
        assert r.bias_corrected_layers == (3 if corrected else 0)
        # leave every activation float: what remains is the int8 weights' error, which the correction targets
        qdq = leave_float(onnx.load(str(r.path)), quantized_activations(onnx.load(str(r.path))), fp32)
        s = ort.InferenceSession(qdq.SerializeToString(), providers=["CPUExecutionProvider"])
        outputs[corrected] = torch.from_numpy(s.run(None, {s.get_inputs()[0].name: test.x.numpy()})[0])
    with torch.no_grad():
        ref = model(test.x)
    shift = {k: (v - ref).mean(0).abs().mean().item() for k, v in outputs.items()}
    assert shift[True] < 0.5 * shift[False]  # the systematic part of the error is (mostly) gone
    assert ((outputs[True] - ref).pow(2).mean() < (outputs[False] - ref).pow(2).mean())
    # all activations float again (the ReLUs ORT folded into Q/DQ restored): only int8 weights' error is left
    assert sqnr_db(ref, outputs[True]) > 30


def test_keep_fp32_leaves_the_most_harmful_activations_float(trained, tmp_path):
    model, train, _ = trained
    r = quantize_static_onnx(model, train.x[:128], tmp_path / "q.onnx", keep_fp32=2)
    assert len(r.float_activations) == 2 and r.float_activations == [s.tensor for s in r.sensitivity[:2]]
    assert [s.sqnr_db for s in r.sensitivity] == sorted((s.sqnr_db for s in r.sensitivity), reverse=True)
    remaining = quantized_activations_of(r.path)
    assert not set(r.float_activations) & set(remaining) and remaining  # those two only
    base = quantize_static_onnx(model, train.x[:128], tmp_path / "q0.onnx")
    assert r.calibration_sqnr_db >= base.calibration_sqnr_db - 0.1


def test_named_float_activations_replay_a_measured_choice_without_measuring(trained, tmp_path):
    model, train, _ = trained
    measured = quantize_static_onnx(model, train.x[:128], tmp_path / "m.onnx", keep_fp32=2)
    replayed = quantize_static_onnx(model, train.x[:128], tmp_path / "r.onnx",
                                    float_activations=measured.float_activations)
    assert replayed.float_activations == measured.float_activations and replayed.sensitivity == []  # nothing ranked
    assert (tmp_path / "r.onnx").read_bytes() == (tmp_path / "m.onnx").read_bytes()
    with pytest.raises(deepseek.InvalidArgumentError, match="float_activations"):
        quantize_static_onnx(model, train.x[:128], tmp_path / "x.onnx", float_activations=["no_such_tensor"])


def test_adaround_rounds_weights_to_fit_layer_outputs_and_changes_nothing_else(trained, tmp_path):
    model, train, test = trained
    quantize_static_onnx(model, train.x[:128], tmp_path / "n.onnx")
    ada = quantize_static_onnx(model, train.x[:128], tmp_path / "a.onnx", rounding="adaround")
    stats = ada.adaround
    assert stats["layers"] == 3 and stats["flipped"] > 0  # c1, c2, fc: some weights rounded away from nearest
    assert stats["mse_adaround"] < stats["mse_nearest"]  # the layers' outputs on the calibration inputs
    a, n = onnx.load(str(tmp_path / "a.onnx")), onnx.load(str(tmp_path / "n.onnx"))
    assert [(x.op_type, list(x.input)) for x in a.graph.node] == [(x.op_type, list(x.input)) for x in n.graph.node]
    changed = [t.name for t, u in zip(a.graph.initializer, n.graph.initializer) if t.raw_data != u.raw_data]
    assert changed and all(name.endswith("_quantized") for name in changed)  # int8 weight values only
    for t in a.graph.initializer:
        if t.name in changed:
            q = onnx.numpy_helper.to_array(t)
            assert q.dtype == np.int8 and q.min() >= -127
    session = ort.InferenceSession(str(tmp_path / "a.onnx"), providers=["CPUExecutionProvider"])
    accuracy = float((session.run(None, {session.get_inputs()[0].name: test.x.numpy()})[0].argmax(1) == test.y.numpy()).mean())
    assert accuracy > 0.9
    with pytest.raises(deepseek.InvalidArgumentError, match="rounding"):
        quantize_static_onnx(model, train.x[:16], tmp_path / "x.onnx", rounding="stochastic")


def quantized_activations_of(path):
    from deepseek.quantization.onnx_qdq import quantized_activations

    return quantized_activations(onnx.load(str(path)))


def test_sensitivity_ranks_layers(trained):
    model, train, _ = trained
    ranking = layer_sensitivity(model, [train.x[:64]])
    assert {s.name for s in ranking} == {"c1", "c2", "fc"}
    assert ranking[0].kl >= ranking[-1].kl >= 0 and all(s.sqnr_db > 10 for s in ranking)


def test_bad_arguments(trained, tmp_path):
    model, train, _ = trained
    with pytest.raises(deepseek.InvalidArgumentError, match="method"):
        quantize_static_onnx(model, train.x[:8], tmp_path / "q.onnx", method="kl")
    with pytest.raises(deepseek.InvalidArgumentError, match="keep_fp32"):
        quantize_static_onnx(model, train.x[:8], tmp_path / "q.onnx", keep_fp32=-1)
    with pytest.raises(deepseek.InvalidArgumentError, match="exclude"):
        quantize_static_onnx(model, train.x[:8], tmp_path / "q.onnx", exclude=["nope"])
    assert not (tmp_path / "q.onnx").exists()


class Residual(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = torch.nn.Conv2d(c, c, 3, padding=1)
        self.b = torch.nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return (x + self.b(self.a(x).relu())).relu()


def test_block_grouping_takes_the_smallest_enclosing_module_with_few_layers():
    from deepseek.quantization.adaround import _group_blocks

    names = ["stem", "features.0.conv.0", "features.0.conv.1", "features.1.a", "features.1.b", "features.1.c",
             "features.1.d", "features.1.e", "head"]
    assert _group_blocks(names, 4) == [("stem", [0]), ("features.0", [1, 2]), ("features.1.a", [3]),
                                       ("features.1.b", [4]), ("features.1.c", [5]), ("features.1.d", [6]),
                                       ("features.1.e", [7]), ("head", [8])]
    assert _group_blocks(names, 5)[2] == ("features.1", [3, 4, 5, 6, 7])


def test_block_adaround_rounds_whole_blocks_fed_by_the_rounded_network(tmp_path):
    torch.manual_seed(0)
    train, _ = assets.digits().split(0.2, seed=0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), Residual(8),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 64, 10))
    model = fit_classifier(model, train, epochs=4)
    near = quantize_static_onnx(model, train.x[:128], tmp_path / "n.onnx")
    block = quantize_static_onnx(model, train.x[:128], tmp_path / "b.onnx", rounding="adaround-block")
    stats = block.adaround
    assert stats["layers"] == 4 and stats["flipped"] > 0  # "0", "2.a" + "2.b" (one block), "4"
    assert stats["mse_adaround"] <= stats["mse_nearest"]  # never worse than nearest on each block's output
    a, n = onnx.load(str(tmp_path / "b.onnx")), onnx.load(str(tmp_path / "n.onnx"))
    assert [(x.op_type, list(x.input)) for x in a.graph.node] == [(x.op_type, list(x.input)) for x in n.graph.node]
    changed = [t.name for t, u in zip(a.graph.initializer, n.graph.initializer) if t.raw_data != u.raw_data]
    assert changed and all(name.endswith("_quantized") for name in changed)
    for t, u in zip(a.graph.initializer, n.graph.initializer):  # each int8 weight moved by at most one step
        if t.name in changed:
            diff = onnx.numpy_helper.to_array(t).astype(int) - onnx.numpy_helper.to_array(u).astype(int)
            assert np.abs(diff).max() == 1
    assert near.adaround is None


@pytest.mark.parametrize("rounding", ["adaround", "adaround-block"])
def test_adaround_runs_a_model_exported_for_batch_one(trained, tmp_path, rounding):
    """A .pt2 model keeps torch.export's guard on the batch size; AdaRound feeds it one row at a time."""
    model, train, _ = trained
    exported = torch.export.export(copy.deepcopy(model).eval(), (train.x[:1],)).module()
    with pytest.raises(Exception, match="Guard failed"):
        exported(train.x[:2])
    rows = [train.x[i:i + 1] for i in range(64)]  # a static-batch export calibrates one row at a time, as compile does
    result = quantize_static_onnx(exported, rows, tmp_path / "e.onnx", rounding=rounding)
    # it runs (it once died on the guard); the exported module's ONNX node scopes do not name its layers yet, so
    # AdaRound finds none of them to round: a known gap (docs/notes/optimize.md), nearest rounding is kept
    assert result.adaround is not None and result.adaround["layers"] in (0, 3)
    assert onnx.load(str(tmp_path / "e.onnx")).graph.node
