import dataclasses

import pytest

import deepseek
from deepseek._core.config import BaseConfig


@dataclasses.dataclass(frozen=True)
class Example(BaseConfig):
    bits: int = 8
    observer: str = "minmax"

    def __post_init__(self):
        if not 2 <= self.bits <= 8:
            raise deepseek.InvalidArgumentError(f"bits: got {self.bits}, expected 2..8")


def test_round_trip_and_frozen():
    cfg = Example(bits=4)
    again = Example.from_json(cfg.to_json())
    assert again == cfg and cfg.to_dict()["_type"] == "Example"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.bits = 2


def test_numpy_numbers_round_trip_as_numbers():
    import numpy as np

    from deepseek.train.config import DistributedConfig

    cfg = Example(bits=np.int64(4))  # the argument checks accept numpy numbers
    assert Example.from_json(cfg.to_json()) == cfg and '"bits": 4' in cfg.to_json()
    dist = DistributedConfig(powersgd_rank=np.int32(3))
    assert DistributedConfig.from_json(dist.to_json()) == dist


def test_validation_and_unknown_fields():
    with pytest.raises(deepseek.InvalidArgumentError, match="bits"):
        Example(bits=1)
    with pytest.raises(deepseek.InvalidArgumentError, match="observr"):
        Example.from_dict({"observr": "mse"})
    with pytest.raises(deepseek.InvalidArgumentError, match="_version"):
        Example.from_dict({"_version": 99})
