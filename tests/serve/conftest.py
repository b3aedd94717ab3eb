"""Model repositories for the serving tests: real ONNX models (exported from small torch nets) and custom handlers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


def _linear_onnx(path: Path, scale: float) -> None:
    """y = scale * (x @ ones(4, 3)): which version answered is readable from the output."""
    import torch

    import deepseek

    model = torch.nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        model.weight.fill_(scale)
    deepseek.export_onnx(model.eval(), torch.randn(2, 4), path, input_names=["x"])


HANDLERS = '''
import threading
import time

import numpy as np

from deepseek.serve import Handler


class Doubler(Handler):
    """Numbers in, twice the numbers out, 20 ms per batch; records every batch's size."""

    sizes = []
    lock = threading.Lock()

    def setup(self, version_dir, config):
        self.delay = float(config.parameters.get("delay_s", 0.02))
        self.fail_every = int(config.parameters.get("fail_every", 0))
        self.calls = 0

    def decode_request(self, inputs, parameters):
        if "x" not in inputs:
            raise ValueError("needs x")
        return inputs["x"]

    def batch_size_of(self, item):
        return item.shape[0]

    def batch(self, items):
        with self.lock:
            self.sizes.append(sum(i.shape[0] for i in items))
        return np.concatenate(items)

    def predict(self, x):
        time.sleep(self.delay)
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise RuntimeError("deliberately faulty")
        return x * 2

    def unbatch(self, out, sizes):
        return np.split(out, np.cumsum(sizes)[:-1])

    def encode_response(self, out):
        return {"y": out}

    def sample_request(self):
        return {"x": np.ones((1, 2), dtype=np.float32)}
'''


@pytest.fixture(scope="session")
def onnx_repo(tmp_path_factory) -> Path:
    """models/linear/{1,2}: the same net with weights 1 and 2 (y = 4x and 8x summed over 4 inputs)."""
    root = tmp_path_factory.mktemp("repo")
    for version, scale in (("1", 1.0), ("2", 2.0)):
        (root / "linear" / version).mkdir(parents=True)
        _linear_onnx(root / "linear" / version / "model.onnx", scale)
    (root / "linear" / "config.yaml").write_text("max_batch_size: 16\nmax_queue_delay_ms: 5\ndefault_version: '1'\n")
    return root


def handler_repo(root: Path, config: str, versions: tuple[str, ...] = ("1",)) -> Path:
    model = root / "doubler"
    for v in versions:
        (model / v).mkdir(parents=True, exist_ok=True)
    (model / "handler.py").write_text(HANDLERS)
    (model / "config.yaml").write_text("handler: handler.py:Doubler\n" + textwrap.dedent(config))
    return root
