"""TensorFlow/Keras models in: `deepseek export model.keras|saved_model_dir -o m.onnx` through tf2onnx, checked
against TensorFlow's outputs; the ONNX file then goes through our INT8 quantizer like any other."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from deepseek import InvalidArgumentError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """A Keras CNN trained here on scikit-learn's real handwritten digits, saved both ways."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.MaxPooling2D(),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x[:1400], y[:1400], epochs=5, batch_size=64, verbose=0)
    folder = tmp_path_factory.mktemp("tf")
    model.save(folder / "digits.keras")
    model.export(str(folder / "saved_model"), verbose=False)
    return model, folder, x[1400:], y[1400:]


@pytest.mark.parametrize("source", ["digits.keras", "saved_model"])
def test_export_matches_tensorflow_and_quantizes(digits_model, source, tmp_path):
    model, folder, x, y = digits_model
    out = tmp_path / "digits.onnx"
    done = subprocess.run([sys.executable, "-m", "deepseek", "export", str(folder / source), "-o", str(out)],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ONNX Runtime vs TensorFlow" in done.stdout
    import onnxruntime as ort

    session = ort.InferenceSession(str(out))
    name = session.get_inputs()[0].name
    got = session.run(None, {name: x})[0]  # the dynamic batch: all 397 held-out digits at once
    expected = model(x, training=False).numpy()
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())
    assert (got.argmax(1) == y).mean() > 0.7  # the model learned the digits (0.83 here; chance is 0.1)
    from deepseek.quantization.onnx_dynamic import quantize_dynamic_onnx

    int8 = tmp_path / "digits_int8.onnx"
    quantize_dynamic_onnx(out, int8)
    quantized = ort.InferenceSession(str(int8)).run(None, {name: x})[0]
    assert (quantized.argmax(1) == got.argmax(1)).mean() > 0.95


def test_an_operation_without_an_onnx_form_is_named(tmp_path):
    from deepseek.compile.tensorflow import export_tensorflow

    class Svd(keras.layers.Layer):
        def call(self, x):
            return tf.linalg.svd(tf.reshape(x, (-1, 4, 4)), compute_uv=False)

    inputs = keras.Input((16,))
    model = keras.Model(inputs, Svd()(inputs))
    model.export(str(tmp_path / "svd"), verbose=False)
    with pytest.raises(InvalidArgumentError, match="Svd"):
        export_tensorflow(tmp_path / "svd", tmp_path / "svd.onnx")
    assert not (tmp_path / "svd.onnx").exists()


def test_bad_paths_are_named(tmp_path):
    from deepseek.compile.tensorflow import export_tensorflow

    with pytest.raises(InvalidArgumentError, match="model"):
        export_tensorflow(tmp_path, tmp_path / "x.onnx")  # a folder without saved_model.pb
    (tmp_path / "m.keras").write_bytes(b"not a keras file")
    with pytest.raises(InvalidArgumentError, match="output"):
        export_tensorflow(tmp_path / "m.keras", tmp_path / "x.txt")
