import pytest
import torch

from deepseek._core.errors import InvalidArgumentError
from deepseek.demo import optimize_step, run_demo


def test_a_second_demo_replaces_its_own_optimize_folder(tmp_path):
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 10)).eval()
    target = tmp_path / "optimize"
    first = optimize_step(cnn, "mnist-5k", target, trials=1)
    (target / "recipe.yaml").write_text(((target / "recipe.yaml").read_text()) + "# from the first run\n")
    second = optimize_step(cnn, "mnist-5k", target, trials=1)  # the first run's folder is there: replaced, no error
    assert second["output"] == first["output"] == str(target) and (target / "recipe.yaml").is_file()
    assert "# from the first run" not in (target / "recipe.yaml").read_text()
    assert (target / "model.onnx").is_file() and second["artifact"] == str(target / "model.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["optimize"]  # no staging folder left behind


def test_a_folder_whose_optimize_entry_is_not_ours_is_refused_before_any_work(tmp_path):
    (tmp_path / "optimize").mkdir()
    (tmp_path / "optimize" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidArgumentError, match=r"^output: .*not a previous deepseek optimize output"):
        run_demo(tmp_path)
    assert (tmp_path / "optimize" / "notes.txt").read_text() == "mine"
